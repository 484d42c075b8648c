#ifndef COFFER_ACCESS_IMAP_H
#define COFFER_ACCESS_IMAP_H
/* access-imap: the read-only IMAP server of a Client Access Server (SPEC §8,
 * docs/imap.md): STARTTLS on the "imap" listeners, implicit TLS on the
 * "imaps" listeners, users logging in as user@instance, every mailbox
 * read-only, each user's work passed to their instance (access-route).
 *
 * Contract: access_imap_create() binds nothing; access_imap_listen() binds
 * one listener (call while still privileged, ports 143/993). Sessions live
 * on the event loop until the client leaves, times out, or the server is
 * destroyed. */
#include <stdbool.h>

#include "netaddr.h"

struct event_base;
struct tls_context;
struct access_route;
struct access_imap;

struct access_imap_settings {
	struct event_base *base;
	struct access_route *route;
	struct tls_context *tls; /* the imap certificate (STARTTLS and implicit TLS) */
	const char *server_name; /* for logs */
	/* LOGIN and AUTHENTICATE without TLS (e.g. behind a TLS proxy on
	 * loopback); off by default */
	bool allow_plaintext_auth;
	unsigned int max_connections;        /* 0: RLIMIT_NOFILE / 3, at most 10000 */
	unsigned int max_unauth_per_address; /* 0: 50 */
	unsigned int preauth_timeout_secs;   /* 0: IMAP_PREAUTH_TIMEOUT_SECS (120) */
};

struct access_imap *access_imap_create(const struct access_imap_settings *set);
void access_imap_destroy(struct access_imap **imap);
/* implicit_tls: the imaps listeners. */
int access_imap_listen(struct access_imap *imap, const struct netaddr_listener *listener,
		       bool implicit_tls, const char **error_r);
/* For GetInfo: {"sessions": n, "authenticated": n} */
struct json *access_imap_info(struct access_imap *imap);

#endif
