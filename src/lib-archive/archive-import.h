#ifndef COFFER_ARCHIVE_IMPORT_H
#define COFFER_ARCHIVE_IMPORT_H
/* archive-import: imports EML files, folders of them, mbox files (or an mbox
 * on standard input, "-") and Maildir trees into an open archive.
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
 * and in each store (so `rebuild` needs nothing else). */
#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "archive.h"

#define ARCHIVE_IMPORT_INFLIGHT (96u * 1024 * 1024)
#define ARCHIVE_IMPORT_DICT_SAMPLES 1000
#define ARCHIVE_IMPORT_DICT_WINDOW (64ull * 1024 * 1024)

enum archive_import_event_type {
	ARCHIVE_IMPORT_ARCHIVED,
	ARCHIVE_IMPORT_DUPLICATE,
	ARCHIVE_IMPORT_SKIPPED,
	ARCHIVE_IMPORT_PROGRESS,
};

struct archive_import_event {
	enum archive_import_event_type type;
	const char *source; /* "path", or "path:N" for the Nth message of an mbox */
	int64_t message_id;
	const char *hash_hex;
	unsigned int defects;
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
};

struct archive_import_result {
	uint64_t archived, duplicates, skipped, defects, bytes;
};

int archive_import(struct archive *archive, const struct archive_import_settings *set,
		   const char *const *paths, size_t path_count,
		   struct archive_import_result *result_r, const char **error_r);

#endif
