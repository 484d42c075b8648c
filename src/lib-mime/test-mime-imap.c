/* mime-imap: ENVELOPE, BODYSTRUCTURE, BODY and RFC822.SIZE of messages that
 * clients got wrong answers for (issue 10, section 2); the corpus-wide
 * comparison with Dovecot is tests/integration/test_imap_dovecot.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mem.h"
#include "mime.h"
#include "str.h"

static struct mime_info *parse(const char *raw)
{
	struct mime_info *info = mime_parse(raw, strlen(raw), MIME_LARGE_PART_MIN);
	if (getenv("TEST_MIME_IMAP_SHOW") != NULL)
		fprintf(stderr, "%s\n%s\n", info->envelope, info->bodystructure);
	/* what ingest stores and what is derived again for old records agree */
	struct mime_info *again = mime_parse_imap(raw, strlen(raw));
	assert_string_equal(info->envelope, again->envelope);
	assert_string_equal(info->bodystructure, again->bodystructure);
	assert_string_equal(info->body, again->body);
	assert_int_equal(info->imap_size, again->imap_size);
	mime_info_destroy(&again);
	return info;
}

static void test_encapsulated_message(void **state)
{
	const char *raw = "From: a@example.org\n"
			  "Subject: outer\n"
			  "Content-Type: multipart/mixed; boundary=B\n\n"
			  "--B\n"
			  "Content-Type: text/plain\n\n"
			  "hi\n"
			  "--B\n"
			  "Content-Type: message/rfc822; name=\"fwd.eml\"\n"
			  "Content-Description: the forwarded one\n"
			  "Content-Transfer-Encoding: 8bit\n\n"
			  "From: b@example.org\n"
			  "Subject: inner\n\n"
			  "line one\n"
			  "line two\n"
			  "--B--\n";
	struct mime_info *info = parse(raw);
	/* size and lines of the encapsulated message in CRLF form: 4 line
	 * breaks, 21+16+2+10+8 bytes (the line break before the boundary
	 * belongs to the boundary) */
	assert_non_null(strstr(info->bodystructure,
			       "(\"message\" \"rfc822\" (\"name\" \"fwd.eml\") NIL "
			       "\"the forwarded one\" \"8bit\" 57 (NIL \"inner\" "));
	assert_non_null(strstr(info->bodystructure, " 18 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)"));
	assert_non_null(strstr(info->body, " 18 1) 4) \"mixed\")"));
	/* RFC822.SIZE counts a CR before each bare LF */
	assert_int_equal(info->imap_size, strlen(raw) + 19); /* 19 line breaks */
	mime_info_destroy(&info);
}

static void test_base64_message_is_basic(void **state)
{
	const char *raw = "Content-Type: multipart/mixed; boundary=B\n\n"
			  "--B\n"
			  "Content-Type: message/rfc822\n"
			  "Content-Transfer-Encoding: base64\n\n"
			  "RnJvbTogYkBleGFtcGxlLm9yZwoKaGkK\n"
			  "--B--\n";
	struct mime_info *info = parse(raw);
	/* RFC 2046 5.2.1: no encoding but 7bit, 8bit, binary; so no envelope */
	assert_non_null(strstr(info->bodystructure, "((\"message\" \"rfc822\" NIL NIL NIL "
						    "\"base64\" 32 NIL NIL NIL NIL) \"mixed\""));
	mime_info_destroy(&info);
}

