/* archive-compact: rewriting segments without their removed records. */
#include "archive-compact.h"
#include "archive-private.h"
#include "mem.h"
#include "tstr.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct archive_compact_seg {
	int64_t store_id;
	uint32_t segment;
};

struct archive_compact_plan {
	ARRAY(struct archive_compact_seg) segs;
	/* while one segment is rewritten */
	int64_t store_id;
	uint32_t segment;
	ARRAY(uint64_t) dropped; /* offsets, ascending */
	ARRAY(uint64_t) old_offsets;
	ARRAY(uint64_t) new_offsets;
	uint64_t dropped_records;
};

static int archive_compact_list_seg(int64_t id, const unsigned char hash[CATALOG_HASH_LEN],
				    const struct catalog_loc *loc, void *context)
{
	struct archive_compact_plan *p = context;
	if (p->segs.count > 0 && p->segs.items[p->segs.count - 1].store_id == loc->store_id &&
	    p->segs.items[p->segs.count - 1].segment == loc->segment)
		return 0;
	struct archive_compact_seg *s = array_push(&p->segs);
	s->store_id = loc->store_id;
	s->segment = loc->segment;
	return 0;
}

static int archive_compact_list_dropped(int64_t id, const unsigned char hash[CATALOG_HASH_LEN],
					const struct catalog_loc *loc, void *context)
{
	struct archive_compact_plan *p = context;
	if (loc->store_id == p->store_id && loc->segment == p->segment)
		array_append(&p->dropped, loc->offset);
	return 0;
}

static int archive_compact_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int archive_compact_keep(const struct store_loc *loc, uint64_t new_offset, void *context)
{
	struct archive_compact_plan *p = context;
	if (bsearch(&loc->offset, p->dropped.items, p->dropped.count, sizeof(uint64_t),
		    archive_compact_cmp_u64) != NULL) {
		p->dropped_records++;
		return 0;
	}
	if (loc->offset != new_offset) {
		array_append(&p->old_offsets, loc->offset);
		array_append(&p->new_offsets, new_offset);
	}
	return 1;
}

/* Steps 1 and 2 (see archive-compact.h), inside one transaction. */
static int archive_compact_rewrite(struct archive *a, struct archive_store *s,
				   struct archive_compact_plan *p, uint64_t *new_len_r,
				   const char **error_r)
{
	uint32_t tail_seg;
	uint64_t tail_len;
	/* read under the write lock: a deletion since the plan counts too */
	if (catalog_foreach_dropped_removal(a->cat, archive_compact_list_dropped, p, error_r) < 0 ||
	    store_compact_write(s->store, p->segment, archive_compact_keep, p, new_len_r, error_r) <
		    0)
		return -1;
	store_tail(s->store, &tail_seg, &tail_len);
	if (catalog_segment_compacted(a->cat, s->id, p->segment, p->old_offsets.items,
				      p->new_offsets.items, p->old_offsets.count, error_r) < 0 ||
	    (tail_seg == p->segment &&
	     catalog_store_set_tail(a->cat, s->id, p->segment, *new_len_r, error_r) < 0) ||
	    catalog_commit(a->cat, error_r) < 0) {
		store_compact_discard(s->store, p->segment);
		return -1;
	}
	return 0;
}

static int archive_compact_segment(struct archive *a, struct archive_compact_plan *p,
				   struct archive_compact_result *result, const char **error_r)
{
	struct archive_store *s = archive_store_by_id(a, p->store_id);
	if (s == NULL) {
		*error_r = tstr_printf("store %lld is not open", (long long)p->store_id);
		return -1;
	}
	uint64_t before = 0, after;
	p->dropped.count = p->old_offsets.count = p->new_offsets.count = 0;
	p->dropped_records = 0;
	uint64_t size_all = store_size(s->store);
	if (catalog_begin(a->cat, error_r) < 0)
		return -1;
	if (archive_compact_rewrite(a, s, p, &after, error_r) < 0) {
		catalog_rollback(a->cat);
		return -1;
	}
	/* committed: from here the new file is the segment, also after a crash */
	if (store_compact_install(s->store, p->segment, error_r) < 0)
		return -1;
	before = size_all - (store_size(s->store) - after);
	result->segments++;
	result->records += p->dropped_records;
	result->bytes_before += before;
	result->bytes_after += after;
	return 0;
}

