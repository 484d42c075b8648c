/* rpc-client: an outgoing link that keeps itself connected, with backoff. */
#include "rpc.h"
#include "json.h"
#include "mem.h"
#include "tls.h"
#include "tstr.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rpc_client {
	struct event_base *base;
	char *host;
	unsigned int port;
	char fingerprint[TLS_FINGERPRINT_HEX_LEN + 1];
	struct tls_context *tls;
	struct json *hello;
	unsigned int keepalive_secs, max_backoff_secs, backoff_secs;
	char *local_path, *local_fingerprint; /* NULL: TCP and TLS only */
	bool tls_next; /* the local link ended before its hello: this attempt by TLS */
	const struct rpc_conn_callbacks *user;
	void (*state_changed)(struct rpc_client *, enum rpc_link_state, const char *, void *);
	void *ctx;

	struct bufferevent *connecting; /* TLS handshake in progress */
	struct rpc_conn *conn;          /* established (maybe awaiting hello) */
	struct rpc_conn *dead_conn;     /* closed, destroyed by the timer */
	struct event *timer;
	enum rpc_link_state state;
	char *reason;
	time_t last_contact;
	char seen_fingerprint[TLS_FINGERPRINT_HEX_LEN + 1];
};

const char *rpc_link_state_name(enum rpc_link_state state)
{
	switch (state) {
	case RPC_LINK_CONNECTING:
		return "connecting";
	case RPC_LINK_CONNECTED:
		return "connected";
	case RPC_LINK_UNREACHABLE:
		return "unreachable";
	case RPC_LINK_FINGERPRINT_REFUSED:
		return "fingerprint refused";
	case RPC_LINK_REFUSED_BY_PEER:
		return "refused by peer";
	case RPC_LINK_INCOMPATIBLE:
		return "incompatible";
	}
	return "unknown";
}

static void rpc_client_set_state(struct rpc_client *client, enum rpc_link_state state,
				 const char *reason)
{
	bool changed = state != client->state || strcmp(reason, client->reason) != 0;
	client->state = state;
	mem_free(client->reason);
	client->reason = mem_strdup(reason);
	if (changed && client->state_changed != NULL)
		client->state_changed(client, state, client->reason, client->ctx);
}

static void rpc_client_schedule(struct rpc_client *client, unsigned int secs)
{
	struct timeval tv = {(time_t)secs, secs == 0 ? 1000 : 0};
	event_add(client->timer, &tv);
}

static void rpc_client_retry_later(struct rpc_client *client)
{
	rpc_client_schedule(client, client->backoff_secs);
	client->backoff_secs = client->backoff_secs == 0 ? 1 : client->backoff_secs * 2;
	if (client->backoff_secs > client->max_backoff_secs)
		client->backoff_secs = client->max_backoff_secs;
}

/* ---- callbacks of the established connection ---- */

static void rpc_client_ready(struct rpc_conn *conn, const struct json *hello, void *ctx)
{
	struct rpc_client *client = ctx;
	client->backoff_secs = 0;
	client->last_contact = time(NULL);
	rpc_client_set_state(client, RPC_LINK_CONNECTED, "");
	if (client->user->ready != NULL)
		client->user->ready(conn, hello, client->ctx);
}

static void rpc_client_request(struct rpc_conn *conn, uint32_t id, const char *method,
			       const struct json *args, void *ctx)
{
	struct rpc_client *client = ctx;
	client->last_contact = time(NULL);
	if (client->user->request != NULL)
		client->user->request(conn, id, method, args, client->ctx);
	else
		rpc_conn_reply_error(conn, id, "unknown-method", "this side takes no calls");
}

static void rpc_client_event(struct rpc_conn *conn, const char *name, const struct json *data,
			     void *ctx)
{
	struct rpc_client *client = ctx;
	if (client->user->event != NULL)
		client->user->event(conn, name, data, client->ctx);
}

