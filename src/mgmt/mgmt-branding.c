/* mgmt-branding: the branding, its API functions and its files (see
 * mgmt-branding.h). */
#include "mgmt-branding.h"
#include "mgmt-api.h"
#include "mgmt-links.h"
#include "base64.h"
#include "branding.h"
#include "config.h"
#include "file.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mgmt.h"
#include "role-daemon.h"
#include "tstr.h"

#include <string.h>
#include <time.h>

#define MGMT_BRANDING_FILE "management-branding.json"
/* the base64 of the largest logo, and the rest */
#define MGMT_BRANDING_FILE_MAX (BRANDING_LOGO_MAX * 2)

/* The logo as stored: base64 text. 0 with its type (NULL when there is
 * none), or -1. */
static int mgmt_branding_logo(const struct json *b, unsigned char **data_r, size_t *size_r,
			      const char **type_r, const char **error_r)
{
	const char *text = json_get_string(b, "logo");
	*data_r = NULL;
	*size_r = 0;
	*type_r = NULL;
	if (text == NULL || text[0] == '\0')
		return 0;
	if (strlen(text) > BRANDING_LOGO_MAX / 3 * 4 + 8) {
		*error_r = "logo: larger than 256 KiB";
		return -1;
	}
	*data_r = base64_decode(text, strlen(text), size_r);
	if (*data_r == NULL) {
		*error_r = "logo: not base64 (RFC 4648, with padding)";
		return -1;
	}
	if (branding_logo_check(*data_r, *size_r, type_r, error_r) < 0) {
		mem_free(*data_r);
		*data_r = NULL;
		return -1;
	}
	return 0;
}

/* Every field of a branding object checked; the logo's type noted. */
static int mgmt_branding_check(struct json *b, const char **error_r)
{
	if (json_kind(b) != JSON_KIND_OBJECT) {
		*error_r = "not a JSON object";
		return -1;
	}
	const char *name = json_get_string(b, "productName");
	if (name != NULL && !branding_name_ok(name)) {
		*error_r = tstr_printf("productName: '%s' is not 1 to %d characters of text "
				       "without control characters, < or >",
				       name, BRANDING_NAME_MAX);
		return -1;
	}
	static const char *const colors[] = {"accentColor", "headerColor"};
	for (size_t i = 0; i < sizeof(colors) / sizeof(colors[0]); i++) {
		const char *c = json_get_string(b, colors[i]);
		if (c != NULL && !branding_color_ok(c)) {
			*error_r = tstr_printf("%s: '%s' is not a colour of the form #rrggbb",
					       colors[i], c);
			return -1;
		}
	}
	unsigned char *logo;
	size_t size;
	const char *type;
	if (mgmt_branding_logo(b, &logo, &size, &type, error_r) < 0)
		return -1;
	mem_free(logo);
	if (type != NULL) {
		json_set_string(b, "logoType", type);
		json_set_int(b, "logoBytes", (long long)size);
	} else {
		json_remove(b, "logoType");
		json_remove(b, "logoBytes");
	}
	return 0;
}

static char *mgmt_branding_path(struct mgmt *mgmt)
{
	return config_path(role_daemon_config_dir(mgmt->rd), MGMT_BRANDING_FILE);
}

/* The file's branding: 0 (absent: an empty object) or -1. */
static int mgmt_branding_read(struct mgmt *mgmt, struct json **b_r, const char **error_r)
{
	char *path = mgmt_branding_path(mgmt);
	char *text;
	size_t len;
	int ret = file_exists(path, error_r);
	if (ret == 0) {
		*b_r = json_new_object();
	} else if (ret > 0) {
		ret = file_read_all(path, MGMT_BRANDING_FILE_MAX, &text, &len, error_r);
		if (ret == 0) {
			ret = json_parse(text, len, b_r, error_r);
			mem_free(text);
		}
		if (ret == 0 && mgmt_branding_check(*b_r, error_r) < 0) {
			json_unref(b_r);
			ret = -1;
		}
		if (ret < 0)
			*error_r = tstr_printf("%s: %s", path, *error_r);
	}
	mem_free(path);
	return ret < 0 ? -1 : 0;
}

