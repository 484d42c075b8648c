#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "worker-pool.h"

struct job {
	pthread_t ran_on, done_on;
	bool ran, done, done_ran;
	sem_t *gate; /* if set, the job waits for it */
};

static atomic_int active, max_active;
static int done_count;
static struct event_base *base;

static void job_work(void *ctx)
{
	struct job *j = ctx;
	int now = atomic_fetch_add(&active, 1) + 1;
	int seen = atomic_load(&max_active);
	while (now > seen && !atomic_compare_exchange_weak(&max_active, &seen, now))
		;
	j->ran_on = pthread_self();
	j->ran = true;
	if (j->gate != NULL)
		sem_wait(j->gate);
	else
		usleep(50 * 1000);
	atomic_fetch_sub(&active, 1);
}

static void job_done(void *ctx, bool ran)
{
	struct job *j = ctx;
	j->done_on = pthread_self();
	j->done = true;
	j->done_ran = ran;
	done_count++;
}

/* Run the loop until `count` jobs are done (or 20 s: a hung pool fails). */
static void run_until(int count)
{
	time_t start = time(NULL);
	while (done_count < count && time(NULL) - start < 20)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(done_count, count);
}

static void setup_run(void)
{
	done_count = 0;
	atomic_store(&active, 0);
	atomic_store(&max_active, 0);
}

static void test_work_on_threads_done_on_loop(void **state)
{
	struct worker_pool *pool;
	const char *error;
	setup_run();
	assert_int_equal(worker_pool_create(base, 2, 0, 100, &pool, &error), 0);
	struct job jobs[8] = {0};
	for (int i = 0; i < 8; i++)
		assert_int_equal(worker_pool_submit(pool, job_work, job_done, &jobs[i]), 0);
	run_until(8);
	for (int i = 0; i < 8; i++) {
		assert_true(jobs[i].ran && jobs[i].done && jobs[i].done_ran);
		assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
		assert_true(pthread_equal(jobs[i].done_on, pthread_self()));
	}
	/* two threads, eight 50 ms jobs: they overlapped, never more than two */
	assert_int_equal(atomic_load(&max_active), 2);
	struct worker_pool_stats stats;
	worker_pool_stats(pool, &stats);
	assert_int_equal(stats.threads, 2);
	assert_int_equal(stats.completed, 8);
	assert_int_equal(stats.queued + stats.running, 0);
	worker_pool_destroy(&pool);
	assert_null(pool);
}

static void wait_running(struct worker_pool *pool, unsigned int running, unsigned int queued)
{
	struct worker_pool_stats stats;
	for (int i = 0; i < 2000; i++) {
		worker_pool_stats(pool, &stats);
		if (stats.running == running && stats.queued == queued)
			return;
		usleep(5000);
	}
	fail_msg("the pool never ran %u jobs", running);
}

static void test_queue_bound_refuses(void **state)
{
	struct worker_pool *pool;
	const char *error;
	sem_t gate;
	sem_init(&gate, 0, 0);
	setup_run();
	assert_int_equal(worker_pool_create(base, 1, 0, 2, &pool, &error), 0);
	struct job jobs[4] = {{.gate = &gate}, {.gate = &gate}, {.gate = &gate}, {.gate = &gate}};
	assert_int_equal(worker_pool_submit(pool, job_work, job_done, &jobs[0]), 0);
	wait_running(pool, 1, 0);
	/* the running job does not count against the bound of two waiting */
	assert_int_equal(worker_pool_submit(pool, job_work, job_done, &jobs[1]), 0);
	assert_int_equal(worker_pool_submit(pool, job_work, job_done, &jobs[2]), 0);
	assert_int_equal(worker_pool_submit(pool, job_work, job_done, &jobs[3]), -1);
	struct worker_pool_stats stats;
	worker_pool_stats(pool, &stats);
	assert_int_equal(stats.queued, 2);
	assert_int_equal(stats.refused, 1);
	for (int i = 0; i < 3; i++)
		sem_post(&gate);
	run_until(3);
	assert_false(jobs[3].ran || jobs[3].done);
	/* room again */
	jobs[3].gate = NULL;
	assert_int_equal(worker_pool_submit(pool, job_work, job_done, &jobs[3]), 0);
	run_until(4);
	worker_pool_destroy(&pool);
	sem_destroy(&gate);
}

