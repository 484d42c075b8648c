// Browser tests of the Console's archiving profiles and moving instances in
// Chromium (playwright-core), started by tests/integration/test_console_pages.py,
// which sets up the system (two Instance Hosts, a real Dovecot) and passes
// everything in COFFER_CONSOLE_TEST (JSON). Each scenario's outcome (and what
// it saw) goes into the results file; screenshots into the artifacts folder.
import path from 'node:path';
import { DESKTOP, PHONE, axeInto, expect, startHarness } from './harness.mjs';

// a run of a few messages or a move of a small instance: seconds; generous on a loaded machine
const JOB_MS = 30000;

// Every answer of the Management API the page got, to look for a password in.
const answers = [];
const { cfg, base, shots, newPage, signIn, scenario, finish } =
  await startHarness({ prefix: 'console-pages', answers });

const dialog = (page) => page.locator('dialog.profile-dialog[open]');

async function createProfile(page, fields) {
  await page.click('#create-profile');
  const d = dialog(page);
  await d.waitFor();
  for (const [name, value] of Object.entries(fields)) {
    const input = d.locator(`[name="${name}"]`);
    if ((await input.evaluate((e) => e.tagName)) === 'SELECT') await input.selectOption(value);
    else await input.fill(String(value));
  }
  await d.getByRole('button', { name: 'Create' }).click();
  await d.waitFor({ state: 'detached' });
  await page.waitForSelector(`.data-table tr[data-key] td:text-is("${fields.name}")`);
}

// Runs the profile of that name from its row; gives the finished progress.
async function runNow(page, name) {
  await page.getByRole('button', { name: 'Run now ' + name, exact: true }).click();
  const progress = page.locator('.progress-view[data-job^="RunProfile:"]').first();
  await progress.waitFor();
  const sawRunning = await progress.getAttribute('data-state');
  await page.waitForSelector('.progress-view[data-job^="RunProfile:"][data-result]', { timeout: JOB_MS });
  return { progress, sawRunning };
}

const imapProfile = (over) => ({
  name: 'dovecot alice', type: 'imap', adminMode: 'none', host: '127.0.0.1', port: cfg.imapPort,
  security: 'tls', fingerprint: cfg.fingerprint, login: 'alice', password: cfg.secret, user: 'alice', ...over,
});

// An IMAP profile against the real Dovecot: created, run, its progress and
// result with the archived count, and the messages found in the instance.
await scenario('profile_run', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.goto(base + '/#/instances/acme/profiles');
  await page.waitForSelector('.tab-body[data-tab="profiles"] #create-profile');
  // a field the server refuses shows under it
  await page.click('#create-profile');
  let d = dialog(page);
  await d.locator('[name="name"]').fill('bad port');
  await d.locator('[name="host"]').fill('127.0.0.1');
  await d.locator('[name="login"]').fill('x');
  await d.locator('[name="password"]').fill('x');
  await d.locator('[name="fingerprint"]').fill('not-a-fingerprint');
  await d.getByRole('button', { name: 'Create' }).click();
  const fpError = d.locator('[name="fingerprint"] ~ .field-error');
  await fpError.filter({ hasText: /./ }).waitFor();
  await d.getByRole('button', { name: 'Cancel' }).click();
  await d.waitFor({ state: 'detached' });

  await createProfile(page, imapProfile({}));
  const row = page.locator('.data-table tr[data-key]', { hasText: 'dovecot alice' });
  expect((await row.textContent()).includes('set'), 'the password shown as set, not shown');
  const { progress, sawRunning } = await runNow(page, 'dovecot alice');
  expect((await progress.getAttribute('data-result')) === 'succeeded', 'the run succeeded: ' + await progress.textContent());
  const archived = Number(await progress.getAttribute('data-archived'));
  expect(archived === cfg.messages, `${cfg.messages} archived: ` + await progress.textContent());
  expect((await progress.textContent()).includes(`${cfg.messages} archived`), 'the counts shown');
  // the job results: the run with its counts, and its report
  const run = page.locator('tr[data-key]', { has: page.locator('[data-state="succeeded"]') }).first();
  await run.waitFor();
  expect((await run.textContent()).includes('dovecot alice'), 'the run in the job results');
  await run.getByRole('button', { name: /Report of run/ }).click();
  const report = page.locator('dialog.profile-dialog[open] .run-report');
  await report.waitFor();
  expect((await report.textContent()).includes(`${cfg.messages} archived`), 'the report with its counts');
  await page.screenshot({ path: path.join(shots, 'console-profile-report.png') });
  await page.locator('dialog.profile-dialog[open]').getByRole('button', { name: 'Close' }).first().click();
  await page.screenshot({ path: path.join(shots, 'console-profiles.png') });
  // the messages are in the instance: its Search tab finds them
  await page.goto(base + '/#/instances/acme/search');
  await page.fill('#search-form [name="query"]', 'subject:' + cfg.subject);
  await page.click('#search-form button[type="submit"]');
  await page.locator('.search-summary').filter({ hasText: `${cfg.messages} messages found` }).waitFor();
  return { archived, sawRunning };
});

