#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "json.h"
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

static struct mgmtdb_instance instance(const char *id, const char *alias)
{
	struct mgmtdb_instance inst = {.id = id,
				       .alias = alias,
				       .display_name = "",
				       .instance_host = "127.0.0.3",
				       .base_directory = "/srv/coffer",
				       .start_mode = "automatic"};
	return inst;
}

/* Found by ID or alias whatever its position among thousands, and the
 * index follows every change: add, update (a new alias), remove, reload. */
static void test_instances_found_among_thousands(void **state)
{
	enum { N = 3000 };
	const char *error;
	char id[32], alias[32];
	struct mgmtdb *db = mgmtdb_create(), *loaded;
	struct mgmtdb_instance inst;
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "i%d", i);
		snprintf(alias, sizeof(alias), "a%d", i);
		inst = instance(id, i % 2 == 0 ? alias : "");
		assert_int_equal(mgmtdb_instance_add(db, &inst, &error), 0);
	}
	assert_int_equal(mgmtdb_instance_count(db), N);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "i%d", i);
		snprintf(alias, sizeof(alias), "a%d", i);
		assert_int_equal(mgmtdb_instance_find(db, id, &inst), 1);
		assert_string_equal(inst.id, id);
		assert_int_equal(mgmtdb_instance_find(db, alias, &inst), i % 2 == 0 ? 1 : 0);
		if (i % 2 == 0)
			assert_string_equal(inst.id, id);
	}
	assert_int_equal(mgmtdb_instance_find(db, "i3000", &inst), 0);
	assert_int_equal(mgmtdb_instance_find(db, "", &inst), 0);
	/* one namespace: an ID or alias taken, in either role, is refused */
	inst = instance("a10", "");
	assert_int_equal(mgmtdb_instance_add(db, &inst, &error), -1);
	assert_non_null(strstr(error, "'a10' exists"));
	inst = instance("new", "i2999");
	assert_int_equal(mgmtdb_instance_add(db, &inst, &error), -1);
	assert_non_null(strstr(error, "'i2999' exists"));
	inst = instance("self", "self"); /* its own ID as alias clashes with nothing */
	assert_int_equal(mgmtdb_instance_add(db, &inst, &error), 0);
	assert_int_equal(mgmtdb_instance_remove(db, "self"), 1);
	assert_int_equal(mgmtdb_instance_find(db, "self", &inst), 0);

	/* update: a new alias replaces the old one, the position and the
	 * creation time stay; another instance's alias is refused */
	struct mgmtdb_instance before;
	mgmtdb_instance_get(db, 1000, &before);
	assert_string_equal(before.id, "i1000");
	time_t created = before.created;
	inst = instance("i1000", "a1002");
	assert_int_equal(mgmtdb_instance_update(db, &inst, &error), -1);
	assert_non_null(strstr(error, "'a1002' exists"));
	inst = instance("i1000", "renamed");
	inst.display_name = "Renamed";
	assert_int_equal(mgmtdb_instance_update(db, &inst, &error), 0);
	assert_int_equal(mgmtdb_instance_find(db, "a1000", &inst), 0);
	assert_int_equal(mgmtdb_instance_find(db, "renamed", &inst), 1);
	assert_string_equal(inst.id, "i1000");
	assert_string_equal(inst.display_name, "Renamed");
	assert_int_equal(mgmtdb_instance_find(db, "i1000", &inst), 1);
	assert_string_equal(inst.alias, "renamed");
	mgmtdb_instance_get(db, 1000, &inst);
	assert_string_equal(inst.id, "i1000");
	assert_int_equal(inst.created, created);
	/* the update may pass the stored strings themselves back in */
	assert_int_equal(mgmtdb_instance_find(db, "renamed", &inst), 1);
	assert_int_equal(mgmtdb_instance_update(db, &inst, &error), 0);
	assert_int_equal(mgmtdb_instance_find(db, "renamed", &inst), 1);
	assert_string_equal(inst.display_name, "Renamed");
	inst = instance("a1000", ""); /* the old alias is free again */
	assert_int_equal(mgmtdb_instance_add(db, &inst, &error), 0);
	assert_int_equal(mgmtdb_instance_remove(db, "a1000"), 1);
	inst = instance("nobody", "");
	assert_int_equal(mgmtdb_instance_update(db, &inst, &error), -1);
	assert_non_null(strstr(error, "no instance 'nobody'"));

	/* remove takes an ID, not an alias, and only that instance goes */
	assert_int_equal(mgmtdb_instance_remove(db, "a500"), 0);
	assert_int_equal(mgmtdb_instance_remove(db, "i500"), 1);
	assert_int_equal(mgmtdb_instance_remove(db, "i500"), 0);
	assert_int_equal(mgmtdb_instance_find(db, "i500", &inst), 0);
	assert_int_equal(mgmtdb_instance_find(db, "a500", &inst), 0);
	assert_int_equal(mgmtdb_instance_count(db), N - 1);
	mgmtdb_instance_get(db, 500, &inst);
	assert_string_equal(inst.id, "i501");
	assert_int_equal(mgmtdb_instance_find(db, "a502", &inst), 1);
	assert_string_equal(inst.id, "i502");

	char *path = mem_printf("%s/%s", dir, MGMTDB_FILE_NAME);
	assert_int_equal(mgmtdb_save(db, path, &error), 0);
	assert_int_equal(mgmtdb_load(path, &loaded, &error), 0);
	assert_int_equal(mgmtdb_instance_count(loaded), N - 1);
	assert_int_equal(mgmtdb_instance_find(loaded, "renamed", &inst), 1);
	assert_string_equal(inst.id, "i1000");
	assert_int_equal(mgmtdb_instance_find(loaded, "a2998", &inst), 1);
	assert_string_equal(inst.id, "i2998");
	assert_int_equal(mgmtdb_instance_find(loaded, "i500", &inst), 0);
	mgmtdb_destroy(&loaded);
	mgmtdb_destroy(&db);
	mem_free(path);
}

