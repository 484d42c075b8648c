/* console-instance: one instance's pages, #/instances/ID/TAB: its overview
 * (configuration, state, statistics), users (create, edit, privileges, login
 * privileges, folder rights, app passwords (console-users.js), reset MFA,
 * delete), stores (state, a new one, verify, rebuild the indexes),
 * live statistics (polled, drawn as SVG), search, imports (a job with progress),
 * archiving profiles and their runs (console-profiles.js), the journal receiver (console-journal.js), compliance (legal hold on/off, retention policies shown) and its audit
 * log (filters, pages, verify), and moving it to another Instance Host
 * (console-move.js). Every tab is a table of TABS
 * with its own render(container, id, visit); all through the Management
 * API. */
import { el } from './dom.js';
import { formatSize } from './format.js';
import { invoke, runJob, SUPERSEDED } from './console-api.js';
import { createTable } from './ui-table.js';
import { createForm } from './ui-form.js';
import { createJobProgress } from './ui-progress.js';
import { confirmAction, openFormDialog } from './ui-dialog.js';
import { toast, actionButton } from './ui-toast.js';
import { profilesTab } from './console-profiles.js';
import { moveTab } from './console-move.js';
import { exportTab } from './console-export.js';
import { editUser, folderRights, appPasswords } from './console-users.js';
import { journalTab } from './console-journal.js';

const PRIVILEGES = ['admin', 'login', 'archive', 'export', 'delete', 'auditor'];
const LOGIN_PRIVILEGES = ['web', 'imap', 'api'];

function errorLine() {
  return el('p', { class: 'error', role: 'alert', hidden: '' });
}

function showError(node, e) {
  node.textContent = e ? e.message : '';
  node.hidden = !e;
}

function facts(pairs) {
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of pairs) dl.append(el('dt', { text: k }), el('dd', { text: v === undefined || v === null ? '' : String(v) }));
  return dl;
}

/* Check boxes for a list argument; values() gives the comma list. */
function checkFields(prefix, names, chosen) {
  return names.map((n) => ({ name: prefix + n, label: n, type: 'checkbox', value: chosen.includes(n) }));
}
const picked = (v, prefix, names) => names.filter((n) => v[prefix + n]).join(',');

async function overview(c, id, visit) {
  const error = errorLine();
  c.append(error);
  try {
    const [conf, stats] = await Promise.all([invoke('GetInstanceConfiguration', { instanceID: id }),
      invoke('GetInstanceStatistics', { instanceID: id }).catch((e) => ({ error: e.message }))]);
    if (visit.gone) return;
    c.append(el('section', { class: 'panel', 'aria-labelledby': 'ov-conf' }, el('h2', { id: 'ov-conf', text: 'Configuration' }),
      facts([['Instance ID', conf.instanceID], ['Name', conf.displayName], ['Alias', conf.alias],
        ['Instance Host', conf.instanceHost], ['Base directory', conf.baseDirectory],
        ['Start mode', conf.startMode], ['State', conf.status]])));
    const rows = stats.error ? [['Statistics', stats.error]]
      : Object.entries(stats).filter(([, v]) => typeof v !== 'object').map(([k, v]) => [k, v]);
    c.append(el('section', { class: 'panel', 'aria-labelledby': 'ov-stats' }, el('h2', { id: 'ov-stats', text: 'Statistics' }),
      facts(rows)));
  } catch (e) {
    showError(error, e);
  }
}

