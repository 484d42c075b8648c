/* Fuzz target: BODY[section] extraction. Input: a section text, a NUL, then
 * the message. Whatever the message, the cut must be made of the message's
 * own bytes and never longer than it (HEADER.FIELDS adds only its CRLF). */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "imap-msgpart.h"
#include "mem.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	if (nul == NULL)
		return 0;
	char *section = mem_strndup((const char *)data, (size_t)(nul - data));
	const unsigned char *msg = nul + 1;
	size_t len = size - (size_t)(nul + 1 - data);
	struct imap_msgpart *part;
	const char *error;
	if (imap_msgpart_parse(section, &part, &error) == 0) {
		struct str *out = str_create(64);
		imap_msgpart_extract(part, msg, len, out);
		if (str_len(out) > len + 2)
			__builtin_trap();
		str_destroy(&out);
		imap_msgpart_destroy(&part);
	} else if (error == NULL || part != NULL) {
		__builtin_trap();
	}
	mem_free(section);
	return 0;
}
