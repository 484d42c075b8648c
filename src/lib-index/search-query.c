#include "search-query.h"
#include "array.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum node_type {
	NODE_AND,
	NODE_OR,
	NODE_NOT,
	NODE_TERM,
	NODE_FOLDER,
	NODE_DATE,
	NODE_SIZE,
	NODE_HAS_ATTACHMENT,
	NODE_ALL,
};

enum term_kind { TERM_WORD, TERM_PHRASE, TERM_PREFIX, TERM_WILDCARD };

/* Text fields, in the order of the fts table's columns (catalog.c). */
static const char *const search_fields[] = {NULL,      "from", "to",        "cc",
					    "subject", "body", "attachment"};
static const char *const search_fts_columns[] = {NULL,        "f_from", "f_to",        "f_cc",
						 "f_subject", "f_body", "f_attachment"};
#define SEARCH_FIELD_COUNT (sizeof(search_fields) / sizeof(search_fields[0]))

struct node {
	enum node_type type;
	enum term_kind kind;
	unsigned int field; /* index into search_fields; 0 = any text */
	char *text;
	int64_t lo, hi; /* date: [lo, hi) seconds; size: [lo, hi] bytes */
	bool sent;      /* a date: in the sender's own zone (sent:) */
	ARRAY(struct node *) children;
};

struct search_query {
	struct node *root;
};

struct parser {
	const char *p, *start;
	int depth;
	unsigned int terms;
	const char *error;
};

static struct node *node_new(enum node_type type)
{
	struct node *n = mem_new(struct node);
	n->type = type;
	return n;
}

static void node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->children.count; i++)
		node_free(n->children.items[i]);
	array_free(&n->children);
	mem_free(n->text);
	mem_free(n);
}

static void node_add(struct node *parent, struct node *child)
{
	array_append(&parent->children, child);
}

static void parser_fail(struct parser *ps, const char *what)
{
	if (ps->error == NULL)
		ps->error = tstr_printf("query: %s at position %zu", what,
					(size_t)(ps->p - ps->start) + 1);
}

static void skip_space(struct parser *ps)
{
	while (*ps->p != '\0' && isspace((unsigned char)*ps->p))
		ps->p++;
}

static bool is_word_end(char c)
{
	return c == '\0' || isspace((unsigned char)c) || c == '(' || c == ')' || c == '"';
}

/* The next bare word, without consuming it. */
static size_t peek_word(const struct parser *ps)
{
	size_t n = 0;
	while (!is_word_end(ps->p[n]))
		n++;
	return n;
}

static bool peek_operator(const struct parser *ps, const char *op)
{
	size_t n = peek_word(ps);
	return n == strlen(op) && strncasecmp(ps->p, op, n) == 0;
}

static struct node *parse_or(struct parser *ps);

static char *parse_quoted(struct parser *ps)
{
	/* ps->p is at the opening quote */
	const char *s = ++ps->p;
	while (*ps->p != '\0' && *ps->p != '"')
		ps->p++;
	if (*ps->p != '"') {
		parser_fail(ps, "unterminated \"phrase\"");
		return NULL;
	}
	char *text = mem_strndup(s, (size_t)(ps->p - s));
	ps->p++;
	return text;
}

static bool date_parse(const char *s, size_t len, int64_t *start_r, int64_t *end_r)
{
	int y = 0, m = 0, d = 0;
	char buf[16];
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	int consumed = 0;
	int fields = sscanf(buf, "%4d-%2d-%2d%n", &y, &m, &d, &consumed);
	if (fields == 3 && (size_t)consumed == len) {
	} else if ((fields = sscanf(buf, "%4d-%2d%n", &y, &m, &consumed)) == 2 &&
		   (size_t)consumed == len) {
		d = 0;
	} else if (sscanf(buf, "%4d%n", &y, &consumed) == 1 && (size_t)consumed == len) {
		m = 0;
		d = 0;
	} else {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)buf[i]) && buf[i] != '-')
			return false;
	}
	if (y < 1900 || y > 9999 || m < 0 || m > 12 || d < 0 || d > 31)
		return false;
	struct tm tm = {
		.tm_year = y - 1900, .tm_mon = m == 0 ? 0 : m - 1, .tm_mday = d == 0 ? 1 : d};
	*start_r = (int64_t)timegm(&tm);
	if (m == 0)
		tm.tm_year++;
	else if (d == 0)
		tm.tm_mon++;
	else
		tm.tm_mday++;
	*end_r = (int64_t)timegm(&tm);
	return true;
}

