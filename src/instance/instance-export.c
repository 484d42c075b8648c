/* instance-export: downloads built here, in the instance process, into an
 * unlinked temporary file and read out in pieces (see the header).
 *
 * Why a file: libzip writes an archive in one zip_close() and needs a
 * seekable output (it goes back to complete each entry's header). Written
 * to a file, memory stays at one message at a time whatever the export's
 * size, the size is known before the first byte goes out (Content-Length),
 * and the Client Access Server only forwards bytes, one piece per client
 * read, so a slow or vanished client costs it nothing but a file
 * descriptor here until the export ends. The file lives in <base>/tmp (the
 * only place the sandbox lets this process write) and is bounded by
 * INSTANCE_EXPORT_MAX_BYTES plus the zip or mbox framing. */
#include "instance-export.h"
#include "archive.h"
#include "catalog.h"
#include "instance-archive.h"
#include "instance.h"
#include "json.h"
#include "mbox-writer.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"
#include "zip-writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct instance_export {
	struct instance_export *next;
	long long id;
	char *user;
	int fd;
	uint64_t size;
	time_t last_used;
};

enum export_format { EXPORT_ZIP, EXPORT_MBOX, EXPORT_EML };

struct export_item {
	int64_t id;
	uint64_t size;
	time_t date;
	char *folder;
};

struct export_build {
	struct instance *inst;
	const struct json *user;
	struct archive *archive;
	struct export_item *items;
	size_t count;
	uint64_t bytes;
	const char **code_r, **error_r;
};

static int export_fail(struct export_build *b, const char *code, const char *error)
{
	*b->code_r = code;
	*b->error_r = error;
	return -1;
}

static void export_free(struct instance_export **_e)
{
	struct instance_export *e = *_e;
	*_e = NULL;
	if (e->fd >= 0)
		close(e->fd);
	mem_free(e->user);
	mem_free(e);
}

static void export_unlink(struct instance *inst, struct instance_export *e)
{
	for (struct instance_export **p = &inst->exports; *p != NULL; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			break;
		}
	}
	export_free(&e);
}

/* Exports nobody read for a while: their client is gone. */
static void export_sweep(struct instance *inst, time_t now)
{
	for (struct instance_export **p = &inst->exports; *p != NULL;) {
		struct instance_export *e = *p;
		if (now - e->last_used >= INSTANCE_EXPORT_IDLE_SECS) {
			*p = e->next;
			export_free(&e);
		} else {
			p = &e->next;
		}
	}
}

/* ---- choosing the messages ---- */

struct export_id {
	long long id;
	size_t pos;
};

