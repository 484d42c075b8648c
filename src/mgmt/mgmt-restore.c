/* mgmt-restore: restore to mailbox (see mgmt-restore.h). */
#include "mgmt-restore.h"
#include "audit.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mgmt-links.h"
#include "mgmt-smtp.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "role-daemon.h"
#include "rpc.h"
#include "tstr.h"

#include <string.h>
#include <time.h>

#define MGMT_RESTORE_CALL_SECS 120

struct mgmt_restore {
	struct mgmt_restore *next;
	struct mgmt *mgmt;
	struct rpc_conn *conn; /* the asking Client Access Server; NULL once gone */
	uint32_t id;
	char *cas, *instance_id, *host, *user;
	char *service; /* how the user came in (web, api): the instance checks it */
	long long message_id;
	char *to;
};

static void mgmt_restore_finish(struct mgmt_restore *r, const char *code, const char *error)
{
	for (struct mgmt_restore **p = &r->mgmt->restores; *p != NULL; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			break;
		}
	}
	struct json *details = json_new_object();
	json_set_string(details, "instanceID", r->instance_id);
	json_set_string(details, "userName", r->user);
	json_set_int(details, "messageID", r->message_id);
	json_set_string(details, "to", r->to != NULL ? r->to : "");
	json_set_string(details, "result", code == NULL ? "sent" : error);
	const char *audit_error;
	if (audit_append(r->mgmt->audit, time(NULL), tstr_printf("%s@%s", r->user, r->instance_id),
			 r->cas, "RestoreMessage", details, &audit_error) < 0)
		log_error(NULL, "audit log: %s", audit_error);
	json_unref(&details);
	if (r->conn != NULL) {
		if (code != NULL) {
			rpc_conn_reply_error(r->conn, r->id, code, error);
		} else {
			struct json *result = json_new_object();
			json_set_string(result, "sentTo", r->to);
			rpc_conn_reply(r->conn, r->id, result);
		}
	}
	mem_free(r->cas);
	mem_free(r->instance_id);
	mem_free(r->host);
	mem_free(r->user);
	mem_free(r->service);
	mem_free(r->to);
	mem_free(r);
}

static void mgmt_restore_sent(const char *error, void *ctx)
{
	struct mgmt_restore *r = ctx;
	if (error != NULL)
		log_warning(NULL, "restore of message %lld for %s@%s: %s", r->message_id, r->user,
			    r->instance_id, error);
	mgmt_restore_finish(r, error == NULL ? NULL : "failed",
			    error == NULL ? NULL : tstr_printf("sending failed: %s", error));
}

static void mgmt_restore_fetched(struct rpc_conn *conn, const struct json *result, const char *code,
				 const char *text, void *ctx)
{
	struct mgmt_restore *r = ctx;
	size_t len = 0;
	const void *blob = code == NULL ? rpc_conn_answer_blob(conn, &len) : NULL;
	const struct json *m = json_at(json_get(result, "messages"), 0);
	long long offset = 0, length = -1;
	(void)json_get_int(m, "offset", &offset);
	(void)json_get_int(m, "length", &length);
	if (code != NULL) {
		mgmt_restore_finish(r, code, text);
	} else if (m == NULL) {
		mgmt_restore_finish(r, "not-found", "no such message");
	} else if (json_get_bool(m, "partial", false)) {
		mgmt_restore_finish(r, "too-large", "the message is too large to restore by mail");
	} else if (blob == NULL || offset < 0 || length < 0 || (size_t)(offset + length) > len) {
		mgmt_restore_finish(r, "failed", "the instance gave a bad answer");
	} else {
		mgmt_smtp_send(r->mgmt, r->to, (const unsigned char *)blob + offset, (size_t)length,
			       mgmt_restore_sent, r);
	}
}

static int mgmt_restore_call(struct mgmt_restore *r, const char *method, struct json *inner,
			     rpc_answer_fn *answer)
{
	struct json *args = json_new_object();
	const char *error;
	json_set_string(inner, "userName", r->user);
	if (r->service != NULL)
		json_set_string(inner, "service", r->service);
	json_set_string(args, "instanceID", r->instance_id);
	json_set_string(args, "method", method);
	json_set(args, "args", inner);
	if (mgmt_links_call_host(r->mgmt->links, r->host, "InstanceCall", args,
				 MGMT_RESTORE_CALL_SECS, answer, r, &error) < 0) {
		mgmt_restore_finish(r, "unavailable", error);
		return -1;
	}
	return 0;
}

static void mgmt_restore_user(struct rpc_conn *conn, const struct json *result, const char *code,
			      const char *text, void *ctx)
{
	struct mgmt_restore *r = ctx;
	const char *to = json_string_of(json_at(json_get(result, "emailAddresses"), 0));
	if (code != NULL) {
		mgmt_restore_finish(r, code, text);
		return;
	}
	if (to == NULL || to[0] == '\0') {
		mgmt_restore_finish(
			r, "no-address",
			"the user has no email address to restore to (ask the administrator)");
		return;
	}
	r->to = mem_strdup(to);
	struct json *inner = json_new_object(), *ids = json_new_array();
	json_append(ids, json_new_int(r->message_id));
	json_set(inner, "ids", ids);
	json_set_bool(inner, "raw", true);
	(void)mgmt_restore_call(r, "ClientFetch", inner, mgmt_restore_fetched);
}

void mgmt_restore_request(struct mgmt *mgmt, struct rpc_conn *conn, uint32_t id,
			  const struct json *args)
{
	const char *cas = mgmt_links_client_access_server(mgmt->links, conn);
	const char *iid = json_get_string(args, "instanceID");
	const char *user = json_get_string(args, "userName");
	long long message_id = 0;
	struct mgmtdb_instance inst;
	if (cas == NULL) {
		rpc_conn_reply_error(conn, id, "forbidden",
				     "only Client Access Servers restore mail");
		return;
	}
	if (iid == NULL || user == NULL || json_get_int(args, "messageID", &message_id) != 1 ||
	    message_id <= 0) {
		rpc_conn_reply_error(conn, id, "bad-request",
				     "RestoreMessage needs instanceID, userName and messageID");
		return;
	}
	if (mgmtdb_instance_find(mgmt->db, iid, &inst) == 0) {
		rpc_conn_reply_error(conn, id, "not-found", "no such instance");
		return;
	}
	if (mgmt_smtp_from(mgmt) == NULL) {
		rpc_conn_reply_error(
			conn, id, "unavailable",
			"restoring needs the system SMTP settings (ask the administrator)");
		return;
	}
	struct mgmt_restore *r = mem_new(struct mgmt_restore);
	r->mgmt = mgmt;
	r->conn = conn;
	r->id = id;
	r->cas = mem_strdup(cas);
	r->instance_id = mem_strdup(inst.id);
	r->host = mem_strdup(inst.instance_host);
	r->user = mem_strdup(user);
	if (json_get_string(args, "service") != NULL)
		r->service = mem_strdup(json_get_string(args, "service"));
	r->message_id = message_id;
	r->next = mgmt->restores;
	mgmt->restores = r;
	(void)mgmt_restore_call(r, "GetUserInfo", json_new_object(), mgmt_restore_user);
}

void mgmt_restore_conn_closed(struct mgmt *mgmt, struct rpc_conn *conn)
{
	for (struct mgmt_restore *r = mgmt->restores; r != NULL; r = r->next) {
		if (r->conn == conn)
			r->conn = NULL;
	}
}
