/* mgmt-api-journal: the journal receiver's settings (docs/sources.md,
 * "Journal receiver"). An Instance Host's listeners, limits and SMTP AUTH
 * logins, and per instance the addresses and domains it takes, recipients
 * mapped to users and what happens to unknown recipients. All of them live
 * in the Instance Host's journal.json; the host applies a change at once
 * (src/host/host-journal.c). */
#include "json.h"
#include "mem.h"
#include "mgmt-api.h"
#include "mgmt-jobs.h"
#include "mgmt-links.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "rpc.h"
#include "tstr.h"

#include <string.h>

#define MGMT_JOURNAL_CALL_SECS 60

static void mgmt_journal_answer(struct rpc_conn *conn, const struct json *result, const char *code,
				const char *text, void *ctx)
{
	struct mgmt_job *job = ctx;
	mgmt_job_done(job, code == NULL && result != NULL ? json_clone(result) : NULL,
		      code != NULL ? text : NULL);
}

static void mgmt_journal_call(struct mgmt *mgmt, struct mgmt_job *job, const char *host,
			      const char *method, struct json *host_args)
{
	const char *error;
	if (mgmt_links_call_host(mgmt->links, host, method, host_args, MGMT_JOURNAL_CALL_SECS,
				 mgmt_journal_answer, job, &error) < 0)
		mgmt_job_done(job, NULL, error);
}

/* The arguments less serverName go to the Instance Host named by it. */
static void mgmt_journal_host(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job,
			      const char *method)
{
	struct json *host_args = json_clone(args);
	(void)json_remove(host_args, "serverName");
	mgmt_journal_call(mgmt, job, json_get_string(args, "serverName"), method, host_args);
}

/* SetJournalSettings: the users it names (recipients, catchAllUser) are
 * asked of the instance first (JournalResolve with userName), so that a
 * typo is refused now rather than every journal copy for that address
 * later (550). An instance that cannot answer (stopped) is not asked: the
 * users are looked up at delivery anyway. */
struct mgmt_journal_check {
	struct mgmt *mgmt;
	struct mgmt_job *job;
	char *host;
	struct json *host_args;
	unsigned int waiting;
	char *missing; /* the first user the instance does not have */
};

struct mgmt_journal_check_user {
	struct mgmt_journal_check *check;
	char *user;
};

static void mgmt_journal_check_end(struct mgmt_journal_check *c)
{
	if (c->missing != NULL) {
		mgmt_job_done(c->job, NULL,
			      tstr_printf("no user '%s' in instance %s", c->missing,
					  json_get_string(c->host_args, "instanceID")));
		json_unref(&c->host_args);
	} else {
		mgmt_journal_call(c->mgmt, c->job, c->host, "SetJournalInstance", c->host_args);
	}
	mem_free(c->missing);
	mem_free(c->host);
	mem_free(c);
}

static void mgmt_journal_checked(struct rpc_conn *conn, const struct json *result, const char *code,
				 const char *text, void *ctx)
{
	struct mgmt_journal_check_user *u = ctx;
	struct mgmt_journal_check *c = u->check;
	if (code != NULL && strcmp(code, "no-such-user") == 0 && c->missing == NULL)
		c->missing = mem_strdup(u->user);
	mem_free(u->user);
	mem_free(u);
	if (--c->waiting == 0)
		mgmt_journal_check_end(c);
}

static void mgmt_journal_check_users(struct mgmt *mgmt, struct mgmt_job *job, const char *host,
				     struct json *host_args)
{
	struct json *users = json_new_object(); /* each name once */
	const struct json *map = json_get(host_args, "recipients");
	for (void *it = json_iter(map); it != NULL; it = json_iter_next(map, it)) {
		const char *user = json_string_of(json_iter_value(it));
		if (user != NULL && user[0] != '\0')
			json_set_bool(users, user, true);
	}
	const char *catch_all = json_get_string(host_args, "catchAllUser");
	if (catch_all != NULL && catch_all[0] != '\0')
		json_set_bool(users, catch_all, true);
	struct mgmt_journal_check *c = mem_new(struct mgmt_journal_check);
	c->mgmt = mgmt;
	c->job = job;
	c->host = mem_strdup(host);
	c->host_args = host_args;
	c->waiting = 1; /* until every question is out */
	for (void *it = json_iter(users); it != NULL; it = json_iter_next(users, it)) {
		struct json *inner = json_new_object();
		json_set_string(inner, "address", "check@invalid");
		json_set_string(inner, "userName", json_iter_key(it));
		struct json *call = json_new_object();
		json_set_string(call, "instanceID", json_get_string(host_args, "instanceID"));
		json_set_string(call, "method", "JournalResolve");
		json_set(call, "args", inner);
		struct mgmt_journal_check_user *u = mem_new(struct mgmt_journal_check_user);
		u->check = c;
		u->user = mem_strdup(json_iter_key(it));
		const char *error;
		c->waiting++;
		if (mgmt_links_call_host(mgmt->links, host, "InstanceCall", call,
					 MGMT_JOURNAL_CALL_SECS, mgmt_journal_checked, u,
					 &error) < 0)
			mgmt_journal_checked(NULL, NULL, "unavailable", error, u);
	}
	json_unref(&users);
	if (--c->waiting == 0)
		mgmt_journal_check_end(c);
}

