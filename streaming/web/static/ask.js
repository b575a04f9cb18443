// Ask: insights, and chat whose reply streams in as the model writes it, with the query it
// chose and that query's result (a table, or a chart).
import { events, json } from "./api.js";
import { h, number, problem, show, working } from "./dom.js";
import { draw } from "./charts.js";

const conversations = new Map(); // dataset id -> [{role, content}], for this tab's life

export async function render(area, meta) {
  const insights = h("div", { class: "insights" }, working("Finding insights…"));
  const log = h("div", { class: "chat-log", id: "chat-log", "aria-live": "polite" });
  const message = h("textarea", { id: "message", rows: 2, placeholder: "Ask about this table…", required: true });
  const error = h("div");
  const form = h("form", { class: "chat", onsubmit: ask }, message, h("button", { type: "submit" }, "Ask"), error);
  show(area, h("h2", {}, "Insights"), insights, h("h2", {}, "Chat"), log, form);
  const history = conversations.get(meta.id) || [];
  conversations.set(meta.id, history);
  for (const turn of history) log.append(h("div", { class: `turn ${turn.role}` }, turn.content));

  async function ask(e) {
    e.preventDefault();
    const text = message.value.trim();
    if (!text) return;
    show(error);
    log.append(h("div", { class: "turn user" }, text));
    const reply = h("div", { class: "turn assistant streaming" });
    log.append(reply);
    message.value = "";
    try {
      const body = JSON.stringify({ message: text, history: history.slice(-20) });
      let whole = "";
      for await (const { event, data } of events(`/datasets/${meta.id}/chat`, { method: "POST", body, headers: { "Content-Type": "application/json" } })) {
        if (event === "delta") reply.textContent = whole += data.text;
        else if (event === "done") {
          reply.textContent = whole = data.reply;
          reply.append(answer(data));
        } else if (event === "error") throw Object.assign(new Error(data.error?.message), data.error);
      }
      history.push({ role: "user", content: text }, { role: "assistant", content: whole });
    } catch (err) {
      reply.remove();
      show(error, problem(err));
    } finally {
      reply.classList.remove("streaming");
    }
  }

  try {
    const found = await json(`/datasets/${meta.id}/insights`);
    show(insights,
      h("p", { class: "muted small" }, found.source === "llm" ? `by ${found.model}` : "from the statistics (no LLM configured)"),
      h("ul", {}, found.insights.map((i) => h("li", {}, h("strong", {}, i.title), " ", i.detail))));
  } catch (err) {
    show(insights, problem(err));
  }
}

function answer(data) {
  const q = data.query;
  if (!q) return h("span");
  const parts = [h("p", { class: "query" }, "Query: ", h("code", {}, q.url || `${q.route} ${JSON.stringify(q.params)}`))];
  if (q.error) parts.push(problem(q.error));
  const r = data.result;
  if (r?.$schema) {
    const place = h("div", { class: "chart" }, working("Drawing…"));
    parts.push(place);
    draw(place, r).catch((err) => show(place, problem(err)));
  } else if (r?.groups || r?.rows) parts.push(table(r.groups || r.rows));
  else if (r?.columns) parts.push(table(Object.entries(r.columns).map(([name, s]) => ({ column: name, count: s.count, nulls: s.nulls, min: s.min, max: s.max, mean: s.mean }))));
  return h("div", { class: "answer" }, parts);
}

function table(rows) {
  if (!rows.length) return h("p", { class: "muted" }, "No rows.");
  const names = Object.keys(rows[0]);
  return h("table", { class: "rows small" },
    h("thead", {}, h("tr", {}, names.map((n) => h("th", {}, n)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, names.map((n) => h("td", { class: typeof row[n] === "number" ? "num" : "" }, row[n] === null ? "null" : typeof row[n] === "number" ? number(row[n]) : String(row[n])))))));
}
