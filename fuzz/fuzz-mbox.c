/* Fuzz target: the mbox splitter must split any input without crashing or
 * reading out of bounds, and every message must lie within the input size. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbox_reader *r = mbox_reader_create_buffer(data, size);
	struct mbox_message msg;
	const char *error;
	size_t total = 0;
	while (mbox_reader_next(r, &msg, &error) == 1) {
		total += msg.len;
		if (msg.len > size || total > size)
			abort();
	}
	mbox_reader_destroy(&r);
	return 0;
}
