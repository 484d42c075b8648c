/* hash: see hash.h. Open addressing with linear probing; removed entries
 * leave a tombstone so that iteration can remove the current entry safely;
 * the table is rebuilt when entries and tombstones fill 70 % of it. Keys are
 * hashed with SipHash-2-4 under a random per-process key. */
#include "hash.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "mem.h"

#define HASH_MIN_SLOTS 16

struct hash_slot {
	char *key; /* NULL: empty; TOMBSTONE: removed */
	void *value;
	uint64_t code;
};

struct hash {
	struct hash_slot *slots;
	size_t capacity; /* a power of two */
	size_t count;
	size_t tombstones;
	bool wipe_keys;
};

static char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

static uint64_t sip_key[2];
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

/* Once per process, also when the first tables are made by several threads
 * at a time: a key that changed under a table would lose its entries. */
static void sip_key_init(void)
{
	/* Without getrandom() (a very old kernel) the fallback still differs
	 * per process; collisions would then only cost speed. */
	if (getrandom(sip_key, sizeof(sip_key), 0) != (ssize_t)sizeof(sip_key)) {
		sip_key[0] = (uint64_t)(uintptr_t)&sip_key ^ 0x736f6d6570736575ULL;
		sip_key[1] = (uint64_t)(uintptr_t)&tombstone_mark ^ 0x646f72616e646f6dULL;
	}
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

static uint64_t load_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t siphash24(const unsigned char *in, size_t len, const uint64_t key[2])
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
	size_t whole = len - len % 8;
	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load_le64(in + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t last = (uint64_t)len << 56;
	for (size_t i = 0; i < len % 8; i++)
		last |= (uint64_t)in[whole + i] << (8 * i);
	v3 ^= last;
	SIPROUND;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

unsigned long long hash_siphash24(const void *data, size_t len, const unsigned char key[16])
{
	uint64_t k[2] = {load_le64(key), load_le64(key + 8)};
	return siphash24(data, len, k);
}

unsigned long long hash_bytes(const void *data, size_t len)
{
	pthread_once(&sip_once, sip_key_init);
	return siphash24(data, len, sip_key);
}

struct hash *hash_create(void)
{
	struct hash *hash = mem_new(struct hash);
	hash->capacity = HASH_MIN_SLOTS;
	hash->slots = mem_calloc(hash->capacity, sizeof(*hash->slots));
	return hash;
}

void hash_wipe_keys(struct hash *hash)
{
	hash->wipe_keys = true;
}

static void hash_key_free(const struct hash *hash, char *key)
{
	if (hash->wipe_keys)
		explicit_bzero(key, strlen(key));
	mem_free(key);
}

void hash_destroy(struct hash **hashp)
{
	struct hash *hash = *hashp;
	if (hash == NULL)
		return;
	for (size_t i = 0; i < hash->capacity; i++) {
		if (hash->slots[i].key != NULL && hash->slots[i].key != TOMBSTONE)
			hash_key_free(hash, hash->slots[i].key);
	}
	mem_free(hash->slots);
	mem_free(hash);
	*hashp = NULL;
}

static bool slot_live(const struct hash_slot *slot)
{
	return slot->key != NULL && slot->key != TOMBSTONE;
}

/* The slot holding key, or NULL. */
static struct hash_slot *find(const struct hash *hash, const char *key, uint64_t code)
{
	size_t mask = hash->capacity - 1;
	for (size_t i = code & mask;; i = (i + 1) & mask) {
		struct hash_slot *slot = &hash->slots[i];
		if (slot->key == NULL)
			return NULL;
		if (slot->key != TOMBSTONE && slot->code == code && strcmp(slot->key, key) == 0)
			return slot;
	}
}

static void place(struct hash *hash, char *key, void *value, uint64_t code)
{
	size_t mask = hash->capacity - 1;
	size_t i = code & mask;
	while (slot_live(&hash->slots[i]))
		i = (i + 1) & mask;
	if (hash->slots[i].key == TOMBSTONE)
		hash->tombstones--;
	hash->slots[i] = (struct hash_slot){key, value, code};
	hash->count++;
}

static void rebuild(struct hash *hash, size_t capacity)
{
	struct hash_slot *old = hash->slots;
	size_t old_capacity = hash->capacity;
	hash->slots = mem_calloc(capacity, sizeof(*hash->slots));
	hash->capacity = capacity;
	hash->count = 0;
	hash->tombstones = 0;
	for (size_t i = 0; i < old_capacity; i++) {
		if (slot_live(&old[i]))
			place(hash, old[i].key, old[i].value, old[i].code);
	}
	mem_free(old);
}

void *hash_set(struct hash *hash, const char *key, void *value)
{
	uint64_t code = hash_bytes(key, strlen(key));
	struct hash_slot *slot = find(hash, key, code);
	if (slot != NULL) {
		void *previous = slot->value;
		slot->value = value;
		return previous;
	}
	if ((hash->count + hash->tombstones + 1) * 10 > hash->capacity * 7) {
		size_t capacity = hash->capacity;
		while ((hash->count + 1) * 10 > capacity * 5)
			capacity *= 2;
		rebuild(hash, capacity);
	}
	place(hash, mem_strdup(key), value, code);
	return NULL;
}

void *hash_get(const struct hash *hash, const char *key)
{
	struct hash_slot *slot = find(hash, key, hash_bytes(key, strlen(key)));
	return slot == NULL ? NULL : slot->value;
}

static void *remove_slot(struct hash *hash, struct hash_slot *slot)
{
	void *value = slot->value;
	hash_key_free(hash, slot->key);
	slot->key = TOMBSTONE;
	slot->value = NULL;
	hash->count--;
	hash->tombstones++;
	return value;
}

void *hash_remove(struct hash *hash, const char *key)
{
	struct hash_slot *slot = find(hash, key, hash_bytes(key, strlen(key)));
	return slot == NULL ? NULL : remove_slot(hash, slot);
}

size_t hash_count(const struct hash *hash)
{
	return hash->count;
}

void hash_iter_init(struct hash_iter *iter, struct hash *hash)
{
	iter->hash = hash;
	iter->slot = 0;
}

int hash_iter_next(struct hash_iter *iter, const char **key_r, void **value_r)
{
	struct hash *hash = iter->hash;
	while (iter->slot < hash->capacity) {
		struct hash_slot *slot = &hash->slots[iter->slot++];
		if (slot_live(slot)) {
			*key_r = slot->key;
			*value_r = slot->value;
			return 1;
		}
	}
	return 0;
}

void hash_iter_remove(struct hash_iter *iter)
{
	struct hash_slot *slot = &iter->hash->slots[iter->slot - 1];
	if (slot_live(slot))
		remove_slot(iter->hash, slot);
}
