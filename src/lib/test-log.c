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

/* The first event is logged; the next ones in the same window only count,
 * and the next line carries them. */
static void test_throttle(void **state)
{
	struct log_throttle t = {0};
	unsigned int count = 0;
	assert_true(log_throttle_pass(&t, 3600, &count));
	assert_int_equal(count, 1);
	for (int i = 0; i < 5; i++)
		assert_false(log_throttle_pass(&t, 3600, &count));
	t.last -= 3600; /* the window has passed */
	assert_true(log_throttle_pass(&t, 3600, &count));
	assert_int_equal(count, 6);
	assert_false(log_throttle_pass(&t, 3600, &count));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_line_per_event_with_context),
		cmocka_unit_test(test_throttle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