async function users(c, id, visit) {
  const error = errorLine();
  let load = null;
  const act = (label, name, fn, danger) => actionButton(label, name, fn, { danger, after: () => load() });
  const editPrivileges = (u) => openFormDialog('Privileges of ' + u.userName, (done) => createForm({
    fields: [...checkFields('p-', PRIVILEGES, u.privileges || []), ...checkFields('l-', LOGIN_PRIVILEGES, u.loginPrivileges || [])
      .map((f) => ({ ...f, label: 'log in by ' + f.label }))],
    onSubmit: async (v) => {
      await invoke('SetUserPrivileges', { instanceID: id, userName: u.userName, privileges: picked(v, 'p-', PRIVILEGES) });
      await invoke('SetUserLoginPrivileges', { instanceID: id, userName: u.userName, loginPrivileges: picked(v, 'l-', LOGIN_PRIVILEGES) });
      done();
    } }));
  const table = createTable({
    columns: [
      { key: 'userName', label: 'User' },
      { key: 'fullName', label: 'Full name' },
      { key: 'privileges', label: 'Privileges', render: (u) => (u.privileges || []).join(', ') },
      { key: 'loginPrivileges', label: 'Log in by', render: (u) => (u.loginPrivileges || []).join(', ') },
      { key: 'actions', label: 'Actions', sortable: false, render: (u) => el('span', { class: 'row-actions' },
        act('Edit', u.userName, async () => {
          const name = await editUser(id, u);
          if (name) toast(name + ' saved.');
        }),
        act('Privileges', u.userName, async () => {
          if (await editPrivileges(u)) toast('Privileges of ' + u.userName + ' saved.');
        }),
        act('Folder rights', u.userName, async () => {
          const folder = await folderRights(id, u.userName);
          if (folder) toast('Rights of ' + u.userName + ' on ' + folder + ' saved.');
        }),
        act('App passwords', u.userName, () => appPasswords(id, u.userName)),
        act('Reset MFA', u.userName, async () => {
          if (await confirmAction({ title: 'Reset MFA of ' + u.userName + '?', text: 'They sign in with the password alone until they enrol again.', confirmLabel: 'Reset MFA' })) {
            await invoke('DisableMFA', { instanceID: id, userName: u.userName });
            toast('MFA of ' + u.userName + ' reset.');
          }
        }),
        act('Delete', u.userName, async () => {
          if (await confirmAction({ title: 'Delete user ' + u.userName + '?', text: 'Their archived mail stays.', confirmLabel: 'Delete' })) {
            await invoke('DeleteUser', { instanceID: id, userName: u.userName });
            toast(u.userName + ' deleted.');
          }
        }, true)) },
    ],
    filterLabel: 'Filter users', empty: 'No users.', rowKey: 'userName', caption: 'Users',
  });
  load = async () => {
    try {
      const list = await invoke('GetUsers', { instanceID: id }, { kind: 'instance-users' });
      if (list === SUPERSEDED || visit.gone) return;
      showError(error, null);
      table.setRows(list || []);
    } catch (e) {
      showError(error, e);
    }
  };
  const add = el('button', { type: 'button', class: 'primary', text: 'Create user', id: 'create-user',
    onclick: async () => {
      if (await openFormDialog('Create user', (done) => createForm({
        fields: [
          { name: 'userName', label: 'User name', required: true },
          { name: 'fullName', label: 'Full name' },
          { name: 'emailAddresses', label: 'Email addresses (comma separated)' },
          { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password' },
          ...checkFields('p-', PRIVILEGES, ['login', 'archive']),
          ...checkFields('l-', LOGIN_PRIVILEGES, ['web', 'imap']).map((f) => ({ ...f, label: 'log in by ' + f.label })),
        ],
        submitLabel: 'Create',
        validate: (v) => (v.password && v.password.length < 8 ? { password: 'At least 8 characters.' } : null),
        onSubmit: async (v) => {
          const args = { instanceID: id, userName: v.userName.trim(), privileges: picked(v, 'p-', PRIVILEGES),
            loginPrivileges: picked(v, 'l-', LOGIN_PRIVILEGES) };
          if (v.fullName) args.fullName = v.fullName;
          if (v.emailAddresses.trim()) args.emailAddresses = v.emailAddresses;
          if (v.password) args.password = v.password;
          try {
            await invoke('CreateUser', args);
          } catch (e) {
            if (/userName|exists/.test(e.message)) e.fields = { userName: e.message };
            else if (/password/.test(e.message)) e.fields = { password: e.message };
            throw e;
          }
          done();
        } }))) {
        toast('User created.');
        load();
      }
    } });
  c.append(el('div', { class: 'panel-head' }, el('h2', { text: 'Users' }), add), error, table.element);
  await load();
}

async function search(c, id) {
  const error = errorLine();
  const summary = el('p', { class: 'search-summary', 'aria-live': 'polite' });
  const table = createTable({
    columns: [
      { key: 'date', label: 'Date' },
      { key: 'from', label: 'From' },
      { key: 'subject', label: 'Subject' },
      { key: 'folder', label: 'Folder', render: (m) => m.folder || m.path || '' },
    ],
    filterLabel: 'Filter results', empty: 'No messages.', rowKey: 'id', caption: 'Search results',
  });
  const form = createForm({
    fields: [{ name: 'query', label: 'Query (e.g. from:alice subject:"report")', required: true }],
    submitLabel: 'Search',
    onSubmit: async (v) => {
      const r = await invoke('Search', { instanceID: id, query: v.query, limit: 200 }, { kind: 'instance-search' });
      if (r === SUPERSEDED) return;
      summary.textContent = r.total + ' message' + (r.total === 1 ? '' : 's') + ' found' +
        (r.total > (r.messages || []).length ? ', the first ' + r.messages.length + ' shown.' : '.');
      table.setRows(r.messages || []);
    },
  });
  form.element.id = 'search-form';
  c.append(el('h2', { text: 'Search' }), form.element, error, summary, table.element);
}

/* Every folder of the instance's users with its count (GetFolderStatistics);
 * a folder's button lists its newest messages (GetMessages, paged by 100). */
async function folders(c, id, visit) {
  const error = errorLine();
  const heading = el('h3', { class: 'folder-shown', 'aria-live': 'polite' });
  const more = el('button', { type: 'button', class: 'ghost', id: 'folder-more', text: 'Older messages' });
  more.hidden = true;
  const messages = createTable({
    columns: [
      { key: 'date', label: 'Date' },
      { key: 'from', label: 'From' },
      { key: 'subject', label: 'Subject' },
      { key: 'id', label: 'ID' },
    ],
    filterLabel: 'Filter messages', empty: 'No messages.', rowKey: 'id', caption: 'Messages of the folder',
  });
  let shown = { folder: null, rows: [] };
  async function open(folder, offset) {
    try {
      const r = await invoke('GetMessages', { instanceID: id, folder, limit: 100, offset }, { kind: 'instance-folder' });
      if (r === SUPERSEDED || visit.gone) return;
      showError(error, null);
      shown = { folder, rows: offset ? shown.rows.concat(r.messages || []) : r.messages || [] };
      heading.textContent = `${folder}: ${shown.rows.length} of ${r.total ?? shown.rows.length} shown, newest first`;
      heading.dataset.folder = folder;
      more.hidden = !(r.total > shown.rows.length);
      messages.setRows(shown.rows);
    } catch (e) {
      showError(error, e);
    }
  }
  more.onclick = () => open(shown.folder, shown.rows.length);
  const list = createTable({
    columns: [
      { key: 'folder', label: 'Folder', render: (f) => el('button', { type: 'button', class: 'ghost folder-open',
        'data-folder': f.folder, text: f.folder, onclick: () => open(f.folder, 0) }) },
      { key: 'messages', label: 'Messages' },
      { key: 'bytes', label: 'Size', render: (f) => formatSize(f.bytes) },
    ],
    filterLabel: 'Filter folders', empty: 'No folders yet.', rowKey: 'folder', caption: 'Folders',
  });
  c.append(el('h2', { text: 'Folders' }), error, list.element, heading, messages.element, more);
  try {
    list.setRows(await invoke('GetFolderStatistics', { instanceID: id }) || []);
  } catch (e) {
    showError(error, e);
  }
}

async function imports(c, id) {
  const list = await invoke('GetUsers', { instanceID: id });
  const jobs = el('div', { class: 'jobs' });
  const form = createForm({
    fields: [
      { name: 'userName', label: 'User', type: 'select', options: (list || []).map((u) => ({ value: u.userName, label: u.userName })) },
      { name: 'path', label: 'Path (below the base directory, e.g. import/mail.mbox)', required: true, value: 'import/' },
      { name: 'folder', label: 'Archive folder', value: 'Import' },
    ],
    submitLabel: 'Import',
    onSubmit: async (v) => {
      const p = createJobProgress('Import ' + v.path, 'ImportFiles:' + v.path);
      jobs.prepend(p.element);
      try {
        const r = await runJob('ImportFiles', { instanceID: id, userName: v.userName, path: v.path.trim(),
          folder: v.folder || 'Import' }, p.follow);
        p.update({ state: 'done', message: `${r.archived} archived, ${r.duplicates} duplicates, ${r.skipped} skipped, ${r.defects} with defects` });
        p.element.dataset.archived = String(r.archived);
      } catch (e) {
        p.update({ state: 'failed', message: e.message });
        throw e;
      }
    },
  });
  form.element.id = 'import-form';
  c.append(el('h2', { text: 'Import' }),
    el('p', { text: 'EML files, folders of them, mbox files or Maildir trees from below the instance\'s import/ directory on its Instance Host.' }),
    form.element, jobs);
}

const AUDIT_PAGE = 50;

async function audit(c, id, visit) {
  const error = errorLine();
  const info = el('span', { class: 'table-info', 'aria-live': 'polite' });
  const verified = el('p', { class: 'audit-verified', 'aria-live': 'polite' });
  let offset = 0;
  let total = 0;
  const filters = {};
  const inputs = ['user', 'action', 'since', 'until', 'text'].map((name) => {
    const input = el('input', { type: 'text', name, autocomplete: 'off' });
    filters[name] = input;
    return el('label', {}, name === 'text' ? 'Details contain' : name[0].toUpperCase() + name.slice(1), input);
  });
  const tbody = el('tbody');
  const table = el('table', { class: 'data-table audit-table' }, el('caption', { text: 'Audit log, newest first' }),
    el('thead', {}, el('tr', {}, ...['Time', 'User', 'Action', 'Address', 'Details'].map((h) => el('th', { scope: 'col', text: h })))), tbody);
  const prev = el('button', { type: 'button', class: 'ghost', text: '← Newer', onclick: () => { offset = Math.max(0, offset - AUDIT_PAGE); load(); } });
  const next = el('button', { type: 'button', class: 'ghost', text: 'Older →', onclick: () => { offset += AUDIT_PAGE; load(); } });
  async function load() {
    const args = { instanceID: id, limit: AUDIT_PAGE, offset };
    for (const [k, input] of Object.entries(filters)) if (input.value.trim()) args[k] = input.value.trim();
    try {
      const r = await invoke('GetInstanceAuditLog', args, { kind: 'instance-audit' });
      if (r === SUPERSEDED || visit.gone) return;
      showError(error, null);
      total = r.total;
      tbody.replaceChildren(...(r.entries || []).map((e) => el('tr', { 'data-action': e.action },
        el('td', { text: e.time }), el('td', { text: e.user || '' }), el('td', { text: e.action }),
        el('td', { text: e.address || '' }), el('td', {}, el('code', { class: 'details', text: JSON.stringify(e.details || {}) })))));
      if (!(r.entries || []).length) tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: '5', text: 'No entries.' })));
      info.textContent = total ? (offset + 1) + '–' + (offset + (r.entries || []).length) + ' of ' + total : '0 entries';
      prev.disabled = offset === 0;
      next.disabled = offset + AUDIT_PAGE >= total;
    } catch (e) {
      showError(error, e);
    }
  }
  const apply = el('button', { type: 'submit', class: 'primary', text: 'Apply' });
  const form = el('form', { class: 'filters', id: 'audit-filters',
    onsubmit: (ev) => { ev.preventDefault(); offset = 0; load(); } }, ...inputs, apply);
  const verify = el('button', { type: 'button', class: 'ghost', text: 'Verify the audit log', id: 'verify-audit',
    onclick: async () => {
      verified.textContent = 'Verifying…';
      try {
        const r = await invoke('VerifyInstanceAuditLog', { instanceID: id });
        verified.textContent = 'Verified: ' + (typeof r === 'object' ? JSON.stringify(r) : String(r));
      } catch (e) {
        verified.textContent = 'Verification failed: ' + e.message;
      }
    } });
  c.append(el('div', { class: 'panel-head' }, el('h2', { text: 'Audit log' }), verify), verified, form, error,
    el('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': 'Audit log entries' }, table),
    el('div', { class: 'pager' }, prev, info, next));
  await load();
}

