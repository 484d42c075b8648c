/* Coffer Web Access: a plain script over the client API (docs/client-api.md).
 * Everything from a message is put into the page as text (textContent);
 * the HTML of a mail is only ever shown in the sandboxed frame, served by
 * the server with its own Content-Security-Policy. */
'use strict';

const PAGE_SIZE = 50;
/* Anything slower than this shows the loading indicator; anything faster
 * would only make it flicker. */
const LOADING_DELAY_MS = 200;
const $ = (id) => document.getElementById(id);

const state = {
  instance: null,      // as in the URL
  api: null,           // "/INSTANCE/api/"
  csrf: null,
  user: null,
  folders: [],
  folder: null,        // {owner, path} or null for everything
  query: '',
  offset: 0,
  total: 0,
  messages: [],
  selected: new Set(),
  current: null,
  /* Answers can arrive out of order: each list load and each message
   * opened takes a number, and an answer whose number is no longer the
   * latest is dropped. Closing the reader (also on every new folder or
   * search) moves readSeq on, so no message from before shows. */
  listSeq: 0,
  readSeq: 0,
};

/* ---- the API ---- */

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/* ---- loading feedback ---- */

let slowRequests = 0;

/* Call when a request starts; call what it returns when it ends. After
 * LOADING_DELAY_MS the indicator shows until every slow request is done. */
function loadingStart() {
  let slow = false;
  const timer = setTimeout(() => {
    slow = true;
    slowRequests++;
    show($('busy'), true);
  }, LOADING_DELAY_MS);
  return () => {
    clearTimeout(timer);
    if (slow && --slowRequests === 0) show($('busy'), false);
  };
}

async function api(method, path, body) {
  const done = loadingStart();
  try {
    return await apiCall(method, path, body);
  } finally {
    done();
  }
}

async function apiCall(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['X-CSRF-Token'] = state.csrf || '';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(state.api + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    if (response.status === 401 && err.code === 'auth-failed' && state.user) showLogin();
    throw new ApiError(response.status, err.code || 'failed', err.message || response.statusText);
  }
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

/* ---- small helpers ---- */

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function show(node, on) {
  node.hidden = !on;
}

function message(node, text, isError) {
  node.textContent = text || '';
  node.classList.toggle('error', !!isError);
  show(node, !!text);
}

function formatDate(seconds, long) {
  if (!seconds) return '';
  const d = new Date(seconds * 1000);
  const now = new Date();
  if (long) return d.toLocaleString();
  if (d.toDateString() === now.toDateString())
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.getFullYear() === now.getFullYear())
    return d.toLocaleDateString([], { day: 'numeric', month: 'short' });
  return d.toLocaleDateString();
}

function formatSize(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return Math.round(n / 1024) + ' KB';
  return (n / 1024 / 1024).toFixed(1) + ' MB';
}

/* "Name <address>" (as the server gives a sender) into its display name
 * and address; anything else (several addresses, a group, a bare address)
 * is shown whole. Only ever used as text, never parsed as HTML. */
function parseSender(text) {
  const t = (text || '').trim();
  const m = /^(?:"((?:[^"\\]|\\.)*)"|([^"<>,]*?))\s*<([^<>\s]+)>$/.exec(t);
  if (!m) return { name: t, address: t };
  const name = (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]).trim();
  return { name: name || m[3], address: m[3] };
}

/* A sender as its display name, the address on hover. */
function senderNode(tag, cls, text, empty) {
  const s = parseSender(text);
  const node = el(tag, { class: cls, text: s.name || empty });
  if (s.address) node.title = s.address;
  return node;
}

/* ---- login ---- */

function showLogin() {
  state.user = null;
  state.csrf = null;
  show($('app-view'), false);
  show($('login-view'), true);
  show($('org-row'), !state.instance);
  $('login-org').required = !state.instance;
  show($('totp-row'), false);
  $('login-password').value = '';
  $('login-totp').value = '';
  (state.instance ? $('login-user') : $('login-org')).focus();
}

