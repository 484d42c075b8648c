#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "imap-seqset.h"
#include "mem.h"
#include "str.h"

/* The ranges as text: "1:1,3:5". */
static char *ranges_str(const char *text, uint32_t star)
{
	struct imap_seqset *set;
	const char *error;
	if (imap_seqset_parse(text, star, &set, &error) < 0)
		fail_msg("%s: %s", text, error);
	struct str *out = str_create(64);
	const struct imap_seqset_range *r = imap_seqset_ranges(set);
	for (unsigned int i = 0; i < imap_seqset_range_count(set); i++)
		str_printfa(out, "%s%u:%u", i > 0 ? "," : "", r[i].first, r[i].last);
	imap_seqset_destroy(&set);
	assert_null(set);
	return str_steal(&out);
}

static void check(const char *text, uint32_t star, const char *expected)
{
	char *got = ranges_str(text, star);
	if (strcmp(got, expected) != 0)
		fail_msg("%s (star %u): got %s, expected %s", text, star, got, expected);
	mem_free(got);
}

static void test_seqset_normalizes(void **state)
{
	check("1", 10, "1:1");
	check("1,3:5,7:*,*", 10, "1:1,3:5,7:10");
	check("2:1", 10, "1:2");
	check("*:4", 10, "4:10");
	check("12:*", 10, "10:12"); /* RFC 3501 6.4.8: "*" may be below n */
	check("5,4,3,2,1", 10, "1:5");
	check("1:3,2:6,8,9,11:12,10", 100, "1:6,8:12");
	check("4294967295", 1, "4294967295:4294967295");
	check("1:4294967295,4294967295", 1, "1:4294967295");
	check("*", 0, "");
	check("1:*", 0, "1:1");
	check("*", 7, "7:7");
}

static void check_invalid(const char *text, const char *expected_part)
{
	struct imap_seqset *set = (struct imap_seqset *)1;
	const char *error;
	assert_int_equal(imap_seqset_parse(text, 10, &set, &error), -1);
	assert_null(set);
	if (strstr(error, expected_part) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", text, error, expected_part);
	assert_false(imap_seqset_is_valid(text));
}

static void test_seqset_invalid(void **state)
{
	check_invalid("0", "numbers start at 1");
	check_invalid("1:0", "numbers start at 1");
	check_invalid("1:", "empty range at offset 2");
	check_invalid("a", "invalid character at offset 0");
	check_invalid("1,,2", "empty range at offset 2");
	check_invalid("", "empty range at offset 0");
	check_invalid(",1", "empty range");
	check_invalid("1,", "empty range");
	check_invalid("1:2:3", "invalid character at offset 3");
	check_invalid("4294967296", "number too large");
	check_invalid("99999999999999999999999", "number too large");
	check_invalid("1 2", "invalid character");
	check_invalid("**", "invalid character");
	check_invalid("-1", "invalid character");
	check_invalid("$", "invalid character");
	assert_true(imap_seqset_is_valid("1:*"));
}

static void test_seqset_limits(void **state)
{
	/* 100,000 ranges as written are fine, even when kilobytes long. */
	struct str *s = str_create(1024 * 1024);
	for (unsigned int i = 0; i < IMAP_SEQSET_MAX_RANGES; i++)
		str_printfa(s, "%s%u", i > 0 ? "," : "", 2 * i + 1);
	struct imap_seqset *set;
	const char *error;
	assert_int_equal(imap_seqset_parse(str_c(s), 1, &set, &error), 0);
	assert_int_equal(imap_seqset_range_count(set), IMAP_SEQSET_MAX_RANGES);
	assert_true(imap_seqset_contains(set, 199999));
	assert_false(imap_seqset_contains(set, 199998));
	imap_seqset_destroy(&set);
	str_append(s, ",7");
	assert_int_equal(imap_seqset_parse(str_c(s), 1, &set, &error), -1);
	assert_non_null(strstr(error, "more than 100000 ranges"));
	assert_true(strlen(error) < 300); /* the text is quoted shortened */
	str_destroy(&s);
}

static void test_seqset_contains_and_iterates(void **state)
{
	struct imap_seqset *set;
	const char *error;
	assert_int_equal(imap_seqset_parse("9,1:3,5,7:*", 8, &set, &error), 0);
	static const uint32_t in[] = {1, 2, 3, 5, 7, 8, 9}, out[] = {0, 4, 6, 10, UINT32_MAX};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		assert_true(imap_seqset_contains(set, in[i]));
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		assert_false(imap_seqset_contains(set, out[i]));
	assert_int_equal(imap_seqset_count(set), 7);

	struct imap_seqset_iter iter;
	uint32_t n;
	size_t i = 0;
	imap_seqset_iter_init(&iter, set);
	while (imap_seqset_iter_next(&iter, &n))
		assert_int_equal(n, in[i++]);
	assert_int_equal(i, 7);
	assert_false(imap_seqset_iter_next(&iter, &n));
	imap_seqset_destroy(&set);

	/* The top of the range ends the iteration without wrapping. */
	assert_int_equal(imap_seqset_parse("4294967294:*", UINT32_MAX, &set, &error), 0);
	imap_seqset_iter_init(&iter, set);
	assert_true(imap_seqset_iter_next(&iter, &n));
	assert_int_equal(n, 4294967294u);
	assert_true(imap_seqset_iter_next(&iter, &n));
	assert_int_equal(n, 4294967295u);
	assert_false(imap_seqset_iter_next(&iter, &n));
	imap_seqset_destroy(&set);

	/* An empty set (star 0) iterates nothing. */
	assert_int_equal(imap_seqset_parse("*", 0, &set, &error), 0);
	imap_seqset_iter_init(&iter, set);
	assert_false(imap_seqset_iter_next(&iter, &n));
	assert_false(imap_seqset_contains(set, 1));
	assert_int_equal(imap_seqset_count(set), 0);
	imap_seqset_destroy(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seqset_normalizes),
		cmocka_unit_test(test_seqset_invalid),
		cmocka_unit_test(test_seqset_limits),
		cmocka_unit_test(test_seqset_contains_and_iterates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
