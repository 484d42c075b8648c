/* instance-client: the calls a Client Access Server makes for end users
 * (docs/client-calls.md): logins, the folders and messages a user may read,
 * and message bytes for IMAP FETCH and downloads.
 *
 * Every call but ClientLogin names the user; the user is looked up again on
 * every call, so a deleted user or a removed login privilege takes effect at
 * once. What a user may read and do is instance-rights' to say; what they
 * may not read answers "not-found", the same as what does not exist. */
#include "instance-client.h"
#include "instance-audit.h"
#include "archive.h"
#include "array.h"
#include "auth-throttle.h"
#include "base64.h"
#include "catalog.h"
#include "crypto.h"
#include "hash.h"
#include "instance-archive.h"
#include "instance-calls.h"
#include "instance-rights.h"
#include "instance-users.h"
#include "instance.h"
#include "json.h"
#include "mem.h"
#include "rpc.h"
#include "search-query.h"
#include "str.h"
#include "tstr.h"
#include "worker-pool.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Message bytes per answer: no more messages are added once they reach
 * CLIENT_FETCH_BUDGET, so that the answers in flight for one FETCH (the
 * Client Access Server asks for two at a time) stay a few MB in every
 * process on the way. One message alone comes whole up to
 * CLIENT_FETCH_PIECE (well below RPC_MAX_FRAME with the JSON part; a
 * restore by mail takes only a whole message), a bigger one in pieces. */
#define CLIENT_FETCH_BUDGET (1u * 1024 * 1024)
#define CLIENT_FETCH_PIECE (12u * 1024 * 1024)
#define CLIENT_FETCH_MAX_IDS 1000
#define CLIENT_PAGE_MAX 500
/* Password checks: Argon2id takes 64 MiB and a few hundred ms of one CPU,
 * so one thread per CPU, at most 8; at most 64 wait (50 clients logging in
 * at once are all served), more are refused as "busy". */
#define INSTANCE_LOGIN_THREADS_MAX 8
#define INSTANCE_LOGIN_QUEUE_MAX 64
#define INSTANCE_LOGIN_THROTTLE_ENTRIES 10000

struct client_user {
	const struct json *view; /* borrowed from the instance_call */
};

struct client_call {
	struct instance *inst;
	const struct json *args;
	struct client_user user;
	struct archive *archive;
	struct catalog *cat;
	struct json *result;
	/* ClientFetch's message bytes: each message's buffer is referenced,
	 * not copied, and the chain moves into the link's output whole */
	struct evbuffer *blob;
	const char *code, *error;
};

static int client_fail(struct client_call *c, const char *code, const char *error)
{
	c->code = code;
	c->error = error;
	return -1;
}

static bool client_may_read(const struct client_user *u, const char *owner, const char *path)
{
	return instance_rights_folder(u->view, owner, path, "read");
}

static int client_open(struct client_call *c)
{
	const char *error;
	c->archive = instance_archive_for_reading(c->inst->archive, &error);
	if (c->archive == NULL)
		return client_fail(c, "failed", error);
	c->cat = archive_catalog(c->archive);
	return 0;
}

/* ---- folders ---- */

struct client_folders {
	struct client_call *c;
	struct json *list;
	uint32_t uid_validity;
	int64_t uid_next;
};

static int client_folder_each(const struct catalog_folder *f, void *context)
{
	struct client_folders *w = context;
	if (!client_may_read(&w->c->user, f->user, f->path))
		return 0;
	struct json *e = json_new_object();
	json_set_string(e, "owner", f->user);
	json_set_string(e, "path", f->path);
	json_set_int(e, "messages", (long long)f->messages);
	json_set_int(e, "bytes", (long long)f->bytes);
	json_set_int(e, "uidValidity", w->uid_validity);
	json_set_int(e, "uidNext", w->uid_next);
	json_append(w->list, e);
	return 0;
}

static int client_folders(struct client_call *c)
{
	const char *error;
	struct client_folders w = {.c = c, .list = json_new_array()};
	if (catalog_imap_ids(c->cat, &w.uid_validity, &w.uid_next, &error) < 0 ||
	    catalog_folders(c->cat, client_folder_each, &w, &error) < 0) {
		json_unref(&w.list);
		return client_fail(c, "failed", error);
	}
	c->result = w.list;
	return 0;
}

