#include "auth-cache.h"
#include "auth-lru.h"
#include "crypto.h"
#include "mem.h"

#include <string.h>

#define AUTH_CACHE_SALT_LEN 32

struct auth_cache_entry {
	unsigned char digest[CRYPTO_SHA256_LEN];
	time_t added;
};

struct auth_cache {
	struct auth_lru *entries;
	unsigned int ttl_secs;
	unsigned char salt[AUTH_CACHE_SALT_LEN];
};

struct auth_cache *auth_cache_create(unsigned int max_entries, unsigned int ttl_secs)
{
	struct auth_cache *c = mem_new(struct auth_cache);
	c->entries = auth_lru_create(max_entries, sizeof(struct auth_cache_entry));
	c->ttl_secs = ttl_secs;
	crypto_random(c->salt, sizeof(c->salt));
	return c;
}

void auth_cache_destroy(struct auth_cache **_c)
{
	struct auth_cache *c = *_c;
	if (c == NULL)
		return;
	*_c = NULL;
	auth_lru_destroy(&c->entries);
	crypto_wipe(c->salt, sizeof(c->salt));
	mem_free(c);
}

static void auth_cache_digest(const struct auth_cache *c, const char *name, const char *password,
			      unsigned char digest_r[CRYPTO_SHA256_LEN])
{
	struct crypto_sha256_ctx *ctx = crypto_sha256_create();
	crypto_sha256_update(ctx, c->salt, sizeof(c->salt));
	/* The NUL keeps ("ab", "c") and ("a", "bc") apart. */
	crypto_sha256_update(ctx, name, strlen(name) + 1);
	crypto_sha256_update(ctx, password, strlen(password));
	crypto_sha256_finish(&ctx, digest_r);
}

static bool auth_cache_fresh(const struct auth_cache *c, const struct auth_cache_entry *e,
			     time_t now)
{
	return now >= e->added && now - e->added < (time_t)c->ttl_secs;
}

bool auth_cache_check(struct auth_cache *c, const char *name, const char *password, time_t now)
{
	struct auth_cache_entry *e = auth_lru_lookup(c->entries, name);
	if (e == NULL)
		return false;
	if (!auth_cache_fresh(c, e, now)) {
		auth_lru_remove(c->entries, name);
		return false;
	}
	unsigned char digest[CRYPTO_SHA256_LEN];
	auth_cache_digest(c, name, password, digest);
	bool match = crypto_equal(digest, e->digest, sizeof(digest));
	crypto_wipe(digest, sizeof(digest));
	return match;
}

void auth_cache_add(struct auth_cache *c, const char *name, const char *password, time_t now)
{
	/* Entries age in the order they were added: drop the stale ones first
	 * so that they, not fresh ones, make room. */
	const char *key;
	struct auth_cache_entry *e;
	while ((e = auth_lru_oldest(c->entries, &key)) != NULL && !auth_cache_fresh(c, e, now))
		auth_lru_remove(c->entries, key);
	if (c->ttl_secs == 0)
		return;
	bool created;
	e = auth_lru_refresh(c->entries, name, &created);
	auth_cache_digest(c, name, password, e->digest);
	e->added = now;
}

void auth_cache_forget(struct auth_cache *c, const char *name)
{
	auth_lru_remove(c->entries, name);
}