static void test_envelope_raw_and_addresses(void **state)
{
	const char *raw =
		"Date: Tue, 2 Jan 2018 10:00:00 +0000\n"
		"Subject: =?UTF-8?Q?H=C3=A9llo?=\n"
		" world\n"
		"From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>\n"
		"To: undisclosed-recipients:;, localonly, \"Doe, Jane\" <jane@example.net>\n"
		"Cc: carol@example.com (Carol C)\n"
		"Message-ID: <abc@example.org>\n\n"
		"body\n";
	struct mime_info *info = parse(raw);
	assert_string_equal(info->envelope,
			    "(\"Tue, 2 Jan 2018 10:00:00 +0000\" \"=?UTF-8?Q?H=C3=A9llo?= world\" "
			    "((\"=?UTF-8?Q?J=C3=B6rg?=\" NIL \"joerg\" \"example.org\")) "
			    "((\"=?UTF-8?Q?J=C3=B6rg?=\" NIL \"joerg\" \"example.org\")) "
			    "((\"=?UTF-8?Q?J=C3=B6rg?=\" NIL \"joerg\" \"example.org\")) "
			    "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)"
			    "(NIL NIL \"localonly\" \"MISSING_DOMAIN\")"
			    "(\"Doe, Jane\" NIL \"jane\" \"example.net\")) "
			    "((\"Carol C\" NIL \"carol\" \"example.com\")) NIL NIL "
			    "\"<abc@example.org>\")");
	mime_info_destroy(&info);
}

static void test_extension_data_and_types(void **state)
{
	const char *raw = "Content-Type: multipart/mixed; boundary=B\n"
			  "Content-Language: en\n\n"
			  "--B\n"
			  "Content-Type: text\n\n"
			  "no subtype\n"
			  "--B\n"
			  "Content-Type: application/pdf\n"
			  "Content-Disposition: attachment; filename=\"r.pdf\"\n"
			  "Content-Language: de, fr\n"
			  "Content-Location: http://example.org/r.pdf\n"
			  "Content-Transfer-Encoding: base64\n\n"
			  "QUJD\n"
			  "--B\n"
			  "Content-Type: message/news\n\n"
			  "Newsgroups: x\n\n"
			  "n\n"
			  "--B--\n";
	struct mime_info *info = parse(raw);
	assert_string_equal(info->bodystructure,
			    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 "
			    "NIL NIL NIL NIL)"
			    "(\"application\" \"pdf\" NIL NIL NIL \"base64\" 4 NIL "
			    "(\"attachment\" (\"filename\" \"r.pdf\")) (\"de\" \"fr\") "
			    "\"http://example.org/r.pdf\")"
			    "(\"message\" \"news\" NIL NIL NIL \"7bit\" 18 NIL NIL NIL NIL) "
			    "\"mixed\" (\"boundary\" \"B\") NIL (\"en\") NIL)");
	assert_string_equal(info->body,
			    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0)"
			    "(\"application\" \"pdf\" NIL NIL NIL \"base64\" 4)"
			    "(\"message\" \"news\" NIL NIL NIL \"7bit\" 18) \"mixed\")");
	mime_info_destroy(&info);
}

static void test_repeated_fields_and_bad_encoding(void **state)
{
	const char *raw = "To: a@example.org\n"
			  "To: b@example.org\n"
			  "Content-Transfer-Encoding: quoted printable\n\n"
			  "x\n";
	struct mime_info *info = parse(raw);
	assert_non_null(strstr(info->envelope, "((NIL NIL \"a\" \"example.org\")"
					       "(NIL NIL \"b\" \"example.org\"))"));
	/* not one token: 7bit (RFC 2045 6.1) */
	assert_non_null(strstr(info->bodystructure, " NIL NIL \"7bit\" 3 1 "));
	mime_info_destroy(&info);
}

/* Two Content-Type (or -Transfer-Encoding) fields in one header block:
 * the first counts, as in Dovecot; the message is flagged, not changed. */
