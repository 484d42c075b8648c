#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
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

static void test_tail_open_continues_the_chain(void **state)
{
	const char *error;
	char *path = write_log(5);
	struct audit *a;
	assert_int_equal(audit_open_tail(path, &a, &error), 0);
	assert_int_equal(audit_append_nosync(a, 1795000030, "carol", "10.0.0.1", "ClientFetch",
					     NULL, &error),
			 0);
	assert_int_equal(audit_sync(a, &error), 0);
	long long size = audit_size(a);
	audit_close(&a);
	assert_int_equal(audit_verify(path, &error), 6);
	/* the size counts every complete line */
	char *data;
	size_t len;
	assert_int_equal(file_read_all(path, 1 << 20, &data, &len, &error), 0);
	assert_int_equal((long long)len, size);
	/* a changed last line is found at open; a torn one is cut */
	data[len - 10] ^= 1;
	assert_int_equal(file_write_atomic(path, data, len, 0600, &error), 0);
	assert_int_equal(audit_open_tail(path, &a, &error), -1);
	assert_non_null(strstr(error, "damaged"));
	data[len - 10] ^= 1;
	assert_int_equal(file_write_atomic(path, data, len, 0600, &error), 0);
	FILE *f = fopen(path, "a");
	fputs("{\"time\":", f);
	fclose(f);
	assert_int_equal(audit_open_tail(path, &a, &error), 0);
	assert_int_equal(audit_size(a), (long long)len);
	assert_int_equal(audit_append(a, 1795000031, "carol", "x", "ClientPart", NULL, &error), 0);
	audit_close(&a);
	assert_int_equal(audit_verify(path, &error), 7);
	mem_free(data);
	mem_free(path);
}

static bool count_carol(const struct json *entry, void *context)
{
	int *n = context;
	if (strcmp(json_get_string(entry, "user"), "carol") == 0)
		(*n)++;
	return *n < 2;
}

static void test_foreach_stops_at_limit_and_on_request(void **state)
{
	const char *error;
	char *path = mem_printf("%s/foreach.log", dir);
	struct audit *a;
	assert_int_equal(audit_open_tail(path, &a, &error), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(audit_append_nosync(a, 1795000040 + i,
						     i % 2 == 0 ? "carol" : "dan", "x",
						     "ClientLogin", NULL, &error),
				 0);
	int n = 0;
	/* a torn line after the limit (an append under way) is not read */
	FILE *f = fopen(path, "a");
	fputs("{\"ti", f);
	fclose(f);
	assert_int_equal(audit_foreach(path, audit_size(a), count_carol, &n, &error), 3);
	assert_int_equal(n, 2);
	assert_int_equal(audit_foreach(path, -1, NULL, NULL, &error), -1);
	assert_non_null(strstr(error, "line 5"));
	audit_close(&a);
	mem_free(path);
}

/* A write the disk cannot take whole (here: a file size limit) leaves no
 * torn line behind: the next append continues a sound chain. */
static void test_failed_write_leaves_no_torn_line(void **state)
{
	const char *error;
	char *path = write_log(8);
	struct audit *a;
	assert_int_equal(audit_open_tail(path, &a, &error), 0);
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)audit_size(a) + 40;
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
	int ret = audit_append(a, 1795000050, "erin", "x", "ClientExport", NULL, &error);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	assert_int_equal(ret, -1);
	assert_int_equal(audit_append(a, 1795000051, "erin", "x", "ClientExport", NULL, &error), 0);
	audit_close(&a);
	assert_int_equal(audit_verify(path, &error), 9);
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
		cmocka_unit_test(test_tail_open_continues_the_chain),
		cmocka_unit_test(test_foreach_stops_at_limit_and_on_request),
		cmocka_unit_test(test_failed_write_leaves_no_torn_line),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
