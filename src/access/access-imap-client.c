/* access-imap-client: one IMAP session: I/O, the command loop, and the
 * commands that need no mailbox (CAPABILITY, ID, LOGIN, AUTHENTICATE, ...). */
#include "access-imap-private.h"
#include "auth-throttle.h"
#include "base64.h"
#include "imap-arg.h"
#include "imap-msgpart.h"
#include "imap-parser.h"
#include "imap-quote.h"
#include "imap-uidmap.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "str.h"
#include "tls.h"
#include "tstr.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define IMAP_CAPS_BASE "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT CHILDREN"

static void imap_client_input(struct imap_client *client);
static void imap_client_disconnect(struct imap_client *client, const char *reason);
static void imap_client_setup_bev(struct imap_client *client);

/* ---- references and output ---- */

void imap_client_ref(struct imap_client *client)
{
	client->refs++;
}

static void imap_client_free(struct imap_client *client)
{
	imap_fetch_free(&client->fetch);
	imap_search_free(&client->search);
	imap_parser_destroy(&client->parser);
	imap_uidmap_destroy(&client->uids);
	if (client->timeout != NULL)
		event_free(client->timeout);
	if (client->resume != NULL)
		event_free(client->resume);
	if (client->idle_check != NULL)
		event_free(client->idle_check);
	event_free(client->flush);
	evbuffer_free(client->pending);
	mem_free(client->tag);
	mem_free(client->command);
	mem_free(client->instance_id);
	mem_free(client->user_name);
	mem_free(client->archive_name);
	mem_free(client->mailbox);
	mem_free(client->owner);
	mem_free(client->path);
	mem_free(client);
}

bool imap_client_unref(struct imap_client *client)
{
	if (--client->refs > 0)
		return !client->disconnected;
	imap_client_free(client);
	return false;
}

/* Output gathers in `pending` and moves to the bufferevent once per pass of
 * the event loop. libevent's TLS bufferevent encrypts and writes from inside
 * every add to its output: a FETCH answer's pieces (the line, the literal,
 * the closing parenthesis) each became a TLS record and a write(). One move
 * per pass makes full records and few system calls. */
static struct evbuffer *imap_client_out(struct imap_client *client)
{
	if (evbuffer_get_length(client->pending) == 0)
		event_active(client->flush, EV_TIMEOUT, 0);
	return client->pending;
}

static void imap_client_flush(struct imap_client *client)
{
	if (!client->disconnected && evbuffer_get_length(client->pending) > 0)
		evbuffer_add_buffer(bufferevent_get_output(client->bev), client->pending);
}

static void imap_client_flush_cb(evutil_socket_t fd, short events, void *ctx)
{
	imap_client_flush(ctx);
}

void imap_client_send_raw(struct imap_client *client, const void *data, size_t len)
{
	if (!client->disconnected)
		evbuffer_add(imap_client_out(client), data, len);
}

void imap_client_send_canonical(struct imap_client *client, const unsigned char *msg, size_t len,
				size_t size)
{
	if (client->disconnected || len == 0)
		return;
	struct evbuffer *out = imap_client_out(client);
	if (size == len && memchr(msg, '\0', len) == NULL) {
		evbuffer_add(out, msg, len);
		return;
	}
	struct evbuffer_iovec v;
	if (evbuffer_reserve_space(out, (ev_ssize_t)size, &v, 1) != 1 || v.iov_len < size) {
		/* out of memory: aborts, as mem_alloc() does (mem.h) */
		fprintf(stderr, "out of memory reserving %zu bytes of output\n", size);
		abort();
	}
	imap_msgpart_canonical_copy(msg, len, v.iov_base);
	v.iov_len = size;
	(void)evbuffer_commit_space(out, &v, 1);
}

void imap_client_send(struct imap_client *client, const char *fmt, ...)
{
	if (client->disconnected)
		return;
	va_list args;
	va_start(args, fmt);
	struct evbuffer *out = imap_client_out(client);
	evbuffer_add_vprintf(out, fmt, args);
	va_end(args);
	evbuffer_add(out, "\r\n", 2);
}

size_t imap_client_output_len(struct imap_client *client)
{
	return client->disconnected
		       ? 0
		       : evbuffer_get_length(client->pending) +
				 evbuffer_get_length(bufferevent_get_output(client->bev));
}

/* Read on from the event loop, not from inside whatever just finished. */
static void imap_client_schedule_input(struct imap_client *client)
{
	if (!client->disconnected && !client->input_scheduled) {
		client->input_scheduled = true;
		event_active(client->resume, EV_TIMEOUT, 0);
	}
}

