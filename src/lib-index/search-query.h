#ifndef COFFER_SEARCH_QUERY_H
#define COFFER_SEARCH_QUERY_H
/* search-query: the archive's query language (SPEC §6), parsed into a tree and
 * compiled into one SQL condition over the catalog (FTS5 MATCH expressions
 * for text, plain SQL for dates, sizes, folders and attachments).
 *
 * Language (operators are case-insensitive; AND is implied between terms):
 *   word   "a phrase"   prefix*   wo?d   ( ... )   a AND b   a OR b   NOT a   -a
 *   from: to: cc: subject: body: attachment:   followed by a word, prefix,
 *     wildcard or "phrase"
 *   folder:NAME (the folder and its subfolders)
 *   date:2018-01-01..2018-12-31  date:2018  date:2018-03  date:>=2018-06-01
 *   date:<2019  before:DATE  after:DATE  (dates are UTC days)
 *   has:attachment   size:>100k  size:<2m  size:10k..1m   *  (everything)
 *
 * Contract: search_query_parse() never crashes on any input; it returns -1
 * with *error_r naming the position and the problem, or 0 with a tree to
 * free with search_query_destroy(). Limits: 4096 bytes, 64 levels of
 * nesting, 256 terms. search_query_compile() produces SQL that refers to
 * the columns named in catalog.c (c.id, c.date, c.size, c.has_attachment,
 * m.folder_id) and to the table `fts`; every value is a bound parameter
 * (`?`), appended to *params_r in order, never spliced into the SQL. ?
 * wildcards are expanded by the `expand` callback (the catalog looks terms up
 * in the index vocabulary). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEARCH_QUERY_MAX_LEN 4096
#define SEARCH_QUERY_MAX_DEPTH 64
#define SEARCH_QUERY_MAX_TERMS 256

struct search_query;

enum search_param_type { SEARCH_PARAM_TEXT, SEARCH_PARAM_INT };

struct search_param {
	enum search_param_type type;
	char *text;
	int64_t value;
};

struct search_sql {
	/* An FTS5 expression every result must match (the index drives the
	 * query), or NULL; bound before the params. */
	char *fts_match;
	char *where; /* an SQL boolean expression */
	struct search_param *params;
	size_t param_count;
	/* Every result's date lies in [date_lo, date_hi) (date: conditions the
	 * whole query is ANDed with), so the caller can narrow the index scan. */
	bool date_bounded;
	int64_t date_lo, date_hi;
};

/* Expand a lowercase ? pattern (GLOB syntax, '?' only) into the index terms it
 * matches; returns the number of terms written to terms_r (mem_free each and
 * the array), at most `max`. */
typedef size_t search_expand_t(const char *pattern, size_t max, char ***terms_r, void *context);

/* Address fields are indexed with one extra token per email address (its
 * letters and digits run together, e.g. "ralf@linux-mips.org" ->
 * "ralflinuxmipsorg"), so from:/to:/cc: with a whole address look up one
 * short doclist instead of a phrase of very common words. Appends those
 * tokens (space separated) for every address in `text`. */
struct str;
void search_query_address_tokens(const char *text, struct str *out);

int search_query_parse(const char *text, struct search_query **query_r, const char **error_r);
void search_query_destroy(struct search_query **query);
/* Writes a canonical rendering of the tree (for tests and logs). */
char *search_query_describe(const struct search_query *query);

int search_query_compile(const struct search_query *query, search_expand_t *expand, void *context,
			 struct search_sql *sql_r, const char **error_r);
void search_sql_free(struct search_sql *sql);

#endif
