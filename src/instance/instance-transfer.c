/* instance-transfer: ExportMessages and RestoreMessages (see the header). */
#include "instance-transfer.h"
#include "archive.h"
#include "catalog.h"
#include "instance-audit.h"
#include "instance-calls.h"
#include "instance-jobs.h"
#include "instance-smtp.h"
#include "instance.h"
#include "json.h"
#include "log.h"
#include "mbox-writer.h"
#include "mem.h"
#include "source-append.h"
#include "str.h"
#include "tls.h"
#include "tstr.h"
#include "zip-writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRANSFER_PAGE 1000
#define TRANSFER_NAME_MAX 128

enum transfer_format { TRANSFER_ZIP, TRANSFER_MBOX, TRANSFER_EML };
static const char *const transfer_formats[] = {"zip", "mbox", "eml", NULL};

struct transfer {
	struct instance *inst; /* loop side only: the outcome's audit entry */
	bool restore;
	char *base_dir, *key_file, *instance_id;
	char *audit_user, *audit_address;
	struct json *selection; /* what the audit entry says was chosen */
	/* the selection: one of */
	char *folder_user, *folder_path, *query;
	int64_t *ids;
	size_t id_count;
	/* export */
	enum transfer_format format;
	char *name;
	/* restore */
	bool by_smtp, starttls;
	char *host, *login, *password, *fingerprint, *target_folder, *to;
	unsigned int port;
	/* the outcome: written by the job's thread, read after it ended */
	char *job_id;
	struct archive *archive;
	struct instance_job *job;
	size_t count;
	long long done, failed;
	uint64_t bytes;
	bool ok;
	char *error;
};

static void transfer_free(void *ctx)
{
	struct transfer *t = ctx;
	mem_free(t->base_dir);
	mem_free(t->key_file);
	mem_free(t->instance_id);
	mem_free(t->audit_user);
	mem_free(t->audit_address);
	json_unref(&t->selection);
	mem_free(t->folder_user);
	mem_free(t->folder_path);
	mem_free(t->query);
	mem_free(t->ids);
	mem_free(t->name);
	mem_free(t->host);
	mem_free(t->login);
	if (t->password != NULL)
		memset(t->password, 0, strlen(t->password));
	mem_free(t->password);
	mem_free(t->fingerprint);
	mem_free(t->target_folder);
	mem_free(t->to);
	mem_free(t->job_id);
	mem_free(t->error);
	mem_free(t);
}

/* ---- choosing the messages (in the job's thread) ---- */

struct transfer_collect {
	int64_t *ids;
	size_t count, alloc;
	bool too_many;
};

static void transfer_collect_hit(const struct archive_hit *hit, void *context)
{
	struct transfer_collect *c = context;
	if (c->count >= INSTANCE_TRANSFER_MAX_MESSAGES) {
		c->too_many = true;
		return;
	}
	if (c->count == c->alloc) {
		c->alloc = c->alloc == 0 ? 1024 : c->alloc * 2;
		c->ids = mem_realloc(c->ids, c->alloc * sizeof(*c->ids));
	}
	c->ids[c->count++] = hit->id;
}

