#include "mgmt-links.h"
#include "mgmt-branding.h"
#include "mgmt-jobs.h"
#include "config.h"
#include "json.h"
#include "mem.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "role-daemon.h"
#include "rpc.h"
#include "tstr.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MGMT_LINKS_MAX_MESSAGES 100
#define MGMT_LINKS_REFRESH_SECS 10

struct mgmt_link {
	struct mgmt_link *next;
	struct mgmt_links *links;
	enum mgmtdb_server_kind kind;
	char *server_name;
	unsigned int port;
	char fingerprint[TLS_FINGERPRINT_HEX_LEN + 1];
	struct rpc_client *control;
	struct rpc_conn *events; /* the role's own link to us, when up */
	time_t events_last_contact;
	struct json *info;          /* last GetInfo answer */
	struct json *instances;     /* Instance Host: {id: {state, error}} */
	struct event *refresh_soon; /* debounced refresh after state changes */
	bool present;               /* seen by the current sync */
};

struct mgmt_message {
	time_t time;
	enum log_level level;
	char *text;
};

struct mgmt_links {
	struct mgmt *mgmt;
	struct mgmt_link *head;
	struct event *refresh;
	struct mgmt_message messages[MGMT_LINKS_MAX_MESSAGES];
	unsigned int message_next, message_count;
};

static const char *mgmt_link_context(const struct mgmt_link *link)
{
	return tstr_printf("peer=%s/%s",
			   link->kind == MGMTDB_INSTANCE_HOST ? "instance-host"
							      : "client-access-server",
			   link->server_name);
}

void mgmt_links_message(struct mgmt_links *links, enum log_level level, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	char *text = mem_vprintf(fmt, args);
	va_end(args);
	log_msg(level, NULL, "%s", text);
	struct mgmt_message *m = &links->messages[links->message_next];
	mem_free(m->text);
	m->time = time(NULL);
	m->level = level;
	m->text = text;
	links->message_next = (links->message_next + 1) % MGMT_LINKS_MAX_MESSAGES;
	if (links->message_count < MGMT_LINKS_MAX_MESSAGES)
		links->message_count++;
}

/* ---- pushing topology ---- */

static struct json *mgmt_links_topology(struct mgmt_links *links)
{
	struct json *hosts = json_new_array();
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next) {
		if (l->kind != MGMTDB_INSTANCE_HOST)
			continue;
		struct json *h = json_new_object();
		json_set_string(h, "serverName", l->server_name);
		json_set_int(h, "port", l->port);
		json_set_string(h, "fingerprint", l->fingerprint);
		json_append(hosts, h);
	}
	/* Where each instance runs, so the Client Access Server can route users. */
	struct mgmtdb *db = links->mgmt->db;
	struct json *instances = json_new_array();
	for (size_t i = 0; i < mgmtdb_instance_count(db); i++) {
		struct mgmtdb_instance inst;
		mgmtdb_instance_get(db, i, &inst);
		struct json *e = json_new_object();
		json_set_string(e, "instanceID", inst.id);
		json_set_string(e, "alias", inst.alias);
		json_set_string(e, "instanceHost", inst.instance_host);
		json_append(instances, e);
	}
	struct json *args = json_new_object();
	json_set(args, "instanceHosts", hosts);
	json_set(args, "instances", instances);
	return args;
}

static struct json *mgmt_links_peers(struct mgmt_links *links)
{
	struct json *peers = json_new_array();
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next) {
		if (l->kind != MGMTDB_CLIENT_ACCESS_SERVER)
			continue;
		struct json *p = json_new_object();
		json_set_string(p, "serverName", l->server_name);
		json_set_string(p, "fingerprint", l->fingerprint);
		json_append(peers, p);
	}
	struct json *args = json_new_object();
	json_set(args, "clientAccessServers", peers);
	return args;
}

