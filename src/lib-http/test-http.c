#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "mem.h"
#include "netaddr.h"
#include "str.h"
#include "test-tmpdir.h"
#include "tls.h"

#define MAX_BODY 1024
#define PER_ADDRESS 8
#define REQUEST_TIMEOUT 2
#define STREAM_PIECE (256 * 1024)

static char *tmpdir;
static char *cert_path, *key_path, *other_cert, *other_key;
static char server_fp[TLS_FINGERPRINT_HEX_LEN + 1], other_fp[TLS_FINGERPRINT_HEX_LEN + 1];

/* The server runs its own event loop in a thread; the blocking client runs in
 * the test's thread. */
struct test_server {
	pthread_t thread;
	struct event_base *base;
	struct tls_context *tls;
	struct http_server *http;
	struct event *stop_event;
	int stop_pipe[2];
	unsigned int port;
	atomic_uint handler_calls;
};

static struct test_server server;

/* ---- streamed answers ---- */

static atomic_uint stream_pieces, stream_gone, stream_done;

struct stream {
	struct http_request *req;
	unsigned int left; /* pieces still to send; forever if `forever` */
	bool forever;
};

static void stream_next(struct stream *s);

static void stream_sent(struct http_request *req, void *ctx)
{
	struct stream *s = ctx;
	if (!s->forever && s->left == 0) {
		http_request_reply_end(req);
		atomic_fetch_add(&stream_done, 1);
		mem_free(s);
		return;
	}
	stream_next(s);
}

static void stream_next(struct stream *s)
{
	static char piece[STREAM_PIECE];
	memset(piece, 'a' + (int)(s->left % 26), sizeof(piece));
	s->left--;
	atomic_fetch_add(&stream_pieces, 1);
	http_request_reply_piece(s->req, piece, sizeof(piece), stream_sent, s);
}

static void stream_gone_cb(struct http_request *req, void *ctx)
{
	atomic_fetch_add(&stream_gone, 1);
	http_request_reply_end(req);
	mem_free(ctx);
}

static void stream_start(struct http_request *req, bool forever)
{
	struct stream *s = mem_new(struct stream);
	s->req = req;
	s->left = 3;
	s->forever = forever;
	http_request_set_gone(req, stream_gone_cb, s);
	http_request_reply_start(req, 200, "application/octet-stream",
				 forever ? 1ULL << 40 : 3ULL * STREAM_PIECE);
	stream_next(s);
}

static void reply_later(evutil_socket_t fd, short what, void *context)
{
	struct http_request *req = context;
	http_request_reply(req, 202, "text/plain", "later", 5);
}

static void handler(struct http_request *req, void *context)
{
	struct test_server *ts = context;
	atomic_fetch_add(&ts->handler_calls, 1);
	const char *path = http_request_path(req);
	if (strcmp(path, "/async") == 0) {
		struct timeval delay = {0, 10000};
		event_base_once(ts->base, -1, EV_TIMEOUT, reply_later, req, &delay);
		return;
	}
	if (strcmp(path, "/stream") == 0 || strcmp(path, "/stream-forever") == 0) {
		stream_start(req, path[7] != '\0');
		return;
	}
	if (strncmp(path, "/echo", 5) != 0) {
		http_request_reply(req, 404, "text/plain", "not found\n", 10);
		return;
	}
	const char *user = "-", *password = "-", *body,
		   *ct = http_request_header(req, "content-type");
	size_t body_size;
	(void)http_request_basic_auth(req, &user, &password);
	http_request_body(req, &body, &body_size);
	struct str *out = str_create(256);
	str_printfa(out, "%s|%s|%s|%.*s|%s|%s|%s|%s", http_request_method(req), path,
		    http_request_query(req), (int)body_size, body, user, password,
		    ct == NULL ? "-" : ct,
		    strncmp(http_request_peer(req), "127.0.0.1:", 10) == 0
			    ? "peer-ok"
			    : http_request_peer(req));
	http_request_add_header(req, "X-Test", "yes");
	http_request_reply(req, 200, "text/plain; charset=utf-8", str_c(out), str_len(out));
	str_destroy(&out);
}

