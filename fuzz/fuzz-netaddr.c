/* Fuzz target: the listener list syntax ("HOST:PORT, [v6]:PORT, *:PORT"). */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "mem.h"
#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = mem_strndup((const char *)data, size);
	struct netaddr_listener *list;
	size_t count;
	const char *error;
	if (netaddr_parse_listeners(text, &list, &count, &error) == 0) {
		for (size_t i = 0; i < count; i++) {
			/* What we print must parse back to the same listener. */
			struct netaddr_listener again;
			if (netaddr_parse_listener(netaddr_listener_str(&list[i]), &again, &error) <
				    0 ||
			    memcmp(&again, &list[i], sizeof(again)) != 0)
				__builtin_trap();
		}
		mem_free(list);
	}
	mem_free(text);
	return 0;
}
