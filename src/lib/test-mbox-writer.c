#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mbox-writer.h"
#include "str.h"

#include <string.h>

static void test_mbox_writer(void **state)
{
	struct str *out = str_create(0);
	const char *m1 = "Subject: a\n\nFrom here\n>From there\nnot From\n";
	mbox_writer_append(out, m1, strlen(m1), 1514887200);
	const char *m2 = "Subject: b\r\n\r\nno newline at the end";
	mbox_writer_append(out, m2, strlen(m2), 0);
	assert_string_equal(str_c(out), "From MAILER-DAEMON Tue Jan  2 10:00:00 2018\n"
					"Subject: a\n\n>From here\n>>From there\nnot From\n\n"
					"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"
					"Subject: b\r\n\r\nno newline at the end\n\n");
	str_destroy(&out);
}

static void test_mbox_writer_edges(void **state)
{
	struct str *out = str_create(0);
	mbox_writer_append(out, "", 0, 0);
	assert_string_equal(str_c(out), "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n\n\n");
	str_truncate(out, 0);
	mbox_writer_append(out, "From x", 6, 0); /* the first line too, without a newline */
	assert_string_equal(str_c(out) + strlen("From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"),
			    ">From x\n\n");
	str_destroy(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mbox_writer),
		cmocka_unit_test(test_mbox_writer_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
