#include "store.h"
#include "array.h"
#include "file.h"
#include "mem.h"
#include "record.h"
#include "tstr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct store_segment {
	int fd; /* read-write; -1 until opened */
	uint64_t size;
};

struct store {
	char *dir;
	uint64_t segment_max;
	/* segments.items[i] is segment number i + 1 (at most UINT32_MAX) */
	ARRAY(struct store_segment) segments;
	bool dirty;
};

static char *store_segment_path(const struct store *store, uint32_t segment)
{
	return mem_printf("%s/seg-%06u", store->dir, segment);
}

static int store_segment_open(struct store *store, uint32_t segment, bool create,
			      const char **error_r)
{
	struct store_segment *seg = &store->segments.items[segment - 1];
	if (seg->fd >= 0)
		return 0;
	char *path = store_segment_path(store, segment);
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (fd < 0) {
		*error_r = tstr_printf("open(%s) failed: %s", path, strerror(errno));
		mem_free(path);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*error_r = tstr_printf("fstat(%s) failed: %s", path, strerror(errno));
		close(fd);
		mem_free(path);
		return -1;
	}
	mem_free(path);
	seg->fd = fd;
	seg->size = (uint64_t)st.st_size;
	return 0;
}

static void store_add_segment_slot(struct store *store)
{
	struct store_segment *seg = array_push(&store->segments);
	seg->fd = -1;
	seg->size = 0;
}

int store_open(const char *dir, uint64_t segment_max, struct store **store_r, const char **error_r)
{
	if (file_mkdir_parents(dir, 0700, error_r) < 0)
		return -1;
	DIR *d = opendir(dir);
	if (d == NULL) {
		*error_r = tstr_printf("opendir(%s) failed: %s", dir, strerror(errno));
		return -1;
	}
	uint32_t max_seg = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		unsigned int n;
		char extra;
		if (sscanf(de->d_name, "seg-%u%c", &n, &extra) == 1 && n > max_seg && n < 1000000)
			max_seg = n;
	}
	closedir(d);
	struct store *store = mem_new(struct store);
	store->dir = mem_strdup(dir);
	store->segment_max = segment_max == 0 ? STORE_SEGMENT_MAX_DEFAULT : segment_max;
	for (uint32_t i = 0; i < max_seg; i++)
		store_add_segment_slot(store);
	for (uint32_t i = 1; i <= max_seg; i++) {
		/* a segment missing in the middle is an empty one */
		if (store_segment_open(store, i, true, error_r) < 0) {
			store_destroy(&store);
			return -1;
		}
	}
	*store_r = store;
	return 0;
}

void store_destroy(struct store **_store)
{
	struct store *store = *_store;
	if (store == NULL)
		return;
	*_store = NULL;
	for (uint32_t i = 0; i < store->segments.count; i++) {
		if (store->segments.items[i].fd >= 0)
			close(store->segments.items[i].fd);
	}
	array_free(&store->segments);
	mem_free(store->dir);
	mem_free(store);
}

const char *store_dir(const struct store *store)
{
	return store->dir;
}

void store_tail(const struct store *store, uint32_t *segment_r, uint64_t *length_r)
{
	if (store->segments.count == 0) {
		*segment_r = 0;
		*length_r = 0;
		return;
	}
	*segment_r = store->segments.count;
	*length_r = store->segments.items[store->segments.count - 1].size;
}

uint64_t store_size(const struct store *store)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < store->segments.count; i++)
		total += store->segments.items[i].size;
	return total;
}

static int store_pwrite_all(int fd, const unsigned char *p, size_t len, uint64_t offset)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

