#include "host-instances.h"
#include "archive.h"
#include "array.h"
#include "config.h"
#include "crypto.h"
#include "file.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "str.h"
#include "tstr.h"
#include "worker-pool.h"

#include <dirent.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOST_INSTANCES_FILE CONFIG_HOST_INSTANCES_FILE
#define HOST_INSTANCES_KEY_DIR "instance-keys"
#define HOST_INSTANCES_CRASH_LIMIT 5
#define HOST_INSTANCES_CRASH_WINDOW 60
#define HOST_INSTANCES_START_TIMEOUT 15
#define HOST_INSTANCES_STOP_TIMEOUT 10
/* Calls for an instance that is starting wait for it (at most this many per
 * instance, at most so long) instead of being refused: a script's
 * CreateInstance followed by CreateUser just works. The start itself is
 * bounded (its timeout, the crash backoff), so this bound is seldom met. */
#define HOST_INSTANCES_HELD_MAX 64
#define HOST_INSTANCES_HOLD_SECS 60
/* Instance processes starting at once, per core: a host told to start a
 * thousand (at boot, StartInstances) starts them in waves, so that none
 * waits past its start timeout for the CPU the others take. Tests set
 * COFFER_HOST_START_PARALLEL. */
#define HOST_INSTANCES_STARTS_PER_CORE 4
/* The link to each instance process: keep-alives every so many seconds, and
 * closed after three times that of silence. Tests shorten it with
 * COFFER_INSTANCE_KEEPALIVE_SECS (1 to 3600) to show that long work does
 * not silence an instance. */
#define HOST_INSTANCES_KEEPALIVE_SECS 30

enum host_instance_state {
	HOST_INSTANCE_STOPPED,
	HOST_INSTANCE_STARTING,
	HOST_INSTANCE_RUNNING,
	HOST_INSTANCE_FROZEN,
	HOST_INSTANCE_STOPPING,
	HOST_INSTANCE_FAILED,
};

static const char *const host_instance_state_names[] = {"stopped", "starting", "running",
							"frozen",  "stopping", "failed"};

/* A caller waiting for an answer that comes later. */
struct host_waiter {
	struct host_waiter *next;
	struct host_instance *inst; /* NULL: not tied to an instance's state */
	struct rpc_conn *conn;      /* NULL once that connection closed */
	uint32_t id;
	bool for_start; /* answered when running, else when stopped */
	struct host_instances *hi;
	/* a call held until the instance runs (method != NULL) */
	char *method;
	struct json *args;
	int after;
	struct event *hold_timer;
};

struct host_instance {
	struct host_instance *next;
	struct host_instances *hi;
	char *id;
	char *base_dir;
	bool want_running;
	bool restart_pending; /* stopping in order to start again */
	enum host_instance_state state;
	pid_t pid;
	struct rpc_conn *conn, *dead_conn;
	time_t started;
	struct timespec spawned; /* monotonic, for the start duration */
	long start_millis;       /* how long the last start took, -1 unknown */
	unsigned int restarts;
	time_t crashes[HOST_INSTANCES_CRASH_LIMIT];
	unsigned int crash_count;
	char *error;
	struct event *timer; /* restart backoff, start and stop timeouts */
	bool start_queued;   /* to be spawned when a start slot is free */
	bool start_counted;  /* spawned and not yet ready: holds a slot */
	bool moving_out;     /* its files are being copied: it must not start */
};

struct host_instances {
	struct event_base *base;
	char *config_dir;
	char exe[PATH_MAX];
	struct host_instance *head;
	struct host_waiter *waiters;
	struct event *sigchld;
	unsigned int starting, start_limit; /* processes spawned, not yet ready */
	host_instances_changed_fn *changed;
	host_instances_event_fn *event;
	void *ctx;
	/* deleted base directories, renamed aside, being removed on the
	 * remover's thread (kept in the registry until they are gone) */
	ARRAY(char *) removing;
	struct worker_pool *remover;
};

static const char *host_ctx(const struct host_instance *inst)
{
	return tstr_printf("instance=%s", inst->id);
}

bool host_instances_id_valid(const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len > 63 || id[0] == '-')
		return false;
	for (const char *p = id; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	}
	return true;
}

static struct host_instance *host_find(struct host_instances *hi, const char *id)
{
	for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
		if (strcmp(i->id, id) == 0)
			return i;
	}
	return NULL;
}

/* ---- registry ---- */

static int host_save(struct host_instances *hi, const char **error_r)
{
	struct json *root = json_new_object(), *list = json_new_array();
	for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
		struct json *e = json_new_object();
		json_set_string(e, "instanceID", i->id);
		json_set_string(e, "baseDirectory", i->base_dir);
		json_set_bool(e, "running", i->want_running);
		json_append(list, e);
	}
	json_set_int(root, "schemaVersion", 1);
	json_set(root, "instances", list);
	if (hi->removing.count > 0) {
		struct json *removing = json_new_array();
		for (size_t i = 0; i < hi->removing.count; i++)
			json_append(removing, json_new_string(hi->removing.items[i]));
		json_set(root, "removing", removing);
	}
	char *text = json_serialize(root, true);
	char *path = config_path(hi->config_dir, HOST_INSTANCES_FILE);
	int ret = file_write_atomic(path, text, strlen(text), 0600, error_r);
	mem_free(path);
	mem_free(text);
	json_unref(&root);
	return ret;
}

static char *host_key_path(struct host_instances *hi, const char *id)
{
	return mem_printf("%s/%s/%s.key", hi->config_dir, HOST_INSTANCES_KEY_DIR, id);
}

/* ---- state and waiters ---- */

static struct json *host_instance_status(struct host_instance *inst);
static void host_instance_start_done(struct host_instance *inst);

static void host_forward(struct host_instances *hi, struct host_instance *inst,
			 struct rpc_conn *conn, uint32_t id, const char *method,
			 const struct json *args, int after);

static void host_waiter_free(struct host_waiter *w)
{
	if (w->hold_timer != NULL)
		event_free(w->hold_timer);
	mem_free(w->method);
	json_unref(&w->args);
	mem_free(w);
}

static void host_unlink_waiter(struct host_instances *hi, struct host_waiter *w)
{
	for (struct host_waiter **p = &hi->waiters; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			return;
		}
	}
}

/* A held call's instance runs: the call goes on to it; or it did not start:
 * the caller hears why. */
static void host_release_held(struct host_instance *inst, struct host_waiter *w, const char *error)
{
	if (w->conn != NULL && error == NULL)
		host_forward(inst->hi, inst, w->conn, w->id, w->method, w->args, w->after);
	else if (w->conn != NULL)
		rpc_conn_reply_error(w->conn, w->id, "not-running",
				     tstr_printf("instance %s did not start: %s", inst->id, error));
	host_waiter_free(w);
}

