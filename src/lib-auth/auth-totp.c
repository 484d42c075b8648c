#include "auth-totp.h"
#include "crypto.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <liboath/oath.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* RFC 4226 asks for at least 128 bits and recommends 160; 80-bit secrets
 * (16 base32 characters) are still common in the wild, so they are the floor. */
#define AUTH_TOTP_MIN_SECRET_BYTES 10
#define AUTH_TOTP_RAW_SECRET_BYTES 20

static const char auth_totp_base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static pthread_once_t auth_totp_once = PTHREAD_ONCE_INIT;
static int auth_totp_init_rc;

static void auth_totp_init_once(void)
{
	auth_totp_init_rc = oath_init();
}

static int auth_totp_init(const char **error_r)
{
	if (pthread_once(&auth_totp_once, auth_totp_init_once) != 0 ||
	    auth_totp_init_rc != OATH_OK) {
		*error_r = tstr_printf("liboath initialisation failed: %s",
				       oath_strerror(auth_totp_init_rc));
		return -1;
	}
	return 0;
}

int auth_totp_secret_generate(char secret_r[AUTH_TOTP_SECRET_LEN + 1])
{
	_Static_assert(AUTH_TOTP_RAW_SECRET_BYTES * 8 == AUTH_TOTP_SECRET_LEN * 5,
		       "160 bits are exactly 32 base32 characters");
	unsigned char raw[AUTH_TOTP_RAW_SECRET_BYTES];
	crypto_random(raw, sizeof(raw));
	/* Encoded here rather than with oath_base32_encode(): no allocation to
	 * fail and no copy of the secret left in a heap buffer. */
	size_t o = 0;
	for (size_t i = 0; i < sizeof(raw); i += 5) {
		unsigned long long v = 0;
		for (size_t j = 0; j < 5; j++)
			v = (v << 8) | raw[i + j];
		for (int shift = 35; shift >= 0; shift -= 5)
			secret_r[o++] = auth_totp_base32_alphabet[(v >> shift) & 31];
	}
	secret_r[o] = '\0';
	crypto_wipe(raw, sizeof(raw));
	return 0;
}

static void auth_totp_percent_encode(struct str *out, const char *s)
{
	static const char hexdig[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			str_append_c(out, (char)*p);
		} else {
			str_append_c(out, '%');
			str_append_c(out, hexdig[*p >> 4]);
			str_append_c(out, hexdig[*p & 15]);
		}
	}
}

char *auth_totp_uri(const char *issuer, const char *account, const char *secret)
{
	struct str *uri = str_create(160);
	str_append(uri, "otpauth://totp/");
	auth_totp_percent_encode(uri, issuer);
	str_append_c(uri, ':');
	auth_totp_percent_encode(uri, account);
	str_append(uri, "?secret=");
	auth_totp_percent_encode(uri, secret);
	str_append(uri, "&issuer=");
	auth_totp_percent_encode(uri, issuer);
	str_printfa(uri, "&algorithm=SHA1&digits=%d&period=%d", AUTH_TOTP_DIGITS, AUTH_TOTP_PERIOD);
	return str_steal(&uri);
}

/* Copies the digits of `code` without spaces; -1 unless exactly 6 digits. */
static int auth_totp_parse_code(const char *code, char digits_r[AUTH_TOTP_DIGITS + 1],
				const char **error_r)
{
	size_t n = 0;
	for (const char *p = code; *p != '\0'; p++) {
		if (*p == ' ')
			continue;
		if (*p < '0' || *p > '9' || n == AUTH_TOTP_DIGITS) {
			*error_r = tstr_printf("one-time code must be %d digits "
					       "(spaces allowed)",
					       AUTH_TOTP_DIGITS);
			return -1;
		}
		digits_r[n++] = *p;
	}
	if (n != AUTH_TOTP_DIGITS) {
		*error_r = tstr_printf("one-time code must be %d digits (spaces allowed)",
				       AUTH_TOTP_DIGITS);
		return -1;
	}
	digits_r[n] = '\0';
	return 0;
}

static int auth_totp_decode_secret(const char *secret, char **raw_r, size_t *len_r,
				   const char **error_r)
{
	int rc = oath_base32_decode(secret, strlen(secret), raw_r, len_r);
	if (rc != OATH_OK) {
		/* Never echo the secret itself. */
		*error_r = tstr_printf("TOTP secret is not valid base32: %s", oath_strerror(rc));
		return -1;
	}
	if (*len_r < AUTH_TOTP_MIN_SECRET_BYTES) {
		*error_r = tstr_printf("TOTP secret is too short (%zu bits, at least %d)",
				       *len_r * 8, AUTH_TOTP_MIN_SECRET_BYTES * 8);
		crypto_wipe(*raw_r, *len_r);
		free(*raw_r);
		return -1;
	}
	return 0;
}

int auth_totp_verify(const char *secret, const char *code, time_t now, unsigned int window,
		     long long last_used_step, long long *step_r, const char **error_r)
{
	char digits[AUTH_TOTP_DIGITS + 1];
	if (window > AUTH_TOTP_MAX_WINDOW) {
		*error_r = tstr_printf("TOTP window %u is too large (at most %d steps)", window,
				       AUTH_TOTP_MAX_WINDOW);
		return -1;
	}
	if (now < 0) {
		*error_r = tstr_printf("time %lld is before the Unix epoch", (long long)now);
		return -1;
	}
	if (auth_totp_init(error_r) < 0 || auth_totp_parse_code(code, digits, error_r) < 0)
		return -1;
	char *raw;
	size_t raw_len;
	if (auth_totp_decode_secret(secret, &raw, &raw_len, error_r) < 0)
		return -1;

	/* Every step in the window is computed and compared in constant time,
	 * so the time taken does not tell which step (if any) matched. The
	 * earliest matching step after last_used_step wins. */
	long long current = (long long)(now / AUTH_TOTP_PERIOD);
	long long found = -1;
	int ret = 0;
	for (long long step = current - window; step <= current + (long long)window; step++) {
		char otp[AUTH_TOTP_DIGITS + 1];
		if (step < 0)
			continue;
		int rc = oath_totp_generate(raw, raw_len, (time_t)(step * AUTH_TOTP_PERIOD),
					    AUTH_TOTP_PERIOD, OATH_TOTP_DEFAULT_START_TIME,
					    AUTH_TOTP_DIGITS, otp);
		if (rc != OATH_OK) {
			*error_r =
				tstr_printf("computing a TOTP code failed: %s", oath_strerror(rc));
			ret = -1;
			break;
		}
		bool match = crypto_equal(otp, digits, AUTH_TOTP_DIGITS);
		crypto_wipe(otp, sizeof(otp));
		if (match && step > last_used_step && found < 0)
			found = step;
	}
	crypto_wipe(raw, raw_len);
	free(raw);
	crypto_wipe(digits, sizeof(digits));
	if (ret == 0 && found >= 0) {
		*step_r = found;
		ret = 1;
	}
	return ret;
}
