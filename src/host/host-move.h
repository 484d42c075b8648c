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
 * The copy is made while the instance runs, in passes (docs/protocol.md
 * "Moving an instance"): each pass the target asks for a new listing
 * (MoveOutList: path, kind, size, mode and a stamp of device, inode, size
 * and times, empty while the file changed within the last seconds) and
 * copies each file whose stamp differs from the one it copied, piece by
 * piece (MoveOutRead: 4 MiB at an offset, with its SHA-256); for a piece
 * it holds already it names that piece's SHA-256 ("have") and the source
 * sends the bytes only if they differ, so a segment that grew costs its
 * tail, a catalog that changed its changed pages. Files the source no
 * longer lists are removed. The Management Server freezes the instance
 * (MoveOutFreeze) before the last pass, so that one is exact.
 *
 * Source: MoveOutBegin lists the base directory and blocks starts and
 * deletes (the instance may run); MoveOutFreeze freezes it; MoveOutEnd
 * forgets the move, allows starts again and thaws an instance it froze.
 *
 * Target: MoveInPrepare checks the instance ID and base directory (absent
 * or empty, and writable) before anything else; MoveInStart opens the link
 * to the source and runs the first pass, MoveInCatchUp each further one
 * over the same link; MoveInStatus reports the pass and its progress;
 * MoveInCommit puts the key in place and registers the instance (stopped);
 * MoveInAbort removes what was copied. Nothing is registered on the target
 * before the commit.
 *
 * Pieces are read and written on the event loop, one per turn; the fsync
 * and read-back of a file run on a worker thread while the next files are
 * copied (at most HOST_MOVE_VERIFIES at a time), so that a large file does
 * not hold up the Instance Host's other calls. */
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
