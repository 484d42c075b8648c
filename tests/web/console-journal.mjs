// Browser test of the Console's Journal tab (web/console-journal.js) in
// Chromium (playwright-core), started by tests/integration/test_journal_api.py,
// which runs the system and passes everything in COFFER_CONSOLE_TEST (JSON):
// a recipient mapped to a user and an SMTP AUTH login added from the page
// (the test then delivers with swaks and finds the message in that user's
// archive), the password never in the page nor in an answer, and axe-core
// on the tab and its form, desktop and phone. Outcomes go into the results
// file, screenshots into the artifacts folder.
import path from 'node:path';
import { DESKTOP, PHONE, axeInto, expect, startHarness } from './harness.mjs';

const answers = [];
const { cfg, base, shots, newPage, signIn, scenario, finish } =
  await startHarness({ prefix: 'console-journal', answers });

const dialog = (page) => page.locator('dialog.journal-dialog[open]');
const TAB = '/#/instances/acme/journal';

await scenario('map_recipient_and_login', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.goto(base + TAB);
  await page.waitForSelector('.journal-host dl');
  await page.getByRole('button', { name: 'Map a recipient' }).click();
  let d = dialog(page);
  await d.waitFor();
  await d.locator('[name="address"]').fill(cfg.mappedAddress);
  await d.locator('[name="user"]').fill(cfg.mappedUser);
  await d.getByRole('button', { name: 'Add' }).click();
  await d.waitFor({ state: 'detached' });
  await page.waitForSelector(`.journal-instance td:text-is("${cfg.mappedAddress}")`);

  await page.getByRole('button', { name: 'Add login' }).click();
  d = dialog(page);
  await d.waitFor();
  await d.locator('[name="userName"]').fill(cfg.loginName);
  await d.locator('[name="password"]').fill('short');
  await d.getByRole('button', { name: 'Add' }).click();
  await d.locator('.field-error:has-text("12 characters")').waitFor();
  await d.locator('[name="password"]').fill(cfg.loginPassword);
  await d.getByRole('button', { name: 'Add' }).click();
  await d.waitFor({ state: 'detached' });
  await page.waitForSelector(`.journal-host td:text-is("${cfg.loginName}")`);
  await page.screenshot({ path: path.join(shots, 'console-journal-desktop.png'), fullPage: true });
  const html = await page.evaluate(() => document.documentElement.outerHTML);
  expect(!html.includes(cfg.loginPassword), 'no password in the page');
  expect(!answers.some((a) => a.includes(cfg.loginPassword)), 'no password in any answer');
});

// a bad setting is refused with the server's reason, and nothing changes
await scenario('bad_receiver_setting', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.goto(base + TAB);
  await page.waitForSelector('.journal-host dl');
  await page.getByRole('button', { name: 'Edit receiver' }).click();
  const d = dialog(page);
  await d.waitFor();
  await d.locator('[name="allowedNetworks"]').fill('10.0.0.0/99');
  await d.getByRole('button', { name: 'Save' }).click();
  await d.locator('.form-error:has-text("prefix")').waitFor();
  await d.getByRole('button', { name: 'Cancel' }).click();
  await d.waitFor({ state: 'detached' });
});

await scenario('accessibility', async (use) => {
  const report = [];
  for (const [size, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const page = use(await newPage({ ...opts, bypassCSP: true }));
    const check = (what) => axeInto(report, page, `${size} ${what}`);
    const wide = async (what) => {
      const w = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
      if (size === 'phone' && w) report.push(`${size} ${what}: scrolls sideways`);
    };
    await signIn(page);
    await page.goto(base + TAB);
    await page.waitForSelector('.journal-host dl');
    await check('journal tab');
    await wide('journal tab');
    if (size === 'phone') await page.screenshot({ path: path.join(shots, 'console-journal-phone.png'), fullPage: true });
    await page.getByRole('button', { name: 'Edit receiver' }).click();
    await dialog(page).waitFor();
    await check('receiver form');
    await wide('receiver form');
    await page.context().close();
  }
  expect(report.length === 0, 'no serious or critical violations:\n' + report.join('\n'));
});

await finish();
