#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <strings.h>

#include "imap-parser.h"
#include "mem.h"
#include "str.h"

/* ---- a driver that turns parser output into text ---- */

static void dump_args(struct str *out, const struct imap_arg *args, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		if (i > 0)
			str_append_c(out, ' ');
		switch (a->type) {
		case IMAP_ARG_ATOM:
			str_append(out, a->str);
			break;
		case IMAP_ARG_NIL:
			str_printfa(out, "<NIL:%s>", a->str);
			break;
		case IMAP_ARG_STRING:
			str_printfa(out, "\"%s\"", a->str);
			break;
		case IMAP_ARG_LITERAL:
			str_printfa(out, "{%zu}", a->len);
			for (size_t j = 0; j < a->len; j++) {
				unsigned char c = (unsigned char)a->str[j];
				if (c < 0x20)
					str_printfa(out, "\\x%02x", c);
				else
					str_append_c(out, (char)c);
			}
			assert_int_equal(a->str[a->len], '\0');
			break;
		case IMAP_ARG_LIST:
			str_append_c(out, '(');
			dump_args(out, a->list, a->list_count);
			str_append_c(out, ')');
			break;
		}
	}
}

/* Feed `in` in pieces of at most `chunk` bytes; every result becomes a line.
 * After AUTHENTICATE and IDLE the next raw line is read, as a server does. */
static char *run(const struct imap_parser_settings *set, const char *in, size_t len, size_t chunk)
{
	struct imap_parser *p = imap_parser_create(set);
	struct str *out = str_create(256);
	size_t off = 0;
	bool want_line = false;
	for (;;) {
		size_t avail = len - off < chunk ? len - off : chunk;
		size_t n = imap_parser_feed(p, in + off, avail);
		assert_true(n <= avail);
		off += n;
		int ret;
		if (want_line) {
			const char *line, *error;
			size_t line_len;
			ret = imap_parser_next_line(p, &line, &line_len, &error);
			if (ret > 0) {
				str_printfa(out, "LINE %s\n", line);
				want_line = false;
			} else if (ret < 0) {
				str_printfa(out, "LINE-ERR %s\n", error);
				want_line = false;
			}
			if (ret == 0 && off == len)
				break;
			continue;
		}
		const struct imap_command *cmd;
		const char *tag, *error;
		bool cont;
		ret = imap_parser_next(p, &cmd, &cont, &tag, &error);
		if (ret > 0) {
			str_printfa(out, "%s %s", cmd->tag, cmd->name);
			if (cmd->arg_count > 0) {
				str_append_c(out, ' ');
				dump_args(out, cmd->args, cmd->arg_count);
			}
			str_append_c(out, '\n');
			if (strcmp(cmd->name, "AUTHENTICATE") == 0 ||
			    strcmp(cmd->name, "IDLE") == 0) {
				want_line = true;
				const char *l, *e;
				size_t ll;
				assert_int_equal(imap_parser_next_line(p, &l, &ll, &e), 0);
			}
		} else if (ret < 0) {
			str_printfa(out, "ERR %s: %s\n", tag == NULL ? "-" : tag, error);
		} else if (cont) {
			str_append(out, "+\n");
		} else if (off == len) {
			break;
		}
	}
	imap_parser_destroy(&p);
	assert_null(p);
	return str_steal(&out);
}

/* Parse whole, then in pieces of every size up to 17 and a few more: the
 * results must not depend on how the input was split. */
static char *run_all_ways(const struct imap_parser_settings *set, const char *in, size_t len)
{
	char *whole = run(set, in, len, len + 1);
	static const size_t chunks[] = {1, 2, 3, 4, 5, 7, 11, 13, 17, 64, 1000};
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		char *split = run(set, in, len, chunks[i]);
		if (strcmp(split, whole) != 0)
			fail_msg("chunk %zu:\n%s\nwhole:\n%s", chunks[i], split, whole);
		mem_free(split);
	}
	return whole;
}

#define RUN(in) run_all_ways(NULL, in, sizeof(in) - 1)

static void check(const struct imap_parser_settings *set, const char *in, size_t len,
		  const char *expected)
{
	char *got = run_all_ways(set, in, len);
	if (strcmp(got, expected) != 0)
		fail_msg("input:\n%.*s\ngot:\n%s\nexpected:\n%s", (int)len, in, got, expected);
	mem_free(got);
}

#define CHECK(in, expected) check(NULL, in, sizeof(in) - 1, expected)

/* ---- real client commands ---- */