int store_append(struct store *store, const void *rec, size_t len, struct store_loc *loc_r,
		 const char **error_r)
{
	if (store->segments.count == 0 ||
	    (store->segments.items[store->segments.count - 1].size > 0 &&
	     store->segments.items[store->segments.count - 1].size + len > store->segment_max)) {
		if (store->dirty && store_sync(store, error_r) < 0)
			return -1;
		store_add_segment_slot(store);
		if (store_segment_open(store, store->segments.count, true, error_r) < 0) {
			store->segments.count--;
			return -1;
		}
		if (file_fsync_dir(store->dir, error_r) < 0)
			return -1;
	}
	struct store_segment *seg = &store->segments.items[store->segments.count - 1];
	if (store_pwrite_all(seg->fd, rec, len, seg->size) < 0) {
		*error_r = tstr_printf("writing %s/seg-%06zu failed: %s", store->dir,
				       store->segments.count, strerror(errno));
		return -1;
	}
	loc_r->segment = store->segments.count;
	loc_r->offset = seg->size;
	loc_r->length = (uint32_t)len;
	seg->size += len;
	store->dirty = true;
	return 0;
}

int store_sync(struct store *store, const char **error_r)
{
	if (!store->dirty)
		return 0;
	/* Earlier segments were synced when the next one was started. */
	struct store_segment *seg = &store->segments.items[store->segments.count - 1];
	if (fdatasync(seg->fd) < 0) {
		*error_r = tstr_printf("fdatasync(%s/seg-%06zu) failed: %s", store->dir,
				       store->segments.count, strerror(errno));
		return -1;
	}
	store->dirty = false;
	return 0;
}

int store_truncate_to(struct store *store, uint32_t segment, uint64_t length, const char **error_r)
{
	while (store->segments.count > segment && store->segments.count > 0) {
		struct store_segment *seg = &store->segments.items[store->segments.count - 1];
		char *path = store_segment_path(store, store->segments.count);
		if (seg->fd >= 0)
			close(seg->fd);
		if (unlink(path) < 0 && errno != ENOENT) {
			*error_r = tstr_printf("unlink(%s) failed: %s", path, strerror(errno));
			mem_free(path);
			return -1;
		}
		mem_free(path);
		store->segments.count--;
	}
	if (segment > 0 && segment <= store->segments.count) {
		struct store_segment *seg = &store->segments.items[segment - 1];
		if (store_segment_open(store, segment, true, error_r) < 0)
			return -1;
		if (seg->size != length) {
			if (ftruncate(seg->fd, (off_t)length) < 0 || fsync(seg->fd) < 0) {
				*error_r = tstr_printf("truncating %s/seg-%06u failed: %s",
						       store->dir, segment, strerror(errno));
				return -1;
			}
			seg->size = length;
		}
	}
	store->dirty = false;
	return file_fsync_dir(store->dir, error_r);
}

static int store_pread_all(int fd, unsigned char *p, size_t len, uint64_t offset, size_t *got_r)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, p + got, len - got, (off_t)(offset + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*got_r = got;
	return 0;
}

int store_read(struct store *store, const struct store_loc *loc, unsigned char **rec_r,
	       const char **error_r)
{
	if (loc->segment == 0 || loc->segment > store->segments.count) {
		*error_r = tstr_printf("%s has no segment %u", store->dir, loc->segment);
		return -1;
	}
	if (store_segment_open(store, loc->segment, false, error_r) < 0)
		return -1;
	unsigned char *rec = mem_alloc(loc->length > 0 ? loc->length : 1);
	size_t got;
	if (store_pread_all(store->segments.items[loc->segment - 1].fd, rec, loc->length,
			    loc->offset, &got) < 0) {
		*error_r = tstr_printf("reading %s/seg-%06u failed: %s", store->dir, loc->segment,
				       strerror(errno));
		mem_free(rec);
		return -1;
	}
	if (got != loc->length) {
		*error_r = tstr_printf("%s/seg-%06u ends before the record at offset %llu",
				       store->dir, loc->segment, (unsigned long long)loc->offset);
		mem_free(rec);
		return -1;
	}
	*rec_r = rec;
	return 0;
}

struct store_scan {
	struct store *store;
	uint32_t segment;
	uint64_t offset;
};

struct store_scan *store_scan_create(struct store *store)
{
	struct store_scan *scan = mem_new(struct store_scan);
	scan->store = store;
	scan->segment = 1;
	return scan;
}

