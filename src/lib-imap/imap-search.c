#include "imap-search.h"
#include "imap-date.h"
#include "mem.h"
#include "tstr.h"

#include <string.h>
#include <strings.h>

struct search_parser {
	const struct imap_search_settings *set;
	unsigned int max_depth;
	const char *error;
};

/* The arguments not yet read at one level (top or inside parentheses). */
struct cursor {
	const struct imap_arg *args;
	unsigned int count, pos;
};

static const char *const type_names[] = {
	[IMAP_SEARCH_ALL] = "ALL",
	[IMAP_SEARCH_AND] = "AND",
	[IMAP_SEARCH_OR] = "OR",
	[IMAP_SEARCH_NOT] = "NOT",
	[IMAP_SEARCH_SEQSET] = "SEQSET",
	[IMAP_SEARCH_UID] = "UID",
	[IMAP_SEARCH_FLAG] = "FLAG",
	[IMAP_SEARCH_KEYWORD] = "KEYWORD",
	[IMAP_SEARCH_HEADER] = "HEADER",
	[IMAP_SEARCH_BODY] = "BODY",
	[IMAP_SEARCH_TEXT] = "TEXT",
	[IMAP_SEARCH_BEFORE] = "BEFORE",
	[IMAP_SEARCH_ON] = "ON",
	[IMAP_SEARCH_SINCE] = "SINCE",
	[IMAP_SEARCH_SENTBEFORE] = "SENTBEFORE",
	[IMAP_SEARCH_SENTON] = "SENTON",
	[IMAP_SEARCH_SENTSINCE] = "SENTSINCE",
	[IMAP_SEARCH_LARGER] = "LARGER",
	[IMAP_SEARCH_SMALLER] = "SMALLER",
};

const char *imap_search_type_name(enum imap_search_type type)
{
	if ((unsigned int)type >= sizeof(type_names) / sizeof(type_names[0]))
		return "UNKNOWN";
	return type_names[type];
}

/* Keys that take no argument and name a system flag, with or without UN. */
static const struct {
	const char *key;
	const char *flag;
	bool negate;
} flag_keys[] = {
	{"ANSWERED", "\\Answered", false},  {"DELETED", "\\Deleted", false},
	{"DRAFT", "\\Draft", false},        {"FLAGGED", "\\Flagged", false},
	{"SEEN", "\\Seen", false},          {"RECENT", "\\Recent", false},
	{"UNANSWERED", "\\Answered", true}, {"UNDELETED", "\\Deleted", true},
	{"UNDRAFT", "\\Draft", true},       {"UNFLAGGED", "\\Flagged", true},
	{"UNSEEN", "\\Seen", true},         {"OLD", "\\Recent", true},
};

/* Keys that take a string and search a header field. */
static const struct {
	const char *key, *field;
} header_keys[] = {
	{"FROM", "From"}, {"TO", "To"}, {"CC", "Cc"}, {"BCC", "Bcc"}, {"SUBJECT", "Subject"},
};

static const struct {
	const char *key;
	enum imap_search_type type;
} date_keys[] = {
	{"BEFORE", IMAP_SEARCH_BEFORE}, {"ON", IMAP_SEARCH_ON},
	{"SINCE", IMAP_SEARCH_SINCE},   {"SENTBEFORE", IMAP_SEARCH_SENTBEFORE},
	{"SENTON", IMAP_SEARCH_SENTON}, {"SENTSINCE", IMAP_SEARCH_SENTSINCE},
};

static struct imap_search_node *node_new(enum imap_search_type type)
{
	struct imap_search_node *node = mem_new(struct imap_search_node);
	node->type = type;
	return node;
}

static void node_add(struct imap_search_node *parent, struct imap_search_node *child)
{
	array_append(&parent->children, child);
}

static struct imap_search_node *node_wrap(enum imap_search_type type,
					  struct imap_search_node *child)
{
	struct imap_search_node *node = node_new(type);
	node_add(node, child);
	return node;
}

static struct imap_search_node *flag_node(const char *flag, bool negate)
{
	struct imap_search_node *node = node_new(IMAP_SEARCH_FLAG);
	node->value = mem_strdup(flag);
	return negate ? node_wrap(IMAP_SEARCH_NOT, node) : node;
}

void imap_search_destroy(struct imap_search_node **root)
{
	struct imap_search_node *node = *root;
	if (node == NULL)
		return;
	for (unsigned int i = 0; i < node->children.count; i++)
		imap_search_destroy(&node->children.items[i]);
	array_free(&node->children);
	mem_free(node->field);
	mem_free(node->value);
	imap_seqset_destroy(&node->seqset);
	mem_free(node);
	*root = NULL;
}

