#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "mime-write.h"
#include "mime.h"

static void check(char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("got '%s', want '%s'", got, want);
	mem_free(got);
}

static void no_bare_lf(char *s)
{
	/* folds are CRLF + white space, nothing else breaks a line */
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\n')
			assert_true(p > s && p[-1] == '\r' && (p[1] == ' ' || p[1] == '\t'));
		assert_true((unsigned char)*p < 0x80);
	}
	mem_free(s);
}

static void test_text(void **state)
{
	(void)state;
	check(mime_write_text("Release 9.5.2"), "Release 9.5.2");
	char *s = mime_write_text("Caf\xc3\xa9 au lait");
	/* GMime picks the smallest charset that holds the text */
	assert_true(strncmp(s, "=?", 2) == 0 && strstr(s, "?= au lait") != NULL);
	no_bare_lf(s);
	/* a long subject is folded with CRLF */
	char longer[600];
	memset(longer, 'a', sizeof(longer) - 1);
	for (size_t i = 10; i < sizeof(longer) - 1; i += 11)
		longer[i] = ' ';
	longer[sizeof(longer) - 1] = '\0';
	no_bare_lf(mime_write_text(longer));
}

static void test_mailbox(void **state)
{
	(void)state;
	check(mime_write_mailbox("RCS Support", "support@example.com"),
	      "RCS Support <support@example.com>");
	check(mime_write_mailbox(NULL, "a@example.com"), "a@example.com");
	check(mime_write_mailbox("", "a@example.com"), "a@example.com");
	check(mime_write_mailbox("Hollister, Joshua A.", "j@example.gov"),
	      "\"Hollister, Joshua A.\" <j@example.gov>");
	char *s = mime_write_mailbox("Tom\xc3\xa1\xc5\xa1 Hlavsa", "t@example.cz");
	assert_true(strncmp(s, "=?", 2) == 0);
	assert_non_null(strstr(s, "<t@example.cz>"));
	no_bare_lf(s);
}

static void test_part_fields(void **state)
{
	(void)state;
	check(mime_write_content_type("text/html", "utf-8", NULL), "text/html; charset=utf-8");
	check(mime_write_content_type("application/pdf", NULL, "report.pdf"),
	      "application/pdf; name=report.pdf");
	check(mime_write_disposition("attachment", "support@example.it.asc"),
	      "attachment; filename=\"support@example.it.asc\"");
	char *s = mime_write_disposition("attachment", "B\xc3\xbcro plan.pdf");
	/* RFC 2231: filename*=CHARSET''B%xxro%20plan.pdf */
	assert_true(strncmp(s, "attachment; filename*=", 22) == 0);
	assert_non_null(strstr(s, "''B%"));
	assert_non_null(strstr(s, "ro%20plan.pdf"));
	no_bare_lf(s);
}

static void test_date(void **state)
{
	(void)state;
	check(mime_write_date(1425658753), "Fri, 06 Mar 2015 16:19:13 +0000");
	check(mime_write_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
}

int main(void)
{
	mime_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_part_fields),
		cmocka_unit_test(test_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
