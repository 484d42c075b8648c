/* tls-stream: a blocking client connection, plain then TLS (STARTTLS) or TLS
 * at once, for work that runs in a thread of its own (fetching mail from
 * IMAP and POP3 servers in a job). */
#include "tls-private.h"
#include "mem.h"
#include "sigpipe.h"
#include "tstr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define TLS_STREAM_DEFAULT_TIMEOUT_SECS 60

struct tls_stream {
	int fd;
	char *name; /* "host:port" for error texts */
	char *host;
	char pin[TLS_FINGERPRINT_HEX_LEN + 1]; /* "" if not pinned */
	char *ca_file;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
};

static int tls_stream_connect_addr(struct tls_stream *s, const struct addrinfo *ai,
				   unsigned int timeout_secs, const char **error_r)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = tstr_printf("%s: socket() failed: %s", s->name, strerror(errno));
		return -1;
	}
	int err = 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			err = errno;
		} else {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int ready;
			do
				ready = poll(&pfd, 1, (int)timeout_secs * 1000);
			while (ready < 0 && errno == EINTR);
			socklen_t len = sizeof(err);
			if (ready == 0)
				err = ETIMEDOUT;
			else if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
		}
	}
	if (err != 0) {
		*error_r = tstr_printf("%s: cannot connect: %s", s->name, strerror(err));
		close(fd);
		return -1;
	}
	/* blocking from here on, each read and write bounded by the timeout */
	struct timeval tv = {.tv_sec = timeout_secs};
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		*error_r = tstr_printf("%s: socket options: %s", s->name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int tls_stream_connect(const struct tls_stream_settings *set, struct tls_stream **stream_r,
		       const char **error_r)
{
	struct tls_stream *s = mem_new(struct tls_stream);
	s->fd = -1;
	s->host = mem_strdup(set->host);
	s->name = strchr(set->host, ':') != NULL ? mem_printf("[%s]:%u", set->host, set->port)
						 : mem_printf("%s:%u", set->host, set->port);
	if (set->pinned_fingerprint != NULL && set->pinned_fingerprint[0] != '\0' &&
	    tls_fingerprint_normalize(set->pinned_fingerprint, s->pin, error_r) < 0) {
		tls_stream_destroy(&s);
		return -1;
	}
	s->ca_file =
		set->ca_file != NULL && set->ca_file[0] != '\0' ? mem_strdup(set->ca_file) : NULL;
	unsigned int timeout =
		set->timeout_secs != 0 ? set->timeout_secs : TLS_STREAM_DEFAULT_TIMEOUT_SECS;
	char port[16];
	snprintf(port, sizeof(port), "%u", set->port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int gai = getaddrinfo(set->host, port, &hints, &res);
	if (gai != 0) {
		*error_r = tstr_printf("%s: cannot resolve '%s': %s", s->name, set->host,
				       gai_strerror(gai));
		tls_stream_destroy(&s);
		return -1;
	}
	for (const struct addrinfo *ai = res; ai != NULL && s->fd < 0; ai = ai->ai_next)
		s->fd = tls_stream_connect_addr(s, ai, timeout, error_r);
	freeaddrinfo(res);
	if (s->fd < 0) {
		tls_stream_destroy(&s);
		return -1;
	}
	*stream_r = s;
	return 0;
}

/* Pinned: the certificate's fingerprint is the trust, checked after the
 * handshake. Otherwise OpenSSL verifies the chain against the CAs and the
 * name against the host (an IP address against its IP SAN). */
static int tls_stream_setup(struct tls_stream *s, const char **error_r)
{
	s->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (s->ssl_ctx == NULL || SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION) != 1) {
		*error_r = tstr_printf("%s: setting up TLS failed%s", s->name, tls_error_suffix());
		return -1;
	}
	if (s->pin[0] == '\0') {
		int ok = s->ca_file != NULL
				 ? SSL_CTX_load_verify_locations(s->ssl_ctx, s->ca_file, NULL)
				 : SSL_CTX_set_default_verify_paths(s->ssl_ctx);
		if (ok != 1) {
			*error_r = tstr_printf("%s: cannot load the CA certificates %s%s", s->name,
					       s->ca_file != NULL ? s->ca_file : "of the system",
					       tls_error_suffix());
			return -1;
		}
		SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER, NULL);
	}
	s->ssl = SSL_new(s->ssl_ctx);
	unsigned char addr[sizeof(struct in6_addr)];
	bool is_ip =
		inet_pton(AF_INET, s->host, addr) == 1 || inet_pton(AF_INET6, s->host, addr) == 1;
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1 ||
	    (!is_ip && SSL_set_tlsext_host_name(s->ssl, s->host) != 1)) {
		*error_r = tstr_printf("%s: setting up TLS failed%s", s->name, tls_error_suffix());
		return -1;
	}
	if (s->pin[0] == '\0') {
		X509_VERIFY_PARAM *param = SSL_get0_param(s->ssl);
		int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, s->host)
			       : X509_VERIFY_PARAM_set1_host(param, s->host, 0);
		if (ok != 1) {
			*error_r = tstr_printf("%s: setting up TLS failed%s", s->name,
					       tls_error_suffix());
			return -1;
		}
	}
	return 0;
}

