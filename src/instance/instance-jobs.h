#ifndef COFFER_INSTANCE_JOBS_H
#define COFFER_INSTANCE_JOBS_H
/* instance-jobs: the one runner of an instance's long work (imports,
 * verify, rebuild; later retention, compaction, source runs).
 *
 * A job runs in a thread of its own, so the event loop keeps answering
 * calls and keep-alives however long the work takes. At most one job runs
 * at a time: long work shares the archive's one writer, and a verify must
 * not see an import half-way. Each job has an ID, a kind, a state (running,
 * succeeded, failed, cancelled, interrupted), a percentage when known, a
 * status text, a result that grows while it runs (counts so far), an error
 * and a log.
 *
 * Durability: the jobs are kept in <base>/jobs.sealed (sealed under a key
 * derived from the instance key), written when a job
 * starts, every INSTANCE_JOBS_SAVE_SECS while it runs and when it ends. A
 * job that was running when the process died (SIGKILL, power loss) is
 * reported "interrupted" with what was saved last; a kind may correct
 * those counts from the archive (instance_jobs_recover()), so that e.g. an
 * interrupted import reports exactly what it committed.
 *
 * Threads: the kind's run function runs in the job's thread and talks to
 * the job only through the instance_job_* functions below (they lock);
 * everything else runs on the event loop.
 *
 * Tests: with COFFER_TEST_JOB_STEP_DELAY_MS set, each progress report of a
 * job sleeps that long (unless it is being cancelled), so that a test can
 * make real work outlast the keep-alive window of the instance's link
 * without a corpus of millions of messages. Never set it in production. */
#include <stdatomic.h>
#include <stdint.h>

#define INSTANCE_JOBS_SAVE_SECS 2
#define INSTANCE_JOBS_KEEP 10
#define INSTANCE_JOBS_REPORT_MAX 1000

struct instance_call;
struct event_base;
struct json;
struct instance_job;
struct instance_jobs;

/* In the job's thread. 0 done, -1 failed with *error_r ("cancelled" when
 * stopped on request). */
typedef int instance_job_run_fn(struct instance_job *job, void *ctx, const char **error_r);
/* On the event loop, after the thread ended: give back what the job held. */
typedef void instance_job_done_fn(void *ctx);

struct instance_job_kind {
	const char *name;
	instance_job_run_fn *run;
	instance_job_done_fn *done; /* may be NULL */
};

/* Loads the saved jobs; those that were running become interrupted. A
 * jobs file that cannot be read is logged and started afresh. */
struct instance_jobs *instance_jobs_create(struct event_base *base, const char *base_dir,
					   const char *key_file, const char *log_context);
/* Stop a running job (cancel, wait for it) and save it as interrupted. */
void instance_jobs_stop(struct instance_jobs *jobs);
/* Also stops a running job. */
void instance_jobs_destroy(struct instance_jobs **jobs);

/* Start a job: `arguments` (shown with the job) and `internal` (saved, not
 * shown; may be NULL) are taken over; ctx is the kind's (its done function
 * gets it back once the job ran; on -1 the caller keeps it). *id_r stays
 * valid while the job is kept. Refused while another job runs. */
int instance_jobs_start(struct instance_jobs *jobs, const struct instance_job_kind *kind,
			struct json *arguments, struct json *internal, void *ctx, const char **id_r,
			const char **error_r);
/* The kind of the running job, or NULL. */
const char *instance_jobs_running(struct instance_jobs *jobs);

/* Called on the event loop when a job has ended, with the job as GetJob
 * shows it (borrowed): so that work the instance started by itself (a
 * scheduled run) can be reported to the Management Server, which follows
 * only the jobs it started. */
typedef void instance_jobs_ended_fn(const struct json *job, void *ctx);
void instance_jobs_on_end(struct instance_jobs *jobs, instance_jobs_ended_fn *fn, void *ctx);

/* For each job of `kind` that this process found interrupted: correct its
 * result (fix may change `result` in place), then save. */
typedef void instance_job_recover_fn(const struct json *arguments, const struct json *internal,
				     struct json *result, void *ctx);
void instance_jobs_recover(struct instance_jobs *jobs, const char *kind,
			   instance_job_recover_fn *fix, void *ctx);

/* The calls (instance-calls.h; allowed while frozen: they change no data):
 * GetJobs, GetJob {jobID}, CancelJob {jobID}, each answered with the job(s). */
int instance_jobs_list(struct instance_call *c);
/* The kept jobs of one kind, newest first, as GetJob shows each. */
struct json *instance_jobs_of_kind(struct instance_jobs *jobs, const char *kind);
int instance_jobs_get(struct instance_call *c);
int instance_jobs_cancel(struct instance_call *c);

/* ---- for the run function, in the job's thread ---- */
const struct json *instance_job_arguments(const struct instance_job *job);
const atomic_bool *instance_job_cancel_flag(struct instance_job *job);
/* Also from a thread the run function started (the import's writer). */
void instance_job_progress(struct instance_job *job, uint64_t done, uint64_t total);
void instance_job_status(struct instance_job *job, const char *text);
/* Set a number in the result. */
void instance_job_count(struct instance_job *job, const char *name, long long value);
/* Set a string in the result. */
void instance_job_set_string(struct instance_job *job, const char *name, const char *value);
/* Set a number inside an object of the result: result[object][name]. */
void instance_job_count_in(struct instance_job *job, const char *object, const char *name,
			   long long value);
/* A line of the result's "report" (the first INSTANCE_JOBS_REPORT_MAX). */
void instance_job_report(struct instance_job *job, const char *line);
void instance_job_log(struct instance_job *job, const char *line);

#endif