static void test_admins_found_among_thousands(void **state)
{
	enum { N = 2000 };
	const char *error;
	char name[32], hash[32];
	struct mgmtdb *db = mgmtdb_create();
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "admin%d", i);
		snprintf(hash, sizeof(hash), "h%d", i);
		assert_int_equal(mgmtdb_admin_add(db, name, hash, &error), 0);
	}
	assert_int_equal(mgmtdb_admin_add(db, "admin1999", "x", &error), -1);
	assert_non_null(strstr(error, "already exists"));
	assert_null(mgmtdb_admin_password_hash(db, "Admin1")); /* names are exact */
	assert_int_equal(mgmtdb_admin_remove(db, "admin7"), 1);
	assert_int_equal(mgmtdb_admin_remove(db, "admin7"), 0);
	assert_null(mgmtdb_admin_record(db, "admin7"));
	assert_int_equal(mgmtdb_admin_set_password_hash(db, "admin7", "x", &error), -1);
	assert_int_equal(mgmtdb_admin_count(db), N - 1);
	assert_string_equal(mgmtdb_admin_name(db, 7), "admin8");
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "admin%d", i);
		snprintf(hash, sizeof(hash), "h%d", i);
		if (i == 7)
			continue;
		assert_string_equal(mgmtdb_admin_password_hash(db, name), hash);
	}
	assert_int_equal(mgmtdb_admin_set_password_hash(db, "admin8", "new", &error), 0);
	assert_string_equal(mgmtdb_admin_password_hash(db, "admin8"), "new");
	assert_int_equal(mgmtdb_admin_add(db, "admin7", "again", &error), 0);
	assert_string_equal(mgmtdb_admin_password_hash(db, "admin7"), "again");
	mgmtdb_destroy(&db);
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
	/* a name given twice would leave one of the two unreachable */
	expect_corrupt("{\"schemaVersion\": 1, \"systemAdministrators\": ["
		       "{\"name\":\"a\",\"passwordHash\":\"x\"},"
		       "{\"name\":\"a\",\"passwordHash\":\"y\"}]}",
		       "systemAdministrators[1]: administrator 'a' is listed twice");
#define INSTANCE(id, alias)                                                                        \
	"{\"instanceID\":\"" id "\",\"alias\":\"" alias "\",\"displayName\":\"\","                 \
	"\"instanceHost\":\"h\",\"baseDirectory\":\"/b\",\"startMode\":\"manual\"}"
	expect_corrupt("{\"schemaVersion\": 1, \"instances\": [" INSTANCE("x", "") "," INSTANCE(
			       "x", "y") "]}",
		       "instances[1]: the ID or alias 'x' is another instance's too");
	expect_corrupt("{\"schemaVersion\": 1, \"instances\": [" INSTANCE("x", "y") "," INSTANCE(
			       "z", "y") "]}",
		       "instances[1]: the ID or alias 'y'");
	expect_corrupt("{\"schemaVersion\": 1, \"instances\": [" INSTANCE("x", "y") "," INSTANCE(
			       "y", "") "]}",
		       "instances[1]: the ID or alias 'y'");
	/* but an instance whose alias is its own ID loads */
	const char *own = "{\"schemaVersion\": 1, \"instances\": [" INSTANCE("x", "x") "]}";
