// Builds DOM nodes without ever parsing markup: text goes in as text nodes, attributes through
// setAttribute, and only attributes that cannot run or load anything. Everything a peer controls
// (versions, hosts, metadata, zones) reaches the page only this way.

const ATTRIBUTE = /^(class|title|role|hidden|datetime|data-[a-z-]+|aria-[a-z-]+)$/;

/** An element with attributes and children (strings become text nodes; null/false are skipped). */
export function h(tag, attributes, ...children) {
  const el = document.createElement(tag);
  setAttributes(el, attributes);
  append(el, children);
  return el;
}

/** An SVG element; attributes are the presentation ones the charts use. */
export function svg(tag, attributes, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value !== undefined && value !== null) el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function setAttributes(el, attributes) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (!ATTRIBUTE.test(name)) throw new TypeError(`attribute ${name} is not allowed`);
    el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Number.POSITIVE_INFINITY)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
}