static void host_answer_waiters(struct host_instance *inst, bool started, const char *error)
{
	struct host_instances *hi = inst->hi;
	struct host_waiter *held = NULL;
	for (struct host_waiter **p = &hi->waiters; *p != NULL;) {
		struct host_waiter *w = *p;
		if (w->inst != inst || w->for_start != started) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		if (w->method != NULL) {
			/* forwarded after this loop: forwarding adds waiters */
			w->next = held;
			held = w;
			continue;
		}
		if (w->conn != NULL) {
			if (error != NULL)
				rpc_conn_reply_error(w->conn, w->id, "failed", error);
			else
				rpc_conn_reply(w->conn, w->id, host_instance_status(inst));
		}
		mem_free(w);
	}
	/* oldest first: the waiters' list is newest first, `held` reverses it */
	while (held != NULL) {
		struct host_waiter *next = held->next;
		host_release_held(inst, held, error);
		held = next;
	}
}

static void host_set_state(struct host_instance *inst, enum host_instance_state state,
			   const char *error)
{
	inst->state = state;
	mem_free(inst->error);
	inst->error = mem_strdup(error == NULL ? "" : error);
	if (inst->hi->changed != NULL)
		inst->hi->changed(inst->id, host_instance_state_names[state], inst->error,
				  inst->hi->ctx);
}

static void host_add_waiter(struct host_instances *hi, struct host_instance *inst,
			    struct rpc_conn *conn, uint32_t id, bool for_start)
{
	struct host_waiter *w = mem_new(struct host_waiter);
	w->inst = inst;
	w->conn = conn;
	w->id = id;
	w->for_start = for_start;
	w->hi = hi;
	w->next = hi->waiters;
	hi->waiters = w;
}

void host_instances_forget_conn(struct host_instances *hi, struct rpc_conn *conn)
{
	for (struct host_waiter *w = hi->waiters; w != NULL; w = w->next) {
		if (w->conn == conn)
			w->conn = NULL;
	}
}

/* ---- the instance process ---- */

static void host_instance_ready(struct rpc_conn *conn, const struct json *hello, void *ctx)
{
	struct host_instance *inst = ctx;
	event_del(inst->timer);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	inst->start_millis = (now.tv_sec - inst->spawned.tv_sec) * 1000 +
			     (now.tv_nsec - inst->spawned.tv_nsec) / 1000000;
	log_info(host_ctx(inst), "running (pid %ld, started in %ld ms)", (long)inst->pid,
		 inst->start_millis);
	host_set_state(inst, HOST_INSTANCE_RUNNING, NULL);
	host_answer_waiters(inst, true, NULL);
	host_instance_start_done(inst);
}

static void host_instance_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	/* The process exit (SIGCHLD) decides what happens next. */
	struct host_instance *inst = ctx;
	if (inst->conn == conn) {
		inst->dead_conn = conn;
		inst->conn = NULL;
	}
}

/* Only the events the host knows are passed on, each stamped with the
 * instance it came from: an instance cannot speak for another. */
static void host_instance_event(struct rpc_conn *conn, const char *name, const struct json *data,
				void *ctx)
{
	struct host_instance *inst = ctx;
	if (strcmp(name, "scheduledJobFailed") != 0 || inst->hi->event == NULL)
		return;
	struct json *out = json_clone(data);
	json_set_string(out, "instanceID", inst->id);
	inst->hi->event(name, out, inst->hi->ctx);
	json_unref(&out);
}

static const struct rpc_conn_callbacks host_instance_callbacks = {
	.ready = host_instance_ready,
	.event = host_instance_event,
	.closed = host_instance_closed,
};

static unsigned int host_instance_keepalive_secs(void)
{
	const char *env = getenv("COFFER_INSTANCE_KEEPALIVE_SECS");
	char *end;
	unsigned long secs = env == NULL ? 0 : strtoul(env, &end, 10);
	if (env == NULL || *end != '\0' || secs < 1 || secs > 3600)
		return HOST_INSTANCES_KEEPALIVE_SECS;
	return (unsigned int)secs;
}

static void host_instance_spawn(struct host_instance *inst)
{
	unsigned int keepalive = host_instance_keepalive_secs();
	char keepalive_text[16];
	snprintf(keepalive_text, sizeof(keepalive_text), "%u", keepalive);
	struct host_instances *hi = inst->hi;
	int sv[2];
	clock_gettime(CLOCK_MONOTONIC, &inst->spawned);
	char *key = host_key_path(hi, inst->id);
	char *log_file = mem_printf("%s/log/instances.log", hi->config_dir);
	rpc_conn_destroy(&inst->dead_conn);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		host_set_state(inst, HOST_INSTANCE_FAILED,
			       tstr_printf("socketpair() failed: %s", strerror(errno)));
		host_answer_waiters(inst, true, inst->error);
		goto out;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* Its own session, so its own scheduling group where the kernel
		 * groups by session (autogroup): CPU is shared per tenant, not per
		 * thread, and one instance's busy threads cannot starve another's.
		 * The child keeps only stdio and its link to us (fd 3). */
		(void)setsid();
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		for (int fd = 4; fd < 1024; fd++)
			(void)close(fd);
		char *argv[] = {hi->exe,
				"instance",
				"--id",
				inst->id,
				"--base-dir",
				inst->base_dir,
				"--key-file",
				key,
				"--log-file",
				log_file,
				"--keepalive-secs",
				keepalive_text,
				NULL};
		execv(hi->exe, argv);
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		host_set_state(inst, HOST_INSTANCE_FAILED,
			       tstr_printf("fork() failed: %s", strerror(errno)));
		host_answer_waiters(inst, true, inst->error);
		goto out;
	}
	inst->pid = pid;
	inst->started = time(NULL);
	inst->start_counted = true;
	hi->starting++;
	log_info(host_ctx(inst), "starting (pid %ld; %u starting)", (long)pid, hi->starting);
	/* never blocking: a stopped or busy instance must not hold up the
	 * Instance Host's loop, which serves every other instance */
	evutil_make_socket_nonblocking(sv[0]);
	struct bufferevent *bev = bufferevent_socket_new(hi->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	struct json *hello = json_new_object();
	json_set_string(hello, "role", "instance-host");
	inst->conn = rpc_conn_create(bev, hello, keepalive, &host_instance_callbacks, inst);
	json_unref(&hello);
	host_set_state(inst, HOST_INSTANCE_STARTING, NULL);
	struct timeval tv = {HOST_INSTANCES_START_TIMEOUT, 0};
	event_add(inst->timer, &tv);
out:
	mem_free(key);
	mem_free(log_file);
}

/* Spawn now if a start slot is free, else queue (the timeout counts from
 * the spawn, not from the wait). */
