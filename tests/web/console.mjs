// Browser tests of the Coffer Management Console in Chromium (playwright-core),
// started by tests/integration/test_console.py, which sets up the real system
// and passes everything in COFFER_CONSOLE_TEST (JSON). Each scenario's outcome
// goes into the results file; screenshots go into the artifacts folder.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DESKTOP, PHONE, axeInto, expect, startHarness, totp } from './harness.mjs';

const { cfg, base, shots, newPage, openLogin, scenario, finish } = await startHarness({ prefix: 'console' });
// a generous bound on this loaded machine: the page polls every 2 s
const LIVE_MS = 15000;

function coffer(...args) {
  return execFileSync(cfg.coffer, args, { encoding: 'utf8', timeout: 60000 });
}

async function signIn(page, user, password) {
  await openLogin(page, base + '/');
  await page.fill('#login-user', user);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
}

async function onDashboard(page) {
  await page.waitForSelector('#app-view:not([hidden])');
  await page.waitForSelector('.tree.health [data-kind="managementServer"]');
}

function stateOf(page, kind, name) {
  return page.locator(`[data-kind="${kind}"][data-name="${name}"] > .node-head .state`).getAttribute('data-state');
}

async function waitState(page, kind, name, test, what) {
  const end = Date.now() + LIVE_MS;
  let last = null;
  while (Date.now() < end) {
    last = await stateOf(page, kind, name).catch(() => null);
    if (last !== null && test(last)) return last;
    await page.waitForTimeout(250);
  }
  throw new Error(`${what}: still ${last} after ${LIVE_MS} ms`);
}

// The page is served with a strict CSP and shows the sign-in form first.
await scenario('login_without_mfa', async (use) => {
  const page = use(await newPage(DESKTOP));
  const response = await page.goto(base + '/');
  const csp = response.headers()['content-security-policy'] || '';
  expect(csp.includes("script-src 'self'") && !csp.includes('unsafe'), 'a strict CSP: ' + csp);
  await page.waitForSelector('#login-view:not([hidden])');
  expect(await page.locator('#app-view').isHidden(), 'no app before signing in');
  await page.fill('#login-user', cfg.adminUser);
  await page.fill('#login-password', cfg.adminPassword);
  await page.click('#login-submit');
  await onDashboard(page);
  expect((await page.textContent('#who')) === cfg.adminUser, 'the administrator named in the top bar');
  const cookies = await page.context().cookies();
  const c = cookies.find((x) => x.name === 'coffer_console');
  expect(c && c.httpOnly && c.secure && c.sameSite === 'Strict', 'an HttpOnly, Secure, SameSite=Strict cookie: ' + JSON.stringify(c));
  expect(await page.evaluate(() => !document.cookie.includes('coffer_console')), 'the cookie out of the page script\'s reach');
  await page.screenshot({ path: path.join(shots, 'console-dashboard.png') });
  // a reload keeps the session (the CSRF token is in the tab's sessionStorage)
  await page.reload();
  await onDashboard(page);
  // signing out ends it on the server too
  await page.click('#logout-button');
  await page.waitForSelector('#login-view:not([hidden])');
  const status = await page.evaluate(async () => (await fetch('/api/invoke/GetConsoleSession', { method: 'POST' })).status);
  expect(status === 401, 'the session ended on the server: ' + status);
});

await scenario('wrong_password_refused', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page, cfg.adminUser, 'not-the-password');
  await page.locator('#login-error').filter({ hasText: /wrong/i }).waitFor();
  expect(await page.locator('#app-view').isHidden(), 'still not signed in');
  // an API password is no way into the Console, even when it is right
  const r = await page.evaluate(async ([u, p]) => {
    const res = await fetch('/api/invoke/CreateConsoleSession', { method: 'POST', headers: { Authorization: 'Basic ' + btoa(u + ':' + p), 'X-Coffer-Console': '1' } });
    return { status: res.status, body: await res.json(), cookie: document.cookie };
  }, [cfg.adminUser, cfg.apiPassword]);
  expect(r.body.error && /API password/.test(r.body.error.message || r.body.error), 'an API password refused: ' + JSON.stringify(r.body));
});

