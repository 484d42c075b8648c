#include "source-imap.h"
#include "array.h"
#include "base64.h"
#include "imap-date.h"
#include "imap-quote.h"
#include "imap-utf7.h"
#include "mem.h"
#include "str.h"
#include "tls.h"
#include "tstr.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest response line kept (a LIST or FETCH line, not a message). */
#define SOURCE_IMAP_LINE_MAX (1024 * 1024)
/* UIDs per STORE/EXPUNGE command when deleting. */
#define SOURCE_IMAP_DELETE_CHUNK 500

/* A folder of a mailbox as the state knows it. */
struct source_imap_folder {
	char *mailbox, *name; /* the name as the server spells it */
	uint32_t uidvalidity, last_uid;
	/* a message of this run failed to be read: last_uid stays before it */
	bool blocked;
	ARRAY(uint32_t) deletable;
};

/* A message handed to the pipeline: its key is its index + 1. */
struct source_imap_sent {
	size_t folder;
	uint32_t uid;
	/* a failure that will not change by trying again (too large, gone) */
	bool permanent;
};

struct source_imap_listed {
	char *name, *path;
};

struct source_imap_pending {
	uint32_t uid;
	uint64_t size;
	int64_t date;
};

struct source_imap {
	struct source_imap_settings set;
	char *failure;

	pthread_mutex_t lock; /* folders, sent: the writer thread's events */
	ARRAY(struct source_imap_folder) folders;
	ARRAY(struct source_imap_sent) sent;

	/* the reading side (the import's reading thread) */
	struct tls_stream *stream;
	unsigned char buf[65536];
	size_t buf_pos, buf_len;
	unsigned int tag_counter;
	struct str *line;
	size_t mailbox; /* index of the mailbox being read */
	bool mailbox_open;
	ARRAY(struct source_imap_listed) listed;
	size_t listed_next;
	size_t folder; /* index in folders of the folder being read */
	bool folder_open;
	ARRAY(struct source_imap_pending) pending;
	size_t pending_next;
	uint64_t literal_left;
	char fetch_tag[16]; /* a FETCH whose tagged answer is still to come */
	/* strings of the message last returned */
	char *label, *path, *reason, *owner;
	const char *owners[1];
};

static const char *source_imap_mailbox_name(const struct source_imap *s, size_t i)
{
	return s->set.admin == SOURCE_IMAP_ADMIN_NONE ? s->set.login : s->set.mailboxes[i];
}

static const char *source_imap_owner(const struct source_imap *s, size_t i)
{
	if (s->set.owners != NULL && s->set.owners[i] != NULL && s->set.owners[i][0] != '\0')
		return s->set.owners[i];
	return source_imap_mailbox_name(s, i);
}

static size_t source_imap_mailbox_count(const struct source_imap *s)
{
	return s->set.admin == SOURCE_IMAP_ADMIN_NONE ? 1 : s->set.mailbox_count;
}

/* ---- state ---- */

static size_t source_imap_folder_get(struct source_imap *s, const char *mailbox, const char *name)
{
	for (size_t i = 0; i < s->folders.count; i++) {
		if (strcmp(s->folders.items[i].mailbox, mailbox) == 0 &&
		    strcmp(s->folders.items[i].name, name) == 0)
			return i;
	}
	struct source_imap_folder *f = array_push(&s->folders);
	f->mailbox = mem_strdup(mailbox);
	f->name = mem_strdup(name);
	return s->folders.count - 1;
}

/* One line per folder: uidvalidity, last uid, mailbox, name; tabs between
 * (IMAP names never hold a tab or a newline here: they are mUTF-7). */
static void source_imap_state_load(struct source_imap *s, const char *state)
{
	const char *p = state;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		char *line = mem_strndup(p, len);
		unsigned long validity, last;
		char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL,
		     *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
		if (t3 != NULL && sscanf(line, "%lu\t%lu\t", &validity, &last) == 2) {
			*t3 = '\0';
			size_t i = source_imap_folder_get(s, t2 + 1, t3 + 1);
			s->folders.items[i].uidvalidity = (uint32_t)validity;
			s->folders.items[i].last_uid = (uint32_t)last;
		}
		mem_free(line);
		p = end != NULL ? end + 1 : NULL;
	}
}

