/* access-web-static: the files of Web Access (web/), read at every request
 * so that a changed file (branding) shows without a restart. Only plain
 * names of the directory itself are served: no subdirectories, no dot
 * files, so nothing outside it can be named. */
#include "access-web-private.h"
#include "access-branding.h"
#include "config.h"
#include "json.h"
#include "role-daemon.h"
#include "file.h"
#include "http.h"
#include "mem.h"

#include <string.h>

#define WEB_STATIC_MAX_FILE (8 * 1024 * 1024)

static const struct {
	const char *ext, *type;
} web_static_types[] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"}, /* ES modules (web/ uses .js) */
	{".css", "text/css; charset=utf-8"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".ico", "image/x-icon"},
	{".json", "application/json"},
	{".webmanifest", "application/manifest+json"},
	{".woff2", "font/woff2"},
};

static const char *web_static_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	for (size_t i = 0;
	     dot != NULL && i < sizeof(web_static_types) / sizeof(web_static_types[0]); i++) {
		if (strcmp(dot, web_static_types[i].ext) == 0)
			return web_static_types[i].type;
	}
	return NULL;
}

static bool web_static_name_ok(const char *name)
{
	if (name[0] == '\0' || name[0] == '.' || strlen(name) > 100)
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

bool access_web_static_serve(struct access_web *web, struct http_request *req, const char *name,
			     bool cacheable)
{
	const char *type = web_static_name_ok(name) ? web_static_type(name) : NULL;
	if (type == NULL)
		return false;
	char *path = mem_printf("%s/%s", web->web_dir, name);
	char *data;
	size_t len;
	const char *error;
	int ret = file_read_all(path, WEB_STATIC_MAX_FILE, &data, &len, &error);
	mem_free(path);
	if (ret < 0)
		return false;
	/* Small files; revalidated so a new version shows at once. */
	if (cacheable)
		http_request_add_header(req, "Cache-Control", "no-cache");
	access_web_reply(req, 200, type, data, len);
	mem_free(data);
	return true;
}

/* The branding the Management Server pushed (access-branding.h), read at
 * every request: its page view and its logo; the defaults before any came. */
bool access_web_branding_serve(struct access_web *web, struct http_request *req, const char *name)
{
	char *path = config_path(role_daemon_config_dir(web->rd), ACCESS_BRANDING_FILE);
	struct json *b = NULL;
	char *text;
	size_t len;
	const char *error;
	if (file_read_all(path, 2 * 1024 * 1024, &text, &len, &error) == 0) {
		if (json_parse(text, len, &b, &error) < 0)
			b = NULL;
		mem_free(text);
	}
	mem_free(path);
	if (b == NULL)
		b = json_new_object();
	bool found = true;
	http_request_add_header(req, "Cache-Control", "no-cache");
	if (strcmp(name, "branding.json") == 0) {
		struct json *v = access_branding_view(b);
		access_web_reply_json(req, 200, v);
		json_unref(&v);
	} else {
		unsigned char *logo;
		size_t size;
		const char *type;
		found = strcmp(name, "logo") == 0 &&
			access_branding_logo(b, &logo, &size, &type) == 0;
		if (found) {
			/* An SVG opened by itself runs nothing and loads nothing. */
			http_request_add_header(
				req, "Content-Security-Policy",
				"default-src 'none'; style-src 'unsafe-inline'; sandbox");
			access_web_reply(req, 200, type, logo, size);
			mem_free(logo);
		}
	}
	json_unref(&b);
	return found;
}
