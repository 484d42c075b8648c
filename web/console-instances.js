/* console-instances: every instance with its Instance Host and state, to
 * filter, sort and page through (GetInstances). */
import { el } from './dom.js';
import { invoke, SUPERSEDED } from './console-api.js';
import { createTable } from './ui-table.js';

export const instancesPage = {
  async enter(c) {
    const error = el('p', { class: 'error', role: 'alert', hidden: '' });
    const table = createTable({
      columns: [
        { key: 'instanceID', label: 'Instance' },
        { key: 'displayName', label: 'Name' },
        { key: 'instanceHost', label: 'Instance Host' },
        { key: 'status', label: 'State' },
        { key: 'startMode', label: 'Start mode' },
      ],
      pageSize: 25, filterLabel: 'Filter instances', empty: 'No instances.', rowKey: 'instanceID',
      caption: 'Instances',
    });
    c.append(el('div', { class: 'page-head' }, el('h1', { text: 'Instances' })), error, table.element);
    try {
      const list = await invoke('GetInstances', {}, { kind: 'instances-list' });
      if (list !== SUPERSEDED) table.setRows(list || []);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  },
};
