/* smtp-server against a client that writes byte by byte (every state of
 * the end-of-data scanner meets a read boundary) and all at once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mem.h"
#include "smtp-server.h"
#include "str.h"

struct peer {
	struct str *data;
	int ends;
	bool closed;
	char end_reason[128];
};

static void peer_rcpt(struct smtp_server_conn *conn, const char *address, void *ctx)
{
	smtp_server_reply(conn, strncmp(address, "no@", 3) == 0 ? "550 5.1.1 no" : "250 2.1.5 Ok");
}

static int peer_data_begin(struct smtp_server_conn *conn, const char **reply_r, void *ctx)
{
	return 0;
}

static int peer_data(struct smtp_server_conn *conn, const void *bytes, size_t len, void *ctx)
{
	struct peer *p = ctx;
	str_append_n(p->data, bytes, len);
	return 0;
}

static void peer_data_end(struct smtp_server_conn *conn, void *ctx)
{
	struct peer *p = ctx;
	p->ends++;
	for (size_t i = 0; i < smtp_server_recipient_count(conn); i++)
		smtp_server_reply(conn, "250 2.0.0 Archived");
}

static void peer_reset(struct smtp_server_conn *conn, void *ctx)
{
}

static void peer_closed(struct smtp_server_conn *conn, void *ctx)
{
	struct peer *p = ctx;
	const char *reason = smtp_server_end_reason(conn);
	p->closed = true;
	snprintf(p->end_reason, sizeof(p->end_reason), "%s", reason != NULL ? reason : "");
}

static const struct smtp_server_callbacks peer_callbacks = {
	.rcpt = peer_rcpt,
	.data_begin = peer_data_begin,
	.data = peer_data,
	.data_end = peer_data_end,
	.reset = peer_reset,
	.closed = peer_closed,
};

/* Run `script` through a server; what it answered into `answers`. */
static void run(bool lmtp, uint64_t max_size, const char *script, size_t len, size_t piece,
		struct peer *p, struct str *answers)
{
	int fds[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	struct event_base *base = event_base_new();
	struct bufferevent *bev = bufferevent_socket_new(base, fds[0], BEV_OPT_CLOSE_ON_FREE);
	const struct smtp_server_settings set = {.lmtp = lmtp,
						 .hostname = "test",
						 .max_message_size = max_size,
						 .max_recipients = 3};
	struct smtp_server_conn *conn = smtp_server_conn_create(bev, &set, &peer_callbacks, p);
	for (size_t off = 0; off < len; off += piece) {
		size_t n = len - off < piece ? len - off : piece;
		assert_int_equal(write(fds[1], script + off, n), (ssize_t)n);
		for (int i = 0; i < 3; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	for (int i = 0; i < 20 && !p->closed; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	shutdown(fds[1], SHUT_WR);
	char buf[4096];
	ssize_t n;
	while (!p->closed && event_base_loop(base, EVLOOP_ONCE) == 0) {
	}
	while ((n = read(fds[1], buf, sizeof(buf))) > 0)
		str_append_n(answers, buf, (size_t)n);
	if (!p->closed)
		smtp_server_conn_close(conn);
	close(fds[1]);
	event_base_free(base);
}

static const char session[] = "LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<no@d>\r\n"
			      "RCPT TO:<e@d>\r\nDATA\r\n"
			      "Subject: dots\r\n\r\n..stuffed\r\n...two\r\n..\r\n"
			      "bare\nlf\n.\nnot an end\r\nlone\rcr\r\n.\rx\r\n"
			      "\r\n.\r\nQUIT\r\n";
static const char message[] = "Subject: dots\r\n\r\n.stuffed\r\n..two\r\n.\r\n"
			      "bare\nlf\n.\nnot an end\r\nlone\rcr\r\n\rx\r\n\r\n";

static void test_dot_unstuffing(void **state)
{
	size_t pieces[] = {1, 2, 3, 7, sizeof(session)};
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		struct peer p = {.data = str_create(0)};
		struct str *answers = str_create(0);
		run(true, 0, session, sizeof(session) - 1, pieces[i], &p, answers);
		assert_int_equal(p.ends, 1);
		assert_int_equal(str_len(p.data), sizeof(message) - 1);
		assert_memory_equal(str_c(p.data), message, sizeof(message) - 1);
		/* LMTP: one answer per accepted recipient (two), after 550 for one */
		const char *a = str_c(answers);
		assert_non_null(strstr(a, "550 5.1.1 no\r\n"));
		const char *first = strstr(a, "250 2.0.0 Archived\r\n");
		assert_non_null(first);
		assert_non_null(strstr(first + 1, "250 2.0.0 Archived\r\n"));
		assert_non_null(strstr(a, "221 2.0.0 Bye"));
		assert_string_equal(p.end_reason, ""); /* QUIT: ended as it should */
		str_destroy(&answers);
		str_destroy(&p.data);
	}
}

static void test_limits(void **state)
{
	/* size: 552 at the end, the transaction gone */
	static const char big[] = "EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
				  "0123456789012345678901234567890123456789\r\n.\r\n"
				  "RCPT TO:<c@d>\r\nQUIT\r\n";
	struct peer p = {.data = str_create(0)};
	struct str *answers = str_create(0);
	run(false, 20, big, sizeof(big) - 1, 5, &p, answers);
	assert_int_equal(p.ends, 0);
	assert_non_null(strstr(str_c(answers), "552 5.3.4"));
	assert_non_null(strstr(str_c(answers), "503 5.5.1 MAIL first"));
	str_destroy(&answers);
	str_destroy(&p.data);

	/* recipients: the fourth is 452; an overlong line: 500 and closed */
	struct str *line = str_create(0);
	str_append(line, "EHLO x\r\nMAIL FROM:<>\r\n");
	for (int i = 0; i < 4; i++)
		str_append(line, "RCPT TO:<c@d>\r\n");
	for (int i = 0; i < SMTP_SERVER_LINE_MAX + 10; i++)
		str_append_c(line, 'x');
	p = (struct peer){.data = str_create(0)};
	answers = str_create(0);
	run(false, 0, str_c(line), str_len(line), 64, &p, answers);
	assert_non_null(strstr(str_c(answers), "452 4.5.3"));
	assert_non_null(strstr(str_c(answers), "500 5.5.2"));
	assert_true(p.closed);
	str_destroy(&answers);
	str_destroy(&p.data);
	str_destroy(&line);
}

/* A client gone in the middle says where: a message that was half sent
 * (or sent, and not yet answered) is the sender's to send again. */
static void test_end_reason(void **state)
{
	static const char cut[] = "EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
				  "Subject: half\r\n";
	struct peer p = {.data = str_create(0)};
	struct str *answers = str_create(0);
	run(false, 0, cut, sizeof(cut) - 1, sizeof(cut), &p, answers);
	assert_true(p.closed);
	assert_string_equal(p.end_reason, "closed by the client during DATA");
	str_destroy(&answers);
	str_destroy(&p.data);

	static const char idle[] = "EHLO x\r\n";
	p = (struct peer){.data = str_create(0)};
	answers = str_create(0);
	run(false, 0, idle, sizeof(idle) - 1, sizeof(idle), &p, answers);
	assert_string_equal(p.end_reason, "closed by the client between transactions");
	str_destroy(&answers);
	str_destroy(&p.data);
}

static enum bufferevent_filter_result pass_through(struct evbuffer *src, struct evbuffer *dst,
						   ev_ssize_t limit,
						   enum bufferevent_flush_mode mode, void *ctx)
{
	evbuffer_add_buffer(dst, src);
	return BEV_OK;
}

static void expire(evutil_socket_t fd, short what, void *ctx)
{
	*(bool *)ctx = true;
}

/* Under STARTTLS the connection's bufferevent is a filter over the
 * socket's: the answers before a close (here the 221 of a pipelined QUIT,
 * with Postfix the 250 for a message too) must reach the socket before it
 * is closed, not only the filter's own output. */
static void test_last_answers_through_a_filter(void **state)
{
	int fds[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	struct event_base *base = event_base_new();
	struct bufferevent *sock = bufferevent_socket_new(base, fds[0], BEV_OPT_CLOSE_ON_FREE);
	struct bufferevent *filter = bufferevent_filter_new(sock, pass_through, pass_through,
							    BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
	const struct smtp_server_settings set = {.hostname = "test", .max_recipients = 3};
	struct peer p = {.data = str_create(0)};
	(void)smtp_server_conn_create(filter, &set, &peer_callbacks, &p);
	static const char script[] = "EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
				     "Subject: s\r\n\r\nb\r\n.\r\nQUIT\r\n";
	assert_int_equal(write(fds[1], script, sizeof(script) - 1), (ssize_t)(sizeof(script) - 1));
	/* a server that never closes fails the test in 5 s, not at its 300 s
	 * idle timeout */
	bool expired = false;
	struct event *limit = evtimer_new(base, expire, &expired);
	struct timeval tv = {5, 0};
	evtimer_add(limit, &tv);
	while (!p.closed && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(limit);
	assert_true(p.closed);
	/* what reached the socket before it closed (no wait for more) */
	assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
	struct str *answers = str_create(0);
	char buf[4096];
	ssize_t n;
	while ((n = read(fds[1], buf, sizeof(buf))) > 0)
		str_append_n(answers, buf, (size_t)n);
	assert_non_null(strstr(str_c(answers), "250 2.0.0 Archived\r\n221 2.0.0 Bye\r\n"));
	str_destroy(&answers);
	str_destroy(&p.data);
	close(fds[1]);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_end_reason),
		cmocka_unit_test(test_last_answers_through_a_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