static void mgmt_link_answer_logged(struct rpc_conn *conn, const struct json *result,
				    const char *code, const char *text, void *ctx)
{
	if (code != NULL && strcmp(code, "closed") != 0)
		log_warning(role_daemon_conn_context(conn), "call failed: %s: %s", code, text);
}

static void mgmt_link_push(struct mgmt_link *link)
{
	struct rpc_conn *conn = rpc_client_conn(link->control);
	if (conn == NULL)
		return;
	if (link->kind == MGMTDB_CLIENT_ACCESS_SERVER) {
		rpc_conn_call(conn, "SetTopology", mgmt_links_topology(link->links), 30,
			      mgmt_link_answer_logged, NULL);
		rpc_conn_call(conn, "SetBranding", mgmt_branding_push_args(link->links->mgmt), 30,
			      mgmt_link_answer_logged, NULL);
	} else
		rpc_conn_call(conn, "SetPeers", mgmt_links_peers(link->links), 30,
			      mgmt_link_answer_logged, NULL);
}

int mgmt_links_push_branding(struct mgmt_links *links)
{
	int count = 0;
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next) {
		struct rpc_conn *conn = rpc_client_conn(l->control);
		if (l->kind != MGMTDB_CLIENT_ACCESS_SERVER || conn == NULL)
			continue;
		rpc_conn_call(conn, "SetBranding", mgmt_branding_push_args(links->mgmt), 30,
			      mgmt_link_answer_logged, NULL);
		count++;
	}
	return count;
}

static void mgmt_link_info_answer(struct rpc_conn *conn, const struct json *result,
				  const char *code, const char *text, void *ctx)
{
	struct mgmt_link *link = ctx;
	if (code != NULL) {
		if (strcmp(code, "closed") != 0)
			log_warning(mgmt_link_context(link), "GetInfo failed: %s", text);
		return;
	}
	json_unref(&link->info);
	link->info = json_clone(result);
}

static void mgmt_link_set_instance(struct mgmt_link *link, const char *id, const char *state,
				   const char *error)
{
	if (link->instances == NULL)
		link->instances = json_new_object();
	/* Keep what GetInstanceStates said (pid, start time); update the state. */
	struct json *e = json_get(link->instances, id);
	if (e == NULL) {
		e = json_new_object();
		json_set(link->instances, id, e);
	}
	json_set_string(e, "state", state);
	json_set_string(e, "error", error == NULL ? "" : error);
}

static void mgmt_link_states_answer(struct rpc_conn *conn, const struct json *result,
				    const char *code, const char *text, void *ctx)
{
	struct mgmt_link *link = ctx;
	if (code != NULL)
		return;
	json_unref(&link->instances);
	link->instances = json_new_object();
	for (size_t i = 0; i < json_count(result); i++) {
		const struct json *e = json_at(result, i);
		const char *id = json_get_string(e, "instanceID");
		if (id != NULL && json_get_string(e, "state") != NULL)
			json_set(link->instances, id, json_clone(e));
	}
}

static void mgmt_link_request_info(struct mgmt_link *link)
{
	struct rpc_conn *conn = rpc_client_conn(link->control);
	if (conn == NULL)
		return;
	rpc_conn_call(conn, "GetInfo", NULL, 10, mgmt_link_info_answer, link);
	if (link->kind == MGMTDB_INSTANCE_HOST)
		rpc_conn_call(conn, "GetInstanceStates", NULL, 10, mgmt_link_states_answer, link);
}

/* ---- control link callbacks ---- */

static void mgmt_link_ready(struct rpc_conn *conn, const struct json *hello, void *ctx)
{
	struct mgmt_link *link = ctx;
	const char *role = json_get_string(hello, "role");
	const char *expected =
		link->kind == MGMTDB_INSTANCE_HOST ? "instance-host" : "client-access-server";
	if (role == NULL || strcmp(role, expected) != 0) {
		mgmt_links_message(link->links, LOG_LEVEL_WARNING,
				   "%s: registered as %s but the server says it is '%s'",
				   link->server_name, expected, role == NULL ? "?" : role);
	}
	mgmt_link_request_info(link);
	mgmt_link_push(link);
}

