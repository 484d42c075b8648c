/* access-web-api: the JSON client API below /INSTANCE/api/ (documented in
 * docs/client-api.md): logins and sessions, HTTP Basic with app passwords,
 * CSRF checks, and the endpoints, each one instance call or a few. */
#include "access-route.h"
#include "access-web-private.h"
#include "access-web-sessions.h"
#include "auth-cache.h"
#include "auth-throttle.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "role-daemon.h"
#include "rpc.h"
#include "str.h"
#include "tstr.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* One text for every failed login: it must not tell which part was wrong. */
#define API_AUTH_FAILED "wrong organisation, user name or password"
#define API_NOT_LOGGED_IN "not logged in (or the session has ended)"

/* The HTML of a mail is shown in a frame of its own origin (sandbox), with
 * no scripts, no plugins and nothing from the network: only inline styles
 * and the message's own images (data: URLs). */
static const char api_mail_csp[] =
	"default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
	"frame-ancestors 'self'; form-action 'none'; "
	"sandbox allow-popups allow-popups-to-escape-sandbox";

/* ---- the routes: every endpoint below /INSTANCE/api/ (api_routes[]) ---- */

enum api_route_flags {
	/* answered before any login (the login itself) */
	API_ROUTE_NO_SESSION = 1 << 0,
	/* changes how the user logs in (password, MFA, app passwords): once
	 * done, the cache of verified app passwords forgets the user */
	API_ROUTE_ACCOUNT = 1 << 1,
};

/* The path's "*" segments, in order (NUL-terminated copies). */
#define API_ROUTE_MAX_ARGS 2

typedef void api_route_fn(struct web_call *call, const struct api_route *route, char *const *arg);

struct api_route {
	const char *method; /* GET also answers HEAD */
	/* below /INSTANCE/api/; "*" is one segment, given to the handler */
	const char *path;
	unsigned int flags; /* enum api_route_flags */
	api_route_fn *handler;
	/* the instance call the handler makes and the function its answer
	 * goes to; for api_route_call() with the string arguments of the JSON
	 * body named here */
	const char *call;
	const char *required[3];
	const char *optional[2];
	access_web_done_fn *done;
};

/* ---- requests ---- */

const char *access_web_api_param(struct web_call *call, const char *name)
{
	for (size_t i = 0; i < call->param_count; i++) {
		if (strcmp(call->params[i].name, name) == 0)
			return call->params[i].value;
	}
	return NULL;
}

static const char *api_body_string(struct web_call *call, const char *name)
{
	return json_get_string(call->body, name);
}

static bool api_method_is(struct web_call *call, const char *method)
{
	const char *m = http_request_method(call->req);
	return strcmp(m, method) == 0 || (strcmp(method, "GET") == 0 && strcmp(m, "HEAD") == 0);
}

/* The IP part of "ip:port" / "[ip]:port", for throttling. */
static char *api_peer_ip(struct http_request *req)
{
	const char *peer = http_request_peer(req);
	const char *colon = strrchr(peer, ':');
	size_t len = colon == NULL ? strlen(peer) : (size_t)(colon - peer);
	return mem_strndup(peer, len);
}

