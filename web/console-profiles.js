/* console-profiles: an instance's archiving profiles and their runs (the
 * Profiles tab of #/instances/ID/profiles; docs/sources.md). The profiles
 * (GetProfiles) with Create / Edit (CreateProfile, SetProfile), Delete
 * (DeleteProfile, after a confirmation) and Run now (RunProfile, then its
 * job followed with GetJob); below them the job results (GetWorkerResults)
 * and each run's report (GetWorkerResultReport) with every failure's
 * reason. A password goes to the server and never comes back: the server
 * answers hasPassword only, and the form's password field starts empty
 * ("left empty: kept" when editing). */
import { el } from './dom.js';
import { invoke, SUPERSEDED } from './console-api.js';
import { createTable } from './ui-table.js';
import { createForm } from './ui-form.js';
import { createProgress } from './ui-progress.js';
import { confirmAction, openDialog, openFormDialog } from './ui-dialog.js';
import { toast } from './ui-toast.js';

const POLL_MS = 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const list = (s) => (s || '').split(',').map((x) => x.trim()).filter(Boolean);
const when = (t) => (t ? String(t).replace('T', ' ').replace('Z', ' UTC') : '');

/* How the profile logs in: its own mailbox, or many with an administrator's credential. */
const ACCESS = [
  { value: 'none', label: 'One mailbox (the login\'s own)' },
  { value: 'master', label: 'Many mailboxes: Dovecot master user (mailbox*login)' },
  { value: 'authzid', label: 'Many mailboxes: SASL PLAIN authorization identity' },
];

function errorLine() {
  return el('p', { class: 'error', role: 'alert', hidden: '' });
}

function showError(node, e) {
  node.textContent = e ? e.message : '';
  node.hidden = !e;
}

/* The form's fields, filled from a profile (never its password). */
function profileFields(p, editing) {
  const v = (k, d = '') => (p && p[k] !== undefined && p[k] !== null ? p[k] : d);
  return [
    { name: 'name', label: 'Name', required: true, value: v('name') },
    { name: 'type', label: 'Protocol', type: 'select', value: v('type', 'imap'),
      options: [{ value: 'imap', label: 'IMAP' }, { value: 'pop3', label: 'POP3' }] },
    { name: 'adminMode', label: 'Access', type: 'select', value: v('adminMode', 'none'), options: ACCESS },
    { name: 'host', label: 'Server (host name or address)', required: true, value: v('host') },
    { name: 'port', label: 'Port (empty: 993/995 with TLS, 143/110 with STARTTLS)', type: 'number', value: v('port') },
    { name: 'security', label: 'TLS', type: 'select', value: v('security', 'tls'),
      options: [{ value: 'tls', label: 'TLS (implicit)' }, { value: 'starttls', label: 'STARTTLS' }] },
    { name: 'fingerprint', label: 'Pinned certificate fingerprint (SHA-256; empty: a trusted CA)', value: v('fingerprint') },
    { name: 'login', label: 'Login', required: true, value: v('login') },
    { name: 'password', label: editing ? 'Password (left empty: kept)' : 'Password', type: 'password',
      autocomplete: 'new-password' },
    { name: 'user', label: 'Archive user (one mailbox; empty: the login)', value: v('user') },
    { name: 'mailboxes', label: 'Mailboxes (many: comma separated, mailbox or mailbox=archive user)',
      value: (v('mailboxes', []) || []).join(', ') },
    { name: 'folders', label: 'Folders (comma separated, Name or Name/*; empty: all)', value: (v('folders', []) || []).join(', ') },
    { name: 'exclude', label: 'Excluded folders (comma separated)', value: (v('exclude', []) || []).join(', ') },
    { name: 'schedule', label: 'Schedule', type: 'select', value: v('schedule', 'manual'),
      options: [{ value: 'manual', label: 'Manual (Run now)' }, { value: 'interval', label: 'Every N minutes' },
        { value: 'continuous', label: 'Continuous' }] },
    { name: 'intervalMinutes', label: 'Minutes between runs (Every N minutes)', type: 'number', value: v('intervalMinutes') },
    { name: 'deleteAfterArchive', label: 'Delete from the source what was archived', type: 'checkbox',
      value: !!v('deleteAfterArchive', false) },
  ];
}

const OPTIONAL = ['port', 'fingerprint', 'user', 'mailboxes', 'folders', 'exclude', 'intervalMinutes'];

/* The profile object to send: empty optional fields left out (or, when
 * editing a profile that had them, removed with null); the password only
 * when one was typed. */
