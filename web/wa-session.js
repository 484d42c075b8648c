/* wa-session: what every Web Access page shares: the instance (from the
 * URL: sessions belong to it), the signed-in user and the API client. */
import { ApiClient } from './api.js';
import { byId } from './dom.js';
import { createBusy } from './ui-busy.js';

/* Anything slower than this shows the loading indicator; anything faster
 * would only make it flicker. */
const LOADING_DELAY_MS = 200;

export const session = {
  instance: null, // as in the URL
  user: null, // the client API's user object, null when signed out
  api: new ApiClient(),
  /* set by wa-main: shows the login page (the session is gone) */
  signedOut: () => {},
};

session.api.onRequest = createBusy(byId('busy'), LOADING_DELAY_MS);
session.api.onUnauthorized = () => {
  if (session.user) session.signedOut();
};

export function setInstance(name) {
  session.instance = name;
  session.api.base = '/' + encodeURIComponent(name) + '/api/';
  document.title = 'Coffer Web Access – ' + name;
}

export function signIn(answer) {
  session.api.csrf = answer.csrfToken;
  session.user = answer.user;
}

export function forget() {
  session.user = null;
  session.api.csrf = null;
}

/* Export needs the export privilege (the server refuses it without). */
export function mayExport() {
  const p = session.user && session.user.effectivePrivileges;
  return Array.isArray(p) && p.includes('export');
}
