#ifndef COFFER_CLI_API_H
#define COFFER_CLI_API_H
#include <stddef.h>
/* `coffer api <Function> name=value ...`: the Management API client. */
int cli_api_main(int argc, char **argv);

/* Call a Management API function (used by `coffer config pair` too).
 * args: "name=value" strings. On success *envelope_r is the answer's JSON
 * envelope (mem_free()) and the return value is the HTTP status; -1 on a
 * connection or TLS failure with *error_r. */
struct cli_api_target {
	const char *totp; /* the current MFA code, or NULL */
	const char *host;
	unsigned int port;
	const char *user;
	const char *password;
	const char *fingerprint;
};
int cli_api_call(const struct cli_api_target *target, const char *function, const char *const *args,
		 size_t arg_count, char **envelope_r, const char **error_r);
#endif
