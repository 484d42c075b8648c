#include "instance-journal.h"
#include "instance-archive.h"
#include "instance-calls.h"
#include "instance-jobs.h"
#include "instance-users.h"
#include "instance.h"
#include "archive-import.h"
#include "array.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "tstr.h"
#include "worker-pool.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int instance_journal_resolve(struct instance_call *c)
{
	const char *address = json_get_string(c->args, "address");
	const char *catch_all = json_get_string(c->args, "catchAllUser");
	if (address == NULL || address[0] == '\0') {
		c->code = "bad-request";
		c->error = "address: missing";
		return -1;
	}
	/* the journal settings map this address to a user */
	const char *user = json_get_string(c->args, "userName");
	if (user == NULL)
		user = instance_users_find_by_address(c->inst->users, address);
	if (user == NULL && catch_all != NULL)
		user = catch_all;
	const char *archive_name =
		user == NULL ? NULL : instance_users_archive_name(c->inst->users, user);
	if (archive_name == NULL) {
		c->code = "no-such-user";
		c->error = user == NULL ? tstr_printf("no user has the address %s", address)
					: tstr_printf("the catch-all user %s does not exist", user);
		return -1;
	}
	c->result = json_new_object();
	json_set_string(c->result, "userName", user);
	json_set_string(c->result, "archiveName", archive_name);
	return 0;
}

/* A spool file's name as the Instance Host makes them: m-HEX.eml. */
static bool instance_journal_name_ok(const char *name)
{
	size_t len = name == NULL ? 0 : strlen(name);
	if (len < 7 || len > 100 || strncmp(name, "m-", 2) != 0 ||
	    strcmp(name + len - 4, ".eml") != 0)
		return false;
	for (size_t i = 2; i < len - 4; i++) {
		if (strchr("0123456789abcdef", name[i]) == NULL)
			return false;
	}
	return true;
}

/* COFFER_TEST_JOURNAL_DELAY_MS (tests only, see instance-journal.h): the
 * answer waits after the commit, so a test can kill the process between
 * the commit and the Instance Host's 250. */
static void instance_journal_test_delay(void)
{
	const char *ms = getenv("COFFER_TEST_JOURNAL_DELAY_MS");
	if (ms != NULL && atoi(ms) > 0)
		usleep((useconds_t)atoi(ms) * 1000);
}

struct instance_journal_pending {
	struct instance *inst;
	struct rpc_conn *conn;
	uint32_t id;
	char *path;
	size_t owners;
};

static struct json *instance_journal_result(size_t owners, unsigned int archived,
					    unsigned int duplicates)
{
	struct json *r = json_new_object();
	json_set_int(r, "owners", (long long)owners);
	json_set_int(r, "archived", archived);
	json_set_int(r, "duplicates", duplicates);
	return r;
}

/* Committed: the spool file has served (a leftover would only be filed
 * again as a duplicate). */
static void instance_journal_committed(struct instance *inst, const char *path, size_t owners,
				       unsigned int archived, unsigned int duplicates)
{
	(void)unlink(path);
	log_info(tstr_printf("instance=%s", inst->id),
		 "journal message archived for %zu user(s): %u new, %u already held", owners,
		 archived, duplicates);
	instance_journal_test_delay();
}

/* A message filed through a running import (instance-archive.h). */
static void instance_journal_filed(int ret, unsigned int archived, unsigned int duplicates,
				   const char *code, const char *error, void *ctx)
{
	struct instance_journal_pending *p = ctx;
	if (ret == 0) {
		instance_journal_committed(p->inst, p->path, p->owners, archived, duplicates);
		rpc_conn_reply(p->conn, p->id,
			       instance_journal_result(p->owners, archived, duplicates));
	} else {
		rpc_conn_reply_error(p->conn, p->id, code, error);
	}
	mem_free(p->path);
	mem_free(p);
}

/* Deliveries that arrive together are filed together: one import, one
 * durable commit for all of them (a group commit), instead of one fsync'd
 * commit each while the others wait. Each call joins the batch; the batch
 * is filed once the loop has handled every call that came in with it (a
 * zero-timeout event), on the committer's thread with the archive's
 * writable handle lent to it, so the loop never waits for the fsync. One
 * batch is committed at a time; what arrives meanwhile forms the next. */