/* GetStores answers a line per store: "NAME STATE key=value ...". */
function parseStore(line) {
  const [name, state, ...rest] = String(line).split(/\s+/);
  const row = { storeName: name, state };
  for (const kv of rest) {
    const i = kv.indexOf('=');
    if (i > 0) row[kv.slice(0, i)] = Number(kv.slice(i + 1));
  }
  return row;
}

const STORE_STATES = ['current', 'normal', 'write-protected', 'disabled'];

async function stores(c, id, visit) {
  const error = errorLine();
  const jobs = el('div', { class: 'jobs' });
  let load = null;
  const table = createTable({
    columns: [
      { key: 'storeName', label: 'Store' },
      { key: 'state', label: 'State' },
      { key: 'messages', label: 'Messages' },
      { key: 'raw_bytes', label: 'Raw bytes' },
      { key: 'stored_bytes', label: 'Stored bytes' },
      { key: 'actions', label: 'Set state', sortable: false, render: (st) => {
        const select = el('select', { 'aria-label': 'State of ' + st.storeName },
          ...STORE_STATES.map((v) => el('option', { value: v, text: v })));
        select.value = st.state;
        select.addEventListener('change', async () => {
          try {
            await invoke('SetStoreRequestedState', { instanceID: id, storeName: st.storeName, requestedState: select.value });
            toast(st.storeName + ': ' + select.value + '.');
          } catch (e) {
            toast(e.message, { kind: 'error' });
          }
          load();
        });
        return select;
      } },
    ],
    filterLabel: 'Filter stores', empty: 'No stores.', rowKey: 'storeName', caption: 'Archive stores',
  });
  load = async () => {
    try {
      const list = await invoke('GetStores', { instanceID: id }, { kind: 'instance-stores' });
      if (list === SUPERSEDED || visit.gone) return;
      showError(error, null);
      table.setRows((list || []).map(parseStore));
    } catch (e) {
      showError(error, e);
    }
  };
  const create = el('button', { type: 'button', class: 'ghost', text: 'New current store', id: 'create-store',
    onclick: async () => {
      try {
        await invoke('CreateStore', { instanceID: id });
        toast('A new current store.');
      } catch (e) {
        toast(e.message, { kind: 'error' });
      }
      load();
    } });
  const verify = el('button', { type: 'button', class: 'primary', text: 'Verify stores', id: 'verify-stores',
    onclick: async () => {
      const p = createJobProgress('Verify stores', 'VerifyStores:' + id);
      jobs.prepend(p.element);
      try {
        const r = await runJob('VerifyStores', { instanceID: id }, p.follow);
        p.update({ state: 'done', message: r.problems + ' problem' + (r.problems === 1 ? '' : 's') });
        p.element.dataset.problems = String(r.problems);
      } catch (e) {
        p.update({ state: 'failed', message: e.message });
      }
    } });
  const rebuild = el('button', { type: 'button', class: 'ghost', text: 'Rebuild indexes', id: 'rebuild-stores',
    onclick: async () => {
      if (!await confirmAction({ title: 'Rebuild the indexes?', text: 'The catalog and full-text index are built again from the stores; searches may miss messages until it ends.', confirmLabel: 'Rebuild', danger: false })) return;
      const p = createJobProgress('Rebuild indexes', 'RebuildSelectedStoreIndexes:' + id);
      jobs.prepend(p.element);
      try {
        const r = await runJob('RebuildSelectedStoreIndexes', { instanceID: id }, p.follow);
        p.update({ state: 'done', message: r.damagedRecords + ' damaged record' + (r.damagedRecords === 1 ? '' : 's') + ' skipped' });
        p.element.dataset.damaged = String(r.damagedRecords);
      } catch (e) {
        p.update({ state: 'failed', message: e.message });
      }
    } });
  c.append(el('div', { class: 'panel-head' }, el('h2', { text: 'Stores' }), el('span', { class: 'row-actions' }, create, verify, rebuild)),
    error, jobs, table.element);
  await load();
}

