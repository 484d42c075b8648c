#include "mgmt-jobs.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <event2/event.h>
#include <string.h>
#include <time.h>

enum mgmt_job_status { MGMT_JOB_RUNNING, MGMT_JOB_SUCCEEDED, MGMT_JOB_FAILED, MGMT_JOB_CANCELLED };
static const char *const mgmt_job_status_names[] = {"running", "succeeded", "failed", "cancelled"};

struct mgmt_poller {
	struct mgmt_poller *next;
	struct http_request *req;
	long long last_known;
	struct event *timer;
	struct mgmt_job *job;
};

struct mgmt_job {
	struct mgmt_job *next;
	struct mgmt_jobs *jobs;
	char *token;
	char *function;
	char *user;
	char *instance; /* the instanceID it works on, or NULL */
	time_t started;
	enum mgmt_job_status status;
	long long version;
	int percent; /* -1: unknown */
	char *status_text;
	char *error;
	struct json *result;
	struct str *log;
	struct http_request *req; /* the invocation, while it waits */
	struct event *answer_timer;
	struct mgmt_poller *pollers;
	mgmt_job_cancel_fn *cancel;
	void *cancel_ctx;
	bool cancel_requested; /* the work was asked to stop and reports when it has */
	mgmt_job_free_fn *on_free;
	void *on_free_ctx;
	time_t finished;
	bool token_given; /* the caller may ask for it later (or it ran without a request) */
};

struct mgmt_jobs {
	struct event_base *base;
	struct mgmt_job *head;
	struct event *reaper;
};

/* Members that hold a point in time. Roles and instances report them as
 * seconds since the epoch; the Management API answers every one of them in
 * one format, ISO 8601 UTC text ("2026-12-03T17:00:00Z"), and "never" (0) as
 * null. */
static bool mgmt_jobs_time_key(const char *key)
{
	static const char *const names[] = {"created", "added",        "systemTime",
					    "date",    "internalDate", NULL};
	size_t len = strlen(key);
	if (len > 2 && strcmp(key + len - 2, "At") == 0)
		return true;
	for (const char *const *n = names; *n != NULL; n++) {
		if (strcmp(*n, key) == 0)
			return true;
	}
	return false;
}