#define INSTANCE_JOURNAL_BATCH_MAX 500

struct instance_journal_waiting {
	struct rpc_conn *conn;
	uint32_t id;
	char *path;
	char **owners;
	size_t owner_count;
	struct timespec since; /* CLOCK_MONOTONIC: when it came */
};

/* While a job holds the archive's writer, deliveries wait for it (the
 * sender waits for its answer, as for any commit) and are checked again
 * this often; one still waiting after INSTANCE_JOURNAL_HOLD_SECS is
 * answered "busy", well before the Instance Host gives up on it (120 s:
 * HOST_JOURNAL_DELIVER_SECS), and the sender retries later. */
#define INSTANCE_JOURNAL_HOLD_POLL_MS 250
#define INSTANCE_JOURNAL_HOLD_SECS 90

/* A batch on its way through the committer's thread. */
struct instance_journal_commit {
	struct instance_journal *journal;
	struct archive *archive;
	struct instance_journal_waiting *batch;
	struct instance_filing *items;
	size_t count;
	int ret;
	char error[256];
};

struct instance_journal {
	struct instance *inst;
	ARRAY(struct instance_journal_waiting) waiting;
	struct event *flush;
	unsigned int hold_secs;                 /* INSTANCE_JOURNAL_HOLD_SECS, or the test's */
	struct worker_pool *committer;          /* one thread, made at the first batch */
	unsigned int test_commit_delay_ms;      /* COFFER_TEST_JOURNAL_COMMIT_DELAY_MS */
	struct instance_journal_commit *commit; /* the batch being committed */
	/* the committer's thread is done with the archive */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool committing; /* under lock */
};

static void instance_journal_waiting_free(struct instance_journal_waiting *w)
{
	for (size_t i = 0; i < w->owner_count; i++)
		mem_free(w->owners[i]);
	mem_free(w->owners);
	mem_free(w->path);
}

static void instance_journal_schedule(struct instance_journal *j)
{
	if (j->commit != NULL || j->waiting.count == 0 || evtimer_pending(j->flush, NULL))
		return;
	struct timeval now = {0, 0};
	evtimer_add(j->flush, &now);
}

/* On the committer's thread: nothing but the batch and the lent handle. */
static void instance_journal_commit_work(void *ctx)
{
	struct instance_journal_commit *cm = ctx;
	struct instance_journal *j = cm->journal;
	const char *error = NULL;
	cm->ret = instance_archive_file_messages(cm->archive, cm->items, cm->count,
						 INSTANCE_JOURNAL_FOLDER,
						 ARCHIVE_IMPORT_MAX_MESSAGE_LIMIT, &error);
	if (cm->ret < 0)
		snprintf(cm->error, sizeof(cm->error), "%s", error != NULL ? error : "failed");
	if (j->test_commit_delay_ms > 0)
		usleep((useconds_t)j->test_commit_delay_ms * 1000);
	pthread_mutex_lock(&j->lock);
	j->committing = false;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

/* On the loop, when it needs the writable handle now (instance-archive.h). */
static void instance_journal_commit_wait(void *ctx)
{
	struct instance_journal *j = ctx;
	pthread_mutex_lock(&j->lock);
	while (j->committing)
		pthread_cond_wait(&j->cond, &j->lock);
	pthread_mutex_unlock(&j->lock);
}

/* Each delivery answered: after the commit, or with why it was not. */
static void instance_journal_answer(struct instance_journal *j,
				    struct instance_journal_waiting *batch,
				    struct instance_filing *items, size_t n, int ret,
				    const char *code, const char *error)
{
	struct instance *inst = j->inst;
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		struct instance_journal_waiting *w = &batch[i];
		if (ret < 0) {
			rpc_conn_reply_error(w->conn, w->id, code, error);
		} else if (items[i].ret < 0) {
			rpc_conn_reply_error(w->conn, w->id, "refused", items[i].error);
		} else {
			any = true;
			(void)unlink(w->path);
			log_info(
				tstr_printf("instance=%s", inst->id),
				"journal message archived for %zu user(s): %u new, %u already held",
				w->owner_count, items[i].archived, items[i].duplicates);
		}
	}
	if (any)
		instance_journal_test_delay();
	for (size_t i = 0; i < n; i++) {
		if (ret == 0 && items[i].ret == 0)
			rpc_conn_reply(batch[i].conn, batch[i].id,
				       instance_journal_result(batch[i].owner_count,
							       items[i].archived,
							       items[i].duplicates));
		instance_journal_waiting_free(&batch[i]);
	}
	mem_free(items);
	mem_free(batch);
}

