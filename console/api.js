// The public JSON API in cookie mode. The session lives in HttpOnly cookies
// this script never sees; every state-changing request echoes the CSRF
// cookie in X-CSRF-Token; the access token is refreshed shortly before it
// expires, one tab at a time (a refresh token works once, and its reuse is
// taken for theft).

const BASE = '/api/v1';
const EXPIRY = 'fortfolio.access_expires_at';
const LIFETIME = 'fortfolio.access_lifetime';

/** An RFC 9457 problem the API answered, or a network failure. */
class Problem extends Error {
  constructor(status, body, headers) {
    super(body.detail || body.title || `The server answered ${status}.`);
    this.status = status;
    this.code = body.code || '';
    this.body = body;
    const wait = headers ? Number(headers.get('retry-after')) : NaN;
    this.retryAfter = Number.isFinite(wait) && wait > 0 ? wait : null;
  }
}

// Under TLS the server checks only the `__Host-` cookie, which no other
// origin can plant; a plain `fortfolio_csrf` there is ignored.
const CSRF_COOKIE = location.protocol === 'https:' ? '__Host-fortfolio_csrf' : 'fortfolio_csrf';

function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (part.slice(0, eq).trim() === CSRF_COOKIE) return part.slice(eq + 1).trim();
  }
  return '';
}

let onEnded = () => {};
/** Called when the session is gone (revoked, expired, account disabled, signed out in another tab). */
export function whenSessionEnds(f) { onEnded = f; }

/** Whether this tab believes it is signed in. */
let live = false;

function ended(message) {
  const was = live;
  forget();
  if (was) onEnded(message);
}

async function send(method, path, body, extra) {
  const headers = { Accept: 'application/json', ...extra };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    return await fetch(BASE + path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new Problem(0, { detail: 'The server cannot be reached. Check the connection and try again.' });
  }
}

async function read(resp) {
  if (resp.status === 204) return null;
  const text = await resp.text();
  let body = {};
  try { body = text ? JSON.parse(text) : {}; } catch { body = { detail: `The server answered ${resp.status}.` }; }
  if (!resp.ok) throw new Problem(resp.status, body, resp.headers);
  return body;
}

/**
 * One API call. An expired access token is refreshed and the call made
 * again once; if the session cannot be refreshed it has ended.
 */
export async function api(method, path, body, headers = {}) {
  const seen = localStorage.getItem(EXPIRY);
  let resp = await send(method, path, body, headers);
  if (resp.status === 401 && !path.startsWith('/auth/login') && path !== '/auth/register') {
    const problem = await resp.clone().json().catch(() => ({}));
    if (problem.code === 'unauthorized') {
      const renewed = await refresh(seen);
      if (renewed === null) {
        throw new Problem(503, { detail: 'The session could not be renewed just now. Try again in a moment.' });
      }
      if (renewed) resp = await send(method, path, body, headers);
      if (resp.status === 401) ended('Your session has ended. Please sign in again.');
    }
  }
  return read(resp);
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}, headers) => api('POST', path, body, headers);
export const del = (path) => api('DELETE', path);

let timer = null;

/** Remembers when the access token of a login or refresh expires. */
export function started(expiresIn) {
  live = true;
  localStorage.setItem(LIFETIME, String(expiresIn * 1000));
  localStorage.setItem(EXPIRY, String(Date.now() + expiresIn * 1000));
  arm();
}

export function forget() {
  live = false;
  clearTimeout(timer);
  localStorage.removeItem(EXPIRY);
  localStorage.removeItem(LIFETIME);
}

/** Resumes the refresh schedule of a session this tab finds on load. */
export function resume() {
  live = true;
  arm();
}

function arm() {
  clearTimeout(timer);
  const at = Number(localStorage.getItem(EXPIRY));
  if (!at) return;
  const seen = localStorage.getItem(EXPIRY);
  // A minute early, or a quarter of the lifetime when it is shorter.
  const early = Math.min(60000, (Number(localStorage.getItem(LIFETIME)) || 0) / 4);
  timer = setTimeout(() => { refresh(seen); }, Math.max(0, at - Date.now() - early));
}

// Another tab refreshed: follow its schedule; it signed out: so does this one.
window.addEventListener('storage', (e) => {
  if (e.key !== EXPIRY) return;
  if (e.newValue === null) ended('You are signed out.');
  else arm();
});

/**
 * Trades the refresh cookie for a new pair, unless another tab already did
 * since `seen` was read. True when the session goes on, false when the
 * server refused (the session has ended), null when it could not answer
 * now (network, 429, 5xx: try later).
 */
async function refresh(seen) {
  const run = async () => {
    if (localStorage.getItem(EXPIRY) !== seen && localStorage.getItem(EXPIRY)) { arm(); return true; }
    const resp = await send('POST', '/auth/refresh', undefined, {}).catch(() => null);
    if (!resp) return null;
    if (resp.status === 401 || resp.status === 403) return false;
    if (!resp.ok) return null;
    const pair = await resp.json();
    started(pair.expires_in);
    return true;
  };
  return navigator.locks ? navigator.locks.request('fortfolio-refresh', run) : run();
}

/** Whether this browser holds a session (it signed in and did not sign out). */
export function mayHaveSession() {
  return Boolean(localStorage.getItem(EXPIRY));
}

/** Makes sure a CSRF cookie exists before the first state-changing call. */
export async function ensureCsrf() {
  if (!csrfToken()) await send('GET', '/auth/csrf').catch(() => null);
}

/** A fresh idempotency key for one intended order. */
export function intentKey() {
  return crypto.randomUUID();
}
