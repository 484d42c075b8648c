// What the browser tests (tests/web/console*.mjs; web-access.mjs its TOTP) share: the
// settings the Python test passes as JSON in an environment variable,
// Chromium (playwright-core), pages that collect their errors, signing in as
// the administrator, the scenario runner that writes the results file, and
// axe-core. Each script keeps its own scenarios.
import { chromium } from 'playwright-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

export const DESKTOP = { viewport: { width: 1280, height: 800 } };
export const PHONE = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true };

export function expect(cond, what) {
  if (!cond) throw new Error('expected: ' + what);
}

// The TOTP code (RFC 6238: SHA-1, 6 digits) of a base32 secret for a
// 30-second step.
export function totp(secret, step) {
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

let axeSource = null;
try {
  axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
} catch (e) { /* reported by the first check */ }

// The serious or critical axe-core violations of the page as it is, one line
// each. The page needs bypassCSP: its own CSP would refuse axe.
export async function axeViolations(page) {
  expect(axeSource, 'axe-core in tests/web/node_modules (npm ci)');
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const out = await window.axe.run(document, { resultTypes: ['violations'] });
    return out.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
}

// Adds the violations of the page as it is to report, each after `what: `.
export async function axeInto(report, page, what) {
  for (const v of await axeViolations(page)) report.push(`${what}: ${v}`);
}

// Starts Chromium. prefix names the screenshots of failed scenarios;
// pageOptions are the defaults of every newPage(); answers, if given, gets
// the text of every answer of the API (/api/) any page receives.
export async function startHarness({ envVar = 'COFFER_CONSOLE_TEST', prefix, pageOptions = {}, answers = null }) {
  const cfg = JSON.parse(process.env[envVar]);
  const shots = cfg.artifacts;
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: cfg.chromium || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });

  // page.problems: its script errors and console errors
  async function newPage(options = {}) {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, ...pageOptions, ...options });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      // answers such as 401 for a wrong password are logged as "Failed to load resource"
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
    });
    if (answers) {
      page.on('response', async (r) => {
        if (r.url().includes('/api/')) answers.push(await r.text().catch(() => ''));
      });
    }
    page.problems = problems;
    // requests that got no answer at all (the harness leaves "Failed to
    // load resource" out of problems: a 401 is logged that way too)
    page.failedRequests = [];
    page.on('requestfailed', (r) => page.failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`));
    return page;
  }

  // Opens url and waits for the sign-in form. Once (2026-12-04, CI, load
  // from two test workers) the form never showed: the page had loaded but
  // its app had not started, which is what a module that failed to load
  // does. A user reloads then, and so does this, once, saying on stderr
  // which requests failed; a second failure fails the scenario with them.
  async function openLogin(page, url) {
    await page.goto(url);
    try {
      await page.waitForSelector('#login-user', { state: 'visible', timeout: 10000 });
      return;
    } catch (e) {
      console.error(`sign-in form not shown at ${url}; failed requests: ` +
        `${page.failedRequests.join('; ') || 'none'}; page errors: ${page.problems.join('; ') || 'none'}; reloading`);
    }
    page.failedRequests.length = 0;
    await page.reload();
    try {
      await page.waitForSelector('#login-user', { state: 'visible' });
    } catch (e) {
      throw new Error(`sign-in form not shown after a reload; failed requests: ` +
        `${page.failedRequests.join('; ') || 'none'}; page errors: ${page.problems.join('; ') || 'none'}`);
    }
  }

  // Signs in to the Console as the administrator; waits for the app.
  async function signIn(page) {
    await openLogin(page, cfg.baseUrl + '/');
    await page.fill('#login-user', cfg.adminUser);
    await page.fill('#login-password', cfg.adminPassword);
    await page.click('#login-submit');
    await page.waitForSelector('#app-view:not([hidden])');
  }

  // Runs one scenario: fn(use) passes each page it opens through use(); the
  // scenario fails on an exception or an error on any of them (screenshots
  // then), and their contexts are closed after. What fn returns goes into
  // the results.
  const results = {};
  async function scenario(name, fn) {
    const started = Date.now();
    console.error(`scenario ${name}: started`);
    const pages = [];
    try {
      const out = await fn((p) => { pages.push(p); return p; });
      for (const p of pages) expect(p.problems.length === 0, 'no errors on the page: ' + p.problems.join('; '));
      results[name] = { ok: true, ms: Date.now() - started, ...(out || {}) };
    } catch (e) {
      for (const [i, p] of pages.entries()) {
        const file = pages.length === 1 ? `${prefix}-${name}-failed.png` : `${prefix}-${name}-${i}-failed.png`;
        await p.screenshot({ path: path.join(shots, file) }).catch(() => {});
      }
      results[name] = { ok: false, error: String(e && e.stack || e) };
    }
    for (const p of pages) await p.context().close().catch(() => {});
    console.error(`scenario ${name}: ${results[name].ok ? 'ok' : 'FAILED'} after ${Date.now() - started} ms`);
  }

  // Closes Chromium and writes the results file.
  async function finish() {
    await browser.close();
    fs.writeFileSync(cfg.resultsFile, JSON.stringify(results, null, 2));
    const failed = Object.values(results).filter((r) => !r.ok).length;
    console.log(`${Object.keys(results).length - failed} passed, ${failed} failed`);
  }

  return { cfg, base: cfg.baseUrl, shots, browser, newPage, openLogin, signIn, scenario, finish };
}
