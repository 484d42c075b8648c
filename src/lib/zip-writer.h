#ifndef COFFER_ZIP_WRITER_H
#define COFFER_ZIP_WRITER_H
/* zip-writer: a zip archive of stored (uncompressed) entries, built in memory
 * (exports of archived mail: messages compress poorly next to what zstd
 * already did for storage, and a stored zip needs no zlib).
 *
 * Contract: entries are appended to `out` as they are added (local header,
 * then the bytes); zip_writer_finish() appends the central directory and the
 * end record, and destroys the writer. The result is a plain PKZIP 2.0 file
 * ("version needed" 2.0, method 0, CRC-32 of every entry, names flagged UTF-8)
 * that unzip, Python's zipfile, Windows and macOS open. No zip64: an entry or
 * the whole archive must stay below 4 GiB and at most 65535 entries, else
 * zip_writer_add() fails (-1, *error_r) and adds nothing. Names are made safe
 * for extraction: no leading '/', no "..", no control characters or
 * backslashes (they are replaced with '_'); a name already used gets " (2)",
 * " (3)", ... before its extension. */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct str;
struct zip_writer;

#define ZIP_WRITER_MAX_ENTRIES 65535
#define ZIP_WRITER_MAX_BYTES 0xfffffffeULL

struct zip_writer *zip_writer_create(struct str *out);
int zip_writer_add(struct zip_writer *zw, const char *name, const void *data, size_t len,
		   time_t mtime, const char **error_r);
/* Write the central directory; the zip in `out` is then complete. */
void zip_writer_finish(struct zip_writer **zw);
/* Free without finishing (an export that failed half way). */
void zip_writer_destroy(struct zip_writer **zw);

/* CRC-32 (ISO-HDLC, as zip, gzip and PNG use it); `crc` 0 to start. */
uint32_t zip_writer_crc32(uint32_t crc, const void *data, size_t len);

#endif
