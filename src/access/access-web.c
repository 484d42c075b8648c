/* access-web: the HTTPS side of a Client Access Server (see access-web.h):
 * listeners, routing of paths, the headers every answer carries, and the
 * life cycle of API calls. */
#include "access-web-private.h"
#include "access-web-sessions.h"
#include "auth-cache.h"
#include "auth-throttle.h"
#include "config.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "role-daemon.h"
#include "str.h"
#include "tstr.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEB_MAX_SESSIONS 20000
#define WEB_SESSION_IDLE_SECS (30 * 60)
#define WEB_SESSION_MAX_AGE_SECS (12 * 60 * 60)
#define WEB_THROTTLE_ENTRIES 20000
#define WEB_BASIC_CACHE_ENTRIES 5000
#define WEB_BASIC_CACHE_TTL_SECS 60

/* Pages and API answers may use only the server's own files; nothing may
 * frame them. */
static const char web_csp[] =
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
	"connect-src 'self'; frame-src 'self'; object-src 'none'; frame-ancestors 'none'; "
	"base-uri 'none'; form-action 'self'";

void access_web_reply(struct http_request *req, int status, const char *content_type,
		      const void *body, size_t size)
{
	http_request_reply(req, status, content_type, body, size);
}

static void web_common_headers(struct http_request *req)
{
	http_request_add_header(req, "X-Content-Type-Options", "nosniff");
	http_request_add_header(req, "Referrer-Policy", "no-referrer");
	http_request_add_header(req, "Cross-Origin-Opener-Policy", "same-origin");
	http_request_add_header(req, "Cross-Origin-Resource-Policy", "same-origin");
	http_request_add_header(req, "Strict-Transport-Security", "max-age=31536000");
}

void access_web_reply_json(struct http_request *req, int status, const struct json *json)
{
	struct json *null = json == NULL ? json_new_null() : NULL;
	char *text = json_serialize(json == NULL ? null : json, false);
	access_web_reply(req, status, "application/json; charset=utf-8", text, strlen(text));
	mem_free(text);
	json_unref(&null);
}

void access_web_reply_error(struct http_request *req, int status, const char *code,
			    const char *message)
{
	struct json *e = json_new_object(), *inner = json_new_object();
	json_set_string(inner, "code", code);
	json_set_string(inner, "message", message);
	json_set(e, "error", inner);
	access_web_reply_json(req, status, e);
	json_unref(&e);
}

int access_web_error_status(const char *code)
{
	static const struct {
		const char *code;
		int status;
	} map[] = {
		{"auth-failed", 401}, {"mfa-required", 401}, {"not-found", 404},
		{"bad-request", 400}, {"forbidden", 403},    {"csrf", 403},
		{"throttled", 429},   {"unavailable", 503},  {"timeout", 504},
		{"closed", 503},      {"frozen", 503},       {"too-large", 413},
		{"no-address", 409},  {"busy", 429},
	};
	for (size_t i = 0; code != NULL && i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(map[i].code, code) == 0)
			return map[i].status;
	}
	return 500;
}

char *access_web_content_disposition(const char *filename)
{
	/* An ASCII fallback name and the exact UTF-8 one (RFC 6266). */
	struct str *s = str_create(64);
	str_append(s, "attachment; filename=\"");
	for (const unsigned char *p = (const unsigned char *)filename; *p != '\0'; p++)
		str_append_c(s, *p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '/'
					? '_'
					: (char)*p);
	str_append(s, "\"; filename*=UTF-8''");
	char *encoded = http_form_encode_value(filename);
	str_append(s, encoded);
	mem_free(encoded);
	return str_steal(&s);
}

const char *access_web_context(const struct web_call *call)
{
	return tstr_printf("web conn=%s instance=%s user=%s", http_request_peer(call->req),
			   call->instance_id != NULL ? call->instance_id : call->url_name,
			   call->user_name != NULL ? call->user_name : "-");
}

/* ---- calls under way ---- */

struct web_call *access_web_call_create(struct access_web *web, struct http_request *req)
{
	struct web_call *call = mem_new(struct web_call);
	call->web = web;
	call->req = req;
	call->next = web->calls;
	if (web->calls != NULL)
		web->calls->prev = call;
	web->calls = call;
	return call;
}

