#include "str.h"
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct str {
	char *data;
	size_t len;
	size_t size; /* allocated, including room for the terminating NUL */
};

struct str *str_create(size_t initial_size)
{
	struct str *str = mem_new(struct str);
	str->size = initial_size < 16 ? 16 : initial_size + 1;
	str->data = mem_alloc(str->size);
	str->data[0] = '\0';
	return str;
}

void str_destroy(struct str **str)
{
	if (*str == NULL)
		return;
	mem_free((*str)->data);
	mem_free(*str);
	*str = NULL;
}

char *str_steal(struct str **str)
{
	char *data = (*str)->data;
	mem_free(*str);
	*str = NULL;
	return data;
}

static void str_reserve(struct str *str, size_t extra)
{
	if (str->len + extra + 1 <= str->size)
		return;
	size_t size = str->size;
	while (size < str->len + extra + 1)
		size *= 2;
	str->data = mem_realloc(str->data, size);
	str->size = size;
}

void str_append_n(struct str *str, const void *data, size_t len)
{
	str_reserve(str, len);
	memcpy(str->data + str->len, data, len);
	str->len += len;
	str->data[str->len] = '\0';
}

void str_append(struct str *str, const char *s)
{
	str_append_n(str, s, strlen(s));
}

void str_append_c(struct str *str, char c)
{
	/* byte-wise writers (quoting, unfolding) call this for every byte */
	if (str->len + 2 > str->size)
		str_reserve(str, 1);
	str->data[str->len++] = c;
	str->data[str->len] = '\0';
}

void str_vprintfa(struct str *str, const char *fmt, va_list args)
{
	va_list copy;
	/* Sanitizer builds make GCC consider a NULL fmt here ("null format
	 * string"); saying it cannot be keeps -Werror meaningful. */
	if (fmt == NULL)
		abort();
	va_copy(copy, args);
	int len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (len <= 0)
		return;
	str_reserve(str, (size_t)len);
	vsnprintf(str->data + str->len, (size_t)len + 1, fmt, args);
	str->len += (size_t)len;
}

void str_printfa(struct str *str, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	str_vprintfa(str, fmt, args);
	va_end(args);
}

char *str_append_space(struct str *str, size_t len)
{
	str_reserve(str, len);
	char *at = str->data + str->len;
	str->len += len;
	str->data[str->len] = '\0';
	return at;
}

void str_truncate(struct str *str, size_t len)
{
	if (len < str->len) {
		str->len = len;
		str->data[len] = '\0';
	}
}

const char *str_c(const struct str *str)
{
	return str->data;
}

size_t str_len(const struct str *str)
{
	return str->len;
}
