#ifndef COFFER_MGMT_AUTH_H
#define COFFER_MGMT_AUTH_H
/* mgmt-auth: who may use the Management API.
 *
 * A request authenticates with HTTP Basic as a system administrator:
 *   - with the administrator's password, plus, once MFA is active, a current
 *     TOTP code in the X-Coffer-TOTP header (a code works once: a replayed
 *     one is refused);
 *   - or with the administrator's API password, which works without a code
 *     (for scripts while MFA is on).
 * While MFA is pending (initialised, not yet used), the first request that
 * carries a valid code activates it.
 * Attempts are throttled per client address across names and per (name,
 * address), never per name alone, so guesses from one address cannot lock
 * the real administrator out from another; each attempt is counted before
 * it is checked (auth-throttle: then a doubling wait up to 5 min).
 * The Argon2id checks run on worker threads, never on the event loop; a
 * failure always costs two checks (password, API password or a dummy), so
 * timing does not tell which administrators exist.
 * Verified passwords are remembered for a few minutes (auth-cache) so that
 * scripts with keep-alive do not pay Argon2id on every request; any change
 * to an administrator forgets them. */
#include <stdbool.h>

struct mgmt;
struct mgmt_auth;

struct mgmt_auth *mgmt_auth_create(void);
void mgmt_auth_destroy(struct mgmt_auth **auth);

enum mgmt_auth_result {
	MGMT_AUTH_OK,
	MGMT_AUTH_DENIED,    /* 401 */
	MGMT_AUTH_THROTTLED, /* 429, wait_secs set */
	MGMT_AUTH_BUSY,      /* 503: too many checks wait; not a failed login */
	/* 401: the password is right but MFA is on and no code came; not a
	 * failed login either (the Console asks for the code next) */
	MGMT_AUTH_MFA_REQUIRED,
};

/* error: why not OK (a tstr string, valid during the call); api_password:
 * OK with the API password (no MFA code was needed). */
typedef void mgmt_auth_done_fn(struct mgmt *mgmt, enum mgmt_auth_result result,
			       unsigned int wait_secs, bool api_password, const char *error,
			       void *ctx);

/* Check credentials; `done` is called exactly once, at once (throttled,
 * busy, a cached password) or later from the event loop after the check.
 * The arguments are copied. address: the client's "ip:port". */
void mgmt_auth_check(struct mgmt *mgmt, const char *user, const char *password, const char *totp,
		     const char *address, mgmt_auth_done_fn *done, void *ctx);
/* An administrator changed (password, MFA, API password, deleted). */
void mgmt_auth_forget(struct mgmt *mgmt, const char *user);

/* Password rules for administrators: 8 to 1024 characters. */
int mgmt_auth_password_ok(const char *password, const char **error_r);

#endif
