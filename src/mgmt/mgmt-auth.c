#include "mgmt-auth.h"
#include "auth-cache.h"
#include "auth-secret.h"
#include "auth-throttle.h"
#include "auth-totp.h"
#include "crypto.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "role-daemon.h"
#include "tstr.h"
#include "worker-pool.h"

#include <string.h>
#include <time.h>

#define MGMT_AUTH_CACHE_ENTRIES 1024
#define MGMT_AUTH_CACHE_SECS 300
#define MGMT_AUTH_THROTTLE_ENTRIES 4096
#define MGMT_AUTH_TOTP_WINDOW 1
/* Administrators' logins are few: two threads at most, 16 waiting. */
#define MGMT_AUTH_THREADS_MAX 2
#define MGMT_AUTH_QUEUE_MAX 16

struct mgmt_auth {
	struct auth_cache *passwords;
	struct auth_cache *api_passwords;
	struct auth_throttle *throttle;
	struct worker_pool *pool; /* made on the first check */
	bool stopping;
	char dummy_hash[CRYPTO_PASSWORD_HASH_LEN];
};

struct mgmt_auth *mgmt_auth_create(void)
{
	struct mgmt_auth *auth = mem_new(struct mgmt_auth);
	auth->passwords = auth_cache_create(MGMT_AUTH_CACHE_ENTRIES, MGMT_AUTH_CACHE_SECS);
	auth->api_passwords = auth_cache_create(MGMT_AUTH_CACHE_ENTRIES, MGMT_AUTH_CACHE_SECS);
	auth->throttle = auth_throttle_create(MGMT_AUTH_THROTTLE_ENTRIES);
	/* Unknown names are checked against this, so timing does not tell which
	 * administrators exist. */
	char *random = crypto_random_hex(16);
	const char *error;
	if (crypto_password_hash(random, auth->dummy_hash, &error) < 0)
		auth->dummy_hash[0] = '\0';
	mem_free(random);
	return auth;
}

void mgmt_auth_destroy(struct mgmt_auth **auth)
{
	if (*auth == NULL)
		return;
	/* checks under way are answered "busy" (the HTTP server still runs),
	 * none goes on to run an API function while the server stops */
	(*auth)->stopping = true;
	worker_pool_destroy(&(*auth)->pool);
	auth_cache_destroy(&(*auth)->passwords);
	auth_cache_destroy(&(*auth)->api_passwords);
	auth_throttle_destroy(&(*auth)->throttle);
	mem_free(*auth);
	*auth = NULL;
}

void mgmt_auth_forget(struct mgmt *mgmt, const char *user)
{
	auth_cache_forget(mgmt->auth->passwords, user);
	auth_cache_forget(mgmt->auth->api_passwords, user);
}

int mgmt_auth_password_ok(const char *password, const char **error_r)
{
	size_t len = strlen(password);
	if (len < 8 || len > 1024) {
		*error_r = "password: expected 8 to 1024 characters";
		return -1;
	}
	return 0;
}

/* The MFA part: 0 passes, -1 refused with *error_r, -2 no code given
 * while MFA is active. */
static int mgmt_auth_check_totp(struct mgmt *mgmt, const char *user, struct json *record,
				const char *totp, time_t now, const char **error_r)
{
	struct json *mfa = json_get(record, "mfa");
	const char *state = json_get_string(mfa, "state");
	if (state == NULL)
		return 0;
	bool active = strcmp(state, "active") == 0;
	if (totp == NULL) {
		if (!active)
			return 0; /* pending: not required yet */
		*error_r = "this administrator uses MFA: send the current code (X-Coffer-TOTP, "
			   "coffer api --totp) or use an API password";
		return -2;
	}
	char *secret = NULL;
	const char *open_error;
	if (auth_secret_open(mgmt->secret_key, json_get_string(mfa, "secret"),
			     tstr_printf("mfa:%s", user), &secret, &open_error) < 0) {
		log_error(tstr_printf("user=%s", user), "cannot open the MFA secret: %s",
			  open_error);
		*error_r = "the MFA secret cannot be read (was the config directory's secrets.key "
			   "replaced?)";
		return -1;
	}
	long long last = 0, step;
	(void)json_get_int(mfa, "lastStep", &last);
	const char *code_error = NULL;
	int ok = auth_totp_verify(secret, totp, now, MGMT_AUTH_TOTP_WINDOW, last, &step,
				  &code_error);
	crypto_wipe(secret, strlen(secret));
	mem_free(secret);
	if (ok != 1) {
		*error_r = "the MFA code is wrong, expired or already used";
		return -1;
	}
	json_set_int(mfa, "lastStep", step);
	if (!active) {
		json_set_string(mfa, "state", "active");
		log_info(tstr_printf("user=%s", user), "MFA activated");
	}
	const char *commit_error;
	if (mgmt_db_commit(mgmt, &commit_error) < 0) {
		*error_r = commit_error;
		return -1;
	}
	return 0;
}