static void stop_server(evutil_socket_t fd, short what, void *context)
{
	event_base_loopbreak(context);
}

static void *server_run(void *context)
{
	event_base_dispatch(server.base);
	return NULL;
}

static unsigned int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static int server_start(void)
{
	const char *error;
	server.base = event_base_new();
	server.tls = tls_context_create_server(cert_path, key_path, NULL, NULL, &error);
	if (server.tls == NULL) {
		fprintf(stderr, "%s\n", error);
		return -1;
	}
	struct http_server_settings set = {.max_body_size = MAX_BODY,
					   .timeout_secs = 5,
					   .request_timeout_secs = REQUEST_TIMEOUT,
					   .max_per_address = PER_ADDRESS};
	server.http = http_server_create(server.base, server.tls, &set, handler, &server);
	struct netaddr_listener listener = {.host = "127.0.0.1"};
	listener.port = server.port = free_port();
	if (http_server_listen(server.http, &listener, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return -1;
	}
	if (pipe(server.stop_pipe) < 0)
		return -1;
	server.stop_event =
		event_new(server.base, server.stop_pipe[0], EV_READ, stop_server, server.base);
	event_add(server.stop_event, NULL);
	return pthread_create(&server.thread, NULL, server_run, NULL) == 0 ? 0 : -1;
}

static void server_stop(void)
{
	if (write(server.stop_pipe[1], "x", 1) != 1)
		abort();
	pthread_join(server.thread, NULL);
	http_server_destroy(&server.http);
	event_free(server.stop_event);
	close(server.stop_pipe[0]);
	close(server.stop_pipe[1]);
	tls_context_destroy(&server.tls);
	event_base_free(server.base);
}

static struct http_client_request client_request(const char *method, const char *path)
{
	struct http_client_request r = {
		.host = "127.0.0.1",
		.port = server.port,
		.method = method,
		.path = path,
		.pinned_fingerprint = server_fp,
		.timeout_secs = 5,
	};
	return r;
}

static void test_get_roundtrip(void **state)
{
	const char *error;
	struct http_client_request r = client_request("GET", "/echo/a%20b?x=1&y=a+b%26c");
	r.basic_user = "alice";
	r.basic_password = "pa:ss word";
	struct http_client_response resp;
	int ret = http_client_request(&r, &resp, &error);
	if (ret < 0)
		fail_msg("%s", error);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "GET|/echo/a b|x=1&y=a+b%26c||alice|pa:ss word|-|peer-ok");
	assert_int_equal(resp.body_size, strlen(resp.body));
	mem_free(resp.body);

	/* The query is raw; the form decoder splits it. */
	struct http_form_field *fields;
	size_t count;
	assert_int_equal(http_form_parse("x=1&y=a+b%26c", 13, &fields, &count, &error), 0);
	assert_int_equal(count, 2);
	assert_string_equal(fields[1].value, "a b&c");
	http_form_free(fields, count);
}

static void test_post_roundtrip(void **state)
{
	const char *error;
	struct http_client_request r = client_request("POST", "/echo");
	r.content_type = "application/x-www-form-urlencoded";
	r.body = "hello=world";
	r.body_size = 11;
	struct http_client_response resp;
	assert_int_equal(http_client_request(&r, &resp, &error), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "POST|/echo||hello=world|-|-|"
				       "application/x-www-form-urlencoded|peer-ok");
	mem_free(resp.body);
}

static void test_not_found_and_async(void **state)
{
	const char *error;
	struct http_client_request r = client_request("GET", "/nothing");
	struct http_client_response resp;
	assert_int_equal(http_client_request(&r, &resp, &error), 0);
	assert_int_equal(resp.status, 404);
	assert_string_equal(resp.body, "not found\n");
	mem_free(resp.body);

	r = client_request("GET", "/async");
	assert_int_equal(http_client_request(&r, &resp, &error), 0);
	assert_int_equal(resp.status, 202);
	assert_string_equal(resp.body, "later");
	mem_free(resp.body);
}

