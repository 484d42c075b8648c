/* source-append: APPEND to an IMAP server (see the header). */
#include "source-append.h"
#include "imap-client-conn.h"
#include "imap-date.h"
#include "imap-quote.h"
#include "imap-utf7.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct source_append {
	struct imap_client_conn *conn;
	char delimiter;
	char *folder; /* the current folder, as the server spells it */
	struct str *literal;
};

int source_append_connect(const struct source_append_settings *set, struct source_append **append_r,
			  const char **error_r)
{
	struct imap_client_conn_settings cs = {.host = set->host,
					       .port = set->port,
					       .starttls = set->starttls != 0,
					       .fingerprint = set->fingerprint,
					       .ca_file = set->ca_file,
					       .timeout_secs = set->timeout_secs};
	struct source_append *a = mem_new(struct source_append);
	a->literal = str_create(0);
	a->delimiter = '/';
	*append_r = a;
	if (imap_client_conn_connect(&cs, &a->conn, error_r) < 0)
		return -1;
	int ret = imap_client_conn_login(a->conn, NULL, set->login, set->password, error_r);
	if (ret != 0) {
		if (ret > 0)
			*error_r = tstr_printf("login as %s refused: %s", set->login, *error_r);
		/* no LOGOUT on a connection that never got that far */
		imap_client_conn_destroy(&a->conn);
		return -1;
	}
	return 0;
}

struct source_append_listing {
	struct source_append *a;
	unsigned int found;
};

/* `* LIST (flags) "d" name`: the delimiter; context counts the folders. */
static void source_append_on_list(const char *line, void *context)
{
	struct source_append_listing *listing = context;
	struct source_append *a = listing->a;
	if (strncasecmp(line, "* LIST ", 7) != 0)
		return;
	const char *p = strchr(line, ')');
	if (p == NULL)
		return;
	p++;
	while (*p == ' ')
		p++;
	if (p[0] == '"' && p[1] == '\\' && p[2] != '\0' && p[3] == '"')
		a->delimiter = p[2];
	else if (p[0] == '"' && p[1] != '\0' && p[2] == '"')
		a->delimiter = p[1];
	listing->found++;
}

int source_append_folder(struct source_append *a, const char *folder, const char **error_r)
{
	struct source_append_listing listing = {.a = a};
	/* the delimiter first: LIST "" "" */
	int ret = imap_client_conn_command(a->conn, "LIST \"\" \"\"", source_append_on_list,
					   &listing, error_r);
	if (ret != 0)
		return -1;
	struct str *name = str_create(64), *cmd = str_create(128);
	char *path = mem_strdup(folder);
	for (char *p = path; *p != '\0'; p++) {
		if (*p == '/')
			*p = a->delimiter;
	}
	if (imap_utf7_encode(path, name, error_r) < 0) {
		mem_free(path);
		str_destroy(&name);
		str_destroy(&cmd);
		*error_r = tstr_printf("folder %s: %s", folder, *error_r);
		return -1;
	}
	mem_free(path);
	listing.found = 0;
	str_append(cmd, "LIST \"\" ");
	imap_quote_append_astring(cmd, str_c(name));
	ret = imap_client_conn_command(a->conn, str_c(cmd), source_append_on_list, &listing,
				       error_r);
	if (ret == 0 && listing.found == 0) {
		str_truncate(cmd, 0);
		str_append(cmd, "CREATE ");
		imap_quote_append_astring(cmd, str_c(name));
		ret = imap_client_conn_command(a->conn, str_c(cmd), NULL, NULL, error_r);
		if (ret > 0)
			*error_r = tstr_printf("folder %s cannot be created: %s", folder, *error_r);
	}
	mem_free(a->folder);
	a->folder = mem_strdup(str_c(name));
	str_destroy(&name);
	str_destroy(&cmd);
	return ret == 0 ? 0 : -1;
}

/* The message with every bare LF made CRLF, into a->literal. */
static void source_append_canonical(struct source_append *a, const unsigned char *data, size_t len)
{
	str_truncate(a->literal, 0);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) {
			str_append_n(a->literal, data + start, i - start);
			str_append(a->literal, "\r\n");
			start = i + 1;
		}
	}
	str_append_n(a->literal, data + start, len - start);
}

int source_append_message(struct source_append *a, const void *data, size_t len, const char *flags,
			  time_t internal_date, const char **error_r)
{
	if (a->folder == NULL) {
		*error_r = "no folder chosen";
		return -1;
	}
	source_append_canonical(a, data, len);
	struct str *cmd = str_create(128);
	str_append(cmd, "APPEND ");
	imap_quote_append_astring(cmd, a->folder);
	if (flags != NULL && flags[0] != '\0')
		str_printfa(cmd, " (%s)", flags);
	if (internal_date > 0) {
		str_append_c(cmd, ' ');
		imap_date_append_datetime(cmd, internal_date, 0);
	}
	str_printfa(cmd, " {%zu}", str_len(a->literal));
	const char *tag = imap_client_conn_send(a->conn, str_c(cmd), error_r);
	str_destroy(&cmd);
	if (tag == NULL)
		return -1;
	char saved[16];
	snprintf(saved, sizeof(saved), "%s", tag);
	int ret = imap_client_conn_wait(a->conn, saved, true, NULL, NULL, error_r);
	if (ret != 2)
		return ret; /* refused before the bytes: too large, no such folder */
	if (imap_client_conn_write(a->conn, str_c(a->literal), str_len(a->literal), error_r) < 0 ||
	    imap_client_conn_write(a->conn, "\r\n", 2, error_r) < 0)
		return -1;
	str_truncate(a->literal, 0);
	return imap_client_conn_wait(a->conn, saved, false, NULL, NULL, error_r);
}

void source_append_destroy(struct source_append **_a)
{
	struct source_append *a = *_a;
	if (a == NULL)
		return;
	*_a = NULL;
	imap_client_conn_logout(&a->conn);
	str_destroy(&a->literal);
	mem_free(a->folder);
	mem_free(a);
}
