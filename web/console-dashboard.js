/* console-dashboard: the service-health tree (the Management Server, its
 * Instance Hosts with instances available and running, its Client Access
 * Servers, each with its connection state and last contact), resources,
 * messages (refused fingerprints, failed instances, failed jobs of the
 * last 10 minutes, what the links reported), version and licensee.
 *
 * It keeps itself current by polling GetServiceStatus, GetInstances and
 * GetJobs (state failed)
 * every POLL_MS while the tab is shown (a change shows within 5 s),
 * every HIDDEN_POLL_MS while it is hidden, at once when it is shown again,
 * and backing off up to MAX_BACKOFF_MS while the server cannot be reached.
 * Polls are background requests (they do not keep an idle session alive);
 * an answer that a newer poll has overtaken is dropped (console-api kinds),
 * and one that arrives after the page was left is ignored. The tree is
 * rebuilt only when what it shows has changed. */
import { el } from './dom.js';
import { invoke, SUPERSEDED } from './console-api.js';

const POLL_MS = 2000;
const HIDDEN_POLL_MS = 30000;
const MAX_BACKOFF_MS = 30000;

const STATE_TEXT = {
  running: 'Running',
  connected: 'Connected',
  connecting: 'Connecting',
  unreachable: 'Unreachable',
  fingerprintRefused: 'Fingerprint refused',
  refusedByPeer: 'Refused by the server',
  incompatible: 'Incompatible version',
};

function stateClass(state) {
  if (state === 'running' || state === 'connected') return 'ok';
  if (state === 'connecting') return 'pending';
  return 'bad';
}

function badge(state) {
  return el('span', { class: 'state ' + stateClass(state), 'data-state': state, text: STATE_TEXT[state] || state });
}

