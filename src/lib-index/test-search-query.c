#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mem.h"
#include "search-query.h"

static void check(const char *query, const char *expected)
{
	struct search_query *q;
	const char *error = NULL;
	if (search_query_parse(query, &q, &error) < 0)
		fail_msg("%s: %s", query, error);
	char *d = search_query_describe(q);
	if (strcmp(d, expected) != 0)
		fail_msg("%s: got %s, expected %s", query, d, expected);
	mem_free(d);
	search_query_destroy(&q);
}

static void check_error(const char *query, const char *needle)
{
	struct search_query *q;
	const char *error = NULL;
	if (search_query_parse(query, &q, &error) == 0)
		fail_msg("%s: parsed", query);
	if (strstr(error, needle) == NULL)
		fail_msg("%s: error %s lacks %s", query, error, needle);
}

static void test_parse(void **state)
{
	check("", "(all)");
	check("*", "(all)");
	check("tlb", "(word any \"tlb\")");
	check("\"cache flush\"", "(phrase any \"cache flush\")");
	check("octe*", "(prefix any \"octe\")");
	check("te?t", "(wildcard any \"te?t\")");
	check("a b", "(and (word any \"a\") (word any \"b\"))");
	check("a and b or c", "(or (and (word any \"a\") (word any \"b\")) (word any \"c\"))");
	check("a AND (b OR c)", "(and (word any \"a\") (or (word any \"b\") (word any \"c\")))");
	check("kernel AND panic AND NOT subject:PATCH",
	      "(and (word any \"kernel\") (word any \"panic\") (not (word subject \"PATCH\")))");
	check("-x", "(not (word any \"x\"))");
	check("from:ralf@linux-mips.org", "(word from \"ralf@linux-mips.org\")");
	check("subject:\"a b\"", "(phrase subject \"a b\")");
	check("attachment:report*", "(prefix attachment \"report\")");
	check("folder:INBOX/Lists", "(folder \"INBOX/Lists\")");
	check("date:2018-01-01..2018-12-31", "(date 1514764800 1546300800)");
	check("date:2018", "(date 1514764800 1546300800)");
	check("date:2018-02", "(date 1517443200 1519862400)");
	check("date:>=2018", "(date 1514764800 9223372036854775807)");
	check("before:2018", "(date -9223372036854775808 1514764800)");
	check("after:2018", "(date 1546300800 9223372036854775807)");
	check("sent:2018-01-01", "(sent 1514764800 1514851200)");
	check("has:attachment", "(has-attachment)");
	check("size:>100k", "(size 102401 9223372036854775807)");
	check("size:<1m", "(size 0 1048575)");
	check("size:1k..2k", "(size 1024 2048)");
	check("http://x.org/a", "(word any \"http://x.org/a\")");
}

static void test_errors(void **state)
{
	check_error("\"open", "unterminated");
	check_error("(a", "')' expected");
	check_error("a)", "unexpected ')'");
	check_error("date:yesterday", "date:");
	check_error("size:huge", "size:");
	check_error("has:pets", "has:");
	check_error("a AND", "missing");
	check_error("NOT", "missing");
	char deep[300];
	memset(deep, '(', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	check_error(deep, "nested");
}

static size_t expand_two(const char *pattern, size_t max, char ***terms_r, void *context)
{
	char **terms = mem_alloc(2 * sizeof(char *));
	terms[0] = mem_strdup("test");
	terms[1] = mem_strdup("text");
	*terms_r = terms;
	return 2;
}

static void check_sql(const char *query, const char *where, size_t params, const char *first_param)
{
	/* the driving FTS expression counts as the first parameter here */
	struct search_query *q;
	const char *error;
	assert_int_equal(search_query_parse(query, &q, &error), 0);
	struct search_sql sql;
	assert_int_equal(search_query_compile(q, expand_two, NULL, &sql, &error), 0);
	if (strcmp(sql.where, where) != 0)
		fail_msg("%s: got %s", query, sql.where);
	assert_int_equal(sql.param_count + (sql.fts_match != NULL), params);
	const char *first = sql.fts_match != NULL ? sql.fts_match
			    : sql.param_count > 0 ? sql.params[0].text
						  : "";
	if (first_param != NULL && strcmp(first, first_param) != 0)
		fail_msg("%s: param %s", query, first);
	search_sql_free(&sql);
	search_query_destroy(&q);
}

/* The date range a whole query is ANDed with, for narrowing index scans. */
static void check_bounds(const char *query, bool bounded, int64_t lo, int64_t hi)
{
	struct search_query *q;
	const char *error;
	assert_int_equal(search_query_parse(query, &q, &error), 0);
	struct search_sql sql;
	assert_int_equal(search_query_compile(q, expand_two, NULL, &sql, &error), 0);
	if (sql.date_bounded != bounded || (bounded && (sql.date_lo != lo || sql.date_hi != hi)))
		fail_msg("%s: bounded %d [%lld, %lld)", query, sql.date_bounded,
			 (long long)sql.date_lo, (long long)sql.date_hi);
	search_sql_free(&sql);
	search_query_destroy(&q);
}

static void test_date_bounds(void **state)
{
	check_bounds("subject:patch AND date:2018", true, 1514764800, 1546300800);
	check_bounds("date:2018 kernel date:2018-06", true, 1527811200, 1530403200);
	check_bounds("date:2018", true, 1514764800, 1546300800);
	/* a day on the sender's calendar lies within a day of the UTC one */
	check_bounds("sent:2018", true, 1514764800 - 86400, 1546300800 + 86400);
	check_bounds("sent:>=2018", true, 1514764800 - 86400, INT64_MAX);
	/* under OR or NOT a date does not bound the whole query */
	check_bounds("kernel OR date:2018", false, 0, 0);
	check_bounds("kernel AND NOT date:2018", false, 0, 0);
	check_bounds("kernel", false, 0, 0);
}

static void test_compile(void **state)
{
	const char *in = "1";
	check_sql("tlb", in, 1, "\"tlb\"");
	check_sql("a \"b c\"", in, 1, "(\"a\") AND (\"b c\")");
	check_sql("a OR sub*", in, 1, "(\"a\") OR (\"sub\" *)");
	check_sql("kernel AND panic AND NOT subject:PATCH", in, 1,
		  "((\"kernel\") AND (\"panic\")) NOT (f_subject : \"PATCH\")");
	check_sql("from:ralf@linux-mips.org", in, 1, "f_from : \"ralflinuxmipsorg\"");
	check_sql("from:\"ralf@linux-mips.org\"", in, 1, "f_from : \"ralf@linux-mips.org\"");
	check_sql("te?t", in, 1, "(\"test\" OR \"text\")");
	check_sql("NOT x", "m.content_id NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)", 1,
		  "\"x\"");
	check_sql("subject:PATCH date:2018", "(m.date >= ? AND m.date < ?)", 3,
		  "(f_subject : \"PATCH\")");
	check_sql("has:attachment OR x",
		  "(c.has_attachment = 1) OR (m.content_id IN (SELECT rowid FROM fts WHERE fts "
		  "MATCH ?))",
		  1, "(\"x\")");
	check_sql("*", "1", 0, NULL);
	check_sql(
		"folder:a_b",
		"m.folder_id IN (SELECT id FROM folders WHERE path = ? OR path LIKE ? ESCAPE '\\')",
		2, "a_b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_compile),
		cmocka_unit_test(test_date_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
