// API keys: list, create (the key is shown once), revoke (with a second click to confirm).

import { api } from './api.js';
import { byId, el, when, toast } from './dom.js';

function revokeButton(key) {
  const button = el('button', { class: 'reject', text: 'Revoke', attrs: { type: 'button' } });
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = 'Click again to revoke';
      setTimeout(() => { armed = false; button.textContent = 'Revoke'; }, 4000);
      return;
    }
    button.disabled = true;
    try {
      await api('DELETE', `/keys/${encodeURIComponent(key.id)}`);
      toast(`Key ${key.id} of ${key.agent} revoked`);
      load();
    } catch (error) {
      toast(`Not revoked: ${error.message}`, 'error');
      button.disabled = false;
    }
  });
  return button;
}

function row(key) {
  const revoked = key.revoked_at !== null && key.revoked_at !== undefined;
  return el('tr', { class: revoked ? 'revoked' : '', attrs: { 'data-key': key.id } },
    el('td', { class: 'mono', text: key.id }),
    el('td', { class: 'agent', text: key.agent }),
    el('td', { class: 'time', text: when(key.created_at) }),
    el('td', { text: revoked ? `revoked ${when(key.revoked_at)}` : 'live' }),
    el('td', {}, revoked ? null : revokeButton(key)));
}

async function load() {
  try {
    const [keys, budgets] = await Promise.all([api('GET', '/keys'), api('GET', '/budgets')]);
    byId('keys-rows').replaceChildren(...keys.keys.map(row));
    const select = byId('key-agent');
    const chosen = select.value;
    select.replaceChildren(...budgets.agents.map((a) => el('option', { text: a.agent, attrs: { value: a.agent } })));
    if (chosen) select.value = chosen;
  } catch (error) {
    if (error.status !== 401) toast(`Cannot list the keys: ${error.message}`, 'error');
  }
}

/** Shows the view. */
export function showKeys() {
  byId('new-key').hidden = true;
  byId('new-key-value').textContent = '';
  load();
}

byId('key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const agent = byId('key-agent').value;
  try {
    const created = await api('POST', '/keys', { agent });
    byId('new-key-value').textContent = created.key;
    byId('new-key').hidden = false;
    toast(`Key ${created.id} created for ${created.agent}`);
    load();
  } catch (error) {
    toast(`No key created: ${error.message}`, 'error');
  }
});
