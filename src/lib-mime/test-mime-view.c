#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "mime-view.h"

static const char mixed[] =
	"From: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.org>\n"
	"To: Alice <alice@example.com>\n"
	"Cc: carol@example.com\n"
	"Subject: Quarterly report\n"
	"Date: Tue, 02 Jan 2018 10:00:00 +0000\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\n\n"
	"--XX\n"
	"Content-Type: multipart/related; boundary=\"RR\"\n\n"
	"--RR\n"
	"Content-Type: multipart/alternative; boundary=\"AA\"\n\n"
	"--AA\n"
	"Content-Type: text/plain; charset=utf-8\n\n"
	"Plain caf\xc3\xa9 body\n"
	"--AA\n"
	"Content-Type: text/html; charset=iso-8859-1\n"
	"Content-Transfer-Encoding: quoted-printable\n\n"
	"<p>Caf=E9 <img src=3D\"cid:logo@x\"> <img src=3D\"https://tracker.example/p.gif\"></p>\n"
	"--AA--\n"
	"--RR\n"
	"Content-Type: image/png\n"
	"Content-ID: <logo@x>\n"
	"Content-Transfer-Encoding: base64\n\n"
	"iVBORw0KGgo=\n"
	"--RR--\n"
	"--XX\n"
	"Content-Type: application/pdf; name=\"r.pdf\"\n"
	"Content-Disposition: attachment; filename=\"r.pdf\"\n"
	"Content-Transfer-Encoding: base64\n\n"
	"JVBERi0xLjQK\n"
	"--XX\n"
	"Content-Type: message/rfc822\n\n"
	"From: inner@example.org\n"
	"Subject: Inner one\n\n"
	"inner body\n"
	"--XX--\n";

static void test_view_mixed(void **state)
{
	struct mime_view *v = mime_view(mixed, strlen(mixed));
	assert_string_equal(v->subject, "Quarterly report");
	assert_non_null(strstr(v->from, "Jörg"));
	assert_non_null(strstr(v->to, "alice@example.com"));
	assert_string_equal(v->cc, "carol@example.com");
	assert_int_equal(v->date, 1514887200);
	assert_string_equal(v->text, "Plain café body"); /* the newline belongs to the boundary */
	assert_non_null(strstr(v->html, "<p>Café"));
	/* the message's own image is inlined; the remote one is left for the sandbox */
	assert_non_null(strstr(v->html, "src=\"data:image/png;base64,iVBORw0KGgo=\""));
	assert_null(strstr(v->html, "cid:"));
	assert_non_null(strstr(v->html, "https://tracker.example/p.gif"));
	assert_int_equal(v->attachment_count, 2);
	assert_string_equal(v->attachments[0].part, "2");
	assert_string_equal(v->attachments[0].filename, "r.pdf");
	assert_string_equal(v->attachments[0].content_type, "application/pdf");
	assert_int_equal(v->attachments[0].size, 9);
	assert_string_equal(v->attachments[1].part, "3");
	assert_string_equal(v->attachments[1].filename, "Inner one.eml");
	assert_string_equal(v->attachments[1].content_type, "message/rfc822");
	mime_view_destroy(&v);
	assert_null(v);
}

static void test_part(void **state)
{
	unsigned char *bytes;
	size_t size;
	char *filename, *type;
	assert_int_equal(mime_view_part(mixed, strlen(mixed), "2", &bytes, &size, &filename, &type),
			 1);
	assert_int_equal(size, 9);
	assert_memory_equal(bytes, "%PDF-1.4\n", 9);
	assert_string_equal(filename, "r.pdf");
	assert_string_equal(type, "application/pdf");
	mem_free(bytes);
	mem_free(filename);
	mem_free(type);
	assert_int_equal(
		mime_view_part(mixed, strlen(mixed), "1.1.2", &bytes, &size, &filename, &type), 1);
	assert_string_equal(type, "text/html");
	assert_string_equal(filename, "");
	mem_free(bytes);
	mem_free(filename);
	mem_free(type);
	assert_int_equal(mime_view_part(mixed, strlen(mixed), "3", &bytes, &size, &filename, &type),
			 1);
	assert_non_null(strstr((char *)bytes, "inner body"));
	assert_string_equal(type, "message/rfc822");
	mem_free(bytes);
	mem_free(filename);
	mem_free(type);
	/* the attached message's body is 3.1 */
	assert_int_equal(
		mime_view_part(mixed, strlen(mixed), "3.1", &bytes, &size, &filename, &type), 1);
	assert_string_equal((char *)bytes, "inner body");
	mem_free(bytes);
	mem_free(filename);
	mem_free(type);
	static const char *const missing[] = {
		"4", "0", "1.9", "2.1", "", "x", "1.", "1..1", "99999999999999999999", NULL};
	for (const char *const *m = missing; *m != NULL; m++)
		assert_int_equal(
			mime_view_part(mixed, strlen(mixed), *m, &bytes, &size, &filename, &type),
			0);
}

