#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "netaddr.h"
#include "test-tmpdir.h"
#include "tls.h"

static char *tmpdir;
static char *server_cert, *server_key, *client_cert, *client_key, *other_key;
static char server_fp[TLS_FINGERPRINT_HEX_LEN + 1], client_fp[TLS_FINGERPRINT_HEX_LEN + 1];

static char *path(const char *name)
{
	return mem_printf("%s/%s", tmpdir, name);
}

/* The fingerprint as the openssl command line prints it, normalized. */
static void openssl_cli_fingerprint(const char *cert, char fp_r[TLS_FINGERPRINT_HEX_LEN + 1])
{
	char *cmd = mem_printf("openssl x509 -noout -fingerprint -sha256 -in '%s'", cert);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[256] = "";
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	line[strcspn(line, "\n")] = '\0';
	const char *eq = strchr(line, '=');
	assert_non_null(eq);
	const char *error;
	assert_int_equal(tls_fingerprint_normalize(eq + 1, fp_r, &error), 0);
	mem_free(cmd);
}

static bool have_openssl_cli(void)
{
	return system("openssl version >/dev/null 2>&1") == 0;
}

static void test_generate_and_info(void **state)
{
	const char *error;
	struct stat st;
	assert_int_equal(stat(server_key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(server_cert, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);

	struct tls_cert_info info;
	assert_int_equal(tls_cert_read_info(server_cert, &info, &error), 0);
	assert_string_equal(info.subject, "CN=127.0.0.1");
	assert_string_equal(info.issuer, "CN=127.0.0.1");
	assert_true(info.self_signed);
	assert_true(info.not_after - info.not_before >= 30 * 86400);
	assert_string_equal(info.fingerprint, server_fp);
	assert_int_equal(strlen(server_fp), TLS_FINGERPRINT_HEX_LEN);
	assert_string_not_equal(server_fp, client_fp);

	/* Stable: the same file gives the same fingerprint. */
	char again[TLS_FINGERPRINT_HEX_LEN + 1];
	assert_int_equal(tls_cert_fingerprint(server_cert, again, &error), 0);
	assert_string_equal(again, server_fp);

	if (have_openssl_cli()) {
		char cli[TLS_FINGERPRINT_HEX_LEN + 1];
		openssl_cli_fingerprint(server_cert, cli);
		assert_string_equal(cli, server_fp);
		/* SAN and the extensions mutual TLS depends on. */
		char *cmd = mem_printf("openssl x509 -noout -text -in '%s' | grep -q "
				       "'IP Address:127.0.0.1' && openssl x509 -noout -text -in "
				       "'%s' | grep -q 'TLS Web Client Authentication' && "
				       "openssl x509 -noout -text -in '%s' | grep -q "
				       "'DNS:client.example.test'",
				       server_cert, server_cert, client_cert);
		assert_int_equal(system(cmd), 0);
		mem_free(cmd);
	}

	assert_int_equal(
		tls_cert_generate("bad name,DNS:evil", 30, server_cert, server_key, &error), -1);
	assert_non_null(strstr(error, "invalid certificate name"));
	assert_int_equal(tls_cert_generate("x", 0, server_cert, server_key, &error), -1);
	assert_int_equal(tls_cert_read_info("/nonexistent/cert.pem", &info, &error), -1);
	assert_non_null(strstr(error, "/nonexistent/cert.pem"));
}

/* Extra names: each as DNS or IP entry, repeats once; a bad one refuses all. */
static void test_generate_with_names(void **state)
{
	const char *error;
	char *cert = path("names.pem"), *key = path("names.key");
	const char *const names[] = {"archive.example.test",
				     "10.1.2.3",
				     "localhost",
				     "::1",
				     "LOCALHOST",
				     "cas.test",
				     NULL};
	assert_int_equal(tls_cert_generate_names("cas.test", names, 30, cert, key, &error), 0);
	char *cmd =
		mem_printf("test \"$(openssl x509 -noout -ext subjectAltName -in '%s' | tail -n 1 "
			   "| tr -d ' ')\" = 'DNS:cas.test,DNS:archive.example.test,"
			   "IPAddress:10.1.2.3,DNS:localhost,IPAddress:0:0:0:0:0:0:0:1'",
			   cert);
	assert_int_equal(system(cmd), 0);
	mem_free(cmd);
	const char *const bad[] = {"ok.test", "evil,DNS:x", NULL};
	assert_int_equal(tls_cert_generate_names("cas.test", bad, 30, cert, key, &error), -1);
	assert_non_null(strstr(error, "evil,DNS:x"));
	mem_free(cert);
	mem_free(key);
}

static void test_check_pair(void **state)
{
	const char *error;
	assert_int_equal(tls_cert_check_pair(server_cert, server_key, &error), 0);
	assert_int_equal(tls_cert_check_pair(server_cert, client_key, &error), -1);
	assert_non_null(strstr(error, "does not match"));
	assert_non_null(strstr(error, client_key));
	assert_int_equal(tls_cert_check_pair(server_cert, "/nonexistent/key", &error), -1);
	assert_non_null(strstr(error, "/nonexistent/key"));
	/* A certificate is not a key. */
	assert_int_equal(tls_cert_check_pair(server_cert, server_cert, &error), -1);
	assert_non_null(strstr(error, "private key"));
}

static void concat_files(const char *dest, const char *a, const char *b)
{
	char *cmd = mem_printf("cat '%s' '%s' > '%s'", a, b, dest);
	assert_int_equal(system(cmd), 0);
	mem_free(cmd);
}

static void test_import_pem(void **state)
{
	const char *error;
	char *combined = path("combined.pem"), *cert = path("imp.crt"), *key = path("imp.key");
	char fp[TLS_FINGERPRINT_HEX_LEN + 1];
	/* Key before certificate in one file, plus a second certificate that
	 * plays the chain. */
	char *tmp = path("tmp.pem");
	concat_files(tmp, client_key, client_cert);
	concat_files(combined, tmp, server_cert);
	assert_int_equal(tls_cert_import_pem(combined, NULL, cert, key, &error), 0);
	assert_int_equal(tls_cert_fingerprint(cert, fp, &error), 0);
	assert_string_equal(fp, client_fp);
	assert_int_equal(tls_cert_check_pair(cert, key, &error), 0);
	struct stat st;
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(tls_cert_import_pem(server_cert, client_key, cert, key, &error), -1);
	assert_non_null(strstr(error, "does not match"));
	char *garbage = path("garbage.pem");
	char *cmd = mem_printf("echo 'not a certificate' > '%s'", garbage);
	assert_int_equal(system(cmd), 0);
	mem_free(cmd);
	assert_int_equal(tls_cert_import_pem(garbage, server_key, cert, key, &error), -1);
	assert_non_null(strstr(error, "no PEM certificate"));
	assert_non_null(strstr(error, garbage));
	mem_free(combined);
	mem_free(cert);
	mem_free(key);
	mem_free(tmp);
	mem_free(garbage);
}

static void test_pkcs12(void **state)
{
	const char *error;
	char *p12 = path("export.p12"), *cert = path("p12.crt"), *key = path("p12.key");
	char fp[TLS_FINGERPRINT_HEX_LEN + 1];
	assert_int_equal(tls_cert_export_pkcs12(server_cert, server_key, "s3cret:x", p12, &error),
			 0);
	struct stat st;
	assert_int_equal(stat(p12, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(tls_cert_import_pkcs12(p12, "s3cret:x", cert, key, &error), 0);
	assert_int_equal(tls_cert_fingerprint(cert, fp, &error), 0);
	assert_string_equal(fp, server_fp);
	assert_int_equal(tls_cert_check_pair(cert, key, &error), 0);
	assert_int_equal(tls_cert_import_pkcs12(p12, "wrong", cert, key, &error), -1);
	assert_non_null(strstr(error, "wrong PKCS#12 password"));
	assert_int_equal(tls_cert_import_pkcs12(p12, NULL, cert, key, &error), -1);
	assert_non_null(strstr(error, "wrong PKCS#12 password"));

	/* Without a password, given as NULL or "". */
	assert_int_equal(tls_cert_export_pkcs12(client_cert, client_key, NULL, p12, &error), 0);
	assert_int_equal(tls_cert_import_pkcs12(p12, "", cert, key, &error), 0);
	assert_int_equal(tls_cert_fingerprint(cert, fp, &error), 0);
	assert_string_equal(fp, client_fp);

	assert_int_equal(tls_cert_export_pkcs12(server_cert, client_key, "x", p12, &error), -1);
	assert_non_null(strstr(error, "does not match"));
	assert_int_equal(tls_cert_import_pkcs12(server_cert, "x", cert, key, &error), -1);
	assert_non_null(strstr(error, "not a PKCS#12 file"));

	if (have_openssl_cli()) {
		char *cli = path("cli.p12");
		char *cmd = mem_printf("openssl pkcs12 -export -in '%s' -inkey '%s' -out '%s' "
				       "-passout pass:fromcli",
				       client_cert, client_key, cli);
		assert_int_equal(system(cmd), 0);
		assert_int_equal(tls_cert_import_pkcs12(cli, "fromcli", cert, key, &error), 0);
		assert_int_equal(tls_cert_fingerprint(cert, fp, &error), 0);
		assert_string_equal(fp, client_fp);
		assert_int_equal(tls_cert_import_pkcs12(cli, "nope", cert, key, &error), -1);
		assert_non_null(strstr(error, "wrong PKCS#12 password"));
		mem_free(cmd);
		mem_free(cli);
	}
	mem_free(p12);
	mem_free(cert);
	mem_free(key);
}

static void test_fingerprint_normalize(void **state)
{
	const char *error;
	char out[TLS_FINGERPRINT_HEX_LEN + 1];
	char colons[3 * 32 + 1] = "";
	for (int i = 0, len = 0; i < 32; i++)
		len += snprintf(colons + len, sizeof(colons) - (size_t)len, "%s%02X", i ? ":" : "",
				i * 7);
	assert_int_equal(tls_fingerprint_normalize(colons, out, &error), 0);
	assert_int_equal(strncmp(out, "00070e151c", 10), 0);
	assert_int_equal(strlen(out), TLS_FINGERPRINT_HEX_LEN);
	char upper[TLS_FINGERPRINT_HEX_LEN + 1];
	for (size_t i = 0; i < TLS_FINGERPRINT_HEX_LEN; i++)
		upper[i] = (char)toupper((unsigned char)server_fp[i]);
	upper[TLS_FINGERPRINT_HEX_LEN] = '\0';
	assert_int_equal(tls_fingerprint_normalize(upper, out, &error), 0);
	assert_string_equal(out, server_fp);
	assert_int_equal(tls_fingerprint_normalize("AB:CD", out, &error), -1);
	assert_non_null(strstr(error, "64 hex digits"));
	assert_int_equal(tls_fingerprint_normalize("", out, &error), -1);
	char bad[TLS_FINGERPRINT_HEX_LEN + 1];
	memcpy(bad, server_fp, sizeof(bad));
	bad[10] = 'g';
	assert_int_equal(tls_fingerprint_normalize(bad, out, &error), -1);
	char longer[TLS_FINGERPRINT_HEX_LEN + 3];
	snprintf(longer, sizeof(longer), "%s00", server_fp);
	assert_int_equal(tls_fingerprint_normalize(longer, out, &error), -1);
}

/* ---- handshakes over loopback in one event loop ---- */

struct side {
	struct bufferevent *bev;
	bool connected, got_line, failed, eof;
	enum tls_failure failure;
	char *failure_text;
	char peer_fp[TLS_FINGERPRINT_HEX_LEN + 1];
	bool has_peer_fp;
};

struct handshake {
	struct event_base *base;
	struct tls_context *server_ctx;
	struct evconnlistener *listener;
	unsigned int port;
	struct side server, client;
	bool starttls; /* server side starts plain */
	unsigned int server_closed, stop_after_closed;
};

static void side_done_check(struct handshake *hs)
{
	bool server_done = hs->server.got_line || hs->server.failed || hs->server.eof;
	bool client_done = hs->client.got_line || hs->client.failed || hs->client.eof;
	if (server_done && client_done)
		event_base_loopbreak(hs->base);
}

static void side_record_failure(struct side *side, struct bufferevent *bev, short events)
{
	if ((events & BEV_EVENT_EOF) != 0) {
		side->eof = true;
		return;
	}
	const char *text;
	side->failed = true;
	side->failure = tls_bufferevent_failure(bev, &text);
	side->failure_text = mem_strdup(text);
}

static void server_read(struct bufferevent *bev, void *context);

static void server_event(struct bufferevent *bev, short events, void *context)
{
	struct handshake *hs = context;
	if ((events & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) != 0) {
		side_record_failure(&hs->server, bev, events);
		/* The probe test serves several connections from a thread. */
		if (hs->stop_after_closed > 0) {
			if (hs->server.bev == bev)
				hs->server.bev = NULL;
			bufferevent_free(bev);
			if (++hs->server_closed == hs->stop_after_closed)
				event_base_loopbreak(hs->base);
			return;
		}
		side_done_check(hs);
	}
}

static void server_read(struct bufferevent *bev, void *context)
{
	struct handshake *hs = context;
	char *line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF);
	if (line == NULL)
		return;
	if (hs->starttls && strcmp(line, "STARTTLS") == 0) {
		/* Answer in plain text, then everything after is TLS. */
		bufferevent_write(bev, "OK\n", 3);
		hs->server.bev = tls_bufferevent_starttls(hs->server_ctx, bev);
		bufferevent_setcb(hs->server.bev, server_read, NULL, server_event, hs);
		bufferevent_enable(hs->server.bev, EV_READ | EV_WRITE);
		hs->starttls = false;
		free(line);
		return;
	}
	assert_string_equal(line, "hello");
	free(line);
	hs->server.has_peer_fp = tls_bufferevent_peer_fingerprint(bev, hs->server.peer_fp);
	hs->server.got_line = true;
	bufferevent_write(bev, "world\n", 6);
	side_done_check(hs);
}

static void server_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *sa,
			  int socklen, void *context)
{
	struct handshake *hs = context;
	if (hs->starttls)
		hs->server.bev = bufferevent_socket_new(hs->base, fd, BEV_OPT_CLOSE_ON_FREE);
	else
		hs->server.bev = tls_bufferevent_accept(hs->server_ctx, hs->base, fd);
	bufferevent_setcb(hs->server.bev, server_read, NULL, server_event, hs);
	bufferevent_enable(hs->server.bev, EV_READ | EV_WRITE);
}

static void client_read(struct bufferevent *bev, void *context)
{
	struct handshake *hs = context;
	char *line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF);
	if (line == NULL)
		return;
	assert_string_equal(line, "world");
	free(line);
	hs->client.has_peer_fp = tls_bufferevent_peer_fingerprint(bev, hs->client.peer_fp);
	hs->client.got_line = true;
	side_done_check(hs);
}

static void client_event(struct bufferevent *bev, short events, void *context)
{
	struct handshake *hs = context;
	if ((events & BEV_EVENT_CONNECTED) != 0) {
		hs->client.connected = true;
		bufferevent_write(bev, "hello\n", 6);
	}
	if ((events & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) != 0) {
		side_record_failure(&hs->client, bev, events);
		side_done_check(hs);
	}
}

static struct sockaddr_in loopback(unsigned int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

/* A listening socket on 127.0.0.1 with a port the kernel picks. */
static int listen_loopback(unsigned int *port_r)
{
	const char *error;
	struct netaddr_listener l = {.host = "127.0.0.1", .port = 0};
	int fd = netaddr_listen(&l, &error);
	assert_true(fd >= 0);
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

static void handshake_init(struct handshake *hs, tls_peer_check_fn *check, void *check_ctx)
{
	const char *error;
	memset(hs, 0, sizeof(*hs));
	hs->base = event_base_new();
	hs->server_ctx =
		tls_context_create_server(server_cert, server_key, check, check_ctx, &error);
	assert_non_null(hs->server_ctx);
	int fd = listen_loopback(&hs->port);
	hs->listener =
		evconnlistener_new(hs->base, server_accept, hs, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	assert_non_null(hs->listener);
}

static void handshake_run(struct handshake *hs)
{
	struct timeval limit = {3, 0};
	event_base_loopexit(hs->base, &limit);
	assert_int_equal(event_base_dispatch(hs->base), 0);
}

static struct tls_context *handshake_connect(struct handshake *hs, const char *pin,
					     bool with_client_cert)
{
	const char *error;
	struct tls_context *cctx =
		tls_context_create_client(with_client_cert ? client_cert : NULL,
					  with_client_cert ? client_key : NULL, &error);
	assert_non_null(cctx);
	hs->client.bev = tls_bufferevent_connect(cctx, hs->base, "localhost", pin);
	bufferevent_setcb(hs->client.bev, client_read, NULL, client_event, hs);
	bufferevent_enable(hs->client.bev, EV_READ | EV_WRITE);
	struct sockaddr_in sin = loopback(hs->port);
	assert_int_equal(
		bufferevent_socket_connect(hs->client.bev, (struct sockaddr *)&sin, sizeof(sin)),
		0);
	return cctx;
}

static void handshake_free(struct handshake *hs, struct tls_context **cctx)
{
	if (hs->client.bev != NULL)
		bufferevent_free(hs->client.bev);
	if (hs->server.bev != NULL)
		bufferevent_free(hs->server.bev);
	evconnlistener_free(hs->listener);
	/* Contexts may go before their connections; they are reference counted. */
	tls_context_destroy(cctx);
	tls_context_destroy(&hs->server_ctx);
	event_base_free(hs->base);
	mem_free(hs->server.failure_text);
	mem_free(hs->client.failure_text);
}

struct check_state {
	const char *allowed;
	unsigned int calls;
};

static bool check_allow(const char *fingerprint, void *context)
{
	struct check_state *check = context;
	check->calls++;
	return strcmp(fingerprint, check->allowed) == 0;
}

static void test_mutual_tls(void **state)
{
	struct handshake hs;
	struct check_state check = {.allowed = client_fp};
	handshake_init(&hs, check_allow, &check);
	struct tls_context *cctx = handshake_connect(&hs, server_fp, true);
	handshake_run(&hs);
	assert_true(hs.server.got_line);
	assert_true(hs.client.got_line);
	assert_true(hs.server.has_peer_fp);
	assert_string_equal(hs.server.peer_fp, client_fp);
	assert_true(hs.client.has_peer_fp);
	assert_string_equal(hs.client.peer_fp, server_fp);
	assert_int_equal(check.calls, 1);
	handshake_free(&hs, &cctx);
}

static void test_pin_mismatch(void **state)
{
	struct handshake hs;
	handshake_init(&hs, NULL, NULL);
	struct tls_context *cctx = handshake_connect(&hs, client_fp, false);
	handshake_run(&hs);
	assert_false(hs.client.got_line);
	assert_false(hs.server.got_line);
	assert_true(hs.client.failed);
	assert_int_equal(hs.client.failure, TLS_FAILURE_PIN_MISMATCH);
	char *expected = mem_printf("certificate fingerprint mismatch: expected %s, got %s",
				    client_fp, server_fp);
	assert_string_equal(hs.client.failure_text, expected);
	mem_free(expected);
	/* Repeated calls give the same answer. */
	const char *text;
	assert_int_equal(tls_bufferevent_failure(hs.client.bev, &text), TLS_FAILURE_PIN_MISMATCH);
	handshake_free(&hs, &cctx);
}

static void test_peer_refused(void **state)
{
	struct handshake hs;
	struct check_state check = {.allowed = server_fp};
	handshake_init(&hs, check_allow, &check);
	struct tls_context *cctx = handshake_connect(&hs, server_fp, true);
	handshake_run(&hs);
	assert_false(hs.server.got_line);
	assert_false(hs.client.got_line);
	assert_true(hs.server.failed);
	assert_int_equal(hs.server.failure, TLS_FAILURE_PEER_REFUSED);
	assert_non_null(strstr(hs.server.failure_text, client_fp));
	assert_true(hs.client.failed);
	assert_true(hs.client.failure == TLS_FAILURE_REFUSED_BY_PEER ||
		    hs.client.failure == TLS_FAILURE_OTHER);
	if (hs.client.failure == TLS_FAILURE_REFUSED_BY_PEER)
		assert_non_null(strstr(hs.client.failure_text, "bad certificate"));
	assert_int_equal(check.calls, 1);
	handshake_free(&hs, &cctx);
}

static void test_no_client_cert_refused(void **state)
{
	struct handshake hs;
	struct check_state check = {.allowed = client_fp};
	handshake_init(&hs, check_allow, &check);
	struct tls_context *cctx = handshake_connect(&hs, server_fp, false);
	handshake_run(&hs);
	assert_false(hs.server.got_line);
	assert_true(hs.server.failed);
	assert_int_equal(hs.server.failure, TLS_FAILURE_OTHER);
	assert_true(hs.client.failed);
	assert_int_equal(check.calls, 0);
	handshake_free(&hs, &cctx);
}

static void test_reload(void **state)
{
	const char *error;
	struct handshake hs;
	handshake_init(&hs, NULL, NULL);
	assert_int_equal(tls_context_reload(hs.server_ctx, client_cert, client_key, &error), 0);
	assert_int_equal(tls_context_reload(hs.server_ctx, client_cert, server_key, &error), -1);
	assert_non_null(strstr(error, "does not match"));
	struct tls_context *cctx = handshake_connect(&hs, client_fp, false);
	handshake_run(&hs);
	assert_true(hs.client.got_line);
	assert_string_equal(hs.client.peer_fp, client_fp);
	handshake_free(&hs, &cctx);
}

/* STARTTLS: one plain line each way, then TLS on the same connection. */
static void starttls_client_read(struct bufferevent *bev, void *context);

static void starttls_client_event(struct bufferevent *bev, short events, void *context)
{
	struct handshake *hs = context;
	if ((events & BEV_EVENT_CONNECTED) != 0 && !hs->client.connected) {
		hs->client.connected = true;
		bufferevent_write(bev, "STARTTLS\n", 9);
	}
	if ((events & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) != 0) {
		hs->client.failed = true;
		event_base_loopbreak(hs->base);
	}
}

static SSL_CTX *starttls_client_ctx;

static void starttls_client_read(struct bufferevent *bev, void *context)
{
	struct handshake *hs = context;
	char *line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF);
	if (line == NULL)
		return;
	assert_string_equal(line, "OK");
	free(line);
	/* The client side of STARTTLS belongs to the protocol modules' peers;
	 * plain OpenSSL stands in for one here. */
	SSL *ssl = SSL_new(starttls_client_ctx);
	hs->client.bev = bufferevent_openssl_filter_new(
		hs->base, bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(hs->client.bev, client_read, NULL, client_event, hs);
	bufferevent_enable(hs->client.bev, EV_READ | EV_WRITE);
}

static void test_starttls(void **state)
{
	struct handshake hs;
	handshake_init(&hs, NULL, NULL);
	hs.starttls = true;
	starttls_client_ctx = SSL_CTX_new(TLS_client_method());
	struct bufferevent *plain = bufferevent_socket_new(hs.base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(plain, starttls_client_read, NULL, starttls_client_event, &hs);
	bufferevent_enable(plain, EV_READ | EV_WRITE);
	struct sockaddr_in sin = loopback(hs.port);
	assert_int_equal(bufferevent_socket_connect(plain, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	handshake_run(&hs);
	assert_true(hs.server.got_line);
	assert_true(hs.client.got_line);
	assert_true(hs.client.has_peer_fp);
	assert_string_equal(hs.client.peer_fp, server_fp);
	/* The TLS filter owns the plain bufferevent now. */
	struct tls_context *none = NULL;
	handshake_free(&hs, &none);
	SSL_CTX_free(starttls_client_ctx);
}

/* ---- probe (blocking), with the server's loop in a thread ---- */

struct probe_server {
	struct handshake hs;
	pthread_t thread;
};

static void *probe_server_run(void *context)
{
	struct probe_server *ps = context;
	event_base_dispatch(ps->hs.base);
	return NULL;
}

static void test_probe(void **state)
{
	const char *error;
	char fp[TLS_FINGERPRINT_HEX_LEN + 1];
	struct probe_server ps;
	handshake_init(&ps.hs, NULL, NULL);
	ps.hs.stop_after_closed = 2;
	struct timeval limit = {3, 0};
	event_base_loopexit(ps.hs.base, &limit);
	assert_int_equal(pthread_create(&ps.thread, NULL, probe_server_run, &ps), 0);
	assert_int_equal(tls_probe_fingerprint("127.0.0.1", ps.hs.port, 2, fp, &error), 0);
	assert_string_equal(fp, server_fp);
	assert_int_equal(tls_probe_fingerprint("localhost", ps.hs.port, 2, fp, &error), 0);
	assert_string_equal(fp, server_fp);
	assert_int_equal(pthread_join(ps.thread, NULL), 0);
	struct tls_context *none = NULL;
	handshake_free(&ps.hs, &none);

	/* A closed port. */
	unsigned int port;
	int fd = listen_loopback(&port);
	close(fd);
	assert_int_equal(tls_probe_fingerprint("127.0.0.1", port, 2, fp, &error), -1);
	assert_non_null(strstr(error, "Connection refused"));
	assert_non_null(strstr(error, "127.0.0.1:"));

	/* A port that accepts TCP but never speaks TLS. */
	fd = listen_loopback(&port);
	assert_int_equal(tls_probe_fingerprint("127.0.0.1", port, 1, fp, &error), -1);
	assert_non_null(strstr(error, "timed out"));
	close(fd);

	assert_int_equal(tls_probe_fingerprint("no-such-host.invalid", 443, 1, fp, &error), -1);
	assert_non_null(strstr(error, "cannot resolve"));
}

static int setup(void **state)
{
	const char *error;
	tmpdir = test_tmpdir_create("tls");
	server_cert = path("server.crt");
	server_key = path("server.key");
	client_cert = path("client.crt");
	client_key = path("client.key");
	other_key = path("other.key");
	if (tls_cert_generate("127.0.0.1", 30, server_cert, server_key, &error) < 0 ||
	    tls_cert_generate("client.example.test", 30, client_cert, client_key, &error) < 0 ||
	    tls_cert_fingerprint(server_cert, server_fp, &error) < 0 ||
	    tls_cert_fingerprint(client_cert, client_fp, &error) < 0) {
		fprintf(stderr, "setup: %s\n", error);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	int ret = test_tmpdir_remove(&tmpdir);
	mem_free(server_cert);
	mem_free(server_key);
	mem_free(client_cert);
	mem_free(client_key);
	mem_free(other_key);
	return ret == 0 ? 0 : -1;
}

int main(void)
{
	/* As every daemon does: a peer closing mid-write is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_and_info),
		cmocka_unit_test(test_generate_with_names),
		cmocka_unit_test(test_check_pair),
		cmocka_unit_test(test_import_pem),
		cmocka_unit_test(test_pkcs12),
		cmocka_unit_test(test_fingerprint_normalize),
		cmocka_unit_test(test_mutual_tls),
		cmocka_unit_test(test_pin_mismatch),
		cmocka_unit_test(test_peer_refused),
		cmocka_unit_test(test_no_client_cert_refused),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_probe),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
