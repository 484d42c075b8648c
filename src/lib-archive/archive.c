#include "archive-private.h"
#include "archive-compact.h"
#include "file.h"
#include "hex.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ARCHIVE_KEY_FILE_LEN (CRYPTO_KEY_LEN * 2 + 1)

void archive_hash_hex(const unsigned char hash[RECORD_HASH_LEN], char out[RECORD_HASH_LEN * 2 + 1])
{
	hex_encode(hash, RECORD_HASH_LEN, out);
}

int archive_key_file_read(const char *path, unsigned char master[CRYPTO_KEY_LEN],
			  const char **error_r)
{
	char *data;
	size_t len;
	if (file_read_all(path, 4096, &data, &len, error_r) < 0)
		return -1;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	ssize_t n = hex_decode(data, master, CRYPTO_KEY_LEN);
	crypto_wipe(data, len);
	mem_free(data);
	if (n != CRYPTO_KEY_LEN) {
		*error_r = tstr_printf("key file %s: expected %d hex digits", path,
				       CRYPTO_KEY_LEN * 2);
		return -1;
	}
	return 0;
}

int archive_key_file_create(const char *path, const char **error_r)
{
	unsigned char key[CRYPTO_KEY_LEN];
	char hex[CRYPTO_KEY_LEN * 2 + 2];
	crypto_key_generate(key);
	hex_encode(key, sizeof(key), hex);
	hex[CRYPTO_KEY_LEN * 2] = '\n';
	hex[CRYPTO_KEY_LEN * 2 + 1] = '\0';
	int ret = file_write_atomic(path, hex, CRYPTO_KEY_LEN * 2 + 1, 0600, error_r);
	crypto_wipe(key, sizeof(key));
	crypto_wipe(hex, sizeof(hex));
	return ret;
}

static int archive_load_key(const struct archive_settings *set,
			    unsigned char master[CRYPTO_KEY_LEN], const char **error_r)
{
	return archive_key_file_read(set->key_file, master, error_r);
}

static int archive_create_key(const struct archive_settings *set, const char **error_r)
{
	unsigned char master[CRYPTO_KEY_LEN];
	char hex[ARCHIVE_KEY_FILE_LEN + 1];
	char *copy = mem_strdup(set->key_file);
	char *slash = strrchr(copy, '/');
	if (slash != NULL && slash != copy) {
		*slash = '\0';
		if (file_mkdir_parents(copy, 0700, error_r) < 0) {
			mem_free(copy);
			return -1;
		}
	}
	mem_free(copy);
	crypto_key_generate(master);
	hex_encode(master, CRYPTO_KEY_LEN, hex);
	hex[CRYPTO_KEY_LEN * 2] = '\n';
	hex[CRYPTO_KEY_LEN * 2 + 1] = '\0';
	int ret = file_write_atomic(set->key_file, hex, CRYPTO_KEY_LEN * 2 + 1, 0600, error_r);
	crypto_wipe(master, sizeof(master));
	crypto_wipe(hex, sizeof(hex));
	return ret;
}

/* No catalog yet: nothing was ever archived in this base directory. */
static bool archive_never_written(const struct archive *a)
{
	char *catalog = mem_printf("%s/catalog.db", a->base_dir);
	const char *error;
	int exists = file_exists(catalog, &error);
	mem_free(catalog);
	return exists == 0;
}

/* The key check is a one-way derivation of the key: it tells a wrong key
 * file from a damaged archive without revealing anything. */
static int archive_check_key(struct archive *a, const struct archive_settings *set,
			     const unsigned char master[CRYPTO_KEY_LEN], const char **error_r)
{
	unsigned char check[CRYPTO_KEY_LEN];
	char hex[CRYPTO_KEY_LEN * 2 + 2];
	crypto_kdf_derive(master, "keycheck", 1, check);
	hex_encode(check, CRYPTO_KEY_LEN, hex);
	char *path = mem_printf("%s/key-check", a->base_dir);
	char *data;
	size_t len;
	int ret = file_exists(path, error_r);
	if (ret == 0 && (set->create || (set->write && archive_never_written(a)))) {
		/* A new archive, or one whose creation a crash interrupted
		 * after the key file was written: nothing was archived yet
		 * (no catalog), so finishing the creation loses nothing. */
		hex[CRYPTO_KEY_LEN * 2] = '\n';
		ret = file_write_atomic(path, hex, CRYPTO_KEY_LEN * 2 + 1, 0600, error_r);
	} else if (ret == 0) {
		*error_r = tstr_printf("%s is not an archive base directory (no key-check)",
				       a->base_dir);
		ret = -1;
	} else if (ret == 1) {
		ret = file_read_all(path, 4096, &data, &len, error_r);
		if (ret == 0) {
			if (len < CRYPTO_KEY_LEN * 2 ||
			    memcmp(data, hex, CRYPTO_KEY_LEN * 2) != 0) {
				*error_r = tstr_printf("key file %s does not belong to %s",
						       set->key_file, a->base_dir);
				ret = -1;
			}
			mem_free(data);
		}
	}
	mem_free(path);
	return ret;
}

static int archive_lock(struct archive *a, const char **error_r)
{
	char *path = mem_printf("%s/lock", a->base_dir);
	a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a->lock_fd < 0) {
		*error_r = tstr_printf("open(%s) failed: %s", path, strerror(errno));
		mem_free(path);
		return -1;
	}
	/* wait: a short-lived writer (e.g. verify) finishing is not an error */
	if (flock(a->lock_fd, LOCK_EX) < 0) {
		*error_r = tstr_printf("flock(%s) failed: %s", path, strerror(errno));
		mem_free(path);
		return -1;
	}
	mem_free(path);
	return 0;
}

