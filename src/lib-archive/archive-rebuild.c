/* archive_rebuild() and archive_store_attach(): the catalog and the index
 * from the segments alone. */
#include "archive-delete.h"
#include "archive-private.h"
#include "array.h"
#include "file.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ARCHIVE_REBUILD_BATCH 1000
#define ARCHIVE_REBUILD_UNITS 1000

struct archive_rebuild_ctx {
	struct archive *a;
	archive_report_cb *cb;
	void *context;
	const struct archive_work *work; /* NULL: no progress, no cancel */
	/* progress: ARCHIVE_REBUILD_UNITS per store, by bytes read */
	uint64_t units_done, units_total;
	bool cancelled;
	int damaged;
	/* raw bytes of the contents rebuilt so far: where each dictionary
	 * began, for the next import's spacing of new ones */
	uint64_t raw_total;
};

static void archive_rebuild_report(struct archive_rebuild_ctx *ctx, struct archive_store *s,
				   const struct store_loc *loc, const char *what)
{
	ctx->damaged++;
	ctx->cb(tstr_printf("%s/seg-%06u offset %llu: %s", s->name, loc->segment,
			    (unsigned long long)loc->offset, what),
		ctx->context);
}

static int archive_rebuild_message(struct archive_rebuild_ctx *ctx, struct archive_store *s,
				   const struct catalog_loc *cloc, const unsigned char *plain,
				   size_t plain_len, const char **error_r)
{
	struct archive *a = ctx->a;
	struct record_message msg;
	const char *error;
	if (record_decode_message(plain, plain_len, archive_dict_lookup, a, &msg, &error) < 0) {
		struct store_loc sl = {cloc->segment, cloc->offset, cloc->length};
		archive_rebuild_report(ctx, s, &sl, error);
		return 0;
	}
	int64_t content_id, message_id;
	int found = catalog_content_find(a->cat, msg.meta.hash, &content_id, error_r);
	int ret = 0;
	if (found < 0) {
		ret = -1;
	} else if (found == 1) {
		/* the same content stored twice (e.g. in two stores): file it */
		ret = catalog_message_add(a->cat, content_id, msg.meta.user, msg.meta.folder,
					  msg.meta.internal_date, msg.meta.internal_date, cloc,
					  &message_id, error_r) < 0
			      ? -1
			      : 0;
	} else {
		unsigned char *data;
		size_t len;
		if (archive_load_content(a, msg.meta.hash, cloc, &data, &len, &error) < 0) {
			struct store_loc sl = {cloc->segment, cloc->offset, cloc->length};
			archive_rebuild_report(ctx, s, &sl, error);
		} else {
			struct mime_info *info = mime_parse(data, len, MIME_LARGE_PART_MIN);
			size_t nparts = 0;
			unsigned char(*hashes)[RECORD_HASH_LEN] =
				mem_alloc((msg.chunk_count + 1) * RECORD_HASH_LEN);
			for (size_t i = 0; i < msg.chunk_count; i++) {
				if (msg.chunks[i].is_part)
					memcpy(hashes[nparts++], msg.chunks[i].hash,
					       RECORD_HASH_LEN);
			}
			ret = archive_catalog_add(a, &msg.meta, info, NULL, 0, cloc,
						  (const unsigned char(*)[RECORD_HASH_LEN])hashes,
						  nparts, &content_id, &message_id, error_r);
			mem_free(hashes);
			mime_info_destroy(&info);
			mem_free(data);
			ctx->raw_total += len;
		}
	}
	record_message_free(&msg);
	return ret;
}

