#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "mem.h"
#include "netaddr.h"
#include "rpc.h"
#include "test-tmpdir.h"
#include "tls.h"

#include <sys/socket.h>
#include <sys/stat.h>

/* Real TLS on loopback: a server role, a client role with an allowed
 * certificate, and a stranger whose certificate nobody registered. */
static char *dir;
static char server_fp[65], client_fp[65], stranger_fp[65];
static struct event_base *base;
static struct json *hello;
static unsigned int port;

static int answers, events_seen;
static char last_answer[256], last_refusal[512], last_caller[128];

static char *path(const char *name)
{
	return mem_printf("%s/%s", dir, name);
}

static bool peer_check(const char *fp, void *ctx)
{
	return strcmp(fp, client_fp) == 0;
}

/* "Later" is answered only when the test says so */
static struct rpc_conn *later_conn;
static uint32_t later_id;

static void server_request(struct rpc_conn *conn, uint32_t id, const char *method,
			   const struct json *args, void *ctx)
{
	if (strcmp(method, "Later") == 0) {
		later_conn = conn;
		later_id = id;
	} else if (strcmp(method, "Echo") == 0) {
		snprintf(last_caller, sizeof(last_caller), "%s %s",
			 rpc_conn_is_local(conn) ? "local" : "tls",
			 rpc_conn_peer_fingerprint(conn));
		rpc_conn_reply(conn, id, json_clone(args));
	} else if (strcmp(method, "Blob") == 0) {
		/* every byte value, NULs included, 3 MiB */
		size_t len = 3 * 1024 * 1024;
		unsigned char *blob = mem_alloc(len);
		for (size_t i = 0; i < len; i++)
			blob[i] = (unsigned char)(i * 7 + i / 251);
		rpc_conn_reply_blob(conn, id, json_new_string("bytes"), blob, len);
		mem_free(blob);
	} else if (strcmp(method, "BlobBuffer") == 0) {
		/* the same bytes, moved out of an evbuffer */
		struct evbuffer *buf = evbuffer_new();
		for (size_t i = 0; i < 3 * 1024 * 1024; i++) {
			unsigned char c = (unsigned char)(i * 7 + i / 251);
			evbuffer_add(buf, &c, 1);
		}
		rpc_conn_reply_blob_buffer(conn, id, json_new_string("bytes"), buf);
		assert_int_equal(evbuffer_get_length(buf), 0);
		evbuffer_free(buf);
	} else
		rpc_conn_reply_error(conn, id, "unknown-method", method);
}

static void server_event(struct rpc_conn *conn, const char *name, const struct json *data,
			 void *ctx)
{
	events_seen++;
}

static void server_refused(struct rpc_server *server, const char *address, const char *reason,
			   void *ctx)
{
	snprintf(last_refusal, sizeof(last_refusal), "%s", reason);
}

static const struct rpc_server_callbacks server_callbacks = {
	.request = server_request,
	.event = server_event,
	.refused = server_refused,
};

static struct rpc_server *start_server(struct tls_context **tls)
{
	const char *error;
	char *cert = path("server.pem"), *key = path("server.key");
	*tls = tls_context_create_server(cert, key, peer_check, NULL, &error);
	assert_non_null(*tls);
	struct rpc_server *server =
		rpc_server_create(base, *tls, hello, 1, &server_callbacks, NULL);
	struct netaddr_listener l = {"127.0.0.1", port};
	assert_int_equal(rpc_server_listen(server, &l, &error), 0);
	mem_free(cert);
	mem_free(key);
	return server;
}

static void answer(struct rpc_conn *conn, const struct json *result, const char *code,
		   const char *text, void *ctx)
{
	answers++;
	if (code != NULL) {
		snprintf(last_answer, sizeof(last_answer), "error %s: %s", code, text);
	} else {
		char *s = json_serialize(result, false);
		snprintf(last_answer, sizeof(last_answer), "%s", s);
		mem_free(s);
	}
}

static size_t blob_len_seen;
static bool blob_ok;

