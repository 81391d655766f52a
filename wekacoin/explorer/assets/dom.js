// Building pages from chain data without ever parsing it as markup: every string becomes a
// text node or an attribute value set through the DOM (no innerHTML anywhere), and every
// link into the explorer is built here with its parts URI-encoded.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h("td", {class: "num"}, "text", otherNode, [more]). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, the same way. */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** "#/block/12": a route inside the explorer, each part encoded. */
export function route(...parts) {
  return "#/" + parts.map((p) => encodeURIComponent(String(p))).join("/");
}

export function link(parts, ...children) {
  return h("a", { href: route(...parts) }, ...children);
}

export function short(text, keep = 12) {
  text = String(text);
  return text.length > keep + 2 ? text.slice(0, keep) + "…" : text;
}

/** A hash, id or key: shortened, the whole value in the tooltip. */
export function mono(text, keep = 12) {
  return h("span", { class: "mono", title: text }, short(text, keep));
}

export function blockLink(height) {
  return link(["block", height], String(height));
}

export function txLink(id, keep = 12) {
  return link(["tx", id], mono(id, keep));
}

export function accountLink(address, keep = 14) {
  return address ? link(["account", address], mono(address, keep)) : "—";
}

export function taskLink(id, title) {
  return link(["task", id], title === undefined ? `task ${id}` : title);
}

/** A model or data blob: its CID and a download through the node. */
export function blobLink(cid, keep = 16) {
  return h("span", { class: "blob" }, mono(cid, keep), " ",
    h("a", { href: "blob/" + encodeURIComponent(cid), download: cid, class: "download" },
      "download"));
}

export function amount(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : "—";
}

/** A score as the chain keeps it, round(score * 10**6), shown as the metric's value. */
export function score(n) {
  return typeof n === "number" ? (n / 1e6).toFixed(6) : "—";
}

export function bytes(n) {
  if (typeof n !== "number") return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

export function time(ms) {
  return typeof ms === "number" ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "—";
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || String(text).replace(/\W+/g, "-")}` }, text);
}

export function finality(final) {
  return final ? badge("FINAL", "final") : badge("TENTATIVE", "tentative");
}

/** A titled part of a page; `id` names it for links and tests. */
export function section(id, title, ...children) {
  return h("section", { id }, h("h2", {}, title), ...children);
}

/** A two-column list of [label, value] pairs (null values skipped). */
export function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** A table: `columns` are [title, className?]; `rows` are arrays of cells, or
 * {cells, class} for a row with a class. */
export function table(columns, rows, empty = "none yet") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  const head = h("tr", {}, columns.map(([t, c]) => h("th", { class: c }, t)));
  const body = rows.map((row) => {
    const cells = Array.isArray(row) ? row : row.cells;
    return h("tr", { class: Array.isArray(row) ? null : row.class },
      cells.map((cell, i) => h("td", { class: columns[i][1] }, cell)));
  });
  return h("div", { class: "scroll" }, h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
}

/** Any JSON value as text: objects and arrays indented in a <pre>. */
export function jsonValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "object") return String(value);
  return h("pre", { class: "json" }, JSON.stringify(value, null, 1));
}
