#include "host-journal.h"
#include "host-instances.h"
#include "array.h"
#include "config.h"
#include "crypto.h"
#include "file.h"
#include "hash.h"
#include "hex.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "netaddr.h"
#include "smtp-server.h"
#include "tls.h"
#include "tstr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOST_JOURNAL_FILE "journal.json"
#define HOST_JOURNAL_SPOOL "journal-spool"
/* How long an instance may take to resolve a recipient / commit a message
 * before the client is told to try again later. */
#define HOST_JOURNAL_RESOLVE_SECS 30
#define HOST_JOURNAL_DELIVER_SECS 120

struct host_journal_instance {
	char *id;
	bool catch_all; /* unknown recipients go to catch_all_user */
	char *catch_all_user;
	bool spool_swept; /* leftovers of an earlier Instance Host removed */
};

struct host_journal_network {
	int family;
	unsigned char addr[16];
	unsigned int bits;
};

struct host_journal_auth_user {
	char *name;
	unsigned char salt[16];
	unsigned char hash[CRYPTO_SHA256_LEN];
};

struct host_journal {
	struct event_base *base;
	struct host_instances *instances;
	struct tls_context *tls;
	char *hostname;
	uint64_t max_message_size;
	unsigned int max_recipients, max_connections, max_per_client, timeout_secs;
	bool auth_required;
	ARRAY(struct host_journal_instance) inst;
	struct hash *by_address; /* lower-case address -> index + 1 */
	struct hash *by_domain;  /* lower-case domain -> index + 1 */
	ARRAY(struct host_journal_network) networks;
	ARRAY(struct host_journal_auth_user) auth_users;
	ARRAY(struct evconnlistener *) listeners;
	ARRAY(bool) listener_lmtp;
	unsigned int connections;
	struct hash *per_client; /* peer IP -> count */
	struct host_journal_session *sessions;
};

/* One recipient the session took: its instance and owner (archive name). */
struct host_journal_rcpt {
	size_t inst;
	char *owner;
};

/* The message on its way into one instance. Outlives its session when the
 * client goes away mid-commit: the answer still removes the spool file. */
struct host_journal_delivery {
	struct host_journal_session *session; /* NULL once the session is gone */
	struct host_journal *journal;
	size_t inst;
	int fd;
	char *path, *name;
	bool answered, ok;
	char *error;
};

struct host_journal_session {
	struct host_journal *journal;
	struct host_journal_session *next;
	struct smtp_server_conn *conn;
	char *peer_ip;
	char *log_ctx;
	bool lmtp;
	ARRAY(struct host_journal_rcpt) rcpts;
	ARRAY(struct host_journal_delivery *) deliveries;
	size_t waiting;                         /* deliveries not answered yet */
	struct host_journal_resolve *resolving; /* the RCPT being looked up */
	bool write_failed;
};

/* ---- settings ---- */

static int host_journal_parse_network(const char *text, struct host_journal_network *net,
				      const char **error_r)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", text);
	char *slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		net->bits = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		net->bits = 128;
	} else {
		*error_r = tstr_printf("allowedNetworks: '%s' is not ADDRESS[/BITS]", text);
		return -1;
	}
	if (slash != NULL) {
		char *end;
		unsigned long bits = strtoul(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || bits > net->bits) {
			*error_r = tstr_printf("allowedNetworks: bad prefix length in '%s'", text);
			return -1;
		}
		net->bits = (unsigned int)bits;
	}
	return 0;
}

