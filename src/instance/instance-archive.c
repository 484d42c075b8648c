#include "instance-archive.h"
#include "instance-calls.h"
#include "instance.h"
#include "archive-import.h"
#include "archive-source.h"
#include "archive.h"
#include "catalog.h"
#include "instance-jobs.h"
#include "json.h"
#include "mem.h"
#include "mime.h"
#include "str.h"
#include "tstr.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <event2/event.h>
#include "array.h"
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct instance_archive {
	char *base_dir;
	char *key_file;
	struct instance_jobs *jobs;
	struct archive *archive;    /* writable; owned by a running import or verify */
	struct archive *reader;     /* read-only, for reads while a job runs */
	struct instance_lane *lane; /* while an import job runs */
	/* the writable handle lent to a borrower's thread (the journal's
	 * group commit): wait() returns once it is done with it */
	bool lent;
	instance_archive_wait_fn *lent_wait;
	void *lent_ctx;
};

struct instance_archive *instance_archive_create(const char *base_dir, const char *key_file,
						 struct instance_jobs *jobs)
{
	struct instance_archive *ia = mem_new(struct instance_archive);
	ia->base_dir = mem_strdup(base_dir);
	ia->key_file = mem_strdup(key_file);
	ia->jobs = jobs;
	return ia;
}

bool instance_archive_busy(struct instance_archive *ia)
{
	return instance_jobs_running(ia->jobs) != NULL;
}

/* On the loop: the lent writable handle back, once its borrower is done
 * with it (blocking for at most the one commit under way). */
static void instance_archive_reclaim(struct instance_archive *ia)
{
	if (!ia->lent)
		return;
	ia->lent_wait(ia->lent_ctx);
	ia->lent = false;
}

bool instance_archive_close(struct instance_archive *ia)
{
	if (instance_archive_busy(ia))
		return false;
	instance_archive_reclaim(ia);
	archive_destroy(&ia->reader);
	archive_destroy(&ia->archive);
	return true;
}

static int instance_archive_open(struct instance_archive *ia, bool write, struct archive **a_r,
				 const char **error_r)
{
	struct archive_settings set = {
		.base_dir = ia->base_dir,
		.key_file = ia->key_file,
		.create = true,
		.write = write,
	};
	return archive_open(&set, a_r, error_r);
}

/* The handle for a call: the writable one, or (while a job holds it) a
 * read-only one kept until the job has ended. A rebuild replaces the
 * catalog: nothing reads it meanwhile. */
static struct archive *instance_archive_get(struct instance_archive *ia, bool write,
					    const char **error_r)
{
	const char *running = instance_jobs_running(ia->jobs);
	if (running != NULL) {
		if (strcmp(running, "rebuild") == 0) {
			*error_r = "a rebuild is running: the catalog is being rebuilt; try again "
				   "when it has finished";
			return NULL;
		}
		if (write) {
			*error_r = tstr_printf("a job (%s) is running: try again when it has "
					       "finished",
					       running);
			return NULL;
		}
		/* one read-only handle serves reads for the whole job */
		if (ia->reader == NULL &&
		    instance_archive_open(ia, false, &ia->reader, error_r) < 0)
			return NULL;
		return ia->reader;
	}
	if (ia->lent && !write) {
		/* reads go on while the borrower commits, as during a job */
		if (ia->reader == NULL &&
		    instance_archive_open(ia, false, &ia->reader, error_r) < 0)
			return NULL;
		return ia->reader;
	}
	instance_archive_reclaim(ia);
	archive_destroy(&ia->reader);
	if (ia->archive == NULL && instance_archive_open(ia, true, &ia->archive, error_r) < 0)
		return NULL;
	return ia->archive;
}

struct archive *instance_archive_for_job(struct instance_archive *ia, const char **error_r)
{
	return instance_archive_get(ia, true, error_r);
}

static int instance_archive_messages_now(struct archive *a, long long *count_r,
					 const char **error_r)
{
	struct catalog_stats st;
	if (catalog_stats(archive_catalog(a), &st, error_r) < 0)
		return -1;
	*count_r = (long long)st.messages;
	return 0;
}

/* ---- one message, now (the journal receiver) ---- */

/* ---- several messages, one commit ---- */

struct instance_files_source {
	struct instance_filing *items;
	size_t count, next;
	const char *folder;
	int fd;
};

static int instance_files_next(void *context, struct archive_source_message *msg_r,
			       const char **error_r)
{
	(void)error_r;
	struct instance_files_source *src = context;
	if (src->fd >= 0)
		close(src->fd);
	src->fd = -1;
	if (src->next == src->count)
		return 0;
	size_t i = src->next++;
	struct instance_filing *item = &src->items[i];
	struct stat st;
	*msg_r = (struct archive_source_message){
		.label = "journal",
		.key = i,
		.folder = src->folder,
		.owners = item->owners,
		.owner_count = item->owner_count,
	};
	src->fd = open(item->path, O_RDONLY | O_CLOEXEC);
	if (src->fd < 0 || fstat(src->fd, &st) < 0) {
		/* this one is refused (SKIPPED), the others go on */
		msg_r->skip_reason = tstr_printf("%s: %s", item->path, strerror(errno));
		msg_r->skip_kind = ARCHIVE_IMPORT_SKIP_UNREADABLE;
		return 1;
	}
	msg_r->size = (uint64_t)st.st_size;
	return 1;
}

