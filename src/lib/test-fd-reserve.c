#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fd-reserve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* With every descriptor in use, accept() fails with EMFILE and the
 * connection stays in the backlog; the reserve takes it off, answers and
 * closes it, and is there again for the next one. */
static void test_refuse_when_out_of_descriptors(void **state)
{
	fd_reserve_init();
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	int clients[2];
	for (int i = 0; i < 2; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(clients[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	/* use up the descriptor table */
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	int fillers[64], n = 0;
	while (n < 64 && (fillers[n] = open("/dev/null", O_RDONLY)) >= 0)
		n++;
	assert_int_equal(accept(lfd, NULL, NULL), -1);
	assert_int_equal(errno, EMFILE);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fd_reserve_refuse(lfd, "BYE\r\n"), 1);
		char buf[16];
		ssize_t got = recv(clients[i], buf, sizeof(buf), 0);
		assert_int_equal(got, 5);
		assert_memory_equal(buf, "BYE\r\n", 5);
		assert_int_equal(recv(clients[i], buf, sizeof(buf), 0), 0);
	}
	/* nothing pending: nothing refused */
	int flags = fcntl(lfd, F_GETFL);
	fcntl(lfd, F_SETFL, flags | O_NONBLOCK);
	assert_int_equal(fd_reserve_refuse(lfd, NULL), 0);
	while (n > 0)
		close(fillers[--n]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	close(clients[0]);
	close(clients[1]);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refuse_when_out_of_descriptors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