/* Dictionaries are loaded when first used: a big archive has a few dozen,
 * and a reader (an instance serving one user) may need none of them. */
static void archive_know_dicts(struct archive *a, uint32_t count)
{
	if (count <= a->dicts.count)
		return;
	array_reserve(&a->dicts, count);
	for (size_t i = a->dicts.count; i < count; i++)
		a->dicts.items[i] = NULL;
	a->dicts.count = count;
}

static int archive_load_dict(uint32_t id, const void *data, size_t len, void *context)
{
	struct archive *a = context;
	if (id < 1 || id > a->dicts.count || a->dicts.items[id - 1] != NULL)
		return -1;
	a->dicts.items[id - 1] = compress_dict_create(id, data, len);
	return 1; /* just this one */
}

static char *archive_store_dir(const struct archive *a, const char *name)
{
	return mem_printf("%s/stores/%s", a->base_dir, name);
}

int archive_open_store(struct archive *a, const struct catalog_store *cs, const char **error_r)
{
	char *dir = archive_store_dir(a, cs->name);
	struct store *store;
	/* under the write lock only: a compaction may be in progress otherwise */
	int ret = a->write ? archive_compact_recover(a, cs->id, dir, error_r) : 0;
	if (ret == 0)
		ret = store_open(dir, a->segment_max, &store, error_r);
	mem_free(dir);
	if (ret < 0)
		return -1;
	if (a->write && cs->state != CATALOG_STORE_WRITE_PROTECTED &&
	    cs->state != CATALOG_STORE_DISABLED) {
		uint32_t seg;
		uint64_t len;
		store_tail(store, &seg, &len);
		/* Records past the committed tail were never reported archived. */
		if ((seg != cs->tail_segment || len != cs->tail_length) &&
		    store_truncate_to(store, cs->tail_segment, cs->tail_length, error_r) < 0) {
			store_destroy(&store);
			return -1;
		}
	}
	struct archive_store *s = array_push(&a->stores);
	s->id = cs->id;
	s->name = mem_strdup(cs->name);
	s->state = cs->state;
	s->store = store;
	return 0;
}

