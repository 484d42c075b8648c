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
#include "tstr.h"

#include <string.h>
#include <time.h>

#define MGMT_AUTH_CACHE_ENTRIES 1024
#define MGMT_AUTH_CACHE_SECS 300
#define MGMT_AUTH_THROTTLE_ENTRIES 4096
#define MGMT_AUTH_TOTP_WINDOW 1

struct mgmt_auth {
	struct auth_cache *passwords;
	struct auth_cache *api_passwords;
	struct auth_throttle *throttle;
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

static bool mgmt_auth_verify_cached(struct auth_cache *cache, const char *user, const char *hash,
				    const char *password, time_t now)
{
	if (hash == NULL)
		return false;
	if (auth_cache_check(cache, user, password, now))
		return true;
	if (!crypto_password_verify(hash, password))
		return false;
	auth_cache_add(cache, user, password, now);
	return true;
}

/* The MFA part: 0 passes, -1 refused with *error_r. */
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
		*error_r = "this administrator uses MFA: send the current code (X-Coffer-TOTP, coffer api --totp) or use an API password";
		return -1;
	}
	char *secret = NULL;
	const char *open_error;
	if (auth_secret_open(mgmt->secret_key, json_get_string(mfa, "secret"),
			     tstr_printf("mfa:%s", user), &secret, &open_error) < 0) {
		log_error(tstr_printf("user=%s", user), "cannot open the MFA secret: %s", open_error);
		*error_r = "the MFA secret cannot be read (was the config directory's secrets.key replaced?)";
		return -1;
	}
	long long last = 0, step;
	(void)json_get_int(mfa, "lastStep", &last);
	const char *code_error = NULL;
	int ok = auth_totp_verify(secret, totp, now, MGMT_AUTH_TOTP_WINDOW, last, &step, &code_error);
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

enum mgmt_auth_result mgmt_auth_check(struct mgmt *mgmt, const char *user, const char *password,
				      const char *totp, const char *address,
				      unsigned int *wait_secs_r, const char **error_r)
{
	struct mgmt_auth *auth = mgmt->auth;
	time_t now = time(NULL);
	/* Throttle by host, not by connection: "ip:port" and "[v6]:port" lose the port. */
	const char *colon = strrchr(address, ':');
	int host_len = colon != NULL ? (int)(colon - address) : (int)strlen(address);
	const char *user_key = tstr_printf("user:%s", user);
	const char *addr_key = tstr_printf("ip:%.*s", host_len, address);
	unsigned int wait_user = 0, wait_addr = 0;
	if (auth_throttle_check(auth->throttle, user_key, now, &wait_user) < 0 ||
	    auth_throttle_check(auth->throttle, addr_key, now, &wait_addr) < 0) {
		*wait_secs_r = wait_user > wait_addr ? wait_user : wait_addr;
		*error_r = tstr_printf("too many failed logins: try again in %u seconds", *wait_secs_r);
		return MGMT_AUTH_THROTTLED;
	}
	struct json *record = mgmtdb_admin_record(mgmt->db, user);
	const char *hash = json_get_string(record, "passwordHash");
	const char *api_hash = json_get_string(record, "apiPasswordHash");
	bool api = mgmt_auth_verify_cached(auth->api_passwords, user, api_hash, password, now);
	bool ok = api || mgmt_auth_verify_cached(auth->passwords, user, hash, password, now);
	if (record == NULL)
		(void)crypto_password_verify(auth->dummy_hash, password);
	*error_r = "wrong administrator name or password";
	if (ok && record != NULL && !api && mgmt_auth_check_totp(mgmt, user, record, totp, now, error_r) < 0)
		ok = false;
	if (!ok || record == NULL) {
		auth_throttle_failure(auth->throttle, user_key, now);
		auth_throttle_failure(auth->throttle, addr_key, now);
		return MGMT_AUTH_DENIED;
	}
	auth_throttle_success(auth->throttle, user_key);
	auth_throttle_success(auth->throttle, addr_key);
	return MGMT_AUTH_OK;
}