/* ---- the check: Argon2id on a worker thread ---- */

struct mgmt_auth_job {
	struct mgmt *mgmt;
	char *user, *host, *password, *totp;
	char *hashes[2]; /* the password's, the API password's (or the dummy) */
	int matched;     /* index into hashes, -1 none */
	bool known;
	mgmt_auth_done_fn *done;
	void *ctx;
};

static char *mgmt_auth_strdup(const char *s)
{
	return s == NULL ? NULL : mem_strdup(s);
}

static void mgmt_auth_job_free(struct mgmt_auth_job *job)
{
	crypto_wipe(job->password, strlen(job->password));
	mem_free(job->password);
	if (job->totp != NULL)
		crypto_wipe(job->totp, strlen(job->totp));
	mem_free(job->totp);
	mem_free(job->user);
	mem_free(job->host);
	mem_free(job->hashes[0]);
	mem_free(job->hashes[1]);
	mem_free(job);
}

/* A failure always costs two checks, whether the administrator exists and
 * has an API password or not: timing tells nothing. */
static void mgmt_auth_job_work(void *ctx)
{
	struct mgmt_auth_job *job = ctx;
	for (int i = 0; i < 2 && job->matched < 0; i++) {
		if (crypto_password_verify(job->hashes[i], job->password) && job->known)
			job->matched = i;
	}
}

/* The hash that matched is still the administrator's (not changed while it
 * was being checked). */
static bool mgmt_auth_still_valid(struct json *record, int matched, const char *hash)
{
	const char *now =
		json_get_string(record, matched == 0 ? "passwordHash" : "apiPasswordHash");
	return now != NULL && strcmp(now, hash) == 0;
}

/* The outcome on the loop: cache, MFA, throttle, and the caller. */
static void mgmt_auth_finish(struct mgmt *mgmt, const char *user, const char *host,
			     const char *password, const char *totp, int matched,
			     mgmt_auth_done_fn *done, void *ctx)
{
	struct mgmt_auth *auth = mgmt->auth;
	time_t now = time(NULL);
	struct json *record = mgmtdb_admin_record(mgmt->db, user);
	const char *error = "wrong administrator name or password";
	bool ok = record != NULL && matched >= 0;
	int mfa = ok && matched == 0 ? mgmt_auth_check_totp(mgmt, user, record, totp, now, &error)
				     : 0;
	if (mfa < 0)
		ok = false;
	if (ok)
		auth_cache_add(matched == 0 ? auth->passwords : auth->api_passwords, user, password,
			       now);
	/* The right password without the code guesses nothing: not counted. */
	auth_throttle_login_end(auth->throttle, user, host,
				ok          ? AUTH_THROTTLE_SUCCEEDED
				: mfa == -2 ? AUTH_THROTTLE_NOT_CHECKED
					    : AUTH_THROTTLE_FAILED);
	done(mgmt,
	     ok          ? MGMT_AUTH_OK
	     : mfa == -2 ? MGMT_AUTH_MFA_REQUIRED
			 : MGMT_AUTH_DENIED,
	     0, ok && matched == 1, error, ctx);
}