function profileFromForm(v, old) {
  const p = { name: v.name.trim(), type: v.type, adminMode: v.adminMode, host: v.host.trim(), security: v.security,
    login: v.login.trim(), schedule: v.schedule, deleteAfterArchive: !!v.deleteAfterArchive };
  if (v.password) p.password = v.password;
  const given = {
    port: v.port, fingerprint: v.fingerprint.trim(), user: v.user.trim(), mailboxes: list(v.mailboxes),
    folders: list(v.folders), exclude: list(v.exclude), intervalMinutes: v.intervalMinutes,
  };
  for (const k of OPTIONAL) {
    const x = given[k];
    const empty = x === null || x === '' || (Array.isArray(x) && x.length === 0);
    if (!empty) p[k] = x;
    else if (old && old[k] !== undefined) p[k] = null;
  }
  return p;
}

/* "profile.host: required" goes under the Host field. */
function fieldError(e) {
  const m = /^profile\.(\w+): (.*)$/.exec(e.message || '');
  if (m && profileFields(null, false).some((f) => f.name === m[1])) e.fields = { [m[1]]: m[2] };
  return e;
}

function profileDialog(id, old) {
  return openFormDialog(old ? 'Edit profile ' + old.name : 'Create profile', (done) => createForm({
    fields: profileFields(old, !!old),
    submitLabel: old ? 'Save' : 'Create',
    validate: (v) => (!old && !v.password ? { password: 'Password is required.' } : null),
    onSubmit: async (v) => {
      const profile = profileFromForm(v, old);
      try {
        if (old) await invoke('SetProfile', { instanceID: id, profileID: old.profileID, profile });
        else await invoke('CreateProfile', { instanceID: id, profile });
      } catch (e) {
        throw fieldError(e);
      }
      done();
    } }), { className: 'profile-dialog' });
}

const counts = (r) => (r ? `${r.archived ?? 0} archived, ${r.duplicates ?? 0} duplicates, ${r.failed ?? 0} failed` +
  (r.deletedFromSource !== undefined ? `, ${r.deletedFromSource} deleted from the source` : '') : '');

/* Follows a run (a job of the instance) until it ends; gives its last state. */
async function followRun(id, jobID, progress, visit) {
  for (;;) {
    let j;
    try {
      j = await invoke('GetJob', { instanceID: id, jobID }, { background: true });
    } catch (e) {
      progress.update({ state: 'failed', message: e.message });
      return null;
    }
    const r = j.result || {};
    if (j.state === 'running') {
      progress.update({ state: 'running', message: `${r.messagesRead ?? 0} messages read, ${counts(r)}` });
    } else {
      progress.update({ state: j.state === 'succeeded' ? 'done' : 'failed',
        message: j.state === 'succeeded' ? counts(r) : `${j.state}: ${j.error || ''} (${counts(r)})` });
      progress.element.dataset.archived = String(r.archived ?? 0);
      progress.element.dataset.result = j.state;
      return j;
    }
    if (visit.gone) return null;
    await sleep(POLL_MS);
  }
}

async function showReport(id, jobID) {
  const j = await invoke('GetWorkerResultReport', { instanceID: id, jobID });
  const r = j.result || {};
  const report = r.report || [];
  const body = el('div', { class: 'run-report', 'data-job': jobID },
    el('dl', { class: 'facts' },
      ...[['Profile', (j.arguments || {}).name], ['State', j.state], ['Started', when(j.startedAt)],
        ['Finished', when(j.finishedAt)], ['Counts', counts(r)], ['Error', j.error || '']]
        .flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v ?? '' })])),
    el('h3', { text: 'Failed messages' }),
    report.length ? el('ul', { class: 'report-lines' }, ...report.map((line) => el('li', { text: line })))
      : el('p', { class: 'muted', text: j.error ? 'The run itself failed: ' + j.error : 'None.' }));
  await openDialog({ title: 'Run ' + jobID, body, className: 'profile-dialog' });
}

