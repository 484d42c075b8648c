#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mem.h"
#include "mime.h"
#include "str.h"

static char *build_message(size_t attachment_lines, size_t *base64_off_r, size_t *base64_len_r)
{
	struct str *s = str_create(4096);
	str_append(s, "From: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.org>\n"
		      "To: Alice <alice@example.com>, bob@example.net\n"
		      "Cc: carol@example.com\n"
		      "Subject: =?UTF-8?B?SMOpbGxv?= world\n"
		      "Date: Tue, 02 Jan 2018 10:00:00 +0000\n"
		      "Message-ID: <abc@example.org>\n"
		      "MIME-Version: 1.0\n"
		      "Content-Type: multipart/mixed; boundary=\"XX\"\n\n"
		      "preamble\n--XX\n"
		      "Content-Type: text/html; charset=iso-8859-1\n"
		      "Content-Transfer-Encoding: quoted-printable\n\n"
		      "<html><style>p {color:red}</style><p>Caf=E9 &amp; cr&#232;me</p></html>\n"
		      "--XX\n"
		      "Content-Type: application/octet-stream; name=\"report.bin\"\n"
		      "Content-Disposition: attachment; filename=\"report.bin\"\n"
		      "Content-Transfer-Encoding: base64\n\n");
	*base64_off_r = str_len(s);
	for (size_t i = 0; i < attachment_lines; i++)
		str_append(s, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2\n");
	*base64_len_r = str_len(s) - *base64_off_r;
	str_append(s, "--XX\nContent-Type: text/plain; name=notes.txt\n"
		      "Content-Disposition: attachment; filename=notes.txt\n\n"
		      "attached words here\n--XX--\n");
	return str_steal(&s);
}

static void test_parse_fields_and_text(void **state)
{
	size_t off, blen;
	char *raw = build_message(400, &off, &blen);
	struct mime_info *info = mime_parse(raw, strlen(raw), MIME_LARGE_PART_MIN);
	assert_string_equal(info->subject, "Héllo world");
	assert_non_null(strstr(info->from, "Jörg"));
	assert_non_null(strstr(info->from, "joerg@example.org"));
	assert_non_null(strstr(info->to, "bob@example.net"));
	assert_non_null(strstr(info->cc, "carol@example.com"));
	assert_int_equal(info->date, 1514887200);
	assert_true(info->has_attachment);
	assert_non_null(strstr(info->body_text, "Café & crème"));
	assert_null(strstr(info->body_text, "color:red"));
	assert_non_null(strstr(info->body_text, "attached words here"));
	assert_non_null(strstr(info->attachment_names, "report.bin"));
	assert_non_null(strstr(info->attachment_names, "notes.txt"));
	assert_non_null(strstr(info->envelope, "\"joerg\" \"example.org\""));
	assert_non_null(strstr(info->envelope, "\"<abc@example.org>\")"));
	assert_non_null(strstr(info->body, "\"mixed\")"));
	assert_non_null(strstr(info->bodystructure, "\"application\" \"octet-stream\""));
	/* The large part's span is exactly its encoded bytes. */
	assert_int_equal(info->large_part_count, 1);
	assert_int_equal(info->large_parts[0].offset, off);
	/* the line break before a boundary belongs to the boundary */
	assert_int_equal(info->large_parts[0].len, blen - 1);
	mime_info_destroy(&info);
	mem_free(raw);
}

/* The Date header's zone, for searching by the sender's day (sent:). */
static void test_date_zone(void **state)
{
	static const struct {
		const char *date;
		int zone;
	} cases[] = {
		{"Fri, 1 Mar 2024 20:30:00 -0800", -480},
		{"Sat, 2 Mar 2024 01:00:00 +1000", 600},
		{"Sat, 2 Mar 2024 01:00:00 +0530", 330},
		{"Sat, 2 Mar 2024 01:00:00 GMT", 0},
		{"not a date", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *raw = mem_printf("Date: %s\nSubject: z\n\nbody\n", cases[i].date);
		struct mime_info *info = mime_parse(raw, strlen(raw), MIME_LARGE_PART_MIN);
		if (info->zone_minutes != cases[i].zone)
			fail_msg("%s: zone %d", cases[i].date, info->zone_minutes);
		mime_info_destroy(&info);
		mem_free(raw);
	}
}

static void test_garbage_never_fails(void **state)
{
	const char *inputs[] = {"", "\n\n\n", "no headers at all",
				"Content-Type: multipart/mixed\n\n--",
				"From: <<<@@@>>>\nSubject: \xff\xfe\n\n\x80\x81"};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct mime_info *info = mime_parse(inputs[i], strlen(inputs[i]), 16);
		assert_non_null(info->subject);
		assert_non_null(info->bodystructure);
		mime_info_destroy(&info);
	}
}

static void test_html_to_text(void **state)
{
	const char *html = "<b>a</b>&lt;b&gt; &#x41;<script>x<y</script>z &bogus; &";
	char *text = mime_html_to_text(html, strlen(html));
	assert_string_equal(text, " a <b> A  z &bogus; &");
	mem_free(text);
}

static void test_nul_in_header(void **state)
{
	/* A NUL in the Subject cuts neither the Subject nor the From after it. */
	static const char raw[] = "Subject: before\0after\nFrom: Ann <ann@example.org>\n"
				  "Content-Type: text/plain\n\nbody words\n";
	struct mime_info *info = mime_parse(raw, sizeof(raw) - 1, 16);
	assert_string_equal(info->subject, "before after");
	assert_non_null(strstr(info->from, "ann@example.org"));
	assert_non_null(strstr(info->body_text, "body words"));
	assert_true(info->defects & MIME_DEFECT_NUL_IN_HEADER);
	mime_info_destroy(&info);
}

static void test_defects_named(void **state)
{
	static const struct {
		const char *raw;
		unsigned int defect;
	} cases[] = {
		{"Subject: x\nContent-Type: multipart/mixed\n\n--\nbody\n",
		 MIME_DEFECT_MISSING_BOUNDARY},
		{"Subject: x\nContent-Type: text/plain; charset=no-such-charset\n\nbody\n",
		 MIME_DEFECT_BAD_CHARSET},
		{"Subject: x\rSubject: y\n\nbody\n", MIME_DEFECT_BARE_CR},
		{"Subject: x\nContent-Type: text/plain; charset=\"a\"; charset=\"b\"\n\nbody\n",
		 MIME_DEFECT_DUPLICATE_PARAMETER | MIME_DEFECT_CONFLICTING_PARAMETER},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mime_info *info = mime_parse(cases[i].raw, strlen(cases[i].raw), 16);
		char *names = mime_defects_describe(info->defects);
		if ((info->defects & cases[i].defect) == 0)
			fail_msg("case %zu: got %s", i, names);
		mem_free(names);
		mime_info_destroy(&info);
	}
	char *names = mime_defects_describe(MIME_DEFECT_MISSING_BOUNDARY | MIME_DEFECT_TRUNCATED);
	assert_string_equal(names, "truncated, missing-boundary");
	mem_free(names);
	assert_string_equal(mime_defect_name(MIME_DEFECT_KINDS - 1), "line-too-long");
	assert_null(mime_defect_name(MIME_DEFECT_KINDS));
}

static void test_limits_reported(void **state)
{
	/* 2,000 nested multiparts: the deepest text is past MIME_DEPTH_MAX. */
	struct str *s = str_create(1024 * 1024);
	str_append(s, "Subject: deep\n");
	for (int i = 0; i < 2000; i++)
		str_printfa(s, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	str_append(s, "Content-Type: text/plain\n\ndeepest\n");
	struct mime_info *info = mime_parse(str_c(s), str_len(s), 16);
	assert_true(info->defects & MIME_DEFECT_NESTING_TOO_DEEP);
	mime_info_destroy(&info);
	str_truncate(s, 0);

	/* More leaves than MIME_PARTS_MAX, and more text than MIME_TEXT_MAX. */
	str_append(s, "Subject: many\nContent-Type: multipart/mixed; boundary=B\n\n");
	for (int i = 0; i < MIME_PARTS_MAX + 5; i++)
		str_printfa(s, "--B\nContent-Type: text/plain\n\nword%d\n", i);
	str_append(s, "--B--\n");
	info = mime_parse(str_c(s), str_len(s), 16);
	assert_true(info->defects & MIME_DEFECT_TOO_MANY_PARTS);
	assert_non_null(strstr(info->body_text, "word0\n"));
	mime_info_destroy(&info);
	str_truncate(s, 0);

	str_append(s, "Subject: long\n\n");
	for (int i = 0; i < MIME_TEXT_MAX / 8; i++)
		str_append(s, "a b c d e f g h i j\n");
	info = mime_parse(str_c(s), str_len(s), 16);
	assert_true(info->defects & MIME_DEFECT_TEXT_TRUNCATED);
	assert_int_equal(strlen(info->body_text), MIME_TEXT_MAX);
	mime_info_destroy(&info);
	str_truncate(s, 0);

	/* A header block over MIME_HEADER_MAX: the fields before the limit
	 * are still read. */
	str_append(s, "Subject: huge header\nX-Long: ");
	for (size_t i = 0; i < 2 * MIME_HEADER_MAX; i++)
		str_append_c(s, 'x');
	str_append(s, "\n\nbody\n");
	info = mime_parse(str_c(s), str_len(s), 16);
	assert_true(info->defects & MIME_DEFECT_HEADER_TOO_LARGE);
	assert_string_equal(info->subject, "huge header");
	mime_info_destroy(&info);
	str_truncate(s, 0);

	/* A part's header line over MIME_LINE_MAX: cut for GMime, the part
	 * after it still found. */
	str_append(s, "Subject: long line\nContent-Type: multipart/mixed; boundary=B\n\n"
		      "--B\nContent-Type: text/plain\nX-Long: ");
	for (size_t i = 0; i < 2 * MIME_LINE_MAX; i++)
		str_append_c(s, 'x');
	str_append(s, "\n\nfirst\n--B\nContent-Type: text/plain\n\nsecondpart\n--B--\n");
	info = mime_parse(str_c(s), str_len(s), 16);
	assert_true(info->defects & MIME_DEFECT_LINE_TOO_LONG);
	assert_non_null(strstr(info->body_text, "secondpart"));
	mime_info_destroy(&info);
	str_destroy(&s);
}

/* Index text keeps one blank of each run of white space (a line end if
 * the run has one); addresses keep an ASCII domain as written, and an
 * internationalised one is given in its ASCII (IDNA) form, inside a group
 * too. */
static void test_text_runs_and_addresses(void **state)
{
	(void)state;
	const char *raw = "From: Ann <Ann@Example.COM>\n"
			  "To: Team: x@b\xc3\xbc"
			  "cher.example, y@Example.ORG;\n"
			  "Subject: s\n\n"
			  "one  two\n\n   three\t\tfour \r\nfive\n";
	struct mime_info *info = mime_parse(raw, strlen(raw), MIME_LARGE_PART_MIN);
	assert_string_equal(info->body_text, "one two\nthree\tfour\nfive\n");
	assert_string_equal(info->from, "Ann <Ann@Example.COM>");
	assert_non_null(strstr(info->to, "x@xn--bcher-kva.example"));
	assert_non_null(strstr(info->to, "y@Example.ORG"));
	mime_info_destroy(&info);
}

static void test_recipients(void **state)
{
	(void)state;
	static const char msg[] = "From: Someone <someone@example.org>\r\n"
				  "To: \"Alice A.\" <Alice@Example.COM>, bob@example.com\r\n"
				  "Cc: team: carol@example.com, alice@example.com;\r\n"
				  "Subject: To: nobody@example.net\r\n"
				  "X-Original-To: journal@example.com\r\n"
				  "Delivered-To: dave@example.com\r\n"
				  "\r\n"
				  "To: body@example.net\r\n";
	char **addrs;
	size_t n = mime_recipients(msg, sizeof(msg) - 1, &addrs);
	static const char *const want[] = {"alice@example.com", "bob@example.com",
					   "carol@example.com", "journal@example.com",
					   "dave@example.com"};
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(addrs[i], want[i]);
	assert_null(addrs[n]);
	mime_recipients_free(&addrs);
	assert_null(addrs);
	/* garbage, no header block, NULs: never a failure */
	static const char junk[] = "\0\0To: <<<@@@>>>\n\xff\xfe";
	n = mime_recipients(junk, sizeof(junk) - 1, &addrs);
	assert_null(addrs[n]);
	mime_recipients_free(&addrs);
	n = mime_recipients("", 0, &addrs);
	assert_int_equal(n, 0);
	mime_recipients_free(&addrs);
}

/* Fields GMime has no use for (Received, List-*, X-*) are left out of
 * what it parses: everything it gives is the same as for the message
 * without them, and spans still point into the message as it is. */
static const char *const idle_fields =
	"Received: from a.example (a.example [192.0.2.1])\n\tby b.example; Tue, 2 Jan 2018\n"
	"X-Mailer: test 1.0\nList-Id: <list.example.org>\nPrecedence: bulk\n";

static char *with_idle_fields(const char *raw)
{
	struct str *s = str_create(4096);
	/* after the first field, so the block still starts with From */
	const char *nl = strchr(raw, '\n');
	str_append_n(s, raw, (size_t)(nl - raw) + 1);
	str_append(s, idle_fields);
	str_append(s, nl + 1);
	return str_steal(&s);
}

static void assert_same_parse(const struct mime_info *a, const struct mime_info *b, size_t shift)
{
	assert_int_equal(a->date, b->date);
	assert_string_equal(a->subject, b->subject);
	assert_string_equal(a->from, b->from);
	assert_string_equal(a->to, b->to);
	assert_string_equal(a->cc, b->cc);
	assert_string_equal(a->message_id, b->message_id);
	assert_string_equal(a->envelope, b->envelope);
	assert_string_equal(a->bodystructure, b->bodystructure);
	assert_string_equal(a->body, b->body);
	assert_string_equal(a->body_text, b->body_text);
	assert_string_equal(a->attachment_names, b->attachment_names);
	assert_int_equal(a->defects, b->defects);
	assert_int_equal(a->large_part_count, b->large_part_count);
	for (size_t i = 0; i < a->large_part_count; i++) {
		assert_int_equal(a->large_parts[i].offset, b->large_parts[i].offset + shift);
		assert_int_equal(a->large_parts[i].len, b->large_parts[i].len);
	}
}

static void test_idle_fields_left_out(void **state)
{
	size_t off, blen;
	char *plain = build_message(400, &off, &blen);
	char *full = with_idle_fields(plain);
	size_t shift = strlen(idle_fields);
	struct mime_info *a = mime_parse(full, strlen(full), MIME_LARGE_PART_MIN);
	struct mime_info *b = mime_parse(plain, strlen(plain), MIME_LARGE_PART_MIN);
	assert_same_parse(a, b, shift);
	/* the span is the attachment's base64 in the message as it is */
	assert_int_equal(a->large_part_count, 1);
	assert_int_equal(a->large_parts[0].offset, off + shift);
	assert_memory_equal(full + a->large_parts[0].offset, plain + off, a->large_parts[0].len);
	mime_info_destroy(&a);
	mime_info_destroy(&b);
	/* past 64 parts BODYSTRUCTURE counts parts where GMime found them */
	struct str *many = str_create(8192);
	str_append(many, "From: a@example.org\nSubject: parts\nMIME-Version: 1.0\n"
			 "Content-Type: multipart/mixed; boundary=B\n\n");
	for (int i = 0; i < 70; i++)
		str_printfa(many, "--B\nContent-Type: text/plain\n\npart %d\nline two\n", i);
	str_append(many, "--B--\n");
	char *many_full = with_idle_fields(str_c(many));
	a = mime_parse(many_full, strlen(many_full), MIME_LARGE_PART_MIN);
	b = mime_parse(str_c(many), str_len(many), MIME_LARGE_PART_MIN);
	assert_same_parse(a, b, shift);
	mime_info_destroy(&a);
	mime_info_destroy(&b);
	a = mime_parse_imap(many_full, strlen(many_full));
	b = mime_parse_imap(str_c(many), str_len(many));
	assert_string_equal(a->bodystructure, b->bodystructure);
	mime_info_destroy(&a);
	mime_info_destroy(&b);
	mem_free(many_full);
	str_destroy(&many);
	mem_free(full);
	mem_free(plain);
	(void)state;
}

/* A header block with a line that is no field: GMime's reading of that
 * line depends on the lines before it (as the first line it may start the
 * body), so nothing is left out: the message parses as if each of its
 * fields were one GMime uses (a non-ASCII byte keeps a field in). */
static void test_idle_fields_kept_in_a_broken_header(void **state)
{
	const char *broken = "X-Spam: yes\nnot a field\nSubject: hi\nFrom: a@example.org\n\nbody\n";
	const char *kept =
		"X-Spam: y\xe9s\nnot a field\nSubject: hi\nFrom: a@example.org\n\nbody\n";
	struct mime_info *a = mime_parse(broken, strlen(broken), MIME_LARGE_PART_MIN);
	struct mime_info *b = mime_parse(kept, strlen(kept), MIME_LARGE_PART_MIN);
	assert_string_equal(a->subject, b->subject);
	assert_string_equal(a->from, b->from);
	assert_string_equal(a->envelope, b->envelope);
	assert_string_equal(a->bodystructure, b->bodystructure);
	assert_string_equal(a->body_text, b->body_text);
	mime_info_destroy(&a);
	mime_info_destroy(&b);
	(void)state;
}

int main(void)
{
	mime_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields_and_text),
		cmocka_unit_test(test_idle_fields_left_out),
		cmocka_unit_test(test_idle_fields_kept_in_a_broken_header),
		cmocka_unit_test(test_garbage_never_fails),
		cmocka_unit_test(test_date_zone),
		cmocka_unit_test(test_html_to_text),
		cmocka_unit_test(test_nul_in_header),
		cmocka_unit_test(test_defects_named),
		cmocka_unit_test(test_limits_reported),
		cmocka_unit_test(test_text_runs_and_addresses),
		cmocka_unit_test(test_recipients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
