#ifndef COFFER_INSTANCE_CLIENT_H
#define COFFER_INSTANCE_CLIENT_H
/* instance-client: the "Client*" calls a Client Access Server makes on
 * behalf of end users (docs/client-calls.md). instance_client_call() always
 * answers the call (result, result with a blob of message bytes, or an
 * error with one of the documented codes). */
#include <stdbool.h>
#include <stdint.h>

struct instance;
struct json;
struct rpc_conn;

/* ClientLogin answers later: its Argon2id check runs on a worker thread
 * (at most INSTANCE_LOGIN_QUEUE_MAX waiting; beyond, the error "busy", not
 * a failed login). Logins are throttled per remoteAddress and per
 * (userName, remoteAddress) before they are checked ("throttled"). */
bool instance_client_is_call(const char *method);
void instance_client_call(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			  const char *method, const struct json *args);
/* {threads, queued, running, checked, refusedBusy, refusedThrottled} */
struct json *instance_client_login_statistics(struct instance *inst);
/* Before the Instance Host link goes: waits for running checks, drops the
 * rest unanswered. */
void instance_client_stop(struct instance *inst);

#endif
