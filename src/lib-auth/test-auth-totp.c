#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <liboath/oath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth-totp.h"
#include "crypto.h"
#include "mem.h"

/* RFC 6238 appendix B: the SHA-1 seed is the ASCII "12345678901234567890". */
#define RFC_SEED "12345678901234567890"
#define RFC_SEED_B32 "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

static const struct {
	long long time;
	const char *otp8;
} rfc6238_sha1[] = {
	{59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
	{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000LL, "65353130"},
};

/* Runs Debian's oathtool; at_time < 0 means the current time. */
static void oathtool_code(const char *secret, long long at_time, char code_r[7])
{
	char cmd[256];
	if (at_time < 0)
		snprintf(cmd, sizeof(cmd), "oathtool --totp -b '%s'", secret);
	else
		snprintf(cmd, sizeof(cmd), "oathtool --totp -b -N '@%lld' '%s'", at_time, secret);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[64] = "";
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	line[strcspn(line, "\n")] = '\0';
	assert_int_equal(strlen(line), 6);
	memcpy(code_r, line, 7);
}

static void test_rfc6238_vectors(void **state)
{
	const char *error;
	long long step;
	for (size_t i = 0; i < sizeof(rfc6238_sha1) / sizeof(rfc6238_sha1[0]); i++) {
		time_t t = (time_t)rfc6238_sha1[i].time;
		/* The 8-digit vectors as liboath validates them ... */
		assert_int_equal(oath_totp_validate(RFC_SEED, strlen(RFC_SEED), t, 30, 0, 0,
						    rfc6238_sha1[i].otp8),
				 0);
		/* ... and their last six digits, which is what a 6-digit app shows. */
		const char *otp6 = rfc6238_sha1[i].otp8 + 2;
		assert_int_equal(auth_totp_verify(RFC_SEED_B32, otp6, t, 0, -1, &step, &error), 1);
		assert_int_equal(step, rfc6238_sha1[i].time / 30);
	}
}

static void test_matches_oathtool_now(void **state)
{
	char secret[AUTH_TOTP_SECRET_LEN + 1], code[7];
	const char *error;
	long long step;
	assert_int_equal(auth_totp_secret_generate(secret), 0);
	oathtool_code(secret, -1, code);
	/* Window 1: oathtool may have run in the previous 30-second step. */
	assert_int_equal(auth_totp_verify(secret, code, time(NULL), 1, -1, &step, &error), 1);
	long long cur = (long long)time(NULL) / 30;
	assert_true(step == cur || step == cur - 1);
}

static void test_matches_oathtool_fixed_times(void **state)
{
	static const long long times[] = {0, 29, 30, 1111111109, 1700000000, 4102444800LL};
	char secret[AUTH_TOTP_SECRET_LEN + 1], code[7];
	const char *error;
	long long step;
	assert_int_equal(auth_totp_secret_generate(secret), 0);
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		oathtool_code(secret, times[i], code);
		assert_int_equal(
			auth_totp_verify(secret, code, (time_t)times[i], 0, -1, &step, &error), 1);
		assert_int_equal(step, times[i] / 30);
		/* Spaces as apps display the code. */
		char spaced[8];
		snprintf(spaced, sizeof(spaced), "%.3s %.3s", code, code + 3);
		assert_int_equal(
			auth_totp_verify(secret, spaced, (time_t)times[i], 0, -1, &step, &error),
			1);
	}
	/* The RFC seed through oathtool matches the RFC vector too. */
	oathtool_code(RFC_SEED_B32, 1234567890, code);
	assert_string_equal(code, "005924");
}

static void test_reuse_refused(void **state)
{
	char code[7];
	const char *error;
	long long step, last = -1;
	oathtool_code(RFC_SEED_B32, 1700000000, code);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, 1700000000, 1, last, &step, &error),
			 1);
	last = step;
	/* The same code again, in the same step or the next. */
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, 1700000000, 1, last, &step, &error),
			 0);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, 1700000030, 1, last, &step, &error),
			 0);
	/* The next step's code is still accepted. */
	oathtool_code(RFC_SEED_B32, 1700000030, code);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, 1700000030, 1, last, &step, &error),
			 1);
	assert_int_equal(step, last + 1);
}

