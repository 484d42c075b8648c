#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "crypto.h"
#include "file.h"
#include "json.h"
#include "mem.h"
#include "test-tmpdir.h"

static char *dir;

static char *write_log(int entries)
{
	char *path = mem_printf("%s/audit-%d.log", dir, entries);
	struct audit *a;
	const char *error;
	assert_int_equal(audit_open(path, &a, &error), 0);
	for (int i = 0; i < entries; i++) {
		struct json *d = json_new_object();
		json_set_int(d, "n", i);
		assert_int_equal(audit_append(a, 1795000000 + i, "admin", "127.0.0.1:5000",
					      "CreateInstance", d, &error),
				 0);
		json_unref(&d);
	}
	audit_close(&a);
	return path;
}

static void test_chain_verifies_and_continues(void **state)
{
	const char *error;
	char *path = write_log(3);
	assert_int_equal(audit_verify(path, &error), 3);
	struct audit *a;
	assert_int_equal(audit_open(path, &a, &error), 0);
	assert_int_equal(audit_append(a, 1795000010, "bob", "::1", "DeleteInstances", NULL, &error),
			 0);
	audit_close(&a);
	assert_int_equal(audit_verify(path, &error), 4);
	mem_free(path);
}

static void test_tampering_is_found(void **state)
{
	const char *error;
	char *path = write_log(4);
	char *data;
	size_t len;
	assert_int_equal(file_read_all(path, 1 << 20, &data, &len, &error), 0);
	/* Change one character in the second line's user. */
	char *second = strchr(data, '\n') + 1;
	char *user = strstr(second, "admin");
	user[0] = 'A';
	assert_int_equal(file_write_atomic(path, data, len, 0600, &error), 0);
	assert_int_equal(audit_verify(path, &error), -1);
	assert_non_null(strstr(error, "line 2"));
	struct audit *a;
	assert_int_equal(audit_open(path, &a, &error), -1);
	assert_non_null(strstr(error, "damaged"));
	/* Removing a line breaks the chain too. */
	user[0] = 'a';
	char *third = strchr(second, '\n') + 1;
	memmove(second, third, strlen(third) + 1);
	assert_int_equal(file_write_atomic(path, data, strlen(data), 0600, &error), 0);
	assert_int_equal(audit_verify(path, &error), -1);
	assert_non_null(strstr(error, "line 2"));
	mem_free(data);
	mem_free(path);
}

static void test_torn_tail_is_cut(void **state)
{
	const char *error;
	char *path = write_log(2);
	FILE *f = fopen(path, "a");
	fputs("{\"time\":\"2026", f);
	fclose(f);
	assert_int_equal(audit_verify(path, &error), -1);
	struct audit *a;
	assert_int_equal(audit_open(path, &a, &error), 0);
	assert_int_equal(audit_append(a, 1795000020, "admin", "x", "Ping", NULL, &error), 0);
	audit_close(&a);
	assert_int_equal(audit_verify(path, &error), 3);
	mem_free(path);
}

static int setup(void **state)
{
	dir = test_tmpdir_create("audit");
	return crypto_init() < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	int ret = test_tmpdir_remove(&dir);
	return ret == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_verifies_and_continues),
		cmocka_unit_test(test_tampering_is_found),
		cmocka_unit_test(test_torn_tail_is_cut),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