static void host_instance_launch(struct host_instance *inst)
{
	struct host_instances *hi = inst->hi;
	if (hi->starting < hi->start_limit) {
		inst->start_queued = false;
		host_instance_spawn(inst);
	} else if (!inst->start_queued) {
		inst->start_queued = true;
		log_info(host_ctx(inst), "waiting to start (%u starting)", hi->starting);
		host_set_state(inst, HOST_INSTANCE_STARTING,
			       "waiting for other instances to start");
	}
}

static void host_start_queued(struct host_instances *hi)
{
	for (struct host_instance *i = hi->head; i != NULL && hi->starting < hi->start_limit;
	     i = i->next) {
		if (i->start_queued)
			host_instance_launch(i);
	}
}

/* A start ended (ready, or the process gone): its slot goes to the next. */
static void host_instance_start_done(struct host_instance *inst)
{
	if (!inst->start_counted)
		return;
	inst->start_counted = false;
	inst->hi->starting--;
	host_start_queued(inst->hi);
}

static void host_instance_timer(evutil_socket_t fd, short events, void *ctx)
{
	struct host_instance *inst = ctx;
	if (inst->pid > 0 &&
	    (inst->state == HOST_INSTANCE_STARTING || inst->state == HOST_INSTANCE_STOPPING)) {
		/* Not ready, or not gone, in time: SIGCHLD does the rest. (Without a
		 * process, "starting" is a restart waiting for its backoff.) */
		log_warning(host_ctx(inst), "%s timed out: killing pid %ld",
			    inst->state == HOST_INSTANCE_STARTING ? "start" : "stop",
			    (long)inst->pid);
		mem_free(inst->error);
		inst->error = mem_strdup(
			inst->state == HOST_INSTANCE_STARTING ? "did not start in time" : "");
		if (inst->pid > 0)
			kill(inst->pid, SIGKILL);
		return;
	}
	if (inst->want_running && inst->pid == 0)
		host_instance_launch(inst);
}

static const char *host_exit_text(int status)
{
	if (WIFSIGNALED(status))
		return tstr_printf("killed by signal %d", WTERMSIG(status));
	return tstr_printf("exited with status %d", WEXITSTATUS(status));
}

static void host_instance_exited(struct host_instance *inst, int status)
{
	const char *how = host_exit_text(status);
	inst->pid = 0;
	event_del(inst->timer);
	rpc_conn_destroy(&inst->conn);
	host_instance_start_done(inst);
	if (inst->restart_pending) {
		inst->restart_pending = false;
		inst->want_running = true;
		log_info(host_ctx(inst), "stopped for a restart (%s)", how);
		host_instance_launch(inst);
		return;
	}
	if (!inst->want_running) {
		log_info(host_ctx(inst), "stopped (%s)", how);
		host_set_state(inst, HOST_INSTANCE_STOPPED, NULL);
		host_answer_waiters(inst, false, NULL);
		host_answer_waiters(inst, true, "stopped before it was ready");
		return;
	}
	/* Died unasked: count it, restart with backoff or give up. */
	time_t now = time(NULL);
	unsigned int recent = 0;
	inst->crashes[inst->crash_count++ % HOST_INSTANCES_CRASH_LIMIT] = now;
	for (unsigned int i = 0; i < HOST_INSTANCES_CRASH_LIMIT && i < inst->crash_count; i++)
		recent += now - inst->crashes[i] < HOST_INSTANCES_CRASH_WINDOW;
	const char *reason = inst->error != NULL && inst->error[0] != '\0'
				     ? tstr_printf("%s (%s)", inst->error, how)
				     : how;
	if (recent >= HOST_INSTANCES_CRASH_LIMIT) {
		const char *error = tstr_printf("crashed %u times within %d seconds; last: %s",
						recent, HOST_INSTANCES_CRASH_WINDOW, reason);
		log_error(host_ctx(inst), "%s: giving up until it is started again", error);
		host_set_state(inst, HOST_INSTANCE_FAILED, error);
		host_answer_waiters(inst, true, error);
		return;
	}
	unsigned int delay = 1u << (recent > 0 ? recent - 1 : 0);
	inst->restarts++;
	log_warning(host_ctx(inst), "process %s: restarting in %u s", reason, delay);
	host_set_state(inst, HOST_INSTANCE_STARTING, tstr_printf("restarting after: %s", reason));
	struct timeval tv = {(time_t)delay, 0};
	event_add(inst->timer, &tv);
}

static void host_sigchld(evutil_socket_t sig, short events, void *ctx)
{
	struct host_instances *hi = ctx;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
			if (i->pid == pid) {
				host_instance_exited(i, status);
				break;
			}
		}
	}
}

static int host_instance_start(struct host_instance *inst, const char **error_r)
{
	inst->want_running = true;
	inst->crash_count = 0;
	if (host_save(inst->hi, error_r) < 0)
		return -1;
	if (inst->pid == 0) {
		event_del(inst->timer);
		host_instance_launch(inst);
	}
	return 0;
}

static int host_instance_stop(struct host_instance *inst, bool persist, const char **error_r)
{
	inst->want_running = false;
	if (persist && host_save(inst->hi, error_r) < 0)
		return -1;
	event_del(inst->timer);
	if (inst->pid > 0) {
		kill(inst->pid, SIGTERM);
		host_set_state(inst, HOST_INSTANCE_STOPPING, NULL);
		struct timeval tv = {HOST_INSTANCES_STOP_TIMEOUT, 0};
		event_add(inst->timer, &tv);
	} else if (inst->state != HOST_INSTANCE_STOPPED) {
		bool queued = inst->start_queued;
		inst->start_queued = false;
		host_set_state(inst, HOST_INSTANCE_STOPPED, NULL);
		if (queued)
			host_answer_waiters(inst, true, "stopped before it was ready");
	}
	return 0;
}

/* ---- create, delete, directories ---- */

static int host_check_base_dir(struct host_instances *hi, const char *dir, const char *except_id,
			       const char **error_r)
{
	if (dir[0] != '/' || strstr(dir, "/../") != NULL || strstr(dir, "/./") != NULL ||
	    strcmp(dir + strlen(dir) - (strlen(dir) >= 3 ? 3 : 0), "/..") == 0 ||
	    strlen(dir) > PATH_MAX / 2 || strcmp(dir, "/") == 0) {
		*error_r = tstr_printf("invalid base directory '%s': expected an absolute path "
				       "without . or .. components",
				       dir);
		return -1;
	}
	for (const char *p = dir; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*error_r = "invalid base directory: control characters are not allowed";
			return -1;
		}
	}
	size_t clen = strlen(hi->config_dir);
	if (strncmp(dir, hi->config_dir, clen) == 0 && (dir[clen] == '/' || dir[clen] == '\0')) {
		*error_r = tstr_printf(
			"invalid base directory '%s': it is inside the config directory", dir);
		return -1;
	}
	/* No instance may see into another's directory. */
	for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
		if (except_id != NULL && strcmp(i->id, except_id) == 0)
			continue;
		size_t a = strlen(i->base_dir), b = strlen(dir), n = a < b ? a : b;
		if (strncmp(i->base_dir, dir, n) == 0 &&
		    (a == b || (a < b ? dir[a] == '/' : i->base_dir[b] == '/'))) {
			*error_r =
				tstr_printf("base directory '%s' overlaps that of instance %s (%s)",
					    dir, i->id, i->base_dir);
			return -1;
		}
	}
	return 0;
}

