#include "record.h"
#include "array.h"
#include "compress.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <pthread.h>
#include <string.h>

#define RECORD_MAGIC "CFR1"
#define RECORD_VERSION 1
#define RECORD_AD_LEN 12

static uint32_t record_crc_table[256];

static void record_crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		record_crc_table[i] = c;
	}
}

static uint32_t record_crc32(const unsigned char *data, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, record_crc_init);
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < len; i++)
		c = record_crc_table[(c ^ data[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void record_header_build(enum record_type type, uint32_t payload_len,
			 unsigned char out[RECORD_HEADER_LEN])
{
	memcpy(out, RECORD_MAGIC, 4);
	out[4] = (unsigned char)type;
	out[5] = RECORD_VERSION;
	out[6] = 0;
	out[7] = 0;
	put_u32(out + 8, payload_len);
	put_u32(out + 12, record_crc32(out, 12));
}

int record_header_parse(const unsigned char *buf, struct record_header *header_r)
{
	if (memcmp(buf, RECORD_MAGIC, 4) != 0 || get_u32(buf + 12) != record_crc32(buf, 12))
		return -1;
	if (buf[4] < RECORD_TYPE_MESSAGE || buf[4] > RECORD_TYPE_DICT || buf[5] != RECORD_VERSION)
		return -1;
	uint32_t len = get_u32(buf + 8);
	if (len < CRYPTO_AEAD_OVERHEAD || len > RECORD_MAX_PAYLOAD)
		return -1;
	header_r->type = (enum record_type)buf[4];
	header_r->payload_len = len;
	return 0;
}

/* Little-endian serialisation into a str. */
static void w_u8(struct str *s, unsigned int v)
{
	str_append_c(s, (char)v);
}

static void w_u16(struct str *s, uint16_t v)
{
	unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
	str_append_n(s, b, 2);
}

static void w_u32(struct str *s, uint32_t v)
{
	unsigned char b[4];
	put_u32(b, v);
	str_append_n(s, b, 4);
}

static void w_u64(struct str *s, uint64_t v)
{
	w_u32(s, (uint32_t)v);
	w_u32(s, (uint32_t)(v >> 32));
}

static void w_string(struct str *s, const char *v)
{
	size_t len = v == NULL ? 0 : strlen(v);
	if (len > 0xffff)
		len = 0xffff;
	w_u16(s, (uint16_t)len);
	str_append_n(s, v, len);
}

struct reader {
	const unsigned char *p, *end;
	bool bad;
};

static const unsigned char *r_bytes(struct reader *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += n;
	return p;
}

static uint64_t r_uint(struct reader *r, int bytes)
{
	const unsigned char *p = r_bytes(r, (size_t)bytes);
	uint64_t v = 0;
	if (p == NULL)
		return 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static char *r_string(struct reader *r)
{
	size_t len = r_uint(r, 2);
	const unsigned char *p = r_bytes(r, len);
	return p == NULL ? NULL : mem_strndup((const char *)p, len);
}

static unsigned char *record_seal(const unsigned char key[CRYPTO_KEY_LEN], enum record_type type,
				  const struct str *plain, size_t *len_r)
{
	size_t payload_len = str_len(plain) + CRYPTO_AEAD_OVERHEAD;
	unsigned char *out = mem_alloc(RECORD_HEADER_LEN + payload_len);
	record_header_build(type, (uint32_t)payload_len, out);
	crypto_aead_encrypt(key, str_c(plain), str_len(plain), out, RECORD_AD_LEN,
			    out + RECORD_HEADER_LEN);
	*len_r = RECORD_HEADER_LEN + payload_len;
	return out;
}

static void record_write_meta(struct str *s, const struct record_meta *meta)
{
	w_u8(s, RECORD_VERSION);
	str_append_n(s, meta->hash, RECORD_HASH_LEN);
	w_u64(s, meta->raw_size);
	w_u64(s, (uint64_t)meta->internal_date);
	w_u64(s, (uint64_t)meta->archived_at);
	w_string(s, meta->user);
	w_string(s, meta->folder);
}

/* A record sealed in place: the plaintext is written where its ciphertext
 * goes and encrypted there, so a message of any size is held once
 * compressed, not three times (plaintext, compressed, sealed). */
static unsigned char *record_inplace_alloc(size_t plain_cap, unsigned char **plain_r)
{
	unsigned char *out = mem_alloc(RECORD_HEADER_LEN + CRYPTO_AEAD_OVERHEAD + plain_cap);
	*plain_r = out + RECORD_HEADER_LEN + CRYPTO_AEAD_NONCE_LEN;
	return out;
}

static unsigned char *record_inplace_seal(const unsigned char key[CRYPTO_KEY_LEN],
					  enum record_type type, unsigned char *out,
					  size_t plain_len, size_t *len_r)
{
	size_t payload_len = plain_len + CRYPTO_AEAD_OVERHEAD;
	record_header_build(type, (uint32_t)payload_len, out);
	crypto_aead_encrypt(key, out + RECORD_HEADER_LEN + CRYPTO_AEAD_NONCE_LEN, plain_len, out,
			    RECORD_AD_LEN, out + RECORD_HEADER_LEN);
	*len_r = RECORD_HEADER_LEN + payload_len;
	/* give back what the compression bound reserved but did not use */
	return mem_realloc(out, *len_r);
}

unsigned char *record_seal_message(const unsigned char key[CRYPTO_KEY_LEN],
				   const struct record_meta *meta,
				   const struct record_chunk *chunks, size_t chunk_count,
				   const struct compress_dict *dict, size_t *len_r)
{
	/* the body: per chunk a small header, then its bytes or its part hash */
	struct str *heads = str_create(chunk_count * (5 + RECORD_HASH_LEN) + 1);
	for (size_t i = 0; i < chunk_count; i++) {
		w_u8(heads, chunks[i].is_part ? 1 : 0);
		w_u32(heads, (uint32_t)chunks[i].len);
		if (chunks[i].is_part)
			str_append_n(heads, chunks[i].hash, RECORD_HASH_LEN);
	}
	struct compress_piece *pieces = mem_alloc((2 * chunk_count + 1) * sizeof(*pieces));
	size_t n = 0, pos = 0, body_len = 0;
	for (size_t i = 0; i < chunk_count; i++) {
		size_t head_len = chunks[i].is_part ? 5 + RECORD_HASH_LEN : 5;
		pieces[n++] = (struct compress_piece){str_c(heads) + pos, head_len};
		pos += head_len;
		if (!chunks[i].is_part && chunks[i].len > 0)
			pieces[n++] = (struct compress_piece){chunks[i].data, chunks[i].len};
		body_len += head_len + (chunks[i].is_part ? 0 : chunks[i].len);
	}
	struct str *prefix = str_create(128);
	record_write_meta(prefix, meta);
	w_u32(prefix, compress_dict_id(dict));
	w_u64(prefix, body_len);
	size_t cap = compress_bound(body_len);
	unsigned char *plain;
	unsigned char *out = record_inplace_alloc(str_len(prefix) + cap, &plain);
	memcpy(plain, str_c(prefix), str_len(prefix));
	size_t zlen = compress_pieces(pieces, n, dict, plain + str_len(prefix), cap);
	size_t plain_len = str_len(prefix) + zlen;
	str_destroy(&prefix);
	str_destroy(&heads);
	mem_free(pieces);
	return record_inplace_seal(key, RECORD_TYPE_MESSAGE, out, plain_len, len_r);
}

unsigned char *record_seal_part(const unsigned char key[CRYPTO_KEY_LEN],
				const unsigned char hash[RECORD_HASH_LEN], const void *data,
				size_t len, const struct compress_dict *dict, size_t *len_r)
{
	struct str *prefix = str_create(64);
	w_u8(prefix, RECORD_VERSION);
	str_append_n(prefix, hash, RECORD_HASH_LEN);
	w_u64(prefix, len);
	w_u32(prefix, compress_dict_id(dict));
	size_t cap = compress_bound(len);
	unsigned char *plain;
	unsigned char *out = record_inplace_alloc(str_len(prefix) + cap, &plain);
	memcpy(plain, str_c(prefix), str_len(prefix));
	struct compress_piece piece = {data, len};
	size_t zlen = compress_pieces(&piece, 1, dict, plain + str_len(prefix), cap);
	size_t plain_len = str_len(prefix) + zlen;
	str_destroy(&prefix);
	return record_inplace_seal(key, RECORD_TYPE_PART, out, plain_len, len_r);
}

unsigned char *record_seal_ref(const unsigned char key[CRYPTO_KEY_LEN],
			       const struct record_meta *meta, size_t *len_r)
{
	struct str *plain = str_create(128);
	record_write_meta(plain, meta);
	unsigned char *rec = record_seal(key, RECORD_TYPE_REF, plain, len_r);
	str_destroy(&plain);
	return rec;
}

unsigned char *record_seal_dict(const unsigned char key[CRYPTO_KEY_LEN], uint32_t id,
				const void *data, size_t len, size_t *len_r)
{
	struct str *plain = str_create(len + 16);
	w_u8(plain, RECORD_VERSION);
	w_u32(plain, id);
	str_append_n(plain, data, len);
	unsigned char *rec = record_seal(key, RECORD_TYPE_DICT, plain, len_r);
	str_destroy(&plain);
	return rec;
}

int record_open(const unsigned char key[CRYPTO_KEY_LEN], const unsigned char *rec, size_t len,
		enum record_type *type_r, unsigned char **plain_r, size_t *plain_len_r,
		const char **error_r)
{
	struct record_header header;
	if (len < RECORD_HEADER_LEN || record_header_parse(rec, &header) < 0) {
		*error_r = "record header damaged";
		return -1;
	}
	if (header.payload_len != len - RECORD_HEADER_LEN) {
		*error_r = tstr_printf("record length %zu does not match its header (%u)",
				       len - RECORD_HEADER_LEN, header.payload_len);
		return -1;
	}
	size_t plain_len = header.payload_len - CRYPTO_AEAD_OVERHEAD;
	unsigned char *plain = mem_alloc(plain_len + 1);
	if (crypto_aead_decrypt(key, rec + RECORD_HEADER_LEN, header.payload_len, rec,
				RECORD_AD_LEN, plain) < 0) {
		mem_free(plain);
		*error_r = "record fails authentication (damaged, or another key)";
		return -1;
	}
	*type_r = header.type;
	*plain_r = plain;
	*plain_len_r = plain_len;
	return 0;
}

static void record_read_meta(struct reader *r, struct record_meta *meta, char **user_r,
			     char **folder_r)
{
	if (r_uint(r, 1) != RECORD_VERSION)
		r->bad = true;
	const unsigned char *hash = r_bytes(r, RECORD_HASH_LEN);
	if (hash != NULL)
		memcpy(meta->hash, hash, RECORD_HASH_LEN);
	meta->raw_size = r_uint(r, 8);
	meta->internal_date = (int64_t)r_uint(r, 8);
	meta->archived_at = (int64_t)r_uint(r, 8);
	*user_r = r_string(r);
	*folder_r = r_string(r);
	meta->user = *user_r;
	meta->folder = *folder_r;
}

int record_decode_meta(enum record_type type, const unsigned char *plain, size_t len,
		       struct record_meta *meta_r, char **user_r, char **folder_r,
		       const char **error_r)
{
	struct reader r = {plain, plain + len, false};
	if (type != RECORD_TYPE_MESSAGE && type != RECORD_TYPE_REF) {
		*error_r = "record has no message metadata";
		return -1;
	}
	memset(meta_r, 0, sizeof(*meta_r));
	record_read_meta(&r, meta_r, user_r, folder_r);
	if (r.bad) {
		mem_free(*user_r);
		mem_free(*folder_r);
		*user_r = *folder_r = NULL;
		*error_r = "record metadata truncated";
		return -1;
	}
	return 0;
}

static int record_decompress(struct reader *r, uint32_t dict_id, size_t out_len,
			     record_dict_lookup_t *lookup, void *context, unsigned char **out_r,
			     const char **error_r)
{
	const struct compress_dict *dict = NULL;
	if (dict_id != 0 && (lookup == NULL || (dict = lookup(dict_id, context)) == NULL)) {
		*error_r = tstr_printf("record needs dictionary %u, which is missing", dict_id);
		return -1;
	}
	if (out_len > RECORD_MAX_PAYLOAD * 2ull) {
		*error_r = "record claims an impossible size";
		return -1;
	}
	unsigned char *out = mem_alloc(out_len + 1);
	if (compress_decompress(r->p, (size_t)(r->end - r->p), dict, out, out_len, error_r) < 0) {
		mem_free(out);
		return -1;
	}
	*out_r = out;
	return 0;
}

int record_decode_message(const unsigned char *plain, size_t len, record_dict_lookup_t *lookup,
			  void *context, struct record_message *msg_r, const char **error_r)
{
	struct reader r = {plain, plain + len, false};
	memset(msg_r, 0, sizeof(*msg_r));
	record_read_meta(&r, &msg_r->meta, &msg_r->user_buf, &msg_r->folder_buf);
	msg_r->dict_id = (uint32_t)r_uint(&r, 4);
	uint64_t body_len = r_uint(&r, 8);
	if (r.bad) {
		*error_r = "message record truncated";
		goto fail;
	}
	if (record_decompress(&r, msg_r->dict_id, body_len, lookup, context, &msg_r->body_buf,
			      error_r) < 0)
		goto fail;
	struct reader b = {msg_r->body_buf, msg_r->body_buf + body_len, false};
	ARRAY(struct record_chunk) chunks = ARRAY_INIT;
	size_t total = 0;
	while (b.p < b.end && !b.bad) {
		struct record_chunk *c = array_push(&chunks);
		unsigned int kind = (unsigned int)r_uint(&b, 1);
		c->len = r_uint(&b, 4);
		if (kind == 1) {
			c->is_part = true;
			const unsigned char *h = r_bytes(&b, RECORD_HASH_LEN);
			if (h != NULL)
				memcpy(c->hash, h, RECORD_HASH_LEN);
		} else if (kind == 0) {
			c->data = r_bytes(&b, c->len);
		} else {
			b.bad = true;
		}
		total += c->len;
	}
	msg_r->chunks = chunks.items;
	msg_r->chunk_count = chunks.count;
	if (b.bad || total != msg_r->meta.raw_size) {
		*error_r = "message record body malformed";
		goto fail;
	}
	return 0;
fail:
	record_message_free(msg_r);
	return -1;
}

int record_decode_part(const unsigned char *plain, size_t len, record_dict_lookup_t *lookup,
		       void *context, struct record_part *part_r, const char **error_r)
{
	struct reader r = {plain, plain + len, false};
	memset(part_r, 0, sizeof(*part_r));
	if (r_uint(&r, 1) != RECORD_VERSION)
		r.bad = true;
	const unsigned char *h = r_bytes(&r, RECORD_HASH_LEN);
	part_r->len = r_uint(&r, 8);
	part_r->dict_id = (uint32_t)r_uint(&r, 4);
	if (r.bad) {
		*error_r = "part record truncated";
		return -1;
	}
	memcpy(part_r->hash, h, RECORD_HASH_LEN);
	return record_decompress(&r, part_r->dict_id, part_r->len, lookup, context, &part_r->data,
				 error_r);
}

int record_decode_dict(const unsigned char *plain, size_t len, struct record_dict *dict_r,
		       const char **error_r)
{
	struct reader r = {plain, plain + len, false};
	memset(dict_r, 0, sizeof(*dict_r));
	if (r_uint(&r, 1) != RECORD_VERSION)
		r.bad = true;
	dict_r->id = (uint32_t)r_uint(&r, 4);
	if (r.bad || dict_r->id == 0) {
		*error_r = "dictionary record malformed";
		return -1;
	}
	dict_r->len = (size_t)(r.end - r.p);
	dict_r->data = mem_alloc(dict_r->len + 1);
	memcpy(dict_r->data, r.p, dict_r->len);
	return 0;
}

void record_message_free(struct record_message *msg)
{
	mem_free(msg->chunks);
	mem_free(msg->user_buf);
	mem_free(msg->folder_buf);
	mem_free(msg->body_buf);
	memset(msg, 0, sizeof(*msg));
}

void record_part_free(struct record_part *part)
{
	mem_free(part->data);
	memset(part, 0, sizeof(*part));
}

void record_dict_free(struct record_dict *dict)
{
	mem_free(dict->data);
	memset(dict, 0, sizeof(*dict));
}
