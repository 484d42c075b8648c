#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "service.h"
#include "test-tmpdir.h"

static char *dir;

/* The test re-executes itself as a tiny daemon: argv[1] selects its
 * behaviour, so the real start/stop code paths run against a real process. */
static int daemon_main(const char *mode, const char *pid_path)
{
	struct service *service = service_create("test");
	const char *error;
	if (strcmp(mode, "fail") == 0) {
		service_notify_failed(service, "port 1 is in use");
		return 1;
	}
	if (strcmp(mode, "crash") == 0)
		abort();
	if (strcmp(mode, "silent") == 0) {
		sleep(30);
		return 0;
	}
	if (service_pidfile_acquire(service, pid_path, &error) < 0) {
		service_notify_failed(service, error);
		return 1;
	}
	service_notify_ready(service, "listening");
	service_run(service);
	service_destroy(&service);
	return 0;
}

static char self[4096];

static int start(const char *mode, const char **text, const char **error)
{
	char *pid_path = mem_printf("%s/test.pid", dir), *err_path = mem_printf("%s/err", dir);
	char *argv[] = {self, (char *)mode, pid_path, NULL};
	int ret = service_control_start(argv, err_path, 3, text, error);
	mem_free(pid_path);
	mem_free(err_path);
	return ret;
}

static void test_start_ready_status_stop(void **state)
{
	const char *text, *error;
	char *pid_path = mem_printf("%s/test.pid", dir);
	pid_t pid;
	assert_int_equal(service_control_status(pid_path, &pid), SERVICE_STATE_STOPPED);
	assert_int_equal(start("run", &text, &error), 0);
	assert_string_equal(text, "listening");
	assert_int_equal(service_control_status(pid_path, &pid), SERVICE_STATE_RUNNING);
	assert_true(pid > 1);
	/* A second instance refuses: the pid file is locked. */
	assert_int_equal(start("run", &text, &error), -1);
	assert_non_null(strstr(error, "already running"));
	/* SIGKILL leaves the pid file behind, unlocked: "dead". */
	kill(pid, SIGKILL);
	for (int i = 0; i < 100 && service_control_status(pid_path, &pid) == SERVICE_STATE_RUNNING;
	     i++)
		usleep(20000);
	assert_int_equal(service_control_status(pid_path, &pid), SERVICE_STATE_DEAD);
	assert_int_equal(service_control_stop(pid_path, 3, &error), 0);
	assert_int_equal(service_control_status(pid_path, &pid), SERVICE_STATE_STOPPED);
	assert_int_equal(start("run", &text, &error), 0);
	assert_int_equal(service_control_stop(pid_path, 3, &error), 1);
	assert_int_equal(service_control_status(pid_path, &pid), SERVICE_STATE_STOPPED);
	mem_free(pid_path);
}

static void test_start_failures_are_explained(void **state)
{
	const char *text, *error;
	assert_int_equal(start("fail", &text, &error), -1);
	assert_string_equal(error, "port 1 is in use");
	assert_int_equal(start("crash", &text, &error), -1);
	assert_non_null(strstr(error, "signal"));
}

static int setup(void **state)
{
	dir = test_tmpdir_create("service");
	return 0;
}

static int teardown(void **state)
{
	int ret = test_tmpdir_remove(&dir);
	return ret == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc == 3)
		return daemon_main(argv[1], argv[2]);
	if (realpath("/proc/self/exe", self) == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_ready_status_stop),
		cmocka_unit_test(test_start_failures_are_explained),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
