#include "http-private.h"
#include "array.h"
#include "hex.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <string.h>

char *http_form_decode(const char *text, size_t len, bool plus_is_space, const char **error_r)
{
	char *out = mem_alloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (c == '%') {
			int hi = i + 2 < len ? hex_digit_value(text[i + 1]) : -1;
			int lo = hi >= 0 ? hex_digit_value(text[i + 2]) : -1;
			if (lo < 0) {
				*error_r = tstr_printf("invalid percent escape at offset %zu: "
						       "expected %% and two hex digits",
						       i);
				mem_free(out);
				return NULL;
			}
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		/* Every consumer treats the result as a C string. */
		if (c == '\0') {
			*error_r = tstr_printf("NUL character at offset %zu is not allowed", i);
			mem_free(out);
			return NULL;
		}
		out[n++] = c;
	}
	out[n] = '\0';
	return out;
}

void http_form_free(struct http_form_field *fields, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		mem_free(fields[i].name);
		mem_free(fields[i].value);
	}
	mem_free(fields);
}

static int http_form_field_parse(const char *pair, size_t len, struct http_form_field *field_r,
				 const char **error_r)
{
	const char *eq = memchr(pair, '=', len);
	size_t name_len = eq == NULL ? len : (size_t)(eq - pair);
	char *name = http_form_decode(pair, name_len, true, error_r);
	if (name == NULL)
		return -1;
	char *value = eq == NULL ? mem_strdup("")
				 : http_form_decode(eq + 1, len - name_len - 1, true, error_r);
	if (value == NULL) {
		mem_free(name);
		return -1;
	}
	field_r->name = name;
	field_r->value = value;
	return 0;
}

int http_form_parse(const char *text, size_t len, struct http_form_field **fields_r,
		    size_t *count_r, const char **error_r)
{
	ARRAY(struct http_form_field) fields = ARRAY_INIT;
	for (size_t start = 0; start < len;) {
		const char *amp = memchr(text + start, '&', len - start);
		size_t end = amp == NULL ? len : (size_t)(amp - text);
		/* "a=1&&b=2" and a trailing '&' carry no field. */
		struct http_form_field field;
		if (end > start) {
			if (http_form_field_parse(text + start, end - start, &field, error_r) < 0) {
				http_form_free(fields.items, fields.count);
				return -1;
			}
			array_append(&fields, field);
		}
		start = end + 1;
	}
	*fields_r = fields.items;
	*count_r = fields.count;
	return 0;
}

char *http_form_encode_value(const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	struct str *out = str_create(strlen(value) * 3 + 1);
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		/* RFC 3986 unreserved characters stay; everything else is
		 * escaped, so the result is safe in a query and in a form. */
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
			str_append_c(out, (char)*p);
		} else {
			str_append_c(out, '%');
			str_append_c(out, hex[*p >> 4]);
			str_append_c(out, hex[*p & 15]);
		}
	}
	return str_steal(&out);
}