static void blob_answer(struct rpc_conn *conn, const struct json *result, const char *code,
			const char *text, void *ctx)
{
	size_t len;
	const unsigned char *blob = rpc_conn_answer_blob(conn, &len);
	answers++;
	blob_len_seen = len;
	blob_ok = code == NULL && blob != NULL;
	for (size_t i = 0; blob_ok && i < len; i++)
		blob_ok = blob[i] == (unsigned char)(i * 7 + i / 251);
}

/* A relay's view: the blob as an evbuffer, moved out without a copy. */
static void blob_buffer_answer(struct rpc_conn *conn, const struct json *result, const char *code,
			       const char *text, void *ctx)
{
	struct evbuffer *mine = ctx, *blob = rpc_conn_answer_blob_buffer(conn);
	answers++;
	if (code == NULL && blob != NULL)
		evbuffer_add_buffer(mine, blob);
}

static bool blob_matches(struct evbuffer *buf, size_t len)
{
	const unsigned char *p = evbuffer_pullup(buf, -1);
	if (evbuffer_get_length(buf) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != (unsigned char)(i * 7 + i / 251))
			return false;
	}
	return true;
}

static int drained_calls;

static void on_drained(void *ctx)
{
	drained_calls++;
}

static bool drained_at_least(void *ctx)
{
	return drained_calls >= (int)(intptr_t)ctx;
}

