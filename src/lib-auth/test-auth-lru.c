#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "auth-lru.h"
#include "crypto.h"

#define MANY 5000

static void key_of(unsigned int i, char key[32])
{
	snprintf(key, 32, "user%u@example.test", i);
}

/* A full table of thousands of keys: every lookup hits its own value, and
 * each new key evicts exactly the oldest one, in insertion order. */
static void test_many_keys_evict_oldest(void **state)
{
	struct auth_lru *lru = auth_lru_create(MANY, sizeof(unsigned int));
	char key[32];
	bool created;
	for (unsigned int i = 0; i < MANY; i++) {
		key_of(i, key);
		unsigned int *v = auth_lru_refresh(lru, key, &created);
		assert_true(created);
		assert_int_equal(*v, 0); /* zeroed when created */
		*v = i + 1;
	}
	assert_int_equal(auth_lru_count(lru), MANY);
	for (unsigned int i = 0; i < MANY; i++) {
		key_of(i, key);
		unsigned int *v = auth_lru_lookup(lru, key);
		assert_non_null(v);
		assert_int_equal(*v, i + 1);
	}
	/* lookups do not change the order: user0 is still the oldest */
	const char *oldest;
	assert_non_null(auth_lru_oldest(lru, &oldest));
	assert_string_equal(oldest, "user0@example.test");
	for (unsigned int i = MANY; i < MANY + 1000; i++) {
		key_of(i, key);
		assert_non_null(auth_lru_refresh(lru, key, &created));
		assert_true(created);
		assert_int_equal(auth_lru_count(lru), MANY);
		key_of(i - MANY, key);
		assert_null(auth_lru_lookup(lru, key)); /* the oldest went */
		key_of(i - MANY + 1, key);
		assert_non_null(auth_lru_lookup(lru, key)); /* the next one stays */
	}
	assert_null(auth_lru_lookup(lru, "absent@example.test"));
	auth_lru_destroy(&lru);
	assert_null(lru);
}

/* Refreshing a key makes it the newest: the next eviction takes the one
 * that was second oldest. Removing a key frees its place. */
static void test_refresh_and_remove_order(void **state)
{
	struct auth_lru *lru = auth_lru_create(3, sizeof(int));
	bool created;
	*(int *)auth_lru_refresh(lru, "a", &created) = 1;
	*(int *)auth_lru_refresh(lru, "b", &created) = 2;
	*(int *)auth_lru_refresh(lru, "c", &created) = 3;
	int *a = auth_lru_refresh(lru, "a", &created);
	assert_false(created);
	assert_int_equal(*a, 1); /* kept its value */
	auth_lru_refresh(lru, "d", &created);
	assert_null(auth_lru_lookup(lru, "b"));
	assert_non_null(auth_lru_lookup(lru, "a"));
	const char *oldest;
	assert_int_equal(*(int *)auth_lru_oldest(lru, &oldest), 3);
	assert_string_equal(oldest, "c");

	auth_lru_remove(lru, "c");
	auth_lru_remove(lru, "c"); /* absent: nothing happens */
	assert_int_equal(auth_lru_count(lru), 2);
	auth_lru_refresh(lru, "e", &created); /* room again: nothing evicted */
	assert_non_null(auth_lru_lookup(lru, "a"));
	assert_non_null(auth_lru_lookup(lru, "d"));
	assert_non_null(auth_lru_lookup(lru, "e"));
	/* a removed key comes back as new, zeroed */
	auth_lru_remove(lru, "a");
	a = auth_lru_refresh(lru, "a", &created);
	assert_true(created);
	assert_int_equal(*a, 0);
	auth_lru_destroy(&lru);
}

/* Churn far beyond the bound: memory stays at max_entries and the table
 * still finds what it holds (removed entries must not clog lookups). */
static void test_churn_stays_bounded(void **state)
{
	struct auth_lru *lru = auth_lru_create(100, sizeof(int));
	char key[32];
	bool created;
	for (unsigned int i = 0; i < 200000; i++) {
		key_of(i, key);
		*(int *)auth_lru_refresh(lru, key, &created) = (int)i;
		if (i % 3 == 0)
			auth_lru_remove(lru, key);
	}
	assert_true(auth_lru_count(lru) <= 100);
	key_of(199999, key);
	assert_int_equal(*(int *)auth_lru_lookup(lru, key), 199999);
	key_of(199997, key);
	assert_int_equal(*(int *)auth_lru_lookup(lru, key), 199997);
	key_of(199998, key); /* a multiple of 3: removed right away */
	assert_null(auth_lru_lookup(lru, key));
	key_of(199995, key);
	assert_null(auth_lru_lookup(lru, key));
	auth_lru_destroy(&lru);
}

int main(void)
{
	if (crypto_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_keys_evict_oldest),
		cmocka_unit_test(test_refresh_and_remove_order),
		cmocka_unit_test(test_churn_stays_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
