#include "zip-writer.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <stdbool.h>
#include <string.h>

struct zip_entry {
	char *name;
	uint32_t crc, size, offset;
	uint16_t dos_time, dos_date;
};

struct zip_writer {
	struct str *out;
	size_t start; /* where the zip begins in `out` */
	struct zip_entry *entries;
	size_t count, cap;
	uint64_t cd_bytes; /* the central directory so far */
};

uint32_t zip_writer_crc32(uint32_t crc, const void *data, size_t len)
{
	static uint32_t table[256];
	static _Thread_local int ready; /* each thread fills the same values */
	if (!ready) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}
	const unsigned char *p = data;
	crc = ~crc;
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

struct zip_writer *zip_writer_create(struct str *out)
{
	struct zip_writer *zw = mem_new(struct zip_writer);
	zw->out = out;
	zw->start = str_len(out);
	return zw;
}

static void zip_put16(struct str *out, uint16_t v)
{
	unsigned char b[2] = {v & 0xff, v >> 8};
	str_append_n(out, b, 2);
}

static void zip_put32(struct str *out, uint32_t v)
{
	unsigned char b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
	str_append_n(out, b, 4);
}

/* A name safe to extract anywhere: relative, no "..", no control bytes. */
static char *zip_safe_name(const char *name)
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
	if (text[0] == '\0') {
		mem_free(text);
		text = mem_strdup("unnamed");
	}
	return text;
}

static bool zip_name_used(const struct zip_writer *zw, const char *name)
{
	for (size_t i = 0; i < zw->count; i++) {
		if (strcmp(zw->entries[i].name, name) == 0)
			return true;
	}
	return false;
}

static char *zip_unique_name(const struct zip_writer *zw, const char *name)
{
	char *safe = zip_safe_name(name);
	if (!zip_name_used(zw, safe))
		return safe;
	const char *slash = strrchr(safe, '/');
	const char *dot = strrchr(safe, '.');
	size_t stem = dot != NULL && dot > safe && (slash == NULL || dot > slash + 1) ?
		      (size_t)(dot - safe) : strlen(safe);
	char *candidate = NULL;
	for (unsigned int n = 2;; n++) {
		mem_free(candidate);
		candidate = mem_printf("%.*s (%u)%s", (int)stem, safe, n, safe + stem);
		if (!zip_name_used(zw, candidate))
			break;
	}
	mem_free(safe);
	return candidate;
}

static void zip_dos_time(time_t mtime, uint16_t *time_r, uint16_t *date_r)
{
	struct tm tm;
	if (mtime <= 0 || gmtime_r(&mtime, &tm) == NULL || tm.tm_year < 80 || tm.tm_year > 207) {
		*time_r = 0;
		*date_r = (1 << 5) | 1; /* 1980-01-01 */
		return;
	}
	*time_r = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
	*date_r = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
}

/* The fields local and central headers share, from "version needed" on. */
static void zip_put_common(struct str *out, const struct zip_entry *e)
{
	zip_put16(out, 20);	    /* version needed: 2.0 */
	zip_put16(out, 1u << 11);   /* flags: names are UTF-8 */
	zip_put16(out, 0);	    /* method: stored */
	zip_put16(out, e->dos_time);
	zip_put16(out, e->dos_date);
	zip_put32(out, e->crc);
	zip_put32(out, e->size); /* compressed */
	zip_put32(out, e->size); /* uncompressed */
	zip_put16(out, (uint16_t)strlen(e->name));
	zip_put16(out, 0); /* extra field length */
}

int zip_writer_add(struct zip_writer *zw, const char *name, const void *data, size_t len,
		   time_t mtime, const char **error_r)
{
	size_t used = str_len(zw->out) - zw->start;
	if (zw->count >= ZIP_WRITER_MAX_ENTRIES) {
		*error_r = tstr_printf("zip: more than %d entries", ZIP_WRITER_MAX_ENTRIES);
		return -1;
	}
	char *entry_name = zip_unique_name(zw, name);
	size_t name_len = strlen(entry_name);
	/* Room for this entry and its central directory record stays below 4 GiB. */
	uint64_t need = (uint64_t)used + 30 + name_len + len + zw->cd_bytes + 46 + name_len + 22;
	if (name_len > 0xffff || need > ZIP_WRITER_MAX_BYTES) {
		*error_r = tstr_printf("zip: '%s' would make the archive larger than 4 GiB (no zip64)",
				       entry_name);
		mem_free(entry_name);
		return -1;
	}
	if (zw->count == zw->cap) {
		zw->cap = zw->cap == 0 ? 16 : zw->cap * 2;
		zw->entries = mem_realloc(zw->entries, zw->cap * sizeof(*zw->entries));
	}
	struct zip_entry *e = &zw->entries[zw->count++];
	zw->cd_bytes += 46 + name_len;
	e->name = entry_name;
	e->crc = zip_writer_crc32(0, data, len);
	e->size = (uint32_t)len;
	e->offset = (uint32_t)used;
	zip_dos_time(mtime, &e->dos_time, &e->dos_date);
	zip_put32(zw->out, 0x04034b50);
	zip_put_common(zw->out, e);
	str_append(zw->out, e->name);
	str_append_n(zw->out, data, len);
	return 0;
}

void zip_writer_finish(struct zip_writer **_zw)
{
	struct zip_writer *zw = *_zw;
	uint32_t cd_start = (uint32_t)(str_len(zw->out) - zw->start);
	for (size_t i = 0; i < zw->count; i++) {
		const struct zip_entry *e = &zw->entries[i];
		zip_put32(zw->out, 0x02014b50);
		zip_put16(zw->out, (3 << 8) | 20); /* made by: Unix, 2.0 */
		zip_put_common(zw->out, e);
		zip_put16(zw->out, 0); /* comment length */
		zip_put16(zw->out, 0); /* disk */
		zip_put16(zw->out, 0); /* internal attributes */
		zip_put32(zw->out, 0100644u << 16); /* external: a regular file, rw-r--r-- */
		zip_put32(zw->out, e->offset);
		str_append(zw->out, e->name);
	}
	uint32_t cd_size = (uint32_t)(str_len(zw->out) - zw->start) - cd_start;
	zip_put32(zw->out, 0x06054b50);
	zip_put16(zw->out, 0);
	zip_put16(zw->out, 0);
	zip_put16(zw->out, (uint16_t)zw->count);
	zip_put16(zw->out, (uint16_t)zw->count);
	zip_put32(zw->out, cd_size);
	zip_put32(zw->out, cd_start);
	zip_put16(zw->out, 0); /* comment length */
	zip_writer_destroy(_zw);
}

void zip_writer_destroy(struct zip_writer **_zw)
{
	struct zip_writer *zw = *_zw;
	if (zw == NULL)
		return;
	for (size_t i = 0; i < zw->count; i++)
		mem_free(zw->entries[i].name);
	mem_free(zw->entries);
	mem_free(zw);
	*_zw = NULL;
}
