#include "auth-throttle.h"
#include "auth-lru.h"
#include "mem.h"
#include "tstr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

struct auth_throttle_record {
	unsigned int failures; /* with the login attempts still being checked */
	unsigned int in_flight;
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
static unsigned int auth_throttle_delay(unsigned int failures, unsigned int free_failures)
{
	if (failures <= free_failures)
		return 0;
	unsigned int doublings = failures - free_failures - 1;
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
	while ((rec = auth_lru_oldest(t->records, &key)) != NULL && auth_throttle_expired(rec, now))
		auth_lru_remove(t->records, key);
}

static int auth_throttle_check_free(struct auth_throttle *t, const char *key,
				    unsigned int free_failures, time_t now,
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
	unsigned int delay = auth_throttle_delay(rec->failures, free_failures);
	time_t allowed_at = rec->last_failure + (time_t)delay;
	if (now >= allowed_at)
		return 0;
	/* A clock that went backwards must not lock anyone out for longer
	 * than the delay itself. */
	time_t wait = allowed_at - now;
	*wait_secs_r = wait > (time_t)delay ? delay : (unsigned int)wait;
	return -1;
}

int auth_throttle_check(struct auth_throttle *t, const char *key, time_t now,
			unsigned int *wait_secs_r)
{
	return auth_throttle_check_free(t, key, AUTH_THROTTLE_FREE_FAILURES, now, wait_secs_r);
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

/* ---- logins ---- */

/* One key per address: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6
 * by its /64. */
static const char *auth_throttle_address_key(const char *address)
{
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN], bare[INET6_ADDRSTRLEN];
	size_t len = strlen(address);
	/* "[v6]" as in "[v6]:port" */
	if (len > 2 && len - 2 < sizeof(bare) && address[0] == '[' && address[len - 1] == ']') {
		memcpy(bare, address + 1, len - 2);
		bare[len - 2] = '\0';
		address = bare;
	}
	if (inet_pton(AF_INET6, address, a) != 1)
		return tstr_printf("a:%s", address);
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(a, mapped, sizeof(mapped)) == 0 &&
	    inet_ntop(AF_INET, a + 12, text, sizeof(text)) != NULL)
		return tstr_printf("a:%s", text);
	memset(a + 8, 0, 8);
	if (inet_ntop(AF_INET6, a, text, sizeof(text)) == NULL)
		return tstr_printf("a:%s", address);
	return tstr_printf("a:%s/64", text);
}

static const char *auth_throttle_pair_key(const char *name, const char *address_key)
{
	char *key = mem_printf("p:%s\n%s", address_key, name == NULL ? "" : name);
	for (char *p = key + strlen(address_key) + 3; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	const char *ret = tstr_dup(key);
	mem_free(key);
	return ret;
}

/* Refused only because attempts are still being checked: without them the
 * key would be within its free failures. */
static bool auth_throttle_only_in_flight(struct auth_throttle *t, const char *key,
					 unsigned int free_failures)
{
	const struct auth_throttle_record *rec = auth_lru_lookup(t->records, key);
	return rec != NULL && rec->in_flight > 0 && rec->failures - rec->in_flight <= free_failures;
}

static void auth_throttle_in_flight(struct auth_throttle *t, const char *key, int delta)
{
	struct auth_throttle_record *rec = auth_lru_lookup(t->records, key);
	if (rec != NULL && (delta > 0 || rec->in_flight > 0))
		rec->in_flight = (unsigned int)((int)rec->in_flight + delta);
}

int auth_throttle_login_begin(struct auth_throttle *t, const char *name, const char *address,
			      time_t now, unsigned int *wait_secs_r)
{
	const char *addr_key = auth_throttle_address_key(address);
	const char *pair_key = auth_throttle_pair_key(name, addr_key);
	unsigned int wait_addr = 0, wait_pair = 0;
	bool addr_refused =
		auth_throttle_check_free(t, addr_key, AUTH_THROTTLE_ADDRESS_FREE_FAILURES, now,
					 &wait_addr) < 0;
	bool pair_refused = auth_throttle_check_free(t, pair_key, AUTH_THROTTLE_FREE_FAILURES, now,
						     &wait_pair) < 0;
	*wait_secs_r = wait_addr > wait_pair ? wait_addr : wait_pair;
	if (addr_refused || pair_refused) {
		if ((!addr_refused || auth_throttle_only_in_flight(
					      t, addr_key, AUTH_THROTTLE_ADDRESS_FREE_FAILURES)) &&
		    (!pair_refused ||
		     auth_throttle_only_in_flight(t, pair_key, AUTH_THROTTLE_FREE_FAILURES)))
			*wait_secs_r = 0;
		return -1;
	}
	auth_throttle_failure(t, addr_key, now);
	auth_throttle_failure(t, pair_key, now);
	auth_throttle_in_flight(t, addr_key, 1);
	auth_throttle_in_flight(t, pair_key, 1);
	return 0;
}

/* Take back one counted attempt (the record's time stays). */
static void auth_throttle_take_back(struct auth_throttle *t, const char *key)
{
	struct auth_throttle_record *rec = auth_lru_lookup(t->records, key);
	if (rec == NULL)
		return;
	if (rec->failures <= 1)
		auth_lru_remove(t->records, key);
	else
		rec->failures--;
}

void auth_throttle_login_end(struct auth_throttle *t, const char *name, const char *address,
			     enum auth_throttle_outcome outcome)
{
	const char *addr_key = auth_throttle_address_key(address);
	const char *pair_key = auth_throttle_pair_key(name, addr_key);
	auth_throttle_in_flight(t, addr_key, -1);
	auth_throttle_in_flight(t, pair_key, -1);
	switch (outcome) {
	case AUTH_THROTTLE_FAILED:
		break;
	case AUTH_THROTTLE_SUCCEEDED:
		auth_throttle_success(t, pair_key);
		auth_throttle_take_back(t, addr_key);
		break;
	case AUTH_THROTTLE_NOT_CHECKED:
		auth_throttle_take_back(t, pair_key);
		auth_throttle_take_back(t, addr_key);
		break;
	}
}
