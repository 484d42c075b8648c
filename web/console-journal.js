/* console-journal: the journal receiver for an instance (the Journal tab of
 * #/instances/ID/journal; docs/sources.md, "Journal receiver").
 *
 * The instance's recipients (GetJournalSettings): the addresses and domains
 * it takes, which recipient goes to which user, and what happens to a
 * recipient no user has; changed with SetJournalSettings. Below them the
 * receiver of the instance's Instance Host (GetInstanceHostJournalConfiguration):
 * listeners, STARTTLS, allowed networks, limits (SetInstanceHostJournalConfiguration)
 * and its SMTP AUTH logins (SetInstanceHostJournalAuthUser,
 * DeleteInstanceHostJournalAuthUser). A login's password goes to the server
 * and never comes back: only the names are listed. Every change is in force
 * at once on the Instance Host. */
import { el } from './dom.js';
import { invoke } from './console-api.js';
import { createTable } from './ui-table.js';
import { createForm } from './ui-form.js';
import { confirmAction, openFormDialog } from './ui-dialog.js';
import { toast, actionButton } from './ui-toast.js';

const list = (s) => (s || '').split(',').map((x) => x.trim()).filter(Boolean);

/* The receiver's limits and what the form calls them (empty: the default). */
const LIMITS = [
  ['maxMessageSize', 'Largest message (bytes; default 52428800)'],
  ['maxRecipients', 'Recipients per message (default 1000)'],
  ['maxConnections', 'Connections at once (default 200)'],
  ['maxConnectionsPerClient', 'Connections from one address (default 20)'],
  ['timeoutSeconds', 'Idle timeout in seconds (default 300)'],
];

function errorLine() {
  return el('p', { class: 'error', role: 'alert', hidden: '' });
}

function showError(node, e) {
  node.textContent = e ? e.message : '';
  node.hidden = !e;
}

