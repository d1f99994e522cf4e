// The console: sign-in, then one view at a time, chosen by the address's #fragment.

import { login, logout, resume } from './api.js';
import { byId, toast } from './dom.js';
import { showAgents, hideAgents } from './agents.js';
import { showApprovals, startLive, stopLive } from './approvals.js';
import { showAudit } from './audit.js';
import { showKeys } from './keys.js';

const VIEWS = { agents: showAgents, approvals: showApprovals, audit: showAudit, keys: showKeys };
let signedIn = false;

function only(id) {
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== id;
}

function route() {
  if (!signedIn) return;
  const name = location.hash.slice(1);
  const view = Object.hasOwn(VIEWS, name) ? name : 'agents';
  hideAgents();
  only(`${view}-view`);
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('active', link.dataset.view === view);
  }
  VIEWS[view]();
}

function enter() {
  signedIn = true;
  byId('nav').hidden = false;
  byId('logout').hidden = false;
  byId('token').value = '';
  startLive();
  route();
}

function leave(message) {
  signedIn = false;
  stopLive();
  hideAgents();
  byId('nav').hidden = true;
  byId('logout').hidden = true;
  only('login-view');
  byId('login-error').textContent = message || '';
  byId('token').focus();
}

byId('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  byId('login-error').textContent = '';
  try {
    await login(byId('token').value);
    enter();
  } catch (error) {
    byId('login-error').textContent = error.status === 401 ? 'That is not the admin token.' : `Cannot sign in: ${error.message}`;
  }
});

byId('logout').addEventListener('click', async () => {
  try {
    await logout();
  } catch (error) {
    toast(`Sign-out failed: ${error.message}`, 'error');
  }
  leave('Signed out.');
});

window.addEventListener('hashchange', route);
window.addEventListener('signed-out', () => { if (signedIn) leave('The session ended: sign in again.'); });
window.addEventListener('stream-closed', async () => {
  if (signedIn && !(await resume())) leave('The session ended: sign in again.');
  else if (signedIn) setTimeout(startLive, 2000);
});

if (await resume()) enter();
else leave('');
