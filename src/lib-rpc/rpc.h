#ifndef COFFER_RPC_H
#define COFFER_RPC_H
/* rpc: the role-to-role protocol (docs/protocol.md) over mutually
 * authenticated, fingerprint-pinned TLS.
 *
 * Frames: a 4-byte big-endian length (of what follows), a type byte and the
 * payload. Type 1 carries one JSON message; type 2 carries a chunk of a
 * streamed payload (4-byte stream id, a flags byte with bit 0 = last chunk,
 * then bytes); type 3 carries an answer with a binary blob (4-byte length of
 * the JSON, the JSON answer, then the blob: message bytes need no base64). Frames larger than
 * RPC_MAX_FRAME are a protocol error: large payloads travel as streams of chunks.
 *
 * JSON messages: {"hello":{...}} first, from both sides; then calls
 * {"id":N,"call":"Name","args":{...}}, answers {"id":N,"result":...} or
 * {"id":N,"error":{"code":"...","message":"..."}}, one-way events
 * {"event":"name","data":{...}} and keep-alives {"ping":N} / {"pong":N}.
 *
 * Contract: an rpc_conn owns its bufferevent. Callbacks run on the event
 * loop. A call always gets exactly one answer callback: the peer's result or
 * error, a timeout ("timeout"), or the connection closing ("closed").
 * The `closed` callback is the last thing a connection does; the owner then
 * destroys it (not from inside other callbacks). Call timeouts and the
 * keep-alive are checked every keepalive_secs/3 seconds (at least 1). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "netaddr.h"

struct bufferevent;
struct evbuffer;
struct event_base;
struct json;
struct tls_context;

#define RPC_PROTOCOL_VERSION 1
#define RPC_MAX_FRAME (16 * 1024 * 1024)
#define RPC_DEFAULT_KEEPALIVE_SECS 10

struct rpc_conn;

struct rpc_conn_callbacks {
	/* The peer's hello arrived: the connection is usable. */
	void (*ready)(struct rpc_conn *conn, const struct json *peer_hello, void *ctx);
	/* A call; answer with rpc_conn_reply*() now or later (args borrowed). */
	void (*request)(struct rpc_conn *conn, uint32_t id, const char *method,
			const struct json *args, void *ctx);
	void (*event)(struct rpc_conn *conn, const char *name, const struct json *data, void *ctx);
	/* A chunk of stream `id`; may be NULL if the role takes no streams. */
	void (*data)(struct rpc_conn *conn, uint32_t id, const void *data, size_t size, bool last,
		     void *ctx);
	void (*closed)(struct rpc_conn *conn, const char *reason, void *ctx);
};

/* The answer to a call: result (borrowed) or error_code/error_text. */
typedef void rpc_answer_fn(struct rpc_conn *conn, const struct json *result, const char *error_code,
			   const char *error_text, void *ctx);

/* bev: a connected, TLS-established bufferevent (ownership taken).
 * hello: this side's hello object (borrowed; "protocol" is added).
 * log_context: for the owner's logs ("peer=ih1 conn=127.0.0.1:4711"). */
struct rpc_conn *rpc_conn_create(struct bufferevent *bev, const struct json *hello,
				 unsigned int keepalive_secs,
				 const struct rpc_conn_callbacks *callbacks, void *ctx);
void rpc_conn_destroy(struct rpc_conn **conn);

/* ---- local links (rpc-local.c): roles of one machine, no TLS ---- */

/* Which role is at the other end of a local link: this side's certificate
 * fingerprint goes into its hello ("localFingerprint"); check() accepts or
 * refuses the peer's (then the link closes), as a TLS peer check would. */
struct rpc_local_identity {
	const char *fingerprint;
	bool (*check)(const char *peer_fingerprint, void *ctx);
	void *ctx;
};

