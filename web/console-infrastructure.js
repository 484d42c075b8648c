/* console-infrastructure: the Management Server's own fingerprints, and its
 * Instance Hosts and Client Access Servers with their state: added by hand
 * (manual pairing: name, port and the fingerprint of the server's TCP
 * certificate), configured, removed after a confirmation. Every
 * fingerprint has a copy button. */
import { el } from './dom.js';
import { invoke, SUPERSEDED } from './console-api.js';
import { createForm } from './ui-form.js';
import { confirmAction, openFormDialog } from './ui-dialog.js';
import { toast } from './ui-toast.js';

const KINDS = {
  instanceHost: {
    title: 'Instance Hosts', one: 'Instance Host', list: 'instanceHosts',
    create: 'CreateInstanceHost', configure: 'SetInstanceHostConfiguration', remove: 'DeleteInstanceHost',
  },
  clientAccessServer: {
    title: 'Client Access Servers', one: 'Client Access Server', list: 'clientAccessServers',
    create: 'CreateClientAccessServer', configure: 'SetClientAccessServerConfiguration', remove: 'DeleteClientAccessServer',
  },
};

const FINGERPRINT = /^[0-9a-fA-F:]{64,95}$/;

function fingerprintOk(v) {
  return FINGERPRINT.test(v) && v.replace(/:/g, '').length === 64;
}

export function copyButton(text, label) {
  return el('button', {
    type: 'button', class: 'ghost small copy', text: 'Copy', 'aria-label': 'Copy ' + label,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        toast('Copied the ' + label + '.');
      } catch (e) {
        toast('Cannot copy: select the text and copy it.', { kind: 'error' });
      }
    },
  });
}

function fingerprintCell(fp, label) {
  if (!fp) return el('span', { class: 'note', text: '–' });
  return el('span', { class: 'fingerprint' }, el('code', { text: fp }), copyButton(fp, label));
}

function serverForm(kind, server, done) {
  const k = KINDS[kind];
  const editing = !!server;
  const fields = editing ? [
    { name: 'newServerName', label: 'Name (host name or address)', value: server.serverName },
    { name: 'port', label: 'TCP port', type: 'number', value: server.port },
    { name: 'fingerprint', label: 'TCP certificate fingerprint (SHA-256)', value: server.fingerprint },
  ] : [
    { name: 'serverName', label: 'Name (host name or address)', required: true },
    { name: 'port', label: 'TCP port', type: 'number', required: true },
    { name: 'fingerprint', label: 'TCP certificate fingerprint (SHA-256)', required: true },
  ];
  return createForm({
    fields,
    submitLabel: editing ? 'Save' : 'Add',
    validate: (v) => {
      const e = {};
      if (v.port !== null && (!Number.isInteger(v.port) || v.port < 1 || v.port > 65535)) e.port = 'A port from 1 to 65535.';
      if (v.fingerprint && !fingerprintOk(v.fingerprint.trim())) e.fingerprint = '64 hexadecimal digits (colons allowed).';
      return e;
    },
    onSubmit: async (v) => {
      const args = {};
      if (editing) {
        args.serverName = server.serverName;
        if (v.newServerName && v.newServerName !== server.serverName) args.newServerName = v.newServerName.trim();
        if (v.port !== null && v.port !== server.port) args.port = v.port;
        if (v.fingerprint && v.fingerprint.trim() !== server.fingerprint) args.fingerprint = v.fingerprint.trim();
        await invoke(k.configure, args);
      } else {
        await invoke(k.create, { serverName: v.serverName.trim(), port: v.port, fingerprint: v.fingerprint.trim() });
      }
      done(true);
    },
  });
}