// MFA: activated with this step's code and signed in with the next step's
// (the server accepts one step either side), so no 30-second window is waited
// for. Not the previous step's code: that one expires at this step's end, and
// a slow (sanitized) CLI start could reach the server after it.
await scenario('login_with_mfa', async (use) => {
  const page = use(await newPage(PHONE));
  const step = Math.floor(Date.now() / 1000 / 30);
  coffer('api', '--config-dir', cfg.configDir, '--server', cfg.apiServer, '--user', cfg.mfaUser,
    '--password', cfg.mfaPassword, '--totp', totp(cfg.mfaSecret, step), 'Ping');
  await signIn(page, cfg.mfaUser, cfg.mfaPassword);
  await page.waitForSelector('#totp-step:not([hidden])');
  expect(await page.locator('#password-step').isHidden(), 'the password step done');
  await page.screenshot({ path: path.join(shots, 'console-login-mfa-phone.png') });
  await page.fill('#login-totp', '000000' === totp(cfg.mfaSecret, step + 1) ? '111111' : '000000');
  await page.click('#login-submit');
  await page.locator('#login-error').filter({ hasText: /code|wrong/i }).waitFor();
  await page.fill('#login-totp', totp(cfg.mfaSecret, step + 1));
  await page.click('#login-submit');
  await onDashboard(page);
  expect((await page.textContent('#who')) === cfg.mfaUser, 'signed in as the MFA administrator');
  // the phone's navigation opens from the menu button and leads to a page
  expect(await page.locator('#nav').isHidden(), 'navigation folded away on a phone');
  await page.click('#nav-toggle');
  await page.click('#nav a[data-path="infrastructure"]');
  await page.waitForSelector('table[data-kind="instanceHost"]');
  expect(await page.locator('#nav').isHidden(), 'navigation folded again');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, 'nothing wider than the phone: ' + overflow);
  await page.screenshot({ path: path.join(shots, 'console-infrastructure-phone.png'), fullPage: true });
});

// CSRF: a request with the session cookie but without the token changes
// nothing; the same request with it does (so the check is what refused it).
await scenario('csrf_refused', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  const r = await page.evaluate(async () => {
    const create = (name, headers) => fetch('/api/invoke/CreateSystemAdministrator', {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ userName: name, password: 'csrf-pass-123' }) });
    const token = sessionStorage.getItem('coffer.console.csrf');
    const without = await create('csrf-without', {});
    const wrong = await create('csrf-wrong', { 'X-CSRF-Token': 'f'.repeat(64) });
    const withToken = await create('csrf-with', { 'X-CSRF-Token': token });
    const list = await (await fetch('/api/invoke/GetSystemAdministrators', { method: 'POST', headers: { 'X-CSRF-Token': token } })).json();
    return { without: without.status, wrong: wrong.status, withToken: withToken.status,
      names: list.result.map((a) => a.userName) };
  });
  expect(r.without === 403 && r.wrong === 403, 'refused without or with a wrong token: ' + JSON.stringify(r));
  expect(r.withToken === 200, 'accepted with the token: ' + JSON.stringify(r));
  expect(!r.names.includes('csrf-without') && !r.names.includes('csrf-wrong') && r.names.includes('csrf-with'),
    'only the request with the token created an administrator: ' + r.names);
});

// The dashboard follows a role that stops, and comes back, without a reload.
await scenario('dashboard_live', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  const cas = cfg.casName;
  await waitState(page, 'clientAccessServer', cas, (s) => s === 'connected', 'the Client Access Server connected');
  await page.evaluate(() => { window.__noReload = 'still here'; });
  const navigations = await page.evaluate(() => performance.getEntriesByType('navigation').length);
  const t0 = Date.now();
  coffer('config', '--config-dir', cfg.configDir, 'stop', 'client-access-server');
  const state = await waitState(page, 'clientAccessServer', cas, (s) => s !== 'connected', 'the stopped Client Access Server shown');
  const seen = Date.now() - t0;
  await page.screenshot({ path: path.join(shots, 'console-dashboard-role-stopped.png') });
  expect(await page.evaluate(() => window.__noReload) === 'still here', 'the page was not reloaded');
  expect(await page.evaluate(() => performance.getEntriesByType('navigation').length) === navigations, 'no navigation');
  coffer('config', '--config-dir', cfg.configDir, 'start', 'client-access-server');
  await waitState(page, 'clientAccessServer', cas, (s) => s === 'connected', 'the restarted Client Access Server shown');
  expect(await page.evaluate(() => window.__noReload) === 'still here', 'still not reloaded');
  console.error(`dashboard_live: "${state}" shown ${seen} ms after the stop command began`);
});

// While the tab is hidden the dashboard polls every 30 s instead of every
// 2 s, and polls again once it is shown. (Visibility is simulated in the
// page: headless Chromium has no other tab to switch to.)
await scenario('dashboard_hidden_backoff', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  const polls = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/api/invoke/GetServiceStatus')) polls.push({ at: Date.now(), background: r.headers()['x-coffer-background'] });
  });
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await page.waitForTimeout(5000);
  const visible = polls.length;
  expect(visible >= 1 && polls.every((p) => p.background === '1'), 'polling while shown, as background requests: ' + JSON.stringify(polls));
  await setHidden(true);
  await page.waitForTimeout(4000); // a poll already scheduled may still go out
  const before = polls.length;
  await page.waitForTimeout(6000);
  const hiddenPolls = polls.length - before;
  expect(hiddenPolls <= 1, `at most one poll in 6 s while hidden (every 2 s it would be about 3): ${hiddenPolls}`);
  const shownAt = Date.now();
  await setHidden(false);
  const end = Date.now() + 10000;
  while (!polls.some((p) => p.at >= shownAt) && Date.now() < end) await page.waitForTimeout(100);
  expect(polls.some((p) => p.at >= shownAt), 'a poll once shown again');
  console.error(`dashboard_hidden_backoff: ${visible} polls in 5 s shown, ${hiddenPolls} in 6 s hidden, ` +
    `${polls.find((p) => p.at >= shownAt).at - shownAt} ms to poll once shown`);
});