static int archive_load_stores(struct archive *a, const char **error_r)
{
	struct catalog_store *stores;
	size_t count;
	if (catalog_stores(a->cat, &stores, &count, error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = archive_open_store(a, &stores[i], error_r);
	catalog_stores_free(stores, count);
	return ret;
}

static bool archive_has_segments(const char *base_dir)
{
	char *dir = mem_printf("%s/stores", base_dir);
	DIR *d = opendir(dir);
	mem_free(dir);
	if (d == NULL)
		return false;
	struct dirent *de;
	bool found = false;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			found = true;
	}
	closedir(d);
	return found;
}

/* The key must not travel with the base directory: refuse a key file
 * inside it (compared by canonical paths, so links do not hide it). */
static int archive_check_key_outside(const struct archive_settings *set, const char **error_r)
{
	char *base = realpath(set->base_dir, NULL);
	char *copy = mem_strdup(set->key_file);
	char *slash = strrchr(copy, '/');
	const char *key_dir = slash == NULL ? "." : slash == copy ? "/" : copy;
	if (slash != NULL && slash != copy)
		*slash = '\0';
	char *dir = realpath(key_dir, NULL);
	int ret = 0;
	if (base != NULL && dir != NULL) {
		size_t n = strlen(base);
		if (strncmp(dir, base, n) == 0 && (dir[n] == '\0' || dir[n] == '/')) {
			*error_r = tstr_printf("key file %s is inside the base directory %s: keep "
					       "it elsewhere, or a copy of the base directory "
					       "would reveal the mail",
					       set->key_file, set->base_dir);
			ret = -1;
		}
	}
	free(base);
	free(dir);
	mem_free(copy);
	return ret;
}

int archive_open_common(const struct archive_settings *set, bool need_catalog,
			struct archive **archive_r, const char **error_r)
{
	if (crypto_init() < 0) {
		*error_r = "libsodium cannot initialise";
		return -1;
	}
	mime_init();
	if (set->base_dir == NULL || set->key_file == NULL) {
		*error_r = "--base-dir and --key-file are required";
		return -1;
	}
	if (set->create && file_mkdir_parents(set->base_dir, 0700, error_r) < 0)
		return -1;
	if (archive_check_key_outside(set, error_r) < 0)
		return -1;
	int key_exists = file_exists(set->key_file, error_r);
	if (key_exists < 0)
		return -1;
	if (key_exists == 0) {
		if (!set->create) {
			*error_r = tstr_printf("key file %s does not exist", set->key_file);
			return -1;
		}
		char *check = mem_printf("%s/key-check", set->base_dir);
		int has_check = file_exists(check, error_r);
		mem_free(check);
		if (has_check != 0) {
			if (has_check > 0)
				*error_r = tstr_printf("key file %s is missing, and %s already "
						       "belongs to a key: restore the key file",
						       set->key_file, set->base_dir);
			return -1;
		}
		if (archive_create_key(set, error_r) < 0)
			return -1;
	}
	struct archive *a = mem_new(struct archive);
	a->base_dir = mem_strdup(set->base_dir);
	a->lock_fd = -1;
	a->write = set->write;
	a->store_max_size =
		set->store_max_size != 0 ? set->store_max_size : ARCHIVE_STORE_MAX_DEFAULT;
	a->segment_max = set->segment_max;
	unsigned char master[CRYPTO_KEY_LEN];
	if (archive_load_key(set, master, error_r) < 0)
		goto fail;
	crypto_kdf_derive(master, "content_", 1, a->key);
	crypto_kdf_derive(master, "catalog_", 1, a->catalog_key);
	int ret = archive_check_key(a, set, master, error_r);
	crypto_wipe(master, sizeof(master));
	if (ret < 0)
		goto fail;
	if (set->write && archive_lock(a, error_r) < 0)
		goto fail;
	if (!need_catalog) {
		*archive_r = a;
		return 0;
	}
	char *path = mem_printf("%s/catalog.db", a->base_dir);
	int exists = file_exists(path, error_r);
	if (exists == 0 && archive_has_segments(a->base_dir)) {
		*error_r = tstr_printf("%s is missing but stores exist: run `rebuild`", path);
		mem_free(path);
		goto fail;
	}
	if (exists == 0 && !set->write) {
		*error_r = tstr_printf("%s is empty (nothing archived yet)", a->base_dir);
		mem_free(path);
		goto fail;
	}
	ret = catalog_open(path, a->catalog_key, &a->cat, error_r);
	mem_free(path);
	uint32_t dicts;
	if (ret < 0 || archive_load_stores(a, error_r) < 0 ||
	    catalog_dict_max_id(a->cat, &dicts, error_r) < 0)
		goto fail;
	archive_know_dicts(a, dicts);
	*archive_r = a;
	return 0;
fail:
	archive_destroy(&a);
	return -1;
}

int archive_catalog_open(const char *base_dir, const char *key_file, struct catalog **catalog_r,
			 const char **error_r)
{
	unsigned char master[CRYPTO_KEY_LEN], key[CRYPTO_KEY_LEN];
	if (archive_key_file_read(key_file, master, error_r) < 0)
		return -1;
	crypto_kdf_derive(master, "catalog_", 1, key);
	crypto_wipe(master, sizeof(master));
	char *path = mem_printf("%s/catalog.db", base_dir);
	int ret = file_exists(path, error_r);
	if (ret == 0 && archive_has_segments(base_dir)) {
		/* a new empty catalog would hide the archive: rebuild it first */
		*error_r = tstr_printf("%s is missing but stores exist: run `rebuild`", path);
		ret = -1;
	}
	if (ret >= 0)
		ret = catalog_open(path, key, catalog_r, error_r);
	crypto_wipe(key, sizeof(key));
	mem_free(path);
	return ret < 0 ? -1 : 0;
}

int archive_open(const struct archive_settings *set, struct archive **archive_r,
		 const char **error_r)
{
	return archive_open_common(set, true, archive_r, error_r);
}

void archive_destroy(struct archive **_a)
{
	struct archive *a = *_a;
	if (a == NULL)
		return;
	*_a = NULL;
	for (size_t i = 0; i < a->stores.count; i++) {
		store_destroy(&a->stores.items[i].store);
		mem_free(a->stores.items[i].name);
	}
	array_free(&a->stores);
	for (size_t i = 0; i < a->dicts.count; i++)
		compress_dict_destroy(&a->dicts.items[i]);
	array_free(&a->dicts);
	catalog_destroy(&a->cat);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	crypto_wipe(a->key, sizeof(a->key));
	crypto_wipe(a->catalog_key, sizeof(a->catalog_key));
	mem_free(a->base_dir);
	mem_free(a);
}

struct archive_store *archive_store_by_id(struct archive *a, int64_t id)
{
	for (size_t i = 0; i < a->stores.count; i++) {
		if (a->stores.items[i].id == id)
			return &a->stores.items[i];
	}
	return NULL;
}

static struct archive_store *archive_store_by_name(struct archive *a, const char *name)
{
	for (size_t i = 0; i < a->stores.count; i++) {
		if (strcmp(a->stores.items[i].name, name) == 0)
			return &a->stores.items[i];
	}
	return NULL;
}

const struct compress_dict *archive_dict_lookup(uint32_t id, void *context)
{
	struct archive *a = context;
	const char *error;
	if (id > a->dicts.count && !a->write && a->cat != NULL) {
		/* A reader opened before a running import trained a newer
		 * dictionary. (The writer itself knows every one it added.) */
		uint32_t count;
		if (catalog_dict_max_id(a->cat, &count, &error) == 0)
			archive_know_dicts(a, count);
	}
	if (id < 1 || id > a->dicts.count)
		return NULL;
	if (a->dicts.items[id - 1] == NULL && a->cat != NULL)
		(void)catalog_dicts(a->cat, id, archive_load_dict, a, &error);
	return a->dicts.items[id - 1];
}

const struct compress_dict *archive_latest_dict(struct archive *a)
{
	return a->dicts.count > 0 ? archive_dict_lookup((uint32_t)a->dicts.count, a) : NULL;
}

/* Writes every dictionary into a (new) store, so that each store can be
 * read and rebuilt on its own. Inside the caller's transaction. */
static int archive_store_write_dicts(struct archive *a, struct archive_store *s,
				     const char **error_r)
{
	for (size_t i = 0; i < a->dicts.count; i++) {
		size_t dlen, rlen;
		const struct compress_dict *dict = archive_dict_lookup((uint32_t)(i + 1), a);
		if (dict == NULL) {
			*error_r = tstr_printf("dictionary %zu is missing from the catalog", i + 1);
			return -1;
		}
		const void *data = compress_dict_data(dict, &dlen);
		unsigned char *rec = record_seal_dict(a->key, (uint32_t)(i + 1), data, dlen, &rlen);
		struct store_loc loc;
		int ret = store_append(s->store, rec, rlen, &loc, error_r);
		mem_free(rec);
		if (ret < 0)
			return -1;
	}
	return 0;
}

static int archive_commit_store(struct archive *a, struct archive_store *s, const char **error_r)
{
	uint32_t seg;
	uint64_t len;
	if (store_sync(s->store, error_r) < 0)
		return -1;
	store_tail(s->store, &seg, &len);
	return catalog_store_set_tail(a->cat, s->id, seg, len, error_r);
}

/* Creates a new current store (the previous current one becomes normal),
 * durably, in its own transaction. */
static int archive_store_create(struct archive *a, const char **error_r)
{
	/* a fresh name: neither attached nor on disk (a detached store keeps
	 * its directory, and must never receive new records) */
	char *name = NULL;
	for (size_t n = a->stores.count + 1;; n++) {
		mem_free(name);
		name = mem_printf("store-%04zu", n);
		char *dir = archive_store_dir(a, name);
		int exists = file_exists(dir, error_r);
		mem_free(dir);
		if (exists < 0) {
			mem_free(name);
			return -1;
		}
		if (exists == 0 && archive_store_by_name(a, name) == NULL)
			break;
	}
	if (catalog_begin(a->cat, error_r) < 0) {
		mem_free(name);
		return -1;
	}
	for (size_t i = 0; i < a->stores.count; i++) {
		if (a->stores.items[i].state == CATALOG_STORE_CURRENT &&
		    catalog_store_set_state(a->cat, a->stores.items[i].id, CATALOG_STORE_NORMAL,
					    error_r) < 0)
			goto fail;
	}
	int64_t id;
	if (catalog_store_add(a->cat, name, CATALOG_STORE_CURRENT, &id, error_r) < 0)
		goto fail;
	struct catalog_store cs = {.id = id, .name = name, .state = CATALOG_STORE_CURRENT};
	char *stores_dir = mem_printf("%s/stores", a->base_dir);
	int ret = file_mkdir_parents(stores_dir, 0700, error_r);
	mem_free(stores_dir);
	if (ret < 0 || archive_open_store(a, &cs, error_r) < 0)
		goto fail;
	struct archive_store *s = &a->stores.items[a->stores.count - 1];
	if (archive_store_write_dicts(a, s, error_r) < 0 ||
	    archive_commit_store(a, s, error_r) < 0 || catalog_commit(a->cat, error_r) < 0) {
		a->stores.count--;
		store_destroy(&s->store);
		mem_free(s->name);
		goto fail;
	}
	for (size_t i = 0; i + 1 < a->stores.count; i++) {
		if (a->stores.items[i].state == CATALOG_STORE_CURRENT)
			a->stores.items[i].state = CATALOG_STORE_NORMAL;
	}
	mem_free(name);
	return 0;
fail:
	catalog_rollback(a->cat);
	mem_free(name);
	return -1;
}

int archive_current_store(struct archive *a, struct archive_store **store_r, const char **error_r)
{
	for (size_t i = 0; i < a->stores.count; i++) {
		if (a->stores.items[i].state == CATALOG_STORE_CURRENT) {
			*store_r = &a->stores.items[i];
			return 0;
		}
	}
	if (archive_store_create(a, error_r) < 0)
		return -1;
	*store_r = &a->stores.items[a->stores.count - 1];
	return 0;
}

int archive_store_roll_if_full(struct archive *a, const char **error_r)
{
	struct archive_store *s;
	if (archive_current_store(a, &s, error_r) < 0)
		return -1;
	if (store_size(s->store) < a->store_max_size)
		return 0;
	return archive_store_create(a, error_r);
}

void archive_dict_keep(struct archive *a, struct compress_dict *dict)
{
	array_append(&a->dicts, dict);
}

int archive_dict_adopt(struct archive *a, struct archive_store *s, struct compress_dict *dict,
		       uint64_t raw_before, const char **error_r)
{
	uint32_t id = compress_dict_id(dict);
	if (id != a->dicts.count + 1) {
		*error_r =
			tstr_printf("dictionary %u out of order (%zu known)", id, a->dicts.count);
		return -1;
	}
	size_t len, rlen;
	const void *data = compress_dict_data(dict, &len);
	unsigned char *rec = record_seal_dict(a->key, id, data, len, &rlen);
	struct store_loc loc;
	int ret = store_append(s->store, rec, rlen, &loc, error_r);
	mem_free(rec);
	if (ret < 0 || catalog_dict_add(a->cat, id, data, len, raw_before, error_r) < 0)
		return -1;
	archive_dict_keep(a, dict);
	return 0;
}

int archive_dict_add(struct archive *a, const void *data, size_t len, uint64_t raw_before,
		     const char **error_r)
{
	struct archive_store *s;
	if (archive_current_store(a, &s, error_r) < 0 || catalog_begin(a->cat, error_r) < 0)
		return -1;
	struct compress_dict *dict = compress_dict_create((uint32_t)a->dicts.count + 1, data, len);
	if (archive_dict_adopt(a, s, dict, raw_before, error_r) < 0 ||
	    archive_commit_store(a, s, error_r) < 0 || catalog_commit(a->cat, error_r) < 0) {
		if (a->dicts.count > 0 && a->dicts.items[a->dicts.count - 1] == dict)
			a->dicts.count--;
		compress_dict_destroy(&dict);
		catalog_rollback(a->cat);
		return -1;
	}
	return 0;
}

unsigned char *archive_imap_pack(const struct mime_info *info, const struct compress_dict *dict,
				 size_t *len_r)
{
	/* [dict id][plain length][zstd(envelope NUL bodystructure NUL body NUL
	 * "2:" imap_size NUL)]; records without the "2:" tag come from before the
	 * IMAP data was corrected and are derived again on read */
	char tag[32];
	snprintf(tag, sizeof(tag), "%s%llu", ARCHIVE_IMAP_TAG, (unsigned long long)info->imap_size);
	const char *parts[] = {info->envelope, info->bodystructure, info->body, tag};
	size_t plain_len = 0;
	for (size_t i = 0; i < 4; i++)
		plain_len += strlen(parts[i]) + 1;
	unsigned char *plain = mem_alloc(plain_len);
	size_t at = 0;
	for (size_t i = 0; i < 4; i++) {
		memcpy(plain + at, parts[i], strlen(parts[i]) + 1);
		at += strlen(parts[i]) + 1;
	}
	size_t zlen;
	unsigned char *z = compress_buffer(plain, plain_len, dict, &zlen);
	mem_free(plain);
	unsigned char *imap = mem_alloc(zlen + 8);
	uint32_t dict_id = compress_dict_id(dict), plain_len32 = (uint32_t)plain_len;
	memcpy(imap, &dict_id, 4);
	memcpy(imap + 4, &plain_len32, 4);
	memcpy(imap + 8, z, zlen);
	mem_free(z);
	*len_r = zlen + 8;
	return imap;
}

int archive_catalog_add(struct archive *a, const struct record_meta *meta,
			const struct mime_info *info, const void *imap_in, size_t imap_in_len,
			const struct catalog_loc *loc,
			const unsigned char (*part_hashes)[RECORD_HASH_LEN], size_t part_count,
			int64_t *content_id_r, int64_t *message_id_r, const char **error_r)
{
	size_t imap_len = imap_in_len;
	unsigned char *imap_own = NULL;
	const void *imap = imap_in;
	if (imap == NULL)
		imap = imap_own = archive_imap_pack(info, archive_latest_dict(a), &imap_len);
	struct catalog_content c = {
		.imap = imap,
		.imap_len = imap_len,
		.loc = *loc,
		.size = meta->raw_size,
		.date = info->date != 0 ? info->date : meta->internal_date,
		.zone_minutes = info->date != 0 ? info->zone_minutes : 0,
		.from = info->from,
		.to = info->to,
		.cc = info->cc,
		.subject = info->subject,
		.body_text = info->body_text,
		.attachment_names = info->attachment_names,
		.has_attachment = info->has_attachment,
		.defects = info->defects,
		.part_hashes = part_hashes,
		.part_count = part_count,
	};
	memcpy(c.hash, meta->hash, RECORD_HASH_LEN);
	int added = catalog_content_add(a->cat, &c, content_id_r, error_r);
	mem_free(imap_own);
	if (added < 0)
		return -1;
	int ret = catalog_message_add(a->cat, *content_id_r, meta->user, meta->folder, c.date,
				      meta->internal_date, loc, message_id_r, error_r);
	return ret < 0 ? -1 : 0;
}

static struct store *archive_loc_store(struct archive *a, const struct catalog_loc *loc,
				       const char **error_r)
{
	struct archive_store *s = archive_store_by_id(a, loc->store_id);
	if (s == NULL) {
		*error_r = tstr_printf("store %lld is not attached", (long long)loc->store_id);
		return NULL;
	}
	return s->store;
}

int archive_open_record(struct archive *a, const struct catalog_loc *loc, enum record_type expected,
			unsigned char **plain_r, size_t *plain_len_r, const char **error_r)
{
	struct store *store = archive_loc_store(a, loc, error_r);
	if (store == NULL)
		return -1;
	struct store_loc sl = {
		.segment = loc->segment, .offset = loc->offset, .length = loc->length};
	unsigned char *rec;
	if (store_read(store, &sl, &rec, error_r) < 0)
		return -1;
	enum record_type type;
	int ret = record_open(a->key, rec, loc->length, &type, plain_r, plain_len_r, error_r);
	mem_free(rec);
	if (ret == 0 && type != expected) {
		*error_r = tstr_printf("record has type %d, expected %d", type, expected);
		mem_free(*plain_r);
		ret = -1;
	}
	return ret;
}

int archive_load_part(struct archive *a, const unsigned char hash[RECORD_HASH_LEN],
		      const struct catalog_loc *loc, struct record_part *part_r,
		      const char **error_r)
{
	unsigned char *plain;
	size_t plain_len;
	if (archive_open_record(a, loc, RECORD_TYPE_PART, &plain, &plain_len, error_r) < 0)
		return -1;
	int ret = record_decode_part(plain, plain_len, archive_dict_lookup, a, part_r, error_r);
	mem_free(plain);
	if (ret < 0)
		return -1;
	unsigned char check[RECORD_HASH_LEN];
	crypto_sha256(part_r->data, part_r->len, check);
	if (memcmp(check, hash, RECORD_HASH_LEN) != 0 ||
	    memcmp(part_r->hash, hash, RECORD_HASH_LEN) != 0) {
		record_part_free(part_r);
		*error_r = "part content does not match its hash";
		return -1;
	}
	return 0;
}

/* Reassemble a content from its record and its parts, checking the hash. */
int archive_load_content(struct archive *a, const unsigned char hash[RECORD_HASH_LEN],
			 const struct catalog_loc *loc, unsigned char **data_r, size_t *len_r,
			 const char **error_r)
{
	unsigned char *plain;
	size_t plain_len;
	if (archive_open_record(a, loc, RECORD_TYPE_MESSAGE, &plain, &plain_len, error_r) < 0)
		return -1;
	struct record_message msg;
	int ret = record_decode_message(plain, plain_len, archive_dict_lookup, a, &msg, error_r);
	mem_free(plain);
	if (ret < 0)
		return -1;
	unsigned char *out = mem_alloc(msg.meta.raw_size + 1);
	size_t pos = 0;
	for (size_t i = 0; i < msg.chunk_count && ret == 0; i++) {
		const struct record_chunk *c = &msg.chunks[i];
		if (!c->is_part) {
			memcpy(out + pos, c->data, c->len);
			pos += c->len;
			continue;
		}
		struct catalog_loc ploc;
		struct record_part part;
		int found = catalog_part_find(a->cat, c->hash, &ploc, error_r);
		if (found == 0)
			*error_r = "a shared part is missing from the catalog";
		if (found <= 0 || archive_load_part(a, c->hash, &ploc, &part, error_r) < 0) {
			ret = -1;
			break;
		}
		if (part.len != c->len) {
			*error_r = "a shared part has the wrong size";
			ret = -1;
		} else {
			memcpy(out + pos, part.data, part.len);
			pos += part.len;
		}
		record_part_free(&part);
	}
	unsigned char check[RECORD_HASH_LEN];
	if (ret == 0) {
		crypto_sha256(out, pos, check);
		if (memcmp(check, hash, RECORD_HASH_LEN) != 0 ||
		    memcmp(msg.meta.hash, hash, RECORD_HASH_LEN) != 0) {
			*error_r = "message content does not match its hash";
			ret = -1;
		}
	}
	record_message_free(&msg);
	if (ret < 0) {
		mem_free(out);
		return -1;
	}
	out[pos] = '\0';
	*data_r = out;
	*len_r = pos;
	return 0;
}

int archive_read_message(struct archive *a, int64_t message_id, unsigned char **data_r,
			 size_t *len_r, const char **error_r)
{
	unsigned char hash[RECORD_HASH_LEN];
	struct catalog_loc loc;
	int ret = catalog_message_content(a->cat, message_id, hash, &loc, error_r);
	if (ret <= 0)
		return ret;
	if (archive_load_content(a, hash, &loc, data_r, len_r, error_r) < 0) {
		*error_r = tstr_printf("message %lld: %s", (long long)message_id, *error_r);
		return -1;
	}
	return 1;
}

/* The IMAP data of a message archived before it was corrected: derived
 * again from the message itself. */
static int archive_imap_derive(struct archive *a, int64_t message_id, struct archive_imap *imap,
			       const char **error_r)
{
	unsigned char *data;
	size_t len;
	int ret = archive_read_message(a, message_id, &data, &len, error_r);
	if (ret <= 0)
		return ret;
	struct mime_info *info = mime_parse_imap(data, len);
	mem_free(data);
	imap->envelope = info->envelope;
	imap->bodystructure = info->bodystructure;
	imap->body = info->body;
	imap->size = info->imap_size;
	info->envelope = info->bodystructure = info->body = NULL;
	mime_info_destroy(&info);
	return 1;
}

int archive_message_imap(struct archive *a, int64_t message_id, struct archive_imap *imap,
			 const char **error_r)
{
	void *blob;
	size_t len;
	memset(imap, 0, sizeof(*imap));
	int ret = catalog_message_imap(a->cat, message_id, &blob, &len, error_r);
	if (ret <= 0)
		return ret;
	uint32_t dict_id, plain_len;
	if (len < 8) {
		mem_free(blob);
		*error_r = "IMAP data truncated";
		return -1;
	}
	memcpy(&dict_id, blob, 4);
	memcpy(&plain_len, (unsigned char *)blob + 4, 4);
	const struct compress_dict *dict = archive_dict_lookup(dict_id, a);
	char *plain = mem_alloc((size_t)plain_len + 1);
	if ((dict_id != 0 && dict == NULL) ||
	    compress_decompress((unsigned char *)blob + 8, len - 8, dict, plain, plain_len,
				error_r) < 0 ||
	    plain_len < 2 || plain[plain_len - 1] != '\0') {
		if (dict_id != 0 && dict == NULL)
			*error_r = "IMAP data needs a missing dictionary";
		else if (plain_len < 2 || plain[plain_len - 1] != '\0')
			*error_r = "IMAP data malformed";
		mem_free(plain);
		mem_free(blob);
		return -1;
	}
	mem_free(blob);
	plain[plain_len] = '\0';
	/* the NUL-separated strings */
	const char *parts[4] = {NULL, NULL, NULL, NULL};
	size_t n = 0;
	for (size_t at = 0; at < plain_len && n < 4; at += strlen(plain + at) + 1)
		parts[n++] = plain + at;
	size_t tag_len = strlen(ARCHIVE_IMAP_TAG);
	if (n < 4 || strncmp(parts[3], ARCHIVE_IMAP_TAG, tag_len) != 0) {
		mem_free(plain);
		return archive_imap_derive(a, message_id, imap, error_r);
	}
	imap->envelope = mem_strdup(parts[0]);
	imap->bodystructure = mem_strdup(parts[1]);
	imap->body = mem_strdup(parts[2]);
	imap->size = strtoull(parts[3] + tag_len, NULL, 10);
	mem_free(plain);
	return 1;
}

void archive_imap_free(struct archive_imap *imap)
{
	mem_free(imap->envelope);
	mem_free(imap->bodystructure);
	mem_free(imap->body);
}

int archive_message_location(struct archive *a, int64_t message_id, struct str *out,
			     const char **error_r)
{
	unsigned char hash[RECORD_HASH_LEN];
	struct catalog_loc loc;
	int ret = catalog_message_content(a->cat, message_id, hash, &loc, error_r);
	if (ret <= 0)
		return ret;
	struct archive_store *s = archive_store_by_id(a, loc.store_id);
	str_printfa(out, "%s/seg-%06u %llu %u", s != NULL ? s->name : "?", loc.segment,
		    (unsigned long long)loc.offset, loc.length);
	return 1;
}

struct archive_search_ctx {
	archive_hit_cb *cb;
	void *context;
};

static void archive_search_hit(const struct catalog_hit *hit, void *context)
{
	struct archive_search_ctx *ctx = context;
	struct archive_hit h = {.id = hit->id,
				.date = hit->date,
				.from = hit->from,
				.subject = hit->subject,
				.user = hit->user,
				.folder = hit->folder,
				.size = hit->size};
	ctx->cb(&h, ctx->context);
}

int archive_search(struct archive *a, const char *query, uint64_t limit, uint64_t offset,
		   uint64_t *total_r, archive_hit_cb *cb, void *context, const char **error_r)
{
	struct archive_search_ctx ctx = {cb, context};
	return catalog_search(a->cat, query, limit, offset, total_r, archive_search_hit, &ctx,
			      error_r);
}

static uint64_t archive_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

struct archive_space_ctx {
	struct str *out;
	bool first;
};

static void archive_space_json(const char *name, uint64_t bytes, void *context)
{
	struct archive_space_ctx *ctx = context;
	str_printfa(ctx->out, "%s\"%s\":%llu", ctx->first ? "" : ",", name,
		    (unsigned long long)bytes);
	ctx->first = false;
}

/* "messages_with_defects":N,"defects":{"kind":N,...}: why messages are
 * flagged, per kind */
static int archive_defects_json(struct archive *a, struct str *out, const char **error_r)
{
	uint64_t counts[CATALOG_DEFECT_BITS], flagged;
	if (catalog_defect_counts(a->cat, counts, &flagged, error_r) < 0)
		return -1;
	str_printfa(out, "\"messages_with_defects\":%llu,\"defects\":{",
		    (unsigned long long)flagged);
	bool first = true;
	for (unsigned int bit = 0; bit < CATALOG_DEFECT_BITS; bit++) {
		const char *name = mime_defect_name(bit);
		if (counts[bit] == 0 || name == NULL)
			continue;
		str_printfa(out, "%s\"%s\":%llu", first ? "" : ",", name,
			    (unsigned long long)counts[bit]);
		first = false;
	}
	str_append_c(out, '}');
	return 0;
}

int archive_stats_json(struct archive *a, struct str *out, const char **error_r)
{
	struct catalog_stats st;
	if (catalog_stats(a->cat, &st, error_r) < 0)
		return -1;
	uint64_t catalog_bytes = 0;
	const char *suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char *p = mem_printf("%s/catalog.db%s", a->base_dir, suffixes[i]);
		catalog_bytes += archive_file_size(p);
		mem_free(p);
	}
	uint64_t segment_bytes = 0;
	for (size_t i = 0; i < a->stores.count; i++)
		segment_bytes += store_size(a->stores.items[i].store);
	str_printfa(out,
		    "{\"messages\":%llu,\"unique_contents\":%llu,\"shared_parts\":%llu,"
		    "\"raw_bytes\":%llu,\"stored_bytes\":%llu,\"segment_bytes\":%llu,"
		    "\"catalog_bytes\":%llu,\"dictionaries\":%zu,\"stores\":[",
		    (unsigned long long)st.messages, (unsigned long long)st.contents,
		    (unsigned long long)st.parts, (unsigned long long)st.raw_bytes,
		    (unsigned long long)st.stored_bytes, (unsigned long long)segment_bytes,
		    (unsigned long long)catalog_bytes, a->dicts.count);
	for (size_t i = 0; i < a->stores.count; i++) {
		struct catalog_stats ss;
		if (catalog_store_stats(a->cat, a->stores.items[i].id, &ss, error_r) < 0)
			return -1;
		str_printfa(out,
			    "%s{\"name\":\"%s\",\"state\":\"%s\",\"messages\":%llu,"
			    "\"unique_contents\":%llu,\"raw_bytes\":%llu,\"stored_bytes\":%llu,"
			    "\"segment_bytes\":%llu}",
			    i > 0 ? "," : "", a->stores.items[i].name,
			    catalog_store_state_name(a->stores.items[i].state),
			    (unsigned long long)ss.messages, (unsigned long long)ss.contents,
			    (unsigned long long)ss.raw_bytes, (unsigned long long)ss.stored_bytes,
			    (unsigned long long)store_size(a->stores.items[i].store));
	}
	str_append(out, "],");
	if (archive_defects_json(a, out, error_r) < 0)
		return -1;
	str_append(out, ",\"catalog_space\":{");
	struct archive_space_ctx space = {out, true};
	if (catalog_space(a->cat, archive_space_json, &space, error_r) < 0)
		return -1;
	str_append(out, "}}");
	return 0;
}

