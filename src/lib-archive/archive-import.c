#include "archive-import.h"
#include "alloc.h"
#include "archive-private.h"
#include "archive-source.h"
#include "array.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define ARCHIVE_IMPORT_MAX_JOBS 4096
#define ARCHIVE_IMPORT_BATCH_MESSAGES 2000
#define ARCHIVE_IMPORT_BATCH_BYTES (64u * 1024 * 1024)
#define ARCHIVE_IMPORT_BATCH_MSECS 2000
#define ARCHIVE_IMPORT_TRIM_BYTES (8u * 1024 * 1024)
#define ARCHIVE_IMPORT_DICT_BYTES (8u * 1024 * 1024)
/* Samples for dictionary training: the most recent messages (their first
 * 32 KiB, where headers and text are; attachments teach a dictionary little). */
#define ARCHIVE_IMPORT_RING_MAX 4096
#define ARCHIVE_IMPORT_RING_BYTES (16u * 1024 * 1024)
#define ARCHIVE_IMPORT_SAMPLE_MAX (32u * 1024)
/* Dictionaries one import may train (see archive_import_dict_window()): 64
 * windows of at least 64 MiB each, far more than any real import needs. */
#define ARCHIVE_IMPORT_MAX_NEW_DICTS 64
/* How much of a message's start the not-a-message heuristics look at. */
#define ARCHIVE_IMPORT_SNIFF (64u * 1024)

static const char *const archive_import_skip_names[ARCHIVE_IMPORT_SKIP_KINDS] = {
	"unreadable", "not-a-message", "too-large", "unsupported", "empty", "no-recipient",
};

const char *archive_import_skip_name(enum archive_import_skip kind)
{
	return (unsigned int)kind < ARCHIVE_IMPORT_SKIP_KINDS ? archive_import_skip_names[kind]
							      : "unknown";
}

struct archive_import_part {
	unsigned char hash[RECORD_HASH_LEN];
	unsigned char *rec;
	size_t rec_len, raw_len;
};

struct archive_import_job {
	struct archive_import_job *next;
	char *source, *folder;
	/* the users it is archived for (at least one) and the source's key */
	char **owners;
	size_t owner_count;
	uint64_t key;
	int64_t internal_date;
	unsigned char *data;
	size_t len, cost;
	char *skip_reason;
	enum archive_import_skip skip_kind;
	bool taken, done;
	/* results of the worker */
	unsigned char hash[RECORD_HASH_LEN];
	struct mime_info *info;
	unsigned char *rec;
	size_t rec_len;
	struct archive_import_part *parts;
	size_t part_count;
	unsigned char *imap;
	size_t imap_len;
	/* the dictionary the worker compresses with */
	const struct compress_dict *dict;
	/* a job that only carries a new dictionary to the writer, which files
	 * it before the messages compressed with it */
	struct compress_dict *new_dict;
	uint64_t dict_raw_before;
};

struct archive_import_sample {
	unsigned char *data;
	size_t len;
};

struct archive_import_pending {
	enum archive_import_event_type type;
	char *source, *user;
	uint64_t key;
	int64_t message_id;
	char hash_hex[RECORD_HASH_LEN * 2 + 1];
	unsigned int defects;
	/* SKIPPED, behind messages of the open batch: kept in input order */
	enum archive_import_skip skip;
	char *reason;
};

struct archive_import {
	struct archive *a;
	const struct archive_import_settings *set;
	const char *user, *folder;
	uint64_t max_message;
	const struct compress_dict *dict;

	pthread_mutex_t lock;
	pthread_cond_t work_cond, done_cond, space_cond;
	struct archive_import_job *head, *tail, *next_to_take;
	size_t jobs, inflight;
	bool input_done, stop;
	/* the reader waits for room for a message of next_cost bytes */
	bool reader_waiting;
	size_t next_cost;

	/* dictionary training (before the pipeline starts) */
	bool training;
	struct archive_import_job *held_head, *held_tail;
	size_t held_count, held_bytes;

	/* dictionary generations (reader thread) */
	struct archive_import_sample ring[ARCHIVE_IMPORT_RING_MAX];
	size_t ring_next, ring_count, ring_bytes;
	uint64_t raw_total, raw_since_dict;
	uint32_t next_dict_id;
	/* dictionaries made during this import; the writer hands each to the
	 * archive, and those it could not (a failed import) are freed at the end */
	struct compress_dict *made[ARCHIVE_IMPORT_MAX_NEW_DICTS];
	size_t made_count;

	/* threads, started once the dictionary question is settled, because
	 * workers compress with it */
	bool started;
	unsigned int worker_count;
	pthread_t *workers, writer;

	/* writer state */
	char *error;
	struct archive_import_result result;
	ARRAY(struct archive_import_pending) pending;
	uint64_t total_messages, total_bytes;
};

static void archive_import_job_free(struct archive_import_job *job)
{
	mem_free(job->source);
	mem_free(job->folder);
	for (size_t i = 0; i < job->owner_count; i++)
		mem_free(job->owners[i]);
	mem_free(job->owners);
	mem_free(job->data);
	mem_free(job->skip_reason);
	mime_info_destroy(&job->info);
	mem_free(job->rec);
	mem_free(job->imap);
	for (size_t i = 0; i < job->part_count; i++)
		mem_free(job->parts[i].rec);
	mem_free(job->parts);
	mem_free(job);
}

static int64_t archive_import_now(void)
{
	return (int64_t)time(NULL);
}