static bool size_parse(const char *s, size_t len, int64_t *size_r)
{
	if (len == 0 || !isdigit((unsigned char)s[0]))
		return false;
	int64_t v = 0;
	size_t i = 0;
	for (; i < len && isdigit((unsigned char)s[i]); i++) {
		if (v > INT64_MAX / 16)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (i < len) {
		int64_t mult;
		switch (tolower((unsigned char)s[i])) {
		case 'k':
			mult = 1024;
			break;
		case 'm':
			mult = 1024 * 1024;
			break;
		case 'g':
			mult = 1024 * 1024 * 1024;
			break;
		default:
			return false;
		}
		if (i + 1 != len && !(i + 2 == len && tolower((unsigned char)s[i + 1]) == 'b'))
			return false;
		if (v > INT64_MAX / mult)
			return false;
		v *= mult;
	}
	*size_r = v;
	return true;
}

/* date:/size: values: A..B, >=A, >A, <=A, <A, A */
static struct node *parse_range(struct parser *ps, enum node_type type, const char *v, size_t len)
{
	struct node *n = node_new(type);
	int64_t a0, a1, b0, b1;
	const char *dots = NULL;
	for (size_t i = 0; i + 1 < len; i++) {
		if (v[i] == '.' && v[i + 1] == '.') {
			dots = v + i;
			break;
		}
	}
	bool ok;
	if (type == NODE_DATE) {
		n->lo = INT64_MIN;
		n->hi = INT64_MAX;
		if (dots != NULL) {
			size_t la = (size_t)(dots - v), lb = len - la - 2;
			ok = (la == 0 || date_parse(v, la, &a0, &a1)) &&
			     (lb == 0 || date_parse(dots + 2, lb, &b0, &b1));
			if (ok && la > 0)
				n->lo = a0;
			if (ok && lb > 0)
				n->hi = b1;
		} else if (len >= 2 && v[0] == '>' && v[1] == '=') {
			ok = date_parse(v + 2, len - 2, &a0, &a1);
			n->lo = a0;
		} else if (len >= 1 && v[0] == '>') {
			ok = date_parse(v + 1, len - 1, &a0, &a1);
			n->lo = a1;
		} else if (len >= 2 && v[0] == '<' && v[1] == '=') {
			ok = date_parse(v + 2, len - 2, &a0, &a1);
			n->hi = a1;
		} else if (len >= 1 && v[0] == '<') {
			ok = date_parse(v + 1, len - 1, &a0, &a1);
			n->hi = a0;
		} else {
			ok = date_parse(v, len, &a0, &a1);
			n->lo = a0;
			n->hi = a1;
		}
	} else {
		n->lo = 0;
		n->hi = INT64_MAX;
		if (dots != NULL) {
			size_t la = (size_t)(dots - v), lb = len - la - 2;
			ok = (la == 0 || size_parse(v, la, &a0)) &&
			     (lb == 0 || size_parse(dots + 2, lb, &b0));
			if (ok && la > 0)
				n->lo = a0;
			if (ok && lb > 0)
				n->hi = b0;
		} else if (len >= 2 && v[0] == '>' && v[1] == '=') {
			ok = size_parse(v + 2, len - 2, &n->lo);
		} else if (len >= 1 && v[0] == '>') {
			ok = size_parse(v + 1, len - 1, &a0) && a0 < INT64_MAX;
			n->lo = a0 + 1;
		} else if (len >= 2 && v[0] == '<' && v[1] == '=') {
			ok = size_parse(v + 2, len - 2, &n->hi);
		} else if (len >= 1 && v[0] == '<') {
			ok = size_parse(v + 1, len - 1, &a0);
			n->hi = a0 - 1;
		} else {
			ok = size_parse(v, len, &n->lo);
		}
	}
	if (!ok) {
		parser_fail(ps, type == NODE_DATE ? "date: expects YYYY[-MM[-DD]], a range A..B, "
						    "or >, >=, <, <= a date"
						  : "size: expects a number with optional k/m/g, a "
						    "range A..B, or >, >=, <, <= a size");
		node_free(n);
		return NULL;
	}
	return n;
}

static struct node *parse_term_value(struct parser *ps, unsigned int field)
{
	struct node *n = node_new(NODE_TERM);
	n->field = field;
	if (++ps->terms > SEARCH_QUERY_MAX_TERMS) {
		parser_fail(ps, "too many terms");
		node_free(n);
		return NULL;
	}
	if (*ps->p == '"') {
		n->kind = TERM_PHRASE;
		n->text = parse_quoted(ps);
		if (n->text == NULL) {
			node_free(n);
			return NULL;
		}
		if (*ps->p == '*' && is_word_end(ps->p[1])) {
			n->kind = TERM_PREFIX;
			ps->p++;
		}
		return n;
	}
	size_t len = peek_word(ps);
	if (len == 0) {
		parser_fail(ps, "a search term is missing");
		node_free(n);
		return NULL;
	}
	n->text = mem_strndup(ps->p, len);
	ps->p += len;
	if (strchr(n->text, '?') != NULL) {
		n->kind = TERM_WILDCARD;
	} else if (len > 1 && n->text[len - 1] == '*') {
		n->kind = TERM_PREFIX;
		n->text[len - 1] = '\0';
	} else {
		n->kind = TERM_WORD;
	}
	/* A stray * inside a word means nothing special: FTS sees it as punctuation. */
	return n;
}

static struct node *parse_primary(struct parser *ps)
{
	skip_space(ps);
	char c = *ps->p;
	if (c == '\0') {
		parser_fail(ps, "a search term is missing");
		return NULL;
	}
	if (c == '(') {
		if (++ps->depth > SEARCH_QUERY_MAX_DEPTH) {
			parser_fail(ps, "too deeply nested");
			return NULL;
		}
		ps->p++;
		struct node *n = parse_or(ps);
		ps->depth--;
		if (n == NULL)
			return NULL;
		skip_space(ps);
		if (*ps->p != ')') {
			parser_fail(ps, "')' expected");
			node_free(n);
			return NULL;
		}
		ps->p++;
		return n;
	}
	if (c == ')') {
		parser_fail(ps, "unexpected ')'");
		return NULL;
	}
	if (c == '"')
		return parse_term_value(ps, 0);
	size_t len = peek_word(ps);
	if (len == 1 && c == '*') {
		ps->p++;
		return node_new(NODE_ALL);
	}
	const char *colon = memchr(ps->p, ':', len);
	if (colon != NULL) {
		size_t name_len = (size_t)(colon - ps->p);
		const char *name = ps->p;
		const char *value = colon + 1;
		size_t value_len = len - name_len - 1;
		for (unsigned int i = 1; i < SEARCH_FIELD_COUNT; i++) {
			if (strlen(search_fields[i]) == name_len &&
			    strncasecmp(name, search_fields[i], name_len) == 0) {
				ps->p = value;
				return parse_term_value(ps, i);
			}
		}
		if (name_len == 6 && strncasecmp(name, "folder", 6) == 0) {
			struct node *n = node_new(NODE_FOLDER);
			ps->p = value;
			if (*ps->p == '"') {
				n->text = parse_quoted(ps);
			} else if (value_len > 0) {
				n->text = mem_strndup(value, value_len);
				ps->p += value_len;
			} else {
				parser_fail(ps, "folder: needs a folder name");
			}
			if (n->text == NULL) {
				node_free(n);
				return NULL;
			}
			return n;
		}
		if (name_len == 4 && strncasecmp(name, "date", 4) == 0) {
			ps->p += len;
			return parse_range(ps, NODE_DATE, value, value_len);
		}
		if (name_len == 4 && strncasecmp(name, "sent", 4) == 0) {
			ps->p += len;
			struct node *n = parse_range(ps, NODE_DATE, value, value_len);
			if (n != NULL)
				n->sent = true;
			return n;
		}
		if ((name_len == 6 && strncasecmp(name, "before", 6) == 0) ||
		    (name_len == 5 && strncasecmp(name, "after", 5) == 0)) {
			bool before = name_len == 6;
			ps->p += len;
			char *v = mem_printf("%s%.*s", before ? "<" : ">", (int)value_len, value);
			struct node *n = parse_range(ps, NODE_DATE, v, strlen(v));
			mem_free(v);
			return n;
		}
		if (name_len == 4 && strncasecmp(name, "size", 4) == 0) {
			ps->p += len;
			return parse_range(ps, NODE_SIZE, value, value_len);
		}
		if (name_len == 3 && strncasecmp(name, "has", 3) == 0) {
			if ((value_len == 10 && strncasecmp(value, "attachment", 10) == 0) ||
			    (value_len == 11 && strncasecmp(value, "attachments", 11) == 0)) {
				ps->p += len;
				return node_new(NODE_HAS_ATTACHMENT);
			}
			parser_fail(ps, "has: accepts only 'attachment'");
			return NULL;
		}
		/* anything else with a colon is an ordinary word (e.g. a URL) */
	}
	return parse_term_value(ps, 0);
}

static struct node *parse_unary(struct parser *ps)
{
	skip_space(ps);
	bool negate = false;
	if (peek_operator(ps, "NOT")) {
		ps->p += 3;
		negate = true;
	} else if (*ps->p == '-' && !is_word_end(ps->p[1])) {
		ps->p++;
		negate = true;
	}
	if (!negate)
		return parse_primary(ps);
	if (++ps->depth > SEARCH_QUERY_MAX_DEPTH) {
		parser_fail(ps, "too deeply nested");
		return NULL;
	}
	struct node *child = parse_unary(ps);
	ps->depth--;
	if (child == NULL)
		return NULL;
	struct node *n = node_new(NODE_NOT);
	node_add(n, child);
	return n;
}

static bool at_and_end(struct parser *ps)
{
	skip_space(ps);
	return *ps->p == '\0' || *ps->p == ')' || peek_operator(ps, "OR");
}

static struct node *parse_and(struct parser *ps)
{
	struct node *first = parse_unary(ps);
	if (first == NULL)
		return NULL;
	if (at_and_end(ps))
		return first;
	struct node *n = node_new(NODE_AND);
	node_add(n, first);
	while (!at_and_end(ps)) {
		if (peek_operator(ps, "AND"))
			ps->p += 3;
		struct node *child = parse_unary(ps);
		if (child == NULL) {
			node_free(n);
			return NULL;
		}
		node_add(n, child);
	}
	return n;
}

static struct node *parse_or(struct parser *ps)
{
	struct node *first = parse_and(ps);
	if (first == NULL)
		return NULL;
	skip_space(ps);
	if (!peek_operator(ps, "OR"))
		return first;
	struct node *n = node_new(NODE_OR);
	node_add(n, first);
	while (peek_operator(ps, "OR")) {
		ps->p += 2;
		struct node *child = parse_and(ps);
		if (child == NULL) {
			node_free(n);
			return NULL;
		}
		node_add(n, child);
		skip_space(ps);
	}
	return n;
}

int search_query_parse(const char *text, struct search_query **query_r, const char **error_r)
{
	if (strlen(text) > SEARCH_QUERY_MAX_LEN) {
		*error_r = tstr_printf("query: longer than %d bytes", SEARCH_QUERY_MAX_LEN);
		return -1;
	}
	struct parser ps = {.p = text, .start = text};
	skip_space(&ps);
	struct node *root;
	if (*ps.p == '\0') {
		root = node_new(NODE_ALL);
	} else {
		root = parse_or(&ps);
		skip_space(&ps);
		if (root != NULL && *ps.p != '\0') {
			parser_fail(&ps, *ps.p == ')' ? "unexpected ')'" : "unexpected input");
			node_free(root);
			root = NULL;
		}
	}
	if (root == NULL) {
		*error_r = ps.error != NULL ? ps.error : "query: invalid";
		return -1;
	}
	struct search_query *q = mem_new(struct search_query);
	q->root = root;
	*query_r = q;
	return 0;
}

void search_query_destroy(struct search_query **query)
{
	if (*query == NULL)
		return;
	node_free((*query)->root);
	mem_free(*query);
	*query = NULL;
}

static void describe(struct str *out, const struct node *n)
{
	static const char *const kinds[] = {"word", "phrase", "prefix", "wildcard"};
	switch (n->type) {
	case NODE_AND:
	case NODE_OR:
	case NODE_NOT:
		str_append(out, n->type == NODE_AND ? "(and" : n->type == NODE_OR ? "(or" : "(not");
		for (size_t i = 0; i < n->children.count; i++) {
			str_append_c(out, ' ');
			describe(out, n->children.items[i]);
		}
		str_append_c(out, ')');
		break;
	case NODE_TERM:
		str_printfa(out, "(%s %s \"%s\")", kinds[n->kind],
			    n->field == 0 ? "any" : search_fields[n->field], n->text);
		break;
	case NODE_FOLDER:
		str_printfa(out, "(folder \"%s\")", n->text);
		break;
	case NODE_DATE:
	case NODE_SIZE:
		str_printfa(out, "(%s %lld %lld)",
			    n->type == NODE_SIZE ? "size"
			    : n->sent            ? "sent"
						 : "date",
			    (long long)n->lo, (long long)n->hi);
		break;
	case NODE_HAS_ATTACHMENT:
		str_append(out, "(has-attachment)");
		break;
	case NODE_ALL:
		str_append(out, "(all)");
		break;
	}
}

char *search_query_describe(const struct search_query *query)
{
	struct str *out = str_create(64);
	describe(out, query->root);
	return str_steal(&out);
}

/* Compilation. A subtree made only of text terms becomes one FTS5 expression;
 * anything else becomes SQL, with FTS parts as `m.content_id IN (SELECT rowid FROM
 * fts WHERE fts MATCH ?)`. */
struct compiled {
	bool is_fts;
	char *text; /* FTS5 expression or SQL */
	ARRAY(struct search_param) params;
};

struct compiler {
	search_expand_t *expand;
	void *context;
	const char *error;
	const struct node *root;
	char *top_fts; /* the root's text part, to drive the query from the index */
};

static void compiled_free(struct compiled *c)
{
	for (size_t i = 0; i < c->params.count; i++)
		mem_free(c->params.items[i].text);
	array_free(&c->params);
	mem_free(c->text);
	memset(c, 0, sizeof(*c));
}

static void add_param(struct compiled *c, enum search_param_type type, const char *text,
		      int64_t value)
{
	struct search_param *p = array_push(&c->params);
	p->type = type;
	p->text = text != NULL ? mem_strdup(text) : NULL;
	p->value = value;
}

static void move_params(struct compiled *to, struct compiled *from)
{
	for (size_t i = 0; i < from->params.count; i++)
		array_append(&to->params, from->params.items[i]);
	array_free(&from->params);
}

static void fts_quote(struct str *out, const char *text)
{
	str_append_c(out, '"');
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '"')
			str_append_c(out, '"');
		str_append_c(out, *p);
	}
	str_append_c(out, '"');
}

