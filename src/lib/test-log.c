#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "mem.h"
#include "test-tmpdir.h"

static void test_one_line_per_event_with_context(void **state)
{
	char *dir = test_tmpdir_create("log");
	char *path = mem_printf("%s/x.log", dir);
	const char *error;
	log_init("instance-host");
	assert_int_equal(log_open_file(path, &error), 0);
	log_info("peer=cas1 conn=127.0.0.1:4711", "link up");
	log_warning(NULL, "evil\nsecond line\x1b[31m");
	log_debug(NULL, "not shown at the default level");
	char *text;
	size_t len;
	assert_int_equal(file_read_all(path, 1 << 20, &text, &len, &error), 0);
	/* Exactly two lines: control characters never split an event. */
	int lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	assert_int_equal(lines, 2);
	assert_non_null(
		strstr(text, " instance-host info: peer=cas1 conn=127.0.0.1:4711: link up\n"));
	assert_non_null(strstr(text, "instance-host warning: evil\\x0asecond line\\x1b[31m\n"));
	assert_null(strstr(text, "not shown"));
	assert_int_equal(text[4], '-');
	assert_non_null(strstr(text, "Z coffer["));
	mem_free(text);
	assert_int_equal(log_open_file("/nonexistent/dir/x.log", &error), -1);
	assert_non_null(strstr(error, "/nonexistent/dir/x.log"));
	assert_int_equal(test_tmpdir_remove(&dir), 0);
	mem_free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_line_per_event_with_context),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
