#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base64.h"
#include "mem.h"

static void check_roundtrip(const char *plain, const char *encoded)
{
	char *e = base64_encode(plain, strlen(plain));
	assert_string_equal(e, encoded);
	size_t len;
	unsigned char *d = base64_decode(e, strlen(e), &len);
	assert_non_null(d);
	assert_int_equal(len, strlen(plain));
	assert_memory_equal(d, plain, len);
	mem_free(d);
	mem_free(e);
}

static void test_base64_rfc4648_vectors(void **state)
{
	check_roundtrip("", "");
	check_roundtrip("f", "Zg==");
	check_roundtrip("fo", "Zm8=");
	check_roundtrip("foo", "Zm9v");
	check_roundtrip("foob", "Zm9vYg==");
	check_roundtrip("fooba", "Zm9vYmE=");
	check_roundtrip("foobar", "Zm9vYmFy");
}

static void test_base64_rejects(void **state)
{
	size_t len;
	assert_null(base64_decode("Zg=", 3, &len));
	assert_null(base64_decode("Z===", 4, &len));
	assert_null(base64_decode("Zg==Zg==", 8, &len));
	assert_null(base64_decode("Zm9*", 4, &len));
	assert_null(base64_decode("Zm=v", 4, &len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_rfc4648_vectors),
		cmocka_unit_test(test_base64_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
