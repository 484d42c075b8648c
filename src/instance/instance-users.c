#include "instance-users.h"
#include "instance-calls.h"
#include "instance-rights.h"
#include "instance.h"
#include "archive.h"
#include "array.h"
#include "catalog.h"
#include "auth-qr.h"
#include "auth-secret.h"
#include "auth-totp.h"
#include "crypto.h"
#include "file.h"
#include "hash.h"
#include "hex.h"
#include "json.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Before the users moved into the catalog (schema 10) they were this one
 * sealed file; an instance that still has it moves them in on open. */
#define USERS_OLD_FILE "users.sealed"
#define USERS_OLD_MAX_FILE (256 * 1024 * 1024)
#define USERS_NAME_MAX 128

/* auditor: may read every user's archive in the instance (SPEC §6) */
static const char *const users_privileges[] = {"admin",  "login",   "archive", "export",
					       "delete", "auditor", NULL};
static const char *const users_login_privileges[] = {"web", "imap", "api", NULL};
static const char *const users_folder_privileges[] = {"read", "write", "delete", NULL};

struct instance_users {
	struct catalog *cat;
	/* every user as a JSON object ({"id", "userName", ...}), by the lower
	 * case of the name: the catalog is the truth, this is read from it
	 * once at open and changed only after the catalog has taken a change */
	struct hash *by_name;
	/* an account password checked on a worker thread, for the call that
	 * runs next (instance_users_account_checked) */
	char *checked_name, *checked_password;
	bool checked_ok;
	char *prepared_password; /* and its hash, made on a worker too */
	char prepared_hash[CRYPTO_PASSWORD_HASH_LEN];
};

static const char *users_prepared_hash(struct instance_users *u, const char *password);

/* ---- memory: one JSON object per user, found by name ---- */

/* User names are ASCII (users_check_name), unique regardless of case. */
static const char *users_key(const char *name, char key[USERS_NAME_MAX * 2 + 1])
{
	size_t i = 0;
	for (; name != NULL && name[i] != '\0' && i < USERS_NAME_MAX * 2; i++)
		key[i] = (char)tolower((unsigned char)name[i]);
	key[i] = '\0';
	return key;
}

static struct json *users_find(struct instance_users *u, const char *name)
{
	char key[USERS_NAME_MAX * 2 + 1];
	return name == NULL ? NULL : hash_get(u->by_name, users_key(name, key));
}

/* Takes over the reference to user. */
static void users_remember(struct instance_users *u, struct json *user)
{
	char key[USERS_NAME_MAX * 2 + 1];
	struct json *old =
		hash_set(u->by_name, users_key(json_get_string(user, "userName"), key), user);
	if (old != user)
		json_unref(&old);
}

static void users_forget(struct instance_users *u, const char *name)
{
	char key[USERS_NAME_MAX * 2 + 1];
	struct json *old = hash_remove(u->by_name, users_key(name, key));
	json_unref(&old);
}

/* Undo a change made in memory to `user` (it may have been renamed): the
 * copy taken before it takes its place again. Takes over `before`. */
static void users_restore(struct instance_users *u, struct json *user, struct json *before)
{
	json_ref(user);
	users_forget(u, json_get_string(user, "userName"));
	users_remember(u, before);
	json_unref(&user);
}

/* ---- the catalog: one user's rows at a time ---- */

static const char **users_texts(const struct json *list, size_t *count_r)
{
	*count_r = json_count(list);
	const char **texts = mem_alloc((*count_r + 1) * sizeof(*texts));
	for (size_t i = 0; i < *count_r; i++) {
		const char *t = json_string_of(json_at(list, i));
		texts[i] = t != NULL ? t : "";
	}
	return texts;
}

/* Write one user (inserted if it has no id yet) inside the caller's
 * transaction. */
static int users_put(struct instance_users *u, struct json *user, const char **error_r)
{
	const struct json *mfa = json_get(user, "mfa");
	const struct json *rights = json_get(user, "folderRights");
	const struct json *apps = json_get(user, "appPasswords");
	long long id = 0, last_step = 0;
	(void)json_get_int(user, "id", &id);
	(void)json_get_int(mfa, "lastStep", &last_step);
	struct catalog_user row = {
		.id = id,
		.name = json_get_string(user, "userName"),
		.archive_name = json_get_string(user, "archiveName"),
		.full_name = json_get_string(user, "fullName"),
		.password_hash = json_get_string(user, "passwordHash"),
		.mfa_state = json_get_string(mfa, "state"),
		.mfa_secret = json_get_string(mfa, "secret"),
		.mfa_last_step = last_step,
	};
	if (row.archive_name == NULL)
		row.archive_name = row.name;
	const char **emails = users_texts(json_get(user, "emailAddresses"), &row.email_count);
	const char **privs = users_texts(json_get(user, "privileges"), &row.privilege_count);
	const char **logins =
		users_texts(json_get(user, "loginPrivileges"), &row.login_privilege_count);
	row.emails = emails;
	row.privileges = privs;
	row.login_privileges = logins;
	struct catalog_user_right *r = mem_alloc((json_count(rights) + 1) * sizeof(*r));
	struct str *joined = str_create(64);
	size_t nrights = 0;
	for (void *it = json_iter(rights); it != NULL; it = json_iter_next(rights, it)) {
		const struct json *list = json_iter_value(it);
		r[nrights].folder = json_iter_key(it);
		/* offsets first: the text may move while it grows */
		r[nrights].rights = (const char *)(uintptr_t)str_len(joined);
		for (size_t i = 0; i < json_count(list); i++)
			str_printfa(joined, "%s%s", i > 0 ? "," : "",
				    json_string_of(json_at(list, i)));
		str_append_c(joined, '\0');
		nrights++;
	}
	for (size_t i = 0; i < nrights; i++)
		r[i].rights = str_c(joined) + (uintptr_t)r[i].rights;
	row.rights = r;
	row.right_count = nrights;
	struct catalog_user_app *a = mem_alloc((json_count(apps) + 1) * sizeof(*a));
	for (size_t i = 0; i < json_count(apps); i++) {
		long long created = 0;
		(void)json_get_int(json_at(apps, i), "created", &created);
		a[i].name = json_get_string(json_at(apps, i), "name");
		a[i].hash = json_get_string(json_at(apps, i), "hash");
		a[i].created = created;
	}
	row.apps = a;
	row.app_count = json_count(apps);
	int ret = catalog_user_put(u->cat, &row, error_r);
	if (ret == 0 && id == 0)
		json_set_int(user, "id", (long long)row.id);
	mem_free(emails);
	mem_free(privs);
	mem_free(logins);
	mem_free(r);
	mem_free(a);
	str_destroy(&joined);
	return ret;
}

/* Whether the users may be written: not after instance_users_release_catalog()
 * (a frozen instance keeps its base directory as it is). */
static int users_writable(struct instance_users *u, const char **error_r)
{
	if (u->cat != NULL)
		return 0;
	*error_r = "the instance is frozen: changes wait until it is thawed";
	return -1;
}

/* One user written in a transaction of its own. */
static int users_store(struct instance_users *u, struct json *user, const char **error_r)
{
	if (users_writable(u, error_r) < 0 || catalog_begin(u->cat, error_r) < 0)
		return -1;
	if (users_put(u, user, error_r) < 0 || catalog_commit(u->cat, error_r) < 0) {
		catalog_rollback(u->cat);
		return -1;
	}
	return 0;
}

/* Save a change made to `user` in memory since the copy `before`, or undo
 * it: memory never claims what the catalog does not hold. */
static int users_commit(struct instance_users *u, struct json *user, struct json *before,
			const char **error_r)
{
	if (users_store(u, user, error_r) == 0) {
		json_unref(&before);
		return 0;
	}
	users_restore(u, user, before);
	return -1;
}

/* ---- loading: the catalog's rows into memory ---- */

struct users_load {
	struct instance_users *u;
	ARRAY(struct users_loaded {
		int64_t id;
		struct json *user;
	})
	ids; /* ascending: the catalog gives users in id order */
};

