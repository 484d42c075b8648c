/* imap-uidmap: sequence numbers and UIDs as runs of consecutive UIDs. */
#include "imap-uidmap.h"
#include "array.h"
#include "mem.h"
#include "tstr.h"

#include <errno.h>
#include <stdlib.h>

struct imap_uidmap_run {
	uint32_t first_uid, length, first_seq;
};

struct imap_uidmap {
	ARRAY(struct imap_uidmap_run) runs;
	uint32_t count;
};

struct imap_uidmap *imap_uidmap_create(void)
{
	return mem_new(struct imap_uidmap);
}

void imap_uidmap_destroy(struct imap_uidmap **map)
{
	if (*map == NULL)
		return;
	array_free(&(*map)->runs);
	mem_free(*map);
	*map = NULL;
}

uint32_t imap_uidmap_count(const struct imap_uidmap *map)
{
	return map->count;
}

uint32_t imap_uidmap_max_uid(const struct imap_uidmap *map)
{
	if (map->runs.count == 0)
		return 0;
	const struct imap_uidmap_run *r = &map->runs.items[map->runs.count - 1];
	return r->first_uid + r->length - 1;
}

static bool imap_uidmap_add_run(struct imap_uidmap *map, uint32_t first, uint32_t last)
{
	if (first == 0 || last < first || first <= imap_uidmap_max_uid(map) ||
	    (uint64_t)map->count + (last - first) + 1 > UINT32_MAX)
		return false;
	struct imap_uidmap_run *tail =
		map->runs.count == 0 ? NULL : &map->runs.items[map->runs.count - 1];
	if (tail != NULL && tail->first_uid + tail->length == first) {
		tail->length += last - first + 1;
	} else {
		struct imap_uidmap_run run = {first, last - first + 1, map->count + 1};
		array_append(&map->runs, run);
	}
	map->count += last - first + 1;
	return true;
}

bool imap_uidmap_append(struct imap_uidmap *map, uint32_t uid)
{
	return imap_uidmap_add_run(map, uid, uid);
}

static bool imap_uidmap_number(const char **p, uint32_t *n_r)
{
	if (**p < '1' || **p > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(*p, &end, 10);
	if (errno != 0 || v > UINT32_MAX)
		return false;
	*p = end;
	*n_r = (uint32_t)v;
	return true;
}

int imap_uidmap_append_set(struct imap_uidmap *map, const char *set, const char **error_r)
{
	const char *p = set;
	while (*p != '\0') {
		uint32_t first, last;
		if (!imap_uidmap_number(&p, &first))
			goto bad;
		last = first;
		if (*p == ':') {
			p++;
			if (!imap_uidmap_number(&p, &last))
				goto bad;
		}
		if (!imap_uidmap_add_run(map, first, last))
			goto bad;
		if (*p == ',' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			goto bad;
	}
	return 0;
bad:
	*error_r = tstr_printf("not an ascending UID set at offset %zu", (size_t)(p - set));
	return -1;
}

/* The run holding sequence number seq (binary search on first_seq). */
uint32_t imap_uidmap_uid(const struct imap_uidmap *map, uint32_t seq)
{
	if (seq == 0 || seq > map->count)
		return 0;
	uint32_t lo = 0, hi = map->runs.count;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (map->runs.items[mid].first_seq <= seq)
			lo = mid;
		else
			hi = mid;
	}
	return map->runs.items[lo].first_uid + (seq - map->runs.items[lo].first_seq);
}

uint32_t imap_uidmap_seq_at_or_after(const struct imap_uidmap *map, uint32_t uid)
{
	/* the first run whose last UID is >= uid */
	uint32_t lo = 0, hi = map->runs.count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct imap_uidmap_run *r = &map->runs.items[mid];
		if ((uint64_t)r->first_uid + r->length - 1 < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == map->runs.count)
		return map->count + 1;
	const struct imap_uidmap_run *r = &map->runs.items[lo];
	return uid <= r->first_uid ? r->first_seq : r->first_seq + (uid - r->first_uid);
}

uint32_t imap_uidmap_seq(const struct imap_uidmap *map, uint32_t uid)
{
	uint32_t seq = imap_uidmap_seq_at_or_after(map, uid);
	return seq <= map->count && imap_uidmap_uid(map, seq) == uid ? seq : 0;
}