const LIVE_MS = 2000;
const LIVE_SAMPLES = 60;

/* A line chart of the last samples as SVG drawn here: two series on a
 * small fixed canvas need no charting library (and none has to pass the
 * CSP or be kept up to date). */
function lineChart(title, unit) {
  const W = 300;
  const H = 80;
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', 'currentColor');
  line.setAttribute('stroke-width', '2');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', title);
  svg.append(line);
  const last = el('span', { class: 'chart-last', 'aria-live': 'off' });
  const element = el('figure', { class: 'chart-view panel' }, el('figcaption', {}, title + ': ', last), svg);
  const values = [];
  return {
    element,
    add(v) {
      values.push(v);
      if (values.length > LIVE_SAMPLES) values.shift();
      const max = Math.max(...values, 1);
      const min = Math.min(...values, 0);
      const step = W / (LIVE_SAMPLES - 1);
      line.setAttribute('points', values.map((x, i) =>
        `${(i * step).toFixed(1)},${(H - 4 - ((x - min) / (max - min || 1)) * (H - 8)).toFixed(1)}`).join(' '));
      line.dataset.samples = String(values.length);
      last.textContent = (Math.round(v * 10) / 10) + ' ' + unit;
    },
  };
}

async function live(c, id, visit) {
  const error = errorLine();
  const memory = lineChart('Memory (resident)', 'MiB');
  const cpu = lineChart('CPU (100 % = one core)', '%');
  const calls = lineChart('Calls per second', '/s');
  const info = el('p', { class: 'live-info' });
  c.append(el('h2', { text: 'Live statistics' }),
    el('p', { class: 'muted', text: `The instance process, every ${LIVE_MS / 1000} s while this page is open (the last ${LIVE_SAMPLES}).` }),
    error, info, el('div', { class: 'charts' }, memory.element, cpu.element, calls.element));
  let before = null;
  const poll = async () => {
    if (visit.gone) return;
    try {
      const s = await invoke('GetInstanceProcessLiveStatistics', { instanceID: id }, { kind: 'instance-live', background: true });
      if (s === SUPERSEDED || visit.gone) return;
      showError(error, null);
      memory.add(s.residentKiB / 1024);
      const now = Date.now();
      if (before && s.pid === before.pid) {
        const seconds = (now - before.at) / 1000;
        calls.add(Math.max(0, s.calls - before.calls) / seconds);
        cpu.add(Math.max(0, s.cpuMilliseconds - before.cpu) / 10 / seconds);
      }
      before = { pid: s.pid, calls: s.calls, cpu: s.cpuMilliseconds, at: now };
      info.textContent = `pid ${s.pid} · up ${s.uptimeSeconds} s · ${s.calls} calls` + (s.frozen ? ' · frozen' : '');
    } catch (e) {
      showError(error, e);
    }
    if (!visit.gone) setTimeout(poll, LIVE_MS);
  };
  await poll();
}