static void mgmt_link_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	/* The client reconnects by itself; state_changed reports it. */
}

static void mgmt_link_state_changed(struct rpc_client *client, enum rpc_link_state state,
				    const char *reason, void *ctx)
{
	struct mgmt_link *link = ctx;
	switch (state) {
	case RPC_LINK_CONNECTED:
		mgmt_links_message(link->links, LOG_LEVEL_INFO, "%s %s connected",
				   mgmtdb_server_kind_name(link->kind), link->server_name);
		break;
	case RPC_LINK_FINGERPRINT_REFUSED:
		mgmt_links_message(link->links, LOG_LEVEL_ERROR,
				   "%s %s refused: its certificate does not match the registered "
				   "fingerprint (%s)",
				   mgmtdb_server_kind_name(link->kind), link->server_name, reason);
		break;
	case RPC_LINK_REFUSED_BY_PEER:
		mgmt_links_message(link->links, LOG_LEVEL_ERROR,
				   "%s %s refused our certificate (is this Management Server's "
				   "fingerprint set there?): %s",
				   mgmtdb_server_kind_name(link->kind), link->server_name, reason);
		break;
	case RPC_LINK_UNREACHABLE:
	case RPC_LINK_INCOMPATIBLE:
		mgmt_links_message(link->links, LOG_LEVEL_WARNING, "%s %s %s: %s",
				   mgmtdb_server_kind_name(link->kind), link->server_name,
				   rpc_link_state_name(state), reason);
		break;
	case RPC_LINK_CONNECTING:
		break;
	}
}

static void mgmt_link_request(struct rpc_conn *conn, uint32_t id, const char *method,
			      const struct json *args, void *ctx)
{
	rpc_conn_reply_error(conn, id, "unknown-method",
			     tstr_printf("the Management Server takes no call '%s' here", method));
}

static const struct rpc_conn_callbacks mgmt_link_callbacks = {
	.ready = mgmt_link_ready,
	.request = mgmt_link_request,
	.closed = mgmt_link_closed,
};

/* ---- the registry ---- */

static void mgmt_link_refresh_now(evutil_socket_t fd, short events, void *ctx)
{
	mgmt_link_request_info(ctx);
}

static void mgmt_link_start(struct mgmt_link *link)
{
	struct mgmt *mgmt = link->links->mgmt;
	link->refresh_soon = evtimer_new(role_daemon_base(mgmt->rd), mgmt_link_refresh_now, link);
	struct rpc_client_settings set = {
		.host = link->server_name,
		.port = link->port,
		.fingerprint = link->fingerprint,
		.tls = role_daemon_client_tls(mgmt->rd),
		.hello = role_daemon_hello(mgmt->rd),
	};
	link->control = rpc_client_create(role_daemon_base(mgmt->rd), &set, &mgmt_link_callbacks,
					  mgmt_link_state_changed, link);
}

static void mgmt_link_free(struct mgmt_link *link)
{
	rpc_client_destroy(&link->control);
	if (link->refresh_soon != NULL)
		event_free(link->refresh_soon);
	json_unref(&link->info);
	json_unref(&link->instances);
	mem_free(link->server_name);
	mem_free(link);
}

static struct mgmt_link *mgmt_links_find(struct mgmt_links *links, enum mgmtdb_server_kind kind,
					 const char *name)
{
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next) {
		if (l->kind == kind && strcasecmp(l->server_name, name) == 0)
			return l;
	}
	return NULL;
}

