/* The Client Access Server: accepts the Management Server's control link,
 * keeps its event link to the Management Server, and keeps a link to every
 * Instance Host the Management Server names (SetTopology, access-route),
 * through which user work flows; serves IMAP (access-imap) and Web Access. */
#include "access-main.h"
#include "access-imap.h"
#include "access-route.h"
#include "access-web.h"
#include "access-branding.h"
#include "config.h"
#include "file.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "role-daemon.h"
#include "rpc.h"
#include "tstr.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ACCESS_TOPOLOGY_FILE "client-access-server-topology.json"

struct access {
	struct role_daemon *rd;
	struct rpc_server *tcp_server;
	struct access_route *route;
	struct access_imap *imap;
	time_t started;
};

static char *access_topology_path(struct access *access)
{
	return config_path(role_daemon_config_dir(access->rd), ACCESS_TOPOLOGY_FILE);
}

static void access_load_topology(struct access *access)
{
	char *path = access_topology_path(access);
	char *text;
	size_t len;
	const char *error;
	struct json *topology;
	if (file_exists(path, &error) == 1 &&
	    file_read_all(path, 1024 * 1024, &text, &len, &error) == 0) {
		if (json_parse(text, len, &topology, &error) == 0) {
			access_route_apply(access->route, topology);
			json_unref(&topology);
		} else {
			log_warning(NULL, "ignoring %s: %s", path, error);
		}
		mem_free(text);
	}
	mem_free(path);
}

static void access_set_topology(struct access *access, struct rpc_conn *conn, uint32_t id,
				const struct json *args)
{
	if (json_kind(json_get(args, "instanceHosts")) != JSON_KIND_ARRAY) {
		rpc_conn_reply_error(conn, id, "bad-request", "instanceHosts must be an array");
		return;
	}
	char *path = access_topology_path(access);
	char *text = json_serialize(args, true);
	const char *error;
	int ret = file_write_atomic(path, text, strlen(text), 0600, &error);
	mem_free(text);
	mem_free(path);
	if (ret < 0) {
		rpc_conn_reply_error(conn, id, "io", error);
		return;
	}
	access_route_apply(access->route, args);
	log_info(role_daemon_conn_context(conn), "%zu Instance Host(s) known",
		 json_count(json_get(args, "instanceHosts")));
	rpc_conn_reply(conn, id, NULL);
}

/* The branding the Management Server pushes (docs/protocol.md): checked as
 * it checked it, kept in the config directory, and read by Web Access at
 * each request (access-web-static.c), so pages show it without a restart. */
static void access_set_branding(struct access *access, struct rpc_conn *conn, uint32_t id,
				const struct json *args)
{
	const char *error;
	if (access_branding_check(args, &error) < 0) {
		rpc_conn_reply_error(conn, id, "bad-request", error);
		return;
	}
	char *path = config_path(role_daemon_config_dir(access->rd), ACCESS_BRANDING_FILE);
	char *text = json_serialize(args, false);
	int ret = file_write_atomic(path, text, strlen(text), 0600, &error);
	mem_free(text);
	mem_free(path);
	if (ret < 0) {
		rpc_conn_reply_error(conn, id, "io", error);
		return;
	}
	long long version = 0;
	(void)json_get_int(args, "version", &version);
	log_info(role_daemon_conn_context(conn), "branding version %lld", version);
	rpc_conn_reply(conn, id, NULL);
}

static struct json *access_info(struct access *access)
{
	struct json *info = json_new_object();
	json_set_string(info, "version", COFFER_VERSION);
	json_set_int(info, "startedAt", (long long)access->started);
	json_set(info, "instanceHostLinks", access_route_info(access->route));
	if (access->imap != NULL)
		json_set(info, "imap", access_imap_info(access->imap));
	return info;
}

static bool access_peer_check(const char *fingerprint, void *ctx)
{
	struct access *access = ctx;
	const char *pinned = role_daemon_settings(access->rd)->management.fingerprint;
	return pinned[0] != '\0' && strcmp(pinned, fingerprint) == 0;
}

static void access_call_ping(struct access *access, struct rpc_conn *conn, uint32_t id,
			     const struct json *args)
{
	rpc_conn_reply(conn, id, json_new_string("pong"));
}

static void access_call_get_info(struct access *access, struct rpc_conn *conn, uint32_t id,
				 const struct json *args)
{
	rpc_conn_reply(conn, id, access_info(access));
}

/* The calls the Management Server makes here, one row each. */
static const struct access_call {
	const char *name;
	void (*handler)(struct access *access, struct rpc_conn *conn, uint32_t id,
			const struct json *args);
} access_calls[] = {
	{"Ping", access_call_ping},
	{"GetInfo", access_call_get_info},
	{"SetTopology", access_set_topology},
	{"SetBranding", access_set_branding},
};

static void access_request(struct rpc_conn *conn, uint32_t id, const char *method,
			   const struct json *args, void *ctx)
{
	for (size_t i = 0; i < sizeof(access_calls) / sizeof(access_calls[0]); i++) {
		if (strcmp(access_calls[i].name, method) == 0) {
			access_calls[i].handler(ctx, conn, id, args);
			return;
		}
	}
	rpc_conn_reply_error(conn, id, "unknown-method",
			     tstr_printf("the Client Access Server takes no call '%s'", method));
}

