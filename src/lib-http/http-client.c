#include "http-private.h"
#include "base64.h"
#include "mem.h"
#include "tls.h"
#include "sigpipe.h"
#include "tstr.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_CLIENT_DEFAULT_TIMEOUT_SECS 30
#define HTTP_CLIENT_MAX_HEADER_SIZE (64 * 1024)
#define HTTP_CLIENT_MAX_BODY_SIZE (64 * 1024 * 1024)

struct http_client {
	const struct http_client_request *request;
	const char *name; /* "host:port" for error texts */
	unsigned int timeout_secs;
	char address[NI_MAXHOST]; /* numeric, resolved once */
	struct event_base *base;
	struct evhttp_connection *evcon;
	bool done, timed_out, have_error;
	enum evhttp_request_error error;
	int status;
	char *body;
	size_t body_size;
};

static void http_client_done(struct evhttp_request *req, void *context)
{
	struct http_client *client = context;
	client->done = true;
	if (req != NULL && evhttp_request_get_response_code(req) != 0) {
		struct evbuffer *input = evhttp_request_get_input_buffer(req);
		client->status = evhttp_request_get_response_code(req);
		client->body_size = evbuffer_get_length(input);
		client->body = mem_alloc(client->body_size + 1);
		if (evbuffer_copyout(input, client->body, client->body_size) !=
		    (ev_ssize_t)client->body_size)
			abort();
		client->body[client->body_size] = '\0';
	}
	event_base_loopbreak(client->base);
}

static void http_client_error(enum evhttp_request_error error, void *context)
{
	struct http_client *client = context;
	client->have_error = true;
	client->error = error;
}

static void http_client_timeout(evutil_socket_t fd, short what, void *context)
{
	struct http_client *client = context;
	client->timed_out = true;
	event_base_loopbreak(client->base);
}

/* Resolved here rather than by evhttp, for a precise error and one lookup. */
static int http_client_resolve(struct http_client *client, const char **error_r)
{
	char port[16];
	snprintf(port, sizeof(port), "%u", client->request->port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int gai = getaddrinfo(client->request->host, port, &hints, &res);
	if (gai != 0) {
		*error_r = tstr_printf("%s: cannot resolve '%s': %s", client->name,
				       client->request->host, gai_strerror(gai));
		return -1;
	}
	gai = getnameinfo(res->ai_addr, res->ai_addrlen, client->address, sizeof(client->address),
			  NULL, 0, NI_NUMERICHOST);
	freeaddrinfo(res);
	if (gai != 0) {
		*error_r = tstr_printf("%s: cannot resolve '%s': %s", client->name,
				       client->request->host, gai_strerror(gai));
		return -1;
	}
	return 0;
}

/* After a failure without any TLS or HTTP explanation, connect once more
 * (plain TCP, short) to learn what the socket said: refused, unreachable. */
static const char *http_client_diagnose_tcp(struct http_client *client)
{
	char port[16];
	snprintf(port, sizeof(port), "%u", client->request->port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *res;
	if (getaddrinfo(client->address, port, &hints, &res) != 0)
		return NULL;
	const char *result = NULL;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			result = strerror(errno);
		} else {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int err = 0;
			socklen_t len = sizeof(err);
			if (poll(&pfd, 1, 1000) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
				result = strerror(err);
		}
	}
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return result == NULL ? NULL : tstr_dup(result);
}

static const char *http_client_timeout_text(struct http_client *client)
{
	return tstr_printf("timed out after %u second%s", client->timeout_secs,
			   client->timeout_secs == 1 ? "" : "s");
}

static const char *http_client_evhttp_error(struct http_client *client)
{
	if (!client->have_error)
		return "connection closed before a complete response";
	switch (client->error) {
	case EVREQ_HTTP_TIMEOUT:
		return http_client_timeout_text(client);
	case EVREQ_HTTP_EOF:
		return "connection closed before a complete response";
	case EVREQ_HTTP_INVALID_HEADER:
		return "invalid response from the server";
	case EVREQ_HTTP_BUFFER_ERROR:
		return "connection failed while sending or receiving";
	case EVREQ_HTTP_REQUEST_CANCEL:
		return "request cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "response too large";
	}
	return "request failed";
}

static const char *http_client_failure(struct http_client *client)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(client->evcon);
	const char *tls_text;
	switch (tls_bufferevent_failure(bev, &tls_text)) {
	case TLS_FAILURE_PIN_MISMATCH:
		return tls_text;
	case TLS_FAILURE_REFUSED_BY_PEER:
		return tstr_printf("the server ended the TLS handshake: %s", tls_text);
	case TLS_FAILURE_PEER_REFUSED: /* a server-side failure; not for clients */
	case TLS_FAILURE_OTHER:
		if (client->timed_out)
			break;
		const char *tcp = http_client_diagnose_tcp(client);
		return tcp != NULL ? tcp : tstr_printf("TLS handshake failed: %s", tls_text);
	case TLS_FAILURE_NONE:
		break;
	}
	if (client->timed_out)
		return http_client_timeout_text(client);
	return http_client_evhttp_error(client);
}

static int http_client_method(const char *method, enum evhttp_cmd_type *cmd_r)
{
	static const struct {
		const char *name;
		enum evhttp_cmd_type cmd;
	} methods[] = {
		{"GET", EVHTTP_REQ_GET},       {"POST", EVHTTP_REQ_POST}, {"PUT", EVHTTP_REQ_PUT},
		{"DELETE", EVHTTP_REQ_DELETE}, {"HEAD", EVHTTP_REQ_HEAD},
	};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (method != NULL && strcmp(method, methods[i].name) == 0) {
			*cmd_r = methods[i].cmd;
			return 0;
		}
	}
	return -1;
}

