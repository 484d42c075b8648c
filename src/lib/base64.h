#ifndef COFFER_BASE64_H
#define COFFER_BASE64_H
/* base64: RFC 4648 standard alphabet with padding.
 *
 * Contract: base64_encode() returns a NUL-terminated string (mem_free()).
 * base64_decode() returns a buffer (mem_free(); NUL-terminated for convenience,
 * not counted in *len_r) or NULL if the input is not valid base64. */
#include <stddef.h>

char *base64_encode(const void *data, size_t len);
unsigned char *base64_decode(const char *text, size_t text_len, size_t *len_r);

#endif