static ssize_t instance_files_read(void *context, unsigned char *buf, size_t size,
				   const char **error_r)
{
	struct instance_files_source *src = context;
	ssize_t n;
	do
		n = read(src->fd, buf, size);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		*error_r = tstr_printf("%s", strerror(errno));
	return n;
}

static const struct archive_source_funcs instance_files_funcs = {
	.next = instance_files_next,
	.read = instance_files_read,
};

static void instance_files_event(const struct archive_import_event *ev, void *context)
{
	struct instance_files_source *src = context;
	if (ev->type == ARCHIVE_IMPORT_PROGRESS || ev->key >= src->count)
		return;
	struct instance_filing *item = &src->items[ev->key];
	if (ev->type == ARCHIVE_IMPORT_ARCHIVED) {
		item->archived++;
	} else if (ev->type == ARCHIVE_IMPORT_DUPLICATE) {
		item->duplicates++;
	} else {
		item->ret = -1;
		snprintf(item->error, sizeof(item->error), "not archived: %s",
			 ev->reason != NULL ? ev->reason : "not a message");
	}
}

struct archive *instance_archive_lend(struct instance_archive *ia, instance_archive_wait_fn *wait,
				      void *ctx, const char **code_r, const char **error_r)
{
	*code_r = "failed";
	if (instance_jobs_running(ia->jobs) != NULL) {
		*code_r = "busy";
		*error_r = tstr_printf("a job (%s) holds the archive's writer",
				       instance_jobs_running(ia->jobs));
		return NULL;
	}
	struct archive *a = instance_archive_get(ia, true, error_r);
	if (a == NULL)
		return NULL;
	ia->lent = true;
	ia->lent_wait = wait;
	ia->lent_ctx = ctx;
	return a;
}

void instance_archive_give_back(struct instance_archive *ia)
{
	ia->lent = false;
}

int instance_archive_file_messages(struct archive *a, struct instance_filing *items, size_t count,
				   const char *folder, uint64_t max_size, const char **error_r)
{
	for (size_t i = 0; i < count; i++) {
		items[i].ret = 0;
		items[i].archived = items[i].duplicates = 0;
		items[i].error[0] = '\0';
	}
	struct instance_files_source src = {
		.items = items, .count = count, .folder = folder, .fd = -1};
	struct archive_import_settings set = {
		.user = items[0].owners[0],
		.folder = folder,
		.workers = count > 8 ? 2 : 1,
		.cb = instance_files_event,
		.context = &src,
		.max_message_size = max_size,
	};
	struct archive_import_result result;
	int ret = archive_source_import(a, &set, &instance_files_funcs, &src, &result, error_r);
	if (src.fd >= 0)
		close(src.fd);
	if (ret < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		struct instance_filing *item = &items[i];
		if (item->ret == 0 && item->archived + item->duplicates != item->owner_count) {
			item->ret = -1;
			snprintf(item->error, sizeof(item->error), "not archived");
		}
	}
	return 0;
}

/* ---- the journal lane: messages filed through a running import ----
 *
 * An import job holds the archive's one writer for as long as it runs. A
 * journal message that arrives meanwhile does not wait for it: it is put
 * in the lane, and the job's source (instance_lane_funcs, wrapped around
 * the files) hands it to the pipeline before its own next message. The
 * pipeline commits it with its batch (at most two seconds later) and its
 * events, which come only after that commit, answer the delivery (on the
 * loop, by a timer). Whatever the job did not take or commit is answered
 * as failed when the job ends: the sender tries again. */

#define INSTANCE_LANE_KEY (1ull << 63) /* keys of lane messages */
#define INSTANCE_LANE_POLL_MSECS 100

struct instance_lane_item {
	uint64_t key;
	char *path;
	char **owners;
	size_t owner_count;
	char *folder;
	unsigned int events, archived, duplicates;
	bool failed;
	char *error;
	instance_archive_filed_fn *filed;
	void *ctx;
};

struct instance_lane {
	pthread_mutex_t lock;
	pthread_cond_t queued_cond; /* a message was queued */
	/* guarded by lock: */
	bool open; /* the job's source still takes messages */
	ARRAY(struct instance_lane_item *) queued, taken, finished;
	uint64_t next_key;
	/* what lane messages added to the import's totals (not the job's own) */
	uint64_t archived, duplicates, skipped;
	/* the job's reading thread only: */
	const struct archive_source_funcs *inner;
	void *inner_ctx;
	struct instance_lane_item *current;
	int fd;
	bool inner_done; /* the job's own source has ended */
	/* the job's event callback for its own messages */
	archive_import_cb *inner_cb;
	void *inner_cb_ctx;
	/* the loop only: */
	struct event *timer;
};

static void instance_lane_item_free(struct instance_lane_item *item)
{
	for (size_t i = 0; i < item->owner_count; i++)
		mem_free(item->owners[i]);
	mem_free(item->owners);
	mem_free(item->path);
	mem_free(item->folder);
	mem_free(item->error);
	mem_free(item);
}

static void instance_lane_close_fd(struct instance_lane *lane)
{
	if (lane->fd >= 0)
		close(lane->fd);
	lane->fd = -1;
}

