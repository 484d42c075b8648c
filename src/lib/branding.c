/* branding: checks of product names, colours and logos (see branding.h). */
#include "branding.h"
#include "hex.h"

#include <ctype.h>
#include <string.h>

bool branding_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > BRANDING_NAME_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	}
	/* all blank is no name */
	return strspn(name, " ") != len;
}

bool branding_color_ok(const char *color)
{
	if (strlen(color) != 7 || color[0] != '#')
		return false;
	for (int i = 1; i < 7; i++) {
		if (hex_digit_value(color[i]) < 0)
			return false;
	}
	return true;
}

static unsigned long branding_be32(const unsigned char *p)
{
	return ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) |
	       ((unsigned long)p[2] << 8) | (unsigned long)p[3];
}

static int branding_png_check(const unsigned char *data, size_t size, const char **error_r)
{
	/* signature, then the IHDR chunk: length 13, "IHDR", width, height */
	if (size < 8 + 8 + 13 + 4 || memcmp(data + 8, "\0\0\0\x0dIHDR", 8) != 0) {
		*error_r = "logo: a PNG without its IHDR header";
		return -1;
	}
	unsigned long width = branding_be32(data + 16), height = branding_be32(data + 20);
	if (width == 0 || height == 0 || width > 4096 || height > 4096) {
		*error_r = "logo: a PNG of at most 4096 x 4096 pixels";
		return -1;
	}
	return 0;
}

/* Case-insensitive search in a buffer that may hold NULs. */
static const unsigned char *branding_find(const unsigned char *data, size_t size,
					  const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; n <= size && i <= size - n; i++) {
		size_t j = 0;
		while (j < n && tolower(data[i + j]) == needle[j])
			j++;
		if (j == n)
			return data + i;
	}
	return NULL;
}

/* An attribute named on...= : whitespace, "on", letters, optional blanks, "=". */
static bool branding_has_handler(const unsigned char *data, size_t size)
{
	for (size_t i = 1; i + 3 < size; i++) {
		if (!isspace(data[i - 1]) && data[i - 1] != '/')
			continue;
		if (tolower(data[i]) != 'o' || tolower(data[i + 1]) != 'n')
			continue;
		size_t j = i + 2;
		while (j < size && isalpha(data[j]))
			j++;
		if (j == i + 2)
			continue;
		while (j < size && isspace(data[j]))
			j++;
		if (j < size && data[j] == '=')
			return true;
	}
	return false;
}

static int branding_svg_check(const unsigned char *data, size_t size, const char **error_r)
{
	static const char *const forbidden[] = {
		"<script", "javascript:", "<foreignobject", "<!doctype",      "<!entity",
		"<iframe", "<embed",      "<object",        "data:text/html",
	};
	if (memchr(data, '\0', size) != NULL || branding_find(data, size, "<svg") == NULL) {
		*error_r = "logo: not an SVG image (no <svg> element)";
		return -1;
	}
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		if (branding_find(data, size, forbidden[i]) != NULL) {
			*error_r = "logo: an SVG with scripts, event handlers, embedded documents "
				   "or DOCTYPE/ENTITY declarations is refused";
			return -1;
		}
	}
	if (branding_has_handler(data, size)) {
		*error_r = "logo: an SVG with event handler attributes (on...=) is refused";
		return -1;
	}
	return 0;
}

int branding_logo_check(const unsigned char *data, size_t size, const char **type_r,
			const char **error_r)
{
	if (size == 0) {
		*error_r = "logo: empty";
		return -1;
	}
	if (size > BRANDING_LOGO_MAX) {
		*error_r = "logo: larger than 256 KiB";
		return -1;
	}
	if (size >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) {
		*type_r = "image/png";
		return branding_png_check(data, size, error_r);
	}
	const unsigned char *p = data;
	size_t left = size;
	if (left >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
		p += 3;
		left -= 3;
	}
	while (left > 0 && isspace(*p)) {
		p++;
		left--;
	}
	if (left == 0 || *p != '<') {
		*error_r = "logo: neither a PNG nor an SVG image";
		return -1;
	}
	*type_r = "image/svg+xml";
	return branding_svg_check(data, size, error_r);
}
