/* mime-write: GMime's encoders for messages Coffer writes itself. */
#include "mime-write.h"
#include "mem.h"

#include <gmime/gmime.h>
#include <string.h>

/* GMime folds with "\n\t"; a message written with CRLF wants "\r\n". */
static char *mime_write_crlf(char *gstr)
{
	size_t n = 0;
	for (const char *p = gstr; *p != '\0'; p++)
		n += *p == '\n' ? 2 : 1;
	char *out = mem_alloc(n + 1), *o = out;
	for (const char *p = gstr; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n')
			*o++ = '\r';
		*o++ = *p;
	}
	*o = '\0';
	g_free(gstr);
	return out;
}

/* The value after "Name:" of a string GMime returns with a leading space
 * or none. */
static char *mime_write_trim(char *s)
{
	size_t skip = strspn(s, " \t");
	if (skip > 0)
		memmove(s, s + skip, strlen(s + skip) + 1);
	size_t len = strlen(s);
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

char *mime_write_text(const char *utf8)
{
	char *s = g_mime_utils_header_encode_text(NULL, utf8, "utf-8");
	return mime_write_trim(mime_write_crlf(s));
}

char *mime_write_mailbox(const char *name, const char *addr)
{
	InternetAddress *ia = internet_address_mailbox_new(
		name != NULL && name[0] != '\0' ? name : NULL, addr != NULL ? addr : "");
	char *s = internet_address_to_string(ia, NULL, TRUE);
	g_object_unref(ia);
	return mime_write_trim(mime_write_crlf(s));
}

char *mime_write_content_type(const char *type, const char *charset, const char *name)
{
	GMimeContentType *ct = g_mime_content_type_parse(NULL, type);
	if (charset != NULL)
		g_mime_content_type_set_parameter(ct, "charset", charset);
	if (name != NULL)
		g_mime_content_type_set_parameter(ct, "name", name);
	char *s = g_mime_content_type_encode(ct, NULL);
	g_object_unref(ct);
	return mime_write_trim(mime_write_crlf(s));
}

char *mime_write_disposition(const char *disposition, const char *filename)
{
	GMimeContentDisposition *d = g_mime_content_disposition_new();
	g_mime_content_disposition_set_disposition(d, disposition);
	if (filename != NULL)
		g_mime_content_disposition_set_parameter(d, "filename", filename);
	char *s = g_mime_content_disposition_encode(d, NULL);
	g_object_unref(d);
	return mime_write_trim(mime_write_crlf(s));
}

char *mime_write_date(int64_t t)
{
	GDateTime *dt = g_date_time_new_from_unix_utc(t);
	if (dt == NULL)
		dt = g_date_time_new_from_unix_utc(0);
	char *s = g_mime_utils_header_format_date(dt);
	g_date_time_unref(dt);
	return mime_write_trim(mime_write_crlf(s));
}
