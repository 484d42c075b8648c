#ifndef COFFER_INSTANCE_CLIENT_H
#define COFFER_INSTANCE_CLIENT_H
/* instance-client: the "Client*" calls a Client Access Server makes on
 * behalf of end users (docs/client-calls.md): logins, the folders and
 * messages a user may read, message bytes for IMAP FETCH, app passwords.
 * Each is a handler of the instance's call table (instance-calls.h), run
 * for the user in call->user once the dispatcher has checked the session;
 * the answer is a result, a result with a blob of message bytes, or an
 * error with one of the documented codes. */
#include <stdbool.h>
#include <stdint.h>

struct instance;
struct instance_call;
struct json;

/* ClientLogin answers later: its Argon2id check runs on a worker thread
 * (at most INSTANCE_LOGIN_QUEUE_MAX waiting; beyond, the error "busy", not
 * a failed login). Logins are throttled per remoteAddress and per
 * (userName, remoteAddress) before they are checked ("throttled"). */
int instance_client_login(struct instance_call *c);
int instance_client_user(struct instance_call *c);
int instance_client_folders(struct instance_call *c);
int instance_client_folder_uids(struct instance_call *c);
int instance_client_messages(struct instance_call *c);
int instance_client_search_uids(struct instance_call *c);
int instance_client_fetch(struct instance_call *c);
int instance_client_app_passwords(struct instance_call *c);
int instance_client_create_app_password(struct instance_call *c);
int instance_client_delete_app_password(struct instance_call *c);
/* The worker threads for password checks (logins, and calls that carry the
 * account password), started on first use. */
int instance_client_workers(struct instance *inst, const char **error_r);
/* {threads, queued, running, checked, refusedBusy, refusedThrottled} */
struct json *instance_client_login_statistics(struct instance *inst);
/* Before the Instance Host link goes: waits for running checks, drops the
 * rest unanswered. */
void instance_client_stop(struct instance *inst);

#endif
