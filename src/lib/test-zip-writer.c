#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mem.h"
#include "str.h"
#include "zip-writer.h"

#include <string.h>

static uint32_t get32(const unsigned char *p)
{
	return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static void test_crc32(void **state)
{
	assert_int_equal(zip_writer_crc32(0, "123456789", 9), 0xcbf43926u);
	assert_int_equal(zip_writer_crc32(0, "", 0), 0);
	/* incremental equals one pass */
	uint32_t c = zip_writer_crc32(0, "1234", 4);
	assert_int_equal(zip_writer_crc32(c, "56789", 5), 0xcbf43926u);
}

/* Walk the central directory: entry i's name, size and data as stored. */
static const unsigned char *find_entry(const unsigned char *zip, size_t len, size_t index,
				       char *name_r, uint32_t *size_r, uint32_t *crc_r)
{
	const unsigned char *eocd = zip + len - 22;
	assert_int_equal(get32(eocd), 0x06054b50);
	uint32_t cd = get32(eocd + 16);
	const unsigned char *p = zip + cd;
	for (size_t i = 0;; i++) {
		assert_int_equal(get32(p), 0x02014b50);
		uint16_t nlen = get16(p + 28);
		if (i == index) {
			memcpy(name_r, p + 46, nlen);
			name_r[nlen] = '\0';
			*size_r = get32(p + 24);
			*crc_r = get32(p + 16);
			const unsigned char *local = zip + get32(p + 42);
			assert_int_equal(get32(local), 0x04034b50);
			assert_int_equal(get16(local + 8), 0); /* stored */
			assert_int_equal(get32(local + 14), *crc_r);
			assert_int_equal(get16(local + 26), nlen);
			assert_memory_equal(local + 30, name_r, nlen);
			return local + 30 + nlen + get16(local + 28);
		}
		p += 46 + nlen + get16(p + 30) + get16(p + 32);
	}
}

static void test_zip_entries(void **state)
{
	struct str *out = str_create(0);
	str_append(out, "PREFIX"); /* offsets are relative to where the zip starts */
	struct zip_writer *zw = zip_writer_create(out);
	const char *error;
	assert_int_equal(zip_writer_add(zw, "a.eml", "hello", 5, 1700000000, &error), 0);
	assert_int_equal(zip_writer_add(zw, "a.eml", "world!", 6, 0, &error), 0);
	assert_int_equal(zip_writer_add(zw, "/../x/../../etc\\passwd", "", 0, 0, &error), 0);
	assert_int_equal(zip_writer_add(zw, "noext", "1", 1, 0, &error), 0);
	assert_int_equal(zip_writer_add(zw, "noext", "2", 1, 0, &error), 0);
	zip_writer_finish(&zw);
	assert_null(zw);
	const unsigned char *zip = (const unsigned char *)str_c(out) + 6;
	size_t len = str_len(out) - 6;
	assert_int_equal(get16(zip + len - 22 + 10), 5);
	char name[256];
	uint32_t size, crc;
	const unsigned char *data = find_entry(zip, len, 0, name, &size, &crc);
	assert_string_equal(name, "a.eml");
	assert_int_equal(size, 5);
	assert_memory_equal(data, "hello", 5);
	assert_int_equal(crc, zip_writer_crc32(0, "hello", 5));
	data = find_entry(zip, len, 1, name, &size, &crc);
	assert_string_equal(name, "a (2).eml");
	assert_memory_equal(data, "world!", 6);
	find_entry(zip, len, 2, name, &size, &crc);
	assert_string_equal(name, "__/x/__/__/etc_passwd");
	find_entry(zip, len, 4, name, &size, &crc);
	assert_string_equal(name, "noext (2)");
	str_destroy(&out);
}

static void test_zip_empty(void **state)
{
	struct str *out = str_create(0);
	struct zip_writer *zw = zip_writer_create(out);
	zip_writer_finish(&zw);
	assert_int_equal(str_len(out), 22);
	assert_int_equal(get32((const unsigned char *)str_c(out)), 0x06054b50);
	str_destroy(&out);
	zw = zip_writer_create(out = str_create(0));
	zip_writer_destroy(&zw);
	assert_null(zw);
	str_destroy(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_zip_entries),
		cmocka_unit_test(test_zip_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
