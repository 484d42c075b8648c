#ifndef COFFER_ROLE_DAEMON_H
#define COFFER_ROLE_DAEMON_H
/* role-daemon: what the three role daemons (Management Server, Instance Host,
 * Client Access Server) share: reading the config directory, checking the
 * role's certificates, the role-to-role TCP listener, the link from an
 * Instance Host or Client Access Server to its Management Server, logging,
 * dropping privileges, the pid file and readiness.
 *
 * Start-up order (each step fails the start with a reason that reaches
 * `coffer config start`): role_daemon_create() loads the settings and
 * certificates; the role binds its listeners (role_daemon_listen_tcp() and
 * its own, while still privileged); role_daemon_start() drops privileges,
 * opens the log, takes the pid file and reports ready; role_daemon_run()
 * runs the event loop. */
#include <stdbool.h>

#include "config.h"
#include "rpc.h"
#include "tls.h"

struct event_base;
struct json;
struct role_daemon;

/* argv: the daemon's arguments (--config-dir DIR, --foreground). NULL with
 * *error_r if the settings or certificates are unusable. */
struct role_daemon *role_daemon_create(enum config_role role, int argc, char **argv,
				       const char **error_r);
void role_daemon_destroy(struct role_daemon **rd);

struct event_base *role_daemon_base(struct role_daemon *rd);
const char *role_daemon_config_dir(struct role_daemon *rd);
const struct config_role_settings *role_daemon_settings(struct role_daemon *rd);
const struct config_server *role_daemon_server(struct role_daemon *rd);
const char *role_daemon_fingerprint(struct role_daemon *rd, enum config_kind kind);
/* Our hello for role-to-role connections (role, serverName, version). */
const struct json *role_daemon_hello(struct role_daemon *rd);
/* A client context presenting this role's TCP certificate. */
struct tls_context *role_daemon_client_tls(struct role_daemon *rd);
/* A server context for one of the role's listener kinds (NULL peer_check:
 * no client certificate required). */
struct tls_context *role_daemon_server_tls(struct role_daemon *rd, enum config_kind kind,
					   tls_peer_check_fn *peer_check, void *ctx,
					   const char **error_r);

/* Listen for role-to-role connections on the role's TCP listeners. */
struct rpc_server *role_daemon_listen_tcp(struct role_daemon *rd, tls_peer_check_fn *peer_check,
					  void *check_ctx,
					  const struct rpc_server_callbacks *callbacks, void *ctx,
					  const char **error_r);

/* Instance Host and Client Access Server: keep a link to the Management
 * Server's TCP port (events up, calls both ways). No-op, with a log line,
 * while the role is not paired. */
void role_daemon_connect_management(struct role_daemon *rd,
				    const struct rpc_conn_callbacks *callbacks, void *ctx);
/* Send an event to the Management Server if the link is up. */
void role_daemon_management_event(struct role_daemon *rd, const char *name, struct json *data);
struct rpc_client *role_daemon_management_link(struct role_daemon *rd);

/* Become the run-as user (after binding privileged ports, before creating
 * any file). role_daemon_start() does it too if it was not done. */
int role_daemon_drop_privileges(struct role_daemon *rd, const char **error_r);
int role_daemon_start(struct role_daemon *rd, const char *ready_text, const char **error_r);
/* Report a failed start (to the starter and the log) and return 1 (exit code). */
int role_daemon_fail(struct role_daemon *rd, const char *reason);
int role_daemon_run(struct role_daemon *rd);

/* For the role's TCP listener callbacks: log a peer's link going up or down;
 * log a refused peer and report it to the Management Server (its dashboard
 * shows refusals from every role). */
void role_daemon_peer_up(struct rpc_conn *conn);
void role_daemon_peer_down(struct rpc_conn *conn, const char *reason);
void role_daemon_peer_refused(struct role_daemon *rd, const char *address, const char *reason);

/* Log context for a peer connection: "peer=NAME conn=ADDRESS". */
const char *role_daemon_conn_context(struct rpc_conn *conn);

#endif
