/* Fuzz target: any bytes given as a PST file must be refused with an error
 * or read to the end without crashing, every message within the size limit.
 * libpff opens files by name: the input is written to a memfd and opened
 * through /proc/self/fd. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pst.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PST_MAX (1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-pst", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct pst_reader *r;
	const char *error;
	if (pst_reader_open(path, FUZZ_PST_MAX, &r, &error) == 0) {
		struct pst_message msg;
		unsigned int count = 0;
		unsigned char buf[4096];
		while (pst_reader_next(r, &msg, &error) == 1 && count++ < 10000) {
			if (msg.skip_reason != NULL)
				continue;
			if (msg.len > FUZZ_PST_MAX)
				abort();
			/* exactly the size announced, or an error */
			uint64_t total = 0;
			ssize_t n;
			while ((n = pst_reader_read(r, buf, sizeof(buf), &error)) > 0)
				total += (uint64_t)n;
			if (n == 0 && total != msg.len)
				abort();
		}
		pst_reader_destroy(&r);
	}
	close(fd);
	return 0;
}
