#ifndef COFFER_HOST_INSTANCES_H
#define COFFER_HOST_INSTANCES_H
/* host-instances: the instances an Instance Host carries.
 *
 * Registry: <config-dir>/instance-host-instances.json lists each instance's
 * ID, base directory and whether it should run; instances that should run
 * are started when the Instance Host starts. Each instance's key is
 * <config-dir>/instance-keys/<ID>.key (mode 0600), outside its base
 * directory, so a copy of the base directory alone reveals no mail.
 *
 * Processes: one `coffer instance` process per running instance, with the
 * role protocol on a socketpair (its fd 3). A process that dies unasked is
 * restarted after 1, 2, 4, 8, 16 seconds; the fifth crash within 60 seconds
 * ends in state "failed" with the reason, until it is started again.
 *
 * Calls that finish later (start, stop, calls into an instance) answer the
 * caller's connection when done; host_instances_forget_conn() must be called
 * when a caller's connection closes so nothing answers a dead connection. */
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct json;
struct rpc_conn;
struct host_instances;

typedef void host_instances_changed_fn(const char *id, const char *state, const char *error,
				       void *ctx);

/* An event from an instance's process that the Management Server should
 * see (today "scheduledJobFailed": a job the instance started by itself
 * failed); data is borrowed and carries the instanceID. */
typedef void host_instances_event_fn(const char *name, const struct json *data, void *ctx);
void host_instances_on_event(struct host_instances *hi, host_instances_event_fn *fn);

struct host_instances *host_instances_create(struct event_base *base, const char *config_dir,
					     host_instances_changed_fn *changed, void *ctx);
void host_instances_destroy(struct host_instances **hi);

/* Read the registry and start what should run. */
int host_instances_load(struct host_instances *hi, const char **error_r);
/* Stop every process (Instance Host shutting down); the registry keeps
 * saying which should run. */
void host_instances_stop_all(struct host_instances *hi);

/* Handle a call from the Management Server (or a Client Access Server for
 * InstanceCall). Returns false if `method` is not an instance call. */
bool host_instances_request(struct host_instances *hi, struct rpc_conn *conn, uint32_t id,
			    const char *method, const struct json *args);
void host_instances_forget_conn(struct host_instances *hi, struct rpc_conn *conn);

/* Counts for GetInfo. */
void host_instances_counts(struct host_instances *hi, unsigned int *available_r,
			   unsigned int *running_r);

/* For moving an instance between Instance Hosts (host-move). lookup: its
 * base directory and key file (new strings) and whether its process is
 * down; -1 if there is no such instance. set_moving: while true,
 * StartInstance, RestartInstance, DeleteInstance and SetInstanceBaseDirectory
 * answer "busy". check_new: could an instance of this ID live at `dir`
 * here. adopt: register an instance whose base directory and key are in
 * place (stopped, "should not run"). */
int host_instances_lookup(struct host_instances *hi, const char *id, char **base_dir_r,
			  char **key_path_r, bool *stopped_r);
void host_instances_set_moving(struct host_instances *hi, const char *id, bool moving);
/* Remove a directory tree off the event loop: renamed aside at once (a
 * dot-name beside it), noted in the registry, removed on a thread, and
 * finished at the next start if the host stops before. 0 renamed (or
 * already gone), -1 not (nothing changed). */
int host_instances_remove_dir(struct host_instances *hi, const char *dir, const char **error_r);
/* freeze_for_move: freeze its process for a move's last catch-up and answer
 * conn/rpc_id with its state (at once if it has no process); true if a
 * freeze was sent. thaw_after_move: thaw it again (a move undone), without
 * an answer to anyone. */
bool host_instances_freeze_for_move(struct host_instances *hi, const char *id,
				    struct rpc_conn *conn, uint32_t rpc_id);
void host_instances_thaw_after_move(struct host_instances *hi, const char *id);
int host_instances_check_new(struct host_instances *hi, const char *id, const char *dir,
			     const char **error_r);
char *host_instances_key_path(struct host_instances *hi, const char *id);
int host_instances_adopt(struct host_instances *hi, const char *id, const char *dir,
			 const char **error_r);

/* A call into a running instance's process from the Instance Host itself
 * (the journal receiver). `args` is taken. answer() runs once, later: with
 * the result, or an error code ("closed" if the process went away). -1
 * with *error_r, and no answer, if the instance is not running. */
typedef void host_instances_answer_fn(const struct json *result, const char *code, const char *text,
				      void *ctx);
int host_instances_call(struct host_instances *hi, const char *id, const char *method,
			struct json *args, unsigned int timeout_secs,
			host_instances_answer_fn *answer, void *ctx, const char **error_r);

/* ID syntax: [a-z0-9][a-z0-9-]{0,62}. */
bool host_instances_id_valid(const char *id);

#endif