static void access_accepted(struct rpc_server *server, struct rpc_conn *conn,
			    const struct json *hello, void *ctx)
{
	role_daemon_peer_up(conn);
}

static void access_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	role_daemon_peer_down(conn, reason);
}

static void access_refused(struct rpc_server *server, const char *address, const char *reason,
			   void *ctx)
{
	struct access *access = ctx;
	role_daemon_peer_refused(access->rd, address, reason);
}

static const struct rpc_server_callbacks access_tcp_callbacks = {
	.accepted = access_accepted,
	.request = access_request,
	.closed = access_closed,
	.refused = access_refused,
};

static const struct rpc_conn_callbacks access_management_callbacks = {
	.request = access_request,
};

/* COFFER_TEST_IMAP_PREAUTH_TIMEOUT_SECS (tests only): a shorter wait for a
 * login than the 120 s a test could not wait out; 0: the default. */
static unsigned int access_test_preauth_timeout(void)
{
	const char *env = getenv("COFFER_TEST_IMAP_PREAUTH_TIMEOUT_SECS");
	int secs = env == NULL ? 0 : atoi(env);
	if (secs <= 0)
		return 0;
	log_warning(NULL,
		    "COFFER_TEST_IMAP_PREAUTH_TIMEOUT_SECS=%d: IMAP clients are closed "
		    "after %d s without a login (for tests only)",
		    secs, secs);
	return (unsigned int)secs;
}

/* Bind the IMAP listeners (143 with STARTTLS, 993 with implicit TLS) while
 * still privileged. */
static int access_listen_imap(struct access *access, const char **error_r)
{
	const struct config_role_settings *set = role_daemon_settings(access->rd);
	const struct config_listener_set *plain = &set->listeners[CONFIG_KIND_IMAP];
	const struct config_listener_set *tls = &set->listeners[CONFIG_KIND_IMAPS];
	if (!plain->enabled && !tls->enabled)
		return 0;
	struct tls_context *ctx =
		role_daemon_server_tls(access->rd, CONFIG_KIND_IMAP, NULL, NULL, error_r);
	if (ctx == NULL)
		return -1;
	struct access_imap_settings imap_set = {
		.base = role_daemon_base(access->rd),
		.route = access->route,
		.tls = ctx,
		.server_name = set->server_name,
		.allow_plaintext_auth = getenv("COFFER_IMAP_ALLOW_PLAINTEXT_AUTH") != NULL,
		.preauth_timeout_secs = access_test_preauth_timeout(),
	};
	access->imap = access_imap_create(&imap_set);
	for (int implicit = 0; implicit < 2; implicit++) {
		const struct config_listener_set *l = implicit ? tls : plain;
		for (size_t i = 0; l->enabled && i < l->listener_count; i++) {
			const char *error;
			if (access_imap_listen(access->imap, &l->listeners[i], implicit != 0,
					       &error) < 0) {
				*error_r = tstr_printf("%s listener %s",
						       implicit ? "IMAPS" : "IMAP", error);
				return -1;
			}
		}
	}
	return 0;
}

int access_main(int argc, char **argv)
{
	struct access access = {.started = time(NULL)};
	struct access_web *web = NULL;
	const char *error;
	access.rd = role_daemon_create(CONFIG_ROLE_CLIENT_ACCESS_SERVER, argc, argv, &error);
	if (access.rd == NULL)
		return role_daemon_fail(NULL, error);
	char *local_host_socket =
		config_socket_path(role_daemon_config_dir(access.rd), CONFIG_ROLE_INSTANCE_HOST);
	struct access_route_settings route_set = {
		.base = role_daemon_base(access.rd),
		.client_tls = role_daemon_client_tls(access.rd),
		.hello = role_daemon_hello(access.rd),
		.local_host_socket = local_host_socket,
		.local_fingerprint = role_daemon_fingerprint(access.rd, CONFIG_KIND_TCP),
	};
	access.route = access_route_create(&route_set);
	access.tcp_server = role_daemon_listen_tcp(access.rd, access_peer_check, &access,
						   &access_tcp_callbacks, &access, &error);
	bool paired = role_daemon_settings(access.rd)->management.fingerprint[0] != '\0';
	int ret;
	/* IMAP and Web Access bind their listeners while still privileged. */
	if (access.tcp_server == NULL || access_listen_imap(&access, &error) < 0 ||
	    access_web_create(access.rd, access.route, &web, &error) < 0 ||
	    role_daemon_start(access.rd,
			      paired ? "paired" : "not paired with a Management Server yet",
			      &error) < 0) {
		ret = role_daemon_fail(access.rd, error);
	} else {
		access_load_topology(&access);
		role_daemon_connect_management(access.rd, &access_management_callbacks, &access);
		ret = role_daemon_run(access.rd);
	}
	/* Before the route: their calls under way are answered by the route's end. */
	access_web_destroy(&web);
	access_imap_destroy(&access.imap);
	access_route_destroy(&access.route);
	mem_free(local_host_socket); /* borrowed by the route */
	rpc_server_destroy(&access.tcp_server);
	role_daemon_destroy(&access.rd);
	return ret;
}
