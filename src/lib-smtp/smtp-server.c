#include "smtp-server.h"
#include "array.h"
#include "base64.h"
#include "mem.h"
#include "tstr.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Input waiting to be handled is kept below this: more stays in the socket. */
#define SMTP_SERVER_READ_HIGH (64 * 1024)
/* Answers not yet taken by the client: past this, its commands wait. */
#define SMTP_SERVER_WRITE_HIGH (64 * 1024)
#define SMTP_SERVER_CHUNK (16 * 1024)
#define SMTP_SERVER_ADDRESS_MAX 512
#define SMTP_SERVER_DRAIN_POLL_MS 20

enum smtp_server_state {
	SMTP_STATE_COMMAND,
	SMTP_STATE_AUTH_PLAIN, /* waiting for the PLAIN response line */
	SMTP_STATE_DATA,
	SMTP_STATE_WAIT, /* an answer (RCPT, end of DATA) is outstanding */
};

/* Where the end-of-data scanner is, at the last byte handed over. */
enum smtp_data_scan {
	SCAN_LINE_START,
	SCAN_IN_LINE,
	SCAN_CR,
	SCAN_DOT,    /* "." at a line's start */
	SCAN_DOT_CR, /* ".\r" at a line's start */
};

struct smtp_server_conn {
	struct bufferevent *bev;
	struct smtp_server_settings set;
	char *hostname;
	const struct smtp_server_callbacks *cb;
	void *ctx;
	enum smtp_server_state state;
	bool greeted, tls, in_transaction, closing, dead, data_failed, too_large;
	bool output_full; /* reading stopped until the client took our answers */
	short end_events; /* BEV_EVENT_EOF/ERROR that ended it, 0: ended by us */
	int end_errno;
	struct event *drain; /* closing: waits for the last answers to leave */
	unsigned int drain_waits;
	unsigned int busy;    /* processing input: defer freeing */
	unsigned int pending; /* answers still owed (WAIT) */
	bool pending_is_rcpt;
	char *pending_address;
	char *sender;
	char *auth_user;
	ARRAY(char *) recipients;
	enum smtp_data_scan scan;
	uint64_t data_size;
	unsigned char out[SMTP_SERVER_CHUNK];
	size_t out_len;
};

static void smtp_server_process(struct smtp_server_conn *conn);

static void smtp_server_send(struct smtp_server_conn *conn, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(conn->bev);
	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
}

static void smtp_server_clear_transaction(struct smtp_server_conn *conn)
{
	bool was = conn->in_transaction;
	for (size_t i = 0; i < conn->recipients.count; i++)
		mem_free(conn->recipients.items[i]);
	array_clear(&conn->recipients);
	mem_free(conn->sender);
	conn->sender = NULL;
	conn->in_transaction = false;
	conn->data_failed = conn->too_large = false;
	conn->data_size = 0;
	if (was && conn->cb->reset != NULL)
		conn->cb->reset(conn, conn->ctx);
}

static void smtp_server_free(struct smtp_server_conn *conn)
{
	smtp_server_clear_transaction(conn);
	if (conn->cb->closed != NULL)
		conn->cb->closed(conn, conn->ctx);
	if (conn->drain != NULL)
		event_free(conn->drain);
	bufferevent_free(conn->bev);
	array_free(&conn->recipients);
	mem_free(conn->pending_address);
	mem_free(conn->auth_user);
	mem_free(conn->hostname);
	mem_free(conn);
}

void smtp_server_conn_close(struct smtp_server_conn *conn)
{
	if (conn->dead)
		return;
	conn->dead = true;
	if (conn->busy == 0)
		smtp_server_free(conn);
}

/* Under STARTTLS the bufferevent is a filter: its output drained means
 * encrypted into the socket's bufferevent below, not sent. Freeing it then
 * threw away the last answers: Postfix pipelines QUIT after the end of
 * DATA, so the 250 for the message went with them and it was sent again. */
static bool smtp_server_all_sent(struct smtp_server_conn *conn)
{
	struct bufferevent *under = bufferevent_get_underlying(conn->bev);
	return evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0 &&
	       (under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0);
}

static void smtp_server_close_when_sent(evutil_socket_t fd, short what, void *ctx);