void access_web_call_free(struct web_call *call)
{
	if (call->web != NULL) {
		if (call->prev != NULL)
			call->prev->next = call->next;
		else
			call->web->calls = call->next;
		if (call->next != NULL)
			call->next->prev = call->prev;
	}
	if (call->timer != NULL)
		event_free(call->timer);
	if (call->work_free != NULL)
		call->work_free(call->work);
	json_unref(&call->body);
	http_form_free(call->params, call->param_count);
	mem_free(call->url_name);
	mem_free(call->instance_id);
	mem_free(call->user_name);
	mem_free(call->session_token);
	if (call->basic_password != NULL) {
		crypto_wipe(call->basic_password, strlen(call->basic_password));
		mem_free(call->basic_password);
	}
	mem_free(call->endpoint);
	mem_free(call);
}

void access_web_call_reply_error(struct web_call *call, int status, const char *code,
				 const char *message)
{
	if (call->req != NULL && call->streaming) {
		log_warning(access_web_context(call), "download ended early: %s: %s", code,
			    message);
		http_request_reply_abort(call->req);
	} else if (call->req != NULL) {
		access_web_reply_error(call->req, status, code, message);
	}
	call->req = NULL;
	access_web_call_free(call);
}

struct web_later {
	int status;
	char *code, *message;
};

static void web_later_free(void *work)
{
	struct web_later *l = work;
	mem_free(l->code);
	mem_free(l->message);
	mem_free(l);
}

static void web_call_timer(evutil_socket_t fd, short what, void *ctx)
{
	struct web_call *call = ctx;
	struct web_later *l = call->work;
	access_web_call_reply_error(call, l->status, l->code, l->message);
}

void access_web_call_reply_error_later(struct web_call *call, unsigned int msecs, int status,
				       const char *code, const char *message)
{
	struct web_later *l = mem_new(struct web_later);
	l->status = status;
	l->code = mem_strdup(code);
	l->message = mem_strdup(message);
	if (call->work_free != NULL)
		call->work_free(call->work);
	call->work = l;
	call->work_free = web_later_free;
	call->timer = evtimer_new(call->web->base, web_call_timer, call);
	struct timeval tv = {msecs / 1000, (msecs % 1000) * 1000};
	evtimer_add(call->timer, &tv);
}

/* ---- routing ---- */