char *source_imap_state(struct source_imap *s)
{
	struct str *out = str_create(256);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->folders.count; i++) {
		const struct source_imap_folder *f = &s->folders.items[i];
		if (f->uidvalidity == 0)
			continue;
		str_printfa(out, "%" PRIu32 "\t%" PRIu32 "\t%s\t%s\n", f->uidvalidity, f->last_uid,
			    f->mailbox, f->name);
	}
	pthread_mutex_unlock(&s->lock);
	return str_steal(&out);
}

struct source_imap *source_imap_create(const struct source_imap_settings *set, const char *state)
{
	struct source_imap *s = mem_new(struct source_imap);
	s->set = *set;
	if (s->set.master_separator == NULL || s->set.master_separator[0] == '\0')
		s->set.master_separator = "*";
	if (s->set.max_message_size == 0)
		s->set.max_message_size = ARCHIVE_IMPORT_MAX_MESSAGE;
	pthread_mutex_init(&s->lock, NULL);
	s->line = str_create(1024);
	source_imap_state_load(s, state);
	return s;
}

static void source_imap_clear_listed(struct source_imap *s)
{
	for (size_t i = 0; i < s->listed.count; i++) {
		mem_free(s->listed.items[i].name);
		mem_free(s->listed.items[i].path);
	}
	array_clear(&s->listed);
	s->listed_next = 0;
}

static void source_imap_clear_current(struct source_imap *s)
{
	mem_free(s->label);
	mem_free(s->path);
	mem_free(s->reason);
	s->label = s->path = s->reason = NULL;
}

void source_imap_destroy(struct source_imap **src)
{
	struct source_imap *s = *src;
	if (s == NULL)
		return;
	tls_stream_destroy(&s->stream);
	source_imap_clear_listed(s);
	array_free(&s->listed);
	array_free(&s->pending);
	source_imap_clear_current(s);
	mem_free(s->owner);
	for (size_t i = 0; i < s->folders.count; i++) {
		mem_free(s->folders.items[i].mailbox);
		mem_free(s->folders.items[i].name);
		array_free(&s->folders.items[i].deletable);
	}
	array_free(&s->folders);
	array_free(&s->sent);
	str_destroy(&s->line);
	mem_free(s->failure);
	pthread_mutex_destroy(&s->lock);
	mem_free(s);
	*src = NULL;
}

const char *source_imap_failure(struct source_imap *s)
{
	return s->failure;
}