static int instance_lane_next(void *context, struct archive_source_message *msg_r,
			      const char **error_r)
{
	struct instance_lane *lane = context;
	instance_lane_close_fd(lane);
	lane->current = NULL;
	for (;;) {
		pthread_mutex_lock(&lane->lock);
		struct instance_lane_item *item = NULL;
		if (lane->queued.count > 0) {
			item = lane->queued.items[0];
			array_delete(&lane->queued, 0, 1);
			array_append(&lane->taken, item);
		}
		pthread_mutex_unlock(&lane->lock);
		if (item == NULL)
			break;
		struct stat st;
		lane->fd = open(item->path, O_RDONLY | O_CLOEXEC);
		if (lane->fd < 0 || fstat(lane->fd, &st) < 0) {
			/* reported as skipped by the pipeline: the event fails it */
			*msg_r = (struct archive_source_message){
				.label = "journal",
				.key = item->key,
				.skip_reason = tstr_printf("%s: %s", item->path, strerror(errno)),
				.skip_kind = ARCHIVE_IMPORT_SKIP_UNREADABLE,
			};
			return 1;
		}
		lane->current = item;
		*msg_r = (struct archive_source_message){
			.label = "journal",
			.key = item->key,
			.folder = item->folder,
			.owners = (const char *const *)item->owners,
			.owner_count = item->owner_count,
			.owners_final = true,
			.size = (uint64_t)st.st_size,
		};
		return 1;
	}
	if (lane->inner_done)
		return 0;
	int ret = lane->inner->next(lane->inner_ctx, msg_r, error_r);
	/* the job's own source is read; the lane stays open while the import
	 * lingers (instance_lane_linger) */
	if (ret == 0)
		lane->inner_done = true;
	return ret;
}

/* While what the job read goes to the writer, journal messages still come
 * in through the lane; final: the door closes. */
