// Security settings: two-factor authentication (QR code, backup codes to
// print or download), password change, sessions, devices, and the account's
// security-event timeline.

import { del, get, post } from './api.js';
import { strengthMeter } from './page-auth.js';
import { errorLine, explain, field, fill, fmtTime, h, notify, onSubmit, showError, table, title } from './ui.js';
import { session, signedOut } from './app.js';

export async function securityPage(root, _args, current) {
  const twoFactor = h('section', { class: 'card', 'aria-labelledby': 'tf-h', id: 'two-factor' });
  const sessions = h('div', { class: 'slot', id: 'sessions' });
  const devices = h('div', { class: 'slot', id: 'devices' });
  const events = h('ol', { class: 'timeline', id: 'events' });
  fill(root, title('Security'),
    twoFactor,
    passwordForm(),
    h('section', { class: 'card', 'aria-labelledby': 'ss-h' }, h('h2', { id: 'ss-h', tabindex: '-1' }, 'Sessions'), sessions,
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'danger', id: 'logout-all', onclick: logoutAll }, 'Sign out everywhere'))),
    h('section', { class: 'card', 'aria-labelledby': 'dv-h' }, h('h2', { id: 'dv-h', tabindex: '-1' }, 'Devices'), devices),
    h('section', { class: 'card', 'aria-labelledby': 'ev-h' }, h('h2', { id: 'ev-h' }, 'Security events'), events));

  // Drawn at once from what the shell knows, so nothing below moves.
  const known = Boolean(session.user && session.user.two_factor_enabled);
  drawTwoFactor(twoFactor, known);
  const me = await get('/me');
  if (!current()) return;
  session.user = me;
  if (me.two_factor_enabled !== known) drawTwoFactor(twoFactor, me.two_factor_enabled);
  await Promise.all([drawSessions(sessions, current), drawDevices(devices, current), drawEvents(events, current)]);
}