/* From the import's writer thread, after the commit, in order. */
void source_imap_event(struct source_imap *s, const struct archive_import_event *ev)
{
	if (ev->key == 0 || ev->type == ARCHIVE_IMPORT_PROGRESS)
		return;
	pthread_mutex_lock(&s->lock);
	if (ev->key <= s->sent.count) {
		struct source_imap_sent *m = &s->sent.items[ev->key - 1];
		struct source_imap_folder *f = &s->folders.items[m->folder];
		bool done = ev->type != ARCHIVE_IMPORT_SKIPPED;
		if (done && (f->deletable.count == 0 ||
			     f->deletable.items[f->deletable.count - 1] != m->uid))
			array_append(&f->deletable, m->uid);
		if (!done && !m->permanent)
			f->blocked = true;
		if (!f->blocked && m->uid > f->last_uid)
			f->last_uid = m->uid;
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- the connection ---- */

static int source_imap_fail(struct source_imap *s, const char *error, const char **error_r)
{
	mem_free(s->failure);
	s->failure = mem_strdup(error);
	*error_r = s->failure;
	tls_stream_destroy(&s->stream);
	s->mailbox_open = false;
	return -1;
}

static int source_imap_fill(struct source_imap *s, const char **error_r)
{
	ssize_t n = tls_stream_read(s->stream, s->buf, sizeof(s->buf), error_r);
	if (n == 0)
		*error_r = tstr_printf("%s: the server closed the connection",
				       tls_stream_name(s->stream));
	if (n <= 0)
		return -1;
	s->buf_pos = 0;
	s->buf_len = (size_t)n;
	return 0;
}

/* Up to size bytes of what the server sent (buffered first). */
static ssize_t source_imap_read_raw(struct source_imap *s, unsigned char *dest, size_t size,
				    const char **error_r)
{
	if (s->buf_pos == s->buf_len && source_imap_fill(s, error_r) < 0)
		return -1;
	size_t n = s->buf_len - s->buf_pos;
	if (n > size)
		n = size;
	memcpy(dest, s->buf + s->buf_pos, n);
	s->buf_pos += n;
	return (ssize_t)n;
}

/* One line into s->line, without its CRLF. */
static int source_imap_read_line(struct source_imap *s, const char **error_r)
{
	str_truncate(s->line, 0);
	for (;;) {
		if (s->buf_pos == s->buf_len && source_imap_fill(s, error_r) < 0)
			return -1;
		unsigned char *start = s->buf + s->buf_pos;
		unsigned char *lf = memchr(start, '\n', s->buf_len - s->buf_pos);
		size_t n = lf != NULL ? (size_t)(lf - start) : s->buf_len - s->buf_pos;
		str_append_n(s->line, start, n);
		s->buf_pos += n + (lf != NULL);
		if (str_len(s->line) > SOURCE_IMAP_LINE_MAX) {
			*error_r = "the server sent a response line longer than 1 MiB";
			return -1;
		}
		if (lf != NULL)
			break;
	}
	size_t len = str_len(s->line);
	if (len > 0 && str_c(s->line)[len - 1] == '\r')
		str_truncate(s->line, len - 1);
	return 0;
}

/* The size of a literal that ends the line ("{123}" or "{123+}"), or -1. */
static long long source_imap_literal_at_end(const char *line, size_t len)
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
static int source_imap_read_response_line(struct source_imap *s, const char **error_r)
{
	if (source_imap_read_line(s, error_r) < 0)
		return -1;
	long long lit;
	while ((lit = source_imap_literal_at_end(str_c(s->line), str_len(s->line))) >= 0) {
		if (lit > SOURCE_IMAP_LINE_MAX) {
			*error_r = "the server sent a literal longer than 1 MiB in a response";
			return -1;
		}
		char *head = mem_strndup(str_c(s->line),
					 (size_t)(strrchr(str_c(s->line), '{') - str_c(s->line)));
		unsigned char *data = mem_alloc((size_t)lit + 1);
		size_t got = 0;
		while (got < (size_t)lit) {
			ssize_t n = source_imap_read_raw(s, data + got, (size_t)lit - got, error_r);
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
		if (source_imap_read_line(s, error_r) < 0) {
			str_destroy(&rebuilt);
			return -1;
		}
		str_append_n(rebuilt, str_c(s->line), str_len(s->line));
		str_truncate(s->line, 0);
		str_append_n(s->line, str_c(rebuilt), str_len(rebuilt));
		str_destroy(&rebuilt);
	}
	return 0;
}

static const char *source_imap_send(struct source_imap *s, const char *command,
				    const char **error_r)
{
	static _Thread_local char tag[16];
	snprintf(tag, sizeof(tag), "c%u", ++s->tag_counter);
	char *text = mem_printf("%s %s\r\n", tag, command);
	int ret = tls_stream_write(s->stream, text, strlen(text), error_r);
	mem_free(text);
	return ret < 0 ? NULL : tag;
}

typedef void source_imap_untagged_fn(struct source_imap *s, const char *line, void *context);

/* Reads until the tagged answer: 0 for OK, -1 with the server's words. */
static int source_imap_wait(struct source_imap *s, const char *tag, source_imap_untagged_fn *fn,
			    void *context, const char **error_r)
{
	size_t tag_len = strlen(tag);
	for (;;) {
		if (source_imap_read_response_line(s, error_r) < 0)
			return -1;
		const char *line = str_c(s->line);
		if (strncmp(line, tag, tag_len) == 0 && line[tag_len] == ' ') {
			const char *status = line + tag_len + 1;
			if (strncasecmp(status, "OK", 2) == 0)
				return 0;
			*error_r = tstr_printf("the server answered: %s", status);
			return 1;
		}
		if (strncmp(line, "* BYE", 5) == 0) {
			*error_r = tstr_printf("the server closed the connection: %s", line + 2);
			return -1;
		}
		if (fn != NULL && line[0] == '*')
			fn(s, line, context);
	}
}

/* A command and its answer: 0 OK, 1 NO/BAD (*error_r), -1 connection. */
static int source_imap_command(struct source_imap *s, const char *command,
			       source_imap_untagged_fn *fn, void *context, const char **error_r)
{
	const char *tag = source_imap_send(s, command, error_r);
	if (tag == NULL)
		return -1;
	char saved[16];
	snprintf(saved, sizeof(saved), "%s", tag);
	return source_imap_wait(s, saved, fn, context, error_r);
}

static const char *source_imap_login_command(struct source_imap *s, size_t mailbox)
{
	const struct source_imap_settings *set = &s->set;
	struct str *cmd = str_create(128);
	if (set->admin == SOURCE_IMAP_ADMIN_AUTHZID) {
		const char *authz = source_imap_mailbox_name(s, mailbox);
		size_t a = strlen(authz), l = strlen(set->login), p = strlen(set->password);
		char *plain = mem_alloc(a + l + p + 3);
		memcpy(plain, authz, a);
		plain[a] = '\0';
		memcpy(plain + a + 1, set->login, l);
		plain[a + 1 + l] = '\0';
		memcpy(plain + a + l + 2, set->password, p);
		char *b64 = base64_encode(plain, a + l + p + 2);
		str_printfa(cmd, "AUTHENTICATE PLAIN %s", b64);
		mem_free(b64);
		memset(plain, 0, a + l + p + 2);
		mem_free(plain);
	} else {
		const char *user =
			set->admin == SOURCE_IMAP_ADMIN_MASTER
				? tstr_printf("%s%s%s", source_imap_mailbox_name(s, mailbox),
					      set->master_separator, set->login)
				: set->login;
		str_append(cmd, "LOGIN ");
		imap_quote_append_astring(cmd, user);
		str_append_c(cmd, ' ');
		imap_quote_append_astring(cmd, set->password);
	}
	const char *ret = tstr_dup(str_c(cmd));
	str_destroy(&cmd);
	return ret;
}

/* Connected, TLS on, logged in to the mailbox. */
static int source_imap_open_mailbox(struct source_imap *s, size_t mailbox, const char **error_r)
{
	const struct source_imap_settings *set = &s->set;
	struct tls_stream_settings ts = {.host = set->host,
					 .port = set->port,
					 .pinned_fingerprint = set->fingerprint,
					 .ca_file = set->ca_file,
					 .timeout_secs = set->timeout_secs};
	s->buf_pos = s->buf_len = 0;
	s->fetch_tag[0] = '\0';
	s->literal_left = 0;
	if (tls_stream_connect(&ts, &s->stream, error_r) < 0)
		return -1;
	if (!set->starttls && tls_stream_start_tls(s->stream, error_r) < 0)
		return -1;
	if (source_imap_read_line(s, error_r) < 0)
		return -1;
	if (strncmp(str_c(s->line), "* OK", 4) != 0) {
		*error_r = tstr_printf("unexpected greeting: %.200s", str_c(s->line));
		return -1;
	}
	if (set->starttls) {
		int ret = source_imap_command(s, "STARTTLS", NULL, NULL, error_r);
		if (ret != 0) {
			if (ret > 0)
				*error_r = tstr_printf("STARTTLS refused (never sent in clear): %s",
						       *error_r);
			return -1;
		}
		/* nothing the server sent before TLS may be taken as said over it */
		s->buf_pos = s->buf_len = 0;
		if (tls_stream_start_tls(s->stream, error_r) < 0)
			return -1;
	}
	int ret =
		source_imap_command(s, source_imap_login_command(s, mailbox), NULL, NULL, error_r);
	if (ret != 0) {
		if (ret > 0)
			*error_r = tstr_printf("mailbox %s: login refused: %s",
					       source_imap_mailbox_name(s, mailbox), *error_r);
		return -1;
	}
	return 0;
}

static void source_imap_close(struct source_imap *s)
{
	if (s->stream != NULL) {
		const char *error;
		(void)source_imap_command(s, "LOGOUT", NULL, NULL, &error);
	}
	tls_stream_destroy(&s->stream);
	s->mailbox_open = false;
	s->folder_open = false;
	source_imap_clear_listed(s);
}

/* ---- parsing the few responses read ---- */

/* An atom, a quoted string or NIL at *p: a new string (NULL for NIL). */
static char *source_imap_token(const char **p)
{
	const char *q = *p;
	while (*q == ' ')
		q++;
	if (*q == '"') {
		struct str *out = str_create(64);
		for (q++; *q != '\0' && *q != '"'; q++) {
			if (*q == '\\' && q[1] != '\0')
				q++;
			str_append_c(out, *q);
		}
		*p = *q == '"' ? q + 1 : q;
		return str_steal(&out);
	}
	const char *start = q;
	while (*q != '\0' && *q != ' ' && *q != ')')
		q++;
	*p = q;
	if ((size_t)(q - start) == 3 && strncasecmp(start, "NIL", 3) == 0)
		return NULL;
	return mem_strndup(start, (size_t)(q - start));
}

static bool source_imap_match(const char *path, const char *pattern)
{
	size_t len = strlen(pattern);
	if (len >= 2 && strcmp(pattern + len - 2, "/*") == 0) {
		len -= 2;
		return (strncmp(path, pattern, len) == 0 &&
			(path[len] == '\0' || path[len] == '/'));
	}
	if (strcasecmp(pattern, "INBOX") == 0)
		return strcasecmp(path, "INBOX") == 0;
	return strcmp(path, pattern) == 0;
}

static bool source_imap_wanted(const struct source_imap *s, const char *path)
{
	bool wanted = s->set.folder_count == 0;
	for (size_t i = 0; i < s->set.folder_count && !wanted; i++)
		wanted = source_imap_match(path, s->set.folders[i]);
	for (size_t i = 0; i < s->set.exclude_count && wanted; i++)
		wanted = !source_imap_match(path, s->set.exclude[i]);
	return wanted;
}

/* "* LIST (\HasNoChildren) "." "INBOX.Sent"" */
static void source_imap_on_list(struct source_imap *s, const char *line, void *context)
{
	(void)context;
	if (strncasecmp(line, "* LIST (", 8) != 0)
		return;
	const char *close = strchr(line + 8, ')');
	if (close == NULL)
		return;
	char *flags = mem_strndup(line + 8, (size_t)(close - line - 8));
	bool selectable = strcasestr(flags, "\\Noselect") == NULL &&
			  strcasestr(flags, "\\NonExistent") == NULL;
	mem_free(flags);
	const char *p = close + 1;
	char *delim = source_imap_token(&p);
	char *name = source_imap_token(&p);
	if (selectable && name != NULL) {
		struct str *path = str_create(64);
		const char *error;
		if (imap_utf7_decode(name, path, &error) < 0) {
			str_truncate(path, 0);
			str_append(path, name);
		}
		char *decoded = str_steal(&path);
		if (delim != NULL && delim[0] != '\0' && delim[0] != '/') {
			for (char *c = decoded; *c != '\0'; c++) {
				if (*c == delim[0])
					*c = '/';
			}
		}
		if (strcasecmp(decoded, "INBOX") == 0)
			memcpy(decoded, "INBOX", 5);
		if (source_imap_wanted(s, decoded)) {
			struct source_imap_listed *l = array_push(&s->listed);
			l->name = mem_strdup(name);
			l->path = decoded;
		} else {
			mem_free(decoded);
		}
	}
	mem_free(delim);
	mem_free(name);
}

static void source_imap_on_select(struct source_imap *s, const char *line, void *context)
{
	uint32_t *validity = context;
	const char *p = strcasestr(line, "[UIDVALIDITY ");
	if (p != NULL)
		*validity = (uint32_t)strtoul(p + 13, NULL, 10);
}

static uint64_t source_imap_number_after(const char *line, const char *item)
{
	const char *p = strcasestr(line, item);
	return p != NULL ? strtoull(p + strlen(item), NULL, 10) : 0;
}

/* "* 5 FETCH (UID 17 RFC822.SIZE 1234 INTERNALDATE "...")" */
static void source_imap_on_meta(struct source_imap *s, const char *line, void *context)
{
	uint32_t *after = context;
	if (strcasestr(line, " FETCH (") == NULL)
		return;
	uint64_t uid = source_imap_number_after(line, "UID ");
	if (uid <= *after || uid > UINT32_MAX)
		return;
	struct source_imap_pending *m = array_push(&s->pending);
	m->uid = (uint32_t)uid;
	m->size = source_imap_number_after(line, "RFC822.SIZE ");
	const char *d = strcasestr(line, "INTERNALDATE \"");
	if (d != NULL) {
		char *date = mem_strdup(d + 14);
		char *end = strchr(date, '"');
		time_t t;
		int tz;
		const char *error;
		if (end != NULL) {
			*end = '\0';
			if (imap_date_parse_datetime(date, &t, &tz, &error) == 0)
				m->date = (int64_t)t;
		}
		mem_free(date);
	}
}

static int source_imap_pending_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct source_imap_pending *)a)->uid;
	uint32_t y = ((const struct source_imap_pending *)b)->uid;
	return x < y ? -1 : x > y;
}

