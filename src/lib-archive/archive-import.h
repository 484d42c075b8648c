#ifndef COFFER_ARCHIVE_IMPORT_H
#define COFFER_ARCHIVE_IMPORT_H
/* archive-import: imports EML files, folders of them, mbox files (or an mbox
 * on standard input, "-") and Maildir trees into an open archive. Every
 * other source (IMAP, POP3, the journal receiver) comes in through the same
 * pipeline with archive_source_import() (archive-source.h).
 *
 * Pipeline: the calling thread reads the input and splits it; worker
 * threads hash, parse, compress and encrypt; one writer thread appends the
 * records and commits them with the catalog in batches (at most 2000
 * messages, 64 MiB or two seconds each), durably: segments fsynced first,
 * then the catalog transaction. Memory stays bounded (ARCHIVE_IMPORT_INFLIGHT
 * bytes of messages in flight, plus one message) whatever the input size.
 *
 * Contract: events are delivered from the writer thread, in input order.
 * ARCHIVED and DUPLICATE are delivered only after the batch holding them is
 * durably committed: a message reported ARCHIVED survives any later crash
 * or full disk. SKIPPED names an input that could not be read (never
 * fatal). A write or commit failure (e.g. a full disk) stops the import with
 * -1 and *error_r; everything committed before stays, nothing else is
 * left behind, and a later import of the same input carries on (filing a
 * content a folder already holds is reported DUPLICATE, not stored again).
 * The first import that brings at least ARCHIVE_IMPORT_DICT_SAMPLES
 * messages trains the instance's zstd dictionary from them. Mail drifts, so
 * once ARCHIVE_IMPORT_DICT_WINDOW raw bytes (or a quarter of the archive, if
 * more) came in under the latest dictionary, an import trains the next one
 * from the messages it read last; the writer files it before the first
 * message compressed with it. Readers find every dictionary in the catalog
 * and in each store (so `rebuild` needs nothing else).
 *
 * Nothing is lost silently: whatever is not archived is reported SKIPPED
 * with a kind and a reason. Not a message (no header field at the start,
 * binary data in the header block), a PST file's bytes (PSTs are read as
 * files by archive-source-files.c, not as one message), a
 * message larger than max_message_size (refused while read, before it is
 * in memory: memory stays bounded by the limit), bytes of an mbox before
 * its first message, unreadable input. Archived messages carry their parse
 * defects by kind (enum mime_defect), counted per kind in the result. */
#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "archive.h"

#define ARCHIVE_IMPORT_INFLIGHT (96u * 1024 * 1024)
/* The default message size limit: an import's peak memory is about twice
 * its largest message plus ARCHIVE_IMPORT_INFLIGHT (docs/archive.md). */
#define ARCHIVE_IMPORT_MAX_MESSAGE (100ull * 1024 * 1024)
/* The limit can be raised up to this (one record holds at most 1 GiB). */
#define ARCHIVE_IMPORT_MAX_MESSAGE_LIMIT (512ull * 1024 * 1024)
#define ARCHIVE_IMPORT_DICT_SAMPLES 1000
#define ARCHIVE_IMPORT_DICT_WINDOW (64ull * 1024 * 1024)

enum archive_import_event_type {
	ARCHIVE_IMPORT_ARCHIVED,
	ARCHIVE_IMPORT_DUPLICATE,
	ARCHIVE_IMPORT_SKIPPED,
	ARCHIVE_IMPORT_PROGRESS,
};

/* Why an input was not archived. */
enum archive_import_skip {
	ARCHIVE_IMPORT_SKIP_UNREADABLE,
	ARCHIVE_IMPORT_SKIP_NOT_A_MESSAGE,
	ARCHIVE_IMPORT_SKIP_TOO_LARGE,
	ARCHIVE_IMPORT_SKIP_UNSUPPORTED,
	ARCHIVE_IMPORT_SKIP_EMPTY,
	ARCHIVE_IMPORT_SKIP_NO_RECIPIENT,
};
#define ARCHIVE_IMPORT_SKIP_KINDS 6
/* "unreadable", "not-a-message", "too-large", "unsupported", "empty",
 * "no-recipient" */
const char *archive_import_skip_name(enum archive_import_skip kind);

struct archive_import_event {
	enum archive_import_event_type type;
	const char *source; /* "path", or "path:N" for the Nth message of an mbox */
	const char *user;   /* the owner the event is for (ARCHIVED, DUPLICATE: one
			     * event per owner of the message) */
	uint64_t key;       /* the source's key of the message (archive-source.h) */
	int64_t message_id;
	const char *hash_hex;
	unsigned int defects; /* enum mime_defect bits */
	enum archive_import_skip skip;
	const char *reason;
	uint64_t messages, bytes; /* totals so far (PROGRESS) */
};

typedef void archive_import_cb(const struct archive_import_event *event, void *context);

struct archive_import_settings {
	const char *user;     /* default "local" */
	const char *folder;   /* default "INBOX"; subfolders of a tree go below it */
	unsigned int workers; /* 0: one per online CPU */
	archive_import_cb *cb;
	void *context;
	/* When set and it becomes true (from any thread), the import stops
	 * reading input, commits what is in flight and returns 0. */
	const atomic_bool *cancel;
	/* Raw bytes after which a new dictionary is trained (or a quarter of
	 * the archive, if more); 0: ARCHIVE_IMPORT_DICT_WINDOW (tests use less). */
	uint64_t dict_window;
	/* Messages larger than this are refused; 0: ARCHIVE_IMPORT_MAX_MESSAGE. */
	uint64_t max_message_size;
	/* Optional: owners chosen from each message's bytes (a journal or
	 * catch-all mailbox whose messages go to users by recipient). Called
	 * on the thread that reads the source, once a message is read whole:
	 * 1 and the owners (valid until the next call) instead of the source's,
	 * or 0 and a reason: the message is SKIPPED (no-recipient). */
	int (*route)(void *context, const unsigned char *data, size_t len,
		     const char *const **owners_r, size_t *count_r, const char **reason_r);
	void *route_context;
};

struct archive_import_result {
	uint64_t archived, duplicates, skipped, defects, bytes;
	/* skipped inputs by kind; archived messages with each defect, by bit */
	uint64_t skipped_by_kind[ARCHIVE_IMPORT_SKIP_KINDS];
	uint64_t defects_by_kind[32];
};

int archive_import(struct archive *archive, const struct archive_import_settings *set,
		   const char *const *paths, size_t path_count,
		   struct archive_import_result *result_r, const char **error_r);

#endif
