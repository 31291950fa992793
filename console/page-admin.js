// Administration (role admin only): server status, users with their
// actions, and security events of every account. Actions need a recent
// authentication; when the API asks for one, the console asks the admin for
// the password (or a 2FA code) and repeats the action.

import { get, post } from './api.js';
import { ask, errorLine, field, fill, fmtTime, h, notify, onSubmit, showError, table, title } from './ui.js';
import { session } from './app.js';

export async function adminPage(root, _args, current) {
  const status = h('dl', { class: 'stats', id: 'admin-status' });
  const users = h('div', { class: 'slot', id: 'admin-users' });
  const events = h('div', { class: 'slot', id: 'admin-events' });
  const usersLine = errorLine();
  const search = h('form', { class: 'row', id: 'user-search', role: 'search' },
    field('Find users by email', { name: 'q', type: 'search', id: 'user-q' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search')));
  const eventsLine = errorLine();
  const filter = h('form', { id: 'event-filter' },
    h('div', { class: 'row' },
      field('User (email or id)', { name: 'user', id: 'ev-user' }),
      field('Event type', { name: 'event', id: 'ev-type', placeholder: 'e.g. login_failure' }),
      field('Since', { name: 'since', id: 'ev-since', placeholder: '24h, 7d or a time' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show events')));
  fill(root, title('Administration'),
    h('section', { class: 'card', 'aria-labelledby': 'st-h' }, h('h2', { id: 'st-h' }, 'Server'), status),
    h('section', { class: 'card', 'aria-labelledby': 'us-h' }, h('h2', { id: 'us-h', tabindex: '-1' }, 'Users'), search, usersLine, users),
    h('section', { class: 'card', 'aria-labelledby': 'ae-h' }, h('h2', { id: 'ae-h' }, 'Security events'), filter, eventsLine, events));

  const s = await get('/admin/status');
  if (!current()) return;
  fill(status, [['Users', s.users], ['Active sessions', s.sessions_active], ['Mail outbox', s.outbox_depth],
    ['Storage', s.storage], ['State', s.state], ['Version', s.version]]
    .map(([l, v]) => h('div', {}, h('dt', {}, l), h('dd', {}, String(v)))));

  let query = '';
  const loadUsers = async () => {
    const page = await get(`/admin/users?limit=100${query ? `&q=${encodeURIComponent(query)}` : ''}`);
    if (!current()) return;
    fill(users, page.items.length ? table(null,
      [{ label: 'Email' }, { label: 'Role' }, { label: 'State' }, { label: '2FA' }, { label: 'Last sign-in' }, { label: 'Actions' }],
      page.items.map((u) => [u.email, u.role,
        u.disabled ? 'disabled' : u.locked ? `locked until ${fmtTime(u.locked_until)}` : 'active',
        u.two_factor_enabled ? 'on' : 'off', fmtTime(u.last_login_at), actions(u)]),
      (i) => ({ 'data-user': page.items[i].email, 'data-id': page.items[i].id }))
      : h('p', { class: 'empty' }, 'No user matches.'));
  };
  const act = async (u, path, body, done, warning) => {
    showError(usersLine, null);
    try {
      if (warning && !(await ask(`${done} ${u.email}?`, [], 'Yes', warning))) return;
      await withFreshAuth(() => post(`/admin/users/${encodeURIComponent(u.id)}/${path}`, body));
      notify(`Done: ${done.toLowerCase()} ${u.email}.`);
      await loadUsers();
      document.getElementById('us-h').focus();
    } catch (err) {
      showError(usersLine, err);
    }
  };
  const button = (label, cls, onclick, u) => h('button', { type: 'button', class: cls, 'data-action': label.toLowerCase().replaceAll(' ', '-'), 'aria-label': `${label} ${u.email}`, onclick }, label);
  const actions = (u) => {
    const self = session.user && session.user.id === u.id;
    return h('div', { class: 'actions' },
      self ? h('span', { class: 'muted' }, 'you') : [
        u.disabled
          ? button('Enable', 'secondary', () => act(u, 'enable', {}, 'Enable'), u)
          : button('Disable', 'danger', () => act(u, 'disable', {}, 'Disable',
            'Every session ends at once and the account cannot sign in until enabled again.'), u),
        u.locked ? button('Unlock', 'secondary', () => act(u, 'unlock', {}, 'Unlock'), u) : null,
        u.two_factor_enabled ? button('Reset 2FA', 'danger', () => act(u, 'reset-2fa', {}, 'Turn 2FA off for',
          'Signing in will ask for the password only, until they set up 2FA again.'), u) : null,
        button('Revoke sessions', 'secondary', () => act(u, 'revoke-sessions', {}, 'End the sessions of',
          'Every browser and client of this account is signed out.'), u),
        button(u.role === 'admin' ? 'Make user' : 'Make admin', 'secondary',
          () => act(u, 'role', { role: u.role === 'admin' ? 'user' : 'admin' }, 'Change the role of',
            u.role === 'admin' ? 'They lose the admin section and API at their next request.' : 'They gain every admin power, this one included.'), u),
      ]);
  };
  onSubmit(search, usersLine, async (d) => { query = String(d.get('q')).trim(); await loadUsers(); });

  const loadEvents = async (d) => {
    const q = new URLSearchParams({ limit: '50' });
    for (const k of ['user', 'event', 'since']) {
      const v = d ? String(d.get(k) || '').trim() : '';
      if (v) q.set(k, v);
    }
    const page = await get(`/admin/security-events?${q}`);
    if (!current()) return;
    fill(events, page.items.length ? table(null, [{ label: 'When' }, { label: 'Event' }, { label: 'Outcome' }, { label: 'Account' }, { label: 'Address' }, { label: 'Details' }],
      page.items.map((e) => [fmtTime(e.timestamp), e.event, e.outcome, e.email || '–', e.ip || '–',
        e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : '']),
      (i) => ({ 'data-event': page.items[i].event, 'data-email': page.items[i].email || '' }))
      : h('p', { class: 'empty' }, 'No events match.'));
  };
  onSubmit(filter, eventsLine, loadEvents);
  await Promise.all([loadUsers().catch((e) => showError(usersLine, e)), loadEvents().catch((e) => showError(eventsLine, e))]);
}

/**
 * Runs `action`; if the API wants a fresh authentication, asks for the
 * password or a 2FA code (a wrong one is shown in the dialog), records it,
 * and runs the action once more.
 */
async function withFreshAuth(action) {
  try {
    return await action();
  } catch (err) {
    if (err.code !== 'reauthentication_required') throw err;
  }
  const confirmed = await ask('Confirm it is you',
    [field('Password, or a code from your authenticator app', { name: 'secret', type: 'password', autocomplete: 'current-password', required: true, id: 'reauth-secret' })],
    'Confirm', 'Admin actions need a sign-in from the last 10 minutes.',
    async (answer) => {
      const secret = String(answer.get('secret'));
      // A password has at least 12 characters: six digits are a TOTP code.
      await post('/auth/reauthenticate', /^\d{6}$/.test(secret.trim()) ? { code: secret.trim() } : { password: secret });
    });
  if (!confirmed) throw new Error('Cancelled: the action needs a fresh authentication.');
  return action();
}