void mgmt_links_sync(struct mgmt_links *links)
{
	struct mgmtdb *db = links->mgmt->db;
	bool changed = false;
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next)
		l->present = false;
	for (int k = 0; k < 2; k++) {
		enum mgmtdb_server_kind kind = (enum mgmtdb_server_kind)k;
		for (size_t i = 0; i < mgmtdb_server_count(db, kind); i++) {
			struct mgmtdb_server s;
			mgmtdb_server_get(db, kind, i, &s);
			struct mgmt_link *link = mgmt_links_find(links, kind, s.server_name);
			if (link != NULL && (link->port != s.port ||
					     strcmp(link->fingerprint, s.fingerprint) != 0)) {
				/* Re-registered with another port or certificate: start over. */
				link->present = false;
				link = NULL;
			}
			if (link == NULL) {
				link = mem_new(struct mgmt_link);
				link->links = links;
				link->kind = kind;
				link->server_name = mem_strdup(s.server_name);
				link->port = s.port;
				snprintf(link->fingerprint, sizeof(link->fingerprint), "%s",
					 s.fingerprint);
				link->next = links->head;
				links->head = link;
				mgmt_link_start(link);
				changed = true;
			}
			link->present = true;
		}
	}
	for (struct mgmt_link **p = &links->head; *p != NULL;) {
		struct mgmt_link *l = *p;
		if (l->present) {
			p = &l->next;
			continue;
		}
		/* Its event link (if up) belongs to the RPC server; the link just
		 * forgets it, and the unregistered role cannot connect again. */
		*p = l->next;
		mgmt_link_free(l);
		changed = true;
	}
	if (changed) {
		for (struct mgmt_link *l = links->head; l != NULL; l = l->next)
			mgmt_link_push(l);
	}
}

void mgmt_links_push_instances(struct mgmt_links *links)
{
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next) {
		if (l->kind == MGMTDB_CLIENT_ACCESS_SERVER)
			mgmt_link_push(l);
	}
}

static void mgmt_links_refresh(evutil_socket_t fd, short events, void *ctx)
{
	struct mgmt_links *links = ctx;
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next)
		mgmt_link_request_info(l);
}

struct mgmt_links *mgmt_links_create(struct mgmt *mgmt)
{
	struct mgmt_links *links = mem_new(struct mgmt_links);
	links->mgmt = mgmt;
	links->refresh =
		event_new(role_daemon_base(mgmt->rd), -1, EV_PERSIST, mgmt_links_refresh, links);
	struct timeval tv = {MGMT_LINKS_REFRESH_SECS, 0};
	event_add(links->refresh, &tv);
	return links;
}

void mgmt_links_destroy(struct mgmt_links **links)
{
	struct mgmt_links *l = *links;
	if (l == NULL)
		return;
	event_free(l->refresh);
	while (l->head != NULL) {
		struct mgmt_link *next = l->head->next;
		mgmt_link_free(l->head);
		l->head = next;
	}
	for (unsigned int i = 0; i < MGMT_LINKS_MAX_MESSAGES; i++)
		mem_free(l->messages[i].text);
	mem_free(l);
	*links = NULL;
}

bool mgmt_links_fingerprint_registered(struct mgmt_links *links, const char *fingerprint)
{
	/* Links exist only after the database was loaded and synced. */
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next) {
		if (strcmp(l->fingerprint, fingerprint) == 0)
			return true;
	}
	return false;
}

/* ---- event links ---- */

static struct mgmt_link *mgmt_links_by_fingerprint(struct mgmt_links *links,
						   const struct rpc_conn *conn)
{
	const struct json *hello = rpc_conn_peer_hello(conn);
	const char *role = hello == NULL ? NULL : json_get_string(hello, "role");
	enum mgmtdb_server_kind kind = role != NULL && strcmp(role, "client-access-server") == 0
					       ? MGMTDB_CLIENT_ACCESS_SERVER
					       : MGMTDB_INSTANCE_HOST;
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next) {
		if (l->kind == kind && strcmp(l->fingerprint, rpc_conn_peer_fingerprint(conn)) == 0)
			return l;
	}
	return NULL;
}

const char *mgmt_links_client_access_server(struct mgmt_links *links, const struct rpc_conn *conn)
{
	struct mgmt_link *link = mgmt_links_by_fingerprint(links, conn);
	return link != NULL && link->kind == MGMTDB_CLIENT_ACCESS_SERVER ? link->server_name : NULL;
}