/* The next argument of key `key`, as an astring; NULL with an error. */
static const char *next_astring(struct search_parser *sp, struct cursor *c, const char *key,
				const char *what)
{
	const char *str;
	if (c->pos >= c->count) {
		sp->error = tstr_printf("%s needs %s", key, what);
		return NULL;
	}
	const struct imap_arg *arg = &c->args[c->pos++];
	if (!imap_arg_get_astring(arg, &str)) {
		sp->error = arg->type == IMAP_ARG_LIST
				    ? tstr_printf("%s needs %s, not a list", key, what)
				    : tstr_printf("%s: NUL in a string is not searchable", key);
		return NULL;
	}
	return str;
}

static struct imap_search_node *parse_key(struct search_parser *sp, struct cursor *c,
					  unsigned int depth);

static struct imap_search_node *parse_group(struct search_parser *sp, struct cursor *c,
					    unsigned int depth)
{
	if (c->pos >= c->count) {
		sp->error = "empty parentheses in search criteria";
		return NULL;
	}
	struct imap_search_node *first = parse_key(sp, c, depth);
	if (first == NULL || c->pos >= c->count)
		return first;
	struct imap_search_node *and = node_wrap(IMAP_SEARCH_AND, first);
	while (c->pos < c->count) {
		struct imap_search_node *next = parse_key(sp, c, depth);
		if (next == NULL) {
			imap_search_destroy(&and);
			return NULL;
		}
		node_add(and, next);
	}
	return and;
}

static struct imap_search_node *parse_number_key(struct search_parser *sp, struct cursor *c,
						 const char *key, enum imap_search_type type)
{
	const char *str = next_astring(sp, c, key, "a size in bytes");
	if (str == NULL)
		return NULL;
	uint64_t n = 0;
	const char *p = str;
	for (; *p >= '0' && *p <= '9' && n <= (UINT64_MAX >> 1) / 10; p++)
		n = n * 10 + (uint64_t)(*p - '0');
	if (*str == '\0' || *p != '\0') {
		sp->error = tstr_printf("%s needs a size in bytes, not \"%.40s\"", key, str);
		return NULL;
	}
	struct imap_search_node *node = node_new(type);
	node->size = n;
	return node;
}

static struct imap_search_node *parse_seqset_key(struct search_parser *sp, const char *text,
						 enum imap_search_type type)
{
	struct imap_search_node *node = node_new(type);
	uint32_t star = type == IMAP_SEARCH_UID ? sp->set->star_uid : sp->set->star_seq;
	if (imap_seqset_parse(text, star, &node->seqset, &sp->error) < 0)
		imap_search_destroy(&node);
	return node;
}

static struct imap_search_node *parse_string_key(struct search_parser *sp, struct cursor *c,
						 const char *key, enum imap_search_type type,
						 const char *field)
{
	if (field == NULL && type == IMAP_SEARCH_HEADER) {
		field = next_astring(sp, c, key, "a header field name and a string");
		if (field == NULL)
			return NULL;
		if (*field == '\0') {
			sp->error = "HEADER needs a header field name, not \"\"";
			return NULL;
		}
	}
	const char *value = next_astring(sp, c, key, "a string");
	if (value == NULL)
		return NULL;
	struct imap_search_node *node = node_new(type);
	node->field = field == NULL ? NULL : mem_strdup(field);
	node->value = mem_strdup(value);
	return node;
}

