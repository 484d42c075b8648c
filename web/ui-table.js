/* ui-table: a table of rows with a filter box, sortable columns and pages.
 *
 *   const t = createTable({
 *     columns: [{ key: 'name', label: 'Name' },
 *               { key: 'size', label: 'Size', render: (row) => formatSize(row.size) }],
 *     pageSize: 25, filterLabel: 'Filter instances', empty: 'No instances.' });
 *   parent.append(t.element); t.setRows(rows);
 *
 * Sorting compares the raw values (numbers as numbers, text by locale);
 * the filter matches the text of every column. A render() returns a string
 * (shown as text) or a Node. */
import { el } from './dom.js';

function compareValues(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a ?? '').localeCompare(String(b ?? ''), undefined, { numeric: true });
}

export function createTable({ columns, pageSize = 25, filterLabel = 'Filter', empty = 'Nothing here.',
  rowKey = null, caption = null }) {
  let rows = [];
  let sort = { key: null, dir: 1 };
  let filter = '';
  let page = 0;

  const filterInput = el('input', { type: 'search', class: 'table-filter', 'aria-label': filterLabel,
    placeholder: filterLabel, autocomplete: 'off' });
  const tbody = el('tbody');
  const headCells = columns.map((c) => {
    const th = el('th', { scope: 'col', 'data-key': c.key });
    if (c.sortable === false) {
      th.textContent = c.label;
    } else {
      th.setAttribute('aria-sort', 'none');
      th.append(el('button', { type: 'button', class: 'sort', text: c.label, onclick: () => sortBy(c.key) }));
    }
    return th;
  });
  const table = el('table', { class: 'data-table' }, caption ? el('caption', { text: caption }) : null,
    el('thead', {}, el('tr', {}, ...headCells)), tbody);
  const info = el('span', { class: 'table-info', 'aria-live': 'polite' });
  const prev = el('button', { type: 'button', class: 'ghost table-prev', text: '← Previous', onclick: () => goPage(page - 1) });
  const next = el('button', { type: 'button', class: 'ghost table-next', text: 'Next →', onclick: () => goPage(page + 1) });
  const element = el('div', { class: 'table-view' }, filterInput, el('div', { class: 'table-scroll' }, table),
    el('div', { class: 'pager' }, prev, info, next));

  filterInput.addEventListener('input', () => {
    filter = filterInput.value.trim().toLowerCase();
    page = 0;
    render();
  });

  const cellText = (c, row) => {
    const v = c.render ? c.render(row) : row[c.key];
    return v instanceof Node ? v.textContent : String(v ?? '');
  };

  function visible() {
    let list = filter ?
      rows.filter((r) => columns.some((c) => cellText(c, r).toLowerCase().includes(filter))) : rows.slice();
    if (sort.key !== null) {
      const col = columns.find((c) => c.key === sort.key);
      const value = col.sortValue || ((r) => r[col.key]);
      list.sort((a, b) => sort.dir * compareValues(value(a), value(b)));
    }
    return list;
  }

  function sortBy(key) {
    sort = sort.key === key ? { key, dir: -sort.dir } : { key, dir: 1 };
    page = 0;
    render();
  }

  function goPage(n) {
    page = n;
    render();
  }

  function render() {
    const list = visible();
    const pages = Math.max(1, Math.ceil(list.length / pageSize));
    page = Math.min(Math.max(0, page), pages - 1);
    const shown = list.slice(page * pageSize, (page + 1) * pageSize);
    tbody.textContent = '';
    for (const row of shown) {
      const tr = el('tr', rowKey ? { 'data-key': String(row[rowKey]) } : {});
      for (const c of columns) {
        const v = c.render ? c.render(row) : row[c.key];
        tr.append(el('td', {}, v instanceof Node ? v : String(v ?? '')));
      }
      tbody.append(tr);
    }
    if (shown.length === 0)
      tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: String(columns.length), text: empty })));
    for (const th of headCells) {
      if (th.hasAttribute('aria-sort'))
        th.setAttribute('aria-sort', th.dataset.key !== sort.key ? 'none' : sort.dir > 0 ? 'ascending' : 'descending');
    }
    const first = list.length === 0 ? 0 : page * pageSize + 1;
    info.textContent = first + '–' + (page * pageSize + shown.length) + ' of ' + list.length;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  render();
  return {
    element,
    setRows(list) {
      rows = list.slice();
      render();
    },
    get rows() {
      return visible();
    },
  };
}