void mgmt_links_inbound_ready(struct mgmt_links *links, struct rpc_conn *conn)
{
	struct mgmt_link *link = mgmt_links_by_fingerprint(links, conn);
	if (link == NULL)
		return;
	link->events = conn;
	link->events_last_contact = time(NULL);
	log_info(role_daemon_conn_context(conn), "event link up");
	/* The role is up again: do not wait for the backoff to try the control link. */
	rpc_client_reconnect_now(link->control);
}

void mgmt_links_inbound_closed(struct mgmt_links *links, struct rpc_conn *conn, const char *reason)
{
	for (struct mgmt_link *l = links->head; l != NULL; l = l->next) {
		if (l->events == conn) {
			l->events_last_contact = rpc_conn_last_contact(conn);
			l->events = NULL;
			log_info(mgmt_link_context(l), "event link down: %s", reason);
		}
	}
}

/* A job an instance started on its own schedule failed: shown among the
 * failed jobs (GetJobs, the dashboard). Only for an instance registered on
 * the Instance Host that reports it. */
static void mgmt_links_scheduled_job_failed(struct mgmt_links *links, struct mgmt_link *link,
					    const struct json *data)
{
	struct mgmtdb_instance inst;
	const char *id = json_get_string(data, "instanceID");
	const char *kind = json_get_string(data, "kind");
	const char *error = json_get_string(data, "error");
	if (link->kind != MGMTDB_INSTANCE_HOST || id == NULL ||
	    mgmtdb_instance_find(links->mgmt->db, id, &inst) <= 0 ||
	    strcasecmp(inst.instance_host, link->server_name) != 0)
		return;
	const struct json *args = json_get(data, "arguments");
	const char *profile = json_get_string(args, "profileID");
	const char *what =
		kind != NULL && strcmp(kind, "profile") == 0
			? tstr_printf("scheduled run of profile %s", profile ? profile : "?")
			: tstr_printf("scheduled %s", kind != NULL ? kind : "job");
	const char *job_id = json_get_string(data, "jobID");
	const char *text = tstr_printf("job %s: %s", job_id != NULL ? job_id : "?",
				       error != NULL ? error : "ended unfinished");
	/* not a link message too: the dashboard lists failed jobs already */
	log_warning(mgmt_link_context(link), "instance %s: %s failed (%s)", inst.id, what, text);
	mgmt_jobs_record_failed(links->mgmt->jobs, what, "scheduler", inst.id, text);
}

void mgmt_links_inbound_event(struct mgmt_links *links, struct rpc_conn *conn, const char *name,
			      const struct json *data)
{
	struct mgmt_link *link = mgmt_links_by_fingerprint(links, conn);
	const char *who = link == NULL ? "?" : link->server_name;
	if (strcmp(name, "peerRefused") == 0) {
		mgmt_links_message(
			links, LOG_LEVEL_ERROR, "%s refused a connection from %s: %s", who,
			json_get_string(data, "address") == NULL ? "?"
								 : json_get_string(data, "address"),
			json_get_string(data, "reason") == NULL ? "?"
								: json_get_string(data, "reason"));
	} else if (strcmp(name, "message") == 0) {
		const char *text = json_get_string(data, "text");
		mgmt_links_message(links, LOG_LEVEL_WARNING, "%s: %s", who,
				   text == NULL ? "" : text);
	} else if (strcmp(name, "infoChanged") == 0 && link != NULL) {
		mgmt_link_request_info(link);
	} else if (strcmp(name, "scheduledJobFailed") == 0 && link != NULL) {
		mgmt_links_scheduled_job_failed(links, link, data);
	} else if (strcmp(name, "instanceStateChanged") == 0 && link != NULL) {
		const char *id = json_get_string(data, "instanceID");
		const char *state = json_get_string(data, "state");
		const char *error = json_get_string(data, "error");
		if (id != NULL && state != NULL) {
			mgmt_link_set_instance(link, id, state, error);
			/* The host's counts changed; a thousand instances starting at
			 * once make one refresh, not a thousand. */
			if (!event_pending(link->refresh_soon, EV_TIMEOUT, NULL)) {
				struct timeval tv = {0, 500 * 1000};
				event_add(link->refresh_soon, &tv);
			}
			if (strcmp(state, "failed") == 0)
				mgmt_links_message(links, LOG_LEVEL_ERROR,
						   "instance %s on %s failed: %s", id, who,
						   error == NULL ? "" : error);
		}
	}
}