static uint64_t archive_import_msecs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Worker: everything that costs CPU happens here, in parallel. */
static void archive_import_process(struct archive_import *imp, struct archive_import_job *job)
{
	crypto_sha256(job->data, job->len, job->hash);
	job->info = mime_parse(job->data, job->len, MIME_LARGE_PART_MIN);
	const struct mime_info *info = job->info;
	struct record_chunk *chunks = mem_alloc((info->large_part_count * 2 + 1) * sizeof(*chunks));
	size_t nchunks = 0, pos = 0;
	if (info->large_part_count > 0)
		job->parts = mem_alloc(info->large_part_count * sizeof(*job->parts));
	for (size_t i = 0; i < info->large_part_count; i++) {
		const struct mime_span *span = &info->large_parts[i];
		if (span->offset < pos || span->offset + span->len > job->len)
			continue;
		if (span->offset > pos) {
			chunks[nchunks++] = (struct record_chunk){.is_part = false,
								  .len = span->offset - pos,
								  .data = job->data + pos};
		}
		struct archive_import_part *part = &job->parts[job->part_count++];
		crypto_sha256(job->data + span->offset, span->len, part->hash);
		part->raw_len = span->len;
		part->rec = record_seal_part(imp->a->key, part->hash, job->data + span->offset,
					     span->len, NULL, &part->rec_len);
		struct record_chunk *c = &chunks[nchunks++];
		memset(c, 0, sizeof(*c));
		c->is_part = true;
		c->len = span->len;
		memcpy(c->hash, part->hash, RECORD_HASH_LEN);
		pos = span->offset + span->len;
	}
	if (pos < job->len || nchunks == 0) {
		chunks[nchunks++] = (struct record_chunk){
			.is_part = false, .len = job->len - pos, .data = job->data + pos};
	}
	struct record_meta meta = {.raw_size = job->len,
				   .internal_date = job->internal_date,
				   .archived_at = archive_import_now(),
				   .user = job->owners[0],
				   .folder = job->folder};
	memcpy(meta.hash, job->hash, RECORD_HASH_LEN);
	job->rec =
		record_seal_message(imp->a->key, &meta, chunks, nchunks, job->dict, &job->rec_len);
	mem_free(chunks);
	job->imap = archive_imap_pack(job->info, job->dict, &job->imap_len);
	/* the raw bytes are no longer needed: the record holds them */
	mem_free(job->data);
	job->data = NULL;
}

/* There is one writer and several workers: where they compete for the
 * cores, the writer, whose commits every message waits for, falls behind
 * while the pipeline fills with finished work it has not taken (a
 * 1,000,000-message import: the writer runnable 90 % of the time, on a
 * core 60 %). The workers run at a lower priority (a thread's own nice
 * value on Linux), so a runnable writer gets a core first; they have the
 * rest, and other processes' work comes before theirs
 * (docs/benchmarks.md, scale). */
#define ARCHIVE_IMPORT_WORKER_NICE 5

static void archive_import_lower_priority(void)
{
	errno = 0;
	int nice_now = getpriority(PRIO_PROCESS, (id_t)gettid());
	if (nice_now == -1 && errno != 0)
		return;
	/* an advice: where it cannot be set, the threads share alike */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), nice_now + ARCHIVE_IMPORT_WORKER_NICE);
}

static void *archive_import_worker(void *context)
{
	struct archive_import *imp = context;
	archive_import_lower_priority();
	pthread_mutex_lock(&imp->lock);
	for (;;) {
		while (imp->next_to_take == NULL && !imp->input_done && !imp->stop)
			pthread_cond_wait(&imp->work_cond, &imp->lock);
		if (imp->next_to_take == NULL)
			break;
		struct archive_import_job *job = imp->next_to_take;
		imp->next_to_take = job->next;
		job->taken = true;
		pthread_mutex_unlock(&imp->lock);
		if (job->skip_reason == NULL && job->new_dict == NULL && !imp->stop)
			archive_import_process(imp, job);
		pthread_mutex_lock(&imp->lock);
		job->done = true;
		/* the writer waits for the head of the queue only */
		if (job == imp->head)
			pthread_cond_signal(&imp->done_cond);
	}
	pthread_mutex_unlock(&imp->lock);
	return NULL;
}

/* Hands ev, with the running totals, to the caller's callback. */
static void archive_import_emit(struct archive_import *imp, struct archive_import_event *ev)
{
	if (imp->set->cb == NULL)
		return;
	ev->messages = imp->total_messages;
	ev->bytes = imp->total_bytes;
	imp->set->cb(ev, imp->set->context);
}

static void archive_import_pend(struct archive_import *imp, enum archive_import_event_type type,
				const struct archive_import_job *job, const char *user,
				int64_t message_id)
{
	struct archive_import_pending *p = array_push(&imp->pending);
	p->type = type;
	p->source = mem_strdup(job->source);
	p->user = mem_strdup(user);
	p->key = job->key;
	p->message_id = message_id;
	archive_hash_hex(job->hash, p->hash_hex);
	p->defects = job->info != NULL ? job->info->defects : 0;
}

/* A skip is reported at once, unless messages before it wait for their
 * commit: then it waits behind them, so that events keep the input order
 * (a source advancing a high-water mark relies on it). */
static void archive_import_report_skip(struct archive_import *imp,
				       const struct archive_import_job *job)
{
	if (imp->pending.count > 0) {
		struct archive_import_pending *p = array_push(&imp->pending);
		p->type = ARCHIVE_IMPORT_SKIPPED;
		p->source = mem_strdup(job->source);
		p->user = mem_strdup(job->owners[0]);
		p->key = job->key;
		p->skip = job->skip_kind;
		p->reason = mem_strdup(job->skip_reason);
		return;
	}
	imp->result.skipped++;
	imp->result.skipped_by_kind[job->skip_kind]++;
	struct archive_import_event ev = {.type = ARCHIVE_IMPORT_SKIPPED,
					  .source = job->source,
					  .user = job->owners[0],
					  .key = job->key,
					  .skip = job->skip_kind,
					  .reason = job->skip_reason};
	archive_import_emit(imp, &ev);
}