/* IMAP's INBOX is case-insensitive: an archived "Inbox" is it. */
struct client_inbox_walk {
	const char *owner;
	int64_t id;
};

static int client_inbox_each(const struct catalog_folder *f, void *context)
{
	struct client_inbox_walk *w = context;
	if (strcmp(f->user, w->owner) == 0 && strcasecmp(f->path, "INBOX") == 0) {
		w->id = f->id;
		return 1;
	}
	return 0;
}

static int client_find_inbox(struct client_call *c, const char *owner, int64_t *folder_id_r,
			     const char **error_r)
{
	struct client_inbox_walk w = {owner, -1};
	if (catalog_folder_list(c->cat, owner, client_inbox_each, &w, error_r) < 0)
		return -1;
	*folder_id_r = w.id;
	return w.id >= 0 ? 1 : 0;
}

/* The folder named by owner+path in args, if this user may read it. */
static int client_folder_arg(struct client_call *c, int64_t *folder_id_r)
{
	const char *owner = json_get_string(c->args, "owner");
	const char *path = json_get_string(c->args, "path");
	const char *error;
	if (owner == NULL || path == NULL)
		return client_fail(c, "bad-request", "owner and path are needed");
	if (!client_may_read(&c->user, owner, path))
		return client_fail(c, "not-found", "no such folder");
	int ret = catalog_folder_find(c->cat, owner, path, folder_id_r, &error);
	if (ret == 0 && strcasecmp(path, "INBOX") == 0)
		ret = client_find_inbox(c, owner, folder_id_r, &error);
	if (ret < 0)
		return client_fail(c, "failed", error);
	if (ret == 0)
		return client_fail(c, "not-found", "no such folder");
	return 0;
}

/* Ascending ids gathered into an IMAP sequence set ("1:5,9"). */
struct client_ids {
	struct str *set;
	int64_t first, last;
	uint64_t count;
};

static void client_ids_flush(struct client_ids *ids)
{
	if (ids->count == 0 || ids->first < 0)
		return;
	if (str_len(ids->set) > 0)
		str_append_c(ids->set, ',');
	char buf[48];
	int n = ids->first == ids->last ? snprintf(buf, sizeof(buf), "%lld", (long long)ids->first)
					: snprintf(buf, sizeof(buf), "%lld:%lld",
						   (long long)ids->first, (long long)ids->last);
	str_append_n(ids->set, buf, (size_t)n);
}

static int client_ids_add(int64_t id, void *context)
{
	struct client_ids *ids = context;
	if (ids->count > 0 && id == ids->last + 1) {
		ids->last = id;
	} else {
		client_ids_flush(ids);
		ids->first = ids->last = id;
	}
	ids->count++;
	return 0;
}

static int client_folder_uids(struct client_call *c)
{
	int64_t folder_id, uid_next;
	uint32_t uid_validity;
	const char *error;
	if (client_folder_arg(c, &folder_id) < 0)
		return -1;
	struct client_ids ids = {.set = str_create(256), .first = -1};
	if (catalog_imap_ids(c->cat, &uid_validity, &uid_next, &error) < 0 ||
	    catalog_folder_ids(c->cat, folder_id, client_ids_add, &ids, &error) < 0) {
		str_destroy(&ids.set);
		return client_fail(c, "failed", error);
	}
	client_ids_flush(&ids);
	c->result = json_new_object();
	json_set_int(c->result, "uidValidity", uid_validity);
	json_set_int(c->result, "uidNext", uid_next);
	json_set_int(c->result, "count", (long long)ids.count);
	json_set_string(c->result, "uids", str_c(ids.set));
	str_destroy(&ids.set);
	return 0;
}

/* ---- searches and listings ---- */

struct client_scope_walk {
	struct client_user *user;
	ARRAY(int64_t) ids;
};

static int client_scope_each(const struct catalog_folder *f, void *context)
{
	struct client_scope_walk *w = context;
	if (client_may_read(w->user, f->user, f->path))
		array_append(&w->ids, f->id);
	return 0;
}