static const char *api_cookie(struct http_request *req, const char *name)
{
	const char *header = http_request_header(req, "Cookie");
	size_t nlen = strlen(name);
	for (const char *p = header; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end == NULL ? strlen(p) : (size_t)(end - p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
			return tstr_printf("%.*s", (int)(len - nlen - 1), p + nlen + 1);
		p = end;
	}
	return NULL;
}

/* ---- instance calls ---- */

struct api_pending {
	struct web_call *call;
	access_web_done_fn *done;
};

static void api_answer(const struct json *result, const void *blob, size_t blob_len,
		       const char *error_code, const char *error_text, void *ctx)
{
	struct api_pending *p = ctx;
	struct web_call *call = p->call;
	access_web_done_fn *done = p->done;
	mem_free(p);
	if (call->req == NULL) { /* the server is gone */
		access_web_call_free(call);
		return;
	}
	if (error_code == NULL) {
		if (call->route != NULL && (call->route->flags & API_ROUTE_ACCOUNT) != 0)
			auth_cache_forget(
				call->web->basic_cache,
				tstr_printf("%s\n%s", call->instance_id, call->user_name));
		done(call, result, blob, blob_len);
		return;
	}
	const char *code = error_code, *text = error_text;
	if (strcmp(code, "no-such-instance") == 0 || strcmp(code, "closed") == 0) {
		code = "unavailable";
		text = "the archive is not reachable at the moment; try again later";
	} else if (strcmp(code, "failed") == 0 || access_web_error_status(code) == 500) {
		log_warning(access_web_context(call), "%s: %s", code, error_text);
		code = "failed";
		text = "the request failed (the server log has the details)";
	} else if (strcmp(code, "auth-failed") == 0 && call->session_token != NULL) {
		/* The user was disabled or deleted meanwhile: the session ends. */
		(void)access_web_sessions_remove(call->web->sessions, call->session_token);
		text = API_NOT_LOGGED_IN;
	}
	access_web_call_reply_error(call, access_web_error_status(code), code, text);
}

void access_web_api_call(struct web_call *call, const char *method, struct json *args,
			 access_web_done_fn *done)
{
	if (args == NULL)
		args = json_new_object();
	if (call->user_name != NULL) {
		json_set_string(args, "userName", call->user_name);
		/* the instance checks this login privilege on every call */
		json_set_string(args, "service", call->basic ? "api" : "web");
		/* for the instance's audit log: from where */
		if (call->req != NULL && json_get(args, "remoteAddress") == NULL) {
			char *ip = api_peer_ip(call->req);
			json_set_string(args, "remoteAddress", ip);
			mem_free(ip);
		}
	}
	struct api_pending *p = mem_new(struct api_pending);
	p->call = call;
	p->done = done;
	access_route_call(call->web->route, call->instance_id, method, args, WEB_CALL_TIMEOUT_SECS,
			  api_answer, p);
}

static void api_done_json(struct web_call *call, const struct json *result, const void *blob,
			  size_t blob_len)
{
	access_web_reply_json(call->req, 200, result);
	call->req = NULL;
	access_web_call_free(call);
}

static void api_reply(struct web_call *call, int status, const struct json *json)
{
	access_web_reply_json(call->req, status, json);
	call->req = NULL;
	access_web_call_free(call);
}

/* ---- login, sessions, Basic ---- */

/* Logins are throttled per client address across names and per (name,
 * address), counted before they are checked (auth-throttle): guesses from
 * one address cannot lock the real user out from another. The name is
 * qualified by the instance, whose users are its own. */
static const char *api_throttle_name(struct web_call *call, const char *user)
{
	return tstr_printf("%s/%s", call->instance_id != NULL ? call->instance_id : call->url_name,
			   user);
}

static void api_throttle_end(struct web_call *call, const char *user,
			     enum auth_throttle_outcome outcome)
{
	char *ip = api_peer_ip(call->req);
	auth_throttle_login_end(call->web->throttle, api_throttle_name(call, user), ip, outcome);
	mem_free(ip);
}

static void api_login_failed(struct web_call *call, const char *user)
{
	api_throttle_end(call, user, AUTH_THROTTLE_FAILED);
	access_web_call_reply_error_later(call, WEB_LOGIN_FAILURE_DELAY_MSECS, 401, "auth-failed",
					  API_AUTH_FAILED);
}

/* 0 may try (the attempt is counted); -1 answered (throttled). */
static int api_throttle_begin(struct web_call *call, const char *user)
{
	unsigned int wait = 0;
	char *ip = api_peer_ip(call->req);
	int ret = auth_throttle_login_begin(call->web->throttle, api_throttle_name(call, user), ip,
					    time(NULL), &wait);
	mem_free(ip);
	if (ret < 0 && wait == 0) {
		/* others from here are being checked: not a failure (yet) */
		http_request_add_header(call->req, "Retry-After", "1");
		access_web_call_reply_error(
			call, 503, "busy", "other logins are being checked: try again in a moment");
	} else if (ret < 0) {
		http_request_add_header(call->req, "Retry-After", tstr_printf("%u", wait));
		log_info(access_web_context(call), "login throttled for %u s", wait);
		access_web_call_reply_error(
			call, 429, "throttled",
			tstr_printf("too many failed logins: try again in %u seconds", wait));
	}
	return ret;
}

/* An answer that is neither a success nor a wrong password: not counted. */
static void api_login_unchecked(struct web_call *call, const char *user, const char *what,
				const char *error_code, const char *error_text)
{
	api_throttle_end(call, user, AUTH_THROTTLE_NOT_CHECKED);
	if (strcmp(error_code, "busy") == 0 || strcmp(error_code, "throttled") == 0) {
		log_info(access_web_context(call), "%s: %s", what, error_text);
		http_request_add_header(call->req, "Retry-After", "1");
		access_web_call_reply_error(call, strcmp(error_code, "busy") == 0 ? 503 : 429,
					    error_code, error_text);
		return;
	}
	log_warning(access_web_context(call), "%s: %s: %s", what, error_code, error_text);
	access_web_call_reply_error(call, 503, "unavailable",
				    "the archive is not reachable at the moment; try again later");
}

static void api_login_done(struct web_call *call, const struct json *result, const void *blob,
			   size_t blob_len)
{
	struct access_web *web = call->web;
	const char *user = json_get_string(result, "userName");
	api_throttle_end(call, api_body_string(call, "userName"), AUTH_THROTTLE_SUCCEEDED);
	if (user == NULL)
		user = api_body_string(call, "userName");
	struct access_web_session *s;
	char *token =
		access_web_sessions_add(web->sessions, call->instance_id, user, time(NULL), &s);
	s->user_json = json_serialize(result, false);
	http_request_add_header(call->req, "Set-Cookie",
				tstr_printf("%s=%s; Path=/%s/; HttpOnly; Secure; SameSite=Strict",
					    WEB_SESSION_COOKIE, token, call->url_name));
	crypto_wipe(token, strlen(token));
	mem_free(token);
	mem_free(call->user_name);
	call->user_name = mem_strdup(user);
	log_info(access_web_context(call), "web login");
	struct json *r = json_new_object();
	json_set(r, "user", json_clone(result));
	json_set_string(r, "csrfToken", s->csrf_token);
	json_set_string(r, "instance", call->url_name);
	api_reply(call, 200, r);
	json_unref(&r);
}

static void api_login_answer(const struct json *result, const void *blob, size_t blob_len,
			     const char *error_code, const char *error_text, void *ctx)
{
	struct web_call *call = ctx;
	if (call->req == NULL) {
		access_web_call_free(call);
		return;
	}
	const char *user = api_body_string(call, "userName");
	if (error_code == NULL) {
		api_login_done(call, result, blob, blob_len);
	} else if (strcmp(error_code, "mfa-required") == 0) {
		/* Only after the password was right: ask for the code. No
		 * code was tried, so nothing was guessed. */
		api_throttle_end(call, user, AUTH_THROTTLE_NOT_CHECKED);
		access_web_call_reply_error(call, 401, "mfa-required",
					    "enter the code from your authenticator app");
	} else if (strcmp(error_code, "auth-failed") == 0 ||
		   strcmp(error_code, "no-such-instance") == 0) {
		log_info(access_web_context(call), "web login failed for '%s'", user);
		api_login_failed(call, user);
	} else {
		api_login_unchecked(call, user, "web login", error_code, error_text);
	}
}

static void api_login(struct web_call *call)
{
	const char *user = api_body_string(call, "userName");
	const char *password = api_body_string(call, "password");
	const char *totp = api_body_string(call, "totp");
	if (user == NULL || password == NULL || user[0] == '\0' || strlen(user) > 256 ||
	    strlen(password) > 1024) {
		access_web_call_reply_error(call, 400, "bad-request",
					    "userName and password: strings (totp: optional)");
		return;
	}
	if (api_throttle_begin(call, user) < 0)
		return;
	if (call->instance_id == NULL) {
		log_info(access_web_context(call), "web login failed for '%s'", user);
		api_login_failed(call, user);
		return;
	}
	struct json *args = json_new_object();
	char *ip = api_peer_ip(call->req);
	json_set_string(args, "userName", user);
	json_set_string(args, "password", password);
	json_set_string(args, "service", "web");
	json_set_string(args, "remoteAddress", ip);
	mem_free(ip);
	if (totp != NULL && totp[0] != '\0')
		json_set_string(args, "totp", totp);
	access_route_call(call->web->route, call->instance_id, "ClientLogin", args,
			  WEB_CALL_TIMEOUT_SECS, api_login_answer, call);
}

static void api_logout(struct web_call *call)
{
	if (call->session_token != NULL)
		(void)access_web_sessions_remove(call->web->sessions, call->session_token);
	http_request_add_header(
		call->req, "Set-Cookie",
		tstr_printf("%s=; Path=/%s/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
			    WEB_SESSION_COOKIE, call->url_name));
	log_info(access_web_context(call), "web logout");
	api_reply(call, 200, NULL);
}

static void api_dispatch(struct web_call *call);

static void api_basic_answer(const struct json *result, const void *blob, size_t blob_len,
			     const char *error_code, const char *error_text, void *ctx)
{
	struct web_call *call = ctx;
	if (call->req == NULL) {
		access_web_call_free(call);
		return;
	}
	if (error_code == NULL) {
		api_throttle_end(call, call->user_name, AUTH_THROTTLE_SUCCEEDED);
		auth_cache_add(call->web->basic_cache,
			       tstr_printf("%s\n%s", call->instance_id, call->user_name),
			       call->basic_password, time(NULL));
		const char *canonical = json_get_string(result, "userName");
		if (canonical != NULL) {
			mem_free(call->user_name);
			call->user_name = mem_strdup(canonical);
		}
		api_dispatch(call);
	} else if (strcmp(error_code, "auth-failed") == 0 ||
		   strcmp(error_code, "mfa-required") == 0 ||
		   strcmp(error_code, "no-such-instance") == 0) {
		log_info(access_web_context(call), "API login failed");
		api_login_failed(call, call->user_name);
	} else {
		api_login_unchecked(call, call->user_name, "API login", error_code, error_text);
	}
}

static void api_authenticate_basic(struct web_call *call, const char *user, const char *password)
{
	call->basic = true;
	call->user_name = mem_strdup(user);
	if (api_throttle_begin(call, user) < 0)
		return;
	if (call->instance_id == NULL) {
		api_login_failed(call, user);
		return;
	}
	if (auth_cache_check(call->web->basic_cache, tstr_printf("%s\n%s", call->instance_id, user),
			     password, time(NULL))) {
		api_throttle_end(call, user, AUTH_THROTTLE_SUCCEEDED);
		api_dispatch(call);
		return;
	}
	call->basic_password = mem_strdup(password);
	struct json *args = json_new_object();
	char *ip = api_peer_ip(call->req);
	json_set_string(args, "userName", user);
	json_set_string(args, "password", password);
	json_set_string(args, "service", "api");
	json_set_string(args, "remoteAddress", ip);
	mem_free(ip);
	access_route_call(call->web->route, call->instance_id, "ClientLogin", args,
			  WEB_CALL_TIMEOUT_SECS, api_basic_answer, call);
}

static void api_authenticate_cookie(struct web_call *call)
{
	struct access_web_session *s = NULL;
	const char *token = api_cookie(call->req, WEB_SESSION_COOKIE);
	if (token != NULL)
		s = access_web_sessions_find(call->web->sessions, token, time(NULL));
	if (s == NULL || call->instance_id == NULL ||
	    strcmp(s->instance_id, call->instance_id) != 0) {
		access_web_call_reply_error(call, 401, "auth-failed", API_NOT_LOGGED_IN);
		return;
	}
	if (!api_method_is(call, "GET") &&
	    !access_web_sessions_csrf_ok(s, http_request_header(call->req, WEB_CSRF_HEADER))) {
		access_web_call_reply_error(call, 403, "csrf",
					    "missing or wrong " WEB_CSRF_HEADER " header");
		return;
	}
	call->session_token = mem_strdup(token);
	call->user_name = mem_strdup(s->user_name);
	api_dispatch(call);
}

/* ---- endpoints ---- */

/* The session's user as the login described it (Basic: just the name). */
static struct json *api_session_user(struct web_call *call, struct access_web_session *s)
{
	struct json *user = NULL;
	const char *error;
	if (s != NULL && s->user_json != NULL &&
	    json_parse(s->user_json, strlen(s->user_json), &user, &error) < 0)
		user = NULL;
	if (user == NULL) {
		user = json_new_object();
		json_set_string(user, "userName", call->user_name);
	}
	return user;
}

static struct access_web_session *api_current_session(struct web_call *call)
{
	if (call->session_token == NULL)
		return NULL;
	return access_web_sessions_find(call->web->sessions, call->session_token, time(NULL));
}

static void api_done_session(struct web_call *call, const struct json *result, const void *blob,
			     size_t blob_len)
{
	struct access_web_session *s = api_current_session(call);
	struct json *r = json_new_object();
	json_set(r, "user", json_clone(result));
	json_set_string(r, "instance", call->url_name);
	if (s != NULL) {
		json_set_string(r, "csrfToken", s->csrf_token);
		mem_free(s->user_json);
		s->user_json = json_serialize(result, false);
	}
	api_reply(call, 200, r);
	json_unref(&r);
}

/* The user as the instance sees them now: privileges changed since the
 * login show at once, so the page offers only what the user may do. */
static void api_session(struct web_call *call)
{
	access_web_api_call(call, "ClientUser", NULL, api_done_session);
}

/* After MFA was turned on or off: the session's view of the user follows. */
static void api_session_set_mfa(struct web_call *call, bool on)
{
	struct access_web_session *s = api_current_session(call);
	if (s == NULL)
		return;
	struct json *user = api_session_user(call, s);
	json_set_bool(user, "mfaEnabled", on);
	mem_free(s->user_json);
	s->user_json = json_serialize(user, false);
	json_unref(&user);
}

/* A message ID: 1 to 18 digits, else -1. */
static long long api_message_id(const char *text, size_t len)
{
	if (len == 0 || len > 18)
		return -1;
	long long id = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		id = id * 10 + (text[i] - '0');
	}
	return id > 0 ? id : -1;
}

