#include "sigpipe.h"

#include <pthread.h>
#include <time.h>

static void sigpipe_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGPIPE);
}

void sigpipe_block(sigset_t *old_r)
{
	sigset_t set;
	sigpipe_set(&set);
	(void)pthread_sigmask(SIG_BLOCK, &set, old_r);
}

void sigpipe_restore(const sigset_t *old)
{
	sigset_t set;
	sigpipe_set(&set);
	const struct timespec zero = {0, 0};
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	(void)pthread_sigmask(SIG_SETMASK, old, NULL);
}