static int transfer_id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int transfer_select(struct transfer *t, const char **error_r)
{
	struct transfer_collect c = {0};
	uint64_t total = 0;
	if (t->ids != NULL) {
		c.ids = mem_alloc(t->id_count * sizeof(*c.ids));
		memcpy(c.ids, t->ids, t->id_count * sizeof(*c.ids));
		c.count = t->id_count;
	} else {
		for (uint64_t offset = 0;; offset += TRANSFER_PAGE) {
			size_t before = c.count;
			int ret;
			if (t->query != NULL)
				ret = archive_search(t->archive, t->query, TRANSFER_PAGE, offset,
						     &total, transfer_collect_hit, &c, error_r);
			else
				ret = archive_folder_messages(
					t->archive, t->folder_user, t->folder_path, TRANSFER_PAGE,
					offset, &total, transfer_collect_hit, &c, error_r);
			if (ret == 0 && t->query == NULL)
				*error_r = tstr_printf("folder: no folder '%s/%s'", t->folder_user,
						       t->folder_path);
			if (ret < 0 || (ret == 0 && t->query == NULL)) {
				mem_free(c.ids);
				return -1;
			}
			if (c.too_many) {
				mem_free(c.ids);
				*error_r = tstr_printf("the selection has more than %d messages: "
						       "choose fewer at a time",
						       INSTANCE_TRANSFER_MAX_MESSAGES);
				return -1;
			}
			if (c.count - before < TRANSFER_PAGE || c.count >= total)
				break;
		}
	}
	/* each message once (an EML file each, one APPEND each), even if
	 * mail arrived while the pages were read */
	qsort(c.ids, c.count, sizeof(*c.ids), transfer_id_cmp);
	size_t unique = 0;
	for (size_t i = 0; i < c.count; i++) {
		if (unique == 0 || c.ids[unique - 1] != c.ids[i])
			c.ids[unique++] = c.ids[i];
	}
	mem_free(t->ids);
	t->ids = c.ids;
	t->count = unique;
	return 0;
}

/* The message's catalog data: 1 found, 0 gone, -1 error. */
static int transfer_meta(struct transfer *t, int64_t id, struct catalog_message_meta *meta,
			 const char **error_r)
{
	struct catalog *cat = archive_catalog(t->archive);
	catalog_read_begin(cat);
	int ret = catalog_message_meta(cat, id, meta, error_r);
	catalog_read_end(cat);
	return ret;
}

static int transfer_read(struct transfer *t, int64_t id, unsigned char **data_r, size_t *len_r,
			 const char **error_r)
{
	int ret = archive_read_message(t->archive, id, data_r, len_r, error_r);
	if (ret == 0)
		*error_r = "no such message (deleted, or in a disabled store)";
	return ret == 1 ? 0 : -1;
}

static bool transfer_cancelled(struct transfer *t)
{
	return atomic_load(instance_job_cancel_flag(t->job));
}

static void transfer_failed_one(struct transfer *t, int64_t id, const char *error)
{
	t->failed++;
	instance_job_count(t->job, "failed", t->failed);
	instance_job_report(t->job, tstr_printf("message %lld: %s", (long long)id, error));
}

/* The i-th message of the selection, with its catalog data: 1 read, 0 gone
 * or unreadable (reported as failed: go on with the next), -1 cancelled or
 * the catalog failed (stop, *error_r). */
static int transfer_next_message(struct transfer *t, size_t i, struct catalog_message_meta *meta,
				 unsigned char **data_r, size_t *len_r, const char **error_r)
{
	if (transfer_cancelled(t)) {
		*error_r = "cancelled";
		return -1;
	}
	const char *error;
	int found = transfer_meta(t, t->ids[i], meta, error_r);
	if (found < 0)
		return -1;
	if (found == 0 || transfer_read(t, t->ids[i], data_r, len_r, &error) < 0) {
		transfer_failed_one(t, t->ids[i], found == 0 ? "no such message" : error);
		return 0;
	}
	return 1;
}

static void transfer_progress(struct transfer *t, size_t i)
{
	instance_job_count(t->job, t->restore ? "restored" : "exported", t->done);
	instance_job_progress(t->job, i + 1, t->count);
}

/* ---- export ---- */

