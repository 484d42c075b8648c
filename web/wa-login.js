/* wa-login: the sign-in page: organisation (when the address does not
 * name it), user name, password, then the TOTP code where MFA is on. */
import { byId as $, message, show } from './dom.js';
import { session, setInstance, signIn, forget } from './wa-session.js';

let onSignedIn = async () => {};

export const loginPage = {
  enter() {
    forget();
    show($('app-view'), false);
    show($('login-view'), true);
    show($('org-row'), !session.instance);
    $('login-org').required = !session.instance;
    show($('totp-row'), false);
    $('login-password').value = '';
    $('login-totp').value = '';
    (session.instance ? $('login-user') : $('login-org')).focus();
  },
  leave() {
    show($('login-view'), false);
  },
};

async function onLogin(event) {
  event.preventDefault();
  const error = $('login-error');
  message(error, '');
  if (!session.instance) {
    const org = $('login-org').value.trim().toLowerCase();
    if (!org) return;
    /* The instance is part of the address: sessions belong to it. */
    history.replaceState(null, '', '/' + encodeURIComponent(org) + '/' + location.hash);
    setInstance(org);
  }
  const body = {
    userName: $('login-user').value.trim(),
    password: $('login-password').value,
  };
  if (!$('totp-row').hidden) body.totp = $('login-totp').value.replace(/\s+/g, '');
  $('login-submit').disabled = true;
  try {
    signIn(await session.api.call('POST', 'login', body));
    await onSignedIn();
  } catch (e) {
    if (e.code === 'mfa-required') {
      show($('totp-row'), true);
      $('login-totp').focus();
      message(error, 'Enter the code from your authenticator app.', false);
    } else if (e.code === 'auth-failed') {
      message(error, 'Sign-in failed: check the organisation, user name, password' +
        ($('totp-row').hidden ? '' : ' and code') + '.', true);
    } else {
      message(error, e.message, true); // throttled, and anything else
    }
  } finally {
    $('login-submit').disabled = false;
  }
}

/* signedIn: what to do once the server accepted the user. */
export function initLogin(signedIn) {
  onSignedIn = signedIn;
  $('login-form').addEventListener('submit', onLogin);
}