int archive_store_list(struct archive *a, archive_report_cb *cb, void *context,
		       const char **error_r)
{
	for (size_t i = 0; i < a->stores.count; i++) {
		struct catalog_stats st;
		if (catalog_store_stats(a->cat, a->stores.items[i].id, &st, error_r) < 0)
			return -1;
		cb(tstr_printf("%s %s messages=%llu raw_bytes=%llu stored_bytes=%llu",
			       a->stores.items[i].name,
			       catalog_store_state_name(a->stores.items[i].state),
			       (unsigned long long)st.messages, (unsigned long long)st.raw_bytes,
			       (unsigned long long)store_size(a->stores.items[i].store)),
		   context);
	}
	return 0;
}

int archive_store_new(struct archive *a, const char **error_r)
{
	return archive_store_create(a, error_r);
}

int archive_store_set_state(struct archive *a, const char *name, const char *state_name,
			    const char **error_r)
{
	struct archive_store *s = archive_store_by_name(a, name);
	enum catalog_store_state state;
	if (s == NULL) {
		*error_r = tstr_printf("no store named %s", name);
		return -1;
	}
	if (catalog_store_state_parse(state_name, &state) < 0) {
		*error_r = tstr_printf("store state %s: expected current, normal, "
				       "write-protected or disabled",
				       state_name);
		return -1;
	}
	if (catalog_begin(a->cat, error_r) < 0)
		return -1;
	for (size_t i = 0; state == CATALOG_STORE_CURRENT && i < a->stores.count; i++) {
		if (a->stores.items[i].state == CATALOG_STORE_CURRENT && &a->stores.items[i] != s &&
		    catalog_store_set_state(a->cat, a->stores.items[i].id, CATALOG_STORE_NORMAL,
					    error_r) < 0)
			goto fail;
	}
	if (catalog_store_set_state(a->cat, s->id, state, error_r) < 0 ||
	    catalog_commit(a->cat, error_r) < 0)
		goto fail;
	for (size_t i = 0; state == CATALOG_STORE_CURRENT && i < a->stores.count; i++) {
		if (a->stores.items[i].state == CATALOG_STORE_CURRENT)
			a->stores.items[i].state = CATALOG_STORE_NORMAL;
	}
	s->state = state;
	return 0;
fail:
	catalog_rollback(a->cat);
	return -1;
}

