/* Fuzz target: the mbox splitter must split any input without crashing or
 * reading out of bounds, and every message must lie within the input size.
 * Inputs of odd size run with a tiny size limit, so that the
 * refusal of oversized messages (bytes dropped while read) is fuzzed too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbox_reader *r = mbox_reader_create_buffer(data, size);
	if ((size & 1) != 0)
		mbox_reader_set_max(r, 64);
	struct mbox_message msg;
	const char *error;
	size_t total = 0;
	while (mbox_reader_next(r, &msg, &error) == 1) {
		total += msg.len;
		if (msg.len > size || total > size || (msg.refused && msg.data != NULL))
			abort();
	}
	if (total + mbox_reader_skipped(r) > size)
		abort();
	mbox_reader_destroy(&r);
	return 0;
}
