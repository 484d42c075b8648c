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
 * thread-safe.
 *
 * Logins (auth_throttle_login_*) use that per client address across all
 * names, and per (name, address) pair, never per name alone: guesses from
 * one address cannot lock the real user out from another. An attempt is
 * counted when it begins, before the password is checked, so concurrent
 * guesses beyond the limit are refused without being checked; when it ends,
 * a success forgets the pair and takes back the address's count for this
 * attempt, and an attempt that could not be checked (the server was busy or
 * unreachable) takes back both counts. A pair gets
 * AUTH_THROTTLE_FREE_FAILURES free failures, an address (shared by many
 * users behind NAT) AUTH_THROTTLE_ADDRESS_FREE_FAILURES. IPv6 addresses are
 * throttled per /64, the smallest block one subscriber usually gets. */
#include <time.h>

#define AUTH_THROTTLE_FREE_FAILURES 3
#define AUTH_THROTTLE_MAX_WAIT_SECS 300
#define AUTH_THROTTLE_EXPIRE_SECS (15 * 60)
#define AUTH_THROTTLE_ADDRESS_FREE_FAILURES 10

struct auth_throttle;

struct auth_throttle *auth_throttle_create(unsigned int max_entries);
void auth_throttle_destroy(struct auth_throttle **t);

int auth_throttle_check(struct auth_throttle *t, const char *key, time_t now,
			unsigned int *wait_secs_r);
void auth_throttle_failure(struct auth_throttle *t, const char *key, time_t now);
void auth_throttle_success(struct auth_throttle *t, const char *key);

enum auth_throttle_outcome {
	AUTH_THROTTLE_FAILED,      /* the check was made and refused: stays counted */
	AUTH_THROTTLE_SUCCEEDED,   /* forget the pair, take back the address's count */
	AUTH_THROTTLE_NOT_CHECKED, /* busy, unreachable, error: take back both counts */
};

/* Before checking a login of `name` (compared without case) from
 * `address` (an IP address without port; other text is used as is):
 * 0 = check it (the attempt is now counted), -1 = refuse it unchecked (not
 * counted) and tell the client to wait *wait_secs_r seconds. *wait_secs_r
 * is 0 when only attempts still being checked fill the free failures (a
 * mail client opening several connections at once): "try again in a
 * moment", not "too many failed logins"; those attempts may well succeed.
 * Every 0 must be followed by exactly one auth_throttle_login_end(). */
int auth_throttle_login_begin(struct auth_throttle *t, const char *name, const char *address,
			      time_t now, unsigned int *wait_secs_r);
void auth_throttle_login_end(struct auth_throttle *t, const char *name, const char *address,
			     enum auth_throttle_outcome outcome);

#endif
