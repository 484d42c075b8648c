#include "cli-api.h"
#include "cli-args.h"
#include "config.h"
#include "file.h"
#include "http.h"
#include "json.h"
#include "mem.h"
#include "str.h"
#include "tls.h"
#include "tstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char cli_api_usage[] =
	"usage: coffer api [OPTIONS] FUNCTION [name=value ...]\n"
	"       coffer api [OPTIONS] --metadata\n"
	"\n"
	"  --server HOST[:PORT]     Management Server (default $COFFER_API_SERVER, else "
	"localhost:8470)\n"
	"  --user NAME              administrator (default $COFFER_API_USER, else admin)\n"
	"  --password PW            password (default $COFFER_API_PASSWORD, else asked)\n"
	"  --fingerprint FP         the Management Server's HTTPS certificate fingerprint\n"
	"                           (default $COFFER_API_FINGERPRINT, else read from the local\n"
	"                           config directory when the Management Server runs here)\n"
	"  --trust-on-first-use     accept the fingerprint the server presents (shown on stderr)\n"
	"  --totp CODE              the current MFA code, for an administrator with MFA on\n"
	"                           (default $COFFER_API_TOTP; an API password needs none)\n"
	"  --config-dir DIR         local config directory to read the fingerprint from\n"
	"  --no-wait                for long work, print the token instead of waiting\n"
	"                           (then: coffer api /api/get-status token=...)\n"
	"\n"
	"Prints the answer's JSON envelope; exits 0 when it succeeded, 1 when it failed.\n"
	"A value given as @FILE is read from FILE.\n";

static const char *const cli_api_flags[] = {"trust-on-first-use", "metadata", "no-wait", "help",
					    NULL};
static const char *const cli_api_options[] = {"server", "user",       "password", "fingerprint",
					      "totp",   "config-dir", NULL};

int cli_api_call(const struct cli_api_target *target, const char *function, const char *const *args,
		 size_t arg_count, char **envelope_r, const char **error_r)
{
	const char *totp_header[] = {"X-Coffer-TOTP", target->totp, NULL};
	struct str *body = str_create(256);
	for (size_t i = 0; i < arg_count; i++) {
		const char *eq = strchr(args[i], '=');
		char *name = mem_strndup(args[i], (size_t)(eq - args[i]));
		char *n = http_form_encode_value(name), *v = http_form_encode_value(eq + 1);
		str_printfa(body, "%s%s=%s", i > 0 ? "&" : "", n, v);
		mem_free(n);
		mem_free(v);
		mem_free(name);
	}
	struct http_client_request req = {
		.host = target->host,
		.port = target->port,
		.method = "POST",
		.path = function == NULL     ? "/api/get-metadata"
			: function[0] == '/' ? function
					     : tstr_printf("/api/invoke/%s", function),
		.content_type = "application/x-www-form-urlencoded",
		.body = str_c(body),
		.body_size = str_len(body),
		.basic_user = target->user,
		.basic_password = target->password,
		.pinned_fingerprint = target->fingerprint,
		.timeout_secs = 120,
		.extra_headers = target->totp != NULL ? totp_header : NULL,
	};
	struct http_client_response resp;
	int ret = http_client_request(&req, &resp, error_r);
	str_destroy(&body);
	if (ret < 0)
		return -1;
	*envelope_r = resp.body;
	return resp.status;
}

static int cli_api_server(const char *text, struct cli_api_target *target, const char **error_r)
{
	char *copy = mem_strdup(text);
	char *colon = strrchr(copy, ':');
	target->port = 8470;
	if (colon != NULL && strchr(copy, ']') < colon) {
		*colon = '\0';
		if (netaddr_parse_port(colon + 1, &target->port, error_r) < 0) {
			mem_free(copy);
			return -1;
		}
	}
	char *host = copy;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		host++;
	}
	/* kept for the whole run: a long job is followed with many requests,
	 * and tstr buffers are recycled */
	static char host_buf[256];
	snprintf(host_buf, sizeof(host_buf), "%s", host);
	target->host = host_buf;
	mem_free(copy);
	return 0;
}

static bool cli_api_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "::1") == 0;
}

/* Whether HOST:PORT is the Management Server configured in the local config
 * directory: one of its HTTPS listeners by address, or by loopback or its
 * server name when the listener takes every address. Only then may its
 * certificate's fingerprint be used for the pin. */
static bool cli_api_target_is_local(const char *dir, const struct cli_api_target *target)
{
	struct config_role_settings set;
	const char *error;
	if (config_role_load(dir, CONFIG_ROLE_MANAGEMENT_SERVER, &set, &error) != 1)
		return false;
	bool local = false;
	const struct config_listener_set *l = &set.listeners[CONFIG_KIND_HTTP];
	for (size_t i = 0; i < l->listener_count && !local; i++) {
		const struct netaddr_listener *li = &l->listeners[i];
		if (li->port != target->port)
			continue;
		local = strcmp(li->host, target->host) == 0 ||
			(li->host[0] == '\0' && (cli_api_loopback(target->host) ||
						 strcasecmp(set.server_name, target->host) == 0));
	}
	config_role_free(&set);
	return local;
}

