#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "instance-rights.h"
#include "json.h"

#include <stdio.h>
#include <string.h>

/* A client view as instance_users_client_view() makes it. */
static struct json *view(const char *privileges, const char *rights)
{
	char *text;
	struct json *v;
	const char *error;
	size_t len = strlen(privileges) + strlen(rights) + 128;
	text = test_malloc(len);
	snprintf(text, len, "{\"archiveName\":\"tess\",\"privileges\":%s,\"folderRights\":%s}",
		 privileges, rights);
	assert_int_equal(json_parse(text, strlen(text), &v, &error), 0);
	test_free(text);
	return v;
}

static void test_privileges_and_admin(void **state)
{
	struct json *v = view("[\"login\",\"export\"]", "{}");
	assert_true(instance_rights_has(v, "login"));
	assert_true(instance_rights_has(v, "export"));
	assert_false(instance_rights_has(v, "delete"));
	assert_false(instance_rights_has(v, "admin"));
	json_unref(&v);
	v = view("[\"admin\"]", "{}");
	for (const char *const *p = (const char *const[]){"login", "archive", "export", "delete",
							  "auditor", "admin", NULL};
	     *p != NULL; p++)
		assert_true(instance_rights_has(v, *p));
	/* the login privileges say how one comes in: admin does not bring them */
	assert_false(instance_rights_has(v, "imap"));
	assert_true(instance_rights_folder(v, "bob", "Work", "read"));
	assert_true(instance_rights_folder(v, "bob", "Work", "write"));
	assert_true(instance_rights_folder(v, "bob", "Work", "delete"));
	json_unref(&v);
}

static void test_own_archive(void **state)
{
	struct json *v = view("[\"login\"]", "{}");
	assert_true(instance_rights_folder(v, "tess", "Inbox", "read"));
	assert_false(instance_rights_folder(v, "tess", "Inbox", "write")); /* no archive */
	assert_false(instance_rights_folder(v, "tess", "Inbox", "delete"));
	assert_false(instance_rights_folder(v, "bob", "Inbox", "read"));
	assert_false(instance_rights_reads_others(v));
	json_unref(&v);
	v = view("[\"login\",\"archive\",\"delete\"]", "{}");
	assert_true(instance_rights_folder(v, "tess", "Inbox", "write"));
	/* deleting needs a right even in one's own archive */
	assert_false(instance_rights_folder(v, "tess", "Inbox", "delete"));
	json_unref(&v);
	v = view("[\"login\",\"archive\",\"delete\"]", "{\"tess\":[\"delete\"]}");
	assert_true(instance_rights_folder(v, "tess", "Inbox", "delete"));
	json_unref(&v);
	/* without the delete privilege the right does nothing */
	v = view("[\"login\",\"archive\"]", "{\"tess\":[\"delete\"]}");
	assert_false(instance_rights_folder(v, "tess", "Inbox", "delete"));
	json_unref(&v);
}

static void test_folder_rights_cover_subfolders(void **state)
{
	struct json *v = view("[\"login\",\"archive\",\"delete\"]",
			      "{\"bob/Work\":[\"read\"],\"bob/INBOX\":[\"write\",\"delete\"],"
			      "\"carl\":[\"read\"]}");
	assert_true(instance_rights_folder(v, "bob", "Work", "read"));
	assert_true(instance_rights_folder(v, "bob", "Work/2024", "read"));
	assert_false(instance_rights_folder(v, "bob", "Workshop", "read"));
	assert_false(instance_rights_folder(v, "bob", "Private", "read"));
	assert_false(instance_rights_folder(v, "bob", "Work", "write"));
	assert_false(instance_rights_folder(v, "bobby", "Work", "read"));
	assert_true(instance_rights_folder(v, "bob", "Inbox", "write"));
	assert_true(instance_rights_folder(v, "bob", "inbox/sub", "delete"));
	assert_false(instance_rights_folder(v, "bob", "Inbox", "read"));
	assert_true(instance_rights_folder(v, "carl", "anything/below", "read"));
	assert_false(instance_rights_folder(v, "carl", "anything", "delete"));
	assert_false(instance_rights_folder(v, "bob", "Work", "admin"));
	assert_true(instance_rights_reads_others(v));
	json_unref(&v);
}

static void test_auditor_reads_only(void **state)
{
	struct json *v = view("[\"login\",\"auditor\"]", "{}");
	assert_true(instance_rights_folder(v, "bob", "Work", "read"));
	assert_false(instance_rights_folder(v, "bob", "Work", "write"));
	assert_false(instance_rights_folder(v, "bob", "Work", "delete"));
	assert_false(instance_rights_has(v, "export"));
	assert_true(instance_rights_reads_others(v));
	json_unref(&v);
}

static void test_effective(void **state)
{
	struct json *v = view("[\"admin\"]", "{}");
	struct json *e = instance_rights_effective(v);
	assert_int_equal(json_count(e), 6);
	json_unref(&e);
	json_unref(&v);
	v = view("[\"login\",\"export\"]", "{}");
	e = instance_rights_effective(v);
	assert_int_equal(json_count(e), 2);
	assert_string_equal(json_string_of(json_at(e, 1)), "export");
	json_unref(&e);
	json_unref(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_privileges_and_admin),
		cmocka_unit_test(test_own_archive),
		cmocka_unit_test(test_folder_rights_cover_subfolders),
		cmocka_unit_test(test_auditor_reads_only),
		cmocka_unit_test(test_effective),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