static int api_int_param(struct web_call *call, const char *name, long long min, long long max,
			 long long *value_r)
{
	const char *v = access_web_api_param(call, name);
	if (v == NULL || v[0] == '\0')
		return 0;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (*end != '\0' || n < min || n > max) {
		access_web_call_reply_error(
			call, 400, "bad-request",
			tstr_printf("%s: expected a number from %lld to %lld", name, min, max));
		return -1;
	}
	*value_r = n;
	return 1;
}

static void api_messages(struct web_call *call)
{
	struct json *args = json_new_object();
	const char *owner = access_web_api_param(call, "owner");
	const char *path = access_web_api_param(call, "path");
	const char *query = access_web_api_param(call, "query");
	long long limit = 50, offset = 0;
	if (api_int_param(call, "limit", 1, 500, &limit) < 0 ||
	    api_int_param(call, "offset", 0, 1000000000, &offset) < 0) {
		json_unref(&args);
		return;
	}
	if (owner != NULL && owner[0] != '\0' && path != NULL && path[0] != '\0') {
		json_set_string(args, "owner", owner);
		json_set_string(args, "path", path);
	}
	if (query != NULL && query[0] != '\0')
		json_set_string(args, "query", query);
	json_set_int(args, "limit", limit);
	json_set_int(args, "offset", offset);
	access_web_api_call(call, "ClientMessages", args, api_done_json);
}

