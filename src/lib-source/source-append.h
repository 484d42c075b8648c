#ifndef COFFER_SOURCE_APPEND_H
#define COFFER_SOURCE_APPEND_H
/* source-append: putting messages into a mailbox on an IMAP server with
 * APPEND (restores), a blocking client that runs in a job's thread.
 *
 * Security, as source-imap: implicit TLS or STARTTLS, the server's
 * certificate verified against the system's CAs (or ca_file) or a pinned
 * SHA-256 fingerprint (tls-stream in lib-tls); there is no insecure mode,
 * and a server that does not offer STARTTLS is refused. The password never
 * appears in error texts.
 *
 * Folders: "/"-separated names, sent in the server's hierarchy delimiter and
 * modified UTF-7; a folder that does not exist is created (CREATE).
 *
 * Bytes: a message goes out as one literal in IMAP's canonical form: bare LF
 * line ends become CRLF, nothing else changes. Flags (IMAP system flags
 * such as \Seen) and the internal date are given with the APPEND when known. */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct source_append_settings {
	const char *host;
	unsigned int port;
	int starttls; /* else implicit TLS */
	const char *fingerprint, *ca_file;
	unsigned int timeout_secs;
	const char *login, *password;
};

struct source_append;

/* Connected, TLS on, logged in: 0, or -1 with *error_r. */
int source_append_connect(const struct source_append_settings *set, struct source_append **append_r,
			  const char **error_r);
/* Use `folder` for the next APPENDs, creating it if missing: 0, or -1. */
int source_append_folder(struct source_append *a, const char *folder, const char **error_r);
/* APPEND one message: 0 stored; 1 the server refused it (*error_r: its
 * words); -1 the connection failed. flags: e.g. "\\Seen" or NULL;
 * internal_date: 0 for none. */
int source_append_message(struct source_append *a, const void *data, size_t len, const char *flags,
			  time_t internal_date, const char **error_r);
/* LOGOUT and close. */
void source_append_destroy(struct source_append **a);

#endif
