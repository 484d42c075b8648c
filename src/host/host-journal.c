#include "host-journal.h"
#include "host-instances.h"
#include "array.h"
#include "auth-salted.h"
#include "config.h"
#include "crypto.h"
#include "file.h"
#include "hash.h"
#include "hex.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "netaddr.h"
#include "rpc.h"
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
	struct json *map; /* lower-case address -> user name (recipients) */
	bool spool_swept; /* leftovers of an earlier Instance Host removed */
};

struct host_journal_network {
	int family;
	unsigned char addr[16];
	unsigned int bits;
};

struct host_journal_auth_user {
	char *name;
	unsigned char salt[AUTH_SALTED_SALT_LEN];
	unsigned char hash[CRYPTO_SHA256_LEN];
};

struct host_journal {
	struct event_base *base;
	struct host_instances *instances;
	char *config_dir;
	struct tls_context *tls_ctx; /* the host's certificate (borrowed) */
	struct tls_context *tls;     /* tls_ctx when STARTTLS is on, else NULL */
	struct json *set;            /* the settings as journal.json holds them */
	char *smtp_spec, *lmtp_spec; /* what the listeners were made from */
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

/* recipients: {address: userName}; each address routes to this instance
 * and goes to that user whatever the users' own addresses say. */
static int host_journal_add_map(struct host_journal *j, const struct json *map, struct json *into,
				size_t index, const char **error_r)
{
	if (map == NULL)
		return 0;
	if (json_kind(map) != JSON_KIND_OBJECT) {
		*error_r = "instances: recipients must be an object {address: userName}";
		return -1;
	}
	for (void *it = json_iter(map); it != NULL; it = json_iter_next(map, it)) {
		const char *address = json_iter_key(it);
		const char *user = json_string_of(json_iter_value(it));
		if (address[0] == '\0' || strchr(address, '@') == NULL || user == NULL ||
		    user[0] == '\0') {
			*error_r = tstr_printf("instances: recipients: '%s' needs an address "
					       "with @ and a user name",
					       address);
			return -1;
		}
		char *lower = host_journal_lower(address);
		void *old = hash_set(j->by_address, lower, (void *)(index + 1));
		json_set_string(into, lower, user);
		mem_free(lower);
		if (old != NULL) {
			*error_r = tstr_printf("instances: address '%s' given twice", address);
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
		for (size_t k = 0; k < i; k++) {
			if (strcmp(json_get_string(json_at(list, k), "instanceID"), id) == 0) {
				*error_r = tstr_printf("instances: %s given twice", id);
				return -1;
			}
		}
		struct host_journal_instance *ji = array_push(&j->inst);
		ji->id = mem_strdup(id);
		ji->catch_all = strcmp(unknown, "catch-all") == 0;
		ji->catch_all_user = ji->catch_all ? mem_strdup(catch_all) : NULL;
		ji->map = json_new_object();
		if (host_journal_add_names(j, json_get(o, "addresses"), j->by_address,
					   j->inst.count - 1, "address", error_r) < 0 ||
		    host_journal_add_names(j, json_get(o, "domains"), j->by_domain,
					   j->inst.count - 1, "domain", error_r) < 0 ||
		    host_journal_add_map(j, json_get(o, "recipients"), ji->map, j->inst.count - 1,
					 error_r) < 0)
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
	char *lower = host_journal_lower(address);
	const char *mapped = json_get_string(ji->map, lower);
	mem_free(lower);
	if (mapped != NULL)
		json_set_string(args, "userName", mapped);
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
		auth_salted_hash(u->salt, password, got);
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

/* A session the client did not end with QUIT: one line, with TLS's reason
 * when TLS ended it, and how many deliveries were still unanswered (each
 * may be archived and then sent again by the client: filed once, as a
 * duplicate). */
static void host_journal_log_end(struct host_journal_session *s, struct smtp_server_conn *conn)
{
	const char *reason = smtp_server_end_reason(conn);
	if (reason == NULL)
		return;
	const char *tls_text = NULL;
	if (smtp_server_is_tls(conn) &&
	    tls_bufferevent_failure(smtp_server_bufferevent(conn), &tls_text) == TLS_FAILURE_NONE)
		tls_text = NULL;
	size_t unanswered = 0;
	for (size_t i = 0; i < s->deliveries.count; i++)
		unanswered += !s->deliveries.items[i]->answered;
	log_info(s->log_ctx, "session ended: %s%s%s, %zu delivery(ies) unanswered", reason,
		 tls_text != NULL ? ", TLS: " : "", tls_text != NULL ? tls_text : "", unanswered);
}

static void host_journal_closed(struct smtp_server_conn *conn, void *ctx)
{
	struct host_journal_session *s = ctx;
	struct host_journal *j = s->journal;
	host_journal_log_end(s, conn);
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

static void host_journal_close_listeners(struct host_journal *j)
{
	for (size_t i = 0; i < j->listeners.count; i++)
		evconnlistener_free(j->listeners.items[i]);
	array_clear(&j->listeners);
	array_clear(&j->listener_lmtp);
}

static int host_journal_open_listeners(struct host_journal *j, const char *smtp, const char *lmtp,
				       const char **error_r)
{
	if (host_journal_listen(j, smtp, false, error_r) < 0 ||
	    host_journal_listen(j, lmtp, true, error_r) < 0) {
		host_journal_close_listeners(j);
		return -1;
	}
	mem_free(j->smtp_spec);
	mem_free(j->lmtp_spec);
	j->smtp_spec = smtp != NULL ? mem_strdup(smtp) : NULL;
	j->lmtp_spec = lmtp != NULL ? mem_strdup(lmtp) : NULL;
	return 0;
}

static struct host_journal *host_journal_alloc(struct event_base *base,
					       struct host_instances *instances)
{
	struct host_journal *j = mem_new(struct host_journal);
	j->base = base;
	j->instances = instances;
	j->by_address = hash_create();
	j->by_domain = hash_create();
	j->per_client = hash_create();
	return j;
}

static void host_journal_free_settings(struct host_journal *j)
{
	for (size_t i = 0; i < j->inst.count; i++) {
		mem_free(j->inst.items[i].id);
		mem_free(j->inst.items[i].catch_all_user);
		json_unref(&j->inst.items[i].map);
	}
	array_free(&j->inst);
	for (size_t i = 0; i < j->auth_users.count; i++)
		mem_free(j->auth_users.items[i].name);
	array_free(&j->auth_users);
	array_free(&j->networks);
	mem_free(j->hostname);
}

static bool host_journal_same(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* New settings in force at once: checked in full first (nothing changes
 * when they are bad); the listeners are made anew only when their
 * addresses changed. Sessions under way keep their instance indexes: an
 * instance's entry is never removed while the process runs, only routed
 * to no more. Listeners on privileged ports (below 1024) need a restart:
 * the privileges to bind them were dropped. */
static int host_journal_apply(struct host_journal *j, const struct json *set, bool save,
			      const char **error_r)
{
	struct host_journal *n = host_journal_alloc(j->base, j->instances);
	int ret = host_journal_parse(n, set, error_r);
	const char *smtp = json_get_string(set, "smtpListeners");
	const char *lmtp = json_get_string(set, "lmtpListeners");
	bool relisten =
		!host_journal_same(smtp, j->smtp_spec) || !host_journal_same(lmtp, j->lmtp_spec);
	char *old_smtp = j->smtp_spec != NULL ? mem_strdup(j->smtp_spec) : NULL;
	char *old_lmtp = j->lmtp_spec != NULL ? mem_strdup(j->lmtp_spec) : NULL;
	if (ret == 0 && relisten) {
		host_journal_close_listeners(j);
		if (host_journal_open_listeners(j, smtp, lmtp, error_r) < 0) {
			const char *ignored;
			if (host_journal_open_listeners(j, old_smtp, old_lmtp, &ignored) < 0)
				log_error(NULL,
					  "journal receiver: the old listeners are gone too: %s",
					  ignored);
			ret = -1;
		}
	}
	if (ret == 0 && save) {
		char *path = config_path(j->config_dir, HOST_JOURNAL_FILE);
		char *text = json_serialize(set, true);
		/* it holds password hashes: for the Instance Host only */
		ret = file_write_atomic(path, text, strlen(text), 0600, error_r);
		mem_free(text);
		mem_free(path);
		if (ret < 0 && relisten) {
			const char *ignored;
			host_journal_close_listeners(j);
			(void)host_journal_open_listeners(j, old_smtp, old_lmtp, &ignored);
		}
	}
	mem_free(old_smtp);
	mem_free(old_lmtp);
	if (ret < 0) {
		host_journal_destroy(&n);
		return -1;
	}
	/* the plain settings */
	char *hostname = j->hostname;
	j->hostname = n->hostname;
	n->hostname = hostname;
	j->tls = json_get_bool(set, "starttls", true) ? j->tls_ctx : NULL;
	j->auth_required = n->auth_required;
	j->max_message_size = n->max_message_size;
	j->max_recipients = n->max_recipients;
	j->max_connections = n->max_connections;
	j->max_per_client = n->max_per_client;
	j->timeout_secs = n->timeout_secs;
	array_clear(&j->networks);
	for (size_t i = 0; i < n->networks.count; i++)
		array_append(&j->networks, n->networks.items[i]);
	for (size_t i = 0; i < j->auth_users.count; i++)
		mem_free(j->auth_users.items[i].name);
	array_clear(&j->auth_users);
	for (size_t i = 0; i < n->auth_users.count; i++)
		array_append(&j->auth_users, n->auth_users.items[i]);
	array_clear(&n->auth_users); /* the names are j's now */
	/* the instances: j's indexes stay, n's are mapped onto them */
	size_t *index = mem_alloc(sizeof(*index) * (n->inst.count + 1));
	for (size_t i = 0; i < j->inst.count; i++) {
		struct host_journal_instance *ji = &j->inst.items[i];
		ji->catch_all = false;
		mem_free(ji->catch_all_user);
		json_unref(&ji->map);
	}
	for (size_t k = 0; k < n->inst.count; k++) {
		struct host_journal_instance *ni = &n->inst.items[k];
		size_t i = 0;
		while (i < j->inst.count && strcmp(j->inst.items[i].id, ni->id) != 0)
			i++;
		if (i == j->inst.count) {
			struct host_journal_instance *ji = array_push(&j->inst);
			ji->id = mem_strdup(ni->id);
		}
		struct host_journal_instance *ji = &j->inst.items[i];
		ji->catch_all = ni->catch_all;
		ji->catch_all_user = ni->catch_all_user;
		ni->catch_all_user = NULL;
		ji->map = ni->map;
		ni->map = NULL;
		index[k] = i;
	}
	struct hash *tables[2][2] = {{j->by_address, n->by_address}, {j->by_domain, n->by_domain}};
	for (size_t t = 0; t < 2; t++) {
		struct hash_iter it;
		const char *key;
		void *value;
		hash_iter_init(&it, tables[t][0]);
		while (hash_iter_next(&it, &key, &value) > 0)
			hash_iter_remove(&it);
		hash_iter_init(&it, tables[t][1]);
		while (hash_iter_next(&it, &key, &value) > 0)
			(void)hash_set(tables[t][0], key, (void *)(index[(size_t)value - 1] + 1));
	}
	mem_free(index);
	host_journal_destroy(&n);
	if (j->set != set) {
		json_unref(&j->set);
		j->set = json_clone(set);
	}
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
	int ret = exists < 0 ? -1 : 0;
	if (exists > 0) {
		ret = file_read_all(path, 1024 * 1024, &text, &len, error_r);
		if (ret == 0) {
			ret = json_parse(text, len, &set, error_r);
			mem_free(text);
		}
		if (ret == 0 && json_kind(set) != JSON_KIND_OBJECT) {
			*error_r = "expected a JSON object";
			ret = -1;
		}
	}
	if (ret < 0) {
		*error_r = tstr_printf("%s: %s", path, *error_r);
		json_unref(&set);
		mem_free(path);
		return -1;
	}
	if (set == NULL)
		set = json_new_object(); /* no listeners until the API sets some */
	struct host_journal *j = host_journal_alloc(base, instances);
	j->config_dir = mem_strdup(config_dir);
	j->tls_ctx = tls;
	j->set = json_ref(set);
	if (host_journal_apply(j, set, false, error_r) < 0) {
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
	host_journal_close_listeners(j);
	array_free(&j->listeners);
	array_free(&j->listener_lmtp);
	host_journal_free_settings(j);
	hash_destroy(&j->by_address);
	hash_destroy(&j->by_domain);
	hash_destroy(&j->per_client);
	json_unref(&j->set);
	mem_free(j->smtp_spec);
	mem_free(j->lmtp_spec);
	mem_free(j->config_dir);
	mem_free(j);
}

/* ---- the Management Server's calls (docs/api.md) ---- */

/* The keys of journal.json that SetJournal takes (the instances and the
 * SMTP AUTH logins have calls of their own). */
static const char *const host_journal_host_keys[] = {"smtpListeners",   "lmtpListeners",
						     "hostname",        "starttls",
						     "allowedNetworks", "authRequired",
						     "maxMessageSize",  "maxRecipients",
						     "maxConnections",  "maxConnectionsPerClient",
						     "timeoutSeconds",  NULL};

static bool host_journal_host_key(const char *key)
{
	for (size_t i = 0; host_journal_host_keys[i] != NULL; i++) {
		if (strcmp(host_journal_host_keys[i], key) == 0)
			return true;
	}
	return false;
}

/* The settings as the API shows them: SMTP AUTH logins by name only. */
static struct json *host_journal_public(const struct host_journal *j)
{
	struct json *out = json_clone(j->set);
	struct json *users = json_new_array();
	const struct json *list = json_get(j->set, "authUsers");
	for (size_t i = 0; i < json_count(list); i++)
		json_append(users, json_new_string(json_get_string(json_at(list, i), "userName")));
	json_set(out, "authUsers", users);
	if (json_get(out, "instances") == NULL)
		json_set(out, "instances", json_new_array());
	return out;
}

static int host_journal_set_host(struct json *set, const struct json *args, const char **error_r)
{
	const struct json *changes = json_get(args, "settings");
	if (json_kind(changes) != JSON_KIND_OBJECT) {
		*error_r = "settings: expected a JSON object";
		return -1;
	}
	for (void *it = json_iter(changes); it != NULL; it = json_iter_next(changes, it)) {
		const char *key = json_iter_key(it);
		struct json *value = json_iter_value(it);
		if (!host_journal_host_key(key)) {
			*error_r = tstr_printf("settings: '%s' is not a setting here%s", key,
					       strcmp(key, "instances") == 0
						       ? " (SetJournalSettings per instance)"
					       : strcmp(key, "authUsers") == 0
						       ? " (SetInstanceHostJournalAuthUser)"
						       : " (docs/sources.md lists them)");
			return -1;
		}
		enum json_kind want =
			strcmp(key, "starttls") == 0 || strcmp(key, "authRequired") == 0
				? JSON_KIND_BOOL
			: strcmp(key, "allowedNetworks") == 0 ? JSON_KIND_ARRAY
			: strncmp(key, "max", 3) == 0 || strcmp(key, "timeoutSeconds") == 0
				? JSON_KIND_INT
				: JSON_KIND_STRING;
		if (json_kind(value) != JSON_KIND_NULL && json_kind(value) != want) {
			*error_r = tstr_printf("settings: %s: expected %s", key,
					       want == JSON_KIND_BOOL    ? "true or false"
					       : want == JSON_KIND_ARRAY ? "an array of strings"
					       : want == JSON_KIND_INT   ? "a number"
									 : "a string");
			return -1;
		}
		if (json_kind(value) == JSON_KIND_NULL)
			(void)json_remove(set, key); /* back to the default */
		else
			json_set(set, key, json_clone(value));
	}
	return 0;
}

static int host_journal_set_auth_user(struct json *set, const struct json *args, bool remove,
				      const char **error_r)
{
	const char *user = json_get_string(args, "userName");
	const char *password = json_get_string(args, "password");
	if (user == NULL || user[0] == '\0' || strlen(user) > 256 || strchr(user, ':') != NULL) {
		*error_r = "userName: expected 1 to 256 characters without ':'";
		return -1;
	}
	if (!remove && (password == NULL || strlen(password) < 12 || strlen(password) > 1024)) {
		*error_r = "password: expected 12 to 1024 characters";
		return -1;
	}
	if (json_get(set, "authUsers") == NULL)
		json_set(set, "authUsers", json_new_array());
	struct json *list = json_get(set, "authUsers");
	bool found = false;
	for (size_t i = json_count(list); i > 0; i--) {
		if (strcmp(json_get_string(json_at(list, i - 1), "userName") ?: "", user) == 0) {
			(void)json_remove_at(list, i - 1);
			found = true;
		}
	}
	if (remove) {
		if (!found) {
			*error_r = tstr_printf("no SMTP AUTH login '%s'", user);
			return -1;
		}
		return 0;
	}
	json_append(list, auth_salted_entry(user, password));
	return 0;
}

static struct json *host_journal_instance_entry(const struct json *set, const char *id,
						size_t *index_r)
{
	const struct json *list = json_get(set, "instances");
	for (size_t i = 0; i < json_count(list); i++) {
		if (strcmp(json_get_string(json_at(list, i), "instanceID") ?: "", id) == 0) {
			if (index_r != NULL)
				*index_r = i;
			return json_at(list, i);
		}
	}
	return NULL;
}

static struct json *host_journal_get_instance(const struct json *set, const char *id)
{
	const struct json *entry = host_journal_instance_entry(set, id, NULL);
	struct json *out = json_new_object();
	json_set_string(out, "instanceID", id);
	const char *keys[] = {"addresses", "domains"};
	for (size_t i = 0; i < 2; i++) {
		const struct json *v = json_get(entry, keys[i]);
		json_set(out, keys[i], v != NULL ? json_clone(v) : json_new_array());
	}
	const struct json *map = json_get(entry, "recipients");
	json_set(out, "recipients", map != NULL ? json_clone(map) : json_new_object());
	const char *unknown = json_get_string(entry, "unknownRecipients");
	json_set_string(out, "unknownRecipients", unknown != NULL ? unknown : "refuse");
	json_set_string(out, "catchAllUser", json_get_string(entry, "catchAllUser"));
	return out;
}

static void host_journal_set_instance(struct json *set, const struct json *args)
{
	const char *id = json_get_string(args, "instanceID");
	if (json_get(set, "instances") == NULL)
		json_set(set, "instances", json_new_array());
	struct json *entry = host_journal_instance_entry(set, id, NULL);
	if (entry == NULL) {
		entry = json_new_object();
		json_set_string(entry, "instanceID", id);
		json_append(json_get(set, "instances"), entry);
	}
	static const char *const keys[] = {"addresses", "domains", "recipients",
					   "unknownRecipients", "catchAllUser"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct json *v = json_get(args, keys[i]);
		if (v == NULL)
			continue;
		if (json_kind(v) == JSON_KIND_NULL ||
		    (json_kind(v) == JSON_KIND_STRING && json_string_of(v)[0] == '\0'))
			(void)json_remove(entry, keys[i]);
		else
			json_set(entry, keys[i], json_clone(v));
	}
}

static void host_journal_call_get(struct host_journal *j, struct rpc_conn *conn, uint32_t id,
				  const struct json *args)
{
	rpc_conn_reply(conn, id, host_journal_public(j));
}

static void host_journal_call_get_instance(struct host_journal *j, struct rpc_conn *conn,
					   uint32_t id, const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	if (iid == NULL)
		rpc_conn_reply_error(conn, id, "bad-request", "instanceID: missing");
	else
		rpc_conn_reply(conn, id, host_journal_get_instance(j->set, iid));
}

static int host_journal_edit_host(struct host_journal *j, struct json *set, const struct json *args,
				  const char **error_r)
{
	return host_journal_set_host(set, args, error_r);
}

static int host_journal_edit_auth_user(struct host_journal *j, struct json *set,
				       const struct json *args, const char **error_r)
{
	return host_journal_set_auth_user(set, args, false, error_r);
}

static int host_journal_edit_delete_auth_user(struct host_journal *j, struct json *set,
					      const struct json *args, const char **error_r)
{
	return host_journal_set_auth_user(set, args, true, error_r);
}

static int host_journal_edit_instance(struct host_journal *j, struct json *set,
				      const struct json *args, const char **error_r)
{
	const char *iid = json_get_string(args, "instanceID");
	char *base_dir, *key_path;
	bool stopped;
	if (iid == NULL ||
	    host_instances_lookup(j->instances, iid, &base_dir, &key_path, &stopped) < 0) {
		*error_r = tstr_printf("no instance '%s' on this Instance Host",
				       iid != NULL ? iid : "");
		return -1;
	}
	mem_free(base_dir);
	mem_free(key_path);
	host_journal_set_instance(set, args);
	return 0;
}

/* The journal receiver's calls, one row each: a reader answers itself; an
 * editor changes a copy of the settings, which are then applied and
 * saved as one (and answered with the settings, or the instance's). */
static const struct host_journal_call {
	const char *name;
	void (*read)(struct host_journal *j, struct rpc_conn *conn, uint32_t id,
		     const struct json *args);
	int (*edit)(struct host_journal *j, struct json *set, const struct json *args,
		    const char **error_r);
	bool answers_instance;
} host_journal_calls[] = {
	{"GetJournal", host_journal_call_get, NULL, false},
	{"GetJournalInstance", host_journal_call_get_instance, NULL, false},
	{"SetJournal", NULL, host_journal_edit_host, false},
	{"SetJournalAuthUser", NULL, host_journal_edit_auth_user, false},
	{"DeleteJournalAuthUser", NULL, host_journal_edit_delete_auth_user, false},
	{"SetJournalInstance", NULL, host_journal_edit_instance, true},
};

bool host_journal_request(struct host_journal *j, struct rpc_conn *conn, uint32_t id,
			  const char *method, const struct json *args)
{
	const struct host_journal_call *call = NULL;
	for (size_t i = 0; i < sizeof(host_journal_calls) / sizeof(host_journal_calls[0]); i++) {
		if (strcmp(host_journal_calls[i].name, method) == 0)
			call = &host_journal_calls[i];
	}
	if (call == NULL)
		return false;
	if (call->read != NULL) {
		call->read(j, conn, id, args);
		return true;
	}
	const char *error = NULL;
	struct json *set = json_clone(j->set);
	int ret = call->edit(j, set, args, &error);
	if (ret == 0)
		ret = host_journal_apply(j, set, true, &error);
	json_unref(&set);
	if (ret < 0) {
		rpc_conn_reply_error(conn, id, "failed", error);
		return true;
	}
	log_info(NULL, "journal receiver: settings changed (%s)", method);
	rpc_conn_reply(conn, id,
		       call->answers_instance ? host_journal_get_instance(
							j->set, json_get_string(args, "instanceID"))
					      : host_journal_public(j));
	return true;
}
