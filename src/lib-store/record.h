#ifndef COFFER_RECORD_H
#define COFFER_RECORD_H
/* record: the self-describing, encrypted records of archive segment files.
 *
 * A record is a 16-byte plain header followed by an AEAD-sealed payload:
 *   magic "CFR1" | type (1) | version (1) | reserved (2) | payload length (4,
 *   little endian) | CRC-32 of the first 12 header bytes (4)
 *   payload = XChaCha20-Poly1305(content key, plaintext, ad = header bytes 0..11)
 * The header reveals only the record type and length. The plaintext (see
 * docs/storage.md) carries everything needed to rebuild the catalog: content
 * hash, raw size, owner, folder, dates, and the zstd-compressed content.
 *
 * Contract: record_seal_*() are pure and thread-safe (workers call them in
 * parallel); each returns a mem_alloc()ed buffer holding the whole record.
 * record_header_parse() checks magic, CRC and size limits (-1 if not a
 * header). record_open() authenticates and decrypts a payload (-1 with
 * *error_r on any damage); record_decode_*() parse a plaintext (-1 on
 * malformed data, never reading out of bounds). Decoded strings and buffers
 * belong to the struct and are freed with record_*_free(). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define RECORD_HEADER_LEN 16
#define RECORD_MAX_PAYLOAD (1024u * 1024 * 1024)
#define RECORD_HASH_LEN CRYPTO_SHA256_LEN

enum record_type {
	RECORD_TYPE_MESSAGE = 1, /* a message's content and its first folder */
	RECORD_TYPE_PART = 2,    /* a large MIME part shared between messages */
	RECORD_TYPE_REF = 3,     /* another folder holding an existing message */
	RECORD_TYPE_DICT = 4,    /* a zstd dictionary used by later records */
};

struct record_header {
	enum record_type type;
	uint32_t payload_len;
};

/* Where a message came from and where it is filed. */
struct record_meta {
	unsigned char hash[RECORD_HASH_LEN]; /* SHA-256 of the raw message */
	uint64_t raw_size;
	int64_t internal_date; /* seconds since the epoch */
	int64_t archived_at;
	const char *user;
	const char *folder;
};

/* A message body is a sequence of chunks: literal bytes, or a reference to a
 * PART record by the SHA-256 of the part's bytes. */
struct record_chunk {
	bool is_part;
	size_t len;
	const unsigned char *data;           /* literal bytes (is_part = false) */
	unsigned char hash[RECORD_HASH_LEN]; /* part hash (is_part = true) */
};

struct record_message {
	struct record_meta meta;
	uint32_t dict_id;
	size_t chunk_count;
	struct record_chunk *chunks;
	/* owned storage */
	char *user_buf, *folder_buf;
	unsigned char *body_buf;
};

struct record_part {
	unsigned char hash[RECORD_HASH_LEN];
	uint32_t dict_id;
	size_t len;
	unsigned char *data;
};

struct record_dict {
	uint32_t id;
	size_t len;
	unsigned char *data;
};

struct compress_dict;

void record_header_build(enum record_type type, uint32_t payload_len,
			 unsigned char out[RECORD_HEADER_LEN]);
int record_header_parse(const unsigned char *buf, struct record_header *header_r);

/* Seal functions: `dict` may be NULL (no dictionary). */
unsigned char *record_seal_message(const unsigned char key[CRYPTO_KEY_LEN],
				   const struct record_meta *meta,
				   const struct record_chunk *chunks, size_t chunk_count,
				   const struct compress_dict *dict, size_t *len_r);
unsigned char *record_seal_part(const unsigned char key[CRYPTO_KEY_LEN],
				const unsigned char hash[RECORD_HASH_LEN], const void *data,
				size_t len, const struct compress_dict *dict, size_t *len_r);
unsigned char *record_seal_ref(const unsigned char key[CRYPTO_KEY_LEN],
			       const struct record_meta *meta, size_t *len_r);
unsigned char *record_seal_dict(const unsigned char key[CRYPTO_KEY_LEN], uint32_t id,
				const void *data, size_t len, size_t *len_r);

/* Decrypts a whole record (header + payload, `len` bytes) into *plain_r
 * (mem_free) and returns its type in *type_r. */
int record_open(const unsigned char key[CRYPTO_KEY_LEN], const unsigned char *rec, size_t len,
		enum record_type *type_r, unsigned char **plain_r, size_t *plain_len_r,
		const char **error_r);

/* The dictionary lookup is a callback so that a record can name any
 * dictionary of the instance; return NULL if unknown. */
typedef const struct compress_dict *record_dict_lookup_t(uint32_t id, void *context);

int record_decode_message(const unsigned char *plain, size_t len, record_dict_lookup_t *lookup,
			  void *context, struct record_message *msg_r, const char **error_r);
/* Only the metadata (for REF records, and for messages when the body is not
 * needed); strings point into `plain`. */
int record_decode_meta(enum record_type type, const unsigned char *plain, size_t len,
		       struct record_meta *meta_r, char **user_r, char **folder_r,
		       const char **error_r);
int record_decode_part(const unsigned char *plain, size_t len, record_dict_lookup_t *lookup,
		       void *context, struct record_part *part_r, const char **error_r);
int record_decode_dict(const unsigned char *plain, size_t len, struct record_dict *dict_r,
		       const char **error_r);
void record_message_free(struct record_message *msg);
void record_part_free(struct record_part *part);
void record_dict_free(struct record_dict *dict);

#endif