static bool address_char(unsigned char c)
{
	return c > ' ' && c != '<' && c != '>' && c != ',' && c != '"' && c != '(' && c != ')' &&
	       c != ';' && c != ':' && c != '\'';
}

/* The joined token of one address (letters and digits only, ASCII folded to
 * lower case; other bytes kept, as unicode61 keeps them as letters). */
static void address_token(const char *start, size_t len, struct str *out)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)start[i];
		if (isalnum(c))
			str_append_c(out, (char)tolower(c));
		else if (c >= 0x80)
			str_append_c(out, (char)c);
	}
}

void search_query_address_tokens(const char *text, struct str *out)
{
	for (const char *at = strchr(text, '@'); at != NULL; at = strchr(at + 1, '@')) {
		const char *start = at, *end = at + 1;
		while (start > text && address_char((unsigned char)start[-1]))
			start--;
		while (address_char((unsigned char)*end))
			end++;
		if (start == at || end == at + 1)
			continue;
		str_append_c(out, ' ');
		address_token(start, (size_t)(end - start), out);
	}
}

static void fts_column(struct str *out, unsigned int field)
{
	if (field != 0)
		str_printfa(out, "%s : ", search_fts_columns[field]);
}

/* Turn an FTS expression into SQL (binds the expression as a parameter). */
static void fts_to_sql(struct compiled *c, bool negate)
{
	char *sql = mem_printf("m.content_id %sIN (SELECT rowid FROM fts WHERE fts MATCH ?)",
			       negate ? "NOT " : "");
	add_param(c, SEARCH_PARAM_TEXT, c->text, 0);
	/* the expression param must come first: move it to the front */
	struct search_param p = c->params.items[c->params.count - 1];
	memmove(c->params.items + 1, c->params.items,
		(c->params.count - 1) * sizeof(*c->params.items));
	c->params.items[0] = p;
	mem_free(c->text);
	c->text = sql;
	c->is_fts = false;
}

