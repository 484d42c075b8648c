#include "config.h"
#include "file.h"
#include "json.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_MAX_FILE_SIZE (1024 * 1024)

static const char *const config_role_names[CONFIG_ROLE_COUNT] = {
	"management-server", "instance-host", "client-access-server"};
static const char *const config_role_titles[CONFIG_ROLE_COUNT] = {
	"Management Server", "Instance Host", "Client Access Server"};
static const char *const config_kind_names[CONFIG_KIND_COUNT] = {"tcp", "http", "imap", "imaps"};

/* Default ports per role and kind; 0 = the role has no such listener. */
static const unsigned int config_default_ports[CONFIG_ROLE_COUNT][CONFIG_KIND_COUNT] = {
	[CONFIG_ROLE_MANAGEMENT_SERVER] = {8471, 8470, 0, 0},
	[CONFIG_ROLE_INSTANCE_HOST] = {8472, 0, 0, 0},
	[CONFIG_ROLE_CLIENT_ACCESS_SERVER] = {8473, 443, 143, 993},
};

const char *config_role_name(enum config_role role)
{
	return config_role_names[role];
}

const char *config_role_title(enum config_role role)
{
	return config_role_titles[role];
}

int config_role_parse(const char *name, enum config_role *role_r, const char **error_r)
{
	for (int i = 0; i < CONFIG_ROLE_COUNT; i++) {
		if (strcmp(name, config_role_names[i]) == 0) {
			*role_r = (enum config_role)i;
			return 0;
		}
	}
	*error_r = tstr_printf("unknown role '%s': expected management-server, instance-host or "
			       "client-access-server",
			       name);
	return -1;
}

const char *config_kind_name(enum config_kind kind)
{
	return config_kind_names[kind];
}

int config_kind_parse(const char *name, enum config_kind *kind_r, const char **error_r)
{
	for (int i = 0; i < CONFIG_KIND_COUNT; i++) {
		if (strcmp(name, config_kind_names[i]) == 0) {
			*kind_r = (enum config_kind)i;
			return 0;
		}
	}
	*error_r = tstr_printf("unknown certificate kind '%s': expected tcp, http or imap", name);
	return -1;
}

enum config_kind config_kind_cert(enum config_kind kind)
{
	return kind == CONFIG_KIND_IMAPS ? CONFIG_KIND_IMAP : kind;
}

char *config_path(const char *dir, const char *name)
{
	return mem_printf("%s/%s", dir, name);
}

char *config_cert_path(const char *dir, enum config_role role, enum config_kind kind)
{
	return mem_printf("%s/certs/%s-%s.pem", dir, config_role_names[role],
			  config_kind_names[config_kind_cert(kind)]);
}

char *config_key_path(const char *dir, enum config_role role, enum config_kind kind)
{
	return mem_printf("%s/certs/%s-%s.key", dir, config_role_names[role],
			  config_kind_names[config_kind_cert(kind)]);
}

char *config_pid_path(const char *dir, enum config_role role)
{
	return mem_printf("%s/run/%s.pid", dir, config_role_names[role]);
}

char *config_socket_path(const char *dir, enum config_role role)
{
	return mem_printf("%s/run/%s.sock", dir, config_role_names[role]);
}

char *config_log_path(const char *dir, enum config_role role)
{
	return mem_printf("%s/log/%s.log", dir, config_role_names[role]);
}

const char *config_dir_resolve(const char *from_flag)
{
	if (from_flag != NULL && from_flag[0] != '\0')
		return from_flag;
	const char *env = getenv("COFFER_CONFIG_DIR");
	return env != NULL && env[0] != '\0' ? env : CONFIG_DEFAULT_DIR;
}

/* ---- JSON file helpers ---- */

