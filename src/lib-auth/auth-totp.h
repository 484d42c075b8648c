#ifndef COFFER_AUTH_TOTP_H
#define COFFER_AUTH_TOTP_H
/* auth-totp: RFC 6238 time-based one-time passwords as every authenticator app
 * implements them: HMAC-SHA-1, 6 digits, 30-second steps counted from the Unix
 * epoch (the only module that uses liboath).
 *
 * Contract: secrets are RFC 4648 base32 text (upper or lower case, padding and
 * spaces allowed, at least 80 bits); auth_totp_secret_generate() makes 160
 * random bits as AUTH_TOTP_SECRET_LEN characters without padding.
 * auth_totp_verify() accepts a code ("123456" or "123 456") for the step of
 * `now` or up to `window` (at most AUTH_TOTP_MAX_WINDOW) steps either side,
 * but only if that step is greater than last_used_step: the caller stores
 * *step_r after a successful login and passes it next time (-1 at first), so
 * a code is never accepted twice. Returns 1 and sets *step_r if valid, 0 if
 * wrong, expired or reused, -1 with *error_r for a malformed secret or code.
 * Thread-safe. */
#include <time.h>

#define AUTH_TOTP_SECRET_LEN 32
#define AUTH_TOTP_DIGITS 6
#define AUTH_TOTP_PERIOD 30
#define AUTH_TOTP_MAX_WINDOW 10

int auth_totp_secret_generate(char secret_r[AUTH_TOTP_SECRET_LEN + 1]);
/* otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30
 * with issuer and account percent-encoded; mem_free(). */
char *auth_totp_uri(const char *issuer, const char *account, const char *secret);
int auth_totp_verify(const char *secret, const char *code, time_t now, unsigned int window,
		     long long last_used_step, long long *step_r, const char **error_r);

#endif
