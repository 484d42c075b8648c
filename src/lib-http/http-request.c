#include "http-private.h"
#include "base64.h"
#include "mem.h"
#include "tstr.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *http_request_peer_str(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *address = NULL;
	ev_uint16_t port = 0;
	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &address, &port);
	if (address == NULL)
		return mem_strdup("unknown");
	if (strchr(address, ':') != NULL)
		return mem_printf("[%s]:%u", address, port);
	return mem_printf("%s:%u", address, port);
}

static char *http_request_decode_path(struct evhttp_request *req, const char **error_r)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw = uri == NULL ? NULL : evhttp_uri_get_path(uri);
	if (raw == NULL || raw[0] == '\0')
		raw = "/";
	if (raw[0] != '/') {
		*error_r = tstr_printf("request path '%s' does not start with '/'", raw);
		return NULL;
	}
	/* Strict decoding: a bad escape or an encoded NUL is a bad request,
	 * not something for each handler to stumble over. */
	const char *decode_error;
	char *path = http_form_decode(raw, strlen(raw), false, &decode_error);
	if (path == NULL)
		*error_r = tstr_printf("invalid request path: %s", decode_error);
	return path;
}

struct http_request *http_request_create(struct http_server *server, struct evhttp_request *req,
					 const char **error_r)
{
	char *path = http_request_decode_path(req, error_r);
	if (path == NULL)
		return NULL;
	struct http_request *hreq = mem_new(struct http_request);
	hreq->server = server;
	hreq->req = req;
	hreq->path = path;
	/* Copied now: the connection may be gone when the handler asks. */
	hreq->peer = http_request_peer_str(req);
	struct evbuffer *input = evhttp_request_get_input_buffer(req);
	hreq->body_size = evbuffer_get_length(input);
	hreq->body = mem_alloc(hreq->body_size + 1);
	if (evbuffer_copyout(input, hreq->body, hreq->body_size) != (ev_ssize_t)hreq->body_size)
		abort();
	hreq->body[hreq->body_size] = '\0';
	return hreq;
}

void http_request_free(struct http_request **_req)
{
	struct http_request *req = *_req;
	if (req == NULL)
		return;
	*_req = NULL;
	http_conn_request_free(req);
	if (req->auth_decoded != NULL)
		memset(req->auth_decoded, 0,
		       strlen(req->auth_decoded) + 1 + strlen(req->auth_password));
	mem_free(req->auth_decoded);
	mem_free(req->path);
	mem_free(req->peer);
	mem_free(req->body);
	mem_free(req);
}

const char *http_request_method(struct http_request *req)
{
	switch (evhttp_request_get_command(req->req)) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "UNKNOWN";
}

const char *http_request_path(struct http_request *req)
{
	return req->path;
}

const char *http_request_query(struct http_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req->req);
	const char *query = uri == NULL ? NULL : evhttp_uri_get_query(uri);
	return query == NULL ? "" : query;
}

const char *http_request_header(struct http_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req->req), name);
}

void http_request_body(struct http_request *req, const char **data_r, size_t *size_r)
{
	*data_r = req->body;
	*size_r = req->body_size;
}

const char *http_request_peer(struct http_request *req)
{
	return req->peer;
}

static void http_request_parse_basic_auth(struct http_request *req)
{
	const char *value = http_request_header(req, "Authorization");
	if (value == NULL || strncasecmp(value, "Basic ", 6) != 0)
		return;
	value += 6;
	while (*value == ' ')
		value++;
	size_t len = strlen(value);
	while (len > 0 && value[len - 1] == ' ')
		len--;
	size_t decoded_len;
	char *decoded = (char *)base64_decode(value, len, &decoded_len);
	if (decoded == NULL)
		return;
	/* RFC 7617: the user id cannot contain ':', the password can. */
	char *colon = memchr(decoded, ':', decoded_len);
	if (colon == NULL || colon == decoded || memchr(decoded, '\0', decoded_len) != NULL) {
		memset(decoded, 0, decoded_len);
		mem_free(decoded);
		return;
	}
	*colon = '\0';
	req->auth_decoded = decoded;
	req->auth_password = colon + 1;
}

bool http_request_basic_auth(struct http_request *req, const char **user_r, const char **password_r)
{
	if (!req->auth_parsed) {
		req->auth_parsed = true;
		http_request_parse_basic_auth(req);
	}
	if (req->auth_decoded == NULL)
		return false;
	*user_r = req->auth_decoded;
	*password_r = req->auth_password;
	return true;
}

