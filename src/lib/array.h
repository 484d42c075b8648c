#ifndef COFFER_ARRAY_H
#define COFFER_ARRAY_H
/* array: a growable array of any element type.
 *
 *   ARRAY(struct hit) hits = ARRAY_INIT;
 *   array_append(&hits, hit);             // copies the value in
 *   struct hit *h = array_push(&hits);    // a zeroed new last element (also after a clear)
 *   for (size_t i = 0; i < hits.count; i++) use(&hits.items[i]);
 *   array_free(&hits);
 *
 * Contract: growth doubles the capacity (amortised O(1) appends) and aborts
 * on exhaustion or size overflow, as mem_* does. Pointers into items are
 * valid until the next append, push or reserve. array_free() releases the
 * storage and leaves an empty array that may be used again. The element
 * type is the array's own: no casts at the call sites. */
#include <stddef.h>
#include <string.h>

#include "mem.h"

#define ARRAY(type)                                                                                \
	struct {                                                                                   \
		type *items;                                                                       \
		size_t count;                                                                      \
		size_t capacity;                                                                   \
	}
#define ARRAY_INIT                                                                                 \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* Returns items (reallocated if needed) with room for at least `needed`
 * elements of elem_size bytes; *capacity is updated. New room is zeroed. */
void *array_grow(void *items, size_t *capacity, size_t elem_size, size_t needed);

#define array_reserve(arr, n)                                                                      \
	((arr)->items = array_grow((arr)->items, &(arr)->capacity, sizeof(*(arr)->items), (n)))
#define array_append(arr, value)                                                                   \
	(array_reserve((arr), (arr)->count + 1), (arr)->items[(arr)->count++] = (value))
#define array_push(arr)                                                                            \
	(array_reserve((arr), (arr)->count + 1),                                                   \
	 memset(&(arr)->items[(arr)->count], 0, sizeof(*(arr)->items)),                            \
	 &(arr)->items[(arr)->count++])
#define array_clear(arr) ((arr)->count = 0)
#define array_free(arr)                                                                            \
	(mem_free((arr)->items), (arr)->items = NULL, (arr)->count = 0, (arr)->capacity = 0)

#endif
