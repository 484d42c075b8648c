#include "auth-salted.h"
#include "hex.h"
#include "json.h"

#include <string.h>

void auth_salted_hash(const unsigned char salt[AUTH_SALTED_SALT_LEN], const char *password,
		      unsigned char hash_r[CRYPTO_SHA256_LEN])
{
	struct crypto_sha256_ctx *h = crypto_sha256_create();
	crypto_sha256_update(h, salt, AUTH_SALTED_SALT_LEN);
	crypto_sha256_update(h, password, strlen(password));
	crypto_sha256_finish(&h, hash_r);
}

struct json *auth_salted_entry(const char *user, const char *password)
{
	unsigned char salt[AUTH_SALTED_SALT_LEN], hash[CRYPTO_SHA256_LEN];
	crypto_random(salt, sizeof(salt));
	auth_salted_hash(salt, password, hash);
	char salt_hex[2 * sizeof(salt) + 1], hash_hex[2 * sizeof(hash) + 1];
	hex_encode(salt, sizeof(salt), salt_hex);
	hex_encode(hash, sizeof(hash), hash_hex);
	struct json *entry = json_new_object();
	json_set_string(entry, "userName", user);
	json_set_string(entry, "passwordSalt", salt_hex);
	json_set_string(entry, "passwordSHA256", hash_hex);
	return entry;
}
