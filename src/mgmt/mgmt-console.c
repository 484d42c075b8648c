/* mgmt-console: the Console's page, its files and its login sessions (see
 * mgmt-console.h); the session functions are rows of the Management API. */
#include "mgmt-console.h"
#include "mgmt-api.h"
#include "mgmt-auth.h"
#include "crypto.h"
#include "file.h"
#include "hash.h"
#include "hex.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mgmt.h"
#include "tstr.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONSOLE_COOKIE "coffer_console"
#define CONSOLE_TOKEN_BYTES 32
#define CONSOLE_KEY_LEN (CRYPTO_SHA256_LEN * 2)
#define CONSOLE_MAX_SESSIONS 1000
#define CONSOLE_IDLE_SECS_DEFAULT (30 * 60)
#define CONSOLE_MAX_AGE_SECS (12 * 60 * 60)
#define CONSOLE_MAX_FILE (8 * 1024 * 1024)

/* The page may use only the server's own files; nothing may frame it. */
static const char console_csp[] =
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
	"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
	"form-action 'self'";

struct console_session {
	char key[CONSOLE_KEY_LEN + 1];
	char *user, *csrf;
	time_t created, last_used;
};

struct mgmt_console {
	struct hash *sessions; /* SHA-256 of the token (hex) -> struct console_session */
	unsigned int idle_secs;
	char *web_dir;
};

/* ---- files ---- */

/* Only a binary run from its build directory serves the source tree's web/
 * (as the Client Access Server decides for Web Access). */
static bool console_running_from_build_dir(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	size_t len = strlen(COFFER_BUILD_DIR);
	return strncmp(self, COFFER_BUILD_DIR, len) == 0 && self[len] == '/';
}

static char *console_find_dir(void)
{
	const char *env = getenv("COFFER_WEB_DIR");
	if (env != NULL && env[0] != '\0')
		return mem_strdup(env);
	struct stat st;
	char *page = mem_printf("%s/console.html", COFFER_WEB_SOURCE_DIR);
	bool source = console_running_from_build_dir() && stat(page, &st) == 0;
	mem_free(page);
	return mem_strdup(source ? COFFER_WEB_SOURCE_DIR : COFFER_WEB_INSTALL_DIR);
}

static const struct {
	const char *ext, *type;
} console_types[] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".ico", "image/x-icon"},
	{".woff2", "font/woff2"},
};

/* Plain names of the directory itself: nothing outside it can be named. */
static const char *console_file_type(const char *name)
{
	if (name[0] == '\0' || name[0] == '.' || strlen(name) > 100)
		return NULL;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return NULL;
	}
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot != NULL && i < sizeof(console_types) / sizeof(console_types[0]);
	     i++) {
		if (strcmp(dot, console_types[i].ext) == 0)
			return console_types[i].type;
	}
	return NULL;
}

