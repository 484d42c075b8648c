#ifndef COFFER_ZIP_WRITER_H
#define COFFER_ZIP_WRITER_H
/* zip-writer: a zip archive of stored (uncompressed) entries written to a
 * file, with libzip (the only module that includes zip.h). Exports of
 * archived mail use it: messages compress poorly next to what zstd already
 * did for storage, and storing keeps the work per byte small.
 *
 * Contract: zip_writer_create() names the file to write; zip_writer_add()
 * records an entry whose bytes are asked for only while zip_writer_finish()
 * writes the archive, one entry at a time (`read` gives a mem_alloc()ed copy
 * that is freed as soon as the entry is written), so memory stays bounded by
 * the largest entry whatever the archive's size. libzip writes a temporary
 * file beside `path` and renames it into place; zip64 records are used when
 * sizes need them. Names are made safe for extraction (no leading '/', no
 * ".." component, control characters, backslashes and ':' become '_') and
 * flagged UTF-8; a name already used gets " (N)" before its extension, N
 * being the entry's position, so each entry costs a constant number of
 * look-ups in libzip's name hash (never a search through earlier names).
 * Entry times are `mtime` (local time, as zip stores it). */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct zip_writer;

/* The bytes of entry `index` (the value given to zip_writer_add()): 0 with
 * a mem_alloc()ed *data_r, or -1 with *error_r. */
typedef int zip_writer_read_fn(void *ctx, uint64_t index, unsigned char **data_r, size_t *len_r,
			       const char **error_r);

struct zip_writer *zip_writer_create(const char *path, zip_writer_read_fn *read, void *ctx,
				     const char **error_r);
/* `size` must be the length `read` will give for `index`. */
int zip_writer_add(struct zip_writer *zw, const char *name, uint64_t index, uint64_t size,
		   time_t mtime, const char **error_r);
/* Write the archive and free the writer; -1 with *error_r (the file is then
 * not created). */
int zip_writer_finish(struct zip_writer **zw, const char **error_r);
/* Free without writing anything. */
void zip_writer_destroy(struct zip_writer **zw);

#endif
