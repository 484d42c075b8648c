/* console-export: an instance's Export and restore tab
 * (#/instances/ID/export; docs/compliance.md "Export and restore").
 * Export a folder or a search to a zip, an mbox or EML files below the
 * instance's export/ directory (ExportMessages), restore one to any IMAP
 * server by APPEND or by SMTP (RestoreMessages), and the instance's own SMTP
 * settings used by the latter (Get/Set/TestSmtpSettings). Each export or
 * restore is a job of the instance followed with its progress; the IMAP
 * password is sent once and never shown again (nothing returns it). */
import { el } from './dom.js';
import { invoke, runJob } from './console-api.js';
import { createForm } from './ui-form.js';
import { createJobProgress } from './ui-progress.js';
import { toast } from './ui-toast.js';

const FORMATS = ['zip', 'mbox', 'eml'].map((f) => ({ value: f, label: f }));
const SECURITY = [{ value: 'tls', label: 'TLS (implicit)' }, { value: 'starttls', label: 'STARTTLS' }];
const METHODS = [{ value: 'imap', label: 'IMAP APPEND to a mailbox' }, { value: 'smtp', label: 'SMTP to an address' }];

const selectionFields = (prefix) => [
  { name: prefix + 'folder', label: 'Folder (USER/PATH, e.g. alice/INBOX)' },
  { name: prefix + 'query', label: 'or a search (the query language, e.g. from:bob)' },
];

/* Exactly one of folder and query: the arguments, or field errors. */
function selection(v, prefix) {
  const folder = (v[prefix + 'folder'] || '').trim();
  const query = (v[prefix + 'query'] || '').trim();
  if (!folder === !query) {
    const text = 'Give a folder or a search, not both.';
    return { errors: { [prefix + 'folder']: text, [prefix + 'query']: text } };
  }
  return { args: folder ? { folder } : { query } };
}

async function runView(jobs, label, key, fn, args, describe) {
  const p = createJobProgress(label, key);
  jobs.prepend(p.element);
  try {
    const r = await runJob(fn, args, p.follow);
    p.update({ state: 'done', message: describe(r) });
    p.element.dataset.result = 'done';
    p.element.dataset.count = String(r.exported ?? r.restored ?? 0);
    return r;
  } catch (e) {
    p.element.dataset.result = 'failed';
    p.update({ state: 'failed', message: e.message });
    throw e;
  }
}

function exportForm(id, jobs) {
  const form = createForm({
    fields: [...selectionFields('e-'),
      { name: 'format', label: 'Format', type: 'select', options: FORMATS },
      { name: 'name', label: 'Name below export/ (letters, digits, . _ -)', required: true }],
    submitLabel: 'Export',
    validate: (v) => selection(v, 'e-').errors || null,
    onSubmit: async (v) => {
      const args = { instanceID: id, format: v.format, name: v.name.trim(), ...selection(v, 'e-').args };
      await runView(jobs, 'Export ' + args.name, 'ExportMessages:' + args.name, 'ExportMessages', args,
        (r) => `${r.exported} of ${r.messages} exported to ${r.path}` + (r.failed ? `, ${r.failed} failed` : ''));
    },
  });
  form.element.id = 'export-form';
  return form.element;
}

