#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "crypto.h"
#include "hex.h"
#include "mem.h"

static void test_sha256_known_vector(void **state)
{
	unsigned char d[CRYPTO_SHA256_LEN], d2[CRYPTO_SHA256_LEN];
	char hex[65];
	crypto_sha256("abc", 3, d);
	hex_encode(d, sizeof(d), hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	struct crypto_sha256_ctx *ctx = crypto_sha256_create();
	crypto_sha256_update(ctx, "a", 1);
	crypto_sha256_update(ctx, "bc", 2);
	crypto_sha256_finish(&ctx, d2);
	assert_null(ctx);
	assert_memory_equal(d, d2, sizeof(d));
}

/* XXH3-128 as xxhsum -H2 prints it (Debian's xxhash), and the same in
 * pieces as at once. */
static void test_checksum_known_vectors(void **state)
{
	static const unsigned char abc[CRYPTO_CHECKSUM_LEN] = {0x06, 0xb0, 0x5a, 0xb6, 0x73, 0x3a,
							       0x61, 0x85, 0x78, 0xaf, 0x5f, 0x94,
							       0x89, 0x2f, 0x39, 0x50};
	static const unsigned char empty[CRYPTO_CHECKSUM_LEN] = {0x99, 0xaa, 0x06, 0xd3, 0x01, 0x47,
								 0x98, 0xd8, 0x60, 0x01, 0xc3, 0x24,
								 0x46, 0x8d, 0x49, 0x7f};
	unsigned char d[CRYPTO_CHECKSUM_LEN], d2[CRYPTO_CHECKSUM_LEN];
	crypto_checksum("abc", 3, d);
	assert_memory_equal(d, abc, sizeof(d));
	crypto_checksum("", 0, d);
	assert_memory_equal(d, empty, sizeof(d));
	unsigned char big[10000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7);
	crypto_checksum(big, sizeof(big), d);
	struct crypto_checksum_ctx *ctx = crypto_checksum_create();
	crypto_checksum_update(ctx, big, 1);
	crypto_checksum_update(ctx, big + 1, 4999);
	crypto_checksum_update(ctx, big + 5000, 5000);
	crypto_checksum_finish(&ctx, d2);
	assert_null(ctx);
	assert_memory_equal(d, d2, sizeof(d));
	big[9999] ^= 1;
	crypto_checksum(big, sizeof(big), d2);
	assert_memory_not_equal(d, d2, sizeof(d));
}

static void test_siphash_reference_vector(void **state)
{
	/* SipHash-2-4 paper, appendix A: key 00..0f, message 00..0e. */
	unsigned char key[CRYPTO_SIPHASH_KEY_LEN], msg[15];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)i;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	assert_true(crypto_siphash(key, msg, sizeof(msg)) == 0xa129ca6149be45e5ULL);
	key[0] ^= 1;
	assert_true(crypto_siphash(key, msg, sizeof(msg)) != 0xa129ca6149be45e5ULL);
}

static void test_password_hash_verify(void **state)
{
	char hash[CRYPTO_PASSWORD_HASH_LEN];
	const char *error;
	assert_int_equal(crypto_password_hash("s3cret pass", hash, &error), 0);
	assert_non_null(strstr(hash, "$argon2id$"));
	assert_true(crypto_password_verify(hash, "s3cret pass"));
	assert_false(crypto_password_verify(hash, "s3cret pas"));
	assert_false(crypto_password_verify("not a hash", "x"));
	assert_false(crypto_password_verify("", ""));
}

static void test_aead_roundtrip_and_tamper(void **state)
{
	unsigned char key[CRYPTO_KEY_LEN], other[CRYPTO_KEY_LEN];
	crypto_key_generate(key);
	crypto_key_generate(other);
	const char *msg = "From: a@b\r\n\r\nhello";
	size_t len = strlen(msg);
	unsigned char *ct = mem_alloc(len + CRYPTO_AEAD_OVERHEAD);
	unsigned char *pt = mem_alloc(len + 1);
	crypto_aead_encrypt(key, msg, len, "ad", 2, ct);
	assert_int_equal(crypto_aead_decrypt(key, ct, len + CRYPTO_AEAD_OVERHEAD, "ad", 2, pt), 0);
	assert_memory_equal(pt, msg, len);
	assert_int_equal(crypto_aead_decrypt(other, ct, len + CRYPTO_AEAD_OVERHEAD, "ad", 2, pt),
			 -1);
	assert_int_equal(crypto_aead_decrypt(key, ct, len + CRYPTO_AEAD_OVERHEAD, "AD", 2, pt), -1);
	ct[CRYPTO_AEAD_NONCE_LEN + 3] ^= 1;
	assert_int_equal(crypto_aead_decrypt(key, ct, len + CRYPTO_AEAD_OVERHEAD, "ad", 2, pt), -1);
	assert_int_equal(crypto_aead_decrypt(key, ct, 5, "ad", 2, pt), -1);
	mem_free(ct);
	mem_free(pt);
}

static void test_random_hex_and_equal(void **state)
{
	char *a = crypto_random_hex(16), *b = crypto_random_hex(16);
	assert_int_equal(strlen(a), 32);
	assert_string_not_equal(a, b);
	assert_true(crypto_equal(a, a, 32));
	assert_false(crypto_equal(a, b, 32));
	mem_free(a);
	mem_free(b);
}

static void test_kdf_separates_purposes(void **state)
{
	unsigned char master[CRYPTO_KEY_LEN], a[CRYPTO_KEY_LEN], b[CRYPTO_KEY_LEN],
		c[CRYPTO_KEY_LEN], a2[CRYPTO_KEY_LEN];
	crypto_key_generate(master);
	crypto_kdf_derive(master, "content_", 1, a);
	crypto_kdf_derive(master, "content_", 1, a2);
	crypto_kdf_derive(master, "content_", 2, b);
	crypto_kdf_derive(master, "catalog_", 1, c);
	assert_memory_equal(a, a2, CRYPTO_KEY_LEN);
	assert_memory_not_equal(a, b, CRYPTO_KEY_LEN);
	assert_memory_not_equal(a, c, CRYPTO_KEY_LEN);
	assert_memory_not_equal(a, master, CRYPTO_KEY_LEN);
}

static int setup(void **state)
{
	return crypto_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_known_vector),
		cmocka_unit_test(test_checksum_known_vectors),
		cmocka_unit_test(test_siphash_reference_vector),
		cmocka_unit_test(test_password_hash_verify),
		cmocka_unit_test(test_aead_roundtrip_and_tamper),
		cmocka_unit_test(test_random_hex_and_equal),
		cmocka_unit_test(test_kdf_separates_purposes),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
