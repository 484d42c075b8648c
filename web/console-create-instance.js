/* console-create-instance: the "Create instance" dialog of the Instances
 * page. The base directory is chosen on the chosen Instance Host itself
 * with a directory picker (GetDirectoriesOnInstanceHost; a new folder with
 * CreateDirectoryOnInstanceHost), since the Management Server's own file
 * system is not the one that matters. CreateInstance runs as a job whose
 * progress shows in the dialog; the server's refusal is put under the
 * field it is about. */
import { el } from './dom.js';
import { invoke, runJob } from './console-api.js';
import { createForm } from './ui-form.js';
import { createProgress } from './ui-progress.js';
import { openDialog } from './ui-dialog.js';

/* Which field a CreateInstance error message is about. */
const FIELD_OF_ERROR = [
  [/instanceID|exists/, 'instanceID'],
  [/alias/, 'alias'],
  [/Instance Host/, 'instanceHost'],
  [/absolute|overlaps|config directory|control characters|baseDirectory|directory/, 'baseDirectory'],
  [/startMode/, 'startMode'],
];

function fieldError(message) {
  for (const [re, name] of FIELD_OF_ERROR) {
    if (re.test(message)) return Object.assign(new Error(message), { fields: { [name]: message } });
  }
  return new Error(message);
}

const parentOf = (p) => (p.replace(/\/+$/, '').replace(/\/[^/]*$/, '') || '/');
const join = (p, name) => (p.endsWith('/') ? p : p + '/') + name;

/* The picker: the current path, its subdirectories as buttons, Up, and a
 * new folder. choose(path) is called with the directory chosen. */
function createPicker(hostOf, choose) {
  let path = '/';
  const here = el('code', { class: 'picker-path' });
  const list = el('ul', { class: 'picker-list', 'aria-label': 'Directories' });
  const status = el('p', { class: 'error', role: 'alert', hidden: '' });
  const newName = el('input', { type: 'text', 'aria-label': 'New folder name', placeholder: 'New folder', autocomplete: 'off' });
  async function open(p) {
    status.hidden = true;
    try {
      const dirs = await invoke('GetDirectoriesOnInstanceHost', { instanceHost: hostOf(), path: p });
      path = p;
      here.textContent = p;
      list.replaceChildren(...(dirs || []).map((d) => el('li', {}, el('button', {
        type: 'button', class: 'ghost small', text: d.replace(/\/+$/, '').split('/').pop() + '/',
        'data-dir': d, onclick: () => open(d) }))));
      if (!(dirs || []).length) list.append(el('li', { class: 'muted', text: 'No subdirectories.' }));
    } catch (e) {
      status.textContent = e.message;
      status.hidden = false;
    }
  }
  const element = el('div', { class: 'picker panel' },
    el('div', { class: 'panel-head' }, el('span', {}, 'On the Instance Host: ', here),
      el('span', { class: 'row-actions' },
        el('button', { type: 'button', class: 'ghost small', text: 'Up', onclick: () => open(parentOf(path)) }),
        el('button', { type: 'button', class: 'small', text: 'Use this directory', id: 'picker-use',
          onclick: () => choose(path) }))),
    list, el('div', { class: 'picker-new' }, newName,
      el('button', { type: 'button', class: 'ghost small', text: 'Create folder', id: 'picker-mkdir',
        onclick: async () => {
          const name = newName.value.trim();
          if (!name || name.includes('/')) {
            status.textContent = 'A folder name, without "/".';
            status.hidden = false;
            return;
          }
          try {
            await invoke('CreateDirectoryOnInstanceHost', { instanceHost: hostOf(), path: join(path, name) });
            newName.value = '';
            await open(join(path, name));
          } catch (e) {
            status.textContent = e.message;
            status.hidden = false;
          }
        } })), status);
  return { element, open, get path() { return path; } };
}

/* Resolves to the new instance's ID, or null when cancelled. */
export async function createInstanceDialog() {
  const hosts = ((await invoke('GetInstanceHosts')) || []).map((h) => (typeof h === 'string' ? h : h.serverName));
  let finish = null;
  const progress = createProgress({ label: 'Creating the instance' });
  progress.element.hidden = true;
  const form = createForm({
    fields: [
      { name: 'instanceID', label: 'Instance ID', required: true },
      { name: 'displayName', label: 'Display name' },
      { name: 'alias', label: 'Alias' },
      { name: 'instanceHost', label: 'Instance Host', type: 'select', options: hosts.map((h) => ({ value: h, label: h })) },
      { name: 'baseDirectory', label: 'Base directory', required: true },
      { name: 'startMode', label: 'Start mode', type: 'select',
        options: [{ value: 'automatic', label: 'automatic' }, { value: 'manual', label: 'manual' }] },
    ],
    submitLabel: 'Create',
    validate: (v) => (/^[a-z0-9][a-z0-9-]{0,62}$/.test(v.instanceID) ? null
      : { instanceID: 'Lower-case letters, digits and "-", at most 63, not starting with "-".' }),
    onSubmit: async (v) => {
      const args = { instanceID: v.instanceID, instanceHost: v.instanceHost, baseDirectory: v.baseDirectory.trim(),
        startMode: v.startMode };
      if (v.displayName) args.displayName = v.displayName;
      if (v.alias) args.alias = v.alias;
      progress.element.hidden = false;
      progress.element.dataset.job = 'CreateInstance:' + v.instanceID;
      try {
        await runJob('CreateInstance', args, (env) => {
          const running = env.statusCode === 'running';
          const percent = running && typeof env.percentProgress === 'number';
          progress.update({ state: running ? 'running' : env.error ? 'failed' : 'done',
            done: percent ? env.percentProgress : null, total: percent ? 100 : null, message: env.statusText || '' });
        });
      } catch (e) {
        progress.update({ state: 'failed', message: e.message });
        throw fieldError(e.message);
      }
      finish(v.instanceID);
    },
  });
  const hostInput = form.input('instanceHost');
  const dirInput = form.input('baseDirectory');
  const picker = createPicker(() => hostInput.value, (p) => {
    dirInput.value = p;
    dirInput.focus();
  });
  const browse = el('button', { type: 'button', class: 'ghost small', text: 'Browse…', id: 'browse-dirs',
    'aria-expanded': 'false', onclick: () => {
      picker.element.hidden = !picker.element.hidden;
      browse.setAttribute('aria-expanded', String(!picker.element.hidden));
      if (!picker.element.hidden) picker.open(dirInput.value.startsWith('/') ? dirInput.value : '/');
    } });
  picker.element.hidden = true;
  hostInput.addEventListener('change', () => { if (!picker.element.hidden) picker.open('/'); });
  dirInput.closest('.field').append(browse, picker.element);
  form.element.append(progress.element);
  const body = el('div', { class: 'create-instance' }, form.element);
  const shown = openDialog({ title: 'Create instance', body, actions: [{ label: 'Cancel', value: null }] });
  const dialog = body.closest('dialog');
  return new Promise((resolve) => {
    finish = (id) => {
      resolve(id);
      dialog.close('');
    };
    shown.then(() => resolve(null));
    form.input('instanceID').focus();
  });
}
