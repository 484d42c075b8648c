/* crypto-hash: SHA-256 from OpenSSL's libcrypto, which uses the CPU's SHA
 * instructions where it has them: about 1.4 GB/s here against 250 MB/s
 * for libsodium's portable code. Every archived message is hashed when it
 * comes in and checked again every time it is read. And a fast checksum
 * (XXH3-128) for copies where SHA-256 was half the CPU: a MoveInstance. */
#include "crypto.h"
#include "mem.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct crypto_sha256_ctx {
	EVP_MD_CTX *md;
};

void crypto_sha256(const void *data, size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != CRYPTO_SHA256_LEN)
		abort(); /* only without memory */
}

struct crypto_sha256_ctx *crypto_sha256_create(void)
{
	struct crypto_sha256_ctx *ctx = mem_new(struct crypto_sha256_ctx);
	ctx->md = EVP_MD_CTX_new();
	if (ctx->md == NULL || EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1)
		abort();
	return ctx;
}

void crypto_sha256_update(struct crypto_sha256_ctx *ctx, const void *data, size_t len)
{
	if (EVP_DigestUpdate(ctx->md, data, len) != 1)
		abort();
}

void crypto_sha256_finish(struct crypto_sha256_ctx **ctx, unsigned char out[CRYPTO_SHA256_LEN])
{
	unsigned int n = 0;
	if (EVP_DigestFinal_ex((*ctx)->md, out, &n) != 1 || n != CRYPTO_SHA256_LEN)
		abort();
	EVP_MD_CTX_free((*ctx)->md);
	mem_free(*ctx);
	*ctx = NULL;
}

/* XXH128's canonical form: big-endian, the high half first, as xxhsum
 * prints it. */
static void crypto_checksum_canonical(XXH128_hash_t h, unsigned char out[CRYPTO_CHECKSUM_LEN])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, h);
	memcpy(out, c.digest, CRYPTO_CHECKSUM_LEN);
}

void crypto_checksum(const void *data, size_t len, unsigned char out[CRYPTO_CHECKSUM_LEN])
{
	crypto_checksum_canonical(XXH3_128bits(data, len), out);
}

struct crypto_checksum_ctx {
	XXH3_state_t *state;
};

struct crypto_checksum_ctx *crypto_checksum_create(void)
{
	struct crypto_checksum_ctx *ctx = mem_new(struct crypto_checksum_ctx);
	ctx->state = XXH3_createState();
	if (ctx->state == NULL || XXH3_128bits_reset(ctx->state) != XXH_OK)
		abort(); /* only without memory */
	return ctx;
}

void crypto_checksum_update(struct crypto_checksum_ctx *ctx, const void *data, size_t len)
{
	if (XXH3_128bits_update(ctx->state, data, len) != XXH_OK)
		abort();
}

void crypto_checksum_finish(struct crypto_checksum_ctx **ctx,
			    unsigned char out[CRYPTO_CHECKSUM_LEN])
{
	crypto_checksum_canonical(XXH3_128bits_digest((*ctx)->state), out);
	XXH3_freeState((*ctx)->state);
	mem_free(*ctx);
	*ctx = NULL;
}