static int instance_lane_linger(void *context, unsigned int msecs, bool final)
{
	struct instance_lane *lane = context;
	pthread_mutex_lock(&lane->lock);
	if (lane->queued.count == 0 && final)
		lane->open = false;
	if (lane->queued.count == 0 && !final) {
		/* woken by instance_archive_file_message_queued() */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += msecs / 1000;
		until.tv_nsec += (long)(msecs % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		int ret = 0;
		while (lane->queued.count == 0 && ret == 0)
			ret = pthread_cond_timedwait(&lane->queued_cond, &lane->lock, &until);
	}
	bool more = lane->queued.count > 0;
	pthread_mutex_unlock(&lane->lock);
	return more ? 1 : 0;
}

static ssize_t instance_lane_read(void *context, unsigned char *buf, size_t size,
				  const char **error_r)
{
	struct instance_lane *lane = context;
	if (lane->current == NULL)
		return lane->inner->read(lane->inner_ctx, buf, size, error_r);
	ssize_t n;
	do
		n = read(lane->fd, buf, size);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		*error_r = tstr_printf("%s: %s", lane->current->path, strerror(errno));
	return n;
}

static unsigned char *instance_lane_take(void *context, size_t *len_r)
{
	struct instance_lane *lane = context;
	if (lane->current != NULL || lane->inner->take == NULL)
		return NULL;
	return lane->inner->take(lane->inner_ctx, len_r);
}

static const struct archive_source_funcs instance_lane_funcs = {
	.next = instance_lane_next,
	.read = instance_lane_read,
	.take = instance_lane_take,
	.linger = instance_lane_linger,
};

/* The writer's events: lane messages are answered, the rest go to the job. */
static void instance_lane_event(const struct archive_import_event *ev, void *context)
{
	struct instance_lane *lane = context;
	if (ev->type == ARCHIVE_IMPORT_PROGRESS || (ev->key & INSTANCE_LANE_KEY) == 0) {
		lane->inner_cb(ev, lane->inner_cb_ctx);
		return;
	}
	pthread_mutex_lock(&lane->lock);
	for (size_t i = 0; i < lane->taken.count; i++) {
		struct instance_lane_item *item = lane->taken.items[i];
		if (item->key != ev->key)
			continue;
		item->events++;
		if (ev->type == ARCHIVE_IMPORT_ARCHIVED) {
			item->archived++;
			lane->archived++;
		} else if (ev->type == ARCHIVE_IMPORT_DUPLICATE) {
			item->duplicates++;
			lane->duplicates++;
		} else {
			lane->skipped++;
			item->failed = true;
			item->error = mem_strdup(ev->reason != NULL ? ev->reason : "not archived");
		}
		if (item->failed || item->events == item->owner_count) {
			array_delete(&lane->taken, i, 1);
			array_append(&lane->finished, item);
		}
		break;
	}
	pthread_mutex_unlock(&lane->lock);
}

static void instance_lane_answer(struct instance_lane_item *item, bool ok)
{
	if (ok && !item->failed)
		item->filed(0, item->archived, item->duplicates, NULL, NULL, item->ctx);
	else
		item->filed(-1, 0, 0, "failed",
			    item->error != NULL
				    ? item->error
				    : "the import the message was queued in ended first",
			    item->ctx);
	instance_lane_item_free(item);
}

/* On the loop: answer what was committed. */
static void instance_lane_poll(evutil_socket_t fd, short what, void *ctx)
{
	struct instance_lane *lane = ctx;
	pthread_mutex_lock(&lane->lock);
	size_t n = lane->finished.count;
	struct instance_lane_item **done = mem_alloc(sizeof(*done) * (n + 1));
	for (size_t i = 0; i < n; i++)
		done[i] = lane->finished.items[i];
	array_clear(&lane->finished);
	pthread_mutex_unlock(&lane->lock);
	for (size_t i = 0; i < n; i++)
		instance_lane_answer(done[i], true);
	mem_free(done);
}

static struct instance_lane *instance_lane_create(const struct archive_source_funcs *inner,
						  void *inner_ctx, archive_import_cb *cb,
						  void *cb_ctx)
{
	struct instance_lane *lane = mem_new(struct instance_lane);
	pthread_mutex_init(&lane->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&lane->queued_cond, &attr);
	pthread_condattr_destroy(&attr);
	lane->open = true;
	lane->fd = -1;
	lane->inner = inner;
	lane->inner_ctx = inner_ctx;
	lane->inner_cb = cb;
	lane->inner_cb_ctx = cb_ctx;
	lane->next_key = INSTANCE_LANE_KEY;
	return lane;
}

/* On the loop, after the job's thread ended: answer everything. */
static void instance_lane_destroy(struct instance_lane **lanep)
{
	struct instance_lane *lane = *lanep;
	if (lane == NULL)
		return;
	*lanep = NULL;
	instance_lane_close_fd(lane);
	instance_lane_poll(-1, 0, lane);
	for (size_t i = 0; i < lane->taken.count; i++)
		instance_lane_answer(lane->taken.items[i], false);
	for (size_t i = 0; i < lane->queued.count; i++)
		instance_lane_answer(lane->queued.items[i], false);
	array_free(&lane->taken);
	array_free(&lane->queued);
	array_free(&lane->finished);
	if (lane->timer != NULL)
		event_free(lane->timer);
	pthread_cond_destroy(&lane->queued_cond);
	pthread_mutex_destroy(&lane->lock);
	mem_free(lane);
}

int instance_archive_file_message_queued(struct instance_archive *ia, struct event_base *base,
					 const char *path, const char *const *owners,
					 size_t owner_count, const char *folder,
					 instance_archive_filed_fn *filed, void *ctx)
{
	struct instance_lane *lane = ia->lane;
	if (lane == NULL)
		return 0;
	struct instance_lane_item *item = mem_new(struct instance_lane_item);
	item->path = mem_strdup(path);
	item->owners = mem_alloc(sizeof(char *) * owner_count);
	for (size_t i = 0; i < owner_count; i++)
		item->owners[i] = mem_strdup(owners[i]);
	item->owner_count = owner_count;
	item->folder = mem_strdup(folder);
	item->filed = filed;
	item->ctx = ctx;
	pthread_mutex_lock(&lane->lock);
	bool open = lane->open;
	if (open) {
		item->key = lane->next_key++;
		array_append(&lane->queued, item);
		pthread_cond_signal(&lane->queued_cond);
	}
	pthread_mutex_unlock(&lane->lock);
	if (!open) {
		instance_lane_item_free(item);
		return 0;
	}
	if (lane->timer == NULL) {
		lane->timer = event_new(base, -1, EV_PERSIST, instance_lane_poll, lane);
		struct timeval tv = {0, INSTANCE_LANE_POLL_MSECS * 1000};
		event_add(lane->timer, &tv);
	}
	return 1;
}

/* The job's reading thread is done with the lane: nothing more is taken. */
static void instance_lane_stop(struct instance_lane *lane)
{
	instance_lane_close_fd(lane);
	pthread_mutex_lock(&lane->lock);
	lane->open = false;
	pthread_mutex_unlock(&lane->lock);
}

struct instance_lane *instance_archive_lane_open(struct instance_archive *ia)
{
	struct instance_lane *lane = instance_lane_create(NULL, NULL, NULL, NULL);
	ia->lane = lane;
	return lane;
}

void instance_archive_lane_wrap(struct instance_lane *lane,
				const struct archive_source_funcs *inner, void *inner_ctx,
				archive_import_cb *cb, void *cb_ctx,
				const struct archive_source_funcs **funcs_r)
{
	lane->inner = inner;
	lane->inner_ctx = inner_ctx;
	lane->inner_cb = cb;
	lane->inner_cb_ctx = cb_ctx;
	*funcs_r = &instance_lane_funcs;
}

void instance_archive_lane_event(const struct archive_import_event *ev, void *lane)
{
	instance_lane_event(ev, lane);
}

void instance_archive_lane_end(struct instance_lane *lane)
{
	instance_lane_stop(lane);
}

void instance_archive_lane_close(struct instance_archive *ia, struct instance_lane **lane)
{
	if (*lane != NULL && ia->lane == *lane)
		ia->lane = NULL;
	instance_lane_destroy(lane);
}

/* ---- imports ---- */

struct instance_import {
	struct instance_archive *ia;
	struct instance_job *job;
	char *owner, *folder;
	char **paths;
	size_t path_count;
	struct instance_lane *lane; /* journal messages filed through this job */
	/* the job's thread only: */
	uint64_t input_bytes;
	struct archive_import_result counts;
	uint64_t messages, bytes;
};

static void instance_import_free(void *ctx)
{
	struct instance_import *imp = ctx;
	/* on the loop, after the job's thread ended (or it never started) */
	if (imp->ia->lane == imp->lane)
		imp->ia->lane = NULL;
	instance_lane_destroy(&imp->lane);
	for (size_t i = 0; i < imp->path_count; i++)
		mem_free(imp->paths[i]);
	mem_free(imp->paths);
	mem_free(imp->owner);
	mem_free(imp->folder);
	mem_free(imp);
}

/* Counts so far into the job (after each committed batch, and at the end). */
static void instance_import_publish(struct instance_import *imp)
{
	struct instance_job *job = imp->job;
	instance_job_count(job, "messagesRead", (long long)imp->messages);
	instance_job_count(job, "bytesRead", (long long)imp->bytes);
	instance_job_count(job, "archived", (long long)imp->counts.archived);
	instance_job_count(job, "duplicates", (long long)imp->counts.duplicates);
	instance_job_count(job, "skipped", (long long)imp->counts.skipped);
	instance_job_count(job, "defects", (long long)imp->counts.defects);
	instance_job_status(job, tstr_printf("%llu messages read, %llu archived, %llu skipped",
					     (unsigned long long)imp->messages,
					     (unsigned long long)imp->counts.archived,
					     (unsigned long long)imp->counts.skipped));
	if (imp->input_bytes > 0)
		instance_job_progress(job, imp->bytes, imp->input_bytes);
}

static void instance_import_event(const struct archive_import_event *ev, void *context)
{
	struct instance_import *imp = context;
	switch (ev->type) {
	case ARCHIVE_IMPORT_ARCHIVED:
		imp->counts.archived++;
		imp->counts.defects += ev->defects > 0;
		break;
	case ARCHIVE_IMPORT_DUPLICATE:
		imp->counts.duplicates++;
		break;
	case ARCHIVE_IMPORT_SKIPPED:
		imp->counts.skipped++;
		instance_job_log(imp->job, tstr_printf("skipped %s: %s", ev->source, ev->reason));
		break;
	case ARCHIVE_IMPORT_PROGRESS:
		/* a batch was committed */
		imp->messages = ev->messages;
		imp->bytes = ev->bytes;
		instance_import_publish(imp);
		break;
	}
}

/* The bytes an import will read, for its percentage (nftw has no context
 * argument: the sum is per thread). */
static _Thread_local uint64_t instance_import_walk_sum;

static int instance_import_walk(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_F && S_ISREG(st->st_mode))
		instance_import_walk_sum += (uint64_t)st->st_size;
	return 0;
}

