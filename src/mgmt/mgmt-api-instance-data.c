/* mgmt-api-instance-data: functions about one instance's process and the data
 * inside it (users, folders, stores, statistics, search, imports). Each takes
 * instanceID and is carried to the instance process through its Instance Host. */
#include "http.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mgmt-api.h"
#include "mgmt-jobs.h"
#include "mgmt-links.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "role-daemon.h"
#include "rpc.h"
#include "tstr.h"

#include <event2/event.h>
#include <string.h>
#include <time.h>

#define MGMT_DATA_CALL_SECS 600
#define MGMT_IMPORT_POLL_MS 500

struct mgmt_data_call {
	struct mgmt *mgmt;
	struct mgmt_job *job;
};

static void mgmt_data_answer(struct rpc_conn *conn, const struct json *result, const char *code,
			     const char *text, void *ctx)
{
	struct mgmt_data_call *call = ctx;
	mgmt_job_done(call->job, code == NULL && result != NULL ? json_clone(result) : NULL,
		      code != NULL ? text : NULL);
	mem_free(call);
}

/* Send `method` with the arguments (less instanceID) into the instance. */
static int mgmt_data_send(struct mgmt *mgmt, const struct json *args, const char *method,
			  rpc_answer_fn *answer, void *ctx, const char **error_r)
{
	struct mgmtdb_instance inst;
	const char *id = json_get_string(args, "instanceID");
	if (id == NULL || mgmtdb_instance_find(mgmt->db, id, &inst) == 0) {
		*error_r = tstr_printf("no instance '%s'", id == NULL ? "" : id);
		return -1;
	}
	struct json *inner = json_clone(args);
	(void)json_remove(inner, "instanceID");
	/* the instance's audit log names who asked */
	if (mgmt->api_user != NULL) {
		json_set_string(inner, "auditUser", mgmt->api_user);
		json_set_string(inner, "auditAddress", http_request_peer(mgmt->api_request));
	}
	struct json *host_args = json_new_object();
	json_set_string(host_args, "instanceID", inst.id);
	json_set_string(host_args, "method", method);
	json_set(host_args, "args", inner);
	return mgmt_links_call_host(mgmt->links, inst.instance_host, "InstanceCall", host_args,
				    MGMT_DATA_CALL_SECS, answer, ctx, error_r);
}

static void mgmt_data_forward(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job,
			      const char *method)
{
	struct mgmt_data_call *call = mem_new(struct mgmt_data_call);
	const char *error;
	call->mgmt = mgmt;
	call->job = job;
	if (mgmt_data_send(mgmt, args, method, mgmt_data_answer, call, &error) < 0) {
		mgmt_job_done(job, NULL, error);
		mem_free(call);
	}
}

/* One start function per method name: the table below binds them. */
#define MGMT_FORWARD(fn, method)                                                                   \
	static void fn(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job)           \
	{                                                                                          \
		mgmt_data_forward(mgmt, args, job, method);                                        \
	}

MGMT_FORWARD(mgmt_get_users, "GetUsers")
MGMT_FORWARD(mgmt_get_user_info, "GetUserInfo")
MGMT_FORWARD(mgmt_create_user, "CreateUser")
MGMT_FORWARD(mgmt_delete_user, "DeleteUser")
MGMT_FORWARD(mgmt_rename_user, "RenameUser")
MGMT_FORWARD(mgmt_set_user_password, "SetUserPassword")
MGMT_FORWARD(mgmt_set_user_full_name, "SetUserFullName")
MGMT_FORWARD(mgmt_set_user_emails, "SetUserEmailAddresses")
MGMT_FORWARD(mgmt_set_user_privileges, "SetUserPrivileges")
MGMT_FORWARD(mgmt_set_user_login_privileges, "SetUserLoginPrivileges")
MGMT_FORWARD(mgmt_set_user_folder_privileges, "SetUserPrivilegesOnFolder")
MGMT_FORWARD(mgmt_init_user_mfa, "InitializeMFA")
MGMT_FORWARD(mgmt_disable_user_mfa, "DisableMFA")
MGMT_FORWARD(mgmt_get_user_app_passwords, "GetUserAppPasswords")
MGMT_FORWARD(mgmt_delete_user_app_password, "DeleteUserAppPassword")
MGMT_FORWARD(mgmt_sync_users, "SyncUsers")
MGMT_FORWARD(mgmt_get_stores, "GetStores")
MGMT_FORWARD(mgmt_create_store, "CreateStore")
MGMT_FORWARD(mgmt_set_store_state, "SetStoreRequestedState")
MGMT_FORWARD(mgmt_search, "Search")
MGMT_FORWARD(mgmt_get_statistics, "GetStatistics")
MGMT_FORWARD(mgmt_get_live_statistics, "GetLiveStatistics")
MGMT_FORWARD(mgmt_get_child_folders, "GetChildFolders")
MGMT_FORWARD(mgmt_get_folder_statistics, "GetFolderStatistics")
MGMT_FORWARD(mgmt_get_messages, "GetMessages")
MGMT_FORWARD(mgmt_get_audit_log, "GetAuditLog")
MGMT_FORWARD(mgmt_verify_audit_log, "VerifyAuditLog")
MGMT_FORWARD(mgmt_get_compliance, "GetComplianceConfiguration")
MGMT_FORWARD(mgmt_set_compliance, "SetComplianceConfiguration")
MGMT_FORWARD(mgmt_delete_message, "DeleteMessage")
MGMT_FORWARD(mgmt_delete_messages, "DeleteMessages")
MGMT_FORWARD(mgmt_get_retention, "GetRetentionPolicies")
MGMT_FORWARD(mgmt_set_retention, "SetRetentionPolicies")