static int transfer_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int transfer_fsync_path(const char *path, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		*error_r = tstr_printf("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* zip: libzip asks for each entry's bytes while it writes the archive. */
static int transfer_zip_read(void *ctx, uint64_t index, unsigned char **data_r, size_t *len_r,
			     const char **error_r)
{
	struct transfer *t = ctx;
	if (transfer_cancelled(t)) {
		*error_r = "cancelled";
		return -1;
	}
	if (transfer_read(t, t->ids[index], data_r, len_r, error_r) < 0) {
		*error_r = tstr_printf("message %lld: %s", (long long)t->ids[index], *error_r);
		return -1;
	}
	t->done++;
	t->bytes += *len_r;
	transfer_progress(t, (size_t)index);
	return 0;
}

static int transfer_export_zip(struct transfer *t, const char *tmp, const char **error_r)
{
	struct zip_writer *zw = zip_writer_create(tmp, transfer_zip_read, t, error_r);
	if (zw == NULL)
		return -1;
	for (size_t i = 0; i < t->count; i++) {
		struct catalog_message_meta meta;
		int ret = transfer_meta(t, t->ids[i], &meta, error_r);
		if (ret < 0) {
			zip_writer_destroy(&zw);
			return -1;
		}
		if (ret == 0) {
			transfer_failed_one(t, t->ids[i], "no such message");
			continue;
		}
		const char *name = tstr_printf("%s/%s/%lld.eml", meta.user,
					       meta.path[0] != '\0' ? meta.path : "messages",
					       (long long)t->ids[i]);
		time_t date = (time_t)(meta.date > 0 ? meta.date : meta.internal_date);
		if (zip_writer_add(zw, name, i, meta.size, date, error_r) < 0) {
			zip_writer_destroy(&zw);
			return -1;
		}
	}
	if (zip_writer_finish(&zw, error_r) < 0)
		return -1;
	return transfer_fsync_path(tmp, error_r);
}

/* One message at a time into an open file (mbox) or a file of its own (eml). */
static int transfer_export_each(struct transfer *t, const char *tmp, const char **error_r)
{
	int fd = -1;
	if (t->format == TRANSFER_MBOX) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			*error_r = tstr_printf("%s: %s", tmp, strerror(errno));
			return -1;
		}
	} else if (mkdir(tmp, 0700) < 0) {
		*error_r = tstr_printf("%s: %s", tmp, strerror(errno));
		return -1;
	}
	struct str *out = str_create(64 * 1024);
	int ret = 0;
	for (size_t i = 0; i < t->count && ret == 0; i++) {
		struct catalog_message_meta meta;
		unsigned char *data;
		size_t len;
		int got = transfer_next_message(t, i, &meta, &data, &len, error_r);
		if (got < 0) {
			ret = -1;
			break;
		}
		if (got == 0)
			continue;
		if (t->format == TRANSFER_MBOX) {
			str_truncate(out, 0);
			mbox_writer_append(
				out, data, len,
				(time_t)(meta.date > 0 ? meta.date : meta.internal_date));
			if (transfer_write_all(fd, str_c(out), str_len(out)) < 0) {
				*error_r = tstr_printf("%s: %s", tmp, strerror(errno));
				ret = -1;
			}
		} else {
			const char *path = tstr_printf("%s/%lld.eml", tmp, (long long)t->ids[i]);
			int efd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (efd < 0 || transfer_write_all(efd, data, len) < 0 || fsync(efd) < 0) {
				*error_r = tstr_printf("%s: %s", path, strerror(errno));
				ret = -1;
			}
			if (efd >= 0)
				close(efd);
		}
		mem_free(data);
		if (ret == 0) {
			t->done++;
			t->bytes += len;
			transfer_progress(t, i);
		}
	}
	str_destroy(&out);
	if (fd >= 0) {
		if (ret == 0 && fsync(fd) < 0) {
			*error_r = tstr_printf("%s: %s", tmp, strerror(errno));
			ret = -1;
		}
		close(fd);
	} else if (ret == 0) {
		ret = transfer_fsync_path(tmp, error_r);
	}
	return ret;
}

/* What a failed or cancelled export left: nothing stays. */
static void transfer_remove(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL) {
		(void)unlink(path);
		return;
	}
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	(void)rmdir(path);
}

/* Temporaries an export left when its process died (".NAME.tmp-PID" and
 * libzip's ".NAME.tmp-PID.XXXXXX"): one job runs at a time, so no other
 * export is writing them now. */
static void transfer_remove_leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp-") != NULL)
			transfer_remove(tstr_printf("%s/%s", dir, de->d_name));
	}
	closedir(d);
}

