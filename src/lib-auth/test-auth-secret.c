#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth-secret.h"
#include "base64.h"
#include "file.h"
#include "mem.h"
#include "test-tmpdir.h"

static char *tmpdir;

static void test_key_create_then_load(void **state)
{
	const char *error;
	unsigned char k1[CRYPTO_KEY_LEN], k2[CRYPTO_KEY_LEN];
	char *path = mem_printf("%s/secret.key", tmpdir);
	assert_int_equal(auth_secret_key_load_or_create(path, k1, &error), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, CRYPTO_KEY_LEN);
	assert_int_equal(auth_secret_key_load_or_create(path, k2, &error), 0);
	assert_memory_equal(k1, k2, CRYPTO_KEY_LEN);
	/* No temporary files left behind. */
	char *cmd = mem_printf("test \"$(ls -A %s | wc -l)\" -eq 1", tmpdir);
	assert_int_equal(system(cmd), 0);
	mem_free(cmd);
	mem_free(path);
}

static void test_key_race_agrees(void **state)
{
	/* Several processes creating the key at once all end up with the same. */
	char *path = mem_printf("%s/race.key", tmpdir);
	enum { N = 6 };
	int fds[N][2];
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		assert_int_equal(pipe(fds[i]), 0);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			const char *error;
			unsigned char key[CRYPTO_KEY_LEN];
			int rc = auth_secret_key_load_or_create(path, key, &error);
			if (rc == 0 && write(fds[i][1], key, sizeof(key)) != sizeof(key))
				rc = -1;
			_exit(rc == 0 ? 0 : 1);
		}
		close(fds[i][1]);
	}
	unsigned char first[CRYPTO_KEY_LEN], key[CRYPTO_KEY_LEN];
	for (int i = 0; i < N; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		assert_int_equal(read(fds[i][0], i == 0 ? first : key, CRYPTO_KEY_LEN),
				 CRYPTO_KEY_LEN);
		close(fds[i][0]);
		if (i > 0)
			assert_memory_equal(first, key, CRYPTO_KEY_LEN);
	}
	mem_free(path);
}

static void test_key_bad_file_not_overwritten(void **state)
{
	const char *error;
	unsigned char key[CRYPTO_KEY_LEN];
	char *path = mem_printf("%s/short.key", tmpdir);
	assert_int_equal(file_write_atomic(path, "short", 5, 0600, &error), 0);
	assert_int_equal(auth_secret_key_load_or_create(path, key, &error), -1);
	assert_non_null(strstr(error, path));
	assert_non_null(strstr(error, "5 bytes"));
	char *data;
	size_t len;
	assert_int_equal(file_read_all(path, 100, &data, &len, &error), 0);
	assert_string_equal(data, "short");
	mem_free(data);
	mem_free(path);

	char long_key[CRYPTO_KEY_LEN + 10] = {0};
	path = mem_printf("%s/long.key", tmpdir);
	assert_int_equal(file_write_atomic(path, long_key, sizeof(long_key), 0600, &error), 0);
	assert_int_equal(auth_secret_key_load_or_create(path, key, &error), -1);
	assert_non_null(strstr(error, path));
	mem_free(path);

	/* Unreadable: a directory where the file should be; and a missing
	 * directory. */
	path = mem_printf("%s/dir.key", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(auth_secret_key_load_or_create(path, key, &error), -1);
	assert_non_null(strstr(error, path));
	mem_free(path);
	assert_int_equal(auth_secret_key_load_or_create("/nonexistent/dir/secret.key", key, &error),
			 -1);
	assert_non_null(strstr(error, "/nonexistent/dir/secret.key"));
}

static void test_seal_open_roundtrip(void **state)
{
	const char *error;
	unsigned char key[CRYPTO_KEY_LEN];
	crypto_key_generate(key);
	static const char *const secrets[] = {"hunter2", "", "pässwörd with spaces \"'\\"};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		char *sealed = auth_secret_seal(key, secrets[i], "smtp-password");
		assert_true(strncmp(sealed, "v1:", 3) == 0);
		assert_null(strstr(sealed, "hunter2"));
		char *plain;
		assert_int_equal(auth_secret_open(key, sealed, "smtp-password", &plain, &error), 0);
		assert_string_equal(plain, secrets[i]);
		mem_free(plain);
		/* Sealing twice gives different text (random nonce). */
		char *again = auth_secret_seal(key, secrets[i], "smtp-password");
		assert_string_not_equal(sealed, again);
		mem_free(again);
		mem_free(sealed);
	}
}

