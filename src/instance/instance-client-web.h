#ifndef COFFER_INSTANCE_CLIENT_WEB_H
#define COFFER_INSTANCE_CLIENT_WEB_H
/* instance-client-web: the Client* calls Web Access needs beyond listing
 * and fetching (docs/client-calls.md): ClientMessageView, ClientPart,
 * ClientSetPassword, ClientMfaBegin, ClientMfaActivate, ClientMfaDisable.
 *
 * The calls (instance-calls.h) run for the user in call->user, whose
 * session the dispatcher has checked. A message is found only if it lies
 * in a folder the user may read (instance-rights.h); anything else answers
 * "not-found", exactly as an ID that does not exist. ClientPart answers
 * with the part's bytes as a blob. The instance's users must be open. */
#include <stdbool.h>
#include <stddef.h>

struct instance_call;

#define INSTANCE_CLIENT_WEB_PART_MAX (15 * 1024 * 1024)

int instance_client_web_message_view(struct instance_call *c);
int instance_client_web_part(struct instance_call *c);
int instance_client_web_set_password(struct instance_call *c);
int instance_client_web_mfa_begin(struct instance_call *c);
int instance_client_web_mfa_activate(struct instance_call *c);
int instance_client_web_mfa_disable(struct instance_call *c);

#endif
