/* ui-progress: the progress of a long-running job (an import, starting
 * an instance, verifying a store).
 *
 *   const p = createProgress({ label: 'Importing mail' }); parent.append(p.element);
 *   await followJob(p, () => api.call('GET', ...), { intervalMs: 1000 });
 *
 * poll() returns { state: 'running'|'done'|'failed', done, total, message };
 * without a total the bar is indeterminate. */
import { el } from './dom.js';

export function createProgress({ label }) {
  const bar = el('progress', { 'aria-label': label });
  const text = el('span', { class: 'progress-text', 'aria-live': 'polite' });
  const element = el('div', { class: 'progress-view', 'data-state': 'running' },
    el('span', { class: 'progress-label', text: label }), bar, text);

  function update({ state = 'running', done = null, total = null, message = '' }) {
    element.dataset.state = state;
    if (total) {
      bar.max = total;
      bar.value = Math.min(done || 0, total);
    } else if (state === 'done') {
      bar.max = 1;
      bar.value = 1;
    } else {
      bar.removeAttribute('value'); // indeterminate
    }
    const count = total ? (done || 0) + ' of ' + total : '';
    const word = state === 'done' ? 'Done' : state === 'failed' ? 'Failed' : count ? '' : 'Working…';
    text.textContent = [word, count, message].filter(Boolean).join(' · ');
  }

  update({});
  return { element, update };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Polls until the job is done or failed; gives its last state. A failed
 * poll ends it as failed with the error's message. */
export async function followJob(progress, poll, { intervalMs = 1000 } = {}) {
  for (;;) {
    let s;
    try {
      s = await poll();
    } catch (e) {
      s = { state: 'failed', message: e.message };
    }
    progress.update(s);
    if (s.state === 'done' || s.state === 'failed') return s;
    await sleep(intervalMs);
  }
}

/* A progress view that follows a Management API envelope (runJob's
 * onProgress): running with its percentage and status text, then done or
 * failed. data-job names the job for tests and screen readers' context. */
export function createJobProgress(label, key) {
  const p = createProgress({ label });
  p.element.dataset.job = key;
  p.follow = (env) => {
    const running = env.statusCode === 'running';
    const percent = running && typeof env.percentProgress === 'number';
    p.update({ state: running ? 'running' : env.error ? 'failed' : 'done',
      done: percent ? env.percentProgress : null, total: percent ? 100 : null, message: env.statusText || '' });
  };
  return p;
}
