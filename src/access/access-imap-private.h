#ifndef COFFER_ACCESS_IMAP_PRIVATE_H
#define COFFER_ACCESS_IMAP_PRIVATE_H
/* Shared by the access-imap*.c files: one IMAP session and its helpers.
 *
 * A session runs one command at a time. Pipelined commands wait in the
 * input buffer (which stops growing at IMAP_INPUT_MAX: the socket is not
 * read further), and long outputs (FETCH) are produced in batches only while
 * the output buffer is below IMAP_OUTPUT_LOW, so a client that stops reading
 * holds a bounded amount of memory. Calls into the instance hold a reference
 * on the session, so a client that goes away mid-call is freed only once the
 * answer has come back. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "access-imap.h"
#include "access-route.h"

#define IMAP_INPUT_MAX (1024 * 1024)
#define IMAP_OUTPUT_LOW (1024 * 1024)
#define IMAP_CALL_TIMEOUT_SECS 120
#define IMAP_PREAUTH_TIMEOUT_SECS 120
#define IMAP_IDLE_TIMEOUT_SECS (30 * 60)
/* how long a client has to take the BYE of an inactivity close */
#define IMAP_BYE_LINGER_SECS 10
#define IMAP_IDLE_CHECK_SECS 30
#define IMAP_MAX_BAD_COMMANDS 20
#define IMAP_FAILED_LOGIN_DELAY_MSECS 1000

struct bufferevent;
struct event;
struct evbuffer;
struct imap_parser;
struct imap_command;
struct imap_uidmap;
struct json;
struct str;
struct access_imap_fetch;
struct access_imap_search;

enum imap_state {
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

struct access_imap {
	struct access_imap_settings set;
	struct access_imap_listener *listeners;
	struct imap_client *clients;
	unsigned int client_count, authenticated_count;
	struct auth_throttle *throttle;
};

struct imap_client {
	struct imap_client *prev, *next;
	struct access_imap *server;
	struct bufferevent *bev;
	char address[64];  /* peer IP */
	char context[256]; /* for logs: "imap=1.2.3.4:5 user=u@i" */
	unsigned int refs;
	bool disconnected, tls, close_after_output, closing, input_scheduled;
	const char *close_reason; /* logged when close_after_output ends it */
	struct event *timeout, *resume;
	struct event *flush;      /* moves `pending` to the bufferevent */
	struct evbuffer *pending; /* output of this pass of the loop */
	struct imap_parser *parser;
	enum imap_state state;
	unsigned int bad_commands;

	/* the command being run */
	bool busy;
	bool raw_line_wanted; /* AUTHENTICATE's response, IDLE's DONE */
	char *tag;
	char *command; /* upper-cased name, for the completion text */
	bool uid_command;

	/* after login */
	char *instance_id;
	char *user_name;
	char *archive_name;
	bool auditor; /* reads other archives: "Other Users/" */

	/* the selected mailbox */
	char *mailbox;      /* its name as the client gave it (UTF-8) */
	char *owner, *path; /* in the archive */
	uint32_t uid_validity, uid_next;
	struct imap_uidmap *uids;

	/* IDLE */
	bool idling;
	struct event *idle_check;

	struct access_imap_fetch *fetch;
	struct access_imap_search *search;
};

/* ---- access-imap-client.c ---- */
void imap_client_ref(struct imap_client *client);
/* Drop a reference; false if the client is gone (do not touch it). */
bool imap_client_unref(struct imap_client *client);
void imap_client_send(struct imap_client *client, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_client_send_raw(struct imap_client *client, const void *data, size_t len);
/* A message's bytes in IMAP's canonical form (imap_msgpart_canonical()),
 * whose length `size` the caller announced: converted straight into the
 * output, so FETCH makes no copy of its own. */
void imap_client_send_canonical(struct imap_client *client, const unsigned char *msg, size_t len,
				size_t size);
size_t imap_client_output_len(struct imap_client *client);
/* End the running command: "<tag> <status> <text>", then read on. */
void imap_client_done(struct imap_client *client, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Call into the user's instance; the client is referenced until the answer.
 * The answer comes even if the client has disconnected meanwhile
 * (client->disconnected): then it only frees its ctx. */
typedef void imap_client_answer_fn(struct imap_client *client, const struct json *result,
				   const void *blob, size_t blob_len, const char *error_code,
				   const char *error_text, void *ctx);
void imap_client_call(struct imap_client *client, const char *method, struct json *args,
		      imap_client_answer_fn *answer, void *ctx);
/* The same, with the answer's blob as the evbuffer it came in (NULL if
 * none; its chains may be moved out during the callback, never copied). */
typedef void imap_client_buffer_answer_fn(struct imap_client *client, const struct json *result,
					  struct evbuffer *blob, const char *error_code,
					  const char *error_text, void *ctx);
void imap_client_call_buffer(struct imap_client *client, const char *method, struct json *args,
			     imap_client_buffer_answer_fn *answer, void *ctx);
/* For access-imap.c: a session on an accepted connection (greeting sent),
 * and the end of them all when the server goes. */
struct imap_client *imap_client_create(struct access_imap *server, struct bufferevent *bev,
				       bool tls, const char *peer);
void imap_client_destroy_all(struct access_imap *server);

/* ---- access-imap-mailbox.c ---- */
void imap_cmd_list(struct imap_client *client, const struct imap_command *cmd, bool lsub);
void imap_cmd_status(struct imap_client *client, const struct imap_command *cmd);
void imap_cmd_select(struct imap_client *client, const struct imap_command *cmd, bool examine);
void imap_cmd_idle(struct imap_client *client);
void imap_idle_line(struct imap_client *client, const char *line);
/* NOOP and CHECK: report new messages in the selected mailbox. */
void imap_cmd_noop(struct imap_client *client);
void imap_client_unselect(struct imap_client *client);

/* ---- access-imap-fetch.c ---- */
void imap_cmd_fetch(struct imap_client *client, const struct imap_command *cmd);
void imap_fetch_continue(struct imap_client *client);
void imap_fetch_free(struct access_imap_fetch **fetch);
/* STORE: NO for every change; a STORE that changes nothing (\Seen is
 * already set on every message) is answered OK. */
void imap_cmd_store(struct imap_client *client, const struct imap_command *cmd);

/* ---- access-imap-search.c ---- */
void imap_cmd_search(struct imap_client *client, const struct imap_command *cmd);
void imap_search_free(struct access_imap_search **search);

#endif
