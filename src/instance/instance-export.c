/* instance-export: downloads built here, in the instance process, into an
 * unlinked temporary file and read out in pieces (see the header).
 *
 * Why a thread: a selection of up to 512 MiB takes seconds to read,
 * decrypt and write, longer on a busy machine; built on the event loop it
 * would hold up every other call of this instance (and the Instance Host's
 * keep-alive). The build thread opens its own read-only archive handle
 * (one archive object per thread, see archive.h), touches nothing the loop
 * uses, and reports through a pipe; the loop answers the call. The limits
 * on exports under way bound the threads.
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
#include "instance-calls.h"
#include "instance-rights.h"
#include "instance.h"
#include "json.h"
#include "log.h"
#include "mbox-writer.h"
#include "mem.h"
#include "rpc.h"
#include "str.h"
#include "tstr.h"
#include "zip-writer.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct export_job;

struct instance_export {
	struct instance_export *next;
	long long id;
	char *user;
	int fd;
	uint64_t size;
	time_t last_used;
	struct export_job *building; /* until the file is complete */
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
	const struct export_job *job; /* build thread only */
	struct archive *archive;
	struct export_item *items;
	size_t count;
	uint64_t bytes;
	const char **code_r, **error_r;
};

struct export_id {
	long long id;
	size_t pos;
};

/* One build, handed to its thread: nothing in it is shared with the loop
 * until the thread has written to `done_pipe`. */
struct export_job {
	struct instance *inst; /* loop side only */
	struct instance_export *slot;
	struct rpc_conn *conn;
	uint32_t call_id;
	struct event *done_event;
	int done_pipe[2];
	pthread_t thread;
	/* the thread's input */
	char *base_dir, *key_file, *path;
	struct json *rights_view; /* the user's rights (a copy of its own for the thread) */
	enum export_format format;
	struct export_id *ids;
	size_t id_count;
	/* its output */
	int fd;
	uint64_t size;
	size_t messages;
	long long first_id;
	const char *code; /* a static string */
	char *error;
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
		if (e->building == NULL && now - e->last_used >= INSTANCE_EXPORT_IDLE_SECS) {
			*p = e->next;
			export_free(&e);
		} else {
			p = &e->next;
		}
	}
}

/* ---- choosing the messages ---- */

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

/* The same read right as every other way in (instance-rights.h): the own
 * archive, auditor or admin, or a read right on the folder or one above. */