static void archive_import_flush_pending(struct archive_import *imp, bool committed)
{
	for (size_t i = 0; i < imp->pending.count; i++) {
		struct archive_import_pending *p = &imp->pending.items[i];
		if (p->type == ARCHIVE_IMPORT_SKIPPED) {
			/* not archived either way: said whether or not the
			 * batch before it made it */
			imp->result.skipped++;
			imp->result.skipped_by_kind[p->skip]++;
			struct archive_import_event ev = {.type = ARCHIVE_IMPORT_SKIPPED,
							  .source = p->source,
							  .user = p->user,
							  .key = p->key,
							  .skip = p->skip,
							  .reason = p->reason};
			archive_import_emit(imp, &ev);
		} else if (committed) {
			if (p->type == ARCHIVE_IMPORT_ARCHIVED)
				imp->result.archived++;
			else
				imp->result.duplicates++;
			imp->result.defects += p->defects > 0;
			for (unsigned int bit = 0; bit < 32; bit++)
				imp->result.defects_by_kind[bit] += (p->defects >> bit) & 1;
			struct archive_import_event ev = {.type = p->type,
							  .source = p->source,
							  .user = p->user,
							  .key = p->key,
							  .message_id = p->message_id,
							  .hash_hex = p->hash_hex,
							  .defects = p->defects};
			archive_import_emit(imp, &ev);
		}
		mem_free(p->source);
		mem_free(p->user);
		mem_free(p->reason);
	}
	array_clear(&imp->pending);
}

/* Writer: one message for one of its owners into the open transaction
 * (the content is stored once: later owners find it and get a reference). */
static int archive_import_write(struct archive_import *imp, struct archive_store *s,
				struct archive_import_job *job, const char *user,
				const char **error_r)
{
	struct archive *a = imp->a;
	int64_t content_id, message_id;
	int found = catalog_content_find(a->cat, job->hash, &content_id, error_r);
	if (found < 0)
		return -1;
	struct store_loc loc;
	if (found == 1) {
		int in_folder = catalog_message_find(a->cat, content_id, user, job->folder,
						     &message_id, error_r);
		if (in_folder < 0)
			return -1;
		if (in_folder == 1) {
			archive_import_pend(imp, ARCHIVE_IMPORT_DUPLICATE, job, user, message_id);
			return 0;
		}
		struct record_meta meta = {.raw_size = job->len,
					   .internal_date = job->internal_date,
					   .archived_at = archive_import_now(),
					   .user = user,
					   .folder = job->folder};
		memcpy(meta.hash, job->hash, RECORD_HASH_LEN);
		size_t len;
		unsigned char *rec = record_seal_ref(a->key, &meta, &len);
		int ret = store_append(s->store, rec, len, &loc, error_r);
		mem_free(rec);
		if (ret < 0)
			return -1;
		struct catalog_loc cloc = {s->id, loc.segment, loc.offset, loc.length};
		int64_t date = job->info->date != 0 ? job->info->date : job->internal_date;
		if (catalog_message_add(a->cat, content_id, user, job->folder, date,
					job->internal_date, &cloc, &message_id, error_r) < 0)
			return -1;
		archive_import_pend(imp, ARCHIVE_IMPORT_ARCHIVED, job, user, message_id);
		return 0;
	}
	unsigned char(*hashes)[RECORD_HASH_LEN] =
		mem_alloc((job->part_count + 1) * RECORD_HASH_LEN);
	for (size_t i = 0; i < job->part_count; i++) {
		struct archive_import_part *part = &job->parts[i];
		memcpy(hashes[i], part->hash, RECORD_HASH_LEN);
		int have = catalog_part_find(a->cat, part->hash, NULL, error_r);
		if (have < 0)
			goto fail;
		if (have == 1)
			continue;
		if (store_append(s->store, part->rec, part->rec_len, &loc, error_r) < 0)
			goto fail;
		struct catalog_loc ploc = {s->id, loc.segment, loc.offset, loc.length};
		if (catalog_part_add(a->cat, part->hash, &ploc, part->raw_len, error_r) < 0)
			goto fail;
	}
	if (store_append(s->store, job->rec, job->rec_len, &loc, error_r) < 0)
		goto fail;
	struct catalog_loc cloc = {s->id, loc.segment, loc.offset, loc.length};
	struct record_meta meta = {.raw_size = job->len,
				   .internal_date = job->internal_date,
				   .user = user,
				   .folder = job->folder};
	memcpy(meta.hash, job->hash, RECORD_HASH_LEN);
	if (archive_catalog_add(a, &meta, job->info, job->imap, job->imap_len, &cloc,
				(const unsigned char(*)[RECORD_HASH_LEN])hashes, job->part_count,
				&content_id, &message_id, error_r) < 0)
		goto fail;
	mem_free(hashes);
	archive_import_pend(imp, ARCHIVE_IMPORT_ARCHIVED, job, user, message_id);
	return 0;
fail:
	mem_free(hashes);
	return -1;
}

struct archive_import_batch {
	bool open;
	struct archive_store *store;
	uint32_t committed_segment;
	uint64_t committed_length;
	uint64_t started_msecs;
	size_t messages, bytes;
	size_t dict_count; /* the archive's dictionaries when the batch began */
};

