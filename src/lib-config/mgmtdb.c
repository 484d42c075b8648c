#include "mgmtdb.h"
#include "config.h"
#include "file.h"
#include "hash.h"
#include "json.h"
#include "mem.h"
#include "tstr.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MGMTDB_MAX_FILE_SIZE (64 * 1024 * 1024)

struct mgmtdb {
	struct json *root;
	/* Every API call names an instance, every login an administrator: found
	 * through these, not by a scan of lists that may hold thousands. The
	 * values are borrowed entries of root's arrays. IDs and aliases share
	 * one namespace, so one table holds both. */
	struct hash *instances; /* ID or alias -> entry of "instances" */
	struct hash *admins;    /* name -> entry of "systemAdministrators" */
};

static struct mgmtdb *mgmtdb_new(struct json *root)
{
	struct mgmtdb *db = mem_new(struct mgmtdb);
	db->root = root;
	db->instances = hash_create();
	db->admins = hash_create();
	hash_wipe_keys(db->admins);
	return db;
}

static const char *const mgmtdb_server_sections[] = {"instanceHosts", "clientAccessServers"};
static const char *const mgmtdb_server_kind_names[] = {"InstanceHost", "ClientAccessServer"};

const char *mgmtdb_server_kind_name(enum mgmtdb_server_kind kind)
{
	return mgmtdb_server_kind_names[kind];
}

struct mgmtdb *mgmtdb_create(void)
{
	struct mgmtdb *db = mgmtdb_new(json_new_object());
	json_set_int(db->root, "schemaVersion", MGMTDB_SCHEMA_VERSION);
	json_set_string(db->root, "productKey", "");
	json_set(db->root, "systemAdministrators", json_new_array());
	json_set(db->root, "instanceHosts", json_new_array());
	json_set(db->root, "clientAccessServers", json_new_array());
	json_set(db->root, "instances", json_new_array());
	return db;
}

void mgmtdb_destroy(struct mgmtdb **db)
{
	if (*db == NULL)
		return;
	json_unref(&(*db)->root);
	hash_destroy(&(*db)->instances);
	hash_destroy(&(*db)->admins);
	mem_free(*db);
	*db = NULL;
}

static int mgmtdb_validate_array(const char *path, struct json *root, const char *section,
				 const char *const *string_fields, const char **error_r)
{
	struct json *arr = json_get(root, section);
	if (arr == NULL) {
		json_set(root, section, json_new_array());
		return 0;
	}
	if (json_kind(arr) != JSON_KIND_ARRAY) {
		*error_r = tstr_printf("%s is corrupt: field %s is not an array", path, section);
		return -1;
	}
	for (size_t i = 0; i < json_count(arr); i++) {
		struct json *entry = json_at(arr, i);
		if (json_kind(entry) != JSON_KIND_OBJECT) {
			*error_r = tstr_printf("%s is corrupt: %s[%zu] is not an object", path,
					       section, i);
			return -1;
		}
		for (const char *const *f = string_fields; *f != NULL; f++) {
			if (json_get_string(entry, *f) == NULL) {
				*error_r = tstr_printf(
					"%s is corrupt: %s[%zu].%s is missing or not a string",
					path, section, i, *f);
				return -1;
			}
		}
	}
	return 0;
}

