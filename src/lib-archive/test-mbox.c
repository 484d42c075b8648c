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
	const char *in = "From a\nContent-Length: 999\n\nx\n\n"
			 "From b Tue Jan  2 10:00:00 2018\nSubject: y\n\nz\n";
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

static void test_mboxo_body_from_lines(void **state)
{
	/* Mailman's mboxo archives do not escape body lines that begin with
	 * "From ": none of these is an envelope, so none splits a message and
	 * not a byte is lost. */
	const char *first = "From: a@b.example\nSubject: one\n\nHello\n"
			    "From here on we go.\n"
			    "From me Tue Jan  2 10:00:00 2018 to you\n"
			    "From x@y Tue Jan  2 10:00:00 2018\n"
			    "\n"
			    "From x@y Tue Jan  2 10:00:00 2018\n"
			    "not a header\n"
			    "From y at example.org  Tuesday\n";
	const char *second = "From: c@d.example\nSubject: two\n\nbye\n";
	struct str *in = str_create(1024);
	str_printfa(in, "From a at b.example  Tue Jan  2 10:00:00 2018\n%s\n", first);
	str_printfa(in, "From c at d.example  Wed Jan  3 11:00:00 2018\n%s", second);
	struct mbox_reader *r = mbox_reader_create_buffer(str_c(in), str_len(in));
	expect(r, first);
	expect(r, second);
	expect_end(r);
	assert_int_equal(mbox_reader_skipped(r), 0);
	mbox_reader_destroy(&r);
	str_destroy(&in);
}

static void test_envelope_variants(void **state)
{
	/* time zone before the year, tabs, CRLF line ends, Thunderbird's "-" */
	const char *in = "From - Mon Jan 01 00:00:00 2018\r\nSubject: 1\r\n\r\na\r\n"
			 "From a@b\tTue Jan  2 10:00 +0100 2018\r\nSubject: 2\r\n\r\nb\r\n"
			 "From MAILER-DAEMON Fri Feb 29 23:59:59 2019\nX-Y: 3\n\nc\n"
			 "From - \nX-Y: 4\n\nd\nFrom 1844347792267117879@xxx\nX-Y: 5\n\ne\n"
			 "From here\nX-Y: 6\n";
	struct mbox_reader *r = mbox_reader_create_buffer(in, strlen(in));
	expect(r, "Subject: 1\r\n\r\na\r\n");
	expect(r, "Subject: 2\r\n\r\nb\r\n");
	expect(r, "X-Y: 3\n\nc\n");
	expect(r, "X-Y: 4\n\nd\n");
	expect(r, "X-Y: 5\n\ne\nFrom here\nX-Y: 6\n");
	expect_end(r);
	mbox_reader_destroy(&r);
}

static void test_refused_too_large(void **state)
{
	/* A message over the maximum is refused with its size, without being
	 * held in memory, and the messages after it are read as usual. */
	struct str *in = str_create(4 * 1024 * 1024);
	str_append(in, "From a@b Tue Jan  2 10:00:00 2018\nSubject: 1\n\nsmall\n\n");
	str_append(in, "From a@b Tue Jan  2 10:00:00 2018\nSubject: 2\n\n");
	size_t big_body = 3 * 1024 * 1024 + 17;
	for (size_t i = 0; i < big_body; i++)
		str_append_c(in, i % 100 == 99 ? '\n' : 'x');
	str_append(in, "\n\nFrom a@b Tue Jan  2 10:00:00 2018\nSubject: 3\n\nafter\n");
	struct mbox_reader *r = mbox_reader_create_buffer(str_c(in), str_len(in));
	mbox_reader_set_max(r, 1024 * 1024);
	struct mbox_message msg;
	const char *error;
	expect(r, "Subject: 1\n\nsmall\n");
	assert_int_equal(mbox_reader_next(r, &msg, &error), 1);
	assert_true(msg.refused);
	assert_null(msg.data);
	assert_int_equal(msg.index, 2);
	assert_int_equal(msg.len, strlen("Subject: 2\n\n") + big_body + 1);
	assert_int_equal(mbox_reader_next(r, &msg, &error), 1);
	assert_false(msg.refused);
	assert_int_equal(msg.index, 3);
	assert_memory_equal(msg.data, "Subject: 3\n\nafter\n", msg.len);
	unsigned char *taken = mbox_reader_take(r);
	assert_ptr_equal(taken, msg.data);
	mem_free(taken);
	expect_end(r);
	mbox_reader_destroy(&r);
	str_destroy(&in);
}

static void test_skipped_junk(void **state)
{
	/* Bytes before the first envelope are counted, including a line longer
	 * than the read buffer. */
	struct str *in = str_create(3 * 1024 * 1024);
	for (size_t i = 0; i < 3 * 1024 * 1024; i++)
		str_append_c(in, 'j');
	str_append(in, "\nFrom nobody\nFrom a@b Tue Jan  2 10:00:00 2018\nSubject: 1\n\nx\n");
	size_t junk = 3 * 1024 * 1024 + strlen("\nFrom nobody\n");
	int fd = fileno(tmpfile());
	assert_true(fd >= 0);
	assert_int_equal(write(fd, str_c(in), str_len(in)), (ssize_t)str_len(in));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	struct mbox_reader *r = mbox_reader_create_fd(fd);
	expect(r, "Subject: 1\n\nx\n");
	expect_end(r);
	assert_int_equal(mbox_reader_skipped(r), junk);
	mbox_reader_destroy(&r);
	str_destroy(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mboxrd),
		cmocka_unit_test(test_mboxcl2),
		cmocka_unit_test(test_wrong_length_falls_back),
		cmocka_unit_test(test_fd_large),
		cmocka_unit_test(test_mboxo_body_from_lines),
		cmocka_unit_test(test_envelope_variants),
		cmocka_unit_test(test_refused_too_large),
		cmocka_unit_test(test_skipped_junk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