/* A listening AF_UNIX socket at path (a stale one is replaced; mode 0600). */
int rpc_local_listen(const char *path, const char **error_r);
/* A connected socket to path whose listener is trusted, else -1. */
int rpc_local_connect(const char *path);
/* The peer runs as this process's user or as root (SO_PEERCRED). */
bool rpc_local_peer_trusted(int fd);
/* As rpc_conn_create(), over a trusted local socket (bev: a non-blocking
 * socket bufferevent); `identity` is copied. The connecting side sends its
 * hello first; the accepting side (hello_first false) answers with its own
 * only once it accepted the peer's, so a refused peer sees the link close
 * before any hello. */
struct rpc_conn *rpc_conn_create_local(struct bufferevent *bev, const struct json *hello,
				       unsigned int keepalive_secs,
				       const struct rpc_local_identity *identity, bool hello_first,
				       const struct rpc_conn_callbacks *callbacks, void *ctx);
bool rpc_conn_is_local(const struct rpc_conn *conn);

void rpc_conn_call(struct rpc_conn *conn, const char *method, struct json *args,
		   unsigned int timeout_secs, rpc_answer_fn *answer, void *answer_ctx);
void rpc_conn_reply(struct rpc_conn *conn, uint32_t id, struct json *result);
void rpc_conn_reply_error(struct rpc_conn *conn, uint32_t id, const char *code, const char *text);
/* An answer with a binary blob (copied); the whole frame must stay under
 * RPC_MAX_FRAME. The caller's answer callback reads it with
 * rpc_conn_answer_blob(), valid only during that callback. */
void rpc_conn_reply_blob(struct rpc_conn *conn, uint32_t id, struct json *result, const void *blob,
			 size_t blob_len);
/* Inside an answer callback: the answer's blob (NULL, 0 if it had none). */
const void *rpc_conn_answer_blob(const struct rpc_conn *conn, size_t *len_r);
/* The same blob as an evbuffer (NULL if none), for a relay: its bytes may be
 * moved out (evbuffer_add_buffer(), rpc_conn_reply_blob_buffer()) instead
 * of copied. Valid only during the answer callback. */
struct evbuffer *rpc_conn_answer_blob_buffer(const struct rpc_conn *conn);
/* An answer whose blob is moved out of `blob` (left empty), not copied. */
void rpc_conn_reply_blob_buffer(struct rpc_conn *conn, uint32_t id, struct json *result,
				struct evbuffer *blob);
/* Backpressure for relays. Bytes waiting to be sent; fn(ctx) once the
 * output is at most `below` bytes, or the connection ends (now if either
 * holds already; one waiter per connection, a new one replaces it). */
size_t rpc_conn_output_len(const struct rpc_conn *conn);
void rpc_conn_when_drained(struct rpc_conn *conn, size_t below, void (*fn)(void *ctx), void *ctx);
/* Calls received whose answer was not sent yet (answers counted, not
 * matched by id): a process that stops waits for this to reach 0. */
unsigned int rpc_conn_unanswered(const struct rpc_conn *conn);
/* Stop (or resume) reading the peer's frames: its answers then wait in the
 * kernel's socket buffer and the peer's output, not in this process. A
 * paused connection does not count as silent for the keep-alive. */
void rpc_conn_pause_reading(struct rpc_conn *conn, bool paused);
void rpc_conn_event(struct rpc_conn *conn, const char *name, struct json *data);
/* Stream payload bytes under a call's id (chunks of at most 1 MiB are sent). */
void rpc_conn_send_data(struct rpc_conn *conn, uint32_t id, const void *data, size_t size,
			bool last);

bool rpc_conn_is_ready(const struct rpc_conn *conn);
time_t rpc_conn_last_contact(const struct rpc_conn *conn);
const char *rpc_conn_peer_fingerprint(const struct rpc_conn *conn);
const char *rpc_conn_peer_address(const struct rpc_conn *conn);
/* The peer's hello (borrowed, NULL before ready). */
const struct json *rpc_conn_peer_hello(const struct rpc_conn *conn);
void rpc_conn_set_context(struct rpc_conn *conn, void *ctx);
void *rpc_conn_get_context(const struct rpc_conn *conn);

/* ---- rpc_client: one outgoing link that keeps itself connected ---- */