static int compile_node(struct compiler *cp, const struct node *n, struct compiled *out);

/* The largest offset of a Date header's zone that is stored (mime.c keeps
 * zones within a day): how far a sender's day can lie from the UTC day. */
#define SEARCH_ZONE_MAX (24 * 3600)

/* A bound moved by `by` seconds, open bounds staying open. */
static int64_t widen(int64_t bound, int64_t by)
{
	if (bound == INT64_MIN || bound == INT64_MAX)
		return bound;
	return bound + by;
}

static int compile_term(struct compiler *cp, const struct node *n, struct compiled *out)
{
	struct str *s = str_create(64);
	if (n->kind == TERM_WILDCARD) {
		char *pattern = mem_strdup(n->text);
		for (char *p = pattern; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		char **terms = NULL;
		size_t count =
			cp->expand != NULL ? cp->expand(pattern, 200, &terms, cp->context) : 0;
		mem_free(pattern);
		if (count == 0) {
			str_destroy(&s);
			mem_free(terms);
			out->is_fts = false;
			out->text = mem_strdup("0");
			return 0;
		}
		str_append_c(s, '(');
		for (size_t i = 0; i < count; i++) {
			if (i > 0)
				str_append(s, " OR ");
			fts_column(s, n->field);
			fts_quote(s, terms[i]);
			mem_free(terms[i]);
		}
		mem_free(terms);
		str_append_c(s, ')');
	} else if (n->field >= 1 && n->field <= 3 && strchr(n->text, '@') != NULL &&
		   n->kind != TERM_PHRASE) {
		/* a whole address: its joined token (see search_query_address_tokens) */
		struct str *tok = str_create(32);
		address_token(n->text, strlen(n->text), tok);
		fts_column(s, n->field);
		fts_quote(s, str_c(tok));
		if (n->kind == TERM_PREFIX)
			str_append(s, " *");
		str_destroy(&tok);
	} else {
		fts_column(s, n->field);
		fts_quote(s, n->text);
		if (n->kind == TERM_PREFIX)
			str_append(s, " *");
	}
	/* a term without any token (only punctuation) matches nothing */
	bool has_token = false;
	for (const char *p = n->text; *p != '\0'; p++) {
		if (isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80)
			has_token = true;
	}
	if (!has_token) {
		str_destroy(&s);
		out->is_fts = false;
		out->text = mem_strdup("0");
		return 0;
	}
	out->is_fts = true;
	out->text = str_steal(&s);
	return 0;
}

static int compile_andor(struct compiler *cp, const struct node *n, struct compiled *out)
{
	bool is_and = n->type == NODE_AND;
	struct str *fts = str_create(64), *neg = str_create(32), *sql = str_create(64);
	size_t fts_count = 0, sql_count = 0;
	struct compiled fts_params = {0}, sql_params = {0};
	int ret = 0;
	for (size_t i = 0; i < n->children.count && ret == 0; i++) {
		const struct node *child = n->children.items[i];
		struct compiled cc = {0};
		bool negative = false;
		if (is_and && child->type == NODE_NOT) {
			ret = compile_node(cp, child->children.items[0], &cc);
			negative = true;
		} else {
			ret = compile_node(cp, child, &cc);
		}
		if (ret < 0)
			break;
		if (negative && cc.is_fts) {
			str_printfa(neg, " NOT (%s)", cc.text);
			move_params(&fts_params, &cc);
		} else {
			if (negative) {
				char *t = mem_printf("NOT (%s)", cc.text);
				mem_free(cc.text);
				cc.text = t;
			}
			if (cc.is_fts) {
				str_printfa(fts, "%s(%s)",
					    fts_count++ > 0 ? (is_and ? " AND " : " OR ") : "",
					    cc.text);
				move_params(&fts_params, &cc);
			} else {
				str_printfa(sql, "%s(%s)",
					    sql_count++ > 0 ? (is_and ? " AND " : " OR ") : "",
					    cc.text);
				move_params(&sql_params, &cc);
			}
		}
		compiled_free(&cc);
	}
	if (ret == 0) {
		if (str_len(neg) > 0 && fts_count == 0) {
			/* Only negated text: FTS5 has no unary NOT, so each negated
			 * part becomes `m.content_id NOT IN (...)`. */
			compiled_free(&fts_params);
			str_truncate(neg, 0);
			for (size_t i = 0; i < n->children.count; i++) {
				const struct node *child = n->children.items[i];
				if (child->type != NODE_NOT)
					continue;
				struct compiled cc = {0};
				if (compile_node(cp, child->children.items[0], &cc) < 0) {
					ret = -1;
					break;
				}
				if (!cc.is_fts) {
					compiled_free(&cc);
					continue;
				}
				fts_to_sql(&cc, true);
				str_printfa(sql, "%s(%s)", sql_count++ > 0 ? " AND " : "", cc.text);
				move_params(&sql_params, &cc);
				compiled_free(&cc);
			}
		}
	}
	if (ret == 0) {
		if (fts_count > 0 && str_len(neg) > 0) {
			char *t = mem_printf("(%s)%s", str_c(fts), str_c(neg));
			str_truncate(fts, 0);
			str_append(fts, t);
			mem_free(t);
		}
		if (sql_count == 0) {
			out->is_fts = true;
			out->text = str_steal(&fts);
			move_params(out, &fts_params);
		} else {
			if (fts_count > 0 && is_and && n == cp->root) {
				/* AND at the top: the index drives, SQL filters */
				cp->top_fts = str_steal(&fts);
			} else if (fts_count > 0) {
				struct compiled f = {.is_fts = true, .text = str_steal(&fts)};
				move_params(&f, &fts_params);
				fts_to_sql(&f, false);
				str_printfa(sql, " %s (%s)", is_and ? "AND" : "OR", f.text);
				move_params(&sql_params, &f);
				compiled_free(&f);
			}
			out->is_fts = false;
			out->text = str_steal(&sql);
			move_params(out, &sql_params);
		}
	}
	str_destroy(&fts);
	str_destroy(&neg);
	str_destroy(&sql);
	compiled_free(&fts_params);
	compiled_free(&sql_params);
	return ret;
}

static void like_escape(struct str *out, const char *s)
{
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			str_append_c(out, '\\');
		str_append_c(out, *p);
	}
}

