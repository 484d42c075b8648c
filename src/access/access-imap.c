/* access-imap: listeners, accepting connections, and connection limits. */
#include "access-imap-private.h"
#include "auth-throttle.h"
#include "fd-reserve.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "netaddr.h"
#include "tls.h"
#include "tstr.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define IMAP_DEFAULT_MAX_CONNECTIONS 10000
#define IMAP_DEFAULT_MAX_UNAUTH_PER_ADDRESS 50

struct access_imap_listener {
	struct access_imap_listener *next;
	struct access_imap *server;
	struct evconnlistener *listener;
	bool implicit_tls;
};

/* A third of the descriptors the process may open (Web Access takes
 * another third), at most IMAP_DEFAULT_MAX_CONNECTIONS. */
static unsigned int access_imap_default_max(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur / 3 > IMAP_DEFAULT_MAX_CONNECTIONS)
		return IMAP_DEFAULT_MAX_CONNECTIONS;
	return rl.rlim_cur / 3 > 0 ? (unsigned int)(rl.rlim_cur / 3) : 1;
}

struct access_imap *access_imap_create(const struct access_imap_settings *set)
{
	struct access_imap *imap = mem_new(struct access_imap);
	imap->set = *set;
	if (imap->set.max_connections == 0)
		imap->set.max_connections = access_imap_default_max();
	if (imap->set.max_unauth_per_address == 0)
		imap->set.max_unauth_per_address = IMAP_DEFAULT_MAX_UNAUTH_PER_ADDRESS;
	if (imap->set.preauth_timeout_secs == 0)
		imap->set.preauth_timeout_secs = IMAP_PREAUTH_TIMEOUT_SECS;
	imap->throttle = auth_throttle_create(10000);
	return imap;
}

void access_imap_destroy(struct access_imap **imap)
{
	struct access_imap *i = *imap;
	if (i == NULL)
		return;
	while (i->listeners != NULL) {
		struct access_imap_listener *l = i->listeners;
		i->listeners = l->next;
		evconnlistener_free(l->listener);
		mem_free(l);
	}
	imap_client_destroy_all(i);
	auth_throttle_destroy(&i->throttle);
	mem_free(i);
	*imap = NULL;
}

/* Connections from one address that have not logged in yet: a client
 * cannot hold many sessions open without a password. */
static unsigned int access_imap_unauth_from(struct access_imap *imap, const char *address)
{
	unsigned int n = 0;
	for (struct imap_client *c = imap->clients; c != NULL; c = c->next) {
		if (c->user_name == NULL && strcmp(c->address, address) == 0)
			n++;
	}
	return n;
}

/* On an implicit-TLS listener a plain-text BYE would reach the client as
 * garbage in place of the TLS handshake: the connection is only closed. A
 * handshake just to say BYE would let a flood of refused connections cost
 * the server a TLS handshake each. */
static void access_imap_refuse(int fd, bool implicit_tls, const char *text)
{
	if (!implicit_tls) {
		/* best effort: the connection is closed either way */
		ssize_t ret = write(fd, text, strlen(text));
		(void)ret;
	}
	close(fd);
}

static void access_imap_accept(struct evconnlistener *listener, evutil_socket_t fd,
			       struct sockaddr *addr, int addrlen, void *ctx)
{
	struct access_imap_listener *l = ctx;
	struct access_imap *imap = l->server;
	char peer[64], address[64];
	snprintf(peer, sizeof(peer), "%s", netaddr_peer_str(fd));
	snprintf(address, sizeof(address), "%s", peer);
	char *colon = strrchr(address, ':');
	if (colon != NULL)
		*colon = '\0';
	if (imap->client_count >= imap->set.max_connections) {
		log_warning(tstr_printf("imap=%s", peer), "refused: %u connections",
			    imap->client_count);
		access_imap_refuse(fd, l->implicit_tls,
				   "* BYE Too many connections, try again later\r\n");
		return;
	}
	if (access_imap_unauth_from(imap, address) >= imap->set.max_unauth_per_address) {
		log_warning(tstr_printf("imap=%s", peer), "refused: too many connections from %s",
			    address);
		access_imap_refuse(fd, l->implicit_tls,
				   "* BYE Too many connections from your address\r\n");
		return;
	}
	evutil_make_socket_nonblocking(fd);
	struct bufferevent *bev =
		l->implicit_tls
			? tls_bufferevent_accept(imap->set.tls, imap->set.base, fd)
			: bufferevent_socket_new(imap->set.base, fd,
						 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	(void)imap_client_create(imap, bev, l->implicit_tls, peer);
}

/* Out of descriptors all the same: refuse with the reserve rather than
 * leave the connection in the backlog (and the loop spinning on it). */
static void access_imap_accept_error(struct evconnlistener *listener, void *ctx)
{
	struct access_imap_listener *l = ctx;
	int err = EVUTIL_SOCKET_ERROR();
	if (err == EMFILE || err == ENFILE)
		(void)fd_reserve_refuse(
			(int)evconnlistener_get_fd(listener),
			l->implicit_tls ? NULL : "* BYE Too many connections, try again later\r\n");
}

int access_imap_listen(struct access_imap *imap, const struct netaddr_listener *listener,
		       bool implicit_tls, const char **error_r)
{
	int fd = netaddr_listen(listener, error_r);
	if (fd < 0)
		return -1;
	struct access_imap_listener *l = mem_new(struct access_imap_listener);
	l->server = imap;
	l->implicit_tls = implicit_tls;
	l->listener = evconnlistener_new(imap->set.base, access_imap_accept, l,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1, fd);
	if (l->listener == NULL) {
		close(fd);
		mem_free(l);
		*error_r = tstr_printf("%s: cannot listen", netaddr_listener_str(listener));
		return -1;
	}
	fd_reserve_init();
	evconnlistener_set_error_cb(l->listener, access_imap_accept_error);
	l->next = imap->listeners;
	imap->listeners = l;
	return 0;
}

struct json *access_imap_info(struct access_imap *imap)
{
	struct json *info = json_new_object();
	json_set_int(info, "sessions", imap->client_count);
	json_set_int(info, "authenticated", imap->authenticated_count);
	return info;
}