const when = (t) => (t ? new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '');

/* The legal hold of the instance (on/off with a reason, confirmed) and of
 * users' archives, what deletions left for a compaction, and the retention
 * policies (read only here). */
async function compliance(c, id, visit) {
  const error = errorLine();
  const holdPanel = el('section', { class: 'panel', 'aria-labelledby': 'cp-hold' });
  const policies = createTable({
    columns: [
      { key: 'name', label: 'Policy' },
      { key: 'type', label: 'Type' },
      { key: 'days', label: 'Days' },
      { key: 'users', label: 'Users', render: (p) => (p.users || []).join(', ') },
      { key: 'folders', label: 'Folders', render: (p) => (p.folders || []).join(', ') },
      { key: 'query', label: 'Query' },
    ],
    filterLabel: 'Filter policies', empty: 'No retention policies.', rowKey: 'name', caption: 'Retention policies',
  });
  async function load() {
    try {
      const [conf, list] = await Promise.all([invoke('GetComplianceConfiguration', { instanceID: id }),
        invoke('GetRetentionPolicies', { instanceID: id })]);
      if (visit.gone) return;
      showError(error, null);
      const hold = conf.legalHold || { on: false };
      const reason = el('input', { type: 'text', id: 'hold-reason', autocomplete: 'off' });
      const toggle = el('button', { type: 'button', id: 'legal-hold-toggle', class: hold.on ? 'ghost' : 'primary',
        'aria-pressed': String(!!hold.on), text: hold.on ? 'Lift the legal hold' : 'Put the instance on legal hold',
        onclick: async () => {
          if (!await confirmAction({ title: hold.on ? 'Lift the legal hold?' : 'Put the instance on legal hold?',
            text: hold.on ? 'Deletions and retention apply again.' : 'Nothing in the instance can be deleted, by anyone or by retention, until it is lifted.',
            confirmLabel: hold.on ? 'Lift' : 'Hold', danger: !!hold.on })) return;
          try {
            const args = { instanceID: id, legalHold: !hold.on };
            if (reason.value.trim()) args.reason = reason.value.trim();
            await invoke('SetComplianceConfiguration', args);
            toast(hold.on ? 'Legal hold lifted.' : 'Legal hold on.');
          } catch (e) {
            toast(e.message, { kind: 'error' });
          }
          load();
        } });
      const users = (conf.userLegalHolds || []).map((h) => el('li', { text: `${h.archive}: since ${when(h.since)}${h.reason ? ' — ' + h.reason : ''}` }));
      holdPanel.replaceChildren(el('h2', { id: 'cp-hold', text: 'Legal hold' }),
        el('p', { class: 'legal-hold-state', 'data-on': String(!!hold.on),
          text: hold.on ? `On since ${when(hold.since)}${hold.reason ? ' — ' + hold.reason : ''}` : 'Off' }),
        el('div', { class: 'field' }, el('label', { for: 'hold-reason', text: 'Reason (audited)' }), reason), toggle,
        el('h3', { text: 'Users\' archives on hold' }), users.length ? el('ul', {}, ...users) : el('p', { class: 'muted', text: 'None.' }),
        el('p', { class: 'muted', text: `Left for a compaction: ${conf.pendingRemoval?.records ?? 0} records, ${conf.pendingRemoval?.bytes ?? 0} bytes.` }));
      policies.setRows(list || []);
    } catch (e) {
      showError(error, e);
    }
  }
  c.append(el('h2', { text: 'Compliance' }), error, holdPanel, policies.element);
  await load();
}

