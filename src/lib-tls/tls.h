#ifndef COFFER_TLS_H
#define COFFER_TLS_H
/* tls: certificates, fingerprints and TLS connections (the only module that
 * uses OpenSSL and libevent's OpenSSL bufferevents).
 *
 * Fingerprints: the SHA-256 of a certificate's DER encoding, as 64 lowercase
 * hex characters. Input fingerprints may carry colons, spaces or upper case;
 * tls_fingerprint_normalize() turns them into the canonical form.
 *
 * Trust model: no CA is involved between roles. Every role-to-role connection
 * is mutually authenticated TLS (1.2 minimum, 1.3 preferred) where each side
 * pins the other's fingerprint:
 *   - a client context pins the server's fingerprint per connection
 *     (tls_bufferevent_connect(..., pinned_fingerprint)); a mismatch fails the
 *     handshake, and tls_bufferevent_failure() then says so;
 *   - a server context created with a peer check requires a client
 *     certificate and asks the check callback whether the client's
 *     fingerprint is allowed; a refused client fails the handshake.
 * Certificates for end users (HTTPS, IMAP) are ordinary server contexts
 * without a peer check; they may be CA-signed (the chain in the PEM file is
 * sent).
 *
 * All functions return 0/1 on success and -1 with *error_r (a tstr string)
 * on failure, unless said otherwise. */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct event_base;
struct bufferevent;

#define TLS_FINGERPRINT_HEX_LEN 64

/* ---- certificates and keys (PEM files) ---- */

/* Create a self-signed certificate (EC P-256 key, SHA-256 signature, valid for
 * `days`) with CN=common_name and subjectAltName DNS:common_name (plus IP: when
 * common_name is an IP address). The key file is written with mode 0600, the
 * certificate with 0644, both durably (temp file, fsync, rename). */
int tls_cert_generate(const char *common_name, unsigned int days, const char *cert_path,
		      const char *key_path, const char **error_r);
/* The same with more subjectAltNames (NULL-terminated; NULL for none): each an
 * IP entry when it is an IP address, else a DNS entry; repeats are left out.
 * Every name must pass the same check as common_name. */
int tls_cert_generate_names(const char *common_name, const char *const *alt_names,
			    unsigned int days, const char *cert_path, const char *key_path,
			    const char **error_r);

struct tls_cert_info {
	char fingerprint[TLS_FINGERPRINT_HEX_LEN + 1];
	char subject[256]; /* one line, e.g. "CN=mgmt.example.test" */
	char issuer[256];
	time_t not_before;
	time_t not_after;
	bool self_signed;
};

/* Read the first certificate of a PEM file. */
int tls_cert_read_info(const char *cert_path, struct tls_cert_info *info_r, const char **error_r);
int tls_cert_fingerprint(const char *cert_path, char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1],
			 const char **error_r);
/* Both files readable, and the key belongs to the certificate. The error says
 * which file is unreadable or that they do not match. */
int tls_cert_check_pair(const char *cert_path, const char *key_path, const char **error_r);

/* Import a certificate (with its chain) and key into dest_cert/dest_key, after
 * checking that they match. PEM: key_path may be NULL when the key is in the
 * same file as the certificate. PKCS#12: password may be NULL or "". */
int tls_cert_import_pem(const char *cert_path, const char *key_path, const char *dest_cert,
			const char *dest_key, const char **error_r);
int tls_cert_import_pkcs12(const char *p12_path, const char *password, const char *dest_cert,
			   const char *dest_key, const char **error_r);
/* Export certificate and key as one PKCS#12 file (mode 0600). */
int tls_cert_export_pkcs12(const char *cert_path, const char *key_path, const char *password,
			   const char *p12_path, const char **error_r);

/* Canonical form of a fingerprint: 64 lowercase hex digits. Accepts colons,
 * spaces and upper case in the input. -1 if not a SHA-256 fingerprint. */
int tls_fingerprint_normalize(const char *text, char out[TLS_FINGERPRINT_HEX_LEN + 1],
			      const char **error_r);

/* ---- contexts ---- */

struct tls_context;

/* Decides whether a client certificate is accepted: fingerprint is canonical.
 * Called during the handshake; must not block. */
typedef bool tls_peer_check_fn(const char *fingerprint, void *ctx);

/* A server context with the certificate (and chain) and key. With peer_check
 * non-NULL, clients must present a certificate that the callback accepts
 * (asked once per handshake; the refused client gets a "bad certificate"
 * alert); session resumption is then off so that every connection is checked.
 * Pinned or checked certificates are not checked for expiry: the fingerprint
 * is the trust. key_path NULL: the key is in cert_path. */
struct tls_context *tls_context_create_server(const char *cert_path, const char *key_path,
					      tls_peer_check_fn *peer_check, void *check_ctx,
					      const char **error_r);
/* A client context; cert_path/key_path (may be NULL) are the client
 * certificate presented for mutual TLS. Servers are verified only by the pin
 * given per connection. */
struct tls_context *tls_context_create_client(const char *cert_path, const char *key_path,
					      const char **error_r);
/* Replace the certificate and key of a server context for new connections
 * (certificate renewal or import without restart). */
int tls_context_reload(struct tls_context *ctx, const char *cert_path, const char *key_path,
		       const char **error_r);
