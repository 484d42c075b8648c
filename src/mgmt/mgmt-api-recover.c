/* mgmt-api-recover: RecoverInstance, bringing up an instance whose Instance
 * Host is gone (dead, or its server lost) on another Instance Host, from a
 * copy of its base directory and key (a backup) that lies there already.
 *
 * It refuses while the old Instance Host still answers: two hosts running
 * the same instance from two copies would each take writes the other lacks.
 * Moving an instance between two live hosts is MoveInstance's work.
 *
 * A retry is safe (the caller lost the answer, or the Management Server
 * died half-way): an instance the database names on the new host already
 * is reported as recovered, and one the new host holds already (with the
 * base directory asked for) is recorded without being created twice. */
#include "json.h"
#include "mem.h"
#include "mgmt-api.h"
#include "mgmt-jobs.h"
#include "mgmt-links.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "rpc.h"
#include "tstr.h"

#include <string.h>
#include <strings.h>

#define MGMT_RECOVER_CALL_SECS 60

struct mgmt_recover {
	struct mgmt *mgmt;
	struct mgmt_job *job;
	char *id, *old_host, *new_host, *base_dir;
};

static void mgmt_recover_free(struct mgmt_recover *r)
{
	mem_free(r->id);
	mem_free(r->old_host);
	mem_free(r->new_host);
	mem_free(r->base_dir);
	mem_free(r);
}

static void mgmt_recover_start_answer(struct rpc_conn *conn, const struct json *result,
				      const char *code, const char *text, void *ctx)
{
	struct mgmt *mgmt = ctx;
	if (code != NULL)
		mgmt_links_message(mgmt->links, LOG_LEVEL_ERROR,
				   "recovered instance did not start: %s", text);
}

/* The new host took the instance in: it is now the instance's home. */
static int mgmt_recover_record(struct mgmt_recover *r, struct json **result_r, const char **error_r)
{
	struct mgmt *mgmt = r->mgmt;
	struct mgmtdb_instance i;
	if (mgmtdb_instance_find(mgmt->db, r->id, &i) == 0) {
		*error_r = "the instance was deleted meanwhile";
		return -1;
	}
	struct mgmtdb_instance updated = i;
	updated.instance_host = r->new_host;
	updated.base_directory = r->base_dir;
	if (mgmtdb_instance_update(mgmt->db, &updated, error_r) < 0 ||
	    mgmt_db_commit(mgmt, error_r) < 0)
		return -1;
	/* The Client Access Servers route to the new host from this push on. */
	mgmt_links_push_instances(mgmt->links);
	mgmt_links_message(mgmt->links, LOG_LEVEL_INFO, "instance %s recovered from %s on %s (%s)",
			   r->id, r->old_host, r->new_host, r->base_dir);
	(void)mgmtdb_instance_find(mgmt->db, r->id, &i);
	bool automatic = strcmp(i.start_mode, "automatic") == 0;
	mgmt_links_note_instance_state(mgmt->links, r->new_host, r->id,
				       automatic ? "starting" : "stopped");
	if (automatic) {
		struct json *args = json_new_object();
		const char *error;
		json_set_string(args, "instanceID", r->id);
		(void)mgmt_links_call_host(mgmt->links, r->new_host, "StartInstance", args,
					   MGMT_RECOVER_CALL_SECS, mgmt_recover_start_answer, mgmt,
					   &error);
	}
	struct json *res = json_new_object();
	json_set_string(res, "instanceID", r->id);
	json_set_string(res, "previousInstanceHost", r->old_host);
	json_set_string(res, "instanceHost", r->new_host);
	json_set_string(res, "baseDirectory", r->base_dir);
	json_set_string(res, "startMode", i.start_mode);
	*result_r = res;
	return 0;
}

static void mgmt_recover_answer(struct rpc_conn *conn, const struct json *result, const char *code,
				const char *text, void *ctx)
{
	struct mgmt_recover *r = ctx;
	struct json *out = NULL;
	const char *error = code != NULL ? text : NULL;
	if (error == NULL)
		(void)mgmt_recover_record(r, &out, &error);
	mgmt_job_done(r->job, out, error);
	mgmt_recover_free(r);
}

/* "adopt": the host takes the directory and key as they are, and refuses
 * when either is missing instead of making a new, empty one. */
static void mgmt_recover_adopt(struct mgmt_recover *r)
{
	const char *error;
	struct json *host_args = json_new_object();
	json_set_string(host_args, "instanceID", r->id);
	json_set_string(host_args, "baseDirectory", r->base_dir);
	json_set_bool(host_args, "adopt", true);
	if (mgmt_links_call_host(r->mgmt->links, r->new_host, "CreateInstance", host_args,
				 MGMT_RECOVER_CALL_SECS, mgmt_recover_answer, r, &error) < 0) {
		mgmt_job_done(r->job, NULL, error);
		mgmt_recover_free(r);
	}
}