/* On the loop: the handle back, then the answers, then the next batch. */
static void instance_journal_commit_done(void *ctx, bool ran)
{
	struct instance_journal_commit *cm = ctx;
	struct instance_journal *j = cm->journal;
	instance_journal_commit_wait(j);
	instance_archive_give_back(j->inst->archive);
	j->commit = NULL;
	if (ran)
		instance_journal_answer(j, cm->batch, cm->items, cm->count, cm->ret, "failed",
					cm->error);
	else
		instance_journal_answer(j, cm->batch, cm->items, cm->count, -1, "failed",
					"the instance is stopping");
	mem_free(cm);
	instance_journal_schedule(j);
}

/* A job holds the writer: the delivery goes through the job's own
 * pipeline if it takes messages (an import, a profile's run); true if it
 * did (answered when filed), false if the job takes none. */
static bool instance_journal_to_job(struct instance *inst, const struct instance_journal_waiting *w)
{
	struct instance_journal_pending *p = mem_new(struct instance_journal_pending);
	p->inst = inst;
	p->conn = w->conn;
	p->id = w->id;
	p->path = mem_strdup(w->path);
	p->owners = w->owner_count;
	if (instance_archive_file_message_queued(
		    inst->archive, inst->base, w->path, (const char *const *)w->owners,
		    w->owner_count, INSTANCE_JOURNAL_FOLDER, instance_journal_filed, p) == 1)
		return true;
	mem_free(p->path);
	mem_free(p);
	return false;
}

static long long instance_journal_waited_ms(const struct instance_journal_waiting *w)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - w->since.tv_sec) * 1000LL + (now.tv_nsec - w->since.tv_nsec) / 1000000;
}

/* While a job runs: each waiting delivery goes to the job if it takes
 * messages, is answered "busy" if it waited too long, or waits on. */
static void instance_journal_hold(struct instance_journal *j, const char *job)
{
	size_t kept = 0;
	for (size_t i = 0; i < j->waiting.count; i++) {
		struct instance_journal_waiting *w = &j->waiting.items[i];
		if (instance_journal_to_job(j->inst, w)) {
			instance_journal_waiting_free(w);
		} else if (instance_journal_waited_ms(w) >= (long long)j->hold_secs * 1000) {
			rpc_conn_reply_error(w->conn, w->id, "busy",
					     tstr_printf("a job (%s) held the archive's writer for "
							 "%u s",
							 job, j->hold_secs));
			instance_journal_waiting_free(w);
		} else {
			j->waiting.items[kept++] = *w;
		}
	}
	j->waiting.count = kept;
	struct timeval again = {0, INSTANCE_JOURNAL_HOLD_POLL_MS * 1000};
	if (kept > 0 && !evtimer_pending(j->flush, NULL))
		evtimer_add(j->flush, &again);
}

