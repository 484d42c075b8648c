#ifndef COFFER_ARCHIVE_SOURCE_H
#define COFFER_ARCHIVE_SOURCE_H
/* archive-source: the one way messages come into an archive.
 *
 * A source is an iterator of messages: files, mbox and Maildir trees
 * (archive_source_files_create(), what archive_import() reads), an IMAP or
 * POP3 mailbox, a journal receiver's deliveries. archive_source_import()
 * runs any source through the import pipeline of archive-import.h (workers
 * hash, parse, compress and encrypt; one writer commits in durable batches)
 * and keeps its contract: ARCHIVED and DUPLICATE events arrive from the
 * writer thread, in the source's order, only once the batch holding the
 * message is durably committed, so a source may acknowledge, delete or
 * advance its own high-water mark (a UID, a UIDL) from that event and from
 * nothing earlier. SKIPPED names a message that was not archived, with its
 * kind and reason.
 *
 * A message's bytes are read in pieces through read() into the one buffer
 * the pipeline keeps (sized once when the source knows the size), or handed
 * over whole through take() by a source that already holds them (an mbox
 * reader): never a whole message in memory twice. A message larger than the
 * import's max_message_size is refused (SKIPPED, too-large) without being
 * kept: when its size is known, before any byte is read; otherwise as soon
 * as the limit is passed (the rest is not read; the source's next() moves
 * past it).
 *
 * Each message has metadata: the label events name it by, the source's key
 * (a UID, an index: given back in its events), a folder path, its owners
 * (users of the archive; one copy of the content is stored, and each owner
 * gets a message row in the folder), and its received date.
 *
 * next() returning -1 is a failure of the source (a dropped connection, a
 * refused login): reading stops, what is in flight is committed (and
 * reported), one SKIPPED event (unreadable, source "(source)") carries the
 * reason, and archive_source_import() returns 0; the source itself keeps its
 * failure for its caller. -1 from archive_source_import() is, as for
 * archive_import(), a failure to write or commit (a full disk). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "archive-import.h"

struct archive_source_message {
	/* what events name the message by: "path", "path:N", "INBOX:1234" */
	const char *label;
	/* the source's own identity of the message, given back in its events */
	uint64_t key;
	/* the folder path; NULL: the import settings' folder */
	const char *folder;
	/* the users the message is archived for; none: the settings' user */
	const char *const *owners;
	size_t owner_count;
	/* the owners are final: the import's route hook (archive-import.h) is
	 * not asked (a journal message filed through another source's job) */
	bool owners_final;
	/* when it was received (seconds since the epoch); 0: now */
	int64_t received;
	/* its exact size if known, else 0 */
	uint64_t size;
	/* set by a source that cannot produce the message: it is reported
	 * SKIPPED with this kind and reason, and nothing is read */
	const char *skip_reason;
	enum archive_import_skip skip_kind;
};

struct archive_source_funcs {
	/* The next message: 1 and *msg_r (its pointers valid until the next
	 * call), 0 at the end, -1 and *error_r when the source failed. Moves
	 * past whatever of the previous message was not read. */
	int (*next)(void *context, struct archive_source_message *msg_r, const char **error_r);
	/* The next piece of the current message's bytes into buf: the count,
	 * 0 at its end, -1 and *error_r (the message is reported SKIPPED,
	 * unreadable, and the import goes on with next()). */
	ssize_t (*read)(void *context, unsigned char *buf, size_t size, const char **error_r);
	/* Optional: the current message's bytes when the source already holds
	 * them whole (mem_alloc()ed with one spare byte after *len_r; the
	 * pipeline frees them), or NULL to be read through read(). */
	unsigned char *(*take)(void *context, size_t *len_r);
	/* Optional: for a source that can still receive messages while the
	 * import runs (a job's journal lane, instance-archive.c). Called once
	 * next() returned 0, while messages read are still on their way to
	 * the commit: 1 when the source has more (next() is called again), 0
	 * when not yet (called again; it may wait up to msecs first). With
	 * final (everything read is with the writer, or the import stops) the
	 * source takes nothing more from then on: 1 if one came in before,
	 * else 0 and the reading ends. */
	int (*linger)(void *context, unsigned int msecs, bool final);
};

/* Imports every message of the source (see archive-import.h for settings,
 * events and results). */
int archive_source_import(struct archive *archive, const struct archive_import_settings *set,
			  const struct archive_source_funcs *funcs, void *context,
			  struct archive_import_result *result_r, const char **error_r);

/* The source archive_import() reads: EML files, directories of them, mbox
 * files ("-": an mbox on standard input) and Maildir trees, in the order
 * given, directories sorted by name, folders below base_folder. */
struct archive_source_files;
struct archive_source_files *archive_source_files_create(const char *const *paths,
							 size_t path_count, const char *base_folder,
							 uint64_t max_message_size);
void archive_source_files_destroy(struct archive_source_files **files);
extern const struct archive_source_funcs archive_source_files_funcs;

#endif
