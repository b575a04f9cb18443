// The page: sign in, the datasets, a dataset's four views. Hash routes, so every view has a URL
// that can be bookmarked and shared without the key: #/, #/d/ID/table?FILTERS, …/stats, …
import { ApiError, call, events, json, session, upload } from "./api.js";
import { bytes, h, number, problem, show, when, working } from "./dom.js";
import { filterBar } from "./filters.js";

const VIEWS = {
  table: () => import("./table.js"),
  stats: () => import("./stats.js"),
  charts: () => import("./charts.js"),
  ask: () => import("./ask.js"),
};
const main = document.getElementById("main");
const metas = new Map(); // dataset id -> METADATA of a ready dataset, as last opened
let shown = null; // {id, view, query}: what the dataset view holds now

export function route() {
  const [path, query = ""] = (location.hash.slice(1) || "/").split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query) };
}

/** Go to a dataset's view with these parameters (filters, sort, q, columns). */
export function go(id, view, params) {
  const query = params.toString();
  location.hash = `#/d/${id}/${view}${query ? `?${query}` : ""}`;
}

function header() {
  const who = document.getElementById("who");
  const out = document.getElementById("signout");
  const scope = session.scope();
  who.textContent = scope ? `signed in · ${scope === "write" ? "can read and write" : "read only"}` : "";
  out.hidden = !scope;
}

async function render() {
  header();
  if (!session.key()) return signIn();
  const { parts, params } = route();
  if (parts[0] === "d" && parts[1]) return dataset(parts[1], parts[2] || "table", params);
  shown = null;
  return datasets();
}

// --- sign in -------------------------------------------------------------------------------

/** Which scope a key has: every answer to a key says it (X-Key-Scope), so nothing is tried. */
async function scopeOf(key) {
  const response = await call("/datasets", { key });
  return response.headers.get("X-Key-Scope") === "write" ? "write" : "read";
}

function signIn() {
  shown = null;
  const input = h("input", { type: "password", id: "key", autocomplete: "off", required: true });
  const result = h("div", { class: "result" });
  const form = h(
    "form",
    { class: "signin card", onsubmit: submit },
    h("h1", {}, "Sign in"),
    h("label", { for: "key" }, "API key"),
    input,
    h("button", { type: "submit" }, "Sign in"),
    h("p", { class: "muted" }, "The key stays in this tab's session storage and is sent only in the X-API-Key header."),
    result,
  );
  async function submit(event) {
    event.preventDefault();
    show(result, working("Checking the key…"));
    try {
      const key = input.value.trim();
      session.save(key, await scopeOf(key));
      render();
    } catch (error) {
      show(result, problem(error));
    }
  }
  show(main, form);
  input.focus();
}

// --- datasets ------------------------------------------------------------------------------

async function datasets() {
  const list = h("div", { id: "datasets" }, working("Loading datasets…"));
  show(main, h("h1", {}, "Datasets"), session.canWrite() ? uploader(refresh) : null, list);
  async function refresh() {
    try {
      const { datasets: all } = await json("/datasets");
      show(list, all.length ? datasetTable(all, refresh) : h("p", { class: "muted" }, "No datasets yet."));
    } catch (error) {
      show(list, problem(error));
    }
  }
  await refresh();
}

function datasetTable(all, refresh) {
  all.sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  const rows = all.map((d) => {
    const cell = h("td");
    if (session.canWrite()) cell.append(deleteButton(d, cell, refresh));
    return h(
      "tr",
      { "data-id": d.id },
      h("td", {}, d.status === "ready" ? h("a", { href: `#/d/${d.id}/table` }, d.name) : d.name),
      h("td", { class: "num" }, number(d.rows)),
      h("td", { class: "num" }, number(d.columns?.length)),
      h("td", {}, h("span", { class: `status ${d.status}` }, d.status)),
      h("td", {}, when(d.ready_at || d.created_at)),
      cell,
    );
  });
  const head = ["Name", "Rows", "Columns", "Status", "When", ""].map((t) => h("th", {}, t));
  return h("table", { class: "list" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows));
}

function deleteButton(d, cell, refresh) {
  return h("button", {
    type: "button",
    class: "danger",
    onclick: async () => {
      if (!confirm(`Delete ${d.name}?`)) return;
      try {
        await json(`/datasets/${d.id}`, { method: "DELETE" });
        metas.delete(d.id);
        refresh();
      } catch (error) {
        cell.append(problem(error));
      }
    },
  }, "Delete");
}