static void instance_journal_flush(evutil_socket_t fd, short what, void *context)
{
	(void)fd;
	(void)what;
	struct instance_journal *j = context;
	struct instance *inst = j->inst;
	size_t n = j->waiting.count;
	if (j->commit != NULL || n == 0)
		return;
	const char *job = instance_jobs_running(inst->jobs);
	if (job != NULL) {
		instance_journal_hold(j, job);
		return;
	}
	if (n > INSTANCE_JOURNAL_BATCH_MAX)
		n = INSTANCE_JOURNAL_BATCH_MAX;
	struct instance_journal_waiting *batch = mem_alloc(sizeof(*batch) * n);
	memcpy(batch, j->waiting.items, sizeof(*batch) * n);
	array_delete(&j->waiting, 0, n);
	struct instance_filing *items = mem_calloc(n, sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		items[i].path = batch[i].path;
		items[i].owners = (const char *const *)batch[i].owners;
		items[i].owner_count = batch[i].owner_count;
	}
	const char *code = NULL, *error = NULL;
	if (j->committer == NULL &&
	    worker_pool_create_foreground(inst->base, 1, 1, 1, &j->committer, &error) < 0) {
		instance_journal_answer(j, batch, items, n, -1, "failed", error);
		return;
	}
	struct archive *a = instance_archive_lend(inst->archive, instance_journal_commit_wait, j,
						  &code, &error);
	if (a == NULL) {
		instance_journal_answer(j, batch, items, n, -1, code, error);
		instance_journal_schedule(j);
		return;
	}
	struct instance_journal_commit *cm = mem_new(struct instance_journal_commit);
	cm->journal = j;
	cm->archive = a;
	cm->batch = batch;
	cm->items = items;
	cm->count = n;
	j->committing = true; /* the thread is not started yet: no lock needed */
	j->commit = cm;
	if (worker_pool_submit(j->committer, instance_journal_commit_work,
			       instance_journal_commit_done, cm) < 0) {
		/* cannot be: one batch at a time */
		j->committing = false;
		j->commit = NULL;
		instance_archive_give_back(inst->archive);
		instance_journal_answer(j, batch, items, n, -1, "failed",
					"the journal's committer is busy");
		mem_free(cm);
		instance_journal_schedule(j);
	}
}

struct instance_journal *instance_journal_create(struct instance *inst)
{
	struct instance_journal *j = mem_new(struct instance_journal);
	j->inst = inst;
	j->flush = evtimer_new(inst->base, instance_journal_flush, j);
	const char *ms = getenv("COFFER_TEST_JOURNAL_COMMIT_DELAY_MS");
	if (ms != NULL && atoi(ms) > 0)
		j->test_commit_delay_ms = (unsigned int)atoi(ms);
	const char *hold = getenv("COFFER_TEST_JOURNAL_HOLD_SECS");
	j->hold_secs = hold != NULL && atoi(hold) > 0 ? (unsigned int)atoi(hold)
						      : INSTANCE_JOURNAL_HOLD_SECS;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	return j;
}

void instance_journal_destroy(struct instance_journal **_j)
{
	struct instance_journal *j = *_j;
	if (j == NULL)
		return;
	*_j = NULL;
	/* the batch being committed is finished and answered */
	worker_pool_destroy(&j->committer);
	/* not yet filed: unanswered, the Instance Host's client retries */
	for (size_t i = 0; i < j->waiting.count; i++)
		instance_journal_waiting_free(&j->waiting.items[i]);
	array_free(&j->waiting);
	event_free(j->flush);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	mem_free(j);
}

int instance_journal_deliver(struct instance_call *c)
{
	const char *file = json_get_string(c->args, "file");
	const struct json *list = json_get(c->args, "owners");
	size_t n = json_count(list);
	if (!instance_journal_name_ok(file) || n == 0) {
		c->code = "bad-request";
		c->error = "file: a spool file name (m-HEX.eml) and owners: archive names";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (json_string_of(json_at(list, i)) == NULL) {
			c->code = "bad-request";
			c->error = "owners: expected strings";
			return -1;
		}
	}
	char *path = mem_strdup(
		tstr_printf("%s/%s/%s", c->inst->base_dir, INSTANCE_JOURNAL_SPOOL, file));
	struct instance_journal *j = c->inst->journal;
	struct instance_journal_waiting *w = array_push(&j->waiting);
	w->conn = c->conn;
	w->id = c->id;
	w->path = path;
	w->owners = mem_alloc(sizeof(char *) * n);
	for (size_t i = 0; i < n; i++)
		w->owners[i] = mem_strdup(json_string_of(json_at(list, i)));
	w->owner_count = n;
	clock_gettime(CLOCK_MONOTONIC, &w->since);
	/* filed at the next turn of the loop: with the others that came, or
	 * through a running job (instance_journal_hold()) */
	instance_journal_schedule(j);
	return INSTANCE_CALL_ANSWERED;
}
