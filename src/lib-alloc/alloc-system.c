/* alloc with the system's (glibc's) malloc(): under sanitizers, or where
 * jemalloc is not installed (meson -Dallocator). */
#include "alloc.h"

#include <malloc.h>

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
