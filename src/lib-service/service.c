#include "service.h"
#include "log.h"
#include "mem.h"
#include "tstr.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct service {
	char *role;
	struct event_base *base;
	struct event *sig_term, *sig_int, *sig_hup;
	int pid_fd;
	char *pid_path;
	bool notified;
};

static void service_signal_stop(evutil_socket_t sig, short events, void *ctx)
{
	struct service *service = ctx;
	log_info(NULL, "received signal %d, stopping", (int)sig);
	event_base_loopexit(service->base, NULL);
}

static void service_signal_hup(evutil_socket_t sig, short events, void *ctx)
{
	log_reopen();
	log_info(NULL, "log reopened");
}

/* Daemons hold one descriptor per client connection: the soft limit
 * (often 1024) is raised to the hard one, which is what the administrator
 * (or systemd's LimitNOFILE=) granted. Best effort: the limits that listeners
 * derive from it are computed from whatever it ends up being. */
static void service_raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

struct service *service_create(const char *role)
{
	struct service *service = mem_new(struct service);
	service->role = mem_strdup(role);
	service->pid_fd = -1;
	service_raise_fd_limit();
	service->base = event_base_new();
	if (service->base == NULL)
		abort();
	signal(SIGPIPE, SIG_IGN);
	service->sig_term = evsignal_new(service->base, SIGTERM, service_signal_stop, service);
	service->sig_int = evsignal_new(service->base, SIGINT, service_signal_stop, service);
	service->sig_hup = evsignal_new(service->base, SIGHUP, service_signal_hup, service);
	evsignal_add(service->sig_term, NULL);
	evsignal_add(service->sig_int, NULL);
	evsignal_add(service->sig_hup, NULL);
	return service;
}

void service_destroy(struct service **service)
{
	struct service *s = *service;
	if (s == NULL)
		return;
	event_free(s->sig_term);
	event_free(s->sig_int);
	event_free(s->sig_hup);
	event_base_free(s->base);
	if (s->pid_fd >= 0) {
		/* Remove while still holding the lock, so nobody sees a stale file. */
		unlink(s->pid_path);
		close(s->pid_fd);
	}
	mem_free(s->pid_path);
	mem_free(s->role);
	mem_free(s);
	*service = NULL;
}

struct event_base *service_event_base(struct service *service)
{
	return service->base;
}

int service_pidfile_acquire(struct service *service, const char *path, const char **error_r)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		*error_r = tstr_printf("cannot open pid file %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char buf[32] = "";
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		*error_r = tstr_printf("already running (pid %s holds %s)", buf, path);
		close(fd);
		return -1;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		*error_r = tstr_printf("cannot write pid file %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	service->pid_fd = fd;
	service->pid_path = mem_strdup(path);
	return 0;
}

int service_drop_privileges(const char *user, const char **error_r)
{
	if (user == NULL || user[0] == '\0' || geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		*error_r = tstr_printf("run-as user '%s' does not exist", user);
		return -1;
	}
	if (pw->pw_uid == 0)
		return 0;
	if (setgid(pw->pw_gid) < 0 || initgroups(user, pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		*error_r = tstr_printf("cannot become user '%s': %s", user, strerror(errno));
		return -1;
	}
	return 0;
}

static void service_notify_fd(const char *line)
{
	const char *fd_text = getenv("COFFER_READY_FD");
	if (fd_text == NULL)
		return;
	int fd = atoi(fd_text);
	if (fd <= 2)
		return;
	ssize_t ret = write(fd, line, strlen(line));
	(void)ret;
	close(fd);
	unsetenv("COFFER_READY_FD");
}

static void service_notify_systemd(const char *message)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen(path) >= 108)
		return;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract socket */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, message, strlen(message), 0, (struct sockaddr *)&sun,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

void service_notify_ready(struct service *service, const char *text)
{
	if (service->notified)
		return;
	service->notified = true;
	service_notify_fd(tstr_printf("READY %s\n", text));
	service_notify_systemd(
		tstr_printf("READY=1\nSTATUS=%s\nMAINPID=%ld", text, (long)getpid()));
}

void service_notify_failed(struct service *service, const char *reason)
{
	if (service != NULL) {
		if (service->notified)
			return;
		service->notified = true;
	}
	service_notify_fd(tstr_printf("FAILED %s\n", reason));
	service_notify_systemd(tstr_printf("STATUS=failed: %s", reason));
}

int service_run(struct service *service)
{
	return event_base_dispatch(service->base) < 0 ? -1 : 0;
}

void service_stop(struct service *service)
{
	event_base_loopexit(service->base, NULL);
}
