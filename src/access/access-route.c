/* access-route: the instance directory and the Instance Host links. */
#include "access-route.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "tstr.h"

#include <event2/event.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A call for an Instance Host whose link is down waits this long for it to
 * come up (a reconnect is tried at once, at most once a second per host):
 * the first login after an instance moved to a host this server had not
 * reached yet, or after a host restarted, gets through instead of
 * "unavailable". At most so many wait per host. */
#define ACCESS_ROUTE_HOLD_MS 3000
#define ACCESS_ROUTE_HELD_MAX 256

struct access_route_call;

struct access_host {
	struct access_host *next;
	char *server_name;
	unsigned int port;
	char *fingerprint;
	struct rpc_client *link;
	struct access_route_call *held; /* waiting for the link, oldest first */
	unsigned int held_count;
	time_t forced_at; /* the last reconnect a held call asked for */
};

struct access_instance {
	char *id, *alias, *host_name;
};

struct access_route {
	struct access_route_settings set;
	struct access_host *hosts;
	struct access_instance *instances;
	size_t instance_count;
};

/* A call in flight. Answers are delivered from the event loop: errors found
 * before the call went out are deferred through a zero timeout. */
struct access_route_call {
	access_route_answer_fn *answer;
	access_route_buffer_answer_fn *buffer_answer; /* instead of answer */
	void *ctx;
	const char *code, *text; /* static strings, for deferred errors */
	struct event *defer;     /* a deferred error, or a held call's deadline */
	/* held until its Instance Host's link is up */
	struct access_route_call *next;
	struct access_host *host;
	char *instance_id, *method;
	struct json *args;
	unsigned int timeout_secs;
};

static void access_route_call_free(struct access_route_call *call);
static void access_route_forward(struct rpc_conn *conn, const char *instance_id, const char *method,
				 struct json *args, unsigned int timeout_secs,
				 struct access_route_call *call);

static void access_route_answer_error(struct access_route_call *call, const char *code,
				      const char *text)
{
	if (call->buffer_answer != NULL)
		call->buffer_answer(NULL, NULL, code, text, call->ctx);
	else
		call->answer(NULL, NULL, 0, code, text, call->ctx);
	access_route_call_free(call);
}

static void access_host_unhold(struct access_host *h, struct access_route_call *call)
{
	for (struct access_route_call **p = &h->held; *p != NULL; p = &(*p)->next) {
		if (*p == call) {
			*p = call->next;
			h->held_count--;
			break;
		}
	}
	call->next = NULL;
	call->host = NULL;
}

/* Every held call goes on (the link is up) or hears "unavailable". */
static void access_host_release(struct access_host *h, struct rpc_conn *conn)
{
	while (h->held != NULL) {
		struct access_route_call *call = h->held;
		access_host_unhold(h, call);
		event_free(call->defer);
		call->defer = NULL;
		if (conn != NULL) {
			struct json *args = call->args;
			call->args = NULL;
			access_route_forward(conn, call->instance_id, call->method, args,
					     call->timeout_secs, call);
		} else {
			access_route_answer_error(call, "unavailable",
						  "the instance's server is not reachable");
		}
	}
}

static void access_host_state(struct rpc_client *client, enum rpc_link_state state,
			      const char *reason, void *ctx)
{
	struct access_host *h = ctx;
	if (state == RPC_LINK_CONNECTED)
		log_info(tstr_printf("peer=instance-host/%s", h->server_name), "link up");
	else if (state != RPC_LINK_CONNECTING)
		log_warning(tstr_printf("peer=instance-host/%s", h->server_name), "link %s: %s",
			    rpc_link_state_name(state), reason);
	if (state != RPC_LINK_CONNECTING)
		access_host_release(h, rpc_client_conn(client));
}

static const struct rpc_conn_callbacks access_host_callbacks = {0};

static void access_hosts_free(struct access_host *h)
{
	while (h != NULL) {
		struct access_host *next = h->next;
		access_host_release(h, NULL);
		rpc_client_destroy(&h->link);
		mem_free(h->server_name);
		mem_free(h->fingerprint);
		mem_free(h);
		h = next;
	}
}

static void access_instances_free(struct access_route *route)
{
	for (size_t i = 0; i < route->instance_count; i++) {
		mem_free(route->instances[i].id);
		mem_free(route->instances[i].alias);
		mem_free(route->instances[i].host_name);
	}
	mem_free(route->instances);
	route->instances = NULL;
	route->instance_count = 0;
}

struct access_route *access_route_create(const struct access_route_settings *set)
{
	struct access_route *route = mem_new(struct access_route);
	route->set = *set;
	return route;
}

