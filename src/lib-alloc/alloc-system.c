/* alloc with the system's (glibc's) malloc(): under sanitizers, or where
 * jemalloc is not installed (meson -Dallocator). */
#include "alloc.h"

#include <malloc.h>

/* glibc gives each thread that allocates (an import's reader, workers,
 * writer) an arena of its own, and malloc_trim() cannot hand back the top
 * of those arenas: after one import an idle instance kept 20-45 MB of freed
 * memory. With one arena the trim at idle returns it all (measured: 2.5 MB
 * private memory left, most of it the relocated data of the shared
 * libraries); per-thread caches (tcache) keep the threads from contending
 * much on the one lock. */
void alloc_one_arena(void)
{
	(void)mallopt(M_ARENA_MAX, 1);
}

void alloc_release(void)
{
	(void)malloc_trim(0);
}

void alloc_trim(void)
{
	(void)malloc_trim(0);
}

void alloc_stats(size_t *in_use_r, size_t *held_free_r)
{
	struct mallinfo2 mi = mallinfo2();
	*in_use_r = mi.uordblks;
	*held_free_r = mi.fordblks;
}

const char *alloc_name(void)
{
	return "system";
}
