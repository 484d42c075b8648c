/* console-move: moving instances to another Instance Host (docs/operations.md
 * "Moving an instance"). An instance's Move tab (#/instances/ID/move):
 * the target Instance Host (GetInstanceHosts), an optional base directory
 * there, keep the source or not, then MoveInstance as a job followed on
 * /api/get-status with its progress ("copying: ... bytes") and a Cancel
 * button (/api/cancel-async; the move can be cancelled until the target
 * has taken the instance over). The Move instances page (#/move) does the
 * same for a filter (MoveInstances). */
import { el } from './dom.js';
import { client, invoke } from './console-api.js';
import { createForm } from './ui-form.js';
import { createProgress } from './ui-progress.js';
import { confirmAction } from './ui-dialog.js';
import { toast } from './ui-toast.js';

const envError = (env) => (typeof env.error === 'string' ? env.error : env.error.message);

/* Starts a Management API job and follows its token to the end. The
 * progress shows every state; Cancel asks the server to stop it. Resolves
 * to the last envelope. */
async function followMove(fn, args, progress, cancel) {
  try {
    return await followEnvelope(fn, args, progress, cancel);
  } catch (e) {
    cancel.hidden = true;
    progress.element.dataset.result = 'failed';
    progress.update({ state: 'failed', message: e.message });
    return { statusCode: 'failed', error: e.message };
  }
}

async function followEnvelope(fn, args, progress, cancel) {
  let env = await client.call('POST', fn, args);
  if (env && env.token && env.statusCode === 'running') {
    const token = env.token;
    cancel.hidden = false;
    cancel.disabled = false;
    cancel.onclick = async () => {
      cancel.disabled = true;
      try {
        await client.call('POST', '../cancel-async', { token });
        progress.update({ state: 'running', message: 'cancelling…' });
      } catch (e) {
        toast(e.message, { kind: 'error' });
      }
    };
    while (env && env.statusCode === 'running') {
      progress.update({ state: 'running', done: typeof env.percentProgress === 'number' ? env.percentProgress : null,
        total: typeof env.percentProgress === 'number' ? 100 : null, message: env.statusText || '' });
      env = await client.call('POST', '../get-status', { token, lastKnownStatusVersion: env.statusVersion,
        millisecondsTimeout: 20000 });
    }
  }
  cancel.hidden = true;
  progress.element.dataset.result = env.statusCode || (env.error ? 'failed' : 'succeeded');
  if (env.statusCode === 'cancelled') progress.update({ state: 'failed', message: 'cancelled' });
  else if (env.error) progress.update({ state: 'failed', message: envError(env) });
  else progress.update({ state: 'done', message: env.statusText || '' });
  return env;
}

async function hostNames() {
  return ((await invoke('GetInstanceHosts')) || []).map((h) => (typeof h === 'string' ? h : h.serverName));
}

function moveJob(label) {
  const progress = createProgress({ label });
  const cancel = el('button', { type: 'button', class: 'ghost small danger-text move-cancel', text: 'Cancel',
    'aria-label': 'Cancel: ' + label, hidden: '' });
  const element = el('div', { class: 'move-job' }, progress.element, cancel);
  return { progress, cancel, element };
}

