// Hand-drawn SVG charts: a price line with a forecast band, and an
// allocation donut. Colours come from the stylesheet (classes), so the
// strict CSP needs no inline style, and dark mode applies.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function svg(label, w, h, cls) {
  const root = s('svg', { viewBox: `0 0 ${w} ${h}`, class: cls, role: 'img', 'aria-label': label });
  root.append(s('title', {}, label));
  return root;
}

const fmt = (x) => (Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(2));

/**
 * A close-price line over `points` [{date, close}], and, when `forecast`
 * {low, high, mid, steps} is given, the band from the last close to the
 * forecast `steps` trading days later.
 */
export function priceChart(label, points, forecast) {
  const W = 640, H = 320, L = 56, R = 12, T = 12, B = 28;
  const root = svg(label, W, H, 'chart');
  if (!points.length) return root;
  const closes = points.map((p) => Number(p.close));
  const steps = forecast ? forecast.steps : 0;
  let lo = Math.min(...closes), hi = Math.max(...closes);
  if (forecast) { lo = Math.min(lo, forecast.low); hi = Math.max(hi, forecast.high); }
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
  // The forecast gets at least an eighth of the width, so its band stays
  // visible over years of history (the axis says how many days it spans).
  const last = points.length - 1;
  const n = last + steps;
  const split = forecast ? Math.min(last / n, 7 / 8) : 1;
  const x = (i) => {
    const f = i <= last ? (last ? (i / last) * split : 0) : split + ((i - last) / steps) * (1 - split);
    return L + f * (W - L - R);
  };
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  root.append(s('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
  root.append(s('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  for (const v of [lo + pad, (lo + hi) / 2, hi - pad]) {
    root.append(s('text', { class: 'axis-label', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  root.append(s('text', { class: 'axis-label', x: L, y: H - 8 }, points[0].date));
  root.append(s('text', { class: 'axis-label', x: x(points.length - 1), y: H - 8, 'text-anchor': forecast ? 'middle' : 'end' },
    points[points.length - 1].date));
  const d = closes.map((c, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(c).toFixed(1)}`).join('');
  root.append(s('path', { class: 'line', d, 'data-points': points.length }));
  if (forecast) {
    const i1 = n, close = closes[last];
    const band = `M${x(last)},${y(close)} L${x(i1)},${y(forecast.high)} L${x(i1)},${y(forecast.low)} Z`;
    root.append(s('path', { class: 'band', d: band, 'data-low': forecast.low, 'data-high': forecast.high }));
    root.append(s('path', { class: 'forecast', d: `M${x(last)},${y(close)} L${x(i1)},${y(forecast.mid)}` }));
    root.append(s('circle', { class: 'forecast-dot', cx: x(i1), cy: y(forecast.mid), r: 3.5 }));
    root.append(s('text', { class: 'axis-label', x: W - R, y: H - 8, 'text-anchor': 'end' }, `+${steps} d`));
  }
  return root;
}

/** A donut of `items` [{label, value}] (values > 0), with slice i in class s{i % 8}. */
export function donut(label, items) {
  const root = svg(label, 100, 100, 'donut');
  const total = items.reduce((a, it) => a + it.value, 0);
  if (!(total > 0)) {
    root.append(s('circle', { cx: 50, cy: 50, r: 40, class: 'axis', fill: 'none', 'stroke-width': 16 }));
    return root;
  }
  let angle = -Math.PI / 2;
  items.forEach((it, i) => {
    const share = it.value / total;
    const a1 = angle + share * 2 * Math.PI;
    const cls = `s${i % 8}`;
    let el;
    if (share >= 0.9999) {
      el = s('path', { class: cls, d: 'M50,2 A48,48 0 1 1 49.99,2 Z M50,28 A22,22 0 1 0 50.01,28 Z', 'fill-rule': 'evenodd' });
    } else {
      const p = (r, a) => `${(50 + r * Math.cos(a)).toFixed(3)},${(50 + r * Math.sin(a)).toFixed(3)}`;
      const large = share > 0.5 ? 1 : 0;
      el = s('path', {
        class: cls,
        d: `M${p(48, angle)} A48,48 0 ${large} 1 ${p(48, a1)} L${p(22, a1)} A22,22 0 ${large} 0 ${p(22, angle)} Z`,
      });
    }
    el.setAttribute('data-symbol', it.label);
    el.setAttribute('data-value', it.raw ?? String(it.value));
    el.append(s('title', {}, `${it.label}: ${(share * 100).toFixed(1)} %`));
    root.append(el);
    angle = a1;
  });
  return root;
}