void tls_context_destroy(struct tls_context **ctx);

/* ---- bufferevents (libevent) ---- */

/* A TLS bufferevent for an accepted socket (fd may be -1 when the caller, such
 * as evhttp, sets it later). BEV_OPT_CLOSE_ON_FREE is set: freeing the
 * bufferevent frees the SSL and closes the socket. These constructors never
 * return NULL (evhttp would fall back to plain text); they abort without
 * memory. Callbacks are deferred (BEV_OPT_DEFER_CALLBACKS), and a peer closing
 * without close_notify is reported as BEV_EVENT_EOF. A context may be
 * destroyed while its connections live on: they keep it referenced. */
struct bufferevent *tls_bufferevent_accept(struct tls_context *ctx, struct event_base *base,
					   int fd);
/* A TLS bufferevent for an outgoing connection, not yet connected: the caller
 * calls bufferevent_socket_connect_hostname() or bufferevent_socket_connect().
 * sni_host may be NULL. pinned_fingerprint (canonical) NULL means the server's
 * certificate is not checked (only for trust-on-first-use probes, which must
 * then compare tls_bufferevent_peer_fingerprint() themselves). */
struct bufferevent *tls_bufferevent_connect(struct tls_context *ctx, struct event_base *base,
					    const char *sni_host, const char *pinned_fingerprint);
/* Wrap an existing connected plain bufferevent (STARTTLS) as the server side.
 * The TLS bufferevent owns `plain` from now on (freeing it frees both), and
 * replaces its callbacks; output already queued on `plain` (the "go ahead"
 * reply) is sent before the handshake. */
struct bufferevent *tls_bufferevent_starttls(struct tls_context *ctx, struct bufferevent *plain);

/* Whether bev is a TLS bufferevent (else a plain one). */
bool tls_bufferevent_is_tls(struct bufferevent *bev);

/* The peer's certificate fingerprint: after the handshake, or after a
 * failed one the certificate it presented (and we refused). false if none. */
bool tls_bufferevent_peer_fingerprint(struct bufferevent *bev,
				      char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1]);

enum tls_failure {
	TLS_FAILURE_NONE,
	TLS_FAILURE_PIN_MISMATCH,    /* the server's certificate is not the pinned one */
	TLS_FAILURE_PEER_REFUSED,    /* our peer check refused the client's certificate */
	TLS_FAILURE_REFUSED_BY_PEER, /* the peer sent an alert (e.g. it refused our certificate) */
	TLS_FAILURE_OTHER,
};

/* Why a TLS bufferevent failed (call from the BEV_EVENT_ERROR callback).
 * *text_r describes it for logs ("certificate fingerprint mismatch: expected
 * ab12..., got cd34..."; OpenSSL's own error otherwise). Repeated calls return
 * the same answer. TLS_FAILURE_NONE: the handshake had completed and no TLS
 * error was recorded (the failure is a socket error or close; use errno).
 * A connection that failed before or during the handshake without an OpenSSL
 * error (refused, reset) is TLS_FAILURE_OTHER. With TLS 1.3 a client whose
 * certificate is refused completes its side of the handshake first
 * (BEV_EVENT_CONNECTED) and then fails with TLS_FAILURE_REFUSED_BY_PEER
 * ("... alert bad certificate") on its first read. */
enum tls_failure tls_bufferevent_failure(struct bufferevent *bev, const char **text_r);

/* ---- blocking helper for trust-on-first-use ---- */

/* Connect to host:port, do a TLS handshake without verification, and return
 * the server certificate's fingerprint. Waits at most timeout_secs (0 = 10)
 * for connecting and the handshake together. SIGPIPE is blocked meanwhile. */
int tls_probe_fingerprint(const char *host, unsigned int port, unsigned int timeout_secs,
			  char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1], const char **error_r);

/* ---- blocking client streams (tls-stream.c) ---- */

/* A connection made in a thread of its own (a job fetching mail): plain
 * first, then TLS with tls_stream_start_tls() at once (implicit TLS) or
 * after the protocol's STARTTLS. The server's certificate is always
 * verified, there is no insecure mode: with pinned_fingerprint (SHA-256 of
 * the certificate, any form tls_fingerprint_normalize() accepts) it must be
 * that certificate; otherwise its chain must lead to a trusted CA (ca_file,
 * or the system's CAs) and name the host (an IP address: its IP SAN). Each
 * read and write waits at most timeout_secs (0: 60). Errors name host:port. */
struct tls_stream;
struct tls_stream_settings {
	const char *host;
	unsigned int port;
	const char *pinned_fingerprint; /* NULL or "": verify by CAs */
	const char *ca_file;            /* NULL or "": the system's CAs */
	unsigned int timeout_secs;
};
int tls_stream_connect(const struct tls_stream_settings *set, struct tls_stream **stream_r,
		       const char **error_r);
int tls_stream_start_tls(struct tls_stream *stream, const char **error_r);
/* Bytes read (at most size), 0 when the server closed, -1 on error. */
ssize_t tls_stream_read(struct tls_stream *stream, void *buf, size_t size, const char **error_r);
int tls_stream_write(struct tls_stream *stream, const void *data, size_t len, const char **error_r);
const char *tls_stream_name(const struct tls_stream *stream);
void tls_stream_destroy(struct tls_stream **stream);

#endif
