/* access-imap-search: SEARCH and UID SEARCH.
 *
 * The criteria tree (lib-imap's imap-search) is evaluated here for every
 * message of the mailbox. Criteria on text, dates and sizes are each turned
 * into one query in the archive's language and answered by the full-text
 * index (ClientSearchUids, all asked at once); sequence sets, UIDs and flags
 * are answered from the session. Text criteria therefore match words and
 * word prefixes, not arbitrary substrings (docs/imap.md): SUBJECT "patc"
 * finds "PATCH", but "atch" does not. Flags: every archived message is
 * \Seen and has no other flag or keyword. */
#include "access-imap-private.h"
#include "imap-parser.h"
#include "imap-search.h"
#include "imap-uidmap.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#define SEARCH_MAX_LEAVES 32

struct search_leaf {
	const struct imap_search_node *node;
	char *query;
	struct imap_uidmap *matches;
};

struct access_imap_search {
	struct imap_client *client;
	struct imap_search_node *root;
	struct search_leaf leaves[SEARCH_MAX_LEAVES];
	unsigned int leaf_count, pending;
	bool failed;
	char *error;
};

void imap_search_free(struct access_imap_search **search)
{
	struct access_imap_search *s = *search;
	if (s == NULL)
		return;
	*search = NULL;
	for (unsigned int i = 0; i < s->leaf_count; i++) {
		mem_free(s->leaves[i].query);
		imap_uidmap_destroy(&s->leaves[i].matches);
	}
	imap_search_destroy(&s->root);
	mem_free(s->error);
	mem_free(s);
}

/* ---- criteria into queries ---- */

