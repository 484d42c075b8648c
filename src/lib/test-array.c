#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

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

static int int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return x < y ? -1 : x > y;
}

static void test_array_delete(void **state)
{
	ARRAY(int) numbers = ARRAY_INIT;
	for (int i = 0; i < 10; i++)
		array_append(&numbers, i);
	array_delete(&numbers, 0, 1); /* the first */
	array_delete(&numbers, 8, 1); /* the last (9) */
	array_delete(&numbers, 2, 3); /* 3, 4, 5 from the middle */
	array_delete(&numbers, 1, 0); /* nothing */
	const int expected[] = {1, 2, 6, 7, 8};
	assert_int_equal(numbers.count, 5);
	assert_memory_equal(numbers.items, expected, sizeof(expected));
	array_delete(&numbers, 0, numbers.count);
	assert_int_equal(numbers.count, 0);
	array_free(&numbers);
}

static void test_array_delete_out_of_range_aborts(void **state)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ARRAY(int) numbers = ARRAY_INIT;
		array_append(&numbers, 1);
		array_append(&numbers, 2);
		fclose(stderr); /* the abort message is expected */
		array_delete(&numbers, 1, 2);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_array_sort(void **state)
{
	ARRAY(int) numbers = ARRAY_INIT;
	array_sort(&numbers, int_cmp); /* NULL items: nothing to do, no qsort(NULL) */
	assert_null(numbers.items);
	for (int i = 0; i < 1000; i++)
		array_append(&numbers, (i * 7919) % 1000);
	array_sort(&numbers, int_cmp);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(numbers.items[i], i);
	array_free(&numbers);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_array_append_and_grow),
		cmocka_unit_test(test_array_push_is_zeroed),
		cmocka_unit_test(test_array_reserve),
		cmocka_unit_test(test_array_delete),
		cmocka_unit_test(test_array_delete_out_of_range_aborts),
		cmocka_unit_test(test_array_sort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