static void test_first_of_repeated_structure_fields(void **state)
{
	const char *multipart_first =
		"From: a@example.org\r\n"
		"Content-Type: multipart/alternative; boundary=\"B\"\r\n"
		"Content-type  : text/plain\r\n\r\n"
		"--B\r\nContent-Type: text/plain\r\n\r\nfoo\r\n"
		"--B\r\nContent-Type: text/html\r\n\r\n<p>foo</p>\r\n--B--\r\n";
	struct mime_info *info = parse(multipart_first);
	assert_non_null(strstr(info->bodystructure, "\"alternative\" (\"boundary\" \"B\")"));
	assert_true(info->defects & MIME_DEFECT_CONFLICTING_HEADER);
	mime_info_destroy(&info);

	/* the same value twice is a duplicate, not a conflict */
	info = parse("From: a@example.org\n"
		     "Content-Transfer-Encoding: base64\n"
		     "Content-Transfer-Encoding:   BASE64\n\n"
		     "aGk=\n");
	assert_true(info->defects & MIME_DEFECT_DUPLICATE_HEADER);
	assert_false(info->defects & MIME_DEFECT_CONFLICTING_HEADER);
	mime_info_destroy(&info);

	const char *text_first = "From: a@example.org\n"
				 "Content-Type: text/plain; charset=\"utf-8\"\n"
				 "Content-Transfer-Encoding: 7bit\n"
				 "Content-Transfer-Encoding: quoted-printable\n"
				 "Content-Type: multipart/mixed; boundary=\"B\"\n\n"
				 "hello\n\n--B\nContent-Type: text/plain\n\nx\n--B--\n";
	info = parse(text_first);
	assert_true(
		strncmp(info->bodystructure,
			"(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL "
			"NIL \"7bit\" ",
			strlen("(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" ")) ==
		0);
	mime_info_destroy(&info);
}

static void test_many_parts(void **state)
{
	/* past 64 parts, sizes come from GMime's spans: still right */
	struct str *raw = str_create(4096);
	str_append(raw, "Content-Type: multipart/mixed; boundary=B\n\n");
	for (int i = 0; i < 100; i++)
		str_append(raw, "--B\n\nxy\n");
	str_append(raw, "--B--\n");
	struct mime_info *info = parse(str_c(raw));
	const char *part = "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 2 0)";
	size_t n = 0;
	for (const char *p = info->body; (p = strstr(p, part)) != NULL; p++)
		n++;
	assert_int_equal(n, 100);
	mime_info_destroy(&info);
	str_destroy(&raw);
}

static void test_domain_words_need_dots(void **state)
{
	/* two addresses written without a comma: the domain ends at the blank
	 * (RFC 5322 3.4.1), the rest is skipped, as Dovecot does */
	const char *raw = "From: tim@powerupdev.com concierge@powerupdev.com\n\nx\n";
	struct mime_info *info = parse(raw);
	assert_non_null(strstr(info->envelope, "((NIL NIL \"tim\" \"powerupdev.com\"))"));
	mime_info_destroy(&info);
}

static void test_disposition_without_type(void **state)
{
	/* an empty field or an encoded word (RFC 2047 5 allows none here):
	 * a disposition of no type, never the decoded word */
	const char *raw = "Content-Type: multipart/mixed; boundary=B\n\n"
			  "--B\n"
			  "Content-Disposition: \n\n"
			  "a\n"
			  "--B\n"
			  "Content-Disposition: =?utf-8?Q?invalid?=\n\n"
			  "b\n"
			  "--B--\n";
	struct mime_info *info = parse(raw);
	assert_non_null(strstr(info->bodystructure, "1 0 NIL (\"\" NIL) NIL NIL)(\"text\""));
	assert_null(strstr(info->bodystructure, "invalid"));
	mime_info_destroy(&info);
}

static void test_leading_blank_line(void **state)
{
	const char *raw = "   \nFrom: a@example.org\nSubject: s\n\nbody\n";
	struct mime_info *info = parse(raw);
	assert_non_null(strstr(info->envelope, "\"s\""));
	mime_info_destroy(&info);
}

int main(void)
{
	mime_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encapsulated_message),
		cmocka_unit_test(test_base64_message_is_basic),
		cmocka_unit_test(test_envelope_raw_and_addresses),
		cmocka_unit_test(test_extension_data_and_types),
		cmocka_unit_test(test_repeated_fields_and_bad_encoding),
		cmocka_unit_test(test_first_of_repeated_structure_fields),
		cmocka_unit_test(test_many_parts),
		cmocka_unit_test(test_leading_blank_line),
		cmocka_unit_test(test_domain_words_need_dots),
		cmocka_unit_test(test_disposition_without_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