static void test_rfc3501_examples(void **state)
{
	CHECK("a001 LOGIN SMITH SESAME\r\n"
	      "A142 SELECT INBOX\r\n"
	      "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n"
	      "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n"
	      "A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n"
	      "A003 STORE 2:4 +FLAGS (\\Deleted)\r\n"
	      "A002 LIST \"\" *\r\n"
	      "A202 LIST ~/Mail/ %\r\n"
	      "a002 NAMESPACE\r\n"
	      "A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n"
	      "A999 UID FETCH 4827313:4828442 FLAGS\r\n"
	      "a047 NOOP\r\n",
	      "a001 LOGIN SMITH SESAME\n"
	      "A142 SELECT INBOX\n"
	      "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\n"
	      "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\n"
	      "+\n"
	      "A284 SEARCH CHARSET UTF-8 TEXT {6}XXXXXX\n"
	      "A003 STORE 2:4 +FLAGS (\\Deleted)\n"
	      "A002 LIST \"\" *\n"
	      "A202 LIST ~/Mail/ %\n"
	      "a002 NAMESPACE\n"
	      "A042 STATUS blurdybloop (UIDNEXT MESSAGES)\n"
	      "A999 UID FETCH 4827313:4828442 FLAGS\n"
	      "a047 NOOP\n");
}

static void test_client_commands(void **state)
{
	CHECK(/* python imaplib, quoted password with a space, quote and backslash */
	      "ABCD1 LOGIN user \"pass word \\\"x\\\\y\"\r\n"
	      /* Thunderbird */
	      "1 capability\r\n"
	      "2 ID (\"name\" \"Thunderbird\" \"version\" \"115.3.1\")\r\n"
	      "3 ENABLE CONDSTORE\r\n"
	      "4 select \"&ZeVnLIqe-\"\r\n"
	      "5 UID fetch 1:* (FLAGS)\r\n"
	      "6 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] "
	      "BODY.PEEK[]<0.1024>)\r\n"
	      /* mutt */
	      "a0004 UID FETCH 1:5 (UID FLAGS INTERNALDATE RFC822.SIZE "
	      "BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT TO CC MESSAGE-ID)])\r\n"
	      /* mbsync */
	      "7 UID FETCH 1:3,5,9:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (\"Message-Id\")])\r\n"
	      /* fetchmail */
	      "A0005 STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)\r\n"
	      "A0006 UNSELECT\r\n"
	      "A0007 LIST \"\" \"*\" RETURN (SPECIAL-USE)\r\n"
	      "A0008 SEARCH nil\r\n",
	      "ABCD1 LOGIN user \"pass word \"x\\y\"\n"
	      "1 CAPABILITY\n"
	      "2 ID (\"name\" \"Thunderbird\" \"version\" \"115.3.1\")\n"
	      "3 ENABLE CONDSTORE\n"
	      "4 SELECT \"&ZeVnLIqe-\"\n"
	      "5 UID fetch 1:* (FLAGS)\n"
	      "6 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] "
	      "BODY.PEEK[]<0.1024>)\n"
	      "a0004 UID FETCH 1:5 (UID FLAGS INTERNALDATE RFC822.SIZE "
	      "BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT TO CC MESSAGE-ID)])\n"
	      "7 UID FETCH 1:3,5,9:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (\"Message-Id\")])\n"
	      "A0005 STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)\n"
	      "A0006 UNSELECT\n"
	      "A0007 LIST \"\" \"*\" RETURN (SPECIAL-USE)\n"
	      "A0008 SEARCH <NIL:nil>\n");
}

static void test_literals(void **state)
{
	CHECK("A1 SEARCH CHARSET UTF-8 SUBJECT {5}\r\ncaf\xc3\xa9 SINCE 1-Feb-2024\r\n"
	      "A2 APPEND INBOX (\\Seen) {11}\r\nHello World\r\n"
	      "A3 APPEND INBOX {7+}\r\na\0b\r\nc\n\r\n"
	      "A4 LOGIN {4+}\r\nuser {0}\r\n\r\n"
	      "A5 X ({1}\r\n) {2+}\r\n()) {1}\r\n(\r\n",
	      "+\n"
	      "A1 SEARCH CHARSET UTF-8 SUBJECT {5}caf\xc3\xa9 SINCE 1-Feb-2024\n"
	      "+\n"
	      "A2 APPEND INBOX (\\Seen) {11}Hello World\n"
	      "A3 APPEND INBOX {7}a\\x00b\\x0d\\x0ac\\x0a\n"
	      "+\n"
	      "A4 LOGIN {4}user {0}\n"
	      "+\n"
	      "+\n"
	      "A5 X ({1}) {2}()) {1}(\n");
}

