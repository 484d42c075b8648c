#include "source-pop3.h"
#include "array.h"
#include "base64.h"
#include "hash.h"
#include "mem.h"
#include "str.h"
#include "tls.h"
#include "tstr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest line kept: a status or UIDL line; a message line may be longer
 * and is passed on in pieces. */
#define SOURCE_POP3_LINE_MAX 4096

struct source_pop3_sent {
	size_t mailbox;
	char *uidl;
	bool permanent;
};

struct source_pop3_listed {
	unsigned long number;
	char *uidl;
};

struct source_pop3 {
	struct source_pop3_settings set;
	char *failure;

	pthread_mutex_t lock; /* seen, sent, deletable: the writer's events */
	struct hash *seen;    /* "mailbox\tuidl" of what is archived */
	ARRAY(struct source_pop3_sent) sent;
	ARRAY(size_t) deletable; /* indexes into sent */

	struct tls_stream *stream;
	unsigned char buf[65536];
	size_t buf_pos, buf_len;
	size_t mailbox;
	bool mailbox_open;
	ARRAY(struct source_pop3_listed) listed;
	size_t listed_next;
	bool in_message;    /* RETR's lines are being read */
	bool at_line_start; /* the next bytes of RETR's answer start a line */
	struct str *line, *out;
	size_t out_pos;
	char *label, *owner;
	const char *owners[1];
};

static const char *source_pop3_mailbox_name(const struct source_pop3 *s, size_t i)
{
	return s->set.admin == SOURCE_IMAP_ADMIN_NONE ? s->set.login : s->set.mailboxes[i];
}

static size_t source_pop3_mailbox_count(const struct source_pop3 *s)
{
	return s->set.admin == SOURCE_IMAP_ADMIN_NONE ? 1 : s->set.mailbox_count;
}

static const char *source_pop3_owner(const struct source_pop3 *s, size_t i)
{
	if (s->set.owners != NULL && s->set.owners[i] != NULL && s->set.owners[i][0] != '\0')
		return s->set.owners[i];
	return source_pop3_mailbox_name(s, i);
}

static char *source_pop3_key(const struct source_pop3 *s, size_t mailbox, const char *uidl)
{
	return mem_printf("%s\t%s", source_pop3_mailbox_name(s, mailbox), uidl);
}

