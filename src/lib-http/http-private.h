#ifndef COFFER_HTTP_PRIVATE_H
#define COFFER_HTTP_PRIVATE_H
/* Internals shared by the lib-http files; never included outside lib-http. */
#include "http.h"

#include <event2/http.h>

struct http_server {
	struct event_base *base;
	struct evhttp *evhttp;
	struct tls_context *tls;
	http_handler_fn *handler;
	void *ctx;
	/* Requests handed to the handler and not yet answered, so that
	 * http_server_destroy() can release them. */
	struct http_request *pending;
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
};

/* http-request.c: wrap an incoming evhttp request; NULL with *error_r when
 * its path is not acceptable (then the caller answers 400). */
struct http_request *http_request_create(struct http_server *server, struct evhttp_request *req,
					 const char **error_r);
void http_request_free(struct http_request **req);

/* http-form.c: percent-decoding ('+' as space only when plus_is_space).
 * Returns a mem_alloc()ed string or NULL with *error_r on a bad escape or a
 * decoded NUL. */
char *http_form_decode(const char *text, size_t len, bool plus_is_space, const char **error_r);

/* Reason phrase for a status code. */
const char *http_request_status_reason(int status);

#endif