static void test_line_ends_and_empty_lines(void **state)
{
	CHECK("A1 NOOP\n\r\n\nA2 LIST \"\" %\nA3 LOGIN {2}\na\"\n", "A1 NOOP\n"
								    "A2 LIST \"\" %\n"
								    "+\n"
								    "A3 LOGIN {2}a\"\n");
}

static void test_raw_lines(void **state)
{
	CHECK("A1 AUTHENTICATE PLAIN\r\nAGpvaG4Ac2VjcmV0\r\n"
	      "A2 IDLE\r\nDONE\r\n"
	      "A3 AUTHENTICATE PLAIN\r\n\r\n"
	      "A4 AUTHENTICATE PLAIN\r\n{5}\r\nA5 NOOP\r\n",
	      "A1 AUTHENTICATE PLAIN\n"
	      "LINE AGpvaG4Ac2VjcmV0\n"
	      "A2 IDLE\n"
	      "LINE DONE\n"
	      "A3 AUTHENTICATE PLAIN\n"
	      "LINE \n"
	      "A4 AUTHENTICATE PLAIN\n"
	      "LINE {5}\n"
	      "A5 NOOP\n");

	/* Too long: refused, skipped, and commands continue. */
	struct imap_parser_settings set = {.max_line = 20};
	const char in[] = "A1 IDLE\r\n0123456789012345678901234567890\r\nA2 NOOP\r\n";
	check(&set, in, sizeof(in) - 1,
	      "A1 IDLE\nLINE-ERR line too long: more than 20 bytes\nA2 NOOP\n");

	/* Asking for a line in the middle of a command is refused. */
	struct imap_parser *p = imap_parser_create(NULL);
	assert_int_equal(imap_parser_feed(p, "A1 NO", 5), 5);
	const char *line, *error;
	size_t len;
	assert_int_equal(imap_parser_next_line(p, &line, &len, &error), -1);
	assert_non_null(strstr(error, "middle of a command"));
	imap_parser_destroy(&p);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
	CHECK("A1 LIST (a b\r\n"
	      "A2 LIST a)\r\n"
	      " NOOP\r\n"
	      "A3 LIST a\"b\r\n"
	      "A4 X ~{5}\r\n"
	      "A5\r\n"
	      "A6 \r\n"
	      "A7 LOGIN \"abc\r\n"
	      "A8 LOGIN \"a\\nb\"\r\n"
	      "A9 LOGIN \"a\"\"b\"\r\n"
	      "A10 X {5} y\r\n"
	      "A11 X {}\r\n"
	      "A1{2 X\r\n"
	      "A12 X a\x01\r\n"
	      "A13 X BODY[HEADER\r\n"
	      "A14 X a\rb\r\n"
	      "*1 X\r\n"
	      "A15 NO\"OP\r\n"
	      "A16 NOOP\r\n",
	      "ERR A1: unbalanced parentheses: missing )\n"
	      "ERR A2: unbalanced parentheses: unexpected )\n"
	      "ERR -: missing tag\n"
	      "ERR A3: invalid character in atom: '\"'\n"
	      "ERR A4: literal8 (~{n}) is not supported\n"
	      "ERR A5: missing command name\n"
	      "ERR A6: missing command name\n"
	      "ERR A7: unterminated quoted string\n"
	      "ERR A8: invalid escape in quoted string: \\'n' (only \\\" and \\\\)\n"
	      "ERR A9: missing space between arguments before '\"'\n"
	      "ERR A10: literal {n} must be last on its line\n"
	      "ERR A11: invalid literal: expected {number} or {number+}\n"
	      "ERR -: invalid character in tag: '{'\n"
	      "ERR A12: invalid character in atom: 0x01\n"
	      "ERR A13: unbalanced brackets: missing ]\n"
	      "ERR A14: invalid character in atom: 0x0d\n"
	      "ERR -: missing tag\n"
	      "ERR A15: invalid character in command name: '\"'\n"
	      "A16 NOOP\n");
}

static void test_error_skips_its_literals(void **state)
{
	/* A synchronising literal after an error is never sent: the next line is
	 * a new command. A non-synchronising one is sent and skipped, with the
	 * rest of its line and any further literals. */
	CHECK("A1 LOGIN a\"b {5}\r\n"
	      "A2 LOGIN a\"b {5+}\r\nab\r\nc {3+}\r\nxyz\r\n"
	      "A3 LOGIN (((a {2+}\r\n))\r\n"
	      "A4 NOOP\r\n",
	      "ERR A1: invalid character in atom: '\"'\n"
	      "ERR A2: invalid character in atom: '\"'\n"
	      "ERR A3: unbalanced parentheses: missing )\n"
	      "A4 NOOP\n");
}

