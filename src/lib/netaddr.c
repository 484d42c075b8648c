#include "netaddr.h"
#include "array.h"
#include "mem.h"
#include "tstr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETADDR_LISTENER_SYNTAX                                                                    \
	"HOST:PORT, where HOST is *, an IP address, [IPv6] or a host name and PORT is 1-65535"

int netaddr_parse_port(const char *text, unsigned int *port_r, const char **error_r)
{
	char *end;
	if (text[0] < '0' || text[0] > '9') {
		*error_r =
			tstr_printf("invalid port '%s': expected a number from 1 to 65535", text);
		return -1;
	}
	errno = 0;
	unsigned long port = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || port == 0 || port > 65535) {
		*error_r =
			tstr_printf("invalid port '%s': expected a number from 1 to 65535", text);
		return -1;
	}
	*port_r = (unsigned int)port;
	return 0;
}

static bool netaddr_host_name_valid(const char *host)
{
	if (host[0] == '\0' || strlen(host) > NETADDR_HOST_MAX)
		return false;
	for (const char *p = host; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return false;
	}
	return true;
}

int netaddr_parse_listener(const char *text, struct netaddr_listener *listener_r,
			   const char **error_r)
{
	const char *colon, *host_start = text, *host_end;
	memset(listener_r, 0, sizeof(*listener_r));
	if (text[0] == '[') {
		host_end = strchr(text, ']');
		if (host_end == NULL || host_end[1] != ':') {
			*error_r = tstr_printf("invalid listener '%s': expected %s", text,
					       NETADDR_LISTENER_SYNTAX);
			return -1;
		}
		host_start = text + 1;
		colon = host_end + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL || strchr(text, ':') != colon) {
			*error_r = tstr_printf("invalid listener '%s': expected %s", text,
					       NETADDR_LISTENER_SYNTAX);
			return -1;
		}
		host_end = colon;
	}
	size_t host_len = (size_t)(host_end - host_start);
	if (host_len == 0 || host_len > NETADDR_HOST_MAX) {
		*error_r = tstr_printf("invalid listener '%s': expected %s", text,
				       NETADDR_LISTENER_SYNTAX);
		return -1;
	}
	char host[NETADDR_HOST_MAX + 1];
	memcpy(host, host_start, host_len);
	host[host_len] = '\0';
	if (strcmp(host, "*") == 0) {
		host[0] = '\0';
	} else if (text[0] == '[') {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			*error_r = tstr_printf("invalid listener '%s': '%s' is not an IPv6 address",
					       text, host);
			return -1;
		}
	} else if (!netaddr_host_name_valid(host)) {
		*error_r = tstr_printf(
			"invalid listener '%s': '%s' is not an address or host name; expected %s",
			text, host, NETADDR_LISTENER_SYNTAX);
		return -1;
	}
	const char *port_error;
	if (netaddr_parse_port(colon + 1, &listener_r->port, &port_error) < 0) {
		*error_r = tstr_printf("invalid listener '%s': %s", text, port_error);
		return -1;
	}
	memcpy(listener_r->host, host, strlen(host) + 1);
	return 0;
}

int netaddr_parse_listeners(const char *text, struct netaddr_listener **list_r, size_t *count_r,
			    const char **error_r)
{
	char *copy = mem_strdup(text), *save = NULL;
	ARRAY(struct netaddr_listener) list = ARRAY_INIT;
	for (char *tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (netaddr_parse_listener(tok, array_push(&list), error_r) < 0) {
			array_free(&list);
			mem_free(copy);
			return -1;
		}
	}
	mem_free(copy);
	if (list.count == 0) {
		*error_r = tstr_printf("empty listener list: expected one or more of %s",
				       NETADDR_LISTENER_SYNTAX);
		return -1;
	}
	*list_r = list.items;
	*count_r = list.count;
	return 0;
}

const char *netaddr_listener_str(const struct netaddr_listener *listener)
{
	if (listener->host[0] == '\0')
		return tstr_printf("*:%u", listener->port);
	if (strchr(listener->host, ':') != NULL)
		return tstr_printf("[%s]:%u", listener->host, listener->port);
	return tstr_printf("%s:%u", listener->host, listener->port);
}

const char *netaddr_listener_connect_host(const struct netaddr_listener *listener)
{
	return listener->host[0] == '\0' ? "localhost" : listener->host;
}

static int netaddr_listen_addr(const struct sockaddr *sa, socklen_t salen, int family,
			       const struct netaddr_listener *listener, const char **error_r)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = tstr_printf("%s: socket() failed: %s", netaddr_listener_str(listener),
				       strerror(errno));
		return -1;
	}
	int on = 1, off = 0;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* Answers go out as several small writes (TLS records, HTTP head and
	 * body); without this, Nagle's algorithm holds them for the peer's
	 * delayed ACK, about 40 ms per request. Accepted sockets inherit it. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (family == AF_INET6 && listener->host[0] == '\0')
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	if (bind(fd, sa, salen) < 0 || listen(fd, 511) < 0) {
		*error_r = tstr_printf("%s: %s", netaddr_listener_str(listener), strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int netaddr_listen(const struct netaddr_listener *listener, const char **error_r)
{
	char port[16];
	snprintf(port, sizeof(port), "%u", listener->port);
	if (listener->host[0] == '\0') {
		/* Every address: dual-stack IPv6 where the kernel has IPv6, else IPv4. */
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
					    .sin6_addr = in6addr_any,
					    .sin6_port = htons((uint16_t)listener->port)};
		int fd = netaddr_listen_addr((struct sockaddr *)&sin6, sizeof(sin6), AF_INET6,
					     listener, error_r);
		if (fd >= 0 || errno == EADDRINUSE)
			return fd;
		struct sockaddr_in sin = {.sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_ANY),
					  .sin_port = htons((uint16_t)listener->port)};
		return netaddr_listen_addr((struct sockaddr *)&sin, sizeof(sin), AF_INET, listener,
					   error_r);
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	int gai = getaddrinfo(listener->host, port, &hints, &res);
	if (gai != 0) {
		*error_r =
			tstr_printf("%s: cannot resolve '%s': %s", netaddr_listener_str(listener),
				    listener->host, gai_strerror(gai));
		return -1;
	}
	int fd = netaddr_listen_addr(res->ai_addr, res->ai_addrlen, res->ai_family, listener,
				     error_r);
	freeaddrinfo(res);
	return fd;
}

const char *netaddr_peer_str(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return "unknown";
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		return tstr_printf("%s:%u", host, ntohs(sin->sin_port));
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		return tstr_printf("[%s]:%u", host, ntohs(sin6->sin6_port));
	}
	return "local";
}
