// The console's shell: who is signed in, the navigation, and a hash router
// (#/portfolio, #/asset/SPY, ...) that draws one page at a time into <main>.

import { api, ensureCsrf, forget, get, mayHaveSession, post, resume, whenSessionEnds } from './api.js';
import { explain, fill, notify } from './ui.js';
import { registerPage, signInPage } from './page-auth.js';
import { portfolioPage } from './page-portfolio.js';
import { assetPage } from './page-asset.js';
import { newsPage } from './page-news.js';
import { securityPage } from './page-security.js';
import { adminPage } from './page-admin.js';
import { cancelEmailChangePage, confirmEmailPage, forgotPage, resetPasswordPage, verifyEmailPage } from './page-links.js';

/** The signed-in user (`GET /me`), or null. */
export const session = { user: null };

const pages = {
  signin: { draw: signInPage, open: true },
  register: { draw: registerPage, open: true },
  portfolio: { draw: portfolioPage },
  asset: { draw: assetPage },
  news: { draw: newsPage },
  security: { draw: securityPage },
  admin: { draw: adminPage, admin: true },
  // Opened from mailed links, signed in or not.
  forgot: { draw: forgotPage, open: true },
  'verify-email': { draw: verifyEmailPage, any: true },
  'reset-password': { draw: resetPasswordPage, any: true },
  'confirm-email': { draw: confirmEmailPage, any: true },
  'cancel-email-change': { draw: cancelEmailChangePage, any: true },
};

const main = () => document.getElementById('main');

function showUser() {
  const user = session.user;
  document.getElementById('nav').hidden = !user;
  document.getElementById('who').hidden = !user;
  document.getElementById('nav-admin').hidden = !(user && user.role === 'admin');
  fill(document.getElementById('who-email'), user ? user.email : '');
}

/** Called by the sign-in and register pages once a session exists. */
export async function signedIn(user) {
  session.user = user || await get('/me');
  showUser();
  notify('');
  if (location.hash === '#/portfolio') route(); else location.hash = '#/portfolio';
}

/** Forgets the session in this tab and shows the sign-in page. */
export function signedOut(message) {
  session.user = null;
  forget();
  showUser();
  notify(message || '');
  if (location.hash === '#/signin') route(); else location.hash = '#/signin';
}

let drawing = 0;
let drawn = false;
async function route() {
  if (location.hash === '#main') return; // the skip link, not a page
  const [name = 'portfolio', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  let page = pages[name];
  if (!page || (!page.open && !page.any && !session.user) || (page.admin && session.user?.role !== 'admin')) {
    if (!session.user) { if (!page?.open) location.hash = '#/signin'; return; }
    page = pages.portfolio;
  }
  if (page.open && session.user) { location.hash = '#/portfolio'; return; }
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const mine = ++drawing;
  const root = fill(main());
  root.setAttribute('aria-busy', 'true');
  try {
    await page.draw(root, rest.map(decodeURIComponent), () => mine === drawing);
  } catch (err) {
    if (mine === drawing) notify(err.message);
  }
  if (mine === drawing) {
    root.removeAttribute('aria-busy');
    // After a page change, focus moves to its heading (screen readers
    // announce it); the first page keeps the document's start, where the
    // skip link is the first tab stop.
    const heading = document.getElementById('page-title');
    document.title = heading ? `${heading.textContent} – fortfolio` : 'fortfolio';
    if (heading && drawn) heading.focus({ preventScroll: true });
    drawn = true;
  }
}

async function boot() {
  whenSessionEnds((message) => signedOut(message));
  await ensureCsrf();
  try {
    // A visitor who never signed in here is not asked about (no 401 noise).
    session.user = mayHaveSession() ? await api('GET', '/me') : null;
    if (session.user) resume();
  } catch (err) {
    session.user = null;
    // Only a refusal ends the session; an unreachable server does not.
    if (err.status === 401 || err.status === 403) forget(); else notify(explain(err));
  }
  showUser();
  document.querySelector('.skip').addEventListener('click', (e) => {
    e.preventDefault();
    main().focus();
  });
  document.getElementById('sign-out').addEventListener('click', async () => {
    try {
      await post('/auth/logout');
    } catch (err) {
      // 401: the session was already gone. Anything else: still signed in.
      if (err.status !== 401) { notify(`Not signed out: ${explain(err)}`); return; }
    }
    signedOut('You are signed out.');
  });
  window.addEventListener('hashchange', route);
  if (!location.hash) location.hash = session.user ? '#/portfolio' : '#/signin';
  else route();
}

boot();