static void api_html_escape(struct str *out, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		switch (*p) {
		case '<':
			str_append(out, "&lt;");
			break;
		case '>':
			str_append(out, "&gt;");
			break;
		case '&':
			str_append(out, "&amp;");
			break;
		case '"':
			str_append(out, "&quot;");
			break;
		default:
			str_append_c(out, *p);
		}
	}
}

static void api_done_html(struct web_call *call, const struct json *result, const void *blob,
			  size_t blob_len)
{
	const char *html = json_get_string(result, "html");
	const char *text = json_get_string(result, "text");
	struct str *page = str_create(4096);
	/* Links open outside the frame (and outside the sandbox's reach). */
	str_append(page, "<!DOCTYPE html><meta charset=\"utf-8\"><base target=\"_blank\">\n");
	if (html != NULL && html[0] != '\0') {
		str_append(page, html);
	} else {
		str_append(page, "<pre style=\"white-space:pre-wrap;font:inherit\">");
		api_html_escape(page, text != NULL ? text : "");
		str_append(page, "</pre>");
	}
	http_request_add_header(call->req, "Content-Security-Policy", api_mail_csp);
	http_request_add_header(call->req, "X-Frame-Options", "SAMEORIGIN");
	access_web_reply(call->req, 200, "text/html; charset=utf-8", str_c(page), str_len(page));
	str_destroy(&page);
	call->req = NULL;
	access_web_call_free(call);
}

