/* crypto-hash: SHA-256 from OpenSSL's libcrypto, which uses the CPU's SHA
 * instructions where it has them: about 1.4 GB/s here against 250 MB/s
 * for libsodium's portable code. Every archived message is hashed when it
 * comes in and checked again every time it is read. */
#include "crypto.h"
#include "mem.h"

#include <openssl/evp.h>
#include <stdlib.h>

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