/* The archives a walk lists, each once in the order first named: a user
 * with many folder rights must not cost a scan of the owners per right. */
struct client_owners {
	ARRAY(char *) list;
	struct hash *seen; /* owner -> its copy in list */
};

static void client_owners_add(struct client_owners *owners, const char *owner)
{
	if (hash_get(owners->seen, owner) != NULL)
		return;
	char *copy = mem_strdup(owner);
	hash_set(owners->seen, owner, copy);
	array_append(&owners->list, copy);
}

/* The readable folders of the user's own archive and of every archive a
 * folder right names, each listed through the folders table's index. */
static int client_scope_granted(struct client_call *c, struct client_scope_walk *w)
{
	const struct json *view = c->user.view;
	const struct json *rights = json_get(view, "folderRights");
	struct client_owners owners = {ARRAY_INIT, hash_create()};
	const char *own = json_get_string(view, "archiveName");
	const char *error = NULL;
	int ret = 0;
	if (own != NULL)
		client_owners_add(&owners, own);
	for (void *it = json_iter(rights); it != NULL; it = json_iter_next(rights, it)) {
		const char *key = json_iter_key(it);
		char *owner = mem_strndup(key, strcspn(key, "/"));
		client_owners_add(&owners, owner);
		mem_free(owner);
	}
	for (size_t i = 0; i < owners.list.count && ret == 0; i++)
		ret = catalog_folder_list(c->cat, owners.list.items[i], client_scope_each, w,
					  &error);
	for (size_t i = 0; i < owners.list.count; i++)
		mem_free(owners.list.items[i]);
	array_free(&owners.list);
	hash_destroy(&owners.seen);
	return ret < 0 ? client_fail(c, "failed", error) : 0;
}

/* The folders a search may look in: the one named, or all readable ones
 * (*all_r: every folder, for an auditor or admin). The folders come from the
 * folders table's index, so a search costs what its hits cost, not a walk
 * over the archive's messages. */
static int client_scope(struct client_call *c, int64_t **ids_r, size_t *count_r, bool *all_r)
{
	*ids_r = NULL;
	*count_r = 0;
	*all_r = false;
	if (json_get(c->args, "owner") != NULL || json_get(c->args, "path") != NULL) {
		int64_t id;
		if (client_folder_arg(c, &id) < 0)
			return -1;
		*ids_r = mem_new(int64_t);
		(*ids_r)[0] = id;
		*count_r = 1;
		return 0;
	}
	if (instance_rights_has(c->user.view, "auditor") ||
	    instance_rights_has(c->user.view, "admin")) {
		*all_r = true;
		return 0;
	}
	struct client_scope_walk w = {.user = &c->user};
	if (client_scope_granted(c, &w) < 0) {
		array_free(&w.ids);
		return -1;
	}
	*ids_r = w.ids.items;
	*count_r = w.ids.count;
	return 0;
}

static void client_hit(const struct catalog_hit *hit, void *context)
{
	struct json *list = context;
	struct json *e = json_new_object();
	json_set_int(e, "id", hit->id);
	json_set_int(e, "date", hit->date);
	json_set_int(e, "internalDate", hit->internal_date);
	json_set_string(e, "from", hit->from);
	json_set_string(e, "subject", hit->subject);
	json_set_int(e, "size", (long long)hit->size);
	json_set_string(e, "owner", hit->user);
	json_set_string(e, "folder", hit->folder);
	json_set_bool(e, "hasAttachment", hit->has_attachment);
	json_append(list, e);
}

