#include "mgmt-api.h"
#include "mgmt-auth.h"
#include "mgmt-auth-log.h"
#include "mgmt-console.h"
#include "mgmt-branding.h"
#include "audit.h"
#include "mgmt-jobs.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "crypto.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "tstr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MGMT_API_PREFIX "/api/invoke/"

static const struct mgmt_api_function *const mgmt_api_tables[] = {
	mgmt_api_server_functions,  mgmt_api_instance_functions,      mgmt_api_move_functions,
	mgmt_api_admin_functions,   mgmt_api_instance_data_functions, mgmt_api_recover_functions,
	mgmt_api_console_functions, mgmt_api_branding_functions,      mgmt_api_journal_functions,
};

static const struct mgmt_api_function *mgmt_api_find(const char *name)
{
	for (size_t t = 0; t < sizeof(mgmt_api_tables) / sizeof(mgmt_api_tables[0]); t++) {
		for (const struct mgmt_api_function *f = mgmt_api_tables[t]; f->name != NULL; f++) {
			if (strcmp(f->name, name) == 0)
				return f;
		}
	}
	return NULL;
}

static void mgmt_api_fail(struct http_request *req, int status, const char *error)
{
	mgmt_jobs_reply(req, status, mgmt_jobs_envelope(NULL, error));
}

/* ---- authentication ---- */

/* Arguments never written to the audit log. */
static bool mgmt_api_arg_secret(const char *name)
{
	return strcmp(name, "password") == 0 || strstr(name, "Password") != NULL;
}

/* Every call that may change something is recorded: who, when, from where,
 * what, with which arguments (secrets left out). */
static void mgmt_api_audit(struct mgmt *mgmt, const char *user, const char *address,
			   const char *function, const struct json *args)
{
	if (strncmp(function, "Get", 3) == 0 || strcmp(function, "Ping") == 0 ||
	    strcmp(function, "VerifyAuditLog") == 0)
		return;
	struct json *details = json_new_object();
	for (void *it = json_iter(args); it != NULL; it = json_iter_next(args, it)) {
		if (!mgmt_api_arg_secret(json_iter_key(it)))
			json_set(details, json_iter_key(it), json_ref(json_iter_value(it)));
	}
	const char *error;
	if (audit_append(mgmt->audit, time(NULL), user, address, function, details, &error) < 0)
		log_error(tstr_printf("user=%s", user), "audit: %s", error);
	json_unref(&details);
}

/* ---- arguments ---- */

static bool mgmt_api_string_list(const struct json *value)
{
	if (json_kind(value) != JSON_KIND_ARRAY)
		return false;
	for (size_t i = 0; i < json_count(value); i++) {
		if (json_kind(json_at(value, i)) != JSON_KIND_STRING)
			return false;
	}
	return true;
}

/* A list argument's text: a JSON array of strings, or comma-separated items
 * (spaces around them dropped, empty items skipped). */
static int mgmt_api_convert_list(const struct mgmt_api_arg *arg, const char *text,
				 struct json **value_r, const char **error_r)
{
	const char *p = text + strspn(text, " \t");
	if (*p == '[') {
		const char *parse_error;
		if (json_parse(text, strlen(text), value_r, &parse_error) < 0) {
			*error_r = tstr_printf("argument '%s': %s", arg->name, parse_error);
			return -1;
		}
		if (!mgmt_api_string_list(*value_r)) {
			json_unref(value_r);
			*error_r = tstr_printf("argument '%s': expected a JSON array of strings",
					       arg->name);
			return -1;
		}
		return 0;
	}
	struct json *list = json_new_array();
	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		size_t end = len;
		while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t'))
			end--;
		if (end > 0)
			json_append(list, json_new_string(tstr_printf("%.*s", (int)end, p)));
		p += len;
		if (*p == ',')
			p++;
		p += strspn(p, " \t");
	}
	*value_r = list;
	return 0;
}