export const infrastructurePage = {
  async enter(c) {
    const error = el('p', { class: 'error', role: 'alert', hidden: '' });
    const own = el('div');
    const lists = {};
    for (const kind of Object.keys(KINDS)) lists[kind] = el('div');
    let visit = {};
    this.visit = visit;

    const load = async () => {
      let status;
      try {
        status = await invoke('GetServiceStatus', {}, { kind: 'infra-status' });
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
        return;
      }
      if (status === SUPERSEDED || this.visit !== visit) return;
      error.hidden = true;
      const ms = status.managementServer;
      own.replaceChildren(el('dl', { class: 'facts' },
        el('dt', { text: 'Name' }), el('dd', { text: ms.serverName }),
        el('dt', { text: 'TCP fingerprint' }), el('dd', {}, fingerprintCell(ms.tcpFingerprint, 'Management Server TCP fingerprint')),
        el('dt', { text: 'HTTPS fingerprint' }), el('dd', {}, fingerprintCell(ms.httpFingerprint, 'Management Server HTTPS fingerprint'))));
      for (const [kind, k] of Object.entries(KINDS)) {
        const rows = status[k.list].map((s) => el('tr', { 'data-name': s.serverName },
          el('th', { scope: 'row', text: s.serverName }),
          el('td', { text: String(s.port) }),
          el('td', {}, el('span', { class: 'state ' + (s.state === 'connected' ? 'ok' : s.state === 'connecting' ? 'pending' : 'bad'), 'data-state': s.state, text: s.state })),
          el('td', {}, fingerprintCell(s.fingerprint, k.one + ' ' + s.serverName + ' fingerprint')),
          el('td', { class: 'row-actions' },
            el('button', { type: 'button', class: 'ghost small', text: 'Configure', 'aria-label': 'Configure ' + s.serverName,
              onclick: async () => {
                if (await openFormDialog('Configure ' + k.one + ' ' + s.serverName, (done) => serverForm(kind, s, done))) {
                  toast(k.one + ' ' + s.serverName + ' saved.');
                  load();
                }
              } }),
            el('button', { type: 'button', class: 'ghost small danger-text', text: 'Remove', 'aria-label': 'Remove ' + s.serverName,
              onclick: async () => {
                if (!await confirmAction({ title: 'Remove ' + k.one + '?', text: `${s.serverName}:${s.port} will no longer be reached or admitted.`, confirmLabel: 'Remove' })) return;
                try {
                  await invoke(k.remove, { serverName: s.serverName });
                  toast(k.one + ' ' + s.serverName + ' removed.');
                } catch (e) {
                  toast(e.message, { kind: 'error' });
                }
                load();
              } }))));
        lists[kind].replaceChildren(rows.length ? el('div', { class: 'table-scroll' }, el('table', { class: 'data-table', 'data-kind': kind },
          el('caption', { class: 'visually-hidden', text: k.title }),
          el('thead', {}, el('tr', {}, ...['Name', 'Port', 'State', 'Fingerprint', 'Actions'].map((h) => el('th', { scope: 'col', text: h })))),
          el('tbody', {}, ...rows))) : el('p', { class: 'note', text: 'None registered.' }));
      }
    };

    const sections = Object.entries(KINDS).map(([kind, k]) => el('section', { class: 'panel', 'aria-labelledby': 'infra-' + kind },
      el('div', { class: 'panel-head' }, el('h2', { id: 'infra-' + kind, text: k.title }),
        el('button', { type: 'button', class: 'primary', text: 'Add ' + k.one, 'data-add': kind,
          onclick: async () => {
            if (await openFormDialog('Add ' + k.one, (done) => serverForm(kind, null, done))) {
              toast(k.one + ' added.');
              load();
            }
          } })),
      lists[kind]));
    c.append(el('div', { class: 'page-head' }, el('h1', { text: 'Infrastructure' })), error,
      el('section', { class: 'panel', 'aria-labelledby': 'infra-ms' }, el('h2', { id: 'infra-ms', text: 'Management Server' }), own),
      ...sections);
    await load();
  },
  leave() {
    this.visit = null;
  },
};