void mgmt_branding_load(struct mgmt *mgmt)
{
	const char *error;
	json_unref(&mgmt->branding);
	if (mgmt_branding_read(mgmt, &mgmt->branding, &error) < 0) {
		log_warning(NULL, "branding ignored, the defaults are used: %s", error);
		mgmt->branding = json_new_object();
	}
}

void mgmt_branding_free(struct mgmt *mgmt)
{
	json_unref(&mgmt->branding);
}

struct json *mgmt_branding_push_args(struct mgmt *mgmt)
{
	return json_clone(mgmt->branding);
}

/* What GetBranding answers, and pages get as branding.json. */
static struct json *mgmt_branding_view(const struct json *b, bool with_logo_size)
{
	struct json *v = json_new_object();
	const char *name = json_get_string(b, "productName");
	long long version = 0;
	(void)json_get_int(b, "version", &version);
	json_set_string(v, "productName", name != NULL ? name : BRANDING_DEFAULT_NAME);
	json_set_string(v, "accentColor", json_get_string(b, "accentColor"));
	json_set_string(v, "headerColor", json_get_string(b, "headerColor"));
	const char *type = json_get_string(b, "logoType");
	json_set_string(v, "logoType", type);
	json_set_string(v, "logo",
			type != NULL ? tstr_printf("/_branding/logo?v=%lld", version)
				     : "/_static/logo.svg");
	if (with_logo_size) {
		long long bytes = 0;
		(void)json_get_int(b, "logoBytes", &bytes);
		json_set_int(v, "logoBytes", bytes);
		json_set_string(v, "updatedAt", json_get_string(b, "updatedAt"));
	}
	json_set_int(v, "version", version);
	return v;
}

static int mgmt_branding_write(struct mgmt *mgmt, const struct json *b, const char **error_r)
{
	char *path = mgmt_branding_path(mgmt);
	char *text = json_serialize(b, true);
	int ret = file_write_atomic(path, text, strlen(text), 0600, error_r);
	mem_free(text);
	mem_free(path);
	return ret;
}

/* ---- API functions ---- */

static int mgmt_get_branding(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			     const char **error_r)
{
	*result_r = mgmt_branding_view(mgmt->branding, true);
	return 0;
}

static int mgmt_set_branding(struct mgmt *mgmt, const struct json *args, struct json **result_r,
			     const char **error_r)
{
	struct json *b = json_get_bool(args, "reset", false) ? json_new_object()
							     : json_clone(mgmt->branding);
	static const char *const fields[] = {"productName", "accentColor", "headerColor", "logo"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = json_get_string(args, fields[i]);
		if (v == NULL)
			continue;
		/* empty: back to the default */
		if (v[0] == '\0')
			json_remove(b, fields[i]);
		else
			json_set_string(b, fields[i], v);
	}
	if (mgmt_branding_check(b, error_r) < 0) {
		json_unref(&b);
		return -1;
	}
	long long version = 0;
	(void)json_get_int(mgmt->branding, "version", &version);
	json_set_int(b, "version", version + 1);
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	json_set_string(b, "updatedAt", stamp);
	if (mgmt_branding_write(mgmt, b, error_r) < 0) {
		json_unref(&b);
		return -1;
	}
	json_unref(&mgmt->branding);
	mgmt->branding = b;
	log_info(NULL, "branding changed (version %lld)", version + 1);
	mgmt_links_push_branding(mgmt->links);
	*result_r = mgmt_branding_view(b, true);
	return 0;
}

