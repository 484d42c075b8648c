#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "netaddr.h"

static void test_parse_listener_forms(void **state)
{
	struct netaddr_listener l;
	const char *error;
	assert_int_equal(netaddr_parse_listener("*:8470", &l, &error), 0);
	assert_string_equal(l.host, "");
	assert_int_equal(l.port, 8470);
	assert_string_equal(netaddr_listener_str(&l), "*:8470");
	assert_string_equal(netaddr_listener_connect_host(&l), "localhost");
	assert_int_equal(netaddr_parse_listener("127.0.0.2:18471", &l, &error), 0);
	assert_string_equal(l.host, "127.0.0.2");
	assert_int_equal(netaddr_parse_listener("[::1]:993", &l, &error), 0);
	assert_string_equal(l.host, "::1");
	assert_string_equal(netaddr_listener_str(&l), "[::1]:993");
	assert_int_equal(netaddr_parse_listener("mgmt.example.test:8470", &l, &error), 0);
}

static void test_parse_listener_errors(void **state)
{
	struct netaddr_listener l;
	const char *error;
	const char *bad[] = {"8470",  ":8470",   "*:",       "*:0",    "*:65536",
			     "*:84x", "::1:993", "[::1]993", "[zz]:1", "bad host:1",
			     "a/b:1", "*:-1",    ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(netaddr_parse_listener(bad[i], &l, &error), -1);
		assert_non_null(strstr(error, "listener") != NULL ? error : NULL);
	}
}

static void test_parse_listener_list(void **state)
{
	struct netaddr_listener *list;
	size_t count;
	const char *error;
	assert_int_equal(netaddr_parse_listeners("127.0.0.1:1, [::1]:2 *:3", &list, &count, &error),
			 0);
	assert_int_equal(count, 3);
	assert_int_equal(list[2].port, 3);
	mem_free(list);
	assert_int_equal(netaddr_parse_listeners(" , ", &list, &count, &error), -1);
	assert_non_null(strstr(error, "empty"));
	assert_int_equal(netaddr_parse_listeners("127.0.0.1:1,nope", &list, &count, &error), -1);
	assert_non_null(strstr(error, "nope"));
}

static void test_listen_and_port_in_use(void **state)
{
	struct netaddr_listener l;
	const char *error;
	assert_int_equal(netaddr_parse_listener("127.0.0.1:0", &l, &error), -1);
	/* Find a free port by binding one, then binding it again must fail clearly. */
	for (unsigned int port = 39100; port < 39200; port++) {
		l.port = port;
		memcpy(l.host, "127.0.0.1", 10);
		int fd = netaddr_listen(&l, &error);
		if (fd < 0)
			continue;
		int fd2 = netaddr_listen(&l, &error);
		assert_int_equal(fd2, -1);
		assert_non_null(strstr(error, "in use"));
		close(fd);
		return;
	}
	fail_msg("no free port found");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_listener_forms),
		cmocka_unit_test(test_parse_listener_errors),
		cmocka_unit_test(test_parse_listener_list),
		cmocka_unit_test(test_listen_and_port_in_use),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
