/* console-administrators: the system administrators with their MFA state
 * (GetSystemAdministrators; never a password or secret). */
import { el } from './dom.js';
import { invoke, SUPERSEDED } from './console-api.js';
import { createTable } from './ui-table.js';

function mfaText(a) {
  const state = a.mfa && typeof a.mfa === 'object' ? a.mfa.state : a.mfa || a.mfaState;
  return state || 'off';
}

export const administratorsPage = {
  async enter(c) {
    const error = el('p', { class: 'error', role: 'alert', hidden: '' });
    const table = createTable({
      columns: [
        { key: 'userName', label: 'Name' },
        { key: 'fullName', label: 'Full name' },
        { key: 'mfa', label: 'MFA', render: mfaText },
      ],
      filterLabel: 'Filter administrators', empty: 'No administrators.', rowKey: 'userName',
      caption: 'System administrators',
    });
    c.append(el('div', { class: 'page-head' }, el('h1', { text: 'Administrators' })), error, table.element);
    try {
      const list = await invoke('GetSystemAdministrators', {}, { kind: 'admins-list' });
      if (list !== SUPERSEDED) table.setRows(list || []);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  },
};
