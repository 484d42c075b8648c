#ifndef COFFER_ACCESS_WEB_SESSIONS_H
#define COFFER_ACCESS_WEB_SESSIONS_H
/* access-web-sessions: Web Access login sessions of one Client Access Server.
 *
 * A session is created after a successful ClientLogin and named by a random
 * token (32 bytes from lib-crypto, as hex) that only the browser holds, in
 * its session cookie; this table keeps the token's SHA-256, so a memory dump
 * shows no usable token, and finds a session by that hash in O(1) (thousands
 * of sessions cost no scan per request). Each session
 * has its own random CSRF token, which every request that changes something
 * must send back in a header.
 *
 * Contract: access_web_sessions_find() returns the live session for a token
 * and refreshes its idle time, or NULL if the token is unknown, idle for
 * longer than idle_secs, or older than max_age_secs (expired sessions are
 * dropped on the way). At most max_sessions sessions: a new one evicts the
 * least recently used. Session pointers are valid until the next add,
 * remove or find call. `now` comes from the caller. Not thread-safe. */
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct access_web_sessions;

struct access_web_session {
	char *instance_id; /* canonical ID */
	char *user_name;
	char *csrf_token;
	char *user_json; /* what the login said about the user (for the page); may be NULL */
	time_t created, last_used;
};

struct access_web_sessions *access_web_sessions_create(unsigned int max_sessions,
						       unsigned int idle_secs,
						       unsigned int max_age_secs);
void access_web_sessions_destroy(struct access_web_sessions **sessions);

/* A new session; returns its token (mem_free) and the session. */
char *access_web_sessions_add(struct access_web_sessions *sessions, const char *instance_id,
			      const char *user_name, time_t now,
			      struct access_web_session **session_r);
struct access_web_session *access_web_sessions_find(struct access_web_sessions *sessions,
						    const char *token, time_t now);
/* End the session of a token (logout); false if there was none. */
bool access_web_sessions_remove(struct access_web_sessions *sessions, const char *token);
/* End every session of a user but the one of keep_token (NULL: all of
 * them), e.g. after a password change; returns how many ended. */
size_t access_web_sessions_remove_user(struct access_web_sessions *sessions,
				       const char *instance_id, const char *user_name,
				       const char *keep_token);
size_t access_web_sessions_count(struct access_web_sessions *sessions);
/* true if `token` is this session's CSRF token (constant time). */
bool access_web_sessions_csrf_ok(const struct access_web_session *session, const char *token);

#endif
