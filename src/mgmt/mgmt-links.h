#ifndef COFFER_MGMT_LINKS_H
#define COFFER_MGMT_LINKS_H
/* mgmt-links: the Management Server's links to every registered Instance Host
 * and Client Access Server.
 *
 * For each server in the management database there is a control link (the
 * Management Server connects to the role's TCP port, pinning its registered
 * fingerprint) and, when the role is up and paired, an event link the role
 * opens to the Management Server's TCP port. The Management Server tells each
 * Client Access Server which Instance Hosts exist (SetTopology) and each
 * Instance Host which Client Access Servers may connect (SetPeers), again on
 * every change. Status and dashboard messages come from here. */
#include <stdbool.h>

#include "log.h"
#include "rpc.h"

struct json;
struct mgmt;
struct rpc_conn;

struct mgmt_links *mgmt_links_create(struct mgmt *mgmt);
void mgmt_links_destroy(struct mgmt_links **links);

/* Reconcile with the management database (after a load or any change). */
void mgmt_links_sync(struct mgmt_links *links);
/* Tell every Client Access Server where the instances now run (after an
 * instance was created, deleted, re-aliased or moved). */
void mgmt_links_push_instances(struct mgmt_links *links);

/* Send the branding (mgmt-branding.h) to every Client Access Server whose
 * control link is up (the others get it when it comes up); how many. */
int mgmt_links_push_branding(struct mgmt_links *links);

/* Peer check for the TCP listener: is this a registered role's fingerprint? */
bool mgmt_links_fingerprint_registered(struct mgmt_links *links, const char *fingerprint);

/* Event links opened by roles. */
void mgmt_links_inbound_ready(struct mgmt_links *links, struct rpc_conn *conn);
void mgmt_links_inbound_closed(struct mgmt_links *links, struct rpc_conn *conn, const char *reason);
void mgmt_links_inbound_event(struct mgmt_links *links, struct rpc_conn *conn, const char *name,
			      const struct json *data);

/* A dashboard message (also logged). */
void mgmt_links_message(struct mgmt_links *links, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Call an Instance Host by its registered name. -1 with *error_r if it is
 * not registered or its control link is not up; otherwise `answer` gets
 * exactly one answer. */
/* The registered Client Access Server a connection comes from (its server
 * name, borrowed), or NULL if it is not one. */
const char *mgmt_links_client_access_server(struct mgmt_links *links, const struct rpc_conn *conn);
int mgmt_links_call_host(struct mgmt_links *links, const char *host_name, const char *method,
			 struct json *args, unsigned int timeout_secs, rpc_answer_fn *answer,
			 void *ctx, const char **error_r);
/* What an Instance Host last said about an instance: its state ("stopped",
 * "starting", "running", "frozen", "stopping", "failed", or "unknown" while
 * its Instance Host is unreachable) and error. Borrowed strings. */
const char *mgmt_links_instance_state(struct mgmt_links *links, const char *host_name,
				      const char *id, const char **error_r);

/* Everything the Instance Host last said about the instance (pid,
 * startMillis, restarts, ...), borrowed; NULL if nothing. */
const struct json *mgmt_links_instance_info(struct mgmt_links *links, const char *host_name,
					    const char *id);
/* Record an instance's state from an answer of its Instance Host (events
 * come on another connection, so an answer may be newer than the last event). */
void mgmt_links_note_instance_state(struct mgmt_links *links, const char *host_name, const char *id,
				    const char *state);
/* The same from a full status object (state, pid, startMillis, ...). */
void mgmt_links_note_instance(struct mgmt_links *links, const char *host_name, const char *id,
			      const struct json *status);

/* Whether the Instance Host still answers: registered, with its control or
 * event link up. */
bool mgmt_links_host_answers(struct mgmt_links *links, const char *host_name);

/* GetServiceStatus' result (new reference). */
struct json *mgmt_links_status(struct mgmt_links *links);

#endif
