#ifndef COFFER_MGMT_CONSOLE_H
#define COFFER_MGMT_CONSOLE_H
/* mgmt-console: the Management Console on the Management Server's HTTPS
 * listener, beside the Management API (docs/console.md).
 *
 *   GET /                 the Console's page (web/console.html), strict CSP
 *   GET /_static/NAME     its files (web/, the same directory as Web Access)
 *
 * The Console is a client of the Management API like `coffer api`: it logs
 * in with CreateConsoleSession (HTTP Basic with the administrator's password,
 * plus the TOTP code once MFA is on; never an API password), which sets an
 * HttpOnly, Secure, SameSite=Strict session cookie and returns a CSRF token.
 * Every later API request from the Console carries the cookie, and the CSRF
 * token in X-CSRF-Token on every POST (every function is a POST); a session
 * ends after COFFER_CONSOLE_IDLE_SECONDS (default 1800) without a request
 * the administrator made (requests sent with "X-Coffer-Background: 1", such
 * as the dashboard's polling, do not count), after 12 hours in any case, at
 * DeleteConsoleSession, and when the administrator changes (password, MFA,
 * deletion: mgmt_console_forget()). Sessions live in memory only: a
 * restarted Management Server asks everyone to log in again. The table
 * keeps each token's SHA-256, never the token. */
#include <stdbool.h>

struct http_request;
struct mgmt;
struct mgmt_console;

struct mgmt_console *mgmt_console_create(void);
void mgmt_console_destroy(struct mgmt_console **console);

/* Serves the page or a static file if the path names one (true), else false
 * (the caller answers). */
bool mgmt_console_serve(struct mgmt *mgmt, struct http_request *req);

/* The administrator of the request's Console session: 1 with *user_r (valid
 * during the request), 0 if the request carries no session cookie, -1 with
 * *status_r (401 unknown or expired session, 403 CSRF token missing or
 * wrong) and *error_r. */
int mgmt_console_session_user(struct mgmt *mgmt, struct http_request *req, const char **user_r,
			      int *status_r, const char **error_r);

/* An administrator changed or was deleted: end their sessions. */
void mgmt_console_forget(struct mgmt *mgmt, const char *user);

#endif
