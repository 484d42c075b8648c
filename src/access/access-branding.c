/* access-branding: checks and views of the pushed branding (see
 * access-branding.h). */
#include "access-branding.h"
#include "base64.h"
#include "branding.h"
#include "json.h"
#include "mem.h"
#include "tstr.h"

#include <string.h>

int access_branding_logo(const struct json *b, unsigned char **data_r, size_t *size_r,
			 const char **type_r)
{
	const char *text = json_get_string(b, "logo"), *error;
	if (text == NULL || text[0] == '\0' || strlen(text) > BRANDING_LOGO_MAX / 3 * 4 + 8)
		return -1;
	*data_r = base64_decode(text, strlen(text), size_r);
	if (*data_r == NULL)
		return -1;
	if (branding_logo_check(*data_r, *size_r, type_r, &error) < 0) {
		mem_free(*data_r);
		return -1;
	}
	return 0;
}

int access_branding_check(const struct json *b, const char **error_r)
{
	if (json_kind(b) != JSON_KIND_OBJECT) {
		*error_r = "the branding is not an object";
		return -1;
	}
	const char *name = json_get_string(b, "productName");
	if (name != NULL && !branding_name_ok(name)) {
		*error_r = "productName: not a product name";
		return -1;
	}
	static const char *const colors[] = {"accentColor", "headerColor"};
	for (size_t i = 0; i < sizeof(colors) / sizeof(colors[0]); i++) {
		const char *c = json_get_string(b, colors[i]);
		if (c != NULL && !branding_color_ok(c)) {
			*error_r = tstr_printf("%s: not a colour #rrggbb", colors[i]);
			return -1;
		}
	}
	const char *logo = json_get_string(b, "logo");
	if (logo != NULL && logo[0] != '\0') {
		unsigned char *data;
		size_t size;
		const char *type;
		if (access_branding_logo(b, &data, &size, &type) < 0) {
			*error_r = "logo: not a PNG or SVG image that passes the checks";
			return -1;
		}
		mem_free(data);
	}
	return 0;
}

struct json *access_branding_view(const struct json *b)
{
	struct json *v = json_new_object();
	const char *name = json_get_string(b, "productName");
	const char *logo = json_get_string(b, "logo");
	long long version = 0;
	(void)json_get_int(b, "version", &version);
	json_set_string(v, "productName", name != NULL ? name : BRANDING_DEFAULT_NAME);
	json_set_string(v, "accentColor", json_get_string(b, "accentColor"));
	json_set_string(v, "headerColor", json_get_string(b, "headerColor"));
	json_set_string(v, "logo",
			logo != NULL && logo[0] != '\0'
				? tstr_printf("/_branding/logo?v=%lld", version)
				: "/_static/logo.svg");
	json_set_int(v, "version", version);
	return v;
}
