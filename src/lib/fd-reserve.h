#ifndef COFFER_FD_RESERVE_H
#define COFFER_FD_RESERVE_H
/* fd-reserve: one file descriptor held back so that a listener can still
 * take a connection off its backlog when the process has no descriptor
 * left (EMFILE, ENFILE), and answer it with a refusal instead of leaving it
 * there. Without it the listening socket stays readable, accept() keeps
 * failing and the event loop spins while the client waits for nothing.
 *
 * Contract: fd_reserve_refuse() gives up the reserve, accepts one pending
 * connection, writes `text` to it (best effort; NULL for none: a TLS
 * listener can only close), closes it and takes the reserve again. The
 * reserve is per process, as the descriptor table is: the first call opens
 * it (/dev/null) and fd_reserve_init() does so ahead of need. Returns 1 if
 * a connection was refused, 0 if there was none or none could be accepted.
 * Event-loop thread only. */

void fd_reserve_init(void);
int fd_reserve_refuse(int listen_fd, const char *text);

#endif