static int mgmt_reload_branding(struct mgmt *mgmt, const struct json *args, struct json **result_r,
				const char **error_r)
{
	struct json *b;
	if (mgmt_branding_read(mgmt, &b, error_r) < 0)
		return -1;
	/* pages see a new version even if only the file's logo changed */
	long long old = 0, version = 0;
	(void)json_get_int(mgmt->branding, "version", &old);
	(void)json_get_int(b, "version", &version);
	if (version <= old)
		json_set_int(b, "version", old + 1);
	json_unref(&mgmt->branding);
	mgmt->branding = b;
	*result_r = mgmt_branding_view(b, true);
	json_set_int(*result_r, "clientAccessServers", mgmt_links_push_branding(mgmt->links));
	return 0;
}

const struct mgmt_api_function mgmt_api_branding_functions[] = {
	{"GetBranding",
	 "The product name, colours and logo shown by the Console and Web Access (defaults "
	 "where none is set); version counts the changes.",
	 {{0}},
	 mgmt_get_branding,
	 NULL,
	 false},
	{"SetBranding",
	 "Change the branding: given arguments change, an empty one goes back to the default. "
	 "It is stored in the config directory and pushed to every Client Access Server at "
	 "once; Console and Web Access show it without a restart.",
	 {{"productName", MGMT_API_STRING, false,
	   "the product name (1 to 64 characters, no control characters, < or >)"},
	  {"accentColor", MGMT_API_STRING, false,
	   "buttons, links and focus: a colour #rrggbb (text on it is black or white, whichever "
	   "reads better)"},
	  {"headerColor", MGMT_API_STRING, false, "the top bar: a colour #rrggbb"},
	  {"logo", MGMT_API_STRING, false,
	   "the logo: base64 of a PNG or SVG image of at most 256 KiB (an SVG with scripts, "
	   "event handlers or embedded documents is refused)"},
	  {"reset", MGMT_API_BOOL, false,
	   "true: everything back to the defaults first (then the other arguments apply)"}},
	 mgmt_set_branding,
	 NULL,
	 false},
	{"ReloadBranding",
	 "Read the branding again from <config-dir>/management-branding.json (after it was "
	 "edited or copied there) and push it to every Client Access Server; a file that does "
	 "not pass the checks is refused and the current branding kept. clientAccessServers: "
	 "how many it was sent to.",
	 {{0}},
	 mgmt_reload_branding,
	 NULL,
	 false},
	{NULL},
};

/* ---- files for the Console ---- */

bool mgmt_branding_serve(struct mgmt *mgmt, struct http_request *req)
{
	const char *path = http_request_path(req);
	const char *method = http_request_method(req);
	if (strncmp(path, "/_branding/", 11) != 0)
		return false;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		http_request_add_header(req, "Allow", "GET, HEAD");
		http_request_reply(req, 405, "text/plain; charset=utf-8", "GET only\n", 9);
		return true;
	}
	http_request_add_header(req, "Cache-Control", "no-cache");
	http_request_add_header(req, "Cross-Origin-Resource-Policy", "same-origin");
	if (strcmp(path, "/_branding/branding.json") == 0) {
		struct json *v = mgmt_branding_view(mgmt->branding, false);
		char *text = json_serialize(v, false);
		http_request_reply(req, 200, "application/json; charset=utf-8", text, strlen(text));
		mem_free(text);
		json_unref(&v);
		return true;
	}
	unsigned char *logo;
	size_t size;
	const char *type, *error;
	if (strcmp(path, "/_branding/logo") == 0 &&
	    mgmt_branding_logo(mgmt->branding, &logo, &size, &type, &error) == 0 && logo != NULL) {
		/* An SVG opened by itself runs nothing and loads nothing. */
		http_request_add_header(req, "Content-Security-Policy",
					"default-src 'none'; style-src 'unsafe-inline'; sandbox");
		http_request_reply(req, 200, type, logo, size);
		mem_free(logo);
		return true;
	}
	http_request_reply(req, 404, "text/plain; charset=utf-8", "no such file\n", 13);
	return true;
}