static int archive_import_begin(struct archive_import *imp, struct archive_import_batch *b,
				const char **error_r)
{
	if (archive_current_store(imp->a, &b->store, error_r) < 0 ||
	    catalog_begin(imp->a->cat, error_r) < 0)
		return -1;
	store_tail(b->store->store, &b->committed_segment, &b->committed_length);
	b->open = true;
	b->dict_count = imp->a->dicts.count;
	b->started_msecs = archive_import_msecs();
	b->messages = b->bytes = 0;
	return 0;
}

static int archive_import_commit(struct archive_import *imp, struct archive_import_batch *b,
				 const char **error_r)
{
	struct archive *a = imp->a;
	uint32_t seg;
	uint64_t len;
	if (store_sync(b->store->store, error_r) < 0)
		return -1;
	store_tail(b->store->store, &seg, &len);
	if (catalog_store_set_tail(a->cat, b->store->id, seg, len, error_r) < 0 ||
	    catalog_commit(a->cat, error_r) < 0)
		return -1;
	b->open = false;
	/* A large batch's memory, freed by this thread into the workers'
	 * malloc arenas, goes back to the system: with glibc's allocator and
	 * the workers behind the writer those arenas otherwise kept 35-40 MB
	 * more at their peak (docs/benchmarks.md, scale). Not after small
	 * batches (the journal receiver's, many a second), where there is
	 * little to give back. */
	if (b->bytes >= ARCHIVE_IMPORT_TRIM_BYTES)
		alloc_trim();
	archive_import_flush_pending(imp, true);
	struct archive_import_event ev = {.type = ARCHIVE_IMPORT_PROGRESS};
	archive_import_emit(imp, &ev);
	return archive_store_roll_if_full(a, error_r);
}

/* Undo an unfinished batch: the catalog rolls back and the store is cut
 * back to the last committed tail, so nothing half-written stays. */
static void archive_import_abort(struct archive_import *imp, struct archive_import_batch *b)
{
	const char *error;
	catalog_rollback(imp->a->cat);
	/* dictionaries filed in the rolled back batch are gone from the
	 * catalog too (archive_import() frees them) */
	if (b->open && imp->a->dicts.count > b->dict_count)
		imp->a->dicts.count = b->dict_count;
	if (b->open)
		(void)store_truncate_to(b->store->store, b->committed_segment, b->committed_length,
					&error);
	b->open = false;
	archive_import_flush_pending(imp, false);
}

/* Whether a waiting reader may go on (with imp->lock): the pipeline has
 * drained to half of its bounds, or to nothing for a message larger
 * than that. */
static bool archive_import_refill(const struct archive_import *imp)
{
	return imp->jobs == 0 || (imp->jobs <= ARCHIVE_IMPORT_MAX_JOBS / 2 &&
				  imp->inflight + imp->next_cost <= ARCHIVE_IMPORT_INFLIGHT / 2);
}

static void *archive_import_writer(void *context)
{
	struct archive_import *imp = context;
	struct archive_import_batch batch = {0};
	const char *error = NULL;
	bool failed = false;
	pthread_mutex_lock(&imp->lock);
	for (;;) {
		struct archive_import_job *job = imp->head;
		if (job == NULL || !job->done) {
			if (job == NULL && imp->input_done)
				break;
			bool idle_too_long =
				batch.open && archive_import_msecs() - batch.started_msecs >=
						      ARCHIVE_IMPORT_BATCH_MSECS;
			if (!idle_too_long) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 100 * 1000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&imp->done_cond, &imp->lock, &ts);
				continue;
			}
			pthread_mutex_unlock(&imp->lock);
			if (!failed && archive_import_commit(imp, &batch, &error) < 0)
				failed = true;
			pthread_mutex_lock(&imp->lock);
			if (failed)
				break;
			continue;
		}
		imp->head = job->next;
		if (imp->head == NULL)
			imp->tail = NULL;
		imp->jobs--;
		imp->inflight -= job->cost;
		bool more_ready = imp->head != NULL && imp->head->done;
		bool input_done = imp->input_done;
		if (imp->reader_waiting && archive_import_refill(imp))
			pthread_cond_signal(&imp->space_cond);
		pthread_mutex_unlock(&imp->lock);

		if (job->skip_reason != NULL) {
			archive_import_report_skip(imp, job);
		} else if (job->new_dict != NULL) {
			if (!batch.open && archive_import_begin(imp, &batch, &error) < 0)
				failed = true;
			if (!failed && archive_dict_adopt(imp->a, batch.store, job->new_dict,
							  job->dict_raw_before, &error) < 0)
				failed = true;
		} else if (job->info == NULL) {
			/* Never parsed: the import is stopping (cancelled) and this
			 * message was never reported; a later import brings it in. */
		} else {
			if (!batch.open && archive_import_begin(imp, &batch, &error) < 0)
				failed = true;
			for (size_t i = 0; i < job->owner_count && !failed; i++) {
				if (archive_import_write(imp, batch.store, job, job->owners[i],
							 &error) < 0)
					failed = true;
			}
			imp->total_messages++;
			imp->total_bytes += job->len;
			batch.messages++;
			batch.bytes += job->len;
		}
		archive_import_job_free(job);
		bool full =
			batch.messages >= ARCHIVE_IMPORT_BATCH_MESSAGES ||
			batch.bytes >= ARCHIVE_IMPORT_BATCH_BYTES ||
			archive_import_msecs() - batch.started_msecs >= ARCHIVE_IMPORT_BATCH_MSECS;
		bool drained = !more_ready && input_done;
		if (!failed && batch.open && (full || drained) &&
		    archive_import_commit(imp, &batch, &error) < 0)
			failed = true;
		pthread_mutex_lock(&imp->lock);
		if (failed)
			break;
	}
	if (failed) {
		imp->error = mem_strdup(error != NULL ? error : "import failed");
		imp->stop = true;
		pthread_cond_broadcast(&imp->space_cond);
		pthread_cond_broadcast(&imp->work_cond);
	}
	pthread_mutex_unlock(&imp->lock);
	if (failed) {
		archive_import_abort(imp, &batch);
	} else if (batch.open && archive_import_commit(imp, &batch, &error) < 0) {
		archive_import_abort(imp, &batch);
		pthread_mutex_lock(&imp->lock);
		imp->error = mem_strdup(error);
		imp->stop = true;
		pthread_mutex_unlock(&imp->lock);
	}
	return NULL;
}