static int config_load_json(const char *path, struct json **json_r, const char **error_r)
{
	char *text;
	size_t len;
	if (file_read_all(path, CONFIG_MAX_FILE_SIZE, &text, &len, error_r) < 0)
		return -1;
	const char *parse_error;
	int ret = json_parse(text, len, json_r, &parse_error);
	mem_free(text);
	if (ret < 0) {
		*error_r = tstr_printf("%s: %s", path, parse_error);
		return -1;
	}
	if (json_kind(*json_r) != JSON_KIND_OBJECT) {
		*error_r = tstr_printf("%s: expected a JSON object", path);
		json_unref(json_r);
		return -1;
	}
	long long version;
	if (json_get_int(*json_r, "schemaVersion", &version) != 1 || version < 1 ||
	    version > CONFIG_SCHEMA_VERSION) {
		*error_r = tstr_printf(
			"%s: schemaVersion missing or unsupported (this version reads 1 to %d)",
			path, CONFIG_SCHEMA_VERSION);
		json_unref(json_r);
		return -1;
	}
	return 0;
}

static int config_save_json(const char *path, struct json *json, mode_t mode, const char **error_r)
{
	char *text = json_serialize(json, true);
	size_t len = strlen(text);
	text = mem_realloc(text, len + 2);
	text[len] = '\n';
	int ret = file_write_atomic(path, text, len + 1, mode, error_r);
	mem_free(text);
	return ret;
}

/* ---- coffer.json ---- */

int config_server_load(const char *dir, struct config_server *server_r, const char **error_r)
{
	char *path = config_path(dir, "coffer.json");
	struct json *json;
	int exists = file_exists(path, error_r);
	if (exists <= 0) {
		if (exists == 0)
			*error_r = tstr_printf("%s is not set up (no %s): run 'coffer config init "
					       "--mode single|multi' first",
					       dir, path);
		mem_free(path);
		return -1;
	}
	if (config_load_json(path, &json, error_r) < 0) {
		mem_free(path);
		return -1;
	}
	const char *mode = json_get_string(json, "mode");
	int ret = 0;
	memset(server_r, 0, sizeof(*server_r));
	if (mode != NULL && strcmp(mode, "single") == 0)
		server_r->mode = CONFIG_MODE_SINGLE;
	else if (mode != NULL && strcmp(mode, "multi") == 0)
		server_r->mode = CONFIG_MODE_MULTI;
	else {
		*error_r = tstr_printf("%s: field mode is '%s': expected single or multi", path,
				       mode == NULL ? "" : mode);
		ret = -1;
	}
	const char *user = json_get_string(json, "runAsUser");
	server_r->run_as_user = mem_strdup(user == NULL ? "" : user);
	json_unref(&json);
	mem_free(path);
	if (ret < 0)
		config_server_free(server_r);
	return ret;
}

int config_server_save(const char *dir, const struct config_server *server, const char **error_r)
{
	struct json *json = json_new_object();
	json_set_int(json, "schemaVersion", CONFIG_SCHEMA_VERSION);
	json_set_string(json, "mode", server->mode == CONFIG_MODE_SINGLE ? "single" : "multi");
	json_set_string(json, "runAsUser", server->run_as_user);
	char *path = config_path(dir, "coffer.json");
	int ret = config_save_json(path, json, 0644, error_r);
	mem_free(path);
	json_unref(&json);
	return ret;
}

void config_server_free(struct config_server *server)
{
	mem_free(server->run_as_user);
	server->run_as_user = NULL;
}

/* ---- role settings ---- */

void config_role_defaults(enum config_role role, const char *server_name,
			  struct config_role_settings *settings_r)
{
	memset(settings_r, 0, sizeof(*settings_r));
	settings_r->role = role;
	settings_r->server_name = mem_strdup(server_name);
	settings_r->product_key = mem_strdup("");
	for (int k = 0; k < CONFIG_KIND_COUNT; k++) {
		struct config_listener_set *set = &settings_r->listeners[k];
		unsigned int port = config_default_ports[role][k];
		if (port == 0)
			continue;
		set->present = true;
		set->enabled = true;
		set->listeners = mem_new(struct netaddr_listener);
		set->listeners[0].port = port; /* host "" = every address */
		set->listener_count = 1;
	}
	if (role != CONFIG_ROLE_MANAGEMENT_SERVER) {
		settings_r->management.server = mem_strdup("");
		settings_r->management.port = 8471;
	}
}

void config_role_free(struct config_role_settings *settings)
{
	mem_free(settings->server_name);
	mem_free(settings->product_key);
	mem_free(settings->management.server);
	for (int k = 0; k < CONFIG_KIND_COUNT; k++)
		mem_free(settings->listeners[k].listeners);
	memset(settings, 0, sizeof(*settings));
}

