#ifndef COFFER_ACCESS_ROUTE_H
#define COFFER_ACCESS_ROUTE_H
/* access-route: where each instance runs, and calls into instances.
 *
 * The Management Server pushes the directory with SetTopology:
 *   {"instanceHosts":[{"serverName","port","fingerprint"}...],
 *    "instances":[{"instanceID","alias","instanceHost"}...]}
 * access_route_apply() replaces it (links to unchanged Instance Hosts are
 * kept). An instance is found by its ID or its alias, case-insensitively.
 *
 * Calls go to the instance's Instance Host as
 *   InstanceCall {"instanceID", "method", "args"}
 * over the pinned TLS link; the Instance Host passes only "Client*" methods
 * from a Client Access Server on to the instance process. Users are always
 * named in args ("userName"): the instance checked their password at
 * ClientLogin; this server never sees a password hash.
 *
 * Contract: access_route_call() always calls `answer` exactly once, later
 * from the event loop (never from inside access_route_call()), with either
 * the result (borrowed; may carry a binary blob, e.g. message bytes) or an
 * error code and text. Error codes: "no-such-instance" (unknown name; the
 * caller must not reveal this to an unauthenticated user), "unavailable"
 * (its Instance Host is not connected, or the instance is not running),
 * "timeout", "closed", or the instance's own codes ("auth-failed",
 * "mfa-required", "not-found", "forbidden", "bad-request", "failed").
 * A call for an Instance Host whose link is down waits up to 3 s for it
 * (a reconnect is tried at once) before it is answered "unavailable". */
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct evbuffer;
struct json;
struct tls_context;
struct access_route;

struct access_route_settings {
	struct event_base *base;
	struct tls_context *client_tls; /* our certificate for Instance Host links */
	const struct json *hello;       /* our rpc hello */
	/* the Instance Host of our config directory, if one runs there: its
	 * local socket, tried before TLS (rpc-local.c), and our fingerprint */
	const char *local_host_socket;
	const char *local_fingerprint;
};

struct access_route *access_route_create(const struct access_route_settings *set);
void access_route_destroy(struct access_route **route);

/* Replace the directory (see above); ignores malformed entries. */
void access_route_apply(struct access_route *route, const struct json *topology);

/* The canonical instance ID for an ID or alias (borrowed until the next
 * apply): 1 found, 0 unknown. */
int access_route_resolve(struct access_route *route, const char *name, const char **instance_id_r);

/* For GetInfo: the Instance Host links and their states. */
struct json *access_route_info(struct access_route *route);

typedef void access_route_answer_fn(const struct json *result, const void *blob, size_t blob_len,
				    const char *error_code, const char *error_text, void *ctx);

/* Call `method` (a "Client*" call) in the instance; args are taken. */
void access_route_call(struct access_route *route, const char *instance_id, const char *method,
		       struct json *args, unsigned int timeout_secs, access_route_answer_fn *answer,
		       void *ctx);
/* The same, with the answer's blob as the evbuffer it arrived in (NULL if
 * none), whose chains the callee may move out (evbuffer_add_buffer()): a
 * large blob comes in many chains, and making it contiguous would copy it. */
typedef void access_route_buffer_answer_fn(const struct json *result, struct evbuffer *blob,
					   const char *error_code, const char *error_text,
					   void *ctx);
void access_route_call_buffer(struct access_route *route, const char *instance_id,
			      const char *method, struct json *args, unsigned int timeout_secs,
			      access_route_buffer_answer_fn *answer, void *ctx);

#endif