// A refused fingerprint shows by itself too: in the tree and as a message.
await scenario('dashboard_fingerprint_refused', async (use) => {
  const page = use(await newPage(PHONE));
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  const cas = cfg.casName;
  await waitState(page, 'clientAccessServer', cas, (s) => s === 'connected', 'the Client Access Server connected');
  await page.evaluate(() => { window.__noReload = 'still here'; });
  const api = (...args) => coffer('api', '--config-dir', cfg.configDir, '--server', cfg.apiServer, '--user', cfg.adminUser,
    '--password', cfg.adminPassword, ...args);
  api('SetClientAccessServerConfiguration', 'serverName=' + cfg.casServerName, 'fingerprint=' + 'cd'.repeat(32));
  try {
    await waitState(page, 'clientAccessServer', cas, (s) => s === 'fingerprintRefused', 'the refused fingerprint shown');
    await page.locator('.messages-list [data-kind="fingerprint"]').filter({ hasText: cfg.casFingerprint }).waitFor({ timeout: LIVE_MS });
    await page.screenshot({ path: path.join(shots, 'console-dashboard-fingerprint-phone.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow <= 0, 'nothing wider than the phone: ' + overflow);
  } finally {
    api('SetClientAccessServerConfiguration', 'serverName=' + cfg.casServerName, 'fingerprint=' + cfg.casFingerprint);
  }
  await waitState(page, 'clientAccessServer', cas, (s) => s === 'connected', 'connected again with the right fingerprint');
  expect(await page.evaluate(() => window.__noReload) === 'still here', 'the page was not reloaded');
});

// Manual pairing from the Infrastructure page: add, configure, remove (after
// a confirmation); a fingerprint is copied with its button.
await scenario('infrastructure_manual_pairing', async (use) => {
  const page = use(await newPage({ ...DESKTOP }));
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  await page.click('#nav a[data-path="infrastructure"]');
  await page.waitForSelector('table[data-kind="clientAccessServer"]');
  const fp = 'ab'.repeat(32);
  await page.click('button[data-add="clientAccessServer"]');
  const dialog = page.locator('dialog');
  await dialog.getByLabel('Name (host name or address)').fill('<b>cas2</b>.test');
  await dialog.getByLabel('TCP port').fill('70000');
  await dialog.getByLabel('TCP certificate fingerprint (SHA-256)').fill('xyz');
  await dialog.locator('button[type=submit]').click();
  await dialog.locator('.field-error').filter({ hasText: /65535/ }).waitFor();
  await dialog.locator('.field-error').filter({ hasText: /hexadecimal/ }).waitFor();
  await dialog.getByLabel('TCP port').fill(String(cfg.spareCasPort));
  await dialog.getByLabel('TCP certificate fingerprint (SHA-256)').fill(fp);
  await dialog.locator('button[type=submit]').click();
  // a name that looks like HTML: the server refuses it, and the page shows
  // the error as text, never as markup
  await dialog.locator('.form-error').filter({ hasText: /host name or address/ }).waitFor();
  expect((await dialog.locator('.form-error').textContent()).includes('<b>cas2</b>'), 'the name shown as text');
  expect(await page.locator('b').count() === 0, 'no markup from the name');
  await dialog.getByLabel('Name (host name or address)').fill('cas2.test');
  await dialog.locator('button[type=submit]').click();
  const row = page.locator('table[data-kind="clientAccessServer"] tr', { hasText: 'cas2.test' });
  await row.waitFor();
  expect(await page.locator('.page b').count() === 0, 'no markup from a name');
  expect((await row.textContent()).includes(fp), 'its fingerprint shown');
  await row.getByRole('button', { name: /Copy/ }).click();
  expect(await page.evaluate(() => navigator.clipboard.readText()) === fp, 'the fingerprint copied');
  await page.screenshot({ path: path.join(shots, 'console-infrastructure.png'), fullPage: true });
  // configure: a new port
  await row.getByRole('button', { name: /Configure/ }).click();
  await dialog.getByLabel('TCP port').fill(String(cfg.spareCasPort + 1));
  await dialog.locator('button[type=submit]').click();
  await page.locator('table[data-kind="clientAccessServer"] tr', { hasText: String(cfg.spareCasPort + 1) }).waitFor();
  // remove: cancelled first, then confirmed
  const newRow = page.locator('table[data-kind="clientAccessServer"] tr', { hasText: 'cas2.test' });
  await newRow.getByRole('button', { name: /Remove/ }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Cancel' }).click();
  expect(await newRow.count() === 1, 'still there after Cancel');
  await newRow.getByRole('button', { name: /Remove/ }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Remove' }).click();
  await newRow.waitFor({ state: 'detached' });
  const names = JSON.parse(coffer('api', '--config-dir', cfg.configDir, '--server', cfg.apiServer, '--user', cfg.adminUser,
    '--password', cfg.adminPassword, 'GetClientAccessServers')).result.map((s) => s.serverName);
  expect(!names.includes('cas2.test'), 'removed on the server: ' + names);
});

// Administrators: add one, enrol MFA (QR code and secret), an API password
// shown once and copied, a new password, delete after a confirmation; each
// checked on the server.
await scenario('administrators', async (use) => {
  const page = use(await newPage(DESKTOP));
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  await page.click('#nav a[data-path="administrators"]');
  await page.waitForSelector('.data-table tr[data-key="admin"]');
  const api = (...args) => JSON.parse(coffer('api', '--config-dir', cfg.configDir, '--server', cfg.apiServer,
    '--user', cfg.adminUser, '--password', cfg.adminPassword, ...args)).result;
  const dialog = page.locator('dialog');
  await page.click('#add-admin');
  await dialog.getByLabel('Name', { exact: true }).fill('ops1');
  await dialog.getByLabel('Full name').fill('<i>Ops</i> One');
  await dialog.getByLabel('Password').fill('short');
  await dialog.locator('button[type=submit]').click();
  await dialog.locator('.field-error').filter({ hasText: /8 characters/ }).waitFor();
  await dialog.getByLabel('Password').fill('ops1-pass-123');
  await dialog.locator('button[type=submit]').click();
  const row = page.locator('.data-table tr[data-key="ops1"]');
  await row.waitFor();
  expect((await row.textContent()).includes('<i>Ops</i> One') && await page.locator('.page i').count() === 0, 'the full name shown as text');
  // MFA enrolment: the QR code and the secret
  await row.getByRole('button', { name: 'Set up MFA ops1' }).click();
  await dialog.locator('img.qr').waitFor();
  const secret = await dialog.locator('code.secret').textContent();
  expect(/^[A-Z2-7]{16,}=*$/.test(secret), 'a base32 secret: ' + secret);
  await page.screenshot({ path: path.join(shots, 'console-admin-mfa.png') });
  await dialog.getByRole('button', { name: 'Done' }).click();
  await page.locator('.data-table tr[data-key="ops1"]', { hasText: 'pending' }).waitFor();
  // an API password, shown once, copied
  await page.locator('.data-table tr[data-key="ops1"]').getByRole('button', { name: 'API password ops1' }).click();
  const apiPassword = await dialog.locator('code.api-password').textContent();
  await dialog.getByRole('button', { name: 'Copy API password' }).click();
  expect(await page.evaluate(() => navigator.clipboard.readText()) === apiPassword, 'the API password copied');
  await dialog.getByRole('button', { name: 'Done' }).click();
  const ping = JSON.parse(coffer('api', '--config-dir', cfg.configDir, '--server', cfg.apiServer, '--user', 'ops1',
    '--password', apiPassword, 'Ping'));
  expect(ping.error === null, 'the API password works: ' + JSON.stringify(ping));
  // a new password
  await page.locator('.data-table tr[data-key="ops1"]').getByRole('button', { name: 'Password ops1', exact: true }).click();
  await dialog.getByLabel('New password').fill('ops1-pass-456');
  await dialog.locator('button[type=submit]').click();
  await dialog.waitFor({ state: 'detached' });
  // delete: cancelled, then confirmed
  await page.locator('.data-table tr[data-key="ops1"]').getByRole('button', { name: 'Delete ops1' }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Cancel' }).click();
  expect(api('GetSystemAdministrators').some((a) => a.userName === 'ops1'), 'still there after Cancel');
  await page.locator('.data-table tr[data-key="ops1"]').getByRole('button', { name: 'Delete ops1' }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Delete' }).click();
  await page.locator('.data-table tr[data-key="ops1"]').waitFor({ state: 'detached' });
  expect(!api('GetSystemAdministrators').some((a) => a.userName === 'ops1'), 'deleted on the server');
});

// An instance's life cycle from the Instances page, each action a job whose
// progress shows, each state checked on the server; delete after a
// confirmation. The display name looks like HTML and is shown as text.
await scenario('instance_lifecycle', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  await page.click('#nav a[data-path="instances"]');
  const row = page.locator('.data-table tr[data-key="acme"]');
  await row.waitFor();
  expect((await row.textContent()).includes('<b>ACME</b> & Co') && await page.locator('.page b').count() === 0, 'the name shown as text');
  const status = () => JSON.parse(coffer('api', '--config-dir', cfg.configDir, '--server', cfg.apiServer, '--user', cfg.adminUser,
    '--password', cfg.adminPassword, 'GetInstanceConfiguration', 'instanceID=acme')).result.status;
  const act = async (label, fn, expected) => {
    await row.getByRole('button', { name: label + ' acme', exact: true }).click();
    await page.locator(`.progress-view[data-job="${fn}:acme"][data-state="done"]`).first().waitFor({ timeout: 60000 });
    await row.locator(`.state[data-state="${expected}"]`).waitFor({ timeout: 30000 });
    expect(status() === expected, `${label}: ${expected} on the server`);
  };
  await act('Stop', 'StopInstances', 'stopped');
  await act('Start', 'StartInstances', 'running');
  await act('Freeze', 'FreezeInstances', 'frozen');
  await page.screenshot({ path: path.join(shots, 'console-instances.png') });
  await act('Thaw', 'ThawInstances', 'running');
  await act('Restart', 'RestartInstances', 'running');
  await act('Stop', 'StopInstances', 'stopped');
  await row.getByRole('button', { name: 'Delete acme', exact: true }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Cancel' }).click();
  expect(status() === 'stopped', 'still there after Cancel');
  await row.getByRole('button', { name: 'Delete acme', exact: true }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Delete' }).click();
  await row.waitFor({ state: 'detached', timeout: 60000 });
  const ids = JSON.parse(coffer('api', '--config-dir', cfg.configDir, '--server', cfg.apiServer, '--user', cfg.adminUser,
    '--password', cfg.adminPassword, 'GetInstances')).result.map((i) => i.instanceID);
  expect(!ids.includes('acme'), 'deleted on the server: ' + ids);
});

// Creating an instance from the Instances page with the directory picker
// on the Instance Host (a new folder made there), a server refusal shown
// under its field, the job's progress; then the instance's own pages: a
// user created, privileges edited, another deleted after a confirmation, an
// import with progress, a search, and the audit log showing the creation.
// Each effect checked on the server.
await scenario('instance_create_and_pages', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  await page.click('#nav a[data-path="instances"]');
  await page.waitForSelector('.data-table');
  const api = (...args) => JSON.parse(coffer('api', '--config-dir', cfg.configDir, '--server', cfg.apiServer,
    '--user', cfg.adminUser, '--password', cfg.adminPassword, ...args)).result;
  await page.click('#create-instance');
  const dialog = page.locator('dialog');
  await dialog.getByLabel('Instance ID').fill('beta');
  await dialog.getByLabel('Display name').fill('Beta <i>Ltd</i>');
  await dialog.getByLabel('Base directory').fill('relative/dir');
  await dialog.locator('button[type=submit]').click();
  await dialog.locator('.field-error', { hasText: /absolute/ }).waitFor({ timeout: 30000 });
  // the picker, on the Instance Host: into the data directory, a new folder
  await dialog.getByLabel('Base directory').fill(cfg.dataDir);
  await dialog.locator('#browse-dirs').click();
  await dialog.locator('.picker-path', { hasText: cfg.dataDir }).waitFor();
  await dialog.getByLabel('New folder name').fill('beta');
  await dialog.locator('#picker-mkdir').click();
  await dialog.locator('.picker-path', { hasText: cfg.dataDir + '/beta' }).waitFor();
  expect(fs.statSync(path.join(cfg.dataDir, 'beta')).isDirectory(), 'the folder made on the Instance Host');
  await dialog.locator('#picker-use').click();
  expect(await dialog.getByLabel('Base directory').inputValue() === cfg.dataDir + '/beta', 'the chosen directory in the field');
  await page.screenshot({ path: path.join(shots, 'console-create-instance.png') });
  await dialog.locator('button[type=submit]').click();
  await dialog.waitFor({ state: 'detached', timeout: 90000 });
  const row = page.locator('.data-table tr[data-key="beta"]');
  await row.waitFor();
  expect(api('GetInstanceConfiguration', 'instanceID=beta').baseDirectory === cfg.dataDir + '/beta', 'created on the server');
  // the instance's pages
  await row.getByRole('link', { name: 'beta' }).click();
  await page.locator('.tab-body[data-tab="overview"] .facts').first().waitFor();
  expect((await page.locator('.tab-body').textContent()).includes('Beta <i>Ltd</i>') && await page.locator('.page i').count() === 0, 'the name as text');
  await page.locator('.tabs a[data-tab="users"]').click();
  await page.locator('#create-user').click();
  await dialog.getByLabel('User name').fill('alice');
  await dialog.getByLabel('Password').fill('alice-pass-1');
  await dialog.locator('button[type=submit]').click();
  const alice = page.locator('.data-table tr[data-key="alice"]');
  await alice.waitFor();
  await page.locator('#create-user').click();
  await dialog.getByLabel('User name').fill('bob');
  await dialog.locator('button[type=submit]').click();
  await page.locator('.data-table tr[data-key="bob"]').waitFor();
  await alice.getByRole('button', { name: 'Privileges alice' }).click();
  await dialog.getByLabel('export', { exact: true }).check();
  await dialog.getByLabel('log in by api').check();
  await dialog.locator('button[type=submit]').click();
  await dialog.waitFor({ state: 'detached' });
  const info = api('GetUserInfo', 'instanceID=beta', 'userName=alice');
  expect(info.privileges.includes('export') && info.loginPrivileges.includes('api'), 'privileges saved: ' + JSON.stringify(info));
  // Web Access with basic auth, as a script of alice's would use it
  const basic = (user, pass) => ({ Authorization: 'Basic ' + Buffer.from(user + ':' + pass).toString('base64') });
  const folders = async (pass) => (await page.request.get(cfg.webBase + '/beta/api/folders', { headers: basic('alice', pass) })).status();
  const made = await page.request.post(cfg.webBase + '/beta/api/app-passwords',
    { headers: basic('alice', 'alice-pass-1'), data: { name: 'phone <b>', password: 'alice-pass-1' } });
  expect(made.status() === 200, 'an app password made in Web Access: ' + made.status());
  const appPassword = (await made.json()).password;
  expect(await folders(appPassword) === 200, 'the app password logs in');
  // edit: full name, addresses and a new password; the old one stops working
  await alice.getByRole('button', { name: 'Edit alice' }).click();
  await dialog.getByLabel('Full name').fill('Alice <b>A</b>');
  await dialog.getByLabel(/^Email addresses/).fill('alice@beta.test, a@beta.test');
  await dialog.getByLabel(/^New password/).fill('alice-pass-2');
  await dialog.locator('button[type=submit]').click();
  await dialog.waitFor({ state: 'detached' });
  await alice.locator('td', { hasText: 'Alice <b>A</b>' }).waitFor();
  const edited = api('GetUserInfo', 'instanceID=beta', 'userName=alice');
  expect(edited.fullName === 'Alice <b>A</b>' && edited.emailAddresses.join() === 'alice@beta.test,a@beta.test',
    'full name and addresses saved: ' + JSON.stringify(edited));
  expect(await folders('alice-pass-2') === 200 && await folders('alice-pass-1') === 401, 'the new password, not the old');
  // rights on a folder of another user's archive
  await alice.getByRole('button', { name: 'Folder rights alice' }).click();
  await dialog.getByLabel(/^Folder/).fill('bob/Inbox');
  await dialog.getByLabel('read', { exact: true }).check();
  await dialog.locator('button[type=submit]').click();
  await dialog.waitFor({ state: 'detached' });
  const rights = api('GetUserInfo', 'instanceID=beta', 'userName=alice').folderRights;
  expect(JSON.stringify(rights) === '{"bob/Inbox":["read"]}', 'folder rights saved: ' + JSON.stringify(rights));
  // app passwords: listed (the name as text), revoked after a confirmation
  await alice.getByRole('button', { name: 'App passwords alice' }).click();
  const apps = page.locator('dialog', { hasText: 'App passwords of alice' });
  await apps.locator('li', { hasText: 'phone <b>' }).waitFor();
  await apps.getByRole('button', { name: 'Revoke phone <b>' }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Revoke' }).click();
  await apps.locator('.note', { hasText: 'no app passwords' }).waitFor();
  await apps.getByRole('button', { name: 'Close' }).first().click();
  expect(api('GetUserAppPasswords', 'instanceID=beta', 'userName=alice').length === 0, 'revoked on the server');
  expect(await folders(appPassword) === 401, 'the revoked app password no longer logs in');
  // bob renamed, then deleted after a Cancel
  await page.locator('.data-table tr[data-key="bob"]').getByRole('button', { name: 'Edit bob' }).click();
  await dialog.getByLabel('User name').fill('robert');
  await dialog.locator('button[type=submit]').click();
  const robert = page.locator('.data-table tr[data-key="robert"]');
  await robert.waitFor();
  expect(api('GetUsers', 'instanceID=beta').map((u) => u.userName).sort().join() === 'alice,robert', 'bob renamed on the server');
  await robert.getByRole('button', { name: 'Delete robert' }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Cancel' }).click();
  expect(api('GetUsers', 'instanceID=beta').length === 2, 'still two after Cancel');
  await robert.getByRole('button', { name: 'Delete robert' }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Delete' }).click();
  await robert.waitFor({ state: 'detached' });
  expect(api('GetUsers', 'instanceID=beta').map((u) => u.userName).join() === 'alice', 'robert deleted on the server');
  // an import with progress, from the instance's import/ directory
  const importDir = path.join(cfg.dataDir, 'beta', 'import');
  fs.mkdirSync(importDir, { recursive: true });
  let mbox = '';
  for (let i = 0; i < 40; i++) {
    mbox += `From sender@example.test Mon Jan  1 00:00:00 2024\nFrom: carol${i}@example.test\nTo: alice@beta.test\n` +
      `Subject: invoice ${i}\nDate: Mon, 1 Jan 2024 10:${String(i).padStart(2, '0')}:00 +0000\nMessage-ID: <m${i}@example.test>\n\nbody ${i}\n\n`;
  }
  fs.writeFileSync(path.join(importDir, 'mail.mbox'), mbox);
  await page.locator('.tabs a[data-tab="import"]').click();
  const importForm = page.locator('#import-form');
  await importForm.getByLabel(/^Path/).fill('import/mail.mbox');
  await importForm.locator('button[type=submit]').click();
  await page.locator('.progress-view[data-job="ImportFiles:import/mail.mbox"][data-state="done"][data-archived="40"]').waitFor({ timeout: 90000 });
  // stores: a new current store, then every store verified as a job
  await page.locator('.tabs a[data-tab="stores"]').click();
  await page.locator('.tab-body[data-tab="stores"] .data-table tbody tr[data-key]').first().waitFor();
  const storesBefore = api('GetStores', 'instanceID=beta').length;
  await page.locator('#create-store').click();
  await page.locator(`.tab-body[data-tab="stores"] .data-table tbody tr[data-key] >> nth=${storesBefore}`).waitFor();
  expect(api('GetStores', 'instanceID=beta').length === storesBefore + 1, 'a new store on the server');
  await page.locator('#verify-stores').click();
  await page.locator('.progress-view[data-job="VerifyStores:beta"][data-state="done"][data-problems="0"]').waitFor({ timeout: 90000 });
  await page.locator('#rebuild-stores').click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Rebuild' }).click();
  await page.locator('.progress-view[data-job="RebuildSelectedStoreIndexes:beta"][data-state="done"][data-damaged="0"]').waitFor({ timeout: 90000 });
  // live statistics: the chart grows from the polls (every 2 s; 30 s allowed here)
  await page.locator('.tabs a[data-tab="live"]').click();
  await page.locator('svg.chart polyline[data-samples="3"]').first().waitFor({ state: 'attached', timeout: 30000 });
  expect(/MiB/.test(await page.locator('.chart-last').first().textContent()), 'the memory in MiB');
  expect(/%$/.test(await page.locator('.chart-last').nth(1).textContent()), 'the CPU in % of a core');
  await page.screenshot({ path: path.join(shots, 'console-instance-live.png') });
  // the folders, and the messages of the imported one
  await page.locator('.tabs a[data-tab="folders"]').click();
  await page.locator('.folder-open[data-folder$="/Import"]').click();
  await page.locator('.folder-shown', { hasText: /\/Import: 40 of 40 shown/ }).waitFor({ timeout: 30000 });
  expect(await page.locator('.tab-body[data-tab="folders"] .data-table >> nth=1').locator('tbody tr').count() === 25,
    'a page of the folder\'s messages');
  // a search
  await page.locator('.tabs a[data-tab="search"]').click();
  await page.locator('#search-form').getByLabel(/^Query/).fill('subject:invoice');
  await page.locator('#search-form button[type=submit]').click();
  await page.locator('.search-summary', { hasText: /^40 messages found/ }).waitFor({ timeout: 30000 });
  expect(await page.locator('.data-table tbody tr').count() === 25, 'a page of results');
  // compliance: the legal hold put on (after a confirmation) and lifted
  await page.locator('.tabs a[data-tab="compliance"]').click();
  await page.locator('.legal-hold-state[data-on="false"]').waitFor();
  await page.locator('#hold-reason').fill('case <b>42</b>');
  await page.locator('#legal-hold-toggle').click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Hold' }).click();
  await page.locator('.legal-hold-state[data-on="true"]', { hasText: 'case <b>42</b>' }).waitFor();
  expect(api('GetComplianceConfiguration', 'instanceID=beta').legalHold.on === true, 'the hold on, on the server');
  await page.locator('#legal-hold-toggle').click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Lift' }).click();
  await page.locator('.legal-hold-state[data-on="false"]').waitFor();
  expect(api('GetComplianceConfiguration', 'instanceID=beta').legalHold.on === false, 'the hold lifted, on the server');
  // the audit log shows alice's creation; the chain verifies
  await page.locator('.tabs a[data-tab="audit"]').click();
  await page.locator('#audit-filters input[name="action"]').fill('CreateUser');
  await page.locator('#audit-filters button[type=submit]').click();
  await page.locator('.audit-table tr[data-action="CreateUser"]', { hasText: 'alice' }).waitFor();
  await page.locator('.audit-table tr[data-action="CreateUser"]', { hasText: 'bob' }).waitFor();
  await page.locator('#verify-audit').click();
  await page.locator('.audit-verified', { hasText: /^Verified/ }).waitFor({ timeout: 30000 });
  await page.screenshot({ path: path.join(shots, 'console-instance-audit.png'), fullPage: true });
});

// The instance's pages on a phone: the tabs, the users and the audit log
// fit and work.
await scenario('instance_pages_phone', async (use) => {
  const page = use(await newPage(PHONE));
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  await page.goto(base + '/#/instances/beta/users');
  await page.locator('.data-table tr[data-key="alice"]').waitFor();
  await page.locator('.tabs a[data-tab="audit"]').tap();
  await page.locator('.audit-table tr[data-action]').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, 'no sideways scrolling of the page: ' + overflow);
  await page.screenshot({ path: path.join(shots, 'console-instance-phone.png') });
});

// SMTP settings saved from the Settings page and a test mail sent through
// a real local SMTP server (aiosmtpd), which must have received it.
await scenario('smtp_settings_and_test_mail', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  await page.click('#nav a[data-path="settings"]');
  const form = page.locator('#smtp-form');
  await form.waitFor();
  await form.getByLabel('SMTP server').fill('127.0.0.1');
  await form.getByLabel('Port').fill(String(cfg.smtpPort));
  await form.getByLabel('Security').selectOption('none');
  await form.getByLabel('Sender address').fill('coffer@example.test');
  await form.locator('button[type=submit]').click();
  await page.locator('.toast', { hasText: 'SMTP settings saved' }).waitFor();
  const saved = JSON.parse(coffer('api', '--config-dir', cfg.configDir, '--server', cfg.apiServer, '--user', cfg.adminUser,
    '--password', cfg.adminPassword, 'GetSystemSmtpConfiguration')).result;
  expect(saved.host === '127.0.0.1' && saved.port === cfg.smtpPort && saved.security === 'none', 'saved on the server: ' + JSON.stringify(saved));
  const test = page.locator('#smtp-test-form');
  await test.getByLabel('Send a test mail to').fill('ops@example.test');
  await test.locator('button[type=submit]').click();
  await page.locator('.toast', { hasText: 'Test mail sent to ops@example.test' }).waitFor({ timeout: 30000 });
  const dir = path.join(cfg.smtpMaildir, 'new');
  const end = Date.now() + 10000;
  let mails = [];
  while (Date.now() < end && !mails.length) {
    mails = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    if (!mails.length) await page.waitForTimeout(200);
  }
  expect(mails.length === 1, 'one mail received: ' + mails.length);
  const text = fs.readFileSync(path.join(dir, mails[0]), 'utf8');
  expect(text.includes('Subject: Coffer test message') && text.includes('ops@example.test'), 'the test mail');
  await page.screenshot({ path: path.join(shots, 'console-settings.png') });
});

// axe-core on every page, desktop and phone: no serious or critical violation.
await scenario('accessibility', async (use) => {
  const report = [];
  for (const [size, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    // axe is put into the page by the test: the page's own CSP would refuse it
    const page = use(await newPage({ ...opts, bypassCSP: true }));
    const check = (what) => axeInto(report, page, `${size} ${what}`);
    // openLogin: a reload once, naming failed requests, as in signIn (once,
    // 2026-12-05, CI under ASan, this form did not show within 15 s here)
    await openLogin(page, base + '/');
    await check('login');
    await page.fill('#login-user', cfg.adminUser);
    await page.fill('#login-password', cfg.adminPassword);
    await page.click('#login-submit');
    await onDashboard(page);
    await page.waitForSelector('.tiles');
    await check('dashboard');
    for (const [route, ready] of [['instances', '.data-table'], ['infrastructure', 'table[data-kind]'],
      ['administrators', '.data-table'], ['settings/api', '.api-fn'], ['instances/beta', '.tab-body .facts'],
      ['instances/beta/users', '.data-table'], ['instances/beta/stores', '.data-table tr[data-key]'],
      ['instances/beta/live', 'svg.chart'], ['instances/beta/compliance', '.legal-hold-state'], ['instances/beta/audit', '.audit-table tbody tr']]) {
      await page.goto(base + '/#/' + route);
      await page.waitForSelector(ready);
      await check(route);
    }
    await page.context().close();
  }
  expect(report.length === 0, 'no serious or critical violations:\n' + report.join('\n'));
});

// Last, as it restarts the Management Server with a short idle timeout:
// a session nobody uses ends (the dashboard's polling does not keep it
// alive), and the page goes back to the sign-in form by itself.
await scenario('idle_timeout', async (use) => {
  execFileSync(cfg.coffer, ['config', '--config-dir', cfg.configDir, 'restart', 'management-server'],
    { encoding: 'utf8', timeout: 60000, env: { ...process.env, COFFER_CONSOLE_IDLE_SECONDS: String(cfg.shortIdle) } });
  const page = use(await newPage(DESKTOP));
  await signIn(page, cfg.adminUser, cfg.adminPassword);
  await onDashboard(page);
  const started = Date.now();
  // used within the idle time: still signed in
  await page.click('#nav a[data-path="instances"]');
  await page.waitForSelector('.data-table');
  await page.click('#nav a[data-path=""]');
  await onDashboard(page);
  await page.waitForSelector('#login-view:not([hidden])', { timeout: (cfg.shortIdle + 20) * 1000 });
  const after = (Date.now() - started) / 1000;
  expect(after >= cfg.shortIdle - 1, 'not before the idle time: ' + after);
  await page.locator('#login-notice').filter({ hasText: /session has ended/ }).waitFor();
  const status = await page.evaluate(async () => (await fetch('/api/invoke/GetConsoleSession', { method: 'POST' })).status);
  expect(status === 401, 'the session is gone on the server: ' + status);
});

await finish();
