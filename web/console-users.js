/* console-users: the dialogs of the Users tab that change one user beyond
 * privileges: edit (name, full name, email addresses, password), rights on
 * folders, and app passwords (listed, revoked). Each change is one
 * Management API call; a dialog reports the first refusal on its field. */
import { el } from './dom.js';
import { invoke } from './console-api.js';
import { createForm } from './ui-form.js';
import { openDialog, openFormDialog, confirmAction } from './ui-dialog.js';
import { toast } from './ui-toast.js';

const FOLDER_PRIVILEGES = ['read', 'write', 'delete'];

function fieldError(e, name) {
  e.fields = { [name]: e.message };
  return e;
}

/* Edit: only what changed is sent, the rename last (the other calls name
 * the user by the old name). Resolves to the user's name afterwards, or
 * false when cancelled. */
export function editUser(id, u) {
  return openFormDialog('Edit ' + u.userName, (done) => createForm({
    fields: [
      { name: 'userName', label: 'User name', value: u.userName },
      { name: 'fullName', label: 'Full name', value: u.fullName || '' },
      { name: 'emailAddresses', label: 'Email addresses (comma separated)', value: (u.emailAddresses || []).join(', ') },
      { name: 'password', label: 'New password (empty: unchanged)', type: 'password', autocomplete: 'new-password' },
    ],
    validate: (v) => (v.password && v.password.length < 8 ? { password: 'At least 8 characters.' } : null),
    onSubmit: async (v) => {
      const user = { instanceID: id, userName: u.userName };
      const emails = v.emailAddresses.split(',').map((s) => s.trim()).filter(Boolean);
      const steps = [];
      if (v.fullName !== (u.fullName || '')) steps.push(['SetUserFullName', { ...user, fullName: v.fullName }, 'fullName']);
      if (emails.join(',') !== (u.emailAddresses || []).join(',')) steps.push(['SetUserEmailAddresses', { ...user, emailAddresses: emails.join(',') }, 'emailAddresses']);
      if (v.password) steps.push(['SetUserPassword', { ...user, password: v.password }, 'password']);
      const to = v.userName.trim();
      if (to !== u.userName) steps.push(['RenameUser', { instanceID: id, oldUserName: u.userName, newUserName: to }, 'userName']);
      for (const [fn, args, field] of steps) {
        try {
          await invoke(fn, args);
        } catch (e) {
          throw fieldError(e, field);
        }
      }
      done(to);
    } }));
}

/* Rights on folders: the current ones listed, one folder set (or cleared
 * with no box ticked) per submit. */
export async function folderRights(id, userName) {
  const info = await invoke('GetUserInfo', { instanceID: id, userName });
  const rights = info.folderRights || {};
  const list = el('ul', { class: 'plain-list', 'aria-label': 'Rights of ' + userName },
    ...Object.keys(rights).sort().map((f) => el('li', { text: f + ': ' + rights[f].join(', ') })));
  if (!Object.keys(rights).length) list.append(el('li', { text: 'No rights on other folders.' }));
  return openFormDialog('Folder rights of ' + userName, (done) => {
    const form = createForm({
      fields: [
        { name: 'folder', label: 'Folder (USER or USER/PATH)', required: true },
        ...FOLDER_PRIVILEGES.map((n) => ({ name: 'r-' + n, label: n, type: 'checkbox' })),
      ],
      submitLabel: 'Set rights',
      validate: (v) => (!v.folder.trim() ? { folder: 'Name a folder.' } : null),
      onSubmit: async (v) => {
        const privileges = FOLDER_PRIVILEGES.filter((n) => v['r-' + n]).join(',');
        try {
          await invoke('SetUserPrivilegesOnFolder', { instanceID: id, userName, folder: v.folder.trim(), privileges });
        } catch (e) {
          throw fieldError(e, 'folder');
        }
        done(v.folder.trim());
      } });
    form.element.prepend(list);
    return form;
  });
}

/* App passwords: users make their own in Web Access (it takes their
 * password); an administrator sees them and revokes one. */
export async function appPasswords(id, userName) {
  const body = el('div', { class: 'app-passwords' });
  const load = async () => {
    const list = await invoke('GetUserAppPasswords', { instanceID: id, userName });
    body.replaceChildren();
    if (!list.length) {
      body.append(el('p', { class: 'note', text: userName + ' has no app passwords.' }));
      return;
    }
    body.append(el('ul', { class: 'plain-list', 'aria-label': 'App passwords of ' + userName },
      ...list.map((a) => el('li', {},
        el('span', { text: a.name + (a.created ? ' (created ' + a.created + ')' : '') + ' ' }),
        el('button', { type: 'button', class: 'ghost small danger-text', text: 'Revoke', 'aria-label': 'Revoke ' + a.name,
          onclick: async () => {
            if (!await confirmAction({ title: 'Revoke ' + a.name + '?', text: 'Clients that use it can no longer log in.', confirmLabel: 'Revoke' })) return;
            try {
              await invoke('DeleteUserAppPassword', { instanceID: id, userName, name: a.name });
              toast('App password ' + a.name + ' revoked.');
            } catch (e) {
              toast(e.message, { kind: 'error' });
            }
            await load();
          } })))));
  };
  await load();
  await openDialog({ title: 'App passwords of ' + userName, body });
}
