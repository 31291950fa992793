// Positions, value, unrealized and realized P&L, allocation, and a buy/sell
// form whose Idempotency-Key makes a double click one order.

import { api, get, intentKey } from './api.js';
import { donut } from './charts.js';
import { errorLine, field, fill, fmtMoney, fmtPct, fmtQty, fmtTime, h, notify, onSubmit, sign, table, title } from './ui.js';

export async function portfolioPage(root, _args, current) {
  const stats = h('dl', { class: 'stats', id: 'totals' });
  const positions = h('div', { class: 'slot', id: 'positions' });
  const chart = h('div', { class: 'donut-box', id: 'allocation' });
  const history = h('div', { class: 'slot', id: 'transactions' });
  const asOf = h('p', { class: 'meta', id: 'as-of' }, '\u00a0');
  fill(root, title('Portfolio'), asOf,
    h('section', { class: 'card', 'aria-label': 'Totals' }, stats),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'alloc-h' }, h('h2', { id: 'alloc-h' }, 'Allocation'), chart),
      orderForm(() => load())),
    h('section', { class: 'card', 'aria-labelledby': 'pos-h' }, h('h2', { id: 'pos-h' }, 'Positions'), positions),
    h('section', { class: 'card', 'aria-labelledby': 'tx-h' }, h('h2', { id: 'tx-h' }, 'Recent orders'), history));
  placeholders(stats);

  async function load() {
    const [p, tx] = await Promise.all([get('/portfolio'), get('/portfolio/transactions?limit=20')]);
    if (!current()) return;
    fill(asOf, `Valued at the latest prices as of ${fmtTime(p.as_of)}.`);
    const t = p.totals;
    fill(stats,
      stat('Market value', t.market_value, 'market_value'),
      stat('Cost basis', t.cost_basis, 'cost_basis'),
      stat('Unrealized P&L', t.unrealized_pnl, 'unrealized_pnl', true),
      stat('Realized P&L', t.realized_pnl, 'realized_pnl', true));
    const cols = [
      { label: 'Symbol' }, { label: 'Quantity', num: true }, { label: 'Average cost', num: true },
      { label: 'Last price', num: true }, { label: 'Market value', num: true },
      { label: 'Unrealized P&L', num: true }, { label: '%', num: true },
    ];
    fill(positions, p.positions.length
      ? table(null, cols, p.positions.map((x) => [
        h('a', { href: `#/asset/${encodeURIComponent(x.symbol)}` }, x.symbol), fmtQty(x.quantity), fmtMoney(x.average_cost),
        fmtMoney(x.last_price), fmtMoney(x.market_value),
        h('span', { class: sign(x.unrealized_pnl) }, fmtMoney(x.unrealized_pnl)),
        h('span', { class: sign(x.unrealized_pnl) }, fmtPct(x.unrealized_pnl_pct)),
      ]), (i) => ({ 'data-symbol': p.positions[i].symbol, 'data-quantity': p.positions[i].quantity, 'data-market-value': p.positions[i].market_value }))
      : h('p', { class: 'empty' }, 'No positions yet. Buy something with the form.'));
    const slices = p.positions
      .filter((x) => Number(x.market_value) > 0)
      .map((x) => ({ label: x.symbol, value: Number(x.market_value), raw: x.market_value }));
    const total = slices.reduce((a, s) => a + s.value, 0);
    fill(chart, donut('Allocation by market value', slices),
      h('ul', { class: 'legend' }, slices.map((s, i) => h('li', {},
        h('span', { class: `swatch s${i % 8}`, 'aria-hidden': 'true' }),
        `${s.label} ${(s.value / total * 100).toFixed(1)} %`))));
    fill(history, tx.items.length
      ? table(null, [{ label: 'When' }, { label: 'Side' }, { label: 'Symbol' }, { label: 'Quantity', num: true },
        { label: 'Price', num: true }, { label: 'Fee', num: true }, { label: 'Total', num: true }],
      tx.items.map((x) => [fmtTime(x.executed_at), x.side, x.symbol, fmtQty(x.quantity), fmtMoney(x.price), fmtMoney(x.fee), fmtMoney(x.total)]),
      (i) => ({ 'data-id': tx.items[i].id }))
      : h('p', { class: 'empty' }, 'No orders yet.'));
  }
  await load();
}

function placeholders(stats) {
  fill(stats, ['Market value', 'Cost basis', 'Unrealized P&L', 'Realized P&L'].map((l) => h('div', {}, h('dt', {}, l), h('dd', {}, '…'))));
}

function stat(label, value, key, signed) {
  return h('div', {}, h('dt', {}, label), h('dd', { 'data-field': key, 'data-value': value, class: signed ? sign(value) : null }, fmtMoney(value)));
}

/** Buy or sell. One key per intended order: a repeat (double click, retry) returns the first answer. */
function orderForm(reload) {
  const line = errorLine();
  let key = intentKey();
  const form = h('form', { class: 'card', 'aria-labelledby': 'order-h', id: 'order' },
    h('h2', { id: 'order-h' }, 'Buy or sell'),
    h('div', { class: 'row' },
      field('Side', { name: 'side', options: [['buy', 'Buy'], ['sell', 'Sell']], id: 'order-side' }),
      field('Symbol', { name: 'symbol', required: true, autocapitalize: 'characters', id: 'order-symbol', maxlength: 15 })),
    h('div', { class: 'row' },
      field('Quantity', { name: 'quantity', required: true, inputmode: 'decimal', id: 'order-quantity' }),
      field('Price (optional)', { name: 'price', inputmode: 'decimal', id: 'order-price' }, 'Empty: the latest price.'),
      field('Fee (optional)', { name: 'fee', inputmode: 'decimal', id: 'order-fee' })),
    line,
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'order-submit' }, 'Place order')));
  onSubmit(form, line, async (data) => {
    const side = data.get('side') === 'sell' ? 'sell' : 'buy';
    const body = { symbol: String(data.get('symbol')).trim(), quantity: String(data.get('quantity')).trim() };
    for (const k of ['price', 'fee']) {
      const v = String(data.get(k) || '').trim();
      if (v) body[k] = v;
    }
    let answer;
    try {
      answer = await api('POST', `/portfolio/${side}`, body, { 'Idempotency-Key': key });
    } catch (err) {
      // A definite refusal (4xx) settles this order: the next one is new.
      // No answer, 429 or 5xx may hide an order that executed: a retry with
      // the same key gets that order's answer instead of a second order.
      if (err.status >= 400 && err.status < 500 && err.status !== 429) key = intentKey();
      throw err;
    }
    key = intentKey();
    const t = answer.transaction;
    notify(`${t.side === 'buy' ? 'Bought' : 'Sold'} ${fmtQty(t.quantity)} ${t.symbol} at ${fmtMoney(t.price)} (total ${fmtMoney(t.total)}).`);
    form.reset();
    await reload();
  });
  return form;
}
