/* archive-delete: deletion of messages, honouring holds and keep times. */
#include "archive-delete.h"
#include "archive-private.h"
#include "archive-retention.h"
#include "mem.h"
#include "tstr.h"

#include <string.h>

/* messages deleted per transaction by a retention run */
#define ARCHIVE_DELETE_BATCH 500

/* A content nothing refers to any more: its index row is deleted with the
 * values it was indexed with, derived again from the message
 * (mime_parse_index(): the fields mime_parse() gave the import). */
static int archive_delete_content(struct archive *a, int64_t content_id, int64_t now,
				  const char **error_r)
{
	unsigned char hash[CATALOG_HASH_LEN];
	struct catalog_loc loc;
	unsigned char *data;
	size_t len;
	int found = catalog_content_record(a->cat, content_id, hash, &loc, error_r);
	if (found <= 0)
		return found;
	if (archive_load_content(a, hash, &loc, &data, &len, error_r) < 0) {
		*error_r = tstr_printf("content %lld cannot be read to take it out of the index: "
				       "%s",
				       (long long)content_id, *error_r);
		return -1;
	}
	struct mime_info *info = mime_parse_index(data, len, MIME_LARGE_PART_MIN);
	struct catalog_content c = {
		.from = info->from,
		.to = info->to,
		.cc = info->cc,
		.subject = info->subject,
		.body_text = info->body_text,
		.attachment_names = info->attachment_names,
	};
	int ret = catalog_content_remove(a->cat, content_id, &c, now, error_r);
	mime_info_destroy(&info);
	mem_free(data);
	return ret < 0 ? -1 : 0;
}

typedef ARRAY(int64_t) archive_ids_t;

/* One message's folder reference, inside the caller's transaction, after
 * its checks; a content no folder refers to any more is added to *orphans
 * for archive_delete_orphans(). */
static int archive_delete_ref(struct archive *a, int64_t id, int64_t now, archive_ids_t *orphans,
			      const char **error_r)
{
	int64_t content_id;
	int ret = catalog_message_remove(a->cat, id, now, &content_id, error_r);
	if (ret == 2)
		array_append(orphans, content_id);
	return ret < 0 ? -1 : 0;
}

static int archive_delete_id_cmp(const void *p1, const void *p2)
{
	int64_t a = *(const int64_t *)p1, b = *(const int64_t *)p2;
	return a < b ? -1 : a > b;
}

/* The contents a transaction's deletions left without a folder, after all
 * its folder references went: FTS5 flushes its pending changes (the
 * 'delete' entries) into a new index segment at the start of every
 * statement that opens a savepoint, as a DELETE from messages does (its
 * trigger), so deleting a content between two references would write one
 * index segment per message. Here the index deletes follow each other, in
 * ascending content id: FTS5 also flushes whenever a row id is lower than
 * the one before (its pending entries are kept in row id order), and a
 * retention run selects by date, whose order is not the ids'. */
static int archive_delete_orphans(struct archive *a, archive_ids_t *orphans, int64_t now,
				  uint64_t *contents_removed, const char **error_r)
{
	array_sort(orphans, archive_delete_id_cmp);
	for (size_t i = 0; i < orphans->count; i++) {
		if (archive_delete_content(a, orphans->items[i], now, error_r) < 0)
			return -1;
		(*contents_removed)++;
	}
	return 0;
}

static int archive_delete_writable(struct archive *a, const char **error_r)
{
	if (a->write)
		return 0;
	*error_r = "deleting needs the archive opened for writing";
	return -1;
}

int archive_delete_messages(struct archive *a, const int64_t *ids, size_t count, int64_t now,
			    uint64_t *contents_removed_r, const char **error_r)
{
	struct archive_retention_rules *rules = NULL;
	archive_ids_t orphans = ARRAY_INIT;
	*contents_removed_r = 0;
	if (archive_delete_writable(a, error_r) < 0 || catalog_begin(a->cat, error_r) < 0)
		return -1;
	/* read under the write lock: nothing changes them until the commit */
	int ret = archive_retention_rules_load(a->cat, now, &rules, error_r) < 0 ? -1 : 1;
	for (size_t i = 0; ret == 1 && i < count; i++) {
		struct catalog_message_ref ref;
		int found = catalog_message_ref(a->cat, ids[i], &ref, error_r);
		const char *blocked = found == 1 ? archive_retention_blocks(rules, &ref) : NULL;
		if (found < 0) {
			ret = -1;
		} else if (found == 0) {
			*error_r = tstr_printf("message %lld: no such message", (long long)ids[i]);
			ret = 0;
		} else if (blocked != NULL) {
			*error_r = tstr_printf("message %lld is protected by %s", (long long)ids[i],
					       blocked);
			ret = 0;
		} else if (archive_delete_ref(a, ids[i], now, &orphans, error_r) < 0) {
			ret = -1;
		}
	}
	if (ret == 1 && archive_delete_orphans(a, &orphans, now, contents_removed_r, error_r) < 0)
		ret = -1;
	archive_retention_rules_free(&rules);
	array_free(&orphans);
	if (ret == 1 && catalog_commit(a->cat, error_r) == 0)
		return 1;
	catalog_rollback(a->cat);
	*contents_removed_r = 0;
	return ret == 1 ? -1 : ret;
}

/* ---- retention runs ---- */

struct archive_expiry_scan {
	const struct archive_retention_rules *rules;
	struct archive_retention_result *result;
	ARRAY(int64_t) ids;
};

