#include "base64.h"
#include "mem.h"

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = mem_alloc((len + 2) / 3 * 4 + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned int v = (unsigned int)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned int)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = base64_alphabet[(v >> 18) & 63];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? base64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? base64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

unsigned char *base64_decode(const char *text, size_t text_len, size_t *len_r)
{
	if (text_len % 4 != 0)
		return NULL;
	unsigned char *out = mem_alloc(text_len / 4 * 3 + 1);
	size_t o = 0;
	for (size_t i = 0; i < text_len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			char c = text[i + k];
			/* Padding only at the very end, and at most two. */
			if (c == '=' && i + 4 == text_len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (v[k] = base64_value(c)) < 0) {
				mem_free(out);
				return NULL;
			}
		}
		unsigned int bits = (unsigned int)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
		out[o++] = (unsigned char)(bits >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(bits >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)bits;
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}
