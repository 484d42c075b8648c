#ifndef COFFER_NETADDR_H
#define COFFER_NETADDR_H
/* netaddr: listener specifications ("address:port") and listening sockets.
 *
 * Syntax of one listener: HOST:PORT where HOST is "*" (every address),
 * an IPv4 address, a bracketed IPv6 address ("[::1]") or a host name, and PORT
 * is 1..65535. A list is listeners separated by commas and/or spaces.
 * Parsers return 0 or -1 with *error_r naming the bad text and the accepted form. */
#include <stddef.h>
#include <stdbool.h>

#define NETADDR_HOST_MAX 255

struct netaddr_listener {
	char host[NETADDR_HOST_MAX + 1]; /* "" means every address ("*") */
	unsigned int port;
};

int netaddr_parse_port(const char *text, unsigned int *port_r, const char **error_r);
int netaddr_parse_listener(const char *text, struct netaddr_listener *listener_r,
			   const char **error_r);
/* *list_r is freed with mem_free(); an empty list is an error. */
int netaddr_parse_listeners(const char *text, struct netaddr_listener **list_r, size_t *count_r,
			    const char **error_r);
/* "HOST:PORT" as the parser accepts it (tstr string). */
const char *netaddr_listener_str(const struct netaddr_listener *listener);
/* The host a local client should connect to for this listener: the listener's
 * own address, or "localhost" for "*". */
const char *netaddr_listener_connect_host(const struct netaddr_listener *listener);
/* Create a non-blocking, close-on-exec listening TCP socket. Returns the fd or
 * -1 with *error_r (e.g. "127.0.0.1:8470: Address already in use"). */
int netaddr_listen(const struct netaddr_listener *listener, const char **error_r);
/* "ip:port" of a connected socket's peer (tstr string). */
const char *netaddr_peer_str(int fd);

#endif
