#ifndef COFFER_HEX_H
#define COFFER_HEX_H
/* hex: lowercase hexadecimal encoding.
 *
 * Contract: hex_encode() writes 2*len characters plus a NUL into out (which
 * must hold that many). hex_decode() returns the number of bytes decoded, or
 * -1 if the input has an odd length, a non-hex character, or does not fit. */
#include <stddef.h>
#include <sys/types.h>

/* The value of one hex digit (either case), or -1. */
int hex_digit_value(char c);
void hex_encode(const unsigned char *data, size_t len, char *out);
ssize_t hex_decode(const char *hex, unsigned char *out, size_t out_size);

#endif