static int host_create_key(struct host_instances *hi, const char *id, const char **error_r)
{
	char *dir = mem_printf("%s/%s", hi->config_dir, HOST_INSTANCES_KEY_DIR);
	char *path = host_key_path(hi, id);
	int ret = file_mkdir_parents(dir, 0700, error_r);
	if (ret == 0 && file_exists(path, error_r) == 0)
		ret = archive_key_file_create(path, error_r);
	mem_free(path);
	mem_free(dir);
	return ret;
}

/* Adopting a copy (RecoverInstance): the directory and the key must both be
 * there already, since a new key would not open the copy and an empty
 * directory would start an empty instance under the old one's name. */
static int host_check_adoptable(struct host_instances *hi, const char *id, const char *dir,
				const char **error_r)
{
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = tstr_printf("no base directory %s on this Instance Host: copy the "
				       "instance's base directory there first",
				       dir);
		return -1;
	}
	char *key = host_key_path(hi, id);
	int ret = file_exists(key, error_r);
	if (ret == 0)
		*error_r = tstr_printf("no key %s on this Instance Host: copy the instance's key "
				       "there first",
				       key);
	mem_free(key);
	return ret == 1 ? 0 : -1;
}

static struct host_instance *host_instance_register(struct host_instances *hi, const char *id,
						    const char *dir, const char **error_r);

static int host_instance_create(struct host_instances *hi, const struct json *args,
				const char **error_r)
{
	const char *id = json_get_string(args, "instanceID");
	const char *dir = json_get_string(args, "baseDirectory");
	if (id == NULL || !host_instances_id_valid(id)) {
		*error_r = tstr_printf("invalid instance ID '%s': expected [a-z0-9][a-z0-9-]{0,62}",
				       id == NULL ? "" : id);
		return -1;
	}
	if (host_find(hi, id) != NULL) {
		*error_r = tstr_printf("instance %s exists on this Instance Host", id);
		return -1;
	}
	if (dir == NULL || host_check_base_dir(hi, dir, NULL, error_r) < 0)
		return -1;
	if (json_get_bool(args, "adopt", false) && host_check_adoptable(hi, id, dir, error_r) < 0)
		return -1;
	char *import_dir = mem_printf("%s/import", dir);
	int made = file_mkdir_parents(import_dir, 0700, error_r);
	mem_free(import_dir);
	if (made < 0 || host_create_key(hi, id, error_r) < 0)
		return -1;
	if (chmod(dir, 0700) < 0) {
		*error_r = tstr_printf("chmod(%s) failed: %s", dir, strerror(errno));
		return -1;
	}
	struct host_instance *inst = host_instance_register(hi, id, dir, error_r);
	if (inst == NULL)
		return -1;
	host_set_state(inst, HOST_INSTANCE_STOPPED, NULL);
	return 0;
}

static int host_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* ---- removing deleted base directories off the loop ---- */

struct host_removal {
	struct host_instances *hi;
	char *path;
	int error; /* errno of a failed removal, 0 */
};