static bool web_instance_name_ok(const char *name, size_t len)
{
	/* IDs are [a-z0-9][a-z0-9-]{0,62}; aliases may use upper case and dots. */
	if (len == 0 || len > 128 || name[0] == '_' || name[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

static void web_handle(struct http_request *req, void *ctx)
{
	struct access_web *web = ctx;
	const char *path = http_request_path(req);
	const char *method = http_request_method(req);
	web_common_headers(req);
	if (strncmp(path, "/_static/", 9) == 0) {
		if ((strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) ||
		    !access_web_static_serve(web, req, path + 9, true))
			access_web_reply_error(req, 404, "not-found", "no such file");
		return;
	}
	if (strncmp(path, "/_branding/", 11) == 0) {
		if ((strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) ||
		    !access_web_branding_serve(web, req, path + 11))
			access_web_reply_error(req, 404, "not-found", "no such file");
		return;
	}
	/* Pages and API answers hold mail: never kept in a cache. */
	http_request_add_header(req, "Cache-Control", "no-store");
	const char *name = path + 1;
	const char *slash = strchr(name, '/');
	size_t name_len = slash == NULL ? strlen(name) : (size_t)(slash - name);
	if (name_len == 0 || (slash != NULL && slash[1] == '\0')) {
		/* "/" and "/INSTANCE/": the page, the same for every name, so
		 * it tells nobody which instances exist. */
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
			access_web_reply_error(req, 405, "bad-request", "the page takes GET");
			return;
		}
		http_request_add_header(req, "Content-Security-Policy", web_csp);
		http_request_add_header(req, "X-Frame-Options", "DENY");
		if (!access_web_static_serve(web, req, "index.html", false))
			access_web_reply_error(req, 500, "failed", "Web Access is not installed");
		return;
	}
	if (!web_instance_name_ok(name, name_len)) {
		access_web_reply_error(req, 404, "not-found", "no such page");
		return;
	}
	char *url_name = mem_strndup(name, name_len);
	if (slash == NULL) {
		char *to = mem_printf("/%s/", url_name);
		http_request_add_header(req, "Location", to);
		access_web_reply(req, 301, NULL, NULL, 0);
		mem_free(to);
	} else if (strncmp(slash, "/api/", 5) == 0) {
		access_web_api_handle(web, req, url_name, slash + 5);
	} else {
		access_web_reply_error(req, 404, "not-found", "no such page");
	}
	mem_free(url_name);
}

/* ---- life cycle ---- */

/* Only a binary run from its build directory serves the source tree's web/:
 * an installed one serves its installed files, even while the checkout it
 * was built from still exists (and may change or go away). */
static bool web_running_from_build_dir(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	size_t len = strlen(COFFER_BUILD_DIR);
	return strncmp(self, COFFER_BUILD_DIR, len) == 0 && self[len] == '/';
}

/* Connections over a limit, logged at most every 10 s: a flood would
 * otherwise fill the log. */
static void web_refused(const char *address, const char *reason, void *ctx)
{
	struct access_web *web = ctx;
	unsigned int count;
	if (log_throttle_pass(&web->refused, 10, &count))
		log_warning("web", "refused %u connection(s) over the %s limit (the last from %s)",
			    count,
			    strcmp(reason, "per-address") == 0 ? "per-address" : "total connection",
			    address);
}

static char *web_find_dir(void)
{
	const char *env = getenv("COFFER_WEB_DIR");
	if (env != NULL && env[0] != '\0')
		return mem_strdup(env);
	struct stat st;
	char *index = mem_printf("%s/index.html", COFFER_WEB_SOURCE_DIR);
	bool source = web_running_from_build_dir() && stat(index, &st) == 0;
	mem_free(index);
	return mem_strdup(source ? COFFER_WEB_SOURCE_DIR : COFFER_WEB_INSTALL_DIR);
}

int access_web_create(struct role_daemon *rd, struct access_route *route, struct access_web **web_r,
		      const char **error_r)
{
	const struct config_listener_set *l =
		&role_daemon_settings(rd)->listeners[CONFIG_KIND_HTTP];
	*web_r = NULL;
	if (!l->present || !l->enabled || l->listener_count == 0)
		return 0;
	if (crypto_init() < 0) {
		*error_r = "cannot initialise the crypto library";
		return -1;
	}
	struct tls_context *tls = role_daemon_server_tls(rd, CONFIG_KIND_HTTP, NULL, NULL, error_r);
	if (tls == NULL)
		return -1;
	struct access_web *web = mem_new(struct access_web);
	web->rd = rd;
	web->base = role_daemon_base(rd);
	web->route = route;
	web->web_dir = web_find_dir();
	web->sessions = access_web_sessions_create(WEB_MAX_SESSIONS, WEB_SESSION_IDLE_SECS,
						   WEB_SESSION_MAX_AGE_SECS);
	web->throttle = auth_throttle_create(WEB_THROTTLE_ENTRIES);
	web->basic_cache = auth_cache_create(WEB_BASIC_CACHE_ENTRIES, WEB_BASIC_CACHE_TTL_SECS);
	/* Export selections name up to 1000 IDs in the query. */
	struct http_server_settings set = {
		.max_header_size = 32 * 1024, .max_body_size = 256 * 1024, .refused = web_refused};
	web->http = http_server_create(web->base, tls, &set, web_handle, web);
	for (size_t i = 0; i < l->listener_count; i++) {
		if (http_server_listen(web->http, &l->listeners[i], error_r) < 0) {
			*error_r = tstr_printf("HTTP listener %s", *error_r);
			access_web_destroy(&web);
			return -1;
		}
	}
	log_info("web", "Web Access on %zu listener(s), files from %s", l->listener_count,
		 web->web_dir);
	*web_r = web;
	return 0;
}

void access_web_destroy(struct access_web **_web)
{
	struct access_web *web = *_web;
	if (web == NULL)
		return;
	/* Calls still waiting for an instance are answered into the void. */
	for (struct web_call *c = web->calls, *next; c != NULL; c = next) {
		next = c->next;
		c->web = NULL;
		c->req = NULL;
		/* not waiting for an instance: done */
		if (c->timer != NULL || (c->streaming && !c->waiting_instance))
			access_web_call_free(c);
	}
	http_server_destroy(&web->http);
	access_web_sessions_destroy(&web->sessions);
	auth_throttle_destroy(&web->throttle);
	auth_cache_destroy(&web->basic_cache);
	mem_free(web->web_dir);
	mem_free(web);
	*_web = NULL;
}
