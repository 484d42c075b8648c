/* service-control: the starter's side of service.h (start, stop, status). */
#include "service.h"
#include "mem.h"
#include "tstr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *service_state_name(enum service_state state)
{
	switch (state) {
	case SERVICE_STATE_RUNNING:
		return "running";
	case SERVICE_STATE_DEAD:
		return "dead";
	case SERVICE_STATE_STOPPED:
		break;
	}
	return "stopped";
}

enum service_state service_control_status(const char *pid_path, pid_t *pid_r)
{
	*pid_r = 0;
	int fd = open(pid_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return SERVICE_STATE_STOPPED;
	char buf[32] = "";
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	*pid_r = (pid_t)atol(buf);
	/* A live daemon holds the lock; a free lock means the process is gone. */
	enum service_state state = SERVICE_STATE_RUNNING;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		state = SERVICE_STATE_DEAD;
		flock(fd, LOCK_UN);
	}
	close(fd);
	return state;
}

static long service_ms_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static pid_t service_spawn(char *const argv[], const char *stderr_path, int ready_fd,
			   const char **error_r)
{
	pid_t pid = fork();
	if (pid < 0) {
		*error_r = tstr_printf("fork() failed: %s", strerror(errno));
		return -1;
	}
	if (pid > 0)
		return pid;
	/* Child: detach into its own session; fds 0-2 away from the terminal. */
	setsid();
	int null_fd = open("/dev/null", O_RDONLY);
	int err_fd = open(stderr_path, O_WRONLY | O_APPEND | O_CREAT, 0640);
	if (null_fd < 0 || err_fd < 0)
		_exit(127);
	dup2(null_fd, STDIN_FILENO);
	dup2(err_fd, STDOUT_FILENO);
	dup2(err_fd, STDERR_FILENO);
	char fd_text[16];
	snprintf(fd_text, sizeof(fd_text), "%d", ready_fd);
	setenv("COFFER_READY_FD", fd_text, 1);
	execv(argv[0], argv);
	fprintf(stderr, "coffer: exec %s failed: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int service_control_start(char *const argv[], const char *stderr_path, unsigned int timeout_secs,
			  const char **text_r, const char **error_r)
{
	int fds[2];
	if (pipe(fds) < 0) {
		*error_r = tstr_printf("pipe() failed: %s", strerror(errno));
		return -1;
	}
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	pid_t pid = service_spawn(argv, stderr_path, fds[1], error_r);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return -1;
	}
	char line[2048];
	size_t len = 0;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	int ret = -1;
	*error_r = tstr_printf("did not report ready within %u seconds", timeout_secs);
	for (;;) {
		long left = (long)timeout_secs * 1000 - service_ms_since(&start);
		if (left <= 0) {
			kill(pid, SIGTERM);
			break;
		}
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		ssize_t n = read(fds[0], line + len, sizeof(line) - 1 - len);
		if (n > 0) {
			len += (size_t)n;
			line[len] = '\0';
			if (strchr(line, '\n') == NULL && len < sizeof(line) - 1)
				continue;
		}
		line[len] = '\0';
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "READY", 5) == 0) {
			*text_r = tstr_dup(line[5] == ' ' ? line + 6 : "");
			ret = 0;
		} else if (strncmp(line, "FAILED ", 7) == 0) {
			*error_r = tstr_dup(line + 7);
		} else {
			/* EOF without a word: the process died; say how. */
			int status = 0;
			pid_t w = 0;
			/* The pipe closes slightly before the exit status exists. */
			for (int i = 0; i < 100 && w == 0; i++) {
				w = waitpid(pid, &status, WNOHANG);
				if (w == 0)
					usleep(10 * 1000);
			}
			if (w == pid && WIFSIGNALED(status))
				*error_r = tstr_printf(
					"exited on signal %d before it was ready (see %s)",
					WTERMSIG(status), stderr_path);
			else if (w == pid && WIFEXITED(status))
				*error_r = tstr_printf(
					"exited with status %d before it was ready (see %s)",
					WEXITSTATUS(status), stderr_path);
			else
				*error_r = tstr_printf(
					"closed its readiness pipe without a word (see %s)",
					stderr_path);
		}
		break;
	}
	close(fds[0]);
	/* Reap a child that exited; a running one is reparented when we exit. */
	(void)waitpid(pid, NULL, WNOHANG);
	return ret;
}

int service_control_stop(const char *pid_path, unsigned int timeout_secs, const char **error_r)
{
	pid_t pid;
	enum service_state state = service_control_status(pid_path, &pid);
	if (state == SERVICE_STATE_DEAD) {
		unlink(pid_path);
		return 0;
	}
	if (state == SERVICE_STATE_STOPPED)
		return 0;
	if (pid <= 1) {
		*error_r = tstr_printf("pid file %s holds no valid pid", pid_path);
		return -1;
	}
	if (kill(pid, SIGTERM) < 0 && errno != ESRCH) {
		*error_r = tstr_printf("kill(%ld) failed: %s", (long)pid, strerror(errno));
		return -1;
	}
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (service_control_status(pid_path, &pid) == SERVICE_STATE_RUNNING) {
		if (service_ms_since(&start) > (long)timeout_secs * 1000) {
			kill(pid, SIGKILL);
			usleep(100 * 1000);
			unlink(pid_path);
			break;
		}
		usleep(20 * 1000);
	}
	if (service_control_status(pid_path, &pid) == SERVICE_STATE_DEAD)
		unlink(pid_path);
	return 1;
}
