#include "auth-lru.h"
#include "crypto.h"
#include "hash.h"
#include "mem.h"

#include <stdint.h>
#include <string.h>

/* The table finds an entry (lib/hash: SipHash under a per-process random
 * key, so chosen keys cannot be made to collide); the age list, oldest
 * first, says which entry a full table evicts. */
struct auth_lru_entry {
	/* Age order: older toward the head. */
	struct auth_lru_entry *older, *newer;
	char *key;
	void *value;
};

struct auth_lru {
	struct hash *entries; /* key -> struct auth_lru_entry */
	size_t value_size;
	unsigned int max_entries;
	struct auth_lru_entry *oldest, *newest;
};

struct auth_lru *auth_lru_create(unsigned int max_entries, size_t value_size)
{
	struct auth_lru *lru = mem_new(struct auth_lru);
	lru->max_entries = max_entries > 0 ? max_entries : 1;
	lru->value_size = value_size;
	lru->entries = hash_create();
	hash_wipe_keys(lru->entries);
	return lru;
}

static void auth_lru_entry_free(struct auth_lru *lru, struct auth_lru_entry *e)
{
	crypto_wipe(e->value, lru->value_size);
	crypto_wipe(e->key, strlen(e->key));
	mem_free(e->value);
	mem_free(e->key);
	mem_free(e);
}

void auth_lru_destroy(struct auth_lru **_lru)
{
	struct auth_lru *lru = *_lru;
	if (lru == NULL)
		return;
	*_lru = NULL;
	struct auth_lru_entry *e = lru->oldest;
	while (e != NULL) {
		struct auth_lru_entry *next = e->newer;
		auth_lru_entry_free(lru, e);
		e = next;
	}
	hash_destroy(&lru->entries);
	mem_free(lru);
}

static void auth_lru_unlink_age(struct auth_lru *lru, struct auth_lru_entry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		lru->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		lru->newest = e->older;
	e->older = e->newer = NULL;
}

static void auth_lru_link_newest(struct auth_lru *lru, struct auth_lru_entry *e)
{
	e->older = lru->newest;
	e->newer = NULL;
	if (lru->newest != NULL)
		lru->newest->newer = e;
	else
		lru->oldest = e;
	lru->newest = e;
}

void *auth_lru_lookup(struct auth_lru *lru, const char *key)
{
	struct auth_lru_entry *e = hash_get(lru->entries, key);
	return e == NULL ? NULL : e->value;
}

void auth_lru_remove(struct auth_lru *lru, const char *key)
{
	struct auth_lru_entry *e = hash_remove(lru->entries, key);
	if (e == NULL)
		return;
	auth_lru_unlink_age(lru, e);
	auth_lru_entry_free(lru, e);
}

void *auth_lru_refresh(struct auth_lru *lru, const char *key, bool *created_r)
{
	struct auth_lru_entry *e = hash_get(lru->entries, key);
	if (e != NULL) {
		auth_lru_unlink_age(lru, e);
		auth_lru_link_newest(lru, e);
		*created_r = false;
		return e->value;
	}
	if (hash_count(lru->entries) >= lru->max_entries)
		auth_lru_remove(lru, lru->oldest->key);
	e = mem_new(struct auth_lru_entry);
	e->key = mem_strdup(key);
	e->value = mem_zalloc(lru->value_size > 0 ? lru->value_size : 1);
	hash_set(lru->entries, key, e);
	auth_lru_link_newest(lru, e);
	*created_r = true;
	return e->value;
}

void *auth_lru_oldest(struct auth_lru *lru, const char **key_r)
{
	if (lru->oldest == NULL)
		return NULL;
	if (key_r != NULL)
		*key_r = lru->oldest->key;
	return lru->oldest->value;
}

unsigned int auth_lru_count(const struct auth_lru *lru)
{
	return (unsigned int)hash_count(lru->entries);
}
