#ifndef COFFER_IMAP_QUOTE_H
#define COFFER_IMAP_QUOTE_H
/* imap-quote: strings in server responses.
 *
 * Contract: every function appends to dest and never fails. A string goes out
 * quoted ("...", with '"' and '\' escaped) unless it holds CR, LF, NUL or 8-bit
 * bytes or is longer than IMAP_QUOTE_MAX_QUOTED bytes: then it is a literal,
 * "{n}\r\n" followed by the bytes, which the server sends as they are. */
#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#define IMAP_QUOTE_MAX_QUOTED 1024

/* A string: quoted or literal (data may hold NUL). */
void imap_quote_append_string(struct str *dest, const void *data, size_t len);
/* An nstring: NIL for NULL, otherwise a string. */
void imap_quote_append_nstring(struct str *dest, const char *s);
/* An astring: the bare atom when s is one (and not "NIL" or empty), otherwise
 * a string. */
void imap_quote_append_astring(struct str *dest, const char *s);
/* The bare text of an atom: does s need no quoting? */
bool imap_quote_is_atom(const char *s);

#endif