static void test_window_edges(void **state)
{
	char code[7];
	const char *error;
	long long step;
	const time_t t = 1700000010; /* step 56666667 starts at 1700000010 */
	assert_int_equal(t % 30, 0);
	/* Code of two steps ago: outside window 1, inside window 2. */
	oathtool_code(RFC_SEED_B32, (long long)t - 60, code);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, t, 1, -1, &step, &error), 0);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, t, 2, -1, &step, &error), 1);
	assert_int_equal(step, t / 30 - 2);
	/* The last second of the previous step is inside window 1. */
	oathtool_code(RFC_SEED_B32, (long long)t - 1, code);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, t, 0, -1, &step, &error), 0);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, t, 1, -1, &step, &error), 1);
	assert_int_equal(step, t / 30 - 1);
	/* A future step: the phone's clock is ahead. */
	oathtool_code(RFC_SEED_B32, (long long)t + 30, code);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, t, 0, -1, &step, &error), 0);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, t, 1, -1, &step, &error), 1);
	assert_int_equal(step, t / 30 + 1);
	/* Near the epoch there are no negative steps to look at. */
	oathtool_code(RFC_SEED_B32, 0, code);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, code, 5, 3, -1, &step, &error), 1);
	assert_int_equal(step, 0);
}

static void test_malformed(void **state)
{
	const char *error = NULL;
	long long step = 42;
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, "12345", 0, 1, -1, &step, &error), -1);
	assert_non_null(strstr(error, "6 digits"));
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, "1234567", 0, 1, -1, &step, &error), -1);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, "12a456", 0, 1, -1, &step, &error), -1);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, "", 0, 1, -1, &step, &error), -1);
	assert_int_equal(auth_totp_verify("not base32!", "123456", 0, 1, -1, &step, &error), -1);
	assert_non_null(strstr(error, "base32"));
	assert_null(strstr(error, "not base32!"));
	assert_int_equal(auth_totp_verify("GEZDGNBV", "123456", 0, 1, -1, &step, &error), -1);
	assert_non_null(strstr(error, "too short"));
	assert_int_equal(auth_totp_verify("", "123456", 0, 1, -1, &step, &error), -1);
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, "123456", 0, 11, -1, &step, &error), -1);
	assert_non_null(strstr(error, "window"));
	assert_int_equal(auth_totp_verify(RFC_SEED_B32, "123456", -1, 1, -1, &step, &error), -1);
	assert_int_equal(step, 42);
	/* Lower case secrets (some apps and users type them) are accepted. */
	assert_int_equal(auth_totp_verify("gezdgnbvgy3tqojqgezdgnbvgy3tqojq", "005924", 1234567890,
					  0, -1, &step, &error),
			 1);
}

static void test_secret_and_uri(void **state)
{
	char a[AUTH_TOTP_SECRET_LEN + 1], b[AUTH_TOTP_SECRET_LEN + 1];
	assert_int_equal(auth_totp_secret_generate(a), 0);
	assert_int_equal(auth_totp_secret_generate(b), 0);
	assert_int_equal(strlen(a), 32);
	assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 32);
	assert_string_not_equal(a, b);
	char *raw;
	size_t len;
	assert_int_equal(oath_base32_decode(a, strlen(a), &raw, &len), OATH_OK);
	assert_int_equal(len, 20);
	free(raw);

	char *uri = auth_totp_uri("Coffer Mail", "alice@example.com", "JBSWY3DPEHPK3PXP");
	assert_string_equal(uri, "otpauth://totp/Coffer%20Mail:alice%40example.com"
				 "?secret=JBSWY3DPEHPK3PXP&issuer=Coffer%20Mail"
				 "&algorithm=SHA1&digits=6&period=30");
	mem_free(uri);
	uri = auth_totp_uri("a:b&c", "ü?#", "X");
	assert_string_equal(uri, "otpauth://totp/a%3Ab%26c:%C3%BC%3F%23?secret=X&issuer=a%3Ab%26c"
				 "&algorithm=SHA1&digits=6&period=30");
	mem_free(uri);
}

static int setup(void **state)
{
	return crypto_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6238_vectors),
		cmocka_unit_test(test_matches_oathtool_now),
		cmocka_unit_test(test_matches_oathtool_fixed_times),
		cmocka_unit_test(test_reuse_refused),
		cmocka_unit_test(test_window_edges),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_secret_and_uri),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
