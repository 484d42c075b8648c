/* Runs the real aiosmtpd (Debian's python3-aiosmtpd) as the peer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "mem.h"
#include "smtp-client.h"
#include "str.h"
#include "test-tmpdir.h"

#define PYTHON "/usr/bin/python3"

static char *tmpdir;
static bool have_aiosmtpd;
static char *cert_path, *key_path;

struct peer {
	pid_t pid;
	unsigned int port;
	char *maildir;
	char *log;
};

/* The running peer, stopped by peer_cleanup() also when a test fails (cmocka
 * longjmps out of the test function then). */
static struct peer *running_peer;

static unsigned int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static bool port_open(unsigned int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static void print_file(const char *path)
{
	const char *error;
	char *data;
	size_t len;
	if (file_read_all(path, 1 << 20, &data, &len, &error) == 0) {
		print_message("--- %s:\n%s\n", path, data);
		mem_free(data);
	}
}

/* mode: NULL (plain), "starttls" or "smtps". */
static void peer_start(struct peer *p, const char *name, const char *handler, const char *mode)
{
	p->port = free_port();
	p->maildir = mem_printf("%s/%s", tmpdir, name);
	p->log = mem_printf("%s/%s.log", tmpdir, name);
	char listen[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", p->port);
	const char *argv[16] = {PYTHON, "-m", "aiosmtpd", "-n", "-l", listen, "-c", handler};
	int argc = 8;
	if (mode != NULL) {
		bool smtps = strcmp(mode, "smtps") == 0;
		argv[argc++] = smtps ? "--smtpscert" : "--tlscert";
		argv[argc++] = cert_path;
		argv[argc++] = smtps ? "--smtpskey" : "--tlskey";
		argv[argc++] = key_path;
	}
	argv[argc++] = p->maildir;
	argv[argc] = NULL;

	fflush(NULL);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		/* smtp_test_peer.py lives beside this test. */
		if (setenv("PYTHONPATH", SMTP_TEST_PEER_DIR, 1) < 0 ||
		    setenv("PYTHONDONTWRITEBYTECODE", "1", 1) < 0)
			_exit(127);
		execv(PYTHON, (char *const *)argv);
		_exit(127);
	}
	running_peer = p;
	for (int i = 0; i < 200; i++) {
		int status;
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			print_file(p->log);
			fail_msg("aiosmtpd exited before listening on %s", listen);
		}
		if (port_open(p->port))
			return;
		usleep(25 * 1000);
	}
	print_file(p->log);
	fail_msg("aiosmtpd did not listen on %s within 5 s", listen);
}

static void peer_stop(struct peer *p)
{
	int status;
	running_peer = NULL;
	assert_int_equal(kill(p->pid, SIGTERM), 0);
	assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
	mem_free(p->maildir);
	mem_free(p->log);
}

static int peer_cleanup(void **state)
{
	struct peer *p = running_peer;
	if (p == NULL)
		return 0;
	running_peer = NULL;
	int status;
	if (kill(p->pid, SIGTERM) == 0)
		(void)waitpid(p->pid, &status, 0);
	mem_free(p->maildir);
	mem_free(p->log);
	return 0;
}

/* Names of the files in dir/sub, sorted; count in *count_r. */
static char **list_dir(const char *dir, const char *sub, size_t *count_r)
{
	char *path = mem_printf("%s/%s", dir, sub);
	struct dirent **names;
	int n = scandir(path, &names, NULL, alphasort);
	mem_free(path);
	size_t count = 0;
	char **result = mem_calloc(n > 0 ? (size_t)n + 1 : 1, sizeof(char *));
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.')
			result[count++] = mem_strdup(names[i]->d_name);
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	*count_r = count;
	return result;
}

static void free_list(char **list)
{
	for (char **p = list; *p != NULL; p++)
		mem_free(*p);
	mem_free(list);
}

/* The one message delivered to the peer's Maildir and its envelope (JSON from
 * smtp_test_peer.Record; NULL for other handlers). */
static char *delivered(const struct peer *p, size_t *len_r, char **envelope_r)
{
	size_t count;
	char **names = list_dir(p->maildir, "new", &count);
	assert_int_equal(count, 1);
	const char *error;
	char *path = mem_printf("%s/new/%s", p->maildir, names[0]);
	char *data;
	assert_int_equal(file_read_all(path, 1 << 20, &data, len_r, &error), 0);
	mem_free(path);
	if (envelope_r != NULL) {
		size_t elen;
		path = mem_printf("%s/envelope/%s.json", p->maildir, names[0]);
		assert_int_equal(file_read_all(path, 1 << 20, envelope_r, &elen, &error), 0);
		mem_free(path);
	}
	free_list(names);
	return data;
}