static void host_removal_work(void *ctx)
{
	struct host_removal *r = ctx;
	if (nftw(r->path, host_rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		r->error = errno;
}

static void host_removal_done(void *ctx, bool ran)
{
	struct host_removal *r = ctx;
	struct host_instances *hi = r->hi;
	if (!ran) {
		/* the host is stopping: the registry still names it, the next
		 * start removes it */
	} else if (r->error != 0) {
		log_error(NULL, "removing %s failed: %s", r->path, strerror(r->error));
	} else {
		log_info(NULL, "removed %s", r->path);
		for (size_t i = 0; i < hi->removing.count; i++) {
			if (strcmp(hi->removing.items[i], r->path) == 0) {
				mem_free(hi->removing.items[i]);
				array_delete(&hi->removing, i, 1);
				break;
			}
		}
		const char *error;
		if (host_save(hi, &error) < 0)
			log_error(NULL, "%s", error);
	}
	mem_free(r->path);
	mem_free(r);
}

static void host_removal_start(struct host_instances *hi, const char *path)
{
	struct host_removal *r = mem_new(struct host_removal);
	r->hi = hi;
	r->path = mem_strdup(path);
	if (hi->remover == NULL ||
	    worker_pool_submit(hi->remover, host_removal_work, host_removal_done, r) < 0) {
		/* no thread (or a thousand removals queued): here, now */
		host_removal_work(r);
		host_removal_done(r, true);
	}
}

/* A deleted instance's base directory is renamed aside at once (a name
 * its instance ID cannot reuse by accident), noted in the registry, and
 * removed on a thread: a large archive takes seconds to unlink, which the
 * loop that serves every other instance must not wait for. 0 renamed (or
 * already gone), -1 not. */
int host_instances_remove_dir(struct host_instances *hi, const char *base_dir, const char **error_r)
{
	const char *slash = strrchr(base_dir, '/');
	if (slash == NULL || slash[1] == '\0') {
		*error_r = tstr_printf("%s: not an absolute path", base_dir);
		return -1;
	}
	char *parent = slash == base_dir ? mem_strdup("/")
					 : mem_printf("%.*s", (int)(slash - base_dir), base_dir);
	char *hex = crypto_random_hex(6);
	char *aside =
		mem_printf("%s/.%s.deleted-%s", slash == base_dir ? "" : parent, slash + 1, hex);
	mem_free(hex);
	array_append(&hi->removing, aside);
	if (host_save(hi, error_r) < 0) {
		array_delete(&hi->removing, hi->removing.count - 1, 1);
		mem_free(aside);
		mem_free(parent);
		return -1;
	}
	if (rename(base_dir, aside) < 0) {
		int err = errno;
		array_delete(&hi->removing, hi->removing.count - 1, 1);
		mem_free(aside);
		const char *ignored;
		(void)host_save(hi, &ignored);
		mem_free(parent);
		if (err == ENOENT)
			return 0;
		*error_r = tstr_printf("rename(%s) failed: %s", base_dir, strerror(err));
		return -1;
	}
	const char *ignored;
	(void)file_fsync_dir(parent, &ignored);
	mem_free(parent);
	host_removal_start(hi, aside);
	return 0;
}

static void host_instance_free(struct host_instance *inst)
{
	event_free(inst->timer);
	rpc_conn_destroy(&inst->conn);
	rpc_conn_destroy(&inst->dead_conn);
	mem_free(inst->id);
	mem_free(inst->base_dir);
	mem_free(inst->error);
	mem_free(inst);
}

/* A new instance in the registry, saved (not kept if the save fails). */
static struct host_instance *host_instance_register(struct host_instances *hi, const char *id,
						    const char *dir, const char **error_r)
{
	struct host_instance *inst = mem_new(struct host_instance);
	inst->hi = hi;
	inst->id = mem_strdup(id);
	inst->base_dir = mem_strdup(dir);
	inst->error = mem_strdup("");
	inst->timer = evtimer_new(hi->base, host_instance_timer, inst);
	inst->next = hi->head;
	hi->head = inst;
	if (host_save(hi, error_r) < 0) {
		hi->head = inst->next;
		host_instance_free(inst);
		return NULL;
	}
	return inst;
}

static int host_instance_delete(struct host_instances *hi, struct host_instance *inst,
				bool delete_data, const char **error_r)
{
	if (inst->pid > 0) {
		*error_r = tstr_printf("instance %s is %s: stop it first", inst->id,
				       host_instance_state_names[inst->state]);
		return -1;
	}
	for (struct host_instance **p = &hi->head; *p != NULL; p = &(*p)->next) {
		if (*p == inst) {
			*p = inst->next;
			break;
		}
	}
	if (host_save(hi, error_r) < 0) {
		inst->next = hi->head;
		hi->head = inst;
		return -1;
	}
	if (delete_data) {
		char *key = host_key_path(hi, inst->id);
		const char *error;
		if (host_instances_remove_dir(hi, inst->base_dir, &error) < 0)
			log_error(host_ctx(inst), "removing its data: %s", error);
		(void)unlink(key);
		mem_free(key);
	}
	log_info(host_ctx(inst), "deleted%s",
		 delete_data ? " with its data and key" : " (base directory and key kept)");
	host_answer_waiters(inst, true, "deleted");
	host_answer_waiters(inst, false, "deleted");
	host_instance_free(inst);
	return 0;
}

static struct json *host_list_directories(const char *path, const char **error_r)
{
	DIR *dir = opendir(path);
	if (dir == NULL) {
		*error_r = tstr_printf("cannot list %s: %s", path, strerror(errno));
		return NULL;
	}
	struct json *list = json_new_array();
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *full = mem_printf("%s/%s", strcmp(path, "/") == 0 ? "" : path, de->d_name);
		struct stat st;
		if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
			json_append(list, json_new_string(full));
		mem_free(full);
	}
	closedir(dir);
	return list;
}

/* ---- status ---- */

static struct json *host_instance_status(struct host_instance *inst)
{
	struct json *s = json_new_object();
	json_set_string(s, "instanceID", inst->id);
	json_set_string(s, "baseDirectory", inst->base_dir);
	json_set_string(s, "state", host_instance_state_names[inst->state]);
	json_set_bool(s, "shouldRun", inst->want_running);
	json_set_int(s, "pid", (long long)inst->pid);
	json_set_int(s, "startedAt", inst->pid > 0 ? (long long)inst->started : 0);
	json_set_int(s, "restarts", inst->restarts);
	json_set_int(s, "startMillis", inst->start_millis);
	json_set_string(s, "error", inst->error);
	return s;
}

void host_instances_counts(struct host_instances *hi, unsigned int *available_r,
			   unsigned int *running_r)
{
	*available_r = *running_r = 0;
	for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
		(*available_r)++;
		*running_r += i->state == HOST_INSTANCE_RUNNING || i->state == HOST_INSTANCE_FROZEN;
	}
}

/* ---- calls ---- */

struct host_forward {
	struct host_instances *hi;
	struct host_waiter *waiter; /* conn/id of the original caller */
	struct host_instance *inst;
	int after; /* state to enter on success: -1 none */
};

static bool host_instance_alive(struct host_instances *hi, const struct host_instance *inst)
{
	for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
		if (i == inst)
			return true;
	}
	return false;
}

/* Relaying answers with message bytes (FETCH, downloads): when the caller
 * reads more slowly than the instance answers, stop reading the instance's
 * link above HOST_RELAY_HIGH bytes waiting for the caller, and read on
 * once they are down to HOST_RELAY_LOW. The bytes then wait in the socket
 * pair and the instance process, not here, for every caller at once. */
#define HOST_RELAY_HIGH (4u * 1024 * 1024)
#define HOST_RELAY_LOW (1u * 1024 * 1024)

static void host_relay_resume(void *ctx)
{
	struct host_instances *hi = ctx;
	/* every paused link: one still behind a slow caller pauses again at
	 * its next answer */
	for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
		if (i->conn != NULL)
			rpc_conn_pause_reading(i->conn, false);
	}
}

static void host_relay_blob(struct host_instances *hi, struct rpc_conn *inst_conn,
			    struct host_waiter *w, const struct json *result, struct evbuffer *blob)
{
	/* the bytes change hands as they are (evbuffer chains), not copied */
	/* the answer is passed on unchanged: shared, not cloned */
	rpc_conn_reply_blob_buffer(w->conn, w->id,
				   result != NULL ? json_ref((struct json *)result) : NULL, blob);
	if (rpc_conn_output_len(w->conn) > HOST_RELAY_HIGH) {
		rpc_conn_pause_reading(inst_conn, true);
		rpc_conn_when_drained(w->conn, HOST_RELAY_LOW, host_relay_resume, hi);
	}
}

