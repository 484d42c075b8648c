/* console-instances: every instance with its Instance Host and state, to
 * filter, sort and page through (GetInstances), and its life cycle: start,
 * stop, restart, freeze, thaw, delete (after a confirmation), each as a
 * Management API job whose progress shows above the list. */
import { el } from './dom.js';
import { invoke, runJob, SUPERSEDED } from './console-api.js';
import { createTable } from './ui-table.js';
import { createProgress } from './ui-progress.js';
import { confirmAction } from './ui-dialog.js';
import { toast } from './ui-toast.js';
import { createInstanceDialog } from './console-create-instance.js';

const ACTIONS = [
  { label: 'Start', fn: 'StartInstances', when: (s) => s !== 'running' && s !== 'frozen' },
  { label: 'Stop', fn: 'StopInstances', when: (s) => s === 'running' || s === 'frozen' },
  { label: 'Restart', fn: 'RestartInstances', when: (s) => s === 'running' },
  { label: 'Freeze', fn: 'FreezeInstances', when: (s) => s === 'running' },
  { label: 'Thaw', fn: 'ThawInstances', when: (s) => s === 'frozen' },
  { label: 'Delete', fn: 'DeleteInstances', when: (s) => s !== 'running' && s !== 'frozen', confirm: true },
];

export const instancesPage = {
  async enter(c) {
    const error = el('p', { class: 'error', role: 'alert', hidden: '' });
    const jobs = el('div', { class: 'jobs' });
    const visit = {};
    this.visit = visit;
    let load = null;

    async function run(action, id) {
      if (action.confirm && !await confirmAction({ title: action.label + ' instance ' + id + '?',
        text: 'The instance is removed from the registry; its data stays in its base directory.', confirmLabel: action.label }))
        return;
      const progress = createProgress({ label: `${action.label} ${id}` });
      progress.element.dataset.job = action.fn + ':' + id;
      jobs.prepend(progress.element);
      while (jobs.children.length > 5) jobs.lastChild.remove(); // the latest few
      try {
        await runJob(action.fn, { instanceFilter: id }, (env) => {
          const running = env.statusCode === 'running';
          const percent = running && typeof env.percentProgress === 'number';
          progress.update({ state: running ? 'running' : env.error ? 'failed' : 'done',
            done: percent ? env.percentProgress : null, total: percent ? 100 : null,
            message: env.statusText || '' });
        });
        toast(`${action.label}: ${id} done.`);
      } catch (e) {
        progress.update({ state: 'failed', message: e.message });
        toast(e.message, { kind: 'error' });
      }
      load();
    }

    const table = createTable({
      columns: [
        { key: 'instanceID', label: 'Instance', render: (i) => el('a', { href: '#/instances/' + encodeURIComponent(i.instanceID), text: i.instanceID }),
          sortValue: (i) => i.instanceID },
        { key: 'displayName', label: 'Name' },
        { key: 'instanceHost', label: 'Instance Host' },
        { key: 'status', label: 'State', render: (i) => el('span', { class: 'state ' + (i.status === 'running' ? 'ok' : i.status === 'frozen' || i.status === 'stopped' ? 'pending' : 'bad'), 'data-state': i.status, text: i.status }) },
        { key: 'startMode', label: 'Start mode' },
        { key: 'actions', label: 'Actions', sortable: false, render: (i) => el('span', { class: 'row-actions' },
          ...ACTIONS.filter((a) => a.when(i.status)).map((a) => el('button', {
            type: 'button', class: 'ghost small' + (a.confirm ? ' danger-text' : ''), text: a.label,
            'aria-label': a.label + ' ' + i.instanceID, onclick: () => run(a, i.instanceID) }))) },
      ],
      pageSize: 25, filterLabel: 'Filter instances', empty: 'No instances.', rowKey: 'instanceID',
      caption: 'Instances',
    });
    load = async () => {
      try {
        const list = await invoke('GetInstances', {}, { kind: 'instances-list' });
        if (list === SUPERSEDED || this.visit !== visit) return;
        error.hidden = true;
        table.setRows(list || []);
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      }
    };
    const add = el('button', { type: 'button', class: 'primary', text: 'Create instance', id: 'create-instance',
      onclick: async () => {
        try {
          const id = await createInstanceDialog();
          if (id) {
            toast('Instance ' + id + ' created.');
            load();
          }
        } catch (e) {
          toast(e.message, { kind: 'error' });
        }
      } });
    c.append(el('div', { class: 'page-head' }, el('h1', { text: 'Instances' }), add), error, jobs, table.element);
    await load();
  },
  leave() {
    this.visit = null;
  },
};