static void archive_import_enqueue(struct archive_import *imp, struct archive_import_job *job)
{
	pthread_mutex_lock(&imp->lock);
	job->next = NULL;
	if (imp->tail != NULL)
		imp->tail->next = job;
	else
		imp->head = job;
	imp->tail = job;
	if (imp->next_to_take == NULL)
		imp->next_to_take = job;
	imp->jobs++;
	imp->inflight += job->cost;
	pthread_cond_signal(&imp->work_cond);
	pthread_mutex_unlock(&imp->lock);
}

static bool archive_import_stopped(struct archive_import *imp)
{
	pthread_mutex_lock(&imp->lock);
	/* A caller's cancel stops the reading; what was committed stays. */
	if (imp->set->cancel != NULL && atomic_load(imp->set->cancel))
		imp->stop = true;
	bool stop = imp->stop;
	pthread_mutex_unlock(&imp->lock);
	return stop;
}

/* Waits for room in the pipeline (memory stays bounded), then queues job.
 * A full pipeline is refilled once it has drained to half
 * (archive_import_refill()), not a message at a time: waking the reader
 * for every message the writer took cost more CPU than the reading. */
static void archive_import_queue(struct archive_import *imp, struct archive_import_job *job)
{
	pthread_mutex_lock(&imp->lock);
	if (imp->jobs > 0 && (imp->jobs >= ARCHIVE_IMPORT_MAX_JOBS ||
			      imp->inflight + job->cost > ARCHIVE_IMPORT_INFLIGHT)) {
		imp->next_cost = job->cost;
		imp->reader_waiting = true;
		while (!imp->stop && !archive_import_refill(imp))
			pthread_cond_wait(&imp->space_cond, &imp->lock);
		imp->reader_waiting = false;
	}
	bool stop = imp->stop;
	pthread_mutex_unlock(&imp->lock);
	if (stop) {
		archive_import_job_free(job);
		return;
	}
	archive_import_enqueue(imp, job);
}

static void archive_import_sample(struct archive_import *imp, const unsigned char *data, size_t len)
{
	if (len > ARCHIVE_IMPORT_SAMPLE_MAX)
		len = ARCHIVE_IMPORT_SAMPLE_MAX;
	while (imp->ring_count > 0 && (imp->ring_count == ARCHIVE_IMPORT_RING_MAX ||
				       imp->ring_bytes + len > ARCHIVE_IMPORT_RING_BYTES)) {
		size_t oldest = (imp->ring_next + ARCHIVE_IMPORT_RING_MAX - imp->ring_count) %
				ARCHIVE_IMPORT_RING_MAX;
		imp->ring_bytes -= imp->ring[oldest].len;
		mem_free(imp->ring[oldest].data);
		imp->ring[oldest].data = NULL;
		imp->ring_count--;
	}
	struct archive_import_sample *sample = &imp->ring[imp->ring_next];
	sample->data = mem_alloc(len + 1);
	memcpy(sample->data, data, len);
	sample->len = len;
	imp->ring_next = (imp->ring_next + 1) % ARCHIVE_IMPORT_RING_MAX;
	imp->ring_count++;
	imp->ring_bytes += len;
}

static void archive_import_ring_free(struct archive_import *imp)
{
	for (size_t i = 0; i < ARCHIVE_IMPORT_RING_MAX; i++)
		mem_free(imp->ring[i].data);
}

/* A dictionary from the samples in the ring; -1 if zstd could not make one
 * (never fatal: the import goes on with the dictionary it has). */
static int archive_import_train(struct archive_import *imp, void **dict_r, size_t *len_r)
{
	if (imp->ring_count < ARCHIVE_IMPORT_DICT_SAMPLES)
		return -1;
	size_t *sizes = mem_alloc(imp->ring_count * sizeof(size_t));
	unsigned char *samples = mem_alloc(imp->ring_bytes + 1);
	size_t pos = 0, k = 0;
	for (size_t i = 0; i < ARCHIVE_IMPORT_RING_MAX; i++) {
		if (imp->ring[i].data == NULL)
			continue;
		memcpy(samples + pos, imp->ring[i].data, imp->ring[i].len);
		pos += imp->ring[i].len;
		sizes[k++] = imp->ring[i].len;
	}
	const char *error;
	int ret = compress_train(samples, sizes, (unsigned int)k, COMPRESS_DICT_MAX, dict_r, len_r,
				 &error);
	mem_free(samples);
	mem_free(sizes);
	return ret;
}

/* A new dictionary once this much raw mail came in under the latest one:
 * ARCHIVE_IMPORT_DICT_WINDOW, or a quarter of the archive if more, so a young
 * archive gets fresh dictionaries and a big one only a few dozen in all. */
static uint64_t archive_import_dict_window(const struct archive_import *imp)
{
	uint64_t min =
		imp->set->dict_window != 0 ? imp->set->dict_window : ARCHIVE_IMPORT_DICT_WINDOW;
	uint64_t quarter = imp->raw_total / 4;
	return quarter > min ? quarter : min;
}

/* Enough mail came in under the current dictionary: train a new one from
 * the latest messages; the messages read from now on are compressed with
 * it, and the writer files it before the first of them. */
