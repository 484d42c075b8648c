/* instance-retention: legal hold, deletion and retention in an instance. */
#include "instance-retention.h"
#include "instance-archive.h"
#include "instance-audit.h"
#include "instance-calls.h"
#include "instance-jobs.h"
#include "instance-rights.h"
#include "instance-users.h"
#include "instance.h"
#include "archive-compact.h"
#include "archive-delete.h"
#include "archive-retention.h"
#include "archive.h"
#include "array.h"
#include "catalog.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "tstr.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- holds and policies: a catalog handle per call ---- */

static struct catalog *retention_catalog(struct instance_call *c)
{
	struct catalog *cat;
	if (archive_catalog_open(c->inst->base_dir, c->inst->key_file, &cat, &c->error) < 0)
		return NULL;
	return cat;
}

static void retention_hold_json(const char *user, int64_t since, const char *reason, void *context)
{
	struct json *conf = context;
	struct json *h = json_new_object();
	json_set_bool(h, "on", true);
	json_set_int(h, "since", (long long)since);
	json_set_string(h, "reason", reason);
	if (user == NULL) {
		json_set(conf, "legalHold", h);
		return;
	}
	json_set_string(h, "archive", user);
	json_append(json_get(conf, "userLegalHolds"), h);
}

int instance_retention_get_compliance(struct instance_call *c)
{
	struct catalog *cat = retention_catalog(c);
	if (cat == NULL)
		return -1;
	struct json *conf = json_new_object();
	struct json *off = json_new_object();
	json_set_bool(off, "on", false);
	json_set(conf, "legalHold", off);
	json_set(conf, "userLegalHolds", json_new_array());
	uint64_t records = 0, bytes = 0;
	int ret = archive_retention_holds(cat, retention_hold_json, conf, &c->error);
	if (ret == 0)
		ret = catalog_removals_pending(cat, &records, &bytes, &c->error);
	catalog_destroy(&cat);
	if (ret < 0) {
		json_unref(&conf);
		return -1;
	}
	/* what deletions left in the segments for a compaction */
	struct json *pending = json_new_object();
	json_set_int(pending, "records", (long long)records);
	json_set_int(pending, "bytes", (long long)bytes);
	json_set(conf, "pendingRemoval", pending);
	c->result = conf;
	return 0;
}

int instance_retention_set_compliance(struct instance_call *c)
{
	const struct json *on = json_get(c->args, "legalHold");
	const char *user_name = json_get_string(c->args, "userName");
	const char *archive_name = NULL;
	if (on == NULL || json_kind(on) != JSON_KIND_BOOL) {
		c->error = "legalHold: true or false";
		return -1;
	}
	if (user_name != NULL &&
	    (archive_name = instance_users_archive_name(c->inst->users, user_name)) == NULL) {
		c->error = tstr_printf("userName: no user '%s'", user_name);
		return -1;
	}
	struct catalog *cat = retention_catalog(c);
	if (cat == NULL)
		return -1;
	int ret = archive_retention_set_hold(
		cat, archive_name, json_get_bool(c->args, "legalHold", false),
		json_get_string(c->args, "reason"), time(NULL), &c->error);
	catalog_destroy(&cat);
	if (ret < 0)
		return -1;
	log_info(tstr_printf("instance=%s", c->inst->id), "legal hold %s %s%s",
		 json_get_bool(c->args, "legalHold", false) ? "on" : "off",
		 archive_name != NULL ? "for the archive of " : "for the whole instance",
		 archive_name != NULL ? archive_name : "");
	return instance_retention_get_compliance(c);
}

/* ---- deletion ---- */

typedef ARRAY(int64_t) retention_ids_t;

static int retention_id_add(int64_t id, void *context)
{
	retention_ids_t *ids = context;
	array_append(ids, id);
	return ids->count > INSTANCE_RETENTION_DELETE_MAX ? 1 : 0;
}

/* A user's deletion: the delete privilege and the delete right on each
 * message's folder (instance-rights.h); refused as a whole otherwise. */
