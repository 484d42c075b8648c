#ifndef COFFER_MGMT_JOBS_H
#define COFFER_MGMT_JOBS_H
/* mgmt-jobs: API work that finishes later.
 *
 * Every API invocation is a job with a status envelope (statusCode running,
 * succeeded, failed or cancelled; statusVersion increasing with each change;
 * percentProgress, statusText, result, error, logOutput). Short work answers
 * its HTTP request when it finishes; long work (a function marked
 * long-running, or anything not finished within MGMT_JOBS_ANSWER_MS) answers
 * at once with statusCode "running" and a token, which /api/get-status
 * long-polls and /api/cancel-async cancels. Finished jobs are kept for
 * MGMT_JOBS_KEEP_SECS so their outcome can still be fetched.
 *
 * Cancel: a job without a cancel function ends "cancelled" at once. A job
 * with one (work running elsewhere, e.g. an import in an instance) stays
 * "running" (statusText "cancelling") until the work has stopped and the
 * job is ended with mgmt_job_done_cancelled() and what the work did, or
 * with mgmt_job_done(). */
#include <stdbool.h>

#define MGMT_JOBS_ANSWER_MS 5000
#define MGMT_JOBS_KEEP_SECS 600

struct event_base;
struct http_request;
struct json;
struct mgmt_job;
struct mgmt_jobs;

typedef void mgmt_job_cancel_fn(struct mgmt_job *job, void *ctx);
typedef void mgmt_job_free_fn(void *ctx);

struct mgmt_jobs *mgmt_jobs_create(struct event_base *base);
void mgmt_jobs_destroy(struct mgmt_jobs **jobs);

/* A new job answering `req` (may be NULL). With long_running the request is
 * answered at once with the token. */
struct mgmt_job *mgmt_job_create(struct mgmt_jobs *jobs, struct http_request *req,
				 const char *function, const char *user, bool long_running);
void mgmt_job_progress(struct mgmt_job *job, int percent, const char *text);
void mgmt_job_log(struct mgmt_job *job, const char *line);
/* Finish with an error or not: result is taken over in every case (may be
 * NULL; a failure may carry a result too). Ignored after cancel. */
void mgmt_job_done(struct mgmt_job *job, struct json *result, const char *error);
/* End a job whose work stopped on request; result is taken over (may be NULL). */
void mgmt_job_done_cancelled(struct mgmt_job *job, struct json *result);
bool mgmt_job_cancelled(const struct mgmt_job *job);
void mgmt_job_on_cancel(struct mgmt_job *job, mgmt_job_cancel_fn *fn, void *ctx);
/* Called when the job is freed (reaped, or the server stops while it
 * runs), so that work following it lets go; fn NULL unregisters. */
void mgmt_job_on_free(struct mgmt_job *job, mgmt_job_free_fn *fn, void *ctx);
const char *mgmt_job_user(const struct mgmt_job *job);
/* The instance the job works on (shown by GetJobs); copied. */
void mgmt_job_set_instance(struct mgmt_job *job, const char *instance_id);
/* Record work that nobody here started but that failed elsewhere (a job an
 * instance ran on its own schedule), so that GetJobs state=failed shows it
 * for MGMT_JOBS_KEEP_SECS like the Management Server's own. */
void mgmt_jobs_record_failed(struct mgmt_jobs *jobs, const char *function, const char *user,
			     const char *instance_id, const char *error);
/* The jobs kept (running, and those that ended in the last
 * MGMT_JOBS_KEEP_SECS), newest first, those in `state` (NULL: all), but
 * not `except`: [{function, instanceID, user, state, percentProgress,
 * statusText, error, startedAt, finishedAt}] (new reference). */
struct json *mgmt_jobs_list(struct mgmt_jobs *jobs, const char *state,
			    const struct mgmt_job *except);

/* /api/get-status and /api/cancel-async (arguments already parsed). */
void mgmt_jobs_get_status(struct mgmt_jobs *jobs, struct http_request *req, const char *token,
			  long long last_known_version, long long timeout_ms, const char *user);
void mgmt_jobs_cancel(struct mgmt_jobs *jobs, struct http_request *req, const char *token,
		      const char *user);

/* The envelope of an immediate answer (mgmt-api uses it for sync work). */
struct json *mgmt_jobs_envelope(struct json *result, const char *error);
void mgmt_jobs_reply(struct http_request *req, int status, struct json *envelope);

#endif