static uint64_t instance_import_input_bytes(const struct instance_import *imp)
{
	instance_import_walk_sum = 0;
	for (size_t i = 0; i < imp->path_count; i++)
		(void)nftw(imp->paths[i], instance_import_walk, 16, FTW_PHYS);
	return instance_import_walk_sum;
}

/* Why, per kind: which inputs were skipped and which parse defects the
 * archived messages have (docs/archive.md names each), so that an operator
 * sees why thousands of messages are flagged. Absent kinds are left out. */
static void instance_import_publish_kinds(struct instance_job *job,
					  const struct archive_import_result *result)
{
	for (unsigned int k = 0; k < ARCHIVE_IMPORT_SKIP_KINDS; k++) {
		if (result->skipped_by_kind[k] > 0)
			instance_job_count_in(job, "skippedByKind", archive_import_skip_name(k),
					      (long long)result->skipped_by_kind[k]);
	}
	for (unsigned int bit = 0; bit < 32; bit++) {
		const char *name = mime_defect_name(bit);
		if (result->defects_by_kind[bit] > 0 && name != NULL)
			instance_job_count_in(job, "defectsByKind", name,
					      (long long)result->defects_by_kind[bit]);
	}
}

static int instance_import_run(struct instance_job *job, void *ctx, const char **error_r)
{
	struct instance_import *imp = ctx;
	imp->job = job;
	imp->input_bytes = instance_import_input_bytes(imp);
	struct archive_source_files *files = archive_source_files_create(
		(const char *const *)imp->paths, imp->path_count, imp->folder, 0);
	struct instance_lane *lane = imp->lane;
	lane->inner_ctx = files;
	struct archive_import_settings set = {
		.user = imp->owner,
		.folder = imp->folder,
		.cb = instance_lane_event,
		.context = lane,
		.cancel = instance_job_cancel_flag(job),
	};
	struct archive_import_result result = {0};
	int ret = archive_source_import(imp->ia->archive, &set, &instance_lane_funcs, lane, &result,
					error_r);
	instance_lane_stop(lane);
	archive_source_files_destroy(&files);
	/* the job reports its own input only */
	pthread_mutex_lock(&lane->lock);
	result.archived -= lane->archived < result.archived ? lane->archived : result.archived;
	result.duplicates -=
		lane->duplicates < result.duplicates ? lane->duplicates : result.duplicates;
	result.skipped -= lane->skipped < result.skipped ? lane->skipped : result.skipped;
	pthread_mutex_unlock(&lane->lock);
	/* the engine's own totals: what it committed, also when stopped */
	imp->counts.archived = result.archived;
	imp->counts.duplicates = result.duplicates;
	imp->counts.skipped = result.skipped;
	imp->counts.defects = result.defects;
	instance_import_publish(imp);
	instance_import_publish_kinds(imp->job, &result);
	return ret;
}

static const struct instance_job_kind instance_import_kind = {
	.name = "import",
	.run = instance_import_run,
	.done = instance_import_free,
};

/* An import cut short by the end of the process: what it committed is
 * exactly what the catalog gained since it started (nothing else writes
 * while a job runs). */
static void instance_import_recover(const struct json *arguments, const struct json *internal,
				    struct json *result, void *ctx)
{
	struct instance_archive *ia = ctx;
	long long before, now;
	struct archive *a;
	const char *error;
	if (json_get_int(internal, "messagesBefore", &before) < 0 ||
	    instance_archive_open(ia, false, &a, &error) < 0)
		return;
	if (instance_archive_messages_now(a, &now, &error) == 0 && now >= before)
		json_set_int(result, "archived", now - before);
	archive_destroy(&a);
}