struct source_pop3 *source_pop3_create(const struct source_pop3_settings *set, const char *state)
{
	struct source_pop3 *s = mem_new(struct source_pop3);
	s->set = *set;
	if (s->set.master_separator == NULL || s->set.master_separator[0] == '\0')
		s->set.master_separator = "*";
	if (s->set.folder == NULL || s->set.folder[0] == '\0')
		s->set.folder = "INBOX";
	pthread_mutex_init(&s->lock, NULL);
	s->seen = hash_create();
	s->line = str_create(256);
	s->out = str_create(4096);
	/* one "mailbox\tuidl" per line */
	for (const char *p = state; p != NULL && *p != '\0';) {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > 0 && memchr(p, '\t', len) != NULL) {
			char *key = mem_strndup(p, len);
			hash_set(s->seen, key, (void *)1);
			mem_free(key);
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return s;
}

static void source_pop3_clear_listed(struct source_pop3 *s)
{
	for (size_t i = 0; i < s->listed.count; i++)
		mem_free(s->listed.items[i].uidl);
	array_clear(&s->listed);
	s->listed_next = 0;
}

void source_pop3_destroy(struct source_pop3 **src)
{
	struct source_pop3 *s = *src;
	if (s == NULL)
		return;
	tls_stream_destroy(&s->stream);
	source_pop3_clear_listed(s);
	array_free(&s->listed);
	for (size_t i = 0; i < s->sent.count; i++)
		mem_free(s->sent.items[i].uidl);
	array_free(&s->sent);
	array_free(&s->deletable);
	hash_destroy(&s->seen);
	str_destroy(&s->line);
	str_destroy(&s->out);
	mem_free(s->label);
	mem_free(s->owner);
	mem_free(s->failure);
	pthread_mutex_destroy(&s->lock);
	mem_free(s);
	*src = NULL;
}

const char *source_pop3_failure(struct source_pop3 *s)
{
	return s->failure;
}

char *source_pop3_state(struct source_pop3 *s)
{
	struct str *out = str_create(1024);
	pthread_mutex_lock(&s->lock);
	struct hash_iter it;
	const char *key;
	void *value;
	hash_iter_init(&it, s->seen);
	while (hash_iter_next(&it, &key, &value) == 1)
		str_printfa(out, "%s\n", key);
	pthread_mutex_unlock(&s->lock);
	return str_steal(&out);
}

/* From the import's writer thread, after the commit, in order. */
void source_pop3_event(struct source_pop3 *s, const struct archive_import_event *ev)
{
	if (ev->key == 0 || ev->type == ARCHIVE_IMPORT_PROGRESS)
		return;
	pthread_mutex_lock(&s->lock);
	if (ev->key <= s->sent.count) {
		struct source_pop3_sent *m = &s->sent.items[ev->key - 1];
		bool done = ev->type != ARCHIVE_IMPORT_SKIPPED;
		if (done || m->permanent) {
			char *key = source_pop3_key(s, m->mailbox, m->uidl);
			hash_set(s->seen, key, (void *)1);
			mem_free(key);
		}
		if (done && (s->deletable.count == 0 ||
			     s->deletable.items[s->deletable.count - 1] != ev->key - 1))
			array_append(&s->deletable, ev->key - 1);
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- the connection ---- */

static int source_pop3_fail(struct source_pop3 *s, const char *error, const char **error_r)
{
	mem_free(s->failure);
	s->failure = mem_strdup(error);
	*error_r = s->failure;
	tls_stream_destroy(&s->stream);
	s->mailbox_open = false;
	return -1;
}

/* One line, its line end kept (a message's bytes are passed on as they
 * came); at most SOURCE_POP3_LINE_MAX bytes at a time (a longer line comes
 * in pieces: *whole_r false). */
static int source_pop3_raw_line(struct source_pop3 *s, bool *whole_r, const char **error_r)
{
	str_truncate(s->line, 0);
	*whole_r = false;
	while (str_len(s->line) < SOURCE_POP3_LINE_MAX) {
		if (s->buf_pos == s->buf_len) {
			ssize_t n = tls_stream_read(s->stream, s->buf, sizeof(s->buf), error_r);
			if (n == 0)
				*error_r = tstr_printf("%s: the server closed the connection",
						       tls_stream_name(s->stream));
			if (n <= 0)
				return -1;
			s->buf_pos = 0;
			s->buf_len = (size_t)n;
		}
		unsigned char *start = s->buf + s->buf_pos;
		size_t avail = s->buf_len - s->buf_pos;
		size_t room = SOURCE_POP3_LINE_MAX - str_len(s->line);
		unsigned char *lf = memchr(start, '\n', avail < room ? avail : room);
		size_t n = lf != NULL ? (size_t)(lf - start) + 1 : (avail < room ? avail : room);
		str_append_n(s->line, start, n);
		s->buf_pos += n;
		if (lf != NULL) {
			*whole_r = true;
			break;
		}
	}
	return 0;
}

/* A status line: 0 for +OK, 1 for -ERR (*error_r), -1 connection. */
static int source_pop3_status(struct source_pop3 *s, const char **error_r)
{
	bool whole;
	if (source_pop3_raw_line(s, &whole, error_r) < 0)
		return -1;
	const char *line = str_c(s->line);
	if (strncmp(line, "+OK", 3) == 0)
		return 0;
	char *text = mem_strdup(line);
	text[strcspn(text, "\r\n")] = '\0';
	*error_r = tstr_printf("the server answered: %s", text);
	mem_free(text);
	return 1;
}

static int source_pop3_command(struct source_pop3 *s, const char *command, const char **error_r)
{
	char *text = mem_printf("%s\r\n", command);
	int ret = tls_stream_write(s->stream, text, strlen(text), error_r);
	memset(text, 0, strlen(text));
	mem_free(text);
	return ret < 0 ? -1 : source_pop3_status(s, error_r);
}

static int source_pop3_login(struct source_pop3 *s, size_t mailbox, const char **error_r)
{
	const struct source_pop3_settings *set = &s->set;
	int ret;
	if (set->admin == SOURCE_IMAP_ADMIN_AUTHZID) {
		const char *authz = source_pop3_mailbox_name(s, mailbox);
		size_t a = strlen(authz), l = strlen(set->login), p = strlen(set->password);
		char *plain = mem_alloc(a + l + p + 3);
		memcpy(plain, authz, a + 1);
		memcpy(plain + a + 1, set->login, l + 1);
		memcpy(plain + a + l + 2, set->password, p);
		char *b64 = base64_encode(plain, a + l + p + 2);
		memset(plain, 0, a + l + p + 2);
		mem_free(plain);
		char *cmd = mem_printf("AUTH PLAIN %s", b64);
		mem_free(b64);
		ret = source_pop3_command(s, cmd, error_r);
		memset(cmd, 0, strlen(cmd));
		mem_free(cmd);
	} else {
		char *user =
			set->admin == SOURCE_IMAP_ADMIN_MASTER
				? mem_printf("USER %s%s%s", source_pop3_mailbox_name(s, mailbox),
					     set->master_separator, set->login)
				: mem_printf("USER %s", set->login);
		ret = source_pop3_command(s, user, error_r);
		mem_free(user);
		if (ret == 0) {
			char *pass = mem_printf("PASS %s", set->password);
			ret = source_pop3_command(s, pass, error_r);
			memset(pass, 0, strlen(pass));
			mem_free(pass);
		}
	}
	if (ret > 0)
		*error_r = tstr_printf("mailbox %s: login refused: %s",
				       source_pop3_mailbox_name(s, mailbox), *error_r);
	return ret == 0 ? 0 : -1;
}

static int source_pop3_open(struct source_pop3 *s, size_t mailbox, const char **error_r)
{
	const struct source_pop3_settings *set = &s->set;
	struct tls_stream_settings ts = {.host = set->host,
					 .port = set->port,
					 .pinned_fingerprint = set->fingerprint,
					 .ca_file = set->ca_file,
					 .timeout_secs = set->timeout_secs};
	s->buf_pos = s->buf_len = 0;
	s->in_message = false;
	if (tls_stream_connect(&ts, &s->stream, error_r) < 0)
		return -1;
	if (!set->starttls && tls_stream_start_tls(s->stream, error_r) < 0)
		return -1;
	if (source_pop3_status(s, error_r) != 0) {
		*error_r = tstr_printf("unexpected greeting: %s", *error_r);
		return -1;
	}
	if (set->starttls) {
		int ret = source_pop3_command(s, "STLS", error_r);
		if (ret != 0) {
			if (ret > 0)
				*error_r = tstr_printf("STLS refused (never sent in clear): %s",
						       *error_r);
			return -1;
		}
		s->buf_pos = s->buf_len = 0;
		if (tls_stream_start_tls(s->stream, error_r) < 0)
			return -1;
	}
	return source_pop3_login(s, mailbox, error_r);
}

static void source_pop3_close(struct source_pop3 *s)
{
	if (s->stream != NULL && !s->in_message) {
		const char *error;
		(void)source_pop3_command(s, "QUIT", &error);
	}
	tls_stream_destroy(&s->stream);
	s->mailbox_open = false;
	source_pop3_clear_listed(s);
}

/* UIDL's "n uidl" lines, up to the lone dot. */
static int source_pop3_uidl(struct source_pop3 *s, const char **error_r)
{
	source_pop3_clear_listed(s);
	int ret = source_pop3_command(s, "UIDL", error_r);
	if (ret != 0)
		return -1;
	for (;;) {
		bool whole;
		if (source_pop3_raw_line(s, &whole, error_r) < 0)
			return -1;
		const char *line = str_c(s->line);
		if (strcmp(line, ".\r\n") == 0 || strcmp(line, ".\n") == 0)
			return 0;
		char *end;
		unsigned long n = strtoul(line, &end, 10);
		if (end == line || *end != ' ')
			continue;
		char *uidl = mem_strdup(end + 1);
		uidl[strcspn(uidl, "\r\n")] = '\0';
		struct source_pop3_listed *l = array_push(&s->listed);
		l->number = n;
		l->uidl = uidl;
	}
}

static uint64_t source_pop3_add_sent(struct source_pop3 *s, const char *uidl)
{
	pthread_mutex_lock(&s->lock);
	struct source_pop3_sent *m = array_push(&s->sent);
	m->mailbox = s->mailbox;
	m->uidl = mem_strdup(uidl);
	uint64_t key = s->sent.count;
	pthread_mutex_unlock(&s->lock);
	return key;
}

static bool source_pop3_seen(struct source_pop3 *s, const char *uidl)
{
	if (s->set.delete_after)
		return false;
	char *key = source_pop3_key(s, s->mailbox, uidl);
	pthread_mutex_lock(&s->lock);
	bool seen = hash_get(s->seen, key) != NULL;
	pthread_mutex_unlock(&s->lock);
	mem_free(key);
	return seen;
}

/* Reads what is left of a RETR answer, up to its lone dot. */
static int source_pop3_finish_message(struct source_pop3 *s, const char **error_r)
{
	bool whole;
	while (s->in_message) {
		bool at_start = s->at_line_start;
		if (source_pop3_raw_line(s, &whole, error_r) < 0)
			return -1;
		s->at_line_start = whole;
		const char *line = str_c(s->line);
		if (at_start && whole && (strcmp(line, ".\r\n") == 0 || strcmp(line, ".\n") == 0))
			s->in_message = false;
	}
	return 0;
}

static int source_pop3_next(void *context, struct archive_source_message *msg_r,
			    const char **error_r)
{
	struct source_pop3 *s = context;
	if (s->failure != NULL) {
		*error_r = s->failure;
		return -1;
	}
	if (s->stream != NULL && source_pop3_finish_message(s, error_r) < 0)
		return source_pop3_fail(s, *error_r, error_r);
	for (;;) {
		if (!s->mailbox_open) {
			if (s->mailbox == source_pop3_mailbox_count(s))
				return 0;
			if (source_pop3_open(s, s->mailbox, error_r) < 0 ||
			    source_pop3_uidl(s, error_r) < 0)
				return source_pop3_fail(s, *error_r, error_r);
			s->mailbox_open = true;
		}
		if (s->listed_next == s->listed.count) {
			source_pop3_close(s);
			s->mailbox++;
			continue;
		}
		const struct source_pop3_listed *l = &s->listed.items[s->listed_next++];
		if (source_pop3_seen(s, l->uidl))
			continue;
		int ret = source_pop3_command(s, tstr_printf("RETR %lu", l->number), error_r);
		if (ret < 0)
			return source_pop3_fail(s, *error_r, error_r);
		mem_free(s->label);
		mem_free(s->owner);
		s->owner = mem_strdup(source_pop3_owner(s, s->mailbox));
		s->owners[0] = s->owner;
		s->label = mem_printf("%s:%s", source_pop3_mailbox_name(s, s->mailbox), l->uidl);
		memset(msg_r, 0, sizeof(*msg_r));
		msg_r->label = s->label;
		msg_r->folder = s->set.folder;
		msg_r->owners = s->owners;
		msg_r->owner_count = 1;
		msg_r->key = source_pop3_add_sent(s, l->uidl);
		if (ret > 0) {
			/* deleted by another session meanwhile */
			msg_r->skip_reason = "no longer on the server";
			msg_r->skip_kind = ARCHIVE_IMPORT_SKIP_UNREADABLE;
			pthread_mutex_lock(&s->lock);
			s->sent.items[msg_r->key - 1].permanent = true;
			pthread_mutex_unlock(&s->lock);
			return 1;
		}
		s->in_message = true;
		s->at_line_start = true;
		str_truncate(s->out, 0);
		s->out_pos = 0;
		return 1;
	}
}

/* The message's bytes: RETR's lines without the dot-stuffing. */
static ssize_t source_pop3_read(void *context, unsigned char *buf, size_t size,
				const char **error_r)
{
	struct source_pop3 *s = context;
	while (s->out_pos == str_len(s->out)) {
		if (!s->in_message || s->stream == NULL)
			return 0;
		bool at_line_start = s->at_line_start;
		str_truncate(s->out, 0);
		s->out_pos = 0;
		bool whole;
		if (source_pop3_raw_line(s, &whole, error_r) < 0) {
			(void)source_pop3_fail(s, *error_r, error_r);
			return -1;
		}
		const char *line = str_c(s->line);
		size_t len = str_len(s->line);
		s->at_line_start = whole;
		if (at_line_start && whole &&
		    (strcmp(line, ".\r\n") == 0 || strcmp(line, ".\n") == 0)) {
			s->in_message = false;
			return 0;
		}
		size_t skip = at_line_start && line[0] == '.' ? 1 : 0;
		str_append_n(s->out, line + skip, len - skip);
	}
	size_t n = str_len(s->out) - s->out_pos;
	if (n > size)
		n = size;
	memcpy(buf, str_c(s->out) + s->out_pos, n);
	s->out_pos += n;
	return (ssize_t)n;
}

const struct archive_source_funcs source_pop3_funcs = {
	.next = source_pop3_next,
	.read = source_pop3_read,
};

long long source_pop3_delete_archived(struct source_pop3 *s, const char **error_r)
{
	long long removed = 0;
	source_pop3_close(s);
	for (size_t m = 0; m < source_pop3_mailbox_count(s); m++) {
		struct hash *wanted = hash_create();
		for (size_t i = 0; i < s->deletable.count; i++) {
			const struct source_pop3_sent *sent = &s->sent.items[s->deletable.items[i]];
			if (sent->mailbox == m)
				hash_set(wanted, sent->uidl, (void *)1);
		}
		if (hash_count(wanted) == 0) {
			hash_destroy(&wanted);
			continue;
		}
		s->mailbox = m;
		int ret = source_pop3_open(s, m, error_r) < 0 || source_pop3_uidl(s, error_r) < 0
				  ? -1
				  : 0;
		long long here = 0;
		for (size_t i = 0; ret == 0 && i < s->listed.count; i++) {
			if (hash_get(wanted, s->listed.items[i].uidl) == NULL)
				continue;
			if (source_pop3_command(s,
						tstr_printf("DELE %lu", s->listed.items[i].number),
						error_r) != 0)
				ret = -1;
			here++;
		}
		/* the server removes them at QUIT only */
		if (ret == 0 && source_pop3_command(s, "QUIT", error_r) != 0)
			ret = -1;
		tls_stream_destroy(&s->stream);
		source_pop3_clear_listed(s);
		s->mailbox_open = false;
		hash_destroy(&wanted);
		if (ret < 0)
			return -1;
		removed += here;
	}
	return removed;
}
