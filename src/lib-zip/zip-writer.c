/* zip-writer: stored entries through libzip, read one at a time while the
 * archive is written (see the header). */
#include "zip-writer.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <stdbool.h>
#include <string.h>
#include <zip.h>

struct zip_writer {
	zip_t *za;
	zip_writer_read_fn *read;
	void *ctx;
	uint64_t entries;
	char *read_error; /* what `read` said, for zip_writer_finish() */
};

/* One entry's bytes, loaded when libzip opens the entry and dropped when it
 * closes it. */
struct zip_entry_source {
	struct zip_writer *zw;
	uint64_t index, size;
	time_t mtime;
	unsigned char *data;
	size_t len, pos;
	zip_error_t error;
};

static zip_int64_t zip_entry_fail(struct zip_entry_source *e, int ze)
{
	zip_error_set(&e->error, ze, 0);
	return -1;
}

static zip_int64_t zip_entry_open(struct zip_entry_source *e)
{
	const char *error;
	if (e->zw->read(e->zw->ctx, e->index, &e->data, &e->len, &error) < 0) {
		if (e->zw->read_error == NULL)
			e->zw->read_error = mem_strdup(error);
		return zip_entry_fail(e, ZIP_ER_READ);
	}
	if (e->len != e->size) {
		/* libzip wrote the size into the entry's header already */
		mem_free(e->data);
		e->data = NULL;
		if (e->zw->read_error == NULL)
			e->zw->read_error = mem_printf("entry %llu: %zu bytes instead of %llu",
						       (unsigned long long)e->index, e->len,
						       (unsigned long long)e->size);
		return zip_entry_fail(e, ZIP_ER_INCONS);
	}
	e->pos = 0;
	return 0;
}

static zip_int64_t zip_entry_read(struct zip_entry_source *e, void *buf, zip_uint64_t len)
{
	size_t n = e->len - e->pos < len ? e->len - e->pos : (size_t)len;
	memcpy(buf, e->data + e->pos, n);
	e->pos += n;
	return (zip_int64_t)n;
}

static zip_int64_t zip_entry_stat(struct zip_entry_source *e, void *data, zip_uint64_t len)
{
	if (len < sizeof(zip_stat_t))
		return zip_entry_fail(e, ZIP_ER_INVAL);
	zip_stat_t *st = data;
	zip_stat_init(st);
	st->size = e->size;
	st->mtime = e->mtime;
	st->valid |= ZIP_STAT_SIZE | ZIP_STAT_MTIME;
	return sizeof(zip_stat_t);
}

static zip_int64_t zip_entry_cb(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
	struct zip_entry_source *e = ud;
	switch (cmd) {
	case ZIP_SOURCE_OPEN:
		return zip_entry_open(e);
	case ZIP_SOURCE_READ:
		return zip_entry_read(e, data, len);
	case ZIP_SOURCE_CLOSE:
		mem_free(e->data);
		e->data = NULL;
		return 0;
	case ZIP_SOURCE_STAT:
		return zip_entry_stat(e, data, len);
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&e->error, data, len);
	case ZIP_SOURCE_FREE:
		mem_free(e->data);
		zip_error_fini(&e->error);
		mem_free(e);
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ,
						      ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
						      ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
	default:
		return zip_entry_fail(e, ZIP_ER_OPNOTSUPP);
	}
}

/* A name safe to extract anywhere: relative, no "..", no control bytes. */
static char *zip_writer_safe_name(const char *name)
{
	struct str *s = str_create(strlen(name) + 8);
	while (*name == '/')
		name++;
	for (const char *p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		str_append_c(s, c < 0x20 || c == 0x7f || c == '\\' || c == ':' ? '_' : (char)c);
	}
	char *text = str_steal(&s);
	/* ".." as a path component becomes "__" */
	for (char *p = text; (p = strstr(p, "..")) != NULL; p += 2) {
		bool starts = p == text || p[-1] == '/';
		bool ends = p[2] == '\0' || p[2] == '/';
		if (starts && ends)
			p[0] = p[1] = '_';
	}
	if (text[0] == '\0' || text[strlen(text) - 1] == '/') {
		char *named = mem_printf("%sunnamed", text);
		mem_free(text);
		text = named;
	}
	return text;
}