/* What the new host holds: an earlier attempt may have registered the
 * instance there before its answer (or the database's commit) was lost. */
static void mgmt_recover_states(struct rpc_conn *conn, const struct json *result, const char *code,
				const char *text, void *ctx)
{
	struct mgmt_recover *r = ctx;
	if (code != NULL) {
		mgmt_job_done(r->job, NULL, text);
		mgmt_recover_free(r);
		return;
	}
	for (size_t n = 0; n < json_count(result); n++) {
		const struct json *e = json_at(result, n);
		const char *id = json_get_string(e, "instanceID");
		const char *dir = json_get_string(e, "baseDirectory");
		if (id == NULL || strcmp(id, r->id) != 0)
			continue;
		if (dir == NULL || strcmp(dir, r->base_dir) != 0) {
			mgmt_job_done(r->job, NULL,
				      tstr_printf("instance %s is registered on %s with base "
						  "directory %s already",
						  r->id, r->new_host, dir == NULL ? "?" : dir));
			mgmt_recover_free(r);
			return;
		}
		mgmt_recover_answer(conn, NULL, NULL, NULL, r);
		return;
	}
	mgmt_recover_adopt(r);
}

/* The database names the new host already: an earlier call did the work. */
static void mgmt_recover_already(struct mgmt_job *job, const struct mgmtdb_instance *i)
{
	struct json *res = json_new_object();
	json_set_string(res, "instanceID", i->id);
	json_set_string(res, "instanceHost", i->instance_host);
	json_set_string(res, "baseDirectory", i->base_directory);
	json_set_string(res, "startMode", i->start_mode);
	json_set_bool(res, "alreadyRecovered", true);
	mgmt_job_done(job, res, NULL);
}

/* Why the instance cannot be recovered onto new_host, or NULL. */
static const char *mgmt_recover_refusal(struct mgmt *mgmt, const struct mgmtdb_instance *i,
					const char *new_host)
{
	struct mgmtdb_server host;
	if (mgmtdb_server_find(mgmt->db, MGMTDB_INSTANCE_HOST, new_host, &host) == 0)
		return tstr_printf("no Instance Host '%s' is registered", new_host);
	if (mgmt_links_host_answers(mgmt->links, i->instance_host))
		return tstr_printf("the Instance Host %s of instance %s still answers: "
				   "recover only from a host that is gone (stop it, or "
				   "use MoveInstance)",
				   i->instance_host, i->id);
	return NULL;
}

static void mgmt_api_recover_instance(struct mgmt *mgmt, const struct json *args,
				      struct mgmt_job *job)
{
	const char *id = json_get_string(args, "instanceID");
	const char *new_host = json_get_string(args, "instanceHost");
	const char *dir = json_get_string(args, "baseDirectory");
	struct mgmtdb_instance i;
	const char *error;
	if (mgmtdb_instance_find(mgmt->db, id, &i) == 0) {
		mgmt_job_done(job, NULL, tstr_printf("no instance '%s'", id));
		return;
	}
	if (strcasecmp(new_host, i.instance_host) == 0) {
		if (dir == NULL || strcmp(dir, i.base_directory) == 0)
			mgmt_recover_already(job, &i);
		else
			mgmt_job_done(job, NULL,
				      tstr_printf("instance %s is registered on %s with base "
						  "directory %s already",
						  i.id, new_host, i.base_directory));
		return;
	}
	if ((error = mgmt_recover_refusal(mgmt, &i, new_host)) != NULL) {
		mgmt_job_done(job, NULL, error);
		return;
	}
	struct mgmt_recover *r = mem_new(struct mgmt_recover);
	r->mgmt = mgmt;
	r->job = job;
	r->id = mem_strdup(i.id);
	r->old_host = mem_strdup(i.instance_host);
	r->new_host = mem_strdup(new_host);
	r->base_dir = mem_strdup(dir == NULL ? i.base_directory : dir);
	if (mgmt_links_call_host(mgmt->links, r->new_host, "GetInstanceStates", NULL,
				 MGMT_RECOVER_CALL_SECS, mgmt_recover_states, r, &error) < 0) {
		mgmt_job_done(job, NULL, error);
		mgmt_recover_free(r);
	}
}

const struct mgmt_api_function mgmt_api_recover_functions[] = {
	{"RecoverInstance",
	 "Bring up an instance whose Instance Host is gone on another Instance Host, from a copy "
	 "of its base directory and key placed there (refused while the old host answers; a "
	 "retry of one that succeeded reports alreadyRecovered).",
	 {{"instanceID", MGMT_API_STRING, true, "the instance (ID or alias)"},
	  {"instanceHost", MGMT_API_STRING, true, "the registered, connected Instance Host"},
	  {"baseDirectory", MGMT_API_STRING, false,
	   "where the copy lies on that host (default: the old base directory)"}},
	 NULL,
	 mgmt_api_recover_instance,
	 false},
	{NULL, NULL, {{0}}, NULL, NULL, false},
};
