#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "compress.h"
#include "mem.h"
#include "record.h"

static unsigned char key[CRYPTO_KEY_LEN];

static const struct compress_dict *lookup_one(uint32_t id, void *context)
{
	const struct compress_dict *dict = context;
	return compress_dict_id(dict) == id ? dict : NULL;
}

static void roundtrip_message(const struct compress_dict *dict)
{
	const char *text = "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
	unsigned char part_hash[RECORD_HASH_LEN];
	memset(part_hash, 0xab, sizeof(part_hash));
	struct record_chunk chunks[3] = {
		{.is_part = false, .len = 20, .data = (const unsigned char *)text},
		{.is_part = true, .len = 100000},
		{.is_part = false,
		 .len = strlen(text) - 20,
		 .data = (const unsigned char *)text + 20},
	};
	memcpy(chunks[1].hash, part_hash, RECORD_HASH_LEN);
	struct record_meta meta = {.raw_size = strlen(text) + 100000,
				   .internal_date = 1234567890,
				   .archived_at = 42,
				   .user = "alice",
				   .folder = "INBOX/Sub"};
	memset(meta.hash, 7, RECORD_HASH_LEN);
	size_t len;
	unsigned char *rec = record_seal_message(key, &meta, chunks, 3, dict, &len);

	enum record_type type;
	unsigned char *plain;
	size_t plain_len;
	const char *error;
	assert_int_equal(record_open(key, rec, len, &type, &plain, &plain_len, &error), 0);
	assert_int_equal(type, RECORD_TYPE_MESSAGE);
	struct record_message msg;
	assert_int_equal(
		record_decode_message(plain, plain_len, lookup_one, (void *)dict, &msg, &error), 0);
	assert_int_equal(msg.chunk_count, 3);
	assert_true(msg.chunks[1].is_part);
	assert_memory_equal(msg.chunks[1].hash, part_hash, RECORD_HASH_LEN);
	assert_memory_equal(msg.chunks[2].data, text + 20, chunks[2].len);
	assert_string_equal(msg.meta.user, "alice");
	assert_string_equal(msg.meta.folder, "INBOX/Sub");
	assert_int_equal(msg.meta.internal_date, 1234567890);
	assert_int_equal(msg.dict_id, compress_dict_id(dict));
	record_message_free(&msg);

	/* Metadata alone. */
	struct record_meta m2;
	char *user, *folder;
	assert_int_equal(record_decode_meta(type, plain, plain_len, &m2, &user, &folder, &error),
			 0);
	assert_string_equal(user, "alice");
	mem_free(user);
	mem_free(folder);
	mem_free(plain);

	/* Every single flipped byte is detected. */
	for (size_t i = 0; i < len; i += 7) {
		rec[i] ^= 0x10;
		assert_int_equal(record_open(key, rec, len, &type, &plain, &plain_len, &error), -1);
		rec[i] ^= 0x10;
	}
	mem_free(rec);
}

static void test_message_roundtrip(void **state)
{
	roundtrip_message(NULL);
}

static void test_dictionary(void **state)
{
	/* Train on many similar samples; records using the dictionary decode
	 * only when it is available. */
	size_t n = 400, sizes[400];
	char *all = mem_alloc(n * 200);
	size_t pos = 0;
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(all + pos, 200,
				 "Received: from mail%zu.example.org by mx.example.com\n"
				 "Subject: message number %zu about things %zu\n\nHello %zu\n",
				 i % 17, i, i * 7, i * 13);
		sizes[i] = (size_t)w;
		pos += (size_t)w;
	}
	void *dict_data;
	size_t dict_len;
	const char *error;
	assert_int_equal(
		compress_train(all, sizes, (unsigned int)n, 4096, &dict_data, &dict_len, &error),
		0);
	struct compress_dict *dict = compress_dict_create(3, dict_data, dict_len);
	roundtrip_message(dict);

	size_t len;
	unsigned char *rec = record_seal_dict(key, 3, dict_data, dict_len, &len);
	enum record_type type;
	unsigned char *plain;
	size_t plain_len;
	assert_int_equal(record_open(key, rec, len, &type, &plain, &plain_len, &error), 0);
	struct record_dict rd;
	assert_int_equal(record_decode_dict(plain, plain_len, &rd, &error), 0);
	assert_int_equal(rd.id, 3);
	assert_memory_equal(rd.data, dict_data, dict_len);
	record_dict_free(&rd);
	mem_free(plain);
	mem_free(rec);

	/* A part compressed with the dictionary fails without it. */
	unsigned char h[RECORD_HASH_LEN] = {1};
	rec = record_seal_part(key, h, all, pos, dict, &len);
	assert_int_equal(record_open(key, rec, len, &type, &plain, &plain_len, &error), 0);
	struct record_part part;
	assert_int_equal(record_decode_part(plain, plain_len, lookup_one, NULL, &part, &error), -1);
	assert_int_equal(record_decode_part(plain, plain_len, lookup_one, dict, &part, &error), 0);
	assert_int_equal(part.len, pos);
	assert_memory_equal(part.data, all, pos);
	record_part_free(&part);
	mem_free(plain);
	mem_free(rec);

	compress_dict_destroy(&dict);
	mem_free(dict_data);
	mem_free(all);
}

static void test_wrong_key_and_garbage(void **state)
{
	struct record_meta meta = {.raw_size = 1, .user = "u", .folder = "f"};
	size_t len;
	unsigned char *rec = record_seal_ref(key, &meta, &len);
	unsigned char other[CRYPTO_KEY_LEN];
	crypto_key_generate(other);
	enum record_type type;
	unsigned char *plain;
	size_t plain_len;
	const char *error;
	assert_int_equal(record_open(other, rec, len, &type, &plain, &plain_len, &error), -1);
	assert_int_equal(record_open(key, rec, len - 1, &type, &plain, &plain_len, &error), -1);
	assert_int_equal(record_open(key, rec, len, &type, &plain, &plain_len, &error), 0);
	assert_int_equal(type, RECORD_TYPE_REF);
	/* Truncated plaintexts never decode. */
	struct record_message msg;
	for (size_t i = 0; i < plain_len; i++)
		assert_int_equal(record_decode_message(plain, i, NULL, NULL, &msg, &error), -1);
	mem_free(plain);
	mem_free(rec);
}

static int setup(void **state)
{
	if (crypto_init() < 0)
		return -1;
	crypto_key_generate(key);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_roundtrip),
		cmocka_unit_test(test_dictionary),
		cmocka_unit_test(test_wrong_key_and_garbage),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
