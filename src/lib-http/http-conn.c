/* http-conn: every connection of an HTTPS server, counted per address and
 * in total, and its deadline for the TLS handshake and the request.
 *
 * libevent 2.1's evhttp accepts on its own and tells nothing about a new
 * connection except through the bufferevent callback, which does not know
 * the socket yet. So http_conn_new() records the bufferevent and activates
 * a check that runs in the same pass of the event loop, after evhttp has
 * attached the socket and before any I/O on it: the check reads the peer
 * address from the socket, finds the evhttp connection (the bufferevent's
 * callback argument) and either admits it (close callback, deadline) or
 * frees it, which closes the socket before the TLS handshake starts. */
#include "http-private.h"
#include "fd-reserve.h"
#include "mem.h"
#include "tls.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define HTTP_CONN_BUCKETS 4096
#define HTTP_CONN_DEFAULT_MAX 10000
#define HTTP_CONN_DEFAULT_PER_ADDRESS 64
#define HTTP_CONN_DEFAULT_REQUEST_TIMEOUT 20

struct http_addr {
	struct http_addr *next;
	unsigned int count;
	char ip[INET6_ADDRSTRLEN];
};

struct http_conn {
	struct http_conn *prev, *next; /* admitted, or waiting for the check */
	struct http_conn *hnext;       /* by evhttp connection */
	struct http_conn_table *table;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;
	struct http_addr *addr;
	struct event *deadline;
	struct http_request *active; /* handed to the handler, unanswered */
};

struct http_conn_table {
	struct http_server *server;
	struct event *check;
	struct http_conn *unchecked, *admitted;
	unsigned int count;
	struct http_conn *by_evcon[HTTP_CONN_BUCKETS];
	struct http_addr *by_ip[HTTP_CONN_BUCKETS];
};

static size_t http_conn_ptr_hash(const void *p)
{
	return ((uintptr_t)p >> 4) % HTTP_CONN_BUCKETS;
}

static size_t http_conn_ip_hash(const char *ip)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)ip; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h % HTTP_CONN_BUCKETS;
}

static struct http_addr *http_conn_addr(struct http_conn_table *t, const char *ip, bool create)
{
	struct http_addr **bucket = &t->by_ip[http_conn_ip_hash(ip)];
	for (struct http_addr *a = *bucket; a != NULL; a = a->next) {
		if (strcmp(a->ip, ip) == 0)
			return a;
	}
	if (!create)
		return NULL;
	struct http_addr *a = mem_new(struct http_addr);
	snprintf(a->ip, sizeof(a->ip), "%s", ip);
	a->next = *bucket;
	*bucket = a;
	return a;
}

static void http_conn_addr_release(struct http_conn_table *t, struct http_addr *addr)
{
	if (--addr->count > 0)
		return;
	for (struct http_addr **p = &t->by_ip[http_conn_ip_hash(addr->ip)]; *p != NULL;
	     p = &(*p)->next) {
		if (*p == addr) {
			*p = addr->next;
			break;
		}
	}
	mem_free(addr);
}

static void http_conn_list_remove(struct http_conn **head, struct http_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void http_conn_list_add(struct http_conn **head, struct http_conn *c)
{
	c->next = *head;
	if (*head != NULL)
		(*head)->prev = c;
	*head = c;
}

static void http_conn_arm(struct http_conn *c)
{
	struct timeval tv = {c->table->server->set.request_timeout_secs, 0};
	evtimer_add(c->deadline, &tv);
}

/* Handshake or request too slow: close (evhttp calls http_conn_closed). */
static void http_conn_deadline(evutil_socket_t fd, short what, void *ctx)
{
	struct http_conn *c = ctx;
	if (c->active == NULL)
		evhttp_connection_free(c->evcon);
}

static void http_conn_closed(struct evhttp_connection *evcon, void *ctx)
{
	struct http_conn *c = ctx;
	struct http_conn_table *t = c->table;
	for (struct http_conn **p = &t->by_evcon[http_conn_ptr_hash(evcon)]; *p != NULL;
	     p = &(*p)->hnext) {
		if (*p == c) {
			*p = c->hnext;
			break;
		}
	}
	http_conn_list_remove(&t->admitted, c);
	t->count--;
	http_conn_addr_release(t, c->addr);
	event_free(c->deadline);
	struct http_request *req = c->active;
	mem_free(c);
	if (req != NULL) {
		req->conn = NULL;
		if (req->gone != NULL)
			req->gone(req, req->gone_ctx);
	}
}

/* The IP of the socket's peer, "" if unknown. */
static void http_conn_peer_ip(struct bufferevent *bev, char *ip, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	ip[0] = '\0';
	int fd = (int)bufferevent_getfd(bev);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, (socklen_t)size);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, (socklen_t)size);
}

