#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "auth-throttle.h"
#include "crypto.h"

static void fail_n(struct auth_throttle *t, const char *key, time_t now, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		auth_throttle_failure(t, key, now);
}

static void test_first_failures_free(void **state)
{
	struct auth_throttle *t = auth_throttle_create(100);
	unsigned int wait = 99;
	assert_int_equal(auth_throttle_check(t, "user:alice", 1000, &wait), 0);
	assert_int_equal(wait, 0);
	fail_n(t, "user:alice", 1000, 3);
	assert_int_equal(auth_throttle_check(t, "user:alice", 1000, &wait), 0);
	/* The fourth failure costs one second. */
	auth_throttle_failure(t, "user:alice", 1000);
	assert_int_equal(auth_throttle_check(t, "user:alice", 1000, &wait), -1);
	assert_int_equal(wait, 1);
	assert_int_equal(auth_throttle_check(t, "user:alice", 1001, &wait), 0);
	/* Other keys are not affected. */
	assert_int_equal(auth_throttle_check(t, "user:bob", 1000, &wait), 0);
	auth_throttle_destroy(&t);
	assert_null(t);
}

static void test_doubling_and_cap(void **state)
{
	struct auth_throttle *t = auth_throttle_create(100);
	unsigned int wait;
	time_t now = 5000;
	fail_n(t, "ip:192.0.2.1", now, 3);
	unsigned int expected = 1;
	for (int i = 0; i < 14; i++) {
		auth_throttle_failure(t, "ip:192.0.2.1", now);
		assert_int_equal(auth_throttle_check(t, "ip:192.0.2.1", now, &wait), -1);
		assert_int_equal(wait, expected);
		/* One second before the end still waits; at the end it may try. */
		assert_int_equal(auth_throttle_check(t, "ip:192.0.2.1", now + expected - 1,
						     &wait), -1);
		assert_int_equal(wait, 1);
		now += expected;
		assert_int_equal(auth_throttle_check(t, "ip:192.0.2.1", now, &wait), 0);
		expected = expected * 2 > 300 ? 300 : expected * 2;
	}
	auth_throttle_destroy(&t);
}

static void test_success_resets(void **state)
{
	struct auth_throttle *t = auth_throttle_create(100);
	unsigned int wait;
	fail_n(t, "k", 100, 6);
	assert_int_equal(auth_throttle_check(t, "k", 100, &wait), -1);
	auth_throttle_success(t, "k");
	assert_int_equal(auth_throttle_check(t, "k", 100, &wait), 0);
	fail_n(t, "k", 100, 3);
	assert_int_equal(auth_throttle_check(t, "k", 100, &wait), 0);
	auth_throttle_success(t, "never-failed");
	auth_throttle_destroy(&t);
}

static void test_expiry(void **state)
{
	struct auth_throttle *t = auth_throttle_create(100);
	unsigned int wait;
	fail_n(t, "k", 100, 13);
	assert_int_equal(auth_throttle_check(t, "k", 100, &wait), -1);
	assert_int_equal(wait, 300);
	/* Just before expiry the count is still there: one more failure waits
	 * the maximum. */
	auth_throttle_failure(t, "k", 100 + 15 * 60 - 1);
	assert_int_equal(auth_throttle_check(t, "k", 100 + 15 * 60 - 1, &wait), -1);
	assert_int_equal(wait, 300);
	/* 15 minutes after the last failure, it is forgotten. */
	time_t later = 100 + 15 * 60 - 1 + 15 * 60;
	assert_int_equal(auth_throttle_check(t, "k", later, &wait), 0);
	fail_n(t, "k", later, 3);
	assert_int_equal(auth_throttle_check(t, "k", later, &wait), 0);
	/* A failure after expiry (without a check in between) starts over. */
	fail_n(t, "j", 0, 10);
	auth_throttle_failure(t, "j", 15 * 60);
	assert_int_equal(auth_throttle_check(t, "j", 15 * 60, &wait), 0);
	auth_throttle_destroy(&t);
}

static void test_clock_backwards(void **state)
{
	struct auth_throttle *t = auth_throttle_create(10);
	unsigned int wait;
	fail_n(t, "k", 10000, 5);
	assert_int_equal(auth_throttle_check(t, "k", 9000, &wait), -1);
	assert_int_equal(wait, 2);
	auth_throttle_destroy(&t);
}

static void test_bounded_memory(void **state)
{
	struct auth_throttle *t = auth_throttle_create(3);
	unsigned int wait;
	fail_n(t, "a", 100, 5);
	fail_n(t, "b", 101, 5);
	fail_n(t, "c", 102, 5);
	/* "a" is refreshed, so "b" is now the oldest and gets evicted by "d". */
	auth_throttle_failure(t, "a", 103);
	fail_n(t, "d", 103, 5);
	assert_int_equal(auth_throttle_check(t, "a", 103, &wait), -1);
	assert_int_equal(auth_throttle_check(t, "b", 103, &wait), 0);
	assert_int_equal(auth_throttle_check(t, "c", 103, &wait), -1);
	assert_int_equal(auth_throttle_check(t, "d", 103, &wait), -1);

	/* Many distinct keys through a small table. */
	char key[32];
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "ip:10.0.%d.%d", i / 256, i % 256);
		fail_n(t, key, 200, 4);
	}
	assert_int_equal(auth_throttle_check(t, key, 200, &wait), -1);
	assert_int_equal(auth_throttle_check(t, "ip:10.0.0.0", 200, &wait), 0);
	auth_throttle_destroy(&t);
	/* max_entries 0 is treated as 1. */
	t = auth_throttle_create(0);
	fail_n(t, "x", 1, 4);
	assert_int_equal(auth_throttle_check(t, "x", 1, &wait), -1);
	auth_throttle_destroy(&t);
}

static int setup(void **state)
{
	return crypto_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_failures_free),
		cmocka_unit_test(test_doubling_and_cap),
		cmocka_unit_test(test_success_resets),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_clock_backwards),
		cmocka_unit_test(test_bounded_memory),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