// A wrong password: the run fails, its reason in the job results and the report.
await scenario('profile_wrong_password', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.goto(base + '/#/instances/acme/profiles');
  await page.waitForSelector('#create-profile');
  await createProfile(page, imapProfile({ name: 'wrong password', password: 'not-the-password' }));
  const { progress } = await runNow(page, 'wrong password');
  expect((await progress.getAttribute('data-result')) === 'failed', 'the run failed: ' + await progress.textContent());
  const row = page.locator('tr[data-key]', { has: page.locator('[data-state="failed"]') }).first();
  await row.waitFor();
  await row.getByRole('button', { name: /Report of run/ }).click();
  const report = page.locator('dialog.profile-dialog[open] .run-report');
  await report.waitFor();
  const reason = await report.textContent();
  expect(/auth|login|credential/i.test(reason), 'the reason in the report: ' + reason);
  await page.screenshot({ path: path.join(shots, 'console-profile-failed.png') });
  return { reason };
});

// The password never comes back: not in any answer the page got, not in the
// page, not in the edit form; a profile edited without one keeps it.
await scenario('password_never_returned', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.goto(base + '/#/instances/acme/profiles');
  await page.waitForSelector('tr[data-key]');
  await page.getByRole('button', { name: 'Edit dovecot alice', exact: true }).click();
  const d = dialog(page);
  await d.waitFor();
  expect((await d.locator('[name="password"]').inputValue()) === '', 'an empty password field');
  await d.locator('[name="exclude"]').fill('Trash, Junk');
  await d.getByRole('button', { name: 'Save' }).click();
  await d.waitFor({ state: 'detached' });
  const html = await page.evaluate(() => document.documentElement.outerHTML +
    [...document.querySelectorAll('input')].map((i) => i.value).join(' '));
  expect(!html.includes(cfg.secret), 'no password in the page');
  expect(answers.length > 10, 'answers recorded: ' + answers.length);
  expect(!answers.some((a) => a.includes(cfg.secret)), 'no password in any API answer');
  expect(answers.some((a) => a.includes('"hasPassword":true')), 'hasPassword in the answers');
  // still set: it runs again (everything a duplicate now)
  const { progress } = await runNow(page, 'dovecot alice');
  expect((await progress.getAttribute('data-result')) === 'succeeded', 'the edited profile still logs in: ' + await progress.textContent());
});

// A move cancelled while it copies: the instance stays where it was.
await scenario('move_cancelled', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.goto(base + '/#/instances/mover/move');
  await page.waitForSelector(`.move-where[data-host="${cfg.sourceHost}"]`);
  await page.selectOption('#move-form [name="target"]', cfg.targetHost);
  await page.fill('#move-form [name="baseDirectory"]', cfg.targetDir + '-cancelled');
  await page.click('#move-form button[type="submit"]');
  await page.locator('dialog.confirm').getByRole('button', { name: 'Move' }).click();
  await page.locator('.move-job .progress-text').filter({ hasText: /copying/ }).waitFor({ timeout: JOB_MS });
  await page.screenshot({ path: path.join(shots, 'console-move-progress.png') });
  await page.click('.move-cancel');
  await page.waitForSelector('.move-job .progress-view[data-result]', { timeout: JOB_MS });
  const job = page.locator('.move-job .progress-view').first();
  expect((await job.getAttribute('data-result')) === 'cancelled', 'the move cancelled: ' + await job.textContent());
  await page.waitForSelector(`.move-where[data-host="${cfg.sourceHost}"]`);
  const where = await page.textContent('.move-where');
  expect(where.includes('(running)'), 'still running on the source: ' + where);
});