static void http_conn_admit_or_refuse(struct http_conn_table *t, struct http_conn *c)
{
	const struct http_server_settings *set = &t->server->set;
	void *arg = NULL;
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
	struct evhttp_connection *evcon = arg;
	char ip[INET6_ADDRSTRLEN];
	http_conn_peer_ip(c->bev, ip, sizeof(ip));
	struct http_addr *addr = http_conn_addr(t, ip, false);
	const char *refused = t->count >= set->max_connections                      ? "total"
			      : addr != NULL && addr->count >= set->max_per_address ? "per-address"
										    : NULL;
	if (refused != NULL || evcon == NULL) {
		mem_free(c);
		if (evcon != NULL)
			evhttp_connection_free(evcon);
		if (refused != NULL && set->refused != NULL)
			set->refused(ip, refused, t->server->ctx);
		return;
	}
	c->evcon = evcon;
	c->addr = addr != NULL ? addr : http_conn_addr(t, ip, true);
	c->addr->count++;
	t->count++;
	size_t h = http_conn_ptr_hash(evcon);
	c->hnext = t->by_evcon[h];
	t->by_evcon[h] = c;
	http_conn_list_add(&t->admitted, c);
	c->deadline = evtimer_new(t->server->base, http_conn_deadline, c);
	http_conn_arm(c);
	evhttp_connection_set_closecb(evcon, http_conn_closed, c);
}

static void http_conn_check(evutil_socket_t fd, short what, void *ctx)
{
	struct http_conn_table *t = ctx;
	while (t->unchecked != NULL) {
		struct http_conn *c = t->unchecked;
		http_conn_list_remove(&t->unchecked, c);
		http_conn_admit_or_refuse(t, c);
	}
}

struct bufferevent *http_conn_new(struct http_conn_table *t)
{
	struct http_conn *c = mem_new(struct http_conn);
	c->table = t;
	/* Never NULL: evhttp would serve that connection in plain text. */
	c->bev = tls_bufferevent_accept(t->server->tls, t->server->base, -1);
	http_conn_list_add(&t->unchecked, c);
	event_active(t->check, EV_TIMEOUT, 0);
	return c->bev;
}

static struct http_conn *http_conn_find(struct http_conn_table *t, struct evhttp_connection *evcon)
{
	for (struct http_conn *c = t->by_evcon[http_conn_ptr_hash(evcon)]; c != NULL;
	     c = c->hnext) {
		if (c->evcon == evcon)
			return c;
	}
	return NULL;
}

/* The answer has gone out: the next request has its own deadline. */
static void http_conn_answered(struct evhttp_request *req, void *ctx)
{
	struct http_conn *c = ctx;
	if (c->active != NULL)
		c->active->conn = NULL;
	c->active = NULL;
	http_conn_arm(c);
}

void http_conn_request_begin(struct http_conn_table *t, struct http_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req->req);
	struct http_conn *c = evcon == NULL ? NULL : http_conn_find(t, evcon);
	if (c == NULL)
		return;
	c->active = req;
	req->conn = c;
	evtimer_del(c->deadline);
	evhttp_request_set_on_complete_cb(req->req, http_conn_answered, c);
}

void http_conn_request_free(struct http_request *req)
{
	if (req->conn != NULL && req->conn->active == req)
		req->conn->active = NULL;
	req->conn = NULL;
}

static unsigned int http_conn_default_max(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur / 3 > HTTP_CONN_DEFAULT_MAX)
		return HTTP_CONN_DEFAULT_MAX;
	return rl.rlim_cur / 3 > 0 ? (unsigned int)(rl.rlim_cur / 3) : 1;
}

struct http_conn_table *http_conn_table_create(struct http_server *server)
{
	struct http_server_settings *set = &server->set;
	if (set->max_connections == 0)
		set->max_connections = http_conn_default_max();
	if (set->max_per_address == 0)
		set->max_per_address = HTTP_CONN_DEFAULT_PER_ADDRESS;
	if (set->request_timeout_secs == 0)
		set->request_timeout_secs = HTTP_CONN_DEFAULT_REQUEST_TIMEOUT;
	struct http_conn_table *t = mem_new(struct http_conn_table);
	t->server = server;
	t->check = event_new(server->base, -1, 0, http_conn_check, t);
	fd_reserve_init();
	return t;
}

/* After evhttp_free(), which closed every admitted connection (and so
 * called http_conn_closed() for each). */
void http_conn_table_destroy(struct http_conn_table **_t)
{
	struct http_conn_table *t = *_t;
	if (t == NULL)
		return;
	*_t = NULL;
	while (t->unchecked != NULL) {
		struct http_conn *c = t->unchecked;
		http_conn_list_remove(&t->unchecked, c);
		mem_free(c);
	}
	event_free(t->check);
	mem_free(t);
}

static void http_conn_accept_error(struct evconnlistener *listener, void *ctx)
{
	int err = EVUTIL_SOCKET_ERROR();
	if (err == EMFILE || err == ENFILE)
		(void)fd_reserve_refuse((int)evconnlistener_get_fd(listener), NULL);
}

void http_conn_listener_guard(struct evhttp_bound_socket *bound)
{
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound),
				    http_conn_accept_error);
}
