#include "fd-reserve.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The process's reserve (one descriptor for the whole descriptor table). */
static int fd_reserve_fd = -1;

void fd_reserve_init(void)
{
	if (fd_reserve_fd < 0)
		fd_reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int fd_reserve_refuse(int listen_fd, const char *text)
{
	if (fd_reserve_fd >= 0) {
		close(fd_reserve_fd);
		fd_reserve_fd = -1;
	}
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd >= 0) {
		if (text != NULL) {
			ssize_t ret = send(fd, text, strlen(text), MSG_NOSIGNAL);
			(void)ret; /* the connection is closed either way */
		}
		close(fd);
	}
	fd_reserve_init();
	return fd >= 0 ? 1 : 0;
}
