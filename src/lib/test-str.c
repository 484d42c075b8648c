#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mem.h"
#include "str.h"
#include "tstr.h"

static void test_str_append_and_printf(void **state)
{
	struct str *s = str_create(0);
	str_append(s, "hello");
	str_append_c(s, ' ');
	str_printfa(s, "%d-%s", 42, "x");
	assert_string_equal(str_c(s), "hello 42-x");
	assert_int_equal(str_len(s), 10);
	str_truncate(s, 5);
	assert_string_equal(str_c(s), "hello");
	str_destroy(&s);
	assert_null(s);
}

static void test_str_binary_and_growth(void **state)
{
	struct str *s = str_create(1);
	for (int i = 0; i < 10000; i++)
		str_append_n(s, "\0ab", 3);
	assert_int_equal(str_len(s), 30000);
	assert_memory_equal(str_c(s) + 29997, "\0ab", 3);
	char *owned = str_steal(&s);
	assert_null(s);
	mem_free(owned);
}

static void test_tstr_ring_and_truncation(void **state)
{
	const char *first = tstr_printf("first %d", 1);
	assert_string_equal(first, "first 1");
	char big[TSTR_MAX_LEN * 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const char *t = tstr_printf("%s", big);
	assert_int_equal(strlen(t), TSTR_MAX_LEN);
	assert_memory_equal(t + TSTR_MAX_LEN - 3, "...", 3);
	char *p = mem_printf("%s/%s", "a", "b");
	assert_string_equal(p, "a/b");
	mem_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_append_and_printf),
		cmocka_unit_test(test_str_binary_and_growth),
		cmocka_unit_test(test_tstr_ring_and_truncation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