int mgmt_links_call_host(struct mgmt_links *links, const char *host_name, const char *method,
			 struct json *args, unsigned int timeout_secs, rpc_answer_fn *answer,
			 void *ctx, const char **error_r)
{
	struct mgmt_link *link = mgmt_links_find(links, MGMTDB_INSTANCE_HOST, host_name);
	struct rpc_conn *conn = link == NULL ? NULL : rpc_client_conn(link->control);
	if (conn == NULL) {
		json_unref(&args);
		*error_r = link == NULL
				   ? tstr_printf("no Instance Host '%s' is registered", host_name)
				   : tstr_printf("the Instance Host %s is not connected (%s)",
						 host_name,
						 rpc_link_state_name(
							 rpc_client_state(link->control, NULL)));
		return -1;
	}
	rpc_conn_call(conn, method, args, timeout_secs, answer, ctx);
	return 0;
}

bool mgmt_links_host_answers(struct mgmt_links *links, const char *host_name)
{
	struct mgmt_link *link = mgmt_links_find(links, MGMTDB_INSTANCE_HOST, host_name);
	return link != NULL && (rpc_client_conn(link->control) != NULL || link->events != NULL);
}

const struct json *mgmt_links_instance_info(struct mgmt_links *links, const char *host_name,
					    const char *id)
{
	struct mgmt_link *link = mgmt_links_find(links, MGMTDB_INSTANCE_HOST, host_name);
	return link == NULL ? NULL : json_get(link->instances, id);
}

const char *mgmt_links_instance_state(struct mgmt_links *links, const char *host_name,
				      const char *id, const char **error_r)
{
	struct mgmt_link *link = mgmt_links_find(links, MGMTDB_INSTANCE_HOST, host_name);
	const struct json *e = link == NULL ? NULL : json_get(link->instances, id);
	*error_r = "";
	if (link == NULL || rpc_client_conn(link->control) == NULL || e == NULL)
		return "unknown";
	*error_r = json_get_string(e, "error");
	return json_get_string(e, "state");
}

void mgmt_links_note_instance_state(struct mgmt_links *links, const char *host_name, const char *id,
				    const char *state)
{
	struct mgmt_link *link = mgmt_links_find(links, MGMTDB_INSTANCE_HOST, host_name);
	if (link != NULL)
		mgmt_link_set_instance(link, id, state, NULL);
}

void mgmt_links_note_instance(struct mgmt_links *links, const char *host_name, const char *id,
			      const struct json *status)
{
	struct mgmt_link *link = mgmt_links_find(links, MGMTDB_INSTANCE_HOST, host_name);
	if (link == NULL || json_get_string(status, "state") == NULL)
		return;
	if (link->instances == NULL)
		link->instances = json_new_object();
	json_set(link->instances, id, json_clone(status));
}

/* ---- status ---- */

static const char *mgmt_links_state_token(enum rpc_link_state state)
{
	switch (state) {
	case RPC_LINK_CONNECTED:
		return "connected";
	case RPC_LINK_CONNECTING:
		return "connecting";
	case RPC_LINK_UNREACHABLE:
		return "unreachable";
	case RPC_LINK_FINGERPRINT_REFUSED:
		return "fingerprintRefused";
	case RPC_LINK_REFUSED_BY_PEER:
		return "refusedByPeer";
	case RPC_LINK_INCOMPATIBLE:
		return "incompatible";
	}
	return "unknown";
}

