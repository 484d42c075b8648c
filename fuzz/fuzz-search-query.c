/* Fuzz target: the archive query parser and its SQL compiler must accept or
 * reject any input without crashing, leaking or reading out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mem.h"
#include "search-query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t fuzz_expand(const char *pattern, size_t max, char ***terms_r, void *context)
{
	char **terms = mem_alloc(sizeof(char *));
	terms[0] = mem_strdup(pattern);
	*terms_r = terms;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = mem_strndup((const char *)data, size);
	struct search_query *q;
	const char *error;
	if (search_query_parse(text, &q, &error) == 0) {
		char *d = search_query_describe(q);
		mem_free(d);
		struct search_sql sql;
		if (search_query_compile(q, fuzz_expand, NULL, &sql, &error) == 0)
			search_sql_free(&sql);
		search_query_destroy(&q);
	}
	mem_free(text);
	return 0;
}
