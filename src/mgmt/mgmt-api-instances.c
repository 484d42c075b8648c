/* mgmt-api-instances: instances on Instance Hosts (create, list, configure,
 * start, stop, restart, freeze, thaw, delete, live statistics) and the
 * directories of an Instance Host. */
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mgmt-api.h"
#include "mgmt-jobs.h"
#include "mgmt-links.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "rpc.h"
#include "tstr.h"

#include <fnmatch.h>
#include <string.h>

#define MGMT_INSTANCE_CALL_SECS 60
/* Calls of one bulk operation in flight at once: each call's time limit
 * then covers its own instance, not a thousand others queued before it on
 * their Instance Host (which starts a few at a time). */
#define MGMT_BULK_IN_FLIGHT 16

static struct json *mgmt_instance_json(struct mgmt *mgmt, const struct mgmtdb_instance *i)
{
	struct json *e = json_new_object();
	const char *error;
	json_set_string(e, "instanceID", i->id);
	json_set_string(e, "alias", i->alias);
	json_set_string(e, "displayName", i->display_name);
	json_set_string(e, "instanceHost", i->instance_host);
	json_set_string(e, "baseDirectory", i->base_directory);
	json_set_string(e, "startMode", i->start_mode);
	json_set_int(e, "created", (long long)i->created);
	json_set_string(e, "status",
			mgmt_links_instance_state(mgmt->links, i->instance_host, i->id, &error));
	json_set_string(e, "error", error == NULL ? "" : error);
	const struct json *info = mgmt_links_instance_info(mgmt->links, i->instance_host, i->id);
	long long v;
	if (json_get_int(info, "pid", &v) == 1)
		json_set_int(e, "pid", v);
	if (json_get_int(info, "startMillis", &v) == 1)
		json_set_int(e, "startMillis", v);
	if (json_get_int(info, "restarts", &v) == 1)
		json_set_int(e, "restarts", v);
	return e;
}

/* ---- one call to an Instance Host, finishing a job ---- */

struct mgmt_host_call {
	struct mgmt *mgmt;
	struct mgmt_job *job;
	char *instance_id; /* for bookkeeping after the answer; may be NULL */
	int (*then)(struct mgmt_host_call *call, const struct json *result, const char **error_r);
	struct json *extra; /* what `then` needs */
};

static void mgmt_host_call_free(struct mgmt_host_call *call)
{
	mem_free(call->instance_id);
	json_unref(&call->extra);
	mem_free(call);
}

static void mgmt_host_call_answer(struct rpc_conn *conn, const struct json *result,
				  const char *code, const char *text, void *ctx)
{
	struct mgmt_host_call *call = ctx;
	const char *error = code != NULL ? text : NULL;
	struct json *out = NULL;
	if (error == NULL && call->then != NULL) {
		/* `then` records the outcome and leaves the job's result in extra. */
		if (call->then(call, result, &error) == 0) {
			out = call->extra;
			call->extra = NULL;
		}
	} else if (error == NULL) {
		out = result != NULL ? json_clone(result) : NULL;
	}
	mgmt_job_done(call->job, out, error);
	mgmt_host_call_free(call);
}

static void mgmt_ignore_answer(struct rpc_conn *conn, const struct json *result, const char *code,
			       const char *text, void *ctx)
{
	if (code != NULL)
		log_warning(NULL, "automatic start failed: %s", text);
}

static void mgmt_host_call(struct mgmt *mgmt, struct mgmt_job *job, const char *host,
			   const char *method, struct json *args, struct mgmt_host_call *call)
{
	const char *error;
	if (call == NULL)
		call = mem_new(struct mgmt_host_call);
	call->mgmt = mgmt;
	call->job = job;
	if (mgmt_links_call_host(mgmt->links, host, method, args, MGMT_INSTANCE_CALL_SECS,
				 mgmt_host_call_answer, call, &error) < 0) {
		mgmt_job_done(job, NULL, error);
		mgmt_host_call_free(call);
	}
}

