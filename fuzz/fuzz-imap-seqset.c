/* Fuzz target: IMAP sequence sets. A parsed set must be sorted, disjoint and
 * non-adjacent, and its membership test must agree with its ranges. */
#include <stdint.h>
#include <stddef.h>

#include "imap-seqset.h"
#include "mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* The first byte picks '*': 0, small, or the largest. */
	static const uint32_t stars[] = {0, 1, 5, 1000, UINT32_MAX};
	uint32_t star = stars[data[0] % 5];
	char *text = mem_strndup((const char *)data + 1, size - 1);
	struct imap_seqset *set;
	const char *error;
	if (imap_seqset_parse(text, star, &set, &error) == 0) {
		const struct imap_seqset_range *r = imap_seqset_ranges(set);
		unsigned int count = imap_seqset_range_count(set);
		for (unsigned int i = 0; i < count; i++) {
			if (r[i].first == 0 || r[i].first > r[i].last)
				__builtin_trap();
			if (i > 0 && (uint64_t)r[i - 1].last + 1 >= r[i].first)
				__builtin_trap();
			if (!imap_seqset_contains(set, r[i].first) ||
			    !imap_seqset_contains(set, r[i].last) ||
			    (r[i].first > 1 && imap_seqset_contains(set, r[i].first - 1)))
				__builtin_trap();
		}
		struct imap_seqset_iter iter;
		uint32_t n, prev = 0;
		uint64_t seen = 0;
		imap_seqset_iter_init(&iter, set);
		while (seen < 10000 && imap_seqset_iter_next(&iter, &n)) {
			if (n <= prev && seen > 0)
				__builtin_trap();
			prev = n;
			seen++;
		}
		imap_seqset_destroy(&set);
	} else if (error == NULL || set != NULL) {
		__builtin_trap();
	}
	mem_free(text);
	return 0;
}
