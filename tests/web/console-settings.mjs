// Browser tests of the Console's Settings → Branding and API reference
// pages and of failed jobs on the dashboard, in Chromium (playwright-core),
// with Web Access following the branding without a restart. Started by
// tests/integration/test_console_settings.py, which sets up the system and
// passes everything in COFFER_CONSOLE_TEST (JSON). Each scenario's outcome
// goes into the results file; screenshots into the artifacts folder.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { DESKTOP, PHONE, axeInto, expect, startHarness } from './harness.mjs';

const LIVE_MS = 15000;

// axe is put into pages by the test: the page's own CSP would refuse it
const { cfg, base, shots, newPage, signIn, scenario, finish } =
  await startHarness({ prefix: 'console-settings', pageOptions: { bypassCSP: true } });
const wa = cfg.webUrl; // Web Access on the Client Access Server

function api(fn, ...args) {
  return execFileSync(cfg.coffer, ['api', '--config-dir', cfg.configDir, '--server', cfg.apiServer,
    '--user', cfg.adminUser, '--password', cfg.adminPassword, fn, ...args], { encoding: 'utf8', timeout: 60000 });
}

const axeReport = [];
const axe = (page, what) => axeInto(axeReport, page, what);

async function waSignIn(page) {
  await page.goto(`${wa}/${cfg.instance}/`);
  await page.fill('#login-user', cfg.waUser);
  await page.fill('#login-password', cfg.waPassword);
  await page.click('#login-submit');
  await page.waitForSelector('#app-view:not([hidden])');
}

/* What a page shows of the branding. */
function shown(page) {
  return page.evaluate(() => {
    const visible = [...document.querySelectorAll('.brand-name')].find((n) => n.offsetParent !== null);
    const logo = [...document.querySelectorAll('.brand-logo')].find((n) => n.offsetParent !== null);
    const bar = [...document.querySelectorAll('.topbar')].find((n) => n.offsetParent !== null);
    const button = document.createElement('button');
    button.className = 'primary';
    document.body.append(button);
    const accent = getComputedStyle(button).backgroundColor;
    button.remove();
    return {
      // a phone's top bar shows only the logo: then the name as set anywhere
      name: visible ? visible.textContent : document.querySelector('#app-view .brand-name, .brand-name').textContent,
      logo: logo ? logo.getAttribute('src') : null,
      logoLoaded: logo ? logo.complete && logo.naturalWidth > 0 : false,
      header: bar ? getComputedStyle(bar).backgroundColor : null,
      accent,
      title: document.title,
    };
  });
}