/* The fingerprint of a Management Server on this machine, if there is one. */
static const char *cli_api_local_fingerprint(const char *dir)
{
	char *cert = config_cert_path(dir, CONFIG_ROLE_MANAGEMENT_SERVER, CONFIG_KIND_HTTP);
	char fp[TLS_FINGERPRINT_HEX_LEN + 1];
	const char *error;
	int ret = access(cert, R_OK) == 0 ? tls_cert_fingerprint(cert, fp, &error) : -1;
	mem_free(cert);
	return ret == 0 ? tstr_dup(fp) : NULL;
}

static const char *cli_api_env(const char *flag, const char *env)
{
	return flag != NULL ? flag : getenv(env);
}

static char *cli_api_arg_value(const char *arg, const char **error_r)
{
	const char *eq = strchr(arg, '=');
	if (eq[1] != '@')
		return mem_strdup(arg);
	char *data;
	size_t len;
	if (file_read_all(eq + 2, 16 * 1024 * 1024, &data, &len, error_r) < 0)
		return NULL;
	char *joined = mem_printf("%.*s=%s", (int)(eq - arg), arg, data);
	mem_free(data);
	return joined;
}

static int cli_api_parse_answer(int status, char **envelope, struct json **answer_r,
				const char **error_r)
{
	const char *parse_error;
	int ret = json_parse(*envelope, strlen(*envelope), answer_r, &parse_error);
	if (ret < 0)
		*error_r = tstr_printf("HTTP status %d with a body that is not JSON: %.200s",
				       status, *envelope);
	mem_free(*envelope);
	*envelope = NULL;
	return ret;
}

/* Long work answers "running" with a token: follow it to the end, showing
 * its progress on stderr. */
static int cli_api_follow(const struct cli_api_target *target, struct json **answer, int *status_r,
			  const char **error_r)
{
	char *last_text = NULL;
	for (;;) {
		const char *code = json_get_string(*answer, "statusCode");
		const char *token = json_get_string(*answer, "token");
		if (code == NULL || strcmp(code, "running") != 0 || token == NULL)
			break;
		const char *text = json_get_string(*answer, "statusText");
		if (text != NULL && (last_text == NULL || strcmp(text, last_text) != 0)) {
			fprintf(stderr, "coffer api: %s\n", text);
			mem_free(last_text);
			last_text = mem_strdup(text);
		}
		long long version = 0;
		(void)json_get_int(*answer, "statusVersion", &version);
		const char *poll_args[] = {tstr_printf("token=%s", token),
					   tstr_printf("lastKnownStatusVersion=%lld", version),
					   "millisecondsTimeout=10000"};
		char *envelope = NULL;
		int status =
			cli_api_call(target, "/api/get-status", poll_args, 3, &envelope, error_r);
		if (status < 0) {
			mem_free(last_text);
			return -1;
		}
		struct json *next;
		if (cli_api_parse_answer(status, &envelope, &next, error_r) < 0) {
			mem_free(last_text);
			return -1;
		}
		json_unref(answer);
		*answer = next;
		*status_r = status;
	}
	mem_free(last_text);
	return 0;
}

/* What a failed call means for the person at the terminal: a refused login
 * says so; the HTTP status is named only when it is not the usual 200 of a
 * function that ran and failed. */
static const char *cli_api_failure_text(const struct cli_api_target *target, int status,
					const char *message)
{
	if (status == 401)
		return tstr_printf(
			"the Management Server at %s:%u refused the login of administrator "
			"'%s': %s",
			target->host, target->port, target->user,
			message != NULL ? message : "wrong name or password");
	if (message == NULL)
		message = "failed";
	/* A copy: message lives in the answer, which is freed next. */
	return status == 200 ? tstr_dup(message)
			     : tstr_printf("%s (HTTP status %d)", message, status);
}

/* A connection that failed: a refused connection means no Management Server
 * listens there; say which role to start. */
static const char *cli_api_connect_text(const struct cli_api_target *target, const char *error)
{
	if (strcasestr(error, "refused") == NULL)
		return tstr_printf("cannot reach the Management Server at %s:%u: %s", target->host,
				   target->port, error);
	return tstr_printf("cannot reach the Management Server at %s:%u: connection refused; is it "
			   "running? On that server: coffer config start management-server "
			   "(coffer config status shows each role)",
			   target->host, target->port);
}

