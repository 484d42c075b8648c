#ifndef COFFER_ARCHIVE_PRIVATE_H
#define COFFER_ARCHIVE_PRIVATE_H
/* Shared between archive.c and archive-import.c only. */
#include "archive.h"
#include "array.h"
#include "catalog.h"
#include "compress.h"
#include "crypto.h"
#include "mime.h"
#include "record.h"
#include "store.h"

struct archive_store {
	int64_t id;
	char *name;
	enum catalog_store_state state;
	struct store *store;
};

struct archive {
	char *base_dir;
	unsigned char key[CRYPTO_KEY_LEN];         /* the content key */
	unsigned char catalog_key[CRYPTO_KEY_LEN]; /* the catalog's page key */
	struct catalog *cat;
	ARRAY(struct archive_store) stores;
	ARRAY(struct compress_dict *) dicts; /* dicts.items[i] has id i + 1 */
	int lock_fd;
	bool write;
	uint64_t store_max_size, segment_max;
};

struct archive_store *archive_store_by_id(struct archive *archive, int64_t id);
/* The current store, creating the first one if there is none. */
int archive_current_store(struct archive *archive, struct archive_store **store_r,
			  const char **error_r);
/* Start a new current store if the current one is past store_max_size
 * (called between committed batches). */
int archive_store_roll_if_full(struct archive *archive, const char **error_r);
const struct compress_dict *archive_dict_lookup(uint32_t id, void *context);
const struct compress_dict *archive_latest_dict(struct archive *archive);
/* Durably add a dictionary (own transaction); raw_before: raw bytes the
 * archive holds (see catalog_dict_add()). */
int archive_dict_add(struct archive *archive, const void *data, size_t len, uint64_t raw_before,
		     const char **error_r);
/* The archive takes dict (whose id is the next one) into memory only. */
void archive_dict_keep(struct archive *archive, struct compress_dict *dict);
/* Inside the caller's open transaction: dict (whose id must be the next
 * one) goes into store s and the catalog, and the archive takes ownership
 * of it on success. */
int archive_dict_adopt(struct archive *archive, struct archive_store *s, struct compress_dict *dict,
		       uint64_t raw_before, const char **error_r);

/* The catalog's IMAP blob of a message (mem_free); workers make it. */
unsigned char *archive_imap_pack(const struct mime_info *info, const struct compress_dict *dict,
				 size_t *len_r);
/* Adds a new content (its parts already in the catalog) and files it; imap
 * may be NULL (then it is packed here). */
int archive_catalog_add(struct archive *archive, const struct record_meta *meta,
			const struct mime_info *info, const void *imap, size_t imap_len,
			const struct catalog_loc *loc,
			const unsigned char (*part_hashes)[RECORD_HASH_LEN], size_t part_count,
			int64_t *content_id_r, int64_t *message_id_r, const char **error_r);

/* Read and authenticate one record of the expected type. */
int archive_open_record(struct archive *archive, const struct catalog_loc *loc,
			enum record_type expected, unsigned char **plain_r, size_t *plain_len_r,
			const char **error_r);
/* A shared part, checked against its hash. */
int archive_load_part(struct archive *archive, const unsigned char hash[RECORD_HASH_LEN],
		      const struct catalog_loc *loc, struct record_part *part_r,
		      const char **error_r);
/* A message's bytes, reassembled from its record and parts, checked
 * against its hash. */
int archive_load_content(struct archive *archive, const unsigned char hash[RECORD_HASH_LEN],
			 const struct catalog_loc *loc, unsigned char **data_r, size_t *len_r,
			 const char **error_r);
int archive_open_store(struct archive *archive, const struct catalog_store *cs,
		       const char **error_r);
int archive_open_common(const struct archive_settings *set, bool need_catalog,
			struct archive **archive_r, const char **error_r);

void archive_hash_hex(const unsigned char hash[RECORD_HASH_LEN], char out[RECORD_HASH_LEN * 2 + 1]);

#endif