#undef INSTANCE
	struct mgmtdb *own_db;
	const char *own_error;
	assert_int_equal(mgmtdb_parse(own, strlen(own), "own", &own_db, &own_error), 0);
	struct mgmtdb_instance found;
	assert_int_equal(mgmtdb_instance_find(own_db, "x", &found), 1);
	assert_int_equal(mgmtdb_instance_remove(own_db, "x"), 1);
	assert_int_equal(mgmtdb_instance_find(own_db, "x", &found), 0);
	mgmtdb_destroy(&own_db);
	struct mgmtdb *db;
	const char *error;
	assert_int_equal(mgmtdb_load("/nonexistent/db.json", &db, &error), -1);
	assert_non_null(strstr(error, "cannot read"));
}

/* A renamed Instance Host keeps its registration and takes its instances
 * along (names compare without regard to case); the other host's stay. */
static void test_server_rename_moves_instances(void **state)
{
	const char *error;
	struct mgmtdb *db = mgmtdb_create();
	struct mgmtdb_server s;
	struct mgmtdb_instance inst;
	assert_int_equal(
		mgmtdb_server_add(db, MGMTDB_INSTANCE_HOST, "old.example", 8472, fp, &error), 0);
	assert_int_equal(mgmtdb_server_add(db, MGMTDB_INSTANCE_HOST, "other", 8472, fp, &error), 0);
	inst = instance("a", "");
	inst.instance_host = "OLD.example";
	assert_int_equal(mgmtdb_instance_add(db, &inst, &error), 0);
	inst = instance("b", "");
	inst.instance_host = "other";
	assert_int_equal(mgmtdb_instance_add(db, &inst, &error), 0);
	assert_int_equal(mgmtdb_instance_count_on_host(db, "old.example"), 1);
	assert_int_equal(
		mgmtdb_server_rename(db, MGMTDB_INSTANCE_HOST, "old.example", "other", &error), -1);
	assert_non_null(strstr(error, "already registered"));
	assert_int_equal(mgmtdb_server_rename(db, MGMTDB_INSTANCE_HOST, "nope", "x", &error), -1);
	assert_int_equal(
		mgmtdb_server_rename(db, MGMTDB_INSTANCE_HOST, "old.example", "bad name", &error),
		-1);
	/* the old name borrowed from the entry itself */
	mgmtdb_server_get(db, MGMTDB_INSTANCE_HOST, 0, &s);
	assert_int_equal(mgmtdb_server_rename(db, MGMTDB_INSTANCE_HOST, s.server_name,
					      "new.example", &error),
			 0);
	assert_int_equal(mgmtdb_server_find(db, MGMTDB_INSTANCE_HOST, "old.example", &s), 0);
	assert_int_equal(mgmtdb_server_find(db, MGMTDB_INSTANCE_HOST, "new.example", &s), 1);
	assert_int_equal(s.port, 8472);
	assert_int_equal(mgmtdb_instance_count_on_host(db, "old.example"), 0);
	assert_int_equal(mgmtdb_instance_count_on_host(db, "new.example"), 1);
	assert_int_equal(mgmtdb_instance_find(db, "a", &inst), 1);
	assert_string_equal(inst.instance_host, "new.example");
	assert_int_equal(mgmtdb_instance_find(db, "b", &inst), 1);
	assert_string_equal(inst.instance_host, "other");
	mgmtdb_destroy(&db);

	/* pairing under a new name with the same certificate is a rename */
	static const char fp2[] =
		"1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	const char *renamed;
	db = mgmtdb_create();
	assert_int_equal(mgmtdb_server_add(db, MGMTDB_INSTANCE_HOST, "h1", 1, fp, &error), 0);
	assert_int_equal(mgmtdb_server_add(db, MGMTDB_INSTANCE_HOST, "h2", 1, fp2, &error), 0);
	inst = instance("a", "");
	inst.instance_host = "h1";
	assert_int_equal(mgmtdb_instance_add(db, &inst, &error), 0);
	assert_int_equal(
		mgmtdb_server_pair(db, MGMTDB_INSTANCE_HOST, "h1", 2, fp, &renamed, &error), 0);
	assert_null(renamed);
	assert_int_equal(
		mgmtdb_server_pair(db, MGMTDB_INSTANCE_HOST, "h3", 3, fp, &renamed, &error), 0);
	assert_string_equal(renamed, "h1");
	assert_int_equal(mgmtdb_server_count(db, MGMTDB_INSTANCE_HOST), 2);
	assert_int_equal(mgmtdb_server_find(db, MGMTDB_INSTANCE_HOST, "h3", &s), 1);
	assert_int_equal(s.port, 3);
	assert_int_equal(mgmtdb_instance_count_on_host(db, "h3"), 1);
	/* the other host's certificate: that one renamed */
	assert_int_equal(
		mgmtdb_server_pair(db, MGMTDB_INSTANCE_HOST, "h4", 4, fp2, &renamed, &error), 0);
	assert_string_equal(renamed, "h2");
	assert_int_equal(mgmtdb_server_count(db, MGMTDB_INSTANCE_HOST), 2);
	/* a name registered already is replaced; the other keeps its name */
	assert_int_equal(
		mgmtdb_server_pair(db, MGMTDB_INSTANCE_HOST, "h3", 3, fp2, &renamed, &error), 0);
	assert_null(renamed);
	assert_int_equal(mgmtdb_server_count(db, MGMTDB_INSTANCE_HOST), 2);
	assert_int_equal(mgmtdb_server_find(db, MGMTDB_INSTANCE_HOST, "h4", &s), 1);
	assert_int_equal(
		mgmtdb_server_pair(db, MGMTDB_CLIENT_ACCESS_SERVER, "c", 5, fp, &renamed, &error),
		0);
	assert_null(renamed);
	assert_int_equal(mgmtdb_instance_count_on_host(db, "h3"), 1);
	/* update in place: the position stays, bad values change nothing */
	mgmtdb_server_get(db, MGMTDB_INSTANCE_HOST, 0, &s);
	const char *first = s.server_name;
	assert_int_equal(mgmtdb_server_update(db, MGMTDB_INSTANCE_HOST, first, 9, fp, &error), 0);
	assert_int_equal(mgmtdb_server_update(db, MGMTDB_INSTANCE_HOST, "h4", 0, fp, &error), -1);
	assert_int_equal(mgmtdb_server_update(db, MGMTDB_INSTANCE_HOST, "h4", 1, "ab", &error), -1);
	assert_int_equal(mgmtdb_server_update(db, MGMTDB_INSTANCE_HOST, "zz", 1, fp, &error), -1);
	mgmtdb_server_get(db, MGMTDB_INSTANCE_HOST, 0, &s);
	assert_int_equal(s.port, 9);
	assert_string_equal(s.fingerprint, fp);
	mgmtdb_destroy(&db);
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

/* What a moved database needs its secrets.key for: every sealed MFA seed
 * and the SMTP password, each with the context it was sealed for. */
static void test_sealed_secrets_listed(void **state)
{
	(void)state;
	const char *error;
	struct mgmtdb *db = mgmtdb_create();
	struct mgmtdb_sealed_secret secret;
	assert_int_equal(mgmtdb_admin_add(db, "admin", "h", &error), 0);
	assert_int_equal(mgmtdb_admin_add(db, "carol", "h", &error), 0);
	assert_int_equal(mgmtdb_sealed_secret_count(db), 0);
	struct json *mfa = json_new_object();
	json_set_string(mfa, "secret", "v1:carol-sealed");
	json_set(mgmtdb_admin_record(db, "carol"), "mfa", mfa);
	assert_int_equal(mgmtdb_sealed_secret_count(db), 1);
	mgmtdb_sealed_secret_get(db, 0, &secret);
	assert_string_equal(secret.sealed, "v1:carol-sealed");
	assert_string_equal(secret.context, "mfa:carol");
	assert_non_null(strstr(secret.what, "carol"));
	/* An SMTP section without a password holds nothing sealed. */
	struct json *smtp = json_new_object();
	json_set_string(smtp, "password", "");
	json_set(mgmtdb_root(db), "smtp", smtp);
	assert_int_equal(mgmtdb_sealed_secret_count(db), 1);
	json_set_string(smtp, "password", "v1:smtp-sealed");
	assert_int_equal(mgmtdb_sealed_secret_count(db), 2);
	mgmtdb_sealed_secret_get(db, 0, &secret);
	assert_string_equal(secret.context, "smtp-password");
	mgmtdb_sealed_secret_get(db, 1, &secret);
	assert_string_equal(secret.context, "mfa:carol");
	mgmtdb_destroy(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admins_and_servers_roundtrip),
		cmocka_unit_test(test_corrupt_databases_refused),
		cmocka_unit_test(test_instances_found_among_thousands),
		cmocka_unit_test(test_admins_found_among_thousands),
		cmocka_unit_test(test_server_rename_moves_instances),
		cmocka_unit_test(test_sealed_secrets_listed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