static int mgmtdb_validate(const char *path, struct json *root, const char **error_r)
{
	static const char *const admin_fields[] = {"name", "passwordHash", NULL};
	static const char *const server_fields[] = {"serverName", "fingerprint", NULL};
	long long version;
	if (json_kind(root) != JSON_KIND_OBJECT) {
		*error_r = tstr_printf("%s is corrupt: expected a JSON object", path);
		return -1;
	}
	if (json_get_int(root, "schemaVersion", &version) != 1 || version < 1) {
		*error_r = tstr_printf("%s is corrupt: schemaVersion missing or invalid", path);
		return -1;
	}
	if (version > MGMTDB_SCHEMA_VERSION) {
		*error_r = tstr_printf("%s has schema version %lld, newer than this Coffer "
				       "understands (%d): upgrade Coffer",
				       path, version, MGMTDB_SCHEMA_VERSION);
		return -1;
	}
	if (mgmtdb_validate_array(path, root, "systemAdministrators", admin_fields, error_r) < 0)
		return -1;
	for (int k = 0; k < 2; k++) {
		if (mgmtdb_validate_array(path, root, mgmtdb_server_sections[k], server_fields,
					  error_r) < 0)
			return -1;
		struct json *arr = json_get(root, mgmtdb_server_sections[k]);
		for (size_t i = 0; i < json_count(arr); i++) {
			long long port;
			if (json_get_int(json_at(arr, i), "port", &port) != 1 || port < 1 ||
			    port > 65535) {
				*error_r = tstr_printf(
					"%s is corrupt: %s[%zu].port is not a port number", path,
					mgmtdb_server_sections[k], i);
				return -1;
			}
		}
	}
	static const char *const instance_fields[] = {
		"instanceID",    "alias",     "displayName", "instanceHost",
		"baseDirectory", "startMode", NULL};
	if (mgmtdb_validate_array(path, root, "instances", instance_fields, error_r) < 0)
		return -1;
	if (json_get_string(root, "productKey") == NULL)
		json_set_string(root, "productKey", "");
	return 0;
}

/* The position of an entry in an array (removal needs it): a scan of
 * pointers, as cheap as the removal's own move of the entries after it. */
static size_t mgmtdb_position(const struct json *arr, const struct json *entry)
{
	size_t i = 0;
	while (i < json_count(arr) && json_at(arr, i) != entry)
		i++;
	return i;
}

/* Adds the instance's ID and alias to the index; 0, or -1 with the name
 * another instance has already (the namespace is one). */
static int mgmtdb_instance_index_add(struct mgmtdb *db, struct json *entry, const char **name_r)
{
	const char *id = json_get_string(entry, "instanceID");
	const char *alias = json_get_string(entry, "alias");
	if (hash_get(db->instances, id) != NULL) {
		*name_r = id;
		return -1;
	}
	hash_set(db->instances, id, entry);
	if (alias[0] == '\0' || strcmp(alias, id) == 0)
		return 0;
	if (hash_get(db->instances, alias) != NULL) {
		*name_r = alias;
		return -1;
	}
	hash_set(db->instances, alias, entry);
	return 0;
}

static void mgmtdb_instance_index_remove(struct mgmtdb *db, const struct json *entry)
{
	const char *names[] = {json_get_string(entry, "instanceID"),
			       json_get_string(entry, "alias")};
	for (size_t i = 0; i < 2; i++) {
		if (hash_get(db->instances, names[i]) == entry)
			(void)hash_remove(db->instances, names[i]);
	}
}

/* A file this code wrote never names an instance or an administrator
 * twice; one that does (edited by hand) is refused like any other damage
 * rather than have one of the two silently shadow the other. */
static int mgmtdb_index(struct mgmtdb *db, const char *origin, const char **error_r)
{
	struct json *admins = json_get(db->root, "systemAdministrators");
	for (size_t i = 0; i < json_count(admins); i++) {
		const char *name = json_get_string(json_at(admins, i), "name");
		if (hash_set(db->admins, name, json_at(admins, i)) != NULL) {
			*error_r = tstr_printf("%s is corrupt: systemAdministrators[%zu]: "
					       "administrator '%s' is listed twice",
					       origin, i, name);
			return -1;
		}
	}
	struct json *instances = json_get(db->root, "instances");
	for (size_t i = 0; i < json_count(instances); i++) {
		const char *name;
		if (mgmtdb_instance_index_add(db, json_at(instances, i), &name) < 0) {
			*error_r = tstr_printf("%s is corrupt: instances[%zu]: the ID or alias "
					       "'%s' is another instance's too",
					       origin, i, name);
			return -1;
		}
	}
	return 0;
}

