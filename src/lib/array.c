/* array: see array.h. */
#include "array.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *array_grow(void *items, size_t *capacity, size_t elem_size, size_t needed)
{
	if (needed <= *capacity)
		return items;
	size_t cap = *capacity < 8 ? 8 : *capacity;
	while (cap < needed) {
		if (cap > SIZE_MAX / 2)
			cap = needed;
		else
			cap *= 2;
	}
	if (elem_size != 0 && cap > SIZE_MAX / elem_size) {
		fprintf(stderr, "array: %zu elements of %zu bytes overflow size_t\n", cap,
			elem_size);
		abort();
	}
	unsigned char *grown = mem_realloc(items, cap * elem_size);
	/* zero the new room so that array_push() hands out clean elements */
	memset(grown + *capacity * elem_size, 0, (cap - *capacity) * elem_size);
	*capacity = cap;
	return grown;
}

void array_delete_range(void *items, size_t *count, size_t elem_size, size_t index, size_t n)
{
	if (index > *count || n > *count - index) {
		fprintf(stderr, "array: deleting %zu elements at %zu of %zu\n", n, index, *count);
		abort();
	}
	unsigned char *p = items;
	size_t after = *count - index - n;
	if (n > 0 && after > 0)
		memmove(p + index * elem_size, p + (index + n) * elem_size, after * elem_size);
	*count -= n;
}

void array_qsort(void *items, size_t count, size_t elem_size,
		 int (*cmp)(const void *, const void *))
{
	/* qsort() must not be given NULL, not even for zero elements */
	if (count > 1)
		qsort(items, count, elem_size, cmp);
}
