#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem.h"
#include "service-sandbox.h"
#include "test-tmpdir.h"

/* Two "instances" side by side: a process confined to A can use A and read
 * the system, but can neither read nor write B. Runs in a child process
 * because the restriction cannot be undone. */
static void test_confined_to_own_directory(void **state)
{
	char *dir = test_tmpdir_create("sandbox");
	char *a = mem_printf("%s/a", dir), *b = mem_printf("%s/b", dir);
	char *b_file = mem_printf("%s/b/secret", dir), *a_file = mem_printf("%s/a/data", dir);
	assert_int_equal(mkdir(a, 0700), 0);
	assert_int_equal(mkdir(b, 0700), 0);
	FILE *f = fopen(b_file, "w");
	assert_non_null(f);
	fputs("B's mail", f);
	fclose(f);

	pid_t pid = fork();
	if (pid == 0) {
		struct service_sandbox_path paths[] = {{a, true}, {"/usr", false}, {"/etc", false}};
		const char *error;
		int ret = service_sandbox_restrict(paths, 3, &error);
		if (ret == 0)
			_exit(77); /* no Landlock in this kernel */
		if (ret < 0)
			_exit(10);
		int fd = open(a_file, O_WRONLY | O_CREAT, 0600);
		if (fd < 0 || write(fd, "ok", 2) != 2)
			_exit(11);
		close(fd);
		if (open(b_file, O_RDONLY) >= 0 || errno != EACCES)
			_exit(12);
		if (open(mem_printf("%s/new", b), O_WRONLY | O_CREAT, 0600) >= 0)
			_exit(13);
		if (open("/etc/hostname", O_RDONLY) < 0 && open("/etc/passwd", O_RDONLY) < 0)
			_exit(14);
		if (open("/etc/coffer-sandbox-test", O_WRONLY | O_CREAT, 0600) >= 0)
			_exit(15);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(test_tmpdir_remove(&dir), 0);
	mem_free(a);
	mem_free(b);
	mem_free(a_file);
	mem_free(b_file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_confined_to_own_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
