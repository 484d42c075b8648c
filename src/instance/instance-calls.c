/* instance-calls: the calls an instance process answers. */
#include "instance.h"
#include "instance-archive.h"
#include "instance-client.h"
#include "instance-rights.h"
#include "instance-jobs.h"
#include "instance-users.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "tstr.h"

#include <stdio.h>
#include <string.h>
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

static struct json *instance_live_statistics(struct instance *inst)
{
	struct json *s = json_new_object();
	json_set_int(s, "pid", (long long)getpid());
	json_set_int(s, "startedAt", (long long)inst->started);
	json_set_int(s, "uptimeSeconds", (long long)(time(NULL) - inst->started));
	json_set_int(s, "calls", (long long)inst->calls);
	json_set_int(s, "residentKiB", instance_rss_kib());
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
	if (inst->users == NULL &&
	    instance_users_open(inst->base_dir, inst->key_file, &inst->users, error_r) < 0)
		return -1;
	return 0;
}

/* Calls that change data wait while the instance is frozen. */
static bool instance_call_writes(const char *method)
{
	static const char *const reads[] = {
		"GetUsers",        "GetUserInfo",         "GetStatistics", "Search", "GetStores",
		"GetChildFolders", "GetFolderStatistics", "GetMessages",   NULL};
	for (const char *const *m = reads; *m != NULL; m++) {
		if (strcmp(*m, method) == 0)
			return false;
	}
	return true;
}

/* Users and archive calls: 1 answered, 0 not one of them. */
static int instance_data_call(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			      const char *method, const struct json *args)
{
	struct json *result = NULL;
	const char *error = NULL;
	if (inst->frozen && instance_call_writes(method)) {
		rpc_conn_reply_error(conn, id, "frozen",
				     "the instance is frozen: changes wait until it is thawed");
		return 1;
	}
	/* a lost catalog takes the users with it: the rebuild that makes it
	 * again must not need them */
	int ret = instance_users_ready(inst, &error) < 0
			  ? (strcmp(method, "RebuildSelectedStoreIndexes") == 0 ? 0 : -1)
			  : instance_users_call(inst->users, method, args, &result, &error);
	if (ret == 0) {
		/* the archive a call is about, if the user may act on it */
		const char *owner;
		ret = instance_rights_data_call(inst->users, method, args, &owner, &error);
		if (ret == 0)
			ret = instance_archive_call(inst->archive, method, args, owner, &result,
						    &error);
		/* a rebuild just started: let go of the catalog it replaces */
		const char *running = instance_jobs_running(inst->jobs);
		if (running != NULL && strcmp(running, "rebuild") == 0)
			instance_users_close(&inst->users);
	}
	if (ret == 0)
		return 0;
	if (ret < 0)
		rpc_conn_reply_error(conn, id, "failed", error);
	else
		rpc_conn_reply(conn, id, result);
	return 1;
}

void instance_calls_dispatch(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			     const char *method, const struct json *args)
{
	struct json *result = NULL;
	const char *error = NULL;
	if (strcmp(method, "Ping") == 0) {
		rpc_conn_reply(conn, id, json_new_string("pong"));
	} else if (strcmp(method, "GetLiveStatistics") == 0) {
		rpc_conn_reply(conn, id, instance_live_statistics(inst));
	} else if (strcmp(method, "Freeze") == 0) {
		if (instance_archive_busy(inst->archive)) {
			rpc_conn_reply_error(conn, id, "busy",
					     tstr_printf("a job (%s) is running: freeze after it",
							 instance_jobs_running(inst->jobs)));
			return;
		}
		instance_calls_close(inst);
		inst->frozen = true;
		log_info(tstr_printf("instance=%s", inst->id),
			 "frozen: writes paused, files closed");
		rpc_conn_reply(conn, id, NULL);
	} else if (strcmp(method, "Thaw") == 0) {
		inst->frozen = false;
		log_info(tstr_printf("instance=%s", inst->id), "thawed");
		rpc_conn_reply(conn, id, NULL);
	} else if (instance_jobs_call(inst->jobs, method, args, &result, &error) != 0) {
		/* following and cancelling jobs changes no data: also while frozen */
		if (result != NULL)
			rpc_conn_reply(conn, id, result);
		else
			rpc_conn_reply_error(conn, id, "failed", error);
	} else if (instance_client_is_call(method)) {
		/* end users read; the few writes (password, app passwords) touch
		 * users.sealed only, which freezing does not have to keep still */
		instance_client_call(inst, conn, id, method, args);
	} else if (instance_data_call(inst, conn, id, method, args) == 0) {
		rpc_conn_reply_error(conn, id, "unknown-method",
				     tstr_printf("an instance takes no call '%s'", method));
	}
}
