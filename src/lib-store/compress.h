#ifndef COFFER_COMPRESS_H
#define COFFER_COMPRESS_H
/* compress: zstd compression with optional per-instance dictionaries.
 *
 * Contract: a compress_dict is immutable once created and may be shared by
 * threads. compress_buffer() and compress_decompress() keep their zstd
 * contexts per thread, so they are thread-safe. compress_buffer() returns a
 * mem_alloc()ed buffer; compress_decompress() fails (-1) unless the input
 * decompresses to exactly expected_len bytes. compress_train() builds a
 * dictionary from samples (-1 with *error_r if zstd cannot, e.g. too few). */
#include <stddef.h>
#include <stdint.h>

#define COMPRESS_LEVEL 4
#define COMPRESS_DICT_MAX (512 * 1024)

struct compress_dict;

struct compress_dict *compress_dict_create(uint32_t id, const void *data, size_t len);
void compress_dict_destroy(struct compress_dict **dict);
uint32_t compress_dict_id(const struct compress_dict *dict);
const void *compress_dict_data(const struct compress_dict *dict, size_t *len_r);

unsigned char *compress_buffer(const void *data, size_t len, const struct compress_dict *dict,
			       size_t *len_r);
/* Streaming form of compress_buffer() for data in pieces (a message's chunks):
 * compresses their concatenation into out, which holds at least
 * compress_bound() of the total; returns the compressed length. */
struct compress_piece {
	const void *data;
	size_t len;
};
size_t compress_bound(size_t len);
size_t compress_pieces(const struct compress_piece *pieces, size_t count,
		       const struct compress_dict *dict, void *out, size_t out_cap);
int compress_decompress(const void *data, size_t len, const struct compress_dict *dict, void *out,
			size_t expected_len, const char **error_r);
int compress_train(const void *samples, const size_t *sample_sizes, unsigned int count,
		   size_t dict_max, void **dict_r, size_t *dict_len_r, const char **error_r);

#endif
