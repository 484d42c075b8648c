#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth-salted.h"
#include "hex.h"
#include "json.h"

/* The entry holds the name, a 16-byte salt and the SHA-256 of salt|password
 * (recomputed here from the stored salt), never the password; two entries
 * for one password differ by their salt. */
static void test_entry_checks_only_its_password(void **state)
{
	(void)state;
	const char *password = "correct horse battery staple";
	struct json *e = auth_salted_entry("journal", password);
	assert_int_equal(json_count(e), 3);
	assert_string_equal(json_get_string(e, "userName"), "journal");
	unsigned char salt[AUTH_SALTED_SALT_LEN], hash[CRYPTO_SHA256_LEN], got[CRYPTO_SHA256_LEN];
	assert_int_equal(hex_decode(json_get_string(e, "passwordSalt"), salt, sizeof(salt)),
			 sizeof(salt));
	assert_int_equal(hex_decode(json_get_string(e, "passwordSHA256"), hash, sizeof(hash)),
			 sizeof(hash));
	auth_salted_hash(salt, password, got);
	assert_memory_equal(got, hash, sizeof(hash));
	auth_salted_hash(salt, "correct horse battery stapl", got);
	assert_memory_not_equal(got, hash, sizeof(hash));

	struct json *again = auth_salted_entry("journal", password);
	assert_string_not_equal(json_get_string(again, "passwordSalt"),
				json_get_string(e, "passwordSalt"));
	json_unref(&again);
	json_unref(&e);
}

/* SHA-256 of the 16 zero bytes followed by "abc", as computed independently
 * (python3 -c "import hashlib;print(hashlib.sha256(bytes(16)+b'abc').hexdigest())"). */
static void test_hash_vector(void **state)
{
	(void)state;
	unsigned char salt[AUTH_SALTED_SALT_LEN] = {0}, got[CRYPTO_SHA256_LEN];
	char hex[2 * CRYPTO_SHA256_LEN + 1];
	auth_salted_hash(salt, "abc", got);
	hex_encode(got, sizeof(got), hex);
	assert_string_equal(hex,
			    "277e7ff6d232b9763f4a66e8d05d210da32dac9c6dbce1026ad4cc98acb5fefe");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_checks_only_its_password),
		cmocka_unit_test(test_hash_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