static bool config_server_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 253)
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_' && *p != ':')
			return false;
	}
	return true;
}

static int config_set_listeners(struct config_listener_set *set, const char *value,
				const char **error_r)
{
	struct netaddr_listener *list;
	size_t count;
	if (netaddr_parse_listeners(value, &list, &count, error_r) < 0)
		return -1;
	mem_free(set->listeners);
	set->listeners = list;
	set->listener_count = count;
	return 0;
}

static int config_parse_bool(const char *field, const char *value, bool *value_r,
			     const char **error_r)
{
	if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0 ||
	    strcmp(value, "1") == 0 || strcasecmp(value, "on") == 0) {
		*value_r = true;
		return 0;
	}
	if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0 ||
	    strcmp(value, "0") == 0 || strcasecmp(value, "off") == 0) {
		*value_r = false;
		return 0;
	}
	*error_r = tstr_printf("field %s: invalid value '%s': expected yes or no", field, value);
	return -1;
}

static int config_normalize_fingerprint(const char *value, char out[CONFIG_FINGERPRINT_LEN + 1],
					const char **error_r)
{
	/* Same canonical form as lib-tls (SHA-256 as 64 lowercase hex), without
	 * depending on it: colons and spaces are dropped, case folded. */
	size_t n = 0;
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (!isxdigit((unsigned char)*p) || n == CONFIG_FINGERPRINT_LEN) {
			n = CONFIG_FINGERPRINT_LEN + 1;
			break;
		}
		out[n++] = (char)tolower((unsigned char)*p);
	}
	if (n != CONFIG_FINGERPRINT_LEN && !(n == 0 && value[0] == '\0')) {
		*error_r = tstr_printf("field management-fingerprint: invalid value '%s': expected "
				       "a SHA-256 fingerprint (64 hex digits, colons allowed)",
				       value);
		return -1;
	}
	out[n] = '\0';
	return 0;
}

static const char *const config_fields[] = {
	"server-name",       "tcp-listeners",   "http-listeners",         "http-enabled",
	"imap-listeners",    "imap-enabled",    "imaps-listeners",        "imaps-enabled",
	"management-server", "management-port", "management-fingerprint", "product-key"};

static bool config_role_has_field(enum config_role role, const char *field)
{
	if (strcmp(field, "server-name") == 0 || strcmp(field, "tcp-listeners") == 0)
		return true;
	if (strcmp(field, "product-key") == 0)
		return role == CONFIG_ROLE_MANAGEMENT_SERVER;
	if (strncmp(field, "management-", 11) == 0)
		return role != CONFIG_ROLE_MANAGEMENT_SERVER;
	if (strcmp(field, "http-listeners") == 0)
		return role != CONFIG_ROLE_INSTANCE_HOST;
	/* The enabled switches and IMAP listeners are the Client Access Server's. */
	return role == CONFIG_ROLE_CLIENT_ACCESS_SERVER;
}

const char *config_role_field_names(enum config_role role)
{
	struct str *s = str_create(128);
	for (size_t i = 0; i < sizeof(config_fields) / sizeof(config_fields[0]); i++) {
		if (!config_role_has_field(role, config_fields[i]))
			continue;
		if (str_len(s) > 0)
			str_append(s, ", ");
		str_append(s, config_fields[i]);
	}
	const char *ret = tstr_dup(str_c(s));
	str_destroy(&s);
	return ret;
}

