#ifndef COFFER_WORKER_POOL_H
#define COFFER_WORKER_POOL_H
/* worker-pool: a few threads that run short blocking work (an Argon2id
 * password check) off an event loop, with a bound on the work waiting.
 *
 * Contract:
 * - worker_pool_submit() queues a job: `work(ctx)` runs on one of the pool's
 *   threads, then `done(ctx, true)` runs on the loop thread (from the event
 *   base given at creation), in no particular order between jobs. It returns
 *   -1 without queueing when max_queued jobs already wait for a thread (jobs
 *   being run do not count): the caller refuses at once ("try again later")
 *   instead of letting the wait grow without limit.
 * - `work` must touch only what ctx owns (no event loop, no logging, nothing
 *   shared without its own lock); `done` is where results meet the rest of
 *   the program.
 * - worker_pool_destroy() (on the loop thread) waits for the jobs being run,
 *   then calls `done(ctx, false)` for the jobs that never ran and
 *   `done(ctx, true)` for finished ones not yet delivered, so every ctx is
 *   handed back exactly once. Destroy the pool before what `done` touches.
 * - Results come back through an eventfd watched by the loop, so libevent
 *   needs no thread support (evthread_use_pthreads is not required).
 * - Signals are blocked on the pool's threads: they reach the loop thread.
 * - The pool's threads run WORKER_POOL_NICE nice levels below the process
 *   (at most 19): their CPU work yields to the event loops of every process
 *   on the machine (not those of worker_pool_create_foreground()).
 * Not thread-safe itself: submit and destroy only from the loop thread. */
#include <stdbool.h>
#include <stdint.h>

#define WORKER_POOL_NICE 10

struct event_base;
struct worker_pool;

typedef void worker_pool_work_fn(void *ctx);
typedef void worker_pool_done_fn(void *ctx, bool ran);

struct worker_pool_stats {
	unsigned int threads;
	unsigned int queued;  /* waiting for a thread */
	unsigned int running; /* on a thread or finished, not yet delivered */
	uint64_t completed;   /* done(ctx, true) called */
	uint64_t refused;     /* submits refused because the queue was full */
};

/* threads: 0 = one per online CPU, at most max_threads (0: no cap).
 * -1 with *error_r if the eventfd or a thread cannot be made. */
int worker_pool_create(struct event_base *base, unsigned int threads, unsigned int max_threads,
		       unsigned int max_queued, struct worker_pool **pool_r, const char **error_r);
/* As worker_pool_create(), the threads at the process's own priority: for
 * work that was on the loop before and that a client waits for (the
 * journal's group commit), not background work. */
int worker_pool_create_foreground(struct event_base *base, unsigned int threads,
				  unsigned int max_threads, unsigned int max_queued,
				  struct worker_pool **pool_r, const char **error_r);
void worker_pool_destroy(struct worker_pool **pool);

/* 0 queued, -1 the queue is full (nothing queued, nothing called). */
int worker_pool_submit(struct worker_pool *pool, worker_pool_work_fn *work,
		       worker_pool_done_fn *done, void *ctx);

void worker_pool_stats(struct worker_pool *pool, struct worker_pool_stats *stats_r);

/* Online CPUs (at least 1). */
unsigned int worker_pool_cpu_count(void);

#endif
