/* The parser works in two layers. Framing (imap_parser_feed) splits the byte
 * stream into command lines and literals: it tracks just enough syntax - quoted
 * strings and a trailing {n} / {n+} - to know where a literal starts and how
 * long it is, and stores the command with CRLFs removed and literal bytes
 * inline. Tokenizing (parse_segment) runs once per complete line, resuming
 * where the previous line's literal ended, so every byte is looked at a bounded
 * number of times however the input is split. */
#include "imap-parser.h"
#include "array.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

enum parser_mode { MODE_COMMAND, MODE_LINE };
enum frame_state { FRAME_IDLE, FRAME_LINE, FRAME_LITERAL };
enum lit_state { LIT_NONE, LIT_OPEN, LIT_PLUS, LIT_CLOSED };
enum result { RESULT_NONE, RESULT_COMMAND, RESULT_ERROR, RESULT_CONTINUATION, RESULT_LINE };
enum stage { STAGE_TAG, STAGE_NAME, STAGE_ARGS };

/* An argument while the command is being read: offsets, since the buffers
 * move as they grow. */
struct pnode {
	enum imap_arg_type type;
	unsigned int parent; /* index + 1 of the enclosing list, 0 at top level */
	unsigned int index;  /* position within the parent */
	unsigned int count;  /* lists: children */
	unsigned int first;  /* lists: where the children go in the output */
	size_t off, len;     /* literals: in cmd; other strings: in vals */
};

struct imap_parser {
	struct imap_parser_settings set;
	enum parser_mode mode;
	enum result result;
	struct str *error;

	/* framing */
	enum frame_state frame;
	bool skipping; /* the command failed: discard the rest of it */
	bool in_quote, quote_escape;
	int prev; /* the line's previous byte, -1 at its start */
	enum lit_state lit;
	bool lit_nonsync, lit_overflow;
	unsigned int lit_digits;
	uint64_t lit_size;
	size_t line_start; /* where the current line starts in cmd */
	size_t text_len;   /* non-literal bytes of the command */
	size_t literal_total;
	uint64_t literal_left;
	struct str *cmd;

	/* tokenizing */
	enum stage stage;
	size_t pos;
	bool need_sep;
	bool have_tag;
	bool refused; /* the error is a refused literal (refuse_literals) */
	size_t tag_off, name_off, raw_off;
	unsigned int *stack;
	unsigned int depth;
	ARRAY(struct pnode) nodes;
	unsigned int top_count;
	struct str *vals;

	/* the result */
	struct imap_arg *out;
	unsigned int out_cap;
	struct imap_command command;
};

struct imap_parser *imap_parser_create(const struct imap_parser_settings *set)
{
	struct imap_parser *p = mem_new(struct imap_parser);
	if (set != NULL)
		p->set = *set;
	if (p->set.max_line == 0)
		p->set.max_line = IMAP_PARSER_DEFAULT_MAX_LINE;
	if (p->set.max_literal == 0)
		p->set.max_literal = IMAP_PARSER_DEFAULT_MAX_LITERAL;
	if (p->set.max_literals_total == 0)
		p->set.max_literals_total = IMAP_PARSER_DEFAULT_MAX_LITERALS_TOTAL;
	if (p->set.max_depth == 0)
		p->set.max_depth = IMAP_PARSER_DEFAULT_MAX_DEPTH;
	if (p->set.max_args == 0)
		p->set.max_args = IMAP_PARSER_DEFAULT_MAX_ARGS;
	p->error = str_create(128);
	p->cmd = str_create(256);
	p->vals = str_create(256);
	p->stack = mem_calloc(p->set.max_depth, sizeof(*p->stack));
	return p;
}

void imap_parser_destroy(struct imap_parser **parser)
{
	struct imap_parser *p = *parser;
	if (p == NULL)
		return;
	str_destroy(&p->error);
	str_destroy(&p->cmd);
	str_destroy(&p->vals);
	mem_free(p->stack);
	array_free(&p->nodes);
	mem_free(p->out);
	mem_free(p);
	*parser = NULL;
}

static void set_error(struct imap_parser *p, const char *error)
{
	str_truncate(p->error, 0);
	str_append(p->error, error);
	p->result = RESULT_ERROR;
}

