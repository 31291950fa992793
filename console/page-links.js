// The pages mailed links open (#/verify-email/TOKEN, #/reset-password/TOKEN,
// #/confirm-email/TOKEN, #/cancel-email-change/TOKEN) and "forgot password".
// A link acts only on a click: a mail scanner that opens it does nothing.
// The token stays in the URL's fragment, which is never sent to a server.

import { post } from './api.js';
import { errorLine, field, fill, h, onSubmit, title } from './ui.js';
import { strengthMeter } from './page-auth.js';

/** One button that spends the token; then `done(answer)` in its place. */
function confirmCard(root, heading, text, button, path, token, done) {
  const line = errorLine();
  const form = h('form', { class: 'card' }, h('p', {}, text), line,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, button)));
  fill(root, h('section', { class: 'narrow' }, title(heading), form));
  onSubmit(form, line, async () => {
    const answer = await post(path, { token });
    fill(form, h('p', { role: 'status' }, done(answer)), h('p', {}, h('a', { href: '#/signin' }, 'Go to sign in')));
  });
}

export async function verifyEmailPage(root, [token = '']) {
  confirmCard(root, 'Confirm your address', 'Confirm that this address is yours.', 'Confirm my address',
    '/auth/verify-email', token, (a) => `${a.email} is confirmed.`);
}

export async function confirmEmailPage(root, [token = '']) {
  confirmCard(root, 'Confirm your new address', 'Move your account to this address.', 'Confirm the new address',
    '/auth/confirm-email', token, (a) => `Your account now uses ${a.email}.`);
}

export async function cancelEmailChangePage(root, [token = '']) {
  confirmCard(root, 'Cancel the email change',
    'Keep this address for your account, and sign out every session: whoever asked for the change knew your password.',
    'Cancel the change', '/auth/cancel-email-change', token,
    (a) => `Cancelled: your account uses ${a.email}. Every session was signed out; change your password now.`);
}

export async function resetPasswordPage(root, [token = '']) {
  const line = errorLine();
  const password = h('input', { id: 'reset-password', name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 12 });
  const form = h('form', { class: 'card' },
    h('div', { class: 'field' }, h('label', { for: 'reset-password' }, 'New password'), password),
    strengthMeter(password, () => ''),
    field('Two-factor code (only if 2FA is on)', { name: 'code', autocomplete: 'one-time-code', id: 'reset-code' },
      'A code from your authenticator app, or one of your backup codes.'),
    line,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Set the new password')));
  fill(root, h('section', { class: 'narrow' }, title('Choose a new password'), form));
  onSubmit(form, line, async (data) => {
    const body = { token, new_password: data.get('new_password') };
    const code = String(data.get('code') || '').trim();
    if (code) body.code = code;
    const answer = await post('/auth/password-reset/confirm', body);
    fill(form, h('p', { role: 'status' }, `Your password is set; ${answer.sessions_ended} session(s) were signed out.`),
      h('p', {}, h('a', { href: '#/signin' }, 'Sign in')));
  });
}

export async function forgotPage(root) {
  const line = errorLine();
  const form = h('form', { class: 'card' },
    field('Email', { name: 'email', type: 'email', autocomplete: 'username', required: true }),
    line,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Mail me a reset link')));
  fill(root, h('section', { class: 'narrow' }, title('Forgot your password?'), form,
    h('p', {}, h('a', { href: '#/signin' }, 'Back to sign in'))));
  onSubmit(form, line, async (data) => {
    const answer = await post('/auth/password-reset/request', { email: data.get('email') });
    fill(form, h('p', { role: 'status' }, `${answer.detail[0].toUpperCase()}${answer.detail.slice(1)}. The link works for 30 minutes.`));
  });
}
