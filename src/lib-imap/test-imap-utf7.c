#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "imap-mailbox.h"
#include "imap-utf7.h"
#include "mem.h"
#include "str.h"

static const struct {
	const char *utf8, *mutf7;
} pairs[] = {
	{"INBOX", "INBOX"},
	{"", ""},
	{"&", "&-"},
	{"A&B", "A&-B"},
	{"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	 "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
	{"\xc3\xa4", "&AOQ-"},
	{"Entw\xc3\xbcrfe", "Entw&APw-rfe"},
	{"\xf0\x9f\x98\x80", "&2D3eAA-"},               /* U+1F600, outside the BMP */
	{"\xe2\x82\xac\xf0\x9f\x98\x80", "&IKzYPd4A-"}, /* mixed BMP and not */
	{"a\x7f", "a&AH8-"},
	{"tab\there", "tab&AAk-here"},
	{"\xf4\x8f\xbf\xbf", "&2,,f,w-"}, /* U+10FFFF */
};

static void test_utf7_round_trips(void **state)
{
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct str *s = str_create(64);
		const char *error;
		assert_int_equal(imap_utf7_encode(pairs[i].utf8, s, &error), 0);
		assert_string_equal(str_c(s), pairs[i].mutf7);
		str_truncate(s, 0);
		assert_int_equal(imap_utf7_decode(pairs[i].mutf7, s, &error), 0);
		assert_string_equal(str_c(s), pairs[i].utf8);
		str_destroy(&s);
	}
}

static void test_utf7_long_run(void **state)
{
	/* 100 non-ASCII characters in one shift, back and forth. */
	struct str *in = str_create(512), *enc = str_create(512), *dec = str_create(512);
	for (int i = 0; i < 100; i++)
		str_append(in, i % 3 == 0 ? "\xf0\x9f\x98\x80" : "\xc3\xa9");
	const char *error;
	assert_int_equal(imap_utf7_encode(str_c(in), enc, &error), 0);
	assert_int_equal(str_c(enc)[0], '&');
	assert_null(strchr(str_c(enc) + 1, '&'));
	assert_int_equal(imap_utf7_decode(str_c(enc), dec, &error), 0);
	assert_string_equal(str_c(dec), str_c(in));
	str_destroy(&in);
	str_destroy(&enc);
	str_destroy(&dec);
}

static void test_utf7_decode_refuses(void **state)
{
	static const struct {
		const char *in, *error;
	} bad[] = {
		{"&AOQ", "unterminated"},
		{"&", "unterminated"},
		{"&-&", "unterminated"},
		{"&AGE-", "printable ASCII must not be base64-encoded"},
		{"&AOQ-&AOQ-", "two &...- sequences in a row"},
		{"&AOQA-", "stray bits"},
		{"&AOR-", "stray bits"},
		{"&2D0-", "unpaired UTF-16 surrogate"},
		{"&3gA-", "unpaired UTF-16 surrogate"},
		{"&2D3YPQ-", "unpaired UTF-16 surrogate"},
		{"a\xc3\xa4", "invalid character 0xc3"},
		{"a\tb", "invalid character 0x09"},
		{"&A/Q-", "invalid character in &...- sequence"},
		{"&A", "unterminated"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct str *s = str_create(16);
		str_append(s, "keep");
		const char *error;
		assert_int_equal(imap_utf7_decode(bad[i].in, s, &error), -1);
		if (strstr(error, bad[i].error) == NULL)
			fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].in, error, bad[i].error);
		assert_string_equal(str_c(s), "keep");
		str_destroy(&s);
	}
	/* "&-" right after a shift is fine: it is a plain '&'. */
	struct str *s = str_create(16);
	const char *error;
	assert_int_equal(imap_utf7_decode("&AOQ-&-", s, &error), 0);
	assert_string_equal(str_c(s), "\xc3\xa4&");
	str_destroy(&s);
}

static void test_utf7_encode_refuses(void **state)
{
	static const char *const bad[] = {
		"\xc3",             /* truncated */
		"\xc0\xaf",         /* overlong '/' */
		"\xed\xa0\x80",     /* a surrogate */
		"\xf4\x90\x80\x80", /* beyond U+10FFFF */
		"\xff",
		"ok\x80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct str *s = str_create(16);
		const char *error;
		assert_int_equal(imap_utf7_encode(bad[i], s, &error), -1);
		assert_non_null(strstr(error, "invalid UTF-8"));
		assert_int_equal(str_len(s), 0);
		str_destroy(&s);
	}
}

static void test_mailbox_args(void **state)
{
	struct imap_arg atom = {.type = IMAP_ARG_ATOM, .str = "inBox", .len = 5};
	struct imap_arg quoted = {.type = IMAP_ARG_STRING, .str = "&ZeVnLIqe-", .len = 10};
	struct imap_arg nil = {.type = IMAP_ARG_NIL, .str = "NIL", .len = 3};
	struct imap_arg sub = {.type = IMAP_ARG_ATOM, .str = "inbox/Sub", .len = 9};
	struct imap_arg list = {.type = IMAP_ARG_LIST};
	struct imap_arg bad = {.type = IMAP_ARG_ATOM, .str = "&AGE-", .len = 5};
	struct imap_arg nul = {.type = IMAP_ARG_LITERAL, .str = "a\0b", .len = 3};
	struct str *s = str_create(32);
	const char *error;
	assert_int_equal(imap_mailbox_from_arg(&atom, s, &error), 0);
	assert_string_equal(str_c(s), "INBOX");
	str_truncate(s, 0);
	assert_int_equal(imap_mailbox_from_arg(&quoted, s, &error), 0);
	assert_string_equal(str_c(s), "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	str_truncate(s, 0);
	assert_int_equal(imap_mailbox_from_arg(&nil, s, &error), 0);
	assert_string_equal(str_c(s), "NIL");
	str_truncate(s, 0);
	/* Only INBOX itself is case-insensitive. */
	assert_int_equal(imap_mailbox_from_arg(&sub, s, &error), 0);
	assert_string_equal(str_c(s), "inbox/Sub");
	str_truncate(s, 0);
	assert_int_equal(imap_mailbox_from_arg(&list, s, &error), -1);
	assert_string_equal(error, "mailbox name expected, got a list");
	assert_int_equal(imap_mailbox_from_arg(NULL, s, &error), -1);
	assert_int_equal(imap_mailbox_from_arg(&bad, s, &error), -1);
	assert_int_equal(imap_mailbox_from_arg(&nul, s, &error), -1);
	assert_int_equal(str_len(s), 0);

	assert_int_equal(imap_mailbox_write(s, "\xe5\x8f\xb0\xe5\x8c\x97 & Co", &error), 0);
	assert_string_equal(str_c(s), "\"&U,BTFw- &- Co\"");
	str_truncate(s, 0);
	assert_int_equal(imap_mailbox_write(s, "Archive/2024", &error), 0);
	assert_string_equal(str_c(s), "Archive/2024");
	assert_int_equal(imap_mailbox_write(s, "\xff", &error), -1);
	str_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf7_round_trips),
		cmocka_unit_test(test_utf7_long_run),
		cmocka_unit_test(test_utf7_decode_refuses),
		cmocka_unit_test(test_utf7_encode_refuses),
		cmocka_unit_test(test_mailbox_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