static void host_forward_answer(struct rpc_conn *conn, const struct json *result, const char *code,
				const char *text, void *ctx)
{
	struct host_forward *f = ctx;
	struct host_waiter *w = f->waiter;
	struct evbuffer *blob = rpc_conn_answer_blob_buffer(conn);
	if (code == NULL && f->after >= 0) {
		for (struct host_instance *i = f->hi->head; i != NULL; i = i->next) {
			if (i == f->inst)
				host_set_state(i, (enum host_instance_state)f->after, NULL);
		}
	}
	/* Unlink the waiter (it was kept only so a closing caller clears conn). */
	for (struct host_waiter **p = &f->hi->waiters; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	if (w->conn != NULL) {
		if (code != NULL)
			rpc_conn_reply_error(w->conn, w->id, code, text);
		else if (f->after >= 0 && f->inst != NULL && host_instance_alive(f->hi, f->inst))
			rpc_conn_reply(w->conn, w->id, host_instance_status(f->inst));
		else if (blob != NULL)
			host_relay_blob(f->hi, conn, w, result, blob);
		else
			rpc_conn_reply(w->conn, w->id, result != NULL ? json_clone(result) : NULL);
	}
	mem_free(w);
	mem_free(f);
}

static void host_hold_expired(evutil_socket_t fd, short events, void *ctx)
{
	struct host_waiter *w = ctx;
	host_unlink_waiter(w->hi, w);
	if (w->conn != NULL)
		rpc_conn_reply_error(w->conn, w->id, "not-running",
				     tstr_printf("instance %s is still %s after %d s", w->inst->id,
						 host_instance_state_names[w->inst->state],
						 HOST_INSTANCES_HOLD_SECS));
	host_waiter_free(w);
}

/* Keep a call for an instance that is starting until it runs (or does not
 * start); false if too many are waiting already. */
static bool host_hold(struct host_instances *hi, struct host_instance *inst, struct rpc_conn *conn,
		      uint32_t id, const char *method, const struct json *args, int after)
{
	unsigned int count = 0;
	for (struct host_waiter *w = hi->waiters; w != NULL; w = w->next)
		count += w->inst == inst && w->method != NULL;
	if (count >= HOST_INSTANCES_HELD_MAX)
		return false;
	host_add_waiter(hi, inst, conn, id, true);
	struct host_waiter *w = hi->waiters;
	w->method = mem_strdup(method);
	w->args = args != NULL ? json_clone(args) : NULL;
	w->after = after;
	w->hold_timer = evtimer_new(hi->base, host_hold_expired, w);
	struct timeval tv = {HOST_INSTANCES_HOLD_SECS, 0};
	event_add(w->hold_timer, &tv);
	return true;
}

/* Pass a call on to the instance process; answer the caller with its answer.
 * While the instance starts (or restarts), the call waits for it. */
static void host_forward(struct host_instances *hi, struct host_instance *inst,
			 struct rpc_conn *conn, uint32_t id, const char *method,
			 const struct json *args, int after)
{
	bool coming = inst->state == HOST_INSTANCE_STARTING ||
		      (inst->state == HOST_INSTANCE_STOPPING && inst->restart_pending);
	if (coming && conn != NULL && host_hold(hi, inst, conn, id, method, args, after))
		return;
	if (inst->conn == NULL || !rpc_conn_is_ready(inst->conn)) {
		rpc_conn_reply_error(conn, id, "not-running",
				     tstr_printf("instance %s is %s", inst->id,
						 host_instance_state_names[inst->state]));
		return;
	}
	struct host_forward *f = mem_new(struct host_forward);
	f->hi = hi;
	f->inst = inst;
	f->after = after;
	f->waiter = mem_new(struct host_waiter);
	f->waiter->conn = conn;
	f->waiter->id = id;
	f->waiter->next = hi->waiters;
	hi->waiters = f->waiter;
	rpc_conn_call(inst->conn, method, args != NULL ? json_clone(args) : NULL, 600,
		      host_forward_answer, f);
}

static void host_reply_result(struct rpc_conn *conn, uint32_t id, int ret, const char *error)
{
	if (ret < 0)
		rpc_conn_reply_error(conn, id, "failed", error);
	else
		rpc_conn_reply(conn, id, NULL);
}

/* ---- the calls: one row each ---- */

struct host_request {
	struct host_instances *hi;
	struct host_instance *inst; /* the instance named, for HOST_CALL_INSTANCE */
	struct rpc_conn *conn;
	uint32_t id;
	const struct json *args;
};

static void host_call_create_instance(const struct host_request *r)
{
	const char *error = NULL;
	int ret = host_instance_create(r->hi, r->args, &error);
	host_reply_result(r->conn, r->id, ret, error);
}

static void host_call_get_instance_states(const struct host_request *r)
{
	struct json *list = json_new_array();
	for (struct host_instance *i = r->hi->head; i != NULL; i = i->next)
		json_append(list, host_instance_status(i));
	rpc_conn_reply(r->conn, r->id, list);
}

static void host_call_get_directories(const struct host_request *r)
{
	const char *error = NULL;
	const char *path = json_get_string(r->args, "path");
	struct json *list = host_list_directories(path == NULL ? "/" : path, &error);
	if (list == NULL)
		rpc_conn_reply_error(r->conn, r->id, "failed", error);
	else
		rpc_conn_reply(r->conn, r->id, list);
}

static void host_call_create_directory(const struct host_request *r)
{
	const char *error = "path: expected an absolute path";
	const char *path = json_get_string(r->args, "path");
	int ret = path == NULL || path[0] != '/' ? -1 : file_mkdir_parents(path, 0700, &error);
	host_reply_result(r->conn, r->id, ret, error);
}

static void host_call_start_instance(const struct host_request *r)
{
	const char *error = NULL;
	struct host_instance *inst = r->inst;
	if (inst->state == HOST_INSTANCE_RUNNING || inst->state == HOST_INSTANCE_FROZEN)
		rpc_conn_reply(r->conn, r->id, host_instance_status(inst));
	else if (host_instance_start(inst, &error) < 0)
		rpc_conn_reply_error(r->conn, r->id, "failed", error);
	else
		host_add_waiter(r->hi, inst, r->conn, r->id, true);
}

static void host_call_stop_instance(const struct host_request *r)
{
	const char *error = NULL;
	if (host_instance_stop(r->inst, true, &error) < 0)
		rpc_conn_reply_error(r->conn, r->id, "failed", error);
	else if (r->inst->pid == 0)
		rpc_conn_reply(r->conn, r->id, host_instance_status(r->inst));
	else
		host_add_waiter(r->hi, r->inst, r->conn, r->id, false);
}

static void host_call_restart_instance(const struct host_request *r)
{
	const char *error = NULL;
	struct host_instance *inst = r->inst;
	if (inst->pid == 0) {
		if (host_instance_start(inst, &error) < 0)
			rpc_conn_reply_error(r->conn, r->id, "failed", error);
		else
			host_add_waiter(r->hi, inst, r->conn, r->id, true);
		return;
	}
	/* Stop without recording "should not run"; exited() starts it again. */
	(void)host_instance_stop(inst, false, &error);
	inst->restart_pending = true;
	host_add_waiter(r->hi, inst, r->conn, r->id, true);
}

static void host_call_freeze_instance(const struct host_request *r)
{
	host_forward(r->hi, r->inst, r->conn, r->id, "Freeze", NULL, HOST_INSTANCE_FROZEN);
}

static void host_call_thaw_instance(const struct host_request *r)
{
	host_forward(r->hi, r->inst, r->conn, r->id, "Thaw", NULL, HOST_INSTANCE_RUNNING);
}

static void host_call_delete_instance(const struct host_request *r)
{
	const char *error = NULL;
	int ret = host_instance_delete(r->hi, r->inst, json_get_bool(r->args, "deleteData", false),
				       &error);
	host_reply_result(r->conn, r->id, ret, error);
}

static void host_call_set_base_directory(const struct host_request *r)
{
	const char *error = NULL;
	struct host_instance *inst = r->inst;
	const char *dir = json_get_string(r->args, "baseDirectory");
	int ret = -1;
	if (inst->pid > 0) {
		error = "stop the instance first";
	} else if (dir == NULL) {
		error = "baseDirectory: missing";
	} else if (host_check_base_dir(r->hi, dir, inst->id, &error) == 0) {
		char *old = inst->base_dir;
		inst->base_dir = mem_strdup(dir);
		ret = host_save(r->hi, &error);
		if (ret < 0) {
			mem_free(inst->base_dir);
			inst->base_dir = old;
		} else {
			mem_free(old);
		}
	}
	host_reply_result(r->conn, r->id, ret, error);
}

static void host_call_instance_call(const struct host_request *r)
{
	const char *m = json_get_string(r->args, "method");
	if (m == NULL)
		rpc_conn_reply_error(r->conn, r->id, "bad-request", "InstanceCall needs a method");
	else
		host_forward(r->hi, r->inst, r->conn, r->id, m, json_get(r->args, "args"), -1);
}

enum host_call_flags {
	HOST_CALL_INSTANCE = 1 << 0,   /* names an instance of this host */
	HOST_CALL_NOT_MOVING = 1 << 1, /* refused while the instance is moved away */
};

static const struct host_call_def {
	const char *name;
	void (*handler)(const struct host_request *r);
	unsigned int flags;
} host_calls[] = {
	{"CreateInstance", host_call_create_instance, 0},
	{"GetInstanceStates", host_call_get_instance_states, 0},
	{"GetDirectories", host_call_get_directories, 0},
	{"CreateDirectory", host_call_create_directory, 0},
	{"StartInstance", host_call_start_instance, HOST_CALL_INSTANCE | HOST_CALL_NOT_MOVING},
	{"StopInstance", host_call_stop_instance, HOST_CALL_INSTANCE},
	{"RestartInstance", host_call_restart_instance, HOST_CALL_INSTANCE | HOST_CALL_NOT_MOVING},
	{"FreezeInstance", host_call_freeze_instance, HOST_CALL_INSTANCE},
	{"ThawInstance", host_call_thaw_instance, HOST_CALL_INSTANCE},
	{"DeleteInstance", host_call_delete_instance, HOST_CALL_INSTANCE | HOST_CALL_NOT_MOVING},
	{"SetInstanceBaseDirectory", host_call_set_base_directory,
	 HOST_CALL_INSTANCE | HOST_CALL_NOT_MOVING},
	{"InstanceCall", host_call_instance_call, HOST_CALL_INSTANCE},
};

bool host_instances_request(struct host_instances *hi, struct rpc_conn *conn, uint32_t id,
			    const char *method, const struct json *args)
{
	const struct host_call_def *def = NULL;
	for (size_t i = 0; i < sizeof(host_calls) / sizeof(host_calls[0]); i++) {
		if (strcmp(host_calls[i].name, method) == 0)
			def = &host_calls[i];
	}
	if (def == NULL)
		return false;
	struct host_request r = {.hi = hi, .conn = conn, .id = id, .args = args};
	if ((def->flags & HOST_CALL_INSTANCE) != 0) {
		const char *iid = json_get_string(args, "instanceID");
		r.inst = iid == NULL ? NULL : host_find(hi, iid);
		if (r.inst == NULL) {
			rpc_conn_reply_error(conn, id, "no-such-instance",
					     tstr_printf("no instance '%s' on this Instance Host",
							 iid == NULL ? "" : iid));
			return true;
		}
		if ((def->flags & HOST_CALL_NOT_MOVING) != 0 && r.inst->moving_out) {
			/* a start now would write where the copy already read */
			rpc_conn_reply_error(
				conn, id, "busy",
				tstr_printf("instance %s is being moved to another Instance Host",
					    r.inst->id));
			return true;
		}
	}
	def->handler(&r);
	return true;
}

struct host_call {
	host_instances_answer_fn *answer;
	void *ctx;
};

static void host_call_answer(struct rpc_conn *conn, const struct json *result, const char *code,
			     const char *text, void *ctx)
{
	struct host_call *call = ctx;
	call->answer(result, code, text, call->ctx);
	mem_free(call);
}

int host_instances_call(struct host_instances *hi, const char *id, const char *method,
			struct json *args, unsigned int timeout_secs,
			host_instances_answer_fn *answer, void *ctx, const char **error_r)
{
	struct host_instance *inst = host_find(hi, id);
	if (inst == NULL || inst->conn == NULL || !rpc_conn_is_ready(inst->conn) ||
	    inst->state != HOST_INSTANCE_RUNNING) {
		json_unref(&args);
		*error_r = inst == NULL ? tstr_printf("no instance '%s' here", id)
					: tstr_printf("instance %s is %s", id,
						      host_instance_state_names[inst->state]);
		return -1;
	}
	struct host_call *call = mem_new(struct host_call);
	call->answer = answer;
	call->ctx = ctx;
	rpc_conn_call(inst->conn, method, args, timeout_secs, host_call_answer, call);
	return 0;
}

/* ---- moving (host-move) ---- */

int host_instances_lookup(struct host_instances *hi, const char *id, char **base_dir_r,
			  char **key_path_r, bool *stopped_r)
{
	struct host_instance *inst = host_find(hi, id);
	if (inst == NULL)
		return -1;
	*base_dir_r = mem_strdup(inst->base_dir);
	*key_path_r = host_key_path(hi, id);
	*stopped_r = inst->pid == 0 && !inst->start_queued && !inst->want_running;
	return 0;
}

void host_instances_set_moving(struct host_instances *hi, const char *id, bool moving)
{
	struct host_instance *inst = host_find(hi, id);
	if (inst != NULL)
		inst->moving_out = moving;
}

/* Freeze for a move's last catch-up: the caller gets the instance's state.
 * An instance without a process (stopped) stays as it is, which is as
 * still as frozen. */
bool host_instances_freeze_for_move(struct host_instances *hi, const char *id,
				    struct rpc_conn *conn, uint32_t rpc_id)
{
	struct host_instance *inst = host_find(hi, id);
	if (inst == NULL) {
		rpc_conn_reply_error(conn, rpc_id, "no-such-instance",
				     tstr_printf("no instance '%s' on this Instance Host", id));
		return false;
	}
	if (inst->pid == 0 && !inst->start_queued) {
		rpc_conn_reply(conn, rpc_id, host_instance_status(inst));
		return false;
	}
	host_forward(hi, inst, conn, rpc_id, "Freeze", NULL, HOST_INSTANCE_FROZEN);
	return true;
}

void host_instances_thaw_after_move(struct host_instances *hi, const char *id)
{
	struct host_instance *inst = host_find(hi, id);
	/* no caller to answer: the state change reaches the Management Server
	 * as an event */
	if (inst != NULL && inst->state == HOST_INSTANCE_FROZEN && inst->conn != NULL &&
	    rpc_conn_is_ready(inst->conn))
		host_forward(hi, inst, NULL, 0, "Thaw", NULL, HOST_INSTANCE_RUNNING);
}

int host_instances_check_new(struct host_instances *hi, const char *id, const char *dir,
			     const char **error_r)
{
	if (!host_instances_id_valid(id)) {
		*error_r = tstr_printf("invalid instance ID '%s': expected [a-z0-9][a-z0-9-]{0,62}",
				       id);
		return -1;
	}
	if (host_find(hi, id) != NULL) {
		*error_r = tstr_printf("instance %s exists on this Instance Host", id);
		return -1;
	}
	return host_check_base_dir(hi, dir, NULL, error_r);
}

char *host_instances_key_path(struct host_instances *hi, const char *id)
{
	return host_key_path(hi, id);
}

int host_instances_adopt(struct host_instances *hi, const char *id, const char *dir,
			 const char **error_r)
{
	if (host_instances_check_new(hi, id, dir, error_r) < 0)
		return -1;
	struct host_instance *inst = host_instance_register(hi, id, dir, error_r);
	if (inst == NULL)
		return -1;
	host_set_state(inst, HOST_INSTANCE_STOPPED, NULL);
	log_info(host_ctx(inst), "taken over from another Instance Host (%s)", dir);
	return 0;
}

/* ---- life cycle ---- */

static unsigned int host_start_limit(void)
{
	const char *env = getenv("COFFER_HOST_START_PARALLEL");
	char *end;
	unsigned long n = env == NULL ? 0 : strtoul(env, &end, 10);
	if (env != NULL && *end == '\0' && n >= 1 && n <= 10000)
		return (unsigned int)n;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	return (unsigned int)(cores > 0 ? cores : 1) * HOST_INSTANCES_STARTS_PER_CORE;
}

void host_instances_on_event(struct host_instances *hi, host_instances_event_fn *fn)
{
	hi->event = fn;
}

struct host_instances *host_instances_create(struct event_base *base, const char *config_dir,
					     host_instances_changed_fn *changed, void *ctx)
{
	struct host_instances *hi = mem_new(struct host_instances);
	hi->base = base;
	hi->config_dir = mem_strdup(config_dir);
	hi->changed = changed;
	hi->ctx = ctx;
	ssize_t n = readlink("/proc/self/exe", hi->exe, sizeof(hi->exe) - 1);
	hi->exe[n > 0 ? n : 0] = '\0';
	hi->sigchld = evsignal_new(base, SIGCHLD, host_sigchld, hi);
	evsignal_add(hi->sigchld, NULL);
	hi->start_limit = host_start_limit();
	const char *error;
	if (worker_pool_create(base, 1, 1, 1024, &hi->remover, &error) < 0)
		log_warning(NULL, "deleted base directories are removed on the event loop: %s",
			    error);
	return hi;
}

int host_instances_load(struct host_instances *hi, const char **error_r)
{
	char *path = config_path(hi->config_dir, HOST_INSTANCES_FILE);
	char *text;
	size_t len;
	struct json *root = NULL;
	int exists = file_exists(path, error_r);
	int ret = exists < 0 ? -1 : 0;
	if (exists == 1) {
		ret = file_read_all(path, 64 * 1024 * 1024, &text, &len, error_r);
		if (ret == 0) {
			ret = json_parse(text, len, &root, error_r);
			mem_free(text);
		}
	}
	const struct json *list = json_get(root, "instances");
	for (size_t i = 0; ret == 0 && i < json_count(list); i++) {
		const struct json *e = json_at(list, i);
		const char *id = json_get_string(e, "instanceID"),
			   *dir = json_get_string(e, "baseDirectory");
		if (id == NULL || dir == NULL || !host_instances_id_valid(id)) {
			*error_r = tstr_printf("%s: entry %zu is invalid", path, i);
			ret = -1;
			break;
		}
		struct host_instance *inst = mem_new(struct host_instance);
		inst->hi = hi;
		inst->id = mem_strdup(id);
		inst->base_dir = mem_strdup(dir);
		inst->error = mem_strdup("");
		inst->want_running = json_get_bool(e, "running", false);
		inst->timer = evtimer_new(hi->base, host_instance_timer, inst);
		inst->next = hi->head;
		hi->head = inst;
	}
	/* removals a stop or a crash cut short (after the instances: each
	 * finished removal saves the registry) */
	const struct json *removing = json_get(root, "removing");
	for (size_t i = 0; ret == 0 && i < json_count(removing); i++) {
		const char *dir = json_string_of(json_at(removing, i));
		if (dir != NULL && dir[0] == '/')
			array_append(&hi->removing, mem_strdup(dir));
	}
	for (size_t i = 0; ret == 0 && i < json_count(removing); i++) {
		const char *dir = json_string_of(json_at(removing, i));
		if (dir != NULL && dir[0] == '/')
			host_removal_start(hi, dir);
	}
	json_unref(&root);
	mem_free(path);
	if (ret < 0)
		return -1;
	for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
		if (i->want_running)
			host_instance_launch(i);
	}
	return 0;
}

