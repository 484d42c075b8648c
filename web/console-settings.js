/* console-settings: the system (GetEnvironmentInfo), the SMTP settings for
 * notifications with a test mail (Get/Set/TestSystemSmtpConfiguration; the
 * password is never shown, and left empty it is kept), and the Management
 * API's reference, generated from what the server says it offers
 * (/api/get-metadata), so it is never out of date. */
import { el } from './dom.js';
import { client, invoke } from './console-api.js';
import { createForm } from './ui-form.js';
import { toast } from './ui-toast.js';

const SECURITY = [
  { value: 'starttls', label: 'STARTTLS' },
  { value: 'tls', label: 'TLS' },
  { value: 'none', label: 'None (plain text)' },
];

function smtpForms(current) {
  const smtp = current || {};
  const settings = createForm({
    fields: [
      { name: 'host', label: 'SMTP server', required: true, value: smtp.host || '' },
      { name: 'port', label: 'Port', type: 'number', value: smtp.port || 587 },
      { name: 'security', label: 'Security', type: 'select', options: SECURITY, value: smtp.security || 'starttls' },
      { name: 'userName', label: 'User name (for SMTP AUTH)', value: smtp.userName || '' },
      { name: 'password', label: smtp.passwordSet ? 'Password (empty: keep the current one)' : 'Password', type: 'password', autocomplete: 'new-password' },
      { name: 'fromAddress', label: 'Sender address', required: true, value: smtp.fromAddress || '' },
      { name: 'verifyCertificate', label: "Check the server's certificate", type: 'checkbox', value: smtp.verifyCertificate !== false },
    ],
    submitLabel: 'Save',
    validate: (v) => (v.port !== null && (!Number.isInteger(v.port) || v.port < 1 || v.port > 65535) ? { port: 'A port from 1 to 65535.' } : null),
    onSubmit: async (v) => {
      const args = { host: v.host.trim(), security: v.security, userName: v.userName.trim(),
        fromAddress: v.fromAddress.trim(), verifyCertificate: v.verifyCertificate };
      if (v.port !== null) args.port = v.port;
      if (v.password) args.password = v.password;
      await invoke('SetSystemSmtpConfiguration', args);
      settings.input('password').value = '';
      toast('SMTP settings saved.');
    },
  });
  const test = createForm({
    fields: [{ name: 'to', label: 'Send a test mail to', type: 'email', required: true }],
    submitLabel: 'Send test mail',
    submitClass: 'ghost',
    onSubmit: async (v) => {
      const r = await invoke('TestSystemSmtpConfiguration', { to: v.to.trim() });
      toast('Test mail sent to ' + r.sentTo + '.');
    },
  });
  settings.element.id = 'smtp-form';
  test.element.id = 'smtp-test-form';
  return el('div', { class: 'smtp' }, settings.element, test.element);
}

function reference(functions) {
  return el('div', { class: 'api-reference' }, ...functions.map((f) => el('details', { class: 'api-fn' },
    el('summary', { text: f.name }),
    el('p', { text: f.description }),
    f.args.length ? el('table', { class: 'data-table' },
      el('caption', { class: 'visually-hidden', text: 'Arguments of ' + f.name }),
      el('thead', {}, el('tr', {}, ...['Argument', 'Type', 'Required', 'Meaning'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, ...f.args.map((a) => el('tr', {},
        el('td', {}, el('code', { text: a.name })), el('td', { text: a.type }),
        el('td', { text: a.required ? 'yes' : 'no' }), el('td', { text: a.description })))))
      : el('p', { class: 'note', text: 'No arguments.' }))));
}

export const settingsPage = {
  async enter(c) {
    const error = el('p', { class: 'error', role: 'alert', hidden: '' });
    const system = el('dl', { class: 'facts' });
    const api = el('div', {}, el('p', { class: 'note', text: 'Loading…' }));
    const smtp = el('div', {}, el('p', { class: 'note', text: 'Loading…' }));
    c.append(el('div', { class: 'page-head' }, el('h1', { text: 'Settings' })), error,
      el('section', { class: 'panel', 'aria-labelledby': 'set-system' }, el('h2', { id: 'set-system', text: 'System' }), system),
      el('section', { class: 'panel', 'aria-labelledby': 'set-smtp' }, el('h2', { id: 'set-smtp', text: 'Mail (SMTP) for notifications' }), smtp),
      el('section', { class: 'panel', 'aria-labelledby': 'set-api' }, el('h2', { id: 'set-api', text: 'Management API reference' }), api));
    try {
      const [env, meta] = await Promise.all([
        invoke('GetEnvironmentInfo'),
        client.call('GET', '../get-metadata'),
      ]);
      for (const [k, label] of [['productName', 'Product'], ['version', 'Version'], ['serverName', 'Server'],
        ['mode', 'Mode'], ['licensee', 'Licensee'], ['systemTime', 'System time']]) {
        system.append(el('dt', { text: label }), el('dd', { text: String(env[k] ?? '') }));
      }
      api.replaceChildren(reference(meta.result || []));
      // no settings yet is an error of the function: an empty form then
      const current = await invoke('GetSystemSmtpConfiguration').catch(() => null);
      smtp.replaceChildren(smtpForms(current));
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  },
};
