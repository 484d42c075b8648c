/* mgmt-api-instance-data: functions about one instance's process and the data
 * inside it (users, folders, stores, statistics, search, imports). Each takes
 * instanceID and is carried to the instance process through its Instance Host. */
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
#define MGMT_FORWARD(fn, method) \
	static void fn(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job) \
	{ \
		mgmt_data_forward(mgmt, args, job, method); \
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
MGMT_FORWARD(mgmt_get_stores, "GetStores")
MGMT_FORWARD(mgmt_create_store, "CreateStore")
MGMT_FORWARD(mgmt_set_store_state, "SetStoreRequestedState")
MGMT_FORWARD(mgmt_verify_stores, "VerifyStores")
MGMT_FORWARD(mgmt_rebuild_indexes, "RebuildSelectedStoreIndexes")
MGMT_FORWARD(mgmt_search, "Search")
MGMT_FORWARD(mgmt_get_statistics, "GetStatistics")
MGMT_FORWARD(mgmt_get_live_statistics, "GetLiveStatistics")
MGMT_FORWARD(mgmt_get_child_folders, "GetChildFolders")
MGMT_FORWARD(mgmt_get_folder_statistics, "GetFolderStatistics")
MGMT_FORWARD(mgmt_get_messages, "GetMessages")

/* ---- imports: started in the instance, polled for progress ---- */

struct mgmt_import {
	struct mgmt *mgmt;
	struct mgmt_job *job;
	struct json *args; /* instanceID for the polls */
	struct event *timer;
	bool polling;
	bool gone; /* the job was cancelled: finish quietly */
};

static void mgmt_import_free(struct mgmt_import *imp)
{
	event_free(imp->timer);
	json_unref(&imp->args);
	mem_free(imp);
}

static void mgmt_import_schedule(struct mgmt_import *imp)
{
	struct timeval tv = {0, MGMT_IMPORT_POLL_MS * 1000};
	event_add(imp->timer, &tv);
}

static void mgmt_import_status(struct rpc_conn *conn, const struct json *result, const char *code,
			       const char *text, void *ctx)
{
	struct mgmt_import *imp = ctx;
	imp->polling = false;
	if (imp->gone) {
		mgmt_import_free(imp);
		return;
	}
	const char *state = json_get_string(result, "state");
	if (code != NULL || state == NULL) {
		mgmt_job_done(imp->job, NULL, code != NULL ? text : "unexpected import status");
		mgmt_import_free(imp);
		return;
	}
	long long archived = 0, read = 0, skipped = 0;
	(void)json_get_int(result, "archived", &archived);
	(void)json_get_int(result, "messagesRead", &read);
	(void)json_get_int(result, "skipped", &skipped);
	if (strcmp(state, "running") == 0) {
		mgmt_job_progress(imp->job, -1, tstr_printf("%lld messages read, %lld archived, %lld skipped",
							   read, archived, skipped));
		mgmt_import_schedule(imp);
		return;
	}
	const char *log_text = json_get_string(result, "log");
	if (log_text != NULL && log_text[0] != '\0')
		mgmt_job_log(imp->job, log_text);
	const char *error = json_get_string(result, "error");
	mgmt_job_done(imp->job, json_clone(result),
		      strcmp(state, "failed") == 0 ? (error != NULL ? error : "the import failed") : NULL);
	mgmt_import_free(imp);
}

static void mgmt_import_poll(evutil_socket_t fd, short events, void *ctx)
{
	struct mgmt_import *imp = ctx;
	const char *error;
	imp->polling = true;
	if (mgmt_data_send(imp->mgmt, imp->args, "GetImportStatus", mgmt_import_status, imp, &error) < 0)
		mgmt_import_status(NULL, NULL, "unreachable", error, imp);
}

static void mgmt_import_started(struct rpc_conn *conn, const struct json *result, const char *code,
				const char *text, void *ctx)
{
	struct mgmt_import *imp = ctx;
	if (code != NULL || imp->gone) {
		if (!imp->gone)
			mgmt_job_done(imp->job, NULL, text);
		mgmt_import_free(imp);
		return;
	}
	mgmt_job_progress(imp->job, -1, "import started");
	mgmt_import_schedule(imp);
}

static void mgmt_ignore(struct rpc_conn *conn, const struct json *result, const char *code,
			const char *text, void *ctx)
{
}

static void mgmt_import_cancel(struct mgmt_job *job, void *ctx)
{
	struct mgmt_import *imp = ctx;
	const char *error;
	(void)mgmt_data_send(imp->mgmt, imp->args, "CancelImport", mgmt_ignore, NULL, &error);
	imp->gone = true;
	if (!imp->polling && event_pending(imp->timer, EV_TIMEOUT, NULL)) {
		event_del(imp->timer);
		mgmt_import_free(imp);
	}
}

static void mgmt_import_files(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job)
{
	struct mgmt_import *imp = mem_new(struct mgmt_import);
	const char *error;
	imp->mgmt = mgmt;
	imp->job = job;
	imp->args = json_new_object();
	json_set_string(imp->args, "instanceID", json_get_string(args, "instanceID"));
	imp->timer = evtimer_new(role_daemon_base(mgmt->rd), mgmt_import_poll, imp);
	mgmt_job_on_cancel(job, mgmt_import_cancel, imp);
	imp->polling = true;
	if (mgmt_data_send(mgmt, args, "StartImport", mgmt_import_started, imp, &error) < 0) {
		mgmt_job_done(job, NULL, error);
		mgmt_import_free(imp);
	}
}

#define ID_ARG {"instanceID", MGMT_API_STRING, true, "the instance's ID or alias"}
#define USER_ARG {"userName", MGMT_API_STRING, true, "the user's name"}
#define F(name, desc, fn, ...) {name, desc, {ID_ARG, __VA_ARGS__}, NULL, fn, false}

const struct mgmt_api_function mgmt_api_instance_data_functions[] = {
	{"GetUsers", "The users of an instance.", {ID_ARG}, NULL, mgmt_get_users, false},
	F("GetUserInfo", "One user: privileges, login privileges, folder rights, MFA state.", mgmt_get_user_info, USER_ARG),
	F("CreateUser", "Create a user.", mgmt_create_user, USER_ARG,
	  {"password", MGMT_API_STRING, false, "8 to 1024 characters; without one the user cannot log in"},
	  {"fullName", MGMT_API_STRING, false, "display name"},
	  {"emailAddresses", MGMT_API_STRING, false, "comma-separated"},
	  {"privileges", MGMT_API_STRING, false, "admin, login, archive, export, delete (default login,archive)"},
	  {"loginPrivileges", MGMT_API_STRING, false, "web, imap, api (default web,imap)"}),
	F("DeleteUser", "Delete a user (their archived mail stays).", mgmt_delete_user, USER_ARG),
	F("RenameUser", "Rename a user; the archive stays theirs.", mgmt_rename_user,
	  {"oldUserName", MGMT_API_STRING, true, "current name"},
	  {"newUserName", MGMT_API_STRING, true, "new name"}),
	F("SetUserPassword", "Set a user's password.", mgmt_set_user_password, USER_ARG,
	  {"password", MGMT_API_STRING, true, "8 to 1024 characters"}),
	F("SetUserFullName", "Set a user's display name.", mgmt_set_user_full_name, USER_ARG,
	  {"fullName", MGMT_API_STRING, true, "display name"}),
	F("SetUserEmailAddresses", "Set a user's email addresses.", mgmt_set_user_emails, USER_ARG,
	  {"emailAddresses", MGMT_API_STRING, true, "comma-separated"}),
	F("SetUserPrivileges", "Set a user's privileges.", mgmt_set_user_privileges, USER_ARG,
	  {"privileges", MGMT_API_STRING, true, "admin, login, archive, export, delete"}),
	F("SetUserLoginPrivileges", "Set how a user may log in.", mgmt_set_user_login_privileges, USER_ARG,
	  {"loginPrivileges", MGMT_API_STRING, true, "web, imap, api"}),
	F("SetUserPrivilegesOnFolder", "Set a user's rights on a folder (empty removes them).",
	  mgmt_set_user_folder_privileges, USER_ARG,
	  {"folder", MGMT_API_STRING, true, "folder path"},
	  {"privileges", MGMT_API_STRING, true, "read, write, delete"}),
	F("InitializeMFA", "Start TOTP enrolment for a user: secret, otpauth URI and QR code.",
	  mgmt_init_user_mfa, USER_ARG),
	F("DisableMFA", "Turn MFA off for a user.", mgmt_disable_user_mfa, USER_ARG),
	F("GetChildFolders", "The folders below a folder of the archive tree (user, then the folder path); without folder, the users' archives.",
	  mgmt_get_child_folders, {"folder", MGMT_API_STRING, false, "USER/PATH as returned here; empty for the top"}),
	{"GetFolderStatistics", "Every folder with its message count and size.", {ID_ARG}, NULL,
	 mgmt_get_folder_statistics, false},
	F("GetMessages", "The messages of one folder, newest first, paged.", mgmt_get_messages,
	  {"folder", MGMT_API_STRING, true, "USER/PATH"},
	  {"limit", MGMT_API_NUMBER, false, "1 to 1000 (default 50)"},
	  {"offset", MGMT_API_NUMBER, false, "for paging"}),
	{"GetStores", "The archive stores of an instance.", {ID_ARG}, NULL, mgmt_get_stores, false},
	{"CreateStore", "Start a new current archive store.", {ID_ARG}, NULL, mgmt_create_store, false},
	F("SetStoreRequestedState", "Set a store's state.", mgmt_set_store_state,
	  {"storeName", MGMT_API_STRING, true, "the store"},
	  {"requestedState", MGMT_API_STRING, true, "current, normal, write-protected or disabled"}),
	{"VerifyStores", "Check every stored message against its hash and the catalog against the stores.",
	 {ID_ARG}, NULL, mgmt_verify_stores, false},
	{"RebuildSelectedStoreIndexes", "Rebuild the catalog and index from the stores' segments.",
	 {ID_ARG}, NULL, mgmt_rebuild_indexes, false},
	{"GetInstanceStatistics", "Messages, unique contents, raw and stored bytes, per store.",
	 {ID_ARG}, NULL, mgmt_get_statistics, false},
	{"GetInstanceProcessLiveStatistics", "The instance process: pid, uptime, calls, memory, password checks (logins).",
	 {ID_ARG}, NULL, mgmt_get_live_statistics, false},
	F("Search", "Search an instance's archive with the query language (docs/api.md).", mgmt_search,
	  {"query", MGMT_API_STRING, true, "e.g. from:alice subject:\"report\" date:2024-01-01..2024-12-31"},
	  {"limit", MGMT_API_NUMBER, false, "1 to 1000 (default 50)"},
	  {"offset", MGMT_API_NUMBER, false, "for paging"}),
	{"ImportFiles",
	 "Import EML files, folders of them, mbox files or Maildir trees from below <baseDirectory>/import/ on the Instance Host into a user's archive; long-running, with progress.",
	 {ID_ARG, USER_ARG,
	  {"path", MGMT_API_STRING, true, "relative to the base directory (import/...) or absolute below it"},
	  {"folder", MGMT_API_STRING, false, "archive folder (default Import)"}},
	 NULL, mgmt_import_files, true},
	{NULL, NULL, {{0}}, NULL, NULL, false},
};