/* Opens the next listed folder: its UIDVALIDITY against the state, then
 * the UIDs (with sizes and dates) after the state's last one. 1 opened, 0 a
 * folder that could not be opened (*error_r, reported), -1 connection. */
static int source_imap_open_folder(struct source_imap *s, const struct source_imap_listed *l,
				   const char **error_r)
{
	struct str *cmd = str_create(128);
	str_append(cmd, "EXAMINE ");
	imap_quote_append_astring(cmd, l->name);
	uint32_t validity = 0;
	int ret = source_imap_command(s, str_c(cmd), source_imap_on_select, &validity, error_r);
	str_destroy(&cmd);
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	pthread_mutex_lock(&s->lock);
	s->folder = source_imap_folder_get(s, source_imap_mailbox_name(s, s->mailbox), l->name);
	struct source_imap_folder *f = &s->folders.items[s->folder];
	if (f->uidvalidity != validity) {
		/* a new folder, or the server renumbered it: from the start */
		f->uidvalidity = validity;
		f->last_uid = 0;
	}
	f->blocked = false;
	uint32_t after = s->set.delete_after ? 0 : f->last_uid;
	pthread_mutex_unlock(&s->lock);
	array_clear(&s->pending);
	s->pending_next = 0;
	const char *fetch =
		tstr_printf("UID FETCH %" PRIu32 ":* (UID RFC822.SIZE INTERNALDATE)", after + 1);
	ret = source_imap_command(s, fetch, source_imap_on_meta, &after, error_r);
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	array_sort(&s->pending, source_imap_pending_cmp);
	return 1;
}

