#include "instance-main.h"
#include "instance.h"
#include "instance-journal.h"
#include "instance-archive.h"
#include "instance-audit.h"
#include "instance-jobs.h"
#include "instance-profiles.h"
#include "instance-retention.h"
#include "instance-client.h"
#include "alloc.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "service-sandbox.h"
#include "tstr.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INSTANCE_HOST_FD 3

static const char *instance_context(const struct instance *inst)
{
	return tstr_printf("instance=%s", inst->id);
}

static void instance_request(struct rpc_conn *conn, uint32_t id, const char *method,
			     const struct json *args, void *ctx)
{
	struct instance *inst = ctx;
	if (inst->stop_timer != NULL) {
		rpc_conn_reply_error(conn, id, "not-running",
				     tstr_printf("instance %s is stopping", inst->id));
		return;
	}
	inst->last_used = time(NULL);
	inst->idle_since_trim = false;
	inst->calls++;
	instance_calls_dispatch(inst, conn, id, method, args);
}

static void instance_host_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	/* Without its Instance Host nobody can reach this process: end it. */
	struct instance *inst = ctx;
	log_info(instance_context(inst), "Instance Host link closed (%s): exiting", reason);
	event_base_loopexit(inst->base, NULL);
}

/* A job the instance started by itself (a scheduled profile or retention
 * run) that failed: nobody follows it, so tell the Instance Host, which
 * passes it on to the Management Server's dashboard. */
static void instance_job_ended(const struct json *job, void *ctx)
{
	struct instance *inst = ctx;
	const char *state = json_get_string(job, "state");
	const struct json *args = json_get(job, "arguments");
	if (inst->host == NULL || state == NULL || !json_get_bool(args, "scheduled", false) ||
	    (strcmp(state, "failed") != 0 && strcmp(state, "interrupted") != 0))
		return;
	struct json *data = json_new_object();
	json_set_string(data, "jobID", json_get_string(job, "jobID"));
	json_set_string(data, "kind", json_get_string(job, "kind"));
	json_set_string(data, "state", state);
	json_set_string(data, "error", json_get_string(job, "error"));
	json_set_string(data, "startedAt", json_get_string(job, "startedAt"));
	json_set(data, "arguments", json_clone(args));
	rpc_conn_event(inst->host, "scheduledJobFailed", data);
}

static const struct rpc_conn_callbacks instance_callbacks = {
	.request = instance_request,
	.closed = instance_host_closed,
};

/* The idle time after which files close and memory goes back to the kernel:
 * INSTANCE_IDLE_CLOSE_SECS, or COFFER_INSTANCE_IDLE_SECS (tests shorten it). */
static time_t instance_idle_secs(void)
{
	const char *env = getenv("COFFER_INSTANCE_IDLE_SECS");
	long secs = env == NULL ? 0 : strtol(env, NULL, 10);
	return secs > 0 ? (time_t)secs : INSTANCE_IDLE_CLOSE_SECS;
}

static void instance_idle_check(evutil_socket_t fd, short events, void *ctx)
{
	struct instance *inst = ctx;
	if (inst->idle_since_trim || time(NULL) - inst->last_used < instance_idle_secs() ||
	    instance_archive_busy(inst->archive))
		return;
	instance_calls_close(inst);
	/* Closing frees the catalog's page cache, the store's buffers and the
	 * dictionaries, but the allocator keeps freed pages mapped; give them back
	 * so that an idle instance costs a few MB of PSS, not what its last
	 * FETCH or import needed (SPEC: a thousand instances per host). */
	alloc_release();
	inst->idle_since_trim = true;
	size_t in_use, held_free;
	alloc_stats(&in_use, &held_free);
	log_info(instance_context(inst),
		 "idle: files closed, memory returned (%s heap in use %zu KiB, free %zu KiB)",
		 alloc_name(), in_use / 1024, held_free / 1024);
}

/* Stopping: the calls in flight (a login's password check on a worker, a
 * search) are answered and their answers sent before the loop ends, at
 * most INSTANCE_STOP_DRAIN_MS; a caller (a user logging in while the
 * instance moves to another host) gets its answer instead of "closed". */
static void instance_stop_check(evutil_socket_t fd, short events, void *ctx)
{
	struct instance *inst = ctx;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long waited_ms = (now.tv_sec - inst->stop_at.tv_sec) * 1000LL +
			      (now.tv_nsec - inst->stop_at.tv_nsec) / 1000000;
	if ((rpc_conn_unanswered(inst->host) == 0 && rpc_conn_output_len(inst->host) == 0) ||
	    waited_ms >= INSTANCE_STOP_DRAIN_MS) {
		event_base_loopexit(inst->base, NULL);
		return;
	}
	struct timeval tv = {0, 10000};
	event_add(inst->stop_timer, &tv);
}

static void instance_signal(evutil_socket_t sig, short events, void *ctx)
{
	struct instance *inst = ctx;
	if (inst->stop_timer != NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &inst->stop_at);
	inst->stop_timer = evtimer_new(inst->base, instance_stop_check, inst);
	instance_stop_check(-1, 0, inst);
}

