#ifndef COFFER_SOURCE_IMAP_H
#define COFFER_SOURCE_IMAP_H
/* source-imap: an IMAP server as an archive source (archive-source.h), a
 * blocking client that runs in a job's thread.
 *
 * What it reads: one mailbox (the login's own), or many with one
 * administrator credential: a Dovecot-style master user (LOGIN as
 * "mailbox<separator>admin", separator "*" by default) or SASL PLAIN with an
 * authorization identity (AUTHENTICATE PLAIN mailbox\0admin\0password).
 * In each mailbox every selectable folder from LIST "" "*", or only those
 * that match `folders`, less those that match `exclude` (patterns: a name,
 * or "Name/" followed by a star for it and everything below). Folder names are kept as a tree:
 * decoded from modified UTF-7, the server's delimiter made "/".
 *
 * Security: implicit TLS or STARTTLS, the server's certificate verified
 * against the CAs or a pinned fingerprint (tls-stream in lib-tls); a server
 * that does not offer STARTTLS is refused, never talked to in clear.
 *
 * Bytes: each message is fetched with UID FETCH BODY.PEEK[] (no \Seen
 * change) and handed to the pipeline exactly as the server sent the literal,
 * read in pieces, its size known from the literal before any byte is read.
 *
 * Incremental: per mailbox and folder the state keeps the UIDVALIDITY and
 * the highest UID up to which every message was durably archived (advanced
 * only from committed events, in order, and never past a message that
 * failed to be read, so that it is tried again). A changed UIDVALIDITY
 * starts the folder again (duplicates are recognised, not stored twice).
 * The state is text, one line per folder, for the caller to keep
 * (source_imap_state()); a run killed at any point loses nothing: what was
 * committed but not yet in the saved state comes again as duplicates.
 *
 * Delete after archiving: the state is not used (what is on the server is
 * what is left to archive), and source_imap_delete_archived() removes, after
 * the import returned, exactly the messages whose ARCHIVED or DUPLICATE
 * event came (UID STORE \Deleted and UID EXPUNGE of those UIDs only, and only
 * while the folder's UIDVALIDITY is unchanged). A message that could not be
 * archived stays on the server. */
#include <stdbool.h>
#include <stdint.h>

#include "archive-source.h"

enum source_imap_admin {
	SOURCE_IMAP_ADMIN_NONE,    /* the login's own mailbox */
	SOURCE_IMAP_ADMIN_MASTER,  /* LOGIN "mailbox*login" password */
	SOURCE_IMAP_ADMIN_AUTHZID, /* AUTHENTICATE PLAIN with authzid=mailbox */
};

struct source_imap_settings {
	const char *host;
	unsigned int port;
	bool starttls; /* else implicit TLS */
	const char *fingerprint, *ca_file;
	unsigned int timeout_secs;
	const char *login, *password;
	enum source_imap_admin admin;
	const char *master_separator; /* default "*" */
	/* ADMIN_NONE: one mailbox, the login's; its archive user owners[0] (or
	 * the login). Else the mailboxes, each archived for owners[i]. */
	const char *const *mailboxes;
	const char *const *owners;
	size_t mailbox_count;
	const char *const *folders;
	size_t folder_count;
	const char *const *exclude;
	size_t exclude_count;
	bool delete_after;
	uint64_t max_message_size; /* 0: ARCHIVE_IMPORT_MAX_MESSAGE */
};

struct source_imap;

/* state: what source_imap_state() gave last time, or NULL. */
struct source_imap *source_imap_create(const struct source_imap_settings *set, const char *state);
void source_imap_destroy(struct source_imap **src);
extern const struct archive_source_funcs source_imap_funcs;

/* Give each import event to the source (from the import's callback). */
void source_imap_event(struct source_imap *src, const struct archive_import_event *event);
/* The state to keep (a new string, mem_free() it); safe from any thread. */
char *source_imap_state(struct source_imap *src);
/* The failure that stopped the source, or NULL. */
const char *source_imap_failure(struct source_imap *src);
/* With delete_after: removes what was archived. Returns how many were
 * removed, -1 with *error_r. */
long long source_imap_delete_archived(struct source_imap *src, const char **error_r);

#endif
