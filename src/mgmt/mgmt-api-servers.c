/* mgmt-api-servers: Ping, environment, service status, pairing and the
 * registry of Instance Hosts and Client Access Servers. */
#include "config.h"
#include "json.h"
#include "mem.h"
#include "mgmt-api.h"
#include "mgmt-links.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "role-daemon.h"
#include "tls.h"
#include "tstr.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int mgmt_api_ping(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			 const char **error_r)
{
	*result_r = json_new_string("pong");
	return 0;
}

static int mgmt_api_environment(struct mgmt *mgmt, const struct json *args, struct json **result_r,
				const char **error_r)
{
	const struct config_role_settings *set = role_daemon_settings(mgmt->rd);
	struct json *r = json_new_object();
	json_set_string(r, "productName", "Coffer");
	json_set_string(r, "version", COFFER_VERSION);
	json_set_string(r, "serverName", set->server_name);
	json_set_string(r, "mode",
			role_daemon_server(mgmt->rd)->mode == CONFIG_MODE_SINGLE ? "single"
										 : "multi");
	const char *key = mgmtdb_product_key(mgmt->db);
	size_t len = key == NULL ? 0 : strlen(key);
	/* Licensee information: never the whole key. */
	json_set_string(
		r, "licensee",
		len == 0 ? "unlicensed (no product key)"
			 : tstr_printf("product key ending in %s", key + (len > 5 ? len - 5 : 0)));
	json_set_int(r, "uptimeSeconds", (long long)(time(NULL) - mgmt->started));
	json_set_int(r, "systemTime", (long long)time(NULL));
	*result_r = r;
	return 0;
}

static int mgmt_api_service_status(struct mgmt *mgmt, const struct json *args,
				   struct json **result_r, const char **error_r)
{
	*result_r = mgmt_links_status(mgmt->links);
	return 0;
}

static int mgmt_api_server_kind(const char *text, enum mgmtdb_server_kind *kind_r,
				const char **error_r)
{
	if (strcmp(text, "InstanceHost") == 0) {
		*kind_r = MGMTDB_INSTANCE_HOST;
		return 0;
	}
	if (strcmp(text, "ClientAccessServer") == 0) {
		*kind_r = MGMTDB_CLIENT_ACCESS_SERVER;
		return 0;
	}
	*error_r = tstr_printf(
		"argument 'serverType': '%s' is not InstanceHost or ClientAccessServer", text);
	return -1;
}

/* serverName, port and fingerprint from the arguments, checked. */
static int mgmt_api_server_args(const struct json *args, const char **name_r, unsigned int *port_r,
				char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1],
				const char **error_r)
{
	long long port = 0;
	*name_r = json_get_string(args, "serverName");
	(void)json_get_int(args, "port", &port);
	if (port < 1 || port > 65535) {
		*error_r =
			tstr_printf("argument 'port': %lld is not a port number (1-65535)", port);
		return -1;
	}
	*port_r = (unsigned int)port;
	const char *fp_error;
	if (tls_fingerprint_normalize(json_get_string(args, "fingerprint"), fingerprint_r,
				      &fp_error) < 0) {
		*error_r = tstr_printf("argument 'fingerprint': %s", fp_error);
		return -1;
	}
	return 0;
}

static int mgmt_api_register(struct mgmt *mgmt, enum mgmtdb_server_kind kind,
			     const struct json *args, bool replace, const char **error_r)
{
	const char *name;
	unsigned int port;
	char fp[TLS_FINGERPRINT_HEX_LEN + 1];
	if (mgmt_api_server_args(args, &name, &port, fp, error_r) < 0)
		return -1;
	const char *renamed_from = NULL;
	int ret =
		replace ? mgmtdb_server_pair(mgmt->db, kind, name, port, fp, &renamed_from, error_r)
			: mgmtdb_server_add(mgmt->db, kind, name, port, fp, error_r);
	if (ret < 0)
		return -1;
	char *old_name = renamed_from == NULL ? NULL : mem_strdup(renamed_from);
	if (mgmt_db_commit(mgmt, error_r) < 0) {
		mem_free(old_name);
		return -1;
	}
	if (old_name != NULL) {
		mgmt_links_message(mgmt->links, LOG_LEVEL_INFO,
				   "%s %s renamed to %s (same certificate); its instances follow",
				   mgmtdb_server_kind_name(kind), old_name, name);
	}
	mgmt_links_message(mgmt->links, LOG_LEVEL_INFO,
			   "%s %s registered (port %u, fingerprint %s)",
			   mgmtdb_server_kind_name(kind), name, port, fp);
	mem_free(old_name);
	mgmt_links_sync(mgmt->links);
	return 0;
}

