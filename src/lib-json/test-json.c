#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "json.h"
#include "mem.h"

static void test_json_build_and_serialize(void **state)
{
	struct json *o = json_new_object();
	json_set_string(o, "name", "ih1");
	json_set_int(o, "port", 8472);
	json_set_bool(o, "on", true);
	struct json *a = json_new_array();
	json_append(a, json_new_string("x"));
	json_append(a, json_new_null());
	json_set(o, "list", a);
	char *s = json_serialize(o, false);
	assert_string_equal(s,
			    "{\"name\":\"ih1\",\"port\":8472,\"on\":true,\"list\":[\"x\",null]}");
	mem_free(s);

	long long port;
	assert_int_equal(json_get_int(o, "port", &port), 1);
	assert_int_equal(port, 8472);
	assert_int_equal(json_get_int(o, "name", &port), -1);
	assert_int_equal(json_get_int(o, "missing", &port), 0);
	assert_null(json_get_string(o, "port"));
	assert_string_equal(json_get_string(o, "name"), "ih1");
	assert_true(json_get_bool(o, "on", false));
	assert_int_equal(json_count(json_get(o, "list")), 2);
	assert_int_equal(json_kind(json_at(json_get(o, "list"), 1)), JSON_KIND_NULL);

	struct json *c = json_clone(o);
	assert_true(json_equals(o, c));
	json_set_int(c, "port", 1);
	assert_false(json_equals(o, c));
	assert_int_equal(json_remove(c, "port"), 0);
	assert_int_equal(json_remove(c, "port"), -1);
	int n = 0;
	for (void *it = json_iter(c); it != NULL; it = json_iter_next(c, it))
		n++;
	assert_int_equal(n, 3);
	json_unref(&c);
	json_unref(&o);
	assert_null(o);
}

static void test_json_parse_errors(void **state)
{
	struct json *j;
	const char *error;
	assert_int_equal(json_parse("{\"a\":1", 6, &j, &error), -1);
	assert_non_null(strstr(error, "line 1"));
	assert_int_equal(json_parse("\"\xff\"", 3, &j, &error), -1);
	assert_int_equal(json_parse("[1,2]xx", 7, &j, &error), -1);
	assert_int_equal(json_parse("42", 2, &j, &error), 0);
	assert_int_equal(json_kind(j), JSON_KIND_INT);
	json_unref(&j);
}

/* A NUL would cut a C string after it was checked; a key given twice could be
 * read differently by two readers: both are refused, nested or not. */
static void test_json_parse_refuses_nul_and_duplicates(void **state)
{
	static const char *const bad[] = {
		"{\"instanceID\":\"demo\\u0000../x\"}",
		"[\"a\\u0000\"]",
		"{\"a\\u0000b\":1}",
		"{\"a\":1,\"a\":2}",
		"{\"x\":{\"path\":\"a\",\"path\":\"b\"}}",
	};
	struct json *j;
	const char *error;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = NULL;
		assert_int_equal(json_parse(bad[i], strlen(bad[i]), &j, &error), -1);
		assert_null(j);
	}
	const char *good = "{\"a\":\"\\u0001\",\"b\":{\"a\":1}}";
	assert_int_equal(json_parse(good, strlen(good), &j, &error), 0);
	json_unref(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_build_and_serialize),
		cmocka_unit_test(test_json_parse_errors),
		cmocka_unit_test(test_json_parse_refuses_nul_and_duplicates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