static void smtp_server_drain_later(struct smtp_server_conn *conn)
{
	if (conn->drain == NULL)
		conn->drain = evtimer_new(bufferevent_get_base(conn->bev),
					  smtp_server_close_when_sent, conn);
	if (!evtimer_pending(conn->drain, NULL)) {
		struct timeval tv = {0, SMTP_SERVER_DRAIN_POLL_MS * 1000};
		evtimer_add(conn->drain, &tv);
	}
}

static void smtp_server_close_when_sent(evutil_socket_t fd, short what, void *ctx)
{
	struct smtp_server_conn *conn = ctx;
	/* a client that reads nothing more is not waited for past the timeout */
	if (smtp_server_all_sent(conn) ||
	    ++conn->drain_waits > conn->set.timeout_secs * (1000 / SMTP_SERVER_DRAIN_POLL_MS))
		smtp_server_conn_close(conn);
	else
		smtp_server_drain_later(conn);
}

static void smtp_server_written(struct bufferevent *bev, void *ctx)
{
	struct smtp_server_conn *conn = ctx;
	if (conn->closing) {
		if (smtp_server_all_sent(conn))
			smtp_server_conn_close(conn);
	} else if (conn->output_full) {
		conn->output_full = false;
		smtp_server_process(conn);
	}
}

void smtp_server_reply_close(struct smtp_server_conn *conn, const char *line)
{
	conn->closing = true;
	smtp_server_send(conn, line);
	bufferevent_disable(conn->bev, EV_READ);
	/* the write callback fires once the line is out of this bufferevent
	 * (low watermark 0), which a filter's may have done already: the
	 * timer looks again until it left the socket's too */
	bufferevent_enable(conn->bev, EV_WRITE);
	smtp_server_drain_later(conn);
}

static void smtp_server_event(struct bufferevent *bev, short what, void *ctx)
{
	struct smtp_server_conn *conn = ctx;
	if ((what & BEV_EVENT_CONNECTED) != 0)
		return; /* the STARTTLS handshake is done: go on */
	if ((what & BEV_EVENT_TIMEOUT) != 0 && !conn->closing) {
		bufferevent_set_timeouts(conn->bev, NULL, NULL);
		smtp_server_reply_close(conn, "421 4.4.2 Idle too long, closing");
		return;
	}
	if (!conn->closing && !conn->dead) {
		conn->end_events = what;
		conn->end_errno = EVUTIL_SOCKET_ERROR();
	}
	smtp_server_conn_close(conn);
}

static void smtp_server_readable(struct bufferevent *bev, void *ctx)
{
	smtp_server_process(ctx);
}

static void smtp_server_setup_bev(struct smtp_server_conn *conn)
{
	struct timeval tv = {.tv_sec = conn->set.timeout_secs};
	bufferevent_setcb(conn->bev, smtp_server_readable, smtp_server_written, smtp_server_event,
			  conn);
	bufferevent_setwatermark(conn->bev, EV_READ, 0, SMTP_SERVER_READ_HIGH);
	bufferevent_set_timeouts(conn->bev, &tv, &tv);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
}

struct smtp_server_conn *smtp_server_conn_create(struct bufferevent *bev,
						 const struct smtp_server_settings *set,
						 const struct smtp_server_callbacks *callbacks,
						 void *ctx)
{
	struct smtp_server_conn *conn = mem_new(struct smtp_server_conn);
	conn->bev = bev;
	conn->set = *set;
	conn->hostname = mem_strdup(set->hostname != NULL ? set->hostname : "localhost");
	conn->set.hostname = conn->hostname;
	if (conn->set.timeout_secs == 0)
		conn->set.timeout_secs = 300;
	conn->cb = callbacks;
	conn->ctx = ctx;
	smtp_server_setup_bev(conn);
	smtp_server_send(conn, tstr_printf("220 %s %s Coffer journal receiver", conn->hostname,
					   set->lmtp ? "LMTP" : "ESMTP"));
	return conn;
}

size_t smtp_server_recipient_count(const struct smtp_server_conn *conn)
{
	return conn->recipients.count;
}

const char *smtp_server_recipient(const struct smtp_server_conn *conn, size_t i)
{
	return conn->recipients.items[i];
}

const char *smtp_server_sender(const struct smtp_server_conn *conn)
{
	return conn->sender != NULL ? conn->sender : "";
}

const char *smtp_server_auth_user(const struct smtp_server_conn *conn)
{
	return conn->auth_user;
}