static int retention_user_may_delete(struct instance_call *c, struct archive *a,
				     const retention_ids_t *ids)
{
	const char *user_name = json_get_string(c->args, "userName");
	if (user_name == NULL)
		return 0; /* an administrator of the instance */
	struct json *view = instance_users_rights_view(c->inst->users, user_name);
	int ret = 0;
	if (view == NULL) {
		c->error = tstr_printf("userName: no user '%s'", user_name);
		ret = -1;
	} else if (!instance_rights_has(view, "delete")) {
		c->code = "forbidden";
		c->error = tstr_printf("user '%s' does not have the delete privilege", user_name);
		ret = -1;
	}
	for (size_t i = 0; ret == 0 && i < ids->count; i++) {
		struct catalog_message_ref ref;
		int found = catalog_message_ref(archive_catalog(a), ids->items[i], &ref, &c->error);
		if (found < 0) {
			ret = -1;
		} else if (found == 1 &&
			   !instance_rights_folder(view, ref.user, ref.path, "delete")) {
			c->code = "forbidden";
			c->error = tstr_printf("user '%s' has no delete right on folder %s/%s "
					       "(message %lld)",
					       user_name, ref.user, ref.path,
					       (long long)ids->items[i]);
			ret = -1;
		}
	}
	json_unref(&view);
	return ret;
}

static int retention_delete(struct instance_call *c, struct archive *a, const retention_ids_t *ids)
{
	const char *reason = json_get_string(c->args, "reason");
	uint64_t contents = 0;
	if (reason == NULL || reason[0] == '\0') {
		c->error = "reason: say why these messages are deleted (it is audited)";
		return -1;
	}
	if (retention_user_may_delete(c, a, ids) < 0)
		return -1;
	int ret = archive_delete_messages(a, ids->items, ids->count, time(NULL), &contents,
					  &c->error);
	if (ret == 0)
		c->code = "protected";
	if (ret <= 0)
		return -1;
	c->result = json_new_object();
	json_set_int(c->result, "deleted", (long long)ids->count);
	json_set_int(c->result, "contentsRemoved", (long long)contents);
	log_info(tstr_printf("instance=%s", c->inst->id), "%zu messages deleted (%s)", ids->count,
		 reason);
	return 0;
}

int instance_retention_delete_message(struct instance_call *c)
{
	long long id;
	if (json_get_int(c->args, "messageID", &id) < 0 || id <= 0) {
		c->error = "messageID: the message's ID (as Search or GetMessages gives it)";
		return -1;
	}
	struct archive *a = instance_archive_for_writing(c->inst->archive, &c->error);
	if (a == NULL)
		return -1;
	retention_ids_t ids = ARRAY_INIT;
	array_append(&ids, (int64_t)id);
	int ret = retention_delete(c, a, &ids);
	array_free(&ids);
	return ret;
}

int instance_retention_delete_messages(struct instance_call *c)
{
	const char *query = json_get_string(c->args, "query");
	if (query == NULL || query[0] == '\0') {
		c->error = "query: the search whose results are deleted ('*' for everything)";
		return -1;
	}
	struct archive *a = instance_archive_for_writing(c->inst->archive, &c->error);
	if (a == NULL)
		return -1;
	retention_ids_t ids = ARRAY_INIT;
	int ret = catalog_search_ids(archive_catalog(a), query, NULL, retention_id_add, &ids,
				     &c->error);
	if (ret == 0 && ids.count > INSTANCE_RETENTION_DELETE_MAX) {
		c->error = tstr_printf("query: more than %d matches; narrow it, or delete by a "
				       "retention policy",
				       INSTANCE_RETENTION_DELETE_MAX);
		ret = -1;
	}
	if (ret == 0)
		ret = retention_delete(c, a, &ids);
	array_free(&ids);
	return ret;
}

/* ---- policies ---- */

static struct json *retention_strings(const char *const *items, size_t count)
{
	struct json *list = json_new_array();
	for (size_t i = 0; i < count; i++)
		json_append(list, json_new_string(items[i]));
	return list;
}

static void retention_policy_json(const struct archive_policy *p, void *context)
{
	struct json *o = json_new_object();
	json_set_string(o, "name", p->name);
	json_set_string(o, "type", p->maximum ? "maximum" : "minimum");
	json_set_int(o, "days", (long long)p->days);
	json_set(o, "users", retention_strings(p->users, p->user_count));
	json_set(o, "folders", retention_strings(p->folders, p->folder_count));
	json_set_string(o, "query", p->query);
	json_append(context, o);
}

