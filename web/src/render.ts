// Turning untrusted text into DOM. Everything a message carries — a user's text, a plugin's
// reply, an assistant's answer, a reply's `data` — comes from someone else, so:
// - markdown goes through marked with raw HTML escaped (shown as text, never parsed) and
//   links limited to http(s)/mailto, then through DOMPurify, and is inserted as a DOM
//   fragment (never a string assigned to innerHTML);
// - everything else is built with createElement/textContent.

import DOMPurify from "dompurify";
import { Marked, type Tokens } from "marked";

const escapeHtml = (s: string) =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");

const SAFE_URL = /^(https?:|mailto:)/i;

const marked = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    // Raw HTML in markdown is shown as the text it is.
    html({ text }: Tokens.HTML | Tokens.Tag) {
      return escapeHtml(text);
    },
    link({ href, title, tokens }: Tokens.Link) {
      const inner = this.parser.parseInline(tokens);
      if (!SAFE_URL.test(href.trim())) return inner;
      const t = title ? ` title="${escapeHtml(title)}"` : "";
      return `<a href="${escapeHtml(href)}"${t}>${inner}</a>`;
    },
    // No remote images (the page's CSP would block them anyway): show the alt text.
    image({ text }: Tokens.Image) {
      return escapeHtml(text);
    },
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const PURIFY = {
  RETURN_DOM_FRAGMENT: true as const,
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "img", "svg", "math"],
  FORBID_ATTR: ["style", "class", "id"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
};

/** Markdown → a sanitized fragment. */
export function markdown(text: string): DocumentFragment {
  const html = marked.parse(text) as string;
  return DOMPurify.sanitize(html, PURIFY);
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const scalar = (v: unknown): string =>
  v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);

/**
 * A reply's structured `data` as HTML tables: an array of objects is a table with a column
 * per key, an object is a key/value table, nesting recurses (a few levels deep).
 */
export function dataTable(value: unknown, depth = 0): HTMLElement {
  if (depth > 4) return el("code", undefined, scalar(value));
  if (Array.isArray(value)) {
    if (value.length > 0 && value.every(isRecord)) {
      const cols: string[] = [];
      for (const row of value as Record<string, unknown>[])
        for (const k of Object.keys(row)) if (!cols.includes(k)) cols.push(k);
      const table = el("table", "data-table");
      const head = table.createTHead().insertRow();
      for (const c of cols) head.appendChild(el("th", undefined, c));
      const body = table.createTBody();
      for (const row of value as Record<string, unknown>[]) {
        const tr = body.insertRow();
        for (const c of cols) tr.insertCell().appendChild(cell(row[c], depth));
      }
      return table;
    }
    const ul = el("ul", "data-list");
    ul.replaceChildren(...value.map((v) => {
      const li = el("li");
      li.appendChild(cell(v, depth));
      return li;
    }));
    return ul;
  }
  if (isRecord(value)) {
    const table = el("table", "data-table kv");
    const body = table.createTBody();
    for (const [k, v] of Object.entries(value)) {
      const tr = body.insertRow();
      tr.appendChild(el("th", undefined, k));
      tr.insertCell().appendChild(cell(v, depth));
    }
    return table;
  }
  return el("span", undefined, scalar(value));
}

function cell(v: unknown, depth: number): Node {
  if (Array.isArray(v) || isRecord(v)) return dataTable(v, depth + 1);
  return document.createTextNode(scalar(v));
}