static void http_client_add_headers(struct http_client *client, struct evhttp_request *req)
{
	const struct http_client_request *r = client->request;
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	bool ipv6 = strchr(r->host, ':') != NULL;
	const char *host = r->port == 443
				   ? tstr_printf(ipv6 ? "[%s]" : "%s", r->host)
				   : tstr_printf(ipv6 ? "[%s]:%u" : "%s:%u", r->host, r->port);
	evhttp_add_header(headers, "Host", host);
	evhttp_add_header(headers, "Connection", "close");
	if (r->content_type != NULL)
		evhttp_add_header(headers, "Content-Type", r->content_type);
	if (r->body_size > 0 || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0) {
		evhttp_add_header(headers, "Content-Length", tstr_printf("%zu", r->body_size));
		if (r->body_size > 0 &&
		    evbuffer_add(evhttp_request_get_output_buffer(req), r->body, r->body_size) < 0)
			abort();
	}
	if (r->basic_user != NULL) {
		char *pair = mem_printf("%s:%s", r->basic_user,
					r->basic_password == NULL ? "" : r->basic_password);
		char *encoded = base64_encode(pair, strlen(pair));
		char *value = mem_printf("Basic %s", encoded);
		evhttp_add_header(headers, "Authorization", value);
		memset(pair, 0, strlen(pair));
		memset(value, 0, strlen(value));
		mem_free(pair);
		mem_free(encoded);
		mem_free(value);
	}
	for (const char *const *h = r->extra_headers; h != NULL && h[0] != NULL && h[1] != NULL;
	     h += 2)
		evhttp_add_header(headers, h[0], h[1]);
}

static int http_client_run(struct http_client *client, const char *pin, const char **error_r)
{
	const struct http_client_request *r = client->request;
	enum evhttp_cmd_type cmd;
	if (http_client_method(r->method, &cmd) < 0) {
		*error_r = tstr_printf("unsupported HTTP method '%s': expected GET, POST, PUT, "
				       "DELETE or HEAD",
				       r->method == NULL ? "" : r->method);
		return -1;
	}
	if (http_client_resolve(client, error_r) < 0)
		return -1;
	struct tls_context *tls = tls_context_create_client(NULL, NULL, error_r);
	if (tls == NULL)
		return -1;
	client->base = event_base_new();
	if (client->base == NULL)
		abort();
	struct bufferevent *bev = tls_bufferevent_connect(tls, client->base, r->host, pin);
	client->evcon = evhttp_connection_base_bufferevent_new(
		client->base, NULL, bev, client->address, (ev_uint16_t)r->port);
	if (client->evcon == NULL)
		abort();
	evhttp_connection_set_timeout(client->evcon, (int)client->timeout_secs);
	evhttp_connection_set_retries(client->evcon, 0);
	evhttp_connection_set_max_headers_size(client->evcon, HTTP_CLIENT_MAX_HEADER_SIZE);
	evhttp_connection_set_max_body_size(client->evcon, HTTP_CLIENT_MAX_BODY_SIZE);
	struct evhttp_request *req = evhttp_request_new(http_client_done, client);
	if (req == NULL)
		abort();
	evhttp_request_set_error_cb(req, http_client_error);
	http_client_add_headers(client, req);
	/* The whole exchange is bounded, not only each idle period. */
	struct timeval limit = {.tv_sec = client->timeout_secs};
	struct event *timer = evtimer_new(client->base, http_client_timeout, client);
	if (timer == NULL || evtimer_add(timer, &limit) < 0)
		abort();
	int ret = -1;
	if (evhttp_make_request(client->evcon, req, cmd, r->path) < 0) {
		*error_r = tstr_printf("%s: cannot send the request for %s", client->name, r->path);
	} else {
		(void)event_base_dispatch(client->base);
		if (client->status != 0)
			ret = 0;
		else
			*error_r = tstr_printf("%s: %s", client->name, http_client_failure(client));
	}
	event_free(timer);
	evhttp_connection_free(client->evcon);
	event_base_free(client->base);
	tls_context_destroy(&tls);
	return ret;
}

int http_client_request(const struct http_client_request *request,
			struct http_client_response *response_r, const char **error_r)
{
	struct http_client client = {
		.request = request,
		.name = strchr(request->host, ':') != NULL
				? tstr_printf("[%s]:%u", request->host, request->port)
				: tstr_printf("%s:%u", request->host, request->port),
		.timeout_secs = request->timeout_secs != 0 ? request->timeout_secs
							   : HTTP_CLIENT_DEFAULT_TIMEOUT_SECS,
	};
	memset(response_r, 0, sizeof(*response_r));
	/* Credentials go only to a server proven by its pinned certificate. */
	char pin[TLS_FINGERPRINT_HEX_LEN + 1];
	if (request->pinned_fingerprint == NULL) {
		*error_r = tstr_printf("%s: no fingerprint to pin: the server's certificate "
				       "fingerprint is required",
				       client.name);
		return -1;
	}
	if (tls_fingerprint_normalize(request->pinned_fingerprint, pin, error_r) < 0)
		return -1;
	if (request->path == NULL || request->path[0] != '/') {
		*error_r = tstr_printf("invalid request path '%s': expected an absolute path",
				       request->path == NULL ? "" : request->path);
		return -1;
	}
	sigset_t old;
	sigpipe_block(&old);
	int ret = http_client_run(&client, pin, error_r);
	sigpipe_restore(&old);
	if (ret < 0) {
		mem_free(client.body);
		return -1;
	}
	response_r->status = client.status;
	response_r->body = client.body;
	response_r->body_size = client.body_size;
	return 0;
}
