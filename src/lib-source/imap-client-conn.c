/* imap-client-conn: a blocking IMAP client connection (see the header). */
#include "imap-client-conn.h"
#include "base64.h"
#include "imap-quote.h"
#include "mem.h"
#include "str.h"
#include "tls.h"
#include "tstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct imap_client_conn {
	struct tls_stream *stream;
	unsigned char buf[65536];
	size_t buf_pos, buf_len;
	unsigned int tag_counter;
	char tag[16];
	struct str *line;
};

static int imap_client_conn_fill(struct imap_client_conn *conn, const char **error_r)
{
	ssize_t n = tls_stream_read(conn->stream, conn->buf, sizeof(conn->buf), error_r);
	if (n == 0)
		*error_r = tstr_printf("%s: the server closed the connection",
				       tls_stream_name(conn->stream));
	if (n <= 0)
		return -1;
	conn->buf_pos = 0;
	conn->buf_len = (size_t)n;
	return 0;
}

ssize_t imap_client_conn_read(struct imap_client_conn *conn, unsigned char *dest, size_t size,
			      const char **error_r)
{
	if (conn->buf_pos < conn->buf_len) {
		size_t n = conn->buf_len - conn->buf_pos;
		if (n > size)
			n = size;
		memcpy(dest, conn->buf + conn->buf_pos, n);
		conn->buf_pos += n;
		return (ssize_t)n;
	}
	/* straight into the caller's buffer, no copy */
	ssize_t n = tls_stream_read(conn->stream, dest, size, error_r);
	if (n == 0) {
		*error_r = tstr_printf("%s: the server closed the connection",
				       tls_stream_name(conn->stream));
		return -1;
	}
	return n;
}

int imap_client_conn_read_line(struct imap_client_conn *conn, const char **error_r)
{
	str_truncate(conn->line, 0);
	for (;;) {
		if (conn->buf_pos == conn->buf_len && imap_client_conn_fill(conn, error_r) < 0)
			return -1;
		unsigned char *start = conn->buf + conn->buf_pos;
		unsigned char *lf = memchr(start, '\n', conn->buf_len - conn->buf_pos);
		size_t n = lf != NULL ? (size_t)(lf - start) : conn->buf_len - conn->buf_pos;
		str_append_n(conn->line, start, n);
		conn->buf_pos += n + (lf != NULL);
		if (str_len(conn->line) > IMAP_CLIENT_CONN_LINE_MAX) {
			*error_r = "the server sent a response line longer than 1 MiB";
			return -1;
		}
		if (lf != NULL)
			break;
	}
	size_t len = str_len(conn->line);
	if (len > 0 && str_c(conn->line)[len - 1] == '\r')
		str_truncate(conn->line, len - 1);
	return 0;
}

const char *imap_client_conn_line(const struct imap_client_conn *conn, size_t *len_r)
{
	if (len_r != NULL)
		*len_r = str_len(conn->line);
	return str_c(conn->line);
}

const char *imap_client_conn_name(const struct imap_client_conn *conn)
{
	return tls_stream_name(conn->stream);
}

long long imap_client_conn_literal_at_end(const char *line, size_t len)
{
	if (len < 3 || line[len - 1] != '}')
		return -1;
	size_t i = len - 2;
	if (line[i] == '+')
		i--;
	size_t end = i + 1;
	while (i > 0 && line[i] >= '0' && line[i] <= '9')
		i--;
	if (line[i] != '{' || i + 1 == end)
		return -1;
	return strtoll(line + i + 1, NULL, 10);
}

/* A whole response line: a literal inside it (a folder name) is read and
 * put back in as a quoted string, so that the line parses without it. */
static int imap_client_conn_read_response_line(struct imap_client_conn *conn, const char **error_r)
{
	if (imap_client_conn_read_line(conn, error_r) < 0)
		return -1;
	long long lit;
	while ((lit = imap_client_conn_literal_at_end(str_c(conn->line), str_len(conn->line))) >=
	       0) {
		if (lit > IMAP_CLIENT_CONN_LINE_MAX) {
			*error_r = "the server sent a literal longer than 1 MiB in a response";
			return -1;
		}
		const char *text = str_c(conn->line);
		char *head = mem_strndup(text, (size_t)(strrchr(text, '{') - text));
		unsigned char *data = mem_alloc((size_t)lit + 1);
		size_t got = 0;
		while (got < (size_t)lit) {
			ssize_t n =
				imap_client_conn_read(conn, data + got, (size_t)lit - got, error_r);
			if (n < 0) {
				mem_free(data);
				mem_free(head);
				return -1;
			}
			got += (size_t)n;
		}
		struct str *rebuilt = str_create(strlen(head) + (size_t)lit + 16);
		str_append(rebuilt, head);
		imap_quote_append_string(rebuilt, data, (size_t)lit);
		mem_free(data);
		mem_free(head);
		if (imap_client_conn_read_line(conn, error_r) < 0) {
			str_destroy(&rebuilt);
			return -1;
		}
		str_append_n(rebuilt, str_c(conn->line), str_len(conn->line));
		str_truncate(conn->line, 0);
		str_append_n(conn->line, str_c(rebuilt), str_len(rebuilt));
		str_destroy(&rebuilt);
	}
	return 0;
}

int imap_client_conn_write(struct imap_client_conn *conn, const void *data, size_t len,
			   const char **error_r)
{
	return tls_stream_write(conn->stream, data, len, error_r);
}