int tls_stream_start_tls(struct tls_stream *s, const char **error_r)
{
	if (s->ssl != NULL) {
		*error_r = tstr_printf("%s: TLS is already on", s->name);
		return -1;
	}
	if (tls_stream_setup(s, error_r) < 0)
		return -1;
	sigset_t old;
	sigpipe_block(&old);
	int ret = SSL_connect(s->ssl);
	sigpipe_restore(&old);
	if (ret != 1) {
		long verify = SSL_get_verify_result(s->ssl);
		const char *openssl_error = tls_error_openssl();
		if (verify != X509_V_OK) {
			*error_r = tstr_printf("%s: the server's certificate is not trusted: %s",
					       s->name, X509_verify_cert_error_string(verify));
		} else {
			*error_r = tstr_printf("%s: TLS handshake failed: %s", s->name,
					       openssl_error[0] != '\0' ? openssl_error
					       : errno != 0             ? strerror(errno)
							    : "connection closed by the server");
		}
		ERR_clear_error();
		return -1;
	}
	if (s->pin[0] != '\0') {
		X509 *cert = SSL_get0_peer_certificate(s->ssl);
		char got[TLS_FINGERPRINT_HEX_LEN + 1] = "";
		if (cert != NULL)
			tls_fingerprint_x509(cert, got);
		if (strcmp(got, s->pin) != 0) {
			*error_r = tstr_printf(
				"%s: certificate fingerprint mismatch: expected %s, got %s",
				s->name, s->pin, got[0] != '\0' ? got : "no certificate");
			return -1;
		}
	}
	return 0;
}

ssize_t tls_stream_read(struct tls_stream *s, void *buf, size_t size, const char **error_r)
{
	if (s->ssl == NULL) {
		for (;;) {
			ssize_t n = recv(s->fd, buf, size, 0);
			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			*error_r = errno == EAGAIN || errno == EWOULDBLOCK
					   ? tstr_printf("%s: the server did not answer in time",
							 s->name)
					   : tstr_printf("%s: read failed: %s", s->name,
							 strerror(errno));
			return -1;
		}
	}
	int n = SSL_read(s->ssl, buf, size > INT32_MAX ? INT32_MAX : (int)size);
	if (n > 0)
		return n;
	int err = SSL_get_error(s->ssl, n);
	if (err == SSL_ERROR_ZERO_RETURN)
		return 0;
	const char *openssl_error = tls_error_openssl();
	ERR_clear_error();
	if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
		*error_r = tstr_printf("%s: the server did not answer in time", s->name);
	else if (err == SSL_ERROR_SYSCALL && openssl_error[0] == '\0')
		*error_r = tstr_printf("%s: the server closed the connection", s->name);
	else
		*error_r = tstr_printf("%s: read failed: %s", s->name, openssl_error);
	return -1;
}

int tls_stream_write(struct tls_stream *s, const void *data, size_t len, const char **error_r)
{
	const unsigned char *p = data;
	sigset_t old;
	sigpipe_block(&old);
	int ret = 0;
	while (len > 0) {
		ssize_t n;
		if (s->ssl != NULL) {
			int w = SSL_write(s->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
			n = w > 0 ? w : -1;
			if (w <= 0)
				ERR_clear_error();
		} else {
			n = send(s->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0) {
			*error_r = tstr_printf("%s: write failed: %s", s->name,
					       errno != 0 ? strerror(errno) : "connection closed");
			ret = -1;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	sigpipe_restore(&old);
	return ret;
}

const char *tls_stream_name(const struct tls_stream *s)
{
	return s->name;
}

void tls_stream_destroy(struct tls_stream **stream)
{
	struct tls_stream *s = *stream;
	if (s == NULL)
		return;
	if (s->ssl != NULL) {
		sigset_t old;
		sigpipe_block(&old);
		(void)SSL_shutdown(s->ssl);
		sigpipe_restore(&old);
		SSL_free(s->ssl);
	}
	ERR_clear_error();
	SSL_CTX_free(s->ssl_ctx);
	if (s->fd >= 0)
		close(s->fd);
	mem_free(s->name);
	mem_free(s->host);
	mem_free(s->ca_file);
	mem_free(s);
	*stream = NULL;
}
