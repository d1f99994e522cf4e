// Pending approvals, live from /ui/api/approvals/stream (server-sent events), decided here.

import { api } from './api.js';
import { byId, el, sats, duration, short, toast } from './dom.js';
import { signApproval, signerPresent } from './nip07.js';

let source = null;
let pending = [];
let skew = 0; // server time minus local time, in seconds
const reasons = new Map(); // what the operator typed, kept across redraws
let ticker = 0;

function serverNow() {
  return Math.floor(Date.now() / 1000) + skew;
}

function setLive(text, state) {
  const node = byId('live-state');
  node.textContent = text;
  node.dataset.state = state;
}

function signerLine() {
  const node = byId('signer-state');
  node.textContent = signerPresent()
    ? 'A NIP-07 signer is present: approvals that need the operator\'s signature are signed in this browser; the key never reaches the gateway.'
    : 'No NIP-07 signer in this browser: requests whose policy needs a signed decision can be rejected here but not approved.';
}

async function decide(request, approve, buttons) {
  const reason = reasons.get(request.request_id) || '';
  buttons.forEach((b) => { b.disabled = true; });
  try {
    let answer;
    if (approve && request.signature_required) {
      const event = await signApproval(request, reason, serverNow());
      answer = await api('POST', '/approvals/signed', JSON.stringify(event));
    } else {
      const verb = approve ? 'approve' : 'reject';
      answer = await api('POST', `/approvals/${encodeURIComponent(request.request_id)}/${verb}`, {
        reason: reason || null,
        decided_by: 'operator console',
      });
    }
    toast(`Request ${short(request.request_id)} of ${request.agent}: ${answer.status}`);
    reasons.delete(request.request_id);
  } catch (error) {
    toast(`Not decided: ${error.message}`, 'error');
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function row(request) {
  const id = request.request_id;
  const reason = el('input', {
    class: 'reason',
    attrs: { type: 'text', placeholder: 'reason (optional)', 'aria-label': 'reason', maxlength: 500 },
    on: { input: (e) => reasons.set(id, e.target.value) },
  });
  reason.value = reasons.get(id) || '';
  const approve = el('button', { class: 'approve', text: request.signature_required ? 'Sign & approve' : 'Approve', attrs: { type: 'button' } });
  const reject = el('button', { class: 'reject', text: 'Reject', attrs: { type: 'button' } });
  approve.addEventListener('click', () => decide(request, true, [approve, reject]));
  reject.addEventListener('click', () => decide(request, false, [approve, reject]));
  const needs = request.signature_required
    ? `signed by ${request.approvals_required} of ${request.approvers.length} key${request.approvers.length === 1 ? '' : 's'} (${request.approvals_so_far} so far)`
    : 'unsigned approval allowed';
  return el('tr', { attrs: { 'data-request': id } },
    el('td', { class: 'agent', text: request.agent }),
    el('td', { class: 'action', text: request.action_type }),
    el('td', { class: 'num', text: sats(request.cost_estimate_sats) }),
    el('td', { class: 'summary' },
      el('div', { class: 'description', text: request.description }),
      el('div', { class: 'muted', text: `${short(id, 12)} · ${needs}` })),
    el('td', { class: 'left', attrs: { 'data-expires': request.expires_at } }),
    el('td', { class: 'decide' }, reason, el('div', { class: 'buttons' }, approve, reject)));
}

function tick() {
  for (const cell of document.querySelectorAll('#approvals-rows td.left')) {
    const left = Number(cell.dataset.expires) - serverNow();
    cell.textContent = left > 0 ? duration(left) : 'expired';
    cell.classList.toggle('soon', left < 300);
  }
}

function render() {
  const focused = document.activeElement && document.activeElement.closest('tr[data-request]');
  const keep = focused && focused.dataset.request;
  byId('approvals-rows').replaceChildren(...pending.map(row));
  byId('approvals-empty').hidden = pending.length > 0;
  const count = byId('pending-count');
  count.textContent = String(pending.length);
  count.hidden = pending.length === 0;
  if (keep) {
    const input = document.querySelector(`tr[data-request="${CSS.escape(keep)}"] input.reason`);
    if (input) input.focus();
  }
  tick();
  signerLine();
}

/** Opens the live stream (once per session). */
export function startLive() {
  if (source) return;
  source = new EventSource('/ui/api/approvals/stream');
  setLive('connecting…', 'connecting');
  source.addEventListener('pending', (message) => {
    const data = JSON.parse(message.data);
    skew = data.now - Math.floor(Date.now() / 1000);
    pending = data.pending;
    render();
    setLive('live', 'live');
  });
  source.addEventListener('failure', (message) => {
    toast(`Cannot list approvals: ${JSON.parse(message.data).message}`, 'error');
  });
  source.addEventListener('error', () => {
    setLive('reconnecting…', 'connecting');
    // A closed stream (the session ended, or the gateway is gone) is not retried by the browser.
    if (source && source.readyState === EventSource.CLOSED) {
      stopLive();
      window.dispatchEvent(new Event('stream-closed'));
    }
  });
  clearInterval(ticker);
  ticker = setInterval(tick, 1000);
}

/** Closes the live stream. */
export function stopLive() {
  if (source) source.close();
  source = null;
  clearInterval(ticker);
  setLive('', 'off');
}

/** Shows the view. */
export function showApprovals() {
  render();
}
