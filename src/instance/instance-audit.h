#ifndef COFFER_INSTANCE_AUDIT_H
#define COFFER_INSTANCE_AUDIT_H
/* instance-audit: the instance's own audit log, <base>/audit.log (lib-audit:
 * hash-chained JSON lines): who logged in (IMAP, Web Access, API), who read
 * or downloaded which messages, exported, searched as an auditor, and every
 * administrator's change (users, privileges, MFA, imports, stores). Never a
 * password, a code or message content: an entry names messages by ID.
 *
 * Cost: an entry is one write() on the event loop; the fsync() that makes
 * it durable runs on a thread of its own, one at a time for every entry
 * written meanwhile (group commit), so a FETCH storm does not wait for the
 * disk. An entry is durable within about one fsync of being written.
 *
 * Frozen: the base directory must stay byte-stable, so entries wait in
 * memory (at most INSTANCE_AUDIT_HELD_MAX) and are written when the
 * instance is thawed or stops; when that many wait, audited calls are
 * refused until then (instance_audit_full()) rather than go unrecorded.
 *
 * Reading (GetAuditLog, ClientAuditLog) and checking the chain
 * (VerifyAuditLog) stream the file on a worker thread, up to the size
 * written when the call came. */
#include <stdbool.h>

#define INSTANCE_AUDIT_HELD_MAX 10000
#define INSTANCE_AUDIT_LIST_MAX 1000
/* offset + limit of one listing: the matches kept in memory while reading */
#define INSTANCE_AUDIT_WINDOW_MAX 20000

struct instance;
struct instance_call;
struct json;

/* Details of an audited call, from its arguments: NULL leaves the call out
 * (e.g. a FETCH of flags only). The caller frees the result. */
typedef struct json *instance_audit_details_fn(const struct instance_call *c);

/* Every argument but secrets (password, code, totp, ...) and the bytes. */
instance_audit_details_fn instance_audit_args;
/* ClientFetch: only when message bytes are read; the IDs. */
instance_audit_details_fn instance_audit_fetch;
/* A search: only by an auditor or an administrator of the instance. */
instance_audit_details_fn instance_audit_search;

void instance_audit_init(struct instance *inst);
/* Writes what waits, fsyncs, closes. */
void instance_audit_deinit(struct instance *inst);

/* Record an event now (or hold it while frozen). user and address may be
 * NULL; details may be NULL and stays the caller's. */
void instance_audit_record(struct instance *inst, const char *user, const char *address,
			   const char *action, const struct json *details);
/* The call `c` ran with outcome `error` (NULL: done): recorded if its row
 * says so, as its user (an end user's name, or the administrator the
 * Management Server named) with its details. */
void instance_audit_call(struct instance_call *c, const char *code);
/* Whether an audited call must wait: frozen with the held entries full. */
bool instance_audit_full(struct instance *inst);
/* After a thaw: write what waited. */
void instance_audit_thawed(struct instance *inst);

/* Calls (rows in instance-calls.c). */
int instance_audit_get(struct instance_call *c);
int instance_audit_client_get(struct instance_call *c);
int instance_audit_verify(struct instance_call *c);

#endif