static int archive_rebuild_record(struct archive_rebuild_ctx *ctx, struct archive_store *s,
				  const struct store_loc *loc, const unsigned char *rec,
				  const char **error_r)
{
	struct archive *a = ctx->a;
	enum record_type type;
	unsigned char *plain;
	size_t plain_len;
	const char *error;
	if (record_open(a->key, rec, loc->length, &type, &plain, &plain_len, &error) < 0) {
		archive_rebuild_report(ctx, s, loc, error);
		return 0;
	}
	struct catalog_loc cloc = {s->id, loc->segment, loc->offset, loc->length};
	int ret = 0;
	switch (type) {
	case RECORD_TYPE_DICT: {
		struct record_dict dict;
		if (record_decode_dict(plain, plain_len, &dict, &error) < 0) {
			archive_rebuild_report(ctx, s, loc, error);
		} else {
			if (dict.id == a->dicts.count + 1) {
				ret = catalog_dict_add(a->cat, dict.id, dict.data, dict.len,
						       ctx->raw_total, error_r);
				archive_dict_keep(
					a, compress_dict_create(dict.id, dict.data, dict.len));
			}
			record_dict_free(&dict);
		}
		break;
	}
	case RECORD_TYPE_PART: {
		struct record_part part;
		if (record_decode_part(plain, plain_len, archive_dict_lookup, a, &part, &error) <
		    0) {
			archive_rebuild_report(ctx, s, loc, error);
			break;
		}
		unsigned char check[RECORD_HASH_LEN];
		crypto_sha256(part.data, part.len, check);
		if (memcmp(check, part.hash, RECORD_HASH_LEN) != 0)
			archive_rebuild_report(ctx, s, loc, "part does not match its hash");
		else
			ret = catalog_part_add(a->cat, part.hash, &cloc, part.len, error_r);
		record_part_free(&part);
		break;
	}
	case RECORD_TYPE_MESSAGE:
		ret = archive_rebuild_message(ctx, s, &cloc, plain, plain_len, error_r);
		break;
	case RECORD_TYPE_REF: {
		struct record_meta meta;
		char *user, *folder;
		int64_t content_id, message_id;
		if (record_decode_meta(type, plain, plain_len, &meta, &user, &folder, &error) < 0) {
			archive_rebuild_report(ctx, s, loc, error);
			break;
		}
		int found = catalog_content_find(a->cat, meta.hash, &content_id, error_r);
		if (found < 0)
			ret = -1;
		else if (found == 0)
			archive_rebuild_report(ctx, s, loc,
					       "folder reference to a message that is lost");
		else
			ret = catalog_message_add(a->cat, content_id, user, folder,
						  meta.internal_date, meta.internal_date, &cloc,
						  &message_id, error_r) < 0
				      ? -1
				      : 0;
		mem_free(user);
		mem_free(folder);
		break;
	}
	}
	mem_free(plain);
	return ret;
}

/* Tell how far the scan of a store got (`read` of `size` bytes); false
 * when the caller wants the work stopped. */
static bool archive_rebuild_step(struct archive_rebuild_ctx *ctx, uint64_t read, uint64_t size)
{
	const struct archive_work *w = ctx->work;
	if (w == NULL)
		return true;
	if (w->progress != NULL) {
		uint64_t in_store =
			size == 0 ? 0 : (uint64_t)((double)ARCHIVE_REBUILD_UNITS * read / size);
		if (in_store > ARCHIVE_REBUILD_UNITS)
			in_store = ARCHIVE_REBUILD_UNITS;
		w->progress(ctx->units_done + in_store, ctx->units_total, w->context);
	}
	if (w->cancel != NULL && atomic_load(w->cancel))
		ctx->cancelled = true;
	return !ctx->cancelled;
}

/* Read one store's segments into the catalog (inside batches of
 * transactions), and record its committed tail. */
static int archive_rebuild_store(struct archive_rebuild_ctx *ctx, struct archive_store *s,
				 const char **error_r)
{
	struct archive *a = ctx->a;
	struct store_scan *scan = store_scan_create(s->store);
	uint32_t tail_seg;
	uint64_t tail_len;
	store_tail(s->store, &tail_seg, &tail_len);
	int ret = 0, in_batch = 0;
	bool open = false; /* a transaction is open (the scan may end right after one began) */
	uint64_t size = store_size(s->store), seg_base = 0, seg_end = 0;
	uint32_t segment = 0;
	for (;;) {
		if (!open && catalog_begin(a->cat, error_r) < 0) {
			ret = -1;
			break;
		}
		open = true;
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
		if (in_batch % 64 == 0 && !archive_rebuild_step(ctx, seg_base + seg_end, size)) {
			mem_free(rec);
			*error_r = "cancelled";
			ret = -1;
			break;
		}
		if (result == STORE_SCAN_RECORD) {
			ret = archive_rebuild_record(ctx, s, &loc, rec, error_r);
			mem_free(rec);
		} else if (result == STORE_SCAN_TORN && loc.segment == tail_seg) {
			/* an unfinished write at the very end: not part of the store */
			tail_len = loc.offset;
			ctx->cb(tstr_printf("%s/seg-%06u offset %llu: torn tail of %u bytes "
					    "dropped",
					    s->name, loc.segment, (unsigned long long)loc.offset,
					    loc.length),
				ctx->context);
		} else {
			archive_rebuild_report(ctx, s, &loc,
					       tstr_printf("%u damaged bytes skipped", loc.length));
		}
		if (ret < 0)
			break;
		if (++in_batch == ARCHIVE_REBUILD_BATCH) {
			open = false;
			if (catalog_commit(a->cat, error_r) < 0) {
				ret = -1;
				break;
			}
			in_batch = 0;
		}
	}
	store_scan_destroy(&scan);
	ctx->units_done += ARCHIVE_REBUILD_UNITS;
	if (ret == 0) {
		if (!open && catalog_begin(a->cat, error_r) < 0)
			return -1;
		if (catalog_store_set_tail(a->cat, s->id, tail_seg, tail_len, error_r) < 0 ||
		    catalog_commit(a->cat, error_r) < 0)
			ret = -1;
	}
	if (ret < 0)
		catalog_rollback(a->cat);
	return ret;
}