void instance_archive_recover(struct instance_archive *ia)
{
	instance_jobs_recover(ia->jobs, "import", instance_import_recover, ia);
}

/* "import/x.mbox" or an absolute path, in both cases below <base>/import. */
static char *instance_import_path(struct instance_archive *ia, const char *path,
				  const char **error_r)
{
	char *root = mem_printf("%s/import", ia->base_dir);
	char *joined = path[0] == '/' ? mem_strdup(path) : mem_printf("%s/%s", ia->base_dir, path);
	char resolved[PATH_MAX], resolved_root[PATH_MAX];
	char *ret = NULL;
	(void)mkdir(root, 0700);
	if (realpath(root, resolved_root) == NULL || realpath(joined, resolved) == NULL) {
		*error_r = tstr_printf(
			"path '%s': not found (import paths are files or folders below %s)", path,
			root);
	} else if (strncmp(resolved, resolved_root, strlen(resolved_root)) != 0 ||
		   (resolved[strlen(resolved_root)] != '/' &&
		    resolved[strlen(resolved_root)] != '\0')) {
		*error_r = tstr_printf("path '%s': an instance imports only from below its own %s",
				       path, root);
	} else {
		ret = mem_strdup(resolved);
	}
	mem_free(root);
	mem_free(joined);
	return ret;
}

static struct json *instance_job_started(const char *id)
{
	struct json *r = json_new_object();
	json_set_string(r, "jobID", id);
	return r;
}

static int instance_import_start(struct instance_archive *ia, const struct json *args,
				 const char *owner, struct json **result_r, const char **error_r)
{
	if (owner == NULL) {
		*error_r = "userName: no such user";
		return -1;
	}
	const struct json *paths = json_get(args, "paths");
	const char *one = json_get_string(args, "path");
	size_t count = one != NULL ? 1 : json_count(paths);
	if (count == 0) {
		*error_r = "path: give the file or folder to import";
		return -1;
	}
	struct instance_import *imp = mem_new(struct instance_import);
	imp->ia = ia;
	imp->paths = mem_calloc(count, sizeof(char *));
	for (size_t i = 0; i < count; i++) {
		const char *p = one != NULL ? one : json_string_of(json_at(paths, i));
		imp->paths[i] = p == NULL ? NULL : instance_import_path(ia, p, error_r);
		if (imp->paths[i] == NULL) {
			imp->path_count = i;
			instance_import_free(imp);
			return -1;
		}
		imp->path_count = i + 1;
	}
	imp->owner = mem_strdup(owner);
	const char *folder = json_get_string(args, "folder");
	imp->folder = mem_strdup(folder != NULL && folder[0] != '\0' ? folder : "Import");
	struct archive *a;
	long long before;
	if ((a = instance_archive_get(ia, true, error_r)) == NULL ||
	    instance_archive_messages_now(a, &before, error_r) < 0) {
		instance_import_free(imp);
		return -1;
	}
	struct json *shown = json_new_object(), *internal = json_new_object();
	json_set_string(shown, "userName", json_get_string(args, "userName"));
	json_set(shown, "paths", json_new_array());
	for (size_t i = 0; i < count; i++)
		json_append(json_get(shown, "paths"),
			    json_new_string(one != NULL ? one : json_string_of(json_at(paths, i))));
	json_set_string(shown, "folder", imp->folder);
	json_set_int(internal, "messagesBefore", before);
	const char *id;
	imp->lane =
		instance_lane_create(&archive_source_files_funcs, NULL, instance_import_event, imp);
	if (instance_jobs_start(ia->jobs, &instance_import_kind, shown, internal, imp, &id,
				error_r) < 0) {
		instance_import_free(imp);
		return -1;
	}
	ia->lane = imp->lane;
	*result_r = instance_job_started(id);
	return 0;
}

/* ---- verify and rebuild ---- */

struct instance_check {
	struct instance_archive *ia;
	struct instance_job *job;
	long long problems;
};

static void instance_check_line(const char *line, void *context)
{
	struct instance_check *c = context;
	c->problems++;
	instance_job_report(c->job, line);
}

static void instance_check_progress(uint64_t done, uint64_t total, void *context)
{
	struct instance_check *c = context;
	instance_job_progress(c->job, done, total);
}

static void instance_check_free(void *ctx)
{
	mem_free(ctx);
}

static int instance_verify_run(struct instance_job *job, void *ctx, const char **error_r)
{
	struct instance_check *c = ctx;
	c->job = job;
	instance_job_count(job, "problems", 0);
	instance_job_status(job, "checking every record against its hash and the catalog");
	struct archive_work work = {.report = instance_check_line,
				    .progress = instance_check_progress,
				    .context = c,
				    .cancel = instance_job_cancel_flag(job)};
	int ret = archive_verify_work(c->ia->archive, &work, error_r);
	instance_job_count(job, "problems", c->problems);
	instance_job_status(job, tstr_printf("%lld problems", c->problems));
	return ret < 0 ? -1 : 0;
}

static int instance_rebuild_run(struct instance_job *job, void *ctx, const char **error_r)
{
	struct instance_check *c = ctx;
	c->job = job;
	instance_job_count(job, "damagedRecords", 0);
	instance_job_status(job, "rebuilding the catalog and index from the stores");
	struct archive_settings set = {
		.base_dir = c->ia->base_dir, .key_file = c->ia->key_file, .write = true};
	struct archive_work work = {.report = instance_check_line,
				    .progress = instance_check_progress,
				    .context = c,
				    .cancel = instance_job_cancel_flag(job)};
	int damaged = archive_rebuild_work(&set, &work, error_r);
	if (damaged >= 0) {
		instance_job_count(job, "damagedRecords", damaged);
		instance_job_status(job, tstr_printf("%d damaged records skipped", damaged));
	}
	return damaged < 0 ? -1 : 0;
}