static int client_messages(struct client_call *c)
{
	long long limit = 50, offset = 0;
	const char *query = json_get_string(c->args, "query");
	const char *error;
	if ((json_get(c->args, "limit") != NULL && (json_get_int(c->args, "limit", &limit) != 1 ||
						    limit < 0 || limit > CLIENT_PAGE_MAX)) ||
	    (json_get(c->args, "offset") != NULL &&
	     (json_get_int(c->args, "offset", &offset) != 1 || offset < 0)))
		return client_fail(
			c, "bad-request",
			tstr_printf("limit: 0 to %d; offset: 0 or more", CLIENT_PAGE_MAX));
	/* an empty query lists everything in scope, newest first */
	if (query == NULL || query[0] == '\0')
		query = "*";
	/* a query that does not parse is the user's to fix: its text says
	 * where; anything failing after that is the server's */
	struct search_query *parsed;
	if (search_query_parse(query, &parsed, &error) < 0)
		return client_fail(c, "bad-request", error);
	search_query_destroy(&parsed);
	int64_t *ids;
	size_t count;
	bool all;
	if (client_scope(c, &ids, &count, &all) < 0)
		return -1;
	struct catalog_scope scope = {ids, count};
	struct json *list = json_new_array();
	uint64_t total = 0;
	int ret = catalog_search_scoped(c->cat, query, all ? NULL : &scope, (uint64_t)limit,
					(uint64_t)offset, &total, client_hit, list, &error);
	mem_free(ids);
	if (ret < 0) {
		json_unref(&list);
		return client_fail(c, "failed", error);
	}
	c->result = json_new_object();
	json_set_int(c->result, "total", (long long)total);
	json_set(c->result, "messages", list);
	return 0;
}

static int client_search_uids(struct client_call *c)
{
	int64_t folder_id;
	const char *query = json_get_string(c->args, "query");
	const char *error;
	if (query == NULL)
		return client_fail(c, "bad-request", "query is needed");
	if (client_folder_arg(c, &folder_id) < 0)
		return -1;
	struct catalog_scope scope = {&folder_id, 1};
	struct client_ids ids = {.set = str_create(256), .first = -1};
	if (catalog_search_ids(c->cat, query, &scope, client_ids_add, &ids, &error) < 0) {
		str_destroy(&ids.set);
		return client_fail(c, "bad-request", error);
	}
	client_ids_flush(&ids);
	c->result = json_new_object();
	json_set_int(c->result, "count", (long long)ids.count);
	json_set_string(c->result, "uids", str_c(ids.set));
	str_destroy(&ids.set);
	return 0;
}

/* ---- message bytes ---- */