async function onLogin(event) {
  event.preventDefault();
  const error = $('login-error');
  message(error, '');
  if (!state.instance) {
    const org = $('login-org').value.trim().toLowerCase();
    if (!org) return;
    /* The instance is part of the address: sessions belong to it. */
    history.replaceState(null, '', '/' + encodeURIComponent(org) + '/');
    setInstance(org);
  }
  const body = {
    userName: $('login-user').value.trim(),
    password: $('login-password').value,
  };
  if (!$('totp-row').hidden) body.totp = $('login-totp').value.replace(/\s+/g, '');
  $('login-submit').disabled = true;
  try {
    const r = await api('POST', 'login', body);
    state.csrf = r.csrfToken;
    state.user = r.user;
    await startApp();
  } catch (e) {
    if (e.code === 'mfa-required') {
      show($('totp-row'), true);
      $('login-totp').focus();
      message(error, 'Enter the code from your authenticator app.', false);
    } else if (e.code === 'throttled') {
      message(error, e.message, true);
    } else if (e.code === 'auth-failed') {
      message(error, 'Sign-in failed: check the organisation, user name, password' +
        ($('totp-row').hidden ? '' : ' and code') + '.', true);
    } else {
      message(error, e.message, true);
    }
  } finally {
    $('login-submit').disabled = false;
  }
}

