/* instance-calls: the calls an instance process answers. */
#include "instance.h"
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
	return s;
}

void instance_calls_close(struct instance *inst)
{
	/* Nothing is held open between calls yet; the archive engine's handles
	 * are closed here once it is wired in. */
}

void instance_calls_dispatch(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			     const char *method, const struct json *args)
{
	if (strcmp(method, "Ping") == 0) {
		rpc_conn_reply(conn, id, json_new_string("pong"));
	} else if (strcmp(method, "GetLiveStatistics") == 0) {
		rpc_conn_reply(conn, id, instance_live_statistics(inst));
	} else if (strcmp(method, "Freeze") == 0) {
		instance_calls_close(inst);
		inst->frozen = true;
		log_info(tstr_printf("instance=%s", inst->id), "frozen: writes paused, files closed");
		rpc_conn_reply(conn, id, NULL);
	} else if (strcmp(method, "Thaw") == 0) {
		inst->frozen = false;
		log_info(tstr_printf("instance=%s", inst->id), "thawed");
		rpc_conn_reply(conn, id, NULL);
	} else {
		rpc_conn_reply_error(conn, id, "unknown-method",
				     tstr_printf("an instance takes no call '%s'", method));
	}
}