static void archive_import_maybe_retrain(struct archive_import *imp)
{
	if (imp->training || !imp->started || imp->dict == NULL ||
	    imp->raw_since_dict < archive_import_dict_window(imp) ||
	    imp->made_count == ARCHIVE_IMPORT_MAX_NEW_DICTS)
		return;
	/* counted afresh even if training fails, so it is not retried at once */
	imp->raw_since_dict = 0;
	void *data;
	size_t len;
	if (archive_import_train(imp, &data, &len) < 0)
		return;
	struct compress_dict *dict = compress_dict_create(imp->next_dict_id++, data, len);
	mem_free(data);
	imp->made[imp->made_count++] = dict;
	struct archive_import_job *job = mem_new(struct archive_import_job);
	job->source = mem_strdup("(dictionary)");
	job->cost = 4096;
	job->new_dict = dict;
	job->dict_raw_before = imp->raw_total;
	archive_import_queue(imp, job);
	imp->dict = dict;
}

/* Producer side: hand one message (or a skip) to the pipeline, waiting for
 * room so memory stays bounded. Takes ownership of data. */
static void archive_import_submit_kind(struct archive_import *imp,
				       const struct archive_source_message *msg,
				       unsigned char *data, size_t len, const char *skip_reason,
				       enum archive_import_skip skip_kind)
{
	if (skip_reason == NULL && len > 0) {
		archive_import_sample(imp, data, len);
		imp->raw_total += len;
		imp->raw_since_dict += len;
		archive_import_maybe_retrain(imp);
	}
	struct archive_import_job *job = mem_new(struct archive_import_job);
	job->source = mem_strdup(msg->label != NULL ? msg->label : "");
	job->folder = mem_strdup(msg->folder != NULL ? msg->folder : imp->folder);
	if (msg->owner_count > 0) {
		job->owners = mem_alloc(msg->owner_count * sizeof(char *));
		for (size_t i = 0; i < msg->owner_count; i++)
			job->owners[i] = mem_strdup(msg->owners[i]);
		job->owner_count = msg->owner_count;
	} else {
		job->owners = mem_alloc(sizeof(char *));
		job->owners[0] = mem_strdup(imp->user);
		job->owner_count = 1;
	}
	job->key = msg->key;
	job->internal_date = msg->received != 0 ? msg->received : archive_import_now();
	job->data = data;
	job->len = len;
	job->cost = len + 4096;
	job->skip_reason = skip_reason != NULL ? mem_strdup(skip_reason) : NULL;
	job->skip_kind = skip_kind;
	job->dict = imp->dict;
	if (imp->training) {
		if (imp->held_tail != NULL)
			imp->held_tail->next = job;
		else
			imp->held_head = job;
		imp->held_tail = job;
		imp->held_count++;
		imp->held_bytes += len;
		return;
	}
	archive_import_queue(imp, job);
}

static void archive_import_skip(struct archive_import *imp,
				const struct archive_source_message *msg,
				enum archive_import_skip kind, const char *reason)
{
	archive_import_submit_kind(imp, msg, NULL, 0, reason, kind);
}

static bool archive_import_training_full(const struct archive_import *imp)
{
	return imp->training && (imp->held_count >= 2 * ARCHIVE_IMPORT_DICT_SAMPLES ||
				 imp->held_bytes >= ARCHIVE_IMPORT_DICT_BYTES);
}

static void archive_import_release_held(struct archive_import *imp);

/* The archive's first dictionary, from the messages held back for it. */
static void archive_import_maybe_train(struct archive_import *imp, bool force)
{
	if (!imp->training || (!force && !archive_import_training_full(imp)))
		return;
	void *dict;
	size_t dict_len;
	const char *error;
	if (archive_import_train(imp, &dict, &dict_len) == 0) {
		if (archive_dict_add(imp->a, dict, dict_len, imp->raw_total - imp->held_bytes,
				     &error) == 0) {
			imp->dict = archive_latest_dict(imp->a);
			/* it was trained on the held messages: fresh for them */
			imp->raw_since_dict = 0;
		}
		mem_free(dict);
	}
	archive_import_release_held(imp);
}

static void *archive_import_worker(void *context);
static void *archive_import_writer(void *context);

static void archive_import_start(struct archive_import *imp)
{
	if (imp->started)
		return;
	imp->started = true;
	/* from here on only the writer touches the archive's dictionaries */
	imp->next_dict_id = (uint32_t)imp->a->dicts.count + 1;
	for (unsigned int w = 0; w < imp->worker_count; w++) {
		if (pthread_create(&imp->workers[w], NULL, archive_import_worker, imp) != 0)
			abort();
	}
	if (pthread_create(&imp->writer, NULL, archive_import_writer, imp) != 0)
		abort();
}

static void archive_import_release_held(struct archive_import *imp)
{
	imp->training = false;
	archive_import_start(imp);
	struct archive_import_job *j = imp->held_head;
	imp->held_head = imp->held_tail = NULL;
	while (j != NULL) {
		struct archive_import_job *next = j->next;
		j->dict = imp->dict;
		archive_import_enqueue(imp, j);
		j = next;
	}
}

static bool archive_import_blank(const unsigned char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n')
			return false;
	}
	return true;
}

/* Whether data starts with a header field: blank lines and white space
 * (some tools write them first), a field name, white space (RFC 5322's
 * obsolete syntax allows it) and a colon. */
static bool archive_import_field_at(const unsigned char *data, size_t len)
{
	size_t i = 0;
	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
		i++;
	size_t name = i;
	while (i < len && data[i] > ' ' && data[i] < 127 && data[i] != ':')
		i++;
	if (i == name)
		return false;
	while (i < len && (data[i] == ' ' || data[i] == '\t'))
		i++;
	return i < len && data[i] == ':';
}

