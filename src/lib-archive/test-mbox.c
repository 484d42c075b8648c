#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mbox.h"
#include "mem.h"
#include "str.h"

static void expect(struct mbox_reader *r, const char *text)
{
	struct mbox_message msg;
	const char *error;
	assert_int_equal(mbox_reader_next(r, &msg, &error), 1);
	if (msg.len != strlen(text) || memcmp(msg.data, text, msg.len) != 0)
		fail_msg("got [%.*s] expected [%s]", (int)msg.len, msg.data, text);
}

static void expect_end(struct mbox_reader *r)
{
	struct mbox_message msg;
	const char *error;
	assert_int_equal(mbox_reader_next(r, &msg, &error), 0);
}

static void test_mboxrd(void **state)
{
	const char *in = "junk\nFrom a@b Tue Jan  2 10:00:00 2018\nSubject: 1\n\n>From here\n"
			 ">>From there\n>not from\n\nFrom b@c Wed Jan  3 10:00:00 2018\n"
			 "Subject: 2\n\nlast\n";
	struct mbox_reader *r = mbox_reader_create_buffer(in, strlen(in));
	struct mbox_message msg;
	const char *error;
	assert_int_equal(mbox_reader_next(r, &msg, &error), 1);
	assert_int_equal(msg.from_date, 1514887200);
	assert_int_equal(msg.len, strlen("Subject: 1\n\nFrom here\n>From there\n>not from\n"));
	assert_memory_equal(msg.data, "Subject: 1\n\nFrom here\n>From there\n>not from\n", msg.len);
	expect(r, "Subject: 2\n\nlast\n");
	expect_end(r);
	assert_int_equal(mbox_reader_format(r), MBOX_FORMAT_MBOXRD);
	assert_int_equal(mbox_reader_skipped(r), 5);
	mbox_reader_destroy(&r);
}

static void test_mboxcl2(void **state)
{
	/* The body contains an unescaped From line, which only the length tells. */
	const char *in = "From a@b Tue Jan  2 10:00:00 2018\nContent-Length: 22\n\n"
			 "body\nFrom inside\nmore\n\nFrom b@c Tue Jan  2 10:00:00 2018\n"
			 "Content-Length: 3\n\nab\n\n";
	struct mbox_reader *r = mbox_reader_create_buffer(in, strlen(in));
	expect(r, "Content-Length: 22\n\nbody\nFrom inside\nmore\n");
	expect(r, "Content-Length: 3\n\nab\n");
	expect_end(r);
	assert_int_equal(mbox_reader_format(r), MBOX_FORMAT_MBOXCL2);
	mbox_reader_destroy(&r);
}

static void test_wrong_length_falls_back(void **state)
{
	const char *in = "From a\nContent-Length: 999\n\nx\n\nFrom b\nSubject: y\n\nz\n";
	struct mbox_reader *r = mbox_reader_create_buffer(in, strlen(in));
	expect(r, "Content-Length: 999\n\nx\n");
	expect(r, "Subject: y\n\nz\n");
	expect_end(r);
	mbox_reader_destroy(&r);
}

static void test_fd_large(void **state)
{
	/* Many messages through a pipe, crossing read-buffer boundaries. */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	struct str *one = str_create(8192);
	str_append(one, "Subject: big\n\n");
	for (int i = 0; i < 200; i++)
		str_append(one, "0123456789012345678901234567890123456789\n");
	for (int i = 0; i < 300; i++)
		fprintf(tmp, "From x Tue Jan  2 10:00:00 2018\n%s\n", str_c(one));
	fflush(tmp);
	rewind(tmp);
	struct mbox_reader *r = mbox_reader_create_fd(fileno(tmp));
	struct mbox_message msg;
	const char *error;
	int n = 0;
	while (mbox_reader_next(r, &msg, &error) == 1) {
		assert_int_equal(msg.len, str_len(one));
		assert_memory_equal(msg.data, str_c(one), msg.len);
		n++;
	}
	assert_int_equal(n, 300);
	mbox_reader_destroy(&r);
	str_destroy(&one);
	fclose(tmp);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mboxrd),
		cmocka_unit_test(test_mboxcl2),
		cmocka_unit_test(test_wrong_length_falls_back),
		cmocka_unit_test(test_fd_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
