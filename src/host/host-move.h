#ifndef COFFER_HOST_MOVE_H
#define COFFER_HOST_MOVE_H
/* host-move: moving an instance's base directory and key from one Instance
 * Host (the source) to another (the target), for the Management Server's
 * MoveInstance (docs/protocol.md, "Moving an instance").
 *
 * The bytes travel directly between the two Instance Hosts: the target
 * connects to the source's TCP port over the usual mutually authenticated
 * TLS, each side pinning the other's registered fingerprint, which the
 * Management Server hands to both (MoveOutBegin names the target's, and
 * MoveInStart the source's). The source accepts that fingerprint only while
 * the move is under way, and only for MoveOutList and MoveOutRead with the
 * move's random token.
 *
 * Source: MoveOutBegin (instance stopped) lists the base directory and
 * blocks starts; MoveOutRead answers one file's bytes in order, up to 4 MiB
 * per answer (a blob), with the SHA-256 of the whole file as read on its
 * last answer; MoveOutEnd forgets the move and allows starts again.
 *
 * Target: MoveInPrepare checks the instance ID and base directory (absent
 * or empty, and writable) before the source is stopped; MoveInStart pulls
 * every file, one read at a time (so neither side holds more than one
 * chunk), writes and fsyncs it, reads it back and compares its SHA-256
 * with the source's; MoveInStatus reports progress; MoveInCommit puts the
 * key in place and registers the instance (stopped); MoveInAbort removes
 * what was copied. Nothing is registered on the target before the commit.
 *
 * The file I/O runs on the event loop, one chunk per turn (a later step
 * moves it to a worker). */
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct host_instances;
struct json;
struct rpc_conn;
struct tls_context;
struct host_move;

/* client_tls and hello (borrowed) are this Instance Host's, for the link
 * to a source. */
struct host_move *host_move_create(struct event_base *base, struct host_instances *hi,
				   struct tls_context *client_tls, const struct json *hello);
void host_move_destroy(struct host_move **hm);

/* The connection closed: moves the Management Server began on it are
 * undone (move-outs ended, so the instance may start again; copies not yet
 * committed removed). */
void host_move_forget_conn(struct host_move *hm, struct rpc_conn *conn);

/* TLS peer check: a target Instance Host a move-out is waiting for. */
bool host_move_peer_allowed(struct host_move *hm, const char *fingerprint);

/* A Move* call. from_management: the Management Server's (MoveOutBegin,
 * MoveOutEnd, MoveIn*); otherwise only MoveOutList and MoveOutRead from the
 * fingerprint the move names. Returns false if `method` is no Move* call. */
bool host_move_request(struct host_move *hm, struct rpc_conn *conn, uint32_t id, const char *method,
		       const struct json *args, bool from_management);

#endif
