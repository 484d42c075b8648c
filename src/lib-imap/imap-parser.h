#ifndef COFFER_IMAP_PARSER_H
#define COFFER_IMAP_PARSER_H
/* imap-parser: an incremental parser of IMAP client commands (RFC 3501 with
 * LITERAL+). No I/O: the caller hands over bytes as they arrive.
 *
 * Flow. imap_parser_feed() takes bytes and returns how many it consumed; it
 * stops early (possibly consuming 0) when a result is ready, so the caller
 * keeps the rest and feeds it again after calling imap_parser_next(), which
 * returns:
 *   1  *cmd_r holds a complete command: tag, upper-cased name, arguments;
 *   0  more input is needed; *continuation_r is true (once per literal) when
 *      the client announced a synchronising literal {n} and waits for the
 *      server's "+ " before sending it;
 *  -1  the command is bad: *error_r says why in words for the client
 *      ("BAD <error>"), *tag_r is its tag or NULL when none could be read.
 * Everything returned is valid until the next call of any parser function.
 * A typical loop:
 *	n = imap_parser_feed(p, data, len); data += n; len -= n;
 *	while ((ret = imap_parser_next(p, &cmd, &cont, &tag, &error)) != 0) ...
 *	    (and feed again while bytes remain)
 *
 * After an error the parser skips the rest of the command line, including any
 * non-synchronising literal announced on it, and carries on with the next
 * command. A synchronising literal that is refused (too large, literal8, or a
 * syntax error earlier on its line) ends the command at once: the client must
 * not send it, since it never saw "+ ". A non-synchronising literal {n+} that
 * is too large is skipped byte by byte; a server may prefer to disconnect.
 *
 * Lines end in CRLF or a bare LF. Completely empty lines are ignored.
 * Literal8 (~{n}) is refused. NUL and other control characters are refused
 * outside literals.
 *
 * Raw lines. AUTHENTICATE's SASL responses and IDLE's "DONE" are not commands:
 * after such a command, call imap_parser_next_line() instead of
 * imap_parser_next() to receive the next line as it is (CRLF removed, at most
 * max_line bytes); after it returns 1 the parser is back to reading commands.
 *
 * Limits (struct imap_parser_settings; a 0 field takes the default):
 *  max_line            command text without literals, all its lines together
 *                      (256 KiB: clients send long sequence sets)
 *  max_literal         one literal (64 KiB; a read-only server needs no more)
 *  max_literals_total  all literals of one command (1 MiB)
 *  max_depth           parenthesis nesting (16)
 *  max_args            arguments, list elements included (4096) */
#include <stdbool.h>
#include <stddef.h>

#include "imap-arg.h"

#define IMAP_PARSER_DEFAULT_MAX_LINE (256 * 1024)
#define IMAP_PARSER_DEFAULT_MAX_LITERAL (64 * 1024)
#define IMAP_PARSER_DEFAULT_MAX_LITERALS_TOTAL (1024 * 1024)
#define IMAP_PARSER_DEFAULT_MAX_DEPTH 16
#define IMAP_PARSER_DEFAULT_MAX_ARGS 4096

struct imap_parser_settings {
	size_t max_line;
	size_t max_literal;
	size_t max_literals_total;
	unsigned int max_depth;
	unsigned int max_args;
	/* Commands (upper-case names, NULL-terminated) whose literals are
	 * refused before they are sent: a synchronising literal gets no "+ "
	 * (the command ends at once), a non-synchronising one is read and
	 * dropped with the rest of the command. imap_parser_next() then returns
	 * -1 with refuse_text as the error, and imap_parser_refused() is true:
	 * a read-only server answers APPEND with NO, not a continuation. */
	const char *const *refuse_literals;
	const char *refuse_text;
};

struct imap_command {
	const char *tag;
	const char *name; /* upper-cased */
	const struct imap_arg *args;
	unsigned int arg_count;
	/* The first line's text after the command name and its space, as
	 * received (CRLF removed, literals not included): for logging and for
	 * commands that read their own syntax. */
	const char *args_raw;
};

struct imap_parser;

/* set may be NULL for all defaults. */
struct imap_parser *imap_parser_create(const struct imap_parser_settings *set);
void imap_parser_destroy(struct imap_parser **parser);

/* Returns the number of bytes consumed (<= len). */
size_t imap_parser_feed(struct imap_parser *parser, const void *data, size_t len);
int imap_parser_next(struct imap_parser *parser, const struct imap_command **cmd_r,
		     bool *continuation_r, const char **tag_r, const char **error_r);
/* Whether the error just returned by imap_parser_next() was a refused
 * literal (see refuse_literals) rather than bad syntax. */
bool imap_parser_refused(const struct imap_parser *parser);
/* Read the next line raw. 1: *line_r (NUL-terminated, *len_r bytes, may
 * contain NUL) holds it; 0: feed more; -1: line too long (it is skipped) or
 * called in the middle of a command. */
int imap_parser_next_line(struct imap_parser *parser, const char **line_r, size_t *len_r,
			  const char **error_r);

#endif
