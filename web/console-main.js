/* console-main: the Management Console starts here (console.html loads it
 * as a module). The shell: a top bar, the navigation (NAV: one row per
 * page; later pages, such as moving instances, archiving profiles or
 * compliance, add a row) and the page area; the sign-in page instead while
 * no one is signed in. Pages are { title, enter(container, params), leave() }
 * and reach the server only through console-api.js. */
import { byId, el, show } from './dom.js';
import { createRouter } from './router.js';
import { createBusy } from './ui-busy.js';
import { configure, invoke, setCsrf, storedCsrf } from './console-api.js';
import { applyBrand, setTitle } from './console-brand.js';
import { initLogin, loginNotice, loginPage } from './console-login.js';
import { dashboardPage } from './console-dashboard.js';
import { instancesPage } from './console-instances.js';
import { infrastructurePage } from './console-infrastructure.js';
import { administratorsPage } from './console-administrators.js';
import { settingsPage } from './console-settings.js';
import { instancePage } from './console-instance.js';
import { movePage } from './console-move.js';

const NAV = [
  { path: '', label: 'Dashboard', page: dashboardPage },
  { path: 'instances', label: 'Instances', page: instancesPage },
  { path: 'move', label: 'Move instances', page: movePage },
  { path: 'infrastructure', label: 'Infrastructure', page: infrastructurePage },
  { path: 'administrators', label: 'Administrators', page: administratorsPage },
  { path: 'settings', label: 'Settings', page: settingsPage },
  /* not in the navigation: one instance's pages, marked as Instances */
  { path: 'instances/:id', label: 'Instance', page: instancePage, under: 'instances' },
  { path: 'instances/:id/:tab', label: 'Instance', page: instancePage, under: 'instances' },
  { path: 'settings/:tab', label: 'Settings', page: settingsPage, under: 'settings' },
];

const session = { user: null };

/* A page of the shell: shows the app frame, marks its nav entry. */
function shellPage(item) {
  return {
    async enter(params) {
      show(byId('login-view'), false);
      show(byId('app-view'), true);
      setTitle(item.label);
      for (const a of byId('nav-list').querySelectorAll('a')) {
        if (a.dataset.path === (item.under ?? item.path)) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
      }
      closeNav();
      const container = byId('page');
      container.replaceChildren();
      await item.page.enter(container, params);
    },
    leave() {
      if (item.page.leave) item.page.leave();
    },
  };
}

const routes = { login: loginPage };
for (const item of NAV) routes[item.path] = shellPage(item);

const router = createRouter(routes, {
  guard: (route) => {
    if (!session.user) return 'login';
    return route.pattern === 'login' ? '' : route.pattern;
  },
});

function buildNav() {
  const list = byId('nav-list');
  list.replaceChildren(...NAV.filter((item) => !item.under).map((item) => el('li', {},
    el('a', { href: '#/' + item.path, 'data-path': item.path, text: item.label }))));
}

function closeNav() {
  byId('nav').classList.remove('open');
  byId('nav-toggle').setAttribute('aria-expanded', 'false');
}

function signedIn(s) {
  session.user = s.userName;
  setCsrf(s.csrfToken || storedCsrf());
  byId('who').textContent = s.userName;
  if (location.hash.replace(/^#\/?/, '') === 'login') router.go('');
  else router.refresh();
}

function signedOut(notice) {
  if (!session.user && router.current === 'login') return;
  session.user = null;
  setCsrf(null);
  loginNotice(notice || '');
  router.refresh();
}

async function logout() {
  try {
    await invoke('DeleteConsoleSession');
  } catch (e) { /* the session is gone either way */ }
  signedOut('You have signed out.');
}

async function main() {
  applyBrand();
  setTitle('');
  buildNav();
  configure({
    onRequest: createBusy(byId('busy')),
    onSessionEnded: () => signedOut('Your session has ended. Please sign in again.'),
  });
  initLogin(signedIn);
  byId('logout-button').addEventListener('click', logout);
  byId('nav-toggle').addEventListener('click', () => {
    const open = byId('nav').classList.toggle('open');
    byId('nav-toggle').setAttribute('aria-expanded', String(open));
  });
  const csrf = storedCsrf();
  if (csrf) {
    setCsrf(csrf);
    try {
      const s = await invoke('GetConsoleSession');
      session.user = s.userName;
      byId('who').textContent = s.userName;
    } catch (e) {
      setCsrf(null);
    }
  }
  await router.start();
}

main();