static int mgmt_api_convert(const struct mgmt_api_arg *arg, const char *text, struct json **value_r,
			    const char **error_r)
{
	char *end;
	switch (arg->type) {
	case MGMT_API_STRING:
		*value_r = json_new_string(text);
		return 0;
	case MGMT_API_NUMBER:
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0') {
			*error_r = tstr_printf("argument '%s': '%s' is not a whole number",
					       arg->name, text);
			return -1;
		}
		*value_r = json_new_int(v);
		return 0;
	case MGMT_API_BOOL:
		if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
			*value_r = json_new_bool(text[0] == 't');
			return 0;
		}
		*error_r = tstr_printf("argument '%s': '%s' is not true or false", arg->name, text);
		return -1;
	case MGMT_API_LIST:
		return mgmt_api_convert_list(arg, text, value_r, error_r);
	case MGMT_API_JSON: {
		const char *parse_error;
		if (json_parse(text, strlen(text), value_r, &parse_error) < 0) {
			*error_r = tstr_printf("argument '%s': %s", arg->name, parse_error);
			return -1;
		}
		return 0;
	}
	}
	return -1;
}

static bool mgmt_api_kind_fits(enum mgmt_api_arg_type type, const struct json *value)
{
	enum json_kind kind = json_kind(value);
	switch (type) {
	case MGMT_API_STRING:
		return kind == JSON_KIND_STRING;
	case MGMT_API_NUMBER:
		return kind == JSON_KIND_INT;
	case MGMT_API_BOOL:
		return kind == JSON_KIND_BOOL;
	case MGMT_API_JSON:
		return true;
	case MGMT_API_LIST:
		return mgmt_api_string_list(value);
	}
	return false;
}

static const struct mgmt_api_arg *mgmt_api_arg_find(const struct mgmt_api_function *f,
						    const char *name)
{
	for (int i = 0; i < MGMT_API_MAX_ARGS && f->args[i].name != NULL; i++) {
		if (strcmp(f->args[i].name, name) == 0)
			return &f->args[i];
	}
	return NULL;
}

static const char *mgmt_api_type_name(enum mgmt_api_arg_type type)
{
	static const char *const names[] = {"string", "number", "boolean", "json", "list"};
	return names[type];
}

/* Collect the raw arguments of a request as a JSON object of strings (form)
 * or of typed values (JSON body). */
static int mgmt_api_raw_args(struct http_request *req, struct json **raw_r, bool *typed_r,
			     const char **error_r)
{
	const char *body;
	size_t size;
	http_request_body(req, &body, &size);
	const char *ctype = http_request_header(req, "Content-Type");
	*typed_r = false;
	if (ctype != NULL && strncmp(ctype, "application/json", 16) == 0) {
		const char *parse_error;
		if (json_parse(body, size, raw_r, &parse_error) < 0) {
			*error_r = tstr_printf("request body: %s", parse_error);
			return -1;
		}
		if (json_kind(*raw_r) != JSON_KIND_OBJECT) {
			json_unref(raw_r);
			*error_r = "request body: expected a JSON object of arguments";
			return -1;
		}
		*typed_r = true;
		return 0;
	}
	if (size > 0 && ctype != NULL &&
	    strncmp(ctype, "application/x-www-form-urlencoded", 33) != 0) {
		*error_r = tstr_printf("unsupported Content-Type '%s': use "
				       "application/x-www-form-urlencoded or application/json",
				       ctype);
		return -1;
	}
	struct http_form_field *fields;
	size_t count;
	const char *form_error;
	if (http_form_parse(body, size, &fields, &count, &form_error) < 0) {
		*error_r = tstr_printf("request body: %s", form_error);
		return -1;
	}
	*raw_r = json_new_object();
	for (size_t i = 0; i < count; i++) {
		if (json_get(*raw_r, fields[i].name) != NULL) {
			*error_r = tstr_printf("argument '%s' given twice", fields[i].name);
			http_form_free(fields, count);
			json_unref(raw_r);
			return -1;
		}
		json_set_string(*raw_r, fields[i].name, fields[i].value);
	}
	http_form_free(fields, count);
	return 0;
}

