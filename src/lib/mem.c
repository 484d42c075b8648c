#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void mem_out_of_memory(size_t size)
{
	/* Nothing sensible can continue without memory; dying loudly beats corrupting
	 * state. Supervisors restart the process. */
	fprintf(stderr, "coffer: out of memory (allocating %zu bytes)\n", size);
	abort();
}

void *mem_alloc(size_t size)
{
	void *p = malloc(size == 0 ? 1 : size);
	if (p == NULL)
		mem_out_of_memory(size);
	return p;
}

void *mem_zalloc(size_t size)
{
	return mem_calloc(1, size);
}

void *mem_calloc(size_t count, size_t size)
{
	void *p = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
	if (p == NULL)
		mem_out_of_memory(count * size);
	return p;
}

void *mem_alloc_aligned(size_t align, size_t size)
{
	void *p;
	if (posix_memalign(&p, align, size == 0 ? 1 : size) != 0)
		mem_out_of_memory(size);
	return p;
}

void *mem_realloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size == 0 ? 1 : size);
	if (p == NULL)
		mem_out_of_memory(size);
	return p;
}

char *mem_strdup(const char *s)
{
	return mem_strndup(s, strlen(s));
}

char *mem_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = mem_alloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *mem_vprintf(const char *fmt, va_list args)
{
	va_list copy;
	/* Sanitizer builds make GCC consider a NULL fmt here ("null format
	 * string"); saying it cannot be keeps -Werror meaningful. */
	if (fmt == NULL)
		abort();
	va_copy(copy, args);
	int len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (len < 0)
		mem_out_of_memory(0);
	char *p = mem_alloc((size_t)len + 1);
	vsnprintf(p, (size_t)len + 1, fmt, args);
	return p;
}

char *mem_printf(const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	char *p = mem_vprintf(fmt, args);
	va_end(args);
	return p;
}

void mem_free(void *ptr)
{
	free(ptr);
}
