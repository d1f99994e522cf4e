// The audit log, newest first, a page at a time, with the hash chain's verification state.

import { apiRaw, api } from './api.js';
import { byId, el, when, short, toast } from './dom.js';

const PAGE = 25;
let page = 0; // 0 is the newest page
let total = 0;

function chainState(status, data) {
  const node = byId('chain-state');
  if (status === 200 && data.intact) {
    node.textContent = `✓ Chain intact: all ${data.entries} entries verified`;
    node.dataset.state = 'intact';
  } else if (status === 409) {
    node.textContent = `✗ Chain broken at entry ${data.broken_at}: ${data.reason}`;
    node.dataset.state = 'broken';
  } else {
    node.textContent = 'Chain not verified: the audit log cannot be read';
    node.dataset.state = 'unknown';
  }
}

/** A detail as lines of `key value`, each set as text. */
function detailCell(detail) {
  const cell = el('td', { class: 'detail' });
  if (detail === null || detail === undefined) return cell;
  if (typeof detail !== 'object') {
    cell.textContent = String(detail);
    return cell;
  }
  for (const [key, value] of Object.entries(detail)) {
    if (value === null || value === undefined) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    cell.append(el('span', { class: 'field' }, el('span', { class: 'key', text: key }), el('span', { text })));
  }
  return cell;
}

function row(entry) {
  return el('tr', { attrs: { 'data-seq': entry.seq } },
    el('td', { class: 'num', text: entry.seq }),
    el('td', { class: 'time', text: when(entry.timestamp) }),
    el('td', {}, el('span', { class: 'kind', text: entry.kind })),
    el('td', { class: 'agent', text: entry.agent }),
    detailCell(entry.detail),
    el('td', { class: 'hash', text: short(entry.hash, 12), title: entry.hash }));
}

async function load() {
  try {
    const verified = await apiRaw('GET', '/audit/verify');
    chainState(verified.status, verified.data || {});
    total = (verified.data && (verified.data.entries || verified.data.broken_at)) || 0;
    const pages = Math.max(1, Math.ceil(total / PAGE));
    page = Math.min(page, pages - 1);
    const last = total - page * PAGE;
    const first = Math.max(1, last - PAGE + 1);
    const entries = last >= 1 ? (await api('GET', `/audit?from=${first}&limit=${last - first + 1}`)).entries : [];
    entries.sort((a, b) => b.seq - a.seq);
    byId('audit-rows').replaceChildren(...entries.map(row));
    byId('audit-page').textContent = total ? `entries ${first}–${last} of ${total}` : 'no entries yet';
    byId('audit-newer').disabled = page === 0;
    byId('audit-older').disabled = first <= 1;
  } catch (error) {
    if (error.status !== 401) toast(`Cannot read the audit log: ${error.message}`, 'error');
  }
}

/** Shows the view, from the newest page. */
export function showAudit() {
  page = 0;
  load();
}

byId('audit-newer').addEventListener('click', () => { page = Math.max(0, page - 1); load(); });
byId('audit-older').addEventListener('click', () => { page += 1; load(); });
