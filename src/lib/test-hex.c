#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "hex.h"

static void test_hex_roundtrip(void **state)
{
	const unsigned char in[] = {0x00, 0x7f, 0x80, 0xff, 0x1a};
	char out[11];
	hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "007f80ff1a");
	unsigned char back[5];
	assert_int_equal(hex_decode("007F80ff1A", back, sizeof(back)), 5);
	assert_memory_equal(back, in, 5);
}

static void test_hex_rejects(void **state)
{
	unsigned char buf[4];
	assert_int_equal(hex_decode("abc", buf, sizeof(buf)), -1);
	assert_int_equal(hex_decode("zz", buf, sizeof(buf)), -1);
	assert_int_equal(hex_decode("0011223344", buf, sizeof(buf)), -1);
	assert_int_equal(hex_decode("", buf, sizeof(buf)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_roundtrip),
		cmocka_unit_test(test_hex_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
