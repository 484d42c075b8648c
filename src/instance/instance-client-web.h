#ifndef COFFER_INSTANCE_CLIENT_WEB_H
#define COFFER_INSTANCE_CLIENT_WEB_H
/* instance-client-web: the Client* calls Web Access needs beyond listing
 * and fetching (docs/client-calls.md): ClientMessageView, ClientPart,
 * ClientSetPassword, ClientMfaBegin, ClientMfaActivate, ClientMfaDisable.
 *
 * Contract: the user named in args ("userName") must exist with the login
 * privilege ("auth-failed" otherwise). A message is found only if it lies
 * in a folder the user may read (instance-rights.h); anything else answers
 * "not-found", exactly as an ID that does not exist.
 * Returns 1 handled (*result_r, and for ClientPart a blob in *blob_r to
 * mem_free), -1 refused or failed (*code_r, *error_r), 0 not one of these
 * calls. The instance's users must be open. */
#include <stdbool.h>
#include <stddef.h>

struct instance;
struct json;

#define INSTANCE_CLIENT_WEB_PART_MAX (15 * 1024 * 1024)

int instance_client_web_call(struct instance *inst, const char *method, const struct json *args,
			     struct json **result_r, unsigned char **blob_r, size_t *blob_len_r,
			     const char **code_r, const char **error_r);

#endif