static int mgmt_api_args(const struct mgmt_api_function *f, struct json *raw, bool typed,
			 struct json **args_r, const char **error_r)
{
	struct json *args = json_new_object();
	for (void *it = json_iter(raw); it != NULL; it = json_iter_next(raw, it)) {
		const char *name = json_iter_key(it);
		struct json *value = json_iter_value(it);
		const struct mgmt_api_arg *arg = mgmt_api_arg_find(f, name);
		if (arg == NULL) {
			*error_r = tstr_printf("%s takes no argument '%s'", f->name, name);
			json_unref(&args);
			return -1;
		}
		struct json *converted;
		if (typed && mgmt_api_kind_fits(arg->type, value)) {
			converted = json_ref(value);
		} else if (json_kind(value) == JSON_KIND_STRING) {
			if (mgmt_api_convert(arg, json_string_of(value), &converted, error_r) < 0) {
				json_unref(&args);
				return -1;
			}
		} else {
			*error_r = tstr_printf("argument '%s': expected a %s", name,
					       mgmt_api_type_name(arg->type));
			json_unref(&args);
			return -1;
		}
		json_set(args, name, converted);
	}
	for (int i = 0; i < MGMT_API_MAX_ARGS && f->args[i].name != NULL; i++) {
		if (f->args[i].required && json_get(args, f->args[i].name) == NULL) {
			*error_r =
				tstr_printf("%s: missing argument '%s' (%s)", f->name,
					    f->args[i].name, mgmt_api_type_name(f->args[i].type));
			json_unref(&args);
			return -1;
		}
	}
	*args_r = args;
	return 0;
}

/* The request's arguments checked against the function's: 0, or -1 after
 * answering 400 with the reason. */
static int mgmt_api_request_args(const struct mgmt_api_function *f, struct http_request *req,
				 struct json **args_r)
{
	struct json *raw;
	bool typed;
	const char *error = "invalid request";
	int ret = mgmt_api_raw_args(req, &raw, &typed, &error);
	if (ret == 0) {
		ret = mgmt_api_args(f, raw, typed, args_r, &error);
		json_unref(&raw);
	}
	if (ret < 0)
		mgmt_api_fail(req, 400, error);
	return ret;
}

/* ---- requests ---- */

static struct json *mgmt_api_metadata(void)
{
	struct json *list = json_new_array();
	for (size_t t = 0; t < sizeof(mgmt_api_tables) / sizeof(mgmt_api_tables[0]); t++) {
		for (const struct mgmt_api_function *f = mgmt_api_tables[t]; f->name != NULL; f++) {
			struct json *fn = json_new_object(), *args = json_new_array();
			json_set_string(fn, "name", f->name);
			json_set_string(fn, "description", f->description);
			for (int i = 0; i < MGMT_API_MAX_ARGS && f->args[i].name != NULL; i++) {
				struct json *a = json_new_object();
				json_set_string(a, "name", f->args[i].name);
				json_set_string(a, "type", mgmt_api_type_name(f->args[i].type));
				json_set_bool(a, "required", f->args[i].required);
				json_set_string(a, "description", f->args[i].description);
				json_append(args, a);
			}
			json_set(fn, "args", args);
			json_append(list, fn);
		}
	}
	return list;
}

/* The function runs with its request and how it authenticated at hand. */
static void mgmt_api_enter(struct mgmt *mgmt, struct http_request *req, const char *user,
			   enum mgmt_api_auth how)
{
	mgmt->api_request = req;
	mgmt->api_user = user;
	mgmt->api_auth = how;
}

