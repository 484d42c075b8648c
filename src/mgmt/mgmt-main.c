#include "mgmt-main.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "crypto.h"
#include "file.h"
#include "mgmt-api.h"
#include "mgmt-jobs.h"
#include "mgmt-auth.h"
#include "mgmt-auth-log.h"
#include "mgmt-console.h"
#include "mgmt-branding.h"
#include "audit.h"
#include "auth-secret.h"
#include "mgmt-links.h"
#include "mgmt-restore.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "role-daemon.h"
#include "rpc.h"
#include "tstr.h"

#include <string.h>

int mgmt_db_commit(struct mgmt *mgmt, const char **error_r)
{
	const char *save_error;
	if (mgmtdb_save(mgmt->db, mgmt->db_path, &save_error) == 0)
		return 0;
	*error_r = tstr_printf("the change was not saved: %s", save_error);
	log_error(NULL, "saving the management database failed: %s", save_error);
	/* Memory must not claim what the file does not hold. */
	struct mgmtdb *reloaded;
	const char *load_error;
	if (mgmtdb_load(mgmt->db_path, &reloaded, &load_error) == 0) {
		mgmtdb_destroy(&mgmt->db);
		mgmt->db = reloaded;
		mgmt_links_sync(mgmt->links);
	}
	return -1;
}

/* ---- the TCP listener: event links from the roles ---- */

static bool mgmt_peer_check(const char *fingerprint, void *ctx)
{
	struct mgmt *mgmt = ctx;
	return mgmt_links_fingerprint_registered(mgmt->links, fingerprint);
}

static void mgmt_tcp_accepted(struct rpc_server *server, struct rpc_conn *conn,
			      const struct json *hello, void *ctx)
{
	struct mgmt *mgmt = ctx;
	mgmt_links_inbound_ready(mgmt->links, conn);
}

static void mgmt_tcp_ping(struct mgmt *mgmt, struct rpc_conn *conn, uint32_t id,
			  const struct json *args)
{
	rpc_conn_reply(conn, id, json_new_string("pong"));
}

/* The calls other roles make to the Management Server over its TCP port,
 * one row each (the Management API's functions have their own tables). */
static const struct mgmt_tcp_call {
	const char *name;
	void (*handler)(struct mgmt *mgmt, struct rpc_conn *conn, uint32_t id,
			const struct json *args);
} mgmt_tcp_calls[] = {
	{"Ping", mgmt_tcp_ping},
	{"RestoreMessage", mgmt_restore_request},
};

static void mgmt_tcp_request(struct rpc_conn *conn, uint32_t id, const char *method,
			     const struct json *args, void *ctx)
{
	for (size_t i = 0; i < sizeof(mgmt_tcp_calls) / sizeof(mgmt_tcp_calls[0]); i++) {
		if (strcmp(mgmt_tcp_calls[i].name, method) == 0) {
			mgmt_tcp_calls[i].handler(ctx, conn, id, args);
			return;
		}
	}
	rpc_conn_reply_error(conn, id, "unknown-method",
			     tstr_printf("the Management Server takes no call '%s'", method));
}

static void mgmt_tcp_event(struct rpc_conn *conn, const char *name, const struct json *data,
			   void *ctx)
{
	struct mgmt *mgmt = ctx;
	mgmt_links_inbound_event(mgmt->links, conn, name, data);
}

static void mgmt_tcp_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	struct mgmt *mgmt = ctx;
	mgmt_restore_conn_closed(mgmt, conn);
	mgmt_links_inbound_closed(mgmt->links, conn, reason);
}

static void mgmt_tcp_refused(struct rpc_server *server, const char *address, const char *reason,
			     void *ctx)
{
	struct mgmt *mgmt = ctx;
	mgmt_links_message(mgmt->links, LOG_LEVEL_ERROR, "refused a connection from %s: %s",
			   address, reason);
}

static const struct rpc_server_callbacks mgmt_tcp_callbacks = {
	.accepted = mgmt_tcp_accepted,
	.request = mgmt_tcp_request,
	.event = mgmt_tcp_event,
	.closed = mgmt_tcp_closed,
	.refused = mgmt_tcp_refused,
};

/* ---- start-up ---- */

/* A Console that cannot load (every browser tab holds connections) or an
 * API client refused says why in the log. */
static void mgmt_http_refused(const char *address, const char *reason, void *ctx)
{
	struct mgmt *mgmt = ctx;
	unsigned int count;
	if (log_throttle_pass(&mgmt->http_refused, 10, &count))
		log_warning("https",
			    "refused %u connection(s) over the %s limit (the last from %s)", count,
			    reason, address);
}

static int mgmt_listen_http(struct mgmt *mgmt, const char **error_r)
{
	struct tls_context *tls =
		role_daemon_server_tls(mgmt->rd, CONFIG_KIND_HTTP, NULL, NULL, error_r);
	if (tls == NULL)
		return -1;
	/* 8 MiB: a SyncUsers of tens of thousands of users is one request (and
	 * stays well inside one role-protocol frame on its way to the instance) */
	struct http_server_settings set = {.max_body_size = 8 * 1024 * 1024,
					   .refused = mgmt_http_refused};
	mgmt->http =
		http_server_create(role_daemon_base(mgmt->rd), tls, &set, mgmt_api_handle, mgmt);
	const struct config_listener_set *l =
		&role_daemon_settings(mgmt->rd)->listeners[CONFIG_KIND_HTTP];
	for (size_t i = 0; i < l->listener_count; i++) {
		const char *error;
		if (http_server_listen(mgmt->http, &l->listeners[i], &error) < 0) {
			*error_r = tstr_printf("HTTP listener %s", error);
			return -1;
		}
	}
	return 0;
}

