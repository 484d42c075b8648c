#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "record.h"
#include "store.h"
#include "test-tmpdir.h"

static unsigned char key[CRYPTO_KEY_LEN];
static char *tmpdir;

static unsigned char *make_record(int i, size_t *len_r)
{
	struct record_meta meta = {.raw_size = (uint64_t)i, .user = "u", .folder = "f"};
	return record_seal_ref(key, &meta, len_r);
}

static void test_append_read_scan(void **state)
{
	const char *error;
	char *dir = mem_printf("%s/s1", tmpdir);
	struct store *store;
	/* small segments so that the store rolls over */
	assert_int_equal(store_open(dir, 300, &store, &error), 0);
	struct store_loc locs[10];
	for (int i = 0; i < 10; i++) {
		size_t len;
		unsigned char *rec = make_record(i, &len);
		assert_int_equal(store_append(store, rec, len, &locs[i], &error), 0);
		mem_free(rec);
	}
	assert_int_equal(store_sync(store, &error), 0);
	assert_true(locs[9].segment > 1);
	unsigned char *rec;
	assert_int_equal(store_read(store, &locs[4], &rec, &error), 0);
	enum record_type type;
	unsigned char *plain;
	size_t plain_len;
	assert_int_equal(record_open(key, rec, locs[4].length, &type, &plain, &plain_len, &error),
			 0);
	struct record_meta meta;
	char *u, *f;
	assert_int_equal(record_decode_meta(type, plain, plain_len, &meta, &u, &f, &error), 0);
	assert_int_equal(meta.raw_size, 4);
	mem_free(u);
	mem_free(f);
	mem_free(plain);
	mem_free(rec);
	store_destroy(&store);

	/* Reopen, corrupt record 3's header and tear the tail of the last. */
	char *path = mem_printf("%s/seg-%06u", dir, locs[3].segment);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char b = 'X';
	assert_int_equal(pwrite(fd, &b, 1, (off_t)locs[3].offset), 1);
	close(fd);
	mem_free(path);
	path = mem_printf("%s/seg-%06u", dir, locs[9].segment);
	assert_int_equal(truncate(path, (off_t)(locs[9].offset + 20)), 0);
	mem_free(path);

	assert_int_equal(store_open(dir, 300, &store, &error), 0);
	struct store_scan *scan = store_scan_create(store);
	int records = 0, damaged = 0, torn = 0;
	enum store_scan_result result;
	struct store_loc loc;
	for (;;) {
		assert_int_equal(store_scan_next(scan, &result, &loc, &rec, &error), 0);
		if (result == STORE_SCAN_END)
			break;
		if (result == STORE_SCAN_RECORD) {
			records++;
			mem_free(rec);
		} else if (result == STORE_SCAN_DAMAGED) {
			damaged++;
			assert_int_equal(loc.offset, locs[3].offset);
			assert_int_equal(loc.length, locs[3].length);
		} else {
			torn++;
		}
	}
	store_scan_destroy(&scan);
	assert_int_equal(records, 8);
	assert_int_equal(damaged, 1);
	assert_int_equal(torn, 1);

	/* Cutting back to a committed tail removes the torn record. */
	assert_int_equal(
		store_truncate_to(store, locs[8].segment, locs[8].offset + locs[8].length, &error),
		0);
	uint32_t seg;
	uint64_t tail;
	store_tail(store, &seg, &tail);
	assert_int_equal(seg, locs[8].segment);
	assert_int_equal(tail, locs[8].offset + locs[8].length);
	size_t len;
	rec = make_record(99, &len);
	struct store_loc nloc;
	assert_int_equal(store_append(store, rec, len, &nloc, &error), 0);
	mem_free(rec);
	assert_int_equal(store_sync(store, &error), 0);
	store_destroy(&store);
	mem_free(dir);
}

static int setup(void **state)
{
	tmpdir = test_tmpdir_create("store");
	if (crypto_init() < 0)
		return -1;
	crypto_key_generate(key);
	return 0;
}

static int teardown(void **state)
{
	int ret = test_tmpdir_remove(&tmpdir);
	return ret == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_read_scan),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
