#ifndef COFFER_ARCHIVE_DELETE_H
#define COFFER_ARCHIVE_DELETE_H
/* archive-delete: deleting messages, by request and by retention policy.
 *
 * A deletion removes the message's folder reference from the catalog; the
 * content goes only when no folder of any user refers to it any more, and
 * with it its full-text index row (FTS5's 'delete', with the values derived
 * again from the message: the index is contentless) and the shared parts no
 * other content needs. The records stay in the segments, listed in the
 * catalog's removals table, until a compaction rewrites them (see
 * docs/storage.md). Everything happens in one catalog transaction per
 * batch, in which the legal holds and retention policies are read
 * (archive-retention.h): a hold set before the deletion commits is seen,
 * and no message is deleted that a hold or a minimum keep time protects.
 * Needs a writable archive. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive.h"

/* Delete these messages, all or none: 1 deleted, 0 refused (*error_r names
 * the message and what protects it, or that there is no such message;
 * nothing was deleted), -1 error. *contents_removed_r: contents no folder
 * refers to any more. */
int archive_delete_messages(struct archive *archive, const int64_t *ids, size_t count, int64_t now,
			    uint64_t *contents_removed_r, const char **error_r);

/* A retention run: every message a maximum keep time has expired, less
 * those a legal hold or a minimum keep time protects. With dry_run nothing
 * changes. `selected` (may be NULL) gets each message id that is (or would
 * be) deleted, oldest first. */
typedef void archive_id_found_cb(int64_t id, void *context);
struct archive_retention_run {
	bool dry_run;
	int64_t now;
	archive_id_found_cb *selected;
	archive_progress_cb *progress;
	void *context; /* for both callbacks */
	const atomic_bool *cancel;
};
struct archive_retention_result {
	uint64_t expired; /* past a maximum keep time */
	uint64_t held;    /* of those, kept by a legal hold */
	uint64_t kept;    /* of those, kept by a minimum keep time */
	uint64_t deleted; /* (dry run: that would be) */
	uint64_t contents_removed;
};
int archive_delete_expired(struct archive *archive, const struct archive_retention_run *run,
			   struct archive_retention_result *result_r, const char **error_r);

/* After a rebuild (inside its transaction on the new catalog): delete
 * again every folder reference `old` (the catalog before the rebuild)
 * recorded as deleted, found by its record, so that a rebuild from the
 * segments brings back no deleted message while its records wait for a
 * compaction. *deleted_r: how many. */
struct catalog;
int archive_delete_reapply(struct archive *archive, struct catalog *old, int64_t now,
			   uint64_t *deleted_r, const char **error_r);

#endif
