#ifndef COFFER_ALLOC_H
#define COFFER_ALLOC_H
/* alloc: the process's malloc(), jemalloc's or the system's (meson
 * -Dallocator; the system's under sanitizers). Only what differs between
 * the two is here; everything else calls malloc() (src/lib/mem.h).
 *
 * alloc_one_arena() makes every thread allocate from one arena, so that
 * alloc_release() can give back all that was freed (call it before threads
 * start). alloc_release() hands freed memory back to the kernel, all of it
 * (an idle instance, SPEC: a thousand instances per host). alloc_trim() is
 * the lighter hint after a large batch of work (a system allocator with
 * per-thread arenas keeps their tops; jemalloc returns freed pages over
 * time by itself). alloc_stats() gives the bytes in use and those held
 * free, for logs. alloc_name() is "jemalloc" or "system". */
#include <stddef.h>

void alloc_one_arena(void);
void alloc_release(void);
void alloc_trim(void);
void alloc_stats(size_t *in_use_r, size_t *held_free_r);
const char *alloc_name(void);

#endif
