#include "imap-utf7.h"
#include "tstr.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
	const char *p = c == '\0' ? NULL : strchr(b64_chars, c);
	return p == NULL ? -1 : (int)(p - b64_chars);
}

static bool is_direct(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e && c != '&';
}

static void append_utf8(struct str *dest, uint32_t cp)
{
	char buf[4];
	size_t len;
	if (cp < 0x80) {
		buf[0] = (char)cp;
		len = 1;
	} else if (cp < 0x800) {
		buf[0] = (char)(0xc0 | cp >> 6);
		buf[1] = (char)(0x80 | (cp & 0x3f));
		len = 2;
	} else if (cp < 0x10000) {
		buf[0] = (char)(0xe0 | cp >> 12);
		buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[2] = (char)(0x80 | (cp & 0x3f));
		len = 3;
	} else {
		buf[0] = (char)(0xf0 | cp >> 18);
		buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[3] = (char)(0x80 | (cp & 0x3f));
		len = 4;
	}
	str_append_n(dest, buf, len);
}

/* Decode the base64 run at s[*pos] up to its '-'; *pos ends after the '-'. */
static const char *decode_shifted(const char *s, size_t *pos, struct str *dest)
{
	uint32_t bits = 0, high = 0;
	unsigned int nbits = 0;
	size_t i = *pos;
	bool any = false;
	for (;; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '-')
			break;
		int v = b64_value(c);
		if (v < 0)
			return c == '\0'
				       ? "unterminated &...- sequence"
				       : tstr_printf("invalid character in &...- sequence: 0x%02x",
						     c);
		bits = (bits << 6 | (uint32_t)v) & 0xffffff;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = (bits >> nbits) & 0xffff;
		any = true;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return "unpaired UTF-16 surrogate";
			append_utf8(dest, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return "unpaired UTF-16 surrogate";
		} else if (unit < 0x80 && is_direct((unsigned char)unit)) {
			return "printable ASCII must not be base64-encoded";
		} else {
			append_utf8(dest, unit);
		}
	}
	if (!any)
		return "empty &...- sequence";
	if (high != 0)
		return "unpaired UTF-16 surrogate";
	if (nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return "stray bits at the end of a &...- sequence";
	*pos = i + 1;
	return NULL;
}

int imap_utf7_decode(const char *mutf7, struct str *dest, const char **error_r)
{
	size_t orig_len = str_len(dest);
	const char *error = NULL;
	size_t i = 0;
	bool after_shift = false;
	while (mutf7[i] != '\0' && error == NULL) {
		unsigned char c = (unsigned char)mutf7[i];
		if (is_direct(c)) {
			str_append_c(dest, (char)c);
			i++;
			after_shift = false;
		} else if (c != '&') {
			error = tstr_printf("invalid character 0x%02x", c);
		} else if (mutf7[i + 1] == '-') {
			str_append_c(dest, '&');
			i += 2;
			after_shift = false;
		} else if (after_shift) {
			error = "two &...- sequences in a row";
		} else {
			i++;
			error = decode_shifted(mutf7, &i, dest);
			after_shift = true;
		}
	}
	if (error != NULL) {
		str_truncate(dest, orig_len);
		*error_r = tstr_printf("invalid modified UTF-7 mailbox name: %s", error);
		return -1;
	}
	return 0;
}

/* The next code point of UTF-8 text, or -1 when invalid. */
static int32_t next_utf8(const unsigned char *s, size_t *pos)
{
	size_t i = *pos;
	uint32_t cp, min;
	unsigned int extra;
	if (s[i] < 0x80) {
		*pos = i + 1;
		return s[i];
	} else if ((s[i] & 0xe0) == 0xc0) {
		cp = s[i] & 0x1f;
		extra = 1;
		min = 0x80;
	} else if ((s[i] & 0xf0) == 0xe0) {
		cp = s[i] & 0x0f;
		extra = 2;
		min = 0x800;
	} else if ((s[i] & 0xf8) == 0xf0) {
		cp = s[i] & 0x07;
		extra = 3;
		min = 0x10000;
	} else {
		return -1;
	}
	for (unsigned int k = 1; k <= extra; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*pos = i + 1 + extra;
	return (int32_t)cp;
}

/* Base64 of a run of UTF-16 units, written as they come. */
struct shift {
	bool active;
	uint32_t bits;
	unsigned int nbits;
};

static void shift_unit(struct str *dest, struct shift *sh, uint16_t unit)
{
	if (!sh->active) {
		str_append_c(dest, '&');
		sh->active = true;
	}
	sh->bits = (sh->bits << 16 | unit) & 0xffffff;
	sh->nbits += 16;
	while (sh->nbits >= 6) {
		sh->nbits -= 6;
		str_append_c(dest, b64_chars[(sh->bits >> sh->nbits) & 0x3f]);
	}
}

static void shift_end(struct str *dest, struct shift *sh)
{
	if (!sh->active)
		return;
	if (sh->nbits > 0)
		str_append_c(dest, b64_chars[(sh->bits << (6 - sh->nbits)) & 0x3f]);
	str_append_c(dest, '-');
	memset(sh, 0, sizeof(*sh));
}

int imap_utf7_encode(const char *utf8, struct str *dest, const char **error_r)
{
	const unsigned char *s = (const unsigned char *)utf8;
	size_t orig_len = str_len(dest), i = 0;
	struct shift sh = {0};
	while (s[i] != '\0') {
		if (is_direct(s[i]) || s[i] == '&') {
			shift_end(dest, &sh);
			if (s[i] == '&')
				str_append(dest, "&-");
			else
				str_append_c(dest, (char)s[i]);
			i++;
			continue;
		}
		size_t at = i;
		int32_t cp = next_utf8(s, &i);
		if (cp < 0) {
			str_truncate(dest, orig_len);
			*error_r = tstr_printf("invalid UTF-8 in mailbox name at byte %zu", at);
			return -1;
		}
		if (cp >= 0x10000) {
			shift_unit(dest, &sh, (uint16_t)(0xd800 + ((cp - 0x10000) >> 10)));
			shift_unit(dest, &sh, (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff)));
		} else {
			shift_unit(dest, &sh, (uint16_t)cp);
		}
	}
	shift_end(dest, &sh);
	return 0;
}
