// Table: pages through `next`, sorts by a header, chooses columns, counts on request, exports.
import { download, json } from "./api.js";
import { h, number, problem, show, working } from "./dom.js";
import { filterProblem, filtersOf } from "./filters.js";

const LIMIT = 100;
let controller = null; // the page being fetched: a newer one cancels it

export function render(area, meta, params, navigate) {
  const base = `/datasets/${meta.id}`;
  const query = filtersOf(params);
  const columns = params.get("columns");
  if (columns) query.set("columns", columns);
  const sort = params.get("sort");
  const pageQuery = new URLSearchParams(query);
  if (sort) pageQuery.set("sort", sort);
  pageQuery.set("limit", LIMIT);
  const first = `${base}/rows?${pageQuery}`;
  const history = []; // pages before this one, to go back
  let current = first;
  let last = null; // the page shown

  const grid = h("div", { class: "grid", id: "grid" });
  const where = h("span", { class: "where" });
  const prev = h("button", { type: "button", id: "prev", disabled: true, onclick: () => load(history.pop(), false) }, "← Previous");
  const next = h("button", { type: "button", id: "next", disabled: true, onclick: () => load(last.next, true) }, "Next →");
  const total = h("span", { class: "total" });
  const countButton = h("button", { type: "button", id: "count", onclick: count }, "Count matching rows");
  const toolbar = h("div", { class: "toolbar" },
    chooser(meta, params, navigate), countButton, total, exporter(base, query, () => current),
    h("span", { class: "pager" }, prev, where, next));
  show(area, toolbar, grid);

  async function count() {
    show(total, "counting…");
    try {
      const counted = await json(`${base}/rows?${new URLSearchParams([...query, ["limit", "1"], ["count", "1"]])}`);
      show(total, `${number(counted.total)} matching rows`);
    } catch (error) {
      show(total, problem(error));
    }
  }

  async function load(url, forward) {
    controller?.abort();
    controller = new AbortController();
    const signal = controller.signal;
    grid.classList.add("loading");
    if (!last) show(grid, working("Loading rows…"));
    try {
      const page = await json(url, { signal });
      if (forward && last) history.push(current);
      current = url;
      last = page;
      show(grid, rowsTable(page, meta, sort, columns, (s) => {
        const next = new URLSearchParams(params);
        if (s) next.set("sort", s);
        else next.delete("sort");
        navigate(next);
      }));
      if (!performance.getEntriesByName("rillet:rows").length) performance.mark("rillet:rows");
      const shownTo = page.offset + page.rows.length;
      where.textContent = page.rows.length ? `rows ${number(page.offset + 1)}–${number(shownTo)}${page.total !== null ? ` of ${number(page.total)}` : ""}` : "no rows match";
      if (page.total !== null && page.total !== undefined && !query.toString()) show(total, "");
      prev.disabled = history.length === 0;
      next.disabled = !page.next;
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 400) filterProblem(problem(error));
      show(grid, problem(error));
    } finally {
      grid.classList.remove("loading");
    }
  }
  load(first, false);
}

function rowsTable(page, meta, sort, chosen, setSort) {
  const names = chosen ? chosen.split(",") : meta.columns.map((c) => c.name);
  const types = new Map(meta.columns.map((c) => [c.name, c.type]));
  const numeric = (n) => types.get(n) === "integer" || types.get(n) === "number";
  const head = names.map((name) => {
    const state = sort === name ? "ascending" : sort === `-${name}` ? "descending" : "none";
    const nextSort = state === "none" ? name : state === "ascending" ? `-${name}` : null;
    return h("th", { "aria-sort": state, class: numeric(name) ? "num" : "" },
      h("button", { type: "button", class: "sort", "data-column": name, title: "Sort by this column", onclick: () => setSort(nextSort) },
        name, state === "ascending" ? " ▲" : state === "descending" ? " ▼" : ""));
  });
  const body = document.createDocumentFragment();
  for (const row of page.rows) {
    const tr = document.createElement("tr");
    for (const name of names) {
      const td = document.createElement("td");
      const value = row[name];
      if (value === null || value === undefined) {
        td.className = "null";
        td.textContent = "null";
      } else {
        if (numeric(name)) td.className = "num";
        td.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
      }
      tr.append(td);
    }
    body.append(tr);
  }
  return h("table", { class: "rows" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, body));
}

function chooser(meta, params, navigate) {
  const chosen = new Set((params.get("columns") || "").split(",").filter(Boolean));
  const boxes = meta.columns.map((c) =>
    h("label", {}, h("input", { type: "checkbox", value: c.name, checked: !chosen.size || chosen.has(c.name) }), ` ${c.name}`));
  const apply = h("button", { type: "button", onclick: () => {
    const picked = boxes.map((b) => b.firstChild).filter((b) => b.checked).map((b) => b.value);
    const next = new URLSearchParams(params);
    if (picked.length && picked.length < meta.columns.length) next.set("columns", picked.join(","));
    else next.delete("columns");
    navigate(next);
  } }, "Show these columns");
  return h("details", { class: "chooser" }, h("summary", {}, "Columns"), h("div", { class: "boxes" }, boxes), apply);
}

/** Export: this page (as sorted and shown) or every matching row, as CSV or NDJSON. */
function exporter(base, query, currentPage) {
  const what = h("select", { "aria-label": "what to export" },
    h("option", { value: "page" }, "this page"), h("option", { value: "all" }, "all matching rows"));
  const error = h("span");
  const save = (format) => async () => {
    show(error);
    try {
      let url;
      if (what.value === "all") url = `${base}/export?${new URLSearchParams([...query, ["format", format]])}`;
      else {
        const page = new URL(currentPage(), location.origin);
        page.searchParams.set("format", format);
        url = page.pathname + page.search;
      }
      const name = `${base.split("/").pop()}${what.value === "page" ? "-page" : ""}.${format}`;
      await download(url, name);
    } catch (e) {
      show(error, problem(e));
    }
  };
  return h("span", { class: "export" }, "Export ", what, " as ",
    h("button", { type: "button", onclick: save("csv") }, "CSV"),
    h("button", { type: "button", onclick: save("ndjson") }, "NDJSON"), error);
}

