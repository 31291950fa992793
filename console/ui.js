// DOM building and formatting shared by the pages. Text only ever goes in
// as text nodes: nothing from the API is parsed as HTML.

/** h('p', {class: 'x'}, 'text', child) → an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let fieldIds = 0;
/** A labelled input (or select) with an optional hint. */
export function field(label, attrs = {}, hint) {
  const id = attrs.id || `f${++fieldIds}`;
  const hintId = hint ? `${id}-hint` : null;
  const control = attrs.options
    ? h('select', { id, name: attrs.name, 'aria-describedby': hintId },
      attrs.options.map(([value, text]) => h('option', { value }, text)))
    : h('input', { ...attrs, id, 'aria-describedby': hintId });
  return h('div', { class: 'field' }, h('label', { for: id }, label), control,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
}

const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const qty = new Intl.NumberFormat('en-US', { maximumFractionDigits: 8 });

/** A decimal string of the API, shown with two places. */
export const fmtMoney = (s) => (s === null || s === undefined ? '–' : money.format(Number(s)));
export const fmtQty = (s) => qty.format(Number(s));
export const fmtPct = (s) => (s === null || s === undefined ? '–' : `${Number(s).toFixed(2)} %`);
export const fmtRatio = (x) => (x === null || x === undefined ? '–' : `${(Number(x) * 100).toFixed(1)} %`);
export const fmtTime = (t) => (t ? new Date(t).toLocaleString() : '–');

/** `gain` or `loss` for a signed amount. */
export const sign = (s) => (Number(s) > 0 ? 'gain' : Number(s) < 0 ? 'loss' : '');

function wait(seconds) {
  if (seconds < 90) return `${Math.ceil(seconds)} s`;
  return `${Math.ceil(seconds / 60)} min`;
}

/** A problem in words: its detail, and how long to wait on 429 and 423. */
export function explain(err) {
  if (!err || typeof err.status !== 'number') return String((err && err.message) || err);
  let text = err.message;
  if (err.status === 429 && err.retryAfter) text += ` Try again in ${wait(err.retryAfter)}.`;
  if (err.status === 423) {
    const until = err.body && err.body.locked_until ? new Date(err.body.locked_until) : null;
    const secs = until ? (until - Date.now()) / 1000 : err.retryAfter;
    if (secs && secs > 0) text += ` Try again in ${wait(secs)}${until ? ` (at ${until.toLocaleTimeString()})` : ''}.`;
  }
  if (err.status === 401 && err.body && Number.isInteger(err.body.attempts_remaining)) {
    text += ` ${err.body.attempts_remaining} attempt${err.body.attempts_remaining === 1 ? '' : 's'} left before the account locks.`;
  }
  if (err.body && Array.isArray(err.body.suggestions) && err.body.suggestions.length) {
    text += ` ${err.body.suggestions.join(' ')}`;
  }
  return text;
}

/** An error line under a form; empty until something goes wrong. */
export function errorLine() {
  return h('p', { class: 'error', role: 'alert' });
}

export function showError(line, err) {
  fill(line, err ? explain(err) : '');
}

let noticeTimer = null;
/** The page's notice bar (role=status); it clears itself after 10 s. */
export function notify(text) {
  const bar = document.getElementById('notice');
  fill(bar, text ? h('p', {}, text) : '');
  clearTimeout(noticeTimer);
  if (text) noticeTimer = setTimeout(() => fill(bar), 10000);
}

/**
 * Runs `work` for a form submit with its submit button disabled, so a
 * double click sends one request; shows a problem in `line`.
 */
export function onSubmit(form, line, work) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    if (button && button.disabled) return;
    if (button) button.disabled = true;
    showError(line, null);
    try {
      await work(new FormData(form));
    } catch (err) {
      showError(line, err);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/**
 * A table: columns [{label, num?, hidden?}] (a hidden label is read by
 * screen readers only), rows of cells (node or text).
 */
export function table(caption, columns, rows, rowAttrs = () => ({})) {
  // Focusable, so a keyboard can scroll a table wider than a phone.
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption || `Table: ${columns.filter((c) => !c.hidden).map((c) => c.label).join(', ')}` },
    h('table', {},
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null },
        c.hidden ? h('span', { class: 'sr-only' }, c.label) : c.label)))),
      h('tbody', {}, rows.map((cells, i) => h('tr', rowAttrs(i),
        cells.map((cell, j) => h('td', { class: columns[j].num ? 'num' : null }, cell)))))));
}

/** A page heading that takes focus when the page changes. */
export function title(text) {
  return h('h1', { tabindex: '-1', id: 'page-title' }, text);
}

/**
 * A modal dialog. On submit it runs `act(FormData)`: a problem is shown in
 * the dialog, which stays open; success closes it. Resolves true when `act`
 * succeeded, false when cancelled.
 */
export function ask(heading, fields, submitLabel, explainText, act = async () => {}) {
  return new Promise((resolve) => {
    const line = errorLine();
    const form = h('form', { method: 'dialog' },
      h('h2', {}, heading), explainText ? h('p', {}, explainText) : null, fields, line,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', value: 'ok' }, submitLabel),
        h('button', { type: 'button', class: 'secondary', onclick: () => { dialog.close(); } }, 'Cancel')));
    const dialog = h('dialog', { 'aria-label': heading }, form);
    const opener = document.activeElement;
    let done = false;
    onSubmit(form, line, async (data) => {
      await act(data);
      done = true;
      dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(done);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
