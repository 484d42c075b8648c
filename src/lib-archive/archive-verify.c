/* archive_verify(): every record against its hash, every catalog row against
 * a record, and the full-text index against the catalog. */
#include "archive-private.h"
#include "array.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct archive_verify_damage {
	int64_t message_id;
	char *reason;
};

/* Progress: how often (in items) the caller hears of it and is asked
 * whether to stop. */
#define ARCHIVE_VERIFY_STEP 64

struct archive_verify_ctx {
	struct archive *a;
	archive_report_cb *cb;
	void *context;
	const struct archive_work *work;
	/* units: one per catalog row, then the store scan mapped onto a
	 * quarter of that by bytes */
	uint64_t done, total, scan_base, scan_units, scan_bytes, scan_done_stores;
	bool cancelled;
	int problems;
	ARRAY(uint64_t) known; /* every record the catalog refers to */
	bool sorted;
	uint64_t *contents; /* the content records alone */
	size_t content_count;
	ARRAY(struct archive_verify_damage) damage;
	const char *reason;
};

/* Segments are at most 4 GiB (offsets fit 32 bits). */
static uint64_t archive_verify_key(int64_t store_id, uint32_t segment, uint64_t offset)
{
	return ((uint64_t)store_id << 52) | ((uint64_t)segment << 32) | (offset & 0xffffffffu);
}

static void archive_verify_know(struct archive_verify_ctx *ctx, const struct catalog_loc *loc)
{
	array_append(&ctx->known, archive_verify_key(loc->store_id, loc->segment, loc->offset));
	ctx->sorted = false;
}

static int archive_verify_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool archive_verify_is_known(struct archive_verify_ctx *ctx, uint64_t key)
{
	if (!ctx->sorted) {
		array_sort(&ctx->known, archive_verify_cmp_u64);
		ctx->sorted = true;
	}
	/* bsearch must not see a NULL array, even an empty one (a catalog
	 * with nothing committed yet, e.g. after a crash in the first batch) */
	return ctx->known.count > 0 && bsearch(&key, ctx->known.items, ctx->known.count,
					       sizeof(uint64_t), archive_verify_cmp_u64) != NULL;
}

/* One unit done; false when the caller wants the work stopped. */
static bool archive_verify_step(struct archive_verify_ctx *ctx, uint64_t units)
{
	const struct archive_work *w = ctx->work;
	uint64_t before = ctx->done;
	ctx->done += units;
	if (before / ARCHIVE_VERIFY_STEP == ctx->done / ARCHIVE_VERIFY_STEP)
		return true;
	if (w->progress != NULL)
		w->progress(ctx->done < ctx->total ? ctx->done : ctx->total, ctx->total,
			    w->context);
	if (w->cancel != NULL && atomic_load(w->cancel))
		ctx->cancelled = true;
	return !ctx->cancelled;
}

static int archive_verify_add_damage(int64_t message_id, void *context)
{
	struct archive_verify_ctx *ctx = context;
	struct archive_verify_damage *d = array_push(&ctx->damage);
	d->message_id = message_id;
	d->reason = mem_strdup(ctx->reason);
	return 0;
}

static const char *archive_verify_where(struct archive *a, const struct catalog_loc *loc)
{
	struct archive_store *s = archive_store_by_id(a, loc->store_id);
	return tstr_printf("%s/seg-%06u offset %llu", s != NULL ? s->name : "?", loc->segment,
			   (unsigned long long)loc->offset);
}

static int archive_verify_content(int64_t id, const unsigned char hash[CATALOG_HASH_LEN],
				  const struct catalog_loc *loc, void *context)
{
	struct archive_verify_ctx *ctx = context;
	if (!archive_verify_step(ctx, 1))
		return -1;
	archive_verify_know(ctx, loc);
	unsigned char *data;
	size_t len;
	const char *error;
	if (archive_load_content(ctx->a, hash, loc, &data, &len, &error) == 0) {
		mem_free(data);
		return 0;
	}
	ctx->reason = tstr_printf("%s (%s)", error, archive_verify_where(ctx->a, loc));
	if (catalog_messages_of_content(ctx->a->cat, id, archive_verify_add_damage, ctx, &error) <
	    0)
		return -1;
	return 0;
}