int mgmtdb_parse(const char *text, size_t len, const char *origin, struct mgmtdb **db_r,
		 const char **error_r)
{
	struct json *root;
	const char *parse_error;
	if (json_parse(text, len, &root, &parse_error) < 0) {
		*error_r = tstr_printf("%s is corrupt: %s (the file was left untouched)", origin,
				       parse_error);
		return -1;
	}
	if (mgmtdb_validate(origin, root, error_r) < 0) {
		json_unref(&root);
		return -1;
	}
	struct mgmtdb *db = mgmtdb_new(root);
	if (mgmtdb_index(db, origin, error_r) < 0) {
		mgmtdb_destroy(&db);
		return -1;
	}
	*db_r = db;
	return 0;
}

int mgmtdb_load(const char *path, struct mgmtdb **db_r, const char **error_r)
{
	char *text;
	size_t len;
	const char *read_error;
	if (file_read_all(path, MGMTDB_MAX_FILE_SIZE, &text, &len, &read_error) < 0) {
		*error_r = tstr_printf("cannot read the management database: %s", read_error);
		return -1;
	}
	int ret = mgmtdb_parse(text, len, path, db_r, error_r);
	mem_free(text);
	return ret;
}

int mgmtdb_save(struct mgmtdb *db, const char *path, const char **error_r)
{
	char *text = json_serialize(db->root, true);
	size_t len = strlen(text);
	text = mem_realloc(text, len + 2);
	text[len] = '\n';
	int ret = file_write_atomic(path, text, len + 1, 0600, error_r);
	mem_free(text);
	return ret;
}

struct json *mgmtdb_root(struct mgmtdb *db)
{
	return db->root;
}

const char *mgmtdb_product_key(struct mgmtdb *db)
{
	return json_get_string(db->root, "productKey");
}

void mgmtdb_set_product_key(struct mgmtdb *db, const char *key)
{
	json_set_string(db->root, "productKey", key);
}

/* ---- administrators ---- */

bool mgmtdb_admin_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 64)
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr("._@-", *p) == NULL)
			return false;
	}
	return true;
}

static struct json *mgmtdb_admin_find(struct mgmtdb *db, const char *name)
{
	return name == NULL ? NULL : hash_get(db->admins, name);
}

int mgmtdb_admin_add(struct mgmtdb *db, const char *name, const char *password_hash,
		     const char **error_r)
{
	if (!mgmtdb_admin_name_valid(name)) {
		*error_r = tstr_printf(
			"invalid administrator name '%s': expected 1-64 letters, digits or . _ @ -",
			name);
		return -1;
	}
	if (mgmtdb_admin_find(db, name) != NULL) {
		*error_r = tstr_printf("administrator '%s' already exists", name);
		return -1;
	}
	struct json *admin = json_new_object();
	json_set_string(admin, "name", name);
	json_set_string(admin, "passwordHash", password_hash);
	json_set_int(admin, "created", (long long)time(NULL));
	json_append(json_get(db->root, "systemAdministrators"), admin);
	hash_set(db->admins, name, admin);
	return 0;
}

int mgmtdb_admin_set_password_hash(struct mgmtdb *db, const char *name, const char *password_hash,
				   const char **error_r)
{
	struct json *admin = mgmtdb_admin_find(db, name);
	if (admin == NULL) {
		*error_r = tstr_printf("no administrator '%s'", name);
		return -1;
	}
	json_set_string(admin, "passwordHash", password_hash);
	return 0;
}

const char *mgmtdb_admin_password_hash(struct mgmtdb *db, const char *name)
{
	return json_get_string(mgmtdb_admin_find(db, name), "passwordHash");
}

struct json *mgmtdb_admin_record(struct mgmtdb *db, const char *name)
{
	return mgmtdb_admin_find(db, name);
}

int mgmtdb_admin_remove(struct mgmtdb *db, const char *name)
{
	struct json *admin = name == NULL ? NULL : hash_remove(db->admins, name);
	if (admin == NULL)
		return 0;
	struct json *arr = json_get(db->root, "systemAdministrators");
	json_remove_at(arr, mgmtdb_position(arr, admin));
	return 1;
}

size_t mgmtdb_admin_count(struct mgmtdb *db)
{
	return json_count(json_get(db->root, "systemAdministrators"));
}

const char *mgmtdb_admin_name(struct mgmtdb *db, size_t index)
{
	return json_get_string(json_at(json_get(db->root, "systemAdministrators"), index), "name");
}