static int mgmt_find_instance(struct mgmt *mgmt, const struct json *args,
			      struct mgmtdb_instance *inst_r, const char **error_r)
{
	const char *id = json_get_string(args, "instanceID");
	if (id == NULL || mgmtdb_instance_find(mgmt->db, id, inst_r) == 0) {
		*error_r = tstr_printf("no instance '%s'", id == NULL ? "" : id);
		return -1;
	}
	return 0;
}

/* ---- create ---- */

static int mgmt_create_then(struct mgmt_host_call *call, const struct json *result,
			    const char **error_r)
{
	struct mgmt *mgmt = call->mgmt;
	struct json *e = call->extra;
	struct mgmtdb_instance inst = {
		.id = json_get_string(e, "instanceID"),
		.alias = json_get_string(e, "alias"),
		.display_name = json_get_string(e, "displayName"),
		.instance_host = json_get_string(e, "instanceHost"),
		.base_directory = json_get_string(e, "baseDirectory"),
		.start_mode = json_get_string(e, "startMode"),
	};
	/* The Instance Host made the directory and key; now it is ours to list. */
	if (mgmtdb_instance_add(mgmt->db, &inst, error_r) < 0 || mgmt_db_commit(mgmt, error_r) < 0)
		return -1;
	mgmt_links_push_instances(mgmt->links);
	mgmt_links_message(mgmt->links, LOG_LEVEL_INFO, "instance %s created on %s (%s)", inst.id,
			   inst.instance_host, inst.base_directory);
	mgmt_links_note_instance_state(mgmt->links, inst.instance_host, inst.id,
				       strcmp(inst.start_mode, "automatic") == 0 ? "starting"
										 : "stopped");
	if (strcmp(inst.start_mode, "automatic") == 0) {
		struct json *args = json_new_object();
		const char *error;
		json_set_string(args, "instanceID", inst.id);
		(void)mgmt_links_call_host(mgmt->links, inst.instance_host, "StartInstance", args,
					   MGMT_INSTANCE_CALL_SECS, mgmt_ignore_answer, NULL,
					   &error);
	}
	struct mgmtdb_instance stored;
	(void)mgmtdb_instance_find(mgmt->db, inst.id, &stored);
	json_unref(&call->extra);
	call->extra = mgmt_instance_json(mgmt, &stored);
	return 0;
}

static void mgmt_api_create_instance(struct mgmt *mgmt, const struct json *args,
				     struct mgmt_job *job)
{
	struct mgmtdb_instance inst = {
		.id = json_get_string(args, "instanceID"),
		.alias = json_get_string(args, "alias") ? json_get_string(args, "alias") : "",
		.display_name = json_get_string(args, "displayName")
					? json_get_string(args, "displayName")
					: "",
		.instance_host = json_get_string(args, "instanceHost"),
		.base_directory = json_get_string(args, "baseDirectory"),
		.start_mode = json_get_string(args, "startMode")
				      ? json_get_string(args, "startMode")
				      : "automatic",
	};
	const char *error;
	struct mgmtdb_server host;
	/* Check everything the database will check before the host does work. */
	struct mgmtdb *scratch = mgmtdb_create();
	int ok = mgmtdb_instance_add(scratch, &inst, &error);
	mgmtdb_destroy(&scratch);
	struct mgmtdb_instance clash;
	if (ok == 0 &&
	    (mgmtdb_instance_find(mgmt->db, inst.id, &clash) == 1 ||
	     (inst.alias[0] != '\0' && mgmtdb_instance_find(mgmt->db, inst.alias, &clash) == 1))) {
		error = tstr_printf("an instance with the ID or alias '%s' exists", clash.id);
		ok = -1;
	}
	if (ok == 0 &&
	    mgmtdb_server_find(mgmt->db, MGMTDB_INSTANCE_HOST, inst.instance_host, &host) == 0) {
		error = tstr_printf("no Instance Host '%s' is registered", inst.instance_host);
		ok = -1;
	}
	if (ok < 0) {
		mgmt_job_done(job, NULL, error);
		return;
	}
	struct mgmt_host_call *call = mem_new(struct mgmt_host_call);
	call->then = mgmt_create_then;
	call->extra = json_new_object();
	json_set_string(call->extra, "instanceID", inst.id);
	json_set_string(call->extra, "alias", inst.alias);
	json_set_string(call->extra, "displayName", inst.display_name);
	json_set_string(call->extra, "instanceHost", inst.instance_host);
	json_set_string(call->extra, "baseDirectory", inst.base_directory);
	json_set_string(call->extra, "startMode", inst.start_mode);
	struct json *host_args = json_new_object();
	json_set_string(host_args, "instanceID", inst.id);
	json_set_string(host_args, "baseDirectory", inst.base_directory);
	mgmt_host_call(mgmt, job, inst.instance_host, "CreateInstance", host_args, call);
}