static void mgmt_api_invoke(struct mgmt *mgmt, struct http_request *req, const char *user,
			    enum mgmt_api_auth how, const char *name)
{
	const struct mgmt_api_function *f = mgmt_api_find(name);
	if (f == NULL) {
		mgmt_api_fail(req, 404,
			      tstr_printf("unknown function '%s' (see /api/get-metadata)", name));
		return;
	}
	struct json *args, *result = NULL;
	const char *error;
	if (mgmt_api_request_args(f, req, &args) < 0)
		return;
	int ret;
	const char *context = tstr_printf("user=%s conn=%s", user, http_request_peer(req));
	if (f->start != NULL) {
		log_info(context, "API %s", name);
		mgmt_api_audit(mgmt, user, http_request_peer(req), name, args);
		struct mgmt_job *job =
			mgmt_job_create(mgmt->jobs, req, name, user, f->long_running);
		mgmt_job_set_instance(job, json_get_string(args, "instanceID"));
		mgmt_api_enter(mgmt, req, user, how);
		f->start(mgmt, args, job);
		mgmt_api_enter(mgmt, NULL, NULL, MGMT_API_AUTH_NONE);
		json_unref(&args);
		return;
	}
	mgmt_api_audit(mgmt, user, http_request_peer(req), name, args);
	mgmt_api_enter(mgmt, req, user, how);
	ret = f->run(mgmt, args, &result, &error);
	mgmt_api_enter(mgmt, NULL, NULL, MGMT_API_AUTH_NONE);
	json_unref(&args);
	if (ret < 0) {
		log_info(context, "API %s failed: %s", name, error);
		mgmt_jobs_reply(req, 200, mgmt_jobs_envelope(NULL, error));
		return;
	}
	log_debug(context, "API %s", name);
	mgmt_jobs_reply(req, 200, mgmt_jobs_envelope(result, NULL));
}

static const struct mgmt_api_function mgmt_api_job_functions[] = {
	{"get-status",
	 "Status of long work: waits until statusVersion passes lastKnownStatusVersion or the "
	 "timeout.",
	 {{"token", MGMT_API_STRING, true, "the token of the work"},
	  {"lastKnownStatusVersion", MGMT_API_NUMBER, false,
	   "the statusVersion the caller has seen"},
	  {"millisecondsTimeout", MGMT_API_NUMBER, false,
	   "how long to wait for a change (at most 60000)"}},
	 NULL,
	 NULL,
	 false},
	{"cancel-async",
	 "Cancel long work.",
	 {{"token", MGMT_API_STRING, true, "the token of the work"}},
	 NULL,
	 NULL,
	 false},
};

static void mgmt_api_job_endpoint(struct mgmt *mgmt, struct http_request *req, const char *user,
				  const char *path)
{
	const struct mgmt_api_function *f =
		&mgmt_api_job_functions[strcmp(path, "/api/get-status") == 0 ? 0 : 1];
	struct json *args;
	if (mgmt_api_request_args(f, req, &args) < 0)
		return;
	long long version = 0, timeout = 0;
	(void)json_get_int(args, "lastKnownStatusVersion", &version);
	(void)json_get_int(args, "millisecondsTimeout", &timeout);
	if (f == &mgmt_api_job_functions[0])
		mgmt_jobs_get_status(mgmt->jobs, req, json_get_string(args, "token"), version,
				     timeout, user);
	else
		mgmt_jobs_cancel(mgmt->jobs, req, json_get_string(args, "token"), user);
	json_unref(&args);
}

/* After authentication: the endpoint. user: owned by the caller. */
static void mgmt_api_dispatch(struct mgmt *mgmt, struct http_request *req, const char *user,
			      enum mgmt_api_auth how)
{
	const char *path = http_request_path(req);
	const char *method = http_request_method(req);
	if (strcmp(path, "/api/get-status") == 0 || strcmp(path, "/api/cancel-async") == 0) {
		mgmt_api_job_endpoint(mgmt, req, user, path);
		return;
	}
	if (strcmp(path, "/api/get-metadata") == 0) {
		mgmt_jobs_reply(req, 200, mgmt_jobs_envelope(mgmt_api_metadata(), NULL));
		return;
	}
	if (strncmp(path, MGMT_API_PREFIX, strlen(MGMT_API_PREFIX)) != 0) {
		mgmt_api_fail(req, 404, tstr_printf("no such API endpoint: %s", path));
		return;
	}
	if (strcmp(method, "POST") != 0) {
		http_request_add_header(req, "Allow", "POST");
		mgmt_api_fail(req, 405, "functions are invoked with POST");
		return;
	}
	mgmt_api_invoke(mgmt, req, user, how, path + strlen(MGMT_API_PREFIX));
}

