/* wa-mail: the mail page of Web Access: the folder tree, the message list
 * (a folder, all mail, or a search with its filters), the reader,
 * restore, downloads and export. Everything from a message is put into the
 * page as text; the HTML of a mail is only ever shown in the sandboxed
 * frame, served by the server with its own Content-Security-Policy.
 *
 * Answers can arrive out of order: the list and the reader each ask through
 * ApiClient.latest() ("list", "message"), so an answer a newer request has
 * superseded is dropped. Closing the reader (also on every new folder or
 * search) supersedes "message", so no message from before shows. */
import { SUPERSEDED, query } from './api.js';
import { byId as $, el, show, message, download } from './dom.js';
import { formatDate, formatSize, parseSender } from './format.js';
import { session, mayExport } from './wa-session.js';

const PAGE_SIZE = 50;

const state = {
  folders: [],
  folder: null, // {owner, path} or null for everything
  query: '',
  offset: 0,
  total: 0,
  messages: [],
  selected: new Set(),
  current: null,
};

const api = () => session.api;

/* A sender as its display name, the address on hover. */
function senderNode(tag, cls, text, empty) {
  const s = parseSender(text);
  const node = el(tag, { class: cls, text: s.name || empty });
  if (s.address) node.title = s.address;
  return node;
}

/* ---- folders ---- */

function folderKey(f) {
  return f ? f.owner + '\u0000' + f.path : '';
}

function buildTree(folders, multipleOwners) {
  const root = { children: new Map() };
  for (const f of folders) {
    const parts = (multipleOwners ? [f.owner] : []).concat(f.path.split('/'));
    let node = root;
    parts.forEach((name, i) => {
      if (!node.children.has(name))
        node.children.set(name, { name, children: new Map(), folder: null, messages: 0 });
      node = node.children.get(name);
      if (i === parts.length - 1) {
        node.folder = f;
        node.messages = f.messages;
      }
    });
  }
  return root;
}

