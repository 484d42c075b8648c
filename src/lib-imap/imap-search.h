#ifndef COFFER_IMAP_SEARCH_H
#define COFFER_IMAP_SEARCH_H
/* imap-search: SEARCH criteria (RFC 3501 section 6.4.4) from parsed arguments
 * into a tree.
 *
 * Contract: imap_search_parse() takes the arguments after SEARCH (or after
 * UID SEARCH), an optional "CHARSET x" first, then one or more keys, which
 * are ANDed. It returns 0 with *root_r (free with imap_search_destroy()), or
 * -1 with *error_r and *root_r NULL. An error text starting with "[BADCHARSET"
 * is an unsupported charset (only UTF-8 and US-ASCII are) and is meant for a
 * tagged NO as it stands; every other error is a syntax error for BAD.
 *
 * The tree is normalized so the server has few cases to handle:
 *  - FROM, TO, CC, BCC, SUBJECT x   -> HEADER with field "From", "To", ... x
 *  - ANSWERED, DELETED, DRAFT, FLAGGED, SEEN, RECENT -> FLAG "\Answered", ...
 *  - UNANSWERED etc.                -> NOT (FLAG ...); UNKEYWORD k -> NOT (KEYWORD k)
 *  - NEW -> AND (FLAG \Recent, NOT FLAG \Seen); OLD -> NOT FLAG \Recent
 *  - a parenthesised group          -> AND of its keys (or the key alone)
 * Sequence sets are resolved with the settings' star_seq (message count) and
 * UID sets with star_uid (highest UID). Dates are days since 1970-01-01 (see
 * imap-date.h). Strings are copies, so the tree outlives the command. NOT/OR/
 * parentheses may nest max_depth deep (default 32). */
#include <stdint.h>

#include "array.h"
#include "imap-arg.h"
#include "imap-seqset.h"

#define IMAP_SEARCH_DEFAULT_MAX_DEPTH 32

enum imap_search_type {
	IMAP_SEARCH_ALL,
	IMAP_SEARCH_AND, /* children: all must match */
	IMAP_SEARCH_OR,  /* two children */
	IMAP_SEARCH_NOT, /* one child */
	IMAP_SEARCH_SEQSET,
	IMAP_SEARCH_UID,
	IMAP_SEARCH_FLAG,    /* value: a system flag, "\Seen" */
	IMAP_SEARCH_KEYWORD, /* value: the keyword */
	IMAP_SEARCH_HEADER,  /* field, value (substring; "" matches any such field) */
	IMAP_SEARCH_BODY,    /* value */
	IMAP_SEARCH_TEXT,    /* value: headers or body */
	IMAP_SEARCH_BEFORE,  /* day: internal date */
	IMAP_SEARCH_ON,
	IMAP_SEARCH_SINCE,
	IMAP_SEARCH_SENTBEFORE, /* day: the Date: header */
	IMAP_SEARCH_SENTON,
	IMAP_SEARCH_SENTSINCE,
	IMAP_SEARCH_LARGER, /* size */
	IMAP_SEARCH_SMALLER,
};

struct imap_search_node {
	enum imap_search_type type;
	char *field;
	char *value;
	uint64_t size;
	int64_t day;
	struct imap_seqset *seqset; /* SEQSET, UID */
	ARRAY(struct imap_search_node *) children;
};

struct imap_search_settings {
	uint32_t star_seq;      /* what '*' means in a sequence set */
	uint32_t star_uid;      /* and in a UID set */
	unsigned int max_depth; /* 0: IMAP_SEARCH_DEFAULT_MAX_DEPTH */
};

int imap_search_parse(const struct imap_arg *args, unsigned int count,
		      const struct imap_search_settings *set, struct imap_search_node **root_r,
		      const char **error_r);
void imap_search_destroy(struct imap_search_node **root);
/* "ALL", "HEADER", ...: for logs and tests. */
const char *imap_search_type_name(enum imap_search_type type);

#endif