void host_instances_stop_all(struct host_instances *hi)
{
	for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
		if (i->pid > 0)
			kill(i->pid, SIGTERM);
	}
	/* Give them a moment to close their archives cleanly. */
	for (int round = 0; round < 100; round++) {
		bool any = false;
		int status;
		for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
			if (i->pid > 0 && waitpid(i->pid, &status, WNOHANG) == i->pid)
				i->pid = 0;
			any = any || i->pid > 0;
		}
		if (!any)
			return;
		usleep(50 * 1000);
	}
	for (struct host_instance *i = hi->head; i != NULL; i = i->next) {
		if (i->pid > 0) {
			kill(i->pid, SIGKILL);
			(void)waitpid(i->pid, NULL, 0);
			i->pid = 0;
		}
	}
}

void host_instances_destroy(struct host_instances **hi)
{
	struct host_instances *h = *hi;
	if (h == NULL)
		return;
	worker_pool_destroy(&h->remover);
	while (h->head != NULL) {
		struct host_instance *next = h->head->next;
		host_instance_free(h->head);
		h->head = next;
	}
	while (h->waiters != NULL) {
		struct host_waiter *next = h->waiters->next;
		host_waiter_free(h->waiters);
		h->waiters = next;
	}
	event_free(h->sigchld);
	for (size_t i = 0; i < h->removing.count; i++)
		mem_free(h->removing.items[i]);
	array_free(&h->removing);
	mem_free(h->config_dir);
	mem_free(h);
	*hi = NULL;
}
