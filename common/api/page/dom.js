// Small DOM helpers: h() builds elements (text is always text, never HTML), plus the messages every view shows.
const SVG = "http://www.w3.org/2000/svg";

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  return fill(el, props, children);
}

export function s(tag, props = {}, ...children) {
  return fill(document.createElementNS(SVG, tag), props, children);
}

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function count(n, noun) {
  // "1 box", "2 boxes", "1 issue": the plural of the nouns the page counts.
  return `${n} ${n === 1 ? noun : noun.endsWith("x") ? `${noun}es` : `${noun}s`}`;
}

export function empty(message, ...more) {
  return h("div", {class: "empty", role: "status"}, h("p", {}, message), ...more);
}

export function failure(error) {
  return h("div", {class: "error", role: "alert"}, error.message || String(error));
}

export function link(href, text, props = {}) {
  return h("a", {href, ...props}, text);
}

export const fmt = (n, digits = 3) => (n === null || n === undefined ? "–" :
  typeof n === "number" ? (Number.isInteger(n) ? n.toLocaleString("en") : n.toFixed(digits)) : String(n));

export function table(headers, rows, caption) {
  return h("table", {}, caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {scope: "col"}, x)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => h("td", {}, cell))))));
}

// Replace what a container shows; absent parts (null, false) are skipped, as in h().
export function show(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}
