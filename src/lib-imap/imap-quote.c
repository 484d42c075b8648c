#include "imap-quote.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool needs_literal(const unsigned char *s, size_t len)
{
	if (len > IMAP_QUOTE_MAX_QUOTED)
		return true;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n' || s[i] >= 0x80)
			return true;
	}
	return false;
}

void imap_quote_append_string(struct str *dest, const void *data, size_t len)
{
	const unsigned char *s = data;
	if (needs_literal(s, len)) {
		str_printfa(dest, "{%zu}\r\n", len);
		str_append_n(dest, s, len);
		return;
	}
	str_append_c(dest, '"');
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			str_append_n(dest, s + start, i - start);
			str_append_c(dest, '\\');
			start = i;
		}
	}
	str_append_n(dest, s + start, len - start);
	str_append_c(dest, '"');
}

void imap_quote_append_nstring(struct str *dest, const char *s)
{
	if (s == NULL)
		str_append(dest, "NIL");
	else
		imap_quote_append_string(dest, s, strlen(s));
}

bool imap_quote_is_atom(const char *s)
{
	if (*s == '\0' || strcasecmp(s, "NIL") == 0)
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		/* atom-specials: ( ) { SP CTL % * " \ ] - and 8-bit */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

void imap_quote_append_astring(struct str *dest, const char *s)
{
	if (imap_quote_is_atom(s))
		str_append(dest, s);
	else
		imap_quote_append_string(dest, s, strlen(s));
}