static int transfer_export(struct transfer *t, const char **error_r)
{
	char *dir = mem_printf("%s/export", t->base_dir);
	char *tmp = mem_printf("%s/.%s.tmp-%d", dir, t->name, (int)getpid());
	char *final = mem_printf("%s/%s", dir, t->name);
	int ret = 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = tstr_printf("%s: %s", dir, strerror(errno));
		ret = -1;
	}
	if (ret == 0) {
		transfer_remove_leftovers(dir);
		instance_job_status(t->job, tstr_printf("exporting %zu messages", t->count));
		ret = t->format == TRANSFER_ZIP ? transfer_export_zip(t, tmp, error_r)
						: transfer_export_each(t, tmp, error_r);
	}
	if (ret == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		*error_r = tstr_printf("export/%s: %s", t->name, strerror(errno));
		ret = -1;
	}
	if (ret == 0)
		ret = transfer_fsync_path(dir, error_r);
	else
		transfer_remove(tmp);
	mem_free(dir);
	mem_free(tmp);
	mem_free(final);
	return ret;
}

/* ---- restore ---- */

static int transfer_restore_imap(struct transfer *t, const char **error_r)
{
	struct source_append_settings set = {.host = t->host,
					     .port = t->port,
					     .starttls = t->starttls,
					     .fingerprint = t->fingerprint,
					     .timeout_secs = 60,
					     .login = t->login,
					     .password = t->password};
	struct source_append *a;
	instance_job_status(t->job, tstr_printf("connecting to %s:%u", t->host, t->port));
	if (source_append_connect(&set, &a, error_r) < 0 ||
	    source_append_folder(a, t->target_folder, error_r) < 0) {
		*error_r = tstr_printf("IMAP server %s:%u: %s", t->host, t->port, *error_r);
		source_append_destroy(&a);
		return -1;
	}
	instance_job_status(t->job, tstr_printf("restoring %zu messages to %s:%u, folder %s",
						t->count, t->host, t->port, t->target_folder));
	int ret = 0;
	for (size_t i = 0; i < t->count && ret == 0; i++) {
		struct catalog_message_meta meta;
		unsigned char *data;
		size_t len;
		int got = transfer_next_message(t, i, &meta, &data, &len, error_r);
		if (got < 0) {
			ret = -1;
			break;
		}
		if (got == 0)
			continue;
		const char *error;
		int r = source_append_message(a, data, len, NULL, (time_t)meta.internal_date,
					      &error);
		mem_free(data);
		if (r < 0) {
			*error_r = tstr_printf("IMAP server %s:%u: %s", t->host, t->port, error);
			ret = -1;
		} else if (r > 0) {
			transfer_failed_one(t, t->ids[i], error);
		} else {
			t->done++;
			t->bytes += len;
		}
		transfer_progress(t, i);
	}
	source_append_destroy(&a);
	return ret;
}

static int transfer_restore_smtp(struct transfer *t, const char **error_r)
{
	struct instance_smtp *s;
	if (instance_smtp_load(t->base_dir, t->key_file, &s, error_r) < 0)
		return -1;
	instance_job_status(t->job, tstr_printf("sending %zu messages to %s through %s:%u",
						t->count, t->to, s->host, s->set.port));
	int ret = 0;
	const char *to[] = {t->to};
	for (size_t i = 0; i < t->count; i++) {
		if (transfer_cancelled(t)) {
			*error_r = "cancelled";
			ret = -1;
			break;
		}
		unsigned char *data, *crlf;
		size_t len, crlf_len;
		const char *error;
		if (transfer_read(t, t->ids[i], &data, &len, &error) < 0) {
			transfer_failed_one(t, t->ids[i], error);
			continue;
		}
		crlf = instance_smtp_crlf(data, len, &crlf_len);
		mem_free(data);
		struct smtp_message msg = {s->from, to, 1, crlf, crlf_len};
		if (smtp_send(&s->set, &msg, &error) < 0) {
			transfer_failed_one(t, t->ids[i], error);
		} else {
			t->done++;
			t->bytes += len;
		}
		mem_free(crlf);
		transfer_progress(t, i);
	}
	instance_smtp_free(&s);
	return ret;
}

/* ---- the job ---- */

