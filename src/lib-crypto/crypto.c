#include "crypto.h"
#include "hex.h"
#include "mem.h"
#include "tstr.h"

#include <sodium.h>
#include <string.h>

int crypto_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void crypto_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

char *crypto_random_hex(size_t bytes)
{
	unsigned char *raw = mem_alloc(bytes);
	char *out = mem_alloc(bytes * 2 + 1);
	randombytes_buf(raw, bytes);
	hex_encode(raw, bytes, out);
	sodium_memzero(raw, bytes);
	mem_free(raw);
	return out;
}

uint64_t crypto_siphash(const unsigned char key[CRYPTO_SIPHASH_KEY_LEN], const void *data,
			size_t len)
{
	_Static_assert(CRYPTO_SIPHASH_KEY_LEN == crypto_shorthash_siphash24_KEYBYTES, "key");
	_Static_assert(crypto_shorthash_siphash24_BYTES == 8, "64-bit output");
	unsigned char out[crypto_shorthash_siphash24_BYTES];
	crypto_shorthash_siphash24(out, data, len, key);
	uint64_t v = 0;
	for (size_t i = 0; i < sizeof(out); i++)
		v |= (uint64_t)out[i] << (8 * i);
	return v;
}

int crypto_password_hash(const char *password, char out[CRYPTO_PASSWORD_HASH_LEN],
			 const char **error_r)
{
	_Static_assert(CRYPTO_PASSWORD_HASH_LEN >= crypto_pwhash_STRBYTES, "hash buffer");
	if (crypto_pwhash_str_alg(
		    out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
		    crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		*error_r = "password hashing failed (out of memory)";
		return -1;
	}
	return 0;
}

bool crypto_password_verify(const char *encoded_hash, const char *password)
{
	if (strncmp(encoded_hash, "$argon2id$", 10) != 0)
		return false;
	return crypto_pwhash_str_verify(encoded_hash, password, strlen(password)) == 0;
}

void crypto_key_generate(unsigned char key[CRYPTO_KEY_LEN])
{
	crypto_aead_xchacha20poly1305_ietf_keygen(key);
}

void crypto_aead_encrypt(const unsigned char key[CRYPTO_KEY_LEN], const void *plain,
			 size_t plain_len, const void *ad, size_t ad_len, unsigned char *out)
{
	unsigned char *nonce = out;
	randombytes_buf(nonce, CRYPTO_AEAD_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + CRYPTO_AEAD_NONCE_LEN, NULL, plain,
						   plain_len, ad, ad_len, NULL, nonce, key);
}

int crypto_aead_decrypt(const unsigned char key[CRYPTO_KEY_LEN], const unsigned char *in,
			size_t in_len, const void *ad, size_t ad_len, unsigned char *plain_out)
{
	if (in_len < CRYPTO_AEAD_OVERHEAD)
		return -1;
	return crypto_aead_xchacha20poly1305_ietf_decrypt(
		       plain_out, NULL, NULL, in + CRYPTO_AEAD_NONCE_LEN,
		       in_len - CRYPTO_AEAD_NONCE_LEN, ad, ad_len, in, key) == 0
		       ? 0
		       : -1;
}

void crypto_kdf_derive(const unsigned char master[CRYPTO_KEY_LEN], const char context[8],
		       unsigned long long id, unsigned char out[CRYPTO_KEY_LEN])
{
	_Static_assert(crypto_kdf_CONTEXTBYTES == 8, "kdf context");
	_Static_assert(crypto_kdf_KEYBYTES == CRYPTO_KEY_LEN, "kdf key");
	crypto_kdf_derive_from_key(out, CRYPTO_KEY_LEN, id, context, master);
}

bool crypto_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

void crypto_wipe(void *buf, size_t len)
{
	sodium_memzero(buf, len);
}