int instance_retention_get_policies(struct instance_call *c)
{
	struct catalog *cat = retention_catalog(c);
	if (cat == NULL)
		return -1;
	struct json *list = json_new_array();
	int ret = archive_retention_policies(cat, retention_policy_json, list, &c->error);
	catalog_destroy(&cat);
	if (ret < 0) {
		json_unref(&list);
		return -1;
	}
	c->result = list;
	return 0;
}

int instance_retention_set_policies(struct instance_call *c)
{
	struct archive_policy *policies;
	size_t count;
	if (archive_retention_policies_parse(json_get(c->args, "policies"), &policies, &count,
					     &c->error) < 0)
		return -1;
	struct catalog *cat = retention_catalog(c);
	int ret =
		cat == NULL ? -1 : archive_retention_set_policies(cat, policies, count, &c->error);
	catalog_destroy(&cat);
	archive_retention_policies_parsed_free(&policies, count);
	return ret < 0 ? -1 : instance_retention_get_policies(c);
}

/* ---- the retention run: a job ---- */

struct retention_run {
	struct archive *archive;
	struct instance_job *job;
	bool dry_run;
	long long list_limit, listed;
};

static void retention_run_selected(int64_t id, void *context)
{
	struct retention_run *r = context;
	if (r->listed++ < r->list_limit)
		instance_job_report(r->job, tstr_printf("%lld", (long long)id));
}

static void retention_run_progress(uint64_t done, uint64_t total, void *context)
{
	struct retention_run *r = context;
	instance_job_progress(r->job, done, total);
	instance_job_count(r->job, "deleted", (long long)done);
}

static int retention_run_job(struct instance_job *job, void *ctx, const char **error_r)
{
	struct retention_run *r = ctx;
	r->job = job;
	instance_job_status(job, r->dry_run ? "listing what the policies would delete"
					    : "deleting what the policies say");
	struct archive_retention_run run = {
		.dry_run = r->dry_run,
		.now = time(NULL),
		.selected = retention_run_selected,
		.progress = retention_run_progress,
		.context = r,
		.cancel = instance_job_cancel_flag(job),
	};
	struct archive_retention_result res;
	int ret = archive_delete_expired(r->archive, &run, &res, error_r);
	instance_job_count(job, "expired", (long long)res.expired);
	instance_job_count(job, "keptByLegalHold", (long long)res.held);
	instance_job_count(job, "keptByMinimum", (long long)res.kept);
	instance_job_count(job, r->dry_run ? "wouldDelete" : "deleted", (long long)res.deleted);
	instance_job_count(job, "contentsRemoved", (long long)res.contents_removed);
	if (ret == 0)
		instance_job_status(job,
				    tstr_printf("%llu messages %s", (unsigned long long)res.deleted,
						r->dry_run ? "would be deleted" : "deleted"));
	return ret;
}

static void retention_run_free(void *ctx)
{
	mem_free(ctx);
}

static const struct instance_job_kind retention_kind = {
	.name = "retention",
	.run = retention_run_job,
	.done = retention_run_free,
};

static int retention_start(struct instance *inst, bool dry_run, bool scheduled,
			   long long list_limit, struct json **result_r, const char **error_r)
{
	struct archive *a = instance_archive_for_writing(inst->archive, error_r);
	if (a == NULL)
		return -1;
	struct retention_run *r = mem_new(struct retention_run);
	r->archive = a;
	r->dry_run = dry_run;
	r->list_limit = list_limit;
	struct json *shown = json_new_object();
	json_set_bool(shown, "dryRun", dry_run);
	json_set_int(shown, "listLimit", list_limit);
	if (scheduled)
		json_set_bool(shown, "scheduled", true);
	const char *id;
	if (instance_jobs_start(inst->jobs, &retention_kind, shown, NULL, r, &id, error_r) < 0) {
		mem_free(r);
		return -1;
	}
	*result_r = json_new_object();
	json_set_string(*result_r, "jobID", id);
	return 0;
}