static int transfer_run(struct instance_job *job, void *ctx, const char **error_r)
{
	struct transfer *t = ctx;
	struct archive_settings set = {.base_dir = t->base_dir, .key_file = t->key_file};
	t->job = job;
	int ret = archive_open(&set, &t->archive, error_r);
	if (ret == 0) {
		instance_job_status(job, "choosing the messages");
		ret = transfer_select(t, error_r);
	}
	if (ret == 0 && t->count == 0) {
		*error_r = "the selection holds no message";
		ret = -1;
	}
	if (ret == 0) {
		instance_job_count(job, "messages", (long long)t->count);
		instance_job_count(job, "failed", 0);
		if (!t->restore)
			instance_job_set_string(job, "path", tstr_printf("export/%s", t->name));
		ret = !t->restore  ? transfer_export(t, error_r)
		      : t->by_smtp ? transfer_restore_smtp(t, error_r)
				   : transfer_restore_imap(t, error_r);
	}
	instance_job_count(job, t->restore ? "restored" : "exported", t->done);
	instance_job_count(job, "bytes", (long long)t->bytes);
	archive_destroy(&t->archive);
	t->ok = ret == 0;
	if (ret < 0)
		t->error = mem_strdup(*error_r);
	return ret;
}

/* On the loop once the job ended: its outcome in the audit log. */
static void transfer_done(void *ctx)
{
	struct transfer *t = ctx;
	struct json *d = json_new_object();
	json_set_string(d, "jobID", t->job_id);
	json_set(d, "selection", json_ref(t->selection));
	json_set_string(d, "outcome", t->ok ? "succeeded" : t->error);
	json_set_int(d, "messages", (long long)t->count);
	json_set_int(d, t->restore ? "restored" : "exported", t->done);
	json_set_int(d, "failed", t->failed);
	if (!t->restore)
		json_set_string(d, "path", tstr_printf("export/%s", t->name));
	else if (t->by_smtp)
		json_set_string(d, "to", t->to);
	else
		json_set_string(d, "server", tstr_printf("%s:%u", t->host, t->port));
	instance_audit_record(t->inst, t->audit_user, t->audit_address,
			      t->restore ? "RestoreMessagesDone" : "ExportMessagesDone", d);
	json_unref(&d);
	log_info(tstr_printf("instance=%s", t->instance_id),
		 "%s %s: %zu messages, %lld done, "
		 "%lld failed%s%s",
		 t->restore ? "restore" : "export", t->ok ? "ended" : "failed", t->count, t->done,
		 t->failed, t->ok ? "" : ": ", t->ok ? "" : t->error);
	transfer_free(t);
}

static const struct instance_job_kind transfer_export_kind = {"export", transfer_run,
							      transfer_done};
static const struct instance_job_kind transfer_restore_kind = {"restore", transfer_run,
							       transfer_done};

/* ---- the calls: checks on the loop, then the job ---- */

static int transfer_fail(struct instance_call *c, const char *error)
{
	c->code = "bad-request";
	c->error = error;
	return -1;
}

/* A target folder: "/"-separated names, none empty, no IMAP wildcard. */
static bool transfer_folder_ok(const char *folder)
{
	if (folder[0] == '/' || strstr(folder, "//") != NULL || folder[strlen(folder) - 1] == '/' ||
	    strlen(folder) > 512)
		return false;
	for (const unsigned char *p = (const unsigned char *)folder; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '*' || *p == '%' || *p == '"' || *p == '\\')
			return false;
	}
	return true;
}