static void api_done_view(struct web_call *call, const struct json *result, const void *blob,
			  size_t blob_len)
{
	log_info(access_web_context(call), "view message %s", call->endpoint + 9);
	api_done_json(call, result, blob, blob_len);
}

/* "type/subtype" of safe characters, else a generic type. */
static const char *api_safe_content_type(const char *type)
{
	size_t slashes = 0;
	for (const char *p = type; p != NULL && *p != '\0'; p++) {
		char c = *p;
		if (c == '/')
			slashes++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || strchr("+-.", c) != NULL))
			return "application/octet-stream";
	}
	return slashes == 1 && strlen(type) < 128 ? type : "application/octet-stream";
}

static void api_done_part(struct web_call *call, const struct json *result, const void *blob,
			  size_t blob_len)
{
	const char *filename = json_get_string(result, "filename");
	char *disposition = access_web_content_disposition(
		filename != NULL && filename[0] != '\0' ? filename : "attachment");
	http_request_add_header(call->req, "Content-Disposition", disposition);
	/* Never rendered as a page of this site, whatever it claims to be. */
	http_request_add_header(call->req, "Content-Security-Policy",
				"default-src 'none'; sandbox");
	log_info(access_web_context(call), "download attachment: %s", call->endpoint + 9);
	access_web_reply(call->req, 200,
			 api_safe_content_type(json_get_string(result, "contentType")), blob,
			 blob_len);
	mem_free(disposition);
	call->req = NULL;
	access_web_call_free(call);
}

/* Copy the named string fields of the body into args; -1 (answered) if a
 * required one is missing. */
static int api_body_args(struct web_call *call, struct json *args, const char *const *required,
			 const char *const *optional)
{
	for (const char *const *f = required; f != NULL && *f != NULL; f++) {
		const char *v = api_body_string(call, *f);
		if (v == NULL) {
			access_web_call_reply_error(call, 400, "bad-request",
						    tstr_printf("%s: missing (a string)", *f));
			return -1;
		}
		json_set_string(args, *f, v);
	}
	for (const char *const *f = optional; f != NULL && *f != NULL; f++) {
		const char *v = api_body_string(call, *f);
		if (v != NULL)
			json_set_string(args, *f, v);
	}
	return 0;
}

static void api_done_password(struct web_call *call, const struct json *result, const void *blob,
			      size_t blob_len)
{
	/* Other sessions of the user end; this one goes on. */
	size_t ended = access_web_sessions_remove_user(call->web->sessions, call->instance_id,
						       call->user_name, call->session_token);
	log_info(access_web_context(call), "password changed (%zu other session(s) ended)", ended);
	api_done_json(call, result, blob, blob_len);
}

