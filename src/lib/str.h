#ifndef COFFER_STR_H
#define COFFER_STR_H
/* str: a growable byte string, always NUL-terminated for convenience.
 *
 * Contract: str_create() never fails (allocation aborts). Binary data may
 * contain NUL bytes; str_len() is authoritative. str_c() is valid until the next
 * modification. str_destroy() frees and sets the pointer to NULL; str_steal()
 * frees the wrapper and hands the buffer (free with mem_free) to the caller. */
#include <stdarg.h>
#include <stddef.h>

struct str;

struct str *str_create(size_t initial_size);
void str_destroy(struct str **str);
char *str_steal(struct str **str);

void str_append(struct str *str, const char *s);
void str_append_n(struct str *str, const void *data, size_t len);
void str_append_c(struct str *str, char c);
void str_printfa(struct str *str, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void str_vprintfa(struct str *str, const char *fmt, va_list args)
	__attribute__((format(printf, 2, 0)));
void str_truncate(struct str *str, size_t len);
/* Makes the string len bytes longer and returns where they begin, for a
 * writer that fills them in place and then str_truncate()s to what it
 * wrote (one call instead of one per piece). The bytes are uninitialized;
 * the pointer is valid until the next modification. */
char *str_append_space(struct str *str, size_t len);

const char *str_c(const struct str *str);
size_t str_len(const struct str *str);

#endif
