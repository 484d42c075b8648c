#ifndef COFFER_IMAP_ARG_H
#define COFFER_IMAP_ARG_H
/* imap-arg: the arguments of a parsed IMAP command, and typed access to them.
 *
 * Contract: arguments are made by imap-parser and live as long as the command
 * they belong to. Every string value (atom, quoted, literal) is NUL-terminated
 * and `len` is authoritative: a literal may contain NUL bytes. An atom "NIL"
 * (any case) has type IMAP_ARG_NIL, but keeps its text in `str`, because as an
 * astring it is the mailbox or string "NIL". A list's children are in
 * `list[0..list_count)`.
 *
 * Atoms are read generously for FETCH: an atom containing '[' runs to the
 * matching ']', spaces and parentheses included, so
 * "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]<0.1024>" is one atom. A '\' may
 * start an atom (flags such as \Seen).
 *
 * The imap_arg_get_*() helpers return true and set *_r when the argument has
 * the asked-for form, false otherwise (NULL arg included). */
#include <stdbool.h>
#include <stddef.h>

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_STRING, /* a quoted string, unescaped */
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST,
	IMAP_ARG_NIL,
};

struct imap_arg {
	enum imap_arg_type type;
	const char *str; /* NULL for lists */
	size_t len;
	const struct imap_arg *list; /* IMAP_ARG_LIST only */
	unsigned int list_count;
};

/* "atom", "quoted string", "literal", "list" or "NIL": for error texts. */
const char *imap_arg_type_name(enum imap_arg_type type);
/* An atom (NIL included, as its text). */
bool imap_arg_get_atom(const struct imap_arg *arg, const char **str_r);
/* A string: quoted or literal. Literals containing NUL are refused. */
bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r);
/* An astring: atom (NIL included, as "NIL"), quoted or literal without NUL. */
bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r);
/* An nstring: NIL gives *str_r = NULL, otherwise as imap_arg_get_string(). */
bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r);
bool imap_arg_get_list(const struct imap_arg *arg, const struct imap_arg **list_r,
		       unsigned int *count_r);
/* True when arg is an atom equal to `atom`, ignoring ASCII case. */
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *atom);

#endif
