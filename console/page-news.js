// News, newest first, filtered by symbol, with sentiment badges.

import { get } from './api.js';
import { errorLine, field, fill, fmtTime, h, showError, title } from './ui.js';

export async function newsPage(root, [symbolArg], current) {
  const symbol = (symbolArg || '').toUpperCase();
  const form = h('form', { class: 'row', id: 'news-filter' },
    field('Symbol', { name: 'symbol', id: 'news-symbol', value: symbol, maxlength: 15, autocapitalize: 'characters' }, 'Empty: every item.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Filter')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const s = String(new FormData(form).get('symbol')).trim();
    location.hash = s ? `#/news/${encodeURIComponent(s)}` : '#/news';
  });
  const items = h('ul', { class: 'news', id: 'news-items' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Show more');
  const line = errorLine();
  fill(root, title(symbol ? `News about ${symbol}` : 'News'), h('section', { class: 'card' }, form), line,
    h('section', { class: 'card', 'aria-label': 'Items' }, items, h('div', { class: 'actions' }, more)));

  let cursor = null;
  const load = async () => {
    if (more.disabled) return;
    more.disabled = true;
    const q = new URLSearchParams({ limit: '20' });
    if (symbol) q.set('symbol', symbol);
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await get(`/news?${q}`);
      if (!current()) return;
      if (!page.items.length && !cursor) items.append(h('li', { class: 'empty' }, 'No news for this filter.'));
      for (const n of page.items) items.append(item(n));
      cursor = page.next_cursor;
      if (!cursor && document.activeElement === more) items.lastElementChild?.querySelector('a')?.focus();
      more.hidden = !cursor;
    } catch (err) { showError(line, err); } finally { more.disabled = false; }
  };
  more.addEventListener('click', load);
  await load();
}

function item(n) {
  const s = n.sentiment;
  return h('li', { 'data-id': n.id },
    h('h2', {}, /^https?:\/\//.test(n.url)
      ? h('a', { href: n.url, rel: 'noopener noreferrer', target: '_blank' }, n.title)
      : n.title),
    h('p', { class: 'meta' }, `${n.source} · ${fmtTime(n.published_at)}`,
      n.symbols.length ? ` · ${n.symbols.join(', ')}` : '', ' · ',
      h('span', { class: `badge ${s.label}`, 'data-sentiment': s.label }, `${s.label} ${Number(s.score).toFixed(2)}`)),
    n.summary ? h('p', {}, n.summary) : null);
}
