#include "worker-pool.h"
#include "mem.h"
#include "tstr.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

struct worker_job {
	struct worker_job *next;
	worker_pool_work_fn *work;
	worker_pool_done_fn *done;
	void *ctx;
};

struct worker_job_list {
	struct worker_job *head, *tail;
};

struct worker_pool {
	struct event *wakeup;
	int efd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	struct worker_job_list queue, finished; /* under lock */
	unsigned int queued, running;           /* under lock */
	uint64_t completed, refused;            /* loop thread only */
	unsigned int max_queued;
	unsigned int thread_count;
	pthread_t *threads;
	int nice; /* added to the threads' nice value */
};

unsigned int worker_pool_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 1024 ? 1024 : (unsigned int)n;
}

static void worker_list_push(struct worker_job_list *list, struct worker_job *job)
{
	job->next = NULL;
	if (list->tail != NULL)
		list->tail->next = job;
	else
		list->head = job;
	list->tail = job;
}

static struct worker_job *worker_list_take_all(struct worker_job_list *list)
{
	struct worker_job *head = list->head;
	list->head = list->tail = NULL;
	return head;
}

static struct worker_job *worker_list_pop(struct worker_job_list *list)
{
	struct worker_job *job = list->head;
	if (job != NULL) {
		list->head = job->next;
		if (list->head == NULL)
			list->tail = NULL;
	}
	return job;
}

static void *worker_thread(void *arg)
{
	struct worker_pool *pool = arg;
	/* Background work yields to every event loop: on Linux the nice value
	 * is the thread's own, so a flood of logins on one instance (Argon2id
	 * on every core) does not slow another tenant's IMAP or Web Access;
	 * on an idle machine the checks still get every core. Failing to lower
	 * it is harmless. */
	if (pool->nice > 0) {
		id_t tid = (id_t)gettid();
		int nice = getpriority(PRIO_PROCESS, tid) + pool->nice;
		(void)setpriority(PRIO_PROCESS, tid, nice > 19 ? 19 : nice);
	}
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->stopping && pool->queue.head == NULL)
			pthread_cond_wait(&pool->cond, &pool->lock);
		if (pool->stopping)
			break;
		struct worker_job *job = worker_list_pop(&pool->queue);
		pool->queued--;
		pool->running++;
		pthread_mutex_unlock(&pool->lock);
		job->work(job->ctx);
		pthread_mutex_lock(&pool->lock);
		worker_list_push(&pool->finished, job);
		/* One write per finished job is more than needed, but an
		 * eventfd only adds to its counter: it cannot fill up. */
		uint64_t one = 1;
		ssize_t ret;
		do
			ret = write(pool->efd, &one, sizeof(one));
		while (ret < 0 && errno == EINTR);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* Hand finished jobs back to their owners, on the loop thread. */
static void worker_pool_deliver(struct worker_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	struct worker_job *job = worker_list_take_all(&pool->finished);
	for (struct worker_job *j = job; j != NULL; j = j->next)
		pool->running--;
	pthread_mutex_unlock(&pool->lock);
	while (job != NULL) {
		struct worker_job *next = job->next;
		pool->completed++;
		job->done(job->ctx, true);
		mem_free(job);
		job = next;
	}
}

static void worker_pool_wakeup(evutil_socket_t fd, short events, void *ctx)
{
	struct worker_pool *pool = ctx;
	uint64_t count;
	if (read(pool->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return; /* cannot happen with an eventfd; deliver on the next wakeup */
	worker_pool_deliver(pool);
}

static int worker_pool_start_threads(struct worker_pool *pool, const char **error_r)
{
	/* Threads inherit the signal mask: block everything while creating
	 * them so that signals keep going to the loop thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = 0;
	unsigned int i;
	for (i = 0; i < pool->thread_count && err == 0; i++)
		err = pthread_create(&pool->threads[i], NULL, worker_thread, pool);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		pool->thread_count = i - 1;
		*error_r = tstr_printf("cannot start a worker thread: %s", strerror(err));
		return -1;
	}
	return 0;
}

static int worker_pool_create_niced(struct event_base *base, unsigned int threads,
				    unsigned int max_threads, unsigned int max_queued, int nice,
				    struct worker_pool **pool_r, const char **error_r)
{
	if (threads == 0)
		threads = worker_pool_cpu_count();
	if (max_threads > 0 && threads > max_threads)
		threads = max_threads;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0) {
		*error_r = tstr_printf("eventfd: %s", strerror(errno));
		return -1;
	}
	struct worker_pool *pool = mem_new(struct worker_pool);
	pool->efd = efd;
	pool->max_queued = max_queued;
	pool->nice = nice;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->wakeup = event_new(base, efd, EV_READ | EV_PERSIST, worker_pool_wakeup, pool);
	event_add(pool->wakeup, NULL);
	pool->thread_count = threads;
	pool->threads = mem_alloc(threads * sizeof(*pool->threads));
	if (worker_pool_start_threads(pool, error_r) < 0) {
		worker_pool_destroy(&pool);
		return -1;
	}
	*pool_r = pool;
	return 0;
}

int worker_pool_create(struct event_base *base, unsigned int threads, unsigned int max_threads,
		       unsigned int max_queued, struct worker_pool **pool_r, const char **error_r)
{
	return worker_pool_create_niced(base, threads, max_threads, max_queued, WORKER_POOL_NICE,
					pool_r, error_r);
}

int worker_pool_create_foreground(struct event_base *base, unsigned int threads,
				  unsigned int max_threads, unsigned int max_queued,
				  struct worker_pool **pool_r, const char **error_r)
{
	return worker_pool_create_niced(base, threads, max_threads, max_queued, 0, pool_r, error_r);
}

void worker_pool_destroy(struct worker_pool **_pool)
{
	struct worker_pool *pool = *_pool;
	if (pool == NULL)
		return;
	*_pool = NULL;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned int i = 0; i < pool->thread_count; i++)
		pthread_join(pool->threads[i], NULL);
	worker_pool_deliver(pool);
	struct worker_job *job = worker_list_take_all(&pool->queue);
	while (job != NULL) {
		struct worker_job *next = job->next;
		job->done(job->ctx, false);
		mem_free(job);
		job = next;
	}
	event_free(pool->wakeup);
	close(pool->efd);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	mem_free(pool->threads);
	mem_free(pool);
}

int worker_pool_submit(struct worker_pool *pool, worker_pool_work_fn *work,
		       worker_pool_done_fn *done, void *ctx)
{
	pthread_mutex_lock(&pool->lock);
	if (pool->queued >= pool->max_queued) {
		pthread_mutex_unlock(&pool->lock);
		pool->refused++;
		return -1;
	}
	struct worker_job *job = mem_new(struct worker_job);
	job->work = work;
	job->done = done;
	job->ctx = ctx;
	worker_list_push(&pool->queue, job);
	pool->queued++;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

void worker_pool_stats(struct worker_pool *pool, struct worker_pool_stats *stats_r)
{
	pthread_mutex_lock(&pool->lock);
	stats_r->threads = pool->thread_count;
	stats_r->queued = pool->queued;
	stats_r->running = pool->running;
	pthread_mutex_unlock(&pool->lock);
	stats_r->completed = pool->completed;
	stats_r->refused = pool->refused;
}
