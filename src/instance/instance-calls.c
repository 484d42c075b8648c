/* instance-calls: the calls an instance process answers. */
#include "instance-calls.h"
#include "instance.h"
#include "instance-archive.h"
#include "instance-audit.h"
#include "instance-client.h"
#include "instance-client-web.h"
#include "instance-export.h"
#include "instance-rights.h"
#include "instance-retention.h"
#include "instance-smtp.h"
#include "instance-transfer.h"
#include "instance-jobs.h"
#include "instance-journal.h"
#include "instance-profiles.h"
#include "instance-users.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "worker-pool.h"
#include "tstr.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static long long instance_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kib = -1;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
			break;
	}
	if (f != NULL)
		fclose(f);
	return kib;
}

/* user + system time of the whole process (every thread: jobs, workers) */
static long long instance_cpu_msecs(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -1;
	return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static struct json *instance_live_statistics(struct instance *inst)
{
	struct json *s = json_new_object();
	json_set_int(s, "pid", (long long)getpid());
	json_set_int(s, "startedAt", (long long)inst->started);
	json_set_int(s, "uptimeSeconds", (long long)(time(NULL) - inst->started));
	json_set_int(s, "calls", (long long)inst->calls);
	json_set_int(s, "residentKiB", instance_rss_kib());
	json_set_int(s, "cpuMilliseconds", instance_cpu_msecs());
	json_set_bool(s, "frozen", inst->frozen);
	json_set(s, "logins", instance_client_login_statistics(inst));
	return s;
}

void instance_calls_close(struct instance *inst)
{
	if (inst->archive != NULL)
		(void)instance_archive_close(inst->archive);
	instance_users_close(&inst->users);
}

int instance_users_ready(struct instance *inst, const char **error_r)
{
	/* the users live in the catalog, which a rebuild replaces: nothing
	 * may hold it or write to it meanwhile */
	const char *running = instance_jobs_running(inst->jobs);
	if (running != NULL && strcmp(running, "rebuild") == 0) {
		instance_users_close(&inst->users);
		*error_r = "a rebuild is running: the catalog is being rebuilt; try again when it "
			   "has finished";
		return -1;
	}
	if (inst->users == NULL) {
		if (instance_users_open(inst->base_dir, inst->key_file, &inst->users, error_r) < 0)
			return -1;
		/* a frozen base directory stays as it is: read, then let go */
		if (inst->frozen)
			instance_users_release_catalog(inst->users);
	}
	return 0;
}

/* ---- the instance's own calls ---- */

static int calls_ping(struct instance_call *c)
{
	c->result = json_new_string("pong");
	return 0;
}

static int calls_live_statistics(struct instance_call *c)
{
	c->result = instance_live_statistics(c->inst);
	return 0;
}

static int calls_freeze(struct instance_call *c)
{
	struct instance *inst = c->inst;
	if (instance_archive_busy(inst->archive)) {
		c->code = "busy";
		c->error = tstr_printf("a job (%s) is running: freeze after it",
				       instance_jobs_running(inst->jobs));
		return -1;
	}
	instance_calls_close(inst);
	inst->frozen = true;
	log_info(tstr_printf("instance=%s", inst->id), "frozen: writes paused, files closed");
	return 0;
}

static int calls_thaw(struct instance_call *c)
{
	c->inst->frozen = false;
	instance_audit_thawed(c->inst);
	/* opened read-only while frozen: writable again from the next use */
	instance_users_close(&c->inst->users);
	log_info(tstr_printf("instance=%s", c->inst->id), "thawed");
	return 0;
}

/* ---- the table ---- */

#define W INSTANCE_CALL_WRITES
#define LONG INSTANCE_CALL_LONG_RUNNING
#define CLIENT (INSTANCE_CALL_CLIENT | INSTANCE_CALL_USERS)
#define USERS INSTANCE_CALL_USERS

/* Sorted by name (strcmp), for bsearch; test-instance-calls checks it.
 * Client* calls: docs/client-calls.md; the others: docs/protocol.md. */
static const struct instance_call_def instance_calls[] = {
	{"CancelJob", instance_jobs_cancel, 0, NULL, NULL, instance_audit_args},
	{"ClientAppPasswords", instance_client_app_passwords, CLIENT, NULL, NULL, NULL},
	{"ClientAuditLog", instance_audit_client_get, CLIENT, "auditor", NULL, instance_audit_args},
	{"ClientCreateAppPassword", instance_client_create_app_password, CLIENT | W, NULL,
	 "password", instance_audit_args},
	{"ClientDeleteAppPassword", instance_client_delete_app_password, CLIENT | W, NULL, NULL,
	 instance_audit_args},
	/* zip and mbox need the export privilege, one message (eml) does not:
	 * instance-export checks it by format */
	{"ClientExport", instance_export_begin, CLIENT | W | LONG, NULL, NULL, instance_audit_args},
	{"ClientExportEnd", instance_export_end, CLIENT, NULL, NULL, NULL},
	{"ClientExportRead", instance_export_read, CLIENT, NULL, NULL, NULL},
	{"ClientFetch", instance_client_fetch, CLIENT, NULL, NULL, instance_audit_fetch},
	{"ClientFolderUids", instance_client_folder_uids, CLIENT, NULL, NULL, NULL},
	{"ClientFolders", instance_client_folders, CLIENT, NULL, NULL, NULL},
	{"ClientLogin", instance_client_login, CLIENT | INSTANCE_CALL_NO_SESSION | LONG, NULL, NULL,
	 NULL},
	{"ClientMessageView", instance_client_web_message_view, CLIENT, NULL, NULL,
	 instance_audit_args},
	{"ClientMessages", instance_client_messages, CLIENT, NULL, NULL, instance_audit_search},
	{"ClientMfaActivate", instance_client_web_mfa_activate, CLIENT | W, NULL, NULL,
	 instance_audit_args},
	{"ClientMfaBegin", instance_client_web_mfa_begin, CLIENT | W, NULL, "password",
	 instance_audit_args},
	{"ClientMfaDisable", instance_client_web_mfa_disable, CLIENT | W, NULL, "password",
	 instance_audit_args},
	{"ClientPart", instance_client_web_part, CLIENT, NULL, NULL, instance_audit_args},
	{"ClientSearchUids", instance_client_search_uids, CLIENT, NULL, NULL,
	 instance_audit_search},
	{"ClientSetPassword", instance_client_web_set_password, CLIENT | W, NULL, "oldPassword",
	 instance_audit_args},
	{"ClientUser", instance_client_user, CLIENT, NULL, NULL, NULL},
	{"CompactStore", instance_retention_compact, W | LONG, NULL, NULL, instance_audit_args},
	{"CreateProfile", instance_profiles_create_profile, W, NULL, NULL, instance_audit_args},
	{"CreateStore", instance_archive_create_store, W, NULL, NULL, instance_audit_args},
	{"CreateUser", instance_users_create_user, USERS | W, NULL, NULL, instance_audit_args},
	{"DeleteMessage", instance_retention_delete_message, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"DeleteMessages", instance_retention_delete_messages, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"DeleteProfile", instance_profiles_delete, W, NULL, NULL, instance_audit_args},
	{"DeleteUser", instance_users_delete_user, USERS | W, NULL, NULL, instance_audit_args},
	{"DeleteUserAppPassword", instance_users_delete_app_password, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"DisableMFA", instance_users_disable_mfa, USERS | W, NULL, NULL, instance_audit_args},
	{"ExportMessages", instance_transfer_export, W | LONG, NULL, NULL, instance_audit_args},
	{"Freeze", calls_freeze, 0, NULL, NULL, instance_audit_args},
	{"GetAuditLog", instance_audit_get, 0, NULL, NULL, instance_audit_args},
	{"GetChildFolders", instance_archive_get_child_folders, 0, NULL, NULL, NULL},
	{"GetComplianceConfiguration", instance_retention_get_compliance, USERS, NULL, NULL, NULL},
	{"GetFolderStatistics", instance_archive_get_folder_statistics, 0, NULL, NULL, NULL},
	{"GetJob", instance_jobs_get, 0, NULL, NULL, NULL},
	{"GetJobs", instance_jobs_list, 0, NULL, NULL, NULL},
	{"GetLiveStatistics", calls_live_statistics, 0, NULL, NULL, NULL},
	{"GetMessages", instance_archive_get_messages, 0, NULL, NULL, instance_audit_args},
	{"GetProfiles", instance_profiles_get, 0, NULL, NULL, NULL},
	{"GetRetentionPolicies", instance_retention_get_policies, USERS, NULL, NULL, NULL},
	{"GetSmtpSettings", instance_smtp_get, 0, NULL, NULL, NULL},
	{"GetStatistics", instance_archive_get_statistics, 0, NULL, NULL, NULL},
	{"GetStores", instance_archive_get_stores, 0, NULL, NULL, NULL},
	{"GetUserAppPasswords", instance_users_get_app_passwords, USERS, NULL, NULL, NULL},
	{"GetUserInfo", instance_users_get_user_info, USERS, NULL, NULL, NULL},
	{"GetUsers", instance_users_get_users, USERS, NULL, NULL, NULL},
	{"GetWorkerResultReport", instance_profiles_result_report, 0, NULL, NULL, NULL},
	{"GetWorkerResults", instance_profiles_results, 0, NULL, NULL, NULL},
	{"InitializeMFA", instance_users_initialize_mfa, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"JournalDeliver", instance_journal_deliver, W, NULL, NULL, NULL},
	{"JournalResolve", instance_journal_resolve, USERS, NULL, NULL, NULL},
	{"Ping", calls_ping, 0, NULL, NULL, NULL},
	{"ProcessRetentionPolicies", instance_retention_process, USERS | W | LONG, NULL, NULL,
	 instance_audit_args},
	{"RebuildSelectedStoreIndexes", instance_archive_rebuild, W | LONG, NULL, NULL,
	 instance_audit_args},
	{"RenameUser", instance_users_rename_user, USERS | W, NULL, NULL, instance_audit_args},
	{"RestoreMessages", instance_transfer_restore, W | LONG, NULL, NULL, instance_audit_args},
	{"RunProfile", instance_profiles_run, W | LONG, NULL, NULL, instance_audit_args},
	{"Search", instance_archive_search, 0, NULL, NULL, instance_audit_search},
	{"SetComplianceConfiguration", instance_retention_set_compliance, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"SetProfile", instance_profiles_set, W, NULL, NULL, instance_audit_args},
	{"SetRetentionPolicies", instance_retention_set_policies, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"SetSmtpSettings", instance_smtp_set, W, NULL, NULL, instance_audit_args},
	{"SetStoreRequestedState", instance_archive_set_store_requested_state, W, NULL, NULL,
	 instance_audit_args},
	{"SetUserEmailAddresses", instance_users_set_user_email_addresses, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"SetUserFullName", instance_users_set_user_full_name, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"SetUserLoginPrivileges", instance_users_set_user_login_privileges, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"SetUserPassword", instance_users_set_user_password, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"SetUserPrivileges", instance_users_set_user_privileges, USERS | W, NULL, NULL,
	 instance_audit_args},
	{"SetUserPrivilegesOnFolder", instance_users_set_user_privileges_on_folder, USERS | W, NULL,
	 NULL, instance_audit_args},
	{"StartImport", instance_archive_start_import, USERS | INSTANCE_CALL_FOR_USER | W | LONG,
	 "archive", NULL, instance_audit_args},
	{"SyncUsers", instance_users_sync_users, USERS | W, NULL, NULL, instance_audit_args},
	{"TestSmtpSettings", instance_smtp_test, W | LONG, NULL, NULL, instance_audit_args},
	{"Thaw", calls_thaw, 0, NULL, NULL, instance_audit_args},
	{"VerifyAuditLog", instance_audit_verify, 0, NULL, NULL, instance_audit_args},
	{"VerifyStores", instance_archive_verify, W | LONG, NULL, NULL, instance_audit_args},
};

#undef W
#undef LONG
#undef CLIENT
#undef USERS

static int calls_compare(const void *key, const void *row)
{
	return strcmp(key, ((const struct instance_call_def *)row)->name);
}

const struct instance_call_def *instance_calls_find(const char *name)
{
	return bsearch(name, instance_calls, sizeof(instance_calls) / sizeof(instance_calls[0]),
		       sizeof(instance_calls[0]), calls_compare);
}

const struct instance_call_def *instance_calls_table(size_t *count_r)
{
	*count_r = sizeof(instance_calls) / sizeof(instance_calls[0]);
	return instance_calls;
}

/* ---- dispatch ---- */

/* Run the handler and answer what it left in the call. */
static void calls_run(struct instance_call *c)
{
	if (c->def->audit != NULL && instance_audit_full(c->inst)) {
		rpc_conn_reply_error(c->conn, c->id, "frozen",
				     "the archive is frozen for maintenance: try again later");
		return;
	}
	int ret = c->def->handler(c);
	instance_audit_call(c, ret < 0 ? (c->code != NULL ? c->code : "failed") : NULL);
	if (ret == INSTANCE_CALL_ANSWERED) {
		/* answered by the handler, now or later */
	} else if (ret < 0) {
		rpc_conn_reply_error(c->conn, c->id, c->code != NULL ? c->code : "failed",
				     c->error);
		json_unref(&c->result);
	} else if (c->blob_buffer != NULL) {
		rpc_conn_reply_blob_buffer(c->conn, c->id, c->result, c->blob_buffer);
	} else if (c->blob != NULL) {
		rpc_conn_reply_blob(c->conn, c->id, c->result, c->blob, c->blob_len);
	} else {
		rpc_conn_reply(c->conn, c->id, c->result);
	}
	mem_free(c->blob);
	if (c->blob_buffer != NULL)
		evbuffer_free(c->blob_buffer);
}

static bool calls_frozen(struct instance_call *c)
{
	if (!c->inst->frozen || (c->def->flags & INSTANCE_CALL_WRITES) == 0)
		return false;
	/* end users are told when to come back; administrators what waits */
	rpc_conn_reply_error(c->conn, c->id, "frozen",
			     (c->def->flags & INSTANCE_CALL_CLIENT) != 0
				     ? "the archive is frozen for maintenance: try again later"
				     : "the instance is frozen: changes wait until it is thawed");
	return true;
}

static bool calls_users_ready(struct instance_call *c)
{
	const char *error;
	if ((c->def->flags & INSTANCE_CALL_USERS) == 0 ||
	    instance_users_ready(c->inst, &error) == 0)
		return true;
	rpc_conn_reply_error(c->conn, c->id, "failed", error);
	return false;
}

/* CLIENT calls: who the user is now, and whether they may make the call;
 * the view is the caller's to free. */
static struct json *calls_client_user(struct instance_call *c)
{
	const char *code, *error;
	struct json *view =
		instance_users_client_view(c->inst->users, json_get_string(c->args, "userName"));
	if (instance_rights_client_call(view, json_get_string(c->args, "service"),
					c->def->privilege, &code, &error) < 0) {
		rpc_conn_reply_error(c->conn, c->id, code, error);
		json_unref(&view);
	}
	return view;
}

/* FOR_USER calls: the user's privilege and folder right; sets c->owner. */
static bool calls_for_user(struct instance_call *c)
{
	const char *error;
	if ((c->def->flags & INSTANCE_CALL_FOR_USER) == 0 ||
	    instance_rights_data_call(c->inst->users, c->def->privilege, c->args, &c->owner,
				      &error) == 0)
		return true;
	rpc_conn_reply_error(c->conn, c->id, "failed", error);
	return false;
}

/* After a password check on a worker: the user and the freeze again (either
 * may have changed meanwhile), then the handler. */
static void calls_run_checked(struct instance_call *c)
{
	struct json *view = calls_client_user(c);
	if (view == NULL)
		return;
	c->user = view;
	if (!calls_frozen(c))
		calls_run(c);
	json_unref(&view);
}

/* ---- calls that carry the account password: checked on a worker first ---- */

struct calls_gated {
	struct instance *inst;
	struct rpc_conn *conn;
	uint32_t id;
	const struct instance_call_def *def;
	struct json *args;
	struct instance_users_check *check;
};

static void calls_gated_free(struct calls_gated *g)
{
	instance_users_check_free(&g->check);
	json_unref(&g->args);
	mem_free(g);
}

static void calls_gated_work(void *ctx)
{
	struct calls_gated *g = ctx;
	instance_users_check_run(g->check);
}

static void calls_gated_done(void *ctx, bool ran)
{
	struct calls_gated *g = ctx;
	struct instance *inst = g->inst;
	struct instance_call c = {.inst = inst,
				  .conn = g->conn,
				  .id = g->id,
				  .method = g->def->name,
				  .args = g->args,
				  .def = g->def};
	if (inst->stopping) {
		calls_gated_free(g);
		return;
	}
	if (!ran) {
		rpc_conn_reply_error(g->conn, g->id, "busy", "try again in a moment");
	} else if (calls_users_ready(&c)) {
		/* the call itself runs as before, with the outcome at hand; the
		 * user is looked up again: they may have gone meanwhile */
		instance_users_account_checked(inst->users, g->check);
		calls_run_checked(&c);
		if (inst->users != NULL)
			instance_users_account_forget(inst->users);
	}
	calls_gated_free(g);
}

/* true: taken (answered now or later); false: no check needed. */
static bool calls_password_gate(struct instance_call *c)
{
	struct instance *inst = c->inst;
	const char *arg = c->def->password_arg;
	const char *error;
	if (arg == NULL || json_get_string(c->args, arg) == NULL)
		return false;
	/* a new password is hashed there too */
	struct instance_users_check *check = instance_users_account_prepare(
		inst->users, json_get_string(c->args, "userName"), json_get_string(c->args, arg),
		json_get_string(c->args, "newPassword"));
	if (check == NULL)
		return false; /* refused by the call itself, without a check */
	if (instance_client_workers(inst, &error) < 0) {
		instance_users_check_free(&check);
		rpc_conn_reply_error(c->conn, c->id, "failed", error);
		return true;
	}
	struct calls_gated *g = mem_new(struct calls_gated);
	g->inst = inst;
	g->conn = c->conn;
	g->id = c->id;
	g->def = c->def;
	g->args = json_clone(c->args);
	g->check = check;
	if (worker_pool_submit(inst->logins, calls_gated_work, calls_gated_done, g) < 0) {
		inst->logins_busy++;
		rpc_conn_reply_error(c->conn, c->id, "busy",
				     "too many password checks at once: try again in a moment");
		calls_gated_free(g);
	}
	return true;
}

void instance_calls_dispatch(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			     const char *method, const struct json *args)
{
	struct instance_call c = {
		.inst = inst, .conn = conn, .id = id, .method = method, .args = args};
	c.def = instance_calls_find(method);
	if (c.def == NULL) {
		rpc_conn_reply_error(conn, id, "unknown-method",
				     tstr_printf("an instance takes no call '%s'", method));
		return;
	}
	bool client = (c.def->flags & INSTANCE_CALL_CLIENT) != 0;
	bool session = client && (c.def->flags & INSTANCE_CALL_NO_SESSION) == 0;
	/* an administrator's change waits before anything is opened; an end
	 * user learns first whether their session still stands */
	if ((!client && calls_frozen(&c)) || !calls_users_ready(&c))
		return;
	struct json *view = NULL;
	if (session && (view = calls_client_user(&c)) == NULL)
		return;
	c.user = view;
	if ((!client || !calls_frozen(&c)) && calls_for_user(&c) && !calls_password_gate(&c))
		calls_run(&c);
	json_unref(&view);
	/* a rebuild just started: let go of the catalog it replaces (the users
	 * live there; instance_users_ready() refuses them until it is done) */
	const char *running = instance_jobs_running(inst->jobs);
	if (running != NULL && strcmp(running, "rebuild") == 0)
		instance_users_close(&inst->users);
}