static void test_limits_and_bad_paths(void **state)
{
	const char *error;
	struct http_client_response resp;
	unsigned int calls = atomic_load(&server.handler_calls);
	/* Body over max_body_size: evhttp answers 413 itself. */
	char *big = mem_alloc(4 * MAX_BODY);
	memset(big, 'x', 4 * MAX_BODY);
	struct http_client_request r = client_request("POST", "/echo");
	r.body = big;
	r.body_size = 4 * MAX_BODY;
	assert_int_equal(http_client_request(&r, &resp, &error), 0);
	assert_int_equal(resp.status, 413);
	mem_free(resp.body);
	mem_free(big);

	/* Paths that decode to NUL or carry a bad escape never reach the handler. */
	r = client_request("GET", "/a%00b");
	assert_int_equal(http_client_request(&r, &resp, &error), 0);
	assert_int_equal(resp.status, 400);
	mem_free(resp.body);
	r = client_request("GET", "/a%zz");
	assert_int_equal(http_client_request(&r, &resp, &error), 0);
	assert_int_equal(resp.status, 400);
	mem_free(resp.body);
	/* Headers over max_header_size (16 KiB by default). */
	char *long_user = mem_alloc(20000);
	memset(long_user, 'u', 19999);
	long_user[19999] = '\0';
	r = client_request("GET", "/echo");
	r.basic_user = long_user;
	/* evhttp answers oversized headers with 400, not 431. */
	assert_int_equal(http_client_request(&r, &resp, &error), 0);
	assert_int_equal(resp.status, 400);
	mem_free(resp.body);
	mem_free(long_user);
	assert_int_equal(atomic_load(&server.handler_calls), calls);
}

static void test_pinning(void **state)
{
	const char *error;
	struct http_client_response resp;
	unsigned int calls = atomic_load(&server.handler_calls);
	struct http_client_request r = client_request("GET", "/echo");
	r.basic_user = "alice";
	r.basic_password = "secret";
	r.pinned_fingerprint = other_fp;
	assert_int_equal(http_client_request(&r, &resp, &error), -1);
	assert_non_null(strstr(error, "certificate fingerprint mismatch"));
	assert_non_null(strstr(error, other_fp));
	assert_non_null(strstr(error, server_fp));
	assert_null(resp.body);

	r.pinned_fingerprint = NULL;
	assert_int_equal(http_client_request(&r, &resp, &error), -1);
	assert_non_null(strstr(error, "no fingerprint to pin"));
	r.pinned_fingerprint = "abcd";
	assert_int_equal(http_client_request(&r, &resp, &error), -1);
	assert_non_null(strstr(error, "invalid fingerprint"));
	assert_int_equal(atomic_load(&server.handler_calls), calls);
}

static void test_client_errors(void **state)
{
	const char *error;
	struct http_client_response resp;
	struct http_client_request r = client_request("GET", "/echo");
	r.port = free_port();
	assert_int_equal(http_client_request(&r, &resp, &error), -1);
	assert_non_null(strstr(error, "Connection refused"));
	assert_non_null(strstr(error, "127.0.0.1:"));

	r.host = "no-such-host.invalid";
	assert_int_equal(http_client_request(&r, &resp, &error), -1);
	assert_non_null(strstr(error, "cannot resolve"));

	/* Accepts TCP, never speaks. */
	const char *listen_error;
	struct netaddr_listener silent = {.host = "127.0.0.1", .port = free_port()};
	int fd = netaddr_listen(&silent, &listen_error);
	assert_true(fd >= 0);
	r = client_request("GET", "/echo");
	r.port = silent.port;
	r.timeout_secs = 1;
	assert_int_equal(http_client_request(&r, &resp, &error), -1);
	assert_non_null(strstr(error, "timed out"));
	close(fd);

	r = client_request("PATCH", "/echo");
	assert_int_equal(http_client_request(&r, &resp, &error), -1);
	assert_non_null(strstr(error, "unsupported HTTP method"));
}

