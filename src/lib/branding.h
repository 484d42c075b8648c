#ifndef COFFER_BRANDING_H
#define COFFER_BRANDING_H
/* branding: what an installation's branding may hold, checked the same way
 * by the Management Server (SetBranding, ReloadBranding) and the Client
 * Access Servers it pushes the branding to.
 *
 * Contract: every check returns true or false / 0 or -1 with *error_r (a
 * static string or a tstr); nothing is kept. */
#include <stdbool.h>
#include <stddef.h>

#define BRANDING_NAME_MAX 64
#define BRANDING_LOGO_MAX (256 * 1024)
#define BRANDING_DEFAULT_NAME "Coffer"

/* 1..BRANDING_NAME_MAX bytes of UTF-8 text without control characters
 * and without < or > (the name is shown as text, never as HTML, but it
 * also goes into titles and logs). */
bool branding_name_ok(const char *name);
/* "#rrggbb" (hex digits of either case). */
bool branding_color_ok(const char *color);
/* A logo: a PNG (signature, IHDR, at most 4096 x 4096 pixels) or an SVG
 * (UTF-8 text with an <svg> element and none of: scripts, event handler
 * attributes, javascript: URLs, foreignObject, DOCTYPE or ENTITY
 * declarations). *type_r: "image/png" or "image/svg+xml". */
int branding_logo_check(const unsigned char *data, size_t size, const char **type_r,
			const char **error_r);

#endif
