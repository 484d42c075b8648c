#ifndef COFFER_IMAP_SEQSET_H
#define COFFER_IMAP_SEQSET_H
/* imap-seqset: IMAP sequence sets ("1,3:5,7:*,*"), message sequence numbers or
 * UIDs alike.
 *
 * Contract: imap_seqset_parse() resolves '*' to `star` (the largest number in
 * use: the message count or the highest UID), orders each range ("5:2" is
 * 2:5; "9:*" with star 4 is 4:9, RFC 3501 6.4.8), then sorts and merges the
 * ranges, so the result is a list of disjoint, non-adjacent ranges in
 * ascending order. With star 0 (an empty mailbox) a bare '*' matches nothing
 * and "n:*" is n:n. Numbers are 1..4294967295; at most IMAP_SEQSET_MAX_RANGES
 * ranges as written. Errors ("invalid sequence set \"1,,2\": empty range at
 * offset 2") name the text and what is accepted; *set_r is left NULL.
 * Nothing checks numbers against `star`: "FETCH 99" in a 3-message mailbox is
 * for the caller to refuse or ignore. */
#include <stdbool.h>
#include <stdint.h>

#define IMAP_SEQSET_MAX_RANGES 100000

struct imap_seqset;

struct imap_seqset_range {
	uint32_t first, last; /* first <= last */
};

int imap_seqset_parse(const char *text, uint32_t star, struct imap_seqset **set_r,
		      const char **error_r);
void imap_seqset_destroy(struct imap_seqset **set);

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t number);
unsigned int imap_seqset_range_count(const struct imap_seqset *set);
const struct imap_seqset_range *imap_seqset_ranges(const struct imap_seqset *set);
/* How many numbers the set holds (up to 2^32 - 1). */
uint64_t imap_seqset_count(const struct imap_seqset *set);
/* Is `text` syntactically a sequence set (e.g. to tell a SEARCH key from one)? */
bool imap_seqset_is_valid(const char *text);

/* Every number of the set in ascending order:
 *	struct imap_seqset_iter iter;
 *	imap_seqset_iter_init(&iter, set);
 *	while (imap_seqset_iter_next(&iter, &n)) ... */
struct imap_seqset_iter {
	const struct imap_seqset *set;
	unsigned int range;
	uint64_t next;
};
void imap_seqset_iter_init(struct imap_seqset_iter *iter, const struct imap_seqset *set);
bool imap_seqset_iter_next(struct imap_seqset_iter *iter, uint32_t *number_r);

#endif
