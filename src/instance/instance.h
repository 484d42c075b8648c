#ifndef COFFER_INSTANCE_H
#define COFFER_INSTANCE_H
/* instance: the state of one instance process (private to src/instance).
 *
 * The process serves calls from its Instance Host over the role protocol on
 * fd 3. It keeps nothing open while idle: the archive (catalog, stores) is
 * opened on the first call that needs it and closed again after
 * INSTANCE_IDLE_CLOSE_SECS without use, when the freed heap is also handed
 * back to the kernel (malloc_trim), so a thousand idle instances cost little. Freezing closes
 * everything and refuses writes until thawed, so the base directory stays byte-stable for a copy or
 * snapshot. */
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define INSTANCE_IDLE_CLOSE_SECS 60
/* How long a stopping instance waits for its calls in flight to be answered
 * (within the Instance Host's stop timeout). */
#define INSTANCE_STOP_DRAIN_MS 3000

struct event;
struct event_base;
struct json;
struct rpc_conn;
struct instance_archive;
struct instance_audit;
struct instance_export;
struct instance_jobs;
struct instance_profiles;
struct instance_users;
struct worker_pool;
struct auth_throttle;

struct instance {
	char *id;
	char *base_dir;
	char *key_file;
	struct event_base *base;
	struct rpc_conn *host;
	struct event *idle_timer;
	/* SIGTERM: calls in flight are answered before the process ends */
	struct event *stop_timer;
	struct timespec stop_at;
	struct event *retention_timer; /* daily retention runs (instance-retention.c) */
	time_t started;
	time_t last_used;
	bool frozen;
	bool idle_since_trim; /* closed and trimmed since the last call */
	struct instance_archive *archive;
	struct instance_jobs *jobs;         /* long work, off the event loop */
	struct instance_users *users;       /* open while in use */
	struct instance_profiles *profiles; /* where mail comes from */
	unsigned int keepalive_secs;        /* of the link to the Instance Host */
	uint64_t calls;
	struct instance_export *exports; /* under way (instance-export.c) */
	long long export_seq;
	/* logins: Argon2id checks on worker threads (instance-client.c) */
	struct worker_pool *logins;
	struct auth_throttle *login_throttle;
	uint64_t logins_throttled, logins_busy;
	bool stopping;
	struct instance_audit *audit;     /* instance-audit.c */
	struct instance_journal *journal; /* group commit (instance-journal.c) */
};

/* Dispatch one call from the Instance Host (instance-calls.c). */
void instance_calls_dispatch(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			     const char *method, const struct json *args);
/* Open inst->users if it is not (refused while a rebuild runs). */
int instance_users_ready(struct instance *inst, const char **error_r);
/* Close whatever is open (idle or freeze). */
void instance_calls_close(struct instance *inst);

#endif
