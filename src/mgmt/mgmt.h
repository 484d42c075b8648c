#ifndef COFFER_MGMT_H
#define COFFER_MGMT_H
/* mgmt: the Management Server's shared state (private to src/mgmt). */
#include "log.h"

#include <stdbool.h>
#include <time.h>

struct http_server;
struct json;
struct audit;
struct mgmt_auth;
struct mgmt_auth_log;
struct mgmt_console;
struct mgmt_jobs;
struct mgmt_links;
struct mgmt_restore;
struct mgmtdb;
struct role_daemon;
struct rpc_server;

/* How the request of the API function that runs now authenticated. */
enum mgmt_api_auth {
	MGMT_API_AUTH_NONE,
	MGMT_API_AUTH_PASSWORD,     /* the administrator's password (and MFA code) */
	MGMT_API_AUTH_API_PASSWORD, /* an API password */
	MGMT_API_AUTH_SESSION,      /* a Console session (mgmt-console.h) */
};

struct mgmt {
	struct role_daemon *rd;
	char *db_path;
	struct mgmtdb *db;
	struct mgmt_links *links;
	struct mgmt_jobs *jobs;
	struct mgmt_auth *auth;
	struct mgmt_auth_log *auth_log; /* failed logins, a bounded number of log lines */
	struct audit *audit;
	struct mgmt_restore *restores; /* restores to mailboxes under way */
	unsigned char secret_key[32];  /* seals secrets in the database (secrets.key) */
	struct rpc_server *tcp_server;
	struct http_server *http;
	struct log_throttle http_refused; /* HTTPS connections refused by a limit */
	time_t started;
	struct mgmt_console *console; /* the Management Console's page and sessions */
	struct json *branding;        /* mgmt-branding.h */
	/* Set only while an API function's run or start is called (the
	 * Console's session functions set and read its cookie): */
	struct http_request *api_request;
	const char *api_user;
	enum mgmt_api_auth api_auth;
};

/* Save the management database after a change; on failure the change is
 * reported to the caller (and the in-memory state is reloaded from disk so
 * memory never claims what the file does not hold). */
int mgmt_db_commit(struct mgmt *mgmt, const char **error_r);

#endif