static void *post_later(void *gate)
{
	usleep(200 * 1000);
	sem_post(gate);
	return NULL;
}

static void test_destroy_hands_back_every_job(void **state)
{
	struct worker_pool *pool;
	const char *error;
	sem_t gate;
	sem_init(&gate, 0, 0);
	setup_run();
	assert_int_equal(worker_pool_create(base, 1, 0, 10, &pool, &error), 0);
	struct job jobs[3] = {{.gate = &gate}, {0}, {0}};
	for (int i = 0; i < 3; i++)
		assert_int_equal(worker_pool_submit(pool, job_work, job_done, &jobs[i]), 0);
	wait_running(pool, 1, 2);
	/* destroy waits for the running job: it finishes a little later, from
	 * another thread, by which time destroy has (nearly always) stopped
	 * the pool, so the two queued jobs are handed back without running.
	 * Under heavy load the worker may start the next one first; either
	 * way every job comes back exactly once, saying whether it ran. */
	pthread_t poster;
	assert_int_equal(pthread_create(&poster, NULL, post_later, &gate), 0);
	worker_pool_destroy(&pool);
	pthread_join(poster, NULL);
	assert_int_equal(done_count, 3);
	assert_true(jobs[0].ran && jobs[0].done_ran);
	for (int i = 1; i < 3; i++) {
		assert_true(jobs[i].done);
		assert_int_equal(jobs[i].ran, jobs[i].done_ran);
	}
	sem_destroy(&gate);
}

static int nice_seen = -100, nice_loop = -100;

static void nice_work(void *ctx)
{
	nice_seen = getpriority(PRIO_PROCESS, (id_t)gettid());
}

static void nice_done(void *ctx, bool ran)
{
	done_count++;
}

/* The pool's threads yield to event loops: a lower priority than the loop's,
 * which keeps its own. */
static void test_threads_run_at_lower_priority(void **state)
{
	struct worker_pool *pool;
	const char *error;
	setup_run();
	nice_loop = getpriority(PRIO_PROCESS, (id_t)gettid());
	assert_int_equal(worker_pool_create(base, 1, 0, 1, &pool, &error), 0);
	assert_int_equal(worker_pool_submit(pool, nice_work, nice_done, NULL), 0);
	run_until(1);
	worker_pool_destroy(&pool);
	assert_int_equal(nice_seen,
			 nice_loop + WORKER_POOL_NICE > 19 ? 19 : nice_loop + WORKER_POOL_NICE);
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)gettid()), nice_loop);
}

/* A foreground pool's threads keep the loop's priority. */
static void test_foreground_threads_keep_priority(void **state)
{
	struct worker_pool *pool;
	const char *error;
	setup_run();
	nice_loop = getpriority(PRIO_PROCESS, (id_t)gettid());
	nice_seen = -100;
	assert_int_equal(worker_pool_create_foreground(base, 1, 0, 1, &pool, &error), 0);
	assert_int_equal(worker_pool_submit(pool, nice_work, nice_done, NULL), 0);
	run_until(1);
	worker_pool_destroy(&pool);
	assert_int_equal(nice_seen, nice_loop);
}

static void test_thread_count_defaults_to_cpus(void **state)
{
	struct worker_pool *pool;
	const char *error;
	struct worker_pool_stats stats;
	assert_int_equal(worker_pool_create(base, 0, 0, 1, &pool, &error), 0);
	worker_pool_stats(pool, &stats);
	assert_int_equal(stats.threads, worker_pool_cpu_count());
	worker_pool_destroy(&pool);
	assert_int_equal(worker_pool_create(base, 0, 1, 1, &pool, &error), 0);
	worker_pool_stats(pool, &stats);
	assert_int_equal(stats.threads, 1);
	worker_pool_destroy(&pool);
}

int main(void)
{
	base = event_base_new();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_work_on_threads_done_on_loop),
		cmocka_unit_test(test_queue_bound_refuses),
		cmocka_unit_test(test_destroy_hands_back_every_job),
		cmocka_unit_test(test_thread_count_defaults_to_cpus),
		cmocka_unit_test(test_threads_run_at_lower_priority),
		cmocka_unit_test(test_foreground_threads_keep_priority),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);
	event_base_free(base);
	return ret;
}
