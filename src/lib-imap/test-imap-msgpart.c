#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "imap-msgpart.h"
#include "mem.h"
#include "str.h"

static const char simple[] = "From: a@example.com\r\n"
			     "To: b@example.com,\r\n c@example.com\r\n"
			     "Subject: hi\r\n"
			     "\r\n"
			     "body line\r\n";

static const char nested[] = "From: a@example.com\r\n"
			     "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
			     "\r\n"
			     "preamble\r\n"
			     "--XX\r\n"
			     "Content-Type: text/plain\r\n"
			     "\r\n"
			     "part one\r\n"
			     "--XX\r\n"
			     "Content-Type: message/rfc822\r\n"
			     "\r\n"
			     "Subject: inner\r\n"
			     "Content-Type: multipart/alternative; boundary=YY\r\n"
			     "\r\n"
			     "--YY\r\n"
			     "\r\n"
			     "inner plain\r\n"
			     "--YY\r\n"
			     "Content-Type: text/html\r\n"
			     "\r\n"
			     "<p>inner html</p>\r\n"
			     "--YY--\r\n"
			     "--XX--\r\n"
			     "epilogue\r\n";

static char *cut(const char *section, const char *msg)
{
	struct imap_msgpart *part;
	const char *error;
	if (imap_msgpart_parse(section, &part, &error) < 0)
		fail_msg("%s: %s", section, error);
	struct str *out = str_create(64);
	imap_msgpart_extract(part, (const unsigned char *)msg, strlen(msg), out);
	imap_msgpart_destroy(&part);
	return str_steal(&out);
}

/* imap_msgpart_span() gives the same bytes as imap_msgpart_extract(), or
 * says it cannot (HEADER.FIELDS and HEADER.FIELDS.NOT only). */
static void check_span(const char *section, const char *msg, const char *expected)
{
	struct imap_msgpart *part;
	const char *error;
	assert_int_equal(imap_msgpart_parse(section, &part, &error), 0);
	size_t off, len;
	bool one_piece =
		imap_msgpart_span(part, (const unsigned char *)msg, strlen(msg), &off, &len);
	imap_msgpart_destroy(&part);
	assert_true(one_piece == (strstr(section, "FIELDS") == NULL));
	if (!one_piece)
		return;
	assert_true(off + len <= strlen(msg));
	if (len != strlen(expected) || memcmp(msg + off, expected, len) != 0)
		fail_msg("[%s]: the span (%zu, %zu) is not \"%s\"", section, off, len, expected);
}

static void check(const char *section, const char *msg, const char *expected)
{
	char *got = cut(section, msg);
	if (strcmp(got, expected) != 0)
		fail_msg("[%s]: got \"%s\", expected \"%s\"", section, got, expected);
	mem_free(got);
	check_span(section, msg, expected);
}

static void test_msgpart_simple(void **state)
{
	check("", simple, simple);
	check("TEXT", simple, "body line\r\n");
	check("1", simple, "body line\r\n");
	check("HEADER", simple,
	      "From: a@example.com\r\nTo: b@example.com,\r\n c@example.com\r\nSubject: hi\r\n\r\n");
	check("HEADER.FIELDS (to SUBJECT)", simple,
	      "To: b@example.com,\r\n c@example.com\r\nSubject: hi\r\n\r\n");
	check("HEADER.FIELDS.NOT (To Subject)", simple, "From: a@example.com\r\n\r\n");
	check("HEADER.FIELDS (X-None)", simple, "\r\n");
	check("2", simple, "");
}

static void test_msgpart_nested(void **state)
{
	check("1", nested, "part one");
	check("1.MIME", nested, "Content-Type: text/plain\r\n\r\n");
	check("2.HEADER", nested,
	      "Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n");
	check("2.1", nested, "inner plain");
	check("2.2", nested, "<p>inner html</p>");
	check("2.2.MIME", nested, "Content-Type: text/html\r\n\r\n");
	check("2.3", nested, "");
	check("3", nested, "");
	check("HEADER.FIELDS (FROM)", nested, "From: a@example.com\r\n\r\n");
}