/* Wall and CPU seconds now, for the result's split. */
static void archive_compact_clock(double *wall_r, double *cpu_r)
{
	struct timespec ts;
	struct rusage ru;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	getrusage(RUSAGE_SELF, &ru);
	*wall_r = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	*cpu_r = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int archive_compact(struct archive *a, const struct archive_compact_run *run,
		    struct archive_compact_result *result, const char **error_r)
{
	struct archive_compact_plan plan = {0};
	memset(result, 0, sizeof(*result));
	if (!a->write) {
		*error_r = "compacting needs the archive opened for writing";
		return -1;
	}
	double wall0, cpu0, wall1, cpu1, wall2, cpu2;
	archive_compact_clock(&wall0, &cpu0);
	int ret = catalog_foreach_dropped_removal(a->cat, archive_compact_list_seg, &plan, error_r);
	if (ret == 0 && plan.segs.count > 0)
		ret = catalog_defer_checkpoints(a->cat, error_r);
	for (size_t i = 0; ret == 0 && i < plan.segs.count; i++) {
		if (run != NULL && run->cancel != NULL && atomic_load(run->cancel)) {
			*error_r = "cancelled";
			ret = -1;
			break;
		}
		plan.store_id = plan.segs.items[i].store_id;
		plan.segment = plan.segs.items[i].segment;
		ret = archive_compact_segment(a, &plan, result, error_r);
		if (ret == 0 && run != NULL && run->progress != NULL)
			run->progress(i + 1, plan.segs.count, run->context);
	}
	archive_compact_clock(&wall1, &cpu1);
	if (ret == 0)
		ret = catalog_scrub(a->cat, error_r);
	else
		catalog_resume_checkpoints(a->cat);
	archive_compact_clock(&wall2, &cpu2);
	result->rewrite_secs = wall1 - wall0;
	result->rewrite_cpu_secs = cpu1 - cpu0;
	result->scrub_secs = wall2 - wall1;
	result->scrub_cpu_secs = cpu2 - cpu1;
	array_free(&plan.segs);
	array_free(&plan.dropped);
	array_free(&plan.old_offsets);
	array_free(&plan.new_offsets);
	return ret;
}

struct archive_compact_recovery {
	struct archive *a;
	int64_t store_id;
};

static int archive_compact_committed(uint32_t segment, void *context, const char **error_r)
{
	struct archive_compact_recovery *r = context;
	int pending = catalog_segment_has_removals(r->a->cat, r->store_id, segment, error_r);
	return pending < 0 ? -1 : pending == 0;
}

int archive_compact_recover(struct archive *a, int64_t store_id, const char *dir,
			    const char **error_r)
{
	struct archive_compact_recovery r = {.a = a, .store_id = store_id};
	return store_compact_recover(dir, archive_compact_committed, &r, error_r);
}

/* ---- decrypted dump (tests: what the segments still hold) ---- */

static void archive_dump_record(struct archive *a, const unsigned char *plain, size_t len,
				enum record_type type, archive_dump_cb *cb, void *context)
{
	const char *error;
	if (type == RECORD_TYPE_MESSAGE) {
		struct record_message msg;
		if (record_decode_message(plain, len, archive_dict_lookup, a, &msg, &error) < 0)
			return;
		for (size_t i = 0; i < msg.chunk_count; i++) {
			if (!msg.chunks[i].is_part)
				cb(msg.chunks[i].data, msg.chunks[i].len, context);
		}
		record_message_free(&msg);
	} else if (type == RECORD_TYPE_PART) {
		struct record_part part;
		if (record_decode_part(plain, len, archive_dict_lookup, a, &part, &error) < 0)
			return;
		cb(part.data, part.len, context);
		record_part_free(&part);
	}
	/* the raw plaintext too: REF metadata, dictionaries */
	cb(plain, len, context);
}

int archive_dump(struct archive *a, archive_dump_cb *cb, void *context, const char **error_r)
{
	for (size_t i = 0; i < a->stores.count; i++) {
		struct store_scan *scan = store_scan_create(a->stores.items[i].store);
		for (;;) {
			enum store_scan_result result;
			struct store_loc loc;
			unsigned char *rec = NULL, *plain;
			size_t plain_len;
			enum record_type type;
			if (store_scan_next(scan, &result, &loc, &rec, error_r) < 0) {
				store_scan_destroy(&scan);
				return -1;
			}
			if (result == STORE_SCAN_END)
				break;
			if (result == STORE_SCAN_RECORD &&
			    record_open(a->key, rec, loc.length, &type, &plain, &plain_len,
					error_r) == 0) {
				archive_dump_record(a, plain, plain_len, type, cb, context);
				mem_free(plain);
			}
			mem_free(rec);
		}
		store_scan_destroy(&scan);
	}
	return 0;
}