/* A character for an error text: 'x' when printable, 0xNN otherwise. */
static const char *char_name(unsigned char c)
{
	if (c > 0x20 && c < 0x7f)
		return tstr_printf("'%c'", c);
	return tstr_printf("0x%02x", c);
}

/* Where the tokenizer takes '"' to start a quoted string (elsewhere it is an
 * error): framing must agree, or it would miss literals after such errors. */
static bool quote_may_start(int prev)
{
	return prev < 0 || prev == ' ' || prev == '(' || prev == '[';
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* ATOM-CHAR plus ']' (ASTRING-CHAR) and the list wildcards / '*' of sequence
 * sets, which RFC 3501 leaves to separate rules. 8-bit bytes are accepted:
 * clients send raw UTF-8 in atoms. */
static bool is_arg_atom_char(unsigned char c)
{
	return !is_ctl(c) && c != ' ' && c != '(' && c != ')' && c != '{' && c != '"' &&
	       c != '\\' && c != '[';
}

static bool is_tag_char(unsigned char c)
{
	return is_arg_atom_char(c) && c != '%' && c != '*' && c != '+' && c < 0x80;
}

static void reset_command(struct imap_parser *p)
{
	p->refused = false;
	str_truncate(p->cmd, 0);
	str_truncate(p->vals, 0);
	p->skipping = false;
	p->line_start = 0;
	p->text_len = 0;
	p->literal_total = 0;
	p->stage = STAGE_TAG;
	p->pos = 0;
	p->need_sep = false;
	p->have_tag = false;
	p->depth = 0;
	p->nodes.count = 0;
	p->top_count = 0;
}

static void start_line(struct imap_parser *p)
{
	p->frame = FRAME_LINE;
	p->line_start = str_len(p->cmd);
	p->in_quote = false;
	p->quote_escape = false;
	p->lit = LIT_NONE;
	p->prev = -1;
}

static size_t append_val(struct imap_parser *p, const void *data, size_t len)
{
	size_t off = str_len(p->vals);
	str_append_n(p->vals, data, len);
	str_append_c(p->vals, '\0');
	return off;
}

/* ---- tokenizing ---- */

static int add_node(struct imap_parser *p, enum imap_arg_type type, size_t off, size_t len)
{
	if (p->nodes.count >= p->set.max_args) {
		set_error(p, tstr_printf("too many arguments: more than %u", p->set.max_args));
		return -1;
	}
	struct pnode *n = array_push(&p->nodes);
	n->type = type;
	n->off = off;
	n->len = len;
	if (p->depth > 0) {
		n->parent = p->stack[p->depth - 1] + 1;
		n->index = p->nodes.items[n->parent - 1].count++;
	} else {
		n->index = p->top_count++;
	}
	return 0;
}

static int parse_quoted(struct imap_parser *p, const char *s, size_t end)
{
	size_t start = str_len(p->vals);
	for (size_t i = p->pos + 1; i < end; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"') {
			size_t len = str_len(p->vals) - start;
			str_append_c(p->vals, '\0');
			p->pos = i + 1;
			return add_node(p, IMAP_ARG_STRING, start, len);
		}
		if (c == '\\') {
			if (i + 1 >= end || (s[i + 1] != '"' && s[i + 1] != '\\')) {
				set_error(p, i + 1 >= end
						     ? "unterminated quoted string"
						     : tstr_printf(
							       "invalid escape in quoted string: "
							       "\\%s (only \\\" and \\\\)",
							       char_name((unsigned char)s[i + 1])));
				return -1;
			}
			c = (unsigned char)s[++i];
		} else if (c == '\0' || c == '\r') {
			set_error(p, tstr_printf("invalid character in quoted string: %s",
						 char_name(c)));
			return -1;
		}
		str_append_c(p->vals, (char)c);
	}
	set_error(p, "unterminated quoted string");
	return -1;
}

/* Inside [...] of a FETCH atom a quoted string may stand for a header name. */
static int skip_bracket_quoted(struct imap_parser *p, const char *s, size_t end, size_t *i)
{
	for (size_t j = *i + 1; j < end; j++) {
		if (s[j] == '\\' && j + 1 < end)
			j++;
		else if (s[j] == '"') {
			*i = j;
			return 0;
		}
	}
	set_error(p, "unterminated quoted string");
	return -1;
}