static int archive_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **archive_list_store_dirs(const char *base_dir, size_t *count_r)
{
	char *dir = mem_printf("%s/stores", base_dir);
	DIR *d = opendir(dir);
	mem_free(dir);
	ARRAY(char *) names = ARRAY_INIT;
	if (d != NULL) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, "store-", 6) != 0)
				continue;
			array_append(&names, mem_strdup(de->d_name));
		}
		closedir(d);
	}
	array_sort(&names, archive_name_cmp);
	*count_r = names.count;
	return names.items;
}

static void archive_remove_db(const char *path)
{
	const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		char *p = mem_printf("%s%s", path, suffixes[i]);
		(void)unlink(p);
		mem_free(p);
	}
}

/* The instance's users live in the catalog but not in the stores: the new
 * catalog gets them from the old one, read as late as possible. An old
 * catalog that cannot be opened any more has none to give (said so). */
static int archive_rebuild_keep_users(struct archive *a, const char *old_path,
				      archive_report_cb *cb, void *context, const char **error_r)
{
	const char *error;
	struct catalog *old;
	if (file_exists(old_path, &error) != 1)
		return 0;
	if (catalog_open(old_path, a->catalog_key, &old, &error) < 0) {
		cb(tstr_printf("the old catalog cannot be read, its users are lost: %s", error),
		   context);
		return 0;
	}
	uint64_t redeleted;
	int ret = catalog_begin(a->cat, error_r) < 0 ||
				  catalog_users_copy(old, a->cat, error_r) < 0 ||
				  archive_delete_reapply(a, old, time(NULL), &redeleted, error_r) <
					  0 ||
				  catalog_commit(a->cat, error_r) < 0
			  ? -1
			  : 0;
	if (ret < 0)
		catalog_rollback(a->cat);
	catalog_destroy(&old);
	return ret;
}

int archive_rebuild(const struct archive_settings *set, archive_report_cb *cb, void *context,
		    const char **error_r)
{
	struct archive_work work = {.report = cb, .context = context};
	return archive_rebuild_work(set, &work, error_r);
}

