#ifndef COFFER_AUTH_LRU_H
#define COFFER_AUTH_LRU_H
/* auth-lru: a bounded table from string keys to fixed-size values, ordered by
 * when each entry was last added or refreshed; the shared memory of
 * auth-throttle and auth-cache (internal to lib-auth).
 *
 * Contract: at most max_entries entries (at least 1); adding a new key to a
 * full table evicts the oldest entry. Keys are found through src/lib/hash (SipHash
 * under a random per-process key), so callers may use attacker-chosen keys (user names,
 * addresses). Values are value_size bytes, zeroed when created, and wiped when
 * removed, evicted or destroyed. Pointers returned to values stay valid until
 * the next call that adds or removes an entry. Not thread-safe. */
#include <stdbool.h>
#include <stddef.h>

struct auth_lru;

struct auth_lru *auth_lru_create(unsigned int max_entries, size_t value_size);
void auth_lru_destroy(struct auth_lru **lru);

/* The key's value, or NULL if absent. Does not change the order. */
void *auth_lru_lookup(struct auth_lru *lru, const char *key);
/* The key's value, created (zeroed, *created_r = true) if absent; in both
 * cases the entry becomes the newest. */
void *auth_lru_refresh(struct auth_lru *lru, const char *key, bool *created_r);
void auth_lru_remove(struct auth_lru *lru, const char *key);
/* The oldest entry's value (and key), or NULL if the table is empty. */
void *auth_lru_oldest(struct auth_lru *lru, const char **key_r);
unsigned int auth_lru_count(const struct auth_lru *lru);

#endif
