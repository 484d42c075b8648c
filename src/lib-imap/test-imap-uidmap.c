#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-uidmap.h"

static void test_uidmap_runs(void **state)
{
	struct imap_uidmap *map = imap_uidmap_create();
	const char *error;
	assert_int_equal(imap_uidmap_append_set(map, "3:5,9,20:21", &error), 0);
	assert_true(imap_uidmap_append(map, 22));  /* extends the last run */
	assert_false(imap_uidmap_append(map, 22)); /* not above the highest */
	assert_int_equal(imap_uidmap_count(map), 7);
	assert_int_equal(imap_uidmap_max_uid(map), 22);
	static const uint32_t uids[] = {3, 4, 5, 9, 20, 21, 22};
	for (uint32_t seq = 1; seq <= 7; seq++) {
		assert_int_equal(imap_uidmap_uid(map, seq), uids[seq - 1]);
		assert_int_equal(imap_uidmap_seq(map, uids[seq - 1]), seq);
	}
	assert_int_equal(imap_uidmap_uid(map, 0), 0);
	assert_int_equal(imap_uidmap_uid(map, 8), 0);
	assert_int_equal(imap_uidmap_seq(map, 6), 0);
	assert_int_equal(imap_uidmap_seq(map, 1), 0);
	assert_int_equal(imap_uidmap_seq(map, 23), 0);
	assert_int_equal(imap_uidmap_seq_at_or_after(map, 1), 1);
	assert_int_equal(imap_uidmap_seq_at_or_after(map, 6), 4);
	assert_int_equal(imap_uidmap_seq_at_or_after(map, 10), 5);
	assert_int_equal(imap_uidmap_seq_at_or_after(map, 23), 8);
	imap_uidmap_destroy(&map);
	assert_null(map);
}

static void test_uidmap_refuses_bad_sets(void **state)
{
	static const char *const bad[] = {"0", "5:3",        "1,,2",  "1,",
					  "a", "4294967296", "1:2,2", NULL};
	for (const char *const *s = bad; *s != NULL; s++) {
		struct imap_uidmap *map = imap_uidmap_create();
		const char *error = NULL;
		if (imap_uidmap_append_set(map, *s, &error) != -1)
			fail_msg("accepted %s", *s);
		assert_non_null(error);
		imap_uidmap_destroy(&map);
	}
	struct imap_uidmap *map = imap_uidmap_create();
	const char *error;
	assert_int_equal(imap_uidmap_append_set(map, "", &error), 0);
	assert_int_equal(imap_uidmap_count(map), 0);
	assert_int_equal(imap_uidmap_seq_at_or_after(map, 5), 1);
	imap_uidmap_destroy(&map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uidmap_runs),
		cmocka_unit_test(test_uidmap_refuses_bad_sets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
