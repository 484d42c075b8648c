#include "imap-seqset.h"
#include "array.h"
#include "mem.h"
#include "tstr.h"

#include <stdlib.h>
#include <string.h>

struct imap_seqset {
	ARRAY(struct imap_seqset_range) ranges;
};

/* The error text quotes at most this much of a long set. */
#define SEQSET_QUOTE_MAX 40

static const char *seqset_error(const char *text, size_t offset, const char *what)
{
	size_t len = strlen(text);
	return tstr_printf("invalid sequence set \"%.*s%s\": %s at offset %zu "
			   "(expected numbers 1..4294967295 or *, as in 1,3:5,7:*)",
			   SEQSET_QUOTE_MAX, text, len > SEQSET_QUOTE_MAX ? "..." : "", what,
			   offset);
}

/* A number or '*' at text[*pos]; *star_r says which. */
static int parse_number(const char *text, size_t *pos, uint32_t *number_r, bool *star_r,
			const char **error_r)
{
	size_t i = *pos;
	*star_r = false;
	if (text[i] == '*') {
		*star_r = true;
		*pos = i + 1;
		*number_r = 0;
		return 0;
	}
	if (text[i] < '0' || text[i] > '9') {
		*error_r = seqset_error(text, i,
					text[i] == '\0' || text[i] == ',' || text[i] == ':'
						? "empty range"
						: "invalid character");
		return -1;
	}
	if (text[i] == '0') {
		*error_r = seqset_error(text, i, "numbers start at 1");
		return -1;
	}
	uint64_t n = 0;
	for (; text[i] >= '0' && text[i] <= '9'; i++) {
		n = n * 10 + (uint64_t)(text[i] - '0');
		if (n > UINT32_MAX) {
			*error_r = seqset_error(text, *pos, "number too large");
			return -1;
		}
	}
	*number_r = (uint32_t)n;
	*pos = i;
	return 0;
}

static int compare_ranges(const void *a, const void *b)
{
	const struct imap_seqset_range *ra = a, *rb = b;
	return ra->first < rb->first ? -1 : ra->first > rb->first;
}

static void add_range(struct imap_seqset *set, uint32_t a, uint32_t b)
{
	struct imap_seqset_range *r = array_push(&set->ranges);
	r->first = a < b ? a : b;
	r->last = a < b ? b : a;
}

static void merge_ranges(struct imap_seqset *set)
{
	if (set->ranges.count == 0)
		return;
	array_sort(&set->ranges, compare_ranges);
	unsigned int out = 0;
	for (unsigned int i = 1; i < set->ranges.count; i++) {
		struct imap_seqset_range *last = &set->ranges.items[out];
		const struct imap_seqset_range *r = &set->ranges.items[i];
		if ((uint64_t)r->first <= (uint64_t)last->last + 1) {
			if (r->last > last->last)
				last->last = r->last;
		} else {
			set->ranges.items[++out] = *r;
		}
	}
	set->ranges.count = out + 1;
}

static int parse_ranges(const char *text, uint32_t star, struct imap_seqset *set,
			const char **error_r)
{
	unsigned int written = 0;
	size_t pos = 0;
	for (;;) {
		uint32_t a, b;
		bool a_star, b_star;
		if (++written > IMAP_SEQSET_MAX_RANGES) {
			*error_r = seqset_error(
				text, pos,
				tstr_printf("more than %u ranges", IMAP_SEQSET_MAX_RANGES));
			return -1;
		}
		if (parse_number(text, &pos, &a, &a_star, error_r) < 0)
			return -1;
		b = a;
		b_star = a_star;
		if (text[pos] == ':') {
			pos++;
			if (parse_number(text, &pos, &b, &b_star, error_r) < 0)
				return -1;
		}
		if (a_star && b_star) {
			if (star > 0)
				add_range(set, star, star);
		} else {
			/* With no messages, '*' stands for nothing: n:* is n. */
			if (a_star)
				a = star > 0 ? star : b;
			if (b_star)
				b = star > 0 ? star : a;
			add_range(set, a, b);
		}
		if (text[pos] == '\0')
			return 0;
		if (text[pos] != ',') {
			*error_r = seqset_error(text, pos, "invalid character");
			return -1;
		}
		pos++;
	}
}

int imap_seqset_parse(const char *text, uint32_t star, struct imap_seqset **set_r,
		      const char **error_r)
{
	*set_r = NULL;
	struct imap_seqset *set = mem_new(struct imap_seqset);
	if (parse_ranges(text, star, set, error_r) < 0) {
		imap_seqset_destroy(&set);
		return -1;
	}
	merge_ranges(set);
	*set_r = set;
	return 0;
}

bool imap_seqset_is_valid(const char *text)
{
	struct imap_seqset *set;
	const char *error;
	if (imap_seqset_parse(text, 1, &set, &error) < 0)
		return false;
	imap_seqset_destroy(&set);
	return true;
}

void imap_seqset_destroy(struct imap_seqset **set)
{
	if (*set == NULL)
		return;
	array_free(&(*set)->ranges);
	mem_free(*set);
	*set = NULL;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t number)
{
	unsigned int lo = 0, hi = set->ranges.count;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct imap_seqset_range *r = &set->ranges.items[mid];
		if (number < r->first)
			hi = mid;
		else if (number > r->last)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

unsigned int imap_seqset_range_count(const struct imap_seqset *set)
{
	return set->ranges.count;
}

const struct imap_seqset_range *imap_seqset_ranges(const struct imap_seqset *set)
{
	return set->ranges.items;
}

uint64_t imap_seqset_count(const struct imap_seqset *set)
{
	uint64_t total = 0;
	for (unsigned int i = 0; i < set->ranges.count; i++)
		total += (uint64_t)set->ranges.items[i].last - set->ranges.items[i].first + 1;
	return total;
}

void imap_seqset_iter_init(struct imap_seqset_iter *iter, const struct imap_seqset *set)
{
	iter->set = set;
	iter->range = 0;
	iter->next = set->ranges.count > 0 ? set->ranges.items[0].first : 0;
}

bool imap_seqset_iter_next(struct imap_seqset_iter *iter, uint32_t *number_r)
{
	const struct imap_seqset *set = iter->set;
	if (iter->range >= set->ranges.count)
		return false;
	*number_r = (uint32_t)iter->next;
	if (iter->next == set->ranges.items[iter->range].last) {
		if (++iter->range < set->ranges.count)
			iter->next = set->ranges.items[iter->range].first;
	} else {
		iter->next++;
	}
	return true;
}