// Many mailboxes with an administrator's credential (a Dovecot master
// user), one folder excluded: what is there is already archived (the
// first profile's run), so every message is a duplicate; then the profile
// is deleted after a confirmation (cancelled first).
await scenario('profile_master_and_delete', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.goto(base + '/#/instances/acme/profiles');
  await page.waitForSelector('#create-profile');
  await createProfile(page, imapProfile({ name: 'master user', adminMode: 'master', login: cfg.master,
    password: cfg.masterPassword, user: '', mailboxes: 'alice=alice', exclude: 'Lists' }));
  const { progress } = await runNow(page, 'master user');
  const text = await progress.textContent();
  expect((await progress.getAttribute('data-result')) === 'succeeded', 'the master user\'s run succeeded: ' + text);
  const inbox = cfg.messages - 2;
  expect(text.includes(`0 archived, ${inbox} duplicates, 0 failed`), `the ${inbox} messages outside Lists, duplicates: ` + text);
  await page.getByRole('button', { name: 'Delete master user', exact: true }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Cancel' }).click();
  const row = page.locator('table:has(caption:text-is("Archiving profiles")) tr[data-key]', { hasText: 'master user' });
  expect(await row.count() === 1, 'kept after Cancel');
  await page.getByRole('button', { name: 'Delete master user', exact: true }).click();
  await page.locator('dialog.confirm').getByRole('button', { name: 'Delete' }).click();
  await row.waitFor({ state: 'detached' });
  return { text };
});

// An instance moved from its Move tab to the other Instance Host.
await scenario('move_instance', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.goto(base + '/#/instances/mover/move');
  await page.waitForSelector(`.move-where[data-host="${cfg.sourceHost}"]`);
  await page.selectOption('#move-form [name="target"]', cfg.targetHost);
  await page.fill('#move-form [name="baseDirectory"]', cfg.targetDir);
  await page.click('#move-form button[type="submit"]');
  await page.locator('dialog.confirm').getByRole('button', { name: 'Move' }).click();
  const job = page.locator('.move-job .progress-view').first();
  await job.waitFor();
  await page.waitForSelector('.move-job .progress-view[data-result]', { timeout: JOB_MS });
  expect((await job.getAttribute('data-result')) === 'succeeded', 'the move succeeded: ' + await job.textContent());
  expect(await page.locator('.move-cancel').isHidden(), 'no Cancel once it ended');
  await page.waitForSelector(`.move-where[data-host="${cfg.targetHost}"]`);
  const where = await page.textContent('.move-where');
  expect(where.includes('(running)'), 'running on the target: ' + where);
  await page.screenshot({ path: path.join(shots, 'console-move.png') });
  return { host: cfg.targetHost };
});

// And back with the Move instances form (a filter), on a phone.
await scenario('move_instances_back', async (use) => {
  const page = use(await newPage(PHONE));
  await signIn(page);
  await page.goto(base + '/#/move');
  await page.waitForSelector('#move-instances-form');
  await page.fill('#move-instances-form [name="instanceFilter"]', 'mov*');
  await page.selectOption('#move-instances-form [name="sourceInstanceHost"]', cfg.targetHost);
  await page.selectOption('#move-instances-form [name="targetInstanceHost"]', cfg.sourceHost);
  await page.fill('#move-instances-form [name="targetDirectory"]', cfg.backDir);
  await page.click('#move-instances-form button[type="submit"]');
  await page.locator('dialog.confirm').getByRole('button', { name: 'Move' }).click();
  await page.waitForSelector('.move-job .progress-view[data-result]', { timeout: JOB_MS });
  const job = page.locator('.move-job .progress-view').first();
  expect((await job.getAttribute('data-result')) === 'succeeded', 'moved back: ' + await job.textContent());
  expect((await job.textContent()).includes('1 moved'), 'one instance moved: ' + await job.textContent());
  const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  expect(!wide, 'no sideways scrolling on a phone');
  await page.screenshot({ path: path.join(shots, 'console-move-instances-phone.png') });
  await page.goto(base + '/#/instances/mover/move');
  await page.waitForSelector(`.move-where[data-host="${cfg.sourceHost}"]`);
});