void store_scan_destroy(struct store_scan **scan)
{
	mem_free(*scan);
	*scan = NULL;
}

/* Find the next offset after `from` where a valid record header starts. */
static int store_scan_resync(struct store_scan *scan, int fd, uint64_t from, uint64_t size,
			     uint64_t *next_r)
{
	unsigned char buf[65536];
	uint64_t pos = from;
	while (pos + RECORD_HEADER_LEN <= size) {
		size_t got;
		if (store_pread_all(fd, buf, sizeof(buf), pos, &got) < 0)
			return -1;
		if (got < RECORD_HEADER_LEN)
			break;
		for (size_t i = 0; i + RECORD_HEADER_LEN <= got; i++) {
			struct record_header h;
			if (buf[i] == 'C' && record_header_parse(buf + i, &h) == 0) {
				*next_r = pos + i;
				return 0;
			}
		}
		pos += got - RECORD_HEADER_LEN + 1;
	}
	*next_r = size;
	return 0;
}

int store_scan_next(struct store_scan *scan, enum store_scan_result *result_r,
		    struct store_loc *loc_r, unsigned char **rec_r, const char **error_r)
{
	struct store *store = scan->store;
	for (;;) {
		if (scan->segment > store->segments.count) {
			*result_r = STORE_SCAN_END;
			return 0;
		}
		if (store_segment_open(store, scan->segment, false, error_r) < 0)
			return -1;
		struct store_segment *seg = &store->segments.items[scan->segment - 1];
		if (scan->offset >= seg->size) {
			scan->segment++;
			scan->offset = 0;
			continue;
		}
		loc_r->segment = scan->segment;
		loc_r->offset = scan->offset;
		unsigned char header[RECORD_HEADER_LEN];
		size_t got;
		struct record_header h;
		if (store_pread_all(seg->fd, header, sizeof(header), scan->offset, &got) < 0)
			goto io_error;
		if (got == RECORD_HEADER_LEN && record_header_parse(header, &h) == 0) {
			uint64_t total = RECORD_HEADER_LEN + (uint64_t)h.payload_len;
			if (scan->offset + total > seg->size) {
				/* A torn tail, or a damaged length: look further. */
				uint64_t next;
				if (store_scan_resync(scan, seg->fd, scan->offset + 1, seg->size,
						      &next) < 0)
					goto io_error;
				loc_r->length = (uint32_t)(next - scan->offset);
				*result_r =
					next == seg->size ? STORE_SCAN_TORN : STORE_SCAN_DAMAGED;
				scan->offset = next;
				return 0;
			}
			loc_r->length = (uint32_t)total;
			if (store_read(store, loc_r, rec_r, error_r) < 0)
				return -1;
			scan->offset += total;
			*result_r = STORE_SCAN_RECORD;
			return 0;
		}
		uint64_t next;
		if (store_scan_resync(scan, seg->fd, scan->offset + 1, seg->size, &next) < 0)
			goto io_error;
		loc_r->length = (uint32_t)(next - scan->offset);
		*result_r = got < RECORD_HEADER_LEN ? STORE_SCAN_TORN : STORE_SCAN_DAMAGED;
		scan->offset = next;
		return 0;
	}
io_error:
	*error_r = tstr_printf("reading %s/seg-%06u failed: %s", store->dir, scan->segment,
			       strerror(errno));
	return -1;
}

/* ---- compaction ---- */

static char *store_compact_path(const char *dir, uint32_t segment)
{
	return mem_printf("%s/seg-%06u.compact", dir, segment);
}

/* Compaction reads a segment and writes its kept records in pieces of this
 * size: large sequential I/O instead of two reads, an allocation and a
 * write per record. */
#define STORE_COMPACT_IO (1024 * 1024)