void imap_client_done(struct imap_client *client, const char *status, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	char *text = mem_vprintf(fmt, args);
	va_end(args);
	imap_client_send(client, "%s %s %s", client->tag == NULL ? "*" : client->tag, status, text);
	mem_free(text);
	client->busy = false;
	imap_client_schedule_input(client);
}

static void imap_client_set_timeout(struct imap_client *client)
{
	if (client->close_after_output)
		return; /* the BYE's own deadline stays */
	struct timeval tv = {client->state == IMAP_STATE_NOT_AUTH
				     ? client->server->set.preauth_timeout_secs
				     : IMAP_IDLE_TIMEOUT_SECS,
			     0};
	event_add(client->timeout, &tv);
}

/* ---- calls into the instance ---- */

struct imap_client_call {
	struct imap_client *client;
	imap_client_answer_fn *answer;
	imap_client_buffer_answer_fn *buffer_answer; /* instead of answer */
	void *ctx;
};

static void imap_client_answered(const struct json *result, const void *blob, size_t blob_len,
				 const char *error_code, const char *error_text, void *ctx)
{
	struct imap_client_call *call = ctx;
	struct imap_client *client = call->client;
	/* answered even for a client that has gone, so the ctx is freed */
	call->answer(client, result, blob, blob_len, error_code, error_text, call->ctx);
	(void)imap_client_unref(client);
	mem_free(call);
}

static void imap_client_buffer_answered(const struct json *result, struct evbuffer *blob,
					const char *error_code, const char *error_text, void *ctx)
{
	struct imap_client_call *call = ctx;
	struct imap_client *client = call->client;
	call->buffer_answer(client, result, blob, error_code, error_text, call->ctx);
	(void)imap_client_unref(client);
	mem_free(call);
}

static struct imap_client_call *imap_client_call_new(struct imap_client *client, struct json **args,
						     void *ctx)
{
	struct imap_client_call *call = mem_new(struct imap_client_call);
	call->client = client;
	call->ctx = ctx;
	imap_client_ref(client);
	if (*args == NULL)
		*args = json_new_object();
	if (client->user_name != NULL && json_get(*args, "userName") == NULL) {
		json_set_string(*args, "userName", client->user_name);
		/* the instance checks the imap login privilege on every call */
		json_set_string(*args, "service", "imap");
		/* for the instance's audit log: from where */
		json_set_string(*args, "remoteAddress", client->address);
	}
	return call;
}

void imap_client_call(struct imap_client *client, const char *method, struct json *args,
		      imap_client_answer_fn *answer, void *ctx)
{
	struct imap_client_call *call = imap_client_call_new(client, &args, ctx);
	call->answer = answer;
	access_route_call(client->server->set.route, client->instance_id, method, args,
			  IMAP_CALL_TIMEOUT_SECS, imap_client_answered, call);
}

void imap_client_call_buffer(struct imap_client *client, const char *method, struct json *args,
			     imap_client_buffer_answer_fn *answer, void *ctx)
{
	struct imap_client_call *call = imap_client_call_new(client, &args, ctx);
	call->buffer_answer = answer;
	access_route_call_buffer(client->server->set.route, client->instance_id, method, args,
				 IMAP_CALL_TIMEOUT_SECS, imap_client_buffer_answered, call);
}

/* An error from the instance, as the client should see it. */
static void imap_client_call_failed(struct imap_client *client, const char *code, const char *text)
{
	if (strcmp(code, "unavailable") == 0 || strcmp(code, "timeout") == 0 ||
	    strcmp(code, "closed") == 0)
		imap_client_done(client, "NO",
				 "[UNAVAILABLE] The archive is not available right now");
	else
		imap_client_done(client, "NO", "%s", text);
}

/* ---- capabilities, greeting ---- */

static bool imap_client_login_allowed(const struct imap_client *client)
{
	return client->tls || client->server->set.allow_plaintext_auth;
}

static const char *imap_client_capabilities(const struct imap_client *client)
{
	if (client->state != IMAP_STATE_NOT_AUTH)
		return IMAP_CAPS_BASE;
	if (imap_client_login_allowed(client))
		return client->tls ? IMAP_CAPS_BASE " AUTH=PLAIN"
				   : IMAP_CAPS_BASE " STARTTLS AUTH=PLAIN";
	return IMAP_CAPS_BASE " STARTTLS LOGINDISABLED";
}

/* ---- login ---- */

struct imap_login {
	char *login;
	struct timespec started;
};

static long imap_msecs_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)((now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000);
}

