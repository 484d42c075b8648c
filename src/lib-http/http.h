#ifndef COFFER_HTTP_H
#define COFFER_HTTP_H
/* http: an HTTPS server and a small HTTPS client (the only module that uses
 * libevent's evhttp).
 *
 * Server: http_server_create() serves requests over TLS with a context from
 * lib-tls. Every request goes to one handler; the handler answers with
 * http_request_reply() now or later (asynchronously, from the same event loop).
 * Limits (header size, body size, timeout) are enforced by the server: an
 * oversized request gets 413/431 and never reaches the handler.
 *
 * Client: http_client_request() performs one blocking request with its own
 * event loop, pinning the server's certificate fingerprint.
 *
 * Errors go out through *error_r (tstr strings). */
#include <stdbool.h>
#include <stddef.h>

#include "netaddr.h"

struct event_base;
struct tls_context;

struct http_server_settings {
	size_t max_header_size; /* bytes; 0 = 16 KiB */
	size_t max_body_size;   /* bytes; 0 = 1 MiB */
	unsigned int timeout_secs; /* idle/read timeout; 0 = 60 */
};

struct http_server;
struct http_request;

typedef void http_handler_fn(struct http_request *req, void *ctx);

struct http_server *http_server_create(struct event_base *base, struct tls_context *tls,
				       const struct http_server_settings *set,
				       http_handler_fn *handler, void *ctx);
/* Listen on one more address; -1 with an error naming the listener. */
int http_server_listen(struct http_server *server, const struct netaddr_listener *listener,
		       const char **error_r);
void http_server_destroy(struct http_server **server);

/* Request accessors; strings live as long as the request. */
const char *http_request_method(struct http_request *req); /* "GET", "POST", ... */
const char *http_request_path(struct http_request *req);   /* decoded, without query */
const char *http_request_query(struct http_request *req);  /* raw, "" if none */
const char *http_request_header(struct http_request *req, const char *name);
void http_request_body(struct http_request *req, const char **data_r, size_t *size_r);
const char *http_request_peer(struct http_request *req);   /* "ip:port" */

/* Parsed Basic credentials; false if absent or malformed. */
bool http_request_basic_auth(struct http_request *req, const char **user_r,
			     const char **password_r);

void http_request_add_header(struct http_request *req, const char *name, const char *value);
/* Send the response and release the request. */
void http_request_reply(struct http_request *req, int status, const char *content_type,
			const void *body, size_t size);

/* ---- form decoding (application/x-www-form-urlencoded and query strings) ---- */

struct http_form_field {
	char *name;
	char *value;
};
/* Decode "a=1&b=x%20y"; *fields_r freed with http_form_free(). -1 on a bad
 * percent escape. */
int http_form_parse(const char *text, size_t len, struct http_form_field **fields_r,
		    size_t *count_r, const char **error_r);
void http_form_free(struct http_form_field *fields, size_t count);
char *http_form_encode_value(const char *value); /* percent-encoded; mem_free() */

/* ---- client ---- */

struct http_client_request {
	const char *host;
	unsigned int port;
	const char *method;       /* "GET" or "POST" */
	const char *path;         /* with query */
	const char *content_type; /* NULL for none */
	const void *body;
	size_t body_size;
	const char *basic_user;   /* NULL: no Authorization header */
	const char *basic_password;
	const char *pinned_fingerprint; /* required: the server certificate's fingerprint */
	unsigned int timeout_secs;
};

struct http_client_response {
	int status;
	char *body; /* NUL-terminated; mem_free() */
	size_t body_size;
};

/* Blocking. -1 on connection, TLS (including a pin mismatch, which the error
 * names with both fingerprints) or protocol failure. */
int http_client_request(const struct http_client_request *request,
			struct http_client_response *response_r, const char **error_r);

#endif
