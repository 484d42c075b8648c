#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "compress.h"
#include "mem.h"

static void test_roundtrip_and_errors(void **state)
{
	const char *text = "Subject: hello\r\n\r\nhello hello hello hello hello\r\n";
	size_t len;
	unsigned char *z = compress_buffer(text, strlen(text), NULL, &len);
	char out[128];
	const char *error;
	assert_int_equal(compress_decompress(z, len, NULL, out, strlen(text), &error), 0);
	assert_memory_equal(out, text, strlen(text));
	/* the wrong expected size and garbage both fail */
	assert_int_equal(compress_decompress(z, len, NULL, out, strlen(text) - 1, &error), -1);
	assert_int_equal(compress_decompress("garbage!", 8, NULL, out, 8, &error), -1);
	mem_free(z);
	/* empty input */
	z = compress_buffer("", 0, NULL, &len);
	assert_int_equal(compress_decompress(z, len, NULL, out, 0, &error), 0);
	mem_free(z);
}

struct shared {
	struct compress_dict *dict;
	int failures;
};

static void *worker(void *context)
{
	struct shared *sh = context;
	for (int i = 0; i < 200; i++) {
		char msg[256];
		int n = snprintf(msg, sizeof(msg),
				 "Received: from host%d\nSubject: thread test %d\n\nbody %d\n",
				 i % 7, i, i * 3);
		size_t len;
		unsigned char *z = compress_buffer(msg, (size_t)n, sh->dict, &len);
		char out[256];
		const char *error;
		if (compress_decompress(z, len, sh->dict, out, (size_t)n, &error) < 0 ||
		    memcmp(out, msg, (size_t)n) != 0)
			__atomic_add_fetch(&sh->failures, 1, __ATOMIC_SEQ_CST);
		mem_free(z);
	}
	return NULL;
}

static void test_dictionary_shared_by_threads(void **state)
{
	/* a dictionary is built lazily on first use: several threads at once */
	char samples[64 * 1024];
	size_t sizes[300], pos = 0;
	for (int i = 0; i < 300; i++) {
		int n = snprintf(samples + pos, 200,
				 "Received: from host%d\nSubject: sample %d\n\nx%d\n", i % 7, i, i);
		sizes[i] = (size_t)n;
		pos += (size_t)n;
	}
	void *data;
	size_t dlen;
	const char *error;
	assert_int_equal(compress_train(samples, sizes, 300, 4096, &data, &dlen, &error), 0);
	struct shared sh = {.dict = compress_dict_create(1, data, dlen)};
	assert_int_equal(compress_dict_id(sh.dict), 1);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker, &sh);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(sh.failures, 0);
	compress_dict_destroy(&sh.dict);
	assert_null(sh.dict);
	mem_free(data);
	/* too few samples: a clear error, not a crash */
	assert_int_equal(compress_train(samples, sizes, 2, 4096, &data, &dlen, &error), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_and_errors),
		cmocka_unit_test(test_dictionary_shared_by_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
