/* Fuzz target: lib-mime's parse of a message and the IMAP data derived from
 * it (mime-imap.c). Input: a message. Whatever the bytes, ENVELOPE,
 * BODYSTRUCTURE and BODY must be well-formed IMAP data (balanced lists,
 * valid quoted strings and literals: a malformed BODYSTRUCTURE breaks the
 * client's whole FETCH), the data derived again for old records must be the
 * same, and RFC822.SIZE must be the canonical size. */
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "imap-msgpart.h"
#include "mem.h"
#include "mime.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Is s well-formed IMAP response data (RFC 3501 9): lists whose parentheses
 * balance, NIL and numbers, quoted strings of 7-bit text with only " and \
 * escaped, literals {n} CRLF followed by n bytes. Lists of addresses and of
 * body parts have no space between their elements; others need one. */
static bool imap_well_formed(const char *s, size_t len)
{
	size_t i = 0;
	int depth = 0;
	while (i < len) {
		char c = s[i];
		if (c == '(') {
			depth++;
			i++;
		} else if (c == ')') {
			if (--depth < 0)
				return false;
			i++;
		} else if (c == ' ') {
			if (i + 1 >= len || s[i + 1] == ' ' || s[i + 1] == ')')
				return false;
			i++;
		} else if (c == '"') {
			for (i++; i < len && s[i] != '"'; i++) {
				unsigned char q = (unsigned char)s[i];
				if (q == '\\') {
					if (i + 1 >= len || (s[i + 1] != '"' && s[i + 1] != '\\'))
						return false;
					i++;
				} else if (q == '\r' || q == '\n' || q == 0 || q >= 0x80) {
					return false;
				}
			}
			if (i >= len)
				return false;
			i++;
		} else if (c == '{') {
			char *end;
			unsigned long n = strtoul(s + i + 1, &end, 10);
			if (end == s + i + 1 || end[0] != '}' || end[1] != '\r' || end[2] != '\n')
				return false;
			i = (size_t)(end + 3 - s);
			if (n > len - i || memchr(s + i, '\0', n) != NULL)
				return false;
			i += n;
		} else if (c >= '0' && c <= '9') {
			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
		} else if (strncmp(s + i, "NIL", 3) == 0) {
			i += 3;
		} else {
			return false;
		}
	}
	return depth == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_info *info = mime_parse(data, size, 1024);
	struct mime_info *again = mime_parse_imap(data, size);
	if (strcmp(info->envelope, again->envelope) != 0 ||
	    strcmp(info->bodystructure, again->bodystructure) != 0 ||
	    strcmp(info->body, again->body) != 0 || info->imap_size != again->imap_size ||
	    info->imap_size != imap_msgpart_canonical_size(data, size))
		__builtin_trap();
	struct str *items = str_create(1024);
	str_printfa(items, "%s %s %s", info->envelope, info->bodystructure, info->body);
	if (!imap_well_formed(str_c(items), str_len(items)))
		__builtin_trap();
	str_destroy(&items);
	mime_info_destroy(&again);
	mime_info_destroy(&info);
	return 0;
}