void access_route_destroy(struct access_route **route)
{
	struct access_route *r = *route;
	if (r == NULL)
		return;
	access_hosts_free(r->hosts);
	access_instances_free(r);
	mem_free(r);
	*route = NULL;
}

static struct access_host *access_route_take_host(struct access_route *route, const char *name,
						  long long port, const char *fp)
{
	for (struct access_host **p = &route->hosts; *p != NULL; p = &(*p)->next) {
		struct access_host *h = *p;
		if (strcasecmp(h->server_name, name) == 0 && h->port == port &&
		    strcmp(h->fingerprint, fp) == 0) {
			*p = h->next;
			return h;
		}
	}
	struct access_host *h = mem_new(struct access_host);
	h->server_name = mem_strdup(name);
	h->port = (unsigned int)port;
	h->fingerprint = mem_strdup(fp);
	struct rpc_client_settings set = {
		.host = h->server_name,
		.port = h->port,
		.fingerprint = h->fingerprint,
		.tls = route->set.client_tls,
		.hello = route->set.hello,
		.local_path = route->set.local_host_socket,
		.local_fingerprint = route->set.local_fingerprint,
	};
	h->link = rpc_client_create(route->set.base, &set, &access_host_callbacks,
				    access_host_state, h);
	return h;
}

static void access_route_apply_hosts(struct access_route *route, const struct json *list)
{
	struct access_host *kept = NULL;
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json *e = json_at(list, i);
		const char *name = json_get_string(e, "serverName");
		const char *fp = json_get_string(e, "fingerprint");
		long long port = 0;
		if (name == NULL || fp == NULL || json_get_int(e, "port", &port) != 1 ||
		    port <= 0 || port > 65535)
			continue;
		struct access_host *h = access_route_take_host(route, name, port, fp);
		h->next = kept;
		kept = h;
	}
	access_hosts_free(route->hosts);
	route->hosts = kept;
}

void access_route_apply(struct access_route *route, const struct json *topology)
{
	access_route_apply_hosts(route, json_get(topology, "instanceHosts"));
	const struct json *list = json_get(topology, "instances");
	access_instances_free(route);
	route->instances = mem_alloc(sizeof(*route->instances) * (json_count(list) + 1));
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json *e = json_at(list, i);
		const char *id = json_get_string(e, "instanceID");
		const char *alias = json_get_string(e, "alias");
		const char *host = json_get_string(e, "instanceHost");
		if (id == NULL || id[0] == '\0' || host == NULL)
			continue;
		struct access_instance *inst = &route->instances[route->instance_count++];
		inst->id = mem_strdup(id);
		inst->alias = mem_strdup(alias == NULL ? "" : alias);
		inst->host_name = mem_strdup(host);
	}
}

static const struct access_instance *access_route_find(struct access_route *route, const char *name)
{
	if (name == NULL || name[0] == '\0')
		return NULL;
	for (size_t i = 0; i < route->instance_count; i++) {
		const struct access_instance *inst = &route->instances[i];
		if (strcasecmp(inst->id, name) == 0 ||
		    (inst->alias[0] != '\0' && strcasecmp(inst->alias, name) == 0))
			return inst;
	}
	return NULL;
}

int access_route_resolve(struct access_route *route, const char *name, const char **instance_id_r)
{
	const struct access_instance *inst = access_route_find(route, name);
	if (inst == NULL)
		return 0;
	*instance_id_r = inst->id;
	return 1;
}

struct json *access_route_info(struct access_route *route)
{
	struct json *hosts = json_new_array();
	for (struct access_host *h = route->hosts; h != NULL; h = h->next) {
		const char *reason;
		enum rpc_link_state state = rpc_client_state(h->link, &reason);
		struct json *e = json_new_object();
		json_set_string(e, "serverName", h->server_name);
		json_set_string(e, "state", rpc_link_state_name(state));
		json_set_string(e, "error", state == RPC_LINK_CONNECTED ? "" : reason);
		json_append(hosts, e);
	}
	return hosts;
}

static void access_route_call_free(struct access_route_call *call)
{
	if (call->defer != NULL)
		event_free(call->defer);
	json_unref(&call->args);
	mem_free(call->instance_id);
	mem_free(call->method);
	mem_free(call);
}

static void access_route_deferred(evutil_socket_t fd, short events, void *ctx)
{
	struct access_route_call *call = ctx;
	access_route_answer_error(call, call->code, call->text);
}

static void access_route_hold_expired(evutil_socket_t fd, short events, void *ctx)
{
	struct access_route_call *call = ctx;
	access_host_unhold(call->host, call);
	access_route_answer_error(call, "unavailable", "the instance's server is not reachable");
}