/* The rest of a FETCH whose literal was read (or not): drain it, then read
 * up to its tagged answer. */
static int source_imap_finish_fetch(struct source_imap *s, const char **error_r)
{
	unsigned char sink[8192];
	while (s->literal_left > 0) {
		ssize_t n = source_imap_read_raw(
			s, sink, s->literal_left < sizeof(sink) ? s->literal_left : sizeof(sink),
			error_r);
		if (n < 0)
			return -1;
		s->literal_left -= (uint64_t)n;
	}
	if (s->fetch_tag[0] == '\0')
		return 0;
	char tag[16];
	snprintf(tag, sizeof(tag), "%s", s->fetch_tag);
	s->fetch_tag[0] = '\0';
	return source_imap_wait(s, tag, NULL, NULL, error_r) < 0 ? -1 : 0;
}

static uint64_t source_imap_add_sent(struct source_imap *s, uint32_t uid, bool permanent)
{
	pthread_mutex_lock(&s->lock);
	struct source_imap_sent *m = array_push(&s->sent);
	m->folder = s->folder;
	m->uid = uid;
	m->permanent = permanent;
	uint64_t key = s->sent.count;
	pthread_mutex_unlock(&s->lock);
	return key;
}

static void source_imap_set_message(struct source_imap *s, struct archive_source_message *msg,
				    const char *path, uint32_t uid)
{
	source_imap_clear_current(s);
	mem_free(s->owner);
	s->owner = mem_strdup(source_imap_owner(s, s->mailbox));
	s->owners[0] = s->owner;
	s->path = mem_strdup(path);
	s->label = uid != 0 ? mem_printf("%s:%s:%" PRIu32, source_imap_mailbox_name(s, s->mailbox),
					 path, uid)
			    : mem_printf("%s:%s", source_imap_mailbox_name(s, s->mailbox), path);
	memset(msg, 0, sizeof(*msg));
	msg->label = s->label;
	msg->folder = s->path;
	msg->owners = s->owners;
	msg->owner_count = 1;
}