/* ---- sealed secrets ---- */

static const char *mgmtdb_admin_sealed_mfa(struct mgmtdb *db, size_t index)
{
	const struct json *admin = json_at(json_get(db->root, "systemAdministrators"), index);
	return json_get_string(json_get(admin, "mfa"), "secret");
}

static const char *mgmtdb_sealed_smtp_password(struct mgmtdb *db)
{
	const char *sealed = json_get_string(json_get(db->root, "smtp"), "password");
	return sealed != NULL && sealed[0] != '\0' ? sealed : NULL;
}

size_t mgmtdb_sealed_secret_count(struct mgmtdb *db)
{
	size_t count = mgmtdb_sealed_smtp_password(db) != NULL ? 1 : 0;
	for (size_t i = 0; i < mgmtdb_admin_count(db); i++) {
		if (mgmtdb_admin_sealed_mfa(db, i) != NULL)
			count++;
	}
	return count;
}

void mgmtdb_sealed_secret_get(struct mgmtdb *db, size_t index,
			      struct mgmtdb_sealed_secret *secret_r)
{
	const char *smtp = mgmtdb_sealed_smtp_password(db);
	if (smtp != NULL && index-- == 0) {
		secret_r->sealed = smtp;
		secret_r->context = "smtp-password";
		secret_r->what = "the SMTP password";
		return;
	}
	for (size_t i = 0; i < mgmtdb_admin_count(db); i++) {
		const char *sealed = mgmtdb_admin_sealed_mfa(db, i);
		if (sealed == NULL || index-- != 0)
			continue;
		const char *name = mgmtdb_admin_name(db, i);
		secret_r->sealed = sealed;
		secret_r->context = tstr_printf("mfa:%s", name);
		secret_r->what = tstr_printf("the MFA secret of administrator %s", name);
		return;
	}
	abort(); /* index out of range: a caller's bug */
}

/* ---- servers ---- */

static struct json *mgmtdb_servers(struct mgmtdb *db, enum mgmtdb_server_kind kind)
{
	return json_get(db->root, mgmtdb_server_sections[kind]);
}

static long mgmtdb_server_index(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name)
{
	struct json *arr = mgmtdb_servers(db, kind);
	for (size_t i = 0; i < json_count(arr); i++) {
		const char *n = json_get_string(json_at(arr, i), "serverName");
		if (n != NULL && strcasecmp(n, name) == 0)
			return (long)i;
	}
	return -1;
}

static int mgmtdb_server_check(const char *name, unsigned int port, const char *fingerprint,
			       const char **error_r)
{
	size_t len = strlen(name);
	bool ok = len > 0 && len <= 253;
	for (const char *p = name; ok && *p != '\0'; p++)
		ok = isalnum((unsigned char)*p) || strchr("-._:", *p) != NULL;
	if (!ok) {
		*error_r = tstr_printf("invalid serverName '%s': expected a host name or address",
				       name);
		return -1;
	}
	if (port < 1 || port > 65535) {
		*error_r = tstr_printf("invalid port %u: expected 1-65535", port);
		return -1;
	}
	ok = strlen(fingerprint) == CONFIG_FINGERPRINT_LEN;
	for (const char *p = fingerprint; ok && *p != '\0'; p++)
		ok = isxdigit((unsigned char)*p) && !isupper((unsigned char)*p);
	if (!ok) {
		*error_r = tstr_printf(
			"invalid fingerprint '%s': expected a SHA-256 fingerprint (64 hex digits)",
			fingerprint);
		return -1;
	}
	return 0;
}

static struct json *mgmtdb_server_entry(const char *name, unsigned int port,
					const char *fingerprint)
{
	struct json *entry = json_new_object();
	json_set_string(entry, "serverName", name);
	json_set_int(entry, "port", port);
	json_set_string(entry, "fingerprint", fingerprint);
	json_set_int(entry, "added", (long long)time(NULL));
	return entry;
}

