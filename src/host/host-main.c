/* The Instance Host: accepts the Management Server's control link and the
 * Client Access Servers' links on its TCP port, and keeps its own event link
 * to the Management Server. Instances (one process each) come with issue 4. */
#include "host-main.h"
#include "host-instances.h"
#include "host-journal.h"
#include "host-move.h"
#include "config.h"
#include "file.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "role-daemon.h"
#include "rpc.h"
#include "tls.h"
#include "tstr.h"

#include <string.h>
#include <time.h>

#define HOST_PEERS_FILE "instance-host-peers.json"

struct host {
	struct role_daemon *rd;
	struct rpc_server *tcp_server;
	/* Client Access Servers allowed to connect, as the Management Server
	 * last said ({"clientAccessServers":[{serverName, fingerprint}]});
	 * kept on disk so they can connect while the Management Server is down. */
	struct json *peers;
	struct host_instances *instances;
	struct host_move *move;
	struct host_journal *journal;
	struct tls_context *journal_tls;
	time_t started;
};

static void host_load_peers(struct host *host)
{
	char *path = config_path(role_daemon_config_dir(host->rd), HOST_PEERS_FILE);
	char *text;
	size_t len;
	const char *error;
	host->peers = NULL;
	if (file_exists(path, &error) == 1) {
		if (file_read_all(path, 1024 * 1024, &text, &len, &error) == 0) {
			if (json_parse(text, len, &host->peers, &error) < 0)
				log_warning(NULL, "ignoring %s: %s", path, error);
			mem_free(text);
		} else {
			log_warning(NULL, "ignoring %s: %s", path, error);
		}
	}
	if (host->peers == NULL ||
	    json_kind(json_get(host->peers, "clientAccessServers")) != JSON_KIND_ARRAY) {
		json_unref(&host->peers);
		host->peers = json_new_object();
		json_set(host->peers, "clientAccessServers", json_new_array());
	}
	mem_free(path);
}

static int host_save_peers(struct host *host, const char **error_r)
{
	char *path = config_path(role_daemon_config_dir(host->rd), HOST_PEERS_FILE);
	char *text = json_serialize(host->peers, true);
	int ret = file_write_atomic(path, text, strlen(text), 0600, error_r);
	mem_free(text);
	mem_free(path);
	return ret;
}

static bool host_is_management(struct host *host, const char *fingerprint)
{
	const char *pinned = role_daemon_settings(host->rd)->management.fingerprint;
	return pinned[0] != '\0' && strcmp(pinned, fingerprint) == 0;
}

static bool host_is_client_access(struct host *host, const char *fingerprint)
{
	const struct json *list = json_get(host->peers, "clientAccessServers");
	for (size_t i = 0; i < json_count(list); i++) {
		const char *fp = json_get_string(json_at(list, i), "fingerprint");
		if (fp != NULL && strcmp(fp, fingerprint) == 0)
			return true;
	}
	return false;
}

static bool host_peer_check(const char *fingerprint, void *ctx)
{
	struct host *host = ctx;
	if (host_is_management(host, fingerprint) || host_is_client_access(host, fingerprint))
		return true;
	/* another Instance Host, while the Management Server has it copy an
	 * instance from here */
	return host_move_peer_allowed(host->move, fingerprint);
}

static struct json *host_info(struct host *host)
{
	struct json *info = json_new_object();
	json_set_string(info, "version", COFFER_VERSION);
	json_set_int(info, "startedAt", (long long)host->started);
	unsigned int available, running;
	host_instances_counts(host->instances, &available, &running);
	json_set_int(info, "instancesAvailable", available);
	json_set_int(info, "instancesRunning", running);
	json_set_int(info, "clientAccessServersAllowed",
		     (long long)json_count(json_get(host->peers, "clientAccessServers")));
	return info;
}

static void host_set_peers(struct host *host, struct rpc_conn *conn, uint32_t id,
			   const struct json *args)
{
	const struct json *list = json_get(args, "clientAccessServers");
	const char *error;
	if (list == NULL || json_kind(list) != JSON_KIND_ARRAY) {
		rpc_conn_reply_error(conn, id, "bad-request",
				     "clientAccessServers must be an array");
		return;
	}
	struct json *old = host->peers;
	host->peers = json_new_object();
	json_set(host->peers, "clientAccessServers", json_clone(list));
	if (host_save_peers(host, &error) < 0) {
		json_unref(&host->peers);
		host->peers = old;
		rpc_conn_reply_error(conn, id, "io", error);
		return;
	}
	json_unref(&old);
	log_info(role_daemon_conn_context(conn), "%zu Client Access Server(s) allowed",
		 json_count(list));
	rpc_conn_reply(conn, id, NULL);
}

