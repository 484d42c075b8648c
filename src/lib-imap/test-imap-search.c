#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "imap-parser.h"
#include "imap-search.h"
#include "mem.h"
#include "str.h"

static void dump(struct str *out, const struct imap_search_node *node)
{
	str_append(out, imap_search_type_name(node->type));
	switch (node->type) {
	case IMAP_SEARCH_HEADER:
		str_printfa(out, " %s \"%s\"", node->field, node->value);
		break;
	case IMAP_SEARCH_FLAG:
	case IMAP_SEARCH_KEYWORD:
	case IMAP_SEARCH_BODY:
	case IMAP_SEARCH_TEXT:
		str_printfa(out, " \"%s\"", node->value);
		break;
	case IMAP_SEARCH_BEFORE:
	case IMAP_SEARCH_ON:
	case IMAP_SEARCH_SINCE:
	case IMAP_SEARCH_SENTBEFORE:
	case IMAP_SEARCH_SENTON:
	case IMAP_SEARCH_SENTSINCE:
		str_printfa(out, " %lld", (long long)node->day);
		break;
	case IMAP_SEARCH_LARGER:
	case IMAP_SEARCH_SMALLER:
		str_printfa(out, " %llu", (unsigned long long)node->size);
		break;
	case IMAP_SEARCH_SEQSET:
	case IMAP_SEARCH_UID: {
		const struct imap_seqset_range *r = imap_seqset_ranges(node->seqset);
		for (unsigned int i = 0; i < imap_seqset_range_count(node->seqset); i++)
			str_printfa(out, "%s%u:%u", i == 0 ? " " : ",", r[i].first, r[i].last);
		break;
	}
	default:
		break;
	}
	if (node->children.count > 0) {
		str_append(out, " (");
		for (unsigned int i = 0; i < node->children.count; i++) {
			if (i > 0)
				str_append(out, ", ");
			dump(out, node->children.items[i]);
		}
		str_append_c(out, ')');
	}
}

/* Parse "A SEARCH <criteria>" with the command parser, then the criteria;
 * returns the tree as text or "ERROR <text>". */
static char *search(const char *criteria, unsigned int max_depth)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct str *in = str_create(64);
	str_printfa(in, "A SEARCH %s\r\n", criteria);
	size_t off = 0;
	const struct imap_command *cmd = NULL;
	const char *tag, *error;
	bool cont;
	while (cmd == NULL) {
		off += imap_parser_feed(p, str_c(in) + off, str_len(in) - off);
		int ret = imap_parser_next(p, &cmd, &cont, &tag, &error);
		if (ret < 0)
			fail_msg("%s: %s", criteria, error);
		if (ret == 0 && !cont && off == str_len(in))
			fail_msg("%s: incomplete", criteria);
	}
	struct imap_search_settings set = {.star_seq = 10, .star_uid = 500, .max_depth = max_depth};
	struct imap_search_node *root;
	struct str *out = str_create(64);
	if (imap_search_parse(cmd->args, cmd->arg_count, &set, &root, &error) < 0) {
		assert_null(root);
		str_printfa(out, "ERROR %s", error);
	} else {
		dump(out, root);
		imap_search_destroy(&root);
		assert_null(root);
	}
	imap_parser_destroy(&p);
	str_destroy(&in);
	return str_steal(&out);
}

static void check(const char *criteria, const char *expected)
{
	char *got = search(criteria, 0);
	if (strcmp(got, expected) != 0)
		fail_msg("%s:\ngot      %s\nexpected %s", criteria, got, expected);
	mem_free(got);
}

static void test_search_keys(void **state)
{
	check("ALL", "ALL");
	check("all", "ALL");
	check("FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
	      "AND (FLAG \"\\Flagged\", SINCE 8797, NOT (HEADER From \"Smith\"))");
	check("ANSWERED DELETED DRAFT SEEN RECENT",
	      "AND (FLAG \"\\Answered\", FLAG \"\\Deleted\", FLAG \"\\Draft\", "
	      "FLAG \"\\Seen\", FLAG \"\\Recent\")");
	check("UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN OLD",
	      "AND (NOT (FLAG \"\\Answered\"), NOT (FLAG \"\\Deleted\"), NOT (FLAG \"\\Draft\"), "
	      "NOT (FLAG \"\\Flagged\"), NOT (FLAG \"\\Seen\"), NOT (FLAG \"\\Recent\"))");
	check("NEW", "AND (FLAG \"\\Recent\", NOT (FLAG \"\\Seen\"))");
	check("KEYWORD $Forwarded UNKEYWORD Junk",
	      "AND (KEYWORD \"$Forwarded\", NOT (KEYWORD \"Junk\"))");
	check("BCC a CC b TO c SUBJECT \"d e\"",
	      "AND (HEADER Bcc \"a\", HEADER Cc \"b\", HEADER To \"c\", HEADER Subject \"d e\")");
	check("HEADER Message-ID \"<x@y>\" HEADER X-Spam \"\"",
	      "AND (HEADER Message-ID \"<x@y>\", HEADER X-Spam \"\")");
	check("BODY hello TEXT {5}\r\nworld", "AND (BODY \"hello\", TEXT \"world\")");
	check("BEFORE 1-Jan-1970 ON 2-Jan-1970 SINCE \"31-Dec-1969\" SENTBEFORE 1-Jan-2000 "
	      "SENTON 1-Feb-2024 SENTSINCE 29-Feb-2024",
	      "AND (BEFORE 0, ON 1, SINCE -1, SENTBEFORE 10957, SENTON 19754, SENTSINCE 19782)");
	check("LARGER 1024 SMALLER 4294967296", "AND (LARGER 1024, SMALLER 4294967296)");
	check("OR SEEN FLAGGED", "OR (FLAG \"\\Seen\", FLAG \"\\Flagged\")");
	check("OR (SEEN FLAGGED) (DELETED)",
	      "OR (AND (FLAG \"\\Seen\", FLAG \"\\Flagged\"), FLAG \"\\Deleted\")");
	check("1:3,7:* UID 400:*", "AND (SEQSET 1:3,7:10, UID 400:500)");
	check("*", "SEQSET 10:10");
	check("UID 1,3:5", "UID 1:1,3:5");
	check("CHARSET UTF-8 SUBJECT caf\xc3\xa9", "HEADER Subject \"caf\xc3\xa9\"");
	check("CHARSET us-ascii ALL", "ALL");
	check("((((ALL))))", "ALL");
}