static int mgmt_api_pair(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			 const char **error_r)
{
	enum mgmtdb_server_kind kind;
	if (mgmt_api_server_kind(json_get_string(args, "serverType"), &kind, error_r) < 0 ||
	    mgmt_api_register(mgmt, kind, args, true, error_r) < 0)
		return -1;
	const struct config_role_settings *set = role_daemon_settings(mgmt->rd);
	struct json *r = json_new_object();
	json_set_string(r, "serverName", set->server_name);
	json_set_int(r, "port", set->listeners[CONFIG_KIND_TCP].listeners[0].port);
	json_set_string(r, "fingerprint", role_daemon_fingerprint(mgmt->rd, CONFIG_KIND_TCP));
	*result_r = r;
	return 0;
}

static struct json *mgmt_api_server_list(struct mgmt *mgmt, enum mgmtdb_server_kind kind)
{
	struct json *list = json_new_array();
	for (size_t i = 0; i < mgmtdb_server_count(mgmt->db, kind); i++) {
		struct mgmtdb_server s;
		mgmtdb_server_get(mgmt->db, kind, i, &s);
		struct json *e = json_new_object();
		json_set_string(e, "serverName", s.server_name);
		json_set_int(e, "port", s.port);
		json_set_string(e, "fingerprint", s.fingerprint);
		json_set_int(e, "added", (long long)s.added);
		json_append(list, e);
	}
	return list;
}

static int mgmt_api_delete_server(struct mgmt *mgmt, enum mgmtdb_server_kind kind,
				  const struct json *args, const char **error_r)
{
	const char *name = json_get_string(args, "serverName");
	if (mgmtdb_server_remove(mgmt->db, kind, name) == 0) {
		*error_r = tstr_printf("no %s '%s' is registered", mgmtdb_server_kind_name(kind),
				       name);
		return -1;
	}
	if (mgmt_db_commit(mgmt, error_r) < 0)
		return -1;
	mgmt_links_message(mgmt->links, LOG_LEVEL_INFO, "%s %s removed",
			   mgmtdb_server_kind_name(kind), name);
	mgmt_links_sync(mgmt->links);
	return 0;
}

/* The changes SetInstanceHostConfiguration / SetClientAccessServerConfiguration
 * ask for, all checked before any is made. */
struct mgmt_api_server_change {
	const char *name, *new_name;
	unsigned int port;
	char fingerprint[TLS_FINGERPRINT_HEX_LEN + 1];
};

static int mgmt_api_server_change_args(struct mgmt *mgmt, enum mgmtdb_server_kind kind,
				       const struct json *args,
				       struct mgmt_api_server_change *change_r,
				       const char **error_r)
{
	struct mgmtdb_server s;
	change_r->name = json_get_string(args, "serverName");
	if (mgmtdb_server_find(mgmt->db, kind, change_r->name, &s) == 0) {
		*error_r = tstr_printf("argument 'serverName': no %s '%s' is registered",
				       mgmtdb_server_kind_name(kind), change_r->name);
		return -1;
	}
	change_r->new_name = json_get_string(args, "newServerName");
	change_r->port = s.port;
	snprintf(change_r->fingerprint, sizeof(change_r->fingerprint), "%s", s.fingerprint);
	long long port;
	if (json_get(args, "port") != NULL) {
		(void)json_get_int(args, "port", &port);
		if (port < 1 || port > 65535) {
			*error_r = tstr_printf(
				"argument 'port': %lld is not a port number (1-65535)", port);
			return -1;
		}
		change_r->port = (unsigned int)port;
	}
	const char *fp_error;
	if (json_get(args, "fingerprint") != NULL &&
	    tls_fingerprint_normalize(json_get_string(args, "fingerprint"), change_r->fingerprint,
				      &fp_error) < 0) {
		*error_r = tstr_printf("argument 'fingerprint': %s", fp_error);
		return -1;
	}
	if (change_r->new_name == NULL && json_get(args, "port") == NULL &&
	    json_get(args, "fingerprint") == NULL) {
		*error_r = "nothing to change: give newServerName, port or fingerprint";
		return -1;
	}
	return 0;
}

