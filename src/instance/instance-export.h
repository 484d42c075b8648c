#ifndef COFFER_INSTANCE_EXPORT_H
#define COFFER_INSTANCE_EXPORT_H
/* instance-export: exports of a user's messages (docs/client-calls.md):
 * ClientExport builds the whole download (a zip of .eml files, an mbox, or
 * one message's bytes) in a temporary file inside the instance's base
 * directory, unlinked as soon as it is complete, and ClientExportRead hands
 * it out in pieces of at most INSTANCE_EXPORT_PIECE_MAX bytes, as fast as
 * the Client Access Server asks for them (it asks when its client has taken
 * the previous piece). ClientExportEnd, the read of the last byte, or
 * INSTANCE_EXPORT_IDLE_SECS without a read end an export.
 *
 * Limits: at most INSTANCE_EXPORT_MAX_IDS IDs (repeated IDs count once), at
 * most INSTANCE_EXPORT_MAX_BYTES of messages, at most
 * INSTANCE_EXPORT_PER_USER exports under way per user and
 * INSTANCE_EXPORT_PER_INSTANCE per instance (more: "busy"). A user reads
 * only their own messages (all with the auditor privilege); others are left
 * out, and an export with nothing left is "not-found".
 *
 * The file is written by a thread of its own (with its own read-only
 * archive handle), so a large export does not hold up the instance's other
 * calls; ClientExport is answered when it is complete. Refused while the
 * instance is frozen ("frozen": the base directory must not change; the
 * instance's call table says so, instance-calls.c).
 *
 * The calls (instance-calls.h), for the user in call->user. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct instance_call;

#define INSTANCE_EXPORT_MAX_IDS 1000
#define INSTANCE_EXPORT_MAX_BYTES (512ULL * 1024 * 1024)
#define INSTANCE_EXPORT_PIECE_MAX (1024 * 1024)
#define INSTANCE_EXPORT_PER_USER 2
#define INSTANCE_EXPORT_PER_INSTANCE 8
#define INSTANCE_EXPORT_IDLE_SECS 120

int instance_export_begin(struct instance_call *c); /* ClientExport */
int instance_export_read(struct instance_call *c);  /* ClientExportRead */
int instance_export_end(struct instance_call *c);   /* ClientExportEnd */

#endif