struct store_compact_io {
	struct store *store;
	uint32_t segment;
	int in_fd, out_fd;
	uint64_t size;      /* of the segment */
	unsigned char *buf; /* STORE_COMPACT_IO bytes of the segment ... */
	uint64_t buf_pos;   /* ... from this offset */
	size_t buf_len;
	uint64_t run_start;   /* kept records not written yet: [run_start, */
	uint64_t run_end;     /*  run_end) of the segment */
	uint64_t out;         /* bytes written to the new file */
	unsigned char *chunk; /* for copying a run */
};

static int store_compact_io_error(struct store_compact_io *io, const char *op, const char **error_r)
{
	*error_r = tstr_printf("%s %s/seg-%06u%s failed: %s", op, io->store->dir, io->segment,
			       strcmp(op, "writing") == 0 ? ".compact" : "", strerror(errno));
	return -1;
}

/* The 16 header bytes at pos, from the buffer (refilled from pos when they
 * are not in it); NULL at the end of the segment or a short read. */
static const unsigned char *store_compact_header(struct store_compact_io *io, uint64_t pos,
						 int *error)
{
	*error = 0;
	if (pos < io->buf_pos || pos + RECORD_HEADER_LEN > io->buf_pos + io->buf_len) {
		size_t got;
		if (store_pread_all(io->in_fd, io->buf, STORE_COMPACT_IO, pos, &got) < 0) {
			*error = -1;
			return NULL;
		}
		io->buf_pos = pos;
		io->buf_len = got;
		if (got < RECORD_HEADER_LEN)
			return NULL;
	}
	return io->buf + (pos - io->buf_pos);
}

/* Writes the pending run of kept records: bytes [run_start, run_end) of
 * the segment appended to the new file, in pieces. */
static int store_compact_flush(struct store_compact_io *io, const char **error_r)
{
	uint64_t pos = io->run_start;
	while (pos < io->run_end) {
		size_t n = io->run_end - pos < STORE_COMPACT_IO ? (size_t)(io->run_end - pos)
								: STORE_COMPACT_IO;
		size_t got;
		if (store_pread_all(io->in_fd, io->chunk, n, pos, &got) < 0 || got != n)
			return store_compact_io_error(io, "reading", error_r);
		if (store_pwrite_all(io->out_fd, io->chunk, n, io->out) < 0)
			return store_compact_io_error(io, "writing", error_r);
		io->out += n;
		pos += n;
	}
	io->run_start = io->run_end;
	return 0;
}

/* Copies the kept records of one segment into fd, in order. Records are
 * copied as they are (sealed: the AEAD's associated data is the header,
 * not the offset), each run of kept records with large writes. */
static int store_compact_copy(struct store *store, uint32_t segment, int fd, store_keep_cb *keep,
			      void *context, uint64_t *new_len_r, const char **error_r)
{
	if (store_segment_open(store, segment, false, error_r) < 0)
		return -1;
	struct store_compact_io io = {
		.store = store,
		.segment = segment,
		.in_fd = store->segments.items[segment - 1].fd,
		.out_fd = fd,
		.size = store->segments.items[segment - 1].size,
		.buf = mem_alloc(STORE_COMPACT_IO),
		.chunk = mem_alloc(STORE_COMPACT_IO),
	};
	uint64_t pos = 0;
	int ret = 0;
	while (ret == 0 && pos < io.size) {
		int error;
		struct record_header h;
		const unsigned char *header = store_compact_header(&io, pos, &error);
		if (error < 0) {
			ret = store_compact_io_error(&io, "reading", error_r);
			break;
		}
		if (header == NULL || record_header_parse(header, &h) < 0 ||
		    pos + RECORD_HEADER_LEN + (uint64_t)h.payload_len > io.size) {
			*error_r = tstr_printf("%s/seg-%06u is damaged at offset %llu; verify it"
					       " before compacting",
					       store->dir, segment, (unsigned long long)pos);
			ret = -1;
			break;
		}
		struct store_loc loc = {.segment = segment,
					.offset = pos,
					.length = (uint32_t)(RECORD_HEADER_LEN + h.payload_len)};
		/* the offset it gets: after what was written and the pending run */
		int k = keep(&loc, io.out + (io.run_end - io.run_start), context);
		if (k < 0) {
			ret = -1;
		} else if (k > 0) {
			if (io.run_end != pos) { /* a new run: the last one ended earlier */
				ret = store_compact_flush(&io, error_r);
				io.run_start = io.run_end = pos;
			}
			io.run_end = pos + loc.length;
		}
		pos += loc.length;
	}
	if (ret == 0)
		ret = store_compact_flush(&io, error_r);
	mem_free(io.buf);
	mem_free(io.chunk);
	if (ret == 0)
		*new_len_r = io.out;
	return ret;
}