/* Asks for one message; 1 with the literal ready to be read, 0 when it is
 * not there (a skip set in msg), -1 connection. */
static int source_imap_fetch(struct source_imap *s, const struct source_imap_pending *p,
			     struct archive_source_message *msg, const char **error_r)
{
	const char *tag = source_imap_send(
		s, tstr_printf("UID FETCH %" PRIu32 " (BODY.PEEK[])", p->uid), error_r);
	if (tag == NULL)
		return -1;
	snprintf(s->fetch_tag, sizeof(s->fetch_tag), "%s", tag);
	size_t tag_len = strlen(s->fetch_tag);
	for (;;) {
		if (source_imap_read_line(s, error_r) < 0)
			return -1;
		const char *line = str_c(s->line);
		if (strncmp(line, s->fetch_tag, tag_len) == 0 && line[tag_len] == ' ') {
			s->fetch_tag[0] = '\0';
			s->reason = mem_printf("no longer on the server: %s", line + tag_len + 1);
			msg->skip_reason = s->reason;
			msg->skip_kind = ARCHIVE_IMPORT_SKIP_UNREADABLE;
			msg->key = source_imap_add_sent(s, p->uid, true);
			return 0;
		}
		long long lit = source_imap_literal_at_end(line, str_len(s->line));
		if (line[0] == '*' && strcasestr(line, "BODY[] {") != NULL && lit >= 0) {
			s->literal_left = (uint64_t)lit;
			msg->size = (uint64_t)lit;
			msg->received = p->date;
			msg->key = source_imap_add_sent(s, p->uid, lit == 0);
			if (lit == 0) {
				msg->skip_reason = "empty message";
				msg->skip_kind = ARCHIVE_IMPORT_SKIP_EMPTY;
			}
			return 1;
		}
		if (line[0] == '*' && strcasestr(line, "BODY[] ") != NULL &&
		    strcasestr(line, " FETCH ") != NULL) {
			/* BODY[] NIL or "": nothing to archive */
			msg->skip_reason = "empty message";
			msg->skip_kind = ARCHIVE_IMPORT_SKIP_EMPTY;
			msg->key = source_imap_add_sent(s, p->uid, true);
			return 1;
		}
		/* EXISTS, EXPUNGE, FLAGS of other messages: not ours */
	}
}

