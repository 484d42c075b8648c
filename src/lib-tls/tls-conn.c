#include "tls-private.h"
#include "mem.h"
#include "tstr.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int tls_conn_index = -1;
static pthread_once_t tls_conn_once = PTHREAD_ONCE_INIT;

/* Called by OpenSSL from SSL_free(), which libevent calls when the bufferevent
 * is freed with BEV_OPT_CLOSE_ON_FREE. */
static void tls_conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			  void *argp)
{
	struct tls_conn *conn = ptr;
	if (conn == NULL)
		return;
	tls_context_unref(conn->ctx);
	mem_free(conn->failure_text);
	mem_free(conn);
}

static void tls_conn_init_index(void)
{
	tls_conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_conn_free);
	if (tls_conn_index < 0)
		abort();
}

struct tls_conn *tls_conn_attach(SSL *ssl, struct tls_context *ctx)
{
	(void)pthread_once(&tls_conn_once, tls_conn_init_index);
	struct tls_conn *conn = mem_new(struct tls_conn);
	conn->ctx = ctx;
	tls_context_ref(ctx);
	if (SSL_set_ex_data(ssl, tls_conn_index, conn) != 1)
		abort();
	return conn;
}

struct tls_conn *tls_conn_get(SSL *ssl)
{
	/* Also orders this thread's read of the index after its creation. */
	(void)pthread_once(&tls_conn_once, tls_conn_init_index);
	return SSL_get_ex_data(ssl, tls_conn_index);
}

static void tls_conn_fail(struct tls_conn *conn, enum tls_failure failure, const char *text)
{
	conn->failure = failure;
	mem_free(conn->failure_text);
	conn->failure_text = mem_strdup(text);
}

static bool tls_conn_check_pin(struct tls_conn *conn, const char *fingerprint)
{
	if (conn->pinned[0] == '\0')
		return true; /* a trust-on-first-use probe compares afterwards */
	if (strcmp(conn->pinned, fingerprint) == 0)
		return true;
	tls_conn_fail(conn, TLS_FAILURE_PIN_MISMATCH,
		      tstr_printf("certificate fingerprint mismatch: expected %s, got %s",
				  conn->pinned, fingerprint));
	return false;
}

static bool tls_conn_check_client(struct tls_conn *conn, const char *fingerprint)
{
	if (!conn->peer_checked) {
		conn->peer_checked = true;
		conn->peer_allowed = conn->ctx->peer_check == NULL ||
				     conn->ctx->peer_check(fingerprint, conn->ctx->check_ctx);
	}
	if (!conn->peer_allowed) {
		tls_conn_fail(conn, TLS_FAILURE_PEER_REFUSED,
			      tstr_printf("client certificate refused: fingerprint %s is not "
					  "allowed",
					  fingerprint));
	}
	return conn->peer_allowed;
}

int tls_conn_cert_verify(X509_STORE_CTX *store, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *conn = ssl == NULL ? NULL : tls_conn_get(ssl);
	X509 *cert = X509_STORE_CTX_get0_cert(store);
	if (conn == NULL || cert == NULL) {
		X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	char fingerprint[TLS_FINGERPRINT_HEX_LEN + 1];
	tls_fingerprint_x509(cert, fingerprint);
	memcpy(conn->presented, fingerprint, sizeof(conn->presented));
	bool ok = conn->ctx->server ? tls_conn_check_client(conn, fingerprint)
				    : tls_conn_check_pin(conn, fingerprint);
	if (!ok) {
		/* Sent to the peer as a "bad certificate" alert. */
		X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	X509_STORE_CTX_set_error(store, X509_V_OK);
	return 1;
}