static int cli_api_run(struct cli_args *args, const char **error_r)
{
	struct cli_api_target target = {0};
	const char *server = cli_api_env(cli_args_get(args, "server"), "COFFER_API_SERVER");
	const char *fp_text =
		cli_api_env(cli_args_get(args, "fingerprint"), "COFFER_API_FINGERPRINT");
	const char *dir = config_dir_resolve(cli_args_get(args, "config-dir"));
	bool tofu = cli_args_flag(args, "trust-on-first-use");
	bool metadata = cli_args_flag(args, "metadata");
	bool wait = !cli_args_flag(args, "no-wait");
	char fp[TLS_FINGERPRINT_HEX_LEN + 1];
	target.user = cli_api_env(cli_args_get(args, "user"), "COFFER_API_USER");
	target.totp = cli_api_env(cli_args_get(args, "totp"), "COFFER_API_TOTP");
	target.password = cli_api_env(cli_args_get(args, "password"), "COFFER_API_PASSWORD");
	if (target.user == NULL)
		target.user = "admin";
	if (cli_args_check_unused(args, error_r) < 0)
		return 2;
	if (!metadata && args->positional_count == 0) {
		*error_r = "missing FUNCTION (coffer api --metadata lists them)";
		return 2;
	}
	for (size_t i = 1; i < args->positional_count; i++) {
		if (strchr(args->positional[i], '=') == NULL || args->positional[i][0] == '=') {
			*error_r = tstr_printf("argument '%s': expected name=value",
					       args->positional[i]);
			return 2;
		}
	}
	if (cli_api_server(server != NULL ? server : "localhost:8470", &target, error_r) < 0)
		return 2;
	/* The local Management Server's certificate pins only a connection to it:
	 * never one to another server named with --server. */
	bool local = server == NULL || cli_api_target_is_local(dir, &target);
	if (fp_text == NULL && local)
		fp_text = cli_api_local_fingerprint(dir);
	if (fp_text != NULL) {
		if (tls_fingerprint_normalize(fp_text, fp, error_r) < 0)
			return 2;
	} else if (tofu) {
		if (tls_probe_fingerprint(target.host, target.port, 10, fp, error_r) < 0)
			return 1;
		fprintf(stderr, "coffer api: trusting %s:%u on first use, fingerprint %s\n",
			target.host, target.port, fp);
	} else {
		*error_r = tstr_printf(
			"no fingerprint to check the Management Server %s:%u against%s: pass "
			"--fingerprint FP (on the Management Server: coffer config cert show "
			"management-server http) or --trust-on-first-use",
			target.host, target.port,
			local ? ""
			      : tstr_printf(" (it is not the Management Server configured in %s)",
					    dir));
		return 2;
	}
	target.fingerprint = fp;
	if (target.password == NULL && isatty(STDIN_FILENO)) {
		char *pw = getpass(tstr_printf("Password of %s: ", target.user));
		static char password_buf[1024];
		if (pw != NULL)
			snprintf(password_buf, sizeof(password_buf), "%s", pw);
		target.password = pw == NULL ? NULL : password_buf;
	}
	if (target.password == NULL) {
		*error_r = "no password: pass --password or set COFFER_API_PASSWORD";
		return 2;
	}
	size_t count = args->positional_count > 0 ? args->positional_count - 1 : 0;
	char **values = mem_calloc(count + 1, sizeof(char *));
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		values[i] = cli_api_arg_value(args->positional[i + 1], error_r);
		if (values[i] == NULL)
			ret = 2;
	}
	char *envelope = NULL;
	int status = ret != 0
			     ? -1
			     : cli_api_call(&target, metadata ? NULL : args->positional[0],
					    (const char *const *)values, count, &envelope, error_r);
	for (size_t i = 0; i < count; i++)
		mem_free(values[i]);
	mem_free(values);
	if (ret != 0)
		return ret;
	if (status < 0) {
		*error_r = cli_api_connect_text(&target, *error_r);
		return 1;
	}
	struct json *answer;
	if (cli_api_parse_answer(status, &envelope, &answer, error_r) < 0)
		return 1;
	if (wait && cli_api_follow(&target, &answer, &status, error_r) < 0) {
		json_unref(&answer);
		return 1;
	}
	char *pretty = json_serialize(answer, true);
	printf("%s\n", pretty);
	mem_free(pretty);
	const char *code = json_get_string(answer, "statusCode");
	ret = code != NULL && strcmp(code, "succeeded") == 0 ? 0 : 1;
	if (ret != 0) {
		const struct json *err = json_get(answer, "error");
		const char *m = json_get_string(err, "message");
		*error_r = cli_api_failure_text(&target, status, m);
	}
	json_unref(&answer);
	return ret;
}

int cli_api_main(int argc, char **argv)
{
	struct cli_args args;
	const char *error = NULL;
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fputs(cli_api_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (cli_args_parse(argc - 1, argv + 1, cli_api_flags, cli_api_options, &args, &error) < 0) {
		fprintf(stderr, "coffer api: %s\n\n%s", error, cli_api_usage);
		return 2;
	}
	if (cli_args_flag(&args, "help")) {
		cli_args_free(&args);
		fputs(cli_api_usage, stdout);
		return 0;
	}
	int ret = cli_api_run(&args, &error);
	cli_args_free(&args);
	if (ret != 0 && error != NULL)
		fprintf(stderr, "coffer api: %s\n", error);
	if (ret == 2)
		fputs(cli_api_usage, stderr);
	return ret;
}