/* ---- listing and configuration ---- */

static bool mgmt_instance_matches(const char *filter, const struct mgmtdb_instance *i)
{
	return fnmatch(filter, i->id, 0) == 0 ||
	       (i->alias[0] != '\0' && fnmatch(filter, i->alias, 0) == 0);
}

static int mgmt_api_get_instances(struct mgmt *mgmt, const struct json *args,
				  struct json **result_r, const char **error_r)
{
	const char *filter = json_get_string(args, "instanceFilter");
	struct json *list = json_new_array();
	for (size_t n = 0; n < mgmtdb_instance_count(mgmt->db); n++) {
		struct mgmtdb_instance i;
		mgmtdb_instance_get(mgmt->db, n, &i);
		if (filter == NULL || mgmt_instance_matches(filter, &i))
			json_append(list, mgmt_instance_json(mgmt, &i));
	}
	*result_r = list;
	return 0;
}

static int mgmt_api_get_instance_configuration(struct mgmt *mgmt, const struct json *args,
					       struct json **result_r, const char **error_r)
{
	struct mgmtdb_instance i;
	if (mgmt_find_instance(mgmt, args, &i, error_r) < 0)
		return -1;
	*result_r = mgmt_instance_json(mgmt, &i);
	return 0;
}

static int mgmt_set_configuration_then(struct mgmt_host_call *call, const struct json *result,
				       const char **error_r)
{
	struct mgmtdb_instance i;
	struct json *e = call->extra;
	if (mgmtdb_instance_find(call->mgmt->db, call->instance_id, &i) == 0) {
		*error_r = "the instance was deleted meanwhile";
		return -1;
	}
	char *alias =
		mem_strdup(json_get_string(e, "alias") ? json_get_string(e, "alias") : i.alias);
	char *display =
		mem_strdup(json_get_string(e, "displayName") ? json_get_string(e, "displayName")
							     : i.display_name);
	char *dir =
		mem_strdup(json_get_string(e, "baseDirectory") ? json_get_string(e, "baseDirectory")
							       : i.base_directory);
	char *mode = mem_strdup(json_get_string(e, "startMode") ? json_get_string(e, "startMode")
								: i.start_mode);
	struct mgmtdb_instance updated = i;
	updated.alias = alias;
	updated.display_name = display;
	updated.base_directory = dir;
	updated.start_mode = mode;
	int ret = mgmtdb_instance_update(call->mgmt->db, &updated, error_r);
	if (ret == 0)
		ret = mgmt_db_commit(call->mgmt, error_r);
	mem_free(alias);
	mem_free(display);
	mem_free(dir);
	mem_free(mode);
	if (ret == 0) {
		mgmt_links_push_instances(call->mgmt->links);
		json_unref(&call->extra);
		(void)mgmtdb_instance_find(call->mgmt->db, call->instance_id, &i);
		call->extra = mgmt_instance_json(call->mgmt, &i);
	}
	return ret;
}

static void mgmt_api_set_instance_configuration(struct mgmt *mgmt, const struct json *args,
						struct mgmt_job *job)
{
	struct mgmtdb_instance i;
	const char *error;
	if (mgmt_find_instance(mgmt, args, &i, &error) < 0) {
		mgmt_job_done(job, NULL, error);
		return;
	}
	struct mgmt_host_call *call = mem_new(struct mgmt_host_call);
	call->instance_id = mem_strdup(i.id);
	call->then = mgmt_set_configuration_then;
	call->extra = json_clone(args);
	call->mgmt = mgmt;
	call->job = job;
	const char *dir = json_get_string(args, "baseDirectory");
	if (dir != NULL && strcmp(dir, i.base_directory) != 0) {
		/* The Instance Host checks and records it (the instance must be stopped). */
		struct json *host_args = json_new_object();
		json_set_string(host_args, "instanceID", i.id);
		json_set_string(host_args, "baseDirectory", dir);
		mgmt_host_call(mgmt, job, i.instance_host, "SetInstanceBaseDirectory", host_args,
			       call);
		return;
	}
	mgmt_host_call_answer(NULL, NULL, NULL, NULL, call);
}

