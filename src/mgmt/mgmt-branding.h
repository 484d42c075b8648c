#ifndef COFFER_MGMT_BRANDING_H
#define COFFER_MGMT_BRANDING_H
/* mgmt-branding: the installation's product name, logo and colours.
 *
 * Kept in <config-dir>/management-branding.json (written atomically), so a
 * move of the config directory moves it. The Management API's GetBranding,
 * SetBranding and ReloadBranding (rows of mgmt_api_branding_functions) read
 * and change it; every change, and every Client Access Server's control
 * link coming up, pushes it to the Client Access Servers (SetBranding,
 * docs/protocol.md), which serve it to Web Access. The Console gets it
 * from /_branding/branding.json and /_branding/logo here. */
#include <stdbool.h>

struct http_request;
struct json;
struct mgmt;

/* Read the file (absent: the defaults). A file that does not pass the
 * checks is logged and the defaults are used. */
void mgmt_branding_load(struct mgmt *mgmt);
void mgmt_branding_free(struct mgmt *mgmt);
/* What SetBranding sends to a Client Access Server (new reference). */
struct json *mgmt_branding_push_args(struct mgmt *mgmt);
/* GET /_branding/branding.json and /_branding/logo: true if the path was
 * one of them (answered). */
bool mgmt_branding_serve(struct mgmt *mgmt, struct http_request *req);

#endif