async function until(what, fn) {
  const end = Date.now() + LIVE_MS;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last.ok) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${LIVE_MS} ms`);
}

const PNG = Buffer.from(cfg.pngBase64, 'base64');
const EVIL_SVG = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><script>alert(1)</script></svg>');

// Branding set in the Console: its preview follows the form, the Console
// shows it at once, and Web Access (a page already open, and one freshly
// loaded) shows the new name, colours and logo without a restart. A bad
// colour and a bad logo give field errors; a reset brings the defaults back.
await scenario('branding_console_and_web_access', async (use) => {
  const before = use(await newPage(DESKTOP));
  await waSignIn(before);
  const was = await shown(before);
  expect(was.name === 'Coffer', 'Web Access unbranded first: ' + JSON.stringify(was));

  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.click('#nav a[data-path="settings"]');
  await page.click('.tabs a[data-tab="branding"]');
  await page.waitForSelector('#branding-form');
  await axe(page, 'desktop settings/branding');
  // a bad colour: a field error, nothing sent
  await page.fill('#branding-form input[name="accentColor"]', 'red');
  await page.click('#branding-form button[type="submit"]');
  const colorError = page.locator('#branding-form input[name="accentColor"] ~ .field-error');
  await colorError.waitFor();
  expect((await colorError.textContent()).includes('#rrggbb'), 'the colour field error');
  expect(await page.locator('#branding-form input[name="accentColor"]').getAttribute('aria-invalid') === 'true', 'aria-invalid');
  // a bad logo: refused by the server, shown under the logo field
  await page.fill('#branding-form input[name="accentColor"]', '#8a1c7c');
  await page.setInputFiles('#branding-form input[name="logo"]', { name: 'evil.svg', mimeType: 'image/svg+xml', buffer: EVIL_SVG });
  await page.click('#branding-form button[type="submit"]');
  const logoError = page.locator('#branding-form input[name="logo"] ~ .field-error');
  await logoError.waitFor();
  expect(/refused/.test(await logoError.textContent()), 'the logo field error: ' + await logoError.textContent());
  expect(JSON.parse(api('GetBranding')).result.productName === 'Coffer', 'nothing changed by the refusal');
  // the real thing, with the preview following the form before it is saved
  await page.fill('#branding-form input[name="productName"]', 'Acme Vault');
  await page.fill('#branding-form input[name="headerColor"]', '#102030');
  await page.setInputFiles('#branding-form input[name="logo"]', { name: 'logo.png', mimeType: 'image/png', buffer: PNG });
  await until('the preview', async () => {
    const p = await page.evaluate(() => {
      const pv = document.getElementById('brand-preview');
      return { name: pv.querySelector('.brand-name').textContent, logo: pv.querySelector('.brand-logo').getAttribute('src'),
        header: getComputedStyle(pv.querySelector('.topbar')).backgroundColor,
        accent: getComputedStyle(pv.querySelector('.primary')).backgroundColor };
    });
    return { ...p, ok: p.name === 'Acme Vault' && p.logo.startsWith('data:image/png') && p.header === 'rgb(16, 32, 48)'
      && p.accent === 'rgb(138, 28, 124)' };
  });
  expect((await shown(page)).name === 'Coffer', 'the Console unchanged before saving');
  await page.screenshot({ path: path.join(shots, 'console-settings-branding.png') });
  await page.click('#branding-form button[type="submit"]');
  await page.locator('.toast', { hasText: 'Branding saved' }).waitFor();
  await until('the Console branded', async () => {
    const s = await shown(page);
    return { ...s, ok: s.name === 'Acme Vault' && s.header === 'rgb(16, 32, 48)' && s.accent === 'rgb(138, 28, 124)'
      && s.logo.startsWith('/_branding/logo') && s.logoLoaded && s.title.includes('Acme Vault') };
  });
  // Web Access: the page that was open picks it up when it is looked at again
  const branded = (s) => s.name === 'Acme Vault' && s.header === 'rgb(16, 32, 48)' && s.accent === 'rgb(138, 28, 124)'
    && s.logo.startsWith('/_branding/logo') && s.logoLoaded && s.title === 'Acme Vault Web Access';
  await until('the open Web Access page branded', async () => {
    await before.evaluate(() => window.dispatchEvent(new Event('focus')));
    const s = await shown(before);
    return { ...s, ok: branded(s) };
  });
  const fresh = use(await newPage(PHONE));
  await waSignIn(fresh);
  await until('a fresh Web Access page (phone) branded', async () => {
    const s = await shown(fresh);
    return { ...s, ok: branded(s) };
  });
  await axe(fresh, 'phone Web Access, branded');
  await fresh.screenshot({ path: path.join(shots, 'console-settings-web-access-branded.png') });
  await fresh.goto(`${wa}/${cfg.instance}/`);
  // reset: asks first, then the defaults everywhere
  await page.click('#branding-reset');
  await page.click('dialog [data-action="1"]');
  await page.locator('.toast', { hasText: 'Branding reset' }).waitFor();
  await until('the Console back to the defaults', async () => {
    const s = await shown(page);
    return { ...s, ok: s.name === 'Coffer' && s.logo === '/_static/logo.svg' && s.header === 'rgb(255, 255, 255)' };
  });
  await until('Web Access back to the defaults', async () => {
    await before.evaluate(() => window.dispatchEvent(new Event('focus')));
    const s = await shown(before);
    return { ...s, ok: s.name === 'Coffer' && s.logo === '/_static/logo.svg' };
  });
});

// The API reference's try-form: a harmless call answers, bad arguments
// show the server's error, and a call that changes something asks first.
await scenario('api_try_form', async (use) => {
  for (const [size, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const page = use(await newPage(opts));
    await signIn(page);
    await page.goto(base + '/#/settings/api');
    const env = page.locator('details[data-function="GetEnvironmentInfo"]');
    await env.locator('summary').click();
    await env.locator('.try-form button[type="submit"]').click();
    await env.locator('.try-answer:not([hidden])').waitFor();
    const answer = JSON.parse(await env.locator('.try-answer').textContent());
    expect(answer.version && answer.serverName, 'GetEnvironmentInfo answered: ' + JSON.stringify(answer));
    // bad parameters: the server's error
    const jobs = page.locator('details[data-function="GetJobs"]');
    await jobs.locator('summary').click();
    await jobs.locator('input[name="state"]').fill('broken');
    await jobs.locator('.try-form button[type="submit"]').click();
    const error = jobs.locator('.try-error:not([hidden])');
    await error.waitFor();
    expect((await error.textContent()).includes("state: 'broken'"), 'the error shown: ' + await error.textContent());
    // the same as JSON, right this time
    await jobs.locator('input[type="checkbox"]').check();
    await jobs.locator('textarea[name="json"]').fill('{"state": "running"}');
    await jobs.locator('.try-form button[type="submit"]').click();
    await jobs.locator('.try-answer:not([hidden])').waitFor();
    expect(Array.isArray(JSON.parse(await jobs.locator('.try-answer').textContent())), 'GetJobs answered a list');
    // a missing required argument
    const cfgFn = page.locator('details[data-function="GetInstanceConfiguration"]');
    await cfgFn.locator('summary').click();
    await cfgFn.locator('.try-form button[type="submit"]').click();
    await cfgFn.locator('.try-error:not([hidden])').waitFor();
    expect((await cfgFn.locator('.try-error').textContent()).includes("missing argument 'instanceID'"), 'missing argument');
    // a change asks first; cancelled, nothing happens
    const nameBefore = JSON.parse(api('GetBranding')).result.productName;
    const set = page.locator('details[data-function="SetBranding"]');
    await set.locator('summary').click();
    await set.locator('input[name="productName"]').fill('Not Wanted');
    await set.locator('.try-form button[type="submit"]').click();
    await page.locator('dialog', { hasText: 'Call SetBranding?' }).waitFor();
    await axe(page, size + ' settings/api with a confirmation');
    await page.click('dialog [data-action="0"]');
    await page.waitForSelector('dialog', { state: 'detached' });
    expect(JSON.parse(api('GetBranding')).result.productName === nameBefore, 'the cancelled call did nothing');
    await axe(page, size + ' settings/api with try-forms');
    await page.screenshot({ path: path.join(shots, `console-settings-api-${size}.png`), fullPage: false });
  }
});

// A job that fails (an import of a file that is not there) shows among the
// dashboard's messages without a reload.
await scenario('dashboard_failed_job', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.waitForSelector('.tiles');
  const marker = 'missing-' + Date.now() + '.mbox';
  try {
    api('ImportFiles', 'instanceID=' + cfg.instance, 'userName=' + cfg.waUser, 'path=import/' + marker);
  } catch (e) { /* it fails: that is the point */ }
  const msg = page.locator('.messages-list [data-kind="job"]', { hasText: marker });
  await msg.waitFor({ timeout: LIVE_MS });
  expect((await msg.textContent()).includes('ImportFiles'), 'the job named: ' + await msg.textContent());
  await axe(page, 'desktop dashboard with a failed job');
  const phone = use(await newPage(PHONE));
  await signIn(phone);
  await phone.locator('.messages-list [data-kind="job"]', { hasText: marker }).waitFor();
  await axe(phone, 'phone dashboard with a failed job');
  await phone.goto(base + '/#/settings/branding');
  await phone.waitForSelector('#branding-form');
  await axe(phone, 'phone settings/branding');
  await phone.screenshot({ path: path.join(shots, 'console-settings-branding-phone.png') });
});

await scenario('accessibility', async () => {
  expect(axeReport.length === 0, 'no serious or critical violations:\n' + axeReport.join('\n'));
});

await finish();
