// Browser tests of Coffer Web Access in Chromium (playwright-core), started
// by tests/integration/test_web_browser.py, which sets up the real system
// and passes everything in COFFER_WEB_TEST (JSON). Each scenario's outcome
// goes into the results file; screenshots go into the artifacts folder.
import { chromium } from 'playwright-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const cfg = JSON.parse(process.env.COFFER_WEB_TEST);
const base = cfg.baseUrl; // https://127.0.0.1:PORT
const shots = cfg.artifacts;
fs.mkdirSync(shots, { recursive: true });

function totp(secret, step) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const h = crypto.createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 15;
  const n = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(n % 1000000).padStart(6, '0');
}

// A code for a step after `afterStep` (codes are accepted once).
async function freshCode(secret, afterStep) {
  for (;;) {
    const step = Math.floor(Date.now() / 1000 / 30);
    if (step > afterStep) return { code: totp(secret, step), step };
    await new Promise((r) => setTimeout(r, 500));
  }
}

// (not waitForFunction: under the page's CSP, Playwright's polling may not eval)
async function waitText(page, selector, re) {
  await page.locator(selector).filter({ hasText: re }).waitFor();
}

function expect(cond, what) {
  if (!cond) throw new Error('expected: ' + what);
}

const browser = await chromium.launch({
  executablePath: cfg.chromium || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox'],
});

async function newPage(options = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => {
    // The sandboxed mail frame's blocked content is expected; our page must be clean.
    // (answers such as 401 for a wrong password are logged as "Failed to load resource")
    if (m.type() === 'error' && !m.location().url.includes('/html') && !m.text().startsWith('Failed to load resource'))
      problems.push(m.text());
  });
  page.problems = problems;
  return page;
}

async function login(page, instance, user, password) {
  await page.goto(`${base}/${instance}/`);
  await page.fill('#login-user', user);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
}

async function loggedIn(page) {
  await page.waitForSelector('#app-view:not([hidden])');
  await page.waitForSelector('#message-list li'); // a message, or "No messages."
}

const results = {};
async function scenario(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results[name] = { ok: true, ms: Date.now() - started };
    console.log(`ok ${name}`);
  } catch (e) {
    results[name] = { ok: false, error: String(e && e.stack || e) };
    for (const ctx of browser.contexts())
      for (const [i, pg] of ctx.pages().entries())
        await pg.screenshot({ path: path.join(shots, `failed-${name}-${i}.png`) }).catch(() => {});
    console.log(`not ok ${name}: ${e && e.message}`);
  }
}

const alice = { instance: 'acme', user: 'alice', password: cfg.alicePassword };