/* ---- operations on every instance matching a filter ---- */

struct mgmt_bulk {
	struct mgmt *mgmt;
	struct mgmt_job *job;
	char *method;
	unsigned int total, pending, failed;
	struct json *results;
	bool delete_after, delete_data;
	struct json *targets; /* {id, host}, sent from `next` on */
	size_t next;
	unsigned int in_flight;
	bool sending;
};

struct mgmt_bulk_item {
	struct mgmt_bulk *bulk;
	char *id;
	char *host;
};

static void mgmt_bulk_send_more(struct mgmt_bulk *bulk);

static void mgmt_bulk_finish(struct mgmt_bulk *bulk)
{
	if (bulk->failed > 0)
		mgmt_job_log(bulk->job, tstr_printf("%u of %u failed", bulk->failed, bulk->total));
	/* The per-instance results go with a failure too: they say which failed. */
	mgmt_job_done(bulk->job, bulk->results,
		      bulk->failed > 0 ? tstr_printf("%s failed for %u of %u instance(s)",
						     bulk->method, bulk->failed, bulk->total)
				       : NULL);
	json_unref(&bulk->targets);
	mem_free(bulk->method);
	mem_free(bulk);
}

static void mgmt_bulk_answer(struct rpc_conn *conn, const struct json *result, const char *code,
			     const char *text, void *ctx)
{
	struct mgmt_bulk_item *item = ctx;
	struct mgmt_bulk *bulk = item->bulk;
	struct json *r = json_new_object();
	json_set_string(r, "instanceID", item->id);
	if (code != NULL) {
		bulk->failed++;
		json_set_string(r, "error", text);
		mgmt_job_log(bulk->job, tstr_printf("%s: %s", item->id, text));
	} else {
		/* The Instance Host answers with the instance's status: remember it
		 * now (events come on another connection and may be later). */
		json_set_string(r, "status", json_get_string(result, "state"));
		long long v;
		if (json_get_int(result, "pid", &v) == 1)
			json_set_int(r, "pid", v);
		if (json_get_int(result, "startMillis", &v) == 1)
			json_set_int(r, "startMillis", v);
		if (json_kind(result) == JSON_KIND_OBJECT)
			mgmt_links_note_instance(bulk->mgmt->links, item->host, item->id, result);
		if (bulk->delete_after) {
			const char *error;
			if (mgmtdb_instance_remove(bulk->mgmt->db, item->id) == 1) {
				if (mgmt_db_commit(bulk->mgmt, &error) < 0) {
					bulk->failed++;
					json_set_string(r, "error", error);
				}
				mgmt_links_push_instances(bulk->mgmt->links);
			}
		}
	}
	json_append(bulk->results, r);
	bulk->pending--;
	mgmt_job_progress(
		bulk->job, (int)((bulk->total - bulk->pending) * 100 / bulk->total),
		tstr_printf("%u of %u instance(s) done", bulk->total - bulk->pending, bulk->total));
	mem_free(item->id);
	mem_free(item->host);
	mem_free(item);
	bulk->in_flight--;
	if (bulk->pending == 0)
		mgmt_bulk_finish(bulk);
	else
		mgmt_bulk_send_more(bulk);
}

/* Send calls until MGMT_BULK_IN_FLIGHT wait for answers; each answer sends
 * the next. An answer given at once (unreachable host) comes back here
 * while sending: the loop below goes on instead of recursing. */