/* A value as words: one word is a prefix search, several a phrase. */
static void search_append_value(struct str *q, const char *field, const char *value)
{
	struct str *words = str_create(64);
	unsigned int count = 0;
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0';) {
		while (*p != '\0' && *p < 0x80 && !(*p >= '0' && *p <= '9') &&
		       !((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
			p++;
		if (*p == '\0')
			break;
		if (count++ > 0)
			str_append_c(words, ' ');
		while (*p != '\0' && (*p >= 0x80 || (*p >= '0' && *p <= '9') ||
				      ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
			str_append_c(words, (char)*p++);
	}
	if (count == 0)
		str_append(q, "*");
	else if (count == 1)
		str_printfa(q, "%s%s*", field, str_c(words));
	else
		str_printfa(q, "%s\"%s\"", field, str_c(words));
	str_destroy(&words);
}

/* field is "date:" (the instant, as a UTC day) or "sent:" (the day written
 * in the Date field, whatever its time and zone: RFC 3501 SENT*). */
static void search_append_day(struct str *q, const char *field, const char *op, int64_t day)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;
	gmtime_r(&t, &tm);
	str_printfa(q, "%s%s%04d-%02d-%02d", field, op, tm.tm_year + 1900, tm.tm_mon + 1,
		    tm.tm_mday);
}

/* The query for a criterion the index answers; NULL if the session does,
 * "" (with *error_r) if it cannot be answered. */
static char *search_leaf_query(const struct imap_search_node *n, const char **error_r)
{
	struct str *q = str_create(64);
	switch (n->type) {
	case IMAP_SEARCH_HEADER:
		if (strcasecmp(n->field, "From") == 0)
			search_append_value(q, "from:", n->value);
		else if (strcasecmp(n->field, "To") == 0)
			search_append_value(q, "to:", n->value);
		else if (strcasecmp(n->field, "Cc") == 0)
			search_append_value(q, "cc:", n->value);
		else if (strcasecmp(n->field, "Subject") == 0)
			search_append_value(q, "subject:", n->value);
		else {
			*error_r = tstr_printf(
				"[CANNOT] Searching the header field %s is not supported",
				n->field);
			str_truncate(q, 0);
		}
		break;
	case IMAP_SEARCH_BODY:
		search_append_value(q, "body:", n->value);
		break;
	case IMAP_SEARCH_TEXT:
		search_append_value(q, "", n->value);
		break;
	case IMAP_SEARCH_BEFORE:
		search_append_day(q, "date:", "<", n->day);
		break;
	case IMAP_SEARCH_SENTBEFORE:
		search_append_day(q, "sent:", "<", n->day);
		break;
	case IMAP_SEARCH_ON:
		search_append_day(q, "date:", "", n->day);
		break;
	case IMAP_SEARCH_SENTON:
		search_append_day(q, "sent:", "", n->day);
		break;
	case IMAP_SEARCH_SINCE:
		search_append_day(q, "date:", ">=", n->day);
		break;
	case IMAP_SEARCH_SENTSINCE:
		search_append_day(q, "sent:", ">=", n->day);
		break;
	case IMAP_SEARCH_LARGER:
		str_printfa(q, "size:>%llu", (unsigned long long)n->size);
		break;
	case IMAP_SEARCH_SMALLER:
		str_printfa(q, "size:<%llu", (unsigned long long)n->size);
		break;
	default:
		str_destroy(&q);
		return NULL;
	}
	return str_steal(&q);
}

static bool search_collect(struct access_imap_search *s, const struct imap_search_node *n,
			   const char **error_r)
{
	for (unsigned int i = 0; i < n->children.count; i++) {
		if (!search_collect(s, n->children.items[i], error_r))
			return false;
	}
	char *query = search_leaf_query(n, error_r);
	if (query == NULL)
		return true;
	if (query[0] == '\0' || s->leaf_count == SEARCH_MAX_LEAVES) {
		if (query[0] != '\0')
			*error_r = "[LIMIT] Too many search criteria";
		mem_free(query);
		return false;
	}
	s->leaves[s->leaf_count++] = (struct search_leaf){n, query, NULL};
	return true;
}

/* ---- evaluation ---- */

static bool search_match(const struct access_imap_search *s, const struct imap_search_node *n,
			 uint32_t seq, uint32_t uid)
{
	switch (n->type) {
	case IMAP_SEARCH_ALL:
		return true;
	case IMAP_SEARCH_AND:
		for (unsigned int i = 0; i < n->children.count; i++) {
			if (!search_match(s, n->children.items[i], seq, uid))
				return false;
		}
		return true;
	case IMAP_SEARCH_OR:
		return search_match(s, n->children.items[0], seq, uid) ||
		       search_match(s, n->children.items[1], seq, uid);
	case IMAP_SEARCH_NOT:
		return !search_match(s, n->children.items[0], seq, uid);
	case IMAP_SEARCH_SEQSET:
		return imap_seqset_contains(n->seqset, seq);
	case IMAP_SEARCH_UID:
		return imap_seqset_contains(n->seqset, uid);
	case IMAP_SEARCH_FLAG:
		return strcasecmp(n->value, "\\Seen") == 0;
	case IMAP_SEARCH_KEYWORD:
		return false;
	default:
		for (unsigned int i = 0; i < s->leaf_count; i++) {
			if (s->leaves[i].node == n)
				return s->leaves[i].matches != NULL &&
				       imap_uidmap_seq(s->leaves[i].matches, uid) != 0;
		}
		return false;
	}
}

/* " 123": tens of thousands of these per answer, without printf */
static void search_append_number(struct str *line, uint32_t n)
{
	char buf[12];
	size_t i = sizeof(buf);
	do {
		buf[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	buf[--i] = ' ';
	str_append_n(line, buf + i, sizeof(buf) - i);
}

static void search_finish(struct access_imap_search *s)
{
	struct imap_client *client = s->client;
	if (s->failed) {
		imap_client_done(client, "NO", "%s",
				 s->error != NULL
					 ? s->error
					 : "[UNAVAILABLE] The archive is not available right now");
		imap_search_free(&client->search);
		return;
	}
	struct str *line = str_create(1024);
	str_append(line, "* SEARCH");
	uint32_t count = imap_uidmap_count(client->uids);
	for (uint32_t seq = 1; seq <= count; seq++) {
		uint32_t uid = imap_uidmap_uid(client->uids, seq);
		if (search_match(s, s->root, seq, uid))
			search_append_number(line, client->uid_command ? uid : seq);
	}
	imap_client_send(client, "%s", str_c(line));
	str_destroy(&line);
	imap_client_done(client, "OK",
			 client->uid_command ? "UID SEARCH completed" : "SEARCH completed");
	imap_search_free(&client->search);
}

static void search_leaf_answer(struct imap_client *client, const struct json *result,
			       const void *blob, size_t blob_len, const char *code,
			       const char *text, void *ctx)
{
	struct search_leaf *leaf = ctx;
	struct access_imap_search *s = client->search;
	const char *set = json_get_string(result, "uids"), *error;
	if (client->disconnected || s == NULL || leaf < s->leaves ||
	    leaf >= s->leaves + s->leaf_count)
		return;
	s->pending--;
	if (code != NULL) {
		s->failed = true;
		if (strcmp(code, "bad-request") == 0 && s->error == NULL)
			s->error = mem_printf("[CANNOT] %s", text);
	} else {
		leaf->matches = imap_uidmap_create();
		if (set == NULL || imap_uidmap_append_set(leaf->matches, set, &error) < 0)
			s->failed = true;
	}
	if (s->pending == 0)
		search_finish(s);
}

void imap_cmd_search(struct imap_client *client, const struct imap_command *cmd)
{
	struct access_imap_search *s = mem_new(struct access_imap_search);
	struct imap_search_settings set = {
		.star_seq = imap_uidmap_count(client->uids),
		.star_uid = imap_uidmap_max_uid(client->uids),
	};
	const char *error = NULL;
	s->client = client;
	client->search = s;
	if (imap_search_parse(cmd->args, cmd->arg_count, &set, &s->root, &error) < 0) {
		bool charset = strncmp(error, "[BADCHARSET", 11) == 0;
		imap_client_done(client, charset ? "NO" : "BAD", "%s", error);
		imap_search_free(&client->search);
		return;
	}
	if (!search_collect(s, s->root, &error)) {
		imap_client_done(client, "NO", "%s", error);
		imap_search_free(&client->search);
		return;
	}
	if (s->leaf_count == 0) {
		search_finish(s);
		return;
	}
	s->pending = s->leaf_count;
	for (unsigned int i = 0; i < s->leaf_count; i++) {
		struct json *args = json_new_object();
		json_set_string(args, "owner", client->owner);
		json_set_string(args, "path", client->path);
		json_set_string(args, "query", s->leaves[i].query);
		imap_client_call(client, "ClientSearchUids", args, search_leaf_answer,
				 &s->leaves[i]);
	}
}
