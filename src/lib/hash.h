#ifndef COFFER_HASH_H
#define COFFER_HASH_H
/* hash: a table from NUL-terminated string keys to pointers.
 *
 * Contract: keys are copied in and owned by the table; values are the
 * caller's (hash_destroy() does not free them; iterate first if they need
 * freeing). Lookups, inserts and removals are O(1) on average. The hash
 * function is keyed with a per-process random seed, so keys chosen by a
 * client (user names, addresses) cannot be made to collide on purpose.
 * Iteration order is unspecified; the table must not be changed while an
 * iteration is under way, except hash_iter_remove() of the current entry. */
#include <stdbool.h>
#include <stddef.h>

struct hash;

struct hash *hash_create(void);
void hash_destroy(struct hash **hash);
/* From now on the table's copies of keys are overwritten with zeros when
 * removed or destroyed, for keys that are personal data (user names,
 * addresses) which should not linger in freed memory. */
void hash_wipe_keys(struct hash *hash);

/* Sets key to value; returns the previous value, or NULL if the key is new. */
void *hash_set(struct hash *hash, const char *key, void *value);
/* The value stored for key, or NULL. */
void *hash_get(const struct hash *hash, const char *key);
/* Removes key; returns its value, or NULL if it was not there. */
void *hash_remove(struct hash *hash, const char *key);
size_t hash_count(const struct hash *hash);

struct hash_iter {
	struct hash *hash;
	size_t slot;
};
void hash_iter_init(struct hash_iter *iter, struct hash *hash);
/* Advances to the next entry: 1 and the entry's key and value, or 0 at the end. */
int hash_iter_next(struct hash_iter *iter, const char **key_r, void **value_r);
/* Removes the entry hash_iter_next() last returned. */
void hash_iter_remove(struct hash_iter *iter);

/* The seeded 64-bit hash of len bytes, for callers that need their own keys. */
unsigned long long hash_bytes(const void *data, size_t len);
/* SipHash-2-4 of len bytes under a 16-byte key (what hash_bytes() uses). */
unsigned long long hash_siphash24(const void *data, size_t len, const unsigned char key[16]);

#endif
