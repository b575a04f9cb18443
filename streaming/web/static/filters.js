// The filters shared by Table, Stats and Charts: chips in the URL's query, an add form whose
// operators and input follow the column's type, and q search.
import { h, show } from "./dom.js";

export const PAGE_WORDS = new Set(["sort", "q", "columns"]); // the page's own, not filters
const ORDERED = ["exact", "not", "gt", "gte", "lt", "lte", "in", "notin", "isnull", "notnull"];
const TEXT = ["exact", "not", "icontains", "contains", "startswith", "endswith", "in", "notin", "isnull", "notnull"];
const OPS = {
  integer: ORDERED, number: ORDERED, date: ORDERED, datetime: ORDERED, string: TEXT,
  boolean: ["exact", "not", "isnull", "notnull"], null: ["isnull", "notnull"],
};
const WORDS = {
  exact: "=", not: "≠", gt: ">", gte: "≥", lt: "<", lte: "≤", in: "in", notin: "not in",
  contains: "contains", icontains: "contains (any case)", startswith: "starts with",
  endswith: "ends with", isnull: "is null", notnull: "is not null",
};

/** The filters and q of a view's parameters, as the API takes them. */
export function filtersOf(params) {
  const out = new URLSearchParams();
  for (const [name, value] of params) if (!PAGE_WORDS.has(name) || name === "q") out.append(name, value);
  return out;
}

function input(column, op) {
  if (op === "isnull" || op === "notnull") return null;
  const type = column?.type;
  if (op === "in" || op === "notin") return h("input", { type: "text", placeholder: "a,b,c", class: "value" });
  if (type === "boolean") return h("select", { class: "value" }, h("option", {}, "true"), h("option", {}, "false"));
  if (type === "date") return h("input", { type: "date", class: "value", required: true });
  if (type === "datetime") return h("input", { type: "datetime-local", step: 1, class: "value", required: true });
  if (type === "integer") return h("input", { type: "number", step: 1, class: "value", required: true });
  if (type === "number") return h("input", { type: "number", step: "any", class: "value", required: true });
  return h("input", { type: "text", class: "value" });
}

export function filterBar(meta, params, navigate) {
  const byName = new Map(meta.columns.map((c) => [c.name, c]));
  const chips = [];
  for (const [name, value] of params) {
    if (PAGE_WORDS.has(name)) continue;
    const [column, op = "exact"] = name.split("__");
    const next = new URLSearchParams([...params].filter(([n, v]) => n !== name || v !== value));
    chips.push(
      h("span", { class: "chip" },
        `${column} ${WORDS[op] || op}${op === "isnull" || op === "notnull" ? "" : ` ${value}`}`,
        h("button", { type: "button", title: "Remove this filter", "aria-label": `remove ${name}`, onclick: () => navigate(next) }, "×")),
    );
  }
  const columnSelect = h("select", { class: "column", "aria-label": "column" }, meta.columns.map((c) => h("option", { value: c.name }, c.name)));
  const opSelect = h("select", { class: "op", "aria-label": "operator" });
  const slot = h("span", { class: "slot" });
  function retype() {
    const column = byName.get(columnSelect.value);
    const ops = OPS[column?.type] || TEXT;
    const kept = ops.includes(opSelect.value) ? opSelect.value : ops[0];
    show(opSelect, ops.map((op) => h("option", { value: op, selected: op === kept }, WORDS[op])));
    show(slot, input(column, opSelect.value));
  }
  columnSelect.addEventListener("change", retype);
  opSelect.addEventListener("change", () => show(slot, input(byName.get(columnSelect.value), opSelect.value)));
  retype();
  const add = h("form", { class: "add-filter", onsubmit: (e) => {
    e.preventDefault();
    const op = opSelect.value;
    const field = slot.querySelector(".value");
    let value = field ? field.value : "1";
    if (field?.type === "datetime-local" && value.length === 16) value += ":00";
    const next = new URLSearchParams(params);
    next.append(op === "exact" ? columnSelect.value : `${columnSelect.value}__${op}`, value);
    navigate(next);
  } }, columnSelect, opSelect, slot, h("button", { type: "submit" }, "Add filter"));
  const q = h("input", { type: "search", name: "q", placeholder: "Search text columns", value: params.get("q") || "", "aria-label": "search" });
  const search = h("form", { class: "search", onsubmit: (e) => {
    e.preventDefault();
    const next = new URLSearchParams(params);
    if (q.value.trim()) next.set("q", q.value.trim());
    else next.delete("q");
    navigate(next);
  } }, q, h("button", { type: "submit" }, "Search"));
  return h("div", { class: "filterbar" }, add, search, h("div", { class: "chips" }, chips), h("div", { class: "filter-error" }));
}

/** Show an API error about a filter next to the filters, where it was made. */
export function filterProblem(el) {
  const slot = document.querySelector(".filter-error");
  if (slot) show(slot, el);
}
