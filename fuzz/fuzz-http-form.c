/* Fuzz target for http_form_parse(): any input either fails cleanly or gives
 * fields whose values survive http_form_encode_value() and parsing again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "mem.h"

static void fuzz_check_roundtrip(const char *value)
{
	char *encoded = http_form_encode_value(value);
	char *text = mem_printf("v=%s", encoded);
	struct http_form_field *fields;
	size_t count;
	const char *error;
	if (http_form_parse(text, strlen(text), &fields, &count, &error) < 0 || count != 1 ||
	    strcmp(fields[0].name, "v") != 0 || strcmp(fields[0].value, value) != 0)
		abort();
	http_form_free(fields, count);
	mem_free(text);
	mem_free(encoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_form_field *fields;
	size_t count;
	const char *error;
	if (http_form_parse((const char *)data, size, &fields, &count, &error) < 0)
		return 0;
	for (size_t i = 0; i < count; i++) {
		if (strlen(fields[i].name) > size || strlen(fields[i].value) > size)
			abort();
		fuzz_check_roundtrip(fields[i].name);
		fuzz_check_roundtrip(fields[i].value);
	}
	http_form_free(fields, count);
	return 0;
}