static void console_reply_text(struct http_request *req, int status, const char *text)
{
	http_request_reply(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* Read at every request, so a changed file (branding) shows without a restart. */
static bool console_send_file(struct mgmt_console *console, struct http_request *req,
			      const char *name)
{
	const char *type = console_file_type(name);
	if (type == NULL)
		return false;
	char *path = mem_printf("%s/%s", console->web_dir, name);
	char *data;
	size_t len;
	const char *error;
	int ret = file_read_all(path, CONSOLE_MAX_FILE, &data, &len, &error);
	mem_free(path);
	if (ret < 0)
		return false;
	http_request_reply(req, 200, type, data, len);
	mem_free(data);
	return true;
}

bool mgmt_console_serve(struct mgmt *mgmt, struct http_request *req)
{
	const char *path = http_request_path(req);
	const char *method = http_request_method(req);
	bool page = strcmp(path, "/") == 0;
	if (!page && strncmp(path, "/_static/", 9) != 0)
		return false;
	http_request_add_header(req, "Referrer-Policy", "no-referrer");
	http_request_add_header(req, "Cross-Origin-Opener-Policy", "same-origin");
	http_request_add_header(req, "Cross-Origin-Resource-Policy", "same-origin");
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		http_request_add_header(req, "Allow", "GET, HEAD");
		console_reply_text(req, 405, "the Console's files take GET");
		return true;
	}
	if (page) {
		http_request_add_header(req, "Content-Security-Policy", console_csp);
		http_request_add_header(req, "X-Frame-Options", "DENY");
		http_request_add_header(req, "Cache-Control", "no-store");
		if (!console_send_file(mgmt->console, req, "console.html"))
			console_reply_text(req, 500, "the Management Console is not installed");
		return true;
	}
	/* Small files, revalidated so that a new version shows at once. */
	http_request_add_header(req, "Cache-Control", "no-cache");
	if (!console_send_file(mgmt->console, req, path + 9))
		console_reply_text(req, 404, "no such file");
	return true;
}

/* ---- sessions ---- */

static unsigned int console_idle_secs(void)
{
	const char *env = getenv("COFFER_CONSOLE_IDLE_SECONDS");
	char *end;
	long v = env != NULL ? strtol(env, &end, 10) : 0;
	if (env == NULL || end == env || *end != '\0' || v < 1 || v > CONSOLE_MAX_AGE_SECS)
		return CONSOLE_IDLE_SECS_DEFAULT;
	return (unsigned int)v;
}

struct mgmt_console *mgmt_console_create(void)
{
	struct mgmt_console *console = mem_new(struct mgmt_console);
	console->sessions = hash_create();
	console->idle_secs = console_idle_secs();
	console->web_dir = console_find_dir();
	return console;
}

static void console_session_free(struct console_session *s)
{
	crypto_wipe(s->csrf, strlen(s->csrf));
	mem_free(s->csrf);
	mem_free(s->user);
	mem_free(s);
}

void mgmt_console_destroy(struct mgmt_console **_console)
{
	struct mgmt_console *console = *_console;
	if (console == NULL)
		return;
	struct hash_iter it;
	const char *key;
	void *value;
	hash_iter_init(&it, console->sessions);
	while (hash_iter_next(&it, &key, &value) > 0)
		console_session_free(value);
	hash_destroy(&console->sessions);
	mem_free(console->web_dir);
	mem_free(console);
	*_console = NULL;
}

static void console_key(const char *token, char key_r[CONSOLE_KEY_LEN + 1])
{
	unsigned char hash[CRYPTO_SHA256_LEN];
	crypto_sha256(token, strlen(token), hash);
	hex_encode(hash, sizeof(hash), key_r);
}

static bool console_expired(const struct mgmt_console *console, const struct console_session *s,
			    time_t now)
{
	return now < s->created || now - s->last_used > (time_t)console->idle_secs ||
	       now - s->created > (time_t)CONSOLE_MAX_AGE_SECS;
}

/* Expired sessions go; at the limit, the least recently used one too. Runs
 * when a session is added: logins are rare, so the scan costs little. */
static void console_prune(struct mgmt_console *console, time_t now)
{
	struct hash_iter it;
	const char *key;
	void *value;
	struct console_session *oldest = NULL;
	hash_iter_init(&it, console->sessions);
	while (hash_iter_next(&it, &key, &value) > 0) {
		struct console_session *s = value;
		if (console_expired(console, s, now)) {
			hash_iter_remove(&it);
			console_session_free(s);
		} else if (oldest == NULL || s->last_used < oldest->last_used) {
			oldest = s;
		}
	}
	if (oldest != NULL && hash_count(console->sessions) >= CONSOLE_MAX_SESSIONS) {
		hash_remove(console->sessions, oldest->key);
		console_session_free(oldest);
	}
}

static const char *console_cookie(struct http_request *req)
{
	const char *header = http_request_header(req, "Cookie");
	size_t nlen = strlen(CONSOLE_COOKIE);
	for (const char *p = header; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end == NULL ? strlen(p) : (size_t)(end - p);
		if (len > nlen && strncmp(p, CONSOLE_COOKIE, nlen) == 0 && p[nlen] == '=')
			return tstr_printf("%.*s", (int)(len - nlen - 1), p + nlen + 1);
		p = end;
	}
	return NULL;
}

static struct console_session *console_lookup(struct mgmt_console *console, const char *token)
{
	if (token == NULL || strlen(token) != CONSOLE_TOKEN_BYTES * 2)
		return NULL;
	char key[CONSOLE_KEY_LEN + 1];
	console_key(token, key);
	return hash_get(console->sessions, key);
}

static bool console_csrf_ok(const struct console_session *s, const char *token)
{
	size_t len = strlen(s->csrf);
	return token != NULL && strlen(token) == len && crypto_equal(s->csrf, token, len);
}

int mgmt_console_session_user(struct mgmt *mgmt, struct http_request *req, const char **user_r,
			      int *status_r, const char **error_r)
{
	struct mgmt_console *console = mgmt->console;
	const char *token = console_cookie(req);
	if (token == NULL)
		return 0;
	time_t now = time(NULL);
	struct console_session *s = console_lookup(console, token);
	if (s != NULL && console_expired(console, s, now)) {
		hash_remove(console->sessions, s->key);
		console_session_free(s);
		s = NULL;
	}
	if (s == NULL) {
		*status_r = 401;
		*error_r = "the Console session has ended: log in again";
		return -1;
	}
	/* Every request but reading the metadata needs the token (every
	 * function is a POST and may change something); a page of another
	 * site cannot read the token, so it cannot send it. */
	bool reads_only = strcmp(http_request_method(req), "GET") == 0 &&
			  strcmp(http_request_path(req), "/api/get-metadata") == 0;
	if (!reads_only && !console_csrf_ok(s, http_request_header(req, "X-CSRF-Token"))) {
		*status_r = 403;
		*error_r = "the request lacks the Console session's CSRF token (X-CSRF-Token)";
		return -1;
	}
	/* The dashboard's polling is not the administrator at work. */
	const char *background = http_request_header(req, "X-Coffer-Background");
	if (background == NULL || strcmp(background, "1") != 0)
		s->last_used = now;
	*user_r = tstr_printf("%s", s->user);
	return 1;
}

void mgmt_console_forget(struct mgmt *mgmt, const char *user)
{
	if (mgmt->console == NULL)
		return;
	struct hash_iter it;
	const char *key;
	void *value;
	hash_iter_init(&it, mgmt->console->sessions);
	while (hash_iter_next(&it, &key, &value) > 0) {
		struct console_session *s = value;
		if (strcmp(s->user, user) == 0) {
			hash_iter_remove(&it);
			console_session_free(s);
		}
	}
}

/* ---- the API functions ---- */

static struct json *console_session_json(const struct mgmt_console *console, const char *user,
					 const char *csrf)
{
	struct json *r = json_new_object();
	json_set_string(r, "userName", user);
	if (csrf != NULL)
		json_set_string(r, "csrfToken", csrf);
	json_set_int(r, "idleSeconds", console->idle_secs);
	return r;
}

static int console_create_session(struct mgmt *mgmt, const struct json *args,
				  struct json **result_r, const char **error_r)
{
	(void)args;
	struct mgmt_console *console = mgmt->console;
	if (mgmt->api_auth != MGMT_API_AUTH_PASSWORD) {
		*error_r =
			"a Console session needs the administrator's own password (and MFA code), "
			"not an API password or another session";
		return -1;
	}
	time_t now = time(NULL);
	console_prune(console, now);
	struct console_session *s = mem_new(struct console_session);
	char *token = crypto_random_hex(CONSOLE_TOKEN_BYTES);
	console_key(token, s->key);
	s->user = mem_strdup(mgmt->api_user);
	s->csrf = crypto_random_hex(CONSOLE_TOKEN_BYTES);
	s->created = s->last_used = now;
	hash_set(console->sessions, s->key, s);
	http_request_add_header(mgmt->api_request, "Set-Cookie",
				tstr_printf("%s=%s; Path=/; HttpOnly; Secure; SameSite=Strict",
					    CONSOLE_COOKIE, token));
	crypto_wipe(token, strlen(token));
	mem_free(token);
	log_info(tstr_printf("user=%s conn=%s", s->user, http_request_peer(mgmt->api_request)),
		 "Console login");
	*result_r = console_session_json(console, s->user, s->csrf);
	return 0;
}

static int console_get_session(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			       const char **error_r)
{
	(void)args;
	if (mgmt->api_auth != MGMT_API_AUTH_SESSION) {
		*error_r = "this request carries no Console session";
		return -1;
	}
	*result_r = console_session_json(mgmt->console, mgmt->api_user, NULL);
	return 0;
}

static int console_delete_session(struct mgmt *mgmt, const struct json *args,
				  struct json **result_r, const char **error_r)
{
	(void)args;
	(void)result_r;
	if (mgmt->api_auth != MGMT_API_AUTH_SESSION) {
		*error_r = "this request carries no Console session";
		return -1;
	}
	struct console_session *s =
		console_lookup(mgmt->console, console_cookie(mgmt->api_request));
	if (s != NULL) {
		hash_remove(mgmt->console->sessions, s->key);
		console_session_free(s);
	}
	http_request_add_header(mgmt->api_request, "Set-Cookie",
				CONSOLE_COOKIE
				"=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
	log_info(tstr_printf("user=%s conn=%s", mgmt->api_user,
			     http_request_peer(mgmt->api_request)),
		 "Console logout");
	return 0;
}

const struct mgmt_api_function mgmt_api_console_functions[] = {
	{"CreateConsoleSession",
	 "Log in to the Management Console: with HTTP Basic and the administrator's password "
	 "(plus X-Coffer-TOTP once MFA is on; an API password is refused), sets the session "
	 "cookie and returns userName, csrfToken (send it as X-CSRF-Token with every request of "
	 "the session) and idleSeconds.",
	 {{0}},
	 console_create_session,
	 NULL,
	 false},
	{"GetConsoleSession",
	 "The Console session of this request: userName and idleSeconds.",
	 {{0}},
	 console_get_session,
	 NULL,
	 false},
	{"DeleteConsoleSession",
	 "Log out of the Management Console: ends this request's session and clears its cookie.",
	 {{0}},
	 console_delete_session,
	 NULL,
	 false},
	{NULL, NULL, {{0}}, NULL, NULL, false},
};