function uploader(refresh) {
  const picker = h("input", { type: "file", id: "file", accept: ".csv,.tsv,.txt,.gz,.zip,.xlsx,text/csv" });
  const state = h("div", { class: "progress-area", "aria-live": "polite" });
  const zone = h(
    "label",
    { class: "drop", for: "file" },
    h("strong", {}, "Drop a CSV here"),
    " or click to pick one (CSV, gzip, zip or .xlsx)",
    picker,
  );
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0], state, refresh);
  });
  picker.addEventListener("change", () => picker.files[0] && send(picker.files[0], state, refresh));
  return h("section", { class: "upload" }, zone, state);
}

async function send(file, state, refresh) {
  const bar = h("progress", { max: 1, value: 0 });
  const words = h("span", {}, `Uploading ${file.name}…`);
  show(state, h("div", { class: "job" }, words, bar));
  try {
    const created = await upload(file, (fraction) => {
      bar.value = fraction;
      words.textContent = `Uploading ${file.name}: ${Math.round(fraction * 100)}%`;
    });
    refresh();
    for await (const { event, data } of events(created.job.url)) {
      const p = data.progress || {};
      bar.value = p.fraction ?? 0;
      words.textContent = `Syncing ${file.name}: ${data.status}, ${number(p.rows ?? 0)} rows, ${Math.round((p.fraction ?? 0) * 100)}%`;
      if (event === "done") words.textContent = `${file.name} is ready: ${number(p.rows)} rows.`;
      if (event === "failed") throw new ApiError(422, data.error || { message: "the sync failed" });
    }
    state.querySelector(".job").classList.add("done");
  } catch (error) {
    state.append(problem(error));
  }
  refresh();
}

// --- one dataset ---------------------------------------------------------------------------

// A ready dataset's METADATA is fetched when the dataset is opened and kept while it is shown
// (switching views reads no more); opened again, it is fetched again, so a new version shows.
async function metadata(id) {
  if (shown?.id === id && metas.has(id)) return metas.get(id);
  const meta = await json(`/datasets/${id}`);
  if (meta.status === "ready") metas.set(id, meta);
  return meta;
}

async function dataset(id, view, params) {
  if (!VIEWS[view]) view = "table";
  let meta;
  try {
    if (shown?.id !== id) show(main, working("Opening the dataset…"));
    meta = await metadata(id);
  } catch (error) {
    return show(main, h("p", {}, h("a", { href: "#/" }, "← Datasets")), problem(error));
  }
  if (shown?.id !== id) {
    show(main, h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← Datasets")), about(meta), h("nav", { class: "tabs" }), h("div", { id: "filters" }), h("section", { id: "view" }));
  }
  shown = { id, view, query: params.toString() };
  const query = params.toString() ? `?${params}` : "";
  show(main.querySelector(".tabs"), ...Object.keys(VIEWS).map((v) =>
    h("a", { href: `#/d/${id}/${v}${query}`, class: v === view ? "active" : "", id: `tab-${v}` }, v[0].toUpperCase() + v.slice(1)),
  ));
  show(main.querySelector("#filters"), filterBar(meta, params, (next) => go(id, view, next)));
  const area = main.querySelector("#view");
  const module = await VIEWS[view]();
  if (shown.view !== view || shown.query !== params.toString() || shown.id !== id) return; // moved on
  module.render(area, meta, params, (next) => go(id, view, next));
}

// A column's role (METADATA "roles": what charts and insights take it for) in words.
const ROLE_WORDS = { date_part: "date part", clock: "clock time" };

function about(meta) {
  const s = meta.source || {};
  const roles = meta.roles || {};
  const columns = meta.columns.map((c) =>
    h("li", {}, h("strong", {}, c.name), ` ${c.type}${c.format ? ` (${c.format})` : ""}${c.unit ? ` ${c.unit}` : ""}, `,
      roles[c.name] ? h("span", { class: "role" }, `${ROLE_WORDS[roles[c.name]] || roles[c.name]}, `) : "",
      `${meta.rows ? ((100 * c.nulls) / meta.rows).toFixed(1) : 0}% null`),
  );
  return h(
    "section",
    { class: "about" },
    h("h1", {}, meta.name),
    h("p", { class: "facts" },
      `${number(meta.rows)} rows · ${meta.columns.length} columns · ${meta.status} · `,
      `from ${s.filename || "?"} (${bytes(s.bytes)}${s.format ? `, ${s.format}` : ""}${s.delimiter ? `, delimiter “${s.delimiter}”` : ""}${s.encoding ? `, ${s.encoding}` : ""}) · `,
      `ready ${when(meta.ready_at)}${meta.version ? ` · version ${meta.version}` : ""}`),
    h("details", {}, h("summary", {}, "Columns"), h("ul", { class: "columns" }, columns)),
  );
}

document.getElementById("signout").addEventListener("click", () => {
  session.clear();
  metas.clear();
  render();
});
window.addEventListener("hashchange", render);
render();