static bool export_may_read(const struct export_job *job, const char *owner, const char *path)
{
	return instance_rights_folder(job->rights_view, owner, path, "read");
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
		} else if (found > 0 && export_may_read(b->job, meta.user, meta.path)) {
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

/* The export as an open, already unlinked file at job->path; -1 if it
 * failed. */
static int export_write(struct export_build *b, const struct export_job *job)
{
	int fd = -1;
	if (job->format == EXPORT_ZIP) {
		if (export_write_zip(b, job->path) == 0 &&
		    (fd = open(job->path, O_RDONLY | O_CLOEXEC)) < 0)
			export_fail(b, "failed", tstr_printf("%s: %s", job->path, strerror(errno)));
	} else {
		fd = open(job->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			export_fail(b, "failed", tstr_printf("%s: %s", job->path, strerror(errno)));
		else if (unlink(job->path), export_write_plain(b, fd, job->format) < 0) {
			close(fd);
			fd = -1;
		}
	}
	/* from here on only the descriptor holds the bytes */
	(void)unlink(job->path);
	return fd;
}

/* ---- the build thread ---- */

static void export_job_build(struct export_job *job)
{
	const char *code = NULL, *error = NULL;
	struct export_build b = {.job = job, .code_r = &code, .error_r = &error};
	struct archive_settings set = {.base_dir = job->base_dir, .key_file = job->key_file};
	struct stat st;
	if (archive_open(&set, &b.archive, &error) < 0) {
		code = "failed";
	} else if (export_select(&b, job->ids, job->id_count) == 0) {
		job->fd = export_write(&b, job);
		if (job->fd >= 0 && fstat(job->fd, &st) < 0) {
			export_fail(&b, "failed", tstr_printf("export file: %s", strerror(errno)));
			close(job->fd);
			job->fd = -1;
		}
	}
	if (job->fd >= 0) {
		job->size = (uint64_t)st.st_size;
		job->messages = b.count;
		job->first_id = b.items[0].id;
	} else {
		job->code = code != NULL ? code : "failed";
		job->error = mem_strdup(error != NULL ? error : "the export failed");
	}
	archive_destroy(&b.archive);
	for (size_t i = 0; i < b.count; i++)
		mem_free(b.items[i].folder);
	mem_free(b.items);
}

static void *export_job_thread(void *ctx)
{
	struct export_job *job = ctx;
	export_job_build(job);
	char done = 1;
	while (write(job->done_pipe[1], &done, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void export_job_free(struct export_job *job)
{
	if (job->done_event != NULL)
		event_free(job->done_event);
	if (job->done_pipe[0] >= 0)
		close(job->done_pipe[0]);
	if (job->done_pipe[1] >= 0)
		close(job->done_pipe[1]);
	mem_free(job->base_dir);
	mem_free(job->key_file);
	mem_free(job->path);
	json_unref(&job->rights_view);
	mem_free(job->ids);
	mem_free(job->error);
	mem_free(job);
}

/* Back on the loop: the file is there (the export can be read) or not. */
static void export_job_done(evutil_socket_t fd, short what, void *ctx)
{
	struct export_job *job = ctx;
	struct instance_export *e = job->slot;
	pthread_join(job->thread, NULL);
	e->building = NULL;
	if (job->fd < 0) {
		log_info(tstr_printf("instance=%s", job->inst->id), "export for %s failed: %s",
			 e->user, job->error);
		rpc_conn_reply_error(job->conn, job->call_id, job->code, job->error);
		export_unlink(job->inst, e);
	} else {
		e->fd = job->fd;
		e->size = job->size;
		e->last_used = time(NULL);
		struct json *result = json_new_object();
		json_set_int(result, "export", e->id);
		json_set_int(result, "size", (long long)e->size);
		json_set_int(result, "messages", (long long)job->messages);
		json_set_int(result, "firstId", job->first_id);
		rpc_conn_reply(job->conn, job->call_id, result);
	}
	export_job_free(job);
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
		if (e->id == id && e->building == NULL && strcmp(e->user, user) == 0)
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

/* <base>/tmp, created if needed; the first export of this process clears
 * what a crashed one left there. */
static char *export_dir(struct export_build *b)
{
	char *dir = mem_printf("%s/tmp", b->inst->base_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		export_fail(b, "failed", tstr_printf("%s: %s", dir, strerror(errno)));
		mem_free(dir);
		return NULL;
	}
	if (b->inst->export_seq == 0)
		export_remove_leftovers(dir);
	return dir;
}

/* Checks, then the build thread; 0 started (the thread's end answers). */
static int export_begin(struct export_build *b, const struct json *args, const struct json *user,
			struct rpc_conn *conn, uint32_t call_id)
{
	const char *format_name = json_get_string(args, "format");
	const char *name = json_get_string(user, "userName");
	int format = -1;
	for (int i = 0; format_name != NULL && export_formats[i] != NULL; i++) {
		if (strcmp(export_formats[i], format_name) == 0)
			format = i;
	}
	if (format < 0)
		return export_fail(b, "bad-request", "format: zip, mbox or eml");
	/* a selection needs the export privilege; one original (eml) is a read,
	 * as IMAP's FETCH of the same bytes is */
	if (format != EXPORT_EML && !instance_rights_has(user, "export"))
		return export_fail(b, "forbidden", "this needs the export privilege");
	if (export_limits(b, name) < 0)
		return -1;
	struct export_id *ids;
	size_t count;
	if (export_ids(b, json_get(args, "ids"), &ids, &count) < 0)
		return -1;
	if (format == EXPORT_EML && count != 1) {
		mem_free(ids);
		return export_fail(b, "bad-request", "ids: one message ID for format eml");
	}
	char *dir = export_dir(b);
	if (dir == NULL) {
		mem_free(ids);
		return -1;
	}
	struct instance *inst = b->inst;
	struct export_job *job = mem_new(struct export_job);
	job->inst = inst;
	job->conn = conn;
	job->call_id = call_id;
	job->done_pipe[0] = job->done_pipe[1] = job->fd = -1;
	job->base_dir = mem_strdup(inst->base_dir);
	job->key_file = mem_strdup(inst->key_file);
	job->path = mem_printf("%s/export-%d-%lld", dir, (int)getpid(), ++inst->export_seq);
	mem_free(dir);
	job->rights_view = json_clone(user);
	job->format = (enum export_format)format;
	job->ids = ids;
	job->id_count = count;
	if (pipe2(job->done_pipe, O_CLOEXEC) < 0) {
		export_job_free(job);
		return export_fail(b, "failed", tstr_printf("pipe: %s", strerror(errno)));
	}
	job->done_event = event_new(inst->base, job->done_pipe[0], EV_READ, export_job_done, job);
	struct instance_export *e = mem_new(struct instance_export);
	e->id = inst->export_seq;
	e->user = mem_strdup(name);
	e->fd = -1;
	e->building = job;
	job->slot = e;
	int err = pthread_create(&job->thread, NULL, export_job_thread, job);
	if (err != 0) {
		export_free(&e);
		export_job_free(job);
		return export_fail(b, "failed", tstr_printf("thread: %s", strerror(err)));
	}
	event_add(job->done_event, NULL);
	e->next = inst->exports;
	inst->exports = e;
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

/* An export call's answer from what export_read()/export_begin() left. */
static int export_answer(struct instance_call *c, int ret, const char *code, const char *error)
{
	c->code = code;
	c->error = error;
	return ret < 0 ? -1 : 0;
}

int instance_export_begin(struct instance_call *c)
{
	const char *code = NULL, *error = NULL;
	struct export_build b = {.inst = c->inst, .code_r = &code, .error_r = &error};
	export_sweep(c->inst, time(NULL));
	/* every export (zip, mbox, a single message) starts here */
	if (export_begin(&b, c->args, c->user, c->conn, c->id) == 0)
		return INSTANCE_CALL_ANSWERED; /* when the build thread is done */
	return export_answer(c, -1, code, error);
}

int instance_export_read(struct instance_call *c)
{
	const char *code = NULL, *error = NULL;
	struct export_build b = {.inst = c->inst, .code_r = &code, .error_r = &error};
	export_sweep(c->inst, time(NULL));
	int ret = export_read(&b, c->args, json_get_string(c->user, "userName"), &c->result,
			      &c->blob, &c->blob_len);
	return export_answer(c, ret, code, error);
}

int instance_export_end(struct instance_call *c)
{
	export_sweep(c->inst, time(NULL));
	struct instance_export *e =
		export_find(c->inst, c->args, json_get_string(c->user, "userName"));
	if (e != NULL)
		export_unlink(c->inst, e);
	return 0;
}