static void mgmt_bulk_send_more(struct mgmt_bulk *bulk)
{
	if (bulk->sending)
		return;
	bulk->sending = true;
	while (bulk->in_flight < MGMT_BULK_IN_FLIGHT && bulk->next < json_count(bulk->targets)) {
		const struct json *t = json_at(bulk->targets, bulk->next++);
		struct mgmt_bulk_item *item = mem_new(struct mgmt_bulk_item);
		item->bulk = bulk;
		item->id = mem_strdup(json_get_string(t, "id"));
		item->host = mem_strdup(json_get_string(t, "host"));
		struct json *host_args = json_new_object();
		const char *error;
		json_set_string(host_args, "instanceID", item->id);
		if (bulk->delete_after)
			json_set_bool(host_args, "deleteData", bulk->delete_data);
		bulk->in_flight++;
		if (mgmt_links_call_host(bulk->mgmt->links, item->host, bulk->method, host_args,
					 MGMT_INSTANCE_CALL_SECS, mgmt_bulk_answer, item,
					 &error) < 0)
			mgmt_bulk_answer(NULL, NULL, "unreachable", error, item);
	}
	bulk->sending = false;
}

static void mgmt_bulk_start(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job,
			    const char *method, bool delete_after)
{
	const char *filter = json_get_string(args, "instanceFilter");
	struct mgmt_bulk *bulk = mem_new(struct mgmt_bulk);
	bulk->mgmt = mgmt;
	bulk->job = job;
	bulk->method = mem_strdup(method);
	bulk->results = json_new_array();
	bulk->delete_after = delete_after;
	/* Collect first: answers may arrive while we are still sending. */
	struct json *targets = json_new_array();
	for (size_t n = 0; n < mgmtdb_instance_count(mgmt->db); n++) {
		struct mgmtdb_instance i;
		mgmtdb_instance_get(mgmt->db, n, &i);
		if (mgmt_instance_matches(filter, &i)) {
			struct json *t = json_new_object();
			json_set_string(t, "id", i.id);
			json_set_string(t, "host", i.instance_host);
			json_append(targets, t);
		}
	}
	bulk->total = bulk->pending = (unsigned int)json_count(targets) + 1;
	bulk->targets = targets;
	bulk->delete_data = json_get_bool(args, "deleteData", false);
	mgmt_bulk_send_more(bulk);
	/* The extra count keeps the job open until every call was sent. */
	bulk->total--;
	if (--bulk->pending == 0)
		mgmt_bulk_finish(bulk);
}

static void mgmt_api_start_instances(struct mgmt *mgmt, const struct json *args,
				     struct mgmt_job *job)
{
	mgmt_bulk_start(mgmt, args, job, "StartInstance", false);
}

static void mgmt_api_stop_instances(struct mgmt *mgmt, const struct json *args,
				    struct mgmt_job *job)
{
	mgmt_bulk_start(mgmt, args, job, "StopInstance", false);
}

static void mgmt_api_restart_instances(struct mgmt *mgmt, const struct json *args,
				       struct mgmt_job *job)
{
	mgmt_bulk_start(mgmt, args, job, "RestartInstance", false);
}

static void mgmt_api_freeze_instances(struct mgmt *mgmt, const struct json *args,
				      struct mgmt_job *job)
{
	mgmt_bulk_start(mgmt, args, job, "FreezeInstance", false);
}

static void mgmt_api_thaw_instances(struct mgmt *mgmt, const struct json *args,
				    struct mgmt_job *job)
{
	mgmt_bulk_start(mgmt, args, job, "ThawInstance", false);
}

static void mgmt_api_delete_instances(struct mgmt *mgmt, const struct json *args,
				      struct mgmt_job *job)
{
	mgmt_bulk_start(mgmt, args, job, "DeleteInstance", true);
}

/* ---- an Instance Host's directories ---- */

static void mgmt_api_host_directory(struct mgmt *mgmt, const struct json *args,
				    struct mgmt_job *job, const char *method)
{
	struct json *host_args = json_new_object();
	json_set_string(host_args, "path", json_get_string(args, "path"));
	mgmt_host_call(mgmt, job, json_get_string(args, "instanceHost"), method, host_args, NULL);
}

static void mgmt_api_get_directories(struct mgmt *mgmt, const struct json *args,
				     struct mgmt_job *job)
{
	mgmt_api_host_directory(mgmt, args, job, "GetDirectories");
}

