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

bool instance_client_is_call(const char *method);
void instance_client_call(struct instance *inst, struct rpc_conn *conn, uint32_t id,
			  const char *method, const struct json *args);

#endif
