#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "instance-calls.h"

#include <stdbool.h>
#include <string.h>

static const struct instance_call_def *rows(size_t *count_r)
{
	const struct instance_call_def *t = instance_calls_table(count_r);
	assert_non_null(t);
	assert_true(*count_r > 40);
	return t;
}

static bool has(const struct instance_call_def *d, unsigned int flag)
{
	return (d->flags & flag) != 0;
}

/* bsearch needs strictly ascending names: a duplicate or a row out of
 * place would make some call unreachable. */
static void test_sorted_unique_and_found(void **state)
{
	size_t n;
	const struct instance_call_def *t = rows(&n);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(t[i].name);
		assert_non_null(t[i].handler);
		if (i > 0 && strcmp(t[i - 1].name, t[i].name) >= 0)
			fail_msg("'%s' is not after '%s'", t[i].name, t[i - 1].name);
		assert_ptr_equal(instance_calls_find(t[i].name), &t[i]);
	}
	assert_null(instance_calls_find("NoSuchCall"));
	assert_null(instance_calls_find(""));
	assert_null(instance_calls_find("ping"));         /* names are case-sensitive */
	assert_null(instance_calls_find("ClientLogin ")); /* and exact */
}

static void test_flags_consistent(void **state)
{
	static const char *const privileges[] = {"login",   "archive", "export", "delete",
						 "auditor", "admin",   NULL};
	size_t n;
	const struct instance_call_def *t = rows(&n);
	for (size_t i = 0; i < n; i++) {
		const struct instance_call_def *d = &t[i];
		bool client = strncmp(d->name, "Client", 6) == 0;
		if (client != has(d, INSTANCE_CALL_CLIENT))
			fail_msg("%s: CLIENT is for the Client* calls, and only them", d->name);
		/* a client call checks its user against the users */
		if (client && !has(d, INSTANCE_CALL_USERS))
			fail_msg("%s: CLIENT without USERS", d->name);
		if (has(d, INSTANCE_CALL_NO_SESSION) && !client)
			fail_msg("%s: NO_SESSION without CLIENT", d->name);
		if (has(d, INSTANCE_CALL_FOR_USER) &&
		    (client || d->privilege == NULL || !has(d, INSTANCE_CALL_USERS)))
			fail_msg("%s: FOR_USER needs a privilege and the users", d->name);
		/* a privilege is only checked where there is a user */
		if (d->privilege != NULL && !client && !has(d, INSTANCE_CALL_FOR_USER))
			fail_msg("%s: a privilege without a user to check it on", d->name);
		if (d->privilege != NULL && has(d, INSTANCE_CALL_NO_SESSION))
			fail_msg("%s: a privilege before a session", d->name);
		bool known = d->privilege == NULL;
		for (const char *const *p = privileges; !known && *p != NULL; p++)
			known = strcmp(*p, d->privilege) == 0;
		if (!known)
			fail_msg("%s: no privilege '%s'", d->name, d->privilege);
		/* the account password is checked for a session's own user */
		if (d->password_arg != NULL && (!client || has(d, INSTANCE_CALL_NO_SESSION)))
			fail_msg("%s: a password check outside a session", d->name);
	}
}

/* What a frozen instance still does: everything that reads, follows jobs
 * or ends the freeze; what waits: everything that changes its files. */