/* The arguments go to the Instance Host that carries the instance. */
static void mgmt_journal_instance(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job,
				  const char *method)
{
	struct mgmtdb_instance inst;
	const char *id = json_get_string(args, "instanceID");
	if (id == NULL || mgmtdb_instance_find(mgmt->db, id, &inst) == 0) {
		mgmt_job_done(job, NULL, tstr_printf("no instance '%s'", id == NULL ? "" : id));
		return;
	}
	const char *mode = json_get_string(args, "unknownRecipients");
	if (mode != NULL && strcmp(mode, "refuse") != 0 && strcmp(mode, "catch-all") != 0) {
		mgmt_job_done(job, NULL, "unknownRecipients: expected refuse or catch-all");
		return;
	}
	const struct json *map = json_get(args, "recipients");
	if (map != NULL && json_kind(map) != JSON_KIND_OBJECT) {
		mgmt_job_done(job, NULL, "recipients: expected a JSON object {address: userName}");
		return;
	}
	struct json *host_args = json_clone(args);
	json_set_string(host_args, "instanceID", inst.id); /* an alias becomes the ID */
	if (strcmp(method, "SetJournalInstance") == 0)
		mgmt_journal_check_users(mgmt, job, inst.instance_host, host_args);
	else
		mgmt_journal_call(mgmt, job, inst.instance_host, method, host_args);
}

#define MGMT_JOURNAL_HOST(fn, method)                                                              \
	static void fn(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job)           \
	{                                                                                          \
		mgmt_journal_host(mgmt, args, job, method);                                        \
	}
#define MGMT_JOURNAL_INSTANCE(fn, method)                                                          \
	static void fn(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job)           \
	{                                                                                          \
		mgmt_journal_instance(mgmt, args, job, method);                                    \
	}

MGMT_JOURNAL_HOST(mgmt_journal_get_host, "GetJournal")
MGMT_JOURNAL_HOST(mgmt_journal_set_host, "SetJournal")
MGMT_JOURNAL_HOST(mgmt_journal_set_auth_user, "SetJournalAuthUser")
MGMT_JOURNAL_HOST(mgmt_journal_delete_auth_user, "DeleteJournalAuthUser")
MGMT_JOURNAL_INSTANCE(mgmt_journal_get_instance, "GetJournalInstance")
MGMT_JOURNAL_INSTANCE(mgmt_journal_set_instance, "SetJournalInstance")

#define HOST_ARG                                                                                   \
	{                                                                                          \
		"serverName", MGMT_API_STRING, true, "the registered Instance Host"                \
	}
#define ID_ARG                                                                                     \
	{                                                                                          \
		"instanceID", MGMT_API_STRING, true, "the instance's ID or alias"                  \
	}

const struct mgmt_api_function mgmt_api_journal_functions[] = {
	{"GetInstanceHostJournalConfiguration",
	 "An Instance Host's journal receiver: listeners, STARTTLS, allowed networks, limits, the "
	 "names of its SMTP AUTH logins (never their passwords) and every instance's recipients.",
	 {HOST_ARG},
	 NULL,
	 mgmt_journal_get_host,
	 false},
	{"SetInstanceHostJournalConfiguration",
	 "Change an Instance Host's journal receiver; in force at once (new listeners are bound "
	 "without a restart, but not ports below 1024) and kept in its journal.json.",
	 {HOST_ARG,
	  {"settings", MGMT_API_JSON, true,
	   "a JSON object with the settings to change: smtpListeners, lmtpListeners, hostname, "
	   "starttls, allowedNetworks, authRequired, maxMessageSize, maxRecipients, "
	   "maxConnections, maxConnectionsPerClient, timeoutSeconds (null: back to the default)"}},
	 NULL,
	 mgmt_journal_set_host,
	 false},
	{"SetInstanceHostJournalAuthUser",
	 "Add an SMTP AUTH login to an Instance Host's journal receiver, or give one a new "
	 "password; only a salted SHA-256 of the password is kept, it is never shown again.",
	 {HOST_ARG,
	  {"userName", MGMT_API_STRING, true, "the login name"},
	  {"password", MGMT_API_STRING, true, "12 to 1024 characters"}},
	 NULL,
	 mgmt_journal_set_auth_user,
	 false},
	{"DeleteInstanceHostJournalAuthUser",
	 "Remove an SMTP AUTH login from an Instance Host's journal receiver.",
	 {HOST_ARG, {"userName", MGMT_API_STRING, true, "the login name"}},
	 NULL,
	 mgmt_journal_delete_auth_user,
	 false},
	{"GetJournalSettings",
	 "An instance's journal recipients: addresses, domains, recipients mapped to users and "
	 "the unknown-recipient policy.",
	 {ID_ARG},
	 NULL,
	 mgmt_journal_get_instance,
	 false},
	{"SetJournalSettings",
	 "Change which journal recipients an instance takes and to which users they go; in "
	 "force at once on its Instance Host. A user named that the instance does not have is "
	 "refused.",
	 {ID_ARG,
	  {"addresses", MGMT_API_LIST, false, "recipient addresses this instance takes"},
	  {"domains", MGMT_API_LIST, false, "recipient domains this instance takes"},
	  {"recipients", MGMT_API_JSON, false,
	   "a JSON object {address: userName}: these addresses go to these users"},
	  {"unknownRecipients", MGMT_API_STRING, false,
	   "refuse (550, the default) or catch-all: to catchAllUser"},
	  {"catchAllUser", MGMT_API_STRING, false,
	   "the user who gets recipients no user has (\"\" removes it)"}},
	 NULL,
	 mgmt_journal_set_instance,
	 false},
	{NULL, NULL, {{0}}, NULL, NULL, false},
};
