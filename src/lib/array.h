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
 *   array_delete(&hits, i, 1);            // removes items[i], later ones move down
 *   array_sort(&hits, hit_cmp);           // qsort, also for an empty array
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
void array_delete_range(void *items, size_t *count, size_t elem_size, size_t index, size_t n);
void array_qsort(void *items, size_t count, size_t elem_size,
		 int (*cmp)(const void *, const void *));

#define array_reserve(arr, n)                                                                      \
	((arr)->items = array_grow((arr)->items, &(arr)->capacity, sizeof(*(arr)->items), (n)))
#define array_append(arr, value)                                                                   \
	(array_reserve((arr), (arr)->count + 1), (arr)->items[(arr)->count++] = (value))
#define array_push(arr)                                                                            \
	(array_reserve((arr), (arr)->count + 1),                                                   \
	 memset(&(arr)->items[(arr)->count], 0, sizeof(*(arr)->items)),                            \
	 &(arr)->items[(arr)->count++])
/* Removes n elements from index on; the ones after them move down, in order.
 * Aborts if the range is not inside the array. */
#define array_delete(arr, index, n)                                                                \
	array_delete_range((arr)->items, &(arr)->count, sizeof(*(arr)->items), (index), (n))
/* qsort() of the elements; an empty array (items may be NULL) is left alone. */
#define array_sort(arr, cmp) array_qsort((arr)->items, (arr)->count, sizeof(*(arr)->items), (cmp))
#define array_clear(arr) ((arr)->count = 0)
#define array_free(arr)                                                                            \
	(mem_free((arr)->items), (arr)->items = NULL, (arr)->count = 0, (arr)->capacity = 0)

#endif
