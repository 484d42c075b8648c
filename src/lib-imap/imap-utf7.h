#ifndef COFFER_IMAP_UTF7_H
#define COFFER_IMAP_UTF7_H
/* imap-utf7: mailbox names in modified UTF-7 (RFC 3501 section 5.1.3).
 *
 * Printable US-ASCII stands for itself except '&', written "&-"; everything
 * else is UTF-16 in base64 (',' for '/', no padding) between '&' and '-'.
 *
 * Contract: both functions append to dest and return 0, or return -1 with
 * *error_r, leaving dest as it was. Decoding is strict, as RFC 3501 asks: it
 * refuses 8-bit and control bytes, unterminated or empty-but-for-'&' shifts
 * ("&AGE"), printable ASCII encoded in base64, two shifted runs in a row
 * ("&AOQ-&AOQ-"), stray bits, and unpaired surrogates - so every name has
 * exactly one spelling. Encoding refuses invalid UTF-8 (overlong forms,
 * surrogates, beyond U+10FFFF); characters outside the BMP become surrogate
 * pairs. */
#include "str.h"

int imap_utf7_decode(const char *mutf7, struct str *dest, const char **error_r);
int imap_utf7_encode(const char *utf8, struct str *dest, const char **error_r);

#endif