static void imap_login_refuse_now(evutil_socket_t fd, short events, void *ctx)
{
	struct imap_client *client = ctx;
	if (imap_client_unref(client))
		imap_client_done(client, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
}

/* Every failed login is answered the same, after the same time: neither
 * the text nor the delay tells whether the instance, the user or the
 * password was wrong. */
static void imap_login_refuse(struct imap_client *client, struct imap_login *login)
{
	long left = IMAP_FAILED_LOGIN_DELAY_MSECS - imap_msecs_since(&login->started);
	struct timeval tv = {0, 0};
	if (left > 0) {
		tv.tv_sec = left / 1000;
		tv.tv_usec = (left % 1000) * 1000;
	}
	imap_client_ref(client);
	event_base_once(client->server->set.base, -1, EV_TIMEOUT, imap_login_refuse_now, client,
			&tv);
}

/* Logins are throttled per client address across names and per (login,
 * address), counted before they are checked (auth-throttle): guesses
 * from one address cannot lock the real user out from another. */
static void imap_login_throttle_end(struct imap_client *client, const struct imap_login *login,
				    enum auth_throttle_outcome outcome)
{
	auth_throttle_login_end(client->server->throttle, login->login, client->address, outcome);
}

static void imap_login_free(struct imap_login *login)
{
	mem_free(login->login);
	mem_free(login);
}

static enum auth_throttle_outcome imap_login_outcome(const char *code)
{
	if (code == NULL)
		return AUTH_THROTTLE_SUCCEEDED;
	if (strcmp(code, "auth-failed") == 0 || strcmp(code, "mfa-required") == 0)
		return AUTH_THROTTLE_FAILED;
	return AUTH_THROTTLE_NOT_CHECKED;
}

static void imap_login_answer(struct imap_client *client, const struct json *result,
			      const void *blob, size_t blob_len, const char *code, const char *text,
			      void *ctx)
{
	struct imap_login *login = ctx;
	struct access_imap *server = client->server;
	enum auth_throttle_outcome outcome = imap_login_outcome(code);
	imap_login_throttle_end(client, login, outcome);
	if (client->disconnected) {
		imap_login_free(login);
		return;
	}
	if (outcome == AUTH_THROTTLE_FAILED) {
		log_info(client->context, "login failed for %s", login->login);
		imap_login_refuse(client, login);
	} else if (code != NULL && strcmp(code, "throttled") == 0) {
		log_info(client->context, "login of %s throttled by the instance", login->login);
		imap_client_done(client, "NO", "[UNAVAILABLE] Too many failed logins: %s", text);
	} else if (code != NULL && strcmp(code, "busy") == 0) {
		/* not a wrong password: a client may try again at once */
		log_info(client->context, "login of %s: the instance is busy", login->login);
		imap_client_done(client, "NO",
				 "[UNAVAILABLE] Too many logins at once: try again in a moment");
	} else if (code != NULL) {
		log_warning(client->context, "login of %s: %s: %s", login->login, code, text);
		imap_client_call_failed(client, code, text);
	}
	if (code != NULL) {
		mem_free(client->instance_id);
		client->instance_id = NULL;
		imap_login_free(login);
		return;
	}
	client->user_name = mem_strdup(json_get_string(result, "userName"));
	client->archive_name = mem_strdup(json_get_string(result, "archiveName"));
	/* auditors, admins and users with rights on other archives */
	client->auditor = json_get_bool(result, "readsOtherArchives", false);
	client->state = IMAP_STATE_AUTH;
	server->authenticated_count++;
	snprintf(client->context + strlen(client->context),
		 sizeof(client->context) - strlen(client->context), " user=%s@%s",
		 client->user_name, client->instance_id);
	log_info(client->context, "logged in");
	imap_client_set_timeout(client);
	imap_client_done(client, "OK", "[CAPABILITY %s] Logged in",
			 imap_client_capabilities(client));
	imap_login_free(login);
}

/* "user@instance": the instance is after the last '@' (user names may hold
 * '@' themselves). */
static void imap_client_login(struct imap_client *client, const char *login, const char *password)
{
	struct access_imap *server = client->server;
	unsigned int wait;
	if (auth_throttle_login_begin(server->throttle, login, client->address, time(NULL), &wait) <
	    0) {
		/* at once, unchecked: the attempt costs the server nothing */
		if (wait == 0)
			imap_client_done(client, "NO",
					 "[UNAVAILABLE] Other logins are being checked: try again "
					 "in a moment");
		else
			imap_client_done(client, "NO",
					 "[UNAVAILABLE] Too many failed logins: try again in %u "
					 "seconds",
					 wait);
		return;
	}
	struct imap_login *l = mem_new(struct imap_login);
	l->login = mem_strdup(login);
	clock_gettime(CLOCK_MONOTONIC, &l->started);
	const char *at = strrchr(login, '@');
	const char *instance_id;
	if (at == NULL || at == login ||
	    access_route_resolve(server->set.route, at + 1, &instance_id) != 1) {
		imap_login_throttle_end(client, l, AUTH_THROTTLE_FAILED);
		log_info(client->context, "login failed for %s (no such instance)", login);
		imap_login_refuse(client, l);
		imap_login_free(l);
		return;
	}
	client->instance_id = mem_strdup(instance_id);
	struct json *args = json_new_object();
	json_set(args, "userName", json_new_string(tstr_printf("%.*s", (int)(at - login), login)));
	json_set_string(args, "password", password);
	json_set_string(args, "service", "imap");
	json_set_string(args, "remoteAddress", client->address);
	imap_client_call(client, "ClientLogin", args, imap_login_answer, l);
}

static void imap_cmd_login(struct imap_client *client, const struct imap_command *cmd)
{
	const char *user, *password;
	if (!imap_client_login_allowed(client)) {
		imap_client_done(client, "NO",
				 "[PRIVACYREQUIRED] Use STARTTLS (or port 993) first");
		return;
	}
	if (cmd->arg_count != 2 || !imap_arg_get_astring(&cmd->args[0], &user) ||
	    !imap_arg_get_astring(&cmd->args[1], &password)) {
		imap_client_done(client, "BAD", "LOGIN needs a user name and a password");
		return;
	}
	imap_client_login(client, user, password);
}

/* SASL PLAIN: authzid NUL authcid NUL password. */
static void imap_client_sasl_plain(struct imap_client *client, const char *response)
{
	size_t len;
	unsigned char *data = base64_decode(response, strlen(response), &len);
	const unsigned char *nul1 = data == NULL ? NULL : memchr(data, '\0', len);
	const unsigned char *nul2 =
		nul1 == NULL ? NULL : memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - data));
	if (nul2 == NULL || memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - data)) != NULL) {
		mem_free(data);
		imap_client_done(client, "BAD", "Invalid SASL PLAIN response");
		return;
	}
	char *authzid = mem_strndup((const char *)data, (size_t)(nul1 - data));
	char *authcid = mem_strndup((const char *)nul1 + 1, (size_t)(nul2 - nul1 - 1));
	char *password = mem_strndup((const char *)nul2 + 1, len - (size_t)(nul2 + 1 - data));
	if (authzid[0] != '\0' && strcmp(authzid, authcid) != 0)
		imap_client_done(
			client, "NO",
			"[AUTHORIZATIONFAILED] Logging in as another user is not supported");
	else
		imap_client_login(client, authcid, password);
	memset(password, 0, strlen(password));
	memset(data, 0, len);
	mem_free(authzid);
	mem_free(authcid);
	mem_free(password);
	mem_free(data);
}

