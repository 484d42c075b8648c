#include "instance-jobs.h"
#include "instance-calls.h"
#include "instance.h"
#include "archive.h"
#include "array.h"
#include "auth-secret.h"
#include "crypto.h"
#include "file.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INSTANCE_JOBS_FILE "jobs.sealed"
#define INSTANCE_JOBS_MAX_FILE (64 * 1024 * 1024)
#define INSTANCE_JOBS_SEAL_CONTEXT "instance-jobs"
#define INSTANCE_JOBS_LOG_MAX (64 * 1024)
/* How soon the loop notices that a job's thread has ended. */
#define INSTANCE_JOBS_CHECK_MSECS 200

enum instance_job_state {
	JOB_RUNNING,
	JOB_SUCCEEDED,
	JOB_FAILED,
	JOB_CANCELLED,
	JOB_INTERRUPTED,
};
static const char *const instance_job_state_names[] = {"running", "succeeded", "failed",
						       "cancelled", "interrupted"};

struct instance_job {
	struct instance_jobs *jobs;
	char *id;
	char *kind_name;
	const struct instance_job_kind *kind; /* NULL for jobs of earlier processes */
	void *ctx;
	struct json *arguments; /* never changed once started: read without the lock */
	struct json *internal;
	pthread_t thread;
	bool thread_started;
	bool recover; /* found interrupted by this process */
	atomic_bool cancel;
	pthread_mutex_t lock;
	/* guarded by lock: */
	enum instance_job_state state;
	bool thread_done;
	int percent; /* -1: not known */
	char *status_text;
	struct json *result;
	char *error;
	struct str *log;
	time_t started, finished, updated;
};

struct instance_jobs {
	struct event_base *base;
	char *path;
	char *log_context;
	unsigned char key[CRYPTO_KEY_LEN];
	bool have_key;
	ARRAY(struct instance_job *) list; /* oldest first */
	long long next_id;
	struct instance_job *running;
	struct event *timer;
	time_t saved;
	/* COFFER_TEST_JOB_STEP_DELAY_MS: tests only (see instance-jobs.h) */
	unsigned int step_delay_ms;
	instance_jobs_ended_fn *ended;
	void *ended_ctx;
};

/* ---- one job ---- */

static struct instance_job *instance_job_new(struct instance_jobs *jobs, const char *id,
					     const char *kind)
{
	struct instance_job *job = mem_new(struct instance_job);
	job->jobs = jobs;
	job->id = mem_strdup(id);
	job->kind_name = mem_strdup(kind);
	job->percent = -1;
	job->log = str_create(0);
	job->result = json_new_object();
	job->arguments = json_new_object();
	pthread_mutex_init(&job->lock, NULL);
	return job;
}

static void instance_job_free(struct instance_job *job)
{
	json_unref(&job->arguments);
	json_unref(&job->internal);
	json_unref(&job->result);
	str_destroy(&job->log);
	mem_free(job->status_text);
	mem_free(job->error);
	mem_free(job->id);
	mem_free(job->kind_name);
	pthread_mutex_destroy(&job->lock);
	mem_free(job);
}