function restoreForm(id, jobs) {
  const form = createForm({
    fields: [...selectionFields('r-'),
      { name: 'method', label: 'Restore by', type: 'select', options: METHODS },
      { name: 'host', label: 'IMAP server' },
      { name: 'port', label: 'Port (default 993, or 143 with STARTTLS)', type: 'number' },
      { name: 'security', label: 'Security', type: 'select', options: SECURITY },
      { name: 'fingerprint', label: 'Certificate SHA-256 fingerprint (pins it; empty: the system\'s CAs)' },
      { name: 'login', label: 'Login' },
      { name: 'password', label: 'Password (sent once, never shown)', type: 'password', autocomplete: 'new-password' },
      { name: 'targetFolder', label: 'Folder on the server', value: 'Restored' },
      { name: 'to', label: 'SMTP: the address to send to' }],
    submitLabel: 'Restore',
    validate: (v) => {
      const errors = { ...(selection(v, 'r-').errors || {}) };
      if (v.method === 'imap') {
        for (const f of ['host', 'login']) if (!v[f].trim()) errors[f] = 'Required for IMAP.';
      } else if (!v.to.trim()) {
        errors.to = 'Required for SMTP.';
      }
      return Object.keys(errors).length ? errors : null;
    },
    onSubmit: async (v) => {
      const args = { instanceID: id, method: v.method, ...selection(v, 'r-').args };
      if (v.method === 'imap') {
        const target = { host: v.host.trim(), security: v.security, login: v.login.trim(),
          folder: v.targetFolder.trim() || 'Restored' };
        if (v.port) target.port = v.port;
        if (v.fingerprint.trim()) target.fingerprint = v.fingerprint.trim();
        args.target = target;
        if (v.password) args.password = v.password;
      } else {
        args.target = { to: v.to.trim() };
      }
      form.element.querySelector('input[name=password]').value = '';
      await runView(jobs, 'Restore by ' + v.method, 'RestoreMessages:' + v.method, 'RestoreMessages', args,
        (r) => `${r.restored} of ${r.messages} restored` + (r.failed ? `, ${r.failed} failed` : ''));
    },
  });
  form.element.id = 'restore-form';
  return form.element;
}

function smtpPanel(id) {
  const panel = el('section', { class: 'panel', 'aria-labelledby': 'ex-smtp' });
  const state = el('p', { class: 'smtp-state muted' });
  async function load() {
    try {
      const s = await invoke('GetSmtpSettings', { instanceID: id });
      state.textContent = s && s.configured ? `${s.host}:${s.port ?? ''} (${s.security || 'starttls'}) as ` +
        `${s.userName || '(no login)'}, from ${s.fromAddress || ''}` + (s.passwordSet ? ', password set' : '')
        : 'Not set: restoring by SMTP needs them.';
    } catch (e) {
      state.textContent = e.message;
    }
  }
  const form = createForm({
    fields: [{ name: 'host', label: 'SMTP server', required: true },
      { name: 'port', label: 'Port', type: 'number', value: 587 },
      { name: 'security', label: 'Security', type: 'select',
        options: ['starttls', 'tls', 'none'].map((x) => ({ value: x, label: x })) },
      { name: 'userName', label: 'Login' },
      { name: 'password', label: 'Password (kept sealed, never shown)', type: 'password', autocomplete: 'new-password' },
      { name: 'fromAddress', label: 'Sender address', required: true }],
    submitLabel: 'Save SMTP settings',
    onSubmit: async (v) => {
      const args = { instanceID: id, host: v.host.trim(), fromAddress: v.fromAddress.trim(), security: v.security };
      if (v.port) args.port = v.port;
      if (v.userName.trim()) args.userName = v.userName.trim();
      if (v.password) args.password = v.password;
      await invoke('SetSmtpSettings', args);
      form.element.querySelector('input[name=password]').value = '';
      toast('SMTP settings saved.');
      load();
    },
  });
  form.element.id = 'smtp-form';
  panel.append(el('h3', { id: 'ex-smtp', text: 'The instance\'s SMTP settings' }), state, form.element);
  load();
  return panel;
}

export async function exportTab(c, id) {
  const jobs = el('div', { class: 'jobs' });
  c.append(el('h2', { text: 'Export and restore' }),
    el('p', { class: 'muted', text: 'Each export and restore is a job of the instance and is written to its audit log.' }),
    el('section', { class: 'panel' }, el('h3', { text: 'Export' }),
      el('p', { text: 'Into the instance\'s export/ directory on its Instance Host, each message\'s archived bytes unchanged.' }),
      exportForm(id, jobs)),
    el('section', { class: 'panel' }, el('h3', { text: 'Restore' }), restoreForm(id, jobs)),
    jobs, smtpPanel(id));
}