static void api_done_logged(struct web_call *call, const struct json *result, const void *blob,
			    size_t blob_len)
{
	log_info(access_web_context(call), "%s %s", http_request_method(call->req), call->endpoint);
	api_done_json(call, result, blob, blob_len);
}

static void api_done_mfa_on(struct web_call *call, const struct json *result, const void *blob,
			    size_t blob_len)
{
	api_session_set_mfa(call, true);
	api_done_logged(call, result, blob, blob_len);
}

static void api_done_mfa_off(struct web_call *call, const struct json *result, const void *blob,
			     size_t blob_len)
{
	api_session_set_mfa(call, false);
	api_done_logged(call, result, blob, blob_len);
}

/* ---- restore to mailbox: the Management Server sends it ---- */

#define API_RESTORE_TIMEOUT_SECS 150

static void api_restore_answer(struct rpc_conn *conn, const struct json *result, const char *code,
			       const char *text, void *ctx)
{
	struct web_call *call = ctx;
	if (call->req == NULL) { /* the server is gone */
		access_web_call_free(call);
		return;
	}
	if (code == NULL) {
		log_info(access_web_context(call), "message restored to %s",
			 json_get_string(result, "sentTo"));
		api_done_json(call, result, NULL, 0);
		return;
	}
	if (strcmp(code, "closed") == 0 || strcmp(code, "timeout") == 0)
		text = "the Management Server is not reachable at the moment; try again later";
	else if (access_web_error_status(code) == 500)
		log_warning(access_web_context(call), "restore: %s: %s", code, text);
	access_web_call_reply_error(call, access_web_error_status(code), code, text);
}

static void api_restore(struct web_call *call)
{
	long long id = 0;
	const char *text = api_body_string(call, "id");
	if (json_get_int(call->body, "id", &id) != 1 && text != NULL)
		id = api_message_id(text, strlen(text));
	struct rpc_client *link = role_daemon_management_link(call->web->rd);
	struct rpc_conn *conn = link == NULL ? NULL : rpc_client_conn(link);
	if (id <= 0) {
		access_web_call_reply_error(call, 400, "bad-request", "id: a message id");
		return;
	}
	if (conn == NULL || !rpc_conn_is_ready(conn)) {
		access_web_call_reply_error(call, 503, "unavailable",
					    "the Management Server is not reachable at the moment");
		return;
	}
	struct json *args = json_new_object();
	json_set_string(args, "instanceID", call->instance_id);
	json_set_string(args, "userName", call->user_name);
	json_set_int(args, "messageID", id);
	json_set_string(args, "service", call->basic ? "api" : "web");
	rpc_conn_call(conn, "RestoreMessage", args, API_RESTORE_TIMEOUT_SECS, api_restore_answer,
		      call);
}

/* ---- the route table ---- */

/* A route that is one instance call with string arguments from the body. */
static void api_route_call(struct web_call *call, const struct api_route *route, char *const *arg)
{
	struct json *args = json_new_object();
	if (api_body_args(call, args, route->required, route->optional) < 0) {
		json_unref(&args);
		return;
	}
	access_web_api_call(call, route->call, args, route->done);
}

static void api_route_login(struct web_call *call, const struct api_route *route, char *const *arg)
{
	api_login(call);
}

static void api_route_session(struct web_call *call, const struct api_route *route,
			      char *const *arg)
{
	api_session(call);
}

static void api_route_logout(struct web_call *call, const struct api_route *route, char *const *arg)
{
	api_logout(call);
}

static void api_route_messages(struct web_call *call, const struct api_route *route,
			       char *const *arg)
{
	api_messages(call);
}

/* audit?user=&action=&since=&until=&text=&limit=&offset= (an auditor's
 * reading of the instance's audit log: the instance checks the privilege) */
static void api_route_audit(struct web_call *call, const struct api_route *route, char *const *arg)
{
	static const char *const strings[] = {"user", "action", "since", "until", "text", NULL};
	static const char *const numbers[] = {"limit", "offset", NULL};
	struct json *args = json_new_object();
	for (const char *const *name = strings; *name != NULL; name++) {
		const char *value = access_web_api_param(call, *name);
		if (value != NULL && *value != '\0')
			json_set_string(args, *name, value);
	}
	for (const char *const *name = numbers; *name != NULL; name++) {
		const char *value = access_web_api_param(call, *name);
		char *end;
		if (value == NULL || *value == '\0')
			continue;
		long long n = strtoll(value, &end, 10);
		if (*end != '\0' || n < 0) {
			json_unref(&args);
			access_web_call_reply_error(call, 400, "bad-request",
						    tstr_printf("%s must be a number", *name));
			return;
		}
		json_set_int(args, *name, n);
	}
	access_web_api_call(call, route->call, args, route->done);
}