static int export_id_cmp(const void *a, const void *b)
{
	const struct export_id *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int export_pos_cmp(const void *a, const void *b)
{
	const struct export_id *x = a, *y = b;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The IDs of args "ids" in their order, each once (sorting: n log n). */
static int export_ids(struct export_build *b, const struct json *ids, struct export_id **ids_r,
		      size_t *count_r)
{
	size_t n = json_count(ids);
	if (json_kind(ids) != JSON_KIND_ARRAY || n == 0 || n > INSTANCE_EXPORT_MAX_IDS)
		return export_fail(b, "bad-request",
				   tstr_printf("ids: an array of 1 to %d message IDs",
					       INSTANCE_EXPORT_MAX_IDS));
	struct export_id *list = mem_calloc(n, sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		const struct json *v = json_at(ids, i);
		if (json_kind(v) != JSON_KIND_INT || json_int_of(v) <= 0) {
			mem_free(list);
			return export_fail(b, "bad-request",
					   "ids: message IDs are positive integers");
		}
		list[i] = (struct export_id){json_int_of(v), i};
	}
	qsort(list, n, sizeof(*list), export_id_cmp);
	size_t unique = 0;
	for (size_t i = 0; i < n; i++) {
		if (unique == 0 || list[unique - 1].id != list[i].id)
			list[unique++] = list[i];
	}
	qsort(list, unique, sizeof(*list), export_pos_cmp);
	*ids_r = list;
	*count_r = unique;
	return 0;
}

static bool export_may_read(const struct json *user, const char *owner)
{
	const char *own = json_get_string(user, "archiveName");
	return json_get_bool(user, "auditor", false) || (own != NULL && strcmp(owner, own) == 0);
}

/* The messages of `ids` the user may read, with what the files need. */
static int export_select(struct export_build *b, const struct export_id *ids, size_t count)
{
	struct catalog *cat = archive_catalog(b->archive);
	const char *error;
	int ret = 0;
	b->items = mem_calloc(count, sizeof(*b->items));
	catalog_read_begin(cat);
	for (size_t i = 0; i < count && ret == 0; i++) {
		struct catalog_message_meta meta;
		int found = catalog_message_meta(cat, ids[i].id, &meta, &error);
		if (found < 0) {
			ret = export_fail(b, "failed", error);
		} else if (found > 0 && export_may_read(b->user, meta.user)) {
			struct export_item *it = &b->items[b->count++];
			it->id = ids[i].id;
			it->size = meta.size;
			/* the message's own date; its arrival when it has none */
			it->date = (time_t)(meta.date > 0 ? meta.date : meta.internal_date);
			it->folder = mem_strdup(meta.path[0] != '\0' ? meta.path : "messages");
			b->bytes += meta.size;
		}
	}
	catalog_read_end(cat);
	if (ret == 0 && b->count == 0)
		return export_fail(b, "not-found", "no such message");
	if (ret == 0 && b->bytes > INSTANCE_EXPORT_MAX_BYTES)
		return export_fail(b, "too-large",
				   tstr_printf("the selection is larger than %llu MiB: "
					       "export fewer messages at a time",
					       INSTANCE_EXPORT_MAX_BYTES >> 20));
	return ret;
}

/* ---- writing the file ---- */

static int export_read_message(void *ctx, uint64_t index, unsigned char **data_r, size_t *len_r,
			       const char **error_r)
{
	struct export_build *b = ctx;
	int64_t id = b->items[index].id;
	int ret = archive_read_message(b->archive, id, data_r, len_r, error_r);
	if (ret == 0)
		*error_r = tstr_printf("message %lld is gone", (long long)id);
	return ret == 1 ? 0 : -1;
}

static int export_write_zip(struct export_build *b, const char *path)
{
	const char *error;
	struct zip_writer *zw = zip_writer_create(path, export_read_message, b, &error);
	if (zw == NULL)
		return export_fail(b, "failed", error);
	for (size_t i = 0; i < b->count; i++) {
		const struct export_item *it = &b->items[i];
		const char *name = tstr_printf("%s/%lld.eml", it->folder, (long long)it->id);
		if (zip_writer_add(zw, name, i, it->size, it->date, &error) < 0) {
			zip_writer_destroy(&zw);
			return export_fail(b, "failed", error);
		}
	}
	if (zip_writer_finish(&zw, &error) < 0)
		return export_fail(b, "failed", error);
	return 0;
}

static int export_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One message as it is stored, or every message as an mbox. */
static int export_write_plain(struct export_build *b, int fd, enum export_format format)
{
	struct str *out = str_create(64 * 1024);
	int ret = 0;
	for (size_t i = 0; i < b->count && ret == 0; i++) {
		unsigned char *data;
		size_t len;
		const char *error;
		if (export_read_message(b, i, &data, &len, &error) < 0) {
			ret = export_fail(b, "failed", error);
			break;
		}
		str_truncate(out, 0);
		if (format == EXPORT_MBOX)
			mbox_writer_append(out, data, len, b->items[i].date);
		else
			str_append_n(out, data, len);
		mem_free(data);
		if (export_write_all(fd, str_c(out), str_len(out)) < 0)
			ret = export_fail(b, "failed",
					  tstr_printf("export file: %s", strerror(errno)));
	}
	str_destroy(&out);
	return ret;
}

/* Files a crashed process left behind (its exports were unlinked unless it
 * died while writing one); only this process uses this base directory. */
static void export_remove_leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (strncmp(de->d_name, "export-", 7) == 0)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* The export as an open, already unlinked file; -1 if it failed. */
static int export_write(struct export_build *b, enum export_format format)
{
	char *dir = mem_printf("%s/tmp", b->inst->base_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		export_fail(b, "failed", tstr_printf("%s: %s", dir, strerror(errno)));
		mem_free(dir);
		return -1;
	}
	if (b->inst->export_seq == 1)
		export_remove_leftovers(dir);
	char *path = mem_printf("%s/export-%d-%lld", dir, (int)getpid(), b->inst->export_seq);
	mem_free(dir);
	int fd = -1;
	if (format == EXPORT_ZIP) {
		if (export_write_zip(b, path) == 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			export_fail(b, "failed", tstr_printf("%s: %s", path, strerror(errno)));
	} else {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			export_fail(b, "failed", tstr_printf("%s: %s", path, strerror(errno)));
		else if (unlink(path), export_write_plain(b, fd, format) < 0) {
			close(fd);
			fd = -1;
		}
	}
	/* from here on only the descriptor holds the bytes */
	(void)unlink(path);
	mem_free(path);
	return fd;
}

/* ---- the calls ---- */

static const char *const export_formats[] = {"zip", "mbox", "eml", NULL};

static struct instance_export *export_find(struct instance *inst, const struct json *args,
					   const char *user)
{
	long long id;
	if (json_get_int(args, "export", &id) != 1)
		return NULL;
	for (struct instance_export *e = inst->exports; e != NULL; e = e->next) {
		if (e->id == id && strcmp(e->user, user) == 0)
			return e;
	}
	return NULL;
}

static int export_limits(struct export_build *b, const char *user)
{
	unsigned int mine = 0, all = 0;
	for (struct instance_export *e = b->inst->exports; e != NULL; e = e->next) {
		all++;
		mine += strcmp(e->user, user) == 0;
	}
	if (mine >= INSTANCE_EXPORT_PER_USER || all >= INSTANCE_EXPORT_PER_INSTANCE)
		return export_fail(b, "busy",
				   tstr_printf("%u exports are under way: wait for one to finish",
					       mine >= INSTANCE_EXPORT_PER_USER ? mine : all));
	return 0;
}

static int export_begin(struct export_build *b, const struct json *args, const char *user,
			struct json **result_r)
{
	const char *format_name = json_get_string(args, "format");
	int format = -1;
	for (int i = 0; format_name != NULL && export_formats[i] != NULL; i++) {
		if (strcmp(export_formats[i], format_name) == 0)
			format = i;
	}
	if (format < 0)
		return export_fail(b, "bad-request", "format: zip, mbox or eml");
	if (export_limits(b, user) < 0)
		return -1;
	struct export_id *ids;
	size_t count;
	if (export_ids(b, json_get(args, "ids"), &ids, &count) < 0)
		return -1;
	if (format == EXPORT_EML && count != 1) {
		mem_free(ids);
		return export_fail(b, "bad-request", "ids: one message ID for format eml");
	}
	const char *error;
	b->archive = instance_archive_for_reading(b->inst->archive, &error);
	int ret =
		b->archive == NULL ? export_fail(b, "failed", error) : export_select(b, ids, count);
	mem_free(ids);
	if (ret < 0)
		return -1;
	b->inst->export_seq++;
	int fd = export_write(b, (enum export_format)format);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) < 0) {
		export_fail(b, "failed", tstr_printf("export file: %s", strerror(errno)));
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		return -1;
	struct instance_export *e = mem_new(struct instance_export);
	e->id = b->inst->export_seq;
	e->user = mem_strdup(user);
	e->fd = fd;
	e->size = (uint64_t)st.st_size;
	e->last_used = time(NULL);
	e->next = b->inst->exports;
	b->inst->exports = e;
	*result_r = json_new_object();
	json_set_int(*result_r, "export", e->id);
	json_set_int(*result_r, "size", (long long)e->size);
	json_set_int(*result_r, "messages", (long long)b->count);
	json_set_int(*result_r, "firstId", (long long)b->items[0].id);
	return 0;
}

static int export_read(struct export_build *b, const struct json *args, const char *user,
		       struct json **result_r, unsigned char **blob_r, size_t *blob_len_r)
{
	struct instance_export *e = export_find(b->inst, args, user);
	long long offset;
	if (e == NULL)
		return export_fail(b, "not-found", "no such export (it ended or timed out)");
	if (json_get_int(args, "offset", &offset) != 1 || offset < 0 || (uint64_t)offset > e->size)
		return export_fail(b, "bad-request", "offset: a byte offset within the export");
	size_t n = e->size - (uint64_t)offset > INSTANCE_EXPORT_PIECE_MAX
			   ? INSTANCE_EXPORT_PIECE_MAX
			   : (size_t)(e->size - (uint64_t)offset);
	unsigned char *buf = mem_alloc(n > 0 ? n : 1);
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(e->fd, buf + got, n - got, (off_t)offset + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			mem_free(buf);
			export_unlink(b->inst, e);
			return export_fail(b, "failed", "the export file ended early");
		}
		got += (size_t)r;
	}
	bool end = (uint64_t)offset + n == e->size;
	e->last_used = time(NULL);
	if (end)
		export_unlink(b->inst, e);
	*result_r = json_new_object();
	json_set_int(*result_r, "offset", offset);
	json_set_int(*result_r, "length", (long long)n);
	json_set_bool(*result_r, "end", end);
	*blob_r = buf;
	*blob_len_r = n;
	return 0;
}

int instance_export_call(struct instance *inst, const char *method, const struct json *args,
			 const struct json *user, struct json **result_r, unsigned char **blob_r,
			 size_t *blob_len_r, const char **code_r, const char **error_r)
{
	bool begin = strcmp(method, "ClientExport") == 0;
	bool read = strcmp(method, "ClientExportRead") == 0;
	if (!begin && !read && strcmp(method, "ClientExportEnd") != 0)
		return 0;
	*result_r = NULL;
	*blob_r = NULL;
	*blob_len_r = 0;
	struct export_build b = {.inst = inst, .user = user, .code_r = code_r, .error_r = error_r};
	const char *name = json_get_string(user, "userName");
	export_sweep(inst, time(NULL));
	int ret;
	if (begin) {
		/* every export (zip, mbox, a single message) starts here */
		ret = export_begin(&b, args, name, result_r);
	} else if (read) {
		ret = export_read(&b, args, name, result_r, blob_r, blob_len_r);
	} else {
		struct instance_export *e = export_find(inst, args, name);
		if (e != NULL)
			export_unlink(inst, e);
		ret = 0;
	}
	for (size_t i = 0; i < b.count; i++)
		mem_free(b.items[i].folder);
	mem_free(b.items);
	return ret < 0 ? -1 : 1;
}
