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
		assert_int_equal(auth_throttle_check(t, "ip:192.0.2.1", now + expected - 1, &wait),
				 -1);
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

/* Begin `n` attempts that all fail; how many were let through. */
static unsigned int login_fail_n(struct auth_throttle *t, const char *name, const char *address,
				 time_t now, unsigned int n)
{
	unsigned int through = 0, wait;
	for (unsigned int i = 0; i < n; i++) {
		if (auth_throttle_login_begin(t, name, address, now, &wait) == 0) {
			through++;
			auth_throttle_login_end(t, name, address, AUTH_THROTTLE_FAILED);
		}
	}
	return through;
}

static void test_login_counts_before_checking(void **state)
{
	struct auth_throttle *t = auth_throttle_create(100);
	unsigned int wait, through = 0;
	/* 45 concurrent guesses: all begin before any ends. Only the free ones
	 * and one more are let through to be checked. */
	for (int i = 0; i < 45; i++)
		through += auth_throttle_login_begin(t, "alice", "192.0.2.1", 1000, &wait) == 0;
	assert_int_equal(through, AUTH_THROTTLE_FREE_FAILURES + 1);
	assert_int_equal(wait, 0); /* while those are being checked */
	for (unsigned int i = 0; i < through; i++)
		auth_throttle_login_end(t, "alice", "192.0.2.1", AUTH_THROTTLE_FAILED);
	/* the same name in other case is the same pair */
	assert_int_equal(auth_throttle_login_begin(t, "ALICE", "192.0.2.1", 1000, &wait), -1);
	assert_int_equal(wait, 1);
	auth_throttle_destroy(&t);
}

static void test_login_attacker_cannot_lock_out(void **state)
{
	struct auth_throttle *t = auth_throttle_create(100);
	unsigned int wait;
	/* An attacker guesses admin's password from one address... */
	unsigned int through = login_fail_n(t, "admin", "192.0.2.66", 1000, 50);
	assert_int_equal(through, AUTH_THROTTLE_FREE_FAILURES + 1);
	assert_int_equal(auth_throttle_login_begin(t, "admin", "192.0.2.66", 1000, &wait), -1);
	/* ...and the real admin, elsewhere, is not affected. */
	assert_int_equal(auth_throttle_login_begin(t, "admin", "198.51.100.7", 1000, &wait), 0);
	auth_throttle_login_end(t, "admin", "198.51.100.7", AUTH_THROTTLE_SUCCEEDED);
	auth_throttle_destroy(&t);
}

static void test_login_address_across_names(void **state)
{
	struct auth_throttle *t = auth_throttle_create(1000);
	unsigned int wait, through = 0;
	char name[32];
	/* one guess per name, many names: the address runs out */
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		through += login_fail_n(t, name, "192.0.2.9", 1000, 1);
	}
	assert_int_equal(through, AUTH_THROTTLE_ADDRESS_FREE_FAILURES + 1);
	assert_int_equal(auth_throttle_login_begin(t, "newname", "192.0.2.9", 1000, &wait), -1);
	assert_true(wait >= 1);
	/* other addresses, same names: free */
	assert_int_equal(auth_throttle_login_begin(t, "user1", "192.0.2.10", 1000, &wait), 0);
	auth_throttle_login_end(t, "user1", "192.0.2.10", AUTH_THROTTLE_FAILED);
	/* IPv6: one /64 is one address; the next /64 is another */
	through = 0;
	char address[64];
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "v6user%d", i);
		snprintf(address, sizeof(address), "2001:db8:1:2::%x", i + 1);
		through += login_fail_n(t, name, address, 1000, 1);
	}
	assert_int_equal(through, AUTH_THROTTLE_ADDRESS_FREE_FAILURES + 1);
	assert_int_equal(auth_throttle_login_begin(t, "x", "2001:db8:1:3::1", 1000, &wait), 0);
	assert_int_equal(auth_throttle_login_begin(t, "x", "[2001:db8:1:2::99]", 1000, &wait), -1);
	/* IPv4-mapped IPv6 is the IPv4 address */
	assert_int_equal(auth_throttle_login_begin(t, "y", "::ffff:192.0.2.9", 1000, &wait), -1);
	auth_throttle_destroy(&t);
}