static int instance_parse_args(struct instance *inst, int argc, char **argv,
			       const char **log_file_r, const char **error_r)
{
	*log_file_r = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--id") == 0)
			inst->id = mem_strdup(argv[i + 1]);
		else if (strcmp(argv[i], "--base-dir") == 0)
			inst->base_dir = mem_strdup(argv[i + 1]);
		else if (strcmp(argv[i], "--key-file") == 0)
			inst->key_file = mem_strdup(argv[i + 1]);
		else if (strcmp(argv[i], "--log-file") == 0)
			*log_file_r = argv[i + 1];
		else if (strcmp(argv[i], "--keepalive-secs") == 0)
			inst->keepalive_secs = (unsigned int)strtoul(argv[i + 1], NULL, 10);
		else {
			*error_r = tstr_printf("unknown argument '%s'", argv[i]);
			return -1;
		}
	}
	if (inst->id == NULL || inst->base_dir == NULL || inst->key_file == NULL) {
		*error_r = "usage: coffer instance --id ID --base-dir DIR --key-file FILE "
			   "[--log-file FILE] [--keepalive-secs N] (started by the Instance Host)";
		return -1;
	}
	return 0;
}

/* From here on the process can touch only its own base directory and key,
 * the shared log, and read-only system files. */
static int instance_confine(struct instance *inst, const char *log_file, const char **error_r)
{
	struct service_sandbox_path paths[] = {
		{inst->base_dir, true},
		{inst->key_file, false},
		{log_file != NULL ? log_file : "/dev/null", true},
		{"/dev/null", true},
		{"/dev/urandom", false},
		{"/usr", false},
		{"/lib", false},
		{"/lib64", false},
		{"/etc", false},
		{"/proc/self", false},
	};
	int ret = service_sandbox_restrict(paths, sizeof(paths) / sizeof(paths[0]), error_r);
	if (ret == 0)
		log_warning(instance_context(inst),
			    "the kernel has no Landlock: instance runs unconfined");
	return ret < 0 ? -1 : 0;
}

static void instance_free(struct instance *inst)
{
	instance_calls_close(inst);
	instance_archive_destroy(&inst->archive);
	instance_jobs_destroy(&inst->jobs);
	instance_profiles_destroy(&inst->profiles);
	mem_free(inst->id);
	mem_free(inst->base_dir);
	mem_free(inst->key_file);
}

int instance_main(int argc, char **argv)
{
	struct instance inst = {.started = time(NULL)};
	const char *error, *log_file;
	log_init("instance");
	if (instance_parse_args(&inst, argc, argv, &log_file, &error) < 0) {
		fprintf(stderr, "coffer instance: %s\n", error);
		instance_free(&inst);
		return 2;
	}
	if (log_file != NULL && log_open_file(log_file, &error) < 0)
		log_warning(instance_context(&inst), "%s", error);
	if (instance_confine(&inst, log_file, &error) < 0) {
		log_error(instance_context(&inst), "%s", error);
		instance_free(&inst);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* what it frees when idle must go back whole (alloc_release()) */
	alloc_one_arena();
	inst.base = event_base_new();
	inst.jobs = instance_jobs_create(inst.base, inst.base_dir, inst.key_file,
					 instance_context(&inst));
	instance_jobs_on_end(inst.jobs, instance_job_ended, &inst);
	inst.archive = instance_archive_create(inst.base_dir, inst.key_file, inst.jobs);
	instance_audit_init(&inst);
	inst.journal = instance_journal_create(&inst);
	instance_retention_init(&inst);
	/* before any call: an import cut short by a crash reports exactly
	 * what it committed */
	instance_archive_recover(inst.archive);
	inst.profiles = instance_profiles_create(&inst);
	inst.last_used = time(NULL);
	/* never blocking: while its Instance Host holds back reading (a slow
	 * client), this loop goes on serving the instance's other sessions */
	evutil_make_socket_nonblocking(INSTANCE_HOST_FD);
	struct bufferevent *bev =
		bufferevent_socket_new(inst.base, INSTANCE_HOST_FD, BEV_OPT_CLOSE_ON_FREE);
	struct json *hello = json_new_object();
	json_set_string(hello, "role", "instance");
	json_set_string(hello, "instanceID", inst.id);
	json_set_string(hello, "version", COFFER_VERSION);
	inst.host = rpc_conn_create(bev, hello, inst.keepalive_secs != 0 ? inst.keepalive_secs : 30,
				    &instance_callbacks, &inst);
	json_unref(&hello);
	struct event *term = evsignal_new(inst.base, SIGTERM, instance_signal, &inst);
	evsignal_add(term, NULL);
	inst.idle_timer = event_new(inst.base, -1, EV_PERSIST, instance_idle_check, &inst);
	struct timeval tv = {instance_idle_secs() < 10 ? 1 : 10, 0};
	event_add(inst.idle_timer, &tv);
	log_info(instance_context(&inst), "started (pid %ld)", (long)getpid());
	event_base_dispatch(inst.base);
	/* a running job stops first: it holds the archive */
	instance_jobs_stop(inst.jobs);
	/* a journal batch being committed holds the archive's writer */
	instance_journal_destroy(&inst.journal);
	instance_calls_close(&inst);
	log_info(instance_context(&inst), "stopped");
	event_free(term);
	event_free(inst.idle_timer);
	if (inst.stop_timer != NULL)
		event_free(inst.stop_timer);
	instance_retention_deinit(&inst);
	instance_client_stop(&inst);
	instance_audit_deinit(&inst);
	rpc_conn_destroy(&inst.host);
	/* the job runner's timer lives on the event base */
	instance_archive_destroy(&inst.archive);
	instance_jobs_destroy(&inst.jobs);
	/* after the jobs: a run's end goes back to its profile */
	instance_profiles_destroy(&inst.profiles);
	event_base_free(inst.base);
	instance_free(&inst);
	return 0;
}
