#include "tls-private.h"
#include "mem.h"
#include "tstr.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#define TLS_BUFFEREVENT_OPTIONS (BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)

/* Returning NULL is never an option: evhttp falls back to a plain-text
 * bufferevent when its bevcb returns NULL. libevent fails here only without
 * memory. */
static struct bufferevent *tls_bufferevent_checked(struct bufferevent *bev)
{
	if (bev == NULL)
		abort();
	/* Peers that close the TCP connection without close_notify are common
	 * (HTTP clients especially); report that as EOF, not as an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

struct bufferevent *tls_bufferevent_accept(struct tls_context *ctx, struct event_base *base, int fd)
{
	SSL *ssl = tls_context_new_ssl(ctx);
	return tls_bufferevent_checked(bufferevent_openssl_socket_new(
		base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, TLS_BUFFEREVENT_OPTIONS));
}

static bool tls_bufferevent_is_ip(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

struct bufferevent *tls_bufferevent_connect(struct tls_context *ctx, struct event_base *base,
					    const char *sni_host, const char *pinned_fingerprint)
{
	SSL *ssl = tls_context_new_ssl(ctx);
	struct tls_conn *conn = tls_conn_get(ssl);
	if (pinned_fingerprint != NULL) {
		const char *error;
		if (tls_fingerprint_normalize(pinned_fingerprint, conn->pinned, &error) < 0) {
			/* Fail closed: a pin that matches no certificate. */
			memset(conn->pinned, 'x', TLS_FINGERPRINT_HEX_LEN);
			conn->pinned[TLS_FINGERPRINT_HEX_LEN] = '\0';
		}
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	}
	/* RFC 6066: SNI carries host names only, never IP addresses. */
	if (sni_host != NULL && !tls_bufferevent_is_ip(sni_host) &&
	    SSL_set_tlsext_host_name(ssl, sni_host) != 1)
		ERR_clear_error(); /* an odd name just goes without SNI */
	return tls_bufferevent_checked(bufferevent_openssl_socket_new(
		base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, TLS_BUFFEREVENT_OPTIONS));
}

struct bufferevent *tls_bufferevent_starttls(struct tls_context *ctx, struct bufferevent *plain)
{
	SSL *ssl = tls_context_new_ssl(ctx);
	return tls_bufferevent_checked(
		bufferevent_openssl_filter_new(bufferevent_get_base(plain), plain, ssl,
					       BUFFEREVENT_SSL_ACCEPTING, TLS_BUFFEREVENT_OPTIONS));
}

bool tls_bufferevent_is_tls(struct bufferevent *bev)
{
	return bufferevent_openssl_get_ssl(bev) != NULL;
}

bool tls_bufferevent_peer_fingerprint(struct bufferevent *bev,
				      char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1])
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509 *cert = ssl == NULL ? NULL : SSL_get0_peer_certificate(ssl);
	if (cert == NULL) {
		/* A refused certificate is not kept by OpenSSL; we noted it. */
		struct tls_conn *conn = ssl == NULL ? NULL : tls_conn_get(ssl);
		if (conn == NULL || conn->presented[0] == '\0')
			return false;
		memcpy(fingerprint_r, conn->presented, TLS_FINGERPRINT_HEX_LEN + 1);
		return true;
	}
	tls_fingerprint_x509(cert, fingerprint_r);
	return true;
}

/* libevent stores SSL_get_error()'s code (a small number) among the OpenSSL
 * error codes; only the real ones say something. */
static bool tls_bufferevent_is_openssl_error(unsigned long err)
{
	return ERR_SYSTEM_ERROR(err) || ERR_GET_LIB(err) != 0;
}

/* An SSL error whose reason is "alert received" means the peer ended the
 * handshake, typically because it refused our certificate. */
static bool tls_bufferevent_is_alert(unsigned long err)
{
	if (ERR_SYSTEM_ERROR(err) || ERR_GET_LIB(err) != ERR_LIB_SSL)
		return false;
	int reason = ERR_GET_REASON(err);
	return reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256;
}

static void tls_bufferevent_collect(struct bufferevent *bev, SSL *ssl, struct tls_conn *conn)
{
	char text[TSTR_MAX_LEN + 1] = "";
	size_t len = 0;
	enum tls_failure failure = TLS_FAILURE_NONE;
	unsigned long err;
	while ((err = bufferevent_get_openssl_error(bev)) != 0) {
		if (!tls_bufferevent_is_openssl_error(err))
			continue;
		if (failure != TLS_FAILURE_REFUSED_BY_PEER)
			failure = tls_bufferevent_is_alert(err) ? TLS_FAILURE_REFUSED_BY_PEER
								: TLS_FAILURE_OTHER;
		char one[256];
		ERR_error_string_n(err, one, sizeof(one));
		if (len + strlen(one) + 3 < sizeof(text))
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s",
						len > 0 ? "; " : "", one);
	}
	if (failure == TLS_FAILURE_NONE) {
		if (SSL_is_init_finished(ssl))
			return; /* TLS itself is fine: a socket error or close */
		failure = TLS_FAILURE_OTHER;
		snprintf(text, sizeof(text),
			 "connection failed or closed during the TLS handshake");
	}
	conn->failure = failure;
	conn->failure_text = mem_strdup(text);
}

enum tls_failure tls_bufferevent_failure(struct bufferevent *bev, const char **text_r)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct tls_conn *conn = ssl == NULL ? NULL : tls_conn_get(ssl);
	if (conn == NULL) {
		*text_r = "not a TLS connection";
		return TLS_FAILURE_OTHER;
	}
	/* The verify callback's reason wins over OpenSSL's generic "certificate
	 * verify failed"; the result is kept so that repeated calls agree. */
	if (conn->failure == TLS_FAILURE_NONE)
		tls_bufferevent_collect(bev, ssl, conn);
	if (conn->failure == TLS_FAILURE_NONE) {
		*text_r = "no TLS error";
		return TLS_FAILURE_NONE;
	}
	*text_r = tstr_dup(conn->failure_text);
	return conn->failure;
}
