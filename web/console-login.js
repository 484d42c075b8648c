/* console-login: the sign-in page. Name and password first; when the
 * administrator's MFA is on, the server answers that a code is needed
 * (X-Coffer-MFA: required) and the page asks for it, keeping the password
 * in memory only until the code is sent. */
import { byId, message, show } from './dom.js';
import { createSession } from './console-api.js';
import { setTitle } from './console-brand.js';

let onSignedIn = null;
let pending = null; // { user, password } while the code is asked for

function passwordStep() {
  pending = null;
  show(byId('password-step'), true);
  show(byId('totp-step'), false);
  show(byId('login-back'), false);
  byId('login-totp').required = false;
  byId('login-submit').textContent = 'Sign in';
}

function codeStep(user, password) {
  pending = { user, password };
  show(byId('password-step'), false);
  show(byId('totp-step'), true);
  show(byId('login-back'), true);
  byId('login-totp').required = true;
  byId('login-totp').value = '';
  byId('login-submit').textContent = 'Verify';
  byId('login-totp').focus();
}

async function submit(ev) {
  ev.preventDefault();
  const error = byId('login-error');
  message(error, '');
  const user = pending ? pending.user : byId('login-user').value.trim();
  const password = pending ? pending.password : byId('login-password').value;
  const code = pending ? byId('login-totp').value.replace(/\s+/g, '') : '';
  if (!user || !password) {
    message(error, 'Enter your administrator name and password.', true);
    return;
  }
  if (pending && !/^[0-9]{6,8}$/.test(code)) {
    message(error, 'Enter the 6-digit code from your authenticator app.', true);
    return;
  }
  const button = byId('login-submit');
  button.disabled = true;
  try {
    const r = await createSession(user, password, code);
    if (r.ok) {
      byId('login-password').value = '';
      byId('login-totp').value = '';
      passwordStep();
      message(byId('login-notice'), '');
      onSignedIn(r.session);
    } else if (r.mfa && !pending) {
      codeStep(user, password);
    } else {
      message(error, r.error || 'The code is wrong or expired.', true);
    }
  } finally {
    button.disabled = false;
  }
}

export function initLogin(signedIn) {
  onSignedIn = signedIn;
  byId('login-form').addEventListener('submit', submit);
  byId('login-back').addEventListener('click', () => {
    passwordStep();
    message(byId('login-error'), '');
  });
}

/* notice: why the page shows (a session that ended), or nothing. */
export const loginPage = {
  enter() {
    setTitle('Sign in');
    show(byId('app-view'), false);
    show(byId('login-view'), true);
    passwordStep();
    (byId('login-user').value ? byId('login-password') : byId('login-user')).focus();
  },
  leave() {
    show(byId('login-view'), false);
  },
};

export function loginNotice(text) {
  message(byId('login-notice'), text);
}
