// Stats: a card per column, over the rows the filters keep; estimates are marked as such.
import { json } from "./api.js";
import { h, number, problem, show, svg, working } from "./dom.js";
import { filtersOf } from "./filters.js";

export async function render(area, meta, params) {
  show(area, working("Computing statistics…"));
  try {
    const query = filtersOf(params).toString();
    const stats = await json(`/datasets/${meta.id}/stats${query ? `?${query}` : ""}`);
    show(area,
      h("p", { class: "muted" }, `${number(stats.rows_matched)} rows ${query ? "match the filters" : ""}`),
      h("div", { class: "cards" }, Object.entries(stats.columns).map(([name, s]) => card(name, s))));
  } catch (error) {
    show(area, problem(error));
  }
}

function card(name, s) {
  const approx = (field) => (s.approximate && s.error_bounds && field in s.error_bounds ? " ≈" : "");
  const facts = [
    ["non-null", number(s.count)],
    ["nulls", number(s.nulls)],
    ["distinct", `${number(s.distinct)}${s.distinct_exact === false ? " ≈" : ""}`],
  ];
  if ("min" in s) facts.push(["min", number(s.min)], ["max", number(s.max)]);
  if ("mean" in s) facts.push(["mean", number(s.mean)], ["stddev", number(s.stddev)]);
  if ("min_length" in s) facts.push(["length", `${s.min_length}–${s.max_length}`]);
  for (const [q, v] of Object.entries(s.quantiles || {})) facts.push([`${q}${approx("quantiles")}`, number(v)]);
  const list = h("dl", {}, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  let picture = null;
  if (s.histogram?.length) picture = histogram(s.histogram, approx("histogram"));
  else if (s.top?.length && s.top[0].count > 1) picture = top(s.top, s.count, approx("top"));
  const note = s.approximate ? h("p", { class: "muted small" }, `≈ estimated: ${Object.entries(s.error_bounds || {}).map(([k, v]) => `${k} ±${number(v)}`).join(", ")}`) : null;
  return h("article", { class: "card stat", "data-column": name },
    h("h3", {}, name, " ", h("span", { class: "type" }, s.type)), list, picture, note);
}

function histogram(bins, mark) {
  const most = Math.max(...bins.map((b) => b.count), 1);
  const width = 240;
  const height = 60;
  const bar = width / bins.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "hist", role: "img", "aria-label": `histogram${mark}` });
  bins.forEach((b, i) => {
    const tall = (b.count / most) * (height - 2);
    const rect = svg("rect", { x: i * bar + 0.5, y: height - tall, width: Math.max(bar - 1, 1), height: tall });
    const title = svg("title");
    title.textContent = `${number(b.start)} – ${number(b.end)}: ${number(b.count)}`;
    rect.append(title);
    chart.append(rect);
  });
  return h("figure", {}, chart, h("figcaption", { class: "small muted" }, `histogram${mark}`));
}

function top(values, count, mark) {
  return h("figure", {}, h("ul", { class: "topvalues" }, values.slice(0, 5).map((t) =>
    h("li", {}, h("span", { class: "label" }, String(t.value)), h("progress", { max: count || 1, value: t.count }), h("span", { class: "small" }, number(t.count))))),
  h("figcaption", { class: "small muted" }, `top values${mark}`));
}
