/* instance-client: the calls a Client Access Server makes for end users
 * (docs/client-calls.md): logins, the folders and messages a user may read,
 * and message bytes for IMAP FETCH and downloads.
 *
 * Every call but ClientLogin names the user; the user is looked up again on
 * every call, so a deleted user or a removed login privilege takes effect at
 * once. What a user may read and do is instance-rights' to say; what they
 * may not read answers "not-found", the same as what does not exist. */
#include "instance-client.h"
#include "archive.h"
#include "auth-throttle.h"
#include "base64.h"
#include "catalog.h"
#include "crypto.h"
#include "instance-archive.h"
#include "instance-client-web.h"
#include "instance-export.h"
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

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Message bytes per answer: well below RPC_MAX_FRAME with the JSON part. */
#define CLIENT_FETCH_BUDGET (12u * 1024 * 1024)
#define CLIENT_FETCH_MAX_IDS 1000
#define CLIENT_PAGE_MAX 500
/* Password checks: Argon2id takes 64 MiB and a few hundred ms of one CPU,
 * so one thread per CPU, at most 8; at most 64 wait (50 clients logging in
 * at once are all served), more are refused as "busy". */
#define INSTANCE_LOGIN_THREADS_MAX 8
#define INSTANCE_LOGIN_QUEUE_MAX 64
#define INSTANCE_LOGIN_THROTTLE_ENTRIES 10000

struct client_user {
	struct json *view;
};

struct client_call {
	struct instance *inst;
	const struct json *args;
	struct client_user user;
	struct archive *archive;
	struct catalog *cat;
	struct json *result;
	struct str *blob;
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
	int64_t *ids;
	size_t count;
};

static int client_scope_each(const struct catalog_folder *f, void *context)
{
	struct client_scope_walk *w = context;
	if (client_may_read(w->user, f->user, f->path)) {
		w->ids = mem_realloc(w->ids, (w->count + 1) * sizeof(*w->ids));
		w->ids[w->count++] = f->id;
	}
	return 0;
}

/* Whether the walk has listed owner's folders already. */
static bool client_scope_walked(const char *const *owners, size_t count, const char *owner)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(owners[i], owner) == 0)
			return true;
	}
	return false;
}

/* The readable folders of the user's own archive and of every archive a
 * folder right names, each listed through the folders table's index. */
static int client_scope_granted(struct client_call *c, struct client_scope_walk *w)
{
	const struct json *view = c->user.view;
	const struct json *rights = json_get(view, "folderRights");
	size_t cap = json_count(rights) + 1, count = 0;
	const char **owners = mem_calloc(cap, sizeof(*owners));
	char **keys = mem_calloc(cap, sizeof(*keys));
	const char *own = json_get_string(view, "archiveName");
	const char *error = NULL;
	int ret = 0;
	if (own != NULL)
		owners[count++] = own;
	for (void *it = json_iter(rights); it != NULL; it = json_iter_next(rights, it)) {
		const char *key = json_iter_key(it);
		char *owner = mem_strndup(key, strcspn(key, "/"));
		if (client_scope_walked(owners, count, owner) || count == cap) {
			mem_free(owner);
			continue;
		}
		keys[count] = owner;
		owners[count++] = owner;
	}
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = catalog_folder_list(c->cat, owners[i], client_scope_each, w, &error);
	for (size_t i = 0; i < cap; i++)
		mem_free(keys[i]);
	mem_free(keys);
	mem_free(owners);
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
		mem_free(w.ids);
		return -1;
	}
	*ids_r = w.ids;
	*count_r = w.count;
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
	if (raw && str_len(c->blob) > 0 && str_len(c->blob) + meta.size > CLIENT_FETCH_BUDGET)
		return 1;
	struct json *e = json_new_object();
	json_set_int(e, "id", id);
	json_set_int(e, "size", (long long)meta.size);
	json_set_int(e, "internalDate", meta.internal_date);
	json_set_string(e, "owner", meta.user);
	json_set_string(e, "folder", meta.path);
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
	size_t n = len - from > CLIENT_FETCH_BUDGET ? CLIENT_FETCH_BUDGET : len - from;
	json_set_int(e, "offset", (long long)str_len(c->blob));
	json_set_int(e, "length", (long long)n);
	json_set_int(e, "skip", (long long)from);
	json_set_bool(e, "partial", from + n < len);
	str_append_n(c->blob, data + from, n);
	mem_free(data);
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
	c->blob = str_create(raw ? 64 * 1024 : 16);
	int ret = 0;
	size_t i;
	catalog_read_begin(c->cat);
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

/* ---- dispatch ---- */

