#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "hash.h"

static void test_hash_set_get_remove(void **state)
{
	struct hash *h = hash_create();
	int one = 1, two = 2;
	assert_null(hash_set(h, "alice", &one));
	assert_ptr_equal(hash_get(h, "alice"), &one);
	assert_null(hash_get(h, "bob"));
	assert_ptr_equal(hash_set(h, "alice", &two), &one);
	assert_ptr_equal(hash_get(h, "alice"), &two);
	assert_int_equal(hash_count(h), 1);
	assert_ptr_equal(hash_remove(h, "alice"), &two);
	assert_null(hash_remove(h, "alice"));
	assert_null(hash_get(h, "alice"));
	assert_int_equal(hash_count(h), 0);
	hash_destroy(&h);
	assert_null(h);
}

static void test_hash_many_keys_and_churn(void **state)
{
	struct hash *h = hash_create();
	char key[32];
	static int values[50000];
	for (int i = 0; i < 50000; i++) {
		snprintf(key, sizeof(key), "user%d@example.org", i);
		assert_null(hash_set(h, key, &values[i]));
	}
	assert_int_equal(hash_count(h), 50000);
	/* remove and re-add many times: tombstones must not fill the table */
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 50000; i += 2) {
			snprintf(key, sizeof(key), "user%d@example.org", i);
			assert_ptr_equal(hash_remove(h, key), &values[i]);
		}
		for (int i = 0; i < 50000; i += 2) {
			snprintf(key, sizeof(key), "user%d@example.org", i);
			assert_null(hash_set(h, key, &values[i]));
		}
	}
	for (int i = 0; i < 50000; i++) {
		snprintf(key, sizeof(key), "user%d@example.org", i);
		assert_ptr_equal(hash_get(h, key), &values[i]);
	}
	hash_destroy(&h);
}

static void test_hash_iterate_and_remove(void **state)
{
	struct hash *h = hash_create();
	static int values[300];
	char key[16];
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		values[i] = i;
		hash_set(h, key, &values[i]);
	}
	struct hash_iter iter;
	const char *k;
	void *v;
	int seen = 0, sum = 0;
	hash_iter_init(&iter, h);
	while (hash_iter_next(&iter, &k, &v) > 0) {
		int n = *(int *)v;
		char expect[16];
		snprintf(expect, sizeof(expect), "k%d", n);
		assert_string_equal(k, expect);
		seen++;
		sum += n;
		if (n % 3 == 0)
			hash_iter_remove(&iter);
	}
	assert_int_equal(seen, 300);
	assert_int_equal(sum, 299 * 300 / 2);
	assert_int_equal(hash_count(h), 200);
	assert_null(hash_get(h, "k3"));
	assert_non_null(hash_get(h, "k4"));
	hash_destroy(&h);
}

static void test_siphash_reference_vector(void **state)
{
	/* SipHash-2-4 test vector of the reference paper: key 00..0f,
	 * message 00..0e (15 bytes) */
	unsigned char key[16], msg[15];
	for (int i = 0; i < 16; i++)
		key[i] = (unsigned char)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (unsigned char)i;
	assert_true(hash_siphash24(msg, sizeof(msg), key) == 0xa129ca6149be45e5ULL);
	assert_true(hash_siphash24("", 0, key) == 0x726fdb47dd0e0e31ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_set_get_remove),
		cmocka_unit_test(test_hash_many_keys_and_churn),
		cmocka_unit_test(test_hash_iterate_and_remove),
		cmocka_unit_test(test_siphash_reference_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
