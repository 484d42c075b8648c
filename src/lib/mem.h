#ifndef COFFER_MEM_H
#define COFFER_MEM_H
/* mem: allocation that never returns NULL.
 *
 * Contract: every function aborts the process (after a message on stderr) when
 * memory is exhausted, so callers never check for NULL. mem_free() accepts NULL.
 * Strings returned by mem_strdup()/mem_printf() are freed with mem_free(). */
#include <stddef.h>
#include <stdarg.h>

void *mem_alloc(size_t size);
void *mem_zalloc(size_t size);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *ptr, size_t size);
/* size bytes at a multiple of align (a power of two, a multiple of
 * sizeof(void *)): for O_DIRECT I/O. Freed with mem_free(). */
void *mem_alloc_aligned(size_t align, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
char *mem_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *mem_vprintf(const char *fmt, va_list args) __attribute__((format(printf, 1, 0)));
void mem_free(void *ptr);

/* Allocate one zeroed struct: struct foo *f = mem_new(struct foo); */
#define mem_new(type) ((type *)mem_zalloc(sizeof(type)))

#endif
