#include "tstr.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char tstr_ring[TSTR_RING_SIZE][TSTR_MAX_LEN + 1];
static _Thread_local unsigned int tstr_next;

const char *tstr_vprintf(const char *fmt, va_list args)
{
	char *slot = tstr_ring[tstr_next];
	tstr_next = (tstr_next + 1) % TSTR_RING_SIZE;
	int len = vsnprintf(slot, TSTR_MAX_LEN + 1, fmt, args);
	if (len > TSTR_MAX_LEN)
		memcpy(slot + TSTR_MAX_LEN - 3, "...", 3);
	return slot;
}

const char *tstr_printf(const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	const char *s = tstr_vprintf(fmt, args);
	va_end(args);
	return s;
}

const char *tstr_dup(const char *s)
{
	return tstr_printf("%s", s);
}
