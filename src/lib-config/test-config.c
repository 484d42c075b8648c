#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "file.h"
#include "mem.h"
#include "test-tmpdir.h"

static char *dir;

static void test_role_defaults_roundtrip(void **state)
{
	struct config_role_settings s, loaded;
	const char *error;
	config_role_defaults(CONFIG_ROLE_CLIENT_ACCESS_SERVER, "cas.example.test", &s);
	assert_int_equal(s.listeners[CONFIG_KIND_HTTP].listeners[0].port, 443);
	assert_int_equal(s.listeners[CONFIG_KIND_IMAPS].listeners[0].port, 993);
	assert_int_equal(config_role_set_field(&s, "imap-enabled", "no", &error), 0);
	assert_int_equal(
		config_role_set_field(&s, "tcp-listeners", "127.0.0.4:18473, [::1]:18473", &error),
		0);
	assert_int_equal(config_role_set_field(&s, "management-fingerprint",
					       "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:"
					       "CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
					       &error),
			 0);
	assert_string_equal(s.management.fingerprint,
			    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_int_equal(config_role_save(dir, &s, &error), 0);
	assert_int_equal(config_role_load(dir, CONFIG_ROLE_CLIENT_ACCESS_SERVER, &loaded, &error),
			 1);
	assert_string_equal(loaded.server_name, "cas.example.test");
	assert_false(loaded.listeners[CONFIG_KIND_IMAP].enabled);
	assert_true(loaded.listeners[CONFIG_KIND_IMAPS].enabled);
	assert_int_equal(loaded.listeners[CONFIG_KIND_TCP].listener_count, 2);
	assert_string_equal(loaded.management.fingerprint, s.management.fingerprint);
	config_role_free(&loaded);
	config_role_free(&s);
	assert_int_equal(config_role_load(dir, CONFIG_ROLE_INSTANCE_HOST, &loaded, &error), 0);
}

static void test_field_errors_name_field_and_value(void **state)
{
	struct config_role_settings s;
	const char *error;
	config_role_defaults(CONFIG_ROLE_INSTANCE_HOST, "ih1", &s);
	assert_int_equal(config_role_set_field(&s, "colour", "red", &error), -1);
	assert_non_null(strstr(error, "unknown field 'colour'"));
	assert_non_null(strstr(error, "tcp-listeners"));
	assert_int_equal(config_role_set_field(&s, "http-listeners", "*:80", &error), -1);
	assert_non_null(strstr(error, "no field 'http-listeners' for role instance-host"));
	assert_int_equal(config_role_set_field(&s, "tcp-listeners", "*:99999", &error), -1);
	assert_non_null(strstr(error, "tcp-listeners"));
	assert_non_null(strstr(error, "99999"));
	assert_int_equal(config_role_set_field(&s, "management-port", "x", &error), -1);
	assert_int_equal(config_role_set_field(&s, "management-fingerprint", "abc", &error), -1);
	assert_non_null(strstr(error, "64 hex"));
	assert_int_equal(config_role_set_field(&s, "server-name", "bad name", &error), -1);
	config_role_free(&s);
	enum config_role role;
	assert_int_equal(config_role_parse("mailserver", &role, &error), -1);
	assert_non_null(strstr(error, "instance-host"));
}

static void test_corrupt_role_file_not_accepted(void **state)
{
	const char *error;
	struct config_role_settings s;
	char *path = config_path(dir, "management-server.json");
	assert_int_equal(file_write_atomic(path, "{\"schemaVersion\":1,", 19, 0600, &error), 0);
	assert_int_equal(config_role_load(dir, CONFIG_ROLE_MANAGEMENT_SERVER, &s, &error), -1);
	assert_non_null(strstr(error, "management-server.json"));
	const char *bad =
		"{\"schemaVersion\":1,\"role\":\"management-server\",\"serverName\":\"m\","
		"\"tcp\":{\"listeners\":[\"nope\"]}}";
	assert_int_equal(file_write_atomic(path, bad, strlen(bad), 0600, &error), 0);
	assert_int_equal(config_role_load(dir, CONFIG_ROLE_MANAGEMENT_SERVER, &s, &error), -1);
	assert_non_null(strstr(error, "tcp.listeners"));
	const char *newer = "{\"schemaVersion\":99}";
	assert_int_equal(file_write_atomic(path, newer, strlen(newer), 0600, &error), 0);
	assert_int_equal(config_role_load(dir, CONFIG_ROLE_MANAGEMENT_SERVER, &s, &error), -1);
	assert_non_null(strstr(error, "schemaVersion"));
	mem_free(path);
}

static void test_server_file(void **state)
{
	struct config_server server = {CONFIG_MODE_MULTI, (char *)"coffer"}, loaded;
	const char *error;
	assert_int_equal(config_server_load(dir, &loaded, &error), -1);
	assert_non_null(strstr(error, "coffer config init"));
	assert_int_equal(config_server_save(dir, &server, &error), 0);
	assert_int_equal(config_server_load(dir, &loaded, &error), 0);
	assert_int_equal(loaded.mode, CONFIG_MODE_MULTI);
	assert_string_equal(loaded.run_as_user, "coffer");
	config_server_free(&loaded);
}

static int setup(void **state)
{
	dir = test_tmpdir_create("config");
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
		cmocka_unit_test(test_role_defaults_roundtrip),
		cmocka_unit_test(test_field_errors_name_field_and_value),
		cmocka_unit_test(test_corrupt_role_file_not_accepted),
		cmocka_unit_test(test_server_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