export async function profilesTab(c, id, visit) {
  const error = errorLine();
  const jobs = el('div', { class: 'jobs' });
  let load = null;
  const act = (label, p, fn, danger) => el('button', { type: 'button', class: 'ghost small' + (danger ? ' danger-text' : ''),
    text: label, 'aria-label': label + ' ' + p.name,
    onclick: async () => {
      try {
        await fn();
      } catch (e) {
        toast(e.message, { kind: 'error' });
      }
      load();
    } });
  const runNow = async (p) => {
    const progress = createProgress({ label: 'Run ' + p.name });
    progress.element.dataset.job = 'RunProfile:' + p.profileID;
    jobs.prepend(progress.element);
    while (jobs.children.length > 5) jobs.lastChild.remove();
    const { jobID } = await invoke('RunProfile', { instanceID: id, profileID: p.profileID });
    progress.element.dataset.jobId = jobID;
    loadResults();
    await followRun(id, jobID, progress, visit);
    loadResults();
  };
  const profiles = createTable({
    columns: [
      { key: 'name', label: 'Profile' },
      { key: 'type', label: 'Source', render: (p) => `${(p.type || '').toUpperCase()} ${p.host}${p.port ? ':' + p.port : ''}` },
      { key: 'login', label: 'Login' },
      { key: 'mailboxes', label: 'Mailboxes', render: (p) => ((p.mailboxes || []).join(', ') || p.user || p.login) },
      { key: 'schedule', label: 'Schedule', render: (p) => (p.schedule === 'interval' ? `every ${p.intervalMinutes} min` : p.schedule || 'manual') },
      { key: 'hasPassword', label: 'Password', render: (p) => (p.hasPassword ? 'set' : 'none') },
      { key: 'actions', label: 'Actions', sortable: false, render: (p) => el('span', { class: 'row-actions' },
        act('Run now', p, () => runNow(p)),
        act('Edit', p, async () => {
          if (await profileDialog(id, p)) toast('Profile ' + p.name + ' saved.');
        }),
        act('Delete', p, async () => {
          if (await confirmAction({ title: 'Delete profile ' + p.name + '?',
            text: 'Its runs stop coming; what it archived stays. Its incremental state goes: created again, it reads everything again (as duplicates).',
            confirmLabel: 'Delete' })) {
            await invoke('DeleteProfile', { instanceID: id, profileID: p.profileID });
            toast('Profile ' + p.name + ' deleted.');
          }
        }, true)) },
    ],
    filterLabel: 'Filter profiles', empty: 'No profiles.', rowKey: 'profileID', caption: 'Archiving profiles',
  });
  const results = createTable({
    columns: [
      { key: 'jobID', label: 'Run' },
      { key: 'profile', label: 'Profile', render: (j) => (j.arguments || {}).name || (j.arguments || {}).profileID || '' },
      { key: 'state', label: 'State', render: (j) => el('span', { class: 'state ' + (j.state === 'succeeded' ? 'ok' : j.state === 'running' ? 'pending' : 'bad'),
        'data-state': j.state, text: j.state }) },
      { key: 'startedAt', label: 'Started', render: (j) => when(j.startedAt) },
      { key: 'archived', label: 'Archived', render: (j) => String((j.result || {}).archived ?? 0), sortValue: (j) => (j.result || {}).archived ?? 0 },
      { key: 'duplicates', label: 'Duplicates', render: (j) => String((j.result || {}).duplicates ?? 0), sortValue: (j) => (j.result || {}).duplicates ?? 0 },
      { key: 'failed', label: 'Failed', render: (j) => String((j.result || {}).failed ?? 0), sortValue: (j) => (j.result || {}).failed ?? 0 },
      { key: 'error', label: 'Error', render: (j) => j.error || '' },
      { key: 'report', label: 'Report', sortable: false, render: (j) => el('button', { type: 'button', class: 'ghost small',
        text: 'Report', 'aria-label': 'Report of run ' + j.jobID,
        onclick: () => showReport(id, j.jobID).catch((e) => toast(e.message, { kind: 'error' })) }) },
    ],
    filterLabel: 'Filter runs', empty: 'No runs yet.', rowKey: 'jobID', caption: 'Job results', pageSize: 10,
  });
  async function loadResults() {
    try {
      const rows = await invoke('GetWorkerResults', { instanceID: id }, { kind: 'profile-results' });
      if (rows === SUPERSEDED || visit.gone) return;
      results.setRows(rows || []);
    } catch (e) {
      showError(error, e);
    }
  }
  load = async () => {
    try {
      const rows = await invoke('GetProfiles', { instanceID: id }, { kind: 'profiles' });
      if (rows === SUPERSEDED || visit.gone) return;
      showError(error, null);
      profiles.setRows(rows || []);
    } catch (e) {
      showError(error, e);
    }
    await loadResults();
  };
  const add = el('button', { type: 'button', class: 'primary', text: 'Create profile', id: 'create-profile',
    onclick: async () => {
      if (await profileDialog(id, null)) {
        toast('Profile created.');
        load();
      }
    } });
  c.append(el('div', { class: 'panel-head' }, el('h2', { text: 'Archiving profiles' }), add),
    el('p', { class: 'muted', text: 'Where mail comes from (IMAP or POP3), for which users and when. Passwords are kept sealed and never shown.' }),
    error, jobs, profiles.element,
    el('div', { class: 'panel-head' }, el('h2', { text: 'Job results' }),
      el('button', { type: 'button', class: 'ghost', text: 'Refresh', id: 'refresh-results', onclick: () => loadResults() })),
    results.element);
  await load();
}