function drawTwoFactor(box, enabled) {
  if (session.user) session.user.two_factor_enabled = enabled;
  const heading = h('h2', { id: 'tf-h' }, 'Two-factor authentication');
  const line = errorLine();
  if (enabled) {
    const form = h('form', { id: 'disable-2fa' },
      h('p', {}, h('strong', {}, 'On.'), ' Signing in asks for a code from your authenticator app.'),
      h('div', { class: 'row' },
        field('Current password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
        field('Code or backup code', { name: 'code', autocomplete: 'one-time-code', required: true })),
      line, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, 'Turn off 2FA')));
    onSubmit(form, line, async (d) => {
      await post('/auth/2fa/disable', { password: d.get('password'), code: String(d.get('code')).trim() });
      notify('Two-factor authentication is off.');
      drawTwoFactor(box, false);
    });
    return fill(box, heading, form);
  }
  const form = h('form', { id: 'enable-2fa' },
    h('p', {}, h('strong', {}, 'Off.'), ' Add a second step to signing in: a code from an authenticator app.'),
    field('Current password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, id: 'enable-password' }),
    line, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Set up 2FA')));
  onSubmit(form, line, async (d) => {
    const e = await post('/auth/2fa/enable', { password: d.get('password') });
    fill(box, heading, enrol(box, e));
    box.querySelector('#verify-code').focus();
  });
  return fill(box, heading, form);
}

/** Step two: scan, type a code, receive the backup codes. */
function enrol(box, e) {
  const line = errorLine();
  const form = h('form', { id: 'verify-2fa' },
    h('p', {}, 'Scan this QR code with your authenticator app, then type the code it shows.'),
    h('img', { src: e.qr_png, alt: 'QR code holding the 2FA secret for your authenticator app', class: 'qr', id: 'qr', width: 192, height: 192 }),
    h('p', {}, 'Or enter this key by hand: ', h('code', { class: 'secret', id: 'secret' }, e.secret)),
    field('Code from the app', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true, id: 'verify-code' }),
    line, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Turn on 2FA')));
  onSubmit(form, line, async (d) => {
    const r = await post('/auth/2fa/verify', { code: String(d.get('code')).trim() });
    fill(box, h('h2', { id: 'tf-h' }, 'Two-factor authentication'), backupCodes(box, r.backup_codes));
    box.querySelector('#codes-h').focus();
  });
  return form;
}

function backupCodes(box, codes) {
  const text = `fortfolio backup codes for ${session.user ? session.user.email : 'your account'}\n`
    + `Each works once, in place of an authenticator code.\n\n${codes.join('\n')}\n`;
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  return h('div', {},
    h('p', { class: 'ok' }, h('strong', {}, 'On.'), ' Two-factor authentication is active.'),
    h('div', { class: 'printable' },
      h('h3', { id: 'codes-h', tabindex: '-1' }, 'Your backup codes'),
      h('p', {}, 'Keep them somewhere safe: each signs you in once if you lose your phone. They are shown only now.'),
      h('ol', { class: 'codes', id: 'backup-codes' }, codes.map((c) => h('li', {}, c)))),
    h('div', { class: 'actions no-print' },
      h('a', { href: url, download: 'fortfolio-backup-codes.txt', class: 'secondary', id: 'download-codes' }, 'Download'),
      h('button', { type: 'button', class: 'secondary', onclick: () => window.print() }, 'Print'),
      h('button', { type: 'button', onclick: () => { URL.revokeObjectURL(url); drawTwoFactor(box, true); } }, 'I saved them')));
}

function passwordForm() {
  const line = errorLine();
  const next = h('input', { id: 'new-password', name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 12 });
  const form = h('form', { class: 'card', 'aria-labelledby': 'pw-h', id: 'change-password' },
    h('h2', { id: 'pw-h' }, 'Change password'),
    field('Current password', { name: 'current_password', type: 'password', autocomplete: 'current-password', required: true }),
    h('div', { class: 'field' }, h('label', { for: 'new-password' }, 'New password'), next),
    strengthMeter(next, () => (session.user ? session.user.email : ''), () => (session.user && session.user.full_name) || ''),
    line, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Change password')));
  onSubmit(form, line, async (d) => {
    const r = await post('/me/password', { current_password: d.get('current_password'), new_password: d.get('new_password') });
    form.reset();
    notify(`Password changed; ${r.sessions_ended} other session${r.sessions_ended === 1 ? '' : 's'} signed out.`);
  });
  return form;
}

/** A row's button that removes what the row shows; a problem goes in `line`. */
function removeButton(label, cls, ariaLabel, line, remove) {
  return h('button', {
    type: 'button', class: cls, 'aria-label': ariaLabel,
    onclick: async () => { try { await remove(); } catch (err) { showError(line, err); } },
  }, label);
}

async function drawSessions(box, current) {
  const line = errorLine();
  const page = await get('/me/sessions?limit=100');
  if (!current()) return;
  fill(box, table(null, [{ label: 'Started' }, { label: 'Last used' }, { label: 'Address' }, { label: 'Browser' }, { label: 'Action', hidden: true }],
    page.items.map((s) => [fmtTime(s.created_at), fmtTime(s.last_used_at), s.ip, s.user_agent,
      s.current ? h('strong', {}, 'This browser')
        : removeButton('Revoke', 'danger', `Revoke the session started ${fmtTime(s.created_at)} from ${s.ip}`, line, async () => {
          await del(`/me/sessions/${encodeURIComponent(s.id)}`);
          notify('Session revoked.');
          await drawSessions(box, current);
          document.getElementById('ss-h').focus();
        })]),
  (i) => ({ 'data-id': page.items[i].id, 'data-current': String(page.items[i].current) })), line);
}

async function drawDevices(box, current) {
  const line = errorLine();
  const page = await get('/me/devices?limit=100');
  if (!current()) return;
  fill(box, page.items.length ? table(null, [{ label: 'Browser' }, { label: 'Network' }, { label: 'First seen' }, { label: 'Last seen' }, { label: 'Action', hidden: true }],
    page.items.map((d) => [d.user_agent, d.ip_network, fmtTime(d.first_seen), fmtTime(d.last_seen),
      d.current ? h('strong', {}, 'This device')
        : removeButton('Forget', 'secondary', `Forget the device last seen ${fmtTime(d.last_seen)}`, line, async () => {
          await del(`/me/devices/${encodeURIComponent(d.id)}`);
          notify('Device forgotten.');
          await drawDevices(box, current);
          document.getElementById('dv-h').focus();
        })])) : h('p', { class: 'empty' }, 'No devices yet.'), line);
}

async function drawEvents(list, current) {
  const page = await get('/me/security-events?limit=50');
  if (!current()) return;
  fill(list, page.items.map((e) => h('li', { 'data-event': e.event },
    h('strong', {}, e.event.replaceAll('_', ' ')), ` · ${e.outcome} · ${fmtTime(e.timestamp)}`,
    e.ip ? ` · ${e.ip}` : '', e.details && e.details.by === 'admin_api' ? ` · by admin ${e.details.actor}` : '')));
  if (!page.items.length) list.append(h('li', { class: 'empty' }, 'No events yet.'));
}

async function logoutAll() {
  try {
    await post('/auth/logout-all');
  } catch (err) {
    if (err.status !== 401) { notify(`Not signed out: ${explain(err)}`); return; }
  }
  signedOut('Every session of this account is signed out.');
}
