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

static void test_garbage_never_fails(void **state)
{
	const char *inputs[] = {"", "\n\n\n", "no headers at all", "Content-Type: multipart/mixed\n\n--",
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

int main(void)
{
	mime_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields_and_text),
		cmocka_unit_test(test_garbage_never_fails),
		cmocka_unit_test(test_html_to_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