static void test_listen_in_use(void **state)
{
	const char *error;
	struct event_base *base = event_base_new();
	struct http_server *http = http_server_create(base, server.tls, NULL, handler, &server);
	struct netaddr_listener listener = {.host = "127.0.0.1", .port = server.port};
	assert_int_equal(http_server_listen(http, &listener, &error), -1);
	char *expected = mem_printf("127.0.0.1:%u: Address already in use", server.port);
	assert_string_equal(error, expected);
	mem_free(expected);
	http_server_destroy(&http);
	assert_null(http);
	event_base_free(base);
}

static void assert_form(const char *text, size_t count, const char *const *pairs)
{
	const char *error;
	struct http_form_field *fields;
	size_t n;
	assert_int_equal(http_form_parse(text, strlen(text), &fields, &n, &error), 0);
	assert_int_equal(n, count);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(fields[i].name, pairs[2 * i]);
		assert_string_equal(fields[i].value, pairs[2 * i + 1]);
	}
	http_form_free(fields, n);
}

static void test_form(void **state)
{
	const char *error;
	struct http_form_field *fields;
	size_t n;
	assert_form("", 0, NULL);
	assert_form("&&", 0, NULL);
	assert_form("a=1", 1, (const char *const[]){"a", "1"});
	assert_form("q=a+b%20c%2B", 1, (const char *const[]){"q", "a b c+"});
	assert_form("a=1&b=&c&a=2&", 4,
		    (const char *const[]){"a", "1", "b", "", "c", "", "a", "2"});
	assert_form("x=a=b", 1, (const char *const[]){"x", "a=b"});
	assert_form("%C3%A9=%e2%82%ac", 1, (const char *const[]){"\xc3\xa9", "\xe2\x82\xac"});
	assert_int_equal(http_form_parse("a=%zz", 5, &fields, &n, &error), -1);
	assert_non_null(strstr(error, "percent escape"));
	assert_int_equal(http_form_parse("a=%4", 4, &fields, &n, &error), -1);
	assert_int_equal(http_form_parse("a=%", 3, &fields, &n, &error), -1);
	assert_int_equal(http_form_parse("a=%00", 5, &fields, &n, &error), -1);
	assert_non_null(strstr(error, "NUL"));
	assert_int_equal(http_form_parse("a=x\0y", 5, &fields, &n, &error), -1);
	/* len is authoritative: text beyond it is not read. */
	assert_int_equal(http_form_parse("a=1&b=2", 3, &fields, &n, &error), 0);
	assert_int_equal(n, 1);
	http_form_free(fields, n);

	char *enc = http_form_encode_value("a b&c=d/é~");
	assert_string_equal(enc, "a%20b%26c%3Dd%2F%C3%A9~");
	mem_free(enc);
}

static int setup(void **state)
{
	const char *error;
	tmpdir = test_tmpdir_create("http");
	cert_path = mem_printf("%s/server.crt", tmpdir);
	key_path = mem_printf("%s/server.key", tmpdir);
	other_cert = mem_printf("%s/other.crt", tmpdir);
	other_key = mem_printf("%s/other.key", tmpdir);
	if (tls_cert_generate("localhost", 30, cert_path, key_path, &error) < 0 ||
	    tls_cert_generate("other", 30, other_cert, other_key, &error) < 0 ||
	    tls_cert_fingerprint(cert_path, server_fp, &error) < 0 ||
	    tls_cert_fingerprint(other_cert, other_fp, &error) < 0) {
		fprintf(stderr, "setup: %s\n", error);
		return -1;
	}
	return server_start();
}

static int teardown(void **state)
{
	server_stop();
	int ret = test_tmpdir_remove(&tmpdir);
	mem_free(cert_path);
	mem_free(key_path);
	mem_free(other_cert);
	mem_free(other_key);
	return ret == 0 ? 0 : -1;
}

