#include "tls-private.h"
#include "sigpipe.h"
#include "tstr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TLS_PROBE_DEFAULT_TIMEOUT_SECS 10

struct tls_probe {
	const char *name; /* "host:port" for error texts */
	long long deadline_ms;
};

static long long tls_probe_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when fd is ready, 0 on timeout, -1 on poll failure. */
static int tls_probe_wait(struct tls_probe *probe, int fd, short events)
{
	for (;;) {
		long long left = probe->deadline_ms - tls_probe_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = {.fd = fd, .events = events};
		int ret = poll(&pfd, 1, (int)left);
		if (ret >= 0 || errno != EINTR)
			return ret < 0 ? -1 : ret;
	}
}

static int tls_probe_connect_addr(struct tls_probe *probe, const struct addrinfo *ai,
				  const char **error_r)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = tstr_printf("%s: socket() failed: %s", probe->name, strerror(errno));
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		*error_r = tstr_printf("%s: %s", probe->name, strerror(errno));
		close(fd);
		return -1;
	}
	int ready = tls_probe_wait(probe, fd, POLLOUT);
	int err = 0;
	socklen_t len = sizeof(err);
	if (ready <= 0) {
		*error_r = ready == 0 ? tstr_printf("%s: connection timed out", probe->name)
				      : tstr_printf("%s: poll() failed: %s", probe->name,
						    strerror(errno));
	} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		*error_r = tstr_printf("%s: %s", probe->name, strerror(err != 0 ? err : errno));
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

static int tls_probe_connect(struct tls_probe *probe, const char *host, unsigned int port,
			     const char **error_r)
{
	char port_str[16];
	snprintf(port_str, sizeof(port_str), "%u", port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int gai = getaddrinfo(host, port_str, &hints, &res);
	if (gai != 0) {
		*error_r = tstr_printf("%s: cannot resolve '%s': %s", probe->name, host,
				       gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	for (const struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		fd = tls_probe_connect_addr(probe, ai, error_r);
	freeaddrinfo(res);
	return fd;
}

static int tls_probe_handshake(struct tls_probe *probe, SSL *ssl, int fd, const char **error_r)
{
	for (;;) {
		int ret = SSL_connect(ssl);
		if (ret == 1)
			return 0;
		int err = SSL_get_error(ssl, ret);
		short events = err == SSL_ERROR_WANT_READ    ? POLLIN
			       : err == SSL_ERROR_WANT_WRITE ? POLLOUT
							     : 0;
		if (events == 0) {
			const char *openssl_error = tls_error_openssl();
			*error_r = tstr_printf("%s: TLS handshake failed: %s", probe->name,
					       openssl_error[0] != '\0' ? openssl_error
					       : err == SSL_ERROR_SYSCALL && errno != 0
						       ? strerror(errno)
						       : "connection closed by the server");
			return -1;
		}
		int ready = tls_probe_wait(probe, fd, events);
		if (ready <= 0) {
			*error_r = ready == 0
					   ? tstr_printf("%s: TLS handshake timed out", probe->name)
					   : tstr_printf("%s: poll() failed: %s", probe->name,
							 strerror(errno));
			return -1;
		}
	}
}

static int tls_probe_tls(struct tls_probe *probe, const char *host, int fd,
			 char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1], const char **error_r)
{
	SSL_CTX *ssl_ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ssl_ctx == NULL ? NULL : SSL_new(ssl_ctx);
	unsigned char addr[sizeof(struct in6_addr)];
	int ret = -1;
	if (ssl == NULL || SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_set_fd(ssl, fd) != 1 ||
	    (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1 &&
	     SSL_set_tlsext_host_name(ssl, host) != 1)) {
		*error_r =
			tstr_printf("%s: setting up TLS failed%s", probe->name, tls_error_suffix());
	} else if (tls_probe_handshake(probe, ssl, fd, error_r) == 0) {
		/* Verification is off: the caller shows the fingerprint to a
		 * human, or compares it, before trusting it. */
		X509 *cert = SSL_get0_peer_certificate(ssl);
		if (cert == NULL) {
			*error_r = tstr_printf("%s: the server sent no certificate", probe->name);
		} else {
			tls_fingerprint_x509(cert, fingerprint_r);
			(void)SSL_shutdown(ssl);
			ret = 0;
		}
	}
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ssl_ctx);
	return ret;
}

int tls_probe_fingerprint(const char *host, unsigned int port, unsigned int timeout_secs,
			  char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1], const char **error_r)
{
	if (timeout_secs == 0)
		timeout_secs = TLS_PROBE_DEFAULT_TIMEOUT_SECS;
	struct tls_probe probe = {
		.name = strchr(host, ':') != NULL ? tstr_printf("[%s]:%u", host, port)
						  : tstr_printf("%s:%u", host, port),
		.deadline_ms = tls_probe_now_ms() + (long long)timeout_secs * 1000,
	};
	sigset_t old;
	sigpipe_block(&old);
	int ret = -1;
	int fd = tls_probe_connect(&probe, host, port, error_r);
	if (fd >= 0) {
		ret = tls_probe_tls(&probe, host, fd, fingerprint_r, error_r);
		close(fd);
	}
	sigpipe_restore(&old);
	return ret;
}
