#include "auth-throttle.h"
#include "auth-lru.h"
#include "mem.h"

#include <stdbool.h>

struct auth_throttle_record {
	unsigned int failures;
	time_t last_failure;
};

struct auth_throttle {
	struct auth_lru *records;
};

struct auth_throttle *auth_throttle_create(unsigned int max_entries)
{
	struct auth_throttle *t = mem_new(struct auth_throttle);
	t->records = auth_lru_create(max_entries, sizeof(struct auth_throttle_record));
	return t;
}

void auth_throttle_destroy(struct auth_throttle **_t)
{
	struct auth_throttle *t = *_t;
	if (t == NULL)
		return;
	*_t = NULL;
	auth_lru_destroy(&t->records);
	mem_free(t);
}

static bool auth_throttle_expired(const struct auth_throttle_record *rec, time_t now)
{
	return now - rec->last_failure >= AUTH_THROTTLE_EXPIRE_SECS;
}

/* Seconds to wait after the last failure. */
static unsigned int auth_throttle_delay(unsigned int failures)
{
	if (failures <= AUTH_THROTTLE_FREE_FAILURES)
		return 0;
	unsigned int doublings = failures - AUTH_THROTTLE_FREE_FAILURES - 1;
	if (doublings >= 9) /* 2^9 = 512 > 300 */
		return AUTH_THROTTLE_MAX_WAIT_SECS;
	unsigned int delay = 1u << doublings;
	return delay < AUTH_THROTTLE_MAX_WAIT_SECS ? delay : AUTH_THROTTLE_MAX_WAIT_SECS;
}

/* Records age in the order of their last failure, so expired ones are at
 * the old end. */
static void auth_throttle_prune(struct auth_throttle *t, time_t now)
{
	const char *key;
	struct auth_throttle_record *rec;
	while ((rec = auth_lru_oldest(t->records, &key)) != NULL &&
	       auth_throttle_expired(rec, now))
		auth_lru_remove(t->records, key);
}

int auth_throttle_check(struct auth_throttle *t, const char *key, time_t now,
			unsigned int *wait_secs_r)
{
	struct auth_throttle_record *rec = auth_lru_lookup(t->records, key);
	*wait_secs_r = 0;
	if (rec == NULL)
		return 0;
	if (auth_throttle_expired(rec, now)) {
		auth_lru_remove(t->records, key);
		return 0;
	}
	unsigned int delay = auth_throttle_delay(rec->failures);
	time_t allowed_at = rec->last_failure + (time_t)delay;
	if (now >= allowed_at)
		return 0;
	/* A clock that went backwards must not lock anyone out for longer
	 * than the delay itself. */
	time_t wait = allowed_at - now;
	*wait_secs_r = wait > (time_t)delay ? delay : (unsigned int)wait;
	return -1;
}

void auth_throttle_failure(struct auth_throttle *t, const char *key, time_t now)
{
	auth_throttle_prune(t, now);
	bool created;
	struct auth_throttle_record *rec = auth_lru_refresh(t->records, key, &created);
	if (!created && auth_throttle_expired(rec, now))
		rec->failures = 0;
	if (rec->failures < 1000)
		rec->failures++;
	rec->last_failure = now;
}

void auth_throttle_success(struct auth_throttle *t, const char *key)
{
	auth_lru_remove(t->records, key);
}