/* The selection from args into t and a copy for what the job shows. */
static int transfer_selection(struct instance_call *c, struct transfer *t, struct json *shown)
{
	const char *folder = json_get_string(c->args, "folder");
	const char *query = json_get_string(c->args, "query");
	const struct json *ids = json_get(c->args, "messageIDs");
	int given = (folder != NULL) + (query != NULL) + (ids != NULL);
	if (given != 1)
		return transfer_fail(c, "give one of folder (USER/PATH), query or messageIDs");
	t->selection = json_new_object();
	if (folder != NULL) {
		const char *slash = strchr(folder, '/');
		if (slash == NULL || slash == folder || slash[1] == '\0')
			return transfer_fail(
				c, "folder: expected USER/PATH (as GetChildFolders names it)");
		t->folder_user = mem_strndup(folder, (size_t)(slash - folder));
		t->folder_path = mem_strdup(slash + 1);
		json_set_string(t->selection, "folder", folder);
	} else if (query != NULL) {
		if (query[0] == '\0')
			return transfer_fail(c, "query: empty (\"*\" finds everything)");
		t->query = mem_strdup(query);
		json_set_string(t->selection, "query", query);
	} else {
		size_t n = json_count(ids);
		if (json_kind(ids) != JSON_KIND_ARRAY || n == 0 ||
		    n > INSTANCE_TRANSFER_MAX_MESSAGES)
			return transfer_fail(c, tstr_printf("messageIDs: a list of 1 to %d message "
							    "IDs",
							    INSTANCE_TRANSFER_MAX_MESSAGES));
		t->ids = mem_calloc(n, sizeof(*t->ids));
		for (size_t i = 0; i < n; i++) {
			const struct json *v = json_at(ids, i);
			long long id = 0;
			char *end = NULL;
			if (json_kind(v) == JSON_KIND_INT)
				id = json_int_of(v);
			else if (json_kind(v) == JSON_KIND_STRING)
				id = strtoll(json_string_of(v), &end, 10);
			if (id <= 0 || (end != NULL && *end != '\0'))
				return transfer_fail(c, "messageIDs: message IDs are positive "
							"whole numbers");
			t->ids[i] = id;
		}
		t->id_count = n;
		json_set_int(t->selection, "messageIDs", (long long)n);
	}
	json_set(shown, "selection", json_ref(t->selection));
	return 0;
}

static struct transfer *transfer_new(struct instance_call *c, bool restore)
{
	struct transfer *t = mem_new(struct transfer);
	const char *user = json_get_string(c->args, "auditUser");
	const char *address = json_get_string(c->args, "auditAddress");
	t->inst = c->inst;
	t->restore = restore;
	t->base_dir = mem_strdup(c->inst->base_dir);
	t->key_file = mem_strdup(c->inst->key_file);
	t->instance_id = mem_strdup(c->inst->id);
	t->audit_user = user != NULL ? mem_strdup(user) : NULL;
	t->audit_address = address != NULL ? mem_strdup(address) : NULL;
	return t;
}

static int transfer_start(struct instance_call *c, struct transfer *t, struct json *shown)
{
	const char *id;
	if (instance_jobs_start(c->inst->jobs,
				t->restore ? &transfer_restore_kind : &transfer_export_kind, shown,
				NULL, t, &id, &c->error) < 0) {
		transfer_free(t);
		c->code = "busy";
		return -1;
	}
	t->job_id = mem_strdup(id);
	c->result = json_new_object();
	json_set_string(c->result, "jobID", id);
	return 0;
}

/* A name below export/: nothing that could leave it or hide there. */
static bool transfer_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > TRANSFER_NAME_MAX || name[0] == '.')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return false;
	}
	return true;
}

int instance_transfer_export(struct instance_call *c)
{
	const char *format = json_get_string(c->args, "format");
	const char *name = json_get_string(c->args, "name");
	int f = -1;
	for (int i = 0; format != NULL && transfer_formats[i] != NULL; i++) {
		if (strcmp(format, transfer_formats[i]) == 0)
			f = i;
	}
	if (f < 0)
		return transfer_fail(c, "format: zip, mbox or eml");
	if (name == NULL || !transfer_name_ok(name))
		return transfer_fail(c, tstr_printf("name: 1 to %d letters, digits, '.', '_' or "
						    "'-', not starting with '.' (a name below "
						    "export/, never a path)",
						    TRANSFER_NAME_MAX));
	const char *path = tstr_printf("%s/export/%s", c->inst->base_dir, name);
	struct stat st;
	if (lstat(path, &st) == 0) {
		c->code = "exists";
		c->error = tstr_printf("name: export/%s exists already", name);
		return -1;
	}
	struct transfer *t = transfer_new(c, false);
	struct json *shown = json_new_object();
	if (transfer_selection(c, t, shown) < 0) {
		json_unref(&shown);
		transfer_free(t);
		return -1;
	}
	t->format = (enum transfer_format)f;
	t->name = mem_strdup(name);
	json_set_string(shown, "format", format);
	json_set_string(shown, "path", tstr_printf("export/%s", name));
	return transfer_start(c, t, shown);
}