static void test_login_success_and_not_checked(void **state)
{
	struct auth_throttle *t = auth_throttle_create(100);
	unsigned int wait;
	/* A busy server's refusals are not failures: the user keeps trying. */
	for (int i = 0; i < 30; i++) {
		assert_int_equal(auth_throttle_login_begin(t, "bob", "192.0.2.2", 1000, &wait), 0);
		auth_throttle_login_end(t, "bob", "192.0.2.2", AUTH_THROTTLE_NOT_CHECKED);
	}
	/* Three typos, then the right password: the pair is forgotten... */
	assert_int_equal(login_fail_n(t, "bob", "192.0.2.2", 1000, 3), 3);
	assert_int_equal(auth_throttle_login_begin(t, "bob", "192.0.2.2", 1000, &wait), 0);
	auth_throttle_login_end(t, "bob", "192.0.2.2", AUTH_THROTTLE_SUCCEEDED);
	assert_int_equal(login_fail_n(t, "bob", "192.0.2.2", 1000, 4), 4);
	/* ...but a success does not wipe the address's other failures: an
	 * attacker with one account cannot reset its address by logging in. */
	char name[16];
	unsigned int through = 0;
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		through += login_fail_n(t, name, "192.0.2.3", 2000, 1);
		if (auth_throttle_login_begin(t, "mine", "192.0.2.3", 2000, &wait) == 0)
			auth_throttle_login_end(t, "mine", "192.0.2.3", AUTH_THROTTLE_SUCCEEDED);
	}
	assert_int_equal(through, AUTH_THROTTLE_ADDRESS_FREE_FAILURES + 1);
	auth_throttle_destroy(&t);
}

static void test_login_in_flight_is_not_failure(void **state)
{
	struct auth_throttle *t = auth_throttle_create(100);
	unsigned int wait;
	/* A mail client opens five connections and logs in on all at once. */
	for (int i = 0; i < AUTH_THROTTLE_FREE_FAILURES + 1; i++)
		assert_int_equal(auth_throttle_login_begin(t, "carol", "192.0.2.5", 1000, &wait),
				 0);
	/* the fifth waits for the others' outcome: "a moment", not a failure */
	assert_int_equal(auth_throttle_login_begin(t, "carol", "192.0.2.5", 1000, &wait), -1);
	assert_int_equal(wait, 0);
	for (int i = 0; i < AUTH_THROTTLE_FREE_FAILURES + 1; i++)
		auth_throttle_login_end(t, "carol", "192.0.2.5", AUTH_THROTTLE_SUCCEEDED);
	assert_int_equal(auth_throttle_login_begin(t, "carol", "192.0.2.5", 1000, &wait), 0);
	auth_throttle_login_end(t, "carol", "192.0.2.5", AUTH_THROTTLE_SUCCEEDED);
	/* Guesses that failed are failures: then the wait is real. */
	for (int i = 0; i < AUTH_THROTTLE_FREE_FAILURES + 1; i++)
		assert_int_equal(auth_throttle_login_begin(t, "carol", "192.0.2.5", 1000, &wait),
				 0);
	for (int i = 0; i < AUTH_THROTTLE_FREE_FAILURES + 1; i++)
		auth_throttle_login_end(t, "carol", "192.0.2.5", AUTH_THROTTLE_FAILED);
	assert_int_equal(auth_throttle_login_begin(t, "carol", "192.0.2.5", 1000, &wait), -1);
	assert_int_equal(wait, 1);
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
		cmocka_unit_test(test_login_counts_before_checking),
		cmocka_unit_test(test_login_attacker_cannot_lock_out),
		cmocka_unit_test(test_login_address_across_names),
		cmocka_unit_test(test_login_success_and_not_checked),
		cmocka_unit_test(test_login_in_flight_is_not_failure),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
