#ifndef COFFER_ACCESS_BRANDING_H
#define COFFER_ACCESS_BRANDING_H
/* access-branding: the branding the Management Server pushes (SetBranding),
 * kept in <config-dir>/ACCESS_BRANDING_FILE as it was sent:
 * {version, productName, accentColor, headerColor, logo (base64), logoType}.
 * access-main stores it; Web Access serves it (access-web-static.c). */
#include <stddef.h>

#define ACCESS_BRANDING_FILE "client-access-server-branding.json"

struct json;

/* The fields checked (src/lib/branding.h): 0, or -1 with *error_r. */
int access_branding_check(const struct json *b, const char **error_r);
/* The logo decoded and checked: 0 with *data_r (mem_free()) and *type_r,
 * or -1 when there is none or it does not pass. */
int access_branding_logo(const struct json *b, unsigned char **data_r, size_t *size_r,
			 const char **type_r);
/* What pages get as /_branding/branding.json (new reference). */
struct json *access_branding_view(const struct json *b);

#endif