async function onLogout() {
  try {
    await api('POST', 'logout');
  } catch (e) { /* the session is gone either way */ }
  showLogin();
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
    let path = [];
    parts.forEach((name, i) => {
      path.push(name);
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
  const all = el('li', { role: 'treeitem' },
    el('button', {
      type: 'button',
      class: 'folder' + (state.folder === null ? ' active' : ''),
      onclick: () => openFolder(null),
    }, el('span', { class: 'name', text: 'All mail' })));
  ul.append(all);
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
  state.folders = await api('GET', 'folders');
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
  const seq = ++state.listSeq;
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
    const r = await api('GET', 'messages' + query(params));
    if (seq !== state.listSeq) return; /* a newer list was asked for */
    state.total = r.total;
    state.messages = r.messages;
  } catch (e) {
    if (seq !== state.listSeq) return;
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
    const li = el('li', { class: 'message' + (state.current === m.id ? ' active' : ''), 'data-id': String(m.id) },
      el('label', { class: 'check' }, box), row);
    ul.append(li);
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

/* Export needs the export privilege (the server refuses it without). */
function mayExport() {
  const p = state.user && state.user.effectivePrivileges;
  return Array.isArray(p) && p.includes('export');
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

function download(url) {
  const a = el('a', { href: url, download: '' });
  document.body.append(a);
  a.click();
  a.remove();
}

function exportSelection(format) {
  const ids = [...state.selected].join(',');
  download(state.api + 'export' + query({ format, ids }));
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
  const seq = ++state.readSeq;
  state.current = id;
  for (const li of document.querySelectorAll('#message-list li.message'))
    li.classList.toggle('active', li.dataset.id === String(id));
  const listed = state.messages.find((x) => x.id === id);
  $('reader').setAttribute('aria-busy', 'true');
  let m;
  try {
    m = await api('GET', 'messages/' + id);
  } catch (e) {
    if (seq === state.readSeq) {
      $('reader').removeAttribute('aria-busy');
      message($('list-error'), e.message, true);
    }
    return;
  }
  /* another message was opened, or the folder or search changed */
  if (seq !== state.readSeq) return;
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
  $('download-original').href = state.api + 'messages/' + id + '/raw';
  $('restore-status').textContent = '';
  const list = $('m-attachments');
  list.textContent = '';
  for (const a of m.attachments) {
    list.append(el('li', {},
      el('a', {
        href: state.api + 'messages/' + id + '/parts/' + encodeURIComponent(a.part),
        download: a.filename || 'attachment',
        class: 'attachment',
      }, el('span', { class: 'name', text: a.filename || a.contentType }),
      el('span', { class: 'size', text: formatSize(a.size) }))));
  }
  show(list, m.attachments.length > 0);
  const frame = $('m-html');
  if (m.html) {
    frame.src = state.api + 'messages/' + id + '/html';
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
    const r = await api('POST', 'restore', { id: state.current });
    status.textContent = 'Sent to ' + r.sentTo;
  } catch (e) {
    status.textContent = 'Not restored: ' + e.message;
  } finally {
    button.disabled = false;
  }
}

function closeReader() {
  state.readSeq++; /* an answer still on its way is not shown */
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

/* ---- settings ---- */

async function renderMfa() {
  const on = !!(state.user && state.user.mfaEnabled);
  $('mfa-state').textContent = on ? 'Two-factor authentication is on.' :
    'Two-factor authentication is off. Turn it on to require a code from an app on your phone at every sign-in.';
  show($('mfa-begin-form'), !on);
  show($('mfa-activate-form'), false);
  show($('mfa-disable-form'), on);
}

async function loadAppPasswords() {
  const ul = $('app-password-list');
  ul.textContent = '';
  let list = [];
  try {
    list = await api('GET', 'app-passwords');
  } catch (e) {
    message($('ap-message'), e.message, true);
    return;
  }
  for (const p of list) {
    ul.append(el('li', {},
      el('span', { text: p.name + ' (created ' + formatDate(p.created, true) + ')' }),
      el('button', {
        type: 'button',
        class: 'ghost',
        text: 'Delete',
        onclick: async () => {
          try {
            await api('DELETE', 'app-passwords/' + encodeURIComponent(p.name));
            loadAppPasswords();
          } catch (e) {
            message($('ap-message'), e.message, true);
          }
        },
      })));
  }
  if (!list.length) ul.append(el('li', { class: 'hint', text: 'None yet.' }));
}

function openSettings() {
  for (const id of ['pw-message', 'mfa-message', 'ap-message']) message($(id), '');
  renderMfa();
  loadAppPasswords();
  $('settings').showModal();
}

async function onChangePassword(event) {
  event.preventDefault();
  const msg = $('pw-message');
  if ($('pw-new').value !== $('pw-new2').value) {
    message(msg, 'The new passwords differ.', true);
    return;
  }
  try {
    await api('POST', 'password', { oldPassword: $('pw-old').value, newPassword: $('pw-new').value });
    $('password-form').reset();
    message(msg, 'Your password was changed. Other sessions were signed out.', false);
  } catch (e) {
    message(msg, e.message, true);
  }
}

async function onMfaBegin(event) {
  event.preventDefault();
  try {
    const r = await api('POST', 'mfa/begin', { password: $('mfa-begin-password').value });
    $('mfa-begin-form').reset();
    $('mfa-qr').src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(r.qrCodeSvg);
    $('mfa-secret').textContent = r.secret;
    show($('mfa-begin-form'), false);
    show($('mfa-activate-form'), true);
    message($('mfa-message'), '');
    $('mfa-code').focus();
  } catch (e) {
    message($('mfa-message'), e.message, true);
  }
}

async function onMfaActivate(event) {
  event.preventDefault();
  try {
    await api('POST', 'mfa/activate', { code: $('mfa-code').value.replace(/\s+/g, '') });
    $('mfa-activate-form').reset();
    state.user.mfaEnabled = true;
    renderMfa();
    message($('mfa-message'), 'Two-factor authentication is now on.', false);
  } catch (e) {
    message($('mfa-message'), e.message, true);
  }
}

async function onMfaDisable(event) {
  event.preventDefault();
  try {
    await api('POST', 'mfa/disable', {
      password: $('mfa-disable-password').value,
      code: $('mfa-disable-code').value.replace(/\s+/g, ''),
    });
    $('mfa-disable-form').reset();
    state.user.mfaEnabled = false;
    renderMfa();
    message($('mfa-message'), 'Two-factor authentication is now off.', false);
  } catch (e) {
    message($('mfa-message'), e.message, true);
  }
}

async function onCreateAppPassword(event) {
  event.preventDefault();
  try {
    const r = await api('POST', 'app-passwords', { name: $('ap-name').value, password: $('ap-password').value });
    $('app-password-form').reset();
    message($('ap-message'), 'App password "' + r.name + '": ' + r.password + ' (shown only now)', false);
    loadAppPasswords();
  } catch (e) {
    message($('ap-message'), e.message, true);
  }
}

/* ---- start ---- */

async function startApp() {
  show($('login-view'), false);
  show($('app-view'), true);
  closeReader();
  state.folder = null;
  state.query = '';
  state.offset = 0;
  await loadFolders();
  await loadMessages();
}

function setInstance(name) {
  state.instance = name;
  state.api = '/' + encodeURIComponent(name) + '/api/';
  document.title = 'Coffer Web Access – ' + name;
}

async function main() {
  const first = location.pathname.split('/')[1] || '';
  if (first) setInstance(decodeURIComponent(first));
  $('login-form').addEventListener('submit', onLogin);
  $('logout-button').addEventListener('click', onLogout);
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
  $('settings-button').addEventListener('click', openSettings);
  $('password-form').addEventListener('submit', onChangePassword);
  $('mfa-begin-form').addEventListener('submit', onMfaBegin);
  $('mfa-activate-form').addEventListener('submit', onMfaActivate);
  $('mfa-disable-form').addEventListener('submit', onMfaDisable);
  $('app-password-form').addEventListener('submit', onCreateAppPassword);
  if (!state.instance) {
    showLogin();
    return;
  }
  try {
    const s = await api('GET', 'session');
    state.csrf = s.csrfToken;
    state.user = s.user;
    await startApp();
  } catch (e) {
    showLogin();
  }
}

document.addEventListener('DOMContentLoaded', main);