static void host_call_ping(struct host *host, struct rpc_conn *conn, uint32_t id,
			   const struct json *args)
{
	rpc_conn_reply(conn, id, json_new_string("pong"));
}

static void host_call_get_info(struct host *host, struct rpc_conn *conn, uint32_t id,
			       const struct json *args)
{
	rpc_conn_reply(conn, id, host_info(host));
}

/* The host's own calls, one row each; instances, moves and the journal
 * receiver have their tables in their modules (asked first, below). */
static const struct host_call {
	const char *name;
	void (*handler)(struct host *host, struct rpc_conn *conn, uint32_t id,
			const struct json *args);
	bool management_only;
} host_calls[] = {
	{"Ping", host_call_ping, false},
	{"GetInfo", host_call_get_info, false},
	{"SetPeers", host_set_peers, true},
};

static void host_request(struct rpc_conn *conn, uint32_t id, const char *method,
			 const struct json *args, void *ctx)
{
	struct host *host = ctx;
	bool from_management = host_is_management(host, rpc_conn_peer_fingerprint(conn));
	/* Instance management is the Management Server's; Client Access Servers
	 * may only pass end users' calls ("Client*") into instances. */
	const char *inner = json_get_string(args, "method");
	if (host_move_request(host->move, conn, id, method, args, from_management))
		return;
	if (!from_management && !host_is_client_access(host, rpc_conn_peer_fingerprint(conn))) {
		rpc_conn_reply_error(conn, id, "forbidden",
				     "an Instance Host may only read an instance it moves");
		return;
	}
	if (!from_management && strcmp(method, "InstanceCall") == 0 &&
	    (inner == NULL || strncmp(inner, "Client", 6) != 0)) {
		rpc_conn_reply_error(conn, id, "forbidden",
				     "a Client Access Server may only make Client* calls");
		return;
	}
	if ((from_management || strcmp(method, "InstanceCall") == 0) &&
	    host_instances_request(host->instances, conn, id, method, args))
		return;
	if (from_management && host->journal != NULL &&
	    host_journal_request(host->journal, conn, id, method, args))
		return;
	for (size_t i = 0; i < sizeof(host_calls) / sizeof(host_calls[0]); i++) {
		if (strcmp(host_calls[i].name, method) == 0 &&
		    (from_management || !host_calls[i].management_only)) {
			host_calls[i].handler(host, conn, id, args);
			return;
		}
	}
	rpc_conn_reply_error(
		conn, id, "unknown-method",
		tstr_printf("the Instance Host takes no call '%s' from this peer", method));
}

static void host_accepted(struct rpc_server *server, struct rpc_conn *conn,
			  const struct json *hello, void *ctx)
{
	role_daemon_peer_up(conn);
}

static void host_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	struct host *host = ctx;
	host_instances_forget_conn(host->instances, conn);
	host_move_forget_conn(host->move, conn);
	role_daemon_peer_down(conn, reason);
}

static void host_management_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	struct host *host = ctx;
	host_instances_forget_conn(host->instances, conn);
}

static void host_instance_changed(const char *id, const char *state, const char *error, void *ctx)
{
	struct host *host = ctx;
	struct json *data = json_new_object();
	json_set_string(data, "instanceID", id);
	json_set_string(data, "state", state);
	json_set_string(data, "error", error);
	role_daemon_management_event(host->rd, "instanceStateChanged", data);
}

static void host_instance_event(const char *name, const struct json *data, void *ctx)
{
	struct host *host = ctx;
	role_daemon_management_event(host->rd, name, json_clone(data));
}

static void host_refused(struct rpc_server *server, const char *address, const char *reason,
			 void *ctx)
{
	struct host *host = ctx;
	role_daemon_peer_refused(host->rd, address, reason);
}