static int archive_verify_part(int64_t id, const unsigned char hash[CATALOG_HASH_LEN],
			       const struct catalog_loc *loc, void *context)
{
	struct archive_verify_ctx *ctx = context;
	if (!archive_verify_step(ctx, 1))
		return -1;
	archive_verify_know(ctx, loc);
	struct record_part part;
	const char *error;
	if (archive_load_part(ctx->a, hash, loc, &part, &error) == 0) {
		record_part_free(&part);
		return 0;
	}
	ctx->reason = tstr_printf("shared part: %s (%s)", error, archive_verify_where(ctx->a, loc));
	return catalog_messages_of_part(ctx->a->cat, hash, archive_verify_add_damage, ctx, &error);
}

static int archive_verify_message(int64_t id, const unsigned char hash[CATALOG_HASH_LEN],
				  const struct catalog_loc *loc, void *context)
{
	struct archive_verify_ctx *ctx = context;
	if (!archive_verify_step(ctx, 1))
		return -1;
	uint64_t key = archive_verify_key(loc->store_id, loc->segment, loc->offset);
	archive_verify_know(ctx, loc);
	if (ctx->content_count > 0 && bsearch(&key, ctx->contents, ctx->content_count,
					      sizeof(uint64_t), archive_verify_cmp_u64) != NULL)
		return 0; /* the content record itself, checked above */
	/* A REF record: filing of an existing content in another folder. */
	unsigned char *plain;
	size_t plain_len;
	const char *error;
	if (archive_open_record(ctx->a, loc, RECORD_TYPE_REF, &plain, &plain_len, &error) == 0) {
		struct record_meta meta;
		char *user, *folder;
		int ret = record_decode_meta(RECORD_TYPE_REF, plain, plain_len, &meta, &user,
					     &folder, &error);
		mem_free(plain);
		if (ret == 0) {
			mem_free(user);
			mem_free(folder);
			if (memcmp(meta.hash, hash, RECORD_HASH_LEN) == 0)
				return 0;
			error = "folder reference names another content";
		}
	}
	ctx->reason =
		tstr_printf("folder reference: %s (%s)", error, archive_verify_where(ctx->a, loc));
	archive_verify_add_damage(id, ctx);
	return 0;
}

static void archive_verify_problem(struct archive_verify_ctx *ctx, const char *line)
{
	ctx->problems++;
	ctx->cb(line, ctx->context);
}

/* The scan's share of the units, by the bytes of all stores read so far. */
static bool archive_verify_scan_step(struct archive_verify_ctx *ctx, uint64_t store_bytes)
{
	uint64_t read = ctx->scan_done_stores + store_bytes;
	uint64_t at = ctx->scan_base + (ctx->scan_bytes == 0 ? 0
							     : (uint64_t)((double)ctx->scan_units *
									  read / ctx->scan_bytes));
	if (at > ctx->total)
		at = ctx->total;
	return archive_verify_step(ctx, at > ctx->done ? at - ctx->done : 0);
}

static int archive_verify_scan(struct archive_verify_ctx *ctx, struct archive_store *s,
			       const char **error_r)
{
	struct store_scan *scan = store_scan_create(s->store);
	int ret = 0;
	uint64_t seg_base = 0, seg_end = 0;
	uint32_t segment = 0;
	for (;;) {
		enum store_scan_result result;
		struct store_loc loc;
		unsigned char *rec = NULL;
		if (store_scan_next(scan, &result, &loc, &rec, error_r) < 0) {
			ret = -1;
			break;
		}
		if (result == STORE_SCAN_END)
			break;
		if (loc.segment != segment) {
			seg_base += seg_end;
			segment = loc.segment;
		}
		seg_end = loc.offset + loc.length;
		if (!archive_verify_scan_step(ctx, seg_base + seg_end)) {
			mem_free(rec);
			ret = -1;
			break;
		}
		bool known = archive_verify_is_known(
			ctx, archive_verify_key(s->id, loc.segment, loc.offset));
		if (result == STORE_SCAN_RECORD) {
			if (!known) {
				enum record_type type;
				unsigned char *plain;
				size_t plain_len;
				const char *error;
				if (record_open(ctx->a->key, rec, loc.length, &type, &plain,
						&plain_len, &error) < 0) {
					archive_verify_problem(
						ctx,
						tstr_printf("%s/seg-%06u offset %llu: %s "
							    "(a record no message refers to)",
							    s->name, loc.segment,
							    (unsigned long long)loc.offset, error));
				} else {
					if (type != RECORD_TYPE_DICT)
						archive_verify_problem(
							ctx,
							tstr_printf(
								"%s/seg-%06u offset %llu: record "
								"missing from the catalog "
								"(run rebuild)",
								s->name, loc.segment,
								(unsigned long long)loc.offset));
					mem_free(plain);
				}
			}
			mem_free(rec);
		} else if (!known) {
			archive_verify_problem(
				ctx,
				tstr_printf("%s/seg-%06u offset %llu: %u %s bytes", s->name,
					    loc.segment, (unsigned long long)loc.offset, loc.length,
					    result == STORE_SCAN_TORN ? "torn" : "damaged"));
		}
	}
	store_scan_destroy(&scan);
	return ret;
}