int config_role_set_field(struct config_role_settings *settings, const char *field,
			  const char *value, const char **error_r)
{
	enum config_role role = settings->role;
	bool known = false;
	for (size_t i = 0; i < sizeof(config_fields) / sizeof(config_fields[0]); i++)
		known = known || strcmp(field, config_fields[i]) == 0;
	if (!known || !config_role_has_field(role, field)) {
		*error_r = tstr_printf("%s field '%s' for role %s: expected one of %s",
				       known ? "no" : "unknown", field, config_role_name(role),
				       config_role_field_names(role));
		return -1;
	}
	if (strcmp(field, "server-name") == 0) {
		if (!config_server_name_valid(value)) {
			*error_r = tstr_printf("field server-name: invalid value '%s': expected a "
					       "host name (letters, digits, '-', '.')",
					       value);
			return -1;
		}
		mem_free(settings->server_name);
		settings->server_name = mem_strdup(value);
		return 0;
	}
	if (strcmp(field, "product-key") == 0) {
		mem_free(settings->product_key);
		settings->product_key = mem_strdup(value);
		return 0;
	}
	if (strcmp(field, "management-server") == 0) {
		if (!config_server_name_valid(value)) {
			*error_r = tstr_printf("field management-server: invalid value '%s': "
					       "expected a host name or address",
					       value);
			return -1;
		}
		mem_free(settings->management.server);
		settings->management.server = mem_strdup(value);
		return 0;
	}
	if (strcmp(field, "management-port") == 0) {
		const char *port_error;
		if (netaddr_parse_port(value, &settings->management.port, &port_error) < 0) {
			*error_r = tstr_printf("field management-port: %s", port_error);
			return -1;
		}
		return 0;
	}
	if (strcmp(field, "management-fingerprint") == 0)
		return config_normalize_fingerprint(value, settings->management.fingerprint,
						    error_r);

	/* <kind>-listeners and <kind>-enabled */
	const char *dash = strchr(field, '-');
	char kind_name[8];
	size_t kind_len = (size_t)(dash - field);
	memcpy(kind_name, field, kind_len);
	kind_name[kind_len] = '\0';
	enum config_kind kind;
	if (config_kind_parse(kind_name, &kind, error_r) < 0)
		return -1;
	struct config_listener_set *set = &settings->listeners[kind];
	if (strcmp(dash + 1, "enabled") == 0)
		return config_parse_bool(field, value, &set->enabled, error_r);
	const char *listen_error;
	if (config_set_listeners(set, value, &listen_error) < 0) {
		*error_r = tstr_printf("field %s: %s", field, listen_error);
		return -1;
	}
	return 0;
}

static struct json *config_listeners_to_json(const struct config_listener_set *set,
					     bool with_enabled)
{
	struct json *obj = json_new_object();
	if (with_enabled)
		json_set_bool(obj, "enabled", set->enabled);
	struct json *list = json_new_array();
	for (size_t i = 0; i < set->listener_count; i++)
		json_append(list, json_new_string(netaddr_listener_str(&set->listeners[i])));
	json_set(obj, "listeners", list);
	return obj;
}

static struct json *config_role_to_json(const struct config_role_settings *settings)
{
	struct json *json = json_new_object();
	json_set_int(json, "schemaVersion", CONFIG_SCHEMA_VERSION);
	json_set_string(json, "role", config_role_name(settings->role));
	json_set_string(json, "serverName", settings->server_name);
	for (int k = 0; k < CONFIG_KIND_COUNT; k++) {
		const struct config_listener_set *set = &settings->listeners[k];
		if (set->present)
			json_set(json, config_kind_names[k],
				 config_listeners_to_json(
					 set, settings->role == CONFIG_ROLE_CLIENT_ACCESS_SERVER &&
						      k != CONFIG_KIND_TCP));
	}
	if (settings->role == CONFIG_ROLE_MANAGEMENT_SERVER) {
		json_set_string(json, "productKey", settings->product_key);
	} else {
		struct json *m = json_new_object();
		json_set_string(m, "server", settings->management.server);
		json_set_int(m, "port", settings->management.port);
		json_set_string(m, "fingerprint", settings->management.fingerprint);
		json_set(json, "managementServer", m);
	}
	return json;
}

char *config_role_to_text(const struct config_role_settings *settings)
{
	struct json *json = config_role_to_json(settings);
	json_remove(json, "schemaVersion");
	char *text = json_serialize(json, true);
	json_unref(&json);
	return text;
}

int config_role_save(const char *dir, const struct config_role_settings *settings,
		     const char **error_r)
{
	struct json *json = config_role_to_json(settings);
	char *name = mem_printf("%s.json", config_role_name(settings->role));
	char *path = config_path(dir, name);
	int ret = config_save_json(path, json, 0640, error_r);
	mem_free(path);
	mem_free(name);
	json_unref(&json);
	return ret;
}