static int parse_atom(struct imap_parser *p, const char *s, size_t end)
{
	size_t start = p->pos, i = start;
	unsigned int brackets = 0;
	for (; i < end; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '[') {
			brackets++;
		} else if (brackets > 0) {
			if (c == ']')
				brackets--;
			else if (c == '"' && quote_may_start((unsigned char)s[i - 1])) {
				if (skip_bracket_quoted(p, s, end, &i) < 0)
					return -1;
			} else if (is_ctl(c) || c == '{' || c == '"') {
				set_error(p, tstr_printf("invalid character in atom: %s",
							 char_name(c)));
				return -1;
			}
		} else if (c == ' ' || c == ')') {
			break;
		} else if (!is_arg_atom_char(c) && !(c == '\\' && i == start)) {
			set_error(p, tstr_printf("invalid character in atom: %s", char_name(c)));
			return -1;
		}
	}
	if (brackets > 0) {
		set_error(p, "unbalanced brackets: missing ]");
		return -1;
	}
	size_t len = i - start;
	enum imap_arg_type type = IMAP_ARG_ATOM;
	if (len == 3 && strncasecmp(s + start, "NIL", 3) == 0)
		type = IMAP_ARG_NIL;
	p->pos = i;
	return add_node(p, type, append_val(p, s + start, len), len);
}

/* A literal marker {n} or {n+}, which the framing saw end the line. */
/* Does the command being read have its literals refused? */
static bool literal_refused(const struct imap_parser *p)
{
	if (p->set.refuse_literals == NULL || p->stage == STAGE_TAG || p->stage == STAGE_NAME)
		return false;
	const char *name = str_c(p->vals) + p->name_off;
	for (const char *const *r = p->set.refuse_literals; *r != NULL; r++) {
		if (strcmp(name, *r) == 0)
			return true;
	}
	return false;
}

bool imap_parser_refused(const struct imap_parser *p)
{
	return p->refused;
}

static int parse_literal(struct imap_parser *p, const char *s, size_t end, bool literal_ahead)
{
	size_t i = p->pos;
	if (s[i] == '~') {
		set_error(p, "literal8 (~{n}) is not supported");
		return -1;
	}
	size_t digits = ++i;
	uint64_t size = 0;
	bool big = false;
	for (; i < end && s[i] >= '0' && s[i] <= '9'; i++) {
		if (size > (UINT64_MAX - 9) / 10)
			big = true;
		else
			size = size * 10 + (uint64_t)(s[i] - '0');
	}
	size_t digit_count = i - digits;
	if (literal_refused(p)) {
		p->refused = true;
		set_error(p, p->set.refuse_text != NULL ? p->set.refuse_text : "literal refused");
		return -1;
	}
	if (i < end && s[i] == '+')
		i++;
	if (digit_count == 0 || i >= end || s[i] != '}') {
		set_error(p, "invalid literal: expected {number} or {number+}");
		return -1;
	}
	if (i + 1 != end || !literal_ahead) {
		set_error(p, "literal {n} must be last on its line");
		return -1;
	}
	if (big || size > p->set.max_literal) {
		set_error(p, tstr_printf("literal too large: %.*s bytes, at most %zu",
					 digit_count > 30 ? 30 : (int)digit_count, s + digits,
					 p->set.max_literal));
		return -1;
	}
	if (p->literal_total + size > p->set.max_literals_total) {
		set_error(p, tstr_printf("literals too large: more than %zu bytes in one command",
					 p->set.max_literals_total));
		return -1;
	}
	if (add_node(p, IMAP_ARG_LITERAL, end, (size_t)size) < 0)
		return -1;
	p->literal_total += size;
	p->pos = end + size; /* the literal's bytes will be stored from `end` on */
	return 1;
}

