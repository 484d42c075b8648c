#ifndef COFFER_HTTP_H
#define COFFER_HTTP_H
/* http: an HTTPS server and a small HTTPS client (the only module that uses
 * libevent's evhttp).
 *
 * Server: http_server_create() serves requests over TLS with a context from
 * lib-tls. Every request goes to one handler; the handler answers with
 * http_request_reply() now or later (asynchronously, from the same event loop).
 * Limits (header size, body size, timeout) are enforced by evhttp before the
 * handler: a body over max_body_size gets 413 (the rest of the body is read
 * first, so the client sees the answer), headers (with the request line) over
 * max_header_size get 400 from evhttp (it has no 431), and a connection idle
 * for timeout_secs is closed. Methods other than GET, POST, HEAD, OPTIONS, PUT
 * and DELETE get 405 (evhttp), and a path with a bad percent escape or an
 * encoded NUL gets 400; neither reaches the handler.
 *
 * Connections: at most max_connections at once, and max_per_address from
 * one IP address; a connection over either is closed as soon as it is
 * accepted, before any TLS work. The TLS handshake and the whole request
 * (line, headers, body) must arrive within request_timeout_secs of the
 * connection's start, or of the previous answer on a kept-alive connection
 * (so a client sending a byte now and then, or nothing, cannot hold a
 * connection); while the handler works and while an answer is being
 * written only timeout_secs of silence ends it. When the process runs out
 * of file descriptors anyway, a pending connection is still accepted and
 * closed at once (fd-reserve), so accept() never spins.
 *
 * A request handed to the handler must be answered exactly once with
 * http_request_reply(), even if the client has gone away meanwhile (the reply
 * is then dropped). http_server_destroy() releases unanswered requests; the
 * handler must not use them afterwards.
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
	size_t max_header_size;            /* bytes; 0 = 16 KiB */
	size_t max_body_size;              /* bytes; 0 = 1 MiB */
	unsigned int timeout_secs;         /* idle/read timeout; 0 = 60 */
	unsigned int request_timeout_secs; /* handshake + request; 0 = 20 */
	/* 0 = a third of the descriptors the process may open (RLIMIT_NOFILE
	 * soft limit), at most 10000 */
	unsigned int max_connections;
	unsigned int max_per_address; /* 0 = 64 */
	/* Told about every connection refused by a limit (may be NULL):
	 * `address` is the IP, `reason` "per-address" or "total". */
	void (*refused)(const char *address, const char *reason, void *ctx);
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
const char *http_request_path(struct http_request *req);   /* decoded ('+' stays), without query */
const char *http_request_query(struct http_request *req);  /* raw, "" if none */
const char *http_request_header(struct http_request *req, const char *name);
void http_request_body(struct http_request *req, const char **data_r, size_t *size_r);
const char *http_request_peer(struct http_request *req); /* "ip:port" */

/* Parsed Basic credentials; false if absent or malformed. */
bool http_request_basic_auth(struct http_request *req, const char **user_r,
			     const char **password_r);

void http_request_add_header(struct http_request *req, const char *name, const char *value);
/* Send the response and release the request. content_type NULL: none.
 * Content-Length is always set (except for 1xx, 204 and 304). */
void http_request_reply(struct http_request *req, int status, const char *content_type,
			const void *body, size_t size);

/* A streamed answer of `size` bytes (sent with Content-Length), given in
 * pieces: http_request_reply_piece() queues one and calls `sent` once it has
 * gone out to the network, so the caller produces the next piece only as
 * fast as the client takes them (at most one piece waits per request).
 * http_request_reply_end() after the last piece (or to give up) releases the
 * request. If the client goes away meanwhile, `gone` (set with
 * http_request_set_gone()) is called once, `sent` never again, and the
 * caller ends with http_request_reply_end(). */
typedef void http_request_fn(struct http_request *req, void *ctx);
void http_request_set_gone(struct http_request *req, http_request_fn *gone, void *ctx);
void http_request_reply_start(struct http_request *req, int status, const char *content_type,
			      unsigned long long size);
void http_request_reply_piece(struct http_request *req, const void *data, size_t len,
			      http_request_fn *sent, void *ctx);
void http_request_reply_end(struct http_request *req);
/* Give up a streamed answer half way: the connection is closed (the client
 * sees a short body) and the request released; `gone` is not called. */
void http_request_reply_abort(struct http_request *req);
/* false once the client has gone. */
bool http_request_connected(struct http_request *req);

/* ---- form decoding (application/x-www-form-urlencoded and query strings) ---- */

struct http_form_field {
	char *name;
	char *value;
};
/* Decode "a=1&b=x%20y"; *fields_r freed with http_form_free(). '+' is a
 * space; a pair without '=' has the value ""; empty pairs ("a=1&&b=2") are
 * skipped; repeated names are kept in order. -1 on a bad percent escape or a
 * NUL (raw or %00), since values are C strings. */
int http_form_parse(const char *text, size_t len, struct http_form_field **fields_r,
		    size_t *count_r, const char **error_r);
void http_form_free(struct http_form_field *fields, size_t count);
/* Percent-encoded (everything but RFC 3986 unreserved characters, so it is
 * safe in a query and in a form); mem_free(). */
char *http_form_encode_value(const char *value);

/* ---- client ---- */

struct http_client_request {
	const char *host;
	unsigned int port;
	const char *method;       /* "GET" or "POST" */
	const char *path;         /* with query */
	const char *content_type; /* NULL for none */
	const void *body;
	size_t body_size;
	const char *basic_user; /* NULL: no Authorization header */
	const char *basic_password;
	const char *pinned_fingerprint; /* required: the server certificate's fingerprint */
	unsigned int timeout_secs;
	/* More request headers: {name, value, name, value, ..., NULL}; may be NULL. */
	const char *const *extra_headers;
};

struct http_client_response {
	int status;
	char *body; /* NUL-terminated; mem_free() */
	size_t body_size;
};

/* Blocking. -1 on connection, TLS (including a pin mismatch, which the error
 * names with both fingerprints) or protocol failure; every error starts with
 * "host:port: " ("Connection refused", "cannot resolve ...", "timed out after
 * N seconds", "certificate fingerprint mismatch: expected X, got Y").
 * pinned_fingerprint NULL is an error ("no fingerprint to pin"): credentials
 * never go to an unverified server. timeout_secs 0 = 30, for the whole
 * exchange. Methods: GET, POST, PUT, DELETE, HEAD. One connection per request
 * (Connection: close); SIGPIPE is blocked meanwhile. */
int http_client_request(const struct http_client_request *request,
			struct http_client_response *response_r, const char **error_r);

#endif