/* Change a registration by hand: a new name (a renamed Instance Host's
 * instances follow it), port or certificate fingerprint. The links start
 * over with the new values, and every role is told at once. */
static int mgmt_api_set_server(struct mgmt *mgmt, enum mgmtdb_server_kind kind,
			       const struct json *args, struct json **result_r,
			       const char **error_r)
{
	struct mgmt_api_server_change c;
	if (mgmt_api_server_change_args(mgmt, kind, args, &c, error_r) < 0)
		return -1;
	char *old_name = mem_strdup(c.name);
	const char *name = c.new_name != NULL ? c.new_name : old_name;
	int ret = 0;
	if (strcmp(name, old_name) != 0)
		ret = mgmtdb_server_rename(mgmt->db, kind, old_name, name, error_r);
	/* Cannot fail after the rename: the registration exists and the values
	 * were checked. */
	if (ret == 0)
		ret = mgmtdb_server_update(mgmt->db, kind, name, c.port, c.fingerprint, error_r);
	if (ret == 0)
		ret = mgmt_db_commit(mgmt, error_r);
	if (ret == 0) {
		mgmt_links_message(mgmt->links, LOG_LEVEL_INFO,
				   "%s %s changed: server name %s, port %u, fingerprint %s",
				   mgmtdb_server_kind_name(kind), old_name, name, c.port,
				   c.fingerprint);
		mgmt_links_sync(mgmt->links);
		struct mgmtdb_server s;
		(void)mgmtdb_server_find(mgmt->db, kind, name, &s);
		struct json *r = json_new_object();
		json_set_string(r, "serverName", s.server_name);
		json_set_int(r, "port", s.port);
		json_set_string(r, "fingerprint", s.fingerprint);
		json_set_int(r, "added", (long long)s.added);
		*result_r = r;
	}
	mem_free(old_name);
	return ret;
}

static int mgmt_api_get_instance_hosts(struct mgmt *mgmt, const struct json *args,
				       struct json **result_r, const char **error_r)
{
	*result_r = mgmt_api_server_list(mgmt, MGMTDB_INSTANCE_HOST);
	return 0;
}

static int mgmt_api_create_instance_host(struct mgmt *mgmt, const struct json *args,
					 struct json **result_r, const char **error_r)
{
	return mgmt_api_register(mgmt, MGMTDB_INSTANCE_HOST, args, false, error_r);
}

static int mgmt_api_delete_instance_host(struct mgmt *mgmt, const struct json *args,
					 struct json **result_r, const char **error_r)
{
	/* Removing the host would orphan its instances: no call could reach
	 * them any more. */
	const char *name = json_get_string(args, "serverName");
	size_t count = mgmtdb_instance_count_on_host(mgmt->db, name);
	if (count > 0) {
		*error_r = tstr_printf(
			"Instance Host '%s' still holds %zu instance(s) (GetInstances shows them "
			"with instanceHost %s): move them to another Instance Host (MoveInstance) "
			"or delete them (DeleteInstances) first",
			name, count, name);
		return -1;
	}
	return mgmt_api_delete_server(mgmt, MGMTDB_INSTANCE_HOST, args, error_r);
}

static int mgmt_api_set_instance_host(struct mgmt *mgmt, const struct json *args,
				      struct json **result_r, const char **error_r)
{
	return mgmt_api_set_server(mgmt, MGMTDB_INSTANCE_HOST, args, result_r, error_r);
}

static int mgmt_api_get_cas(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			    const char **error_r)
{
	*result_r = mgmt_api_server_list(mgmt, MGMTDB_CLIENT_ACCESS_SERVER);
	return 0;
}

static int mgmt_api_create_cas(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			       const char **error_r)
{
	return mgmt_api_register(mgmt, MGMTDB_CLIENT_ACCESS_SERVER, args, false, error_r);
}

static int mgmt_api_set_cas(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			    const char **error_r)
{
	return mgmt_api_set_server(mgmt, MGMTDB_CLIENT_ACCESS_SERVER, args, result_r, error_r);
}

static int mgmt_api_delete_cas(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			       const char **error_r)
{
	return mgmt_api_delete_server(mgmt, MGMTDB_CLIENT_ACCESS_SERVER, args, error_r);
}

#define SERVER_NAME_ARG                                                                            \
	{                                                                                          \
		"serverName", MGMT_API_STRING, true,                                               \
			"the server's host name or address, as other roles reach it"               \
	}