static void rpc_client_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	struct rpc_client *client = ctx;
	if (rpc_conn_is_local(conn) && rpc_conn_peer_hello(conn) == NULL) {
		/* refused before the hello (another role's socket, or another
		 * fingerprint): TLS says what is wrong, and says it right away;
		 * the attempt after that tries the local socket again */
		client->tls_next = true;
		client->dead_conn = conn;
		client->conn = NULL;
		rpc_client_schedule(client, 0);
		return;
	}
	client->last_contact = rpc_conn_last_contact(conn);
	if (client->user->closed != NULL)
		client->user->closed(conn, reason, client->ctx);
	client->dead_conn = conn;
	client->conn = NULL;
	enum rpc_link_state state = RPC_LINK_UNREACHABLE;
	if (strstr(reason, "incompatible") != NULL)
		state = RPC_LINK_INCOMPATIBLE;
	else if (strncmp(reason, RPC_REFUSED_BY_PEER_REASON, strlen(RPC_REFUSED_BY_PEER_REASON)) ==
		 0)
		state = RPC_LINK_REFUSED_BY_PEER;
	rpc_client_set_state(client, state, reason);
	rpc_client_retry_later(client);
}

static const struct rpc_conn_callbacks rpc_client_conn_callbacks = {
	.ready = rpc_client_ready,
	.request = rpc_client_request,
	.event = rpc_client_event,
	.closed = rpc_client_closed,
};

/* ---- connecting ---- */

static void rpc_client_connect_event(struct bufferevent *bev, short events, void *ctx)
{
	struct rpc_client *client = ctx;
	client->connecting = NULL;
	if ((events & BEV_EVENT_CONNECTED) != 0) {
		bufferevent_set_timeouts(bev, NULL, NULL);
		/* Calls are small messages that want an answer now (see netaddr_listen). */
		int on = 1;
		(void)setsockopt((int)bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &on,
				 sizeof(on));
		(void)tls_bufferevent_peer_fingerprint(bev, client->seen_fingerprint);
		client->conn = rpc_conn_create(bev, client->hello, client->keepalive_secs,
					       &rpc_client_conn_callbacks, client);
		return;
	}
	const char *text;
	enum tls_failure failure = tls_bufferevent_failure(bev, &text);
	enum rpc_link_state state = RPC_LINK_UNREACHABLE;
	if (failure == TLS_FAILURE_PIN_MISMATCH)
		state = RPC_LINK_FINGERPRINT_REFUSED;
	else if (failure == TLS_FAILURE_REFUSED_BY_PEER)
		state = RPC_LINK_REFUSED_BY_PEER;
	else if ((events & BEV_EVENT_TIMEOUT) != 0)
		text = "connection timed out";
	else if (failure == TLS_FAILURE_NONE || failure == TLS_FAILURE_OTHER) {
		/* A refused or unroutable connect is a socket error, not a TLS one. */
		int err = EVUTIL_SOCKET_ERROR();
		if (err != 0)
			text = evutil_socket_error_to_string(err);
		else if (failure == TLS_FAILURE_NONE)
			text = "connection closed";
	}
	const char *reason = tstr_printf("%s:%u: %s", client->host, client->port, text);
	(void)tls_bufferevent_peer_fingerprint(bev, client->seen_fingerprint);
	bufferevent_free(bev);
	rpc_client_set_state(client, state, reason);
	rpc_client_retry_later(client);
}

