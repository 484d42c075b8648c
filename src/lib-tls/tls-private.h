#ifndef COFFER_TLS_PRIVATE_H
#define COFFER_TLS_PRIVATE_H
/* Internals shared by the lib-tls files; never included outside lib-tls.
 *
 * Per-connection state (struct tls_conn) hangs off each SSL object as ex_data
 * and is freed by OpenSSL together with the SSL, so it lives exactly as long
 * as the bufferevent that owns the SSL. It holds a reference on its
 * tls_context, so a context destroyed by its owner stays alive until its last
 * connection is gone. */
#include "tls.h"

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <openssl/x509.h>

struct tls_context {
	SSL_CTX *ssl_ctx;
	bool server;
	tls_peer_check_fn *peer_check;
	void *check_ctx;
	atomic_int refcount; /* connections may outlive tls_context_destroy() */
};

struct tls_conn {
	struct tls_context *ctx;
	/* Client side: the server's expected fingerprint, "" when not pinned. */
	char pinned[TLS_FINGERPRINT_HEX_LEN + 1];
	/* Server side: the peer check is asked once per handshake even though
	 * OpenSSL calls the verify callback once per chain error at depth 0. */
	bool peer_checked;
	bool peer_allowed;
	/* Set by the verify callback, or cached by tls_bufferevent_failure()
	 * after it drained the bufferevent's OpenSSL errors. */
	enum tls_failure failure;
	char *failure_text;
	/* The certificate the peer presented, even when it was refused, so
	 * that status pages can show what was offered. */
	char presented[TLS_FINGERPRINT_HEX_LEN + 1];
};

/* tls-error.c: OpenSSL's error queue as one line ("" when empty); the queue
 * is cleared. */
const char *tls_error_openssl(void);
/* ": <queue text>" or "" (for appending to an error message). */
const char *tls_error_suffix(void);

/* tls-fingerprint.c */
void tls_fingerprint_x509(X509 *cert, char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1]);

/* tls-load.c: PEM and key loading without ever prompting for a passphrase.
 * Errors name the file. */
int tls_load_certs(const char *path, STACK_OF(X509) * *certs_r, const char **error_r);
int tls_load_key(const char *path, EVP_PKEY **key_r, const char **error_r);
/* Certificates (with chain) and key from PEM files, the key checked against
 * the certificate; key_path NULL means the key is in cert_path. The
 * certificate that matches the key is moved to the front of the stack. */
int tls_load_pair(const char *cert_path, const char *key_path, STACK_OF(X509) * *certs_r,
		  EVP_PKEY **key_r, const char **error_r);
/* Write certificates and key as PEM files (key 0600, certificates 0644). */
int tls_load_save_pair(STACK_OF(X509) * certs, EVP_PKEY *key, const char *cert_path,
		       const char *key_path, const char **error_r);

/* tls-conn.c */
struct tls_conn *tls_conn_attach(SSL *ssl, struct tls_context *ctx);
struct tls_conn *tls_conn_get(SSL *ssl);
/* Replaces OpenSSL's chain verification (SSL_CTX_set_cert_verify_callback):
 * there is no CA, so the only question is the peer certificate's fingerprint,
 * asked once per handshake. */
int tls_conn_cert_verify(X509_STORE_CTX *store, void *arg);

/* tls-context.c */
void tls_context_ref(struct tls_context *ctx);
void tls_context_unref(struct tls_context *ctx);
/* A new SSL for one connection, with its tls_conn attached. NULL on failure
 * (OpenSSL out of memory), leaving the error queue for the caller. */
SSL *tls_context_new_ssl(struct tls_context *ctx);

#endif
