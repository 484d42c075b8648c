// The Console's dashboard and instance list timed in Chromium (started by
// bench/console-bench.py, settings in COFFER_CONSOLE_BENCH). Times are taken
// inside the page with the Performance API: from the click on "Sign in"
// (or on "Instances" in the navigation) to the first animation frame in
// which the page is complete, seen by a MutationObserver in the page:
//   dashboard: the tiles show every Instance Host and every instance, and
//     the health tree has a node per Instance Host;
//   instance list: the first page (25 rows) and "1–25 of N".
// Cold: the first sign-in in a newly launched browser after the servers
// started. Warm: RUNS more, each in a new browser context (a new session).
import { createRequire } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';

const cfg = JSON.parse(process.env.COFFER_CONSOLE_BENCH);
const require = createRequire(path.join(cfg.webTests, 'package.json'));
const { chromium } = require('playwright-core');

// Installed before the page's own scripts: records when each click
// happened and when the watched condition first held.
function probe() {
  window.__bench = { marks: {} };
  document.addEventListener('click', (e) => {
    const t = e.target.closest('#login-submit, a[data-path="instances"]');
    if (t) window.__bench.marks[t.id === 'login-submit' ? 'login' : 'instances'] = performance.now();
  }, true);
  window.__bench.watch = (name, test) => new Promise((resolve) => {
    const check = () => {
      if (!test()) return false;
      requestAnimationFrame(() => resolve(performance.now()));
      return true;
    };
    if (check()) return;
    const o = new MutationObserver(() => {
      if (check()) o.disconnect();
    });
    o.observe(document, { childList: true, subtree: true, characterData: true, attributes: true });
  });
}

const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true, args: ['--no-sandbox'] });

async function once() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(60000);
  await page.addInitScript(probe);
  await page.goto(cfg.baseUrl + '/');
  await page.waitForSelector('#login-view:not([hidden])');
  await page.fill('#login-user', cfg.user);
  await page.fill('#login-password', cfg.password);
  const dash = page.evaluate(({ n, hosts }) => window.__bench.watch('dashboard', () => {
    const v = (k) => document.querySelector(`[data-resource="${k}"] .tile-value`)?.textContent;
    return v('instances') === String(n) && v('instanceHosts') === String(hosts) &&
      document.querySelectorAll('.tree.health [data-kind="instanceHost"]').length === hosts;
  }), { n: cfg.instances, hosts: cfg.hosts });
  await page.click('#login-submit');
  const dashboardDone = await dash;
  const dashboard = dashboardDone - await page.evaluate(() => window.__bench.marks.login);
  const list = page.evaluate((n) => window.__bench.watch('instances', () => {
    const info = document.querySelector('.table-info')?.textContent;
    return document.querySelectorAll('.data-table tbody tr[data-key]').length === 25 && info === `1–25 of ${n}`;
  }), cfg.instances);
  await page.click('#nav a[data-path="instances"]');
  const listDone = await list;
  const instanceList = listDone - await page.evaluate(() => window.__bench.marks.instances);
  // the size of the two answers behind them
  const sizes = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((r) => r.name.includes('/api/invoke/'))
    .map((r) => ({ fn: r.name.split('/').pop(), bytes: r.encodedBodySize, ms: Math.round(r.duration) })));
  await context.close();
  return { dashboard, instanceList, sizes };
}

const round = (x) => Math.round(x);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cold = await once();
const warm = [];
for (let i = 0; i < cfg.runs; i++) warm.push(await once());
await browser.close();
const out = {
  cold: { dashboardMs: round(cold.dashboard), instanceListMs: round(cold.instanceList) },
  warm: {
    runs: warm.length,
    dashboardMs: { median: round(median(warm.map((w) => w.dashboard))), max: round(Math.max(...warm.map((w) => w.dashboard))) },
    instanceListMs: { median: round(median(warm.map((w) => w.instanceList))), max: round(Math.max(...warm.map((w) => w.instanceList))) },
  },
  answers: (() => {
    const m = {};
    for (const s of cold.sizes) if (!m[s.fn] || m[s.fn].bytes < s.bytes) m[s.fn] = s;
    return Object.values(m);
  })(),
};
fs.writeFileSync(cfg.out, JSON.stringify(out, null, 2));