int instance_retention_process(struct instance_call *c)
{
	long long limit = 100;
	(void)json_get_int(c->args, "listLimit", &limit);
	if (limit < 0 || limit > INSTANCE_RETENTION_LIST_MAX) {
		c->error = tstr_printf("listLimit: 0 to %d", INSTANCE_RETENTION_LIST_MAX);
		return -1;
	}
	return retention_start(c->inst, json_get_bool(c->args, "dryRun", false), false, limit,
			       &c->result, &c->error);
}

/* ---- compaction: a job ---- */

struct compact_run {
	struct archive *archive;
	struct instance_job *job;
};

static void compact_run_progress(uint64_t done, uint64_t total, void *context)
{
	struct compact_run *r = context;
	instance_job_progress(r->job, done, total);
	instance_job_count(r->job, "segments", (long long)done);
}

static int compact_run_job(struct instance_job *job, void *ctx, const char **error_r)
{
	struct compact_run *r = ctx;
	r->job = job;
	instance_job_status(job, "rewriting segments without deleted records");
	struct archive_compact_run run = {
		.progress = compact_run_progress,
		.context = r,
		.cancel = instance_job_cancel_flag(job),
	};
	struct archive_compact_result res;
	int ret = archive_compact(r->archive, &run, &res, error_r);
	instance_job_count(job, "segments", (long long)res.segments);
	instance_job_count(job, "recordsDropped", (long long)res.records);
	instance_job_count(job, "bytesBefore", (long long)res.bytes_before);
	instance_job_count(job, "bytesAfter", (long long)res.bytes_after);
	if (ret == 0)
		instance_job_status(
			job, tstr_printf("%llu bytes freed",
					 (unsigned long long)(res.bytes_before - res.bytes_after)));
	return ret;
}

static const struct instance_job_kind compact_kind = {
	.name = "compact",
	.run = compact_run_job,
	.done = retention_run_free,
};

int instance_retention_compact(struct instance_call *c)
{
	struct archive *a = instance_archive_for_writing(c->inst->archive, &c->error);
	if (a == NULL)
		return -1;
	struct compact_run *r = mem_new(struct compact_run);
	r->archive = a;
	const char *id;
	if (instance_jobs_start(c->inst->jobs, &compact_kind, json_new_object(), NULL, r, &id,
				&c->error) < 0) {
		mem_free(r);
		return -1;
	}
	c->result = json_new_object();
	json_set_string(c->result, "jobID", id);
	return 0;
}

/* ---- the schedule ---- */

static int retention_period_secs(void)
{
	const char *env = getenv("COFFER_TEST_RETENTION_PERIOD_SECS");
	int secs = env != NULL ? atoi(env) : 0;
	return secs > 0 ? secs : INSTANCE_RETENTION_PERIOD_SECS;
}

static void retention_has_maximum(const struct archive_policy *p, void *context)
{
	if (p->maximum)
		*(bool *)context = true;
}

static void retention_scheduled(evutil_socket_t fd, short events, void *ctx)
{
	struct instance *inst = ctx;
	struct catalog *cat;
	const char *error;
	bool any = false;
	if (inst->frozen || instance_jobs_running(inst->jobs) != NULL)
		return; /* the next period */
	if (archive_catalog_open(inst->base_dir, inst->key_file, &cat, &error) < 0)
		return;
	int ret = archive_retention_policies(cat, retention_has_maximum, &any, &error);
	catalog_destroy(&cat);
	struct json *result = NULL;
	if (ret < 0 || !any)
		return;
	if (retention_start(inst, false, true, 100, &result, &error) < 0) {
		log_warning(tstr_printf("instance=%s", inst->id),
			    "scheduled retention run not started: %s", error);
		return;
	}
	struct json *details = json_new_object();
	json_set_bool(details, "scheduled", true);
	json_set_string(details, "jobID", json_get_string(result, "jobID"));
	instance_audit_record(inst, "scheduler", NULL, "ProcessRetentionPolicies", details);
	json_unref(&details);
	json_unref(&result);
}

void instance_retention_init(struct instance *inst)
{
	inst->retention_timer = event_new(inst->base, -1, EV_PERSIST, retention_scheduled, inst);
	struct timeval tv = {retention_period_secs(), 0};
	event_add(inst->retention_timer, &tv);
}

void instance_retention_deinit(struct instance *inst)
{
	if (inst->retention_timer != NULL)
		event_free(inst->retention_timer);
	inst->retention_timer = NULL;
}