#define PORT_ARG                                                                                   \
	{                                                                                          \
		"port", MGMT_API_NUMBER, true, "its TCP (role-to-role) port"                       \
	}
#define FINGERPRINT_ARG                                                                            \
	{                                                                                          \
		"fingerprint", MGMT_API_STRING, true, "SHA-256 fingerprint of its TCP certificate" \
	}
/* SetInstanceHostConfiguration, SetClientAccessServerConfiguration */
#define NEW_SERVER_NAME_ARG                                                                        \
	{                                                                                          \
		"newServerName", MGMT_API_STRING, false,                                           \
			"a new name (the host name or address other roles reach it by)"            \
	}
#define NEW_PORT_ARG                                                                               \
	{                                                                                          \
		"port", MGMT_API_NUMBER, false, "a new TCP (role-to-role) port"                    \
	}
#define NEW_FINGERPRINT_ARG                                                                        \
	{                                                                                          \
		"fingerprint", MGMT_API_STRING, false,                                             \
			"the SHA-256 fingerprint of its new TCP certificate"                       \
	}

const struct mgmt_api_function mgmt_api_server_functions[] = {
	{"Ping", "Check that the Management API answers.", {{0}}, mgmt_api_ping, NULL, false},
	{"GetEnvironmentInfo",
	 "Product, version, server name, mode, licensee and uptime.",
	 {{0}},
	 mgmt_api_environment,
	 NULL,
	 false},
	{"GetServiceStatus",
	 "Every role with its connection state (connected, connecting, unreachable, "
	 "fingerprintRefused, refusedByPeer), last contact and recent messages.",
	 {{0}},
	 mgmt_api_service_status,
	 NULL,
	 false},
	{"PairWithManagementServer",
	 "Register (or re-register) an Instance Host or Client Access Server and return this "
	 "Management Server's TCP fingerprint. A server registered with the same certificate "
	 "under another name is renamed (its instances follow).",
	 {{"serverType", MGMT_API_STRING, true, "InstanceHost or ClientAccessServer"},
	  SERVER_NAME_ARG,
	  PORT_ARG,
	  FINGERPRINT_ARG},
	 mgmt_api_pair,
	 NULL,
	 false},
	{"GetInstanceHosts",
	 "List the registered Instance Hosts.",
	 {{0}},
	 mgmt_api_get_instance_hosts,
	 NULL,
	 false},
	{"CreateInstanceHost",
	 "Register an Instance Host by hand (manual pairing).",
	 {SERVER_NAME_ARG, PORT_ARG, FINGERPRINT_ARG},
	 mgmt_api_create_instance_host,
	 NULL,
	 false},
	{"SetInstanceHostConfiguration",
	 "Change an Instance Host's registration: its name (its instances follow), port or "
	 "certificate fingerprint; the Management Server and the Client Access Servers reach "
	 "it with the new values at once.",
	 {SERVER_NAME_ARG, NEW_SERVER_NAME_ARG, NEW_PORT_ARG, NEW_FINGERPRINT_ARG},
	 mgmt_api_set_instance_host,
	 NULL,
	 false},
	{"DeleteInstanceHost",
	 "Remove an Instance Host from the registry; refused while instances live on it.",
	 {SERVER_NAME_ARG},
	 mgmt_api_delete_instance_host,
	 NULL,
	 false},
	{"GetClientAccessServers",
	 "List the registered Client Access Servers.",
	 {{0}},
	 mgmt_api_get_cas,
	 NULL,
	 false},
	{"CreateClientAccessServer",
	 "Register a Client Access Server by hand (manual pairing).",
	 {SERVER_NAME_ARG, PORT_ARG, FINGERPRINT_ARG},
	 mgmt_api_create_cas,
	 NULL,
	 false},
	{"SetClientAccessServerConfiguration",
	 "Change a Client Access Server's registration: its name, port or certificate "
	 "fingerprint; the Management Server and the Instance Hosts (which admit it by its "
	 "fingerprint) use the new values at once.",
	 {SERVER_NAME_ARG, NEW_SERVER_NAME_ARG, NEW_PORT_ARG, NEW_FINGERPRINT_ARG},
	 mgmt_api_set_cas,
	 NULL,
	 false},
	{"DeleteClientAccessServer",
	 "Remove a Client Access Server from the registry.",
	 {SERVER_NAME_ARG},
	 mgmt_api_delete_cas,
	 NULL,
	 false},
	{NULL, NULL, {{0}}, NULL, NULL, false},
};
