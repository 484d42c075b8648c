/* rpc-local: links between roles of one machine over an AF_UNIX socket.
 *
 * Roles that share a config directory (single server mode) reach each other
 * through `<config-dir>/run/<role>.sock` instead of TLS over loopback TCP:
 * the data of an IMAP FETCH then crosses the Instance Host's link without
 * being encrypted, decrypted and pushed through the TCP stack once more.
 * The kernel vouches for the peer (SO_PEERCRED): only a process of this
 * process's user, or root, is talked to; such a process can read the roles'
 * private keys anyway, so the socket grants nothing TLS would not. Which
 * role it is, each side says in its hello ("localFingerprint"), checked as
 * a TLS peer check would check a certificate (rpc_conn_create_local()). */
#include "rpc.h"
#include "tstr.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static bool rpc_local_address(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return false;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return true;
}

int rpc_local_listen(const char *path, const char **error_r)
{
	struct sockaddr_un sun;
	if (!rpc_local_address(path, &sun)) {
		*error_r = tstr_printf("%s: path too long for a local socket", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = tstr_printf("local socket: %s", strerror(errno));
		return -1;
	}
	/* a socket left by a process that died: only one role of a config
	 * directory runs (its pid file says so), so it is stale */
	(void)unlink(path);
	/* only this user (and root) may connect: from bind() on, not after */
	mode_t old = umask(077);
	int ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (ret < 0 || chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		*error_r = tstr_printf("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int rpc_local_connect(const char *path)
{
	struct sockaddr_un sun;
	if (!rpc_local_address(path, &sun))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* a local connect completes at once or fails (EAGAIN: the backlog is
	 * full; TCP is then as good a way) */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || !rpc_local_peer_trusted(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

bool rpc_local_peer_trusted(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
		return false;
	return cred.uid == geteuid() || cred.uid == 0;
}
