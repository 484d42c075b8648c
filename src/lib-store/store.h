#ifndef COFFER_STORE_H
#define COFFER_STORE_H
/* store: one archive store directory, a numbered series of append-only
 * segment files ("seg-000001", ...) holding records (see record.h).
 *
 * Contract: store_append() writes a whole record at the tail of the current
 * segment (starting a new segment when the current one would pass
 * segment_max) and returns its location; nothing is durable until
 * store_sync() returns 0, and the caller (the catalog) decides what counts
 * as committed. store_truncate_to() cuts the store back to a committed tail
 * (used on open after a crash, and after a failed write such as a full disk),
 * so a torn or uncommitted tail never stays behind a later record.
 * store_read() returns the exact bytes of one record. A scan walks every
 * segment in order and reports each record, and each damaged or torn region
 * (resynchronising on the next valid header), never reading out of bounds.
 * One store object is used by one thread at a time. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SEGMENT_MAX_DEFAULT (1024ull * 1024 * 1024)

struct store;
struct store_scan;

struct store_loc {
	uint32_t segment;
	uint64_t offset;
	uint32_t length;
};

int store_open(const char *dir, uint64_t segment_max, struct store **store_r, const char **error_r);
void store_destroy(struct store **store);
const char *store_dir(const struct store *store);

int store_append(struct store *store, const void *rec, size_t len, struct store_loc *loc_r,
		 const char **error_r);
int store_sync(struct store *store, const char **error_r);
/* The current tail: (segment, length) of the last segment. */
void store_tail(const struct store *store, uint32_t *segment_r, uint64_t *length_r);
/* Cut the store back to `length` bytes of `segment`, removing later
 * segments; durable when it returns 0. */
int store_truncate_to(struct store *store, uint32_t segment, uint64_t length, const char **error_r);
uint64_t store_size(const struct store *store);

int store_read(struct store *store, const struct store_loc *loc, unsigned char **rec_r,
	       const char **error_r);

enum store_scan_result {
	STORE_SCAN_END = 0,
	STORE_SCAN_RECORD,  /* *rec_r holds a record whose header is valid */
	STORE_SCAN_DAMAGED, /* bytes at *loc_r are not a valid record header */
	STORE_SCAN_TORN,    /* a record runs past the end of its segment */
};

struct store_scan *store_scan_create(struct store *store);
void store_scan_destroy(struct store_scan **scan);
/* -1 on I/O errors. *rec_r is mem_alloc()ed for STORE_SCAN_RECORD. */
int store_scan_next(struct store_scan *scan, enum store_scan_result *result_r,
		    struct store_loc *loc_r, unsigned char **rec_r, const char **error_r);

/* Compaction: a segment is rewritten without some of its records into
 * "seg-NNNNNN.compact" (store_compact_write(): fsynced, with its directory
 * entry). The caller then commits the records' new locations and installs
 * the file over the segment (store_compact_install(): rename, directory
 * fsync), or discards it. A crash between leaves the .compact file:
 * store_compact_recover(), before store_open(), asks whether the caller's
 * commit happened (installs it) or not (removes it). keep() gets each
 * record and the offset it would have in the new file: 1 keeps it, 0 drops
 * it, -1 stops. */
typedef int store_keep_cb(const struct store_loc *loc, uint64_t new_offset, void *context);
int store_compact_write(struct store *store, uint32_t segment, store_keep_cb *keep, void *context,
			uint64_t *new_len_r, const char **error_r);
int store_compact_install(struct store *store, uint32_t segment, const char **error_r);
void store_compact_discard(struct store *store, uint32_t segment);
/* committed(): 1 if the rewrite of segment was committed, 0 if not, -1 */
typedef int store_committed_cb(uint32_t segment, void *context, const char **error_r);
int store_compact_recover(const char *dir, store_committed_cb *committed, void *context,
			  const char **error_r);

#endif