static void test_search_errors(void **state)
{
	check("CHARSET ISO-8859-1 ALL",
	      "ERROR [BADCHARSET (UTF-8 US-ASCII)] unsupported charset: ISO-8859-1");
	check("CHARSET", "ERROR CHARSET needs a charset name");
	check("CHARSET UTF-8", "ERROR missing search criteria");
	check("FOO", "ERROR unknown search key: FOO");
	check("SUBJECT", "ERROR SUBJECT needs a string");
	check("SUBJECT (a)", "ERROR SUBJECT needs a string, not a list");
	check("HEADER Subject", "ERROR HEADER needs a string");
	check("HEADER \"\" x", "ERROR HEADER needs a header field name, not \"\"");
	check("SINCE 31-Feb-2024",
	      "ERROR invalid date \"31-Feb-2024\" (expected d-Mon-yyyy, as in 1-Feb-2024)");
	check("SINCE", "ERROR SINCE needs a date (1-Feb-2024)");
	check("LARGER x", "ERROR LARGER needs a size in bytes, not \"x\"");
	check("LARGER 99999999999999999999999", "ERROR LARGER needs a size in bytes, not "
						"\"99999999999999999999999\"");
	check("SMALLER", "ERROR SMALLER needs a size in bytes");
	check("OR SEEN", "ERROR OR needs two search keys");
	check("NOT", "ERROR NOT needs a search key");
	check("()", "ERROR empty parentheses in search criteria");
	check("\"ALL\"", "ERROR search key expected, got a quoted string");
	check("KEYWORD", "ERROR KEYWORD needs a keyword (an atom)");
	check("KEYWORD \"a\"", "ERROR KEYWORD needs a keyword (an atom)");
	check("UID", "ERROR UID needs a sequence set");
	check("UID ALL", "ERROR invalid sequence set \"ALL\": invalid character at offset 0 "
			 "(expected numbers 1..4294967295 or *, as in 1,3:5,7:*)");
	check("1,,2", "ERROR invalid sequence set \"1,,2\": empty range at offset 2 "
		      "(expected numbers 1..4294967295 or *, as in 1,3:5,7:*)");

	/* A literal with NUL (str_printfa above would cut it short). */
	struct imap_arg args[] = {{.type = IMAP_ARG_ATOM, .str = "BODY", .len = 4},
				  {.type = IMAP_ARG_LITERAL, .str = "a\0b", .len = 3}};
	struct imap_search_settings set = {0};
	struct imap_search_node *root;
	const char *error;
	assert_int_equal(imap_search_parse(args, 2, &set, &root, &error), -1);
	assert_string_equal(error, "BODY: NUL in a string is not searchable");
	assert_int_equal(imap_search_parse(args, 0, &set, &root, &error), -1);
	assert_string_equal(error, "missing search criteria");
}

static void test_search_depth(void **state)
{
	struct str *s = str_create(256);
	for (int i = 0; i < 40; i++)
		str_append(s, "NOT ");
	str_append(s, "SEEN");
	char *got = search(str_c(s), 0);
	assert_string_equal(got, "ERROR search criteria nested too deeply: more than 32 levels");
	mem_free(got);
	got = search("NOT NOT NOT SEEN", 3);
	assert_string_equal(got, "NOT (NOT (NOT (FLAG \"\\Seen\")))");
	mem_free(got);
	got = search("NOT NOT NOT NOT SEEN", 3);
	assert_string_equal(got, "ERROR search criteria nested too deeply: more than 3 levels");
	mem_free(got);
	got = search("(((SEEN)))", 2);
	assert_string_equal(got, "ERROR search criteria nested too deeply: more than 2 levels");
	mem_free(got);
	str_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_search_keys),
		cmocka_unit_test(test_search_errors),
		cmocka_unit_test(test_search_depth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