int archive_rebuild_work(const struct archive_settings *set, const struct archive_work *work,
			 const char **error_r)
{
	archive_report_cb *cb = work->report;
	void *context = work->context;
	struct archive_settings s2 = *set;
	s2.write = true;
	s2.create = false;
	struct archive *a;
	if (archive_open_common(&s2, false, &a, error_r) < 0)
		return -1;
	char *path = mem_printf("%s/catalog.db", a->base_dir);
	char *tmp = mem_printf("%s/catalog.rebuild.db", a->base_dir);
	archive_remove_db(tmp);
	struct archive_rebuild_ctx ctx = {.a = a, .cb = cb, .context = context, .work = work};
	size_t count;
	char **names = archive_list_store_dirs(a->base_dir, &count);
	ctx.units_total = (count + 1) * ARCHIVE_REBUILD_UNITS; /* the last share: the swap */
	/* keep the stores' states if the old catalog can still tell them */
	struct catalog_store *old_stores = NULL;
	size_t old_count = 0;
	const char *ignored;
	struct catalog *old;
	if (file_exists(path, &ignored) == 1 &&
	    catalog_open(path, a->catalog_key, &old, &ignored) == 0) {
		if (catalog_stores(old, &old_stores, &old_count, &ignored) < 0)
			old_count = 0;
		catalog_destroy(&old);
	}
	int ret = catalog_open(tmp, a->catalog_key, &a->cat, error_r);
	/* the stores are read as they are: nothing is truncated */
	a->write = false;
	for (size_t i = 0; ret == 0 && i < count; i++) {
		bool known = old_count == 0;
		for (size_t k = 0; k < old_count; k++)
			known = known || strcmp(old_stores[k].name, names[i]) == 0;
		if (!known) {
			/* detached: its directory stays out until `store attach` */
			cb(tstr_printf("%s: detached, left out (store attach brings it back)",
				       names[i]),
			   context);
			continue;
		}
		int64_t id;
		enum catalog_store_state state =
			i + 1 == count ? CATALOG_STORE_CURRENT : CATALOG_STORE_NORMAL;
		for (size_t k = 0; k < old_count; k++) {
			if (strcmp(old_stores[k].name, names[i]) == 0)
				state = old_stores[k].state;
		}
		if (catalog_store_add(a->cat, names[i], state, &id, error_r) < 0) {
			ret = -1;
			break;
		}
		struct catalog_store cs = {.id = id, .name = names[i], .state = state};
		if (archive_open_store(a, &cs, error_r) < 0 ||
		    archive_rebuild_store(&ctx, &a->stores.items[a->stores.count - 1], error_r) < 0)
			ret = -1;
	}
	for (size_t i = 0; i < count; i++)
		mem_free(names[i]);
	mem_free(names);
	catalog_stores_free(old_stores, old_count);
	if (ret == 0 && archive_rebuild_keep_users(a, path, cb, context, error_r) < 0)
		ret = -1;
	catalog_destroy(&a->cat);
	if (ret < 0) {
		/* cancelled or failed: the old catalog stays as it was */
		archive_remove_db(tmp);
	} else {
		archive_remove_db(path);
		if (rename(tmp, path) < 0) {
			*error_r = tstr_printf("rename(%s, %s) failed: %s", tmp, path,
					       strerror(errno));
			ret = -1;
		} else if (file_fsync_dir(a->base_dir, error_r) < 0) {
			ret = -1;
		}
	}
	mem_free(path);
	mem_free(tmp);
	archive_destroy(&a);
	if (ret == 0 && work->progress != NULL)
		work->progress(ctx.units_total, ctx.units_total, work->context);
	return ret < 0 ? -1 : ctx.damaged;
}

int archive_store_attach(struct archive *a, const char *name, archive_report_cb *cb, void *context,
			 const char **error_r)
{
	for (size_t i = 0; i < a->stores.count; i++) {
		if (strcmp(a->stores.items[i].name, name) == 0) {
			*error_r = tstr_printf("store %s is already attached", name);
			return -1;
		}
	}
	if (strncmp(name, "store-", 6) != 0 || strchr(name, '/') != NULL) {
		*error_r = tstr_printf("store name %s: expected store-NNNN under <base>/stores/",
				       name);
		return -1;
	}
	char *dir = mem_printf("%s/stores/%s", a->base_dir, name);
	int exists = file_exists(dir, error_r);
	mem_free(dir);
	if (exists <= 0) {
		if (exists == 0)
			*error_r = tstr_printf("%s/stores/%s does not exist", a->base_dir, name);
		return -1;
	}
	int64_t id;
	if (catalog_begin(a->cat, error_r) < 0)
		return -1;
	if (catalog_store_add(a->cat, name, CATALOG_STORE_NORMAL, &id, error_r) < 0 ||
	    catalog_commit(a->cat, error_r) < 0) {
		catalog_rollback(a->cat);
		return -1;
	}
	struct catalog_store cs = {.id = id, .name = (char *)name, .state = CATALOG_STORE_NORMAL};
	bool write = a->write;
	a->write = false;
	int ret = archive_open_store(a, &cs, error_r);
	a->write = write;
	if (ret < 0)
		return -1;
	struct archive_rebuild_ctx ctx = {.a = a, .cb = cb, .context = context};
	if (archive_rebuild_store(&ctx, &a->stores.items[a->stores.count - 1], error_r) < 0)
		return -1;
	return ctx.damaged;
}