static int archive_expiry_candidate(const struct catalog_message_ref *ref, void *context)
{
	struct archive_expiry_scan *s = context;
	if (archive_retention_expired(s->rules, ref) == NULL)
		return 0;
	s->result->expired++;
	if (archive_retention_held(s->rules, ref->user))
		s->result->held++;
	else if (archive_retention_blocks(s->rules, ref) != NULL)
		s->result->kept++;
	else
		array_append(&s->ids, ref->id);
	return 0;
}

/* One batch in one transaction, the holds read again under the write lock
 * (a hold set meanwhile stops the run here); the policies are the run's. */
static int archive_expiry_batch(struct archive *a, const struct archive_retention_run *run,
				struct archive_retention_rules *rules, const int64_t *ids,
				size_t count, struct archive_retention_result *result,
				const char **error_r)
{
	archive_ids_t orphans = ARRAY_INIT;
	if (catalog_begin(a->cat, error_r) < 0)
		return -1;
	int ret = archive_retention_rules_reload_holds(a->cat, rules, error_r);
	for (size_t i = 0; ret == 0 && i < count; i++) {
		struct catalog_message_ref ref;
		int found = catalog_message_ref(a->cat, ids[i], &ref, error_r);
		if (found < 0) {
			ret = -1;
		} else if (found == 1 && archive_retention_expired(rules, &ref) != NULL &&
			   archive_retention_blocks(rules, &ref) == NULL) {
			ret = archive_delete_ref(a, ids[i], run->now, &orphans, error_r);
			if (ret == 0) {
				result->deleted++;
				if (run->selected != NULL)
					run->selected(ids[i], run->context);
			}
		}
	}
	if (ret == 0)
		ret = archive_delete_orphans(a, &orphans, run->now, &result->contents_removed,
					     error_r);
	array_free(&orphans);
	if (ret == 0 && catalog_commit(a->cat, error_r) == 0)
		return 0;
	catalog_rollback(a->cat);
	return -1;
}

int archive_delete_expired(struct archive *a, const struct archive_retention_run *run,
			   struct archive_retention_result *result, const char **error_r)
{
	struct archive_retention_rules *rules;
	memset(result, 0, sizeof(*result));
	if ((!run->dry_run && archive_delete_writable(a, error_r) < 0) ||
	    archive_retention_rules_load(a->cat, run->now, &rules, error_r) < 0)
		return -1;
	struct archive_expiry_scan scan = {.rules = rules, .result = result};
	int64_t bound = archive_retention_expiry_bound(rules);
	int ret = bound == INT64_MIN
			  ? 0
			  : catalog_messages_before(a->cat, bound, archive_expiry_candidate, &scan,
						    error_r);
	if (ret == 0 && run->dry_run) {
		result->deleted = scan.ids.count;
		for (size_t i = 0; run->selected != NULL && i < scan.ids.count; i++)
			run->selected(scan.ids.items[i], run->context);
	}
	for (size_t at = 0; ret == 0 && !run->dry_run && at < scan.ids.count;
	     at += ARCHIVE_DELETE_BATCH) {
		if (run->cancel != NULL && atomic_load(run->cancel)) {
			*error_r = "cancelled";
			ret = -1;
			break;
		}
		size_t n = scan.ids.count - at < ARCHIVE_DELETE_BATCH ? scan.ids.count - at
								      : ARCHIVE_DELETE_BATCH;
		ret = archive_expiry_batch(a, run, rules, scan.ids.items + at, n, result, error_r);
		if (ret == 0 && run->progress != NULL)
			run->progress(at + n, scan.ids.count, run->context);
	}
	archive_retention_rules_free(&rules);
	array_free(&scan.ids);
	return ret;
}

/* ---- after a rebuild ---- */

typedef ARRAY(struct catalog_loc) archive_locs_t;

static int archive_delete_removed_loc(int64_t id, const unsigned char hash[CATALOG_HASH_LEN],
				      const struct catalog_loc *loc, void *context)
{
	archive_locs_t *locs = context;
	array_append(locs, *loc);
	return 0;
}

static int archive_delete_found_id(int64_t id, void *context)
{
	archive_ids_t *ids = context;
	array_append(ids, id);
	return 0;
}

int archive_delete_reapply(struct archive *a, struct catalog *old, int64_t now, uint64_t *deleted_r,
			   const char **error_r)
{
	archive_locs_t locs = ARRAY_INIT;
	archive_ids_t ids = ARRAY_INIT, orphans = ARRAY_INIT;
	uint64_t contents = 0;
	*deleted_r = 0;
	int ret = catalog_foreach_removed_message(old, archive_delete_removed_loc, &locs, error_r);
	for (size_t i = 0; ret == 0 && i < locs.count; i++)
		ret = catalog_messages_at(a->cat, &locs.items[i], archive_delete_found_id, &ids,
					  error_r);
	/* no rule is asked: these were deleted already, under the rules then */
	for (size_t i = 0; ret == 0 && i < ids.count; i++) {
		ret = archive_delete_ref(a, ids.items[i], now, &orphans, error_r);
		if (ret == 0)
			(*deleted_r)++;
	}
	if (ret == 0)
		ret = archive_delete_orphans(a, &orphans, now, &contents, error_r);
	array_free(&locs);
	array_free(&ids);
	array_free(&orphans);
	return ret;
}