static bool run_until(bool (*cond)(void *), void *ctx, int seconds)
{
	time_t end = time(NULL) + seconds;
	while (!cond(ctx) && time(NULL) <= end) {
		struct timeval tv = {0, 20000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	return cond(ctx);
}

static bool client_in_state(void *ctx)
{
	struct rpc_client **c = ctx;
	return rpc_client_state(c[0], NULL) == (enum rpc_link_state)(intptr_t)c[1];
}

static bool answers_at_least(void *ctx)
{
	return answers >= (int)(intptr_t)ctx;
}

static bool events_at_least(void *ctx)
{
	return events_seen >= (int)(intptr_t)ctx;
}

/* A refusal that names this fingerprint: the server may still report the
 * end of an earlier test connection (a different reason) after a reset, so
 * the test waits for the refusal it is about, not for any refusal. */
static bool refusal_names(void *ctx)
{
	return strstr(last_refusal, (const char *)ctx) != NULL;
}

/* A client with cert_name's certificate pinning `pin`; with socket_path,
 * it tries that local socket first, naming itself `claim`. */
static struct rpc_client *make_local_client(const char *cert_name, const char *pin,
					    const char *claim, const char *socket_path,
					    struct tls_context **tls)
{
	const char *error;
	char *cert = mem_printf("%s/%s.pem", dir, cert_name),
	     *key = mem_printf("%s/%s.key", dir, cert_name);
	*tls = tls_context_create_client(cert, key, &error);
	assert_non_null(*tls);
	mem_free(cert);
	mem_free(key);
	struct rpc_client_settings set = {
		.host = "127.0.0.1",
		.port = port,
		.fingerprint = pin,
		.tls = *tls,
		.hello = hello,
		.keepalive_secs = 1,
		.max_backoff_secs = 1,
		.local_path = socket_path,
		.local_fingerprint = claim,
	};
	static const struct rpc_conn_callbacks none = {0};
	return rpc_client_create(base, &set, &none, NULL, NULL);
}

static struct rpc_client *make_client(const char *cert_name, const char *pin,
				      struct tls_context **tls)
{
	return make_local_client(cert_name, pin, NULL, NULL, tls);
}

static bool wait_state(struct rpc_client *client, enum rpc_link_state state, int seconds)
{
	void *ctx[2] = {client, (void *)(intptr_t)state};
	return run_until(client_in_state, ctx, seconds);
}

static void test_call_event_and_reconnect(void **state)
{
	struct tls_context *server_tls, *client_tls;
	struct rpc_server *server = start_server(&server_tls);
	struct rpc_client *client = make_client("client", server_fp, &client_tls);
	assert_true(wait_state(client, RPC_LINK_CONNECTED, 5));

	struct json *args = json_new_object();
	json_set_string(args, "text", "hello");
	answers = 0;
	rpc_conn_call(rpc_client_conn(client), "Echo", args, 5, answer, NULL);
	rpc_conn_call(rpc_client_conn(client), "Nope", NULL, 5, answer, NULL);
	assert_true(run_until(answers_at_least, (void *)2, 5));
	assert_string_equal(last_answer, "error unknown-method: Nope");
	/* calls received and not answered yet: what a stopping process waits for */
	rpc_conn_call(rpc_client_conn(client), "Later", NULL, 5, answer, NULL);
	rpc_conn_call(rpc_client_conn(client), "Echo", NULL, 5, answer, NULL);
	assert_true(run_until(answers_at_least, (void *)3, 5));
	assert_non_null(later_conn);
	assert_int_equal(rpc_conn_unanswered(later_conn), 1);
	rpc_conn_reply(later_conn, later_id, NULL);
	assert_int_equal(rpc_conn_unanswered(later_conn), 0);
	assert_true(run_until(answers_at_least, (void *)4, 5));
	/* An answer with a binary blob arrives intact; plain answers have none. */
	rpc_conn_call(rpc_client_conn(client), "Blob", NULL, 5, blob_answer, NULL);
	assert_true(run_until(answers_at_least, (void *)5, 5));
	assert_true(blob_ok);
	assert_int_equal(blob_len_seen, 3 * 1024 * 1024);
	rpc_conn_event(rpc_client_conn(client), "ping-test", NULL);
	assert_true(run_until(events_at_least, (void *)1, 5));
	/* Large payloads go as data frames: a 3 MiB stream reaches the far side
	 * as chunks (the server takes no streams, so it closes: a protocol error
	 * the client reports and recovers from). */

	/* The server goes away: the client notices and reconnects when it is back. */
	rpc_server_destroy(&server);
	tls_context_destroy(&server_tls);
	assert_true(wait_state(client, RPC_LINK_UNREACHABLE, 10));
	server = start_server(&server_tls);
	assert_true(wait_state(client, RPC_LINK_CONNECTED, 10));

	rpc_client_destroy(&client);
	tls_context_destroy(&client_tls);
	rpc_server_destroy(&server);
	tls_context_destroy(&server_tls);
}

/* What a relay (the Instance Host) uses: blobs moved as evbuffers, reading
 * paused and resumed, a callback once the output has drained. */
static void test_relay_blob_and_backpressure(void **state)
{
	struct tls_context *server_tls, *client_tls;
	struct rpc_server *server = start_server(&server_tls);
	struct rpc_client *client = make_client("client", server_fp, &client_tls);
	assert_true(wait_state(client, RPC_LINK_CONNECTED, 5));
	struct rpc_conn *conn = rpc_client_conn(client);

	/* a blob sent from an evbuffer, taken as one: intact, 3 MiB */
	struct evbuffer *mine = evbuffer_new();
	answers = 0;
	rpc_conn_call(conn, "BlobBuffer", NULL, 10, blob_buffer_answer, mine);
	assert_true(run_until(answers_at_least, (void *)1, 10));
	assert_true(blob_matches(mine, 3 * 1024 * 1024));
	evbuffer_free(mine);

	/* paused: the answer waits (the link stays up), resumed: it comes */
	answers = 0;
	rpc_conn_pause_reading(conn, true);
	rpc_conn_call(conn, "Echo", json_new_object(), 10, answer, NULL);
	assert_false(run_until(answers_at_least, (void *)1, 2));
	assert_int_equal(rpc_client_state(client, NULL), RPC_LINK_CONNECTED);
	rpc_conn_pause_reading(conn, false);
	assert_true(run_until(answers_at_least, (void *)1, 5));

	/* drained: at once when nothing waits, else once the output is sent */
	drained_calls = 0;
	rpc_conn_when_drained(conn, 0, on_drained, NULL);
	assert_int_equal(drained_calls, 1);
	struct json *args = json_new_object();
	char *big = mem_alloc(2 * 1024 * 1024 + 1);
	memset(big, 'x', 2 * 1024 * 1024);
	big[2 * 1024 * 1024] = '\0';
	json_set_string(args, "text", big);
	mem_free(big);
	rpc_conn_call(conn, "Echo", args, 10, answer, NULL);
	assert_true(rpc_conn_output_len(conn) > 1024 * 1024);
	rpc_conn_when_drained(conn, 64 * 1024, on_drained, NULL);
	assert_int_equal(drained_calls, 1);
	assert_true(run_until(drained_at_least, (void *)2, 10));
	assert_true(rpc_conn_output_len(conn) <= 64 * 1024);
	assert_true(run_until(answers_at_least, (void *)2, 10));

	rpc_client_destroy(&client);
	tls_context_destroy(&client_tls);
	rpc_server_destroy(&server);
	tls_context_destroy(&server_tls);
}

/* The link between an Instance Host and an instance: no TLS, a socket
 * pair that never blocks. Large answers are read ahead of libevent's 4 KiB
 * reads; they arrive intact, one after another, also while the reader
 * pauses and resumes in between. */
static void test_plain_link_reads_ahead(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	static const struct rpc_conn_callbacks serving = {.request = server_request};
	static const struct rpc_conn_callbacks none = {0};
	struct rpc_conn *server =
		rpc_conn_create(bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE), hello,
				1, &serving, NULL);
	struct rpc_conn *client = rpc_conn_create(
		bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE), hello, 1, &none, NULL);
	for (int round = 0; round < 3; round++) {
		answers = 0;
		blob_ok = false;
		rpc_conn_call(client, "Blob", NULL, 10, blob_answer, NULL);
		struct evbuffer *mine = evbuffer_new();
		rpc_conn_call(client, "BlobBuffer", NULL, 10, blob_buffer_answer, mine);
		if (round == 1) {
			/* paused while the answers come: they wait, then arrive */
			rpc_conn_pause_reading(client, true);
			assert_false(run_until(answers_at_least, (void *)1, 1));
			rpc_conn_pause_reading(client, false);
		}
		assert_true(run_until(answers_at_least, (void *)2, 10));
		assert_true(blob_ok);
		assert_int_equal(blob_len_seen, 3 * 1024 * 1024);
		assert_true(blob_matches(mine, 3 * 1024 * 1024));
		evbuffer_free(mine);
	}
	rpc_conn_destroy(&client);
	rpc_conn_destroy(&server);
}

