#include "auth-lru.h"
#include "crypto.h"
#include "mem.h"

#include <stdint.h>
#include <string.h>

struct auth_lru_entry {
	struct auth_lru_entry *bucket_next;
	/* Age order: older toward the head. */
	struct auth_lru_entry *older, *newer;
	uint64_t hash;
	char *key;
	void *value;
};

struct auth_lru {
	unsigned char hash_key[CRYPTO_SIPHASH_KEY_LEN];
	struct auth_lru_entry **buckets;
	size_t bucket_mask;
	size_t value_size;
	unsigned int max_entries, count;
	struct auth_lru_entry *oldest, *newest;
};

struct auth_lru *auth_lru_create(unsigned int max_entries, size_t value_size)
{
	struct auth_lru *lru = mem_new(struct auth_lru);
	lru->max_entries = max_entries > 0 ? max_entries : 1;
	lru->value_size = value_size;
	size_t nbuckets = 16;
	while (nbuckets < lru->max_entries)
		nbuckets *= 2;
	lru->buckets = mem_calloc(nbuckets, sizeof(*lru->buckets));
	lru->bucket_mask = nbuckets - 1;
	crypto_random(lru->hash_key, sizeof(lru->hash_key));
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
	crypto_wipe(lru->hash_key, sizeof(lru->hash_key));
	mem_free(lru->buckets);
	mem_free(lru);
}

static uint64_t auth_lru_hash(const struct auth_lru *lru, const char *key)
{
	return crypto_siphash(lru->hash_key, key, strlen(key));
}

static struct auth_lru_entry **auth_lru_find(struct auth_lru *lru, const char *key, uint64_t hash)
{
	struct auth_lru_entry **p = &lru->buckets[hash & lru->bucket_mask];
	while (*p != NULL && ((*p)->hash != hash || strcmp((*p)->key, key) != 0))
		p = &(*p)->bucket_next;
	return p;
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
	struct auth_lru_entry *e = *auth_lru_find(lru, key, auth_lru_hash(lru, key));
	return e == NULL ? NULL : e->value;
}

void auth_lru_remove(struct auth_lru *lru, const char *key)
{
	struct auth_lru_entry **p = auth_lru_find(lru, key, auth_lru_hash(lru, key));
	struct auth_lru_entry *e = *p;
	if (e == NULL)
		return;
	*p = e->bucket_next;
	auth_lru_unlink_age(lru, e);
	auth_lru_entry_free(lru, e);
	lru->count--;
}

void *auth_lru_refresh(struct auth_lru *lru, const char *key, bool *created_r)
{
	uint64_t hash = auth_lru_hash(lru, key);
	struct auth_lru_entry *e = *auth_lru_find(lru, key, hash);
	if (e != NULL) {
		auth_lru_unlink_age(lru, e);
		auth_lru_link_newest(lru, e);
		*created_r = false;
		return e->value;
	}
	if (lru->count >= lru->max_entries)
		auth_lru_remove(lru, lru->oldest->key);
	e = mem_new(struct auth_lru_entry);
	e->hash = hash;
	e->key = mem_strdup(key);
	e->value = mem_zalloc(lru->value_size > 0 ? lru->value_size : 1);
	struct auth_lru_entry **bucket = &lru->buckets[hash & lru->bucket_mask];
	e->bucket_next = *bucket;
	*bucket = e;
	auth_lru_link_newest(lru, e);
	lru->count++;
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
	return lru->count;
}