/* secrets.key, checked against the secrets the database holds sealed. A
 * database moved from another server without its key would otherwise get a
 * new key here, and its MFA seeds and SMTP password would no longer open:
 * start-up fails instead, saying which file to bring. */
static int mgmt_load_secret_key(struct mgmt *mgmt, const char *key_path, const char **error_r)
{
	size_t count = mgmtdb_sealed_secret_count(mgmt->db);
	struct mgmtdb_sealed_secret secret;
	if (count > 0) {
		int exists = file_exists(key_path, error_r);
		if (exists < 0)
			return -1;
		if (exists == 0) {
			mgmtdb_sealed_secret_get(mgmt->db, 0, &secret);
			*error_r = tstr_printf(
				"%s is missing, but the management database holds %zu secret(s) "
				"sealed under it (%s): copy secrets.key from the config directory "
				"the management database came from",
				key_path, count, secret.what);
			return -1;
		}
	}
	if (auth_secret_key_load_or_create(key_path, mgmt->secret_key, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		char *plain;
		const char *open_error;
		mgmtdb_sealed_secret_get(mgmt->db, i, &secret);
		if (auth_secret_open(mgmt->secret_key, secret.sealed, secret.context, &plain,
				     &open_error) < 0) {
			*error_r = tstr_printf("%s does not open %s (%s): it is not the key the "
					       "management database was written with; copy "
					       "secrets.key from the config directory the database "
					       "came from",
					       key_path, secret.what, open_error);
			return -1;
		}
		crypto_wipe(plain, strlen(plain));
		mem_free(plain);
	}
	return 0;
}

static int mgmt_start(struct mgmt *mgmt, const char **error_r)
{
	if (crypto_init() < 0) {
		*error_r = "cannot initialise the crypto library";
		return -1;
	}
	mgmt->links = mgmt_links_create(mgmt);
	mgmt->jobs = mgmt_jobs_create(role_daemon_base(mgmt->rd));
	/* Bind while privileged; create and open files only as the run-as user,
	 * so that they belong to it. */
	mgmt->tcp_server = role_daemon_listen_tcp(mgmt->rd, mgmt_peer_check, mgmt,
						  &mgmt_tcp_callbacks, mgmt, error_r);
	if (mgmt->tcp_server == NULL || mgmt_listen_http(mgmt, error_r) < 0 ||
	    role_daemon_drop_privileges(mgmt->rd, error_r) < 0)
		return -1;
	const char *dir = role_daemon_config_dir(mgmt->rd);
	mgmt->db_path = config_path(dir, MGMTDB_FILE_NAME);
	if (mgmtdb_load(mgmt->db_path, &mgmt->db, error_r) < 0)
		return -1;
	char *key_path = config_path(dir, "secrets.key");
	char *audit_path = config_path(dir, "management-audit.log");
	int ret = mgmt_load_secret_key(mgmt, key_path, error_r);
	if (ret == 0)
		ret = audit_open(audit_path, &mgmt->audit, error_r);
	mem_free(key_path);
	mem_free(audit_path);
	if (ret < 0)
		return -1;
	mgmt->auth = mgmt_auth_create();
	mgmt->console = mgmt_console_create();
	mgmt_branding_load(mgmt);
	mgmt->auth_log = mgmt_auth_log_create(role_daemon_base(mgmt->rd));
	return 0;
}

static void mgmt_free(struct mgmt *mgmt)
{
	/* links first: closing them answers the calls still out (a long
	 * SyncUsers at shutdown) into jobs that must still exist */
	mgmt_api_move_abandon_all();
	mgmt_links_destroy(&mgmt->links);
	mgmt_jobs_destroy(&mgmt->jobs);
	mgmt_auth_destroy(&mgmt->auth);
	mgmt_console_destroy(&mgmt->console);
	mgmt_branding_free(mgmt);
	mgmt_auth_log_destroy(&mgmt->auth_log);
	audit_close(&mgmt->audit);
	http_server_destroy(&mgmt->http);
	rpc_server_destroy(&mgmt->tcp_server);
	mgmtdb_destroy(&mgmt->db);
	mem_free(mgmt->db_path);
	role_daemon_destroy(&mgmt->rd);
}

int mgmt_main(int argc, char **argv)
{
	struct mgmt mgmt = {.started = time(NULL)};
	const char *error;
	mgmt.rd = role_daemon_create(CONFIG_ROLE_MANAGEMENT_SERVER, argc, argv, &error);
	if (mgmt.rd == NULL)
		return role_daemon_fail(NULL, error);
	if (mgmt_start(&mgmt, &error) < 0 ||
	    role_daemon_start(mgmt.rd,
			      tstr_printf("%zu Instance Host(s), %zu Client Access Server(s), %zu "
					  "instance(s) registered",
					  mgmtdb_server_count(mgmt.db, MGMTDB_INSTANCE_HOST),
					  mgmtdb_server_count(mgmt.db, MGMTDB_CLIENT_ACCESS_SERVER),
					  mgmtdb_instance_count(mgmt.db)),
			      &error) < 0) {
		int ret = role_daemon_fail(mgmt.rd, error);
		mgmt_free(&mgmt);
		return ret;
	}
	/* Links start after privileges are dropped; they only connect out. */
	mgmt_links_sync(mgmt.links);
	int ret = role_daemon_run(mgmt.rd);
	mgmt_free(&mgmt);
	return ret;
}