static const struct rpc_server_callbacks host_tcp_callbacks = {
	.accepted = host_accepted,
	.request = host_request,
	.closed = host_closed,
	.refused = host_refused,
};

static const struct rpc_conn_callbacks host_management_callbacks = {
	.request = host_request,
	.closed = host_management_closed,
};

/* A Client Access Server of the same config directory (single server mode)
 * links over <config-dir>/run/instance-host.sock, without TLS (rpc-local.c).
 * Made after the privileges were dropped: the socket belongs to the user
 * the roles run as. Without it, TCP and TLS still serve. */
static void host_listen_local(struct host *host)
{
	const struct rpc_local_identity identity = {
		.fingerprint = role_daemon_fingerprint(host->rd, CONFIG_KIND_TCP),
		.check = host_peer_check,
		.ctx = host,
	};
	char *path =
		config_socket_path(role_daemon_config_dir(host->rd), CONFIG_ROLE_INSTANCE_HOST);
	const char *error;
	if (rpc_server_listen_local(host->tcp_server, path, &identity, &error) < 0)
		log_warning(NULL, "no local socket for roles of this config directory: %s", error);
	mem_free(path);
}

/* The journal receiver (host-journal.h), when journal.json says so; STARTTLS
 * presents the host's own TCP certificate. */
static int host_start_journal(struct host *host, const char **error_r)
{
	/* a context of its own: the role-to-role one asks for client
	 * certificates, which mail clients do not have */
	const char *dir = role_daemon_config_dir(host->rd);
	char *cert = config_cert_path(dir, CONFIG_ROLE_INSTANCE_HOST, CONFIG_KIND_TCP);
	char *key = config_key_path(dir, CONFIG_ROLE_INSTANCE_HOST, CONFIG_KIND_TCP);
	host->journal_tls = tls_context_create_server(cert, key, NULL, NULL, error_r);
	mem_free(cert);
	mem_free(key);
	if (host->journal_tls == NULL)
		return -1;
	return host_journal_create(role_daemon_base(host->rd), role_daemon_config_dir(host->rd),
				   host->instances, host->journal_tls, &host->journal, error_r);
}

int host_main(int argc, char **argv)
{
	struct host host = {.started = time(NULL)};
	const char *error;
	host.rd = role_daemon_create(CONFIG_ROLE_INSTANCE_HOST, argc, argv, &error);
	if (host.rd == NULL)
		return role_daemon_fail(NULL, error);
	host.instances =
		host_instances_create(role_daemon_base(host.rd), role_daemon_config_dir(host.rd),
				      host_instance_changed, &host);
	host_instances_on_event(host.instances, host_instance_event);
	host.move = host_move_create(role_daemon_base(host.rd), host.instances,
				     role_daemon_client_tls(host.rd), role_daemon_hello(host.rd));
	host.tcp_server = role_daemon_listen_tcp(host.rd, host_peer_check, &host,
						 &host_tcp_callbacks, &host, &error);
	/* the journal's ports are bound before privileges are dropped (25, 24) */
	if (host.tcp_server != NULL && host_start_journal(&host, &error) < 0)
		rpc_server_destroy(&host.tcp_server);
	if (host.tcp_server != NULL && role_daemon_drop_privileges(host.rd, &error) < 0)
		rpc_server_destroy(&host.tcp_server);
	host_load_peers(&host);
	bool paired = role_daemon_settings(host.rd)->management.fingerprint[0] != '\0';
	int ret;
	if (host.tcp_server == NULL ||
	    role_daemon_start(host.rd,
			      paired ? "paired" : "not paired with a Management Server yet",
			      &error) < 0) {
		ret = role_daemon_fail(host.rd, error);
	} else if (host_instances_load(host.instances, &error) < 0) {
		log_error(NULL, "cannot read the instance registry: %s", error);
		ret = 1;
	} else {
		host_listen_local(&host);
		role_daemon_connect_management(host.rd, &host_management_callbacks, &host);
		ret = role_daemon_run(host.rd);
		host_instances_stop_all(host.instances);
	}
	host_journal_destroy(&host.journal);
	tls_context_destroy(&host.journal_tls);
	rpc_server_destroy(&host.tcp_server);
	host_move_destroy(&host.move);
	host_instances_destroy(&host.instances);
	json_unref(&host.peers);
	role_daemon_destroy(&host.rd);
	return ret;
}
