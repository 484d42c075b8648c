#ifndef COFFER_SMTP_SERVER_H
#define COFFER_SMTP_SERVER_H
/* smtp-server: the receiving side of SMTP (RFC 5321) and LMTP (RFC 2033) on
 * one connection's bufferevent; protocol only, no policy and no storage.
 *
 * The owner decides (callbacks, on the event loop) whether a recipient is
 * taken, where message bytes go and when the message is accepted; the
 * answers to RCPT and to the end of DATA may come later
 * (smtp_server_reply()). While an answer is outstanding the connection
 * reads nothing more, so pipelined commands wait in the socket, not here.
 *
 * Bounded memory whatever the client sends: a command line longer than
 * SMTP_SERVER_LINE_MAX is answered 500 and the connection closed; message
 * bytes are handed to data() as they arrive (dot-unstuffed, CRLF kept, a
 * bare LF passed on as it is), never collected; past max_message_size they
 * are dropped and the end of DATA is answered 552. Input waiting to be
 * read is capped by a read watermark. An idle client is closed after
 * timeout_secs with 421.
 *
 * LMTP: the end of DATA gets one answer per accepted recipient, in RCPT
 * order; the owner gives them with smtp_server_reply(), one call each. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_SERVER_LINE_MAX 2048

struct bufferevent;
struct smtp_server_conn;

struct smtp_server_settings {
	bool lmtp;
	const char *hostname;      /* in the greeting and EHLO answer */
	uint64_t max_message_size; /* SIZE; larger messages: 552 */
	unsigned int max_recipients;
	unsigned int timeout_secs;
	bool starttls;      /* offer STARTTLS (callbacks->starttls set) */
	bool auth;          /* offer AUTH PLAIN/LOGIN (callbacks->auth set) */
	bool auth_required; /* MAIL needs a login first (530) */
};

struct smtp_server_callbacks {
	/* RCPT TO:<address>: answer with smtp_server_reply() (now or later). */
	void (*rcpt)(struct smtp_server_conn *conn, const char *address, void *ctx);
	/* DATA: 0 go on (354), -1 refuse with *reply_r ("451 4.3.0 ..."). */
	int (*data_begin)(struct smtp_server_conn *conn, const char **reply_r, void *ctx);
	/* Message bytes; -1 stops keeping them (the end is then answered with
	 * *reply_r of data_end's choosing: the owner remembers it failed). */
	int (*data)(struct smtp_server_conn *conn, const void *bytes, size_t len, void *ctx);
	/* The end of DATA; too_large: past max_message_size (the server
	 * answers 552 itself and calls reset). Otherwise answer with
	 * smtp_server_reply(): once for SMTP, once per recipient for LMTP. */
	void (*data_end)(struct smtp_server_conn *conn, void *ctx);
	/* The transaction is over or abandoned (RSET, MAIL again, QUIT, close,
	 * after the end of DATA was answered). */
	void (*reset)(struct smtp_server_conn *conn, void *ctx);
	/* AUTH: true if the credentials are right. */
	bool (*auth)(struct smtp_server_conn *conn, const char *user, const char *password,
		     void *ctx);
	/* STARTTLS: wrap `plain` (queued output first) and return the TLS
	 * bufferevent that replaces it, or NULL (answered 454). */
	struct bufferevent *(*starttls)(struct smtp_server_conn *conn, struct bufferevent *plain,
					void *ctx);
	/* The connection is gone (the conn is freed after this returns). */
	void (*closed)(struct smtp_server_conn *conn, void *ctx);
};

/* Takes over bev (freed with the connection) and sends the greeting. */
struct smtp_server_conn *smtp_server_conn_create(struct bufferevent *bev,
						 const struct smtp_server_settings *set,
						 const struct smtp_server_callbacks *callbacks,
						 void *ctx);
/* Close now (no more callbacks but closed). */
void smtp_server_conn_close(struct smtp_server_conn *conn);

/* An answer to an outstanding RCPT or end of DATA: "250 2.1.5 Ok" etc.
 * (one line, no CRLF). For RCPT, a 2xx answer counts the recipient. */
void smtp_server_reply(struct smtp_server_conn *conn, const char *line);
/* Send a line now and close (421 when the server stops taking mail). */
void smtp_server_reply_close(struct smtp_server_conn *conn, const char *line);

/* The accepted recipients of the current transaction, in order. */
size_t smtp_server_recipient_count(const struct smtp_server_conn *conn);
const char *smtp_server_recipient(const struct smtp_server_conn *conn, size_t i);
/* MAIL FROM's address ("" for the null sender), the logged-in user or NULL,
 * whether TLS is on. */
const char *smtp_server_sender(const struct smtp_server_conn *conn);
const char *smtp_server_auth_user(const struct smtp_server_conn *conn);
bool smtp_server_is_tls(const struct smtp_server_conn *conn);
/* The connection's bufferevent now (STARTTLS replaces it). */
struct bufferevent *smtp_server_bufferevent(const struct smtp_server_conn *conn);
/* From the closed callback: why the client's side ended ("closed by the
 * client during DATA", "connection error (reason) while an answer was
 * owed"), or NULL when it ended by QUIT, a timeout or the server. */
const char *smtp_server_end_reason(const struct smtp_server_conn *conn);

#endif