static void imap_cmd_authenticate(struct imap_client *client, const struct imap_command *cmd)
{
	const char *mech, *ir = NULL;
	if (!imap_client_login_allowed(client)) {
		imap_client_done(client, "NO",
				 "[PRIVACYREQUIRED] Use STARTTLS (or port 993) first");
		return;
	}
	if (cmd->arg_count < 1 || cmd->arg_count > 2 || !imap_arg_get_atom(&cmd->args[0], &mech) ||
	    (cmd->arg_count == 2 && !imap_arg_get_atom(&cmd->args[1], &ir))) {
		imap_client_done(client, "BAD", "AUTHENTICATE needs a mechanism");
		return;
	}
	if (strcasecmp(mech, "PLAIN") != 0) {
		imap_client_done(client, "NO", "Unsupported authentication mechanism (PLAIN is)");
		return;
	}
	if (ir != NULL)
		imap_client_sasl_plain(client, strcmp(ir, "=") == 0 ? "" : ir);
	else {
		imap_client_send(client, "+ "); /* the response comes as a raw line */
		client->raw_line_wanted = true;
	}
}

static void imap_sasl_line(struct imap_client *client, const char *line)
{
	if (strcmp(line, "*") == 0)
		imap_client_done(client, "BAD", "Authentication cancelled");
	else
		imap_client_sasl_plain(client, line);
}

/* ---- other commands ---- */

static const char *const *imap_refused_literals(void);

static struct imap_parser *imap_client_parser_create(void)
{
	const struct imap_parser_settings set = {
		.refuse_literals = imap_refused_literals(),
		.refuse_text = "[CANNOT] The archive is read-only",
	};
	return imap_parser_create(&set);
}