function when(iso) {
  if (!iso) return 'never';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function serverNode(kind, s, details) {
  const name = s.serverName + (s.port ? ':' + s.port : '');
  return el('li', { class: 'node', 'data-kind': kind, 'data-name': name },
    el('div', { class: 'node-head' },
      el('span', { class: 'node-name', text: name }), badge(s.state)),
    el('div', { class: 'node-meta' },
      el('span', { text: 'Last contact: ' + when(s.lastContact) }),
      ...details.map((d) => el('span', { text: d }))),
    s.error ? el('div', { class: 'node-error', text: s.error }) : null);
}

function group(title, kind, items, detailsOf) {
  return el('li', { class: 'group' },
    el('div', { class: 'group-title', text: `${title} (${items.length})` }),
    items.length ? el('ul', {}, ...items.map((s) => serverNode(kind, s, detailsOf(s))))
      : el('p', { class: 'note', text: 'None registered.' }));
}

function healthTree(status) {
  const ms = status.managementServer;
  return el('ul', { class: 'tree health', 'aria-label': 'Service health' },
    el('li', { class: 'node root', 'data-kind': 'managementServer', 'data-name': ms.serverName },
      el('div', { class: 'node-head' },
        el('span', { class: 'node-name', text: 'Management Server ' + ms.serverName }), badge(ms.state)),
      el('div', { class: 'node-meta' }, el('span', { text: 'Started: ' + when(ms.startedAt) })),
      el('ul', {},
        group('Instance Hosts', 'instanceHost', status.instanceHosts, (h) => [
          `Instances available: ${h.instancesAvailable ?? '–'}`,
          `running: ${h.instancesRunning ?? '–'}`]),
        group('Client Access Servers', 'clientAccessServer', status.clientAccessServers, (c) => [
          c.imap ? `IMAP sessions: ${c.imap.sessions}` : null].filter(Boolean)))));
}

function resources(status, instances) {
  const hosts = status.instanceHosts.length;
  const cas = status.clientAccessServers.length;
  const running = instances.filter((i) => i.status === 'running').length;
  const tile = (label, value, key) => el('div', { class: 'tile', 'data-resource': key },
    el('span', { class: 'tile-value', text: String(value) }), el('span', { class: 'tile-label', text: label }));
  return el('div', { class: 'tiles' },
    tile('Servers', 1 + hosts + cas, 'servers'),
    tile('Instance Hosts', hosts, 'instanceHosts'),
    tile('Client Access Servers', cas, 'clientAccessServers'),
    tile('Instances', instances.length, 'instances'),
    tile('Running', running, 'running'));
}

const BAD_INSTANCE = new Set(['failed', 'crashed', 'error', 'unreachable']);

function messages(status, instances, jobs) {
  const items = [];
  for (const [kind, list] of [['Instance Host', status.instanceHosts], ['Client Access Server', status.clientAccessServers]]) {
    for (const s of list) {
      if (s.state === 'fingerprintRefused')
        items.push({ level: 'error', kind: 'fingerprint', text: `${kind} ${s.serverName}:${s.port} presented the fingerprint ${s.presentedFingerprint || '?'}, not the registered ${s.fingerprint}.` });
    }
  }
  for (const i of instances) {
    if (BAD_INSTANCE.has(i.status) || i.error)
      items.push({ level: 'error', kind: 'instance', text: `Instance ${i.instanceID} on ${i.instanceHost}: ${i.status}${i.error ? ' – ' + i.error : ''}` });
  }
  for (const j of jobs) {
    items.push({ level: 'error', kind: 'job', text: `Job ${j.function}${j.instanceID ? ' (instance ' + j.instanceID + ')' : ''}`
      + ` by ${j.user} failed ${when(j.finishedAt)}: ${j.error || 'no reason given'}` });
  }
  for (const m of (status.messages || []).slice().reverse()) {
    if (m.level !== 'info') items.push({ level: m.level, kind: 'link', text: `${when(m.time)}: ${m.text}` });
  }
  if (!items.length) return el('p', { class: 'note', text: 'No messages.' });
  return el('ul', { class: 'messages-list' }, ...items.slice(0, 30).map((m) =>
    el('li', { class: 'msg ' + m.level, 'data-kind': m.kind }, el('span', { text: m.text }))));
}

function about(env) {
  if (!env) return el('p', { class: 'note', text: '…' });
  return el('dl', { class: 'facts' },
    el('dt', { text: 'Version' }), el('dd', { 'data-fact': 'version', text: env.version }),
    el('dt', { text: 'Licensee' }), el('dd', { 'data-fact': 'licensee', text: env.licensee }),
    el('dt', { text: 'Server' }), el('dd', { text: env.serverName }),
    el('dt', { text: 'Mode' }), el('dd', { text: env.mode }));
}

function section(id, title, body) {
  return el('section', { class: 'panel', 'aria-labelledby': id },
    el('h2', { id, text: title }), body);
}

function createDashboard() {
  let container = null;
  let timer = null;
  let active = 0; // which visit of the page the answers belong to
  let failures = 0;
  let shown = '';
  let env = null;
  const parts = {};

  function delay() {
    if (failures) return Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** failures);
    return document.hidden ? HIDDEN_POLL_MS : POLL_MS;
  }

  function schedule(visit) {
    clearTimeout(timer);
    timer = setTimeout(() => poll(visit), delay());
  }

  function render(status, instances, jobs) {
    const key = JSON.stringify([status, instances, jobs, env]);
    if (key === shown) return;
    shown = key;
    parts.health.replaceChildren(healthTree(status));
    parts.resources.replaceChildren(resources(status, instances));
    parts.messages.replaceChildren(messages(status, instances, jobs));
    parts.about.replaceChildren(about(env));
  }

  async function poll(visit) {
    let status, instances, jobs;
    try {
      [status, instances, jobs] = await Promise.all([
        invoke('GetServiceStatus', {}, { kind: 'dashboard-status', background: true }),
        invoke('GetInstances', {}, { kind: 'dashboard-instances', background: true }),
        invoke('GetJobs', { state: 'failed' }, { kind: 'dashboard-jobs', background: true }),
      ]);
    } catch (e) {
      if (visit !== active) return;
      if (e.status === 401) return; // signed out: the login page shows
      failures++;
      parts.notice.textContent = 'Cannot reach the Management Server (' + e.message + '); trying again.';
      parts.notice.hidden = false;
      schedule(visit);
      return;
    }
    if (visit !== active) return; // the page was left meanwhile
    if (status !== SUPERSEDED && instances !== SUPERSEDED && jobs !== SUPERSEDED) {
      failures = 0;
      parts.notice.hidden = true;
      parts.updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
      render(status, Array.isArray(instances) ? instances : [], Array.isArray(jobs) ? jobs : []);
    }
    schedule(visit);
  }

  function onVisibility() {
    if (!document.hidden && container) {
      clearTimeout(timer);
      poll(active);
    }
  }

  return {
    async enter(c) {
      container = c;
      const visit = ++active;
      failures = 0;
      shown = '';
      parts.health = el('div', { class: 'health-wrap', 'aria-live': 'polite' }, el('p', { class: 'note', text: 'Loading…' }));
      parts.resources = el('div');
      parts.messages = el('div');
      parts.about = el('div');
      parts.notice = el('p', { class: 'error', role: 'alert', hidden: '' });
      parts.updated = el('span', { class: 'note', id: 'dashboard-updated' });
      c.append(
        el('div', { class: 'page-head' }, el('h1', { text: 'Dashboard' }), parts.updated),
        parts.notice,
        el('div', { class: 'dash-grid' },
          section('dash-health', 'Service health', parts.health),
          el('div', { class: 'dash-side' },
            section('dash-resources', 'Resources', parts.resources),
            section('dash-about', 'System', parts.about))),
        section('dash-messages', 'Messages', parts.messages));
      document.addEventListener('visibilitychange', onVisibility);
      invoke('GetEnvironmentInfo', {}, { kind: 'dashboard-env', background: true }).then((r) => {
        if (visit !== active || r === SUPERSEDED) return;
        env = r;
        parts.about.replaceChildren(about(env));
      }, () => {});
      await poll(visit);
    },
    leave() {
      active++;
      container = null;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}

export const dashboardPage = createDashboard();