bool smtp_server_is_tls(const struct smtp_server_conn *conn)
{
	return conn->tls;
}

struct bufferevent *smtp_server_bufferevent(const struct smtp_server_conn *conn)
{
	return conn->bev;
}

static const char *smtp_server_state_name(const struct smtp_server_conn *conn)
{
	switch (conn->state) {
	case SMTP_STATE_COMMAND:
		return conn->in_transaction ? "in a transaction" : "between transactions";
	case SMTP_STATE_AUTH_PLAIN:
		return "during AUTH";
	case SMTP_STATE_DATA:
		return "during DATA";
	case SMTP_STATE_WAIT:
		return "while an answer was owed";
	}
	return "";
}

const char *smtp_server_end_reason(const struct smtp_server_conn *conn)
{
	if (conn->end_events == 0)
		return NULL;
	if ((conn->end_events & BEV_EVENT_ERROR) != 0 && conn->end_errno != 0)
		return tstr_printf("connection error (%s) %s",
				   evutil_socket_error_to_string(conn->end_errno),
				   smtp_server_state_name(conn));
	if ((conn->end_events & BEV_EVENT_ERROR) != 0)
		return tstr_printf("connection error %s", smtp_server_state_name(conn));
	return tstr_printf("closed by the client %s", smtp_server_state_name(conn));
}

void smtp_server_reply(struct smtp_server_conn *conn, const char *line)
{
	if (conn->dead || conn->state != SMTP_STATE_WAIT || conn->pending == 0)
		return;
	smtp_server_send(conn, line);
	if (conn->pending_is_rcpt && line[0] == '2') {
		array_append(&conn->recipients, conn->pending_address);
		conn->pending_address = NULL;
	}
	if (--conn->pending > 0)
		return;
	mem_free(conn->pending_address);
	conn->pending_address = NULL;
	conn->state = SMTP_STATE_COMMAND;
	if (!conn->pending_is_rcpt)
		smtp_server_clear_transaction(conn);
	if (conn->busy == 0) {
		/* answered later, from the owner: go on with what waits */
		bufferevent_enable(conn->bev, EV_READ);
		smtp_server_process(conn);
	}
}

/* ---- commands ---- */

/* "<address> params" after "FROM:" / "TO:": the address (may be ""), or
 * NULL if malformed. *params_r points after it. */
static char *smtp_server_path(const char *arg, const char **params_r)
{
	while (*arg == ' ')
		arg++;
	if (*arg != '<')
		return NULL;
	const char *end = strchr(arg, '>');
	if (end == NULL || (size_t)(end - arg - 1) > SMTP_SERVER_ADDRESS_MAX)
		return NULL;
	for (const char *p = arg + 1; p < end; p++) {
		if ((unsigned char)*p <= ' ' || *p == '<')
			return NULL;
	}
	*params_r = end + 1;
	return mem_strndup(arg + 1, (size_t)(end - arg - 1));
}

/* SIZE=n among MAIL's parameters; 0 if absent. */
static uint64_t smtp_server_size_param(const char *params)
{
	for (const char *p = params; (p = strchr(p, ' ')) != NULL;) {
		p++;
		if (strncasecmp(p, "SIZE=", 5) == 0)
			return strtoull(p + 5, NULL, 10);
	}
	return 0;
}

static void smtp_server_ehlo(struct smtp_server_conn *conn, const char *arg, bool extended)
{
	smtp_server_clear_transaction(conn);
	conn->greeted = true;
	if (!extended) {
		smtp_server_send(conn, tstr_printf("250 %s", conn->hostname));
		return;
	}
	smtp_server_send(conn, tstr_printf("250-%s", conn->hostname));
	smtp_server_send(conn, "250-PIPELINING");
	smtp_server_send(
		conn, tstr_printf("250-SIZE %llu", (unsigned long long)conn->set.max_message_size));
	smtp_server_send(conn, "250-8BITMIME");
	smtp_server_send(conn, "250-ENHANCEDSTATUSCODES");
	if (conn->set.starttls && !conn->tls)
		smtp_server_send(conn, "250-STARTTLS");
	if (conn->set.auth && conn->auth_user == NULL)
		smtp_server_send(conn, "250-AUTH PLAIN");
	smtp_server_send(conn, "250 SMTPUTF8");
}

