/* console-settings: the Settings pages, as tabs (#/settings/TAB): the
 * system (GetEnvironmentInfo) and the SMTP settings for notifications with
 * a test mail (Get/Set/TestSystemSmtpConfiguration; the password is never
 * shown, and left empty it is kept); the branding (console-branding.js);
 * and the Management API's reference with a try-form per function
 * (console-apiref.js), generated from what the server says it offers
 * (/api/get-metadata), so it is never out of date. */
import { el } from './dom.js';
import { client, invoke } from './console-api.js';
import { brandingSettings } from './console-branding.js';
import { apiReference } from './console-apiref.js';
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

async function systemSettings(c) {
  const error = el('p', { class: 'error', role: 'alert', hidden: '' });
  const system = el('dl', { class: 'facts' });
  const smtp = el('div', {}, el('p', { class: 'note', text: 'Loading…' }));
  c.append(error,
    el('section', { class: 'panel', 'aria-labelledby': 'set-system' }, el('h2', { id: 'set-system', text: 'System' }), system),
    el('section', { class: 'panel', 'aria-labelledby': 'set-smtp' }, el('h2', { id: 'set-smtp', text: 'Mail (SMTP) for notifications' }), smtp));
  try {
    const env = await invoke('GetEnvironmentInfo');
    for (const [k, label] of [['productName', 'Product'], ['version', 'Version'], ['serverName', 'Server'],
      ['mode', 'Mode'], ['licensee', 'Licensee'], ['systemTime', 'System time']]) {
      system.append(el('dt', { text: label }), el('dd', { text: String(env[k] ?? '') }));
    }
    // no settings yet is an error of the function: an empty form then
    const current = await invoke('GetSystemSmtpConfiguration').catch(() => null);
    smtp.replaceChildren(smtpForms(current));
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  }
}

async function apiSettings(c) {
  const error = el('p', { class: 'error', role: 'alert', hidden: '' });
  const api = el('div', {}, el('p', { class: 'note', text: 'Loading…' }));
  c.append(error, el('section', { class: 'panel', 'aria-labelledby': 'set-api' },
    el('h2', { id: 'set-api', text: 'Management API reference' }),
    el('p', { class: 'note', text: 'Open a function to read about it and try it with this session.' }), api));
  try {
    const meta = await client.call('GET', '../get-metadata');
    api.replaceChildren(apiReference(meta.result || []));
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  }
}

const TABS = [
  { tab: 'system', label: 'System and mail', render: systemSettings },
  { tab: 'branding', label: 'Branding', render: brandingSettings },
  { tab: 'api', label: 'API reference', render: apiSettings },
];

export const settingsPage = {
  async enter(c, params = {}) {
    const current = TABS.find((t) => t.tab === params.tab) || TABS[0];
    c.append(el('div', { class: 'page-head' }, el('h1', { text: 'Settings' })),
      el('nav', { class: 'tabs', 'aria-label': 'Settings' }, ...TABS.map((t) => el('a', {
        href: '#/settings/' + t.tab, text: t.label, 'data-tab': t.tab,
        'aria-current': t === current ? 'page' : null }))));
    const body = el('div', { class: 'settings-body', 'data-tab': current.tab });
    c.append(body);
    await current.render(body);
  },
};
