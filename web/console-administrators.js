/* console-administrators: the system administrators with their MFA state
 * (GetSystemAdministrators; never a password or secret): create, set a
 * password, delete (with a confirmation), start MFA enrolment (the QR code
 * and secret, activated by the administrator's first login with a code) or
 * turn it off, and create an API password, shown once with a copy button. */
import { el } from './dom.js';
import { invoke, SUPERSEDED } from './console-api.js';
import { createTable } from './ui-table.js';
import { createForm } from './ui-form.js';
import { confirmAction, openDialog, openFormDialog } from './ui-dialog.js';
import { toast, actionButton } from './ui-toast.js';
import { copyButton } from './console-infrastructure.js';

function passwordCheck(v) {
  return v.password && v.password.length < 8 ? { password: 'At least 8 characters.' } : null;
}

function showOnce(title, nodes) {
  return openDialog({ title, body: el('div', { class: 'show-once' }, ...nodes), actions: [{ label: 'Done', value: null, class: 'primary' }] });
}

async function enrolMfa(name) {
  const r = await invoke('InitializeSystemAdministratorMFA', { userName: name });
  await showOnce('MFA for ' + name, [
    el('p', { text: 'Scan this code with an authenticator app. MFA becomes active at the first sign-in with a code from it.' }),
    el('img', { class: 'qr', alt: 'QR code for the authenticator app', width: '200', height: '200',
      src: 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(r.qrCodeSvg) }),
    el('p', {}, el('span', { text: 'Or enter the secret: ' }), el('code', { class: 'secret', text: r.secret }), ' ',
      copyButton(r.secret, 'MFA secret')),
  ]);
}

async function createApiPassword(name) {
  const r = await invoke('CreateSystemAdministratorAPIPassword', { userName: name });
  await showOnce('API password for ' + name, [
    el('p', { text: 'It is shown only now. It works without an MFA code: keep it for scripts.' }),
    el('p', {}, el('code', { class: 'api-password', text: r.apiPassword }), ' ', copyButton(r.apiPassword, 'API password')),
  ]);
}

export const administratorsPage = {
  async enter(c) {
    const error = el('p', { class: 'error', role: 'alert', hidden: '' });
    const visit = {};
    this.visit = visit;
    let load = null;
    const act = (label, name, fn) => actionButton(label, name, fn, { after: () => load() });
    const table = createTable({
      columns: [
        { key: 'userName', label: 'Name' },
        { key: 'fullName', label: 'Full name' },
        { key: 'mfa', label: 'MFA' },
        { key: 'apiPassword', label: 'API password', render: (a) => (a.apiPassword ? 'yes' : 'no') },
        { key: 'actions', label: 'Actions', sortable: false, render: (a) => el('span', { class: 'row-actions' },
          act('Password', a.userName, async () => {
            if (await openFormDialog('New password for ' + a.userName, (done) => createForm({
              fields: [{ name: 'password', label: 'New password', type: 'password', required: true, autocomplete: 'new-password' }],
              validate: passwordCheck,
              onSubmit: async (v) => {
                await invoke('SetSystemAdministratorPassword', { userName: a.userName, password: v.password });
                done();
              } }))) toast('Password of ' + a.userName + ' changed.');
          }),
          a.mfa === 'disabled' ? act('Set up MFA', a.userName, () => enrolMfa(a.userName))
            : act('Turn MFA off', a.userName, async () => {
              if (await confirmAction({ title: 'Turn MFA off?', text: a.userName + ' will sign in with the password alone.', confirmLabel: 'Turn off' }))
                await invoke('DeactivateSystemAdministratorMFA', { userName: a.userName });
            }),
          act('API password', a.userName, () => createApiPassword(a.userName)),
          act('Delete', a.userName, async () => {
            if (await confirmAction({ title: 'Delete administrator?', text: a.userName + ' will no longer be able to sign in.', confirmLabel: 'Delete' })) {
              await invoke('DeleteSystemAdministrator', { userName: a.userName });
              toast(a.userName + ' deleted.');
            }
          })) },
      ],
      filterLabel: 'Filter administrators', empty: 'No administrators.', rowKey: 'userName',
      caption: 'System administrators',
    });
    load = async () => {
      try {
        const list = await invoke('GetSystemAdministrators', {}, { kind: 'admins-list' });
        if (list === SUPERSEDED || this.visit !== visit) return;
        error.hidden = true;
        table.setRows(list || []);
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      }
    };
    const add = el('button', { type: 'button', class: 'primary', text: 'Add administrator', id: 'add-admin',
      onclick: async () => {
        if (await openFormDialog('Add administrator', (done) => createForm({
          fields: [
            { name: 'userName', label: 'Name', required: true },
            { name: 'fullName', label: 'Full name' },
            { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'new-password' },
          ],
          submitLabel: 'Add',
          validate: passwordCheck,
          onSubmit: async (v) => {
            const args = { userName: v.userName.trim(), password: v.password };
            if (v.fullName) args.fullName = v.fullName;
            await invoke('CreateSystemAdministrator', args);
            done();
          } }))) {
          toast('Administrator added.');
          load();
        }
      } });
    c.append(el('div', { class: 'page-head' }, el('h1', { text: 'Administrators' }), add), error, table.element);
    await load();
  },
  leave() {
    this.visit = null;
  },
};
