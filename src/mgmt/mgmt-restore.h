#ifndef COFFER_MGMT_RESTORE_H
#define COFFER_MGMT_RESTORE_H
/* mgmt-restore: restore to mailbox. A Client Access Server asks, for a user
 * signed in to Web Access (RestoreMessage {instanceID, userName,
 * messageID}); the Management Server reads the user's first email address
 * (GetUserInfo) and the message with the user's own read rights
 * (ClientFetch: another user's message is "not-found") from the instance,
 * and sends the archived bytes unchanged with the system SMTP configuration
 * to that address. Every restore is in the audit log. Only a registered
 * Client Access Server may ask; only the user's own address receives mail,
 * so a restore cannot be used to mail anybody else.
 *
 * Contract: the call is answered exactly once ({sentTo} or an error), unless
 * the asking connection closed meanwhile (mgmt_restore_conn_closed()). */
#include <stdint.h>

struct json;
struct mgmt;
struct rpc_conn;

void mgmt_restore_request(struct mgmt *mgmt, struct rpc_conn *conn, uint32_t id,
			  const struct json *args);
/* A connection is going away: restores it asked for answer nobody. */
void mgmt_restore_conn_closed(struct mgmt *mgmt, struct rpc_conn *conn);

#endif
