#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "imap-date.h"
#include "imap-quote.h"
#include "mem.h"
#include "str.h"

static void check_string(const char *in, size_t len, const char *expected, size_t exp_len)
{
	struct str *s = str_create(64);
	imap_quote_append_string(s, in, len);
	assert_int_equal(str_len(s), exp_len);
	assert_memory_equal(str_c(s), expected, exp_len);
	str_destroy(&s);
}

#define CHECK_STRING(in, expected) check_string(in, sizeof(in) - 1, expected, sizeof(expected) - 1)

static void test_quote_strings(void **state)
{
	CHECK_STRING("", "\"\"");
	CHECK_STRING("hello world", "\"hello world\"");
	CHECK_STRING("say \"hi\" \\o/", "\"say \\\"hi\\\" \\\\o/\"");
	CHECK_STRING("two\r\nlines", "{10}\r\ntwo\r\nlines");
	CHECK_STRING("nul\0byte", "{8}\r\nnul\0byte");
	CHECK_STRING("caf\xc3\xa9", "{5}\r\ncaf\xc3\xa9");
	CHECK_STRING("lf\n", "{3}\r\nlf\n");

	char *long_text = mem_alloc(IMAP_QUOTE_MAX_QUOTED + 2);
	memset(long_text, 'x', IMAP_QUOTE_MAX_QUOTED + 1);
	long_text[IMAP_QUOTE_MAX_QUOTED + 1] = '\0';
	struct str *s = str_create(64);
	imap_quote_append_string(s, long_text, IMAP_QUOTE_MAX_QUOTED);
	assert_int_equal(str_c(s)[0], '"');
	str_truncate(s, 0);
	imap_quote_append_string(s, long_text, IMAP_QUOTE_MAX_QUOTED + 1);
	assert_memory_equal(str_c(s), "{1025}\r\nxxx", 11);
	mem_free(long_text);
	str_destroy(&s);
}

static void test_quote_astring_nstring(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"INBOX", "INBOX"},   {"Archive/2024", "Archive/2024"},
		{"", "\"\""},         {"NIL", "\"NIL\""},
		{"nil", "\"nil\""},   {"two words", "\"two words\""},
		{"a*", "\"a*\""},     {"a%", "\"a%\""},
		{"a]", "\"a]\""},     {"(x)", "\"(x)\""},
		{"{5}", "\"{5}\""},   {"back\\slash", "\"back\\\\slash\""},
		{"q\"", "\"q\\\"\""}, {"caf\xc3\xa9", "{5}\r\ncaf\xc3\xa9"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct str *s = str_create(16);
		imap_quote_append_astring(s, cases[i].in);
		assert_string_equal(str_c(s), cases[i].out);
		str_destroy(&s);
	}
	struct str *s = str_create(16);
	imap_quote_append_nstring(s, NULL);
	str_append_c(s, ' ');
	imap_quote_append_nstring(s, "NIL");
	assert_string_equal(str_c(s), "NIL \"NIL\"");
	str_destroy(&s);
	assert_true(imap_quote_is_atom("\\Seen") == false);
	assert_true(imap_quote_is_atom("$Forwarded"));
}

static void test_date_parse_day(void **state)
{
	int64_t day;
	const char *error;
	assert_int_equal(imap_date_parse_day("1-Jan-1970", &day, &error), 0);
	assert_int_equal(day, 0);
	assert_int_equal(imap_date_parse_day("01-feb-2024", &day, &error), 0);
	assert_int_equal(day, 19754);
	assert_int_equal(imap_date_parse_day("29-Feb-2024", &day, &error), 0);
	assert_int_equal(imap_date_parse_day("31-Dec-1969", &day, &error), 0);
	assert_int_equal(day, -1);
	assert_int_equal(imap_date_parse_day("29-Feb-2000", &day, &error), 0);
	static const char *const bad[] = {"29-Feb-2023",  "29-Feb-1900", "32-Jan-2024",
					  "0-Jan-2024",   "1-Foo-2024",  "1-Jan-24",
					  "1 Jan 2024",   "1-Jan-2024 ", "",
					  "123-Jan-2024", "1-Jan-20245", "31-Apr-2024"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (imap_date_parse_day(bad[i], &day, &error) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(strstr(error, "expected d-Mon-yyyy"));
	}
}

static void test_date_time(void **state)
{
	struct str *s = str_create(32);
	imap_date_append_datetime(s, 1795353386, 0);
	assert_string_equal(str_c(s), "\"22-Nov-2026 13:16:26 +0000\"");
	str_truncate(s, 0);
	imap_date_append_datetime(s, 0, -330);
	assert_string_equal(str_c(s), "\"31-Dec-1969 18:30:00 -0530\"");
	str_truncate(s, 0);
	imap_date_append_datetime(s, 1706745600, 60);
	assert_string_equal(str_c(s), "\" 1-Feb-2024 01:00:00 +0100\"");

	time_t t;
	int tz;
	const char *error;
	assert_int_equal(imap_date_parse_datetime("22-Nov-2026 13:16:26 +0000", &t, &tz, &error),
			 0);
	assert_int_equal(t, 1795353386);
	assert_int_equal(tz, 0);
	assert_int_equal(imap_date_parse_datetime(" 1-Feb-2024 01:00:00 +0100", &t, &tz, &error),
			 0);
	assert_int_equal(t, 1706745600);
	assert_int_equal(tz, 60);
	assert_int_equal(imap_date_parse_datetime("31-Dec-1969 18:30:00 -0530", &t, &tz, &error),
			 0);
	assert_int_equal(t, 0);
	assert_int_equal(tz, -330);
	assert_int_equal(imap_date_parse_datetime("22-Nov-2026 24:00:00 +0000", &t, &tz, &error),
			 -1);
	assert_non_null(strstr(error, "dd-Mon-yyyy hh:mm:ss +hhmm"));
	assert_int_equal(imap_date_parse_datetime("22-Nov-2026 13:16:26", &t, &tz, &error), -1);
	assert_int_equal(imap_date_parse_datetime("22-Nov-2026 13:16:26 +0000x", &t, &tz, &error),
			 -1);
	str_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_strings),
		cmocka_unit_test(test_quote_astring_nstring),
		cmocka_unit_test(test_date_parse_day),
		cmocka_unit_test(test_date_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