static int parse_tag(struct imap_parser *p, const char *s, size_t end)
{
	size_t i = p->pos;
	while (i < end && is_tag_char((unsigned char)s[i]))
		i++;
	if (i == p->pos) {
		set_error(p, "missing tag");
		return -1;
	}
	if (i < end && s[i] != ' ') {
		set_error(p, tstr_printf("invalid character in tag: %s",
					 char_name((unsigned char)s[i])));
		return -1;
	}
	p->tag_off = append_val(p, s + p->pos, i - p->pos);
	p->have_tag = true;
	if (i == end) {
		set_error(p, "missing command name");
		return -1;
	}
	p->pos = i + 1;
	p->stage = STAGE_NAME;
	return 0;
}

static int parse_name(struct imap_parser *p, const char *s, size_t end)
{
	size_t i = p->pos;
	while (i < end && is_tag_char((unsigned char)s[i]))
		i++;
	if (i == p->pos) {
		set_error(p, "missing command name");
		return -1;
	}
	if (i < end && s[i] != ' ') {
		set_error(p, tstr_printf("invalid character in command name: %s",
					 char_name((unsigned char)s[i])));
		return -1;
	}
	p->name_off = append_val(p, s + p->pos, i - p->pos);
	char *name = (char *)str_c(p->vals) + p->name_off;
	for (; *name != '\0'; name++)
		*name = (char)toupper((unsigned char)*name);
	if (i < end)
		i++;
	p->raw_off = append_val(p, s + i, end - i);
	p->pos = i;
	p->stage = STAGE_ARGS;
	return 0;
}

/* Tokenize cmd[pos, end): the rest of the line just completed. literal_ahead:
 * the framing saw a literal marker end it. */
static int parse_segment(struct imap_parser *p, size_t end, bool literal_ahead)
{
	const char *s = str_c(p->cmd);
	if (p->stage == STAGE_TAG && parse_tag(p, s, end) < 0)
		return -1;
	if (p->stage == STAGE_NAME && parse_name(p, s, end) < 0)
		return -1;
	while (p->pos < end) {
		unsigned char c = (unsigned char)s[p->pos];
		if (c == ' ') {
			p->pos++;
			p->need_sep = false;
			continue;
		}
		if (c == ')') {
			if (p->depth == 0) {
				set_error(p, "unbalanced parentheses: unexpected )");
				return -1;
			}
			p->depth--;
			p->pos++;
			p->need_sep = true;
			continue;
		}
		if (p->need_sep) {
			set_error(p, tstr_printf("missing space between arguments before %s",
						 char_name(c)));
			return -1;
		}
		int ret;
		if (c == '(') {
			if (p->depth >= p->set.max_depth) {
				set_error(p, tstr_printf("parentheses nested too deeply: "
							 "more than %u levels",
							 p->set.max_depth));
				return -1;
			}
			if (add_node(p, IMAP_ARG_LIST, 0, 0) < 0)
				return -1;
			p->stack[p->depth++] = p->nodes.count - 1;
			p->pos++;
			continue;
		}
		if (c == '"')
			ret = parse_quoted(p, s, end);
		else if (c == '{' || (c == '~' && p->pos + 1 < end && s[p->pos + 1] == '{'))
			ret = parse_literal(p, s, end, literal_ahead);
		else
			ret = parse_atom(p, s, end);
		if (ret < 0)
			return -1;
		p->need_sep = true;
		if (ret > 0)
			return 1; /* a literal follows */
	}
	if (literal_ahead) {
		set_error(p, "invalid literal: expected {number} or {number+}");
		return -1;
	}
	return 0;
}