int store_compact_write(struct store *store, uint32_t segment, store_keep_cb *keep, void *context,
			uint64_t *new_len_r, const char **error_r)
{
	if (segment == 0 || segment > store->segments.count) {
		*error_r = tstr_printf("%s has no segment %u", store->dir, segment);
		return -1;
	}
	if (store->dirty && store_sync(store, error_r) < 0)
		return -1;
	char *path = store_compact_path(store->dir, segment);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = tstr_printf("open(%s) failed: %s", path, strerror(errno));
		mem_free(path);
		return -1;
	}
	int ret = store_compact_copy(store, segment, fd, keep, context, new_len_r, error_r);
	if (ret == 0 && fsync(fd) < 0) {
		*error_r = tstr_printf("fsync(%s) failed: %s", path, strerror(errno));
		ret = -1;
	}
	close(fd);
	if (ret < 0)
		unlink(path);
	mem_free(path);
	/* the new file's name must be durable before the catalog refers to it */
	return ret < 0 ? -1 : file_fsync_dir(store->dir, error_r);
}

int store_compact_install(struct store *store, uint32_t segment, const char **error_r)
{
	char *from = store_compact_path(store->dir, segment);
	char *to = store_segment_path(store, segment);
	int ret = rename(from, to);
	if (ret < 0)
		*error_r = tstr_printf("rename(%s, %s) failed: %s", from, to, strerror(errno));
	mem_free(from);
	mem_free(to);
	if (ret < 0 || file_fsync_dir(store->dir, error_r) < 0)
		return -1;
	struct store_segment *seg = &store->segments.items[segment - 1];
	if (seg->fd >= 0)
		close(seg->fd);
	seg->fd = -1;
	return store_segment_open(store, segment, false, error_r);
}

void store_compact_discard(struct store *store, uint32_t segment)
{
	char *path = store_compact_path(store->dir, segment);
	(void)unlink(path);
	mem_free(path);
}

int store_compact_recover(const char *dir, store_committed_cb *committed, void *context,
			  const char **error_r)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0
				       : (*error_r = tstr_printf("opendir(%s) failed: %s", dir,
								 strerror(errno)),
					  -1);
	ARRAY(uint32_t) found = ARRAY_INIT;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		unsigned int n;
		char rest[9];
		if (sscanf(de->d_name, "seg-%u.%8s", &n, rest) == 2 && strcmp(rest, "compact") == 0)
			array_append(&found, n);
	}
	closedir(d);
	int ret = 0;
	for (size_t i = 0; ret == 0 && i < found.count; i++) {
		char *from = store_compact_path(dir, found.items[i]);
		char *to = mem_printf("%s/seg-%06u", dir, found.items[i]);
		int c = committed(found.items[i], context, error_r);
		if (c < 0)
			ret = -1;
		else if (c > 0 && rename(from, to) < 0)
			ret = -1,
			*error_r = tstr_printf("rename(%s) failed: %s", from, strerror(errno));
		else if (c == 0 && unlink(from) < 0 && errno != ENOENT)
			ret = -1,
			*error_r = tstr_printf("unlink(%s) failed: %s", from, strerror(errno));
		mem_free(from);
		mem_free(to);
	}
	if (ret == 0 && found.count > 0)
		ret = file_fsync_dir(dir, error_r);
	array_free(&found);
	return ret;
}
