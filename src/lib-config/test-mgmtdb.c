#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "mem.h"
#include "mgmtdb.h"
#include "test-tmpdir.h"

static char *dir;
static const char fp[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void test_admins_and_servers_roundtrip(void **state)
{
	const char *error;
	struct mgmtdb *db = mgmtdb_create(), *loaded;
	char *path = mem_printf("%s/%s", dir, MGMTDB_FILE_NAME);
	assert_int_equal(mgmtdb_admin_add(db, "admin", "$argon2id$x", &error), 0);
	assert_int_equal(mgmtdb_admin_add(db, "admin", "$argon2id$y", &error), -1);
	assert_int_equal(mgmtdb_admin_add(db, "bad name", "h", &error), -1);
	assert_int_equal(
		mgmtdb_server_add(db, MGMTDB_INSTANCE_HOST, "127.0.0.3", 18472, fp, &error), 0);
	assert_int_equal(mgmtdb_server_add(db, MGMTDB_INSTANCE_HOST, "127.0.0.3", 1, fp, &error),
			 -1);
	assert_non_null(strstr(error, "already registered"));
	assert_int_equal(mgmtdb_server_add(db, MGMTDB_CLIENT_ACCESS_SERVER, "cas", 0, fp, &error),
			 -1);
	assert_int_equal(
		mgmtdb_server_add(db, MGMTDB_CLIENT_ACCESS_SERVER, "cas", 8473, "xyz", &error), -1);
	assert_non_null(strstr(error, "fingerprint"));
	assert_int_equal(
		mgmtdb_server_set(db, MGMTDB_CLIENT_ACCESS_SERVER, "cas", 8473, fp, &error), 0);
	assert_int_equal(mgmtdb_save(db, path, &error), 0);
	assert_int_equal(mgmtdb_load(path, &loaded, &error), 0);
	assert_string_equal(mgmtdb_admin_password_hash(loaded, "admin"), "$argon2id$x");
	assert_null(mgmtdb_admin_password_hash(loaded, "nobody"));
	assert_int_equal(mgmtdb_server_count(loaded, MGMTDB_INSTANCE_HOST), 1);
	struct mgmtdb_server s;
	assert_int_equal(mgmtdb_server_find(loaded, MGMTDB_INSTANCE_HOST, "127.0.0.3", &s), 1);
	assert_int_equal(s.port, 18472);
	assert_string_equal(s.fingerprint, fp);
	assert_int_equal(mgmtdb_server_remove(loaded, MGMTDB_INSTANCE_HOST, "127.0.0.3"), 1);
	assert_int_equal(mgmtdb_server_remove(loaded, MGMTDB_INSTANCE_HOST, "127.0.0.3"), 0);
	mgmtdb_destroy(&loaded);
	mgmtdb_destroy(&db);
	mem_free(path);
}

static void expect_corrupt(const char *text, const char *needle)
{
	const char *error;
	struct mgmtdb *db;
	char *path = mem_printf("%s/corrupt.json", dir);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0600, &error), 0);
	assert_int_equal(mgmtdb_load(path, &db, &error), -1);
	assert_non_null(strstr(error, needle));
	/* The file is never rewritten by a failed load. */
	char *after;
	size_t len;
	assert_int_equal(file_read_all(path, 1 << 20, &after, &len, &error), 0);
	assert_string_equal(after, text);
	mem_free(after);
	mem_free(path);
}

static void test_corrupt_databases_refused(void **state)
{
	expect_corrupt("{\"schemaVersion\": 1, \"instanceHosts\": [", "corrupt");
	expect_corrupt("[]", "JSON object");
	expect_corrupt("{}", "schemaVersion");
	expect_corrupt("{\"schemaVersion\": 7}", "newer");
	expect_corrupt("{\"schemaVersion\": 1, \"instanceHosts\": {}}", "not an array");
	expect_corrupt("{\"schemaVersion\": 1, \"instanceHosts\": [{\"serverName\":\"a\"}]}",
		       "fingerprint");
	expect_corrupt("{\"schemaVersion\": 1, \"systemAdministrators\": [{\"name\":\"a\"}]}",
		       "passwordHash");
	expect_corrupt("\xff\xfe", "corrupt");
	struct mgmtdb *db;
	const char *error;
	assert_int_equal(mgmtdb_load("/nonexistent/db.json", &db, &error), -1);
	assert_non_null(strstr(error, "cannot read"));
}

static int setup(void **state)
{
	dir = test_tmpdir_create("mgmtdb");
	return 0;
}

static int teardown(void **state)
{
	int ret = test_tmpdir_remove(&dir);
	return ret == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admins_and_servers_roundtrip),
		cmocka_unit_test(test_corrupt_databases_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