static struct imap_search_node *parse_atom_key(struct search_parser *sp, struct cursor *c,
					       const char *key, unsigned int depth)
{
	for (size_t i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++) {
		if (strcasecmp(key, flag_keys[i].key) == 0)
			return flag_node(flag_keys[i].flag, flag_keys[i].negate);
	}
	for (size_t i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]); i++) {
		if (strcasecmp(key, header_keys[i].key) == 0)
			return parse_string_key(sp, c, header_keys[i].key, IMAP_SEARCH_HEADER,
						header_keys[i].field);
	}
	for (size_t i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++) {
		if (strcasecmp(key, date_keys[i].key) != 0)
			continue;
		const char *str = next_astring(sp, c, date_keys[i].key, "a date (1-Feb-2024)");
		int64_t day;
		if (str == NULL || imap_date_parse_day(str, &day, &sp->error) < 0)
			return NULL;
		struct imap_search_node *node = node_new(date_keys[i].type);
		node->day = day;
		return node;
	}
	if (strcasecmp(key, "ALL") == 0)
		return node_new(IMAP_SEARCH_ALL);
	if (strcasecmp(key, "NEW") == 0) {
		struct imap_search_node *node = flag_node("\\Recent", false);
		node = node_wrap(IMAP_SEARCH_AND, node);
		node_add(node, flag_node("\\Seen", true));
		return node;
	}
	if (strcasecmp(key, "KEYWORD") == 0 || strcasecmp(key, "UNKEYWORD") == 0) {
		const char *kw;
		if (c->pos >= c->count || !imap_arg_get_atom(&c->args[c->pos], &kw)) {
			sp->error = tstr_printf("%s needs a keyword (an atom)", key);
			return NULL;
		}
		c->pos++;
		struct imap_search_node *node = node_new(IMAP_SEARCH_KEYWORD);
		node->value = mem_strdup(kw);
		return (key[0] == 'U' || key[0] == 'u') ? node_wrap(IMAP_SEARCH_NOT, node) : node;
	}
	if (strcasecmp(key, "HEADER") == 0)
		return parse_string_key(sp, c, "HEADER", IMAP_SEARCH_HEADER, NULL);
	if (strcasecmp(key, "BODY") == 0)
		return parse_string_key(sp, c, "BODY", IMAP_SEARCH_BODY, NULL);
	if (strcasecmp(key, "TEXT") == 0)
		return parse_string_key(sp, c, "TEXT", IMAP_SEARCH_TEXT, NULL);
	if (strcasecmp(key, "LARGER") == 0)
		return parse_number_key(sp, c, "LARGER", IMAP_SEARCH_LARGER);
	if (strcasecmp(key, "SMALLER") == 0)
		return parse_number_key(sp, c, "SMALLER", IMAP_SEARCH_SMALLER);
	if (strcasecmp(key, "NOT") == 0 || strcasecmp(key, "OR") == 0) {
		bool is_or = strcasecmp(key, "OR") == 0;
		struct imap_search_node *node = node_new(is_or ? IMAP_SEARCH_OR : IMAP_SEARCH_NOT);
		for (unsigned int i = 0; i < (is_or ? 2u : 1u); i++) {
			if (c->pos >= c->count) {
				sp->error = tstr_printf("%s needs %s", is_or ? "OR" : "NOT",
							is_or ? "two search keys" : "a search key");
				imap_search_destroy(&node);
				return NULL;
			}
			struct imap_search_node *child = parse_key(sp, c, depth + 1);
			if (child == NULL) {
				imap_search_destroy(&node);
				return NULL;
			}
			node_add(node, child);
		}
		return node;
	}
	if (strcasecmp(key, "UID") == 0) {
		const char *set;
		if (c->pos >= c->count || !imap_arg_get_atom(&c->args[c->pos], &set)) {
			sp->error = "UID needs a sequence set";
			return NULL;
		}
		c->pos++;
		return parse_seqset_key(sp, set, IMAP_SEARCH_UID);
	}
	if ((key[0] >= '0' && key[0] <= '9') || key[0] == '*')
		return parse_seqset_key(sp, key, IMAP_SEARCH_SEQSET);
	sp->error = tstr_printf("unknown search key: %.40s", key);
	return NULL;
}

static struct imap_search_node *parse_key(struct search_parser *sp, struct cursor *c,
					  unsigned int depth)
{
	if (depth > sp->max_depth) {
		sp->error = tstr_printf("search criteria nested too deeply: more than %u levels",
					sp->max_depth);
		return NULL;
	}
	const struct imap_arg *arg = &c->args[c->pos++];
	const struct imap_arg *list;
	unsigned int list_count;
	const char *key;
	if (imap_arg_get_list(arg, &list, &list_count)) {
		struct cursor inner = {list, list_count, 0};
		return parse_group(sp, &inner, depth + 1);
	}
	if (arg->type != IMAP_ARG_ATOM) {
		sp->error =
			tstr_printf("search key expected, got a %s", imap_arg_type_name(arg->type));
		return NULL;
	}
	imap_arg_get_atom(arg, &key);
	return parse_atom_key(sp, c, key, depth);
}

int imap_search_parse(const struct imap_arg *args, unsigned int count,
		      const struct imap_search_settings *set, struct imap_search_node **root_r,
		      const char **error_r)
{
	struct search_parser sp = {.set = set};
	sp.max_depth = set->max_depth > 0 ? set->max_depth : IMAP_SEARCH_DEFAULT_MAX_DEPTH;
	struct cursor c = {args, count, 0};
	*root_r = NULL;
	if (count > 0 && imap_arg_atom_equals(&args[0], "CHARSET")) {
		const char *charset;
		if (count < 2 || !imap_arg_get_astring(&args[1], &charset)) {
			*error_r = "CHARSET needs a charset name";
			return -1;
		}
		if (strcasecmp(charset, "UTF-8") != 0 && strcasecmp(charset, "US-ASCII") != 0) {
			*error_r = tstr_printf("[BADCHARSET (UTF-8 US-ASCII)] "
					       "unsupported charset: %.40s",
					       charset);
			return -1;
		}
		c.pos = 2;
	}
	if (c.pos >= count) {
		*error_r = "missing search criteria";
		return -1;
	}
	struct cursor rest = {args + c.pos, count - c.pos, 0};
	*root_r = parse_group(&sp, &rest, 0);
	if (*root_r == NULL) {
		*error_r = sp.error;
		return -1;
	}
	return 0;
}
