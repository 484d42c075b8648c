/* rpc-server: a listener for incoming links; owns their connections. */
#include "rpc.h"
#include "array.h"
#include "json.h"
#include "mem.h"
#include "tls.h"
#include "tstr.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rpc_server_conn {
	struct rpc_server_conn *next;
	struct rpc_server *server;
	struct bufferevent *handshaking; /* before the TLS handshake completed */
	struct rpc_conn *conn;
	char address[64];
	bool dead;
};

struct rpc_server {
	struct event_base *base;
	struct tls_context *tls;
	struct json *hello;
	unsigned int keepalive_secs;
	const struct rpc_server_callbacks *callbacks;
	void *ctx;
	ARRAY(struct evconnlistener *) listeners;
	struct rpc_server_conn *conns;
	struct event *reaper;
	/* rpc_server_listen_local() */
	char *local_path;
	char *local_fingerprint;
	struct rpc_local_identity local_identity;
};

static void rpc_server_schedule_reap(struct rpc_server *server)
{
	struct timeval now = {0, 0};
	event_add(server->reaper, &now);
}

static void rpc_server_reap(evutil_socket_t fd, short events, void *ctx)
{
	struct rpc_server *server = ctx;
	for (struct rpc_server_conn **p = &server->conns; *p != NULL;) {
		struct rpc_server_conn *sc = *p;
		if (!sc->dead) {
			p = &sc->next;
			continue;
		}
		*p = sc->next;
		rpc_conn_destroy(&sc->conn);
		if (sc->handshaking != NULL)
			bufferevent_free(sc->handshaking);
		mem_free(sc);
	}
}

static void rpc_server_ready(struct rpc_conn *conn, const struct json *hello, void *ctx)
{
	struct rpc_server_conn *sc = ctx;
	if (sc->server->callbacks->accepted != NULL)
		sc->server->callbacks->accepted(sc->server, conn, hello, sc->server->ctx);
}

static void rpc_server_request(struct rpc_conn *conn, uint32_t id, const char *method,
			       const struct json *args, void *ctx)
{
	struct rpc_server_conn *sc = ctx;
	if (sc->server->callbacks->request != NULL)
		sc->server->callbacks->request(conn, id, method, args, sc->server->ctx);
	else
		rpc_conn_reply_error(conn, id, "unknown-method", "this side takes no calls");
}

static void rpc_server_event(struct rpc_conn *conn, const char *name, const struct json *data,
			     void *ctx)
{
	struct rpc_server_conn *sc = ctx;
	if (sc->server->callbacks->event != NULL)
		sc->server->callbacks->event(conn, name, data, sc->server->ctx);
}

static void rpc_server_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	struct rpc_server_conn *sc = ctx;
	if (sc->server->callbacks->closed != NULL)
		sc->server->callbacks->closed(conn, reason, sc->server->ctx);
	sc->dead = true;
	rpc_server_schedule_reap(sc->server);
}

static const struct rpc_conn_callbacks rpc_server_conn_callbacks = {
	.ready = rpc_server_ready,
	.request = rpc_server_request,
	.event = rpc_server_event,
	.closed = rpc_server_closed,
};

static void rpc_server_handshake_event(struct bufferevent *bev, short events, void *ctx)
{
	struct rpc_server_conn *sc = ctx;
	struct rpc_server *server = sc->server;
	sc->handshaking = NULL;
	if ((events & BEV_EVENT_CONNECTED) != 0) {
		bufferevent_set_timeouts(bev, NULL, NULL);
		sc->conn = rpc_conn_create(bev, server->hello, server->keepalive_secs,
					   &rpc_server_conn_callbacks, sc);
		return;
	}
	const char *text;
	(void)tls_bufferevent_failure(bev, &text);
	if ((events & BEV_EVENT_TIMEOUT) != 0)
		text = "TLS handshake timed out";
	if (server->callbacks->refused != NULL)
		server->callbacks->refused(server, sc->address, text, server->ctx);
	bufferevent_free(bev);
	sc->dead = true;
	rpc_server_schedule_reap(server);
}