static void build_command(struct imap_parser *p)
{
	if (p->out_cap < p->nodes.count) {
		p->out_cap = p->nodes.count;
		mem_free(p->out);
		p->out = mem_calloc(p->out_cap, sizeof(*p->out));
	}
	/* Literal bytes join the other values, NUL-terminated. */
	const char *cmd = str_c(p->cmd);
	for (unsigned int i = 0; i < p->nodes.count; i++) {
		struct pnode *n = &p->nodes.items[i];
		if (n->type == IMAP_ARG_LITERAL)
			n->off = append_val(p, cmd + n->off, n->len);
	}
	/* Children of each list are contiguous: top level first, then each
	 * list's block in order of appearance. */
	unsigned int cursor = p->top_count;
	for (unsigned int i = 0; i < p->nodes.count; i++) {
		if (p->nodes.items[i].type == IMAP_ARG_LIST) {
			p->nodes.items[i].first = cursor;
			cursor += p->nodes.items[i].count;
		}
	}
	const char *vals = str_c(p->vals);
	for (unsigned int i = 0; i < p->nodes.count; i++) {
		const struct pnode *n = &p->nodes.items[i];
		unsigned int slot =
			n->parent == 0 ? n->index : p->nodes.items[n->parent - 1].first + n->index;
		struct imap_arg *arg = &p->out[slot];
		memset(arg, 0, sizeof(*arg));
		arg->type = n->type;
		if (n->type == IMAP_ARG_LIST) {
			arg->list = p->out + n->first;
			arg->list_count = n->count;
		} else {
			arg->str = vals + n->off;
			arg->len = n->len;
		}
	}
	p->command.tag = vals + p->tag_off;
	p->command.name = vals + p->name_off;
	p->command.args_raw = vals + p->raw_off;
	p->command.args = p->nodes.count > 0 ? p->out : NULL;
	p->command.arg_count = p->top_count;
	p->result = RESULT_COMMAND;
}

/* ---- framing ---- */

/* The command failed at the end of a line; decide how much more belongs to it. */
static void skip_rest(struct imap_parser *p, bool literal_ahead)
{
	if (literal_ahead && p->lit_nonsync && !p->lit_overflow) {
		/* The client sends it regardless: it is part of this command. */
		p->skipping = true;
		p->frame = FRAME_LITERAL;
		p->literal_left = p->lit_size;
		if (p->literal_left == 0)
			start_line(p);
	} else {
		/* A synchronising literal is not sent before "+ ", which the
		 * client gets no more. */
		p->frame = FRAME_IDLE;
		p->skipping = false;
	}
}

/* For errors found before the tokenizer saw the first line. */
static void salvage_tag(struct imap_parser *p)
{
	if (p->have_tag || p->stage != STAGE_TAG)
		return;
	const char *s = str_c(p->cmd);
	size_t i = 0, len = str_len(p->cmd);
	while (i < len && is_tag_char((unsigned char)s[i]))
		i++;
	if (i > 0 && i < len && s[i] == ' ') {
		p->tag_off = append_val(p, s, i);
		p->have_tag = true;
	}
}

static void end_of_line(struct imap_parser *p)
{
	bool literal_ahead = p->mode == MODE_COMMAND && p->lit == LIT_CLOSED;
	size_t len = str_len(p->cmd);
	if (!p->skipping && len > p->line_start && str_c(p->cmd)[len - 1] == '\r')
		str_truncate(p->cmd, --len);

	if (p->mode == MODE_LINE) {
		if (p->skipping) {
			p->frame = FRAME_IDLE;
			p->skipping = false;
			p->mode = MODE_COMMAND;
		} else {
			p->result = RESULT_LINE;
		}
		return;
	}
	if (p->skipping) {
		skip_rest(p, literal_ahead);
		return;
	}
	if (len == 0 && !literal_ahead) {
		p->frame = FRAME_IDLE; /* an empty line: ignored */
		return;
	}
	int ret = parse_segment(p, len, literal_ahead);
	if (ret < 0) {
		skip_rest(p, literal_ahead);
		return;
	}
	if (ret > 0) {
		p->frame = FRAME_LITERAL;
		p->literal_left = p->lit_size;
		if (!p->lit_nonsync)
			p->result = RESULT_CONTINUATION;
		if (p->literal_left == 0)
			start_line(p);
		return;
	}
	p->frame = FRAME_IDLE;
	if (p->depth > 0) {
		set_error(p, "unbalanced parentheses: missing )");
		return;
	}
	build_command(p);
}