static const struct instance_job_kind instance_verify_kind = {
	.name = "verify",
	.run = instance_verify_run,
	.done = instance_check_free,
};

static const struct instance_job_kind instance_rebuild_kind = {
	.name = "rebuild",
	.run = instance_rebuild_run,
	.done = instance_check_free,
};

static int instance_check_start(struct instance_archive *ia, const struct instance_job_kind *kind,
				struct json **result_r, const char **error_r)
{
	if (kind == &instance_rebuild_kind) {
		/* the rebuild opens the base directory itself, as the one writer */
		if (!instance_archive_close(ia)) {
			*error_r = tstr_printf("a job (%s) is running: rebuild when it has "
					       "finished",
					       instance_jobs_running(ia->jobs));
			return -1;
		}
	} else if (instance_archive_get(ia, true, error_r) == NULL) {
		return -1;
	}
	struct instance_check *c = mem_new(struct instance_check);
	c->ia = ia;
	const char *id;
	if (instance_jobs_start(ia->jobs, kind, json_new_object(), NULL, c, &id, error_r) < 0) {
		mem_free(c);
		return -1;
	}
	*result_r = instance_job_started(id);
	return 0;
}

/* ---- the calls ---- */

struct instance_search_collect {
	struct json *list;
};

static void instance_search_hit(const struct archive_hit *hit, void *context)
{
	struct instance_search_collect *c = context;
	struct json *m = json_new_object();
	json_set_int(m, "id", hit->id);
	json_set_int(m, "date", hit->date);
	json_set_string(m, "from", hit->from);
	json_set_string(m, "subject", hit->subject);
	json_set_string(m, "user", hit->user);
	json_set_string(m, "folder", hit->folder);
	json_set_int(m, "size", (long long)hit->size);
	json_append(c->list, m);
}

static void instance_report_line(const char *line, void *context)
{
	json_append(context, json_new_string(line));
}

static int instance_archive_search_on(struct archive *a, const struct json *args,
				      struct json **result_r, const char **error_r)
{
	const char *query = json_get_string(args, "query");
	long long limit = 50, offset = 0;
	(void)json_get_int(args, "limit", &limit);
	(void)json_get_int(args, "offset", &offset);
	if (limit < 1 || limit > 1000 || offset < 0) {
		*error_r = "limit: 1 to 1000; offset: 0 or more";
		return -1;
	}
	/* An administrator's search covers the whole instance; every hit names
	 * its user. (End users' searches, scoped to their own archive, come
	 * with Web Access and IMAP.) */
	struct instance_search_collect c = {json_new_array()};
	uint64_t total = 0;
	int ret = archive_search(a, query == NULL ? "" : query, (uint64_t)limit, (uint64_t)offset,
				 &total, instance_search_hit, &c, error_r);
	if (ret < 0) {
		json_unref(&c.list);
		return -1;
	}
	struct json *r = json_new_object();
	json_set_int(r, "total", (long long)total);
	json_set(r, "messages", c.list);
	*result_r = r;
	return 0;
}

/* ---- folders: "archiveName/path/of/folder" names ---- */

struct instance_folder_walk {
	struct json *list;
	const char *parent; /* GetChildFolders: "" for the top */
	struct json *seen;  /* child name -> entry */
};

static void instance_folder_stat(const struct archive_folder *f, void *context)
{
	struct instance_folder_walk *w = context;
	struct json *e = json_new_object();
	char *full = mem_printf("%s/%s", f->user, f->path);
	json_set_string(e, "folder", full);
	json_set_int(e, "messages", (long long)f->messages);
	json_set_int(e, "bytes", (long long)f->bytes);
	json_append(w->list, e);
	mem_free(full);
}

static void instance_folder_child(const struct archive_folder *f, void *context)
{
	struct instance_folder_walk *w = context;
	char *full = mem_printf("%s/%s", f->user, f->path);
	size_t plen = strlen(w->parent);
	if (plen == 0 || (strncmp(full, w->parent, plen) == 0 && full[plen] == '/')) {
		const char *rest = full + (plen == 0 ? 0 : plen + 1);
		const char *slash = strchr(rest, '/');
		char *name =
			mem_strndup(rest, slash == NULL ? strlen(rest) : (size_t)(slash - rest));
		struct json *e = json_get(w->seen, name);
		if (e == NULL) {
			e = json_new_object();
			char *child =
				plen == 0 ? mem_strdup(name) : mem_printf("%s/%s", w->parent, name);
			json_set_string(e, "folder", child);
			json_set_string(e, "name", name);
			json_set_int(e, "messages", 0);
			json_set_bool(e, "hasChildren", false);
			json_set(w->seen, name, e);
			json_append(w->list, json_ref(e));
			mem_free(child);
		}
		if (slash == NULL)
			json_set_int(e, "messages", (long long)f->messages);
		else
			json_set_bool(e, "hasChildren", true);
		mem_free(name);
	}
	mem_free(full);
}