/* ---- long work: a job in the instance, followed until it ends ----
 *
 * The instance answers the start at once with a jobID and runs the work off
 * its event loop; GetJob is polled for progress and the outcome. The job's
 * state lives in the instance (saved in its base directory), so a restart
 * of the instance in between (a crash) only delays the answer: polls wait
 * for it to come back for up to MGMT_FOLLOW_UNREACHABLE_SECS, and then see
 * the job "interrupted" with what it did. */

#define MGMT_FOLLOW_UNREACHABLE_SECS 120

struct mgmt_follow {
	struct mgmt *mgmt;
	struct mgmt_job *job;
	struct json *args; /* instanceID, then jobID */
	struct event *timer;
	bool cancel_pending; /* asked to cancel before the jobID was known */
	bool calling;        /* a call into the instance is out */
	time_t unreachable_since;
	long long last_percent;
	char *last_text;
	const char *what; /* "import", "verify", ... */
};

static void mgmt_follow_free(struct mgmt_follow *f)
{
	if (f->job != NULL)
		mgmt_job_on_free(f->job, NULL, NULL);
	event_free(f->timer);
	json_unref(&f->args);
	mem_free(f->last_text);
	mem_free(f);
}

static void mgmt_follow_schedule(struct mgmt_follow *f)
{
	struct timeval tv = {0, MGMT_IMPORT_POLL_MS * 1000};
	event_add(f->timer, &tv);
}

static void mgmt_ignore(struct rpc_conn *conn, const struct json *result, const char *code,
			const char *text, void *ctx)
{
}

static void mgmt_follow_send_cancel(struct mgmt_follow *f)
{
	const char *error;
	(void)mgmt_data_send(f->mgmt, f->args, "CancelJob", mgmt_ignore, NULL, &error);
}

/* The link or the instance is down for a moment (restart after a crash). */
static bool mgmt_follow_transient(const char *code)
{
	return strcmp(code, "not-running") == 0 || strcmp(code, "closed") == 0 ||
	       strcmp(code, "timeout") == 0 || strcmp(code, "unreachable") == 0;
}

/* The job's result, with its ID (GetJob finds it later too). */
static struct json *mgmt_follow_result(const struct json *job)
{
	const struct json *r = json_get(job, "result");
	struct json *out = json_kind(r) == JSON_KIND_OBJECT ? json_clone(r) : json_new_object();
	json_set_string(out, "jobID", json_get_string(job, "jobID"));
	return out;
}

static void mgmt_follow_ended(struct mgmt_follow *f, const struct json *job, const char *state)
{
	const char *log_text = json_get_string(job, "log");
	if (log_text != NULL && log_text[0] != '\0')
		mgmt_job_log(f->job, log_text);
	const char *error = json_get_string(job, "error");
	if (strcmp(state, "succeeded") == 0)
		mgmt_job_done(f->job, mgmt_follow_result(job), NULL);
	else if (strcmp(state, "cancelled") == 0)
		mgmt_job_done_cancelled(f->job, mgmt_follow_result(job));
	else
		mgmt_job_done(f->job, mgmt_follow_result(job),
			      error != NULL && error[0] != '\0' ? error
								: tstr_printf("the job %s", state));
}

/* The Management Server let go of the job (it stops): so does this. */
static void mgmt_follow_orphaned(void *ctx)
{
	struct mgmt_follow *f = ctx;
	f->job = NULL;
	if (!f->calling)
		mgmt_follow_free(f);
}

/* An answer came: false if nobody waits for it any more. */
static bool mgmt_follow_answered(struct mgmt_follow *f)
{
	f->calling = false;
	if (f->job != NULL)
		return true;
	mgmt_follow_free(f);
	return false;
}