static void mgmt_jobs_times_iso(struct json *value)
{
	if (json_kind(value) == JSON_KIND_ARRAY) {
		for (size_t i = 0; i < json_count(value); i++)
			mgmt_jobs_times_iso(json_at(value, i));
		return;
	}
	for (void *it = json_iter(value); it != NULL; it = json_iter_next(value, it)) {
		struct json *member = json_iter_value(it);
		if (json_kind(member) != JSON_KIND_INT || !mgmt_jobs_time_key(json_iter_key(it))) {
			mgmt_jobs_times_iso(member);
			continue;
		}
		time_t t = (time_t)json_int_of(member);
		char buf[32];
		struct tm tm;
		if (t > 0 && gmtime_r(&t, &tm) != NULL &&
		    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
			json_set(value, json_iter_key(it), json_new_string(buf));
		else
			json_set(value, json_iter_key(it), json_new_null());
	}
}

struct json *mgmt_jobs_envelope(struct json *result, const char *error)
{
	struct json *e = json_new_object();
	if (result != NULL) {
		/* A copy: parts of a result may be shared with state kept elsewhere. */
		struct json *copy = json_clone(result);
		json_unref(&result);
		result = copy;
		mgmt_jobs_times_iso(result);
	}
	if (error != NULL) {
		struct json *err = json_new_object();
		json_set_string(err, "message", error);
		json_set(err, "details", json_new_null());
		json_set(e, "error", err);
	} else {
		json_set(e, "error", json_new_null());
	}
	json_set(e, "token", json_new_null());
	json_set_int(e, "statusVersion", 2);
	json_set_string(e, "statusCode", error != NULL ? "failed" : "succeeded");
	json_set(e, "percentProgress", json_new_null());
	json_set(e, "statusText", json_new_null());
	json_set(e, "result", result != NULL ? result : json_new_null());
	json_set(e, "logOutput", json_new_null());
	return e;
}

void mgmt_jobs_reply(struct http_request *req, int status, struct json *envelope)
{
	char *body = json_serialize(envelope, false);
	http_request_add_header(req, "Cache-Control", "no-store");
	http_request_reply(req, status, "application/json; charset=utf-8", body, strlen(body));
	mem_free(body);
	json_unref(&envelope);
}

static struct json *mgmt_job_envelope(const struct mgmt_job *job)
{
	struct json *e = mgmt_jobs_envelope(job->result != NULL ? json_clone(job->result) : NULL,
					    job->error);
	json_set_string(e, "token", job->token);
	json_set_int(e, "statusVersion", job->version);
	json_set_string(e, "statusCode", mgmt_job_status_names[job->status]);
	json_set(e, "percentProgress",
		 job->percent < 0 ? json_new_null() : json_new_int(job->percent));
	json_set(e, "statusText",
		 job->status_text != NULL ? json_new_string(job->status_text) : json_new_null());
	json_set(e, "logOutput",
		 str_len(job->log) > 0 ? json_new_string(str_c(job->log)) : json_new_null());
	return e;
}

static void mgmt_poller_free(struct mgmt_poller *p)
{
	event_free(p->timer);
	mem_free(p);
}

/* Answer whoever waits: the invocation itself (when finished) and pollers. */
static void mgmt_job_changed(struct mgmt_job *job)
{
	job->version++;
	if (job->req != NULL && job->status != MGMT_JOB_RUNNING) {
		event_del(job->answer_timer);
		mgmt_jobs_reply(job->req, 200, mgmt_job_envelope(job));
		job->req = NULL;
	}
	while (job->pollers != NULL) {
		struct mgmt_poller *p = job->pollers;
		job->pollers = p->next;
		mgmt_jobs_reply(p->req, 200, mgmt_job_envelope(job));
		mgmt_poller_free(p);
	}
}

/* Work that takes longer than a client should wait: hand out the token. */
static void mgmt_job_answer_now(evutil_socket_t fd, short events, void *ctx)
{
	struct mgmt_job *job = ctx;
	if (job->req != NULL) {
		mgmt_jobs_reply(job->req, 200, mgmt_job_envelope(job));
		job->req = NULL;
		job->token_given = true;
	}
}

struct mgmt_job *mgmt_job_create(struct mgmt_jobs *jobs, struct http_request *req,
				 const char *function, const char *user, bool long_running)
{
	struct mgmt_job *job = mem_new(struct mgmt_job);
	job->jobs = jobs;
	job->token = crypto_random_hex(16);
	job->function = mem_strdup(function);
	job->user = mem_strdup(user);
	job->started = time(NULL);
	job->version = 1;
	job->percent = -1;
	job->log = str_create(0);
	job->req = req;
	job->answer_timer = evtimer_new(jobs->base, mgmt_job_answer_now, job);
	struct timeval tv = {long_running ? 0 : MGMT_JOBS_ANSWER_MS / 1000,
			     long_running ? 0 : (MGMT_JOBS_ANSWER_MS % 1000) * 1000};
	if (req != NULL)
		event_add(job->answer_timer, &tv);
	else
		job->token_given = true;
	job->next = jobs->head;
	jobs->head = job;
	return job;
}

void mgmt_job_progress(struct mgmt_job *job, int percent, const char *text)
{
	if (job->status != MGMT_JOB_RUNNING)
		return;
	job->percent = percent;
	mem_free(job->status_text);
	job->status_text = text == NULL ? NULL : mem_strdup(text);
	mgmt_job_changed(job);
}

void mgmt_job_log(struct mgmt_job *job, const char *line)
{
	str_printfa(job->log, "%s\n", line);
}

void mgmt_job_done(struct mgmt_job *job, struct json *result, const char *error)
{
	if (job->status != MGMT_JOB_RUNNING) {
		json_unref(&result);
		return;
	}
	job->status = error != NULL ? MGMT_JOB_FAILED : MGMT_JOB_SUCCEEDED;
	job->result = result;
	job->error = error != NULL ? mem_strdup(error) : NULL;
	if (job->percent >= 0 && error == NULL)
		job->percent = 100;
	job->finished = time(NULL);
	mgmt_job_changed(job);
}

void mgmt_job_done_cancelled(struct mgmt_job *job, struct json *result)
{
	if (job->status != MGMT_JOB_RUNNING) {
		json_unref(&result);
		return;
	}
	job->status = MGMT_JOB_CANCELLED;
	json_unref(&job->result);
	job->result = result;
	mem_free(job->error);
	job->error = mem_strdup("cancelled");
	job->finished = time(NULL);
	mgmt_job_changed(job);
}

bool mgmt_job_cancelled(const struct mgmt_job *job)
{
	return job->status == MGMT_JOB_CANCELLED;
}

void mgmt_job_on_cancel(struct mgmt_job *job, mgmt_job_cancel_fn *fn, void *ctx)
{
	job->cancel = fn;
	job->cancel_ctx = ctx;
}

void mgmt_job_on_free(struct mgmt_job *job, mgmt_job_free_fn *fn, void *ctx)
{
	job->on_free = fn;
	job->on_free_ctx = ctx;
}

void mgmt_job_set_instance(struct mgmt_job *job, const char *instance_id)
{
	mem_free(job->instance);
	job->instance = instance_id != NULL ? mem_strdup(instance_id) : NULL;
}

void mgmt_jobs_record_failed(struct mgmt_jobs *jobs, const char *function, const char *user,
			     const char *instance_id, const char *error)
{
	struct mgmt_job *job = mgmt_job_create(jobs, NULL, function, user, false);
	mgmt_job_set_instance(job, instance_id);
	mgmt_job_done(job, NULL, error != NULL ? error : "failed");
}

struct json *mgmt_jobs_list(struct mgmt_jobs *jobs, const char *state,
			    const struct mgmt_job *except)
{
	struct json *list = json_new_array();
	/* the newest is at the head */
	for (const struct mgmt_job *job = jobs->head; job != NULL; job = job->next) {
		if (job == except ||
		    (state != NULL && strcmp(state, mgmt_job_status_names[job->status]) != 0))
			continue;
		struct json *j = json_new_object();
		json_set_string(j, "function", job->function);
		json_set_string(j, "instanceID", job->instance);
		json_set_string(j, "user", job->user);
		json_set_string(j, "state", mgmt_job_status_names[job->status]);
		json_set(j, "percentProgress",
			 job->percent < 0 ? json_new_null() : json_new_int(job->percent));
		json_set_string(j, "statusText", job->status_text);
		json_set_string(j, "error", job->error);
		json_set_int(j, "startedAt", (long long)job->started);
		json_set_int(j, "finishedAt", (long long)job->finished);
		json_append(list, j);
	}
	return list;
}

const char *mgmt_job_user(const struct mgmt_job *job)
{
	return job->user;
}

static struct mgmt_job *mgmt_jobs_find(struct mgmt_jobs *jobs, const char *token, const char *user)
{
	for (struct mgmt_job *j = jobs->head; j != NULL; j = j->next) {
		/* A token is only good for the administrator who started the work. */
		if (strcmp(j->token, token) == 0 && strcmp(j->user, user) == 0)
			return j;
	}
	return NULL;
}

static void mgmt_poller_timeout(evutil_socket_t fd, short events, void *ctx)
{
	struct mgmt_poller *p = ctx;
	struct mgmt_job *job = p->job;
	for (struct mgmt_poller **pp = &job->pollers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	mgmt_jobs_reply(p->req, 200, mgmt_job_envelope(job));
	mgmt_poller_free(p);
}

void mgmt_jobs_get_status(struct mgmt_jobs *jobs, struct http_request *req, const char *token,
			  long long last_known_version, long long timeout_ms, const char *user)
{
	struct mgmt_job *job = mgmt_jobs_find(jobs, token, user);
	if (job == NULL) {
		mgmt_jobs_reply(req, 404, mgmt_jobs_envelope(NULL, "unknown or expired token"));
		return;
	}
	if (job->version > last_known_version || job->status != MGMT_JOB_RUNNING ||
	    timeout_ms <= 0) {
		mgmt_jobs_reply(req, 200, mgmt_job_envelope(job));
		return;
	}
	if (timeout_ms > 60000)
		timeout_ms = 60000;
	struct mgmt_poller *p = mem_new(struct mgmt_poller);
	p->req = req;
	p->job = job;
	p->last_known = last_known_version;
	p->timer = evtimer_new(jobs->base, mgmt_poller_timeout, p);
	struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
	event_add(p->timer, &tv);
	p->next = job->pollers;
	job->pollers = p;
}

void mgmt_jobs_cancel(struct mgmt_jobs *jobs, struct http_request *req, const char *token,
		      const char *user)
{
	struct mgmt_job *job = mgmt_jobs_find(jobs, token, user);
	if (job == NULL) {
		mgmt_jobs_reply(req, 404, mgmt_jobs_envelope(NULL, "unknown or expired token"));
		return;
	}
	if (job->status == MGMT_JOB_RUNNING && job->cancel != NULL) {
		/* work that must stop cleanly (an import commits what is in
		 * flight) ends when it has, with what it did */
		if (!job->cancel_requested) {
			job->cancel_requested = true;
			mem_free(job->status_text);
			job->status_text = mem_strdup("cancelling");
			job->cancel(job, job->cancel_ctx);
			mgmt_job_changed(job);
		}
	} else if (job->status == MGMT_JOB_RUNNING) {
		job->status = MGMT_JOB_CANCELLED;
		job->finished = time(NULL);
		mem_free(job->error);
		job->error = mem_strdup("cancelled");
		mgmt_job_changed(job);
	}
	mgmt_jobs_reply(req, 200, mgmt_job_envelope(job));
}

static void mgmt_job_free(struct mgmt_job *job)
{
	if (job->on_free != NULL)
		job->on_free(job->on_free_ctx);
	while (job->pollers != NULL) {
		struct mgmt_poller *p = job->pollers;
		job->pollers = p->next;
		mgmt_jobs_reply(p->req, 200, mgmt_job_envelope(job));
		mgmt_poller_free(p);
	}
	if (job->req != NULL)
		mgmt_jobs_reply(job->req, 503,
				mgmt_jobs_envelope(NULL, "the Management Server is stopping"));
	event_free(job->answer_timer);
	json_unref(&job->result);
	str_destroy(&job->log);
	mem_free(job->token);
	mem_free(job->function);
	mem_free(job->user);
	mem_free(job->instance);
	mem_free(job->status_text);
	mem_free(job->error);
	mem_free(job);
}

static void mgmt_jobs_reap(evutil_socket_t fd, short events, void *ctx)
{
	struct mgmt_jobs *jobs = ctx;
	time_t now = time(NULL);
	for (struct mgmt_job **p = &jobs->head; *p != NULL;) {
		struct mgmt_job *job = *p;
		/* Kept for their token's sake, and failures for GetJobs; work that
		 * succeeded within its request (every poll of a page) need not
		 * wait the whole time. */
		bool done =
			job->status != MGMT_JOB_RUNNING && job->req == NULL && job->pollers == NULL;
		if (done && (now - job->finished > MGMT_JOBS_KEEP_SECS ||
			     (job->status == MGMT_JOB_SUCCEEDED && !job->token_given))) {
			*p = job->next;
			mgmt_job_free(job);
		} else {
			p = &job->next;
		}
	}
}

struct mgmt_jobs *mgmt_jobs_create(struct event_base *base)
{
	struct mgmt_jobs *jobs = mem_new(struct mgmt_jobs);
	jobs->base = base;
	jobs->reaper = event_new(base, -1, EV_PERSIST, mgmt_jobs_reap, jobs);
	struct timeval tv = {30, 0};
	event_add(jobs->reaper, &tv);
	return jobs;
}

void mgmt_jobs_destroy(struct mgmt_jobs **jobs)
{
	struct mgmt_jobs *j = *jobs;
	if (j == NULL)
		return;
	while (j->head != NULL) {
		struct mgmt_job *next = j->head->next;
		mgmt_job_free(j->head);
		j->head = next;
	}
	event_free(j->reaper);
	mem_free(j);
	*jobs = NULL;
}
