/* alloc with jemalloc, linked in by meson (-Dallocator).
 *
 * Why jemalloc: importing mail allocates and frees millions of small
 * objects across threads (GMime's parse tree, SQLite's, the pipeline's
 * jobs); with glibc's allocator that was about a tenth of an import's
 * CPU. jemalloc's per-thread caches cut a corpus A import from 23.2 to
 * 20.2 s of CPU and from 12.9 to 10.7 s of wall time
 * (docs/benchmarks.md). Redis links it for the same reason. */
#include "alloc.h"

#include <jemalloc/jemalloc.h>
#include <stdint.h>

#define ALLOC_STRINGIFY_(x) #x
#define ALLOC_STRINGIFY(x) ALLOC_STRINGIFY_(x)

/* Read by jemalloc when it starts. narenas:1: one arena behind the
 * per-thread caches; the default (four per core) held 20-30 MB more at a
 * corpus A import's peak (285-294 MB against 255-268 MB) for no CPU saved.
 * dirty_decay_ms:1000: freed pages go back to the kernel after a second
 * rather than ten; a 1,000,000-message import peaked at 281 MB instead of
 * 299 MB (the bound is 300 MB whatever the source's size) for about 2 %
 * more CPU. */
const char *malloc_conf = "narenas:1,dirty_decay_ms:1000";

void alloc_one_arena(void)
{
	/* narenas:1 in malloc_conf, for every process */
}

void alloc_release(void)
{
	/* this thread's cache first, then every arena's unused pages */
	(void)mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	(void)mallctl("arena." ALLOC_STRINGIFY(MALLCTL_ARENAS_ALL) ".purge", NULL, NULL, NULL, 0);
}

void alloc_trim(void)
{
	/* jemalloc's decay hands freed pages back within seconds */
}

void alloc_stats(size_t *in_use_r, size_t *held_free_r)
{
	uint64_t epoch = 1;
	size_t len = sizeof(epoch), allocated = 0, resident = 0, n = sizeof(size_t);
	/* the statistics are a snapshot, taken anew at each epoch */
	(void)mallctl("epoch", &epoch, &len, &epoch, len);
	(void)mallctl("stats.allocated", &allocated, &n, NULL, 0);
	n = sizeof(size_t);
	(void)mallctl("stats.resident", &resident, &n, NULL, 0);
	*in_use_r = allocated;
	*held_free_r = resident > allocated ? resident - allocated : 0;
}

const char *alloc_name(void)
{
	return "jemalloc";
}