static void test_literal_limits(void **state)
{
	CHECK("A1 APPEND INBOX {70000}\r\nA2 NOOP\r\n",
	      "ERR A1: literal too large: 70000 bytes, at most 65536\nA2 NOOP\n");
	CHECK("A1 X {99999999999999999999999999}\r\nA2 NOOP\r\n",
	      "ERR A1: literal too large: 99999999999999999999999999 bytes, at most 65536\n"
	      "A2 NOOP\n");

	/* Non-synchronising: the bytes come anyway and are skipped. */
	size_t big = 70000;
	const char head[] = "A1 APPEND INBOX {70000+}\r\n", tail[] = "\r\nA2 NOOP\r\n";
	size_t len = strlen(head) + big + strlen(tail);
	char *in = mem_alloc(len);
	memcpy(in, head, strlen(head));
	memset(in + strlen(head), 'x', big);
	memcpy(in + strlen(head) + big, tail, strlen(tail));
	char *got = run(NULL, in, len, len);
	assert_string_equal(got,
			    "ERR A1: literal too large: 70000 bytes, at most 65536\nA2 NOOP\n");
	mem_free(got);
	got = run(NULL, in, len, 1);
	assert_string_equal(got,
			    "ERR A1: literal too large: 70000 bytes, at most 65536\nA2 NOOP\n");
	mem_free(got);
	mem_free(in);

	/* The refusal comes before any "+": the client is told at once. */
	struct imap_parser_settings set = {.max_literal = 10, .max_literals_total = 15};
	const char in2[] = "A1 X {10}\r\n0123456789 {6}\r\nA2 X {10}\r\n0123456789\r\n";
	check(&set, in2, sizeof(in2) - 1,
	      "+\nERR A1: literals too large: more than 15 bytes in one command\n"
	      "+\nA2 X {10}0123456789\n");
}

static void test_refused_literals(void **state)
{
	/* APPEND on a read-only server: refused before the literal, without
	 * "+"; a LITERAL+ literal (even a big one) is skipped; other commands
	 * keep their literals. */
	static const char *const refused[] = {"APPEND", NULL};
	struct imap_parser_settings set = {.refuse_literals = refused,
					   .refuse_text = "[CANNOT] read-only"};
	const char in[] = "A1 APPEND INBOX {5}\r\n"
			  "A2 APPEND INBOX (\\Seen) {5+}\r\nhello\r\n"
			  "A3 LOGIN {1}\r\na b\r\n"
			  "A4 APPEND INBOX {99999999+}\r\n";
	check(&set, in, sizeof(in) - 1,
	      "ERR A1: [CANNOT] read-only\nERR A2: [CANNOT] read-only\n+\nA3 LOGIN {1}a b\n"
	      "ERR A4: [CANNOT] read-only\n");
	struct imap_parser *p = imap_parser_create(&set);
	const char one[] = "A1 APPEND INBOX {5}\r\n";
	assert_int_equal(imap_parser_feed(p, one, sizeof(one) - 1), sizeof(one) - 1);
	const struct imap_command *cmd;
	const char *tag, *error;
	bool cont;
	assert_int_equal(imap_parser_next(p, &cmd, &cont, &tag, &error), -1);
	assert_true(imap_parser_refused(p));
	const char two[] = "A2 APPEND x\r\n";
	(void)imap_parser_feed(p, two, sizeof(two) - 1);
	assert_int_equal(imap_parser_next(p, &cmd, &cont, &tag, &error), 1);
	assert_false(imap_parser_refused(p));
	imap_parser_destroy(&p);
}

static void test_line_limit(void **state)
{
	struct imap_parser_settings set = {.max_line = 30};
	const char in[] = "A1 FETCH 1,2,3,4,5,6,7,8,9,10,11,12 FLAGS\r\n"
			  "A2 LOGIN {3}\r\nabc 0123456789012345678901234\r\n"
			  "0123456789012345678901234567890123456789 {3+}\r\nabc\r\n"
			  "A3 FETCH 1:* FLAGS\r\n";
	check(&set, in, sizeof(in) - 1,
	      "ERR A1: line too long: more than 30 bytes\n"
	      "+\n"
	      "ERR A2: line too long: more than 30 bytes\n"
	      "ERR -: line too long: more than 30 bytes\n"
	      "A3 FETCH 1:* FLAGS\n");

	/* The default allows a 200 KB sequence set. */
	struct str *s = str_create(256 * 1024);
	str_append(s, "A1 UID FETCH 1");
	for (unsigned int i = 3; str_len(s) < 200 * 1024; i += 2)
		str_printfa(s, ",%u", i);
	str_append(s, " FLAGS\r\n");
	struct imap_parser *p = imap_parser_create(NULL);
	assert_int_equal(imap_parser_feed(p, str_c(s), str_len(s)), str_len(s));
	const struct imap_command *cmd;
	const char *tag, *error;
	bool cont;
	assert_int_equal(imap_parser_next(p, &cmd, &cont, &tag, &error), 1);
	assert_int_equal(cmd->arg_count, 3);
	assert_true(cmd->args[1].len > 200 * 1000);
	imap_parser_destroy(&p);
	str_destroy(&s);
}