/* Why these bytes are not a message (with its skip kind), or NULL. A message
 * starts with a header field ("Name:"), and its header block is text: a few
 * NULs or control bytes in a field are a defect of a message, many are a
 * binary file. */
static const char *archive_import_not_mail(const unsigned char *data, size_t len,
					   enum archive_import_skip *kind_r)
{
	*kind_r = ARCHIVE_IMPORT_SKIP_NOT_A_MESSAGE;
	if (len >= 4 && memcmp(data, "!BDN", 4) == 0) {
		*kind_r = ARCHIVE_IMPORT_SKIP_UNSUPPORTED;
		return "a PST file: import it as a file (coffer archive import FILE.pst)";
	}
	if (len >= 8 && memcmp(data, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8) == 0) {
		*kind_r = ARCHIVE_IMPORT_SKIP_UNSUPPORTED;
		return "an OLE file (Outlook .msg): not supported yet";
	}
	if (archive_import_blank(data, len)) {
		*kind_r = ARCHIVE_IMPORT_SKIP_EMPTY;
		return "empty message";
	}
	size_t look = len < ARCHIVE_IMPORT_SNIFF ? len : ARCHIVE_IMPORT_SNIFF;
	if (!archive_import_field_at(data, look))
		return "not a message: it does not start with a header field";
	size_t control = 0, header = 0;
	for (; header < look; header++) {
		unsigned char c = data[header];
		if (c == '\n' && header + 1 < look &&
		    (data[header + 1] == '\n' ||
		     (data[header + 1] == '\r' && header + 2 < look && data[header + 2] == '\n')))
			break;
		control += (c < ' ' && c != '\t' && c != '\r' && c != '\n') || c == 127;
	}
	if (control > 8 && control * 100 > header)
		return "not a message: binary data in the header block";
	return NULL;
}

/* Hands over a message read whole, or skips it with the reason. */
static void archive_import_message(struct archive_import *imp,
				   const struct archive_source_message *msg, unsigned char *data,
				   size_t len)
{
	enum archive_import_skip kind;
	const char *why = archive_import_not_mail(data, len, &kind);
	if (why != NULL) {
		mem_free(data);
		archive_import_skip(imp, msg, kind, why);
		return;
	}
	archive_import_submit_kind(imp, msg, data, len, NULL, 0);
}

static const char *archive_import_too_large(const struct archive_import *imp, uint64_t size)
{
	return tstr_printf("too large: %llu bytes, the limit is %llu (max_message_size)",
			   (unsigned long long)size, (unsigned long long)imp->max_message);
}

/* Reads the source's current message into one buffer: sized once when the
 * size is known, else grown up to the limit and refused past it. Returns
 * the buffer (one spare byte after *len_r), or NULL with why and kind. */
static unsigned char *archive_import_read(struct archive_import *imp,
					  const struct archive_source_funcs *funcs, void *context,
					  const struct archive_source_message *msg, size_t *len_r,
					  const char **why_r, enum archive_import_skip *kind_r)
{
	*kind_r = ARCHIVE_IMPORT_SKIP_TOO_LARGE;
	unsigned char *data = funcs->take != NULL ? funcs->take(context, len_r) : NULL;
	if (data != NULL) {
		if (*len_r <= imp->max_message)
			return data;
		mem_free(data);
		*why_r = archive_import_too_large(imp, *len_r);
		return NULL;
	}
	if (msg->size > imp->max_message) {
		*why_r = archive_import_too_large(imp, msg->size);
		return NULL;
	}
	/* unknown size: a first guess, never more than the limit plus the one
	 * byte that shows it passed */
	size_t cap = msg->size > 0 ? (size_t)msg->size : 64 * 1024, len = 0;
	if (msg->size == 0 && cap > imp->max_message)
		cap = (size_t)imp->max_message + 1;
	data = mem_alloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (msg->size > 0)
				break;
			if (cap > imp->max_message) {
				mem_free(data);
				*why_r = tstr_printf(
					"too large: more than %llu bytes (max_message_size)",
					(unsigned long long)imp->max_message);
				return NULL;
			}
			cap = cap * 2 > imp->max_message + 1 ? (size_t)imp->max_message + 1
							     : cap * 2;
			data = mem_realloc(data, cap + 1);
		}
		const char *error = "read failed";
		ssize_t n = funcs->read(context, data + len, cap - len, &error);
		if (n < 0) {
			mem_free(data);
			*kind_r = ARCHIVE_IMPORT_SKIP_UNREADABLE;
			*why_r = error;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (msg->size > 0 && len < msg->size) {
		mem_free(data);
		*kind_r = ARCHIVE_IMPORT_SKIP_UNREADABLE;
		*why_r = tstr_printf("the message ended after %zu of its %llu bytes", len,
				     (unsigned long long)msg->size);
		return NULL;
	}
	*len_r = len;
	return data;
}

/* The source ended: a source that lingers (archive-source.h) is asked
 * for more while what was read is still queued for the writer. True: read
 * on. */
static bool archive_import_linger(struct archive_import *imp,
				  const struct archive_source_funcs *funcs, void *context)
{
	for (;;) {
		pthread_mutex_lock(&imp->lock);
		bool queued = imp->started && imp->head != NULL;
		pthread_mutex_unlock(&imp->lock);
		bool final = !queued || archive_import_stopped(imp);
		if (funcs->linger(context, 100, final) > 0)
			return true;
		if (final)
			return false;
	}
}

/* Reads every message of the source into the pipeline, until its end, a
 * cancel, a failed write or the source's failure. */