static struct json *users_load_find(struct users_load *l, int64_t id)
{
	size_t lo = 0, hi = l->ids.count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->ids.items[mid].id == id)
			return l->ids.items[mid].user;
		if (l->ids.items[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct json *users_load_user(const struct catalog_user_row *row)
{
	struct json *user = json_new_object();
	json_set_int(user, "id", (long long)row->user_id);
	json_set_string(user, "userName", row->name);
	json_set_string(user, "archiveName", row->text);
	json_set_string(user, "fullName", row->text2 != NULL ? row->text2 : "");
	if (row->text3 != NULL)
		json_set_string(user, "passwordHash", row->text3);
	json_set(user, "emailAddresses", json_new_array());
	json_set(user, "privileges", json_new_array());
	json_set(user, "loginPrivileges", json_new_array());
	json_set(user, "folderRights", json_new_object());
	if (row->text4 != NULL) {
		struct json *mfa = json_new_object();
		json_set_string(mfa, "state", row->text4);
		json_set_string(mfa, "secret", row->text5);
		json_set_int(mfa, "lastStep", (long long)row->number);
		json_set(user, "mfa", mfa);
	}
	return user;
}

static struct json *users_split(const char *text)
{
	struct json *list = json_new_array();
	char *copy = mem_strdup(text != NULL ? text : ""), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		json_append(list, json_new_string(t));
	mem_free(copy);
	return list;
}

static int users_load_row(const struct catalog_user_row *row, void *context)
{
	struct users_load *l = context;
	if (row->kind == CATALOG_USER_ROW_USER) {
		struct json *user = users_load_user(row);
		struct users_loaded *e = array_push(&l->ids);
		e->id = row->user_id;
		e->user = user;
		users_remember(l->u, json_ref(user));
		return 0;
	}
	struct json *user = users_load_find(l, row->user_id);
	if (user == NULL)
		return 0; /* rows of a user that is gone */
	switch (row->kind) {
	case CATALOG_USER_ROW_EMAIL:
		json_append(json_get(user, "emailAddresses"), json_new_string(row->text));
		break;
	case CATALOG_USER_ROW_PRIVILEGE:
		json_append(json_get(user, "privileges"), json_new_string(row->text));
		break;
	case CATALOG_USER_ROW_LOGIN_PRIVILEGE:
		json_append(json_get(user, "loginPrivileges"), json_new_string(row->text));
		break;
	case CATALOG_USER_ROW_FOLDER_RIGHT:
		json_set(json_get(user, "folderRights"), row->text, users_split(row->text2));
		break;
	case CATALOG_USER_ROW_APP_PASSWORD: {
		struct json *apps = json_get(user, "appPasswords");
		if (apps == NULL) {
			apps = json_new_array();
			json_set(user, "appPasswords", apps);
		}
		struct json *e = json_new_object();
		json_set_string(e, "name", row->text);
		json_set_string(e, "hash", row->text2);
		json_set_int(e, "created", (long long)row->number);
		json_append(apps, e);
		break;
	}
	case CATALOG_USER_ROW_USER:
		break;
	}
	return 0;
}

static int users_load(struct instance_users *u, const char **error_r)
{
	struct users_load l = {.u = u};
	int ret = catalog_users_load(u->cat, users_load_row, &l, error_r);
	for (size_t i = 0; i < l.ids.count; i++)
		json_unref(&l.ids.items[i].user);
	array_free(&l.ids);
	return ret;
}

/* ---- moving users.sealed into the catalog ---- */

static int users_old_read(const char *key_file, const char *path, struct json **root_r,
			  const char **error_r)
{
	unsigned char master[CRYPTO_KEY_LEN], key[CRYPTO_KEY_LEN];
	char *sealed = NULL, *text = NULL;
	size_t len;
	if (archive_key_file_read(key_file, master, error_r) < 0)
		return -1;
	crypto_kdf_derive(master, "users___", 1, key);
	crypto_wipe(master, sizeof(master));
	int ret = file_read_all(path, USERS_OLD_MAX_FILE, &sealed, &len, error_r);
	if (ret == 0)
		ret = auth_secret_open(key, sealed, "instance-users", &text, error_r);
	crypto_wipe(key, sizeof(key));
	if (ret == 0)
		ret = json_parse(text, strlen(text), root_r, error_r);
	if (ret == 0 && json_kind(json_get(*root_r, "users")) != JSON_KIND_ARRAY) {
		json_unref(root_r);
		*error_r = "the user database has no users list";
		ret = -1;
	}
	if (text != NULL) {
		crypto_wipe(text, strlen(text));
		mem_free(text);
	}
	mem_free(sealed);
	if (ret < 0)
		*error_r = tstr_printf("%s: %s", path, *error_r);
	return ret;
}

/* Every user of the old file that the catalog does not have yet, in one
 * transaction; the file is removed only once that has committed. A crash
 * in between leaves the file, and the next open finds its users in the
 * catalog already and only removes it. */
static int users_migrate(struct instance_users *u, const char *base_dir, const char *key_file,
			 const char **error_r)
{
	char *path = mem_printf("%s/%s", base_dir, USERS_OLD_FILE);
	struct json *root = NULL;
	int ret = file_exists(path, error_r);
	if (ret <= 0) {
		mem_free(path);
		return ret;
	}
	ARRAY(struct json *) added = ARRAY_INIT;
	ret = users_old_read(key_file, path, &root, error_r);
	if (ret == 0)
		ret = catalog_begin(u->cat, error_r);
	const struct json *list = json_get(root, "users");
	for (size_t i = 0; ret == 0 && i < json_count(list); i++) {
		const char *name = json_get_string(json_at(list, i), "userName");
		if (name == NULL || users_find(u, name) != NULL)
			continue;
		struct json *user = json_clone(json_at(list, i));
		(void)json_remove(user, "id");
		array_append(&added, user);
		ret = users_put(u, user, error_r);
	}
	if (ret == 0 && catalog_commit(u->cat, error_r) < 0)
		ret = -1;
	if (ret < 0 && root != NULL)
		catalog_rollback(u->cat);
	for (size_t i = 0; i < added.count; i++) {
		if (ret == 0)
			users_remember(u, added.items[i]);
		else
			json_unref(&added.items[i]);
	}
	array_free(&added);
	json_unref(&root);
	if (ret == 0 && unlink(path) < 0) {
		*error_r = tstr_printf("unlink(%s) failed: %s", path, strerror(errno));
		ret = -1;
	} else if (ret == 0 && file_fsync_dir(base_dir, error_r) < 0) {
		ret = -1;
	}
	mem_free(path);
	return ret;
}

int instance_users_open(const char *base_dir, const char *key_file, struct instance_users **users_r,
			const char **error_r)
{
	struct instance_users *u = mem_new(struct instance_users);
	u->by_name = hash_create();
	if (archive_catalog_open(base_dir, key_file, &u->cat, error_r) < 0 ||
	    users_load(u, error_r) < 0 || users_migrate(u, base_dir, key_file, error_r) < 0) {
		instance_users_close(&u);
		return -1;
	}
	*users_r = u;
	return 0;
}

void instance_users_release_catalog(struct instance_users *users)
{
	catalog_destroy(&users->cat);
}

void instance_users_close(struct instance_users **users)
{
	struct instance_users *u = *users;
	if (u == NULL)
		return;
	instance_users_account_forget(u);
	struct hash_iter it;
	const char *key;
	void *value;
	for (hash_iter_init(&it, u->by_name); hash_iter_next(&it, &key, &value) == 1;) {
		struct json *user = value;
		json_unref(&user);
	}
	hash_destroy(&u->by_name);
	catalog_destroy(&u->cat);
	mem_free(u);
	*users = NULL;
}

/* ---- lookups and checks ---- */

static struct json *users_find_arg(struct instance_users *u, const struct json *args,
				   const char *arg, const char **error_r)
{
	const char *name = json_get_string(args, arg);
	struct json *user = users_find(u, name);
	if (user == NULL)
		*error_r = tstr_printf("no user '%s'", name == NULL ? "" : name);
	return user;
}

const char *instance_users_archive_name(struct instance_users *users, const char *user_name)
{
	return json_get_string(users_find(users, user_name), "archiveName");
}

const char *instance_users_find_by_address(struct instance_users *users, const char *address)
{
	struct hash_iter iter;
	const char *key;
	void *value;
	hash_iter_init(&iter, users->by_name);
	while (hash_iter_next(&iter, &key, &value) > 0) {
		const struct json *emails = json_get(value, "emailAddresses");
		for (size_t i = 0; i < json_count(emails); i++) {
			const char *e = json_string_of(json_at(emails, i));
			if (e != NULL && strcasecmp(e, address) == 0)
				return json_get_string(value, "userName");
		}
	}
	return NULL;
}

struct hash *instance_users_address_map(struct instance_users *users)
{
	struct hash *map = hash_create();
	hash_wipe_keys(map);
	struct hash_iter iter;
	const char *key;
	void *value;
	hash_iter_init(&iter, users->by_name);
	while (hash_iter_next(&iter, &key, &value) > 0) {
		const char *archive_name = json_get_string(value, "archiveName");
		const struct json *emails = json_get(value, "emailAddresses");
		for (size_t i = 0; archive_name != NULL && i < json_count(emails); i++) {
			const char *e = json_string_of(json_at(emails, i));
			if (e == NULL)
				continue;
			char *lower = mem_strdup(e);
			for (char *p = lower; *p != '\0'; p++)
				*p = (char)tolower((unsigned char)*p);
			/* an address two users have: the first one met keeps it */
			if (hash_get(map, lower) == NULL)
				hash_set(map, lower, mem_strdup(archive_name));
			mem_free(lower);
		}
	}
	return map;
}

void instance_users_address_map_free(struct hash **_map)
{
	struct hash *map = *_map;
	if (map == NULL)
		return;
	struct hash_iter iter;
	const char *key;
	void *value;
	hash_iter_init(&iter, map);
	while (hash_iter_next(&iter, &key, &value) > 0)
		mem_free(value);
	hash_destroy(_map);
}

static int users_check_name(const char *name, const char **error_r)
{
	size_t len = name == NULL ? 0 : strlen(name);
	bool ok = len > 0 && len <= 128;
	for (size_t i = 0; ok && i < len; i++)
		ok = isalnum((unsigned char)name[i]) || strchr("._@+-", name[i]) != NULL;
	if (!ok) {
		*error_r = tstr_printf(
			"invalid userName '%s': expected 1-128 letters, digits or . _ @ + -",
			name == NULL ? "" : name);
		return -1;
	}
	return 0;
}

static int users_check_password(const char *password, const char **error_r)
{
	size_t len = strlen(password);
	if (len < 8 || len > 1024) {
		*error_r = "password: expected 8 to 1024 characters";
		return -1;
	}
	return 0;
}

/* A list argument: comma-separated text or a JSON array of strings, each
 * from `allowed` (NULL: any non-empty string without control characters). */
static struct json *users_parse_list(const struct json *value, const char *what,
				     const char *const *allowed, const char **error_r)
{
	struct json *out = json_new_array();
	struct str *text = str_create(64);
	if (json_kind(value) == JSON_KIND_ARRAY) {
		for (size_t i = 0; i < json_count(value); i++)
			str_printfa(text, "%s%s", i > 0 ? "," : "",
				    json_string_of(json_at(value, i)) == NULL
					    ? "\x01"
					    : json_string_of(json_at(value, i)));
	} else if (json_string_of(value) != NULL) {
		str_append(text, json_string_of(value));
	}
	char *copy = mem_strdup(str_c(text)), *save = NULL;
	str_destroy(&text);
	for (char *tok = strtok_r(copy, ", ", &save); tok != NULL;
	     tok = strtok_r(NULL, ", ", &save)) {
		bool ok = allowed == NULL;
		for (const char *const *a = allowed; a != NULL && *a != NULL; a++)
			ok = ok || strcmp(*a, tok) == 0;
		for (const char *p = tok; ok && *p != '\0'; p++)
			ok = (unsigned char)*p >= 0x20;
		if (ok && allowed == NULL && (strchr(tok, '@') == NULL || strlen(tok) > 254))
			ok = false; /* free-form lists are email addresses */
		if (!ok) {
			struct str *names = str_create(64);
			for (const char *const *a = allowed; a != NULL && *a != NULL; a++)
				str_printfa(names, "%s%s", a != allowed ? ", " : "", *a);
			*error_r = tstr_printf("%s: '%s' is not %s%s", what, tok,
					       allowed == NULL ? "an email address" : "one of ",
					       str_c(names));
			str_destroy(&names);
			mem_free(copy);
			json_unref(&out);
			return NULL;
		}
		bool dup = false;
		for (size_t i = 0; i < json_count(out); i++)
			dup = dup || strcasecmp(json_string_of(json_at(out, i)), tok) == 0;
		if (!dup)
			json_append(out, json_new_string(tok));
	}
	mem_free(copy);
	return out;
}

/* ---- views ---- */

static struct json *users_view(const struct json *user, bool full)
{
	struct json *v = json_new_object();
	static const char *const shown[] = {"userName",   "fullName",        "emailAddresses",
					    "privileges", "loginPrivileges", NULL};
	for (const char *const *k = shown; *k != NULL; k++)
		json_set(v, *k, json_clone(json_get(user, *k)));
	const char *mfa = json_get_string(json_get(user, "mfa"), "state");
	json_set_string(v, "mfa", mfa == NULL ? "disabled" : mfa);
	if (full) {
		json_set(v, "folderRights", json_clone(json_get(user, "folderRights")));
		json_set_string(v, "archiveName", json_get_string(user, "archiveName"));
		json_set_int(v, "appPasswords",
			     (long long)json_count(json_get(user, "appPasswords")));
	}
	return v;
}

/* ---- functions ---- */

static struct json *users_list_arg(const struct json *args, const char *arg,
				   const char *default_text, const char *const *allowed,
				   const char **error_r)
{
	const struct json *value = json_get(args, arg);
	struct json *fallback = NULL;
	if (value == NULL)
		value = fallback = json_new_string(default_text);
	struct json *list = users_parse_list(value, arg, allowed, error_r);
	json_unref(&fallback);
	return list;
}

static int users_set_password(struct instance_users *u, struct json *user, const char *password,
			      const char **error_r)
{
	char hash[CRYPTO_PASSWORD_HASH_LEN];
	if (users_check_password(password, error_r) < 0)
		return -1;
	const char *prepared = users_prepared_hash(u, password);
	if (prepared != NULL)
		json_set_string(user, "passwordHash", prepared);
	else if (crypto_password_hash(password, hash, error_r) < 0)
		return -1;
	else
		json_set_string(user, "passwordHash", hash);
	return 0;
}

static int users_create(struct instance_users *u, const struct json *args, struct json **result_r,
			const char **error_r)
{
	const char *name = json_get_string(args, "userName");
	const char *password = json_get_string(args, "password");
	const char *full = json_get_string(args, "fullName");
	if (users_check_name(name, error_r) < 0)
		return -1;
	if (users_find(u, name) != NULL) {
		*error_r = tstr_printf("user '%s' exists", name);
		return -1;
	}
	struct json *emails = users_list_arg(args, "emailAddresses", "", NULL, error_r);
	struct json *priv = emails == NULL ? NULL
					   : users_list_arg(args, "privileges", "login,archive",
							    users_privileges, error_r);
	struct json *login = priv == NULL ? NULL
					  : users_list_arg(args, "loginPrivileges", "web,imap",
							   users_login_privileges, error_r);
	struct json *user = json_new_object();
	json_set_string(user, "userName", name);
	/* The owner name in the archive: fixed, so a rename keeps the mail. */
	json_set_string(user, "archiveName", name);
	json_set_string(user, "fullName", full == NULL ? "" : full);
	int ret = login == NULL ? -1 : 0;
	if (ret == 0) {
		json_set(user, "emailAddresses", emails);
		json_set(user, "privileges", priv);
		json_set(user, "loginPrivileges", login);
		emails = priv = login = NULL;
		json_set(user, "folderRights", json_new_object());
		if (password != NULL)
			ret = users_set_password(u, user, password, error_r);
	}
	json_unref(&emails);
	json_unref(&priv);
	json_unref(&login);
	if (ret == 0) {
		if (users_store(u, user, error_r) < 0) {
			ret = -1;
		} else {
			*result_r = users_view(user, true);
			users_remember(u, json_ref(user));
		}
	}
	json_unref(&user);
	return ret;
}

/* ---- an administrator's change to one user ---- */

/* What a call changes in the user record (users_modify() keeps a copy to
 * undo it): 0, or -1 with *error_r. It may leave an answer in *result_r;
 * otherwise the answer is the user's view. */
typedef int users_change_fn(struct instance_users *u, struct json *user, const struct json *args,
			    struct json **result_r, const char **error_r);

/* `user` changed by `change` and committed, or left as it was: 0 with
 * what the change answered (or NULL) in *result_r, or -1. */
static int users_apply(struct instance_users *u, struct json *user, const struct json *args,
		       users_change_fn *change, struct json **result_r, const char **error_r)
{
	struct json *before = json_clone(user);
	struct json *result = NULL;
	int ret = change(u, user, args, &result, error_r);
	if (ret == 0)
		ret = users_commit(u, user, before, error_r);
	else
		users_restore(u, user, before);
	if (ret < 0)
		json_unref(&result);
	*result_r = result;
	return ret;
}

/* A call's change to the user args[name_arg] names, answered with what the
 * change answered or else the view of the user args[result_arg] names. */
static int users_modify(struct instance_call *c, const char *name_arg, const char *result_arg,
			users_change_fn *change)
{
	struct instance_users *u = c->inst->users;
	struct json *user = users_find_arg(u, c->args, name_arg, &c->error);
	if (user == NULL || users_apply(u, user, c->args, change, &c->result, &c->error) < 0)
		return -1;
	if (c->result == NULL)
		c->result = users_view(users_find(u, json_get_string(c->args, result_arg)), true);
	return 0;
}

static int users_change_password(struct instance_users *u, struct json *user,
				 const struct json *args, struct json **result_r,
				 const char **error_r)
{
	return users_set_password(u, user, json_get_string(args, "password"), error_r);
}

static int users_change_full_name(struct instance_users *u, struct json *user,
				  const struct json *args, struct json **result_r,
				  const char **error_r)
{
	json_set_string(user, "fullName", json_get_string(args, "fullName"));
	return 0;
}

/* One of the user's lists replaced by args[field] (only `allowed` values). */
static int users_change_list(struct json *user, const struct json *args, const char *field,
			     const char *const *allowed, const char **error_r)
{
	struct json *list = users_list_arg(args, field, "", allowed, error_r);
	if (list == NULL)
		return -1;
	json_set(user, field, list);
	return 0;
}

static int users_change_email_addresses(struct instance_users *u, struct json *user,
					const struct json *args, struct json **result_r,
					const char **error_r)
{
	return users_change_list(user, args, "emailAddresses", NULL, error_r);
}

static int users_change_privileges(struct instance_users *u, struct json *user,
				   const struct json *args, struct json **result_r,
				   const char **error_r)
{
	return users_change_list(user, args, "privileges", users_privileges, error_r);
}

static int users_change_login_privileges(struct instance_users *u, struct json *user,
					 const struct json *args, struct json **result_r,
					 const char **error_r)
{
	return users_change_list(user, args, "loginPrivileges", users_login_privileges, error_r);
}

/* The rights on one folder; none given removes the folder's entry. */
static int users_change_folder_rights(struct instance_users *u, struct json *user,
				      const struct json *args, struct json **result_r,
				      const char **error_r)
{
	const char *folder = json_get_string(args, "folder");
	struct json *list =
		users_list_arg(args, "privileges", "", users_folder_privileges, error_r);
	if (list == NULL || folder == NULL || folder[0] == '\0') {
		if (list != NULL)
			*error_r = "folder: missing";
		json_unref(&list);
		return -1;
	}
	if (json_count(list) == 0) {
		json_unref(&list);
		(void)json_remove(json_get(user, "folderRights"), folder);
	} else {
		json_set(json_get(user, "folderRights"), folder, list);
	}
	return 0;
}

static int users_change_name(struct instance_users *u, struct json *user, const struct json *args,
			     struct json **result_r, const char **error_r)
{
	const char *to = json_get_string(args, "newUserName");
	struct json *other = users_find(u, to);
	if (users_check_name(to, error_r) < 0)
		return -1;
	if (other != NULL && other != user) {
		*error_r = tstr_printf("user '%s' exists", to);
		return -1;
	}
	/* found by its new name from now on */
	json_ref(user);
	users_forget(u, json_get_string(user, "userName"));
	json_set_string(user, "userName", to);
	users_remember(u, user);
	return 0;
}

/* A new TOTP secret, pending until the user's first code; answered with
 * {secret, uri, qrCodeSvg}. */
static int users_change_mfa_initialize(struct instance_users *u, struct json *user,
				       const struct json *args, struct json **result_r,
				       const char **error_r)
{
	char secret[AUTH_TOTP_SECRET_LEN + 1];
	const char *name = json_get_string(user, "userName");
	char *uri = auth_totp_secret_generate(secret) < 0 ? NULL
							  : auth_totp_uri("Coffer", name, secret);
	char *svg = uri == NULL ? NULL : auth_qr_svg(uri, error_r);
	int ret = -1;
	if (svg != NULL) {
		struct json *mfa = json_new_object();
		json_set_string(mfa, "state", "pending");
		json_set_string(mfa, "secret", secret);
		json_set_int(mfa, "lastStep", 0);
		json_set(user, "mfa", mfa);
		struct json *r = json_new_object();
		json_set_string(r, "secret", secret);
		json_set_string(r, "uri", uri);
		json_set_string(r, "qrCodeSvg", svg);
		*result_r = r;
		ret = 0;
	}
	crypto_wipe(secret, sizeof(secret));
	mem_free(uri);
	mem_free(svg);
	return ret;
}

static int users_change_mfa_disable(struct instance_users *u, struct json *user,
				    const struct json *args, struct json **result_r,
				    const char **error_r)
{
	(void)json_remove(user, "mfa");
	(void)json_remove(user, "appPasswords");
	return 0;
}

static int users_delete(struct instance_users *u, const struct json *args, const char **error_r)
{
	const char *name = json_get_string(args, "userName");
	struct json *user = users_find(u, name);
	long long id = 0;
	if (user == NULL) {
		*error_r = tstr_printf("no user '%s'", name == NULL ? "" : name);
		return -1;
	}
	(void)json_get_int(user, "id", &id);
	if (users_writable(u, error_r) < 0 || catalog_begin(u->cat, error_r) < 0)
		return -1;
	if (catalog_user_delete(u->cat, id, error_r) < 0 || catalog_commit(u->cat, error_r) < 0) {
		catalog_rollback(u->cat);
		return -1;
	}
	users_forget(u, name);
	return 0;
}

static int users_by_id(const void *a, const void *b)
{
	long long ia = 0, ib = 0;
	(void)json_get_int(*(struct json *const *)a, "id", &ia);
	(void)json_get_int(*(struct json *const *)b, "id", &ib);
	return ia < ib ? -1 : ia > ib;
}

/* Every user in the order they were made (ids ascending), borrowed. */
static struct json **users_all(struct instance_users *u, size_t *count_r)
{
	size_t count = hash_count(u->by_name), n = 0;
	struct json **all = mem_alloc((count + 1) * sizeof(*all));
	struct hash_iter it;
	const char *key;
	void *value;
	for (hash_iter_init(&it, u->by_name); hash_iter_next(&it, &key, &value) == 1;)
		all[n++] = value;
	qsort(all, n, sizeof(*all), users_by_id);
	*count_r = n;
	return all;
}

/* ---- directory sync: many users in one transaction ---- */

static const char *const users_sync_fields[] = {"userName",   "fullName",        "emailAddresses",
						"privileges", "loginPrivileges", NULL};

static bool users_sync_field_known(const char *key)
{
	for (const char *const *f = users_sync_fields; *f != NULL; f++) {
		if (strcmp(*f, key) == 0)
			return true;
	}
	return false;
}

/* Set a list field from the entry if it has it (a new user gets the
 * default otherwise, as CreateUser gives). */
static int users_sync_list(struct json *user, const struct json *entry, const char *field,
			   bool is_new, const char *default_text, const char *const *allowed,
			   const char **error_r)
{
	if (json_get(entry, field) == NULL && !is_new)
		return 0;
	struct json *list = users_list_arg(entry, field, default_text, allowed, error_r);
	if (list == NULL)
		return -1;
	json_set(user, field, list);
	return 0;
}

/* What the user named in `entry` is to be after the sync: a changed copy of
 * the user it names, or a new user. Memory is not touched. */
static struct json *users_sync_entry(struct instance_users *u, const struct json *entry,
				     const char **error_r)
{
	if (json_kind(entry) != JSON_KIND_OBJECT) {
		*error_r = "expected an object";
		return NULL;
	}
	for (void *it = json_iter(entry); it != NULL; it = json_iter_next(entry, it)) {
		if (!users_sync_field_known(json_iter_key(it))) {
			*error_r = tstr_printf("unknown field '%s' (expected userName, fullName, "
					       "emailAddresses, privileges, loginPrivileges; "
					       "passwords are set with SetUserPassword)",
					       json_iter_key(it));
			return NULL;
		}
	}
	const char *name = json_get_string(entry, "userName");
	if (users_check_name(name, error_r) < 0)
		return NULL;
	const struct json *full = json_get(entry, "fullName");
	if (full != NULL && json_string_of(full) == NULL) {
		*error_r = "fullName: expected a string";
		return NULL;
	}
	const struct json *existing = users_find(u, name);
	struct json *user;
	if (existing != NULL) {
		user = json_clone(existing);
	} else {
		user = json_new_object();
		json_set_string(user, "userName", name);
		json_set_string(user, "archiveName", name);
		json_set_string(user, "fullName", "");
		json_set(user, "folderRights", json_new_object());
	}
	if (full != NULL)
		json_set_string(user, "fullName", json_string_of(full));
	bool is_new = existing == NULL;
	if (users_sync_list(user, entry, "emailAddresses", is_new, "", NULL, error_r) < 0 ||
	    users_sync_list(user, entry, "privileges", is_new, "login,archive", users_privileges,
			    error_r) < 0 ||
	    users_sync_list(user, entry, "loginPrivileges", is_new, "web,imap",
			    users_login_privileges, error_r) < 0)
		json_unref(&user);
	return user;
}

struct users_sync {
	ARRAY(struct json *) changed; /* new or changed users, owned */
	ARRAY(struct json *) removed; /* users to delete, borrowed */
	struct hash *listed;          /* lower-case names in the list */
	long long created, updated, unchanged;
};

static void users_sync_free(struct users_sync *sync)
{
	for (size_t i = 0; i < sync->changed.count; i++)
		json_unref(&sync->changed.items[i]);
	array_free(&sync->changed);
	array_free(&sync->removed);
	hash_destroy(&sync->listed);
}

/* Every entry checked and turned into the user it makes, before anything is
 * written: a bad entry refuses the whole sync. */
static int users_sync_plan(struct instance_users *u, const struct json *list, bool delete_missing,
			   struct users_sync *sync, const char **error_r)
{
	char key[USERS_NAME_MAX * 2 + 1];
	for (size_t i = 0; i < json_count(list); i++) {
		const char *error;
		struct json *user = users_sync_entry(u, json_at(list, i), &error);
		if (user == NULL) {
			*error_r = tstr_printf("users[%zu]: %s", i, error);
			return -1;
		}
		const char *name = json_get_string(user, "userName");
		static char listed_mark;
		if (hash_set(sync->listed, users_key(name, key), &listed_mark) != NULL) {
			*error_r = tstr_printf("users[%zu]: '%s' is listed twice", i, name);
			json_unref(&user);
			return -1;
		}
		const struct json *existing = users_find(u, name);
		if (existing != NULL && json_equals(existing, user)) {
			sync->unchanged++;
			json_unref(&user);
			continue;
		}
		if (existing == NULL)
			sync->created++;
		else
			sync->updated++;
		array_append(&sync->changed, user);
	}
	struct hash_iter it;
	const char *k;
	void *value;
	for (hash_iter_init(&it, u->by_name);
	     delete_missing && hash_iter_next(&it, &k, &value) == 1;) {
		if (hash_get(sync->listed, k) == NULL)
			array_append(&sync->removed, (struct json *)value);
	}
	return 0;
}

static int users_sync_write(struct instance_users *u, struct users_sync *sync, const char **error_r)
{
	if (users_writable(u, error_r) < 0 || catalog_begin(u->cat, error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; ret == 0 && i < sync->changed.count; i++)
		ret = users_put(u, sync->changed.items[i], error_r);
	for (size_t i = 0; ret == 0 && i < sync->removed.count; i++) {
		long long id = 0;
		(void)json_get_int(sync->removed.items[i], "id", &id);
		ret = catalog_user_delete(u->cat, id, error_r);
	}
	if (ret == 0)
		ret = catalog_commit(u->cat, error_r);
	if (ret < 0)
		catalog_rollback(u->cat);
	return ret;
}

/* SyncUsers: the users of a directory in one call. Each entry creates the
 * user or sets the fields it has; with deleteMissing, users not listed are
 * deleted. One transaction, one lookup by name per entry and one write per
 * user that changes: the cost grows with the list, not with its square. */
static int users_sync(struct instance_users *u, const struct json *args, struct json **result_r,
		      const char **error_r)
{
	const struct json *list = json_get(args, "users");
	if (json_kind(list) != JSON_KIND_ARRAY) {
		*error_r = "users: expected a JSON array of {userName, fullName, emailAddresses, "
			   "privileges, loginPrivileges}";
		return -1;
	}
	struct users_sync sync = {.listed = hash_create()};
	bool delete_missing = json_get_bool(args, "deleteMissing", false);
	if (users_sync_plan(u, list, delete_missing, &sync, error_r) < 0 ||
	    users_sync_write(u, &sync, error_r) < 0) {
		users_sync_free(&sync);
		return -1;
	}
	/* committed: memory follows */
	for (size_t i = 0; i < sync.changed.count; i++) {
		users_remember(u, sync.changed.items[i]);
		sync.changed.items[i] = NULL;
	}
	for (size_t i = 0; i < sync.removed.count; i++)
		users_forget(u, json_get_string(sync.removed.items[i], "userName"));
	struct json *r = json_new_object();
	json_set_int(r, "usersCreated", sync.created);
	json_set_int(r, "usersUpdated", sync.updated);
	json_set_int(r, "usersUnchanged", sync.unchanged);
	json_set_int(r, "usersDeleted", (long long)sync.removed.count);
	*result_r = r;
	users_sync_free(&sync);
	return 0;
}

/* ---- the administrator's calls: one row each in instance_calls[] ---- */

int instance_users_get_users(struct instance_call *c)
{
	struct json *list = json_new_array();
	size_t count;
	struct json **all = users_all(c->inst->users, &count);
	for (size_t i = 0; i < count; i++)
		json_append(list, users_view(all[i], false));
	mem_free(all);
	c->result = list;
	return 0;
}

int instance_users_get_user_info(struct instance_call *c)
{
	struct json *user = users_find_arg(c->inst->users, c->args, "userName", &c->error);
	if (user == NULL)
		return -1;
	c->result = users_view(user, true);
	return 0;
}

int instance_users_get_app_passwords(struct instance_call *c)
{
	struct json *user = users_find_arg(c->inst->users, c->args, "userName", &c->error);
	if (user == NULL)
		return -1;
	c->result = instance_users_app_passwords(c->inst->users, json_get_string(user, "userName"));
	return 0;
}

int instance_users_delete_app_password(struct instance_call *c)
{
	struct json *user = users_find_arg(c->inst->users, c->args, "userName", &c->error);
	if (user == NULL)
		return -1;
	if (instance_users_app_password_delete(c->inst->users, json_get_string(user, "userName"),
					       json_get_string(c->args, "name"), &c->error) < 0) {
		c->code = "not-found";
		return -1;
	}
	return 0;
}

int instance_users_create_user(struct instance_call *c)
{
	return users_create(c->inst->users, c->args, &c->result, &c->error);
}

int instance_users_delete_user(struct instance_call *c)
{
	return users_delete(c->inst->users, c->args, &c->error);
}

int instance_users_sync_users(struct instance_call *c)
{
	return users_sync(c->inst->users, c->args, &c->result, &c->error);
}

int instance_users_set_user_password(struct instance_call *c)
{
	return users_modify(c, "userName", "userName", users_change_password);
}

int instance_users_set_user_full_name(struct instance_call *c)
{
	return users_modify(c, "userName", "userName", users_change_full_name);
}

int instance_users_set_user_email_addresses(struct instance_call *c)
{
	return users_modify(c, "userName", "userName", users_change_email_addresses);
}

int instance_users_set_user_privileges(struct instance_call *c)
{
	return users_modify(c, "userName", "userName", users_change_privileges);
}

int instance_users_set_user_login_privileges(struct instance_call *c)
{
	return users_modify(c, "userName", "userName", users_change_login_privileges);
}

int instance_users_set_user_privileges_on_folder(struct instance_call *c)
{
	return users_modify(c, "userName", "userName", users_change_folder_rights);
}

int instance_users_rename_user(struct instance_call *c)
{
	return users_modify(c, "oldUserName", "newUserName", users_change_name);
}

int instance_users_initialize_mfa(struct instance_call *c)
{
	return users_modify(c, "userName", "userName", users_change_mfa_initialize);
}

int instance_users_disable_mfa(struct instance_call *c)
{
	return users_modify(c, "userName", "userName", users_change_mfa_disable);
}

/* ---- end-user logins and app passwords ---- */

static bool users_list_has(const struct json *list, const char *value)
{
	for (size_t i = 0; i < json_count(list); i++) {
		const char *v = json_string_of(json_at(list, i));
		if (v != NULL && strcmp(v, value) == 0)
			return true;
	}
	return false;
}

static bool users_mfa_active(const struct json *user)
{
	const char *state = json_get_string(json_get(user, "mfa"), "state");
	return state != NULL && strcmp(state, "active") == 0;
}

/* An account password check, made off the event loop: the hashes to try
 * are copied out of the user record on the loop, verified on a worker
 * thread, and the outcome applied on the loop again. */
#define USERS_CHECK_MAX_HASHES 64

struct instance_users_check {
	char *user_name; /* as stored; NULL: no such user (the dummy is checked) */
	char *service;
	char *password;
	char *hashes[USERS_CHECK_MAX_HASHES];
	size_t hash_count;
	bool first_is_account; /* hashes[0] is the account password */
	int matched;           /* index of the hash that matched, -1 none */
	char *new_password;    /* to hash once the account password matched */
	char new_hash[CRYPTO_PASSWORD_HASH_LEN];
};

static pthread_once_t users_dummy_once = PTHREAD_ONCE_INIT;
static char users_dummy[CRYPTO_PASSWORD_HASH_LEN];

static void users_dummy_make(void)
{
	const char *error;
	char *random = crypto_random_hex(16);
	if (crypto_password_hash(random, users_dummy, &error) < 0)
		users_dummy[0] = '\0';
	mem_free(random);
}

/* Argon2id on a hash of a random password when the user does not exist, so
 * the time a failed login takes does not tell whether the name was right. */
static const char *users_dummy_hash(void)
{
	pthread_once(&users_dummy_once, users_dummy_make);
	return users_dummy;
}

static void users_check_add(struct instance_users_check *check, const char *hash)
{
	if (hash != NULL && check->hash_count < USERS_CHECK_MAX_HASHES)
		check->hashes[check->hash_count++] = mem_strdup(hash);
}

struct instance_users_check *instance_users_login_prepare(struct instance_users *u,
							  const char *user_name,
							  const char *password, const char *service)
{
	if (password == NULL || service == NULL || password[0] == '\0' || strlen(password) > 1024)
		return NULL;
	struct instance_users_check *check = mem_new(struct instance_users_check);
	check->password = mem_strdup(password);
	check->service = mem_strdup(service);
	check->matched = -1;
	const struct json *user = users_find(u, user_name);
	if (user == NULL)
		return check; /* the dummy, on the worker */
	check->user_name = mem_strdup(json_get_string(user, "userName"));
	bool web = strcmp(service, "web") == 0;
	/* With MFA on, IMAP and scripts use app passwords: they cannot ask for
	 * a code. Without it, either works. */
	if (web || !users_mfa_active(user)) {
		users_check_add(check, json_get_string(user, "passwordHash"));
		check->first_is_account = check->hash_count == 1;
	}
	const struct json *list = json_get(user, "appPasswords");
	for (size_t i = 0; !web && i < json_count(list); i++)
		users_check_add(check, json_get_string(json_at(list, i), "hash"));
	return check;
}

/* App passwords are 96 random bits: guessing one is hopeless even against
 * a fast hash, so they are kept as salted SHA-256 ("sha256$SALT$DIGEST")
 * and checking them costs next to nothing. A login then costs one Argon2id
 * check (the account password, or the dummy) whatever the user has, so the
 * time does not tell which names exist. App passwords made before are
 * Argon2id hashes and are checked as such. */
#define USERS_APP_HASH_PREFIX "sha256$"
#define USERS_APP_SALT_BYTES 16

static void users_app_digest(const char *salt_hex, const char *secret, char *digest_hex)
{
	unsigned char digest[CRYPTO_SHA256_LEN];
	struct crypto_sha256_ctx *ctx = crypto_sha256_create();
	crypto_sha256_update(ctx, salt_hex, strlen(salt_hex));
	crypto_sha256_update(ctx, "$", 1);
	crypto_sha256_update(ctx, secret, strlen(secret));
	crypto_sha256_finish(&ctx, digest);
	hex_encode(digest, sizeof(digest), digest_hex);
}

static void users_app_hash_make(const char *secret, char out[CRYPTO_PASSWORD_HASH_LEN])
{
	char *salt = crypto_random_hex(USERS_APP_SALT_BYTES);
	char digest[CRYPTO_SHA256_LEN * 2 + 1];
	users_app_digest(salt, secret, digest);
	snprintf(out, CRYPTO_PASSWORD_HASH_LEN, USERS_APP_HASH_PREFIX "%s$%s", salt, digest);
	mem_free(salt);
}

static bool users_is_app_hash(const char *hash)
{
	return strncmp(hash, USERS_APP_HASH_PREFIX, strlen(USERS_APP_HASH_PREFIX)) == 0;
}

static bool users_app_hash_verify(const char *hash, const char *secret)
{
	const char *salt = hash + strlen(USERS_APP_HASH_PREFIX);
	const char *dollar = strchr(salt, '$');
	char digest[CRYPTO_SHA256_LEN * 2 + 1];
	if (dollar == NULL || dollar - salt != USERS_APP_SALT_BYTES * 2 ||
	    strlen(dollar + 1) != sizeof(digest) - 1)
		return false;
	char salt_hex[USERS_APP_SALT_BYTES * 2 + 1];
	memcpy(salt_hex, salt, sizeof(salt_hex) - 1);
	salt_hex[sizeof(salt_hex) - 1] = '\0';
	users_app_digest(salt_hex, secret, digest);
	return crypto_equal(digest, dollar + 1, sizeof(digest) - 1);
}

void instance_users_check_run(struct instance_users_check *check)
{
	bool slow = false;
	for (size_t i = 0; check->user_name != NULL && i < check->hash_count && check->matched < 0;
	     i++) {
		bool fast = users_is_app_hash(check->hashes[i]);
		slow = slow || !fast;
		if (fast ? users_app_hash_verify(check->hashes[i], check->password)
			 : crypto_password_verify(check->hashes[i], check->password))
			check->matched = (int)i;
	}
	/* an unknown user, one with MFA on (app passwords only) or without a
	 * password costs one Argon2id check too */
	if (!slow)
		(void)crypto_password_verify(users_dummy_hash(), check->password);
	const char *error;
	if (check->new_password != NULL && check->matched == 0 && check->first_is_account &&
	    crypto_password_hash(check->new_password, check->new_hash, &error) < 0)
		check->new_hash[0] = '\0';
}

void instance_users_check_free(struct instance_users_check **_check)
{
	struct instance_users_check *check = *_check;
	if (check == NULL)
		return;
	*_check = NULL;
	crypto_wipe(check->password, strlen(check->password));
	mem_free(check->password);
	if (check->new_password != NULL)
		crypto_wipe(check->new_password, strlen(check->new_password));
	mem_free(check->new_password);
	mem_free(check->service);
	mem_free(check->user_name);
	for (size_t i = 0; i < check->hash_count; i++)
		mem_free(check->hashes[i]);
	mem_free(check);
}

/* The hash that matched is still one of the user's: the password or app
 * password was not changed or removed while it was being checked. */
static bool users_check_still_valid(const struct json *user,
				    const struct instance_users_check *check)
{
	const char *hash = check->hashes[check->matched];
	const char *account = json_get_string(user, "passwordHash");
	if (check->matched == 0 && check->first_is_account)
		return account != NULL && strcmp(account, hash) == 0;
	const struct json *list = json_get(user, "appPasswords");
	for (size_t i = 0; i < json_count(list); i++) {
		const char *h = json_get_string(json_at(list, i), "hash");
		if (h != NULL && strcmp(h, hash) == 0)
			return true;
	}
	return false;
}

/* ---- account passwords checked off the loop, for the call that follows ---- */

struct instance_users_check *instance_users_account_prepare(struct instance_users *u,
							    const char *user_name,
							    const char *password,
							    const char *new_password)
{
	const char *error;
	if (password == NULL || strlen(password) > 1024)
		return NULL;
	struct instance_users_check *check = mem_new(struct instance_users_check);
	check->password = mem_strdup(password);
	if (new_password != NULL && users_check_password(new_password, &error) == 0)
		check->new_password = mem_strdup(new_password);
	check->service = mem_strdup("account");
	check->matched = -1;
	const struct json *user = users_find(u, user_name);
	if (user != NULL) {
		check->user_name = mem_strdup(json_get_string(user, "userName"));
		users_check_add(check, json_get_string(user, "passwordHash"));
		check->first_is_account = check->hash_count == 1;
	}
	return check;
}

void instance_users_account_checked(struct instance_users *u,
				    const struct instance_users_check *check)
{
	instance_users_account_forget(u);
	if (check == NULL || check->user_name == NULL)
		return;
	const struct json *user = users_find(u, check->user_name);
	u->checked_name = mem_strdup(check->user_name);
	u->checked_password = mem_strdup(check->password);
	u->checked_ok = user != NULL && check->matched == 0 && check->first_is_account &&
			users_check_still_valid(user, check);
	if (u->checked_ok && check->new_password != NULL && check->new_hash[0] != '\0') {
		u->prepared_password = mem_strdup(check->new_password);
		memcpy(u->prepared_hash, check->new_hash, sizeof(u->prepared_hash));
	}
}

void instance_users_account_forget(struct instance_users *u)
{
	if (u->checked_password != NULL)
		crypto_wipe(u->checked_password, strlen(u->checked_password));
	mem_free(u->checked_password);
	mem_free(u->checked_name);
	u->checked_password = u->checked_name = NULL;
	u->checked_ok = false;
	if (u->prepared_password != NULL)
		crypto_wipe(u->prepared_password, strlen(u->prepared_password));
	mem_free(u->prepared_password);
	u->prepared_password = NULL;
	crypto_wipe(u->prepared_hash, sizeof(u->prepared_hash));
}

/* The hash made on a worker for exactly this new password, if any. */
static const char *users_prepared_hash(struct instance_users *u, const char *password)
{
	if (u->prepared_password == NULL || strlen(u->prepared_password) != strlen(password) ||
	    !crypto_equal(u->prepared_password, password, strlen(password)))
		return NULL;
	return u->prepared_hash;
}

/* The user's account password: the outcome of the check made off the loop
 * for this very name and password if there is one, else Argon2id here. */
static bool users_account_password_ok(struct instance_users *u, const struct json *user,
				      const char *password)
{
	const char *name = json_get_string(user, "userName");
	if (u->checked_name != NULL && name != NULL && strcmp(u->checked_name, name) == 0 &&
	    strlen(u->checked_password) == strlen(password) &&
	    crypto_equal(u->checked_password, password, strlen(password)))
		return u->checked_ok;
	return crypto_password_verify(json_get_string(user, "passwordHash"), password);
}

struct json *instance_users_rights_view(struct instance_users *u, const char *user_name)
{
	const struct json *user = users_find(u, user_name);
	if (user == NULL)
		return NULL;
	struct json *v = json_new_object();
	json_set_string(v, "userName", json_get_string(user, "userName"));
	json_set_string(v, "fullName", json_get_string(user, "fullName"));
	json_set(v, "emailAddresses", json_clone(json_get(user, "emailAddresses")));
	json_set(v, "privileges", json_clone(json_get(user, "privileges")));
	json_set(v, "loginPrivileges", json_clone(json_get(user, "loginPrivileges")));
	json_set_bool(v, "auditor", users_list_has(json_get(user, "privileges"), "auditor"));
	json_set_bool(v, "mfaEnabled", users_mfa_active(user));
	json_set_string(v, "archiveName", json_get_string(user, "archiveName"));
	const struct json *rights = json_get(user, "folderRights");
	json_set(v, "folderRights", rights != NULL ? json_clone(rights) : json_new_object());
	/* what the privileges allow (admin expanded), for clients to offer */
	json_set(v, "effectivePrivileges", instance_rights_effective(v));
	json_set_bool(v, "readsOtherArchives", instance_rights_reads_others(v));
	return v;
}

struct json *instance_users_client_view(struct instance_users *u, const char *user_name)
{
	struct json *v = instance_users_rights_view(u, user_name);
	if (v != NULL && !instance_rights_has(v, "login"))
		json_unref(&v);
	return v;
}

int instance_users_login_finish(struct instance_users *u, const struct instance_users_check *check,
				const char *totp, bool persist, struct json **view_r,
				const char **code_r, const char **error_r)
{
	*view_r = NULL;
	*code_r = "auth-failed";
	*error_r = "invalid user name or password";
	if (check == NULL || check->user_name == NULL || check->matched < 0)
		return 0;
	struct json *user = users_find(u, check->user_name);
	const char *service = check->service;
	if (user == NULL || !users_check_still_valid(user, check) ||
	    !instance_rights_has(user, "login") ||
	    !users_list_has(json_get(user, "loginPrivileges"), service))
		return 0;
	bool web = strcmp(service, "web") == 0;
	if (web && users_mfa_active(user)) {
		if (totp == NULL || totp[0] == '\0') {
			*code_r = "mfa-required";
			*error_r = "enter the code from your authenticator app";
			return 0;
		}
		struct json *m = json_get(user, "mfa");
		long long last = 0, step;
		const char *terror;
		(void)json_get_int(m, "lastStep", &last);
		if (auth_totp_verify(json_get_string(m, "secret"), totp, time(NULL), 1, last, &step,
				     &terror) != 1) {
			*code_r = "auth-failed";
			*error_r = "invalid code";
			return 0;
		}
		/* a code works once (while frozen, until the process restarts) */
		json_set_int(m, "lastStep", step);
		const char *save_error;
		if (persist && users_store(u, user, &save_error) < 0) {
			*code_r = "failed";
			*error_r = save_error;
			return -1;
		}
	}
	*view_r = instance_users_client_view(u, json_get_string(user, "userName"));
	return 1;
}

struct json *instance_users_app_passwords(struct instance_users *u, const char *user_name)
{
	const struct json *user = users_find(u, user_name);
	struct json *list = json_new_array();
	const struct json *have = json_get(user, "appPasswords");
	for (size_t i = 0; i < json_count(have); i++) {
		struct json *e = json_new_object();
		json_set_string(e, "name", json_get_string(json_at(have, i), "name"));
		long long created = 0;
		(void)json_get_int(json_at(have, i), "created", &created);
		json_set_int(e, "created", created);
		json_append(list, e);
	}
	return list;
}

int instance_users_app_password_create(struct instance_users *u, const char *user_name,
				       const char *password, const char *name,
				       struct json **result_r, const char **error_r)
{
	struct json *user = users_find(u, user_name);
	if (user == NULL || password == NULL || !users_account_password_ok(u, user, password)) {
		*error_r = "the password is not right";
		return -1;
	}
	size_t len = name == NULL ? 0 : strlen(name);
	bool ok = len > 0 && len <= 64;
	for (size_t i = 0; ok && i < len; i++)
		ok = (unsigned char)name[i] >= 0x20 && name[i] != 0x7f;
	if (!ok) {
		*error_r = "name: expected 1 to 64 printable characters";
		return -1;
	}
	struct json *before = json_clone(user);
	struct json *list = json_get(user, "appPasswords");
	if (list == NULL) {
		list = json_new_array();
		json_set(user, "appPasswords", list);
	}
	for (size_t i = 0; i < json_count(list); i++) {
		if (strcmp(json_get_string(json_at(list, i), "name"), name) == 0) {
			json_unref(&before);
			*error_r = tstr_printf("an app password named '%s' exists", name);
			return -1;
		}
	}
	char *secret = crypto_random_hex(12);
	char hash[CRYPTO_PASSWORD_HASH_LEN];
	users_app_hash_make(secret, hash);
	struct json *e = json_new_object();
	json_set_string(e, "name", name);
	json_set_string(e, "hash", hash);
	json_set_int(e, "created", (long long)time(NULL));
	json_append(list, e);
	if (users_commit(u, user, before, error_r) < 0) {
		mem_free(secret);
		return -1;
	}
	*result_r = json_new_object();
	json_set_string(*result_r, "name", name);
	json_set_string(*result_r, "password", secret);
	crypto_wipe(secret, strlen(secret));
	mem_free(secret);
	return 0;
}

int instance_users_app_password_delete(struct instance_users *u, const char *user_name,
				       const char *name, const char **error_r)
{
	struct json *list = json_get(users_find(u, user_name), "appPasswords");
	for (size_t i = 0; name != NULL && i < json_count(list); i++) {
		if (strcmp(json_get_string(json_at(list, i), "name"), name) == 0) {
			struct json *user = users_find(u, user_name);
			struct json *before = json_clone(user);
			json_remove_at(list, i);
			return users_commit(u, user, before, error_r);
		}
	}
	*error_r = tstr_printf("no app password named '%s'", name == NULL ? "" : name);
	return -1;
}

/* ---- end users: their own password and MFA ---- */

static int users_refuse(const char **code_r, const char **error_r, const char *code,
			const char *error)
{
	*code_r = code;
	*error_r = error;
	return -1;
}

/* The user, if `password` is their account password (not an app password). */
static struct json *users_check_own(struct instance_users *u, const char *user_name,
				    const char *password, const char **code_r, const char **error_r)
{
	struct json *user = users_find(u, user_name);
	if (user == NULL || password == NULL || !users_account_password_ok(u, user, password)) {
		users_refuse(code_r, error_r, "forbidden", "the password is not right");
		return NULL;
	}
	return user;
}

/* Save a change made since `before`, or undo it. */
static int users_commit_change(struct instance_users *u, struct json *user, struct json *before,
			       const char **code_r, const char **error_r)
{
	if (users_commit(u, user, before, error_r) < 0) {
		*code_r = "failed";
		return -1;
	}
	return 0;
}

int instance_users_change_password(struct instance_users *u, const char *user_name,
				   const char *old_password, const char *new_password,
				   const char **code_r, const char **error_r)
{
	struct json *user = users_check_own(u, user_name, old_password, code_r, error_r);
	if (user == NULL)
		return -1;
	if (new_password == NULL || users_check_password(new_password, error_r) < 0)
		return users_refuse(code_r, error_r, "bad-request",
				    "new password: expected 8 to 1024 characters");
	struct json *before = json_clone(user);
	if (users_set_password(u, user, new_password, error_r) < 0) {
		json_unref(&before); /* nothing was changed */
		*code_r = "failed";
		return -1;
	}
	return users_commit_change(u, user, before, code_r, error_r);
}

int instance_users_mfa_begin(struct instance_users *u, const char *user_name, const char *password,
			     struct json **result_r, const char **code_r, const char **error_r)
{
	struct json *user = users_check_own(u, user_name, password, code_r, error_r);
	if (user == NULL)
		return -1;
	if (users_mfa_active(user))
		return users_refuse(code_r, error_r, "bad-request",
				    "two-factor authentication is already on: turn it off first");
	/* The same as the administrators' InitializeMFA: a pending secret. */
	if (users_apply(u, user, NULL, users_change_mfa_initialize, result_r, error_r) < 0) {
		*code_r = "failed";
		return -1;
	}
	return 0;
}

/* A TOTP code for the user's MFA secret, used once: 1 right (the step is
 * recorded in memory), 0 not. */
static int users_mfa_code_ok(struct json *user, const char *code)
{
	struct json *m = json_get(user, "mfa");
	long long last = 0, step;
	const char *error;
	(void)json_get_int(m, "lastStep", &last);
	if (code == NULL || json_get_string(m, "secret") == NULL ||
	    auth_totp_verify(json_get_string(m, "secret"), code, time(NULL), 1, last, &step,
			     &error) != 1)
		return 0;
	json_set_int(m, "lastStep", step);
	return 1;
}

int instance_users_mfa_activate(struct instance_users *u, const char *user_name, const char *code,
				const char **code_r, const char **error_r)
{
	struct json *user = users_find(u, user_name);
	const char *state = json_get_string(json_get(user, "mfa"), "state");
	if (user == NULL || state == NULL || strcmp(state, "pending") != 0)
		return users_refuse(code_r, error_r, "bad-request",
				    "start setting up two-factor authentication first");
	struct json *before = json_clone(user);
	if (users_mfa_code_ok(user, code) != 1) {
		json_unref(&before); /* a wrong code changes nothing */
		return users_refuse(code_r, error_r, "forbidden",
				    "the code is not right (check the time on your phone)");
	}
	json_set_string(json_get(user, "mfa"), "state", "active");
	return users_commit_change(u, user, before, code_r, error_r);
}

int instance_users_mfa_disable(struct instance_users *u, const char *user_name,
			       const char *password, const char *code, const char **code_r,
			       const char **error_r)
{
	struct json *user = users_check_own(u, user_name, password, code_r, error_r);
	if (user == NULL)
		return -1;
	if (!users_mfa_active(user))
		return users_refuse(code_r, error_r, "bad-request",
				    "two-factor authentication is not on");
	struct json *before = json_clone(user);
	if (users_mfa_code_ok(user, code) != 1) {
		json_unref(&before); /* a wrong code changes nothing */
		return users_refuse(code_r, error_r, "forbidden", "the code is not right");
	}
	/* App passwords stay: without MFA they work as before. */
	(void)json_remove(user, "mfa");
	return users_commit_change(u, user, before, code_r, error_r);
}