static bool rpc_client_host_is_ip(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static bool rpc_client_local_check(const char *peer_fingerprint, void *ctx)
{
	struct rpc_client *client = ctx;
	return strcmp(peer_fingerprint, client->fingerprint) == 0;
}

/* The peer's local socket, if it answers: no TLS, no TCP (rpc-local.c). */
static bool rpc_client_connect_local(struct rpc_client *client)
{
	bool tls_next = client->tls_next;
	client->tls_next = false;
	if (client->local_path == NULL || tls_next)
		return false;
	int fd = rpc_local_connect(client->local_path);
	if (fd < 0)
		return false;
	struct bufferevent *bev = bufferevent_socket_new(client->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		abort(); /* without memory only */
	const struct rpc_local_identity identity = {
		.fingerprint = client->local_fingerprint,
		.check = rpc_client_local_check,
		.ctx = client,
	};
	snprintf(client->seen_fingerprint, sizeof(client->seen_fingerprint), "%s",
		 client->fingerprint);
	client->conn = rpc_conn_create_local(bev, client->hello, client->keepalive_secs, &identity,
					     true, &rpc_client_conn_callbacks, client);
	return true;
}

static void rpc_client_connect(struct rpc_client *client)
{
	if (rpc_client_connect_local(client))
		return;
	/* A retry keeps the last failure as the state: status pages should say
	 * "unreachable" while the link is down, not flicker through "connecting". */
	struct bufferevent *bev = tls_bufferevent_connect(
		client->tls, client->base,
		rpc_client_host_is_ip(client->host) ? NULL : client->host, client->fingerprint);
	struct timeval handshake = {10, 0};
	bufferevent_set_timeouts(bev, &handshake, &handshake);
	bufferevent_setcb(bev, NULL, NULL, rpc_client_connect_event, client);
	client->connecting = bev;
	/* Host names resolve with getaddrinfo (blocking, no evdns): role
	 * addresses are in /etc/hosts or DNS nearby, and this runs rarely. */
	if (bufferevent_socket_connect_hostname(bev, NULL, AF_UNSPEC, client->host,
						(int)client->port) < 0) {
		client->connecting = NULL;
		bufferevent_free(bev);
		rpc_client_set_state(
			client, RPC_LINK_UNREACHABLE,
			tstr_printf("%s:%u: cannot connect", client->host, client->port));
		rpc_client_retry_later(client);
	}
}

static void rpc_client_timer(evutil_socket_t fd, short events, void *ctx)
{
	struct rpc_client *client = ctx;
	rpc_conn_destroy(&client->dead_conn);
	if (client->conn == NULL && client->connecting == NULL)
		rpc_client_connect(client);
}

struct rpc_client *
rpc_client_create(struct event_base *base, const struct rpc_client_settings *settings,
		  const struct rpc_conn_callbacks *callbacks,
		  void (*state_changed)(struct rpc_client *client, enum rpc_link_state state,
					const char *reason, void *ctx),
		  void *ctx)
{
	struct rpc_client *client = mem_new(struct rpc_client);
	client->base = base;
	client->host = mem_strdup(settings->host);
	client->port = settings->port;
	snprintf(client->fingerprint, sizeof(client->fingerprint), "%s", settings->fingerprint);
	client->tls = settings->tls;
	client->hello = json_clone(settings->hello);
	client->keepalive_secs = settings->keepalive_secs;
	client->max_backoff_secs =
		settings->max_backoff_secs == 0 ? 30 : settings->max_backoff_secs;
	if (settings->local_path != NULL && settings->local_fingerprint != NULL) {
		client->local_path = mem_strdup(settings->local_path);
		client->local_fingerprint = mem_strdup(settings->local_fingerprint);
	}
	client->user = callbacks;
	client->state_changed = state_changed;
	client->ctx = ctx;
	client->reason = mem_strdup("");
	client->state = RPC_LINK_CONNECTING;
	client->timer = evtimer_new(base, rpc_client_timer, client);
	rpc_client_schedule(client, 0);
	return client;
}

void rpc_client_destroy(struct rpc_client **client)
{
	struct rpc_client *c = *client;
	if (c == NULL)
		return;
	event_free(c->timer);
	if (c->connecting != NULL)
		bufferevent_free(c->connecting);
	rpc_conn_destroy(&c->conn);
	rpc_conn_destroy(&c->dead_conn);
	json_unref(&c->hello);
	mem_free(c->reason);
	mem_free(c->host);
	mem_free(c->local_path);
	mem_free(c->local_fingerprint);
	mem_free(c);
	*client = NULL;
}

enum rpc_link_state rpc_client_state(const struct rpc_client *client, const char **reason_r)
{
	if (reason_r != NULL)
		*reason_r = client->reason;
	return client->state;
}

struct rpc_conn *rpc_client_conn(struct rpc_client *client)
{
	return client->state == RPC_LINK_CONNECTED ? client->conn : NULL;
}

time_t rpc_client_last_contact(const struct rpc_client *client)
{
	if (client->conn != NULL && rpc_conn_is_ready(client->conn))
		return rpc_conn_last_contact(client->conn);
	return client->last_contact;
}

const char *rpc_client_seen_fingerprint(const struct rpc_client *client)
{
	return client->seen_fingerprint;
}

void rpc_client_reconnect_now(struct rpc_client *client)
{
	if (client->conn == NULL && client->connecting == NULL) {
		client->backoff_secs = 0;
		rpc_client_schedule(client, 0);
	}
}