static void smtp_server_mail(struct smtp_server_conn *conn, const char *arg)
{
	const char *params = "";
	if (!conn->greeted) {
		smtp_server_send(conn, conn->set.lmtp ? "503 5.5.1 LHLO first"
						      : "503 5.5.1 EHLO or HELO first");
		return;
	}
	if (conn->set.auth_required && conn->auth_user == NULL) {
		smtp_server_send(conn, "530 5.7.0 Authentication required");
		return;
	}
	if (conn->in_transaction) {
		smtp_server_send(conn, "503 5.5.1 Nested MAIL command");
		return;
	}
	if (strncasecmp(arg, "FROM:", 5) != 0) {
		smtp_server_send(conn, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	char *from = smtp_server_path(arg + 5, &params);
	if (from == NULL) {
		smtp_server_send(conn, "501 5.1.7 Bad sender address syntax");
		return;
	}
	uint64_t size = smtp_server_size_param(params);
	if (conn->set.max_message_size > 0 && size > conn->set.max_message_size) {
		mem_free(from);
		smtp_server_send(conn, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	conn->sender = from;
	conn->in_transaction = true;
	smtp_server_send(conn, "250 2.1.0 Ok");
}

static void smtp_server_rcpt(struct smtp_server_conn *conn, const char *arg)
{
	const char *params = "";
	if (!conn->in_transaction) {
		smtp_server_send(conn, "503 5.5.1 MAIL first");
		return;
	}
	if (strncasecmp(arg, "TO:", 3) != 0) {
		smtp_server_send(conn, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	char *to = smtp_server_path(arg + 3, &params);
	if (to == NULL || to[0] == '\0') {
		mem_free(to);
		smtp_server_send(conn, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (conn->set.max_recipients > 0 && conn->recipients.count >= conn->set.max_recipients) {
		mem_free(to);
		smtp_server_send(conn, "452 4.5.3 Too many recipients");
		return;
	}
	conn->state = SMTP_STATE_WAIT;
	conn->pending = 1;
	conn->pending_is_rcpt = true;
	conn->pending_address = to;
	conn->cb->rcpt(conn, to, conn->ctx);
}

static void smtp_server_data(struct smtp_server_conn *conn)
{
	const char *reply = "451 4.3.0 Cannot take the message now";
	if (!conn->in_transaction || conn->recipients.count == 0) {
		smtp_server_send(conn, "503 5.5.1 No valid recipients");
		return;
	}
	if (conn->cb->data_begin(conn, &reply, conn->ctx) < 0) {
		smtp_server_send(conn, reply);
		smtp_server_clear_transaction(conn);
		return;
	}
	conn->state = SMTP_STATE_DATA;
	conn->scan = SCAN_LINE_START;
	conn->data_size = 0;
	conn->out_len = 0;
	smtp_server_send(conn, "354 End data with <CR><LF>.<CR><LF>");
}

static void smtp_server_auth_check(struct smtp_server_conn *conn, const char *b64)
{
	size_t len;
	unsigned char *raw = base64_decode(b64, strlen(b64), &len);
	conn->state = SMTP_STATE_COMMAND;
	if (raw == NULL) {
		smtp_server_send(conn, "501 5.5.2 Cannot decode the response");
		return;
	}
	/* authzid \0 authcid \0 password */
	const char *parts[3] = {NULL, NULL, NULL};
	size_t n = 0, start = 0;
	for (size_t i = 0; i <= len && n < 3; i++) {
		if (i == len || raw[i] == '\0') {
			parts[n++] = (const char *)raw + start;
			start = i + 1;
		}
	}
	/* a copy with a terminator after the last part (the NULs stay) */
	char *buf = mem_alloc(len + 1);
	memcpy(buf, raw, len);
	buf[len] = '\0';
	bool ok = false;
	if (n == 3 && memchr(raw, '\0', len) != NULL) {
		const char *user = buf + (parts[1] - (const char *)raw);
		const char *pass = buf + (parts[2] - (const char *)raw);
		const char *authz = buf;
		ok = (authz[0] == '\0' || strcmp(authz, user) == 0) &&
		     conn->cb->auth(conn, user, pass, conn->ctx);
		if (ok)
			conn->auth_user = mem_strdup(user);
	}
	explicit_bzero(buf, len);
	explicit_bzero(raw, len);
	mem_free(buf);
	mem_free(raw);
	smtp_server_send(conn, ok ? "235 2.7.0 Authentication successful"
				  : "535 5.7.8 Authentication credentials invalid");
}

static void smtp_server_auth(struct smtp_server_conn *conn, const char *arg)
{
	if (!conn->set.auth || conn->cb->auth == NULL) {
		smtp_server_send(conn, "502 5.5.1 AUTH not available");
	} else if (conn->auth_user != NULL || conn->in_transaction) {
		smtp_server_send(conn, "503 5.5.1 Already authenticated or in a transaction");
	} else if (strncasecmp(arg, "PLAIN", 5) != 0 || (arg[5] != '\0' && arg[5] != ' ')) {
		smtp_server_send(conn, "504 5.5.4 Only AUTH PLAIN is offered");
	} else if (arg[5] == ' ') {
		smtp_server_auth_check(conn, arg + 6);
	} else {
		conn->state = SMTP_STATE_AUTH_PLAIN;
		smtp_server_send(conn, "334 ");
	}
}

static void smtp_server_starttls(struct smtp_server_conn *conn)
{
	if (!conn->set.starttls || conn->tls || conn->cb->starttls == NULL) {
		smtp_server_send(conn, "502 5.5.1 STARTTLS not available");
		return;
	}
	/* what the client sent after STARTTLS in clear text must not count as
	 * sent under TLS (CVE-2011-0411) */
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	smtp_server_send(conn, "220 2.0.0 Ready to start TLS");
	struct bufferevent *tls = conn->cb->starttls(conn, conn->bev, conn->ctx);
	if (tls == NULL) {
		smtp_server_reply_close(conn, "454 4.7.0 TLS not available");
		return;
	}
	conn->bev = tls;
	conn->tls = true;
	conn->greeted = false;
	smtp_server_clear_transaction(conn);
	smtp_server_setup_bev(conn);
}

static void smtp_server_command(struct smtp_server_conn *conn, char *line)
{
	char *arg = strchr(line, ' ');
	if (arg != NULL)
		*arg++ = '\0';
	else
		arg = line + strlen(line);
	const char *verb = line;
	bool lmtp = conn->set.lmtp;
	if (strcasecmp(verb, lmtp ? "LHLO" : "EHLO") == 0)
		smtp_server_ehlo(conn, arg, true);
	else if (!lmtp && strcasecmp(verb, "HELO") == 0)
		smtp_server_ehlo(conn, arg, false);
	else if (strcasecmp(verb, "MAIL") == 0)
		smtp_server_mail(conn, arg);
	else if (strcasecmp(verb, "RCPT") == 0)
		smtp_server_rcpt(conn, arg);
	else if (strcasecmp(verb, "DATA") == 0)
		smtp_server_data(conn);
	else if (strcasecmp(verb, "RSET") == 0) {
		smtp_server_clear_transaction(conn);
		smtp_server_send(conn, "250 2.0.0 Ok");
	} else if (strcasecmp(verb, "NOOP") == 0)
		smtp_server_send(conn, "250 2.0.0 Ok");
	else if (strcasecmp(verb, "VRFY") == 0)
		smtp_server_send(conn, "252 2.5.2 Cannot verify");
	else if (strcasecmp(verb, "QUIT") == 0)
		smtp_server_reply_close(conn, "221 2.0.0 Bye");
	else if (strcasecmp(verb, "STARTTLS") == 0)
		smtp_server_starttls(conn);
	else if (strcasecmp(verb, "AUTH") == 0)
		smtp_server_auth(conn, arg);
	else
		smtp_server_send(conn, "502 5.5.2 Command not recognized");
}

/* ---- message data ---- */

static void smtp_server_emit_flush(struct smtp_server_conn *conn)
{
	if (conn->out_len > 0 && !conn->data_failed && !conn->too_large &&
	    conn->cb->data(conn, conn->out, conn->out_len, conn->ctx) < 0)
		conn->data_failed = true;
	conn->out_len = 0;
}

static void smtp_server_emit(struct smtp_server_conn *conn, const char *bytes, size_t len)
{
	conn->data_size += len;
	if (conn->set.max_message_size > 0 && conn->data_size > conn->set.max_message_size)
		conn->too_large = true;
	for (size_t i = 0; i < len; i++) {
		if (conn->out_len == sizeof(conn->out))
			smtp_server_emit_flush(conn);
		conn->out[conn->out_len++] = (unsigned char)bytes[i];
	}
}

static void smtp_server_data_done(struct smtp_server_conn *conn)
{
	smtp_server_emit_flush(conn);
	if (conn->too_large) {
		conn->state = SMTP_STATE_COMMAND;
		smtp_server_send(conn, "552 5.3.4 Message size exceeds fixed limit");
		smtp_server_clear_transaction(conn);
		return;
	}
	conn->state = SMTP_STATE_WAIT;
	conn->pending_is_rcpt = false;
	conn->pending = conn->set.lmtp ? (unsigned int)conn->recipients.count : 1;
	conn->cb->data_end(conn, conn->ctx);
}

/* Feed one byte through the end-of-data scanner; true at the end. */
static bool smtp_server_scan(struct smtp_server_conn *conn, char c)
{
	switch (conn->scan) {
	case SCAN_LINE_START:
		if (c == '.') {
			conn->scan = SCAN_DOT;
			return false;
		}
		break;
	case SCAN_DOT:
		if (c == '\r') {
			conn->scan = SCAN_DOT_CR;
			return false;
		}
		/* a stuffed dot: drop it, keep the rest of the line */
		break;
	case SCAN_DOT_CR:
		if (c == '\n')
			return true;
		smtp_server_emit(conn, "\r", 1);
		break;
	case SCAN_CR:
		if (c == '\n') {
			smtp_server_emit(conn, "\n", 1);
			conn->scan = SCAN_LINE_START;
			return false;
		}
		break;
	case SCAN_IN_LINE:
		break;
	}
	smtp_server_emit(conn, &c, 1);
	conn->scan = c == '\r' ? SCAN_CR : SCAN_IN_LINE;
	return false;
}

/* Consume message bytes; true once the terminating dot line was read. */
static bool smtp_server_data_input(struct smtp_server_conn *conn, struct evbuffer *in)
{
	char buf[SMTP_SERVER_CHUNK];
	int n;
	while ((n = evbuffer_copyout(in, buf, sizeof(buf))) > 0) {
		for (int i = 0; i < n; i++) {
			if (smtp_server_scan(conn, buf[i])) {
				evbuffer_drain(in, (size_t)i + 1);
				return true;
			}
		}
		evbuffer_drain(in, (size_t)n);
	}
	return false;
}

static void smtp_server_process(struct smtp_server_conn *conn)
{
	conn->busy++;
	while (!conn->dead && !conn->closing) {
		/* looked up each time: STARTTLS replaces the bufferevent */
		struct evbuffer *in = bufferevent_get_input(conn->bev);
		if (evbuffer_get_length(bufferevent_get_output(conn->bev)) >
		    SMTP_SERVER_WRITE_HIGH) {
			/* a client that sends without reading: wait until it reads */
			conn->output_full = true;
			bufferevent_disable(conn->bev, EV_READ);
			break;
		}
		if (conn->state == SMTP_STATE_WAIT) {
			/* pipelined commands wait in the socket until answered */
			bufferevent_disable(conn->bev, EV_READ);
			break;
		}
		if (conn->state == SMTP_STATE_DATA) {
			if (!smtp_server_data_input(conn, in))
				break;
			smtp_server_data_done(conn);
			continue;
		}
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > SMTP_SERVER_LINE_MAX)
				smtp_server_reply_close(conn, "500 5.5.2 Line too long");
			break;
		}
		if (len > SMTP_SERVER_LINE_MAX || strlen(line) != len) {
			free(line);
			smtp_server_reply_close(conn, "500 5.5.2 Line too long or not text");
			break;
		}
		if (conn->state == SMTP_STATE_AUTH_PLAIN) {
			if (strcmp(line, "*") == 0) {
				conn->state = SMTP_STATE_COMMAND;
				smtp_server_send(conn, "501 5.7.0 Authentication cancelled");
			} else {
				smtp_server_auth_check(conn, line);
			}
			explicit_bzero(line, len);
		} else {
			smtp_server_command(conn, line);
		}
		free(line);
	}
	if (conn->state != SMTP_STATE_WAIT && !conn->dead && !conn->closing && !conn->output_full)
		bufferevent_enable(conn->bev, EV_READ);
	conn->busy--;
	if (conn->dead && conn->busy == 0)
		smtp_server_free(conn);
}