static void rpc_server_accept(struct evconnlistener *listener, evutil_socket_t fd,
			      struct sockaddr *sa, int salen, void *ctx)
{
	struct rpc_server *server = ctx;
	struct rpc_server_conn *sc = mem_new(struct rpc_server_conn);
	sc->server = server;
	snprintf(sc->address, sizeof(sc->address), "%s", netaddr_peer_str((int)fd));
	struct bufferevent *bev = tls_bufferevent_accept(server->tls, server->base, (int)fd);
	if (bev == NULL) {
		close((int)fd);
		mem_free(sc);
		return;
	}
	struct timeval handshake = {10, 0};
	bufferevent_set_timeouts(bev, &handshake, &handshake);
	bufferevent_setcb(bev, NULL, NULL, rpc_server_handshake_event, sc);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	sc->handshaking = bev;
	sc->next = server->conns;
	server->conns = sc;
}

static void rpc_server_accept_local(struct evconnlistener *listener, evutil_socket_t fd,
				    struct sockaddr *sa, int salen, void *ctx)
{
	struct rpc_server *server = ctx;
	if (!rpc_local_peer_trusted((int)fd)) {
		close((int)fd);
		if (server->callbacks->refused != NULL)
			server->callbacks->refused(server, server->local_path,
						   "a local peer of another user", server->ctx);
		return;
	}
	struct rpc_server_conn *sc = mem_new(struct rpc_server_conn);
	sc->server = server;
	snprintf(sc->address, sizeof(sc->address), "%s", "local");
	struct bufferevent *bev = bufferevent_socket_new(server->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		abort(); /* without memory only */
	sc->conn = rpc_conn_create_local(bev, server->hello, server->keepalive_secs,
					 &server->local_identity, false, &rpc_server_conn_callbacks,
					 sc);
	sc->next = server->conns;
	server->conns = sc;
}

int rpc_server_listen_local(struct rpc_server *server, const char *path,
			    const struct rpc_local_identity *identity, const char **error_r)
{
	if (server->local_path != NULL) {
		*error_r = "a local listener exists already";
		return -1;
	}
	int fd = rpc_local_listen(path, error_r);
	if (fd < 0)
		return -1;
	struct evconnlistener *l =
		evconnlistener_new(server->base, rpc_server_accept_local, server,
				   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (l == NULL) {
		close(fd);
		(void)unlink(path);
		*error_r = tstr_printf("%s: cannot watch the local socket", path);
		return -1;
	}
	array_append(&server->listeners, l);
	server->local_path = mem_strdup(path);
	server->local_fingerprint = mem_strdup(identity->fingerprint);
	server->local_identity = *identity;
	server->local_identity.fingerprint = server->local_fingerprint;
	return 0;
}

struct rpc_server *rpc_server_create(struct event_base *base, struct tls_context *tls,
				     const struct json *hello, unsigned int keepalive_secs,
				     const struct rpc_server_callbacks *callbacks, void *ctx)
{
	struct rpc_server *server = mem_new(struct rpc_server);
	server->base = base;
	server->tls = tls;
	server->hello = json_clone(hello);
	server->keepalive_secs = keepalive_secs;
	server->callbacks = callbacks;
	server->ctx = ctx;
	server->reaper = evtimer_new(base, rpc_server_reap, server);
	return server;
}

int rpc_server_listen(struct rpc_server *server, const struct netaddr_listener *listener,
		      const char **error_r)
{
	int fd = netaddr_listen(listener, error_r);
	if (fd < 0)
		return -1;
	struct evconnlistener *l =
		evconnlistener_new(server->base, rpc_server_accept, server,
				   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (l == NULL) {
		close(fd);
		*error_r = tstr_printf("%s: cannot watch the listening socket",
				       netaddr_listener_str(listener));
		return -1;
	}
	array_append(&server->listeners, l);
	return 0;
}

void rpc_server_broadcast(struct rpc_server *server, const char *name, const struct json *data)
{
	for (struct rpc_server_conn *sc = server->conns; sc != NULL; sc = sc->next) {
		if (!sc->dead && sc->conn != NULL && rpc_conn_is_ready(sc->conn))
			rpc_conn_event(sc->conn, name, json_clone(data));
	}
}

void rpc_server_destroy(struct rpc_server **server)
{
	struct rpc_server *s = *server;
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->listeners.count; i++)
		evconnlistener_free(s->listeners.items[i]);
	array_free(&s->listeners);
	if (s->local_path != NULL)
		(void)unlink(s->local_path);
	mem_free(s->local_path);
	mem_free(s->local_fingerprint);
	for (struct rpc_server_conn *sc = s->conns; sc != NULL; sc = sc->next)
		sc->dead = true;
	rpc_server_reap(-1, 0, s);
	event_free(s->reaper);
	json_unref(&s->hello);
	mem_free(s);
	*server = NULL;
}
