#include "tls-private.h"
#include "mem.h"
#include "tstr.h"

#include <openssl/err.h>
#include <stdlib.h>

/* TLS 1.2 suites with forward secrecy and AEAD only (RSA or ECDSA
 * certificates); TLS 1.3 suites are OpenSSL's defaults. */
#define TLS_CONTEXT_CIPHERS_TLS12 "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"

static struct tls_context *tls_context_new(const SSL_METHOD *method, bool server,
					   const char **error_r)
{
	SSL_CTX *ssl_ctx = SSL_CTX_new(method);
	if (ssl_ctx == NULL) {
		*error_r = tstr_printf("creating a TLS context failed%s", tls_error_suffix());
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ssl_ctx, TLS_CONTEXT_CIPHERS_TLS12) != 1) {
		*error_r = tstr_printf("configuring the TLS context failed%s", tls_error_suffix());
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					     SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* libevent may hand OpenSSL a different buffer when retrying a write. */
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_cert_verify_callback(ssl_ctx, tls_conn_cert_verify, NULL);
	struct tls_context *ctx = mem_new(struct tls_context);
	ctx->ssl_ctx = ssl_ctx;
	ctx->server = server;
	atomic_init(&ctx->refcount, 1);
	return ctx;
}

static int tls_context_use_pair(struct tls_context *ctx, const char *cert_path,
				const char *key_path, const char **error_r)
{
	STACK_OF(X509) * certs;
	EVP_PKEY *key;
	if (tls_load_pair(cert_path, key_path, &certs, &key, error_r) < 0)
		return -1;
	X509 *cert = sk_X509_shift(certs);
	/* Replaces certificate, chain and key in one step; SSL objects made
	 * before keep their copies. */
	int ret = 0;
	if (SSL_CTX_use_cert_and_key(ctx->ssl_ctx, cert, key, certs, 1) != 1) {
		*error_r = tstr_printf("cannot use the certificate %s%s", cert_path,
				       tls_error_suffix());
		ret = -1;
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	sk_X509_pop_free(certs, X509_free);
	return ret;
}

struct tls_context *tls_context_create_server(const char *cert_path, const char *key_path,
					      tls_peer_check_fn *peer_check, void *check_ctx,
					      const char **error_r)
{
	struct tls_context *ctx = tls_context_new(TLS_server_method(), true, error_r);
	if (ctx == NULL)
		return NULL;
	if (tls_context_use_pair(ctx, cert_path, key_path, error_r) < 0) {
		tls_context_destroy(&ctx);
		return NULL;
	}
	if (peer_check != NULL) {
		ctx->peer_check = peer_check;
		ctx->check_ctx = check_ctx;
		SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   NULL);
		/* A resumed session skips the peer check, which must see every
		 * connection (a client may have been removed since). */
		SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_TICKET);
		(void)SSL_CTX_set_num_tickets(ctx->ssl_ctx, 0);
	}
	return ctx;
}

struct tls_context *tls_context_create_client(const char *cert_path, const char *key_path,
					      const char **error_r)
{
	struct tls_context *ctx = tls_context_new(TLS_client_method(), false, error_r);
	if (ctx == NULL)
		return NULL;
	if (cert_path != NULL && tls_context_use_pair(ctx, cert_path, key_path, error_r) < 0) {
		tls_context_destroy(&ctx);
		return NULL;
	}
	return ctx;
}

int tls_context_reload(struct tls_context *ctx, const char *cert_path, const char *key_path,
		       const char **error_r)
{
	return tls_context_use_pair(ctx, cert_path, key_path, error_r);
}

void tls_context_ref(struct tls_context *ctx)
{
	atomic_fetch_add_explicit(&ctx->refcount, 1, memory_order_relaxed);
}

void tls_context_unref(struct tls_context *ctx)
{
	if (atomic_fetch_sub_explicit(&ctx->refcount, 1, memory_order_acq_rel) != 1)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	mem_free(ctx);
}

void tls_context_destroy(struct tls_context **ctx)
{
	if (*ctx == NULL)
		return;
	tls_context_unref(*ctx);
	*ctx = NULL;
}

SSL *tls_context_new_ssl(struct tls_context *ctx)
{
	SSL *ssl = SSL_new(ctx->ssl_ctx);
	if (ssl == NULL)
		abort(); /* only without memory */
	(void)tls_conn_attach(ssl, ctx);
	return ssl;
}