static int compile_node(struct compiler *cp, const struct node *n, struct compiled *out)
{
	memset(out, 0, sizeof(*out));
	switch (n->type) {
	case NODE_AND:
	case NODE_OR:
		return compile_andor(cp, n, out);
	case NODE_NOT: {
		struct compiled cc;
		if (compile_node(cp, n->children.items[0], &cc) < 0)
			return -1;
		if (cc.is_fts) {
			fts_to_sql(&cc, true);
			*out = cc;
			return 0;
		}
		out->text = mem_printf("NOT (%s)", cc.text);
		move_params(out, &cc);
		compiled_free(&cc);
		return 0;
	}
	case NODE_TERM:
		return compile_term(cp, n, out);
	case NODE_FOLDER: {
		struct str *like = str_create(32);
		like_escape(like, n->text);
		str_append(like, "/%");
		out->text = mem_strdup("m.folder_id IN (SELECT id FROM folders WHERE path = ? OR "
				       "path LIKE ? ESCAPE '\\')");
		add_param(out, SEARCH_PARAM_TEXT, n->text, 0);
		add_param(out, SEARCH_PARAM_TEXT, str_c(like), 0);
		str_destroy(&like);
		return 0;
	}
	case NODE_DATE:
		if (n->sent) {
			/* the day on the sender's calendar: the date index bounds
			 * the candidates to a day either side, the zone decides */
			out->text = mem_strdup(
				"m.date >= ? AND m.date < ? AND "
				"m.date + 60 * c.zone >= ? AND m.date + 60 * c.zone < ?");
			add_param(out, SEARCH_PARAM_INT, NULL, widen(n->lo, -SEARCH_ZONE_MAX));
			add_param(out, SEARCH_PARAM_INT, NULL, widen(n->hi, SEARCH_ZONE_MAX));
		} else {
			out->text = mem_strdup("m.date >= ? AND m.date < ?");
		}
		add_param(out, SEARCH_PARAM_INT, NULL, n->lo);
		add_param(out, SEARCH_PARAM_INT, NULL, n->hi);
		return 0;
	case NODE_SIZE:
		out->text = mem_strdup("c.size >= ? AND c.size <= ?");
		add_param(out, SEARCH_PARAM_INT, NULL, n->lo);
		add_param(out, SEARCH_PARAM_INT, NULL, n->hi);
		return 0;
	case NODE_HAS_ATTACHMENT:
		out->text = mem_strdup("c.has_attachment = 1");
		return 0;
	case NODE_ALL:
		out->text = mem_strdup("1");
		return 0;
	}
	cp->error = "query: unknown node";
	return -1;
}