static bool host_journal_network_match(const struct host_journal_network *net, int family,
				       const unsigned char *addr)
{
	if (family != net->family)
		return false;
	unsigned int full = net->bits / 8, rest = net->bits % 8;
	if (memcmp(addr, net->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (addr[full] & mask) == (net->addr[full] & mask);
}

static char *host_journal_lower(const char *s)
{
	char *copy = mem_strdup(s);
	for (char *p = copy; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return copy;
}

static int host_journal_int(const struct json *set, const char *key, long long def, long long max,
			    long long *value_r, const char **error_r)
{
	*value_r = def;
	if (json_get(set, key) == NULL)
		return 0;
	if (json_get_int(set, key, value_r) < 0 || *value_r < 1 || *value_r > max) {
		*error_r = tstr_printf("%s: expected a number from 1 to %lld", key, max);
		return -1;
	}
	return 0;
}

static int host_journal_add_names(struct host_journal *j, const struct json *list,
				  struct hash *into, size_t index, const char *what,
				  const char **error_r)
{
	for (size_t i = 0; i < json_count(list); i++) {
		const char *name = json_string_of(json_at(list, i));
		if (name == NULL || name[0] == '\0') {
			*error_r = tstr_printf("instances: %s must be strings", what);
			return -1;
		}
		char *lower = host_journal_lower(name);
		void *old = hash_set(into, lower, (void *)(index + 1));
		mem_free(lower);
		if (old != NULL) {
			*error_r = tstr_printf("instances: %s '%s' given twice", what, name);
			return -1;
		}
	}
	return 0;
}

static int host_journal_parse_instances(struct host_journal *j, const struct json *list,
					const char **error_r)
{
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json *o = json_at(list, i);
		const char *id = json_get_string(o, "instanceID");
		const char *unknown = json_get_string(o, "unknownRecipients");
		const char *catch_all = json_get_string(o, "catchAllUser");
		if (id == NULL || !host_instances_id_valid(id)) {
			*error_r = "instances: each needs a valid instanceID";
			return -1;
		}
		if (unknown == NULL)
			unknown = "refuse";
		if (strcmp(unknown, "refuse") != 0 && strcmp(unknown, "catch-all") != 0) {
			*error_r = tstr_printf("instances: unknownRecipients of %s: expected "
					       "'refuse' or 'catch-all'",
					       id);
			return -1;
		}
		if (strcmp(unknown, "catch-all") == 0 && (catch_all == NULL || catch_all[0] == 0)) {
			*error_r = tstr_printf("instances: %s: catch-all needs catchAllUser", id);
			return -1;
		}
		struct host_journal_instance *ji = array_push(&j->inst);
		ji->id = mem_strdup(id);
		ji->catch_all = strcmp(unknown, "catch-all") == 0;
		ji->catch_all_user = ji->catch_all ? mem_strdup(catch_all) : NULL;
		if (host_journal_add_names(j, json_get(o, "addresses"), j->by_address,
					   j->inst.count - 1, "address", error_r) < 0 ||
		    host_journal_add_names(j, json_get(o, "domains"), j->by_domain,
					   j->inst.count - 1, "domain", error_r) < 0)
			return -1;
	}
	return 0;
}

static int host_journal_parse_auth(struct host_journal *j, const struct json *list,
				   const char **error_r)
{
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json *o = json_at(list, i);
		const char *name = json_get_string(o, "userName");
		const char *salt = json_get_string(o, "passwordSalt");
		const char *hash = json_get_string(o, "passwordSHA256");
		struct host_journal_auth_user *u = array_push(&j->auth_users);
		u->name = mem_strdup(name != NULL ? name : "");
		if (name == NULL || salt == NULL || hash == NULL ||
		    hex_decode(salt, u->salt, sizeof(u->salt)) != (int)sizeof(u->salt) ||
		    hex_decode(hash, u->hash, sizeof(u->hash)) != (int)sizeof(u->hash)) {
			*error_r = "authUsers: each needs userName, passwordSalt (32 hex digits) "
				   "and passwordSHA256 (64 hex digits)";
			return -1;
		}
	}
	return 0;
}

static int host_journal_parse(struct host_journal *j, const struct json *set, const char **error_r)
{
	long long size, rcpts, conns, per_client, timeout;
	const char *hostname = json_get_string(set, "hostname");
	j->hostname = mem_strdup(hostname != NULL ? hostname : "localhost");
	j->auth_required = json_get_bool(set, "authRequired", false);
	if (host_journal_int(set, "maxMessageSize", 50ll * 1024 * 1024, 512ll * 1024 * 1024, &size,
			     error_r) < 0 ||
	    host_journal_int(set, "maxRecipients", 1000, 100000, &rcpts, error_r) < 0 ||
	    host_journal_int(set, "maxConnections", 200, 100000, &conns, error_r) < 0 ||
	    host_journal_int(set, "maxConnectionsPerClient", 20, 100000, &per_client, error_r) <
		    0 ||
	    host_journal_int(set, "timeoutSeconds", 300, 3600, &timeout, error_r) < 0)
		return -1;
	j->max_message_size = (uint64_t)size;
	j->max_recipients = (unsigned int)rcpts;
	j->max_connections = (unsigned int)conns;
	j->max_per_client = (unsigned int)per_client;
	j->timeout_secs = (unsigned int)timeout;
	const struct json *nets = json_get(set, "allowedNetworks");
	if (nets == NULL) {
		/* only this machine unless told otherwise */
		struct host_journal_network *n = array_push(&j->networks);
		(void)host_journal_parse_network("127.0.0.0/8", n, error_r);
		n = array_push(&j->networks);
		(void)host_journal_parse_network("::1/128", n, error_r);
	}
	for (size_t i = 0; i < json_count(nets); i++) {
		const char *text = json_string_of(json_at(nets, i));
		if (text == NULL ||
		    host_journal_parse_network(text, array_push(&j->networks), error_r) < 0) {
			if (text == NULL)
				*error_r = "allowedNetworks: expected strings";
			return -1;
		}
	}
	if (host_journal_parse_auth(j, json_get(set, "authUsers"), error_r) < 0 ||
	    host_journal_parse_instances(j, json_get(set, "instances"), error_r) < 0)
		return -1;
	if (j->auth_required && j->auth_users.count == 0) {
		*error_r = "authRequired: true needs authUsers";
		return -1;
	}
	return 0;
}

/* ---- recipients ---- */

/* The instance index an address belongs to, or -1. */
static long host_journal_route(struct host_journal *j, const char *address)
{
	char *lower = host_journal_lower(address);
	void *v = hash_get(j->by_address, lower);
	const char *at = strrchr(lower, '@');
	if (v == NULL && at != NULL)
		v = hash_get(j->by_domain, at + 1);
	mem_free(lower);
	return v == NULL ? -1 : (long)((size_t)v - 1);
}

struct host_journal_resolve {
	struct host_journal_session *session; /* NULL once it is gone */
	size_t inst;
	char *address;
};

static void host_journal_resolved(const struct json *result, const char *code, const char *text,
				  void *ctx)
{
	struct host_journal_resolve *r = ctx;
	struct host_journal_session *s = r->session;
	if (s != NULL) {
		s->resolving = NULL;
		const char *owner = json_get_string(result, "archiveName");
		if (code == NULL && owner != NULL) {
			struct host_journal_rcpt *rc = array_push(&s->rcpts);
			rc->inst = r->inst;
			rc->owner = mem_strdup(owner);
			smtp_server_reply(s->conn, "250 2.1.5 Ok");
		} else if (code != NULL && strcmp(code, "no-such-user") == 0) {
			smtp_server_reply(s->conn, tstr_printf("550 5.1.1 <%s>: no such user here",
							       r->address));
		} else {
			log_warning(s->log_ctx, "recipient <%s> not resolved: %s", r->address,
				    text != NULL ? text : "no archive name");
			smtp_server_reply(s->conn, "451 4.3.0 The archive cannot take this "
						   "recipient now, try again later");
		}
	}
	mem_free(r->address);
	mem_free(r);
}

static void host_journal_rcpt(struct smtp_server_conn *conn, const char *address, void *ctx)
{
	struct host_journal_session *s = ctx;
	struct host_journal *j = s->journal;
	long idx = host_journal_route(j, address);
	if (idx < 0) {
		smtp_server_reply(conn, tstr_printf("550 5.1.1 <%s>: no archive takes this address",
						    address));
		return;
	}
	const struct host_journal_instance *ji = &j->inst.items[idx];
	struct json *args = json_new_object();
	json_set_string(args, "address", address);
	if (ji->catch_all)
		json_set_string(args, "catchAllUser", ji->catch_all_user);
	struct host_journal_resolve *r = mem_new(struct host_journal_resolve);
	r->session = s;
	r->inst = (size_t)idx;
	r->address = mem_strdup(address);
	const char *error;
	/* one RCPT at a time per session: the server reads nothing else meanwhile */
	s->resolving = r;
	if (host_instances_call(j->instances, ji->id, "JournalResolve", args,
				HOST_JOURNAL_RESOLVE_SECS, host_journal_resolved, r, &error) < 0) {
		s->resolving = NULL;
		log_warning(s->log_ctx, "recipient <%s>: %s", address, error);
		smtp_server_reply(conn, "451 4.3.0 The archive for this recipient is not running, "
					"try again later");
		mem_free(r->address);
		mem_free(r);
	}
}

/* ---- the message ---- */

static void host_journal_delivery_free(struct host_journal_delivery *d)
{
	if (d->fd >= 0)
		close(d->fd);
	if (d->path != NULL)
		(void)unlink(d->path); /* the instance removed it if it took it */
	mem_free(d->path);
	mem_free(d->name);
	mem_free(d->error);
	mem_free(d);
}

static void host_journal_clear(struct host_journal_session *s)
{
	for (size_t i = 0; i < s->deliveries.count; i++) {
		struct host_journal_delivery *d = s->deliveries.items[i];
		if (d->answered || d->fd >= 0)
			host_journal_delivery_free(d);
		else
			d->session = NULL; /* its answer frees it */
	}
	array_clear(&s->deliveries);
	for (size_t i = 0; i < s->rcpts.count; i++)
		mem_free(s->rcpts.items[i].owner);
	array_clear(&s->rcpts);
	s->waiting = 0;
	s->write_failed = false;
}

/* Spool files an earlier Instance Host process left (it died while a
 * message came in: never answered 250, so the sender sends it again). Run
 * once per instance before this process spools there, so none of its own
 * files can be among them. */
static void host_journal_sweep(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "m-", 2) == 0 && len > 6 &&
		    strcmp(e->d_name + len - 4, ".eml") == 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

static int host_journal_open_spool(struct host_journal *j, struct host_journal_delivery *d,
				   const char **error_r)
{
	char *base_dir, *key_path;
	bool stopped;
	const char *id = j->inst.items[d->inst].id;
	if (host_instances_lookup(j->instances, id, &base_dir, &key_path, &stopped) < 0) {
		*error_r = tstr_printf("no instance %s here", id);
		return -1;
	}
	mem_free(key_path);
	char *dir = mem_strdup(tstr_printf("%s/%s", base_dir, HOST_JOURNAL_SPOOL));
	mem_free(base_dir);
	if (!j->inst.items[d->inst].spool_swept) {
		host_journal_sweep(dir);
		j->inst.items[d->inst].spool_swept = true;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = tstr_printf("%s: %s", dir, strerror(errno));
		mem_free(dir);
		return -1;
	}
	char *rand = crypto_random_hex(12);
	d->name = mem_strdup(tstr_printf("m-%s.eml", rand));
	mem_free(rand);
	d->path = mem_strdup(tstr_printf("%s/%s", dir, d->name));
	mem_free(dir);
	d->fd = open(d->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (d->fd < 0) {
		*error_r = tstr_printf("%s: %s", d->path, strerror(errno));
		mem_free(d->path);
		d->path = NULL;
		return -1;
	}
	return 0;
}

static int host_journal_data_begin(struct smtp_server_conn *conn, const char **reply_r, void *ctx)
{
	struct host_journal_session *s = ctx;
	/* one spool file per instance among the recipients */
	for (size_t i = 0; i < s->rcpts.count; i++) {
		bool have = false;
		for (size_t k = 0; k < s->deliveries.count; k++)
			have |= s->deliveries.items[k]->inst == s->rcpts.items[i].inst;
		if (have)
			continue;
		struct host_journal_delivery *d = mem_new(struct host_journal_delivery);
		d->journal = s->journal;
		d->session = s;
		d->inst = s->rcpts.items[i].inst;
		d->fd = -1;
		array_append(&s->deliveries, d);
		const char *error;
		if (host_journal_open_spool(s->journal, d, &error) < 0) {
			log_warning(s->log_ctx, "cannot spool: %s", error);
			*reply_r = "451 4.3.0 Cannot store the message now, try again later";
			return -1;
		}
	}
	return 0;
}

static int host_journal_write(int fd, const unsigned char *p, size_t len, const char **error_r)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = n < 0 ? strerror(errno) : "short write";
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int host_journal_data(struct smtp_server_conn *conn, const void *bytes, size_t len,
			     void *ctx)
{
	struct host_journal_session *s = ctx;
	for (size_t k = 0; k < s->deliveries.count; k++) {
		struct host_journal_delivery *d = s->deliveries.items[k];
		const char *error;
		if (host_journal_write(d->fd, bytes, len, &error) < 0) {
			log_warning(s->log_ctx, "cannot spool %s: %s", d->path, error);
			s->write_failed = true;
			return -1;
		}
	}
	return 0;
}

/* Every instance answered: tell the client. */
static void host_journal_answer(struct host_journal_session *s)
{
	static const char *const archived = "250 2.0.0 Archived";
	static const char *const not_archived = "451 4.3.0 Not archived, try again later";
	struct smtp_server_conn *conn = s->conn;
	if (s->lmtp) {
		/* the answers first: the last reply may end the transaction, or
		 * even the session (a pipelined QUIT) */
		size_t n = s->rcpts.count;
		const char **lines = mem_alloc(sizeof(*lines) * (n + 1));
		for (size_t i = 0; i < n; i++) {
			struct host_journal_delivery *d = NULL;
			for (size_t k = 0; k < s->deliveries.count; k++) {
				if (s->deliveries.items[k]->inst == s->rcpts.items[i].inst)
					d = s->deliveries.items[k];
			}
			lines[i] = d != NULL && d->ok ? archived : not_archived;
		}
		for (size_t i = 0; i < n; i++)
			smtp_server_reply(conn, lines[i]);
		mem_free(lines);
		return;
	}
	bool all = s->deliveries.count > 0;
	for (size_t k = 0; k < s->deliveries.count; k++)
		all &= s->deliveries.items[k]->ok;
	smtp_server_reply(conn, all ? archived : not_archived);
}

static void host_journal_delivered(const struct json *result, const char *code, const char *text,
				   void *ctx)
{
	struct host_journal_delivery *d = ctx;
	struct host_journal_session *s = d->session;
	d->answered = true;
	d->ok = code == NULL;
	if (s == NULL) {
		host_journal_delivery_free(d);
		return;
	}
	if (!d->ok)
		log_warning(s->log_ctx, "not archived in %s: %s: %s",
			    d->journal->inst.items[d->inst].id, code, text != NULL ? text : "");
	else
		log_info(s->log_ctx, "archived in %s for %lld user(s)",
			 d->journal->inst.items[d->inst].id,
			 json_int_of(json_get(result, "owners")));
	if (--s->waiting == 0)
		host_journal_answer(s); /* may reset (and free the deliveries) */
}

static void host_journal_data_end(struct smtp_server_conn *conn, void *ctx)
{
	struct host_journal_session *s = ctx;
	struct host_journal *j = s->journal;
	s->waiting = s->deliveries.count;
	/* close every spool file first: an answer may come at once */
	bool failed = s->write_failed;
	for (size_t k = 0; k < s->deliveries.count; k++) {
		struct host_journal_delivery *d = s->deliveries.items[k];
		if (close(d->fd) < 0)
			failed = true;
		d->fd = -1;
	}
	size_t count = s->deliveries.count;
	for (size_t k = 0; k < count && k < s->deliveries.count; k++) {
		struct host_journal_delivery *d = s->deliveries.items[k];
		const char *error = "the message could not be spooled";
		struct json *args = json_new_object();
		json_set_string(args, "file", d->name);
		struct json *owners = json_new_array();
		for (size_t i = 0; i < s->rcpts.count; i++) {
			const struct host_journal_rcpt *rc = &s->rcpts.items[i];
			/* each owner once: a catch-all user takes many recipients */
			bool seen = false;
			for (size_t e = 0; e < i && !seen; e++)
				seen = s->rcpts.items[e].inst == rc->inst &&
				       strcmp(s->rcpts.items[e].owner, rc->owner) == 0;
			if (rc->inst == d->inst && !seen)
				json_append(owners, json_new_string(rc->owner));
		}
		json_set(args, "owners", owners);
		if (failed || host_instances_call(j->instances, j->inst.items[d->inst].id,
						  "JournalDeliver", args, HOST_JOURNAL_DELIVER_SECS,
						  host_journal_delivered, d, &error) < 0) {
			if (failed)
				json_unref(&args);
			host_journal_delivered(NULL, "failed", error, d);
		}
	}
}

static void host_journal_reset(struct smtp_server_conn *conn, void *ctx)
{
	host_journal_clear(ctx);
}

static bool host_journal_auth(struct smtp_server_conn *conn, const char *user, const char *password,
			      void *ctx)
{
	struct host_journal_session *s = ctx;
	bool ok = false;
	for (size_t i = 0; i < s->journal->auth_users.count; i++) {
		const struct host_journal_auth_user *u = &s->journal->auth_users.items[i];
		unsigned char got[CRYPTO_SHA256_LEN];
		struct crypto_sha256_ctx *h = crypto_sha256_create();
		crypto_sha256_update(h, u->salt, sizeof(u->salt));
		crypto_sha256_update(h, password, strlen(password));
		crypto_sha256_finish(&h, got);
		/* every entry is hashed: timing does not tell names apart */
		if (strcmp(u->name, user) == 0 && crypto_equal(got, u->hash, sizeof(got)))
			ok = true;
	}
	log_info(s->log_ctx, "AUTH %s for %s", ok ? "accepted" : "refused", user);
	return ok;
}

static struct bufferevent *host_journal_starttls(struct smtp_server_conn *conn,
						 struct bufferevent *plain, void *ctx)
{
	struct host_journal_session *s = ctx;
	return s->journal->tls == NULL ? NULL : tls_bufferevent_starttls(s->journal->tls, plain);
}

static void host_journal_closed(struct smtp_server_conn *conn, void *ctx)
{
	struct host_journal_session *s = ctx;
	struct host_journal *j = s->journal;
	host_journal_clear(s);
	if (s->resolving != NULL)
		s->resolving->session = NULL;
	for (struct host_journal_session **p = &j->sessions; *p != NULL; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	j->connections--;
	size_t n = (size_t)hash_get(j->per_client, s->peer_ip);
	if (n <= 1)
		(void)hash_remove(j->per_client, s->peer_ip);
	else
		(void)hash_set(j->per_client, s->peer_ip, (void *)(n - 1));
	array_free(&s->rcpts);
	array_free(&s->deliveries);
	mem_free(s->peer_ip);
	mem_free(s->log_ctx);
	mem_free(s);
}

static const struct smtp_server_callbacks host_journal_callbacks = {
	.rcpt = host_journal_rcpt,
	.data_begin = host_journal_data_begin,
	.data = host_journal_data,
	.data_end = host_journal_data_end,
	.reset = host_journal_reset,
	.auth = host_journal_auth,
	.starttls = host_journal_starttls,
	.closed = host_journal_closed,
};

/* ---- connections ---- */

static bool host_journal_allowed(struct host_journal *j, const struct sockaddr *sa)
{
	const unsigned char *addr;
	int family = sa->sa_family;
	unsigned char mapped[4];
	if (family == AF_INET) {
		addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		addr = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
			memcpy(mapped, addr + 12, 4);
			addr = mapped;
			family = AF_INET;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < j->networks.count; i++) {
		if (host_journal_network_match(&j->networks.items[i], family, addr))
			return true;
	}
	return false;
}

/* Refuse a connection with one line, without a session. */
static void host_journal_refuse(struct host_journal *j, evutil_socket_t fd, const char *line)
{
	const char *text = tstr_printf("%s\r\n", line);
	/* best effort, non-blocking: the client may not be reading */
	(void)!send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void host_journal_accept(struct evconnlistener *listener, evutil_socket_t fd,
				struct sockaddr *sa, int socklen, void *ctx)
{
	struct host_journal *j = ctx;
	const char *peer = netaddr_peer_str(fd);
	char *ip = mem_strdup(peer);
	char *colon = strrchr(ip, ':');
	if (colon != NULL)
		*colon = '\0';
	size_t per_client = (size_t)hash_get(j->per_client, ip);
	bool lmtp = false;
	for (size_t i = 0; i < j->listeners.count; i++) {
		if (j->listeners.items[i] == listener)
			lmtp = j->listener_lmtp.items[i];
	}
	if (!host_journal_allowed(j, sa)) {
		log_warning(tstr_printf("journal client=%s", peer), "refused: not an allowed "
								    "network");
		host_journal_refuse(j, fd, "554 5.7.1 Your address may not send journal mail here");
	} else if (j->connections >= j->max_connections) {
		log_warning(tstr_printf("journal client=%s", peer),
			    "refused: too many connections");
		host_journal_refuse(j, fd, "421 4.7.0 Too many connections, try again later");
	} else if (per_client >= j->max_per_client) {
		log_warning(tstr_printf("journal client=%s", peer),
			    "refused: too many connections from this client");
		host_journal_refuse(j, fd,
				    "421 4.7.0 Too many connections from your address, try "
				    "again later");
	} else {
		struct host_journal_session *s = mem_new(struct host_journal_session);
		s->journal = j;
		s->peer_ip = ip;
		s->lmtp = lmtp;
		s->log_ctx = mem_strdup(
			tstr_printf("journal %s client=%s", lmtp ? "lmtp" : "smtp", peer));
		s->next = j->sessions;
		j->sessions = s;
		j->connections++;
		(void)hash_set(j->per_client, ip, (void *)(per_client + 1));
		evutil_make_socket_nonblocking(fd);
		struct bufferevent *bev =
			bufferevent_socket_new(j->base, fd, BEV_OPT_CLOSE_ON_FREE);
		const struct smtp_server_settings set = {
			.lmtp = lmtp,
			.hostname = j->hostname,
			.max_message_size = j->max_message_size,
			.max_recipients = j->max_recipients,
			.timeout_secs = j->timeout_secs,
			.starttls = j->tls != NULL,
			.auth = j->auth_users.count > 0,
			.auth_required = j->auth_required,
		};
		s->conn = smtp_server_conn_create(bev, &set, &host_journal_callbacks, s);
		return;
	}
	mem_free(ip);
}

static int host_journal_listen(struct host_journal *j, const char *spec, bool lmtp,
			       const char **error_r)
{
	struct netaddr_listener *list;
	size_t count;
	if (spec == NULL)
		return 0;
	if (netaddr_parse_listeners(spec, &list, &count, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		int fd = netaddr_listen(&list[i], error_r);
		if (fd < 0) {
			mem_free(list);
			return -1;
		}
		struct evconnlistener *l =
			evconnlistener_new(j->base, host_journal_accept, j,
					   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
		array_append(&j->listeners, l);
		array_append(&j->listener_lmtp, lmtp);
		log_info(NULL, "journal receiver: %s on %s", lmtp ? "LMTP" : "SMTP",
			 netaddr_listener_str(&list[i]));
	}
	mem_free(list);
	return 0;
}

int host_journal_create(struct event_base *base, const char *config_dir,
			struct host_instances *instances, struct tls_context *tls,
			struct host_journal **journal_r, const char **error_r)
{
	char *path = config_path(config_dir, HOST_JOURNAL_FILE);
	char *text;
	size_t len;
	struct json *set = NULL;
	*journal_r = NULL;
	int exists = file_exists(path, error_r);
	if (exists <= 0) {
		mem_free(path);
		return exists;
	}
	int ret = file_read_all(path, 1024 * 1024, &text, &len, error_r);
	if (ret == 0) {
		ret = json_parse(text, len, &set, error_r);
		mem_free(text);
	}
	if (ret < 0) {
		*error_r = tstr_printf("%s: %s", path, *error_r);
		mem_free(path);
		return -1;
	}
	struct host_journal *j = mem_new(struct host_journal);
	j->base = base;
	j->instances = instances;
	j->tls = json_get_bool(set, "starttls", true) ? tls : NULL;
	j->by_address = hash_create();
	j->by_domain = hash_create();
	j->per_client = hash_create();
	if (host_journal_parse(j, set, error_r) < 0 ||
	    host_journal_listen(j, json_get_string(set, "smtpListeners"), false, error_r) < 0 ||
	    host_journal_listen(j, json_get_string(set, "lmtpListeners"), true, error_r) < 0) {
		*error_r = tstr_printf("%s: %s", path, *error_r);
		ret = -1;
		host_journal_destroy(&j);
	}
	json_unref(&set);
	mem_free(path);
	*journal_r = j;
	return ret;
}

void host_journal_destroy(struct host_journal **journal)
{
	struct host_journal *j = *journal;
	if (j == NULL)
		return;
	*journal = NULL;
	while (j->sessions != NULL)
		smtp_server_conn_close(j->sessions->conn);
	for (size_t i = 0; i < j->listeners.count; i++)
		evconnlistener_free(j->listeners.items[i]);
	array_free(&j->listeners);
	array_free(&j->listener_lmtp);
	for (size_t i = 0; i < j->inst.count; i++) {
		mem_free(j->inst.items[i].id);
		mem_free(j->inst.items[i].catch_all_user);
	}
	array_free(&j->inst);
	for (size_t i = 0; i < j->auth_users.count; i++)
		mem_free(j->auth_users.items[i].name);
	array_free(&j->auth_users);
	array_free(&j->networks);
	hash_destroy(&j->by_address);
	hash_destroy(&j->by_domain);
	hash_destroy(&j->per_client);
	mem_free(j->hostname);
	mem_free(j);
}