static int config_load_listeners(const char *path, const struct json *json, enum config_kind kind,
				 struct config_listener_set *set, const char **error_r)
{
	const struct json *obj = json_get(json, config_kind_names[kind]);
	if (obj == NULL)
		return 0; /* keep the defaults */
	const struct json *list = json_get(obj, "listeners");
	if (json_kind(obj) != JSON_KIND_OBJECT || list == NULL ||
	    json_kind(list) != JSON_KIND_ARRAY) {
		*error_r = tstr_printf("%s: field %s: expected an object with a listeners array",
				       path, config_kind_names[kind]);
		return -1;
	}
	struct str *joined = str_create(64);
	for (size_t i = 0; i < json_count(list); i++) {
		const char *l = json_string_of(json_at(list, i));
		if (l == NULL) {
			*error_r = tstr_printf("%s: field %s.listeners: expected strings", path,
					       config_kind_names[kind]);
			str_destroy(&joined);
			return -1;
		}
		str_printfa(joined, "%s%s", i > 0 ? "," : "", l);
	}
	const char *listen_error;
	int ret = config_set_listeners(set, str_c(joined), &listen_error);
	str_destroy(&joined);
	if (ret < 0) {
		*error_r = tstr_printf("%s: field %s.listeners: %s", path, config_kind_names[kind],
				       listen_error);
		return -1;
	}
	set->enabled = json_get_bool(obj, "enabled", true);
	return 0;
}

static int config_role_from_json(const char *path, const struct json *json,
				 struct config_role_settings *settings, const char **error_r)
{
	const char *name = json_get_string(json, "serverName");
	const char *field_error;
	if (name == NULL ||
	    config_role_set_field(settings, "server-name", name, &field_error) < 0) {
		*error_r = tstr_printf("%s: field serverName: expected a host name", path);
		return -1;
	}
	for (int k = 0; k < CONFIG_KIND_COUNT; k++) {
		if (settings->listeners[k].present &&
		    config_load_listeners(path, json, (enum config_kind)k, &settings->listeners[k],
					  error_r) < 0)
			return -1;
	}
	if (settings->role == CONFIG_ROLE_MANAGEMENT_SERVER) {
		const char *key = json_get_string(json, "productKey");
		mem_free(settings->product_key);
		settings->product_key = mem_strdup(key == NULL ? "" : key);
		return 0;
	}
	const struct json *m = json_get(json, "managementServer");
	const char *server = json_get_string(m, "server");
	const char *fp = json_get_string(m, "fingerprint");
	long long port;
	if (m == NULL || server == NULL || fp == NULL || json_get_int(m, "port", &port) != 1 ||
	    port < 1 || port > 65535) {
		*error_r = tstr_printf("%s: field managementServer: expected server, port "
				       "(1-65535) and fingerprint",
				       path);
		return -1;
	}
	mem_free(settings->management.server);
	settings->management.server = mem_strdup(server);
	settings->management.port = (unsigned int)port;
	if (config_normalize_fingerprint(fp, settings->management.fingerprint, &field_error) < 0) {
		*error_r = tstr_printf("%s: %s", path, field_error);
		return -1;
	}
	return 0;
}

int config_role_load(const char *dir, enum config_role role,
		     struct config_role_settings *settings_r, const char **error_r)
{
	char *name = mem_printf("%s.json", config_role_name(role));
	char *path = config_path(dir, name);
	mem_free(name);
	int exists = file_exists(path, error_r);
	if (exists <= 0) {
		mem_free(path);
		return exists;
	}
	struct json *json;
	if (config_load_json(path, &json, error_r) < 0) {
		mem_free(path);
		return -1;
	}
	const char *role_name = json_get_string(json, "role");
	int ret = 1;
	config_role_defaults(role, "localhost", settings_r);
	if (role_name == NULL || strcmp(role_name, config_role_name(role)) != 0) {
		*error_r =
			tstr_printf("%s: field role: expected '%s'", path, config_role_name(role));
		ret = -1;
	} else if (config_role_from_json(path, json, settings_r, error_r) < 0) {
		ret = -1;
	}
	if (ret < 0)
		config_role_free(settings_r);
	json_unref(&json);
	mem_free(path);
	return ret;
}
