#ifndef COFFER_SERVICE_H
#define COFFER_SERVICE_H
/* service: what every Coffer daemon needs around its work: the event loop,
 * signals, the pid file, dropping privileges and telling whoever started it
 * that it is ready or why it failed.
 *
 * Readiness: a daemon started by `coffer config start` finds the write end of
 * a pipe in $COFFER_READY_FD and writes one line, "READY <text>" or
 * "FAILED <reason>"; under systemd (Type=notify) it sends READY=1 or STATUS=
 * with the reason to $NOTIFY_SOCKET. Either way the starter learns within its
 * 30 second wait whether the service came up, and why not.
 *
 * Pid file: created and locked (flock) for the daemon's lifetime, so that a
 * pid file whose lock is free belongs to a process that is gone (killed with
 * SIGKILL, crashed): service_control_status() reports that as "dead".
 *
 * Signals: SIGTERM and SIGINT end service_run(); SIGHUP reopens the log;
 * SIGPIPE is ignored.
 *
 * Descriptors: service_create() raises the RLIMIT_NOFILE soft limit to the
 * hard limit (connection limits are derived from it). */
#include <stdbool.h>
#include <sys/types.h>

struct event_base;
struct service;

struct service *service_create(const char *role);
void service_destroy(struct service **service);
struct event_base *service_event_base(struct service *service);

/* Create, lock and fill the pid file. -1 if another process holds it. */
int service_pidfile_acquire(struct service *service, const char *path, const char **error_r);
/* Become `user` (setgid, initgroups, setuid) when running as root; no-op for
 * "" or when not root. */
int service_drop_privileges(const char *user, const char **error_r);

void service_notify_ready(struct service *service, const char *text);
void service_notify_failed(struct service *service, const char *reason);

/* Run the event loop until a stop signal or service_stop(). */
int service_run(struct service *service);
void service_stop(struct service *service);

/* ---- control, used by the configuration tool ---- */

enum service_state {
	SERVICE_STATE_STOPPED, /* no pid file */
	SERVICE_STATE_RUNNING, /* pid file locked by a live process */
	SERVICE_STATE_DEAD,    /* pid file left behind by a process that is gone */
};

const char *service_state_name(enum service_state state);
enum service_state service_control_status(const char *pid_path, pid_t *pid_r);

/* Start `argv` (argv[0] is the executable) detached in its own session, with
 * stdin from /dev/null and stdout/stderr appended to stderr_path, and wait up
 * to timeout_secs for its readiness line. 0 when ready (*text_r: its text),
 * -1 with the reason it failed (its FAILED line, its exit status, or the
 * timeout; a daemon that did not answer in time is stopped). */
int service_control_start(char *const argv[], const char *stderr_path, unsigned int timeout_secs,
			  const char **text_r, const char **error_r);
/* SIGTERM, wait up to timeout_secs, then SIGKILL. 1 stopped, 0 was not
 * running (a dead pid file is removed), -1 error. */
int service_control_stop(const char *pid_path, unsigned int timeout_secs, const char **error_r);

#endif