static void test_streamed_answer(void **state)
{
	const char *error;
	struct http_client_request r = client_request("GET", "/stream");
	struct http_client_response resp;
	unsigned int done = atomic_load(&stream_done);
	assert_int_equal(http_client_request(&r, &resp, &error), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body_size, 3 * STREAM_PIECE);
	assert_true(resp.body[0] == 'a' + 3 && resp.body[2 * STREAM_PIECE] == 'a' + 1);
	mem_free(resp.body);
	for (int i = 0; i < 50 && atomic_load(&stream_done) == done; i++)
		usleep(20000);
	assert_int_equal(atomic_load(&stream_done), done + 1);
}

/* A client that leaves: `gone` is called once, and no piece is produced
 * after it (each piece waits for the previous one to go out). */
static void test_streamed_answer_client_gone(void **state)
{
	const char *error;
	struct http_client_request r = client_request("GET", "/stream-forever");
	struct http_client_response resp;
	/* the client takes at most 64 MiB, then closes */
	assert_int_equal(http_client_request(&r, &resp, &error), -1);
	for (int i = 0; i < 250 && atomic_load(&stream_gone) == 0; i++)
		usleep(20000);
	assert_int_equal(atomic_load(&stream_gone), 1);
	unsigned int pieces = atomic_load(&stream_pieces);
	usleep(200000);
	assert_int_equal(atomic_load(&stream_pieces), pieces);
	/* what was produced is about what the client took, not more */
	assert_true((unsigned long long)pieces * STREAM_PIECE < 80ULL * 1024 * 1024);
}

static int connect_from(const char *source)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	inet_pton(AF_INET, source, &sin.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	sin.sin_port = htons((uint16_t)server.port);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Did the server close `fd` within `msecs`? */
static bool closed_within(int fd, int msecs)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, msecs) <= 0)
		return false;
	char c;
	return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

static void test_per_address_cap(void **state)
{
	int fds[PER_ADDRESS + 1];
	for (int i = 0; i < PER_ADDRESS; i++)
		fds[i] = connect_from("127.0.0.7");
	for (int i = 0; i < PER_ADDRESS; i++)
		assert_false(closed_within(fds[i], i == 0 ? 300 : 0));
	/* one more from that address is closed at once, before any TLS */
	fds[PER_ADDRESS] = connect_from("127.0.0.7");
	assert_true(closed_within(fds[PER_ADDRESS], 1000));
	close(fds[PER_ADDRESS]);
	/* another address is not affected */
	int other = connect_from("127.0.0.8");
	assert_false(closed_within(other, 300));
	close(other);
	/* a place that frees up can be taken again */
	close(fds[0]);
	usleep(200000);
	fds[0] = connect_from("127.0.0.7");
	assert_false(closed_within(fds[0], 300));
	for (int i = 0; i < PER_ADDRESS; i++)
		close(fds[i]);
}

/* Silent connections and a handshake sent a byte at a time are closed once
 * REQUEST_TIMEOUT has passed. */
static void test_request_deadline(void **state)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int silent = connect_from("127.0.0.9");
	int slow = connect_from("127.0.0.9");
	static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
	bool slow_closed = false;
	for (size_t i = 0; i < sizeof(hello) && !slow_closed; i++) {
		if (send(slow, &hello[i], 1, MSG_NOSIGNAL) != 1)
			slow_closed = true;
		else
			slow_closed = closed_within(slow, 500);
	}
	if (!slow_closed)
		slow_closed = closed_within(slow, 3000);
	assert_true(slow_closed);
	assert_true(closed_within(silent, 1000));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(secs >= REQUEST_TIMEOUT - 0.2);
	assert_true(secs < REQUEST_TIMEOUT + 4);
	close(silent);
	close(slow);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_roundtrip),
		cmocka_unit_test(test_post_roundtrip),
		cmocka_unit_test(test_not_found_and_async),
		cmocka_unit_test(test_limits_and_bad_paths),
		cmocka_unit_test(test_pinning),
		cmocka_unit_test(test_client_errors),
		cmocka_unit_test(test_listen_in_use),
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_streamed_answer),
		cmocka_unit_test(test_streamed_answer_client_gone),
		cmocka_unit_test(test_per_address_cap),
		cmocka_unit_test(test_request_deadline),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
