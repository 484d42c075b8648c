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
#include "test-tmpdir.h"

static char *tmpdir;

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

static void check_dirname(const char *path, const char *want)
{
	char *dir = file_dirname(path);
	assert_string_equal(dir, want);
	mem_free(dir);
}

static void test_dirname(void **state)
{
	check_dirname("/srv/coffer/acme/catalog.db", "/srv/coffer/acme");
	check_dirname("acme/catalog.db", "acme");
	check_dirname("catalog.db", ".");
	check_dirname("/catalog.db", "/");
	check_dirname("/srv/acme/", "/srv");
}

/* The shared test helper: a tree with a symbolic link out of it goes, and
 * what the link points to stays. */
static void test_tmpdir_removes_tree_not_link_target(void **state)
{
	char *outside = mem_printf("%s/outside", tmpdir);
	assert_int_equal(mkdir(outside, 0700), 0);
	char *kept = mem_printf("%s/kept", outside);
	const char *error;
	assert_int_equal(file_write_atomic(kept, "k", 1, 0600, &error), 0);

	char *dir = test_tmpdir_create("file-helper");
	char *path = mem_strdup(dir);
	assert_non_null(strstr(dir, "coffer-test-file-helper-"));
	char *deep = mem_printf("%s/a/b/c", dir), *mid = mem_printf("%s/a/b", dir);
	char *top = mem_printf("%s/a", dir), *link = mem_printf("%s/a/out", dir);
	assert_int_equal(mkdir(top, 0700), 0);
	assert_int_equal(mkdir(mid, 0700), 0);
	assert_int_equal(mkdir(deep, 0700), 0);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(test_tmpdir_remove(&dir), 0);
	assert_null(dir);

	struct stat st;
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(stat(kept, &st), 0);
	assert_int_equal(test_tmpdir_remove(&dir), 0); /* NULL: nothing to do */
	mem_free(path);
	mem_free(deep);
	mem_free(mid);
	mem_free(top);
	mem_free(link);
	mem_free(kept);
	mem_free(outside);
}

static int setup(void **state)
{
	tmpdir = test_tmpdir_create("file");
	return 0;
}

static int teardown(void **state)
{
	int ret = test_tmpdir_remove(&tmpdir);
	return ret == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_atomic_roundtrip),
		cmocka_unit_test(test_read_limits_and_errors),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_dirname),
		cmocka_unit_test(test_tmpdir_removes_tree_not_link_target),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
