#ifndef COFFER_HTTP_PRIVATE_H
#define COFFER_HTTP_PRIVATE_H
/* Internals shared by the lib-http files; never included outside lib-http. */
#include "http.h"

#include <event2/http.h>
#include <stdbool.h>

struct event;
struct http_conn;
struct http_conn_table;

struct http_server {
	struct event_base *base;
	struct evhttp *evhttp;
	struct tls_context *tls;
	http_handler_fn *handler;
	void *ctx;
	struct http_server_settings set;
	/* Requests handed to the handler and not yet answered, so that
	 * http_server_destroy() can release them. */
	struct http_request *pending;
	struct http_conn_table *conns; /* http-conn.c */
};

struct http_request {
	struct http_server *server;
	struct evhttp_request *req;
	struct http_request *prev, *next;
	char *path;
	char *peer;
	char *body; /* NUL-terminated copy */
	size_t body_size;
	bool auth_parsed;
	char *auth_decoded; /* "user\0password" */
	const char *auth_password;
	struct http_conn *conn; /* NULL once the client is gone */
	http_request_fn *gone, *sent;
	void *gone_ctx, *sent_ctx;
};

/* http-request.c: wrap an incoming evhttp request; NULL with *error_r when
 * its path is not acceptable (then the caller answers 400). */
struct http_request *http_request_create(struct http_server *server, struct evhttp_request *req,
					 const char **error_r);
void http_request_free(struct http_request **req);

/* http-conn.c: connections and their limits. The table learns of each
 * connection from the bufferevent callback, checks it right after evhttp
 * has set it up, and follows each request that reaches the handler. */
struct http_conn_table *http_conn_table_create(struct http_server *server);
void http_conn_table_destroy(struct http_conn_table **table);
struct bufferevent *http_conn_new(struct http_conn_table *table);
/* A request reached the handler: its connection waits for the answer. */
void http_conn_request_begin(struct http_conn_table *table, struct http_request *req);
/* The wrapper `req` is freed: forget it. */
void http_conn_request_free(struct http_request *req);
/* Listener: take the process's descriptor reserve on EMFILE. */
void http_conn_listener_guard(struct evhttp_bound_socket *bound);

/* http-form.c: percent-decoding ('+' as space only when plus_is_space).
 * Returns a mem_alloc()ed string or NULL with *error_r on a bad escape or a
 * decoded NUL. */
char *http_form_decode(const char *text, size_t len, bool plus_is_space, const char **error_r);

/* Reason phrase for a status code. */
const char *http_request_status_reason(int status);

#endif
