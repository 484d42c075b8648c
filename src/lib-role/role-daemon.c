#include "role-daemon.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "service.h"
#include "tstr.h"

#include <string.h>

struct role_daemon {
	enum config_role role;
	char *config_dir;
	struct config_server server;
	struct config_role_settings settings;
	bool settings_loaded;
	char fingerprints[CONFIG_KIND_COUNT][TLS_FINGERPRINT_HEX_LEN + 1];
	struct service *service;
	struct tls_context *client_tls;
	struct tls_context *server_tls[CONFIG_KIND_COUNT];
	struct json *hello;
	struct rpc_client *management;
	bool dropped;
};

static int role_daemon_parse_args(int argc, char **argv, const char **dir_r, const char **error_r)
{
	*dir_r = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config-dir") == 0 && i + 1 < argc) {
			*dir_r = argv[++i];
		} else if (strncmp(argv[i], "--config-dir=", 13) == 0) {
			*dir_r = argv[i] + 13;
		} else {
			*error_r = tstr_printf("unknown argument '%s': expected --config-dir DIR",
					       argv[i]);
			return -1;
		}
	}
	*dir_r = config_dir_resolve(*dir_r);
	return 0;
}

static int role_daemon_check_certs(struct role_daemon *rd, const char **error_r)
{
	for (int k = 0; k < CONFIG_KIND_COUNT; k++) {
		if (!rd->settings.listeners[k].present ||
		    (int)config_kind_cert((enum config_kind)k) != k)
			continue;
		char *cert = config_cert_path(rd->config_dir, rd->role, (enum config_kind)k);
		char *key = config_key_path(rd->config_dir, rd->role, (enum config_kind)k);
		const char *error;
		int ret = tls_cert_check_pair(cert, key, &error);
		if (ret == 0)
			ret = tls_cert_fingerprint(cert, rd->fingerprints[k], &error);
		mem_free(cert);
		mem_free(key);
		if (ret < 0) {
			*error_r = tstr_printf("%s certificate: %s",
					       config_kind_name((enum config_kind)k), error);
			return -1;
		}
	}
	return 0;
}

struct role_daemon *role_daemon_create(enum config_role role, int argc, char **argv,
				       const char **error_r)
{
	const char *dir;
	log_init(config_role_name(role));
	if (role_daemon_parse_args(argc, argv, &dir, error_r) < 0)
		return NULL;
	struct role_daemon *rd = mem_new(struct role_daemon);
	rd->role = role;
	rd->config_dir = mem_strdup(dir);
	rd->service = service_create(config_role_name(role));
	if (config_server_load(dir, &rd->server, error_r) < 0) {
		rd->server.run_as_user = NULL;
		role_daemon_destroy(&rd);
		return NULL;
	}
	int ret = config_role_load(dir, role, &rd->settings, error_r);
	if (ret == 0)
		*error_r = tstr_printf(
			"the %s role is not set up in %s: run 'coffer config role add %s'",
			config_role_title(role), dir, config_role_name(role));
	rd->settings_loaded = ret > 0;
	if (ret <= 0 || role_daemon_check_certs(rd, error_r) < 0) {
		role_daemon_destroy(&rd);
		return NULL;
	}
	char *cert = config_cert_path(dir, role, CONFIG_KIND_TCP);
	char *key = config_key_path(dir, role, CONFIG_KIND_TCP);
	rd->client_tls = tls_context_create_client(cert, key, error_r);
	mem_free(cert);
	mem_free(key);
	if (rd->client_tls == NULL) {
		role_daemon_destroy(&rd);
		return NULL;
	}
	rd->hello = json_new_object();
	json_set_string(rd->hello, "role", config_role_name(role));
	json_set_string(rd->hello, "serverName", rd->settings.server_name);
	json_set_string(rd->hello, "version", COFFER_VERSION);
	return rd;
}

void role_daemon_destroy(struct role_daemon **rd)
{
	struct role_daemon *r = *rd;
	if (r == NULL)
		return;
	rpc_client_destroy(&r->management);
	for (int k = 0; k < CONFIG_KIND_COUNT; k++)
		tls_context_destroy(&r->server_tls[k]);
	tls_context_destroy(&r->client_tls);
	json_unref(&r->hello);
	if (r->settings_loaded)
		config_role_free(&r->settings);
	config_server_free(&r->server);
	service_destroy(&r->service);
	mem_free(r->config_dir);
	mem_free(r);
	*rd = NULL;
}

struct event_base *role_daemon_base(struct role_daemon *rd)
{
	return service_event_base(rd->service);
}

const char *role_daemon_config_dir(struct role_daemon *rd)
{
	return rd->config_dir;
}

const struct config_role_settings *role_daemon_settings(struct role_daemon *rd)
{
	return &rd->settings;
}

const struct config_server *role_daemon_server(struct role_daemon *rd)
{
	return &rd->server;
}

const char *role_daemon_fingerprint(struct role_daemon *rd, enum config_kind kind)
{
	return rd->fingerprints[config_kind_cert(kind)];
}

const struct json *role_daemon_hello(struct role_daemon *rd)
{
	return rd->hello;
}

struct tls_context *role_daemon_client_tls(struct role_daemon *rd)
{
	return rd->client_tls;
}