static size_t delivered_count(const struct peer *p)
{
	size_t count;
	free_list(list_dir(p->maildir, "new", &count));
	return count;
}

static struct smtp_settings settings(const struct peer *p, enum smtp_security security)
{
	return (struct smtp_settings){
		.host = "127.0.0.1", .port = p->port, .security = security, .timeout_secs = 5};
}

#define REQUIRE_PEER()                                                                             \
	do {                                                                                       \
		if (!have_aiosmtpd) {                                                              \
			print_message("skipped: " PYTHON " cannot import aiosmtpd "                \
				      "(Debian package python3-aiosmtpd)\n");                      \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static const char plain_message[] = "From: Coffer <coffer@example.com>\r\n"
				    "To: alice@example.org\r\n"
				    "Subject: test\r\n"
				    "Message-ID: <t1@example.com>\r\n"
				    "\r\n"
				    "Hello Alice,\r\n"
				    ".a line that starts with a dot\r\n"
				    ".\r\n"
				    "..\r\n"
				    "bye\r\n";

/* The stock aiosmtpd Mailbox handler, as the brief for this module names it:
 * it re-serialises the message with LF line ends and adds X-Peer, X-MailFrom
 * and X-RcptTo, so compare headers and body modulo exactly that. */
static void test_send_to_aiosmtpd_mailbox(void **state)
{
	REQUIRE_PEER();
	struct peer p;
	peer_start(&p, "mailbox", "aiosmtpd.handlers.Mailbox", NULL);
	struct smtp_settings set = settings(&p, SMTP_SECURITY_NONE);
	const char *to[] = {"alice@example.org"};
	struct smtp_message msg = {.from = "coffer@example.com",
				   .to = to,
				   .to_count = 1,
				   .data = plain_message,
				   .size = strlen(plain_message)};
	const char *error = NULL;
	if (smtp_send(&set, &msg, &error) < 0)
		fail_msg("smtp_send: %s", error);

	size_t len;
	char *stored = delivered(&p, &len, NULL);
	struct str *got = str_create(len);
	bool saw_rcpt = false, saw_from = false;
	for (char *line = strtok(stored, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (strncmp(line, "X-Peer: ", 8) == 0)
			continue;
		if (strncmp(line, "X-MailFrom: ", 12) == 0) {
			saw_from = strcmp(line + 12, "coffer@example.com") == 0;
			continue;
		}
		if (strncmp(line, "X-RcptTo: ", 10) == 0) {
			saw_rcpt = strcmp(line + 10, "alice@example.org") == 0;
			continue;
		}
		str_append(got, line);
		str_append(got, "\n");
	}
	assert_true(saw_from);
	assert_true(saw_rcpt);
	/* strtok skips the empty separator line: compare without it. */
	assert_string_equal(str_c(got), "From: Coffer <coffer@example.com>\n"
					"To: alice@example.org\n"
					"Subject: test\n"
					"Message-ID: <t1@example.com>\n"
					"Hello Alice,\n"
					".a line that starts with a dot\n"
					".\n"
					"..\n"
					"bye\n");
	str_destroy(&got);
	mem_free(stored);
	peer_stop(&p);
}

/* Exactly the bytes sent arrive, for a message made by
 * smtp_build_text_message() with non-ASCII headers and two recipients. */
static void test_send_exact_bytes(void **state)
{
	REQUIRE_PEER();
	struct peer p;
	peer_start(&p, "exact", "smtp_test_peer.Record", NULL);
	char *data = smtp_build_text_message("Cöffer Archive <coffer@example.com>",
					     "alice@example.org", "Grüße: the export is ready ✓",
					     "Hällo,\n.leading dot\n..two\n.\nend");
	struct smtp_settings set = settings(&p, SMTP_SECURITY_NONE);
	const char *to[] = {"alice@example.org", "bob@example.net"};
	struct smtp_message msg = {.from = "coffer@example.com",
				   .to = to,
				   .to_count = 2,
				   .data = data,
				   .size = strlen(data)};
	const char *error = NULL;
	if (smtp_send(&set, &msg, &error) < 0)
		fail_msg("smtp_send: %s", error);
	size_t len;
	char *envelope;
	char *stored = delivered(&p, &len, &envelope);
	assert_int_equal(len, strlen(data));
	assert_memory_equal(stored, data, len);
	assert_string_equal(envelope, "{\"mail_from\": \"coffer@example.com\", \"rcpt_tos\": "
				      "[\"alice@example.org\", \"bob@example.net\"], "
				      "\"tls\": false, \"login\": null}");
	mem_free(envelope);
	mem_free(stored);
	mem_free(data);
	peer_stop(&p);
}

static void test_connection_refused(void **state)
{
	unsigned int port = free_port();
	struct smtp_settings set = {.host = "127.0.0.1", .port = port, .timeout_secs = 5};
	const char *to[] = {"alice@example.org"};
	struct smtp_message msg = {.from = "a@example.com",
				   .to = to,
				   .to_count = 1,
				   .data = plain_message,
				   .size = strlen(plain_message)};
	const char *error = NULL;
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	char *hostport = mem_printf("127.0.0.1:%u", port);
	print_message("error: %s\n", error);
	assert_non_null(strstr(error, hostport));
	assert_non_null(strstr(error, "connect"));
	mem_free(hostport);
}

static void test_recipient_rejected(void **state)
{
	REQUIRE_PEER();
	struct peer p;
	peer_start(&p, "reject", "smtp_test_peer.Record", NULL);
	struct smtp_settings set = settings(&p, SMTP_SECURITY_NONE);
	const char *to[] = {"alice@example.org", "nobody@example.org"};
	struct smtp_message msg = {.from = "coffer@example.com",
				   .to = to,
				   .to_count = 2,
				   .data = plain_message,
				   .size = strlen(plain_message)};
	const char *error = NULL;
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	print_message("error: %s\n", error);
	char *hostport = mem_printf("127.0.0.1:%u", p.port);
	assert_non_null(strstr(error, hostport));
	assert_non_null(strstr(error, "550 5.1.1 <nobody@example.org>: Recipient address "
				      "rejected: User unknown"));
	mem_free(hostport);
	assert_int_equal(delivered_count(&p), 0);
	peer_stop(&p);
}

static void test_timeout(void **state)
{
	/* A listener that never answers: the kernel accepts the connection,
	 * nobody sends a greeting. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	socklen_t slen = sizeof(sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	struct smtp_settings set = {
		.host = "127.0.0.1", .port = ntohs(sin.sin_port), .timeout_secs = 1};
	const char *to[] = {"alice@example.org"};
	struct smtp_message msg = {.from = "a@example.com",
				   .to = to,
				   .to_count = 1,
				   .data = plain_message,
				   .size = strlen(plain_message)};
	const char *error = NULL;
	time_t start = time(NULL);
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	assert_true(time(NULL) - start <= 3);
	print_message("error: %s\n", error);
	assert_non_null(strstr(error, "Timeout"));
	close(fd);
}

static void test_starttls(void **state)
{
	REQUIRE_PEER();
	struct peer p;
	peer_start(&p, "starttls", "smtp_test_peer.Record", "starttls");
	const char *to[] = {"alice@example.org"};
	struct smtp_message msg = {.from = "coffer@example.com",
				   .to = to,
				   .to_count = 1,
				   .data = plain_message,
				   .size = strlen(plain_message)};
	const char *error = NULL;

	/* The server requires STARTTLS; a plain client is refused. */
	struct smtp_settings set = settings(&p, SMTP_SECURITY_NONE);
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	print_message("plain: %s\n", error);
	assert_non_null(strstr(error, "530"));
	assert_non_null(strstr(error, "STARTTLS"));

	/* A self-signed certificate is refused when verifying. */
	set = settings(&p, SMTP_SECURITY_STARTTLS);
	set.verify_certificate = true;
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	print_message("verify: %s\n", error);
	assert_non_null(strstr(error, "certificate"));
	assert_null(strstr(error, "server said"));

	/* Wrong password: the server's answer, never the password. */
	set.verify_certificate = false;
	set.user = "alice";
	set.password = "wrong-Pa55word";
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	print_message("auth: %s\n", error);
	assert_non_null(strstr(error, "535"));
	assert_null(strstr(error, "wrong-Pa55word"));
	assert_int_equal(delivered_count(&p), 0);

	set.password = "s3cret";
	if (smtp_send(&set, &msg, &error) < 0)
		fail_msg("smtp_send: %s", error);
	size_t len;
	char *envelope;
	char *stored = delivered(&p, &len, &envelope);
	assert_int_equal(len, strlen(plain_message));
	assert_memory_equal(stored, plain_message, len);
	assert_non_null(strstr(envelope, "\"tls\": true, \"login\": \"alice\""));
	mem_free(envelope);
	mem_free(stored);
	peer_stop(&p);
}

static void test_implicit_tls(void **state)
{
	REQUIRE_PEER();
	struct peer p;
	peer_start(&p, "smtps", "smtp_test_peer.Record", "smtps");
	const char *to[] = {"alice@example.org"};
	struct smtp_message msg = {.from = "",
				   .to = to,
				   .to_count = 1,
				   .data = plain_message,
				   .size = strlen(plain_message)};
	const char *error = NULL;
	struct smtp_settings set = settings(&p, SMTP_SECURITY_TLS);
	if (smtp_send(&set, &msg, &error) < 0)
		fail_msg("smtp_send: %s", error);
	size_t len;
	char *envelope;
	char *stored = delivered(&p, &len, &envelope);
	assert_memory_equal(stored, plain_message, len);
	assert_non_null(strstr(envelope, "\"mail_from\": \"<>\""));
	assert_non_null(strstr(envelope, "\"tls\": true"));
	mem_free(envelope);
	mem_free(stored);
	peer_stop(&p);
}

static void test_bad_input(void **state)
{
	struct smtp_settings set = {.host = "127.0.0.1", .port = 25};
	const char *to[] = {"alice@example.org", "x@example.org\r\nRSET"};
	struct smtp_message msg = {
		.from = "a@example.com", .to = to, .to_count = 1, .data = "x", .size = 1};
	const char *error = NULL;
	msg.to_count = 2;
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	assert_non_null(strstr(error, "recipient"));
	msg.to_count = 0;
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	assert_non_null(strstr(error, "no recipients"));
	msg.to_count = 1;
	msg.from = "<a@example.com>";
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	assert_non_null(strstr(error, "sender"));
	msg.from = "a@example.com";
	set.port = 0;
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	set.port = 25;
	set.host = "evil/path";
	assert_int_equal(smtp_send(&set, &msg, &error), -1);
	assert_non_null(strstr(error, "evil/path"));
}

/* Python's email package (policy=default, which decodes RFC 2047) agrees. */
static void test_build_text_message(void **state)
{
	char long_subject[1200];
	memset(long_subject, 'x', sizeof(long_subject) - 1);
	long_subject[sizeof(long_subject) - 1] = '\0';
	char *body = mem_alloc(3001);
	memset(body, 'b', 3000);
	body[3000] = '\0';
	body[10] = '\n';
	struct {
		const char *from, *to, *subject, *body;
		const char *exp_from_name, *exp_subject;
	} cases[] = {
		{"Cöffer Archive <coffer@example.com>", "Ålice <alice@example.org>",
		 "Grüße ✓ and a rather long subject line that needs more than one encoded word "
		 "to fit into the 76 character limit",
		 "Hällo\r\nline 2\rline 3\n", "Cöffer Archive",
		 "Grüße ✓ and a rather long subject line that needs more than one encoded word "
		 "to fit into the 76 character limit"},
		{"coffer@example.com", "alice@example.org", "injected\r\nBcc: eve@example.org", "x",
		 "", "injected  Bcc: eve@example.org"},
		{"\"Cöffer, Inc.\" <c@example.com>", "alice@example.org", long_subject, body,
		 "Cöffer, Inc.", long_subject},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *m = smtp_build_text_message(cases[i].from, cases[i].to, cases[i].subject,
						  cases[i].body);
		/* CRLF only, lines within 998 bytes, nothing but ASCII in headers. */
		const char *end_of_headers = strstr(m, "\r\n\r\n");
		assert_non_null(end_of_headers);
		for (const char *p = m; p < end_of_headers; p++)
			assert_true((unsigned char)*p < 0x80);
		size_t line = 0;
		for (const char *p = m; *p != '\0'; p++) {
			if (*p == '\n') {
				assert_true(p > m && p[-1] == '\r');
				line = 0;
			} else if (*p != '\r') {
				assert_true(++line <= 998);
			} else {
				assert_int_equal(p[1], '\n');
			}
		}
		assert_non_null(strstr(m, "\r\nMIME-Version: 1.0\r\n"));
		assert_non_null(strstr(m, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
		assert_non_null(strstr(m, "\r\nContent-Transfer-Encoding: 8bit\r\n"));
		assert_non_null(strstr(m, "\r\nMessage-ID: <"));
		assert_true(strncmp(m, "Date: ", 6) == 0);
		assert_null(strstr(m, "\r\nBcc:"));

		char *path = mem_printf("%s/built-%zu.eml", tmpdir, i);
		const char *error;
		assert_int_equal(file_write_atomic(path, m, strlen(m), 0600, &error), 0);
		/* argv: file, expected display name, expected subject */
		const char *py = "import sys, email, email.policy, email.utils\n"
				 "m = email.message_from_binary_file(open(sys.argv[1], 'rb'),"
				 " policy=email.policy.default)\n"
				 "assert m['Subject'] == sys.argv[3], repr(m['Subject'])\n"
				 "assert m['From'].addresses[0].display_name == sys.argv[2],"
				 " repr(m['From'].addresses[0].display_name)\n"
				 "assert email.utils.parsedate_to_datetime(m['Date']) is not None\n"
				 "assert m.get_content_type() == 'text/plain'\n"
				 "assert m.get_content_charset() == 'utf-8'\n"
				 "assert not m.defects, m.defects\n";
		char *script = mem_printf("%s/check.py", tmpdir);
		assert_int_equal(file_write_atomic(script, py, strlen(py), 0600, &error), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			execl(PYTHON, PYTHON, script, path, cases[i].exp_from_name,
			      cases[i].exp_subject, (char *)NULL);
			_exit(127);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("python's email parser disagrees with message %zu:\n%s", i, m);
		mem_free(script);
		mem_free(path);
		mem_free(m);
	}
	/* The body: line ends normalised, final CRLF added. */
	char *m = smtp_build_text_message("a@b.example", "c@d.example", "s", "one\rtwo\nthree");
	assert_non_null(strstr(m, "\r\n\r\none\r\ntwo\r\nthree\r\n"));
	assert_true(strlen(strstr(m, "\r\n\r\n")) == strlen("\r\n\r\none\r\ntwo\r\nthree\r\n"));
	assert_non_null(strstr(m, "@b.example>\r\n"));
	mem_free(m);
	mem_free(body);
}

static int setup(void **state)
{
	tmpdir = test_tmpdir_create("smtp");
	have_aiosmtpd = system(PYTHON " -c 'import aiosmtpd' 2>/dev/null") == 0;
	cert_path = mem_printf("%s/cert.pem", tmpdir);
	key_path = mem_printf("%s/key.pem", tmpdir);
	char *cmd = mem_printf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
			       "-nodes -days 2 -subj /CN=localhost -keyout %s -out %s "
			       ">/dev/null 2>&1",
			       key_path, cert_path);
	int rc = system(cmd);
	mem_free(cmd);
	return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	int rc = test_tmpdir_remove(&tmpdir);
	mem_free(cert_path);
	mem_free(key_path);
	return rc == 0 ? 0 : -1;
}

static void test_security_parse(void **state)
{
	(void)state;
	enum smtp_security sec = SMTP_SECURITY_NONE;
	assert_int_equal(smtp_security_parse(NULL, &sec), 0);
	assert_int_equal(sec, SMTP_SECURITY_STARTTLS);
	assert_int_equal(smtp_security_parse("tls", &sec), 0);
	assert_int_equal(sec, SMTP_SECURITY_TLS);
	assert_int_equal(smtp_security_parse("none", &sec), 0);
	assert_int_equal(sec, SMTP_SECURITY_NONE);
	assert_int_equal(smtp_security_parse("starttls", &sec), 0);
	assert_int_equal(sec, SMTP_SECURITY_STARTTLS);
	assert_int_equal(smtp_security_parse("ssl", &sec), -1);
	assert_int_equal(sec, SMTP_SECURITY_STARTTLS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_send_to_aiosmtpd_mailbox, peer_cleanup),
		cmocka_unit_test_teardown(test_send_exact_bytes, peer_cleanup),
		cmocka_unit_test_teardown(test_connection_refused, peer_cleanup),
		cmocka_unit_test_teardown(test_recipient_rejected, peer_cleanup),
		cmocka_unit_test_teardown(test_timeout, peer_cleanup),
		cmocka_unit_test_teardown(test_starttls, peer_cleanup),
		cmocka_unit_test_teardown(test_implicit_tls, peer_cleanup),
		cmocka_unit_test_teardown(test_bad_input, peer_cleanup),
		cmocka_unit_test_teardown(test_build_text_message, peer_cleanup),
		cmocka_unit_test(test_security_parse),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