static struct json *mgmt_links_time(time_t t)
{
	if (t == 0)
		return json_new_null();
	char buf[32];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_new_string(buf);
}

static struct json *mgmt_link_status(struct mgmt_link *link)
{
	struct json *s = json_new_object();
	const char *reason;
	enum rpc_link_state state = rpc_client_state(link->control, &reason);
	json_set_string(s, "serverName", link->server_name);
	json_set_int(s, "port", link->port);
	json_set_string(s, "fingerprint", link->fingerprint);
	json_set_string(s, "state", mgmt_links_state_token(state));
	json_set_string(s, "error", state == RPC_LINK_CONNECTED ? "" : reason);
	if (state == RPC_LINK_FINGERPRINT_REFUSED)
		json_set_string(s, "presentedFingerprint",
				rpc_client_seen_fingerprint(link->control));
	time_t last = rpc_client_last_contact(link->control);
	if (link->events != NULL && rpc_conn_last_contact(link->events) > last)
		last = rpc_conn_last_contact(link->events);
	json_set(s, "lastContact", mgmt_links_time(last));
	json_set_string(s, "eventLink", link->events != NULL ? "connected" : "disconnected");
	if (link->info != NULL) {
		for (void *it = json_iter(link->info); it != NULL;
		     it = json_iter_next(link->info, it)) {
			const char *key = json_iter_key(it);
			if (json_get(s, key) == NULL)
				json_set(s, key, json_ref(json_iter_value(it)));
		}
	}
	return s;
}

struct json *mgmt_links_status(struct mgmt_links *links)
{
	struct mgmt *mgmt = links->mgmt;
	struct json *status = json_new_object(), *ms = json_new_object();
	const struct config_role_settings *set = role_daemon_settings(mgmt->rd);
	json_set_string(ms, "serverName", set->server_name);
	json_set_string(ms, "state", "running");
	json_set_string(ms, "version", COFFER_VERSION);
	json_set(ms, "startedAt", mgmt_links_time(mgmt->started));
	json_set_string(ms, "tcpFingerprint", role_daemon_fingerprint(mgmt->rd, CONFIG_KIND_TCP));
	json_set_string(ms, "httpFingerprint", role_daemon_fingerprint(mgmt->rd, CONFIG_KIND_HTTP));
	json_set(status, "managementServer", ms);
	struct json *hosts = json_new_array(), *cas = json_new_array();
	/* Registration order (the list is kept newest first). */
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < mgmtdb_server_count(mgmt->db, (enum mgmtdb_server_kind)k);
		     i++) {
			struct mgmtdb_server s;
			mgmtdb_server_get(mgmt->db, (enum mgmtdb_server_kind)k, i, &s);
			struct mgmt_link *l =
				mgmt_links_find(links, (enum mgmtdb_server_kind)k, s.server_name);
			if (l != NULL)
				json_append(k == 0 ? hosts : cas, mgmt_link_status(l));
		}
	}
	json_set(status, "instanceHosts", hosts);
	json_set(status, "clientAccessServers", cas);
	struct json *messages = json_new_array();
	for (unsigned int i = 0; i < links->message_count; i++) {
		unsigned int idx =
			(links->message_next + MGMT_LINKS_MAX_MESSAGES - links->message_count + i) %
			MGMT_LINKS_MAX_MESSAGES;
		struct json *m = json_new_object();
		json_set(m, "time", mgmt_links_time(links->messages[idx].time));
		json_set_string(m, "level",
				links->messages[idx].level == LOG_LEVEL_ERROR     ? "error"
				: links->messages[idx].level == LOG_LEVEL_WARNING ? "warning"
										  : "info");
		json_set_string(m, "text", links->messages[idx].text);
		json_append(messages, m);
	}
	json_set(status, "messages", messages);
	return status;
}