/* Keep a call until the host's link is up (asking for a reconnect now);
 * false if too many wait already. */
static bool access_route_hold(struct access_route *route, struct access_host *h,
			      const char *instance_id, const char *method, struct json *args,
			      unsigned int timeout_secs, struct access_route_call *call)
{
	if (h->held_count >= ACCESS_ROUTE_HELD_MAX)
		return false;
	call->host = h;
	call->instance_id = mem_strdup(instance_id);
	call->method = mem_strdup(method);
	call->args = args;
	call->timeout_secs = timeout_secs;
	struct access_route_call **p = &h->held;
	while (*p != NULL)
		p = &(*p)->next;
	*p = call;
	h->held_count++;
	call->defer = event_new(route->set.base, -1, 0, access_route_hold_expired, call);
	struct timeval tv = {ACCESS_ROUTE_HOLD_MS / 1000, (ACCESS_ROUTE_HOLD_MS % 1000) * 1000};
	event_add(call->defer, &tv);
	time_t now = time(NULL);
	if (now != h->forced_at) {
		h->forced_at = now;
		rpc_client_reconnect_now(h->link);
	}
	return true;
}

static void access_route_answered(struct rpc_conn *conn, const struct json *result,
				  const char *code, const char *text, void *ctx)
{
	struct access_route_call *call = ctx;
	/* The Instance Host's word for "not running" means the same to a user. */
	if (code != NULL &&
	    (strcmp(code, "not-running") == 0 || strcmp(code, "no-such-instance") == 0))
		code = "unavailable";
	if (call->buffer_answer != NULL) {
		call->buffer_answer(result, code == NULL ? rpc_conn_answer_blob_buffer(conn) : NULL,
				    code, text, call->ctx);
	} else {
		size_t blob_len = 0;
		const void *blob = code == NULL ? rpc_conn_answer_blob(conn, &blob_len) : NULL;
		call->answer(result, blob, blob_len, code, text, call->ctx);
	}
	access_route_call_free(call);
}

static void access_route_send(struct access_route *route, const char *instance_id,
			      const char *method, struct json *args, unsigned int timeout_secs,
			      struct access_route_call *call);

void access_route_call(struct access_route *route, const char *instance_id, const char *method,
		       struct json *args, unsigned int timeout_secs, access_route_answer_fn *answer,
		       void *ctx)
{
	struct access_route_call *call = mem_new(struct access_route_call);
	call->answer = answer;
	call->ctx = ctx;
	access_route_send(route, instance_id, method, args, timeout_secs, call);
}

void access_route_call_buffer(struct access_route *route, const char *instance_id,
			      const char *method, struct json *args, unsigned int timeout_secs,
			      access_route_buffer_answer_fn *answer, void *ctx)
{
	struct access_route_call *call = mem_new(struct access_route_call);
	call->buffer_answer = answer;
	call->ctx = ctx;
	access_route_send(route, instance_id, method, args, timeout_secs, call);
}

static void access_route_send(struct access_route *route, const char *instance_id,
			      const char *method, struct json *args, unsigned int timeout_secs,
			      struct access_route_call *call)
{
	const struct access_instance *inst = access_route_find(route, instance_id);
	struct access_host *host = NULL;
	for (struct access_host *h = route->hosts; inst != NULL && h != NULL; h = h->next) {
		if (strcasecmp(h->server_name, inst->host_name) == 0)
			host = h;
	}
	struct rpc_conn *conn = host == NULL ? NULL : rpc_client_conn(host->link);
	if (inst != NULL && host != NULL && (conn == NULL || !rpc_conn_is_ready(conn)) &&
	    access_route_hold(route, host, inst->id, method, args, timeout_secs, call))
		return;
	if (inst == NULL || conn == NULL || !rpc_conn_is_ready(conn)) {
		json_unref(&args);
		call->code = inst == NULL ? "no-such-instance" : "unavailable";
		call->text = inst == NULL ? "no such instance"
					  : "the instance's server is not reachable";
		call->defer = event_new(route->set.base, -1, 0, access_route_deferred, call);
		struct timeval now = {0, 0};
		event_add(call->defer, &now);
		return;
	}
	access_route_forward(conn, inst->id, method, args, timeout_secs, call);
}

static void access_route_forward(struct rpc_conn *conn, const char *instance_id, const char *method,
				 struct json *args, unsigned int timeout_secs,
				 struct access_route_call *call)
{
	struct json *outer = json_new_object();
	json_set_string(outer, "instanceID", instance_id);
	json_set_string(outer, "method", method);
	json_set(outer, "args", args != NULL ? args : json_new_object());
	rpc_conn_call(conn, "InstanceCall", outer, timeout_secs, access_route_answered, call);
}
