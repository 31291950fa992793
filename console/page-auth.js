// Sign in (password, then a TOTP or backup code when 2FA is on) and
// register (with the API's password advice while typing).

import { post, started } from './api.js';
import { errorLine, field, fill, h, notify, onSubmit, title } from './ui.js';
import { signedIn } from './app.js';

/** A login, 2FA or register answer: the session starts here. */
async function enter(answer) {
  started(answer.expires_in);
  await signedIn(answer.user);
}

export async function signInPage(root) {
  const line = errorLine();
  const form = h('form', { class: 'card', 'aria-labelledby': 'page-title' },
    field('Email', { name: 'email', type: 'email', autocomplete: 'username', required: true }),
    field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    line,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')));
  const box = h('div', {}, form, h('p', {}, 'New here? ', h('a', { href: '#/register' }, 'Create an account')),
    h('p', {}, h('a', { href: '#/forgot' }, 'Forgot your password?')));
  fill(root, h('section', { class: 'narrow' }, title('Sign in'), box));
  onSubmit(form, line, async (data) => {
    const answer = await post('/auth/login', { email: data.get('email'), password: data.get('password') });
    if (answer.two_factor_required) {
      fill(box, challenge(answer.challenge_token));
      box.querySelector('input').focus();
      return;
    }
    await enter(answer);
  });
}

/** The second step: a TOTP code, or one of the backup codes. */
function challenge(token) {
  const line = errorLine();
  let backup = false;
  const input = h('input', {
    id: 'challenge-code', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code',
    required: true, 'aria-describedby': 'challenge-hint',
  });
  const label = h('label', { for: 'challenge-code' }, 'Code from your authenticator app');
  const hint = h('p', { class: 'hint', id: 'challenge-hint' }, 'Six digits; a new code every 30 seconds.');
  const toggle = h('button', { type: 'button', class: 'link', id: 'use-backup' }, 'Use a backup code instead');
  const form = h('form', { class: 'card' },
    h('h2', {}, 'Two-factor authentication'),
    h('div', { class: 'field' }, label, input, hint), line,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Verify'), toggle));
  toggle.addEventListener('click', () => {
    backup = !backup;
    fill(label, backup ? 'Backup code' : 'Code from your authenticator app');
    fill(hint, backup ? 'One of the codes you saved when you turned on 2FA; each works once.' : 'Six digits; a new code every 30 seconds.');
    fill(toggle, backup ? 'Use the authenticator app instead' : 'Use a backup code instead');
    input.setAttribute('inputmode', backup ? 'text' : 'numeric');
    input.value = '';
    input.focus();
  });
  onSubmit(form, line, async (data) => {
    const code = String(data.get('code')).trim();
    const answer = backup
      ? await post('/auth/2fa/backup-code', { challenge_token: token, backup_code: code })
      : await post('/auth/login/2fa', { challenge_token: token, code });
    await enter(answer);
    if (backup) notify(`Signed in with a backup code; ${answer.backup_codes_remaining} left.`);
  });
  return form;
}

/**
 * Password strength from `POST /auth/password-check` while the user types
 * (debounced); returns [the meter element, a function to call on input].
 */
export function strengthMeter(passwordInput, emailOf, nameOf = () => '', others = []) {
  const meter = h('div', { class: 'meter', 'data-score': '0', role: 'presentation' }, h('span'));
  const words = h('div', { class: 'feedback', id: `${passwordInput.id}-feedback`, 'aria-live': 'polite' });
  passwordInput.setAttribute('aria-describedby', words.id);
  let timer = null;
  let asked = 0;
  const check = () => {
    clearTimeout(timer);
    const password = passwordInput.value;
    if (!password) { ++asked; meter.dataset.score = '0'; fill(words); return; }
    timer = setTimeout(async () => {
      const mine = ++asked;
      try {
        // The name and email count as guessable words, as on submit.
        const body = { password };
        const email = emailOf().trim();
        const name = nameOf().trim();
        if (email) body.email = email;
        if (name) body.full_name = name;
        const v = await post('/auth/password-check', body);
        if (mine !== asked) return;
        meter.dataset.score = String(v.score);
        fill(words, v.acceptable
          ? h('span', { class: 'ok' }, `Strong enough (${v.score} of 4).`)
          : [`${v.reason} (${v.score} of 4).`, v.suggestions.length ? h('ul', {}, v.suggestions.map((t) => h('li', {}, t))) : null]);
      } catch (err) {
        if (mine === asked) fill(words, err.message);
      }
    }, 300);
  };
  passwordInput.addEventListener('input', check);
  for (const other of others) other.addEventListener('input', () => { if (passwordInput.value) check(); });
  return h('div', {}, meter, words);
}

export async function registerPage(root) {
  const line = errorLine();
  const password = h('input', { id: 'reg-password', name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 12 });
  const emailField = field('Email', { name: 'email', type: 'email', autocomplete: 'email', required: true, id: 'reg-email' });
  const nameField = field('Full name (optional)', { name: 'full_name', autocomplete: 'name', maxlength: 200, id: 'reg-name' });
  const [email, name] = [emailField.querySelector('input'), nameField.querySelector('input')];
  const form = h('form', { class: 'card' },
    emailField, nameField,
    h('div', { class: 'field' }, h('label', { for: 'reg-password' }, 'Password'), password),
    strengthMeter(password, () => email.value, () => name.value, [email, name]),
    line,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create account')));
  fill(root, h('section', { class: 'narrow' }, title('Create an account'), form,
    h('p', {}, 'Have an account? ', h('a', { href: '#/signin' }, 'Sign in'))));
  onSubmit(form, line, async (data) => {
    const body = { email: data.get('email'), password: data.get('password') };
    const name = String(data.get('full_name') || '').trim();
    if (name) body.full_name = name;
    const answer = await post('/auth/register', body);
    await enter(answer);
  });
}