// Export a search to a zip, and restore a folder to Dovecot by IMAP APPEND
// (the certificate pinned), each as a job with its outcome on the page;
// after the profiles' runs, which would archive the restored copies again.
await scenario('export_restore', async (use) => {
  const page = use(await newPage(DESKTOP));
  await signIn(page);
  await page.goto(base + '/#/instances/acme/export');
  const ex = page.locator('#export-form');
  await ex.waitFor();
  // neither a folder nor a search: a field error, nothing sent
  await ex.locator('[name="name"]').fill('console-export.zip');
  await ex.locator('button[type=submit]').click();
  await ex.locator('.field-error', { hasText: 'Give a folder or a search' }).first().waitFor();
  await ex.locator('[name="e-query"]').fill('subject:' + cfg.subject);
  await ex.locator('button[type=submit]').click();
  const done = page.locator('.progress-view[data-job="ExportMessages:console-export.zip"][data-result="done"]');
  await done.waitFor({ timeout: JOB_MS });
  expect((await done.getAttribute('data-count')) === String(cfg.messages), 'every message exported: ' + await done.textContent());
  const re = page.locator('#restore-form');
  await re.locator('[name="r-query"]').fill('subject:' + cfg.subject);
  await re.locator('[name="host"]').fill('127.0.0.1');
  await re.locator('[name="port"]').fill(String(cfg.imapPort));
  await re.locator('[name="fingerprint"]').fill(cfg.fingerprint);
  await re.locator('[name="login"]').fill('alice');
  await re.locator('[name="password"]').fill(cfg.secret);
  await re.locator('[name="targetFolder"]').fill('Restored');
  await re.locator('button[type=submit]').click();
  const restored = page.locator('.progress-view[data-job="RestoreMessages:imap"][data-result="done"]');
  await restored.waitFor({ timeout: JOB_MS });
  expect((await restored.getAttribute('data-count')) === String(cfg.messages), 'every message restored: ' + await restored.textContent());
  expect((await re.locator('[name="password"]').inputValue()) === '', 'the password field emptied');
  const html = await page.evaluate(() => document.documentElement.outerHTML);
  expect(!html.includes(cfg.secret), 'no password in the page');
});

// axe-core on the new pages, desktop and phone: no serious or critical violation.
await scenario('accessibility', async (use) => {
  const report = [];
  for (const [size, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const page = use(await newPage({ ...opts, bypassCSP: true }));
    const check = (what) => axeInto(report, page, `${size} ${what}`);
    await signIn(page);
    for (const [route, ready] of [['instances/acme/profiles', '.tab-body tr[data-key]'],
      ['instances/mover/move', '.move-where'], ['move', '#move-instances-form'],
      ['instances/acme/export', '#export-form']]) {
      await page.goto(base + '/#/' + route);
      await page.waitForSelector(ready);
      await check(route);
    }
    await page.goto(base + '/#/instances/acme/profiles');
    await page.click('#create-profile');
    await dialog(page).waitFor();
    await check('profile form');
    if (size === 'phone') {
      const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
      expect(!wide, 'the profile form without sideways scrolling on a phone');
      await page.screenshot({ path: path.join(shots, 'console-profile-form-phone.png') });
    }
    await page.context().close();
  }
  expect(report.length === 0, 'no serious or critical violations:\n' + report.join('\n'));
});

await finish();