int mgmtdb_server_add(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
		      unsigned int port, const char *fingerprint, const char **error_r)
{
	if (mgmtdb_server_check(name, port, fingerprint, error_r) < 0)
		return -1;
	if (mgmtdb_server_index(db, kind, name) >= 0) {
		*error_r = tstr_printf("%s '%s' is already registered",
				       mgmtdb_server_kind_name(kind), name);
		return -1;
	}
	json_append(mgmtdb_servers(db, kind), mgmtdb_server_entry(name, port, fingerprint));
	return 0;
}

int mgmtdb_server_set(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
		      unsigned int port, const char *fingerprint, const char **error_r)
{
	if (mgmtdb_server_check(name, port, fingerprint, error_r) < 0)
		return -1;
	long index = mgmtdb_server_index(db, kind, name);
	if (index >= 0)
		json_remove_at(mgmtdb_servers(db, kind), (size_t)index);
	json_append(mgmtdb_servers(db, kind), mgmtdb_server_entry(name, port, fingerprint));
	return 0;
}

int mgmtdb_server_remove(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name)
{
	long index = mgmtdb_server_index(db, kind, name);
	if (index < 0)
		return 0;
	json_remove_at(mgmtdb_servers(db, kind), (size_t)index);
	return 1;
}

size_t mgmtdb_server_count(struct mgmtdb *db, enum mgmtdb_server_kind kind)
{
	return json_count(mgmtdb_servers(db, kind));
}

void mgmtdb_server_get(struct mgmtdb *db, enum mgmtdb_server_kind kind, size_t index,
		       struct mgmtdb_server *server_r)
{
	struct json *entry = json_at(mgmtdb_servers(db, kind), index);
	long long port = 0, added = 0;
	(void)json_get_int(entry, "port", &port);
	(void)json_get_int(entry, "added", &added);
	server_r->server_name = json_get_string(entry, "serverName");
	server_r->port = (unsigned int)port;
	server_r->fingerprint = json_get_string(entry, "fingerprint");
	server_r->added = (time_t)added;
}

int mgmtdb_server_find(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
		       struct mgmtdb_server *server_r)
{
	long index = mgmtdb_server_index(db, kind, name);
	if (index < 0)
		return 0;
	mgmtdb_server_get(db, kind, (size_t)index, server_r);
	return 1;
}

static struct json *mgmtdb_instances(struct mgmtdb *db);

int mgmtdb_server_rename(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *old_name,
			 const char *new_name, const char **error_r)
{
	long index = mgmtdb_server_index(db, kind, old_name);
	if (index < 0) {
		*error_r = tstr_printf("no %s '%s' is registered", mgmtdb_server_kind_name(kind),
				       old_name);
		return -1;
	}
	struct json *entry = json_at(mgmtdb_servers(db, kind), (size_t)index);
	long long port = 0;
	(void)json_get_int(entry, "port", &port);
	if (mgmtdb_server_check(new_name, (unsigned int)port, json_get_string(entry, "fingerprint"),
				error_r) < 0)
		return -1;
	long other = mgmtdb_server_index(db, kind, new_name);
	if (other >= 0 && other != index) {
		*error_r = tstr_printf("%s '%s' is already registered",
				       mgmtdb_server_kind_name(kind), new_name);
		return -1;
	}
	/* Both names may be borrowed from entries this changes. */
	char *old_copy = mem_strdup(old_name), *new_copy = mem_strdup(new_name);
	if (kind == MGMTDB_INSTANCE_HOST) {
		struct json *arr = mgmtdb_instances(db);
		for (size_t i = 0; i < json_count(arr); i++) {
			struct json *e = json_at(arr, i);
			if (strcasecmp(json_get_string(e, "instanceHost"), old_copy) == 0)
				json_set_string(e, "instanceHost", new_copy);
		}
	}
	json_set_string(entry, "serverName", new_copy);
	mem_free(old_copy);
	mem_free(new_copy);
	return 0;
}

