// Spend over time as an SVG bar chart, stacked by agent, built element by element.

import { svg, el, sats } from './dom.js';

const WIDTH = 860;
const HEIGHT = 240;
const LEFT = 64;
const BOTTOM = 28;
const TOP = 12;

/** A rounded-up scale maximum: 1, 2 or 5 times a power of ten. */
function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function label(start, width) {
  const date = new Date(start * 1000);
  if (width < 86400) return `${String(date.getHours()).padStart(2, '0')}:00`;
  // A day is a UTC day, as budgets count it.
  return date.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', timeZone: 'UTC' });
}

/**
 * The chart of `data` (the answer of /ui/api/spend): a figure with the SVG and a legend.
 */
export function spendChart(data) {
  const names = Object.keys(data.agents);
  const count = names.length ? data.agents[names[0]].length : 0;
  const totals = Array.from({ length: count }, (_, i) => names.reduce((sum, n) => sum + data.agents[n][i], 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotWidth = WIDTH - LEFT - 8;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const slot = count ? plotWidth / count : plotWidth;
  const chart = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: 'spend',
    role: 'img',
    'aria-label': `Spend per ${data.bucket_secs >= 86400 ? 'day' : 'hour'}, ${data.range}`,
  });
  for (const fraction of [0, 0.5, 1]) {
    const y = TOP + plotHeight * (1 - fraction);
    chart.append(svg('line', { x1: LEFT, x2: WIDTH - 8, y1: y, y2: y, class: 'grid' }));
    const text = svg('text', { x: LEFT - 8, y: y + 4, class: 'axis', 'text-anchor': 'end' });
    text.textContent = `${Math.round(max * fraction)}`;
    chart.append(text);
  }
  const every = count > 12 ? 3 : 1;
  for (let i = 0; i < count; i += 1) {
    const x = LEFT + i * slot + slot * 0.15;
    let y = TOP + plotHeight;
    names.forEach((name, series) => {
      const value = data.agents[name][i];
      if (!value) return;
      const height = Math.max(1, (value / max) * plotHeight);
      y -= height;
      const bar = svg('rect', { x, y, width: slot * 0.7, height, class: `bar s${series % 6}` });
      const tip = svg('title');
      tip.textContent = `${name}: ${sats(value)}`;
      bar.append(tip);
      chart.append(bar);
    });
    if (i % every === 0 || i === count - 1) {
      const text = svg('text', { x: x + slot * 0.35, y: HEIGHT - 8, class: 'axis', 'text-anchor': 'middle' });
      text.textContent = label(data.from + i * data.bucket_secs, data.bucket_secs);
      chart.append(text);
    }
  }
  const sum = totals.reduce((a, b) => a + b, 0);
  const legend = el('ul', { class: 'legend' },
    ...names.map((name, series) => el('li', {},
      el('span', { class: `swatch s${series % 6}` }),
      el('span', { text: `${name} · ${sats(data.agents[name].reduce((a, b) => a + b, 0))}` }))),
    el('li', { class: 'muted', text: `total ${sats(sum)}; the scale is in sats${data.bucket_secs >= 86400 ? ', days are UTC days' : ''}` }));
  return el('figure', {}, chart, legend);
}
