#ifndef COFFER_INSTANCE_CALLS_H
#define COFFER_INSTANCE_CALLS_H
/* instance-calls: the one table of every call an instance process answers
 * (instance-calls.c), and the signature every handler has.
 *
 * Each row names the call, its handler, its flags and the privilege it
 * needs. The dispatcher does what the flags say, in this order: an
 * administrator's WRITES call is refused while the instance is frozen
 * ("frozen"), before anything is opened; the users are opened (USERS); a
 * CLIENT call's user is checked (the session: the user exists with the
 * login privilege and, if args "service" names one, that login privilege;
 * then the row's privilege: "auth-failed", "forbidden"), and then a WRITES
 * one refused while frozen; a FOR_USER call's privilege and folder right
 * are checked (instance_rights_data_call()); the account password a row
 * names is checked on a worker thread (the user and the freeze are checked
 * again after it); then the handler runs. A call without WRITES is allowed
 * while frozen; LONG_RUNNING calls do their work off the event loop (a
 * job, a thread, a worker) and answer with a jobID or later. A row with an
 * audit function is recorded in the instance's audit log once it ran
 * (refused with its code), and waits while a frozen instance holds too many
 * entries unwritten.
 *
 * Modules own their handlers and export them through their headers; the
 * table is the only place that says which call reaches which handler. */
#include <stddef.h>

struct evbuffer;
#include <stdint.h>

struct instance;
struct json;
struct rpc_conn;

enum instance_call_flags {
	/* changes the base directory: refused while the instance is frozen */
	INSTANCE_CALL_WRITES = 1 << 0,
	/* works off the event loop and answers with a jobID or later */
	INSTANCE_CALL_LONG_RUNNING = 1 << 1,
	/* a Client* call for an end user: the user's session is checked and
	 * their client view is in call->user */
	INSTANCE_CALL_CLIENT = 1 << 2,
	/* CLIENT, before any session: the call checks the password itself */
	INSTANCE_CALL_NO_SESSION = 1 << 3,
	/* needs the instance's users open (call->inst->users) */
	INSTANCE_CALL_USERS = 1 << 4,
	/* an administrator's call that acts for args "userName": the row's
	 * privilege and the write right on the target folder are checked, and
	 * call->owner is that user's archive name */
	INSTANCE_CALL_FOR_USER = 1 << 5,
};

struct instance_call_def;

/* One call on its way through the dispatcher and its handler. */
struct instance_call {
	struct instance *inst;
	struct rpc_conn *conn;
	uint32_t id;
	const char *method;
	const struct json *args;
	const struct instance_call_def *def;
	/* CLIENT: the caller's client view (instance_users_client_view()) */
	const struct json *user;
	/* FOR_USER: the archive the call is about */
	const char *owner;
	/* the answer, for a handler that returns 0 or -1 */
	struct json *result;
	unsigned char *blob; /* message bytes after the JSON (mem_free'd) */
	size_t blob_len;
	/* or the bytes as referenced buffers (ClientFetch: no copies), freed */
	struct evbuffer *blob_buffer;
	const char *code, *error; /* -1: code (NULL: "failed") and text */
};

/* 0: answer call->result (and the blob); -1: answer the error;
 * INSTANCE_CALL_ANSWERED: the handler answered, or will (on call->conn,
 * call->id: the call struct is gone by then). */
#define INSTANCE_CALL_ANSWERED 1
typedef int instance_call_fn(struct instance_call *call);

struct instance_call_def {
	const char *name;
	instance_call_fn *handler;
	unsigned int flags; /* enum instance_call_flags */
	/* the privilege the user needs (CLIENT, FOR_USER), or NULL */
	const char *privilege;
	/* the argument with the account password, checked (Argon2id) on a
	 * worker thread before the handler runs, or NULL */
	const char *password_arg;
	/* audited (instance-audit.h): what the entry's details are, or NULL
	 * to leave this call out; not audited: NULL */
	struct json *(*audit)(const struct instance_call *c);
};

/* The row for a call, or NULL. */
const struct instance_call_def *instance_calls_find(const char *name);
/* Every row, sorted by name (for tests and docs). */
const struct instance_call_def *instance_calls_table(size_t *count_r);

#endif