static struct json *instance_jobs_time(time_t t)
{
	struct tm tm;
	char buf[32];
	if (t == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_new_null();
	return json_new_string(buf);
}

static time_t instance_jobs_parse_time(const char *text)
{
	struct tm tm = {0};
	if (text == NULL || strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

/* What GetJob shows; `saved` adds what only the jobs file keeps. Locks. */
static struct json *instance_job_json(struct instance_job *job, bool saved)
{
	struct json *j = json_new_object();
	pthread_mutex_lock(&job->lock);
	json_set_string(j, "jobID", job->id);
	json_set_string(j, "kind", job->kind_name);
	json_set_string(j, "state", instance_job_state_names[job->state]);
	json_set(j, "percentProgress",
		 job->percent < 0 ? json_new_null() : json_new_int(job->percent));
	if (job->state == JOB_RUNNING && atomic_load(&job->cancel))
		/* a cancel request shows until the work has stopped */
		json_set_string(j, "statusText",
				tstr_printf("cancelling (finishing what is in flight): %s",
					    job->status_text != NULL ? job->status_text : ""));
	else
		json_set(j, "statusText", json_new_string(job->status_text));
	json_set(j, "startedAt", instance_jobs_time(job->started));
	json_set(j, "finishedAt", instance_jobs_time(job->finished));
	json_set(j, "arguments", json_clone(job->arguments));
	json_set(j, "result", json_clone(job->result));
	json_set(j, "error", json_new_string(job->error));
	json_set_string(j, "log", str_c(job->log));
	if (saved) {
		json_set(j, "updatedAt", instance_jobs_time(time(NULL)));
		if (job->internal != NULL)
			json_set(j, "internal", json_clone(job->internal));
	}
	pthread_mutex_unlock(&job->lock);
	return j;
}

static struct instance_job *instance_job_from_json(struct instance_jobs *jobs, const struct json *j)
{
	const char *id = json_get_string(j, "jobID"), *kind = json_get_string(j, "kind");
	const char *state = json_get_string(j, "state");
	if (id == NULL || kind == NULL || state == NULL)
		return NULL;
	struct instance_job *job = instance_job_new(jobs, id, kind);
	job->state = JOB_INTERRUPTED;
	for (size_t i = 0; i < sizeof(instance_job_state_names) / sizeof(*instance_job_state_names);
	     i++) {
		if (strcmp(state, instance_job_state_names[i]) == 0)
			job->state = (enum instance_job_state)i;
	}
	long long percent = -1;
	(void)json_get_int(j, "percentProgress", &percent);
	job->percent = (int)percent;
	const char *text = json_get_string(j, "statusText"), *error = json_get_string(j, "error");
	job->status_text = text == NULL ? NULL : mem_strdup(text);
	job->error = error == NULL ? NULL : mem_strdup(error);
	const char *log = json_get_string(j, "log");
	if (log != NULL)
		str_append(job->log, log);
	job->started = instance_jobs_parse_time(json_get_string(j, "startedAt"));
	job->finished = instance_jobs_parse_time(json_get_string(j, "finishedAt"));
	job->updated = instance_jobs_parse_time(json_get_string(j, "updatedAt"));
	if (json_kind(json_get(j, "arguments")) == JSON_KIND_OBJECT) {
		json_unref(&job->arguments);
		job->arguments = json_clone(json_get(j, "arguments"));
	}
	if (json_kind(json_get(j, "result")) == JSON_KIND_OBJECT) {
		json_unref(&job->result);
		job->result = json_clone(json_get(j, "result"));
	}
	if (json_get(j, "internal") != NULL)
		job->internal = json_clone(json_get(j, "internal"));
	if (job->state == JOB_RUNNING) {
		/* the process that ran it is gone: say so, keep what was saved */
		job->state = JOB_INTERRUPTED;
		job->recover = true;
		job->finished = job->updated;
		mem_free(job->error);
		job->error =
			mem_strdup("interrupted: the instance process ended while the job ran; "
				   "the result holds what was done until then");
	}
	return job;
}

/* ---- the jobs file ---- */

static int instance_jobs_save(struct instance_jobs *jobs, const char **error_r)
{
	if (!jobs->have_key) {
		*error_r = "the instance key could not be read";
		return -1;
	}
	struct json *root = json_new_object(), *list = json_new_array();
	json_set_int(root, "schemaVersion", 1);
	json_set_int(root, "nextID", jobs->next_id);
	for (size_t i = 0; i < jobs->list.count; i++)
		json_append(list, instance_job_json(jobs->list.items[i], true));
	json_set(root, "jobs", list);
	char *text = json_serialize(root, false);
	json_unref(&root);
	char *sealed = auth_secret_seal(jobs->key, text, INSTANCE_JOBS_SEAL_CONTEXT);
	crypto_wipe(text, strlen(text));
	mem_free(text);
	int ret = file_write_atomic(jobs->path, sealed, strlen(sealed), 0600, error_r);
	mem_free(sealed);
	jobs->saved = time(NULL);
	return ret;
}

static void instance_jobs_save_or_log(struct instance_jobs *jobs)
{
	const char *error;
	if (instance_jobs_save(jobs, &error) < 0)
		log_warning(jobs->log_context, "saving the job states failed: %s", error);
}

static int instance_jobs_load(struct instance_jobs *jobs, const char **error_r)
{
	char *sealed = NULL, *text = NULL;
	size_t len;
	struct json *root = NULL;
	int exists = file_exists(jobs->path, error_r);
	if (exists <= 0)
		return exists;
	int ret = file_read_all(jobs->path, INSTANCE_JOBS_MAX_FILE, &sealed, &len, error_r);
	if (ret == 0)
		ret = auth_secret_open(jobs->key, sealed, INSTANCE_JOBS_SEAL_CONTEXT, &text,
				       error_r);
	if (ret == 0)
		ret = json_parse(text, strlen(text), &root, error_r);
	if (ret == 0) {
		long long next = 1;
		(void)json_get_int(root, "nextID", &next);
		jobs->next_id = next;
		const struct json *list = json_get(root, "jobs");
		for (size_t i = 0; i < json_count(list); i++) {
			struct instance_job *job = instance_job_from_json(jobs, json_at(list, i));
			if (job == NULL)
				continue;
			array_append(&jobs->list, job);
		}
	}
	json_unref(&root);
	if (text != NULL) {
		crypto_wipe(text, strlen(text));
		mem_free(text);
	}
	mem_free(sealed);
	return ret;
}

/* Forget the oldest finished jobs beyond INSTANCE_JOBS_KEEP. */
static void instance_jobs_prune(struct instance_jobs *jobs)
{
	size_t drop = 0;
	while (jobs->list.count - drop > INSTANCE_JOBS_KEEP &&
	       jobs->list.items[drop] != jobs->running)
		instance_job_free(jobs->list.items[drop++]);
	array_delete(&jobs->list, 0, drop);
}

/* ---- create, destroy ---- */

struct instance_jobs *instance_jobs_create(struct event_base *base, const char *base_dir,
					   const char *key_file, const char *log_context)
{
	struct instance_jobs *jobs = mem_new(struct instance_jobs);
	jobs->base = base;
	jobs->path = mem_printf("%s/%s", base_dir, INSTANCE_JOBS_FILE);
	jobs->log_context = mem_strdup(log_context);
	jobs->next_id = 1;
	const char *delay = getenv("COFFER_TEST_JOB_STEP_DELAY_MS");
	if (delay != NULL && atoi(delay) > 0) {
		jobs->step_delay_ms = (unsigned int)atoi(delay);
		log_warning(
			log_context,
			"COFFER_TEST_JOB_STEP_DELAY_MS=%u: jobs are slowed down (for tests only)",
			jobs->step_delay_ms);
	}
	unsigned char master[CRYPTO_KEY_LEN];
	const char *error;
	if (archive_key_file_read(key_file, master, &error) < 0) {
		log_warning(log_context, "jobs cannot be saved: %s", error);
	} else {
		crypto_kdf_derive(master, "jobs____", 1, jobs->key);
		crypto_wipe(master, sizeof(master));
		jobs->have_key = true;
		if (instance_jobs_load(jobs, &error) < 0)
			log_warning(log_context, "%s: %s (earlier jobs are not shown)", jobs->path,
				    error);
	}
	return jobs;
}

static void instance_jobs_finish(struct instance_jobs *jobs);

void instance_jobs_stop(struct instance_jobs *jobs)
{
	struct instance_job *job = jobs->running;
	if (job == NULL)
		return;
	/* let the work commit what it has and stop */
	atomic_store(&job->cancel, true);
	pthread_join(job->thread, NULL);
	job->thread_started = false;
	pthread_mutex_lock(&job->lock);
	job->state = JOB_INTERRUPTED;
	mem_free(job->error);
	job->error = mem_strdup("interrupted: the instance stopped while the job ran");
	pthread_mutex_unlock(&job->lock);
	instance_jobs_finish(jobs);
}

void instance_jobs_destroy(struct instance_jobs **_jobs)
{
	struct instance_jobs *jobs = *_jobs;
	if (jobs == NULL)
		return;
	*_jobs = NULL;
	instance_jobs_stop(jobs);
	if (jobs->timer != NULL)
		event_free(jobs->timer);
	for (size_t i = 0; i < jobs->list.count; i++)
		instance_job_free(jobs->list.items[i]);
	array_free(&jobs->list);
	crypto_wipe(jobs->key, sizeof(jobs->key));
	mem_free(jobs->path);
	mem_free(jobs->log_context);
	mem_free(jobs);
}

/* ---- running ---- */

static void *instance_job_thread_main(void *ctx)
{
	struct instance_job *job = ctx;
	const char *error = NULL;
	int ret = job->kind->run(job, job->ctx, &error);
	pthread_mutex_lock(&job->lock);
	if (ret < 0)
		job->error = mem_strdup(error != NULL ? error : "failed");
	job->state = ret == 0 && !atomic_load(&job->cancel)  ? JOB_SUCCEEDED
		     : ret == 0 || atomic_load(&job->cancel) ? JOB_CANCELLED
							     : JOB_FAILED;
	if (job->state == JOB_SUCCEEDED && job->percent >= 0)
		job->percent = 100;
	/* with the state: GetJob never shows an end without its time */
	job->finished = time(NULL);
	job->thread_done = true;
	pthread_mutex_unlock(&job->lock);
	return NULL;
}

/* On the loop once the thread ended (or at shutdown): record, save, release. */
static void instance_jobs_finish(struct instance_jobs *jobs)
{
	struct instance_job *job = jobs->running;
	pthread_mutex_lock(&job->lock);
	if (job->finished == 0) /* stopped at shutdown */
		job->finished = time(NULL);
	const char *state = instance_job_state_names[job->state];
	pthread_mutex_unlock(&job->lock);
	jobs->running = NULL;
	if (jobs->timer != NULL)
		event_del(jobs->timer);
	log_info(jobs->log_context, "job %s (%s) %s", job->id, job->kind_name, state);
	if (job->kind->done != NULL)
		job->kind->done(job->ctx);
	if (jobs->ended != NULL) {
		struct json *shown = instance_job_json(job, false);
		jobs->ended(shown, jobs->ended_ctx);
		json_unref(&shown);
	}
	instance_jobs_prune(jobs);
	instance_jobs_save_or_log(jobs);
}

/* Record the running job's end if its thread has ended; true if it had. */
static bool instance_jobs_reap(struct instance_jobs *jobs)
{
	struct instance_job *job = jobs->running;
	if (job == NULL)
		return false;
	pthread_mutex_lock(&job->lock);
	bool done = job->thread_done;
	pthread_mutex_unlock(&job->lock);
	if (!done)
		return false;
	pthread_join(job->thread, NULL);
	job->thread_started = false;
	instance_jobs_finish(jobs);
	return true;
}

static void instance_jobs_check(evutil_socket_t fd, short events, void *ctx)
{
	struct instance_jobs *jobs = ctx;
	if (jobs->running != NULL && !instance_jobs_reap(jobs) &&
	    time(NULL) - jobs->saved >= INSTANCE_JOBS_SAVE_SECS)
		instance_jobs_save_or_log(jobs);
}

int instance_jobs_start(struct instance_jobs *jobs, const struct instance_job_kind *kind,
			struct json *arguments, struct json *internal, void *ctx, const char **id_r,
			const char **error_r)
{
	(void)instance_jobs_reap(jobs);
	if (jobs->running != NULL) {
		*error_r = tstr_printf("busy: job %s (%s) is running; one job runs at a time",
				       jobs->running->id, jobs->running->kind_name);
		json_unref(&arguments);
		json_unref(&internal);
		return -1;
	}
	char *id = mem_printf("job-%lld", jobs->next_id++);
	struct instance_job *job = instance_job_new(jobs, id, kind->name);
	mem_free(id);
	json_unref(&job->arguments);
	job->arguments = arguments;
	job->internal = internal;
	job->kind = kind;
	job->ctx = ctx;
	job->state = JOB_RUNNING;
	job->started = time(NULL);
	array_append(&jobs->list, job);
	jobs->running = job;
	/* saved before any work: a crash from here on finds the job */
	if (instance_jobs_save(jobs, error_r) < 0) {
		jobs->running = NULL;
		array_delete(&jobs->list, jobs->list.count - 1, 1);
		instance_job_free(job);
		return -1;
	}
	if (pthread_create(&job->thread, NULL, instance_job_thread_main, job) != 0) {
		/* shown as failed; the caller still owns ctx */
		job->state = JOB_FAILED;
		job->error = mem_strdup("cannot start a thread for the job");
		job->finished = time(NULL);
		jobs->running = NULL;
		instance_jobs_save_or_log(jobs);
		*error_r = "cannot start a thread for the job";
		return -1;
	}
	job->thread_started = true;
	if (jobs->timer == NULL)
		jobs->timer = event_new(jobs->base, -1, EV_PERSIST, instance_jobs_check, jobs);
	struct timeval tv = {0, INSTANCE_JOBS_CHECK_MSECS * 1000};
	event_add(jobs->timer, &tv);
	log_info(jobs->log_context, "job %s (%s) started", job->id, job->kind_name);
	*id_r = job->id;
	return 0;
}

void instance_jobs_on_end(struct instance_jobs *jobs, instance_jobs_ended_fn *fn, void *ctx)
{
	jobs->ended = fn;
	jobs->ended_ctx = ctx;
}

const char *instance_jobs_running(struct instance_jobs *jobs)
{
	/* GetJob shows a job as ended once its thread is done; until the
	 * timer came round it still counted as running here, and a caller
	 * that had just seen it end was told to wait for it */
	(void)instance_jobs_reap(jobs);
	return jobs->running == NULL ? NULL : jobs->running->kind_name;
}

void instance_jobs_recover(struct instance_jobs *jobs, const char *kind,
			   instance_job_recover_fn *fix, void *ctx)
{
	bool changed = false;
	for (size_t i = 0; i < jobs->list.count; i++) {
		struct instance_job *job = jobs->list.items[i];
		if (!job->recover || strcmp(job->kind_name, kind) != 0)
			continue;
		job->recover = false;
		fix(job->arguments, job->internal, job->result, ctx);
		changed = true;
	}
	if (changed)
		instance_jobs_save_or_log(jobs);
}

/* ---- calls ---- */

static struct instance_job *instance_jobs_find(struct instance_jobs *jobs, const char *id)
{
	for (size_t i = 0; id != NULL && i < jobs->list.count; i++) {
		if (strcmp(jobs->list.items[i]->id, id) == 0)
			return jobs->list.items[i];
	}
	return NULL;
}

int instance_jobs_list(struct instance_call *c)
{
	struct instance_jobs *jobs = c->inst->jobs;
	struct json *list = json_new_array();
	for (size_t i = jobs->list.count; i > 0; i--) /* newest first */
		json_append(list, instance_job_json(jobs->list.items[i - 1], false));
	c->result = list;
	return 0;
}

struct json *instance_jobs_of_kind(struct instance_jobs *jobs, const char *kind)
{
	struct json *list = json_new_array();
	for (size_t i = jobs->list.count; i > 0; i--) {
		struct instance_job *job = jobs->list.items[i - 1];
		if (strcmp(job->kind_name, kind) == 0)
			json_append(list, instance_job_json(job, false));
	}
	return list;
}

static struct instance_job *instance_jobs_arg(struct instance_call *c)
{
	struct instance_jobs *jobs = c->inst->jobs;
	const char *id = json_get_string(c->args, "jobID");
	struct instance_job *job = instance_jobs_find(jobs, id);
	if (job == NULL)
		c->error = tstr_printf("jobID: no job '%s' (GetJobs lists the last %d)",
				       id == NULL ? "" : id, INSTANCE_JOBS_KEEP);
	return job;
}

int instance_jobs_get(struct instance_call *c)
{
	struct instance_job *job = instance_jobs_arg(c);
	if (job == NULL)
		return -1;
	c->result = instance_job_json(job, false);
	return 0;
}

int instance_jobs_cancel(struct instance_call *c)
{
	struct instance_jobs *jobs = c->inst->jobs;
	struct instance_job *job = instance_jobs_arg(c);
	if (job == NULL)
		return -1;
	if (job == jobs->running && !atomic_exchange(&job->cancel, true))
		log_info(jobs->log_context, "job %s (%s): cancel requested", job->id,
			 job->kind_name);
	c->result = instance_job_json(job, false);
	return 0;
}

/* ---- for the run function ---- */

const struct json *instance_job_arguments(const struct instance_job *job)
{
	return job->arguments;
}

const atomic_bool *instance_job_cancel_flag(struct instance_job *job)
{
	return &job->cancel;
}

void instance_job_progress(struct instance_job *job, uint64_t done, uint64_t total)
{
	/* 100 only once the job has succeeded */
	int percent = total == 0 ? 0 : (int)((double)done * 100 / (double)total);
	if (percent > 99)
		percent = 99;
	pthread_mutex_lock(&job->lock);
	if (percent > job->percent)
		job->percent = percent;
	pthread_mutex_unlock(&job->lock);
	if (job->jobs->step_delay_ms > 0 && !atomic_load(&job->cancel)) {
		struct timespec ts = {job->jobs->step_delay_ms / 1000,
				      (long)(job->jobs->step_delay_ms % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
}

void instance_job_status(struct instance_job *job, const char *text)
{
	pthread_mutex_lock(&job->lock);
	mem_free(job->status_text);
	job->status_text = mem_strdup(text);
	pthread_mutex_unlock(&job->lock);
}

void instance_job_count(struct instance_job *job, const char *name, long long value)
{
	pthread_mutex_lock(&job->lock);
	json_set_int(job->result, name, value);
	pthread_mutex_unlock(&job->lock);
}

void instance_job_set_string(struct instance_job *job, const char *name, const char *value)
{
	pthread_mutex_lock(&job->lock);
	json_set_string(job->result, name, value);
	pthread_mutex_unlock(&job->lock);
}

void instance_job_count_in(struct instance_job *job, const char *object, const char *name,
			   long long value)
{
	pthread_mutex_lock(&job->lock);
	struct json *counts = json_get(job->result, object);
	if (counts == NULL) {
		counts = json_new_object();
		json_set(job->result, object, counts);
	}
	json_set_int(counts, name, value);
	pthread_mutex_unlock(&job->lock);
}

void instance_job_report(struct instance_job *job, const char *line)
{
	pthread_mutex_lock(&job->lock);
	struct json *report = json_get(job->result, "report");
	if (report == NULL) {
		report = json_new_array();
		json_set(job->result, "report", report);
	}
	if (json_count(report) < INSTANCE_JOBS_REPORT_MAX)
		json_append(report, json_new_string(line));
	pthread_mutex_unlock(&job->lock);
}

void instance_job_log(struct instance_job *job, const char *line)
{
	pthread_mutex_lock(&job->lock);
	if (str_len(job->log) < INSTANCE_JOBS_LOG_MAX)
		str_printfa(job->log, "%s\n", line);
	pthread_mutex_unlock(&job->lock);
}
