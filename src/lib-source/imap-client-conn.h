#ifndef COFFER_IMAP_CLIENT_CONN_H
#define COFFER_IMAP_CLIENT_CONN_H
/* imap-client-conn: one blocking connection to an IMAP server, as the IMAP
 * clients of this library use it (source-imap reads a mailbox, source-append
 * fills one): connect, the greeting, TLS, login, and commands answered by a
 * tag. It runs in a job's thread; nothing here touches an event loop.
 *
 * Security: implicit TLS or STARTTLS (tls-stream in lib-tls), the server's
 * certificate verified against the system's CAs (or ca_file) or a pinned
 * SHA-256 fingerprint. There is no insecure mode: a server that refuses
 * STARTTLS is never talked to in clear, and nothing it sent before TLS is
 * taken as said over it. A password never appears in an error text, and
 * the command that carried it is wiped from memory once sent.
 *
 * Lines: a response line is at most IMAP_CLIENT_CONN_LINE_MAX bytes (else
 * the connection fails); a literal inside a response line (a folder name in
 * a LIST answer) is read and put back as a quoted string, so the line parses
 * without it. A literal at the end of a FETCH line (a message) is left on
 * the connection for imap_client_conn_read(). */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Longest response line kept (a LIST or FETCH line, not a message). */
#define IMAP_CLIENT_CONN_LINE_MAX (1024 * 1024)

struct imap_client_conn_settings {
	const char *host;
	unsigned int port;
	bool starttls; /* else implicit TLS */
	const char *fingerprint, *ca_file;
	unsigned int timeout_secs;
};

struct imap_client_conn;

/* Connected, TLS on, the greeting read: 0 and *conn_r; -1 with *error_r
 * (*conn_r NULL). */
int imap_client_conn_connect(const struct imap_client_conn_settings *set,
			     struct imap_client_conn **conn_r, const char **error_r);
/* Closes without a word (a broken connection); see imap_client_conn_logout(). */
void imap_client_conn_destroy(struct imap_client_conn **conn);
/* LOGOUT (its answer, or a failure, ignored), then destroy. */
void imap_client_conn_logout(struct imap_client_conn **conn);

/* LOGIN user password, or AUTHENTICATE PLAIN with an authorization identity
 * (authzid not NULL): 0 logged in, 1 refused (*error_r: the server's words),
 * -1 the connection failed. */
int imap_client_conn_login(struct imap_client_conn *conn, const char *authzid, const char *user,
			   const char *password, const char **error_r);

typedef void imap_client_conn_untagged_fn(const char *line, void *context);

/* Send "TAG command" (it may end in a literal's "{n}"): the tag (valid until
 * the next send), or NULL with *error_r. */
const char *imap_client_conn_send(struct imap_client_conn *conn, const char *command,
				  const char **error_r);
/* Response lines until the tagged answer to `tag`: 0 OK, 1 NO or BAD
 * (*error_r: the server's words), -1 the connection (or a BYE). Untagged
 * lines ("* ...") go to fn. With `continuation`, a "+" line ends the wait
 * with 2 (the server takes a literal). */
int imap_client_conn_wait(struct imap_client_conn *conn, const char *tag, bool continuation,
			  imap_client_conn_untagged_fn *fn, void *context, const char **error_r);
/* A command and its answer, as send + wait. */
int imap_client_conn_command(struct imap_client_conn *conn, const char *command,
			     imap_client_conn_untagged_fn *fn, void *context, const char **error_r);

/* Bytes as they are (a literal's content after a command). 0 or -1. */
int imap_client_conn_write(struct imap_client_conn *conn, const void *data, size_t len,
			   const char **error_r);
/* One line as sent, without its CRLF, a literal at its end left unread:
 * 0 (imap_client_conn_line() holds it) or -1. */
int imap_client_conn_read_line(struct imap_client_conn *conn, const char **error_r);
/* The line last read and its length. */
const char *imap_client_conn_line(const struct imap_client_conn *conn, size_t *len_r);
/* Up to size bytes of what the server sent (a literal's content): what is
 * buffered first, else straight from the connection into dest. The count
 * (> 0), or -1 with *error_r (a closed connection too). */
ssize_t imap_client_conn_read(struct imap_client_conn *conn, unsigned char *dest, size_t size,
			      const char **error_r);
/* "host:port", for error texts. */
const char *imap_client_conn_name(const struct imap_client_conn *conn);

/* The size of a literal that ends the line ("{123}" or "{123+}"), or -1. */
long long imap_client_conn_literal_at_end(const char *line, size_t len);

#endif