function facts(rows) {
  return el('dl', { class: 'facts' }, ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
}

function recipientsDialog(id, s) {
  return openFormDialog('Journal recipients of ' + id, (done) => createForm({
    fields: [
      { name: 'addresses', label: 'Addresses (comma separated)', value: (s.addresses || []).join(', ') },
      { name: 'domains', label: 'Domains (comma separated)', value: (s.domains || []).join(', ') },
      { name: 'unknownRecipients', label: 'A recipient no user has', type: 'select', value: s.unknownRecipients || 'refuse',
        options: [{ value: 'refuse', label: 'Refuse it (550)' }, { value: 'catch-all', label: 'Archive it for the catch-all user' }] },
      { name: 'catchAllUser', label: 'Catch-all user', value: s.catchAllUser || '' },
    ],
    validate: (v) => (v.unknownRecipients === 'catch-all' && !v.catchAllUser.trim()
      ? { catchAllUser: 'A catch-all user is needed.' } : null),
    onSubmit: async (v) => {
      await invoke('SetJournalSettings', { instanceID: id, addresses: list(v.addresses), domains: list(v.domains),
        unknownRecipients: v.unknownRecipients, catchAllUser: v.catchAllUser.trim() });
      done();
    } }), { className: 'journal-dialog' });
}

function mappingDialog(id, s) {
  return openFormDialog('Map a recipient to a user', (done) => createForm({
    fields: [
      { name: 'address', label: 'Recipient address', required: true, type: 'email' },
      { name: 'user', label: 'Archive user', required: true },
    ],
    submitLabel: 'Add',
    validate: (v) => (v.address.includes('@') ? null : { address: 'An address with @.' }),
    onSubmit: async (v) => {
      const recipients = { ...(s.recipients || {}), [v.address.trim()]: v.user.trim() };
      await invoke('SetJournalSettings', { instanceID: id, recipients });
      done();
    } }), { className: 'journal-dialog' });
}

function receiverDialog(host, h) {
  const v = (k) => (h[k] !== undefined && h[k] !== null ? h[k] : '');
  return openFormDialog('Journal receiver of ' + host, (done) => createForm({
    fields: [
      { name: 'smtpListeners', label: 'SMTP listeners (HOST:PORT, comma separated)', value: v('smtpListeners') },
      { name: 'lmtpListeners', label: 'LMTP listeners (HOST:PORT, comma separated)', value: v('lmtpListeners') },
      { name: 'hostname', label: 'Host name in the greeting (default localhost)', value: v('hostname') },
      { name: 'allowedNetworks', label: 'Allowed client networks (ADDRESS/BITS, comma separated; empty: this machine)',
        value: (h.allowedNetworks || []).join(', ') },
      { name: 'starttls', label: 'Offer STARTTLS', type: 'checkbox', value: h.starttls !== false },
      { name: 'authRequired', label: 'SMTP AUTH required', type: 'checkbox', value: !!h.authRequired },
      ...LIMITS.map(([name, label]) => ({ name, label, type: 'number', value: v(name) })),
    ],
    onSubmit: async (f) => {
      const text = (x) => (x.trim() === '' ? null : x.trim());
      const settings = {
        smtpListeners: text(f.smtpListeners), lmtpListeners: text(f.lmtpListeners), hostname: text(f.hostname),
        allowedNetworks: list(f.allowedNetworks).length ? list(f.allowedNetworks) : null,
        starttls: f.starttls, authRequired: f.authRequired,
      };
      for (const [name] of LIMITS) settings[name] = f[name];
      await invoke('SetInstanceHostJournalConfiguration', { serverName: host, settings });
      done();
    } }), { className: 'journal-dialog' });
}

function loginDialog(host) {
  return openFormDialog('Add an SMTP AUTH login', (done) => createForm({
    fields: [
      { name: 'userName', label: 'Login name', required: true },
      { name: 'password', label: 'Password (at least 12 characters; not shown again)', type: 'password',
        required: true, autocomplete: 'new-password' },
    ],
    submitLabel: 'Add',
    validate: (v) => (v.password.length < 12 ? { password: 'At least 12 characters.' } : null),
    onSubmit: async (v) => {
      await invoke('SetInstanceHostJournalAuthUser', { serverName: host, userName: v.userName.trim(), password: v.password });
      done();
    } }), { className: 'journal-dialog' });
}

export async function journalTab(c, id, visit) {
  const error = errorLine();
  const mine = el('section', { class: 'journal-instance', 'aria-labelledby': 'journal-instance-h' });
  const receiver = el('section', { class: 'journal-host', 'aria-labelledby': 'journal-host-h' });
  c.append(el('h2', { text: 'Journal' }), el('p', { class: 'muted',
    text: 'Journal copies sent by SMTP or LMTP to the Instance Host are archived for the users their recipients map to, and answered 250 only once stored.' }),
    error, mine, receiver);
  const act = (label, name, fn) => actionButton(label, name, fn);
  const mappings = createTable({
    columns: [
      { key: 'address', label: 'Recipient' },
      { key: 'user', label: 'Archive user' },
      { key: 'actions', label: 'Actions', sortable: false, render: (m) => act('Remove', m.address, async () => {
        if (!await confirmAction({ title: 'Remove the mapping of ' + m.address + '?',
          text: 'Its mail then goes to the user with this address, or the unknown-recipient rule.', confirmLabel: 'Remove' })) return;
        const recipients = { ...state.settings.recipients };
        delete recipients[m.address];
        await invoke('SetJournalSettings', { instanceID: id, recipients });
        toast('Mapping of ' + m.address + ' removed.');
        await load();
      }) },
    ],
    filterLabel: 'Filter recipients', empty: 'No recipient mapped: each goes to the user who has its address.',
    caption: 'Recipients mapped to users',
  });
  const logins = createTable({
    columns: [
      { key: 'userName', label: 'SMTP AUTH login' },
      { key: 'actions', label: 'Actions', sortable: false, render: (u) => act('Remove', u.userName, async () => {
        if (!await confirmAction({ title: 'Remove the login ' + u.userName + '?',
          text: 'Senders using it can no longer log in.', confirmLabel: 'Remove' })) return;
        await invoke('DeleteInstanceHostJournalAuthUser', { serverName: state.host, userName: u.userName });
        toast('Login ' + u.userName + ' removed.');
        await load();
      }) },
    ],
    filterLabel: 'Filter logins', empty: 'No SMTP AUTH logins.', caption: 'SMTP AUTH logins',
  });
  const state = { settings: null, host: null, receiver: null };

  async function load() {
    showError(error, null);
    try {
      const conf = await invoke('GetInstanceConfiguration', { instanceID: id });
      state.host = conf.instanceHost;
      const [settings, hostConf] = await Promise.all([
        invoke('GetJournalSettings', { instanceID: id }),
        invoke('GetInstanceHostJournalConfiguration', { serverName: state.host }),
      ]);
      if (visit.gone) return;
      state.settings = settings;
      state.receiver = hostConf;
    } catch (e) {
      showError(error, e);
      return;
    }
    const s = state.settings;
    const h = state.receiver;
    mine.replaceChildren(el('h3', { id: 'journal-instance-h', text: 'Recipients of ' + id }),
      facts([
        ['Addresses', (s.addresses || []).join(', ') || 'none'],
        ['Domains', (s.domains || []).join(', ') || 'none'],
        ['A recipient no user has', s.unknownRecipients === 'catch-all' ? 'archived for ' + s.catchAllUser : 'refused (550)'],
      ]),
      el('div', { class: 'journal-actions' },
        el('button', { type: 'button', class: 'primary', text: 'Edit recipients', onclick: async () => {
          if (await recipientsDialog(id, s)) { toast('Journal recipients saved.'); await load(); }
        } }),
        el('button', { type: 'button', class: 'ghost', text: 'Map a recipient', onclick: async () => {
          if (await mappingDialog(id, s)) { toast('Recipient mapped.'); await load(); }
        } })),
      mappings.element);
    mappings.setRows(Object.entries(s.recipients || {}).map(([address, user]) => ({ address, user })));
    const limit = (k, d) => String(h[k] ?? d);
    receiver.replaceChildren(el('h3', { id: 'journal-host-h', text: 'Receiver of the Instance Host ' + state.host }),
      el('p', { class: 'muted', text: 'Shared by every instance on this Instance Host.' }),
      facts([
        ['SMTP', h.smtpListeners || 'not listening'],
        ['LMTP', h.lmtpListeners || 'not listening'],
        ['STARTTLS', h.starttls === false ? 'off' : 'offered'],
        ['Allowed networks', (h.allowedNetworks || ['127.0.0.0/8', '::1/128']).join(', ')],
        ['SMTP AUTH', h.authRequired ? 'required' : 'optional'],
        ['Limits', `${limit('maxMessageSize', 52428800)} bytes, ${limit('maxRecipients', 1000)} recipients, ` +
          `${limit('maxConnections', 200)} connections (${limit('maxConnectionsPerClient', 20)} per client), ` +
          `${limit('timeoutSeconds', 300)} s idle`],
      ]),
      el('div', { class: 'journal-actions' },
        el('button', { type: 'button', class: 'ghost', text: 'Edit receiver', onclick: async () => {
          if (await receiverDialog(state.host, h)) { toast('Journal receiver saved.'); await load(); }
        } }),
        el('button', { type: 'button', class: 'ghost', text: 'Add login', onclick: async () => {
          if (await loginDialog(state.host)) { toast('Login added.'); await load(); }
        } })),
      logins.element);
    logins.setRows((h.authUsers || []).map((userName) => ({ userName })));
  }
  await load();
}
