/* mgmt-api-admins: system administrators (with MFA and API passwords), the
 * SMTP settings for notifications, and the audit log's verification. */
#include "audit.h"
#include "auth-qr.h"
#include "auth-secret.h"
#include "auth-totp.h"
#include "config.h"
#include "crypto.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mgmt-api.h"
#include "mgmt-auth.h"
#include "mgmt-console.h"
#include "mgmt-jobs.h"
#include "mgmt-smtp.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "role-daemon.h"
#include "smtp-client.h"
#include "tstr.h"

#include <event2/event.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static struct json *mgmt_admin_record(struct mgmt *mgmt, const struct json *args,
				      const char **error_r)
{
	const char *name = json_get_string(args, "userName");
	struct json *record = name == NULL ? NULL : mgmtdb_admin_record(mgmt->db, name);
	if (record == NULL)
		*error_r = tstr_printf("no system administrator '%s'", name == NULL ? "" : name);
	return record;
}

static struct json *mgmt_admin_json(const struct json *record)
{
	struct json *a = json_new_object();
	long long created = 0;
	(void)json_get_int(record, "created", &created);
	const char *mfa = json_get_string(json_get(record, "mfa"), "state");
	json_set_string(a, "userName", json_get_string(record, "name"));
	json_set_string(a, "fullName",
			json_get_string(record, "fullName") ? json_get_string(record, "fullName")
							    : "");
	json_set_string(a, "mfa", mfa == NULL ? "disabled" : mfa);
	json_set_bool(a, "apiPassword", json_get_string(record, "apiPasswordHash") != NULL);
	json_set_int(a, "created", created);
	return a;
}

static int mgmt_api_get_admins(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			       const char **error_r)
{
	struct json *list = json_new_array();
	for (size_t i = 0; i < mgmtdb_admin_count(mgmt->db); i++)
		json_append(list, mgmt_admin_json(mgmtdb_admin_record(
					  mgmt->db, mgmtdb_admin_name(mgmt->db, i))));
	*result_r = list;
	return 0;
}

static int mgmt_api_create_admin(struct mgmt *mgmt, const struct json *args, struct json **result_r,
				 const char **error_r)
{
	const char *name = json_get_string(args, "userName");
	const char *password = json_get_string(args, "password");
	const char *full = json_get_string(args, "fullName");
	char hash[CRYPTO_PASSWORD_HASH_LEN];
	if (mgmt_auth_password_ok(password, error_r) < 0 ||
	    crypto_password_hash(password, hash, error_r) < 0 ||
	    mgmtdb_admin_add(mgmt->db, name, hash, error_r) < 0)
		return -1;
	json_set_string(mgmtdb_admin_record(mgmt->db, name), "fullName", full == NULL ? "" : full);
	if (mgmt_db_commit(mgmt, error_r) < 0)
		return -1;
	*result_r = mgmt_admin_json(mgmtdb_admin_record(mgmt->db, name));
	return 0;
}

static int mgmt_api_set_admin_configuration(struct mgmt *mgmt, const struct json *args,
					    struct json **result_r, const char **error_r)
{
	struct json *record = mgmt_admin_record(mgmt, args, error_r);
	const char *full = json_get_string(args, "fullName");
	if (record == NULL)
		return -1;
	if (full != NULL) {
		if (strlen(full) > 256) {
			*error_r = "fullName: at most 256 characters";
			return -1;
		}
		json_set_string(record, "fullName", full);
	}
	if (mgmt_db_commit(mgmt, error_r) < 0)
		return -1;
	*result_r = mgmt_admin_json(mgmt_admin_record(mgmt, args, error_r));
	return 0;
}

static int mgmt_api_set_admin_password(struct mgmt *mgmt, const struct json *args,
				       struct json **result_r, const char **error_r)
{
	struct json *record = mgmt_admin_record(mgmt, args, error_r);
	const char *password = json_get_string(args, "password");
	char hash[CRYPTO_PASSWORD_HASH_LEN];
	if (record == NULL || mgmt_auth_password_ok(password, error_r) < 0 ||
	    crypto_password_hash(password, hash, error_r) < 0)
		return -1;
	json_set_string(record, "passwordHash", hash);
	mgmt_auth_forget(mgmt, json_get_string(args, "userName"));
	mgmt_console_forget(mgmt, json_get_string(args, "userName"));
	return mgmt_db_commit(mgmt, error_r);
}