/* One message into the answer; 0 added, 1 the budget is spent (stop). */
/* The header's length, with the empty line that ends it. */
static size_t client_header_length(const unsigned char *data, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (data[i] == '\n' && data[i + 1] == '\n')
			return i + 2;
		if (data[i] == '\n' && i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

static void client_set_base64(struct json *e, const char *key, const char *text)
{
	char *b64 = base64_encode(text, strlen(text));
	json_set_string(e, key, b64);
	mem_free(b64);
}

/* A message buffer the answer referenced has been sent. */
static void client_blob_release(const void *data, size_t len, void *extra)
{
	mem_free(extra);
}

static int client_fetch_one(struct client_call *c, int64_t id, bool raw, bool imap,
			    bool headers_only, long long skip, struct json *list)
{
	struct catalog_message_meta meta;
	const char *error;
	int ret = catalog_message_meta(c->cat, id, &meta, &error);
	if (ret < 0)
		return client_fail(c, "failed", error);
	if (ret == 0 || !client_may_read(&c->user, meta.user, meta.path))
		return 0; /* left out: the caller sees it is not there */
	size_t held = c->blob == NULL ? 0 : evbuffer_get_length(c->blob);
	if (raw && held > 0 && held + meta.size > CLIENT_FETCH_BUDGET)
		return 1;
	/* only what a FETCH needs: every key is parsed and built again by
	 * the Instance Host and the Client Access Server, for every message */
	struct json *e = json_new_object();
	json_set_int(e, "id", id);
	json_set_int(e, "internalDate", meta.internal_date);
	json_append(list, e);
	if (imap) {
		struct archive_imap data;
		if (archive_message_imap(c->archive, id, &data, &error) != 1)
			return client_fail(c, "failed",
					   tstr_printf("message %lld: %s", (long long)id, error));
		/* base64: they carry a header's raw 8-bit bytes, which need
		 * not be UTF-8 and so cannot be JSON strings */
		client_set_base64(e, "envelope", data.envelope);
		client_set_base64(e, "bodystructure", data.bodystructure);
		client_set_base64(e, "body", data.body);
		json_set_int(e, "imapSize", (long long)data.size);
		archive_imap_free(&data);
	}
	if (!raw)
		return 0;
	unsigned char *data;
	size_t len;
	if (archive_read_message(c->archive, id, &data, &len, &error) != 1)
		return client_fail(c, "failed",
				   tstr_printf("message %lld: %s", (long long)id, error));
	if (headers_only)
		len = client_header_length(data, len);
	/* a message bigger than one answer comes in pieces: "skip" says where
	 * this piece starts, "partial" that more follows */
	size_t from = skip > 0 && (size_t)skip < len ? (size_t)skip : 0;
	size_t n = len - from > CLIENT_FETCH_PIECE ? CLIENT_FETCH_PIECE : len - from;
	json_set_int(e, "offset", (long long)held);
	json_set_int(e, "length", (long long)n);
	if (from + n < len)
		json_set_bool(e, "partial", true);
	if (n == 0 ||
	    evbuffer_add_reference(c->blob, data + from, n, client_blob_release, data) < 0)
		mem_free(data); /* nothing to send (or no memory for the reference) */
	return 0;
}

static int client_fetch(struct client_call *c)
{
	const struct json *ids = json_get(c->args, "ids");
	bool raw = json_get_bool(c->args, "raw", false);
	bool imap = json_get_bool(c->args, "imap", false);
	bool headers_only = json_get_bool(c->args, "headersOnly", false);
	long long skip = 0;
	if (json_kind(ids) != JSON_KIND_ARRAY || json_count(ids) > CLIENT_FETCH_MAX_IDS)
		return client_fail(c, "bad-request",
				   tstr_printf("ids: an array of at most %d message ids",
					       CLIENT_FETCH_MAX_IDS));
	if (json_get(c->args, "skip") != NULL &&
	    (json_get_int(c->args, "skip", &skip) != 1 || skip < 0 || json_count(ids) != 1))
		return client_fail(c, "bad-request", "skip: a byte offset, with one id");
	struct json *list = json_new_array();
	c->blob = evbuffer_new();
	int ret = 0;
	size_t i;
	catalog_read_begin_scan(c->cat);
	for (i = 0; ret == 0 && i < json_count(ids); i++) {
		const struct json *v = json_at(ids, i);
		long long id = json_int_of(v);
		if (json_kind(v) != JSON_KIND_INT) {
			ret = client_fail(c, "bad-request", "ids: message ids are integers");
			break;
		}
		ret = client_fetch_one(c, id, raw, imap, headers_only, skip, list);
	}
	catalog_read_end(c->cat);
	if (ret < 0) {
		json_unref(&list);
		return -1;
	}
	/* how many of the ids were dealt with: the rest did not fit */
	size_t consumed = ret == 1 ? i - 1 : i;
	c->result = json_new_object();
	json_set(c->result, "messages", list);
	json_set_int(c->result, "consumed", (long long)consumed);
	return 0;
}

/* ---- the calls (instance-calls.h) ---- */

/* Run fn for the call's user (checked by the dispatcher), on the archive
 * when `archive`, and hand its answer to the call. */
static int client_run(struct instance_call *call, bool archive, int (*fn)(struct client_call *c))
{
	struct client_call c = {.inst = call->inst, .args = call->args, .user.view = call->user};
	int ret = archive && client_open(&c) < 0 ? -1 : fn(&c);
	if (ret < 0) {
		call->code = c.code;
		call->error = c.error;
		json_unref(&c.result);
		if (c.blob != NULL)
			evbuffer_free(c.blob);
		return -1;
	}
	call->result = c.result;
	call->blob_buffer = c.blob;
	return 0;
}

static const char *client_user_name(const struct client_call *c)
{
	return json_get_string(c->user.view, "userName");
}

static int client_user(struct client_call *c)
{
	c->result = json_ref((struct json *)c->user.view);
	return 0;
}

static int client_app_passwords(struct client_call *c)
{
	c->result = instance_users_app_passwords(c->inst->users, client_user_name(c));
	return 0;
}

static int client_create_app_password(struct client_call *c)
{
	const char *error;
	if (instance_users_app_password_create(
		    c->inst->users, client_user_name(c), json_get_string(c->args, "password"),
		    json_get_string(c->args, "name"), &c->result, &error) < 0)
		return client_fail(c, "bad-request", error);
	return 0;
}

static int client_delete_app_password(struct client_call *c)
{
	const char *error;
	if (instance_users_app_password_delete(c->inst->users, client_user_name(c),
					       json_get_string(c->args, "name"), &error) < 0)
		return client_fail(c, "not-found", error);
	return 0;
}

int instance_client_user(struct instance_call *c)
{
	return client_run(c, false, client_user);
}

int instance_client_app_passwords(struct instance_call *c)
{
	return client_run(c, false, client_app_passwords);
}

int instance_client_create_app_password(struct instance_call *c)
{
	return client_run(c, false, client_create_app_password);
}

int instance_client_delete_app_password(struct instance_call *c)
{
	return client_run(c, false, client_delete_app_password);
}

int instance_client_folders(struct instance_call *c)
{
	return client_run(c, true, client_folders);
}

int instance_client_folder_uids(struct instance_call *c)
{
	return client_run(c, true, client_folder_uids);
}

int instance_client_messages(struct instance_call *c)
{
	return client_run(c, true, client_messages);
}

int instance_client_search_uids(struct instance_call *c)
{
	return client_run(c, true, client_search_uids);
}

int instance_client_fetch(struct instance_call *c)
{
	return client_run(c, true, client_fetch);
}

/* ---- logins: the password check runs on a worker thread ---- */

struct client_login {
	struct instance *inst;
	struct rpc_conn *conn;
	uint32_t id;
	char *user_name, *address, *totp, *service;
	struct instance_users_check *check;
};

/* Every checked login, its outcome and the service (imap, web, api): who
 * got in and who tried. Throttled or busy refusals were never checked and
 * are counted in the live statistics instead (an attacker's flood would
 * otherwise fill the log). */
static void client_login_audit(struct client_login *l, const char *outcome)
{
	struct json *details = json_new_object();
	json_set_string(details, "service", l->service);
	json_set_string(details, "outcome", outcome);
	instance_audit_record(l->inst, l->user_name, l->address, "ClientLogin", details);
	json_unref(&details);
}

static void client_login_free(struct client_login *l)
{
	instance_users_check_free(&l->check);
	mem_free(l->user_name);
	mem_free(l->address);
	mem_free(l->service);
	if (l->totp != NULL)
		crypto_wipe(l->totp, strlen(l->totp));
	mem_free(l->totp);
	mem_free(l);
}

/* Throttling in the instance too: it sees the logins of every Client
 * Access Server, and counts each attempt before its check. Without an
 * address (an older Client Access Server) the servers' own throttling
 * is all there is. */
static void client_login_throttle_end(struct client_login *l, enum auth_throttle_outcome outcome)
{
	if (l->address != NULL)
		auth_throttle_login_end(l->inst->login_throttle, l->user_name, l->address, outcome);
}

static void client_login_work(void *ctx)
{
	struct client_login *l = ctx;
	instance_users_check_run(l->check);
}

static void client_login_done(void *ctx, bool ran)
{
	struct client_login *l = ctx;
	struct instance *inst = l->inst;
	const char *code = "busy", *error = "the check was not made: try again";
	struct json *view = NULL;
	int ret = -1;
	if (inst->stopping) {
		client_login_free(l);
		return;
	}
	if (ran && instance_users_ready(inst, &error) == 0)
		ret = instance_users_login_finish(inst->users, l->check, l->totp, !inst->frozen,
						  &view, &code, &error);
	else if (ran)
		code = "failed";
	if (ran)
		client_login_audit(l, ret > 0 ? "ok" : code);
	if (ret > 0) {
		client_login_throttle_end(l, AUTH_THROTTLE_SUCCEEDED);
		rpc_conn_reply(l->conn, l->id, view);
	} else {
		/* mfa-required: the password was right and no code was tried */
		bool failed = strcmp(code, "auth-failed") == 0;
		client_login_throttle_end(l, failed ? AUTH_THROTTLE_FAILED
						    : AUTH_THROTTLE_NOT_CHECKED);
		rpc_conn_reply_error(l->conn, l->id, code, error);
	}
	client_login_free(l);
}

int instance_client_workers(struct instance *inst, const char **error_r)
{
	if (inst->logins != NULL)
		return 0;
	if (inst->login_throttle == NULL)
		inst->login_throttle = auth_throttle_create(INSTANCE_LOGIN_THROTTLE_ENTRIES);
	return worker_pool_create(inst->base, 0, INSTANCE_LOGIN_THREADS_MAX,
				  INSTANCE_LOGIN_QUEUE_MAX, &inst->logins, error_r);
}

int instance_client_login(struct instance_call *c)
{
	struct instance *inst = c->inst;
	struct rpc_conn *conn = c->conn;
	uint32_t id = c->id;
	const struct json *args = c->args;
	const char *name = json_get_string(args, "userName");
	const char *address = json_get_string(args, "remoteAddress");
	const char *totp = json_get_string(args, "totp");
	const char *error;
	unsigned int wait;
	if (instance_client_workers(inst, &error) < 0) {
		rpc_conn_reply_error(conn, id, "failed", error);
		return INSTANCE_CALL_ANSWERED;
	}
	if (address != NULL &&
	    auth_throttle_login_begin(inst->login_throttle, name, address, time(NULL), &wait) < 0) {
		inst->logins_throttled++;
		if (wait == 0) /* others from there are being checked */
			rpc_conn_reply_error(
				conn, id, "busy",
				"other logins are being checked: try again in a moment");
		else
			rpc_conn_reply_error(
				conn, id, "throttled",
				tstr_printf("too many failed logins: try again in %u seconds",
					    wait));
		return INSTANCE_CALL_ANSWERED;
	}
	struct client_login *l = mem_new(struct client_login);
	l->inst = inst;
	l->conn = conn;
	l->id = id;
	l->user_name = mem_strdup(name == NULL ? "" : name);
	l->address = address == NULL ? NULL : mem_strdup(address);
	l->totp = totp == NULL ? NULL : mem_strdup(totp);
	const char *service = json_get_string(args, "service");
	l->service = service == NULL ? NULL : mem_strdup(service);
	l->check =
		instance_users_login_prepare(inst->users, name, json_get_string(args, "password"),
					     json_get_string(args, "service"));
	if (l->check == NULL) {
		client_login_audit(l, "auth-failed");
		client_login_throttle_end(l, AUTH_THROTTLE_FAILED);
		rpc_conn_reply_error(conn, id, "auth-failed", "invalid user name or password");
		client_login_free(l);
		return INSTANCE_CALL_ANSWERED;
	}
	if (worker_pool_submit(inst->logins, client_login_work, client_login_done, l) < 0) {
		/* Not a wrong password: the client may try again at once. */
		inst->logins_busy++;
		client_login_throttle_end(l, AUTH_THROTTLE_NOT_CHECKED);
		rpc_conn_reply_error(conn, id, "busy",
				     "too many logins at once: try again in a moment");
		client_login_free(l);
	}
	return INSTANCE_CALL_ANSWERED; /* when the check is done */
}

struct json *instance_client_login_statistics(struct instance *inst)
{
	struct worker_pool_stats stats = {0};
	if (inst->logins != NULL)
		worker_pool_stats(inst->logins, &stats);
	struct json *s = json_new_object();
	json_set_int(s, "threads", stats.threads);
	json_set_int(s, "queued", stats.queued);
	json_set_int(s, "running", stats.running);
	json_set_int(s, "checked", (long long)stats.completed);
	json_set_int(s, "refusedBusy", (long long)inst->logins_busy);
	json_set_int(s, "refusedThrottled", (long long)inst->logins_throttled);
	return s;
}

void instance_client_stop(struct instance *inst)
{
	inst->stopping = true;
	worker_pool_destroy(&inst->logins);
	auth_throttle_destroy(&inst->login_throttle);
}