void http_request_add_header(struct http_request *req, const char *name, const char *value)
{
	(void)evhttp_add_header(evhttp_request_get_output_headers(req->req), name, value);
}

const char *http_request_status_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	}
	return status < 400 ? "OK" : "Error";
}

static void http_request_unlink(struct http_request *req)
{
	struct http_server *server = req->server;
	if (req->prev != NULL)
		req->prev->next = req->next;
	else if (server->pending == req)
		server->pending = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
}

static void http_request_set_content_type(struct http_request *req, const char *content_type)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req->req);
	if (content_type != NULL) {
		evhttp_remove_header(headers, "Content-Type");
		(void)evhttp_add_header(headers, "Content-Type", content_type);
	}
}

void http_request_reply(struct http_request *req, int status, const char *content_type,
			const void *body, size_t size)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req->req);
	http_request_set_content_type(req, content_type);
	struct evbuffer *out = evbuffer_new();
	if (out == NULL || (size > 0 && evbuffer_add(out, body, size) < 0))
		abort();
	/* Explicit, so that an empty body is unambiguous for keep-alive
	 * clients; RFC 9110 forbids it on 1xx, 204 and 304 (evhttp leaves the
	 * body out for those and for HEAD itself). */
	evhttp_remove_header(headers, "Content-Length");
	if (status >= 200 && status != 204 && status != 304) {
		char length[32];
		snprintf(length, sizeof(length), "%zu", size);
		(void)evhttp_add_header(headers, "Content-Length", length);
	}
	/* Forget the connection first: sending may complete and close it. */
	http_conn_request_free(req);
	evhttp_send_reply(req->req, status, http_request_status_reason(status), out);
	evbuffer_free(out);
	http_request_unlink(req);
	http_request_free(&req);
}

/* ---- streamed answers ---- */

void http_request_set_gone(struct http_request *req, http_request_fn *gone, void *ctx)
{
	req->gone = gone;
	req->gone_ctx = ctx;
}

bool http_request_connected(struct http_request *req)
{
	return req->conn != NULL && evhttp_request_get_connection(req->req) != NULL;
}

void http_request_reply_start(struct http_request *req, int status, const char *content_type,
			      unsigned long long size)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req->req);
	http_request_set_content_type(req, content_type);
	char length[32];
	snprintf(length, sizeof(length), "%llu", size);
	/* With a length evhttp sends the pieces as they are (no chunking). */
	evhttp_remove_header(headers, "Content-Length");
	(void)evhttp_add_header(headers, "Content-Length", length);
	if (evhttp_request_get_connection(req->req) != NULL)
		evhttp_send_reply_start(req->req, status, http_request_status_reason(status));
}

static void http_request_piece_sent(struct evhttp_connection *evcon, void *ctx)
{
	struct http_request *req = ctx;
	http_request_fn *sent = req->sent;
	req->sent = NULL;
	if (sent != NULL)
		sent(req, req->sent_ctx);
}

void http_request_reply_piece(struct http_request *req, const void *data, size_t len,
			      http_request_fn *sent, void *ctx)
{
	if (!http_request_connected(req))
		return; /* `gone` was or will be called */
	struct evbuffer *buf = evbuffer_new();
	if (buf == NULL || (len > 0 && evbuffer_add(buf, data, len) < 0))
		abort();
	req->sent = sent;
	req->sent_ctx = ctx;
	evhttp_send_reply_chunk_with_cb(req->req, buf, http_request_piece_sent, req);
	evbuffer_free(buf);
}

void http_request_reply_end(struct http_request *req)
{
	req->sent = NULL;
	http_conn_request_free(req);
	/* frees a request whose connection has gone */
	evhttp_send_reply_end(req->req);
	http_request_unlink(req);
	http_request_free(&req);
}

void http_request_reply_abort(struct http_request *req)
{
	req->sent = NULL;
	req->gone = NULL;
	http_conn_request_free(req);
	struct evhttp_connection *evcon = evhttp_request_get_connection(req->req);
	if (evcon != NULL)
		evhttp_connection_free(evcon); /* frees the request with it */
	else
		evhttp_request_free(req->req);
	http_request_unlink(req);
	http_request_free(&req);
}
