#ifndef COFFER_MGMTDB_H
#define COFFER_MGMTDB_H
/* mgmtdb: the management database, one JSON file in the Management Server's
 * config directory (management-database.json).
 *
 * Contract: mgmtdb_load() validates the whole file (schema version, types of
 * every field) and fails with an error naming the file and what is wrong; it
 * never writes. A corrupt or unreadable file is therefore never overwritten:
 * the Management Server refuses to start. mgmtdb_save() writes atomically
 * (temp file, fsync, rename, fsync of the directory). The document carries
 * "schemaVersion"; newer versions than this code knows are refused.
 * Strings returned are borrowed from the database and valid until the next
 * change. */
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define MGMTDB_SCHEMA_VERSION 1
#define MGMTDB_FILE_NAME "management-database.json"

struct json;
struct mgmtdb;

enum mgmtdb_server_kind { MGMTDB_INSTANCE_HOST, MGMTDB_CLIENT_ACCESS_SERVER };

struct mgmtdb_server {
	const char *server_name;
	unsigned int port;
	const char *fingerprint;
	time_t added;
};

struct mgmtdb *mgmtdb_create(void);
int mgmtdb_load(const char *path, struct mgmtdb **db_r, const char **error_r);
/* The same validation on text in memory; `origin` names it in errors. */
int mgmtdb_parse(const char *text, size_t len, const char *origin, struct mgmtdb **db_r,
		 const char **error_r);
int mgmtdb_save(struct mgmtdb *db, const char *path, const char **error_r);
void mgmtdb_destroy(struct mgmtdb **db);

/* "InstanceHost" / "ClientAccessServer" (the API's words). */
const char *mgmtdb_server_kind_name(enum mgmtdb_server_kind kind);

const char *mgmtdb_product_key(struct mgmtdb *db);
void mgmtdb_set_product_key(struct mgmtdb *db, const char *key);

/* System administrators. Names: 1-64 of [A-Za-z0-9._@-]. */
bool mgmtdb_admin_name_valid(const char *name);
int mgmtdb_admin_add(struct mgmtdb *db, const char *name, const char *password_hash,
		     const char **error_r);
int mgmtdb_admin_set_password_hash(struct mgmtdb *db, const char *name, const char *password_hash,
				   const char **error_r);
/* NULL if there is no such administrator. */
const char *mgmtdb_admin_password_hash(struct mgmtdb *db, const char *name);
size_t mgmtdb_admin_count(struct mgmtdb *db);
/* The administrator's record (borrowed JSON object, NULL if none), for the
 * fields the Management Server keeps there (fullName, mfa, apiPasswordHash). */
struct json *mgmtdb_admin_record(struct mgmtdb *db, const char *name);
/* 1 removed, 0 no such administrator. */
int mgmtdb_admin_remove(struct mgmtdb *db, const char *name);
const char *mgmtdb_admin_name(struct mgmtdb *db, size_t index);

/* Registered Instance Hosts and Client Access Servers, keyed by server name
 * within a kind. add fails if the name exists; set adds or replaces (pairing
 * again after a certificate renewal). */
int mgmtdb_server_add(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
		      unsigned int port, const char *fingerprint, const char **error_r);
int mgmtdb_server_set(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
		      unsigned int port, const char *fingerprint, const char **error_r);
/* 1 removed, 0 no such server. */
int mgmtdb_server_remove(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name);
size_t mgmtdb_server_count(struct mgmtdb *db, enum mgmtdb_server_kind kind);
void mgmtdb_server_get(struct mgmtdb *db, enum mgmtdb_server_kind kind, size_t index,
		       struct mgmtdb_server *server_r);
/* 1 found, 0 not. */
int mgmtdb_server_find(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
		       struct mgmtdb_server *server_r);
/* Give a registered server a new name, keeping its port, fingerprint and
 * registration time; the instances of a renamed Instance Host follow it.
 * Fails if `old_name` is not registered or `new_name` is another server's. */
int mgmtdb_server_rename(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *old_name,
			 const char *new_name, const char **error_r);
/* Change the port and fingerprint of a registered server in place (its
 * position and registration time stay). */
int mgmtdb_server_update(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
			 unsigned int port, const char *fingerprint, const char **error_r);
/* Register as pairing does (set): a registration of the same kind that
 * holds the same fingerprint under another name is this server renamed, so
 * it takes the new name and its instances follow (*renamed_from_r: the old
 * name, a tstr; NULL if none). If the new name is registered already, that
 * registration is replaced and the other stays as it is. */
int mgmtdb_server_pair(struct mgmtdb *db, enum mgmtdb_server_kind kind, const char *name,
		       unsigned int port, const char *fingerprint, const char **renamed_from_r,
		       const char **error_r);
/* The instances registered on this Instance Host (names compare without
 * regard to ASCII case, as server names do). */
size_t mgmtdb_instance_count_on_host(struct mgmtdb *db, const char *host_name);

/* Instances. IDs and aliases share one namespace ([a-z0-9][a-z0-9-]{0,62});
 * an alias may be "". start_mode is "automatic" or "manual". */
struct mgmtdb_instance {
	const char *id;
	const char *alias;
	const char *display_name;
	const char *instance_host;
	const char *base_directory;
	const char *start_mode;
	time_t created;
};

bool mgmtdb_instance_name_valid(const char *name);
int mgmtdb_instance_add(struct mgmtdb *db, const struct mgmtdb_instance *inst,
			const char **error_r);
/* Replace the fields of an existing instance (same ID). */
int mgmtdb_instance_update(struct mgmtdb *db, const struct mgmtdb_instance *inst,
			   const char **error_r);
/* 1 removed, 0 no such instance. */
int mgmtdb_instance_remove(struct mgmtdb *db, const char *id);
size_t mgmtdb_instance_count(struct mgmtdb *db);
void mgmtdb_instance_get(struct mgmtdb *db, size_t index, struct mgmtdb_instance *inst_r);
/* By ID or alias: 1 found, 0 not. */
int mgmtdb_instance_find(struct mgmtdb *db, const char *id_or_alias,
			 struct mgmtdb_instance *inst_r);

/* The secrets the database holds sealed under the config directory's
 * secrets.key (auth-secret): administrators' MFA seeds and the SMTP
 * password. Each comes with the context it was sealed for ("mfa:NAME",
 * "smtp-password") and what it is, for messages ("the MFA secret of NAME").
 * Listed so that a Management Server moved to another server can check, before
 * it starts, that the key came along. */
struct mgmtdb_sealed_secret {
	const char *sealed;
	const char *context; /* tstr */
	const char *what;    /* tstr */
};
size_t mgmtdb_sealed_secret_count(struct mgmtdb *db);
void mgmtdb_sealed_secret_get(struct mgmtdb *db, size_t index,
			      struct mgmtdb_sealed_secret *secret_r);

/* The raw document, for sections later issues add (instances, SMTP, ...).
 * Borrowed; callers that change it call mgmtdb_save() afterwards. */
struct json *mgmtdb_root(struct mgmtdb *db);

#endif