static void mgmt_follow_status(struct rpc_conn *conn, const struct json *result, const char *code,
			       const char *text, void *ctx)
{
	struct mgmt_follow *f = ctx;
	if (!mgmt_follow_answered(f))
		return;
	const char *state = json_get_string(result, "state");
	if (code != NULL && mgmt_follow_transient(code)) {
		time_t now = time(NULL);
		if (f->unreachable_since == 0)
			f->unreachable_since = now;
		if (now - f->unreachable_since > MGMT_FOLLOW_UNREACHABLE_SECS) {
			mgmt_job_done(
				f->job, NULL,
				tstr_printf("the instance did not answer for %d seconds (%s): "
					    "GetJob with jobID %s tells the outcome later",
					    MGMT_FOLLOW_UNREACHABLE_SECS, text,
					    json_get_string(f->args, "jobID")));
			mgmt_follow_free(f);
			return;
		}
		mgmt_job_progress(f->job, (int)f->last_percent,
				  tstr_printf("waiting for the instance: %s", text));
		mgmt_follow_schedule(f);
		return;
	}
	if (code != NULL || state == NULL) {
		mgmt_job_done(f->job, NULL, code != NULL ? text : "unexpected job status");
		mgmt_follow_free(f);
		return;
	}
	f->unreachable_since = 0;
	if (strcmp(state, "running") != 0) {
		mgmt_follow_ended(f, result, state);
		mgmt_follow_free(f);
		return;
	}
	long long percent = -1;
	(void)json_get_int(result, "percentProgress", &percent);
	const char *status = json_get_string(result, "statusText");
	if (status == NULL)
		status = "running";
	/* a new statusVersion only when something changed */
	if (percent != f->last_percent || f->last_text == NULL ||
	    strcmp(status, f->last_text) != 0) {
		f->last_percent = percent;
		mem_free(f->last_text);
		f->last_text = mem_strdup(status);
		mgmt_job_progress(f->job, (int)percent, status);
	}
	mgmt_follow_schedule(f);
}

static void mgmt_follow_poll(evutil_socket_t fd, short events, void *ctx)
{
	struct mgmt_follow *f = ctx;
	const char *error;
	f->calling = true;
	if (mgmt_data_send(f->mgmt, f->args, "GetJob", mgmt_follow_status, f, &error) < 0)
		mgmt_follow_status(NULL, NULL, "unreachable", error, f);
}

static void mgmt_follow_started(struct rpc_conn *conn, const struct json *result, const char *code,
				const char *text, void *ctx)
{
	struct mgmt_follow *f = ctx;
	if (!mgmt_follow_answered(f))
		return;
	const char *id = json_get_string(result, "jobID");
	if (code != NULL || id == NULL) {
		if (f->cancel_pending)
			mgmt_job_done_cancelled(f->job, NULL);
		else
			mgmt_job_done(f->job, NULL,
				      code != NULL ? text : "the instance started no job");
		mgmt_follow_free(f);
		return;
	}
	json_set_string(f->args, "jobID", id);
	mgmt_job_progress(f->job, -1, tstr_printf("%s started (job %s)", f->what, id));
	if (f->cancel_pending)
		mgmt_follow_send_cancel(f);
	mgmt_follow_schedule(f);
}

static void mgmt_follow_cancel(struct mgmt_job *job, void *ctx)
{
	/* the job ends when the instance says its work has stopped */
	struct mgmt_follow *f = ctx;
	if (json_get_string(f->args, "jobID") == NULL)
		f->cancel_pending = true;
	else
		mgmt_follow_send_cancel(f);
}

static void mgmt_follow_start(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job,
			      const char *method, const char *what)
{
	struct mgmt_follow *f = mem_new(struct mgmt_follow);
	const char *error;
	f->what = what;
	f->mgmt = mgmt;
	f->job = job;
	f->last_percent = -1;
	f->args = json_new_object();
	json_set_string(f->args, "instanceID", json_get_string(args, "instanceID"));
	f->timer = evtimer_new(role_daemon_base(mgmt->rd), mgmt_follow_poll, f);
	mgmt_job_on_cancel(job, mgmt_follow_cancel, f);
	mgmt_job_on_free(job, mgmt_follow_orphaned, f);
	f->calling = true;
	if (mgmt_data_send(mgmt, args, method, mgmt_follow_started, f, &error) < 0) {
		mgmt_job_done(job, NULL, error);
		mgmt_follow_free(f);
	}
}

#define MGMT_FOLLOW(fn, method, what)                                                              \
	static void fn(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job)           \
	{                                                                                          \
		mgmt_follow_start(mgmt, args, job, method, what);                                  \
	}

