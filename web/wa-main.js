/* wa-main: Web Access starts here (index.html loads it as a module). It
 * wires the pages to the router:
 *   #/          the mail (wa-mail.js)
 *   #/settings  the settings dialog over it (wa-settings.js)
 * and shows the sign-in page (wa-login.js) instead of either while no one
 * is signed in. The instance comes from the path: /INSTANCE/. The
 * branding (branding.js) is applied and kept current. */
import { createRouter } from './router.js';
import { session, setInstance, signIn, forget } from './wa-session.js';
import { loginPage, initLogin } from './wa-login.js';
import { mailPage, initMail, resetMail } from './wa-mail.js';
import { createSettingsPage, initSettings } from './wa-settings.js';
import { watchBranding } from './branding.js';

const router = createRouter({
  '': mailPage,
  'settings': createSettingsPage(mailPage),
  'login': loginPage,
}, {
  guard: (route) => {
    if (!session.user) return 'login';
    return route.pattern === 'login' ? '' : route.pattern;
  },
});

function signedOut() {
  forget();
  resetMail();
  return router.refresh();
}

async function logout() {
  try {
    await session.api.call('POST', 'logout');
  } catch (e) { /* the session is gone either way */ }
  signedOut();
}

async function main() {
  // the installation's name, logo and colours (SetBranding), kept current
  watchBranding((b) => { document.title = b.productName + ' Web Access'; });
  session.signedOut = signedOut;
  const first = location.pathname.split('/')[1] || '';
  if (first) setInstance(decodeURIComponent(first));
  initLogin(() => router.refresh());
  initMail({ onLogout: logout, onSettings: () => router.go('settings') });
  initSettings(() => {
    if (router.current === 'settings') router.go('');
  });
  if (session.instance) {
    try {
      signIn(await session.api.call('GET', 'session'));
    } catch (e) {
      forget();
    }
  }
  await router.start();
}

main();
