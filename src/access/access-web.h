#ifndef COFFER_ACCESS_WEB_H
#define COFFER_ACCESS_WEB_H
/* access-web: Web Access and the HTTP client API of a Client Access Server.
 *
 * Serves, on the role's HTTP listeners (certificate kind "http"):
 *   /                      the Web Access page (asks for the organisation)
 *   /_static/FILE          the page's own files (web/: HTML, CSS, JS)
 *   /INSTANCE/             the Web Access page of an instance (ID or alias)
 *   /INSTANCE/api/...      the JSON client API (docs/client-api.md)
 * Work for users goes into instances only through access_route_call().
 * Logins make a session (access-web-sessions) whose cookie is scoped to
 * /INSTANCE/; scripts use HTTP Basic with an app password instead.
 *
 * Contract: access_web_create() binds the listeners (call it while still
 * privileged, before role_daemon_start()); it returns 0 with *web_r NULL
 * when the role has no enabled HTTP listeners. Destroy it before the route:
 * calls still under way are answered into the void. The page's files come
 * from $COFFER_WEB_DIR, else the source tree's web/ when the binary runs from
 * its build directory, else (an installed binary) <datadir>/coffer/web. */
struct access_route;
struct access_web;
struct role_daemon;

int access_web_create(struct role_daemon *rd, struct access_route *route, struct access_web **web_r,
		      const char **error_r);
void access_web_destroy(struct access_web **web);

#endif
