#ifndef COFFER_AUTH_CACHE_H
#define COFFER_AUTH_CACHE_H
/* auth-cache: remembers recently verified (name, password) pairs, so that an
 * API client sending the same credentials on every request costs one Argon2id
 * verification per ttl instead of one per request.
 *
 * Contract: auth_cache_add() is called only after the password was verified
 * the slow way; auth_cache_check() is true if the same name and password were
 * added less than ttl_secs ago (and not forgotten since). Passwords are never
 * stored: an entry keeps SHA-256(per-cache random salt | name | NUL |
 * password), compared in constant time. One entry per name (a new add
 * replaces it); at most max_entries names, a new name evicting the oldest
 * add. The caller must call auth_cache_forget() when a user's password, MFA
 * settings or existence change. `now` comes from the caller; an entry added
 * in the "future" (clock went backwards) is not trusted. Not thread-safe. */
#include <stdbool.h>
#include <time.h>

struct auth_cache;

struct auth_cache *auth_cache_create(unsigned int max_entries, unsigned int ttl_secs);
void auth_cache_destroy(struct auth_cache **c);

bool auth_cache_check(struct auth_cache *c, const char *name, const char *password, time_t now);
void auth_cache_add(struct auth_cache *c, const char *name, const char *password, time_t now);
void auth_cache_forget(struct auth_cache *c, const char *name);

#endif