static void test_msgpart_sections(void **state)
{
	static const char *const bad[] = {
		"0",    "1.",        "FOO", "HEADER.FIELDS", "HEADER.FIELDS ()", "HEADER.FIELDS (A",
		"MIME", "1.2.TEXTX", NULL};
	for (const char *const *s = bad; *s != NULL; s++) {
		struct imap_msgpart *part;
		const char *error;
		if (imap_msgpart_parse(*s, &part, &error) == 0)
			fail_msg("accepted [%s]", *s);
		assert_null(part);
	}
	struct imap_msgpart *part;
	const char *error;
	assert_int_equal(imap_msgpart_parse("1.2.header.fields (from \"x-a\")", &part, &error), 0);
	assert_string_equal(imap_msgpart_section(part), "1.2.HEADER.FIELDS (FROM X-A)");
	assert_false(imap_msgpart_header_only(part));
	imap_msgpart_destroy(&part);
	assert_int_equal(imap_msgpart_parse("header", &part, &error), 0);
	assert_true(imap_msgpart_header_only(part));
	imap_msgpart_destroy(&part);
}

static void test_msgpart_bare_lf_and_no_body(void **state)
{
	check("TEXT", "Subject: x\n\nbody\n", "body\n");
	check("HEADER", "Subject: x\n\nbody\n", "Subject: x\n\n");
	check("TEXT", "Subject: x\r\n", "");
	check("HEADER", "Subject: x\r\n", "Subject: x\r\n");
}

static void test_msgpart_canonical(void **state)
{
	static const unsigned char raw[] = "A: 1\nB: 2\r\n\nx\0y\n";
	size_t len = sizeof(raw) - 1;
	struct str *out = str_create(64);
	assert_true(imap_msgpart_canonical(raw, len, out));
	assert_int_equal(str_len(out), 19);
	assert_memory_equal(str_c(out), "A: 1\r\nB: 2\r\n\r\nx\x80y\r\n", 19);
	assert_int_equal(imap_msgpart_canonical_size(raw, len), 19);
	str_truncate(out, 0);
	/* already canonical: nothing to do */
	assert_false(imap_msgpart_canonical((const unsigned char *)"A: 1\r\n\r\nb", 9, out));
	assert_int_equal(str_len(out), 0);
	str_destroy(&out);
}

/* The byte-at-a-time definition the fast paths must agree with. */
static size_t canonical_reference(const unsigned char *msg, size_t len, unsigned char *dest)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			dest[n++] = '\r';
		dest[n++] = msg[i] == '\0' ? 0x80 : msg[i];
	}
	return n;
}

static void test_msgpart_canonical_copy(void **state)
{
	/* every mix of the bytes that matter, at every length up to 7, with
	 * and without NUL (which takes the slow path) */
	static const unsigned char alphabet[] = {'\n', '\r', 'a', '\0'};
	unsigned char msg[7], want[14], got[15];
	for (size_t len = 0; len <= sizeof(msg); len++) {
		size_t combos = 1;
		for (size_t i = 0; i < len; i++)
			combos *= sizeof(alphabet);
		for (size_t c = 0; c < combos; c++) {
			size_t v = c;
			for (size_t i = 0; i < len; i++, v /= sizeof(alphabet))
				msg[i] = alphabet[v % sizeof(alphabet)];
			size_t n = canonical_reference(msg, len, want);
			assert_int_equal(imap_msgpart_canonical_size(msg, len), n);
			memset(got, 0xee, sizeof(got));
			imap_msgpart_canonical_copy(msg, len, got);
			assert_memory_equal(got, want, n);
			assert_int_equal(got[n], 0xee); /* nothing written past the size */
		}
	}
}

static void test_msgpart_obsolete_field_name(void **state)
{
	/* RFC 5322 4.5.3: blanks may stand between a field name and its colon */
	static const char raw[] = "Subject     : hi\r\nFrom : a\r\nTo: b\r\n\r\nbody";
	struct imap_msgpart *part;
	const char *error;
	assert_int_equal(imap_msgpart_parse("HEADER.FIELDS (SUBJECT FROM)", &part, &error), 0);
	struct str *out = str_create(64);
	imap_msgpart_extract(part, (const unsigned char *)raw, strlen(raw), out);
	assert_string_equal(str_c(out), "Subject     : hi\r\nFrom : a\r\n\r\n");
	str_destroy(&out);
	imap_msgpart_destroy(&part);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msgpart_simple),
		cmocka_unit_test(test_msgpart_nested),
		cmocka_unit_test(test_msgpart_sections),
		cmocka_unit_test(test_msgpart_bare_lf_and_no_body),
		cmocka_unit_test(test_msgpart_canonical),
		cmocka_unit_test(test_msgpart_canonical_copy),
		cmocka_unit_test(test_msgpart_obsolete_field_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