int mgmtdb_server_update(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
			 unsigned int port, const char *fingerprint, const char **error_r)
{
	long index = mgmtdb_server_index(db, kind, name);
	if (index < 0) {
		*error_r = tstr_printf("no %s '%s' is registered", mgmtdb_server_kind_name(kind),
				       name);
		return -1;
	}
	if (mgmtdb_server_check(name, port, fingerprint, error_r) < 0)
		return -1;
	struct json *entry = json_at(mgmtdb_servers(db, kind), (size_t)index);
	char *fp = mem_strdup(fingerprint); /* may be borrowed from the entry */
	json_set_int(entry, "port", port);
	json_set_string(entry, "fingerprint", fp);
	mem_free(fp);
	return 0;
}

int mgmtdb_server_pair(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
		       unsigned int port, const char *fingerprint, const char **renamed_from_r,
		       const char **error_r)
{
	*renamed_from_r = NULL;
	if (mgmtdb_server_check(name, port, fingerprint, error_r) < 0)
		return -1;
	struct json *arr = mgmtdb_servers(db, kind);
	for (size_t i = 0; mgmtdb_server_index(db, kind, name) < 0 && i < json_count(arr); i++) {
		const struct json *e = json_at(arr, i);
		if (strcmp(json_get_string(e, "fingerprint"), fingerprint) != 0)
			continue;
		const char *old = tstr_dup(json_get_string(e, "serverName"));
		if (mgmtdb_server_rename(db, kind, old, name, error_r) < 0)
			return -1;
		*renamed_from_r = old;
	}
	return mgmtdb_server_set(db, kind, name, port, fingerprint, error_r);
}

/* ---- instances ---- */

bool mgmtdb_instance_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 63 || name[0] == '-')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	}
	return true;
}

static struct json *mgmtdb_instances(struct mgmtdb *db)
{
	return json_get(db->root, "instances");
}

size_t mgmtdb_instance_count_on_host(struct mgmtdb *db, const char *host_name)
{
	struct json *arr = mgmtdb_instances(db);
	size_t count = 0;
	for (size_t i = 0; i < json_count(arr); i++) {
		if (strcasecmp(json_get_string(json_at(arr, i), "instanceHost"), host_name) == 0)
			count++;
	}
	return count;
}

/* The instance with this ID (or also this alias), or NULL. */
static struct json *mgmtdb_instance_lookup(struct mgmtdb *db, const char *id_or_alias, bool aliases)
{
	struct json *e = id_or_alias == NULL ? NULL : hash_get(db->instances, id_or_alias);
	if (e != NULL && !aliases && strcmp(json_get_string(e, "instanceID"), id_or_alias) != 0)
		return NULL;
	return e;
}

static int mgmtdb_instance_check(struct mgmtdb *db, const struct mgmtdb_instance *inst, bool is_new,
				 const char **error_r)
{
	if (!mgmtdb_instance_name_valid(inst->id)) {
		*error_r = tstr_printf("invalid instanceID '%s': expected [a-z0-9][a-z0-9-]{0,62}",
				       inst->id);
		return -1;
	}
	if (inst->alias[0] != '\0' && !mgmtdb_instance_name_valid(inst->alias)) {
		*error_r =
			tstr_printf("invalid alias '%s': expected [a-z0-9][a-z0-9-]{0,62} or empty",
				    inst->alias);
		return -1;
	}
	if (strcmp(inst->start_mode, "automatic") != 0 && strcmp(inst->start_mode, "manual") != 0) {
		*error_r = tstr_printf("invalid startMode '%s': expected automatic or manual",
				       inst->start_mode);
		return -1;
	}
	if (strlen(inst->display_name) > 256) {
		*error_r = "invalid displayName: at most 256 characters";
		return -1;
	}
	for (const char *p = inst->display_name; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20) {
			*error_r = "invalid displayName: control characters are not allowed";
			return -1;
		}
	}
	/* IDs and aliases share one namespace: user@NAME must mean one instance. */
	const struct json *self = is_new ? NULL : mgmtdb_instance_lookup(db, inst->id, false);
	const struct json *clash = mgmtdb_instance_lookup(db, inst->id, true);
	if (clash != NULL && clash != self) {
		*error_r = tstr_printf("an instance with the ID or alias '%s' exists", inst->id);
		return -1;
	}
	clash = inst->alias[0] == '\0' ? NULL : mgmtdb_instance_lookup(db, inst->alias, true);
	if (clash != NULL && clash != self) {
		*error_r = tstr_printf("an instance with the ID or alias '%s' exists", inst->alias);
		return -1;
	}
	return 0;
}

