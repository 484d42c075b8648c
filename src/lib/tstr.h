#ifndef COFFER_TSTR_H
#define COFFER_TSTR_H
/* tstr: short-lived formatted strings, mainly for error texts passed out through
 * `const char **error_r`.
 *
 * Contract: tstr_printf() returns a string owned by a per-thread ring of
 * TSTR_RING_SIZE slots. It stays valid until TSTR_RING_SIZE more tstr strings
 * are made in the same thread, so a caller that wants to keep one must copy it
 * (mem_strdup). Texts longer than TSTR_MAX_LEN are truncated with "...". */
#include <stdarg.h>

#define TSTR_RING_SIZE 32
#define TSTR_MAX_LEN 2048

const char *tstr_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *tstr_vprintf(const char *fmt, va_list args) __attribute__((format(printf, 1, 0)));
/* Copy s into the ring (for texts whose owner is about to be freed). */
const char *tstr_dup(const char *s);

#endif
