// Charts: the recommended ones and a builder, drawn by vega-embed; each downloads as SVG or PNG.
import { json, saveBlob } from "./api.js";
import { h, problem, show, working } from "./dom.js";
import { filterProblem, filtersOf } from "./filters.js";

let loading = null;

/** vega-embed: this server's copy (the render extra), or a module that loads it from its CDN. */
export function vega() {
  loading ??= import("./vega-embed.js").then(() => window.vegaEmbed);
  return loading;
}

/** Draw a Vega-Lite spec into el, with download buttons. Vega's expressions are interpreted
 * (ast), never compiled with new Function, so the page's CSP needs no 'unsafe-eval'. */
export async function draw(el, spec) {
  const embed = await vega();
  const holder = h("div", { class: "vega" });
  show(el, holder);
  const result = await embed(holder, spec, {
    actions: false,
    renderer: "svg",
    defaultStyle: false,
    tooltip: false,
    ast: true, // vega-embed then interprets expressions with its own interpreter
  });
  const save = (type) => async () => {
    const url = await result.view.toImageURL(type, type === "png" ? 2 : 1);
    saveBlob(await (await fetch(url)).blob(), `${(spec.title?.text || spec.title || "chart").toString().replace(/\W+/g, "-")}.${type}`);
  };
  el.append(h("div", { class: "chart-actions" },
    h("button", { type: "button", onclick: save("svg") }, "SVG"),
    h("button", { type: "button", onclick: save("png") }, "PNG")));
  return result;
}

export async function render(area, meta, params) {
  const filters = filtersOf(params);
  const built = h("div", { class: "chart", id: "built" });
  const recommended = h("div", { class: "recommended" }, working("Finding charts worth a look…"));
  show(area, h("h2", {}, "Build a chart"), builder(meta, filters, built), built, h("h2", {}, "Recommended"), recommended);
  try {
    const { charts } = await json(`/datasets/${meta.id}/charts`);
    show(recommended, charts.length ? null : h("p", { class: "muted" }, "No chart to recommend."));
    for (const chart of charts) {
      const place = h("div", { class: "chart" }, working("Drawing…"));
      recommended.append(h("article", { class: "card" }, h("h3", {}, chart.title), h("p", { class: "muted" }, chart.reason), place));
      draw(place, chart.spec).catch((error) => show(place, problem(error)));
    }
  } catch (error) {
    show(recommended, problem(error));
  }
}

const MARKS = ["bar", "line", "area", "point", "arc", "rect", "boxplot", "histogram"];
const AGGREGATES = ["", "count", "sum", "mean", "min", "max"];

function builder(meta, filters, target) {
  const names = meta.columns.map((c) => c.name);
  const pick = (label, options, blank) =>
    h("label", {}, label, " ", h("select", { name: label }, blank ? h("option", { value: "" }, "—") : null, options.map((o) => h("option", { value: o }, o || "—"))));
  const form = h("form", { class: "builder", onsubmit: async (e) => {
    e.preventDefault();
    const query = new URLSearchParams(filters);
    for (const [name, value] of new FormData(form)) if (value) query.set(name, value);
    show(target, working("Drawing…"));
    try {
      await draw(target, await json(`/datasets/${meta.id}/chart?${query}`));
    } catch (error) {
      if (error.status === 400) filterProblem(null);
      show(target, problem(error));
    }
  } },
  pick("mark", MARKS), pick("x", names), pick("y", names, true), pick("color", names, true),
  pick("aggregate", AGGREGATES),
  h("label", {}, "bins ", h("input", { type: "number", name: "bins", min: 1, max: 100, placeholder: "auto" })),
  h("button", { type: "submit" }, "Draw"));
  return form;
}