const TABS = [
  { tab: 'overview', label: 'Overview', render: overview },
  { tab: 'users', label: 'Users', render: users },
  { tab: 'stores', label: 'Stores', render: stores },
  { tab: 'live', label: 'Live', render: live },
  { tab: 'folders', label: 'Folders', render: folders },
  { tab: 'search', label: 'Search', render: search },
  { tab: 'import', label: 'Import', render: imports },
  { tab: 'profiles', label: 'Profiles', render: profilesTab },
  { tab: 'journal', label: 'Journal', render: journalTab },
  { tab: 'compliance', label: 'Compliance', render: compliance },
  { tab: 'export', label: 'Export and restore', render: exportTab },
  { tab: 'audit', label: 'Audit log', render: audit },
  { tab: 'move', label: 'Move', render: moveTab },
];

export const instancePage = {
  async enter(c, params) {
    if (this.visit) this.visit.gone = true;
    const visit = { gone: false };
    this.visit = visit;
    const id = params.id;
    const current = TABS.find((t) => t.tab === params.tab) || TABS[0];
    const base = '#/instances/' + encodeURIComponent(id);
    const nav = el('nav', { class: 'tabs', 'aria-label': 'Instance pages' }, ...TABS.map((t) => el('a', {
      href: base + '/' + t.tab, text: t.label, 'data-tab': t.tab, 'aria-current': t === current ? 'page' : null })));
    const body = el('div', { class: 'tab-body', 'data-tab': current.tab });
    c.append(el('div', { class: 'page-head' }, el('h1', {}, el('a', { href: '#/instances', text: 'Instances' }), ' / ',
      el('span', { class: 'instance-id', text: id })), el('span', { class: 'muted', text: current.label })), nav, body);
    try {
      await current.render(body, id, visit);
    } catch (e) {
      const error = errorLine();
      showError(error, e);
      body.append(error);
    }
  },
  leave() {
    if (this.visit) this.visit.gone = true;
    this.visit = null;
  },
};
