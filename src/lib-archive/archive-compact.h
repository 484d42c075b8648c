#ifndef COFFER_ARCHIVE_COMPACT_H
#define COFFER_ARCHIVE_COMPACT_H
/* archive-compact: deleted records leave the disk. Every segment holding a
 * record a deletion recorded for removal (catalog removals, all kinds but
 * 4) is rewritten without those records, one segment per transaction:
 *
 *   1. seg-N.compact written and fsynced, its directory entry fsynced;
 *   2. one catalog commit: the kept records' new offsets, the segment's
 *      removals forgotten, the store's committed tail if N is the tail;
 *   3. seg-N.compact renamed over seg-N, the directory fsynced.
 *
 * A crash before 2 leaves seg-N as it was and its removals queued (the
 * .compact file is removed on the next open for writing); a crash between
 * 2 and 3 is finished on the next open for writing (the segment has no
 * removals left, so the .compact file is the committed one). Afterwards
 * the catalog is scrubbed: the full-text index merged (deleted rows leave
 * its old index segments), the WAL checkpointed and the file VACUUMed. */
#include "archive.h"
#include <stdatomic.h>

struct archive_compact_run {
	archive_progress_cb *progress; /* segments done of total; may be NULL */
	void *context;
	const atomic_bool *cancel; /* checked between segments; may be NULL */
};
struct archive_compact_result {
	uint64_t segments;     /* rewritten */
	uint64_t records;      /* dropped */
	uint64_t bytes_before; /* of the rewritten segments */
	uint64_t bytes_after;
	/* where the time went (benchmarks): wall and CPU seconds (this
	 * process, all threads) of the segment rewrites and of the scrub */
	double rewrite_secs, rewrite_cpu_secs, scrub_secs, scrub_cpu_secs;
};
int archive_compact(struct archive *archive, const struct archive_compact_run *run,
		    struct archive_compact_result *result_r, const char **error_r);

/* On open for writing, before the store at dir is opened: finish or undo
 * an interrupted compaction of store store_id. */
int archive_compact_recover(struct archive *archive, int64_t store_id, const char *dir,
			    const char **error_r);

/* Every record of every open store, decrypted: the bytes of message and
 * part records (decompressed) and each record's plaintext, in pieces. For
 * tests that check what the disk still holds. */
typedef void archive_dump_cb(const void *data, size_t len, void *context);
int archive_dump(struct archive *archive, archive_dump_cb *cb, void *context, const char **error_r);

#endif
