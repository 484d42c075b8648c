/* instance-audit: the instance's audit log (see the header). */
#include "instance-audit.h"
#include "instance.h"
#include "instance-calls.h"
#include "instance-rights.h"
#include "audit.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "str.h"
#include "tstr.h"
#include "worker-pool.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* An entry's details are cut to this when an administrator's call carries
 * a big argument (SyncUsers with a directory's users). */
#define AUDIT_DETAILS_MAX (16 * 1024)
#define AUDIT_NAME_MAX 256

struct instance_audit {
	char *path;
	struct audit *log;           /* opened at the first entry */
	struct worker_pool *syncer;  /* one fsync at a time */
	struct worker_pool *readers; /* listings and checks of the chain */
	bool sync_running, sync_again;
	struct json *held; /* entries waiting while frozen */
	atomic_bool stopping;
	uint64_t failures;
	bool failure_logged;
};

/* ---- what an entry says ---- */

static bool audit_secret_key(const char *key)
{
	static const char *const secret[] = {"password", "totp", "code", "secret", "token", NULL};
	for (const char *const *s = secret; *s != NULL; s++) {
		if (strcasestr(key, *s) != NULL)
			return true;
	}
	/* who and from where are the entry's own fields */
	return strcmp(key, "auditUser") == 0 || strcmp(key, "auditAddress") == 0 ||
	       strcmp(key, "remoteAddress") == 0;
}

/* A copy without secrets, at any depth. */
static struct json *audit_without_secrets(const struct json *value)
{
	if (json_kind(value) == JSON_KIND_ARRAY) {
		struct json *copy = json_new_array();
		for (size_t i = 0; i < json_count(value); i++)
			json_append(copy, audit_without_secrets(json_at(value, i)));
		return copy;
	}
	if (json_kind(value) != JSON_KIND_OBJECT)
		return json_clone(value);
	struct json *copy = json_new_object();
	for (void *it = json_iter(value); it != NULL; it = json_iter_next(value, it)) {
		if (!audit_secret_key(json_iter_key(it)))
			json_set(copy, json_iter_key(it),
				 audit_without_secrets(json_iter_value(it)));
	}
	return copy;
}

struct json *instance_audit_args(const struct instance_call *c)
{
	struct json *details = audit_without_secrets(c->args);
	/* an end user's own name is the entry's user */
	if ((c->def->flags & INSTANCE_CALL_CLIENT) != 0)
		(void)json_remove(details, "userName");
	char *text = json_serialize(details, false);
	if (strlen(text) > AUDIT_DETAILS_MAX) {
		/* keep which arguments came, not all they held */
		struct json *cut = json_new_object(), *keys = json_new_array();
		for (void *it = json_iter(details); it != NULL; it = json_iter_next(details, it))
			json_append(keys, json_new_string(json_iter_key(it)));
		json_set(cut, "arguments", keys);
		json_set_bool(cut, "truncated", true);
		json_unref(&details);
		details = cut;
	}
	mem_free(text);
	return details;
}

struct json *instance_audit_fetch(const struct instance_call *c)
{
	long long skip = 0;
	/* flags, envelopes and structures are not the message's content; the
	 * later pieces of one big message were counted with its first */
	if (!json_get_bool(c->args, "raw", false) || c->result == NULL ||
	    (json_get_int(c->args, "skip", &skip) == 1 && skip > 0))
		return NULL;
	/* the messages in the answer: IDs the user may not read are left out
	 * of it, and those past `consumed` are asked for again */
	const struct json *messages = json_get(c->result, "messages");
	struct json *read = json_new_array();
	for (size_t i = 0; messages != NULL && i < json_count(messages); i++) {
		long long id;
		if (json_get_int(json_at(messages, i), "id", &id) == 1)
			json_append(read, json_new_int(id));
	}
	if (json_count(read) == 0) {
		json_unref(&read);
		return NULL;
	}
	struct json *details = json_new_object();
	json_set(details, "ids", read);
	return details;
}

struct json *instance_audit_search(const struct instance_call *c)
{
	const char *query = json_get_string(c->args, "query");
	if (query == NULL || *query == '\0')
		return NULL;
	/* an end user searching their own mail is not news; an auditor's or
	 * administrator's search is what an audit must show */
	if ((c->def->flags & INSTANCE_CALL_CLIENT) != 0 &&
	    !instance_rights_has(c->user, "auditor") && !instance_rights_has(c->user, "admin"))
		return NULL;
	return instance_audit_args(c);
}

/* ---- writing ---- */

static void audit_failed(struct instance *inst, const char *error)
{
	struct instance_audit *a = inst->audit;
	a->failures++;
	/* one line, not one per call: a full disk would flood the log */
	if (!a->failure_logged)
		log_error(tstr_printf("instance=%s", inst->id), "audit: %s", error);
	a->failure_logged = true;
}

static void audit_sync_work(void *ctx)
{
	struct instance *inst = ctx;
	const char *error;
	(void)audit_sync(inst->audit->log, &error);
}

static void audit_sync_done(void *ctx, bool ran)
{
	struct instance *inst = ctx;
	struct instance_audit *a = inst->audit;
	a->sync_running = false;
	if (a->sync_again && !atomic_load(&a->stopping)) {
		a->sync_again = false;
		a->sync_running =
			worker_pool_submit(a->syncer, audit_sync_work, audit_sync_done, inst) == 0;
	}
}

static void audit_schedule_sync(struct instance *inst)
{
	struct instance_audit *a = inst->audit;
	const char *error;
	/* stopping: the last fsync is made on the way out */
	if (atomic_load(&a->stopping))
		return;
	if (a->syncer == NULL && worker_pool_create(inst->base, 1, 1, 1, &a->syncer, &error) < 0) {
		audit_failed(inst, error);
		return;
	}
	if (a->sync_running) {
		a->sync_again = true;
		return;
	}
	a->sync_running =
		worker_pool_submit(a->syncer, audit_sync_work, audit_sync_done, inst) == 0;
}

static int audit_ready(struct instance *inst, const char **error_r)
{
	struct instance_audit *a = inst->audit;
	if (a->log == NULL && audit_open_tail(a->path, &a->log, error_r) < 0)
		return -1;
	return 0;
}

static void audit_write(struct instance *inst, time_t when, const char *user, const char *address,
			const char *action, const struct json *details)
{
	const char *error;
	if (audit_ready(inst, &error) < 0 ||
	    audit_append_nosync(inst->audit->log, when, user, address, action, details, &error) <
		    0) {
		audit_failed(inst, error);
		return;
	}
	inst->audit->failure_logged = false;
	audit_schedule_sync(inst);
}

static const char *audit_bounded(const char *s)
{
	if (s == NULL || strlen(s) <= AUDIT_NAME_MAX)
		return s;
	return tstr_printf("%.*s...", AUDIT_NAME_MAX, s);
}

void instance_audit_record(struct instance *inst, const char *user, const char *address,
			   const char *action, const struct json *details)
{
	struct instance_audit *a = inst->audit;
	user = audit_bounded(user);
	address = audit_bounded(address);
	if (!inst->frozen) {
		audit_write(inst, time(NULL), user, address, action, details);
		return;
	}
	struct json *e = json_new_object();
	json_set_int(e, "time", (long long)time(NULL));
	json_set_string(e, "user", user);
	json_set_string(e, "address", address);
	json_set_string(e, "action", action);
	json_set(e, "details", details != NULL ? json_clone(details) : json_new_null());
	json_append(a->held, e);
}

static void audit_write_held(struct instance *inst)
{
	struct instance_audit *a = inst->audit;
	for (size_t i = 0; i < json_count(a->held); i++) {
		const struct json *e = json_at(a->held, i);
		long long when = 0;
		(void)json_get_int(e, "time", &when);
		const struct json *details = json_get(e, "details");
		audit_write(inst, (time_t)when, json_get_string(e, "user"),
			    json_get_string(e, "address"), json_get_string(e, "action"),
			    json_kind(details) == JSON_KIND_NULL ? NULL : details);
	}
	json_unref(&a->held);
	a->held = json_new_array();
}

void instance_audit_thawed(struct instance *inst)
{
	audit_write_held(inst);
}

bool instance_audit_full(struct instance *inst)
{
	return inst->frozen && json_count(inst->audit->held) >= INSTANCE_AUDIT_HELD_MAX;
}

void instance_audit_call(struct instance_call *c, const char *code)
{
	if (c->def->audit == NULL)
		return;
	struct json *details = c->def->audit(c);
	if (details == NULL)
		return;
	const char *user, *address;
	if ((c->def->flags & INSTANCE_CALL_CLIENT) != 0) {
		user = json_get_string(c->args, "userName");
		address = json_get_string(c->args, "remoteAddress");
	} else {
		/* the Management Server names its administrator */
		user = json_get_string(c->args, "auditUser");
		address = json_get_string(c->args, "auditAddress");
		if (user == NULL)
			user = "(administrator)";
	}
	if (code != NULL)
		json_set_string(details, "refused", code);
	instance_audit_record(c->inst, user, address, c->def->name, details);
	json_unref(&details);
}

void instance_audit_init(struct instance *inst)
{
	struct instance_audit *a = mem_new(struct instance_audit);
	a->path = mem_printf("%s/audit.log", inst->base_dir);
	a->held = json_new_array();
	atomic_init(&a->stopping, false);
	inst->audit = a;
}

void instance_audit_deinit(struct instance *inst)
{
	struct instance_audit *a = inst->audit;
	if (a == NULL)
		return;
	atomic_store(&a->stopping, true);
	worker_pool_destroy(&a->readers);
	worker_pool_destroy(&a->syncer);
	/* the process ends: what waited for a thaw is written now */
	inst->frozen = false;
	audit_write_held(inst);
	const char *error;
	if (a->log != NULL && audit_sync(a->log, &error) < 0)
		audit_failed(inst, error);
	audit_close(&a->log);
	json_unref(&a->held);
	mem_free(a->path);
	mem_free(a);
	inst->audit = NULL;
}

/* ---- reading ---- */

struct audit_listing {
	struct instance *inst;
	struct rpc_conn *conn;
	uint32_t id;
	char *path;
	long long size;
	bool verify_only;
	/* filters */
	char *user, *action, *since, *until, *text;
	unsigned long long limit, offset;
	/* the newest offset + limit matches, a ring */
	struct json **ring;
	size_t ring_len, ring_next;
	unsigned long long total;
	long lines;
	const char *error;
	const atomic_bool *stopping;
};

static void audit_listing_free(struct audit_listing *l)
{
	for (size_t i = 0; i < l->ring_len; i++)
		json_unref(&l->ring[i]);
	mem_free(l->ring);
	mem_free(l->path);
	mem_free(l->user);
	mem_free(l->action);
	mem_free(l->since);
	mem_free(l->until);
	mem_free(l->text);
	mem_free((char *)l->error);
	mem_free(l);
}

static bool audit_listing_matches(const struct audit_listing *l, const struct json *entry)
{
	const char *user = json_get_string(entry, "user");
	const char *action = json_get_string(entry, "action");
	const char *when = json_get_string(entry, "time");
	if (l->user != NULL && (user == NULL || strcasecmp(user, l->user) != 0))
		return false;
	if (l->action != NULL && (action == NULL || strcmp(action, l->action) != 0))
		return false;
	if (l->since != NULL && (when == NULL || strcmp(when, l->since) < 0))
		return false;
	/* until a date: that whole day */
	if (l->until != NULL && (when == NULL || (strcmp(when, l->until) > 0 &&
						  strncmp(when, l->until, strlen(l->until)) != 0)))
		return false;
	if (l->text == NULL)
		return true;
	char *details = json_serialize(json_get(entry, "details"), false);
	bool found = strcasestr(details, l->text) != NULL;
	mem_free(details);
	return found;
}

static bool audit_listing_entry(const struct json *entry, void *ctx)
{
	struct audit_listing *l = ctx;
	if (atomic_load(l->stopping))
		return false;
	if (!audit_listing_matches(l, entry))
		return true;
	l->total++;
	size_t cap = (size_t)(l->offset + l->limit);
	if (cap == 0)
		return true;
	if (l->ring_len < cap) {
		l->ring[l->ring_len++] = json_clone(entry);
	} else {
		json_unref(&l->ring[l->ring_next]);
		l->ring[l->ring_next] = json_clone(entry);
		l->ring_next = (l->ring_next + 1) % cap;
	}
	return true;
}

static void audit_listing_work(void *ctx)
{
	struct audit_listing *l = ctx;
	const char *error;
	if (l->size < 0 && access(l->path, F_OK) < 0)
		return; /* no entry yet */
	l->lines = audit_foreach(l->path, l->size, l->verify_only ? NULL : audit_listing_entry, l,
				 &error);
	if (l->lines < 0)
		l->error = mem_strdup(error);
}

/* Newest first, after skipping `offset` of the newest. */
static struct json *audit_listing_result(struct audit_listing *l)
{
	struct json *entries = json_new_array();
	size_t n = l->ring_len;
	for (size_t k = (size_t)l->offset; k < n; k++) {
		/* the k-th newest */
		size_t newest = l->ring_len < (size_t)(l->offset + l->limit)
					? n - 1 - k
					: (l->ring_next + n - 1 - k) % n;
		json_append(entries, json_ref(l->ring[newest]));
	}
	struct json *result = json_new_object();
	json_set_int(result, "total", (long long)l->total);
	json_set(result, "entries", entries);
	return result;
}

static void audit_listing_done(void *ctx, bool ran)
{
	struct audit_listing *l = ctx;
	if (atomic_load(l->stopping)) {
		audit_listing_free(l);
		return;
	}
	if (!ran) {
		rpc_conn_reply_error(l->conn, l->id, "busy", "try again in a moment");
	} else if (l->error != NULL) {
		rpc_conn_reply_error(l->conn, l->id, "damaged",
				     tstr_printf("the audit log does not verify: %s", l->error));
	} else if (l->verify_only) {
		struct json *result = json_new_object();
		json_set_int(result, "entries", l->lines);
		json_set_bool(result, "verified", true);
		rpc_conn_reply(l->conn, l->id, result);
	} else {
		rpc_conn_reply(l->conn, l->id, audit_listing_result(l));
	}
	audit_listing_free(l);
}

static char *audit_arg(const struct json *args, const char *key)
{
	const char *s = json_get_string(args, key);
	return s == NULL || *s == '\0' ? NULL : mem_strdup(s);
}

static int audit_start_reading(struct instance_call *c, bool verify_only)
{
	struct instance *inst = c->inst;
	struct instance_audit *a = inst->audit;
	long long limit = 100, offset = 0;
	(void)json_get_int(c->args, "limit", &limit);
	(void)json_get_int(c->args, "offset", &offset);
	if (limit < 1 || limit > INSTANCE_AUDIT_LIST_MAX || offset < 0 ||
	    offset + limit > INSTANCE_AUDIT_WINDOW_MAX) {
		c->error = tstr_printf("limit is 1 to %d, and offset + limit at most %d",
				       INSTANCE_AUDIT_LIST_MAX, INSTANCE_AUDIT_WINDOW_MAX);
		return -1;
	}
	if (a->readers == NULL &&
	    worker_pool_create(inst->base, 1, 1, 4, &a->readers, &c->error) < 0)
		return -1;
	/* frozen, nothing may be created: nothing written yet is nothing to read */
	if (a->log == NULL && !inst->frozen && audit_ready(inst, &c->error) < 0)
		return -1;
	struct audit_listing *l = mem_new(struct audit_listing);
	l->inst = inst;
	l->conn = c->conn;
	l->id = c->id;
	l->path = mem_strdup(a->path);
	/* what is written by now; a line being added meanwhile is not read */
	l->size = a->log != NULL ? audit_size(a->log) : -1;
	l->verify_only = verify_only;
	l->user = audit_arg(c->args, "user");
	l->action = audit_arg(c->args, "action");
	l->since = audit_arg(c->args, "since");
	l->until = audit_arg(c->args, "until");
	l->text = audit_arg(c->args, "text");
	l->limit = (unsigned long long)limit;
	l->offset = (unsigned long long)offset;
	l->ring = mem_alloc(sizeof(l->ring[0]) * (size_t)(offset + limit));
	l->stopping = &a->stopping;
	if (worker_pool_submit(a->readers, audit_listing_work, audit_listing_done, l) < 0) {
		audit_listing_free(l);
		c->code = "busy";
		c->error = "other readings of the audit log are under way: try again in a moment";
		return -1;
	}
	return INSTANCE_CALL_ANSWERED;
}

int instance_audit_get(struct instance_call *c)
{
	return audit_start_reading(c, false);
}

int instance_audit_client_get(struct instance_call *c)
{
	return audit_start_reading(c, false);
}

int instance_audit_verify(struct instance_call *c)
{
	return audit_start_reading(c, true);
}
