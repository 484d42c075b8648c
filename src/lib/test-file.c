#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "mem.h"

static char tmpdir[] = "/tmp/coffer-test-file-XXXXXX";

static void test_write_atomic_roundtrip(void **state)
{
	const char *error;
	char *path = mem_printf("%s/a/b/data.json", tmpdir);
	char *dir = mem_printf("%s/a/b", tmpdir);
	assert_int_equal(file_mkdir_parents(dir, 0700, &error), 0);
	assert_int_equal(file_write_atomic(path, "one", 3, 0600, &error), 0);
	assert_int_equal(file_write_atomic(path, "two!", 4, 0600, &error), 0);
	char *data;
	size_t len;
	assert_int_equal(file_read_all(path, 100, &data, &len, &error), 0);
	assert_int_equal(len, 4);
	assert_string_equal(data, "two!");
	mem_free(data);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(file_exists(path, &error), 1);
	mem_free(path);
	mem_free(dir);
}

static void test_read_limits_and_errors(void **state)
{
	const char *error;
	char *path = mem_printf("%s/big", tmpdir);
	assert_int_equal(file_write_atomic(path, "0123456789", 10, 0644, &error), 0);
	char *data;
	size_t len;
	assert_int_equal(file_read_all(path, 5, &data, &len, &error), -1);
	assert_non_null(strstr(error, "too large"));
	assert_int_equal(file_read_all("/nonexistent/x", 5, &data, &len, &error), -1);
	assert_non_null(strstr(error, "/nonexistent/x"));
	assert_int_equal(file_read_all(tmpdir, 5, &data, &len, &error), -1);
	assert_non_null(strstr(error, "not a regular file"));
	assert_int_equal(file_write_atomic("/nonexistent/dir/x", "a", 1, 0644, &error), -1);
	assert_int_equal(file_exists("/nonexistent/x", &error), 0);
	mem_free(path);
}

static void test_copy(void **state)
{
	const char *error;
	char *src = mem_printf("%s/src", tmpdir), *dst = mem_printf("%s/dst", tmpdir);
	assert_int_equal(file_write_atomic(src, "copy\0me", 7, 0644, &error), 0);
	assert_int_equal(file_copy(src, dst, 0600, &error), 0);
	char *data;
	size_t len;
	assert_int_equal(file_read_all(dst, 100, &data, &len, &error), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(data, "copy\0me", 7);
	mem_free(data);
	mem_free(src);
	mem_free(dst);
}

static int setup(void **state)
{
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char *cmd = mem_printf("rm -rf '%s'", tmpdir);
	int ret = system(cmd);
	mem_free(cmd);
	return ret == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_atomic_roundtrip),
		cmocka_unit_test(test_read_limits_and_errors),
		cmocka_unit_test(test_copy),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
