#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "array.h"

struct pair {
	int a;
	long b;
};

static void test_array_append_and_grow(void **state)
{
	ARRAY(int) numbers = ARRAY_INIT;
	for (int i = 0; i < 100000; i++)
		array_append(&numbers, i * 3);
	assert_int_equal(numbers.count, 100000);
	assert_true(numbers.capacity >= numbers.count);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(numbers.items[i], i * 3);
	array_clear(&numbers);
	assert_int_equal(numbers.count, 0);
	array_append(&numbers, 7);
	assert_int_equal(numbers.items[0], 7);
	array_free(&numbers);
	assert_null(numbers.items);
	assert_int_equal(numbers.capacity, 0);
}

static void test_array_push_is_zeroed(void **state)
{
	ARRAY(struct pair) pairs = ARRAY_INIT;
	for (int i = 0; i < 50; i++) {
		struct pair *p = array_push(&pairs);
		assert_int_equal(p->a, 0);
		assert_int_equal(p->b, 0);
		p->a = i;
		p->b = -i;
	}
	assert_int_equal(pairs.items[49].a, 49);
	/* room reused after a clear is zeroed too */
	array_clear(&pairs);
	struct pair *again = array_push(&pairs);
	assert_int_equal(again->a, 0);
	assert_int_equal(again->b, 0);
	array_free(&pairs);
}

static void test_array_reserve(void **state)
{
	ARRAY(char) bytes = ARRAY_INIT;
	array_reserve(&bytes, 1000);
	assert_true(bytes.capacity >= 1000);
	assert_int_equal(bytes.count, 0);
	char *before = bytes.items;
	for (int i = 0; i < 1000; i++)
		array_append(&bytes, 'x');
	assert_ptr_equal(before, bytes.items); /* no regrowth within the reserve */
	array_free(&bytes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_array_append_and_grow),
		cmocka_unit_test(test_array_push_is_zeroed),
		cmocka_unit_test(test_array_reserve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