static int archive_verify_damage_cmp(const void *a, const void *b)
{
	const struct archive_verify_damage *x = a, *y = b;
	return x->message_id < y->message_id ? -1 : x->message_id > y->message_id;
}

/* The units of the whole run: catalog rows, then the scan's share. */
static int archive_verify_plan(struct archive_verify_ctx *ctx, const char **error_r)
{
	struct catalog_stats st;
	if (catalog_stats(ctx->a->cat, &st, error_r) < 0)
		return -1;
	uint64_t rows = st.contents + st.parts + st.messages;
	ctx->scan_units = rows / 4 + 1;
	ctx->total = rows + ctx->scan_units;
	for (size_t i = 0; i < ctx->a->stores.count; i++) {
		if (ctx->a->stores.items[i].state != CATALOG_STORE_DISABLED)
			ctx->scan_bytes += store_size(ctx->a->stores.items[i].store);
	}
	return 0;
}

/* A record a deletion left for a compaction: expected in the segments. */
static int archive_verify_removal(int64_t id, const unsigned char hash[RECORD_HASH_LEN],
				  const struct catalog_loc *loc, void *context)
{
	archive_verify_know(context, loc);
	return 0;
}

int archive_verify(struct archive *a, archive_report_cb *cb, void *context, const char **error_r)
{
	struct archive_work work = {.report = cb, .context = context};
	return archive_verify_work(a, &work, error_r);
}

int archive_verify_work(struct archive *a, const struct archive_work *work, const char **error_r)
{
	struct archive_verify_ctx ctx = {
		.a = a, .cb = work->report, .context = work->context, .work = work};
	int ret = 0;
	if (archive_verify_plan(&ctx, error_r) < 0) {
		ret = -1;
	} else if (catalog_foreach_content(a->cat, archive_verify_content, &ctx, error_r) < 0) {
		ret = -1;
	} else {
		ctx.content_count = ctx.known.count;
		ctx.contents = mem_alloc((ctx.content_count + 1) * sizeof(uint64_t));
		if (ctx.content_count > 0) /* known is NULL while empty */
			memcpy(ctx.contents, ctx.known.items, ctx.content_count * sizeof(uint64_t));
		if (ctx.content_count > 1)
			qsort(ctx.contents, ctx.content_count, sizeof(uint64_t),
			      archive_verify_cmp_u64);
		if (catalog_foreach_part(a->cat, archive_verify_part, &ctx, error_r) < 0 ||
		    catalog_foreach_message(a->cat, archive_verify_message, &ctx, error_r) < 0 ||
		    catalog_foreach_removal(a->cat, archive_verify_removal, &ctx, error_r) < 0)
			ret = -1;
	}
	ctx.scan_base = ctx.done;
	for (size_t i = 0; ret == 0 && i < a->stores.count; i++) {
		if (a->stores.items[i].state != CATALOG_STORE_DISABLED) {
			ret = archive_verify_scan(&ctx, &a->stores.items[i], error_r);
			ctx.scan_done_stores += store_size(a->stores.items[i].store);
		}
	}
	if (ret == 0) {
		array_sort(&ctx.damage, archive_verify_damage_cmp);
		for (size_t i = 0; i < ctx.damage.count; i++) {
			if (i > 0 &&
			    ctx.damage.items[i].message_id == ctx.damage.items[i - 1].message_id)
				continue;
			archive_verify_problem(
				&ctx, tstr_printf("message %lld: %s",
						  (long long)ctx.damage.items[i].message_id,
						  ctx.damage.items[i].reason));
		}
		const char *error;
		if (catalog_check_index(a->cat, &error) < 0)
			archive_verify_problem(&ctx, tstr_printf("index: %s", error));
	}
	for (size_t i = 0; i < ctx.damage.count; i++)
		mem_free(ctx.damage.items[i].reason);
	array_free(&ctx.damage);
	array_free(&ctx.known);
	mem_free(ctx.contents);
	if (ctx.cancelled)
		*error_r = "cancelled";
	else if (ret == 0 && work->progress != NULL)
		work->progress(ctx.total, ctx.total, work->context);
	return ret < 0 ? -1 : ctx.problems;
}
