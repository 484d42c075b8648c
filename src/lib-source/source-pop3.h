#ifndef COFFER_SOURCE_POP3_H
#define COFFER_SOURCE_POP3_H
/* source-pop3: a POP3 server as an archive source (archive-source.h), a
 * blocking client that runs in a job's thread.
 *
 * What it reads: the login's own maildrop, or many with one administrator
 * credential: a Dovecot-style master user (USER "mailbox*admin") or SASL
 * PLAIN with an authorization identity (AUTH PLAIN). POP3 has no folders:
 * every message goes to one archive folder (default INBOX).
 *
 * Security: implicit TLS or STLS, the server's certificate verified against
 * the CAs or a pinned fingerprint (tls-stream in lib-tls); a server that
 * does not offer STLS is refused, never talked to in clear.
 *
 * Bytes: RETR's multi-line answer with the dot-stuffing undone, the CRLF
 * line ends as the server sent them, read into the pipeline in pieces.
 *
 * Incremental by UIDL: the state keeps the UIDL of every message durably
 * archived (or that can never be: too large, not a message), added only
 * from committed events; a run killed at any point loses nothing, and what
 * was committed but not yet in the saved state comes again as duplicates.
 *
 * Delete after archiving: the state is not used (what is on the server is
 * what is left to archive), and source_pop3_delete_archived() removes,
 * after the import returned, exactly the messages whose ARCHIVED or
 * DUPLICATE event came (found again by UIDL in a new session, DELE, and
 * QUIT to make the server remove them). */
#include <stdbool.h>
#include <stdint.h>

#include "archive-source.h"
#include "source-imap.h"

struct source_pop3_settings {
	const char *host;
	unsigned int port;
	bool starttls; /* STLS, else implicit TLS */
	const char *fingerprint, *ca_file;
	unsigned int timeout_secs;
	const char *login, *password;
	enum source_imap_admin admin; /* the same three ways as IMAP */
	const char *master_separator; /* default "*" */
	const char *const *mailboxes;
	const char *const *owners;
	size_t mailbox_count;
	const char *folder; /* the archive folder, default "INBOX" */
	bool delete_after;
};

struct source_pop3;

struct source_pop3 *source_pop3_create(const struct source_pop3_settings *set, const char *state);
void source_pop3_destroy(struct source_pop3 **src);
extern const struct archive_source_funcs source_pop3_funcs;

void source_pop3_event(struct source_pop3 *src, const struct archive_import_event *event);
char *source_pop3_state(struct source_pop3 *src);
const char *source_pop3_failure(struct source_pop3 *src);
long long source_pop3_delete_archived(struct source_pop3 *src, const char **error_r);

#endif