/* `safe` itself, or with " (N)" before its extension: N starts at the
 * entry's position (unique among the suffixes this writer makes) and grows
 * by the entry count only if a given name happens to look the same. */
static char *zip_writer_unique_name(struct zip_writer *zw, char *safe)
{
	if (zip_name_locate(zw->za, safe, ZIP_FL_ENC_UTF_8) < 0)
		return safe;
	const char *slash = strrchr(safe, '/');
	const char *dot = strrchr(safe, '.');
	size_t stem = dot != NULL && dot > safe && (slash == NULL || dot > slash + 1)
			      ? (size_t)(dot - safe)
			      : strlen(safe);
	char *candidate = NULL;
	for (uint64_t n = zw->entries + 1;; n += zw->entries + 1) {
		mem_free(candidate);
		candidate = mem_printf("%.*s (%llu)%s", (int)stem, safe, (unsigned long long)n,
				       safe + stem);
		if (zip_name_locate(zw->za, candidate, ZIP_FL_ENC_UTF_8) < 0)
			break;
	}
	mem_free(safe);
	return candidate;
}

struct zip_writer *zip_writer_create(const char *path, zip_writer_read_fn *read, void *ctx,
				     const char **error_r)
{
	int ze;
	zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
	if (za == NULL) {
		zip_error_t error;
		zip_error_init_with_code(&error, ze);
		*error_r = tstr_printf("%s: %s", path, zip_error_strerror(&error));
		zip_error_fini(&error);
		return NULL;
	}
	struct zip_writer *zw = mem_new(struct zip_writer);
	zw->za = za;
	zw->read = read;
	zw->ctx = ctx;
	return zw;
}

int zip_writer_add(struct zip_writer *zw, const char *name, uint64_t index, uint64_t size,
		   time_t mtime, const char **error_r)
{
	struct zip_entry_source *e = mem_new(struct zip_entry_source);
	e->zw = zw;
	e->index = index;
	e->size = size;
	e->mtime = mtime;
	zip_error_init(&e->error);
	zip_source_t *src = zip_source_function(zw->za, zip_entry_cb, e);
	if (src == NULL) {
		zip_error_fini(&e->error);
		mem_free(e);
		*error_r = tstr_printf("zip: %s", zip_strerror(zw->za));
		return -1;
	}
	char *unique = zip_writer_unique_name(zw, zip_writer_safe_name(name));
	zip_int64_t idx = zip_file_add(zw->za, unique, src, ZIP_FL_ENC_UTF_8);
	mem_free(unique);
	if (idx < 0) {
		zip_source_free(src); /* frees e */
		*error_r = tstr_printf("zip: %s", zip_strerror(zw->za));
		return -1;
	}
	if (zip_set_file_compression(zw->za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) < 0 ||
	    zip_file_set_mtime(zw->za, (zip_uint64_t)idx, mtime, 0) < 0) {
		*error_r = tstr_printf("zip: %s", zip_strerror(zw->za));
		(void)zip_delete(zw->za, (zip_uint64_t)idx);
		return -1;
	}
	zw->entries++;
	return 0;
}

int zip_writer_finish(struct zip_writer **_zw, const char **error_r)
{
	struct zip_writer *zw = *_zw;
	*_zw = NULL;
	int ret = 0;
	if (zip_close(zw->za) < 0) {
		*error_r = zw->read_error != NULL ? tstr_printf("%s", zw->read_error)
						  : tstr_printf("zip: %s", zip_strerror(zw->za));
		zip_discard(zw->za);
		ret = -1;
	}
	mem_free(zw->read_error);
	mem_free(zw);
	return ret;
}

void zip_writer_destroy(struct zip_writer **_zw)
{
	struct zip_writer *zw = *_zw;
	if (zw == NULL)
		return;
	*_zw = NULL;
	zip_discard(zw->za);
	mem_free(zw->read_error);
	mem_free(zw);
}