static void imap_cmd_starttls(struct imap_client *client, const struct imap_command *cmd)
{
	if (client->tls) {
		imap_client_done(client, "BAD", "TLS is already on");
		return;
	}
	imap_client_send(client, "%s OK Begin TLS negotiation now", client->tag);
	imap_client_flush(client); /* in plain text, before TLS takes over */
	/* Nothing the client sent after STARTTLS may count as sent over TLS. */
	struct evbuffer *in = bufferevent_get_input(client->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	imap_parser_destroy(&client->parser);
	client->parser = imap_client_parser_create();
	client->bev = tls_bufferevent_starttls(client->server->set.tls, client->bev);
	client->tls = true;
	client->busy = false;
	imap_client_setup_bev(client);
}

static void imap_cmd_id(struct imap_client *client, const struct imap_command *cmd)
{
	imap_client_send(client, "* ID (\"name\" \"Coffer\" \"version\" \"%s\")", COFFER_VERSION);
	imap_client_done(client, "OK", "ID completed");
}

static void imap_cmd_namespace(struct imap_client *client, const struct imap_command *cmd)
{
	if (client->auditor)
		imap_client_send(client,
				 "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) NIL");
	else
		imap_client_send(client, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_client_done(client, "OK", "NAMESPACE completed");
}

static void imap_cmd_logout(struct imap_client *client, const struct imap_command *cmd)
{
	imap_client_send(client, "* BYE Logging out");
	imap_client_done(client, "OK", "Logout completed");
	client->state = IMAP_STATE_LOGOUT;
	client->close_after_output = true;
}

static void imap_cmd_read_only(struct imap_client *client)
{
	imap_client_done(client, "NO", "[CANNOT] The archive is read-only: %s is not possible",
			 client->command);
}

static void imap_cmd_capability(struct imap_client *client, const struct imap_command *cmd)
{
	imap_client_send(client, "* CAPABILITY %s", imap_client_capabilities(client));
	imap_client_done(client, "OK", "Capability completed");
}

static void imap_cmd_enable(struct imap_client *client, const struct imap_command *cmd)
{
	/* nothing this server has needs enabling */
	imap_client_send(client, "* ENABLED");
	imap_client_done(client, "OK", "Enabled");
}

static void imap_cmd_close(struct imap_client *client, const struct imap_command *cmd)
{
	imap_client_unselect(client);
	imap_client_done(client, "OK", "%s completed", cmd->name);
}

/* The table's form of the handlers in access-imap-mailbox.c (its header
 * stays as it is: one handler serves two commands there). */
static void imap_run_noop(struct imap_client *client, const struct imap_command *cmd)
{
	imap_cmd_noop(client);
}

static void imap_run_idle(struct imap_client *client, const struct imap_command *cmd)
{
	imap_cmd_idle(client);
}

static void imap_run_select(struct imap_client *client, const struct imap_command *cmd)
{
	imap_cmd_select(client, cmd, false);
}

static void imap_run_examine(struct imap_client *client, const struct imap_command *cmd)
{
	imap_cmd_select(client, cmd, true);
}

static void imap_run_list(struct imap_client *client, const struct imap_command *cmd)
{
	imap_cmd_list(client, cmd, false);
}

static void imap_run_lsub(struct imap_client *client, const struct imap_command *cmd)
{
	imap_cmd_list(client, cmd, true);
}

static void imap_cmd_uid(struct imap_client *client, const struct imap_command *cmd);

enum imap_command_flags {
	/* would change the archive: answered NO [CANNOT], it is read-only */
	IMAP_CMD_WRITES = 1 << 0,
	/* its literal is refused before it is sent (no "+ " continuation; a
	 * LITERAL+ literal is read and dropped): APPEND's message */
	IMAP_CMD_REFUSE_LITERAL = 1 << 1,
	/* also as "UID <name>", with UIDs for sequence numbers */
	IMAP_CMD_UID = 1 << 2,
};

struct imap_command_def {
	const char *name;
	enum { ANY, NOT_AUTH, AUTH, SELECTED } needs;
	unsigned int flags; /* enum imap_command_flags */
	/* NULL only for IMAP_CMD_WRITES: refused before it would run */
	void (*run)(struct imap_client *client, const struct imap_command *cmd);
};

static bool imap_client_state_ok(struct imap_client *client, int needs)
{
	switch (needs) {
	case NOT_AUTH:
		return client->state == IMAP_STATE_NOT_AUTH;
	case AUTH:
		return client->state == IMAP_STATE_AUTH || client->state == IMAP_STATE_SELECTED;
	case SELECTED:
		return client->state == IMAP_STATE_SELECTED;
	default:
		return true;
	}
}

#define WRITES IMAP_CMD_WRITES
#define UID IMAP_CMD_UID

/* Every command this server knows: the state it needs, its flags, its
 * handler. */
static const struct imap_command_def imap_commands[] = {
	{"CAPABILITY", ANY, 0, imap_cmd_capability},
	{"NOOP", ANY, 0, imap_run_noop},
	{"LOGOUT", ANY, 0, imap_cmd_logout},
	{"ID", ANY, 0, imap_cmd_id},
	{"STARTTLS", NOT_AUTH, 0, imap_cmd_starttls},
	{"LOGIN", NOT_AUTH, 0, imap_cmd_login},
	{"AUTHENTICATE", NOT_AUTH, 0, imap_cmd_authenticate},
	{"SELECT", AUTH, 0, imap_run_select},
	{"EXAMINE", AUTH, 0, imap_run_examine},
	{"LIST", AUTH, 0, imap_run_list},
	{"LSUB", AUTH, 0, imap_run_lsub},
	{"STATUS", AUTH, 0, imap_cmd_status},
	{"NAMESPACE", AUTH, 0, imap_cmd_namespace},
	{"ENABLE", AUTH, 0, imap_cmd_enable},
	{"CREATE", AUTH, WRITES, NULL},
	{"DELETE", AUTH, WRITES, NULL},
	{"RENAME", AUTH, WRITES, NULL},
	{"SUBSCRIBE", AUTH, WRITES, NULL},
	{"UNSUBSCRIBE", AUTH, WRITES, NULL},
	{"APPEND", AUTH, WRITES | IMAP_CMD_REFUSE_LITERAL, NULL},
	{"CHECK", SELECTED, 0, imap_run_noop},
	{"CLOSE", SELECTED, 0, imap_cmd_close},
	{"UNSELECT", SELECTED, 0, imap_cmd_close},
	{"IDLE", AUTH, 0, imap_run_idle},
	{"FETCH", SELECTED, UID, imap_cmd_fetch},
	{"SEARCH", SELECTED, UID, imap_cmd_search},
	{"UID", SELECTED, 0, imap_cmd_uid},
	{"STORE", SELECTED, UID, imap_cmd_store},
	{"COPY", SELECTED, WRITES | UID, NULL},
	{"MOVE", SELECTED, WRITES | UID, NULL},
	{"EXPUNGE", SELECTED, WRITES | UID, NULL},
	{NULL, ANY, 0, NULL},
};

#undef WRITES
#undef UID

/* The names of the IMAP_CMD_REFUSE_LITERAL commands, for the parser. */
static const char *const *imap_refused_literals(void)
{
	static const char *names[sizeof(imap_commands) / sizeof(imap_commands[0])];
	size_t n = 0;
	if (names[0] != NULL)
		return names;
	for (const struct imap_command_def *def = imap_commands; def->name != NULL; def++) {
		if ((def->flags & IMAP_CMD_REFUSE_LITERAL) != 0)
			names[n++] = def->name;
	}
	return names;
}

/* `name` as the client sent it (any case). */
static const struct imap_command_def *imap_command_find(const char *name)
{
	const struct imap_command_def *def = imap_commands;
	while (def->name != NULL && strcasecmp(def->name, name) != 0)
		def++;
	return def->name == NULL ? NULL : def;
}

/* UID FETCH / UID SEARCH: the subcommand becomes the command. */
static void imap_cmd_uid(struct imap_client *client, const struct imap_command *cmd)
{
	const char *sub;
	if (cmd->arg_count < 1 || !imap_arg_get_atom(&cmd->args[0], &sub)) {
		imap_client_done(client, "BAD", "UID needs a command");
		return;
	}
	const struct imap_command_def *def = imap_command_find(sub);
	if (def == NULL || (def->flags & IMAP_CMD_UID) == 0) {
		imap_client_done(client, "BAD", "Unknown UID command");
		return;
	}
	struct imap_command subcmd = *cmd;
	subcmd.args = cmd->args + 1;
	subcmd.arg_count = cmd->arg_count - 1;
	client->uid_command = true;
	if ((def->flags & IMAP_CMD_WRITES) != 0) {
		mem_free(client->command);
		client->command = mem_printf("UID %s", def->name);
		imap_cmd_read_only(client);
	} else {
		def->run(client, &subcmd);
	}
}

static void imap_client_dispatch(struct imap_client *client, const struct imap_command *cmd)
{
	const struct imap_command_def *def = imap_command_find(cmd->name);
	mem_free(client->tag);
	mem_free(client->command);
	client->tag = mem_strdup(cmd->tag);
	client->command = mem_strdup(cmd->name);
	client->busy = true;
	client->uid_command = false;
	if (def == NULL) {
		client->bad_commands++;
		imap_client_done(client, "BAD", "Unknown command");
		return;
	}
	if (!imap_client_state_ok(client, def->needs)) {
		client->bad_commands++;
		imap_client_done(client, "BAD", "%s",
				 client->state == IMAP_STATE_NOT_AUTH ? "Log in first"
				 : def->needs == NOT_AUTH             ? "Already logged in"
								      : "Select a mailbox first");
		return;
	}
	client->bad_commands = 0;
	if ((def->flags & IMAP_CMD_WRITES) != 0)
		imap_cmd_read_only(client);
	else
		def->run(client, cmd);
}

/* ---- the input loop ---- */

/* Feed the parser what has arrived; false if nothing was there. */
static bool imap_client_feed(struct imap_client *client)
{
	struct evbuffer *in = bufferevent_get_input(client->bev);
	struct evbuffer_iovec v;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return false;
	size_t n = imap_parser_feed(client->parser, v.iov_base, v.iov_len);
	evbuffer_drain(in, n);
	return n > 0;
}

/* A raw line (SASL response, IDLE's DONE): 1 handled, 0 need input. */
static int imap_client_raw_line(struct imap_client *client)
{
	const char *line, *error;
	size_t len;
	int ret = imap_parser_next_line(client->parser, &line, &len, &error);
	if (ret == 0)
		return 0;
	client->raw_line_wanted = client->idling; /* IDLE reads until DONE */
	if (ret < 0) {
		if (client->idling)
			imap_idle_line(client, "");
		else
			imap_client_done(client, "BAD", "%s", error);
		return 1;
	}
	if (client->idling)
		imap_idle_line(client, line);
	else
		imap_sasl_line(client, line);
	return 1;
}

static void imap_client_input(struct imap_client *client)
{
	while (!client->disconnected && client->state != IMAP_STATE_LOGOUT) {
		if (client->busy && !client->raw_line_wanted)
			return;
		if (client->busy) {
			if (imap_client_raw_line(client) == 0 && !imap_client_feed(client))
				return;
			continue;
		}
		const struct imap_command *cmd;
		const char *tag, *error;
		bool cont = false;
		int ret = imap_parser_next(client->parser, &cmd, &cont, &tag, &error);
		if (ret == 1) {
			imap_client_dispatch(client, cmd);
		} else if (ret < 0 && imap_parser_refused(client->parser)) {
			/* APPEND: refused before its literal is sent */
			imap_client_send(client, "%s NO %s", tag == NULL ? "*" : tag, error);
		} else if (ret < 0) {
			client->bad_commands++;
			imap_client_send(client, "%s BAD %s", tag == NULL ? "*" : tag, error);
		} else {
			if (cont)
				imap_client_send(client, "+ Ready for literal data");
			if (!imap_client_feed(client))
				return;
		}
		if (client->bad_commands >= IMAP_MAX_BAD_COMMANDS) {
			imap_client_send(client, "* BYE Too many invalid commands");
			client->close_after_output = true;
			client->state = IMAP_STATE_LOGOUT;
		}
	}
}

/* ---- libevent callbacks ---- */

static void imap_client_read_cb(struct bufferevent *bev, void *ctx)
{
	struct imap_client *client = ctx;
	imap_client_set_timeout(client);
	imap_client_ref(client);
	imap_client_input(client);
	(void)imap_client_unref(client);
}

/* Everything written has left for the socket (after STARTTLS the TLS
 * filter's underlying bufferevent holds bytes too). */
static bool imap_client_all_sent(struct imap_client *client)
{
	struct bufferevent *under = bufferevent_get_underlying(client->bev);
	return imap_client_output_len(client) == 0 &&
	       (under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0);
}

static void imap_client_close_when_sent(evutil_socket_t fd, short events, void *ctx)
{
	struct imap_client *client = ctx;
	if (!imap_client_unref(client))
		return;
	if (imap_client_all_sent(client)) {
		imap_client_disconnect(client, client->close_reason != NULL ? client->close_reason
									    : "logged out");
	} else {
		struct timeval tv = {0, 20000};
		imap_client_ref(client);
		event_base_once(client->server->set.base, -1, EV_TIMEOUT,
				imap_client_close_when_sent, client, &tv);
	}
}

static void imap_client_write_cb(struct bufferevent *bev, void *ctx)
{
	struct imap_client *client = ctx;
	if (client->close_after_output && imap_client_output_len(client) == 0) {
		if (!client->closing) {
			client->closing = true;
			imap_client_ref(client);
			imap_client_close_when_sent(-1, 0, client);
		}
		return;
	}
	if (client->fetch != NULL)
		imap_fetch_continue(client);
}

static void imap_client_event_cb(struct bufferevent *bev, short events, void *ctx)
{
	struct imap_client *client = ctx;
	const char *text = "connection closed";
	if ((events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0)
		return; /* BEV_EVENT_CONNECTED: the TLS handshake is done */
	if ((events & BEV_EVENT_ERROR) != 0)
		(void)tls_bufferevent_failure(bev, &text);
	imap_client_disconnect(client, text);
}

static void imap_client_timeout_cb(evutil_socket_t fd, short events, void *ctx)
{
	struct imap_client *client = ctx;
	if (client->close_after_output || client->busy || client->fetch != NULL ||
	    client->search != NULL) {
		/* a BYE that did not leave in time, or a command whose answer is
		 * half sent (a BYE in it would garble it): close now */
		imap_client_disconnect(client, "inactivity");
		return;
	}
	/* The BYE goes out before the close (RFC 3501 7.1.5), as Dovecot's
	 * does: freeing the connection at once threw it away unsent. The
	 * client gets IMAP_BYE_LINGER_SECS to take it. */
	imap_client_send(client, "* BYE Disconnected for inactivity");
	client->state = IMAP_STATE_LOGOUT;
	client->close_after_output = true;
	client->close_reason = "inactivity";
	struct timeval tv = {IMAP_BYE_LINGER_SECS, 0};
	event_add(client->timeout, &tv);
}

static void imap_client_resume_cb(evutil_socket_t fd, short events, void *ctx)
{
	struct imap_client *client = ctx;
	client->input_scheduled = false;
	imap_client_read_cb(client->bev, client);
}

static void imap_client_setup_bev(struct imap_client *client)
{
	bufferevent_setcb(client->bev, imap_client_read_cb, imap_client_write_cb,
			  imap_client_event_cb, client);
	bufferevent_setwatermark(client->bev, EV_READ, 0, IMAP_INPUT_MAX);
	bufferevent_setwatermark(client->bev, EV_WRITE, IMAP_OUTPUT_LOW, 0);
	bufferevent_enable(client->bev, EV_READ | EV_WRITE);
}

struct imap_client *imap_client_create(struct access_imap *server, struct bufferevent *bev,
				       bool tls, const char *peer)
{
	struct imap_client *client = mem_new(struct imap_client);
	client->server = server;
	client->bev = bev;
	client->tls = tls;
	client->refs = 1; /* the server's list */
	snprintf(client->address, sizeof(client->address), "%s", peer);
	char *colon = strrchr(client->address, ':');
	if (colon != NULL)
		*colon = '\0';
	snprintf(client->context, sizeof(client->context), "imap=%s", peer);
	client->parser = imap_client_parser_create();
	client->timeout = event_new(server->set.base, -1, 0, imap_client_timeout_cb, client);
	client->resume = event_new(server->set.base, -1, 0, imap_client_resume_cb, client);
	client->flush = event_new(server->set.base, -1, 0, imap_client_flush_cb, client);
	client->pending = evbuffer_new();
	if (client->flush == NULL || client->pending == NULL)
		abort();
	client->next = server->clients;
	if (server->clients != NULL)
		server->clients->prev = client;
	server->clients = client;
	server->client_count++;
	imap_client_setup_bev(client);
	imap_client_set_timeout(client);
	imap_client_send(client, "* OK [CAPABILITY %s] Coffer archive ready",
			 imap_client_capabilities(client));
	return client;
}

static void imap_client_disconnect(struct imap_client *client, const char *reason)
{
	if (client->disconnected)
		return;
	struct access_imap *server = client->server;
	log_info(client->context, "disconnected: %s", reason);
	client->disconnected = true;
	bufferevent_free(client->bev);
	client->bev = NULL;
	event_del(client->timeout);
	event_del(client->resume);
	if (client->idle_check != NULL)
		event_del(client->idle_check);
	if (client->prev != NULL)
		client->prev->next = client->next;
	else
		server->clients = client->next;
	if (client->next != NULL)
		client->next->prev = client->prev;
	server->client_count--;
	if (client->user_name != NULL)
		server->authenticated_count--;
	(void)imap_client_unref(client);
}

void imap_client_destroy_all(struct access_imap *server)
{
	while (server->clients != NULL)
		imap_client_disconnect(server->clients, "server shutting down");
}
