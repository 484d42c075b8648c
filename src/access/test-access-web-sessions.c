#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "access-web-sessions.h"
#include "crypto.h"
#include "mem.h"

#include <stdio.h>
#include <string.h>

static void test_add_find_remove(void **state)
{
	struct access_web_sessions *t = access_web_sessions_create(10, 60, 3600);
	struct access_web_session *s;
	char *token = access_web_sessions_add(t, "acme", "alice", 1000, &s);
	assert_int_equal(strlen(token), 64);
	assert_string_equal(s->user_name, "alice");
	assert_int_equal(strlen(s->csrf_token), 64);
	assert_string_not_equal(s->csrf_token, token);
	s = access_web_sessions_find(t, token, 1030);
	assert_non_null(s);
	assert_string_equal(s->instance_id, "acme");
	assert_true(access_web_sessions_csrf_ok(s, s->csrf_token));
	assert_false(access_web_sessions_csrf_ok(s, token));
	assert_false(access_web_sessions_csrf_ok(s, NULL));
	assert_false(access_web_sessions_csrf_ok(s, ""));
	/* a wrong token of the right length, and other shapes */
	char wrong[65];
	memcpy(wrong, token, 65);
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	assert_null(access_web_sessions_find(t, wrong, 1030));
	assert_null(access_web_sessions_find(t, "", 1030));
	assert_null(access_web_sessions_find(t, NULL, 1030));
	assert_true(access_web_sessions_remove(t, token));
	assert_false(access_web_sessions_remove(t, token));
	assert_null(access_web_sessions_find(t, token, 1031));
	mem_free(token);
	access_web_sessions_destroy(&t);
	assert_null(t);
}

static void test_expiry(void **state)
{
	struct access_web_sessions *t = access_web_sessions_create(10, 60, 200);
	struct access_web_session *s;
	char *a = access_web_sessions_add(t, "acme", "alice", 1000, &s);
	char *b = access_web_sessions_add(t, "acme", "bob", 1000, &s);
	/* used within the idle time it stays, until its maximum age */
	assert_non_null(access_web_sessions_find(t, a, 1050));
	assert_non_null(access_web_sessions_find(t, a, 1100));
	/* b was idle for 100 s: gone (and dropped on the way) */
	assert_null(access_web_sessions_find(t, b, 1100));
	assert_int_equal(access_web_sessions_count(t), 1);
	assert_non_null(access_web_sessions_find(t, a, 1150));
	assert_non_null(access_web_sessions_find(t, a, 1200));
	assert_null(access_web_sessions_find(t, a, 1201));
	/* a clock that went backwards does not resurrect or trust anything */
	char *c = access_web_sessions_add(t, "acme", "carl", 5000, &s);
	assert_null(access_web_sessions_find(t, c, 4000));
	mem_free(a);
	mem_free(b);
	mem_free(c);
	access_web_sessions_destroy(&t);
}

static void test_eviction_and_user_removal(void **state)
{
	struct access_web_sessions *t = access_web_sessions_create(3, 600, 6000);
	struct access_web_session *s;
	char *a = access_web_sessions_add(t, "acme", "alice", 1000, &s);
	char *b = access_web_sessions_add(t, "acme", "alice", 1001, &s);
	char *c = access_web_sessions_add(t, "other", "alice", 1002, &s);
	assert_non_null(access_web_sessions_find(t, a, 1003)); /* a is now the most recent */
	char *d = access_web_sessions_add(t, "acme", "bob", 1004, &s);
	assert_int_equal(access_web_sessions_count(t), 3);
	assert_null(access_web_sessions_find(t, b, 1005)); /* least recently used went */
	/* a password change ends alice's other sessions in acme only */
	char *e = access_web_sessions_add(t, "acme", "ALICE", 1006, &s);
	/* the table holds e, d, a now (c was the least recently used) */
	assert_null(access_web_sessions_find(t, c, 1006));
	assert_int_equal(access_web_sessions_remove_user(t, "acme", "alice", e), 1);
	assert_non_null(access_web_sessions_find(t, e, 1007));
	assert_null(access_web_sessions_find(t, a, 1007));
	assert_int_equal(access_web_sessions_remove_user(t, "acme", "alice", NULL), 1);
	assert_null(access_web_sessions_find(t, e, 1008));
	mem_free(a);
	mem_free(b);
	mem_free(c);
	mem_free(d);
	mem_free(e);
	access_web_sessions_destroy(&t);
}

/* Thousands of sessions: each token finds its own session; a full table
 * evicts the least recently used, and using a session keeps it. */
static void test_many_sessions_lru(void **state)
{
	enum { MAX = 3000 };
	struct access_web_sessions *t = access_web_sessions_create(MAX, 600, 6000);
	struct access_web_session *s;
	static char *tokens[MAX + 500];
	char user[32];
	for (int i = 0; i < MAX; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		tokens[i] = access_web_sessions_add(t, "acme", user, 1000, &s);
	}
	for (int i = 0; i < MAX; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		s = access_web_sessions_find(t, tokens[i], 1001);
		assert_non_null(s);
		assert_string_equal(s->user_name, user);
	}
	/* every session was used in order 0..MAX-1; use the first 10 again */
	for (int i = 0; i < 10; i++)
		assert_non_null(access_web_sessions_find(t, tokens[i], 1002));
	for (int i = MAX; i < MAX + 500; i++)
		tokens[i] = access_web_sessions_add(t, "acme", "late", 1003, &s);
	assert_int_equal(access_web_sessions_count(t), MAX);
	for (int i = 0; i < 10; i++) /* used last: kept */
		assert_non_null(access_web_sessions_find(t, tokens[i], 1004));
	for (int i = 10; i < 510; i++) /* the 500 least recently used: gone */
		assert_null(access_web_sessions_find(t, tokens[i], 1004));
	for (int i = 510; i < MAX + 500; i++)
		assert_non_null(access_web_sessions_find(t, tokens[i], 1004));
	for (int i = 0; i < MAX + 500; i++)
		mem_free(tokens[i]);
	access_web_sessions_destroy(&t);
}

int main(void)
{
	if (crypto_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find_remove),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_eviction_and_user_removal),
		cmocka_unit_test(test_many_sessions_lru),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
