#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "auth-cache.h"
#include "crypto.h"

static void test_check_add_ttl(void **state)
{
	struct auth_cache *c = auth_cache_create(100, 60);
	assert_false(auth_cache_check(c, "alice", "pw", 1000));
	auth_cache_add(c, "alice", "pw", 1000);
	assert_true(auth_cache_check(c, "alice", "pw", 1000));
	assert_true(auth_cache_check(c, "alice", "pw", 1059));
	assert_false(auth_cache_check(c, "alice", "pW", 1000));
	assert_false(auth_cache_check(c, "alice", "pw ", 1000));
	assert_false(auth_cache_check(c, "alice", "", 1000));
	assert_false(auth_cache_check(c, "bob", "pw", 1000));
	/* Expired at ttl, and stays gone. */
	assert_false(auth_cache_check(c, "alice", "pw", 1060));
	assert_false(auth_cache_check(c, "alice", "pw", 1000));
	/* Added in the "future" (clock stepped back): not trusted. */
	auth_cache_add(c, "alice", "pw", 2000);
	assert_false(auth_cache_check(c, "alice", "pw", 1999));
	auth_cache_destroy(&c);
	assert_null(c);
}

static void test_name_password_boundary(void **state)
{
	struct auth_cache *c = auth_cache_create(100, 60);
	auth_cache_add(c, "ab", "c", 1);
	assert_false(auth_cache_check(c, "a", "bc", 1));
	assert_true(auth_cache_check(c, "ab", "c", 1));
	auth_cache_destroy(&c);
}

static void test_forget_and_replace(void **state)
{
	struct auth_cache *c = auth_cache_create(100, 60);
	auth_cache_add(c, "alice", "old", 10);
	auth_cache_add(c, "bob", "pw", 10);
	auth_cache_forget(c, "alice");
	assert_false(auth_cache_check(c, "alice", "old", 10));
	assert_true(auth_cache_check(c, "bob", "pw", 10));
	auth_cache_forget(c, "nobody");
	/* One entry per name: a new add replaces the old password. */
	auth_cache_add(c, "bob", "new", 20);
	assert_false(auth_cache_check(c, "bob", "pw", 20));
	assert_true(auth_cache_check(c, "bob", "new", 79));
	auth_cache_destroy(&c);
}

static void test_bounded(void **state)
{
	struct auth_cache *c = auth_cache_create(2, 60);
	auth_cache_add(c, "a", "1", 10);
	auth_cache_add(c, "b", "2", 11);
	auth_cache_add(c, "c", "3", 12);
	assert_false(auth_cache_check(c, "a", "1", 12));
	assert_true(auth_cache_check(c, "b", "2", 12));
	assert_true(auth_cache_check(c, "c", "3", 12));
	char name[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		auth_cache_add(c, name, "pw", 13 + i / 100);
	}
	assert_true(auth_cache_check(c, name, "pw", 13 + 4999 / 100));
	assert_false(auth_cache_check(c, "user0", "pw", 13 + 4999 / 100));
	auth_cache_destroy(&c);
	/* ttl 0 caches nothing. */
	c = auth_cache_create(10, 0);
	auth_cache_add(c, "a", "1", 10);
	assert_false(auth_cache_check(c, "a", "1", 10));
	auth_cache_destroy(&c);
}

static void test_independent_caches(void **state)
{
	/* Each cache has its own salt; nothing is shared or global. */
	struct auth_cache *c1 = auth_cache_create(10, 60), *c2 = auth_cache_create(10, 60);
	auth_cache_add(c1, "a", "1", 10);
	assert_false(auth_cache_check(c2, "a", "1", 10));
	auth_cache_destroy(&c1);
	auth_cache_destroy(&c2);
}

static int setup(void **state)
{
	return crypto_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_add_ttl),
		cmocka_unit_test(test_name_password_boundary),
		cmocka_unit_test(test_forget_and_replace),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_independent_caches),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