const char *imap_client_conn_send(struct imap_client_conn *conn, const char *command,
				  const char **error_r)
{
	snprintf(conn->tag, sizeof(conn->tag), "c%u", ++conn->tag_counter);
	struct str *text = str_create(strlen(command) + 24);
	str_printfa(text, "%s %s\r\n", conn->tag, command);
	int ret = tls_stream_write(conn->stream, str_c(text), str_len(text), error_r);
	/* the command may carry a password */
	size_t len = str_len(text);
	char *sent = str_steal(&text);
	memset(sent, 0, len);
	mem_free(sent);
	return ret < 0 ? NULL : conn->tag;
}

int imap_client_conn_wait(struct imap_client_conn *conn, const char *tag, bool continuation,
			  imap_client_conn_untagged_fn *fn, void *context, const char **error_r)
{
	char saved[sizeof(conn->tag)];
	snprintf(saved, sizeof(saved), "%s", tag);
	size_t tag_len = strlen(saved);
	for (;;) {
		if (imap_client_conn_read_response_line(conn, error_r) < 0)
			return -1;
		const char *line = str_c(conn->line);
		if (continuation && line[0] == '+')
			return 2;
		if (strncmp(line, saved, tag_len) == 0 && line[tag_len] == ' ') {
			const char *status = line + tag_len + 1;
			if (strncasecmp(status, "OK", 2) == 0)
				return 0;
			*error_r = tstr_printf("the server answered: %.500s", status);
			return 1;
		}
		if (strncmp(line, "* BYE", 5) == 0) {
			*error_r =
				tstr_printf("the server closed the connection: %.500s", line + 2);
			return -1;
		}
		if (fn != NULL && line[0] == '*')
			fn(line, context);
	}
}

int imap_client_conn_command(struct imap_client_conn *conn, const char *command,
			     imap_client_conn_untagged_fn *fn, void *context, const char **error_r)
{
	const char *tag = imap_client_conn_send(conn, command, error_r);
	if (tag == NULL)
		return -1;
	return imap_client_conn_wait(conn, tag, false, fn, context, error_r);
}

static int imap_client_conn_open(struct imap_client_conn *conn,
				 const struct imap_client_conn_settings *set, const char **error_r)
{
	struct tls_stream_settings ts = {.host = set->host,
					 .port = set->port,
					 .pinned_fingerprint = set->fingerprint,
					 .ca_file = set->ca_file,
					 .timeout_secs = set->timeout_secs};
	if (tls_stream_connect(&ts, &conn->stream, error_r) < 0)
		return -1;
	if (!set->starttls && tls_stream_start_tls(conn->stream, error_r) < 0)
		return -1;
	if (imap_client_conn_read_line(conn, error_r) < 0)
		return -1;
	if (strncmp(str_c(conn->line), "* OK", 4) != 0) {
		*error_r = tstr_printf("unexpected greeting: %.200s", str_c(conn->line));
		return -1;
	}
	if (set->starttls) {
		int ret = imap_client_conn_command(conn, "STARTTLS", NULL, NULL, error_r);
		if (ret != 0) {
			if (ret > 0)
				*error_r = tstr_printf("STARTTLS refused (never sent in clear): %s",
						       *error_r);
			return -1;
		}
		/* nothing the server sent before TLS may be taken as said over it */
		conn->buf_pos = conn->buf_len = 0;
		if (tls_stream_start_tls(conn->stream, error_r) < 0)
			return -1;
	}
	return 0;
}

int imap_client_conn_connect(const struct imap_client_conn_settings *set,
			     struct imap_client_conn **conn_r, const char **error_r)
{
	struct imap_client_conn *conn = mem_new(struct imap_client_conn);
	conn->line = str_create(1024);
	if (imap_client_conn_open(conn, set, error_r) < 0) {
		imap_client_conn_destroy(&conn);
		*conn_r = NULL;
		return -1;
	}
	*conn_r = conn;
	return 0;
}

int imap_client_conn_login(struct imap_client_conn *conn, const char *authzid, const char *user,
			   const char *password, const char **error_r)
{
	struct str *cmd = str_create(128);
	if (authzid != NULL) {
		size_t a = strlen(authzid), l = strlen(user), p = strlen(password);
		char *plain = mem_alloc(a + l + p + 3);
		memcpy(plain, authzid, a);
		plain[a] = '\0';
		memcpy(plain + a + 1, user, l);
		plain[a + 1 + l] = '\0';
		memcpy(plain + a + l + 2, password, p);
		char *b64 = base64_encode(plain, a + l + p + 2);
		str_printfa(cmd, "AUTHENTICATE PLAIN %s", b64);
		memset(b64, 0, strlen(b64));
		mem_free(b64);
		memset(plain, 0, a + l + p + 2);
		mem_free(plain);
	} else {
		str_append(cmd, "LOGIN ");
		imap_quote_append_astring(cmd, user);
		str_append_c(cmd, ' ');
		imap_quote_append_astring(cmd, password);
	}
	int ret = imap_client_conn_command(conn, str_c(cmd), NULL, NULL, error_r);
	size_t cmd_len = str_len(cmd);
	char *secret = str_steal(&cmd);
	memset(secret, 0, cmd_len);
	mem_free(secret);
	return ret;
}

void imap_client_conn_destroy(struct imap_client_conn **_conn)
{
	struct imap_client_conn *conn = *_conn;
	if (conn == NULL)
		return;
	*_conn = NULL;
	tls_stream_destroy(&conn->stream);
	str_destroy(&conn->line);
	mem_free(conn);
}

void imap_client_conn_logout(struct imap_client_conn **conn)
{
	if (*conn == NULL)
		return;
	const char *error;
	(void)imap_client_conn_command(*conn, "LOGOUT", NULL, NULL, &error);
	imap_client_conn_destroy(conn);
}