static int source_imap_next(void *context, struct archive_source_message *msg_r,
			    const char **error_r)
{
	struct source_imap *s = context;
	/* a connection lost in the middle of a message ends the run: the next
	 * run carries on from what was committed */
	if (s->failure != NULL) {
		*error_r = s->failure;
		return -1;
	}
	if (s->stream != NULL && source_imap_finish_fetch(s, error_r) < 0)
		return source_imap_fail(s, *error_r, error_r);
	for (;;) {
		if (!s->mailbox_open) {
			if (s->mailbox == source_imap_mailbox_count(s))
				return 0;
			if (source_imap_open_mailbox(s, s->mailbox, error_r) < 0)
				return source_imap_fail(s, *error_r, error_r);
			s->mailbox_open = true;
			source_imap_clear_listed(s);
			int ret = source_imap_command(s, "LIST \"\" \"*\"", source_imap_on_list,
						      NULL, error_r);
			if (ret != 0)
				return source_imap_fail(s, *error_r, error_r);
			s->folder_open = false;
		}
		if (!s->folder_open) {
			if (s->listed_next == s->listed.count) {
				source_imap_close(s);
				s->mailbox++;
				continue;
			}
			const struct source_imap_listed *l = &s->listed.items[s->listed_next++];
			int ret = source_imap_open_folder(s, l, error_r);
			if (ret < 0)
				return source_imap_fail(s, *error_r, error_r);
			if (ret == 0) {
				/* deleted meanwhile, no right to read it: said, then on */
				source_imap_set_message(s, msg_r, l->path, 0);
				s->reason = mem_printf("cannot open the folder: %s", *error_r);
				msg_r->skip_reason = s->reason;
				msg_r->skip_kind = ARCHIVE_IMPORT_SKIP_UNREADABLE;
				return 1;
			}
			s->folder_open = true;
		}
		if (s->pending_next == s->pending.count) {
			s->folder_open = false;
			continue;
		}
		const struct source_imap_pending *p = &s->pending.items[s->pending_next++];
		const char *path = s->listed.items[s->listed_next - 1].path;
		source_imap_set_message(s, msg_r, path, p->uid);
		if (p->size > s->set.max_message_size) {
			s->reason = mem_strdup(tstr_printf("too large: %" PRIu64
							   " bytes, the limit is %" PRIu64
							   " (max_message_size)",
							   p->size, s->set.max_message_size));
			msg_r->skip_reason = s->reason;
			msg_r->skip_kind = ARCHIVE_IMPORT_SKIP_TOO_LARGE;
			msg_r->key = source_imap_add_sent(s, p->uid, true);
			return 1;
		}
		if (source_imap_fetch(s, p, msg_r, error_r) < 0)
			return source_imap_fail(s, *error_r, error_r);
		return 1;
	}
}

