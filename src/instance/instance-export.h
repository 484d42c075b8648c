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
 * instance_export_call(): 1 handled (*result_r and, for reads, the bytes in
 * *blob_r to mem_free), -1 refused or failed (*code_r, *error_r), 0 not an
 * export call. `user` is instance_users_client_view() of the caller. */
#include <stddef.h>

struct instance;
struct json;

#define INSTANCE_EXPORT_MAX_IDS 1000
#define INSTANCE_EXPORT_MAX_BYTES (512ULL * 1024 * 1024)
#define INSTANCE_EXPORT_PIECE_MAX (1024 * 1024)
#define INSTANCE_EXPORT_PER_USER 2
#define INSTANCE_EXPORT_PER_INSTANCE 8
#define INSTANCE_EXPORT_IDLE_SECS 120

int instance_export_call(struct instance *inst, const char *method, const struct json *args,
			 const struct json *user, struct json **result_r, unsigned char **blob_r,
			 size_t *blob_len_r, const char **code_r, const char **error_r);

#endif
