// Web Access offers only what the user may do: started by
// tests/integration/test_privileges.py with COFFER_WEB_TEST (JSON:
// chromium, baseUrl, instance, user, password). Signs in, reports whether
// the export buttons are shown, then reloads (after the test has changed the
// user's privileges and touched cfg.reloadFile) and reports again. Prints
// one JSON line: {before, after} or {error}.
import { chromium } from 'playwright-core';
import fs from 'node:fs';

const cfg = JSON.parse(process.env.COFFER_WEB_TEST);
const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true, args: ['--no-sandbox'] });

async function exportShown(page) {
  await page.waitForSelector('#app-view:not([hidden])');
  await page.waitForSelector('#message-list li');
  return [await page.isVisible('#export-zip'), await page.isVisible('#export-mbox')];
}

try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(`${cfg.baseUrl}/${cfg.instance}/`);
  await page.fill('#login-user', cfg.user);
  await page.fill('#login-password', cfg.password);
  await page.click('#login-submit');
  const before = await exportShown(page);
  // the test changes the privileges, then writes the file
  fs.writeFileSync(cfg.readyFile, 'ready');
  for (let i = 0; i < 600 && !fs.existsSync(cfg.reloadFile); i++) await new Promise((r) => setTimeout(r, 100));
  await page.reload();
  const after = await exportShown(page);
  console.log(JSON.stringify({ before, after }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
} finally {
  await browser.close();
}
