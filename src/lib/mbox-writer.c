#include "mbox-writer.h"
#include "str.h"

#include <stdbool.h>
#include <string.h>

/* Does the line at p (up to end) read ">*From "? */
static bool mbox_writer_is_from_line(const char *p, const char *end)
{
	while (p < end && *p == '>')
		p++;
	return (size_t)(end - p) >= 5 && memcmp(p, "From ", 5) == 0;
}

void mbox_writer_append(struct str *out, const void *data, size_t len, time_t date)
{
	struct tm tm;
	char stamp[64];
	if (gmtime_r(&date, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		strcpy(stamp, "Thu Jan  1 00:00:00 1970");
	str_printfa(out, "From MAILER-DAEMON %s\n", stamp);
	const char *p = data, *end = p + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl == NULL ? end : nl + 1;
		if (mbox_writer_is_from_line(p, line_end))
			str_append_c(out, '>');
		str_append_n(out, p, (size_t)(line_end - p));
		p = line_end;
	}
	if (len == 0 || ((const char *)data)[len - 1] != '\n')
		str_append_c(out, '\n');
	str_append_c(out, '\n');
}