await scenario('login_page_and_failure', async () => {
  const page = await newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${base}/acme/`);
  await page.waitForSelector('#login-view:not([hidden])');
  await page.screenshot({ path: path.join(shots, 'login.png') });
  await login(page, 'acme', 'alice', 'not-the-password');
  await page.waitForSelector('#login-error:not([hidden])');
  expect((await page.textContent('#login-error')).includes('Sign-in failed'), 'a failure message');
  expect(page.problems.length === 0, 'no script errors: ' + page.problems.join('; '));
  await page.context().close();
});

let page;
await scenario('login_and_browse', async () => {
  page = await newPage({ viewport: { width: 1280, height: 800 } });
  await login(page, alice.instance, alice.user, alice.password);
  await loggedIn(page);
  const folders = await page.locator('#folder-tree .folder .name').allTextContents();
  expect(folders.includes('Inbox') && folders.includes('Newsletters'), 'folders Inbox and Newsletters: ' + folders);
  await page.click('#folder-tree button[data-path="Inbox"]');
  await waitText(page, '#page-info', /of 120$/);
  expect((await page.locator('#message-list li.message').count()) === 50, '50 messages on a page');
  await page.click('#page-older');
  await waitText(page, '#page-info', /^51–100/);
  await page.click('#folder-tree button[data-path="Inbox/Newsletters"]');
  await waitText(page, '#page-info', /^1–2 of 2$/);
  await page.click('#folder-tree button[data-path="Inbox"]');
  await waitText(page, '#page-info', /of 120$/);
  await page.locator('#message-list li.message .message-row').first().click();
  await page.waitForSelector('#reader:not([hidden])');
  await page.screenshot({ path: path.join(shots, 'inbox.png') });
  expect(page.problems.length === 0, 'no script errors: ' + page.problems.join('; '));
});

await scenario('search_and_filters', async () => {
  await page.fill('#search-input', 'subject:invoice');
  await page.press('#search-input', 'Enter');
  await waitText(page, '#page-info', /^1–24 of 24$/);
  const subjects = await page.locator('#message-list .subject').allTextContents();
  expect(subjects.every((s) => s.includes('invoice')), 'only invoices');
  await page.fill('#search-input', '');
  await page.click('#filter-toggle');
  await page.fill('#f-from', 'bob@example.org');
  await page.check('#f-attachment');
  await page.click('#filters button[type=submit]');
  await waitText(page, '#page-info', /^1–1 of 1$/);
  expect((await page.textContent('#message-list .subject')) === 'Contract with attachment', 'the contract');
  await page.screenshot({ path: path.join(shots, 'search.png') });
  await page.click('#filters-clear');
  await page.click('#filter-toggle');
});

await scenario('html_mail_is_sandboxed', async () => {
  await page.fill('#search-input', 'subject:newsletter');
  await page.press('#search-input', 'Enter');
  await waitText(page, '#page-info', /^1–1 of 1$/);
  await page.locator('#message-list .message-row').first().click();
  await page.waitForSelector('#m-html:not([hidden])');
  const frame = page.frameLocator('#m-html');
  await frame.locator('#headline').waitFor();
  expect((await frame.locator('#headline').textContent()) === 'Spring offers', 'the HTML is shown');
  // The message's own image shows (a data: URL); the remote one does not load.
  await page.waitForTimeout(1500);
  expect(await frame.locator('#logo').evaluate((img) => img.complete && img.naturalWidth === 1), 'inline image shown');
  expect(await frame.locator('#tracker').evaluate((img) => img.naturalWidth === 0), 'remote image blocked');
  expect((await frame.locator('body').getAttribute('data-script')) === null, 'the script did not run');
  expect((await page.getAttribute('#m-html', 'sandbox')).includes('allow-scripts') === false, 'no allow-scripts');
  expect(!(await page.isHidden('#m-remote-note')), 'the note about blocked content');
  await page.screenshot({ path: path.join(shots, 'message-html.png') });
});

await scenario('download_original', async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-original')]);
  const file = path.join(shots, 'downloaded-original.eml');
  await download.saveAs(file);
  const expected = fs.readFileSync(cfg.originalFile);
  expect(Buffer.compare(fs.readFileSync(file), expected) === 0, 'the same bytes as imported');
});

await scenario('download_attachment', async () => {
  await page.fill('#search-input', 'subject:contract');
  await page.press('#search-input', 'Enter');
  await waitText(page, '#page-info', /^1–1 of 1$/);
  await page.locator('#message-list .message-row').first().click();
  await page.waitForSelector('#m-attachments a.attachment');
  await page.screenshot({ path: path.join(shots, 'message-attachment.png') });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#m-attachments a.attachment')]);
  const file = path.join(shots, 'downloaded-contract.pdf');
  await download.saveAs(file);
  expect(fs.readFileSync(file).toString() === '%PDF-1.4\n% the contract\n', 'the attachment bytes');
  expect(download.suggestedFilename() === 'contract.pdf', 'its name');
});

await scenario('export_zip_and_mbox', async () => {
  await page.click('#folder-tree button[data-path="Inbox"]');
  await waitText(page, '#page-info', /of 120$/);
  const boxes = page.locator('#message-list li.message input[type=checkbox]');
  for (let i = 0; i < 3; i++) await boxes.nth(i).check();
  expect((await page.textContent('#export-zip')) === 'Export 3 as zip', 'the button counts');
  let [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-zip')]);
  await download.saveAs(path.join(shots, 'export.zip'));
  expect(download.suggestedFilename() === 'messages.zip', 'a zip');
  [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-mbox')]);
  await download.saveAs(path.join(shots, 'export.mbox'));
  expect(fs.readFileSync(path.join(shots, 'export.mbox')).toString().startsWith('From '), 'an mbox');
  expect(page.problems.length === 0, 'no script errors: ' + page.problems.join('; '));
  await page.context().close();
});

await scenario('change_password', async () => {
  const p = await newPage({ viewport: { width: 1280, height: 800 } });
  await login(p, 'acme', 'bob', cfg.bobPassword);
  await loggedIn(p);
  await p.click('#settings-button');
  await p.fill('#pw-old', cfg.bobPassword);
  await p.fill('#pw-new', 'bob-browser-pass');
  await p.fill('#pw-new2', 'bob-browser-pass');
  await p.click('#password-form button[type=submit]');
  await waitText(p, '#pw-message', /was changed/);
  await p.screenshot({ path: path.join(shots, 'settings.png') });
  await p.keyboard.press('Escape');
  await p.click('#logout-button');
  await p.waitForSelector('#login-view:not([hidden])');
  await login(p, 'acme', 'bob', 'bob-browser-pass');
  await loggedIn(p);
  await p.context().close();
});

await scenario('mfa_enrolment_and_login', async () => {
  const p = await newPage({ viewport: { width: 1280, height: 800 } });
  await login(p, 'acme', 'dave', cfg.davePassword);
  await loggedIn(p);
  await p.click('#settings-button');
  await p.fill('#mfa-begin-password', cfg.davePassword);
  await p.click('#mfa-begin-form button[type=submit]');
  await p.waitForSelector('#mfa-activate-form:not([hidden])');
  const secret = (await p.textContent('#mfa-secret')).trim();
  expect(await p.locator('#mfa-qr').evaluate((img) => img.complete && img.naturalWidth > 0), 'the QR code shows');
  await p.screenshot({ path: path.join(shots, 'settings-mfa.png') });
  const first = await freshCode(secret, 0);
  await p.fill('#mfa-code', first.code);
  await p.click('#mfa-activate-form button[type=submit]');
  await waitText(p, '#mfa-message', /now on/);
  await p.keyboard.press('Escape');
  await p.click('#logout-button');
  await p.waitForSelector('#login-view:not([hidden])');
  await login(p, 'acme', 'dave', cfg.davePassword);
  await p.waitForSelector('#totp-row:not([hidden])');
  await p.screenshot({ path: path.join(shots, 'login-mfa.png') });
  const second = await freshCode(secret, first.step);
  await p.fill('#login-totp', second.code);
  await p.click('#login-submit');
  await loggedIn(p);
  await p.context().close();
});

await scenario('phone_viewport', async () => {
  const p = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await login(p, alice.instance, alice.user, alice.password);
  await loggedIn(p);
  expect(await p.isVisible('#nav-toggle'), 'the folder button');
  expect(!(await p.isVisible('#folders .folder')) || (await p.locator('#folders').boundingBox()).x < 0, 'folders hidden');
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  expect(width <= 390, 'no sideways scrolling: ' + width);
  await p.screenshot({ path: path.join(shots, 'phone-list.png') });
  await p.click('#nav-toggle');
  await p.waitForTimeout(300);
  await p.screenshot({ path: path.join(shots, 'phone-folders.png') });
  await p.click('#folder-tree button[data-path="Inbox/Newsletters"]');
  await waitText(p, '#page-info', /^1–2 of 2$/);
  await p.locator('#message-list .message-row', { hasText: 'HTML newsletter' }).click();
  await p.waitForSelector('#reader:not([hidden])');
  await p.frameLocator('#m-html').locator('#headline').waitFor();
  expect(await p.isVisible('#reader-back'), 'a way back');
  await p.screenshot({ path: path.join(shots, 'phone-message.png') });
  await p.click('#reader-back');
  await p.waitForSelector('#message-list li.message');
  expect(p.problems.length === 0, 'no script errors: ' + p.problems.join('; '));
  await p.context().close();
});

await browser.close();
fs.writeFileSync(cfg.resultsFile, JSON.stringify(results, null, 2));
const failed = Object.values(results).filter((r) => !r.ok).length;
console.log(`${Object.keys(results).length - failed} passed, ${failed} failed`);
