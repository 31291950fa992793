// One asset: its price history (30d/1y/5y/max), the latest prediction with
// its interval, and the walk-forward evaluation against the naive baseline,
// shown as plainly as the forecast itself.

import { get, post } from './api.js';
import { priceChart } from './charts.js';
import { errorLine, field, fill, fmtMoney, fmtPct, fmtRatio, h, showError, title } from './ui.js';

const RANGES = ['30d', '1y', '5y', 'max'];
const predictions = new Map();

export async function assetPage(root, [symbolArg], current) {
  const list = await get('/prices?limit=500');
  if (!current()) return;
  const symbol = (symbolArg || (list.items[0] && list.items[0].symbol) || '').toUpperCase();
  const picker = h('form', { class: 'row', id: 'asset-pick' },
    field('Symbol', { name: 'symbol', id: 'asset-symbol', options: list.items.map((p) => [p.symbol, `${p.symbol} – ${p.name}`]) }),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show')));
  const select = picker.querySelector('select');
  if (symbol) select.value = symbol;
  picker.addEventListener('submit', (e) => { e.preventDefault(); location.hash = `#/asset/${encodeURIComponent(select.value)}`; });

  const head = h('p', { class: 'meta', id: 'asset-quote' }, '\u00a0');
  const ranges = h('div', { class: 'ranges', role: 'group', 'aria-label': 'Period' });
  const chartBox = h('div', { class: 'chart-box', id: 'price-chart' });
  const forecastBox = h('div', { id: 'forecast' }, h('p', { class: 'muted' }, 'Computing the prediction…'));
  const evalBox = h('div', { id: 'evaluation' });
  const line = errorLine();
  fill(root, title(symbol ? `Asset ${symbol}` : 'Assets'), picker, head,
    h('section', { class: 'card', 'aria-labelledby': 'chart-h' }, h('h2', { id: 'chart-h' }, 'Price and 5-day forecast'), ranges, chartBox, line),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'fc-h' }, h('h2', { id: 'fc-h' }, 'Latest prediction'), forecastBox),
      h('section', { class: 'card', 'aria-labelledby': 'ev-h' }, h('h2', { id: 'ev-h' }, 'How the model fares out of sample'), evalBox)));
  if (!symbol) return;

  let range = '1y';
  let history = [];
  let prediction = predictions.get(symbol) || null;

  const draw = () => {
    const band = prediction && prediction.interval.low !== null && prediction.interval.high !== null && {
      low: Number(prediction.interval.low), high: Number(prediction.interval.high),
      mid: Number(prediction.predicted_close), steps: prediction.horizon_days,
    };
    fill(chartBox, priceChart(`${symbol} daily close, ${range}${band ? ', with the forecast band' : ''}`, history, band));
  };
  const show = async (r) => {
    range = r;
    for (const b of ranges.children) b.setAttribute('aria-pressed', String(b.dataset.range === r));
    try {
      const p = await get(`/prices/${encodeURIComponent(symbol)}?history=${r}`);
      if (!current()) return;
      history = p.history;
      fill(head, `${p.name} · ${fmtMoney(p.price)} ${p.currency} · ${Number(p.change) >= 0 ? '+' : ''}${fmtMoney(p.change)} (${fmtPct(p.change_pct)}) · as of ${p.as_of} · ${p.source}`);
      draw();
    } catch (err) { showError(line, err); }
  };
  fill(ranges, RANGES.map((r) => h('button', { type: 'button', 'data-range': r, 'aria-pressed': 'false', onclick: () => show(r) }, r)));
  await show(range);

  try {
    if (!prediction) {
      prediction = await post('/predictions', { symbol, horizon_days: 5 });
      predictions.set(symbol, prediction);
    }
    if (!current()) return;
    drawPrediction(forecastBox, evalBox, prediction);
    draw();
  } catch (err) {
    if (current()) { fill(forecastBox); showError(forecastBox.appendChild(errorLine()), err); }
  }
}

function dl(rows) {
  return h('dl', { class: 'stats eval' }, rows.map(([label, value, key]) => h('div', {}, h('dt', {}, label), h('dd', { 'data-field': key }, value))));
}

function drawPrediction(forecastBox, evalBox, p) {
  const i = p.interval;
  fill(forecastBox,
    h('p', {}, `In ${p.horizon_days} trading days: `, h('strong', {}, fmtMoney(p.predicted_close)),
      ` (${p.direction === 'up' ? 'up' : 'down'} ${fmtPct(Number(p.predicted_return) * 100)} from ${fmtMoney(p.last_close)}).`),
    h('p', {}, `${Math.round(Number(i.level) * 100)} % interval: `, h('span', { 'data-field': 'interval' }, `${fmtMoney(i.low)} – ${fmtMoney(i.high)}`),
      `. Probability of a rise: ${fmtRatio(p.probability_up)}.`),
    h('p', { class: 'meta' }, `Model: ${p.model.kind}, trained on ${p.model.samples} days (${p.model.trained_from} to ${p.model.trained_to}).`));
  const e = p.evaluation;
  const beats = Number(e.directional_accuracy) > Number(e.baseline_directional_accuracy);
  const closer = Number(e.mae) < Number(e.baseline_mae);
  fill(evalBox,
    h('p', { class: 'verdict', id: 'verdict' },
      beats && closer ? 'The model beat the naive baseline on both direction and error.'
        : !beats && !closer ? 'The model did not beat the naive baseline: treat this forecast with caution.'
          : `The model beat the naive baseline on ${beats ? 'direction' : 'error'} only.`),
    dl([
      ['Directional accuracy', fmtRatio(e.directional_accuracy), 'directional_accuracy'],
      ['Baseline direction', fmtRatio(e.baseline_directional_accuracy), 'baseline_directional_accuracy'],
      ['Mean absolute error (return)', fmtRatio(e.mae), 'mae'],
      ['Baseline error', fmtRatio(e.baseline_mae), 'baseline_mae'],
      ['Interval coverage', fmtRatio(e.interval_coverage), 'interval_coverage'],
      ['Folds', String(e.folds), 'folds'],
    ]),
    h('p', { class: 'meta' }, `Walk-forward over ${e.folds} folds: each fold trains on earlier days only and is scored on later days it never saw. `
      + 'Baselines: the training window’s majority direction, and a zero-return forecast for the error (errors are in return, e.g. 2 % = 0.02).'));
  for (const dd of evalBox.querySelectorAll('dd[data-field]')) {
    const v = e[dd.dataset.field];
    dd.dataset.value = String(v);
  }
}