static void test_single_part_and_html_only(void **state)
{
	const char *plain = "Subject: hi\n\nJust text\n";
	struct mime_view *v = mime_view(plain, strlen(plain));
	assert_string_equal(v->text, "Just text\n");
	assert_string_equal(v->html, "");
	assert_int_equal(v->attachment_count, 0);
	mime_view_destroy(&v);
	unsigned char *bytes;
	size_t size;
	char *filename, *type;
	assert_int_equal(mime_view_part(plain, strlen(plain), "1", &bytes, &size, &filename, &type),
			 1);
	assert_string_equal(type, "text/plain");
	mem_free(bytes);
	mem_free(filename);
	mem_free(type);

	const char *html =
		"Subject: h\nContent-Type: text/html\n\n<b>Bold</b><script>x()</script>\n";
	v = mime_view(html, strlen(html));
	assert_non_null(strstr(v->html, "<script>")); /* kept: the sandbox blocks it */
	assert_non_null(strstr(v->text, "Bold"));
	assert_null(strstr(v->text, "x()"));
	mime_view_destroy(&v);
}

static void test_garbage(void **state)
{
	const char *inputs[] = {"", "\x00\x01\x02", "Content-Type: multipart/mixed\n\n--", NULL};
	for (const char **in = inputs; *in != NULL; in++) {
		struct mime_view *v = mime_view(*in, strlen(*in));
		assert_non_null(v->subject);
		assert_non_null(v->text);
		mime_view_destroy(&v);
	}
}

static void check_base64_mixed(size_t n, unsigned int parity, const char *eol)
{
	/* 200,000 bytes in base64 whose lines end alternately in CRLF and LF:
	 * every byte comes back, the last group included. */
	unsigned char *raw = mem_alloc(n);
	for (size_t i = 0; i < n; i++)
		raw[i] = (unsigned char)(i * 7 + i / 251);
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t cap = n * 2 + 4096, len = 0;
	char *msg = mem_alloc(cap);
	len += (size_t)snprintf(msg, cap,
				"From: a@b.example%sSubject: mixed%sMIME-Version: 1.0%s"
				"Content-Type: multipart/mixed; boundary=B%s%s--B%s"
				"Content-Type: application/octet-stream%s"
				"Content-Transfer-Encoding: base64%s%s",
				eol, eol, eol, eol, eol, eol, eol, eol, eol);
	size_t col = 0, line = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned int v = (unsigned int)raw[i] << 16;
		size_t have = n - i < 3 ? n - i : 3;
		if (have > 1)
			v |= (unsigned int)raw[i + 1] << 8;
		if (have > 2)
			v |= raw[i + 2];
		msg[len++] = alphabet[(v >> 18) & 63];
		msg[len++] = alphabet[(v >> 12) & 63];
		msg[len++] = have > 1 ? alphabet[(v >> 6) & 63] : '=';
		msg[len++] = have > 2 ? alphabet[v & 63] : '=';
		col += 4;
		if (col == 76 || i + 3 >= n) {
			if (line++ % 2 == parity)
				msg[len++] = '\r';
			msg[len++] = '\n';
			col = 0;
		}
	}
	len += (size_t)snprintf(msg + len, cap - len, "--B--%s", eol);
	unsigned char *bytes;
	size_t size;
	char *filename, *type;
	assert_int_equal(mime_view_part(msg, len, "1", &bytes, &size, &filename, &type), 1);
	if (size != n)
		fail_msg("n=%zu parity=%u eol=%zu: got %zu", n, parity, strlen(eol), size);
	assert_memory_equal(bytes, raw, n);
	mem_free(bytes);
	mem_free(filename);
	mem_free(type);
	mem_free(msg);
	mem_free(raw);
}

static void test_part_base64_mixed_line_ends(void **state)
{
	static const size_t sizes[] = {200000, 200001, 200002, 57, 1};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (unsigned int parity = 0; parity < 2; parity++) {
			check_base64_mixed(sizes[i], parity, "\n");
			check_base64_mixed(sizes[i], parity, "\r\n");
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_view_mixed),
		cmocka_unit_test(test_part),
		cmocka_unit_test(test_single_part_and_html_only),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_part_base64_mixed_line_ends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