static ssize_t source_imap_read(void *context, unsigned char *buf, size_t size,
				const char **error_r)
{
	struct source_imap *s = context;
	if (s->literal_left == 0 || s->stream == NULL)
		return 0;
	if (size > s->literal_left)
		size = (size_t)s->literal_left;
	ssize_t n;
	if (s->buf_pos < s->buf_len) {
		n = source_imap_read_raw(s, buf, size, error_r);
	} else {
		/* straight into the pipeline's buffer, no copy */
		n = tls_stream_read(s->stream, buf, size, error_r);
		if (n == 0)
			*error_r = tstr_printf("%s: the server closed the connection",
					       tls_stream_name(s->stream));
		if (n == 0)
			n = -1;
	}
	if (n < 0) {
		(void)source_imap_fail(s, *error_r, error_r);
		return -1;
	}
	s->literal_left -= (uint64_t)n;
	return n;
}

const struct archive_source_funcs source_imap_funcs = {
	.next = source_imap_next,
	.read = source_imap_read,
};

/* ---- deleting what was archived ---- */

static int source_imap_delete_folder(struct source_imap *s, struct source_imap_folder *f,
				     const char **error_r)
{
	struct str *cmd = str_create(128);
	str_append(cmd, "SELECT ");
	imap_quote_append_astring(cmd, f->name);
	uint32_t validity = 0;
	int ret = source_imap_command(s, str_c(cmd), source_imap_on_select, &validity, error_r);
	str_destroy(&cmd);
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	if (validity != f->uidvalidity)
		return 0; /* renumbered meanwhile: these UIDs are not ours */
	long long removed = 0;
	for (size_t i = 0; i < f->deletable.count; i += SOURCE_IMAP_DELETE_CHUNK) {
		struct str *set = str_create(1024);
		for (size_t k = i; k < f->deletable.count && k < i + SOURCE_IMAP_DELETE_CHUNK; k++)
			str_printfa(set, "%s%" PRIu32, k > i ? "," : "", f->deletable.items[k]);
		const char *store =
			tstr_printf("UID STORE %s +FLAGS.SILENT (\\Deleted)", str_c(set));
		ret = source_imap_command(s, store, NULL, NULL, error_r);
		if (ret == 0)
			ret = source_imap_command(s, tstr_printf("UID EXPUNGE %s", str_c(set)),
						  NULL, NULL, error_r);
		str_destroy(&set);
		if (ret != 0)
			return -1;
		size_t left = f->deletable.count - i;
		removed += (long long)(left < SOURCE_IMAP_DELETE_CHUNK ? left
								       : SOURCE_IMAP_DELETE_CHUNK);
	}
	return (int)(removed > INT32_MAX ? INT32_MAX : removed);
}

long long source_imap_delete_archived(struct source_imap *s, const char **error_r)
{
	long long removed = 0;
	source_imap_close(s);
	for (size_t m = 0; m < source_imap_mailbox_count(s); m++) {
		const char *mailbox = source_imap_mailbox_name(s, m);
		bool opened = false;
		for (size_t i = 0; i < s->folders.count; i++) {
			struct source_imap_folder *f = &s->folders.items[i];
			if (f->deletable.count == 0 || strcmp(f->mailbox, mailbox) != 0)
				continue;
			if (!opened && source_imap_open_mailbox(s, m, error_r) < 0) {
				tls_stream_destroy(&s->stream);
				return -1;
			}
			opened = true;
			int ret = source_imap_delete_folder(s, f, error_r);
			if (ret < 0) {
				tls_stream_destroy(&s->stream);
				return -1;
			}
			removed += ret;
			array_clear(&f->deletable);
		}
		if (opened)
			source_imap_close(s);
	}
	return removed;
}
