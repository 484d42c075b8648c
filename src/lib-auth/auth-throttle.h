#ifndef COFFER_AUTH_THROTTLE_H
#define COFFER_AUTH_THROTTLE_H
/* auth-throttle: slowing down password guessing after failed logins.
 *
 * Contract: the caller asks auth_throttle_check() before verifying a login
 * (0 = may try now, -1 = refuse and tell the client to wait *wait_secs_r
 * seconds) and reports the outcome with auth_throttle_failure() or
 * auth_throttle_success(). The first AUTH_THROTTLE_FREE_FAILURES failures of a
 * key cost nothing; after each further failure the key must wait 1 s, then
 * 2 s, 4 s, ... up to AUTH_THROTTLE_MAX_WAIT_SECS, counted from that failure.
 * A key's record is forgotten AUTH_THROTTLE_EXPIRE_SECS after its last
 * failure, or at once on success. At most max_entries keys are remembered; a
 * new key evicts the one whose last failure is oldest. Keys are NUL-terminated
 * strings chosen by the caller, who throttles per user and per address
 * separately (e.g. "user:alice" and "ip:192.0.2.1"). `now` comes from the
 * caller (time(NULL) in daemons) and should not go backwards. Not
 * thread-safe. */
#include <time.h>

#define AUTH_THROTTLE_FREE_FAILURES 3
#define AUTH_THROTTLE_MAX_WAIT_SECS 300
#define AUTH_THROTTLE_EXPIRE_SECS (15 * 60)

struct auth_throttle;

struct auth_throttle *auth_throttle_create(unsigned int max_entries);
void auth_throttle_destroy(struct auth_throttle **t);

int auth_throttle_check(struct auth_throttle *t, const char *key, time_t now,
			unsigned int *wait_secs_r);
void auth_throttle_failure(struct auth_throttle *t, const char *key, time_t now);
void auth_throttle_success(struct auth_throttle *t, const char *key);

#endif
