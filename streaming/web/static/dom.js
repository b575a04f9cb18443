// Small DOM helpers: elements from a tag, attributes and children; messages in words.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export const svg = (tag, attrs = {}) => {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  return el;
};

/** An API error in words, placed where the request was made. */
export function problem(error) {
  if (error?.name === "AbortError") return null;
  const where = error?.line ? ` (line ${error.line})` : "";
  return h("p", { class: "error", role: "alert" }, `${error?.message || error}${where}`);
}

export const working = (what = "Working…") => h("p", { class: "working" }, what);

export function number(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toLocaleString("en-US", { maximumSignificantDigits: 4 });
}

export function when(iso) {
  return iso ? iso.replace("T", " ").replace("Z", " UTC") : "–";
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** Replace what an element holds. */
export function show(el, ...children) {
  el.replaceChildren(...children.flat().filter(Boolean));
  return el;
}
