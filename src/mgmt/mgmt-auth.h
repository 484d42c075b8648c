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
 * Failed attempts are throttled per administrator name and per client
 * address (auth-throttle: three free, then a doubling wait up to 5 min).
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
	MGMT_AUTH_THROTTLED, /* 429, *wait_secs_r set */
};

enum mgmt_auth_result mgmt_auth_check(struct mgmt *mgmt, const char *user, const char *password,
				      const char *totp, const char *address,
				      unsigned int *wait_secs_r, const char **error_r);
/* An administrator changed (password, MFA, API password, deleted). */
void mgmt_auth_forget(struct mgmt *mgmt, const char *user);

/* Password rules for administrators: 8 to 1024 characters. */
int mgmt_auth_password_ok(const char *password, const char **error_r);

#endif