static void mgmt_auth_job_done(void *ctx, bool ran)
{
	struct mgmt_auth_job *job = ctx;
	struct mgmt *mgmt = job->mgmt;
	if (!ran || mgmt->auth->stopping) {
		auth_throttle_login_end(mgmt->auth->throttle, job->user, job->host,
					AUTH_THROTTLE_NOT_CHECKED);
		job->done(mgmt, MGMT_AUTH_BUSY, 1, false, "the server is stopping", job->ctx);
		mgmt_auth_job_free(job);
		return;
	}
	int matched = job->matched;
	struct json *record = mgmtdb_admin_record(mgmt->db, job->user);
	if (matched >= 0 && !mgmt_auth_still_valid(record, matched, job->hashes[matched]))
		matched = -1;
	mgmt_auth_finish(mgmt, job->user, job->host, job->password, job->totp, matched, job->done,
			 job->ctx);
	mgmt_auth_job_free(job);
}

static int mgmt_auth_pool(struct mgmt *mgmt)
{
	const char *error;
	if (mgmt->auth->pool != NULL)
		return 0;
	if (worker_pool_create(role_daemon_base(mgmt->rd), 0, MGMT_AUTH_THREADS_MAX,
			       MGMT_AUTH_QUEUE_MAX, &mgmt->auth->pool, &error) < 0) {
		log_error("", "cannot check passwords: %s", error);
		return -1;
	}
	return 0;
}

void mgmt_auth_check(struct mgmt *mgmt, const char *user, const char *password, const char *totp,
		     const char *address, mgmt_auth_done_fn *done, void *ctx)
{
	struct mgmt_auth *auth = mgmt->auth;
	time_t now = time(NULL);
	/* Throttle by host, not by connection: "ip:port" and "[v6]:port" lose the port. */
	const char *colon = strrchr(address, ':');
	int host_len = colon != NULL ? (int)(colon - address) : (int)strlen(address);
	char *host = mem_strndup(address, (size_t)host_len);
	unsigned int wait = 0;
	if (auth_throttle_login_begin(auth->throttle, user, host, now, &wait) < 0) {
		mem_free(host);
		if (wait == 0) /* others from there are being checked */
			done(mgmt, MGMT_AUTH_BUSY, 1, false,
			     "other logins are being checked: try again in a moment", ctx);
		else
			done(mgmt, MGMT_AUTH_THROTTLED, wait, false,
			     tstr_printf("too many failed logins: try again in %u seconds", wait),
			     ctx);
		return;
	}
	struct json *record = mgmtdb_admin_record(mgmt->db, user);
	const char *hash = json_get_string(record, "passwordHash");
	const char *api_hash = json_get_string(record, "apiPasswordHash");
	/* Verified a moment ago: no Argon2id for a script's every request. */
	int cached = -1;
	if (api_hash != NULL && auth_cache_check(auth->api_passwords, user, password, now))
		cached = 1;
	else if (hash != NULL && auth_cache_check(auth->passwords, user, password, now))
		cached = 0;
	if (cached >= 0) {
		mgmt_auth_finish(mgmt, user, host, password, totp, cached, done, ctx);
		mem_free(host);
		return;
	}
	struct mgmt_auth_job *job = mem_new(struct mgmt_auth_job);
	job->mgmt = mgmt;
	job->user = mem_strdup(user);
	job->host = host;
	job->password = mem_strdup(password);
	job->totp = mgmt_auth_strdup(totp);
	job->known = record != NULL;
	job->hashes[0] = mem_strdup(hash != NULL ? hash : auth->dummy_hash);
	job->hashes[1] = mem_strdup(api_hash != NULL ? api_hash : auth->dummy_hash);
	job->matched = -1;
	job->done = done;
	job->ctx = ctx;
	if (mgmt_auth_pool(mgmt) < 0 ||
	    worker_pool_submit(auth->pool, mgmt_auth_job_work, mgmt_auth_job_done, job) < 0) {
		/* not a wrong password: not counted */
		auth_throttle_login_end(auth->throttle, user, host, AUTH_THROTTLE_NOT_CHECKED);
		done(mgmt, MGMT_AUTH_BUSY, 1, false,
		     "too many logins at once: try again in a moment", ctx);
		mgmt_auth_job_free(job);
	}
}