/* Roles of one config directory: a local socket instead of TLS, the peer
 * named in the hello and checked as its certificate would be; whatever the
 * local link refuses goes to TLS, whose verdict stands. */
static void test_local_link_and_fallback(void **state)
{
	struct tls_context *server_tls, *client_tls, *stranger_tls, *wrong_tls;
	struct rpc_server *server = start_server(&server_tls);
	char *sock = path("local.sock");
	const char *error;
	const struct rpc_local_identity identity = {server_fp, peer_check, NULL};
	assert_int_equal(rpc_server_listen_local(server, sock, &identity, &error), 0);
	/* only the owner may connect */
	struct stat st;
	assert_int_equal(stat(sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	struct rpc_client *client =
		make_local_client("client", server_fp, client_fp, sock, &client_tls);
	assert_true(wait_state(client, RPC_LINK_CONNECTED, 5));
	assert_true(rpc_conn_is_local(rpc_client_conn(client)));
	answers = 0;
	rpc_conn_call(rpc_client_conn(client), "Echo", json_new_object(), 5, answer, NULL);
	rpc_conn_call(rpc_client_conn(client), "Blob", NULL, 5, blob_answer, NULL);
	assert_true(run_until(answers_at_least, (void *)2, 5));
	char *expected = mem_printf("local %s", client_fp);
	assert_string_equal(last_caller, expected);
	mem_free(expected);
	assert_true(blob_ok);
	assert_int_equal(blob_len_seen, 3 * 1024 * 1024);

	/* A peer claiming a fingerprint the server does not allow: refused
	 * locally, then refused by TLS as well (its certificate is unknown). */
	last_refusal[0] = '\0';
	struct rpc_client *stranger =
		make_local_client("stranger", server_fp, stranger_fp, sock, &stranger_tls);
	assert_true(run_until(refusal_names, stranger_fp, 10));
	assert_false(wait_state(stranger, RPC_LINK_CONNECTED, 1));
	rpc_client_destroy(&stranger);

	/* The local peer is not the one we pin: TLS, which refuses its
	 * certificate for the same reason. */
	struct rpc_client *wrong_pin =
		make_local_client("client", stranger_fp, client_fp, sock, &wrong_tls);
	assert_true(wait_state(wrong_pin, RPC_LINK_FINGERPRINT_REFUSED, 5));
	rpc_client_destroy(&wrong_pin);

	/* The server ends: its socket file goes with it; a client falls back
	 * to TLS... which is gone too, and reconnects locally when it is back. */
	rpc_server_destroy(&server);
	assert_int_equal(access(sock, F_OK), -1);
	tls_context_destroy(&server_tls);
	assert_true(wait_state(client, RPC_LINK_UNREACHABLE, 10));
	server = start_server(&server_tls);
	assert_int_equal(rpc_server_listen_local(server, sock, &identity, &error), 0);
	assert_true(wait_state(client, RPC_LINK_CONNECTED, 10));
	assert_true(rpc_conn_is_local(rpc_client_conn(client)));

	rpc_client_destroy(&client);
	rpc_server_destroy(&server);
	tls_context_destroy(&client_tls);
	tls_context_destroy(&stranger_tls);
	tls_context_destroy(&wrong_tls);
	tls_context_destroy(&server_tls);
	mem_free(sock);
}

static void test_pinning_both_ways(void **state)
{
	struct tls_context *server_tls, *client_tls, *stranger_tls;
	struct rpc_server *server = start_server(&server_tls);

	/* We pin the wrong fingerprint: the server's certificate is refused. */
	struct rpc_client *wrong_pin = make_client("client", stranger_fp, &client_tls);
	assert_true(wait_state(wrong_pin, RPC_LINK_FINGERPRINT_REFUSED, 5));
	const char *reason;
	rpc_client_state(wrong_pin, &reason);
	assert_non_null(strstr(reason, stranger_fp));
	rpc_client_destroy(&wrong_pin);

	/* The server does not know our certificate: it refuses us. */
	last_refusal[0] = '\0';
	struct rpc_client *stranger = make_client("stranger", server_fp, &stranger_tls);
	assert_true(run_until(refusal_names, stranger_fp, 10));
	assert_false(wait_state(stranger, RPC_LINK_CONNECTED, 1));
	rpc_client_destroy(&stranger);

	tls_context_destroy(&client_tls);
	tls_context_destroy(&stranger_tls);
	rpc_server_destroy(&server);
	tls_context_destroy(&server_tls);
}

static int setup(void **state)
{
	const char *error;
	dir = test_tmpdir_create("rpc");
	const char *names[] = {"server", "client", "stranger"};
	char *fps[] = {server_fp, client_fp, stranger_fp};
	for (int i = 0; i < 3; i++) {
		char *cert = mem_printf("%s/%s.pem", dir, names[i]),
		     *key = mem_printf("%s/%s.key", dir, names[i]);
		if (tls_cert_generate(names[i], 30, cert, key, &error) < 0 ||
		    tls_cert_fingerprint(cert, fps[i], &error) < 0)
			return -1;
		mem_free(cert);
		mem_free(key);
	}
	/* as in the daemons: a connection freed after its peer went away (TLS
	 * close_notify) must not kill the process */
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	hello = json_new_object();
	json_set_string(hello, "role", "test");
	/* A free port: bind, remember, release. */
	for (port = 39300; port < 39400; port++) {
		struct netaddr_listener l = {"127.0.0.1", port};
		int fd = netaddr_listen(&l, &error);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
	}
	return -1;
}

static int teardown(void **state)
{
	json_unref(&hello);
	event_base_free(base);
	int ret = test_tmpdir_remove(&dir);
	return ret == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_event_and_reconnect),
		cmocka_unit_test(test_relay_blob_and_backpressure),
		cmocka_unit_test(test_plain_link_reads_ahead),
		cmocka_unit_test(test_pinning_both_ways),
		cmocka_unit_test(test_local_link_and_fallback),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