static struct json *mgmtdb_instance_entry(const struct mgmtdb_instance *inst, time_t created)
{
	struct json *e = json_new_object();
	json_set_string(e, "instanceID", inst->id);
	json_set_string(e, "alias", inst->alias);
	json_set_string(e, "displayName", inst->display_name);
	json_set_string(e, "instanceHost", inst->instance_host);
	json_set_string(e, "baseDirectory", inst->base_directory);
	json_set_string(e, "startMode", inst->start_mode);
	json_set_int(e, "created", (long long)created);
	return e;
}

int mgmtdb_instance_add(struct mgmtdb *db, const struct mgmtdb_instance *inst, const char **error_r)
{
	if (mgmtdb_instance_check(db, inst, true, error_r) < 0)
		return -1;
	struct json *entry = mgmtdb_instance_entry(inst, time(NULL));
	const char *name;
	json_append(mgmtdb_instances(db), entry);
	(void)mgmtdb_instance_index_add(db, entry, &name); /* checked: no clash */
	return 0;
}

int mgmtdb_instance_update(struct mgmtdb *db, const struct mgmtdb_instance *inst,
			   const char **error_r)
{
	struct json *old = mgmtdb_instance_lookup(db, inst->id, false);
	if (old == NULL) {
		*error_r = tstr_printf("no instance '%s'", inst->id);
		return -1;
	}
	if (mgmtdb_instance_check(db, inst, false, error_r) < 0)
		return -1;
	long long created = 0;
	(void)json_get_int(old, "created", &created);
	/* made before the old entry goes: inst may borrow its strings */
	struct json *entry = mgmtdb_instance_entry(inst, (time_t)created);
	/* Replace in place so the listing order stays. */
	struct json *arr = mgmtdb_instances(db), *copy = json_new_array();
	for (size_t i = 0; i < json_count(arr); i++) {
		struct json *e = json_at(arr, i);
		json_append(copy, json_ref(e == old ? entry : e));
	}
	mgmtdb_instance_index_remove(db, old);
	const char *name;
	(void)mgmtdb_instance_index_add(db, entry, &name); /* checked: no clash */
	json_unref(&entry);
	json_set(db->root, "instances", copy);
	return 0;
}

int mgmtdb_instance_remove(struct mgmtdb *db, const char *id)
{
	struct json *entry = mgmtdb_instance_lookup(db, id, false);
	if (entry == NULL)
		return 0;
	mgmtdb_instance_index_remove(db, entry);
	json_remove_at(mgmtdb_instances(db), mgmtdb_position(mgmtdb_instances(db), entry));
	return 1;
}

size_t mgmtdb_instance_count(struct mgmtdb *db)
{
	return json_count(mgmtdb_instances(db));
}

static void mgmtdb_instance_fill(const struct json *e, struct mgmtdb_instance *inst_r)
{
	long long created = 0;
	(void)json_get_int(e, "created", &created);
	inst_r->id = json_get_string(e, "instanceID");
	inst_r->alias = json_get_string(e, "alias");
	inst_r->display_name = json_get_string(e, "displayName");
	inst_r->instance_host = json_get_string(e, "instanceHost");
	inst_r->base_directory = json_get_string(e, "baseDirectory");
	inst_r->start_mode = json_get_string(e, "startMode");
	inst_r->created = (time_t)created;
}

void mgmtdb_instance_get(struct mgmtdb *db, size_t index, struct mgmtdb_instance *inst_r)
{
	mgmtdb_instance_fill(json_at(mgmtdb_instances(db), index), inst_r);
}

int mgmtdb_instance_find(struct mgmtdb *db, const char *id_or_alias, struct mgmtdb_instance *inst_r)
{
	const struct json *entry = mgmtdb_instance_lookup(db, id_or_alias, true);
	if (entry == NULL)
		return 0;
	mgmtdb_instance_fill(entry, inst_r);
	return 1;
}