static int mgmt_api_delete_admin(struct mgmt *mgmt, const struct json *args, struct json **result_r,
				 const char **error_r)
{
	const char *name = json_get_string(args, "userName");
	if (mgmt_admin_record(mgmt, args, error_r) == NULL)
		return -1;
	if (mgmtdb_admin_count(mgmt->db) == 1) {
		*error_r = "the last system administrator cannot be deleted";
		return -1;
	}
	char *copy = mem_strdup(name);
	(void)mgmtdb_admin_remove(mgmt->db, copy);
	mgmt_auth_forget(mgmt, copy);
	mgmt_console_forget(mgmt, copy);
	mem_free(copy);
	return mgmt_db_commit(mgmt, error_r);
}

static int mgmt_api_init_mfa(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			     const char **error_r)
{
	struct json *record = mgmt_admin_record(mgmt, args, error_r);
	if (record == NULL)
		return -1;
	const char *name = json_get_string(record, "name");
	char secret[AUTH_TOTP_SECRET_LEN + 1];
	if (auth_totp_secret_generate(secret) < 0) {
		*error_r = "cannot generate an MFA secret";
		return -1;
	}
	char *uri =
		auth_totp_uri(tstr_printf("Coffer %s", role_daemon_settings(mgmt->rd)->server_name),
			      name, secret);
	char *svg = auth_qr_svg(uri, error_r);
	if (svg == NULL) {
		mem_free(uri);
		return -1;
	}
	/* Sealed under the config directory's key: moving the directory moves it. */
	char *sealed = auth_secret_seal(mgmt->secret_key, secret, tstr_printf("mfa:%s", name));
	struct json *mfa = json_new_object();
	json_set_string(mfa, "state", "pending");
	json_set_string(mfa, "secret", sealed);
	json_set_int(mfa, "lastStep", 0);
	json_set(record, "mfa", mfa);
	mem_free(sealed);
	mgmt_auth_forget(mgmt, name);
	int ret = mgmt_db_commit(mgmt, error_r);
	if (ret == 0) {
		struct json *r = json_new_object();
		json_set_string(r, "secret", secret);
		json_set_string(r, "uri", uri);
		json_set_string(r, "qrCodeSvg", svg);
		json_set_string(r, "state", "pending");
		*result_r = r;
	}
	crypto_wipe(secret, sizeof(secret));
	mem_free(uri);
	mem_free(svg);
	return ret;
}

static int mgmt_api_deactivate_mfa(struct mgmt *mgmt, const struct json *args,
				   struct json **result_r, const char **error_r)
{
	struct json *record = mgmt_admin_record(mgmt, args, error_r);
	if (record == NULL)
		return -1;
	(void)json_remove(record, "mfa");
	mgmt_auth_forget(mgmt, json_get_string(args, "userName"));
	return mgmt_db_commit(mgmt, error_r);
}

static int mgmt_api_create_api_password(struct mgmt *mgmt, const struct json *args,
					struct json **result_r, const char **error_r)
{
	struct json *record = mgmt_admin_record(mgmt, args, error_r);
	if (record == NULL)
		return -1;
	char *password = crypto_random_hex(16);
	char hash[CRYPTO_PASSWORD_HASH_LEN];
	int ret = crypto_password_hash(password, hash, error_r);
	if (ret == 0) {
		json_set_string(record, "apiPasswordHash", hash);
		mgmt_auth_forget(mgmt, json_get_string(args, "userName"));
		ret = mgmt_db_commit(mgmt, error_r);
	}
	if (ret == 0) {
		/* Shown this once; only its hash is kept. */
		struct json *r = json_new_object();
		json_set_string(r, "apiPassword", password);
		*result_r = r;
	}
	crypto_wipe(password, strlen(password));
	mem_free(password);
	return ret;
}

