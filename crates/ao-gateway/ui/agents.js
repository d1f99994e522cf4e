// Agents: spend against the daily and session limits, outstanding reservations, and the spend
// chart. Refreshed every 5 seconds while the view is shown.

import { api } from './api.js';
import { byId, el, sats, toast } from './dom.js';
import { spendChart } from './chart.js';

let range = '24h';
let timer = 0;

function percent(spent, limit) {
  if (limit === 0) return 100;
  return Math.min(100, Math.floor((spent * 100) / limit));
}

function bar(label, spent, limit, warnPct) {
  const pct = percent(spent, limit);
  const level = pct >= 100 ? 'over' : pct >= warnPct ? 'warn' : 'ok';
  const fill = el('div', { class: `fill ${level}` });
  fill.style.width = `${pct}%`;
  const unlimited = limit >= Number.MAX_SAFE_INTEGER;
  return el('div', { class: `meter ${level}`, attrs: { 'data-level': level } },
    el('div', { class: 'meter-label' },
      el('span', { text: label }),
      el('span', { class: 'figure', text: unlimited ? `${sats(spent)} · no limit` : `${sats(spent)} of ${sats(limit)} · ${pct}%` })),
    el('div', { class: 'track', attrs: { role: 'progressbar', 'aria-valuenow': pct, 'aria-valuemin': 0, 'aria-valuemax': 100 } }, fill));
}

const STATUS_TEXT = {
  ok: 'within budget',
  warning: 'past warning',
  session_exceeded: 'session limit reached',
  daily_exceeded: 'daily limit reached',
};

function card(agent) {
  const status = agent.budget_status;
  return el('article', { class: `card agent ${status}`, attrs: { 'data-agent': agent.agent, 'data-status': status } },
    el('div', { class: 'agent-head' },
      el('h2', { text: agent.agent }),
      el('span', { class: `badge ${status}`, text: STATUS_TEXT[status] || status })),
    el('p', { class: 'muted', text: `${agent.autonomy || 'unknown autonomy'} · warning from ${agent.warn_threshold_pct}%` }),
    bar('Today', agent.spent_today_sats, agent.daily_limit_sats, agent.warn_threshold_pct),
    bar('Session', agent.spent_session_sats, agent.session_limit_sats, agent.warn_threshold_pct),
    el('p', { class: 'reservations', text: `${agent.outstanding_reservations} outstanding reservation${agent.outstanding_reservations === 1 ? '' : 's'}` }));
}

/** The agents' names, for other views. */
export let agentNames = [];

async function refresh() {
  try {
    const [budgets, spend] = await Promise.all([
      api('GET', '/budgets'),
      api('GET', `/spend?range=${range}`),
    ]);
    agentNames = budgets.agents.map((a) => a.agent);
    byId('agents-list').replaceChildren(...budgets.agents.map(card));
    byId('chart').replaceChildren(spendChart(spend));
    byId('agents-updated').textContent = `updated ${new Date().toLocaleTimeString('en-GB')}`;
    for (const tab of document.querySelectorAll('[data-range]')) {
      tab.classList.toggle('active', tab.dataset.range === range);
    }
  } catch (error) {
    if (error.status !== 401) toast(`Cannot read the budgets: ${error.message}`, 'error');
  }
}

/** Shows the view and keeps it fresh. */
export function showAgents() {
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, 5000);
}

/** Stops refreshing. */
export function hideAgents() {
  clearInterval(timer);
}

for (const tab of document.querySelectorAll('[data-range]')) {
  tab.addEventListener('click', () => {
    range = tab.dataset.range;
    refresh();
  });
}