static int client_app_passwords(struct client_call *c, const char *method)
{
	const char *user = json_get_string(c->user.view, "userName");
	const char *error;
	if (strcmp(method, "ClientAppPasswords") == 0) {
		c->result = instance_users_app_passwords(c->inst->users, user);
		return 0;
	}
	if (strcmp(method, "ClientCreateAppPassword") == 0) {
		if (instance_users_app_password_create(
			    c->inst->users, user, json_get_string(c->args, "password"),
			    json_get_string(c->args, "name"), &c->result, &error) < 0)
			return client_fail(c, "bad-request", error);
		return 0;
	}
	if (instance_users_app_password_delete(c->inst->users, user,
					       json_get_string(c->args, "name"), &error) < 0)
		return client_fail(c, "not-found", error);
	return 0;
}

static int client_dispatch(struct client_call *c, const char *method)
{
	c->user.view =
		instance_users_client_view(c->inst->users, json_get_string(c->args, "userName"));
	if (c->user.view == NULL)
		return client_fail(c, "auth-failed", "the session has ended: log in again");
	bool changes = strcmp(method, "ClientCreateAppPassword") == 0 ||
		       strcmp(method, "ClientDeleteAppPassword") == 0;
	if (changes && c->inst->frozen)
		return client_fail(c, "frozen",
				   "the archive is frozen for maintenance: try again later");
	if (changes || strcmp(method, "ClientAppPasswords") == 0)
		return client_app_passwords(c, method);
	if (strcmp(method, "ClientUser") == 0) {
		c->result = json_ref(c->user.view);
		return 0;
	}
	if (client_open(c) < 0)
		return -1;
	if (strcmp(method, "ClientFolders") == 0)
		return client_folders(c);
	if (strcmp(method, "ClientFolderUids") == 0)
		return client_folder_uids(c);
	if (strcmp(method, "ClientMessages") == 0)
		return client_messages(c);
	if (strcmp(method, "ClientSearchUids") == 0)
		return client_search_uids(c);
	if (strcmp(method, "ClientFetch") == 0)
		return client_fetch(c);
	return client_fail(c, "unknown-method",
			   tstr_printf("an instance takes no call '%s'", method));
}

/* Exports (instance-export.c), for the user named in args; true if the
 * call was one (it is then answered). */
static bool client_export(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			  const char *method, const struct json *args)
{
	if (strncmp(method, "ClientExport", 12) != 0)
		return false;
	struct json *user =
		instance_users_client_view(inst->users, json_get_string(args, "userName"));
	if (user == NULL) {
		rpc_conn_reply_error(conn, id, "auth-failed",
				     "the session has ended: log in again");
		return true;
	}
	bool handled = instance_export_call(inst, conn, id, method, args, user);
	json_unref(&user);
	return handled;
}

/* ---- logins: the password check runs on a worker thread ---- */

struct client_login {
	struct instance *inst;
	struct rpc_conn *conn;
	uint32_t id;
	char *user_name, *address, *totp;
	struct instance_users_check *check;
};