static void test_frozen_refusals(void **state)
{
	static const char *const allowed[] = {"Ping",
					      "GetLiveStatistics",
					      "Freeze",
					      "Thaw",
					      "GetJobs",
					      "GetJob",
					      "CancelJob",
					      "GetUsers",
					      "GetUserInfo",
					      "GetStatistics",
					      "Search",
					      "GetStores",
					      "GetChildFolders",
					      "GetFolderStatistics",
					      "GetMessages",
					      "ClientLogin",
					      "ClientUser",
					      "ClientFolders",
					      "ClientFetch",
					      "ClientMessages",
					      "ClientExportRead",
					      "ClientExportEnd",
					      "ClientAppPasswords",
					      NULL};
	static const char *const refused[] = {"CreateUser",
					      "DeleteUser",
					      "SetUserPassword",
					      "RenameUser",
					      "StartImport",
					      "VerifyStores",
					      "RebuildSelectedStoreIndexes",
					      "CreateStore",
					      "SetStoreRequestedState",
					      "ClientExport",
					      "ClientSetPassword",
					      "ClientMfaBegin",
					      "ClientMfaActivate",
					      "ClientMfaDisable",
					      "ClientCreateAppPassword",
					      "ClientDeleteAppPassword",
					      NULL};
	for (const char *const *m = allowed; *m != NULL; m++) {
		const struct instance_call_def *d = instance_calls_find(*m);
		if (d == NULL || has(d, INSTANCE_CALL_WRITES))
			fail_msg("%s: missing or refused while frozen", *m);
	}
	for (const char *const *m = refused; *m != NULL; m++) {
		const struct instance_call_def *d = instance_calls_find(*m);
		if (d == NULL || !has(d, INSTANCE_CALL_WRITES))
			fail_msg("%s: missing or allowed while frozen", *m);
	}
}

/* One handler per call: a handler shared by rows would have to tell the
 * calls apart by name again, a second dispatcher beside the table. */
static void test_one_handler_per_call(void **state)
{
	size_t n;
	const struct instance_call_def *t = rows(&n);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			if (t[i].handler == t[j].handler)
				fail_msg("%s and %s share a handler", t[i].name, t[j].name);
		}
	}
	/* the users' calls among them, each with the users open */
	static const char *const users[] = {"GetUsers",
					    "GetUserInfo",
					    "CreateUser",
					    "DeleteUser",
					    "SyncUsers",
					    "SetUserPassword",
					    "SetUserFullName",
					    "SetUserEmailAddresses",
					    "SetUserPrivileges",
					    "SetUserLoginPrivileges",
					    "SetUserPrivilegesOnFolder",
					    "RenameUser",
					    "InitializeMFA",
					    "DisableMFA",
					    NULL};
	for (const char *const *m = users; *m != NULL; m++) {
		const struct instance_call_def *d = instance_calls_find(*m);
		if (d == NULL || !has(d, INSTANCE_CALL_USERS))
			fail_msg("%s: missing or without USERS", *m);
		bool reads = strncmp(*m, "Get", 3) == 0;
		if (reads == has(d, INSTANCE_CALL_WRITES))
			fail_msg("%s: WRITES must be set exactly for changes", *m);
	}
}

/* Long work answers with a jobID (or later) and never on the loop. */
static void test_long_running_and_rights(void **state)
{
	static const char *const jobs[] = {
		"StartImport",  "VerifyStores", "RebuildSelectedStoreIndexes",
		"ClientExport", "ClientLogin",  NULL};
	for (const char *const *m = jobs; *m != NULL; m++)
		assert_true(has(instance_calls_find(*m), INSTANCE_CALL_LONG_RUNNING));
	assert_false(has(instance_calls_find("GetJob"), INSTANCE_CALL_LONG_RUNNING));
	/* importing files mail for a user: their archive privilege */
	const struct instance_call_def *imp = instance_calls_find("StartImport");
	assert_true(has(imp, INSTANCE_CALL_FOR_USER));
	assert_string_equal(imp->privilege, "archive");
	assert_string_equal(instance_calls_find("ClientSetPassword")->password_arg, "oldPassword");
	assert_string_equal(instance_calls_find("ClientMfaBegin")->password_arg, "password");
	assert_true(has(instance_calls_find("ClientLogin"), INSTANCE_CALL_NO_SESSION));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sorted_unique_and_found),
		cmocka_unit_test(test_flags_consistent),
		cmocka_unit_test(test_frozen_refusals),
		cmocka_unit_test(test_long_running_and_rights),
		cmocka_unit_test(test_one_handler_per_call),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