static void mgmt_api_authenticated(struct mgmt *mgmt, enum mgmt_auth_result auth, unsigned int wait,
				   bool api_password, const char *error, void *ctx)
{
	struct http_request *req = ctx;
	const char *user, *password;
	if (auth != MGMT_AUTH_OK) {
		mgmt_auth_log_failure(mgmt->auth_log, http_request_peer(req), error);
		if (auth == MGMT_AUTH_THROTTLED || auth == MGMT_AUTH_BUSY) {
			http_request_add_header(req, "Retry-After", tstr_printf("%u", wait));
			mgmt_api_fail(req, auth == MGMT_AUTH_BUSY ? 503 : 429, error);
			return;
		}
		/* The Console asks for the code only now. */
		if (auth == MGMT_AUTH_MFA_REQUIRED)
			http_request_add_header(req, "X-Coffer-MFA", "required");
		/* Not to a page's script (the Console): the browser would open
		 * its own password dialog, or wait for one. */
		const char *mode = http_request_header(req, "Sec-Fetch-Mode");
		if (http_request_header(req, "X-Coffer-Console") == NULL &&
		    (mode == NULL || strcmp(mode, "navigate") == 0))
			http_request_add_header(
				req, "WWW-Authenticate",
				"Basic realm=\"Coffer Management API\", charset=\"UTF-8\"");
		mgmt_api_fail(req, 401, error);
		return;
	}
	(void)http_request_basic_auth(req, &user, &password);
	mgmt_api_dispatch(mgmt, req, user,
			  api_password ? MGMT_API_AUTH_API_PASSWORD : MGMT_API_AUTH_PASSWORD);
}

/* A request with the Console's session cookie and no Basic credentials. */
static bool mgmt_api_console_session(struct mgmt *mgmt, struct http_request *req)
{
	const char *user, *error;
	int status;
	int ret = mgmt_console_session_user(mgmt, req, &user, &status, &error);
	if (ret == 0)
		return false;
	if (ret < 0) {
		mgmt_api_fail(req, status, error);
		return true;
	}
	char *copy = mem_strdup(user);
	mgmt_api_dispatch(mgmt, req, copy, MGMT_API_AUTH_SESSION);
	mem_free(copy);
	return true;
}

void mgmt_api_handle(struct http_request *req, void *ctx)
{
	struct mgmt *mgmt = ctx;
	const char *path = http_request_path(req);
	const char *user, *password;
	/* As on the Client Access Server: browsers keep to HTTPS, and an answer
	 * is never sniffed into something it does not declare. */
	http_request_add_header(req, "Strict-Transport-Security", "max-age=31536000");
	http_request_add_header(req, "X-Content-Type-Options", "nosniff");
	if (strncmp(path, "/api/", 5) != 0) {
		if (!mgmt_branding_serve(mgmt, req) && !mgmt_console_serve(mgmt, req))
			mgmt_api_fail(req, 404, tstr_printf("no such page: %s", path));
		return;
	}
	if (!http_request_basic_auth(req, &user, &password)) {
		if (mgmt_api_console_session(mgmt, req))
			return;
		mgmt_api_authenticated(
			mgmt, MGMT_AUTH_DENIED, 0, false,
			"authentication required: a system administrator's name and password", req);
		return;
	}
	/* Argon2id runs on a worker thread; the request goes on when it is done. */
	mgmt_auth_check(mgmt, user, password, http_request_header(req, "X-Coffer-TOTP"),
			http_request_peer(req), mgmt_api_authenticated, req);
}