static void api_route_restore(struct web_call *call, const struct api_route *route,
			      char *const *arg)
{
	api_restore(call);
}

static void api_route_export(struct web_call *call, const struct api_route *route, char *const *arg)
{
	access_web_export_selection(call);
}

/* messages/ID...: the message ID of arg[0], or answered 404 (-1). */
static long long api_route_message_id(struct web_call *call, char *const *arg)
{
	long long id = api_message_id(arg[0], strlen(arg[0]));
	if (id < 0)
		access_web_call_reply_error(call, 404, "not-found", "no such message");
	return id;
}

static void api_route_message(struct web_call *call, const struct api_route *route,
			      char *const *arg)
{
	long long id = api_route_message_id(call, arg);
	if (id < 0)
		return;
	struct json *args = json_new_object();
	json_set_int(args, "id", id);
	if (arg[1] != NULL && strlen(arg[1]) > 120) {
		json_unref(&args);
		access_web_call_reply_error(call, 404, "not-found", "no such endpoint");
		return;
	}
	if (arg[1] != NULL) /* parts/PART */
		json_set_string(args, "part", arg[1]);
	access_web_api_call(call, route->call, args, route->done);
}

static void api_route_raw(struct web_call *call, const struct api_route *route, char *const *arg)
{
	long long id = api_route_message_id(call, arg);
	if (id >= 0)
		access_web_export_raw(call, id);
}

static void api_route_delete_app_password(struct web_call *call, const struct api_route *route,
					  char *const *arg)
{
	struct json *args = json_new_object();
	json_set_string(args, "name", arg[0]);
	access_web_api_call(call, route->call, args, route->done);
}

#define ACCOUNT API_ROUTE_ACCOUNT

/* Every endpoint: docs/client-api.md. A request no row takes is 404 (405
 * for a NO_SESSION path asked with another method). */
static const struct api_route api_routes[] = {
	{"POST", "login", API_ROUTE_NO_SESSION, api_route_login, NULL, {NULL}, {NULL}, NULL},
	{"GET", "session", 0, api_route_session, NULL, {NULL}, {NULL}, NULL},
	{"POST", "logout", 0, api_route_logout, NULL, {NULL}, {NULL}, NULL},
	{"GET", "folders", 0, api_route_call, "ClientFolders", {NULL}, {NULL}, api_done_json},
	{"GET", "messages", 0, api_route_messages, NULL, {NULL}, {NULL}, NULL},
	{"GET",
	 "messages/*",
	 0,
	 api_route_message,
	 "ClientMessageView",
	 {NULL},
	 {NULL},
	 api_done_view},
	{"GET",
	 "messages/*/html",
	 0,
	 api_route_message,
	 "ClientMessageView",
	 {NULL},
	 {NULL},
	 api_done_html},
	{"GET", "messages/*/raw", 0, api_route_raw, NULL, {NULL}, {NULL}, NULL},
	{"GET",
	 "messages/*/parts/*",
	 0,
	 api_route_message,
	 "ClientPart",
	 {NULL},
	 {NULL},
	 api_done_part},
	{"GET", "audit", 0, api_route_audit, "ClientAuditLog", {NULL}, {NULL}, api_done_json},
	{"POST", "restore", 0, api_route_restore, NULL, {NULL}, {NULL}, NULL},
	{"GET", "export", 0, api_route_export, NULL, {NULL}, {NULL}, NULL},
	{"POST",
	 "password",
	 ACCOUNT,
	 api_route_call,
	 "ClientSetPassword",
	 {"oldPassword", "newPassword", NULL},
	 {NULL},
	 api_done_password},
	{"POST",
	 "mfa/begin",
	 0,
	 api_route_call,
	 "ClientMfaBegin",
	 {"password", NULL},
	 {NULL},
	 api_done_json},
	{"POST",
	 "mfa/activate",
	 ACCOUNT,
	 api_route_call,
	 "ClientMfaActivate",
	 {"code", NULL},
	 {NULL},
	 api_done_mfa_on},
	{"POST",
	 "mfa/disable",
	 ACCOUNT,
	 api_route_call,
	 "ClientMfaDisable",
	 {"password", "code", NULL},
	 {NULL},
	 api_done_mfa_off},
	{"GET",
	 "app-passwords",
	 0,
	 api_route_call,
	 "ClientAppPasswords",
	 {NULL},
	 {NULL},
	 api_done_json},
	{"POST",
	 "app-passwords",
	 ACCOUNT,
	 api_route_call,
	 "ClientCreateAppPassword",
	 {"password", "name", NULL},
	 {NULL},
	 api_done_logged},
	{"DELETE",
	 "app-passwords/*",
	 ACCOUNT,
	 api_route_delete_app_password,
	 "ClientDeleteAppPassword",
	 {NULL},
	 {NULL},
	 api_done_logged},
};