static void test_open_refuses(void **state)
{
	const char *error;
	unsigned char key[CRYPTO_KEY_LEN], other[CRYPTO_KEY_LEN];
	crypto_key_generate(key);
	crypto_key_generate(other);
	char *plain = NULL;
	char *sealed = auth_secret_seal(key, "JBSWY3DPEHPK3PXP", "mfa:alice");

	assert_int_equal(auth_secret_open(other, sealed, "mfa:alice", &plain, &error), -1);
	assert_non_null(strstr(error, "cannot be opened"));
	assert_null(strstr(error, "JBSWY3DPEHPK3PXP"));
	assert_int_equal(auth_secret_open(key, sealed, "mfa:bob", &plain, &error), -1);
	assert_int_equal(auth_secret_open(key, sealed, "smtp-password", &plain, &error), -1);

	/* Flip one bit of the decoded bytes, re-encode. */
	size_t raw_len;
	unsigned char *raw = base64_decode(sealed + 3, strlen(sealed + 3), &raw_len);
	assert_non_null(raw);
	for (size_t pos = 0; pos < raw_len; pos += 7) {
		raw[pos] ^= 0x10;
		char *b64 = base64_encode(raw, raw_len);
		char *tampered = mem_printf("v1:%s", b64);
		assert_int_equal(auth_secret_open(key, tampered, "mfa:alice", &plain, &error), -1);
		mem_free(tampered);
		mem_free(b64);
		raw[pos] ^= 0x10;
	}
	/* Truncated by a byte. */
	char *b64 = base64_encode(raw, raw_len - 1);
	char *truncated = mem_printf("v1:%s", b64);
	assert_int_equal(auth_secret_open(key, truncated, "mfa:alice", &plain, &error), -1);
	mem_free(truncated);
	mem_free(b64);
	mem_free(raw);

	assert_int_equal(auth_secret_open(key, "JBSWY3DPEHPK3PXP", "mfa:alice", &plain, &error),
			 -1);
	assert_non_null(strstr(error, "v1:"));
	assert_int_equal(auth_secret_open(key, "v2:AAAA", "mfa:alice", &plain, &error), -1);
	assert_int_equal(auth_secret_open(key, "v1:!!!!", "mfa:alice", &plain, &error), -1);
	assert_non_null(strstr(error, "base64"));
	assert_int_equal(auth_secret_open(key, "v1:AAAA", "mfa:alice", &plain, &error), -1);
	assert_non_null(strstr(error, "too short"));
	assert_int_equal(auth_secret_open(key, "v1:", "mfa:alice", &plain, &error), -1);
	assert_null(plain);

	/* The right key and context still work. */
	assert_int_equal(auth_secret_open(key, sealed, "mfa:alice", &plain, &error), 0);
	assert_string_equal(plain, "JBSWY3DPEHPK3PXP");
	mem_free(plain);
	mem_free(sealed);
}

static int setup(void **state)
{
	if (crypto_init() < 0)
		return -1;
	tmpdir = test_tmpdir_create("auth-secret");
	return 0;
}

static int teardown(void **state)
{
	int rc = test_tmpdir_remove(&tmpdir);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_create_then_load),
		cmocka_unit_test(test_key_race_agrees),
		cmocka_unit_test(test_key_bad_file_not_overwritten),
		cmocka_unit_test(test_seal_open_roundtrip),
		cmocka_unit_test(test_open_refuses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