/* The date range that a whole query is ANDed with, if any. */
static void compile_date_bounds(const struct node *root, struct search_sql *sql)
{
	const struct node *const *conj = &root;
	size_t count = 1;
	if (root->type == NODE_AND) {
		conj = (const struct node *const *)root->children.items;
		count = root->children.count;
	}
	for (size_t i = 0; i < count; i++) {
		const struct node *n = conj[i];
		if (n->type != NODE_DATE)
			continue;
		int64_t lo = n->sent ? widen(n->lo, -SEARCH_ZONE_MAX) : n->lo;
		int64_t hi = n->sent ? widen(n->hi, SEARCH_ZONE_MAX) : n->hi;
		if (!sql->date_bounded) {
			sql->date_bounded = true;
			sql->date_lo = lo;
			sql->date_hi = hi;
		} else {
			sql->date_lo = lo > sql->date_lo ? lo : sql->date_lo;
			sql->date_hi = hi < sql->date_hi ? hi : sql->date_hi;
		}
	}
}

int search_query_compile(const struct search_query *query, search_expand_t *expand, void *context,
			 struct search_sql *sql_r, const char **error_r)
{
	struct compiler cp = {.expand = expand, .context = context, .root = query->root};
	struct compiled c;
	if (compile_node(&cp, query->root, &c) < 0) {
		*error_r = cp.error != NULL ? cp.error : "query: cannot compile";
		mem_free(cp.top_fts);
		return -1;
	}
	sql_r->fts_match = NULL;
	if (c.is_fts) {
		sql_r->fts_match = c.text;
		c.text = mem_strdup("1");
	} else if (cp.top_fts != NULL) {
		sql_r->fts_match = cp.top_fts;
	}
	sql_r->where = c.text;
	sql_r->params = c.params.items;
	sql_r->param_count = c.params.count;
	sql_r->date_bounded = false;
	compile_date_bounds(query->root, sql_r);
	return 0;
}

void search_sql_free(struct search_sql *sql)
{
	for (size_t i = 0; i < sql->param_count; i++)
		mem_free(sql->params[i].text);
	mem_free(sql->params);
	mem_free(sql->where);
	mem_free(sql->fts_match);
	memset(sql, 0, sizeof(*sql));
}