export async function moveTab(c, id, visit) {
  const error = el('p', { class: 'error', role: 'alert', hidden: '' });
  const where = el('p', { class: 'move-where' });
  const jobs = el('div', { class: 'jobs' });
  const [conf, hosts] = await Promise.all([invoke('GetInstanceConfiguration', { instanceID: id }), hostNames()]);
  if (visit.gone) return;
  where.textContent = `On ${conf.instanceHost}, in ${conf.baseDirectory} (${conf.status}).`;
  where.dataset.host = conf.instanceHost;
  const others = hosts.filter((h) => h !== conf.instanceHost);
  const form = createForm({
    fields: [
      { name: 'target', label: 'Target Instance Host', type: 'select', options: others.map((h) => ({ value: h, label: h })) },
      { name: 'baseDirectory', label: 'Base directory on the target (empty: the same path)' },
      { name: 'keepSource', label: 'Keep the base directory and key on the source', type: 'checkbox', value: false },
    ],
    submitLabel: 'Move',
    validate: (v) => (!v.target ? { target: 'No other Instance Host is registered.' } : null),
    onSubmit: async (v) => {
      if (!await confirmAction({ title: `Move ${id} to ${v.target}?`,
        text: 'The instance keeps running while it is copied; it is frozen only for the last catch-up, then runs on the target.',
        confirmLabel: 'Move', danger: false })) return;
      const args = { instanceID: id, targetInstanceHost: v.target, keepSource: !!v.keepSource };
      if (v.baseDirectory.trim()) args.baseDirectory = v.baseDirectory.trim();
      const job = moveJob(`Move ${id} to ${v.target}`);
      job.element.dataset.job = 'MoveInstance:' + id;
      jobs.prepend(job.element);
      const env = await followMove('MoveInstance', args, job.progress, job.cancel);
      if (env.error || env.statusCode === 'cancelled') {
        toast(`Moving ${id}: ` + (env.error ? envError(env) : 'cancelled'), { kind: 'error' });
      } else {
        const r = env.result || {};
        job.progress.update({ state: 'done', message: `now on ${r.instanceHost || v.target}` });
        toast(`${id} moved to ${r.instanceHost || v.target}.`);
      }
      const now = await invoke('GetInstanceConfiguration', { instanceID: id }).catch(() => null);
      if (now && !visit.gone) {
        where.textContent = `On ${now.instanceHost}, in ${now.baseDirectory} (${now.status}).`;
        where.dataset.host = now.instanceHost;
      }
    },
  });
  form.element.id = 'move-form';
  c.append(el('h2', { text: 'Move to another Instance Host' }), where,
    el('p', { class: 'muted', text: 'The data and key are copied host to host and verified, caught up, and the instance started on the target; users notice only the switch. The target\'s parent directory must be writable for Coffer.' }),
    error, form.element, jobs);
}

/* #/move: every instance matching a filter (MoveInstances). */
export const movePage = {
  async enter(c) {
    const visit = { gone: false };
    this.visit = visit;
    const hosts = await hostNames();
    const jobs = el('div', { class: 'jobs' });
    const form = createForm({
      fields: [
        { name: 'instanceFilter', label: 'Instances (IDs or aliases, * and ? as wildcards)', required: true },
        { name: 'sourceInstanceHost', label: 'Only those on', type: 'select',
          options: [{ value: '', label: 'any Instance Host' }, ...hosts.map((h) => ({ value: h, label: h }))] },
        { name: 'targetInstanceHost', label: 'Target Instance Host', type: 'select', options: hosts.map((h) => ({ value: h, label: h })) },
        { name: 'targetDirectory', label: 'Directory on the target (each becomes DIR/ID; empty: the same paths)' },
        { name: 'keepSource', label: 'Keep the base directories and keys on the source', type: 'checkbox', value: false },
      ],
      submitLabel: 'Move',
      onSubmit: async (v) => {
        if (!await confirmAction({ title: `Move ${v.instanceFilter} to ${v.targetInstanceHost}?`,
          text: 'Every matching instance not on the target yet is moved, one after the other.', confirmLabel: 'Move', danger: false })) return;
        const args = { instanceFilter: v.instanceFilter.trim(), targetInstanceHost: v.targetInstanceHost, keepSource: !!v.keepSource };
        if (v.sourceInstanceHost) args.sourceInstanceHost = v.sourceInstanceHost;
        if (v.targetDirectory.trim()) args.targetDirectory = v.targetDirectory.trim();
        const job = moveJob(`Move ${args.instanceFilter} to ${args.targetInstanceHost}`);
        job.element.dataset.job = 'MoveInstances:' + args.instanceFilter;
        jobs.prepend(job.element);
        const env = await followMove('MoveInstances', args, job.progress, job.cancel);
        const moved = (env.result || []).filter((r) => !r.error).length;
        if (!env.error && env.statusCode !== 'cancelled') job.progress.update({ state: 'done', message: `${moved} moved` });
      },
    });
    form.element.id = 'move-instances-form';
    c.append(el('div', { class: 'page-head' }, el('h1', { text: 'Move instances' })),
      el('p', { class: 'muted', text: 'Moves instances to another Instance Host, each as an instance\'s Move tab does (to empty a host for maintenance, say).' }),
      form.element, jobs);
  },
  leave() {
    if (this.visit) this.visit.gone = true;
  },
};