MGMT_FOLLOW(mgmt_import_files, "StartImport", "import")
MGMT_FOLLOW(mgmt_verify_stores, "VerifyStores", "verify")
MGMT_FOLLOW(mgmt_rebuild_indexes, "RebuildSelectedStoreIndexes", "rebuild")
MGMT_FOLLOW(mgmt_process_retention, "ProcessRetentionPolicies", "retention run")
MGMT_FOLLOW(mgmt_compact_store, "CompactStore", "compaction")
MGMT_FOLLOW(mgmt_export_messages, "ExportMessages", "export")
MGMT_FOLLOW(mgmt_restore_messages, "RestoreMessages", "restore")
MGMT_FOLLOW(mgmt_test_smtp, "TestSmtpSettings", "SMTP test")
MGMT_FORWARD(mgmt_get_smtp, "GetSmtpSettings")
MGMT_FORWARD(mgmt_set_smtp, "SetSmtpSettings")

/* GetJobs: the instance's jobs, or without instanceID the Management
 * Server's own work; `state` keeps those in that state. */
struct mgmt_jobs_call {
	struct mgmt_job *job;
	char *state;
};

static struct json *mgmt_jobs_filter(const struct json *list, const char *state)
{
	struct json *out = json_new_array();
	for (size_t i = 0; i < json_count(list); i++) {
		const char *s = json_get_string(json_at(list, i), "state");
		if (state == NULL || (s != NULL && strcmp(s, state) == 0))
			json_append(out, json_clone(json_at(list, i)));
	}
	return out;
}

static void mgmt_jobs_answer(struct rpc_conn *conn, const struct json *result, const char *code,
			     const char *text, void *ctx)
{
	struct mgmt_jobs_call *call = ctx;
	if (code != NULL)
		mgmt_job_done(call->job, NULL, text);
	else
		mgmt_job_done(call->job, mgmt_jobs_filter(result, call->state), NULL);
	mem_free(call->state);
	mem_free(call);
}

static void mgmt_get_jobs(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job)
{
	static const char *const states[] = {"running", "succeeded", "failed", "cancelled",
					     "interrupted"};
	const char *state = json_get_string(args, "state"), *error;
	bool known = state == NULL;
	for (size_t i = 0; !known && i < sizeof(states) / sizeof(states[0]); i++)
		known = strcmp(state, states[i]) == 0;
	if (!known) {
		mgmt_job_done(job, NULL,
			      tstr_printf("state: '%s' is not running, succeeded, failed, "
					  "cancelled or interrupted",
					  state));
		return;
	}
	if (json_get_string(args, "instanceID") == NULL) {
		mgmt_job_done(job, mgmt_jobs_list(mgmt->jobs, state, job), NULL);
		return;
	}
	struct json *inner = json_clone(args);
	(void)json_remove(inner, "state");
	struct mgmt_jobs_call *call = mem_new(struct mgmt_jobs_call);
	call->job = job;
	call->state = state != NULL ? mem_strdup(state) : NULL;
	if (mgmt_data_send(mgmt, inner, "GetJobs", mgmt_jobs_answer, call, &error) < 0) {
		mgmt_job_done(job, NULL, error);
		mem_free(call->state);
		mem_free(call);
	}
	json_unref(&inner);
}
MGMT_FORWARD(mgmt_get_job, "GetJob")
MGMT_FORWARD(mgmt_cancel_job, "CancelJob")
/* archiving sources: profiles and their runs (instance-profiles.h) */
MGMT_FORWARD(mgmt_get_profiles, "GetProfiles")
MGMT_FORWARD(mgmt_create_profile, "CreateProfile")
MGMT_FORWARD(mgmt_set_profile, "SetProfile")
MGMT_FORWARD(mgmt_delete_profile, "DeleteProfile")
MGMT_FORWARD(mgmt_run_profile, "RunProfile")
MGMT_FORWARD(mgmt_get_worker_results, "GetWorkerResults")
MGMT_FORWARD(mgmt_get_worker_result_report, "GetWorkerResultReport")

#define ID_ARG                                                                                     \
	{                                                                                          \
		"instanceID", MGMT_API_STRING, true, "the instance's ID or alias"                  \
	}
#define USER_ARG                                                                                   \
	{                                                                                          \
		"userName", MGMT_API_STRING, true, "the user's name"                               \
	}
#define F(name, desc, fn, ...)                                                                     \
	{                                                                                          \
		name, desc, {ID_ARG, __VA_ARGS__}, NULL, fn, false                                 \
	}