int archive_store_detach(struct archive *a, const char *name, const char **error_r)
{
	struct archive_store *s = archive_store_by_name(a, name);
	if (s == NULL) {
		*error_r = tstr_printf("no store named %s", name);
		return -1;
	}
	if (catalog_begin(a->cat, error_r) < 0)
		return -1;
	if (catalog_store_remove(a->cat, s->id, error_r) < 0 ||
	    catalog_commit(a->cat, error_r) < 0) {
		catalog_rollback(a->cat);
		return -1;
	}
	store_destroy(&s->store);
	mem_free(s->name);
	array_delete(&a->stores, (size_t)(s - a->stores.items), 1);
	return 0;
}

/* ---- folders ---- */

struct archive_folders_walk {
	archive_folder_cb *cb;
	void *context;
	const char *user, *path; /* when looking for one folder */
	int64_t found_id;
};

static int archive_folders_each(const struct catalog_folder *f, void *context)
{
	struct archive_folders_walk *w = context;
	if (w->user != NULL) {
		if (strcmp(f->user, w->user) == 0 && strcmp(f->path, w->path) == 0) {
			w->found_id = f->id;
			return 1;
		}
		return 0;
	}
	struct archive_folder folder = {f->user, f->path, f->messages, f->bytes};
	w->cb(&folder, w->context);
	return 0;
}