struct tls_context *role_daemon_server_tls(struct role_daemon *rd, enum config_kind kind,
					   tls_peer_check_fn *peer_check, void *ctx,
					   const char **error_r)
{
	enum config_kind cert_kind = config_kind_cert(kind);
	if (rd->server_tls[cert_kind] != NULL)
		return rd->server_tls[cert_kind];
	char *cert = config_cert_path(rd->config_dir, rd->role, cert_kind);
	char *key = config_key_path(rd->config_dir, rd->role, cert_kind);
	rd->server_tls[cert_kind] = tls_context_create_server(cert, key, peer_check, ctx, error_r);
	mem_free(cert);
	mem_free(key);
	return rd->server_tls[cert_kind];
}

struct rpc_server *role_daemon_listen_tcp(struct role_daemon *rd, tls_peer_check_fn *peer_check,
					  void *check_ctx,
					  const struct rpc_server_callbacks *callbacks, void *ctx,
					  const char **error_r)
{
	struct tls_context *tls =
		role_daemon_server_tls(rd, CONFIG_KIND_TCP, peer_check, check_ctx, error_r);
	if (tls == NULL)
		return NULL;
	struct rpc_server *server =
		rpc_server_create(role_daemon_base(rd), tls, rd->hello, 0, callbacks, ctx);
	const struct config_listener_set *set = &rd->settings.listeners[CONFIG_KIND_TCP];
	for (size_t i = 0; i < set->listener_count; i++) {
		const char *error;
		if (rpc_server_listen(server, &set->listeners[i], &error) < 0) {
			*error_r = tstr_printf("TCP listener %s", error);
			rpc_server_destroy(&server);
			return NULL;
		}
	}
	return server;
}

static void role_daemon_management_state(struct rpc_client *client, enum rpc_link_state state,
					 const char *reason, void *ctx)
{
	if (state == RPC_LINK_CONNECTED)
		log_info("peer=management-server", "connected to the Management Server");
	else if (state == RPC_LINK_CONNECTING)
		return;
	else
		log_warning("peer=management-server", "Management Server link %s: %s",
			    rpc_link_state_name(state), reason);
}

void role_daemon_connect_management(struct role_daemon *rd,
				    const struct rpc_conn_callbacks *callbacks, void *ctx)
{
	const struct config_management_link *m = &rd->settings.management;
	if (m->server[0] == '\0' || m->fingerprint[0] == '\0') {
		log_warning(NULL, "not paired with a Management Server yet: run 'coffer config "
				  "pair' or set management-server and management-fingerprint");
		return;
	}
	struct rpc_client_settings set = {
		.host = m->server,
		.port = m->port,
		.fingerprint = m->fingerprint,
		.tls = rd->client_tls,
		.hello = rd->hello,
	};
	rd->management = rpc_client_create(role_daemon_base(rd), &set, callbacks,
					   role_daemon_management_state, ctx);
}

void role_daemon_management_event(struct role_daemon *rd, const char *name, struct json *data)
{
	struct rpc_conn *conn = rd->management == NULL ? NULL : rpc_client_conn(rd->management);
	if (conn != NULL)
		rpc_conn_event(conn, name, data);
	else
		json_unref(&data);
}

struct rpc_client *role_daemon_management_link(struct role_daemon *rd)
{
	return rd->management;
}

int role_daemon_drop_privileges(struct role_daemon *rd, const char **error_r)
{
	if (!rd->dropped && service_drop_privileges(rd->server.run_as_user, error_r) < 0)
		return -1;
	rd->dropped = true;
	return 0;
}

int role_daemon_start(struct role_daemon *rd, const char *ready_text, const char **error_r)
{
	if (role_daemon_drop_privileges(rd, error_r) < 0)
		return -1;
	char *log_path = config_log_path(rd->config_dir, rd->role);
	char *pid_path = config_pid_path(rd->config_dir, rd->role);
	int ret = log_open_file(log_path, error_r);
	if (ret == 0)
		ret = service_pidfile_acquire(rd->service, pid_path, error_r);
	mem_free(log_path);
	mem_free(pid_path);
	if (ret < 0)
		return -1;
	log_info(NULL, "started (coffer %s, server %s): %s", COFFER_VERSION,
		 rd->settings.server_name, ready_text);
	service_notify_ready(rd->service, ready_text);
	return 0;
}

int role_daemon_fail(struct role_daemon *rd, const char *reason)
{
	log_error(NULL, "start failed: %s", reason);
	service_notify_failed(rd == NULL ? NULL : rd->service, reason);
	return 1;
}

int role_daemon_run(struct role_daemon *rd)
{
	int ret = service_run(rd->service);
	log_info(NULL, "stopped");
	return ret < 0 ? 1 : 0;
}

const char *role_daemon_conn_context(struct rpc_conn *conn)
{
	const struct json *hello = rpc_conn_peer_hello(conn);
	const char *name = hello == NULL ? NULL : json_get_string(hello, "serverName");
	const char *role = hello == NULL ? NULL : json_get_string(hello, "role");
	return tstr_printf("peer=%s/%s conn=%s", role == NULL ? "?" : role,
			   name == NULL ? "?" : name, rpc_conn_peer_address(conn));
}

void role_daemon_peer_up(struct rpc_conn *conn)
{
	log_info(role_daemon_conn_context(conn), "link up");
}

void role_daemon_peer_down(struct rpc_conn *conn, const char *reason)
{
	log_info(role_daemon_conn_context(conn), "link down: %s", reason);
}

void role_daemon_peer_refused(struct role_daemon *rd, const char *address, const char *reason)
{
	log_warning(tstr_printf("conn=%s", address), "refused: %s", reason);
	struct json *data = json_new_object();
	json_set_string(data, "address", address);
	json_set_string(data, "reason", reason);
	role_daemon_management_event(rd, "peerRefused", data);
}
