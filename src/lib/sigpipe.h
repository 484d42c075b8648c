#ifndef COFFER_SIGPIPE_H
#define COFFER_SIGPIPE_H
/* sigpipe: keep SIGPIPE from killing a command-line caller during blocking
 * network work (writing to a connection the peer closed raises it).
 *
 * Contract: sigpipe_block() blocks SIGPIPE for the calling thread and saves
 * the old mask; sigpipe_restore() swallows a SIGPIPE that became pending
 * meanwhile and restores the mask. Daemons ignore SIGPIPE instead. */
#include <signal.h>

void sigpipe_block(sigset_t *old_r);
void sigpipe_restore(const sigset_t *old);

#endif
