/* console-settings: the system (GetEnvironmentInfo) and the Management
 * API's reference, generated from what the server says it offers
 * (/api/get-metadata), so it is never out of date. */
import { el } from './dom.js';
import { client, invoke } from './console-api.js';

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
    c.append(el('div', { class: 'page-head' }, el('h1', { text: 'Settings' })), error,
      el('section', { class: 'panel', 'aria-labelledby': 'set-system' }, el('h2', { id: 'set-system', text: 'System' }), system),
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
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  },
};