static void test_depth_and_arg_limits(void **state)
{
	CHECK("A1 X ((((((((((((((((a))))))))))))))))\r\n"
	      "A2 X (((((((((((((((((a)))))))))))))))))\r\n",
	      "A1 X ((((((((((((((((a))))))))))))))))\n"
	      "ERR A2: parentheses nested too deeply: more than 16 levels\n");

	struct imap_parser_settings set = {.max_args = 4};
	const char in[] = "A1 X a (b) c\r\nA2 X a (b c) d\r\nA3 X a b c d e {1+}\r\nx\r\n"
			  "A4 NOOP\r\n";
	check(&set, in, sizeof(in) - 1,
	      "A1 X a (b) c\nERR A2: too many arguments: more than 4\n"
	      "ERR A3: too many arguments: more than 4\nA4 NOOP\n");
}

static void test_command_fields(void **state)
{
	struct imap_parser *p = imap_parser_create(NULL);
	const char in[] = "t1 uid Fetch 1:* (FLAGS (a \"b\") NIL)\r\n";
	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1), sizeof(in) - 1);
	const struct imap_command *cmd;
	const char *tag, *error, *str;
	bool cont;
	assert_int_equal(imap_parser_next(p, &cmd, &cont, &tag, &error), 1);
	assert_string_equal(cmd->tag, "t1");
	assert_string_equal(cmd->name, "UID");
	assert_string_equal(cmd->args_raw, "Fetch 1:* (FLAGS (a \"b\") NIL)");
	assert_int_equal(cmd->arg_count, 3);
	assert_true(imap_arg_atom_equals(&cmd->args[0], "FETCH"));
	const struct imap_arg *list, *inner;
	unsigned int count, inner_count;
	assert_true(imap_arg_get_list(&cmd->args[2], &list, &count));
	assert_int_equal(count, 3);
	assert_true(imap_arg_get_list(&list[1], &inner, &inner_count));
	assert_int_equal(inner_count, 2);
	assert_true(imap_arg_get_string(&inner[1], &str));
	assert_string_equal(str, "b");
	assert_false(imap_arg_get_string(&inner[0], &str));
	assert_true(imap_arg_get_astring(&inner[0], &str));
	assert_true(imap_arg_get_nstring(&list[2], &str));
	assert_null(str);
	assert_true(imap_arg_get_astring(&list[2], &str));
	assert_string_equal(str, "NIL");
	assert_false(imap_arg_get_astring(&list[1], &str));
	assert_false(imap_arg_get_list(NULL, &inner, &inner_count));
	assert_string_equal(imap_arg_type_name(IMAP_ARG_LITERAL), "literal");
	/* Nothing more. */
	assert_int_equal(imap_parser_next(p, &cmd, &cont, &tag, &error), 0);
	assert_false(cont);
	imap_parser_destroy(&p);
}

static void test_astring_refuses_nul(void **state)
{
	struct imap_parser *p = imap_parser_create(NULL);
	const char in[] = "A1 LOGIN {3+}\r\na\0b x\r\n";
	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1), sizeof(in) - 1);
	const struct imap_command *cmd;
	const char *tag, *error, *str;
	bool cont;
	assert_int_equal(imap_parser_next(p, &cmd, &cont, &tag, &error), 1);
	assert_int_equal(cmd->args[0].type, IMAP_ARG_LITERAL);
	assert_int_equal(cmd->args[0].len, 3);
	assert_false(imap_arg_get_astring(&cmd->args[0], &str));
	imap_parser_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3501_examples),
		cmocka_unit_test(test_client_commands),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_line_ends_and_empty_lines),
		cmocka_unit_test(test_raw_lines),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_refused_literals),
		cmocka_unit_test(test_error_skips_its_literals),
		cmocka_unit_test(test_literal_limits),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_depth_and_arg_limits),
		cmocka_unit_test(test_command_fields),
		cmocka_unit_test(test_astring_refuses_nul),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