function renderTree() {
  const ul = $('folder-tree');
  ul.textContent = '';
  const owners = new Set(state.folders.map((f) => f.owner));
  ul.append(el('li', { role: 'treeitem' },
    el('button', {
      type: 'button',
      class: 'folder' + (state.folder === null ? ' active' : ''),
      onclick: () => openFolder(null),
    }, el('span', { class: 'name', text: 'All mail' }))));
  const addNodes = (parent, node, depth) => {
    for (const child of [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const li = el('li', { role: 'treeitem' });
      const button = el('button', {
        type: 'button',
        class: 'folder' + (child.folder && folderKey(child.folder) === folderKey(state.folder) ? ' active' : ''),
      }, el('span', { class: 'name', text: child.name }));
      button.style.paddingLeft = (0.75 + depth * 0.9) + 'rem';
      if (child.folder) {
        button.append(el('span', { class: 'count', text: String(child.messages) }));
        button.addEventListener('click', () => openFolder(child.folder));
        button.dataset.owner = child.folder.owner;
        button.dataset.path = child.folder.path;
      } else {
        button.disabled = true;
        button.classList.add('branch');
      }
      li.append(button);
      parent.append(li);
      if (child.children.size) {
        const sub = el('ul', { role: 'group' });
        li.append(sub);
        addNodes(sub, child, depth + 1);
      }
    }
  };
  addNodes(ul, buildTree(state.folders, owners.size > 1), 0);
}

async function loadFolders() {
  state.folders = await api().call('GET', 'folders');
  renderTree();
}

function openFolder(folder) {
  state.folder = folder;
  state.query = '';
  $('search-input').value = '';
  state.offset = 0;
  renderTree();
  closeNav();
  closeReader();
  loadMessages();
}

/* ---- the message list ---- */

function listTitle() {
  if (state.query) return 'Search: ' + state.query;
  if (state.folder) return state.folder.path;
  return 'All mail';
}

/* What a failed list load tells the user: a query the server could not
 * read says what is wrong with it, once, in the list's error line. */
function listErrorText(e) {
  if (e.status === 400 && state.query && /^query: /.test(e.message))
    return 'The search could not be understood: ' + e.message.replace(/^query: /, '') + '.';
  return e.message;
}

async function loadMessages() {
  const error = $('list-error');
  message(error, '');
  $('list-title').textContent = listTitle();
  const params = { limit: PAGE_SIZE, offset: state.offset, query: state.query };
  if (state.folder) {
    params.owner = state.folder.owner;
    params.path = state.folder.path;
  }
  $('list-pane').setAttribute('aria-busy', 'true');
  let failure = null;
  try {
    const r = await api().latest('list', 'GET', 'messages' + query(params));
    if (r === SUPERSEDED) return; /* a newer list was asked for */
    state.total = r.total;
    state.messages = r.messages;
  } catch (e) {
    state.total = 0;
    state.messages = [];
    failure = listErrorText(e);
  }
  $('list-pane').removeAttribute('aria-busy');
  message(error, failure, true);
  state.selected.clear();
  renderMessages(failure !== null);
}

function renderMessages(failed) {
  const ul = $('message-list');
  ul.textContent = '';
  const showFolder = !state.folder;
  for (const m of state.messages) {
    const box = el('input', { type: 'checkbox', 'aria-label': 'Select' });
    box.checked = state.selected.has(m.id);
    box.addEventListener('change', () => {
      if (box.checked) state.selected.add(m.id);
      else state.selected.delete(m.id);
      updateSelection();
    });
    const row = el('button', { type: 'button', class: 'message-row' },
      senderNode('span', 'from', m.from, '(no sender)'),
      el('span', { class: 'date', text: formatDate(m.date || m.internalDate) }),
      el('span', { class: 'subject', text: m.subject || '(no subject)' }),
      m.hasAttachment ?
        el('span', { class: 'attachment-icon', role: 'img', title: 'Has attachments', 'aria-label': 'Has attachments' }) :
        el('span', { class: 'no-attachment' }),
      el('span', { class: 'meta', text: (showFolder ? m.folder + ' · ' : '') + formatSize(m.size) }));
    row.addEventListener('click', () => openMessage(m.id));
    ul.append(el('li', { class: 'message' + (state.current === m.id ? ' active' : ''), 'data-id': String(m.id) },
      el('label', { class: 'check' }, box), row));
  }
  /* after a failure the error line alone says so */
  if (state.messages.length === 0 && !failed)
    ul.append(el('li', { class: 'empty', text: state.query ? 'No messages match.' : 'No messages.' }));
  const first = state.total === 0 ? 0 : state.offset + 1;
  const last = state.offset + state.messages.length;
  $('page-info').textContent = failed ? '' : first + '–' + last + ' of ' + state.total;
  $('page-newer').disabled = state.offset === 0;
  $('page-older').disabled = last >= state.total;
  updateSelection();
}

function updateSelection() {
  const n = state.selected.size;
  show($('export-zip'), mayExport());
  show($('export-mbox'), mayExport());
  $('export-zip').disabled = n === 0;
  $('export-mbox').disabled = n === 0;
  $('export-zip').textContent = n ? 'Export ' + n + ' as zip' : 'Export zip';
  $('export-mbox').textContent = n ? 'Export ' + n + ' as mbox' : 'Export mbox';
  $('select-all').checked = n > 0 && n === state.messages.length;
}

function exportSelection(format) {
  const ids = [...state.selected].join(',');
  download(api().url('export' + query({ format, ids })));
}

/* ---- search ---- */

function quoteTerm(value) {
  const v = value.trim().replace(/"/g, '');
  return /\s/.test(v) ? '"' + v + '"' : v;
}

function filterQuery() {
  const parts = [];
  const text = $('search-input').value.trim();
  if (text) parts.push(text);
  for (const [field, id] of [['from', 'f-from'], ['to', 'f-to'], ['subject', 'f-subject']]) {
    const v = $(id).value.trim();
    if (v) parts.push(field + ':' + quoteTerm(v));
  }
  if ($('f-after').value) parts.push('after:' + $('f-after').value);
  if ($('f-before').value) parts.push('before:' + $('f-before').value);
  if ($('f-attachment').checked) parts.push('has:attachment');
  return parts.join(' ');
}

function onSearch(event) {
  event.preventDefault();
  state.query = filterQuery();
  state.offset = 0;
  /* A search covers the whole archive (folder:NAME narrows it). */
  state.folder = null;
  renderTree();
  closeReader();
  loadMessages();
}

/* ---- reading ---- */

async function openMessage(id) {
  state.current = id;
  for (const li of document.querySelectorAll('#message-list li.message'))
    li.classList.toggle('active', li.dataset.id === String(id));
  const listed = state.messages.find((x) => x.id === id);
  $('reader').setAttribute('aria-busy', 'true');
  let m;
  try {
    m = await api().latest('message', 'GET', 'messages/' + id);
  } catch (e) {
    $('reader').removeAttribute('aria-busy');
    message($('list-error'), e.message, true);
    return;
  }
  /* another message was opened, or the folder or search changed */
  if (m === SUPERSEDED) return;
  $('reader').removeAttribute('aria-busy');
  $('m-subject').textContent = m.subject || '(no subject)';
  const from = parseSender(m.from);
  $('m-from').textContent = from.name === from.address ? m.from : from.name + ' <' + from.address + '>';
  $('m-from').title = from.address;
  $('m-to').textContent = m.to;
  $('m-cc').textContent = m.cc;
  show($('m-cc'), !!m.cc);
  show($('m-cc-label'), !!m.cc);
  $('m-date').textContent = formatDate(m.date || (listed && listed.date), true);
  $('m-folder').textContent = listed ? listed.folder : '';
  $('download-original').href = api().url('messages/' + id + '/raw');
  $('restore-status').textContent = '';
  const list = $('m-attachments');
  list.textContent = '';
  for (const a of m.attachments) {
    list.append(el('li', {},
      el('a', {
        href: api().url('messages/' + id + '/parts/' + encodeURIComponent(a.part)),
        download: a.filename || 'attachment',
        class: 'attachment',
      }, el('span', { class: 'name', text: a.filename || a.contentType }),
      el('span', { class: 'size', text: formatSize(a.size) }))));
  }
  show(list, m.attachments.length > 0);
  const frame = $('m-html');
  if (m.html) {
    frame.src = api().url('messages/' + id + '/html');
    show(frame, true);
    show($('m-text'), false);
    show($('m-remote-note'), true);
  } else {
    frame.removeAttribute('src');
    show(frame, false);
    $('m-text').textContent = m.text;
    show($('m-text'), true);
    show($('m-remote-note'), false);
  }
  show($('reader'), true);
  show($('reader-empty'), false);
  document.body.classList.add('reading');
  $('reader').scrollTop = 0;
}

/* Restore: the server mails the original to the user's own address. */
async function restoreCurrent() {
  if (state.current === null) return;
  const status = $('restore-status');
  const button = $('restore-button');
  button.disabled = true;
  status.textContent = 'Sending…';
  try {
    const r = await api().call('POST', 'restore', { id: state.current });
    status.textContent = 'Sent to ' + r.sentTo;
  } catch (e) {
    status.textContent = 'Not restored: ' + e.message;
  } finally {
    button.disabled = false;
  }
}

function closeReader() {
  api().supersede('message'); /* an answer still on its way is not shown */
  $('reader').removeAttribute('aria-busy');
  document.body.classList.remove('reading');
  state.current = null;
  show($('reader'), false);
  show($('reader-empty'), true);
}

/* ---- phone navigation ---- */

function toggleNav() {
  const open = !document.body.classList.contains('nav-open');
  document.body.classList.toggle('nav-open', open);
  $('nav-toggle').setAttribute('aria-expanded', String(open));
}

function closeNav() {
  document.body.classList.remove('nav-open');
  $('nav-toggle').setAttribute('aria-expanded', 'false');
}

/* ---- the page ---- */

let started = false;

export const mailPage = {
  /* Shows the app with all mail, unless it already shows (coming back
   * from a dialog page such as the settings). */
  async enter() {
    if (started) return;
    started = true;
    show($('login-view'), false);
    show($('app-view'), true);
    closeReader();
    state.folder = null;
    state.query = '';
    state.offset = 0;
    await loadFolders();
    await loadMessages();
  },
  leave() {},
};

/* Signed out: the next enter() starts afresh. */
export function resetMail() {
  started = false;
}

export function initMail({ onLogout, onSettings }) {
  $('logout-button').addEventListener('click', onLogout);
  $('settings-button').addEventListener('click', onSettings);
  $('search-form').addEventListener('submit', onSearch);
  $('filters').addEventListener('submit', onSearch);
  $('filters-clear').addEventListener('click', () => {
    $('filters').reset();
    $('search-input').value = '';
    state.query = '';
    state.offset = 0;
    closeReader();
    loadMessages();
  });
  $('filter-toggle').addEventListener('click', () => {
    const open = $('filters').hidden;
    show($('filters'), open);
    $('filter-toggle').setAttribute('aria-expanded', String(open));
  });
  $('page-newer').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    loadMessages();
  });
  $('page-older').addEventListener('click', () => {
    state.offset += PAGE_SIZE;
    loadMessages();
  });
  $('select-all').addEventListener('change', () => {
    if ($('select-all').checked) state.messages.forEach((m) => state.selected.add(m.id));
    else state.selected.clear();
    renderMessages();
  });
  $('export-zip').addEventListener('click', () => exportSelection('zip'));
  $('export-mbox').addEventListener('click', () => exportSelection('mbox'));
  $('reader-back').addEventListener('click', closeReader);
  $('restore-button').addEventListener('click', restoreCurrent);
  $('nav-toggle').addEventListener('click', toggleNav);
}