static void mgmt_api_create_directory(struct mgmt *mgmt, const struct json *args,
				      struct mgmt_job *job)
{
	mgmt_api_host_directory(mgmt, args, job, "CreateDirectory");
}

#define ID_ARG                                                                                     \
	{                                                                                          \
		"instanceID", MGMT_API_STRING, true, "the instance's ID or alias"                  \
	}
#define FILTER_ARG                                                                                 \
	{                                                                                          \
		"instanceFilter", MGMT_API_STRING, true,                                           \
			"instance IDs or aliases, * and ? as wildcards"                            \
	}

const struct mgmt_api_function mgmt_api_instance_functions[] = {
	{"CreateInstance",
	 "Create an instance on an Instance Host (its base directory and key are created there).",
	 {{"instanceID", MGMT_API_STRING, true, "[a-z0-9][a-z0-9-]{0,62}"},
	  {"alias", MGMT_API_STRING, false, "another name users may log in with"},
	  {"displayName", MGMT_API_STRING, false, "the customer's name"},
	  {"instanceHost", MGMT_API_STRING, true, "the registered Instance Host"},
	  {"baseDirectory", MGMT_API_STRING, true, "absolute path on the Instance Host"},
	  {"startMode", MGMT_API_STRING, false, "automatic (default) or manual"}},
	 NULL,
	 mgmt_api_create_instance,
	 false},
	{"GetInstances",
	 "List instances with their state.",
	 {{"instanceFilter", MGMT_API_STRING, false, "IDs or aliases, * and ? as wildcards"}},
	 mgmt_api_get_instances,
	 NULL,
	 false},
	{"GetInstanceConfiguration",
	 "One instance's configuration and state.",
	 {ID_ARG},
	 mgmt_api_get_instance_configuration,
	 NULL,
	 false},
	{"SetInstanceConfiguration",
	 "Change alias, display name, start mode or (when stopped) base directory.",
	 {ID_ARG,
	  {"alias", MGMT_API_STRING, false, "new alias (\"\" removes it)"},
	  {"displayName", MGMT_API_STRING, false, "new display name"},
	  {"baseDirectory", MGMT_API_STRING, false,
	   "new base directory (instance stopped, data moved by you)"},
	  {"startMode", MGMT_API_STRING, false, "automatic or manual"}},
	 NULL,
	 mgmt_api_set_instance_configuration,
	 false},
	{"StartInstances", "Start instances.", {FILTER_ARG}, NULL, mgmt_api_start_instances, false},
	{"StopInstances", "Stop instances.", {FILTER_ARG}, NULL, mgmt_api_stop_instances, false},
	{"RestartInstances",
	 "Restart instances.",
	 {FILTER_ARG},
	 NULL,
	 mgmt_api_restart_instances,
	 false},
	{"FreezeInstances",
	 "Pause writes and close files so base directories can be copied consistently.",
	 {FILTER_ARG},
	 NULL,
	 mgmt_api_freeze_instances,
	 false},
	{"ThawInstances", "End a freeze.", {FILTER_ARG}, NULL, mgmt_api_thaw_instances, false},
	{"DeleteInstances",
	 "Delete stopped instances; their data only with deleteData=true.",
	 {FILTER_ARG,
	  {"deleteData", MGMT_API_BOOL, false,
	   "also delete the base directory and key (default false)"}},
	 NULL,
	 mgmt_api_delete_instances,
	 false},
	{"GetDirectoriesOnInstanceHost",
	 "Subdirectories of a path on an Instance Host.",
	 {{"instanceHost", MGMT_API_STRING, true, "the registered Instance Host"},
	  {"path", MGMT_API_STRING, true, "absolute path"}},
	 NULL,
	 mgmt_api_get_directories,
	 false},
	{"CreateDirectoryOnInstanceHost",
	 "Create a directory (and its parents) on an Instance Host.",
	 {{"instanceHost", MGMT_API_STRING, true, "the registered Instance Host"},
	  {"path", MGMT_API_STRING, true, "absolute path"}},
	 NULL,
	 mgmt_api_create_directory,
	 false},
	{NULL, NULL, {{0}}, NULL, NULL, false},
};
