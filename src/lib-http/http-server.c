#include "http-private.h"
#include "mem.h"
#include "tls.h"
#include "tstr.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <stdlib.h>
#include <unistd.h>

#define HTTP_SERVER_DEFAULT_MAX_HEADER_SIZE (16 * 1024)
#define HTTP_SERVER_DEFAULT_MAX_BODY_SIZE (1024 * 1024)
#define HTTP_SERVER_DEFAULT_TIMEOUT_SECS 60

static struct bufferevent *http_server_bevcb(struct event_base *base, void *context)
{
	struct http_server *server = context;
	return http_conn_new(server->conns);
}

static void http_server_bad_request(struct evhttp_request *req, const char *error)
{
	struct evbuffer *out = evbuffer_new();
	if (out == NULL)
		abort();
	evbuffer_add_printf(out, "%s\n", error);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	evhttp_send_reply(req, 400, "Bad Request", out);
	evbuffer_free(out);
}

static void http_server_request(struct evhttp_request *req, void *context)
{
	struct http_server *server = context;
	const char *error;
	struct http_request *hreq = http_request_create(server, req, &error);
	if (hreq == NULL) {
		http_server_bad_request(req, error);
		return;
	}
	hreq->next = server->pending;
	if (server->pending != NULL)
		server->pending->prev = hreq;
	server->pending = hreq;
	http_conn_request_begin(server->conns, hreq);
	server->handler(hreq, server->ctx);
}

struct http_server *http_server_create(struct event_base *base, struct tls_context *tls,
				       const struct http_server_settings *set,
				       http_handler_fn *handler, void *ctx)
{
	struct evhttp *evhttp = evhttp_new(base);
	if (evhttp == NULL)
		abort(); /* only without memory */
	struct http_server *server = mem_new(struct http_server);
	server->base = base;
	server->evhttp = evhttp;
	server->tls = tls;
	server->handler = handler;
	server->ctx = ctx;
	if (set != NULL)
		server->set = *set;
	server->conns = http_conn_table_create(server);
	size_t max_header = server->set.max_header_size != 0 ? server->set.max_header_size
							     : HTTP_SERVER_DEFAULT_MAX_HEADER_SIZE;
	size_t max_body = server->set.max_body_size != 0 ? server->set.max_body_size
							 : HTTP_SERVER_DEFAULT_MAX_BODY_SIZE;
	unsigned int timeout = server->set.timeout_secs != 0 ? server->set.timeout_secs
							     : HTTP_SERVER_DEFAULT_TIMEOUT_SECS;
	evhttp_set_max_headers_size(evhttp, (ev_ssize_t)max_header);
	evhttp_set_max_body_size(evhttp, (ev_ssize_t)max_body);
	evhttp_set_timeout(evhttp, (int)timeout);
	/* Read the rest of an oversized body before answering 413, so that the
	 * client sees the answer instead of a reset connection. */
	(void)evhttp_set_flags(evhttp, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_allowed_methods(evhttp, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						   EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PUT |
						   EVHTTP_REQ_DELETE);
	evhttp_set_bevcb(evhttp, http_server_bevcb, server);
	evhttp_set_gencb(evhttp, http_server_request, server);
	return server;
}

int http_server_listen(struct http_server *server, const struct netaddr_listener *listener,
		       const char **error_r)
{
	int fd = netaddr_listen(listener, error_r);
	if (fd < 0)
		return -1;
	struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(server->evhttp, fd);
	if (bound == NULL) {
		*error_r = tstr_printf("%s: cannot accept connections on the listening socket",
				       netaddr_listener_str(listener));
		close(fd);
		return -1;
	}
	http_conn_listener_guard(bound);
	return 0;
}

void http_server_destroy(struct http_server **_server)
{
	struct http_server *server = *_server;
	if (server == NULL)
		return;
	*_server = NULL;
	/* A request whose client went away is detached from its connection
	 * and waits for the reply that frees it; evhttp_free() frees the
	 * others with their connections. */
	for (struct http_request *req = server->pending; req != NULL; req = req->next) {
		req->gone = NULL; /* its owner is going away too */
		if (evhttp_request_get_connection(req->req) == NULL)
			evhttp_request_free(req->req);
	}
	evhttp_free(server->evhttp);
	http_conn_table_destroy(&server->conns);
	while (server->pending != NULL) {
		struct http_request *req = server->pending;
		server->pending = req->next;
		http_request_free(&req);
	}
	mem_free(server);
}