/* ---- SMTP ---- */

static struct json *mgmt_smtp_settings(struct mgmt *mgmt)
{
	struct json *smtp = json_get(mgmtdb_root(mgmt->db), "smtp");
	if (smtp == NULL) {
		smtp = json_new_object();
		json_set(mgmtdb_root(mgmt->db), "smtp", smtp);
	}
	return smtp;
}

static int mgmt_api_get_smtp(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			     const char **error_r)
{
	struct json *smtp = json_clone(mgmt_smtp_settings(mgmt));
	/* The password never leaves the server; say only whether there is one. */
	json_set_bool(smtp, "passwordSet", json_get_string(smtp, "password") != NULL);
	(void)json_remove(smtp, "password");
	*result_r = smtp;
	return 0;
}

static int mgmt_api_set_smtp(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			     const char **error_r)
{
	enum smtp_security security;
	long long port = 587;
	const char *host = json_get_string(args, "host");
	const char *sec = json_get_string(args, "security");
	(void)json_get_int(args, "port", &port);
	if (smtp_security_parse(sec, &security) < 0) {
		*error_r = tstr_printf("security: '%s' is not none, starttls or tls", sec);
		return -1;
	}
	if (port < 1 || port > 65535) {
		*error_r = tstr_printf("port: %lld is not a port number", port);
		return -1;
	}
	if (strlen(host) == 0 || strlen(host) > 253 || strpbrk(host, " /\r\n") != NULL) {
		*error_r = tstr_printf("host: '%s' is not a host name", host);
		return -1;
	}
	struct json *smtp = json_new_object();
	json_set_string(smtp, "host", host);
	json_set_int(smtp, "port", port);
	json_set_string(smtp, "security", sec == NULL ? "starttls" : sec);
	json_set_string(smtp, "userName",
			json_get_string(args, "userName") ? json_get_string(args, "userName") : "");
	json_set_string(smtp, "fromAddress", json_get_string(args, "fromAddress"));
	json_set_bool(smtp, "verifyCertificate", json_get_bool(args, "verifyCertificate", true));
	const char *password = json_get_string(args, "password");
	const char *old = json_get_string(mgmt_smtp_settings(mgmt), "password");
	if (password != NULL && password[0] != '\0') {
		char *sealed = auth_secret_seal(mgmt->secret_key, password, "smtp-password");
		json_set_string(smtp, "password", sealed);
		mem_free(sealed);
	} else if (password == NULL && old != NULL) {
		json_set_string(smtp, "password", old); /* unchanged */
	}
	json_set(mgmtdb_root(mgmt->db), "smtp", smtp);
	if (mgmt_db_commit(mgmt, error_r) < 0)
		return -1;
	return mgmt_api_get_smtp(mgmt, args, result_r, error_r);
}

struct mgmt_smtp_test {
	struct mgmt_job *job;
	char *to;
};

static void mgmt_smtp_test_done(const char *error, void *ctx)
{
	struct mgmt_smtp_test *t = ctx;
	struct json *r = NULL;
	if (error == NULL) {
		r = json_new_object();
		json_set_string(r, "sentTo", t->to);
	}
	mgmt_job_done(t->job, r, error);
	mem_free(t->to);
	mem_free(t);
}

static void mgmt_api_test_smtp(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job)
{
	const char *from = mgmt_smtp_from(mgmt);
	struct mgmt_smtp_test *t = mem_new(struct mgmt_smtp_test);
	t->job = job;
	t->to = mem_strdup(json_get_string(args, "to"));
	char *message = smtp_build_text_message(
		from != NULL ? from : "", t->to, "Coffer test message",
		tstr_printf("This test message was sent by the Coffer Management Server %s at the "
			    "request of %s.\n",
			    role_daemon_settings(mgmt->rd)->server_name, mgmt_job_user(job)));
	mgmt_smtp_send(mgmt, t->to, message, strlen(message), mgmt_smtp_test_done, t);
	mem_free(message);
}