/* Follow quoting and a trailing literal marker, byte by byte. */
static void frame_byte(struct imap_parser *p, unsigned char c)
{
	if (p->in_quote) {
		if (p->quote_escape)
			p->quote_escape = false;
		else if (c == '\\')
			p->quote_escape = true;
		else if (c == '"')
			p->in_quote = false;
		p->lit = LIT_NONE;
		return;
	}
	if (c == '{') {
		p->lit = LIT_OPEN;
		p->lit_size = 0;
		p->lit_digits = 0;
		p->lit_overflow = false;
		p->lit_nonsync = false;
	} else if (p->lit == LIT_OPEN && c >= '0' && c <= '9') {
		p->lit_digits++;
		if (p->lit_size > (UINT64_MAX - 9) / 10)
			p->lit_overflow = true;
		else
			p->lit_size = p->lit_size * 10 + (c - '0');
	} else if (p->lit == LIT_OPEN && c == '+' && p->lit_digits > 0) {
		p->lit = LIT_PLUS;
		p->lit_nonsync = true;
	} else if (c == '}' && ((p->lit == LIT_OPEN && p->lit_digits > 0) || p->lit == LIT_PLUS)) {
		p->lit = LIT_CLOSED;
	} else if (!(c == '\r' && p->lit == LIT_CLOSED)) {
		p->lit = LIT_NONE;
		if (c == '"' && quote_may_start(p->prev))
			p->in_quote = true;
	}
}

static void line_too_long(struct imap_parser *p)
{
	salvage_tag(p);
	set_error(p, tstr_printf("line too long: more than %zu bytes", p->set.max_line));
	p->skipping = true;
}

size_t imap_parser_feed(struct imap_parser *p, const void *data, size_t len)
{
	const unsigned char *in = data;
	size_t i = 0;
	while (i < len && p->result == RESULT_NONE) {
		if (p->frame == FRAME_LITERAL) {
			size_t n = len - i;
			if (n > p->literal_left)
				n = (size_t)p->literal_left;
			if (!p->skipping)
				str_append_n(p->cmd, in + i, n);
			i += n;
			p->literal_left -= n;
			if (p->literal_left == 0)
				start_line(p);
			continue;
		}
		if (p->frame == FRAME_IDLE) {
			reset_command(p);
			start_line(p);
		}
		unsigned char c = in[i++];
		if (c == '\n') {
			end_of_line(p);
			continue;
		}
		if (p->mode == MODE_COMMAND) {
			frame_byte(p, c);
			p->prev = c;
		}
		if (p->skipping)
			continue;
		if (p->text_len >= p->set.max_line) {
			line_too_long(p);
			continue;
		}
		str_append_c(p->cmd, (char)c);
		p->text_len++;
	}
	return i;
}

int imap_parser_next(struct imap_parser *p, const struct imap_command **cmd_r, bool *continuation_r,
		     const char **tag_r, const char **error_r)
{
	*cmd_r = NULL;
	*continuation_r = false;
	*tag_r = NULL;
	*error_r = NULL;
	enum result result = p->result;
	p->result = RESULT_NONE;
	switch (result) {
	case RESULT_COMMAND:
		*cmd_r = &p->command;
		return 1;
	case RESULT_ERROR:
		if (p->have_tag)
			*tag_r = str_c(p->vals) + p->tag_off;
		*error_r = str_c(p->error);
		return -1;
	case RESULT_CONTINUATION:
		*continuation_r = true;
		return 0;
	case RESULT_LINE:
		/* A line was asked for; keep it for imap_parser_next_line(). */
		p->result = RESULT_LINE;
		return 0;
	case RESULT_NONE:
		break;
	}
	return 0;
}

int imap_parser_next_line(struct imap_parser *p, const char **line_r, size_t *len_r,
			  const char **error_r)
{
	*line_r = NULL;
	*len_r = 0;
	*error_r = NULL;
	if (p->mode == MODE_COMMAND) {
		if (p->frame != FRAME_IDLE || p->result != RESULT_NONE) {
			*error_r = "a raw line was asked for in the middle of a command";
			return -1;
		}
		p->mode = MODE_LINE;
		return 0;
	}
	enum result result = p->result;
	p->result = RESULT_NONE;
	if (result == RESULT_LINE) {
		*line_r = str_c(p->cmd);
		*len_r = str_len(p->cmd);
		p->mode = MODE_COMMAND;
		p->frame = FRAME_IDLE;
		return 1;
	}
	if (result == RESULT_ERROR) {
		*error_r = str_c(p->error);
		return -1;
	}
	return 0;
}