static void client_login_free(struct client_login *l)
{
	instance_users_check_free(&l->check);
	mem_free(l->user_name);
	mem_free(l->address);
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

static int client_login_pool(struct instance *inst, const char **error_r)
{
	if (inst->logins != NULL)
		return 0;
	if (inst->login_throttle == NULL)
		inst->login_throttle = auth_throttle_create(INSTANCE_LOGIN_THROTTLE_ENTRIES);
	return worker_pool_create(inst->base, 0, INSTANCE_LOGIN_THREADS_MAX,
				  INSTANCE_LOGIN_QUEUE_MAX, &inst->logins, error_r);
}

static void client_login(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			 const struct json *args)
{
	const char *name = json_get_string(args, "userName");
	const char *address = json_get_string(args, "remoteAddress");
	const char *totp = json_get_string(args, "totp");
	const char *error;
	unsigned int wait;
	if (client_login_pool(inst, &error) < 0) {
		rpc_conn_reply_error(conn, id, "failed", error);
		return;
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
		return;
	}
	struct client_login *l = mem_new(struct client_login);
	l->inst = inst;
	l->conn = conn;
	l->id = id;
	l->user_name = mem_strdup(name == NULL ? "" : name);
	l->address = address == NULL ? NULL : mem_strdup(address);
	l->totp = totp == NULL ? NULL : mem_strdup(totp);
	l->check =
		instance_users_login_prepare(inst->users, name, json_get_string(args, "password"),
					     json_get_string(args, "service"));
	if (l->check == NULL) {
		client_login_throttle_end(l, AUTH_THROTTLE_FAILED);
		rpc_conn_reply_error(conn, id, "auth-failed", "invalid user name or password");
		client_login_free(l);
		return;
	}
	if (worker_pool_submit(inst->logins, client_login_work, client_login_done, l) < 0) {
		/* Not a wrong password: the client may try again at once. */
		inst->logins_busy++;
		client_login_throttle_end(l, AUTH_THROTTLE_NOT_CHECKED);
		rpc_conn_reply_error(conn, id, "busy",
				     "too many logins at once: try again in a moment");
		client_login_free(l);
	}
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

bool instance_client_is_call(const char *method)
{
	return strncmp(method, "Client", 6) == 0;
}

static void client_call_now(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			    const char *method, const struct json *args)
{
	struct client_call c = {.inst = inst, .args = args};
	unsigned char *blob;
	size_t blob_len;
	if (client_export(inst, conn, id, method, args))
		return;
	int web = instance_client_web_call(inst, method, args, &c.result, &blob, &blob_len, &c.code,
					   &c.error);
	if (web != 0) {
		/* Web Access: message views, attachments, password and MFA */
		if (web < 0)
			rpc_conn_reply_error(conn, id, c.code, c.error);
		else if (blob != NULL)
			rpc_conn_reply_blob(conn, id, c.result, blob, blob_len);
		else
			rpc_conn_reply(conn, id, c.result);
		mem_free(blob);
		return;
	}
	if (client_dispatch(&c, method) < 0) {
		rpc_conn_reply_error(conn, id, c.code, c.error);
		json_unref(&c.result);
	} else if (c.blob != NULL) {
		rpc_conn_reply_blob(conn, id, c.result, str_c(c.blob), str_len(c.blob));
	} else {
		rpc_conn_reply(conn, id, c.result);
	}
	str_destroy(&c.blob);
	json_unref(&c.user.view);
}

/* ---- calls that carry the account password: checked on a worker first ---- */

static const char *client_password_arg(const char *method)
{
	static const char *const calls[][2] = {{"ClientSetPassword", "oldPassword"},
					       {"ClientMfaBegin", "password"},
					       {"ClientMfaDisable", "password"},
					       {"ClientCreateAppPassword", "password"}};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		if (strcmp(calls[i][0], method) == 0)
			return calls[i][1];
	}
	return NULL;
}

struct client_gated {
	struct instance *inst;
	struct rpc_conn *conn;
	uint32_t id;
	char *method;
	struct json *args;
	struct instance_users_check *check;
};

static void client_gated_free(struct client_gated *g)
{
	instance_users_check_free(&g->check);
	mem_free(g->method);
	json_unref(&g->args);
	mem_free(g);
}

static void client_gated_work(void *ctx)
{
	struct client_gated *g = ctx;
	instance_users_check_run(g->check);
}

static void client_gated_done(void *ctx, bool ran)
{
	struct client_gated *g = ctx;
	struct instance *inst = g->inst;
	const char *error;
	if (inst->stopping) {
		client_gated_free(g);
		return;
	}
	if (!ran) {
		rpc_conn_reply_error(g->conn, g->id, "busy", "try again in a moment");
	} else if (instance_users_ready(inst, &error) < 0) {
		rpc_conn_reply_error(g->conn, g->id, "failed", error);
	} else {
		/* the call itself runs as before, with the outcome at hand */
		instance_users_account_checked(inst->users, g->check);
		client_call_now(inst, g->conn, g->id, g->method, g->args);
		if (inst->users != NULL)
			instance_users_account_forget(inst->users);
	}
	client_gated_free(g);
}

/* 1 taken (answered now or later), 0 not such a call. */
static int client_password_gate(struct instance *inst, struct rpc_conn *conn, uint32_t id,
				const char *method, const struct json *args)
{
	const char *arg = client_password_arg(method);
	const char *error;
	if (arg == NULL || json_get_string(args, arg) == NULL)
		return 0;
	/* a new password is hashed there too */
	struct instance_users_check *check = instance_users_account_prepare(
		inst->users, json_get_string(args, "userName"), json_get_string(args, arg),
		json_get_string(args, "newPassword"));
	if (check == NULL)
		return 0; /* refused by the call itself, without a check */
	if (client_login_pool(inst, &error) < 0) {
		instance_users_check_free(&check);
		rpc_conn_reply_error(conn, id, "failed", error);
		return 1;
	}
	struct client_gated *g = mem_new(struct client_gated);
	g->inst = inst;
	g->conn = conn;
	g->id = id;
	g->method = mem_strdup(method);
	g->args = json_clone(args);
	g->check = check;
	if (worker_pool_submit(inst->logins, client_gated_work, client_gated_done, g) < 0) {
		inst->logins_busy++;
		rpc_conn_reply_error(conn, id, "busy",
				     "too many password checks at once: try again in a moment");
		client_gated_free(g);
	}
	return 1;
}

void instance_client_call(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			  const char *method, const struct json *args)
{
	const char *error;
	if (instance_users_ready(inst, &error) < 0) {
		rpc_conn_reply_error(conn, id, "failed", error);
		return;
	}
	if (strcmp(method, "ClientLogin") == 0) {
		client_login(inst, conn, id, args);
		return;
	}
	/* every call but the login passes the one check of who may do what */
	const char *code;
	if (instance_rights_client_call(inst->users, method, args, &code, &error) < 0) {
		rpc_conn_reply_error(conn, id, code, error);
		return;
	}
	if (client_password_gate(inst, conn, id, method, args) == 0)
		client_call_now(inst, conn, id, method, args);
}