static int instance_archive_folders(struct archive *a, archive_folder_cb *each,
				    const struct json *args, struct json **result_r,
				    const char **error_r)
{
	struct instance_folder_walk w = {json_new_array(), json_get_string(args, "folder"),
					 json_new_object()};
	if (w.parent == NULL)
		w.parent = "";
	int ret = archive_folders(a, each, &w, error_r);
	json_unref(&w.seen);
	if (ret < 0) {
		json_unref(&w.list);
		return -1;
	}
	*result_r = w.list;
	return 0;
}

static int instance_archive_messages(struct archive *a, const struct json *args,
				     struct json **result_r, const char **error_r)
{
	const char *folder = json_get_string(args, "folder");
	const char *slash = folder == NULL ? NULL : strchr(folder, '/');
	long long limit = 50, offset = 0;
	(void)json_get_int(args, "limit", &limit);
	(void)json_get_int(args, "offset", &offset);
	if (slash == NULL || slash == folder || slash[1] == '\0') {
		*error_r = "folder: expected USER/PATH (as GetChildFolders names it)";
		return -1;
	}
	if (limit < 1 || limit > 1000 || offset < 0) {
		*error_r = "limit: 1 to 1000; offset: 0 or more";
		return -1;
	}
	char *user = mem_strndup(folder, (size_t)(slash - folder));
	struct instance_search_collect c = {json_new_array()};
	uint64_t total = 0;
	int ret = archive_folder_messages(a, user, slash + 1, (uint64_t)limit, (uint64_t)offset,
					  &total, instance_search_hit, &c, error_r);
	mem_free(user);
	if (ret <= 0) {
		if (ret == 0)
			*error_r = tstr_printf("no folder '%s'", folder);
		json_unref(&c.list);
		return -1;
	}
	struct json *r = json_new_object();
	json_set_int(r, "total", (long long)total);
	json_set(r, "messages", c.list);
	*result_r = r;
	return 0;
}

/* The handle a call works on: the writable one for calls that write
 * (INSTANCE_CALL_WRITES), else one for reading. */
static struct archive *instance_archive_for(struct instance_call *c)
{
	bool write = (c->def->flags & INSTANCE_CALL_WRITES) != 0;
	return instance_archive_get(c->inst->archive, write, &c->error);
}

int instance_archive_get_statistics(struct instance_call *c)
{
	struct archive *a = instance_archive_for(c);
	if (a == NULL)
		return -1;
	struct str *out = str_create(256);
	int ret = archive_stats_json(a, out, &c->error);
	if (ret == 0)
		ret = json_parse(str_c(out), str_len(out), &c->result, &c->error);
	str_destroy(&out);
	return ret < 0 ? -1 : 0;
}

int instance_archive_search(struct instance_call *c)
{
	struct archive *a = instance_archive_for(c);
	return a == NULL ? -1 : instance_archive_search_on(a, c->args, &c->result, &c->error);
}

int instance_archive_get_child_folders(struct instance_call *c)
{
	struct archive *a = instance_archive_for(c);
	return a == NULL ? -1
			 : instance_archive_folders(a, instance_folder_child, c->args, &c->result,
						    &c->error);
}

int instance_archive_get_folder_statistics(struct instance_call *c)
{
	struct archive *a = instance_archive_for(c);
	return a == NULL ? -1
			 : instance_archive_folders(a, instance_folder_stat, c->args, &c->result,
						    &c->error);
}

int instance_archive_get_messages(struct instance_call *c)
{
	struct archive *a = instance_archive_for(c);
	return a == NULL ? -1 : instance_archive_messages(a, c->args, &c->result, &c->error);
}

int instance_archive_get_stores(struct instance_call *c)
{
	struct archive *a = instance_archive_for(c);
	if (a == NULL)
		return -1;
	struct json *lines = json_new_array();
	if (archive_store_list(a, instance_report_line, lines, &c->error) < 0) {
		json_unref(&lines);
		return -1;
	}
	c->result = lines;
	return 0;
}

int instance_archive_create_store(struct instance_call *c)
{
	struct archive *a = instance_archive_for(c);
	return a == NULL || archive_store_new(a, &c->error) < 0 ? -1 : 0;
}

int instance_archive_set_store_requested_state(struct instance_call *c)
{
	struct archive *a = instance_archive_for(c);
	return a == NULL || archive_store_set_state(a, json_get_string(c->args, "storeName"),
						    json_get_string(c->args, "requestedState"),
						    &c->error) < 0
		       ? -1
		       : 0;
}

/* long work: started as a job, answered with its jobID at once */
int instance_archive_start_import(struct instance_call *c)
{
	return instance_import_start(c->inst->archive, c->args, c->owner, &c->result, &c->error);
}

int instance_archive_verify(struct instance_call *c)
{
	return instance_check_start(c->inst->archive, &instance_verify_kind, &c->result, &c->error);
}

int instance_archive_rebuild(struct instance_call *c)
{
	return instance_check_start(c->inst->archive, &instance_rebuild_kind, &c->result,
				    &c->error);
}

struct archive *instance_archive_for_reading(struct instance_archive *ia, const char **error_r)
{
	return instance_archive_get(ia, false, error_r);
}

struct archive *instance_archive_for_writing(struct instance_archive *ia, const char **error_r)
{
	return instance_archive_get(ia, true, error_r);
}

void instance_archive_destroy(struct instance_archive **ia)
{
	struct instance_archive *a = *ia;
	if (a == NULL)
		return;
	/* a running job was stopped with the runner, which goes first */
	archive_destroy(&a->reader);
	archive_destroy(&a->archive);
	mem_free(a->base_dir);
	mem_free(a->key_file);
	mem_free(a);
	*ia = NULL;
}