static void archive_import_read_source(struct archive_import *imp,
				       const struct archive_source_funcs *funcs, void *context)
{
	while (!archive_import_stopped(imp)) {
		struct archive_source_message msg;
		const char *error = NULL;
		memset(&msg, 0, sizeof(msg));
		int ret = funcs->next(context, &msg, &error);
		if (ret == 0) {
			if (funcs->linger != NULL && archive_import_linger(imp, funcs, context))
				continue;
			break;
		}
		if (ret < 0) {
			struct archive_source_message failed = {.label = "(source)"};
			archive_import_skip(imp, &failed, ARCHIVE_IMPORT_SKIP_UNREADABLE,
					    error != NULL ? error : "the source failed");
			break;
		}
		if (msg.skip_reason != NULL) {
			archive_import_skip(imp, &msg, msg.skip_kind, msg.skip_reason);
		} else {
			size_t len = 0;
			const char *why = NULL;
			enum archive_import_skip kind;
			unsigned char *data =
				archive_import_read(imp, funcs, context, &msg, &len, &why, &kind);
			if (data != NULL && imp->set->route != NULL && !msg.owners_final &&
			    imp->set->route(imp->set->route_context, data, len, &msg.owners,
					    &msg.owner_count, &why) <= 0) {
				mem_free(data);
				data = NULL;
				kind = ARCHIVE_IMPORT_SKIP_NO_RECIPIENT;
			}
			if (data == NULL)
				archive_import_skip(imp, &msg, kind, why);
			else
				archive_import_message(imp, &msg, data, len);
		}
		archive_import_maybe_train(imp, false);
	}
}

int archive_import(struct archive *a, const struct archive_import_settings *set,
		   const char *const *paths, size_t path_count,
		   struct archive_import_result *result_r, const char **error_r)
{
	struct archive_source_files *files =
		archive_source_files_create(paths, path_count, set->folder, set->max_message_size);
	int ret = archive_source_import(a, set, &archive_source_files_funcs, files, result_r,
					error_r);
	archive_source_files_destroy(&files);
	return ret;
}

int archive_source_import(struct archive *a, const struct archive_import_settings *set,
			  const struct archive_source_funcs *funcs, void *context,
			  struct archive_import_result *result_r, const char **error_r)
{
	if (!a->write) {
		*error_r = "the archive was opened read-only";
		return -1;
	}
	struct archive_import imp = {.a = a, .set = set};
	imp.user = set->user != NULL ? set->user : "local";
	imp.max_message =
		set->max_message_size != 0 ? set->max_message_size : ARCHIVE_IMPORT_MAX_MESSAGE;
	if (imp.max_message > ARCHIVE_IMPORT_MAX_MESSAGE_LIMIT) {
		*error_r = tstr_printf("max_message_size %llu: at most %llu",
				       (unsigned long long)imp.max_message,
				       ARCHIVE_IMPORT_MAX_MESSAGE_LIMIT);
		return -1;
	}
	imp.folder = set->folder != NULL ? set->folder : "INBOX";
	imp.dict = archive_latest_dict(a);
	imp.training = imp.dict == NULL;
	uint64_t raw_before;
	if (catalog_dict_usage(a->cat, &raw_before, &imp.raw_since_dict, error_r) < 0)
		return -1;
	imp.raw_total = raw_before + imp.raw_since_dict;
	pthread_mutex_init(&imp.lock, NULL);
	pthread_cond_init(&imp.work_cond, NULL);
	pthread_cond_init(&imp.done_cond, NULL);
	pthread_cond_init(&imp.space_cond, NULL);
	/* the first store exists before the threads start */
	struct archive_store *s;
	if (archive_current_store(a, &s, error_r) < 0)
		return -1;

	unsigned int workers = set->workers;
	if (workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		workers = n > 0 && n < 64 ? (unsigned int)n : 2;
	}
	imp.worker_count = workers;
	imp.workers = mem_alloc(workers * sizeof(pthread_t));
	if (!imp.training)
		archive_import_start(&imp);
	archive_import_read_source(&imp, funcs, context);
	/* fewer messages than a dictionary needs: train if enough, go on */
	if (imp.training)
		archive_import_maybe_train(&imp, true);
	archive_import_start(&imp);
	pthread_mutex_lock(&imp.lock);
	imp.input_done = true;
	pthread_cond_broadcast(&imp.work_cond);
	pthread_cond_broadcast(&imp.done_cond);
	pthread_mutex_unlock(&imp.lock);
	for (unsigned int w = 0; w < workers; w++)
		pthread_join(imp.workers[w], NULL);
	pthread_join(imp.writer, NULL);
	mem_free(imp.workers);
	/* jobs left behind after a failure */
	while (imp.head != NULL) {
		struct archive_import_job *next = imp.head->next;
		archive_import_job_free(imp.head);
		imp.head = next;
	}
	array_free(&imp.pending);
	archive_import_ring_free(&imp);
	for (size_t i = 0; i < imp.made_count; i++) {
		bool adopted = false;
		for (size_t k = 0; k < a->dicts.count && !adopted; k++)
			adopted = a->dicts.items[k] == imp.made[i];
		if (!adopted)
			compress_dict_destroy(&imp.made[i]);
	}
	pthread_mutex_destroy(&imp.lock);
	pthread_cond_destroy(&imp.work_cond);
	pthread_cond_destroy(&imp.done_cond);
	pthread_cond_destroy(&imp.space_cond);
	imp.result.bytes = imp.total_bytes;
	*result_r = imp.result;
	if (imp.error != NULL) {
		*error_r = tstr_dup(imp.error);
		mem_free(imp.error);
		return -1;
	}
	return 0;
}