static int mgmt_api_verify_audit(struct mgmt *mgmt, const struct json *args, struct json **result_r,
				 const char **error_r)
{
	char *path = config_path(role_daemon_config_dir(mgmt->rd), "management-audit.log");
	long count = audit_verify(path, error_r);
	mem_free(path);
	if (count < 0)
		return -1;
	struct json *r = json_new_object();
	json_set_int(r, "entries", count);
	json_set_bool(r, "intact", true);
	*result_r = r;
	return 0;
}

#define USER_ARG                                                                                   \
	{                                                                                          \
		"userName", MGMT_API_STRING, true, "the administrator's name"                      \
	}

const struct mgmt_api_function mgmt_api_admin_functions[] = {
	{"GetSystemAdministrators",
	 "List the system administrators (never their passwords or secrets).",
	 {{0}},
	 mgmt_api_get_admins,
	 NULL,
	 false},
	{"CreateSystemAdministrator",
	 "Create a system administrator.",
	 {USER_ARG,
	  {"password", MGMT_API_STRING, true, "8 to 1024 characters"},
	  {"fullName", MGMT_API_STRING, false, "display name"}},
	 mgmt_api_create_admin,
	 NULL,
	 false},
	{"SetSystemAdministratorConfiguration",
	 "Change an administrator's full name.",
	 {USER_ARG, {"fullName", MGMT_API_STRING, false, "display name"}},
	 mgmt_api_set_admin_configuration,
	 NULL,
	 false},
	{"SetSystemAdministratorPassword",
	 "Set an administrator's password.",
	 {USER_ARG, {"password", MGMT_API_STRING, true, "8 to 1024 characters"}},
	 mgmt_api_set_admin_password,
	 NULL,
	 false},
	{"DeleteSystemAdministrator",
	 "Delete an administrator (not the last one).",
	 {USER_ARG},
	 mgmt_api_delete_admin,
	 NULL,
	 false},
	{"InitializeSystemAdministratorMFA",
	 "Start MFA enrolment: returns the TOTP secret, its otpauth URI and a QR code (SVG). The "
	 "next login with a valid code activates MFA.",
	 {USER_ARG},
	 mgmt_api_init_mfa,
	 NULL,
	 false},
	{"DeactivateSystemAdministratorMFA",
	 "Turn MFA off for an administrator.",
	 {USER_ARG},
	 mgmt_api_deactivate_mfa,
	 NULL,
	 false},
	{"CreateSystemAdministratorAPIPassword",
	 "Create (or replace) an API password, which works without an MFA code; shown once.",
	 {USER_ARG},
	 mgmt_api_create_api_password,
	 NULL,
	 false},
	{"GetSystemSmtpConfiguration",
	 "The SMTP settings for notifications (without the password).",
	 {{0}},
	 mgmt_api_get_smtp,
	 NULL,
	 false},
	{"SetSystemSmtpConfiguration",
	 "Set the SMTP settings for notifications.",
	 {{"host", MGMT_API_STRING, true, "SMTP server"},
	  {"port", MGMT_API_NUMBER, false, "default 587"},
	  {"security", MGMT_API_STRING, false, "none, starttls (default) or tls"},
	  {"userName", MGMT_API_STRING, false, "for SMTP AUTH"},
	  {"password", MGMT_API_STRING, false,
	   "for SMTP AUTH; kept encrypted, never returned; omit to keep"},
	  {"fromAddress", MGMT_API_STRING, true, "sender address"},
	  {"verifyCertificate", MGMT_API_BOOL, false,
	   "check the server's certificate (default true)"}},
	 mgmt_api_set_smtp,
	 NULL,
	 false},
	{"TestSystemSmtpConfiguration",
	 "Send a test mail with the SMTP settings.",
	 {{"to", MGMT_API_STRING, true, "recipient address"}},
	 NULL,
	 mgmt_api_test_smtp,
	 false},
	{"VerifyAuditLog",
	 "Check the hash chain of the Management Server's audit log.",
	 {{0}},
	 mgmt_api_verify_audit,
	 NULL,
	 false},
	{NULL, NULL, {{0}}, NULL, NULL, false},
};