#undef ACCOUNT

/* Whether `path` fits `pattern`; each "*" takes one non-empty segment,
 * copied into arg[] (the caller frees them). */
static bool api_route_match(const char *pattern, const char *path, char **arg)
{
	size_t n = 0;
	while (*pattern != '\0') {
		size_t len = strcspn(path, "/");
		if (*pattern == '*') {
			if (len == 0 || n == API_ROUTE_MAX_ARGS)
				return false;
			arg[n++] = mem_strndup(path, len);
			pattern++;
			path += len;
		} else if (*pattern++ != *path++) {
			return false;
		}
	}
	return *path == '\0';
}

static void api_route_args_free(char **arg)
{
	for (size_t i = 0; i < API_ROUTE_MAX_ARGS; i++) {
		mem_free(arg[i]);
		arg[i] = NULL;
	}
}

/* The route for the call's method and endpoint; *path_known_r: some route
 * has the path (another method may take it). */
static const struct api_route *api_route_find(struct web_call *call, char **arg,
					      const struct api_route **path_known_r)
{
	*path_known_r = NULL;
	for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
		const struct api_route *r = &api_routes[i];
		bool match = api_route_match(r->path, call->endpoint, arg);
		if (match && api_method_is(call, r->method))
			return r;
		api_route_args_free(arg);
		if (match && *path_known_r == NULL)
			*path_known_r = r;
	}
	return NULL;
}

/* The route of an authenticated request. */
static void api_dispatch(struct web_call *call)
{
	char *arg[API_ROUTE_MAX_ARGS] = {NULL};
	const struct api_route *known;
	const struct api_route *r = api_route_find(call, arg, &known);
	if (r == NULL || (r->flags & API_ROUTE_NO_SESSION) != 0) {
		access_web_call_reply_error(call, 404, "not-found",
					    tstr_printf("no endpoint %s %s",
							http_request_method(call->req),
							call->endpoint));
		api_route_args_free(arg);
		return;
	}
	call->route = r;
	r->handler(call, r, arg);
	api_route_args_free(arg);
}

/* Parse the query and the JSON body; -1 if answered. */
static int api_parse_request(struct web_call *call)
{
	const char *error;
	const char *query = http_request_query(call->req);
	if (http_form_parse(query, strlen(query), &call->params, &call->param_count, &error) < 0) {
		access_web_call_reply_error(call, 400, "bad-request",
					    tstr_printf("query: %s", error));
		return -1;
	}
	const char *data;
	size_t size;
	http_request_body(call->req, &data, &size);
	if (size == 0)
		return 0;
	/* Only scripts send JSON: a form of another site cannot (CSRF). */
	const char *type = http_request_header(call->req, "Content-Type");
	if (type == NULL || strncasecmp(type, "application/json", 16) != 0) {
		access_web_call_reply_error(call, 415, "bad-request",
					    "send the body as Content-Type: application/json");
		return -1;
	}
	if (json_parse(data, size, &call->body, &error) < 0 ||
	    json_kind(call->body) != JSON_KIND_OBJECT) {
		access_web_call_reply_error(call, 400, "bad-request",
					    tstr_printf("body: expected a JSON object%s%s",
							call->body == NULL ? ": " : "",
							call->body == NULL ? error : ""));
		return -1;
	}
	return 0;
}

void access_web_api_handle(struct access_web *web, struct http_request *req, const char *url_name,
			   const char *endpoint)
{
	struct web_call *call = access_web_call_create(web, req);
	call->url_name = mem_strdup(url_name);
	call->endpoint = mem_strdup(endpoint);
	const char *id;
	if (access_route_resolve(web->route, url_name, &id) == 1)
		call->instance_id = mem_strdup(id);
	if (api_parse_request(call) < 0)
		return;
	const char *user, *password;
	char *arg[API_ROUTE_MAX_ARGS] = {NULL};
	const struct api_route *known;
	const struct api_route *r = api_route_find(call, arg, &known);
	api_route_args_free(arg);
	if (r != NULL && (r->flags & API_ROUTE_NO_SESSION) != 0) {
		/* before a login: no session to check */
		call->route = r;
		r->handler(call, r, NULL);
	} else if (r == NULL && known != NULL && (known->flags & API_ROUTE_NO_SESSION) != 0) {
		access_web_call_reply_error(call, 405, "bad-request",
					    tstr_printf("%s takes %s", known->path, known->method));
	} else if (http_request_basic_auth(req, &user, &password)) {
		api_authenticate_basic(call, user, password);
	} else {
		api_authenticate_cookie(call);
	}
}