enum rpc_link_state {
	RPC_LINK_CONNECTING,
	RPC_LINK_CONNECTED,
	RPC_LINK_UNREACHABLE,         /* no connection, timeout, closed */
	RPC_LINK_FINGERPRINT_REFUSED, /* the peer's certificate is not the pinned one */
	RPC_LINK_REFUSED_BY_PEER,     /* the peer refused our certificate */
	RPC_LINK_INCOMPATIBLE,        /* protocol version mismatch */
};
const char *rpc_link_state_name(enum rpc_link_state state);
/* How a connection's close reason begins when the peer refused our
 * certificate after the handshake (TLS 1.3 tells a client only then). */
#define RPC_REFUSED_BY_PEER_REASON "refused by the peer"

struct rpc_client;

struct rpc_client_settings {
	const char *host;
	unsigned int port;
	const char *fingerprint; /* the peer's pinned fingerprint */
	struct tls_context *tls; /* client context with our certificate */
	const struct json *hello;
	unsigned int keepalive_secs;
	unsigned int max_backoff_secs; /* 0 = 30 */
	/* optional: the peer's local socket, tried before TCP and TLS; the
	 * peer must name `fingerprint` in its hello, this side names
	 * local_fingerprint (its own certificate's) */
	const char *local_path;
	const char *local_fingerprint;
};

/* Callbacks as for a connection; `closed` is called on every disconnect and
 * the client reconnects by itself with exponential backoff. state_changed
 * (may be NULL) reports every state change with its reason. */
struct rpc_client *
rpc_client_create(struct event_base *base, const struct rpc_client_settings *settings,
		  const struct rpc_conn_callbacks *callbacks,
		  void (*state_changed)(struct rpc_client *client, enum rpc_link_state state,
					const char *reason, void *ctx),
		  void *ctx);
void rpc_client_destroy(struct rpc_client **client);
enum rpc_link_state rpc_client_state(const struct rpc_client *client, const char **reason_r);
/* The connection when CONNECTED, else NULL. */
struct rpc_conn *rpc_client_conn(struct rpc_client *client);
time_t rpc_client_last_contact(const struct rpc_client *client);
const char *rpc_client_seen_fingerprint(const struct rpc_client *client);
/* Try now instead of waiting for the backoff timer. */
void rpc_client_reconnect_now(struct rpc_client *client);

/* ---- rpc_server: a listener for incoming links ---- */

struct rpc_server;

/* accepted: a peer passed the TLS peer check and sent its hello. The server
 * owns the connection; `closed` is followed by its destruction. refused:
 * (may be NULL) a TLS handshake failed, e.g. an unknown fingerprint. */
struct rpc_server_callbacks {
	void (*accepted)(struct rpc_server *server, struct rpc_conn *conn,
			 const struct json *peer_hello, void *ctx);
	void (*request)(struct rpc_conn *conn, uint32_t id, const char *method,
			const struct json *args, void *ctx);
	void (*event)(struct rpc_conn *conn, const char *name, const struct json *data, void *ctx);
	void (*closed)(struct rpc_conn *conn, const char *reason, void *ctx);
	void (*refused)(struct rpc_server *server, const char *peer_address, const char *reason,
			void *ctx);
};

struct rpc_server *rpc_server_create(struct event_base *base, struct tls_context *tls,
				     const struct json *hello, unsigned int keepalive_secs,
				     const struct rpc_server_callbacks *callbacks, void *ctx);
int rpc_server_listen(struct rpc_server *server, const struct netaddr_listener *listener,
		      const char **error_r);
/* Also accept local links at path (rpc_local_listen()); the socket file is
 * removed with the server. `identity` is copied. */
int rpc_server_listen_local(struct rpc_server *server, const char *path,
			    const struct rpc_local_identity *identity, const char **error_r);
/* Send an event to every ready connection. */
void rpc_server_broadcast(struct rpc_server *server, const char *name, const struct json *data);
void rpc_server_destroy(struct rpc_server **server);

#endif