const struct mgmt_api_function mgmt_api_instance_data_functions[] = {
	{"GetUsers", "The users of an instance.", {ID_ARG}, NULL, mgmt_get_users, false},
	F("GetUserInfo", "One user: privileges, login privileges, folder rights, MFA state.",
	  mgmt_get_user_info, USER_ARG),
	F("CreateUser", "Create a user.", mgmt_create_user, USER_ARG,
	  {"password", MGMT_API_STRING, false,
	   "8 to 1024 characters; without one the user cannot log in"},
	  {"fullName", MGMT_API_STRING, false, "display name"},
	  {"emailAddresses", MGMT_API_LIST, false, "email addresses"},
	  {"privileges", MGMT_API_LIST, false,
	   "admin, login, archive, export, delete, auditor (default login,archive; "
	   "docs/client-api.md says what each allows)"},
	  {"loginPrivileges", MGMT_API_LIST, false, "web, imap, api (default web,imap)"}),
	F("DeleteUser", "Delete a user (their archived mail stays).", mgmt_delete_user, USER_ARG),
	F("RenameUser", "Rename a user; the archive stays theirs.", mgmt_rename_user,
	  {"oldUserName", MGMT_API_STRING, true, "current name"},
	  {"newUserName", MGMT_API_STRING, true, "new name"}),
	F("SetUserPassword", "Set a user's password.", mgmt_set_user_password, USER_ARG,
	  {"password", MGMT_API_STRING, true, "8 to 1024 characters"}),
	F("SetUserFullName", "Set a user's display name.", mgmt_set_user_full_name, USER_ARG,
	  {"fullName", MGMT_API_STRING, true, "display name"}),
	F("SetUserEmailAddresses", "Set a user's email addresses.", mgmt_set_user_emails, USER_ARG,
	  {"emailAddresses", MGMT_API_LIST, true, "email addresses"}),
	F("SetUserPrivileges", "Set a user's privileges.", mgmt_set_user_privileges, USER_ARG,
	  {"privileges", MGMT_API_LIST, true,
	   "admin, login, archive, export, delete, auditor (docs/client-api.md says what each "
	   "allows)"}),
	F("SetUserLoginPrivileges", "Set how a user may log in.", mgmt_set_user_login_privileges,
	  USER_ARG, {"loginPrivileges", MGMT_API_LIST, true, "web, imap, api"}),
	F("SetUserPrivilegesOnFolder",
	  "Set a user's rights on a folder and the folders below it (empty removes them).",
	  mgmt_set_user_folder_privileges, USER_ARG,
	  {"folder", MGMT_API_STRING, true,
	   "USER (a whole user archive) or USER/PATH, as GetChildFolders names them"},
	  {"privileges", MGMT_API_LIST, true,
	   "read, write, delete (docs/client-api.md says what each allows)"}),
	F("SyncUsers",
	  "Create or update many users in one transaction (a directory sync): each entry creates "
	  "the user or sets the fields it has; returns {usersCreated, usersUpdated, "
	  "usersUnchanged, usersDeleted}.",
	  mgmt_sync_users,
	  {"users", MGMT_API_JSON, true,
	   "a JSON array of {userName, fullName, emailAddresses, privileges, loginPrivileges} "
	   "(as CreateUser takes them; no passwords: SetUserPassword sets those)"},
	  {"deleteMissing", MGMT_API_BOOL, false,
	   "delete the users that are not listed (default false)"}),
	F("InitializeMFA", "Start TOTP enrolment for a user: secret, otpauth URI and QR code.",
	  mgmt_init_user_mfa, USER_ARG),
	F("DisableMFA", "Turn MFA off for a user.", mgmt_disable_user_mfa, USER_ARG),
	F("GetUserAppPasswords",
	  "A user's app passwords (for IMAP clients): name and created, never the password. "
	  "Users create their own in Web Access (it needs their password).",
	  mgmt_get_user_app_passwords, USER_ARG),
	F("DeleteUserAppPassword",
	  "Revoke one of a user's app passwords (a lost phone): logins with it fail from then on.",
	  mgmt_delete_user_app_password, USER_ARG,
	  {"name", MGMT_API_STRING, true, "the app password's name"}),
	F("GetChildFolders",
	  "The folders below a folder of the archive tree (user, then the folder path); without "
	  "folder, the users' archives.",
	  mgmt_get_child_folders,
	  {"folder", MGMT_API_STRING, false, "USER/PATH as returned here; empty for the top"}),
	{"GetFolderStatistics",
	 "Every folder with its message count and size.",
	 {ID_ARG},
	 NULL,
	 mgmt_get_folder_statistics,
	 false},
	F("GetMessages", "The messages of one folder, newest first, paged.", mgmt_get_messages,
	  {"folder", MGMT_API_STRING, true, "USER/PATH"},
	  {"limit", MGMT_API_NUMBER, false, "1 to 1000 (default 50)"},
	  {"offset", MGMT_API_NUMBER, false, "for paging"}),
	{"GetStores", "The archive stores of an instance.", {ID_ARG}, NULL, mgmt_get_stores, false},
	{"CreateStore",
	 "Start a new current archive store.",
	 {ID_ARG},
	 NULL,
	 mgmt_create_store,
	 false},
	F("SetStoreRequestedState", "Set a store's state.", mgmt_set_store_state,
	  {"storeName", MGMT_API_STRING, true, "the store"},
	  {"requestedState", MGMT_API_STRING, true,
	   "current, normal, write-protected or disabled"}),
	{"VerifyStores",
	 "Check every stored message against its hash and the catalog against the stores; "
	 "long-running, with progress (a job of the instance: GetJob).",
	 {ID_ARG},
	 NULL,
	 mgmt_verify_stores,
	 true},
	{"RebuildSelectedStoreIndexes",
	 "Rebuild the catalog and index from the stores' segments; long-running, with progress (a "
	 "job of the instance: GetJob). Archive reads wait until it has finished.",
	 {ID_ARG},
	 NULL,
	 mgmt_rebuild_indexes,
	 true},
	{"GetInstanceStatistics",
	 "Messages, unique contents, raw and stored bytes, per store; parse defects per kind.",
	 {ID_ARG},
	 NULL,
	 mgmt_get_statistics,
	 false},
	{"GetInstanceProcessLiveStatistics",
	 "The instance process: pid, uptime, calls, memory, CPU time (cpuMilliseconds: user + "
	 "system of all its threads), password checks (logins).",
	 {ID_ARG},
	 NULL,
	 mgmt_get_live_statistics,
	 false},
	F("GetInstanceAuditLog",
	  "The instance's audit log (logins, message reads and downloads, exports, searches by "
	  "auditors, administrators' changes), newest first, filtered and paged; read on a "
	  "worker of the instance (docs/compliance.md).",
	  mgmt_get_audit_log, {"user", MGMT_API_STRING, false, "only this user's entries"},
	  {"action", MGMT_API_STRING, false, "only this action, e.g. ClientLogin, ClientFetch"},
	  {"since", MGMT_API_STRING, false, "from this UTC time or date, e.g. 2026-12-01"},
	  {"until", MGMT_API_STRING, false, "up to this UTC time, or the end of this date"},
	  {"text", MGMT_API_STRING, false, "only entries whose details contain this"},
	  {"limit", MGMT_API_NUMBER, false, "1 to 1000 (default 100)"},
	  {"offset", MGMT_API_NUMBER, false, "newest entries to skip (offset + limit <= 20000)"}),
	F("VerifyInstanceAuditLog",
	  "Check the hash chain of the instance's audit log: the number of entries, or the "
	  "first line that does not fit.",
	  mgmt_verify_audit_log),
	F("Search", "Search an instance's archive with the query language (docs/api.md).",
	  mgmt_search,
	  {"query", MGMT_API_STRING, true,
	   "e.g. from:alice subject:\"report\" date:2024-01-01..2024-12-31"},
	  {"limit", MGMT_API_NUMBER, false, "1 to 1000 (default 50)"},
	  {"offset", MGMT_API_NUMBER, false, "for paging"}),
	F("GetComplianceConfiguration",
	  "The instance's legal hold and the users' (archives') legal holds, and what deletions "
	  "left in the stores for a compaction (pendingRemoval: records, bytes).",
	  mgmt_get_compliance),
	F("SetComplianceConfiguration",
	  "Turn a legal hold on or off, for the whole instance or one user's archive. While a "
	  "hold is on nothing it covers is deleted, by anyone or by retention; every change is "
	  "in the instance's audit log.",
	  mgmt_set_compliance, {"legalHold", MGMT_API_BOOL, true, "true: on; false: off"},
	  {"userName", MGMT_API_STRING, false, "only this user's archive (default the instance)"},
	  {"reason", MGMT_API_STRING, false, "why (shown with the hold and audited)"}),
	F("DeleteMessage",
	  "Delete one message from its folder, unless a legal hold or a minimum keep time "
	  "protects it (refused: protected). A content other folders hold stays for them. "
	  "Audited with the reason.",
	  mgmt_delete_message,
	  {"messageID", MGMT_API_NUMBER, true,
	   "as Search or GetMessages "
	   "give it"},
	  {"reason", MGMT_API_STRING, true, "why (audited)"},
	  {"userName", MGMT_API_STRING, false,
	   "delete as this user: needs the delete privilege and the delete right on the folder"}),
	F("DeleteMessages",
	  "Delete every message a search finds (at most 10000), all or none: refused if a hold, "
	  "a minimum keep time or the user's rights protect any of them.",
	  mgmt_delete_messages, {"query", MGMT_API_STRING, true, "the query language, as Search"},
	  {"reason", MGMT_API_STRING, true, "why (audited)"},
	  {"userName", MGMT_API_STRING, false,
	   "delete as this user: needs the delete privilege and the delete right on each folder"}),
	F("GetRetentionPolicies", "The instance's retention policies.", mgmt_get_retention),
	F("SetRetentionPolicies",
	  "Replace the instance's retention policies. A minimum keep time protects what it covers "
	  "from deletion (also by administrators) until it is that old; a maximum keep time has "
	  "ProcessRetentionPolicies delete it once older. Ages count from the message's date.",
	  mgmt_set_retention,
	  {"policies", MGMT_API_JSON, true,
	   "a JSON list of {name, type (minimum or maximum), days, users (archive names), "
	   "folders (paths, with their subfolders), query}; users, folders and query are "
	   "optional limits"}),
	{"ProcessRetentionPolicies",
	 "Delete what the maximum keep times say, except what a legal hold or a minimum keep "
	 "time protects; long-running, with progress (a job of the instance, also run daily). "
	 "The result counts expired, keptByLegalHold, keptByMinimum, deleted (or wouldDelete) "
	 "and lists the first listLimit message IDs in report.",
	 {ID_ARG,
	  {"dryRun", MGMT_API_BOOL, false, "only list what would be deleted (default false)"},
	  {"listLimit", MGMT_API_NUMBER, false, "message IDs to list, 0 to 1000 (default 100)"}},
	 NULL,
	 mgmt_process_retention,
	 true},
	{"CompactStore",
	 "Make deleted messages leave the disk: rewrite every segment holding records of deleted "
	 "messages without them, then scrub the catalog (full-text index merge, WAL checkpoint, "
	 "VACUUM); crash-safe, long-running, with progress (a job of the instance). The result "
	 "counts segments, recordsDropped, bytesBefore and bytesAfter (docs/storage.md, "
	 "Compaction).",
	 {ID_ARG},
	 NULL,
	 mgmt_compact_store,
	 true},
	{"ImportFiles",
	 "Import EML files, folders of them, mbox files, Maildir trees or Outlook PST files from "
	 "below <baseDirectory>/import/ on the Instance Host into a user's archive; long-running, "
	 "with "
	 "progress. The user needs the archive privilege, and the write right on the folder when "
	 "it is not in their own archive. The result counts messages archived, duplicates, "
	 "skipped inputs and messages with parse defects, and names why: skippedByKind and "
	 "defectsByKind (docs/archive.md lists the kinds).",
	 {ID_ARG,
	  USER_ARG,
	  {"path", MGMT_API_STRING, true,
	   "relative to the base directory (import/...) or absolute below it"},
	  {"folder", MGMT_API_STRING, false, "archive folder (default Import)"},
	  {"archive", MGMT_API_STRING, false,
	   "the user archive to file into (default the user's own)"}},
	 NULL,
	 mgmt_import_files,
	 true},
	{"ExportMessages",
	 "Export a folder, a search result or listed messages below <baseDirectory>/export/ on "
	 "the Instance Host, as a zip, an mbox (mboxrd) or a directory of EML files, each "
	 "message's archived bytes unchanged; long-running, with progress (a job of the "
	 "instance: GetJob, CancelJob). Durable (written under a temporary name, fsynced, "
	 "renamed). The result names the path and counts messages, exported, failed and bytes. "
	 "Audited.",
	 {ID_ARG,
	  {"format", MGMT_API_STRING, true, "zip, mbox or eml"},
	  {"name", MGMT_API_STRING, true,
	   "the file or directory below export/: letters, digits, '.', '_', '-' (no path); "
	   "must not exist"},
	  {"folder", MGMT_API_STRING, false, "USER/PATH: that folder's messages"},
	  {"query", MGMT_API_STRING, false, "or a search (the query language, as Search)"},
	  {"messageIDs", MGMT_API_LIST, false, "or these messages (IDs as Search gives them)"}},
	 NULL,
	 mgmt_export_messages,
	 true},
	{"RestoreMessages",
	 "Restore a folder, a search result or listed messages to a mailbox: by IMAP APPEND to "
	 "any IMAP server (TLS verified against the system's CAs or a pinned SHA-256 "
	 "fingerprint; the folder is created if missing; internal dates kept) or by SMTP with "
	 "the instance's SMTP settings (SetSmtpSettings). Long-running, with progress (a job of "
	 "the instance). The result counts messages, restored and failed; report names each "
	 "failed message with the reason. The password is never logged or returned. Audited.",
	 {ID_ARG,
	  {"method", MGMT_API_STRING, true, "imap or smtp"},
	  {"target", MGMT_API_JSON, true,
	   "imap: {host, port (default 993, or 143 with starttls), security (tls (default) or "
	   "starttls), fingerprint (pins the server's certificate; without it the system's CAs "
	   "decide), login, folder (default Restored)}; smtp: {to}"},
	  {"password", MGMT_API_STRING, false, "imap: the login's password"},
	  {"folder", MGMT_API_STRING, false, "USER/PATH: that folder's messages"},
	  {"query", MGMT_API_STRING, false, "or a search (the query language, as Search)"},
	  {"messageIDs", MGMT_API_LIST, false, "or these messages (IDs as Search gives them)"}},
	 NULL,
	 mgmt_restore_messages,
	 true},
	F("GetSmtpSettings",
	  "The instance's SMTP settings (restores by SMTP), without the password: passwordSet "
	  "says whether one is set; configured false before any.",
	  mgmt_get_smtp),
	F("SetSmtpSettings",
	  "Set the instance's SMTP settings; the password is kept sealed under the instance key "
	  "in its base directory, never returned.",
	  mgmt_set_smtp, {"host", MGMT_API_STRING, true, "SMTP server"},
	  {"port", MGMT_API_NUMBER, false, "default 587"},
	  {"security", MGMT_API_STRING, false, "none, starttls (default) or tls"},
	  {"userName", MGMT_API_STRING, false, "for SMTP AUTH (empty: none)"},
	  {"password", MGMT_API_STRING, false, "for SMTP AUTH; omit to keep, empty to remove"},
	  {"fromAddress", MGMT_API_STRING, true, "envelope sender"},
	  {"verifyCertificate", MGMT_API_BOOL, false,
	   "check the server's certificate (default true)"}),
	{"TestSmtpSettings",
	 "Send a test message with the instance's SMTP settings (a job of the instance); the "
	 "result says sentTo, or the error the server gave.",
	 {ID_ARG, {"to", MGMT_API_STRING, true, "recipient address"}},
	 NULL,
	 mgmt_test_smtp,
	 true},
	{"GetJobs",
	 "The instance's long work (imports, verify, rebuild), newest first: the last 10 jobs, "
	 "kept across restarts of the instance. Without instanceID: the Management Server's own "
	 "work (functions that ran as jobs, such as ImportFiles or MoveInstance: function, "
	 "instanceID, user, state, error, startedAt, finishedAt), running or ended in the last "
	 "10 minutes, newest first, and the jobs instances ran on their own schedule that failed "
	 "(user scheduler).",
	 {{"instanceID", MGMT_API_STRING, false,
	   "the instance's ID or alias (none: the Management Server's jobs)"},
	  {"state", MGMT_API_STRING, false,
	   "only jobs in this state: running, succeeded, failed, cancelled (or interrupted, an "
	   "instance's)"}},
	 NULL,
	 mgmt_get_jobs,
	 false},
	F("GetJob",
	  "One job of the instance: state (running, succeeded, failed, cancelled, interrupted), "
	  "percentProgress, statusText, result (counts so far while running), error, log. A job "
	  "whose instance process ended while it ran is interrupted; an interrupted import's "
	  "archived count is what it committed.",
	  mgmt_get_job,
	  {"jobID", MGMT_API_STRING, true,
	   "result.jobID of ImportFiles, VerifyStores or RebuildSelectedStoreIndexes, or from "
	   "GetJobs"}),
	F("CancelJob",
	  "Ask a running job to stop. It stops after committing what is in flight; GetJob then "
	  "shows it cancelled with what it did.",
	  mgmt_cancel_job, {"jobID", MGMT_API_STRING, true, "the job"}),
	{"GetProfiles",
	 "The instance's archiving profiles (where mail comes from, for which users, when); "
	 "credentials are never returned (hasPassword says whether one is set).",
	 {ID_ARG},
	 NULL,
	 mgmt_get_profiles,
	 false},
	F("CreateProfile",
	  "Create an archiving profile (docs/sources.md lists the fields: type imap or pop3, host, "
	  "port, security tls or starttls, fingerprint or caCertificate, login, password, "
	  "adminMode, "
	  "mailboxes, user, folders, exclude, schedule, deleteAfterArchive, distribute, "
	  "unknownRecipients, catchAllUser). Answers the profile with its profileID.",
	  mgmt_create_profile, {"profile", MGMT_API_JSON, true, "the profile's fields"}),
	F("SetProfile",
	  "Change fields of a profile: those given replace the old ones (null removes one); the "
	  "password is kept unless given.",
	  mgmt_set_profile, {"profileID", MGMT_API_STRING, true, "the profile"},
	  {"profile", MGMT_API_JSON, true, "the fields to change"}),
	F("DeleteProfile", "Delete a profile and its incremental state (not while it runs).",
	  mgmt_delete_profile, {"profileID", MGMT_API_STRING, true, "the profile"}),
	F("RunProfile",
	  "Run a profile now, as a job of the instance; answers its jobID at once "
	  "(GetWorkerResults, GetWorkerResultReport, CancelJob).",
	  mgmt_run_profile, {"profileID", MGMT_API_STRING, true, "the profile"}),
	F("GetWorkerResults",
	  "The kept runs of profiles, newest first: state, counts archived, duplicates, failed "
	  "(and deletedFromSource), error.",
	  mgmt_get_worker_results,
	  {"profileID", MGMT_API_STRING, false, "only this profile's runs"}),
	F("GetWorkerResultReport",
	  "One run of a profile with its report: each failed message with its reason.",
	  mgmt_get_worker_result_report,
	  {"jobID", MGMT_API_STRING, true, "from RunProfile or GetWorkerResults"}),
	{NULL, NULL, {{0}}, NULL, NULL, false},
};
