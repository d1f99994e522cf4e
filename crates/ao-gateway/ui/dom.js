// Building the page. Text goes in with textContent and nothing else: no string from the gateway
// (and so none an agent wrote) is ever parsed as HTML. The CSP's Trusted Types rule makes the
// browser refuse any HTML sink anyway.

/**
 * A new element: `el('td', { class: 'num', text: '12' }, child, ...)`.
 * Options: class, text (set as textContent), title, attrs (attributes), on (event handlers).
 */
export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  if (options.class) node.className = options.class;
  if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
  if (options.title) node.title = String(options.title);
  for (const [name, value] of Object.entries(options.attrs || {})) node.setAttribute(name, String(value));
  for (const [name, handler] of Object.entries(options.on || {})) node.addEventListener(name, handler);
  for (const child of children) if (child) node.append(child);
  return node;
}

/** An SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) if (child) node.append(child);
  return node;
}

/** The element with id `id`. */
export function byId(id) {
  return document.getElementById(id);
}

/** `1234567` as `1,234,567 sats`. */
export function sats(n) {
  return `${Number(n).toLocaleString('en-US')} sats`;
}

/** A Unix time as local date and time. */
export function when(seconds) {
  return new Date(seconds * 1000).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

/** A number of seconds as `2h 05m`, `4m 09s` or `12s`. */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n) => String(n).padStart(2, '0');
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${s}s`;
}

/** `abcdef0123…` for a long hex string. */
export function short(hex, length = 10) {
  const text = String(hex || '');
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

let toastTimer = 0;

/** A short message at the bottom of the page; `kind` is 'ok' or 'error'. */
export function toast(message, kind = 'ok') {
  const node = byId('toast');
  node.textContent = message;
  node.className = `toast ${kind}`;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, kind === 'error' ? 8000 : 4000);
}
