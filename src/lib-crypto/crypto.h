#ifndef COFFER_CRYPTO_H
#define COFFER_CRYPTO_H
/* crypto: primitives for the rest of Coffer (the only module that uses
 * libsodium, and OpenSSL's digests): randomness, SHA-256 (crypto-hash.c,
 * OpenSSL, for the CPU's SHA instructions), Argon2id password hashes, and
 * authenticated encryption (XChaCha20-Poly1305, IETF construction).
 *
 * Contract: crypto_init() must be called once before anything else (it is
 * cheap and idempotent; -1 only if libsodium cannot initialise). Keys are
 * CRYPTO_KEY_LEN random bytes. crypto_aead_encrypt() writes
 * CRYPTO_AEAD_OVERHEAD more bytes than the plaintext (a random nonce followed
 * by the ciphertext and tag), and may encrypt in place (plain at
 * out + CRYPTO_AEAD_NONCE_LEN, as libsodium allows); crypto_aead_decrypt() fails (-1) on any change
 * to the ciphertext, the nonce or the associated data. crypto_siphash() is a
 * keyed 64-bit hash (SipHash-2-4) for hash tables whose keys an attacker
 * chooses (user names, addresses): with a random key, collisions cannot be
 * precomputed. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_KEY_LEN 32
#define CRYPTO_SHA256_LEN 32
#define CRYPTO_CHECKSUM_LEN 16
#define CRYPTO_SIPHASH_KEY_LEN 16
#define CRYPTO_AEAD_NONCE_LEN 24
#define CRYPTO_AEAD_TAG_LEN 16
#define CRYPTO_AEAD_OVERHEAD (CRYPTO_AEAD_NONCE_LEN + CRYPTO_AEAD_TAG_LEN)
/* Argon2id encoded hash ("$argon2id$v=19$m=...") including the NUL. */
#define CRYPTO_PASSWORD_HASH_LEN 128

int crypto_init(void);

void crypto_random(void *buf, size_t len);
/* A random token of `bytes` random bytes as lowercase hex; mem_free(). */
char *crypto_random_hex(size_t bytes);

void crypto_sha256(const void *data, size_t len, unsigned char out[CRYPTO_SHA256_LEN]);

uint64_t crypto_siphash(const unsigned char key[CRYPTO_SIPHASH_KEY_LEN], const void *data,
			size_t len);

struct crypto_sha256_ctx;
struct crypto_sha256_ctx *crypto_sha256_create(void);
void crypto_sha256_update(struct crypto_sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and destroys the context. */
void crypto_sha256_finish(struct crypto_sha256_ctx **ctx, unsigned char out[CRYPTO_SHA256_LEN]);

/* A checksum for copies between two trusted ends over an authenticated
 * channel (XXH3-128 from libxxhash, about ten times SHA-256's speed): it
 * finds a piece that was read, sent or written wrong, and tells pieces
 * apart whose bytes differ. Not for content an attacker could choose to
 * collide: use SHA-256 there. */
void crypto_checksum(const void *data, size_t len, unsigned char out[CRYPTO_CHECKSUM_LEN]);
struct crypto_checksum_ctx;
struct crypto_checksum_ctx *crypto_checksum_create(void);
void crypto_checksum_update(struct crypto_checksum_ctx *ctx, const void *data, size_t len);
/* Writes the checksum and destroys the context. */
void crypto_checksum_finish(struct crypto_checksum_ctx **ctx,
			    unsigned char out[CRYPTO_CHECKSUM_LEN]);

/* Argon2id with libsodium's "interactive" limits (fast enough for logins). */
int crypto_password_hash(const char *password, char out[CRYPTO_PASSWORD_HASH_LEN],
			 const char **error_r);
/* true if the password matches the encoded hash. */
bool crypto_password_verify(const char *encoded_hash, const char *password);

void crypto_key_generate(unsigned char key[CRYPTO_KEY_LEN]);
void crypto_aead_encrypt(const unsigned char key[CRYPTO_KEY_LEN], const void *plain,
			 size_t plain_len, const void *ad, size_t ad_len, unsigned char *out);
int crypto_aead_decrypt(const unsigned char key[CRYPTO_KEY_LEN], const unsigned char *in,
			size_t in_len, const void *ad, size_t ad_len, unsigned char *plain_out);

/* Derive an independent subkey from a master key (BLAKE2b KDF): `context`
 * names the purpose (exactly 8 characters, e.g. "content_"), `id` numbers
 * subkeys within it. Different (context, id) pairs give unrelated keys. */
void crypto_kdf_derive(const unsigned char master[CRYPTO_KEY_LEN], const char context[8],
		       unsigned long long id, unsigned char out[CRYPTO_KEY_LEN]);

/* Constant-time comparison. */
bool crypto_equal(const void *a, const void *b, size_t len);
/* Overwrite memory the compiler may not optimise away. */
void crypto_wipe(void *buf, size_t len);

#endif
