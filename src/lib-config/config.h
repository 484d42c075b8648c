#ifndef COFFER_CONFIG_H
#define COFFER_CONFIG_H
/* config: the config directory of one server.
 *
 * Layout (everything a server needs to be moved, see docs/operations.md):
 *   coffer.json                 server settings: schema version, mode, run-as user
 *   <role>.json                 settings of each role present on this server
 *   certs/<role>-<kind>.pem     certificate (and chain) per role and listener kind
 *   certs/<role>-<kind>.key     its private key (mode 0600)
 *   management-database.json    the management database (Management Server only)
 *   run/<role>.pid, log/<role>.log   runtime state of the daemons
 *
 * Role settings are typed (struct config_role_settings) and validated on load
 * and on every change; a file that fails validation is an error naming the
 * file, the field, the value and what would be accepted, and is never
 * overwritten by a load. Saves are atomic (file_write_atomic). */
#include <stdbool.h>
#include <stddef.h>

#include "netaddr.h"

#define CONFIG_SCHEMA_VERSION 1
#define CONFIG_DEFAULT_DIR "/etc/coffer"
#define CONFIG_FINGERPRINT_LEN 64
/* The Instance Host's registry of its instances (ID, base directory, wanted
 * state), in its config directory; `coffer config relocate` rewrites it. */
#define CONFIG_HOST_INSTANCES_FILE "instance-host-instances.json"

enum config_role {
	CONFIG_ROLE_MANAGEMENT_SERVER,
	CONFIG_ROLE_INSTANCE_HOST,
	CONFIG_ROLE_CLIENT_ACCESS_SERVER,
	CONFIG_ROLE_COUNT
};

/* Listener kinds; each has its own certificate, except that both IMAP kinds
 * (STARTTLS and implicit TLS) share the role's IMAP certificate. */
enum config_kind {
	CONFIG_KIND_TCP,   /* role-to-role, mutual TLS */
	CONFIG_KIND_HTTP,  /* Management Console/API, Web Access */
	CONFIG_KIND_IMAP,  /* IMAP with STARTTLS */
	CONFIG_KIND_IMAPS, /* IMAP with implicit TLS */
	CONFIG_KIND_COUNT
};

enum config_mode { CONFIG_MODE_SINGLE, CONFIG_MODE_MULTI };

struct config_listener_set {
	bool present; /* the role has this kind at all */
	bool enabled;
	struct netaddr_listener *listeners;
	size_t listener_count;
};

struct config_management_link {
	char *server;      /* host name or address of the Management Server */
	unsigned int port; /* its TCP (event) port, default 8471 */
	char fingerprint[CONFIG_FINGERPRINT_LEN + 1]; /* "" until paired */
};

struct config_role_settings {
	enum config_role role;
	char *server_name;
	struct config_listener_set listeners[CONFIG_KIND_COUNT];
	struct config_management_link management; /* Instance Host, Client Access Server */
	char *product_key;                        /* Management Server; may be "" */
};

struct config_server {
	enum config_mode mode;
	char *run_as_user; /* "" = stay the user that started the daemon */
};

const char *config_role_name(enum config_role role);
const char *config_role_title(enum config_role role); /* "Management Server" */
int config_role_parse(const char *name, enum config_role *role_r, const char **error_r);
const char *config_kind_name(enum config_kind kind); /* "tcp", "http", "imap", "imaps" */
int config_kind_parse(const char *name, enum config_kind *kind_r, const char **error_r);
/* Which certificate a listener kind uses (imaps -> imap). */
enum config_kind config_kind_cert(enum config_kind kind);

/* Paths inside a config directory (mem_free()). */
char *config_path(const char *dir, const char *name);
char *config_cert_path(const char *dir, enum config_role role, enum config_kind kind);
char *config_key_path(const char *dir, enum config_role role, enum config_kind kind);
char *config_pid_path(const char *dir, enum config_role role);
/* The role's local socket for roles of the same config directory
 * (rpc-local.c): <dir>/run/<role>.sock */
char *config_socket_path(const char *dir, enum config_role role);
char *config_log_path(const char *dir, enum config_role role);

/* The config directory: --config-dir, else $COFFER_CONFIG_DIR, else /etc/coffer. */
const char *config_dir_resolve(const char *from_flag);

/* coffer.json: 0 if loaded, -1 on error; "missing" is an error that tells the
 * user to run `coffer config init`. */
int config_server_load(const char *dir, struct config_server *server_r, const char **error_r);
int config_server_save(const char *dir, const struct config_server *server, const char **error_r);
void config_server_free(struct config_server *server);

/* Defaults for a role being added (server_name e.g. from gethostname()). */
void config_role_defaults(enum config_role role, const char *server_name,
			  struct config_role_settings *settings_r);
/* 1 loaded, 0 role not present on this server, -1 error. */
int config_role_load(const char *dir, enum config_role role,
		     struct config_role_settings *settings_r, const char **error_r);
int config_role_save(const char *dir, const struct config_role_settings *settings,
		     const char **error_r);
void config_role_free(struct config_role_settings *settings);

/* Settable fields, by the names the command line uses (without "--"):
 * server-name, tcp-listeners, http-listeners, http-enabled, imap-listeners,
 * imap-enabled, imaps-listeners, imaps-enabled, management-server,
 * management-port, management-fingerprint, product-key. A field the role does
 * not have is an error listing the fields it has. */
int config_role_set_field(struct config_role_settings *settings, const char *field,
			  const char *value, const char **error_r);
/* Comma-separated names of the fields this role has (tstr). */
const char *config_role_field_names(enum config_role role);
/* A JSON text of the settings (mem_free()), as `role show` prints it. */
char *config_role_to_text(const struct config_role_settings *settings);

#endif