int archive_folders(struct archive *a, archive_folder_cb *cb, void *context, const char **error_r)
{
	struct archive_folders_walk w = {.cb = cb, .context = context};
	return catalog_folders(a->cat, archive_folders_each, &w, error_r);
}

struct archive_hit_relay {
	archive_hit_cb *cb;
	void *context;
};

static void archive_folder_hit(const struct catalog_hit *h, void *context)
{
	struct archive_hit_relay *r = context;
	struct archive_hit hit = {h->id, h->date, h->from, h->subject, h->user, h->folder, h->size};
	r->cb(&hit, r->context);
}

int archive_folder_messages(struct archive *a, const char *user, const char *path, uint64_t limit,
			    uint64_t offset, uint64_t *total_r, archive_hit_cb *cb, void *context,
			    const char **error_r)
{
	struct archive_folders_walk w = {.user = user, .path = path, .found_id = -1};
	if (catalog_folders(a->cat, archive_folders_each, &w, error_r) < 0)
		return -1;
	if (w.found_id < 0)
		return 0;
	struct archive_hit_relay relay = {cb, context};
	if (catalog_folder_messages(a->cat, w.found_id, limit, offset, total_r, archive_folder_hit,
				    &relay, error_r) < 0)
		return -1;
	return 1;
}

struct catalog *archive_catalog(struct archive *a)
{
	return a->cat;
}