int instance_transfer_restore(struct instance_call *c)
{
	const char *method = json_get_string(c->args, "method");
	const struct json *target = json_get(c->args, "target");
	if (method == NULL || (strcmp(method, "imap") != 0 && strcmp(method, "smtp") != 0))
		return transfer_fail(c, "method: imap or smtp");
	if (json_kind(target) != JSON_KIND_OBJECT)
		return transfer_fail(c, "target: a JSON object (docs/api.md, RestoreMessages)");
	struct transfer *t = transfer_new(c, true);
	struct json *shown = json_new_object();
	int ret = transfer_selection(c, t, shown);
	json_set_string(shown, "method", method);
	if (ret == 0 && strcmp(method, "smtp") == 0) {
		const char *to = json_get_string(target, "to");
		t->by_smtp = true;
		if (to == NULL || strchr(to, '@') == NULL || strpbrk(to, " <>\r\n\t") != NULL)
			ret = transfer_fail(c, "target.to: an email address (user@domain)");
		else
			t->to = mem_strdup(to);
		json_set_string(shown, "to", to);
	} else if (ret == 0) {
		const char *host = json_get_string(target, "host");
		const char *security = json_get_string(target, "security");
		const char *fp = json_get_string(target, "fingerprint");
		const char *login = json_get_string(target, "login");
		const char *folder = json_get_string(target, "folder");
		const char *password = json_get_string(c->args, "password");
		long long port = 0;
		char canonical[TLS_FINGERPRINT_HEX_LEN + 1];
		const char *error;
		(void)json_get_int(target, "port", &port);
		if (security == NULL)
			security = "tls";
		if (host == NULL || host[0] == '\0' || strpbrk(host, " /\r\n") != NULL)
			ret = transfer_fail(c, "target.host: the IMAP server's host name");
		else if (strcmp(security, "tls") != 0 && strcmp(security, "starttls") != 0)
			ret = transfer_fail(c, "target.security: tls or starttls (there is no "
					       "unencrypted mode)");
		else if (port < 0 || port > 65535)
			ret = transfer_fail(c, "target.port: a port number");
		else if (fp != NULL && fp[0] != '\0' &&
			 tls_fingerprint_normalize(fp, canonical, &error) < 0)
			ret = transfer_fail(c, tstr_printf("target.fingerprint: %s", error));
		else if (login == NULL || login[0] == '\0')
			ret = transfer_fail(c, "target.login: the IMAP login");
		else if (folder != NULL && folder[0] != '\0' && !transfer_folder_ok(folder))
			ret = transfer_fail(c, "target.folder: folder names separated by '/', "
					       "without *, %, quotes, backslashes or control "
					       "characters");
		else if (password == NULL || password[0] == '\0')
			ret = transfer_fail(c, "password: the IMAP login's password");
		if (ret == 0) {
			t->starttls = strcmp(security, "starttls") == 0;
			t->host = mem_strdup(host);
			t->port = port != 0 ? (unsigned int)port : t->starttls ? 143 : 993;
			t->fingerprint = fp != NULL && fp[0] != '\0' ? mem_strdup(canonical) : NULL;
			t->login = mem_strdup(login);
			t->password = mem_strdup(password);
			t->target_folder = mem_strdup(
				folder != NULL && folder[0] != '\0' ? folder : "Restored");
			json_set_string(shown, "server", tstr_printf("%s:%u", t->host, t->port));
			json_set_string(shown, "security", security);
			json_set_string(shown, "login", login);
			json_set_string(shown, "folder", t->target_folder);
		}
	}
	if (ret < 0) {
		json_unref(&shown);
		transfer_free(t);
		return -1;
	}
	return transfer_start(c, t, shown);
}
