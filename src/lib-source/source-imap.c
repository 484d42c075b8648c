#include "source-imap.h"
#include "imap-client-conn.h"
#include "array.h"
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

/* UIDs per FETCH command: one command, its answers streamed message after
 * message, instead of a round trip per message. */
#define SOURCE_IMAP_FETCH_BATCH 64
/* source_imap_fetch(): the answer was BODY[] NIL, not a literal */
#define SOURCE_IMAP_BODY_NIL (-2)
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
	struct imap_client_conn *conn;
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
	/* the FETCH under way asked for pending[..batch_end); a message's
	 * answer read ahead of the one expected (the server left one out):
	 * its UID and literal size, its literal next on the connection */
	size_t batch_end;
	uint32_t held_uid;
	long long held_literal;
	char *batch_answer; /* the FETCH's tagged answer, once read */
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
	imap_client_conn_destroy(&s->conn);
	source_imap_clear_listed(s);
	array_free(&s->listed);
	array_free(&s->pending);
	source_imap_clear_current(s);
	mem_free(s->owner);
	mem_free(s->batch_answer);
	for (size_t i = 0; i < s->folders.count; i++) {
		mem_free(s->folders.items[i].mailbox);
		mem_free(s->folders.items[i].name);
		array_free(&s->folders.items[i].deletable);
	}
	array_free(&s->folders);
	array_free(&s->sent);
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
	imap_client_conn_destroy(&s->conn);
	s->mailbox_open = false;
	return -1;
}

/* Connected, TLS on, logged in to the mailbox. */
static int source_imap_open_mailbox(struct source_imap *s, size_t mailbox, const char **error_r)
{
	const struct source_imap_settings *set = &s->set;
	struct imap_client_conn_settings cs = {.host = set->host,
					       .port = set->port,
					       .starttls = set->starttls,
					       .fingerprint = set->fingerprint,
					       .ca_file = set->ca_file,
					       .timeout_secs = set->timeout_secs};
	s->fetch_tag[0] = '\0';
	s->literal_left = 0;
	s->held_uid = 0;
	s->batch_end = 0;
	if (imap_client_conn_connect(&cs, &s->conn, error_r) < 0)
		return -1;
	const char *name = source_imap_mailbox_name(s, mailbox);
	int ret;
	if (set->admin == SOURCE_IMAP_ADMIN_AUTHZID) {
		ret = imap_client_conn_login(s->conn, name, set->login, set->password, error_r);
	} else {
		const char *user =
			set->admin == SOURCE_IMAP_ADMIN_MASTER
				? tstr_printf("%s%s%s", name, set->master_separator, set->login)
				: set->login;
		ret = imap_client_conn_login(s->conn, NULL, user, set->password, error_r);
	}
	if (ret != 0) {
		if (ret > 0)
			*error_r = tstr_printf("mailbox %s: login refused: %s", name, *error_r);
		return -1;
	}
	return 0;
}

static void source_imap_close(struct source_imap *s)
{
	imap_client_conn_logout(&s->conn);
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
static void source_imap_on_list(const char *line, void *context)
{
	struct source_imap *s = context;
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

static void source_imap_on_select(const char *line, void *context)
{
	uint32_t *validity = context;
	const char *p = strcasestr(line, "[UIDVALIDITY ");
	if (p != NULL)
		*validity = (uint32_t)strtoul(p + 13, NULL, 10);
}

/* EXAMINE or SELECT a folder: as imap_client_conn_command(), *validity_r
 * its UIDVALIDITY (0 if the server did not say). */
static int source_imap_select(struct source_imap *s, const char *verb, const char *name,
			      uint32_t *validity_r, const char **error_r)
{
	struct str *cmd = str_create(128);
	str_printfa(cmd, "%s ", verb);
	imap_quote_append_astring(cmd, name);
	int ret = imap_client_conn_command(s->conn, str_c(cmd), source_imap_on_select, validity_r,
					   error_r);
	str_destroy(&cmd);
	return ret;
}

static uint64_t source_imap_number_after(const char *line, const char *item)
{
	const char *p = strcasestr(line, item);
	return p != NULL ? strtoull(p + strlen(item), NULL, 10) : 0;
}

struct source_imap_meta {
	struct source_imap *s;
	uint32_t after;
};

/* "* 5 FETCH (UID 17 RFC822.SIZE 1234 INTERNALDATE "...")" */
static void source_imap_on_meta(const char *line, void *context)
{
	struct source_imap_meta *meta = context;
	struct source_imap *s = meta->s;
	uint32_t *after = &meta->after;
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
	uint32_t validity = 0;
	int ret = source_imap_select(s, "EXAMINE", l->name, &validity, error_r);
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
	s->batch_end = 0;
	s->held_uid = 0;
	const char *fetch =
		tstr_printf("UID FETCH %" PRIu32 ":* (UID RFC822.SIZE INTERNALDATE)", after + 1);
	struct source_imap_meta meta = {.s = s, .after = after};
	ret = imap_client_conn_command(s->conn, fetch, source_imap_on_meta, &meta, error_r);
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	array_sort(&s->pending, source_imap_pending_cmp);
	return 1;
}

/* The rest of the current message's literal, read and dropped (the
 * pipeline stopped reading it: too large, a failed read). */
static int source_imap_drain_literal(struct source_imap *s, const char **error_r)
{
	unsigned char sink[8192];
	while (s->literal_left > 0) {
		ssize_t n = imap_client_conn_read(
			s->conn, sink,
			s->literal_left < sizeof(sink) ? s->literal_left : sizeof(sink), error_r);
		if (n < 0)
			return -1;
		s->literal_left -= (uint64_t)n;
	}
	return 0;
}

/* The FETCH under way to its tagged answer (dropping what is left of its
 * answers: a folder left early). */
static int source_imap_finish_fetch(struct source_imap *s, const char **error_r)
{
	if (source_imap_drain_literal(s, error_r) < 0)
		return -1;
	if (s->held_uid != 0) {
		s->literal_left = s->held_literal > 0 ? (uint64_t)s->held_literal : 0;
		s->held_uid = 0;
		if (source_imap_drain_literal(s, error_r) < 0)
			return -1;
	}
	if (s->fetch_tag[0] == '\0')
		return 0;
	char tag[16];
	snprintf(tag, sizeof(tag), "%s", s->fetch_tag);
	s->fetch_tag[0] = '\0';
	return imap_client_conn_wait(s->conn, tag, false, NULL, NULL, error_r) < 0 ? -1 : 0;
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

/* Asks for the next messages of the folder in one command: pending[first]
 * on, up to SOURCE_IMAP_FETCH_BATCH that are not too large. */
static int source_imap_fetch_batch(struct source_imap *s, size_t first, const char **error_r)
{
	struct str *cmd = str_create(64 + SOURCE_IMAP_FETCH_BATCH * 11);
	str_append(cmd, "UID FETCH ");
	size_t i = first;
	for (; i < s->pending.count && i - first < SOURCE_IMAP_FETCH_BATCH; i++) {
		const struct source_imap_pending *p = &s->pending.items[i];
		if (p->size > s->set.max_message_size)
			break;
		str_printfa(cmd, "%s%" PRIu32, i > first ? "," : "", p->uid);
	}
	str_append(cmd, " (UID BODY.PEEK[])");
	const char *tag = imap_client_conn_send(s->conn, str_c(cmd), error_r);
	str_destroy(&cmd);
	if (tag == NULL)
		return -1;
	snprintf(s->fetch_tag, sizeof(s->fetch_tag), "%s", tag);
	s->batch_end = i;
	mem_free(s->batch_answer);
	s->batch_answer = NULL;
	return 0;
}

/* The UID a FETCH answer names before its body, or 0. */
static uint32_t source_imap_answer_uid(const char *line)
{
	const char *u = strcasestr(line, "UID ");
	const char *body = strcasestr(line, "BODY[]");
	if (u == NULL || (body != NULL && u > body))
		return 0;
	return (uint32_t)strtoul(u + 4, NULL, 10);
}

/* p, the next message asked for: 1 with its literal ready to be read (or a
 * skip set in msg: empty, no longer there), -1 connection. The answers
 * come in the order asked (ascending UIDs); one the server left out
 * (expunged meanwhile) is known by the next one's UID or by the tagged
 * answer; one answered BODY[] NIL (Dovecot's way for a message expunged
 * after the listing) is reported the same way. An answer that names no UID before its body is taken
 * as the one expected. */
static int source_imap_fetch(struct source_imap *s, const struct source_imap_pending *p,
			     struct archive_source_message *msg, const char **error_r)
{
	uint32_t uid = 0;
	long long lit = -1;
	bool body = false;
	if (s->held_uid != 0) {
		uid = s->held_uid;
		lit = s->held_literal;
		body = true;
		s->held_uid = 0;
	}
	size_t tag_len = strlen(s->fetch_tag);
	while (!body && s->batch_answer == NULL) {
		if (imap_client_conn_read_line(s->conn, error_r) < 0)
			return -1;
		size_t line_len;
		const char *line = imap_client_conn_line(s->conn, &line_len);
		if (tag_len > 0 && strncmp(line, s->fetch_tag, tag_len) == 0 &&
		    line[tag_len] == ' ') {
			s->fetch_tag[0] = '\0';
			s->batch_answer = mem_strdup(line + tag_len + 1);
			break;
		}
		if (line[0] != '*' || strcasestr(line, " FETCH ") == NULL ||
		    strcasestr(line, "BODY[]") == NULL)
			continue; /* EXISTS, EXPUNGE, FLAGS of other messages: not ours */
		uid = source_imap_answer_uid(line);
		lit = imap_client_conn_literal_at_end(line, line_len);
		if (lit < 0 && strcasestr(line, "BODY[] NIL") != NULL)
			lit = SOURCE_IMAP_BODY_NIL;
		body = true;
	}
	if (body && uid != 0 && uid < p->uid) {
		*error_r = tstr_printf("%s: a FETCH answer for UID %" PRIu32
				       " out of order (expected %" PRIu32 ")",
				       imap_client_conn_name(s->conn), uid, p->uid);
		return -1;
	}
	if (!body || (uid != 0 && uid > p->uid)) {
		/* p was left out: said, and the answer read ahead kept */
		if (body) {
			s->held_uid = uid;
			s->held_literal = lit;
		}
		s->reason = mem_printf("no longer on the server: %s",
				       s->batch_answer != NULL ? s->batch_answer : "not answered");
		msg->skip_reason = s->reason;
		msg->skip_kind = ARCHIVE_IMPORT_SKIP_UNREADABLE;
		msg->key = source_imap_add_sent(s, p->uid, true);
		return 1;
	}
	if (lit == SOURCE_IMAP_BODY_NIL) {
		/* Dovecot's answer for a message another session expunged after
		 * this one listed it (the tagged answer then says
		 * EXPUNGEISSUED): gone from the server, nothing to fetch again */
		s->reason = mem_strdup("no longer on the server: it answered BODY[] NIL "
				       "(expunged meanwhile)");
		msg->skip_reason = s->reason;
		msg->skip_kind = ARCHIVE_IMPORT_SKIP_UNREADABLE;
		msg->key = source_imap_add_sent(s, p->uid, true);
		return 1;
	}
	msg->received = p->date;
	if (lit > 0) {
		s->literal_left = (uint64_t)lit;
		msg->size = (uint64_t)lit;
		msg->key = source_imap_add_sent(s, p->uid, false);
		return 1;
	}
	/* {0}, BODY[] NIL or "": nothing to archive */
	msg->skip_reason = "empty message";
	msg->skip_kind = ARCHIVE_IMPORT_SKIP_EMPTY;
	msg->key = source_imap_add_sent(s, p->uid, true);
	return 1;
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
	if (s->conn != NULL && source_imap_drain_literal(s, error_r) < 0)
		return source_imap_fail(s, *error_r, error_r);
	for (;;) {
		if (!s->mailbox_open) {
			if (s->mailbox == source_imap_mailbox_count(s))
				return 0;
			if (source_imap_open_mailbox(s, s->mailbox, error_r) < 0)
				return source_imap_fail(s, *error_r, error_r);
			s->mailbox_open = true;
			source_imap_clear_listed(s);
			int ret = imap_client_conn_command(s->conn, "LIST \"\" \"*\"",
							   source_imap_on_list, s, error_r);
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
			if (source_imap_finish_fetch(s, error_r) < 0)
				return source_imap_fail(s, *error_r, error_r);
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
		if (s->pending_next > s->batch_end) {
			/* the batch asked for is answered: its tagged answer, then the next */
			if (source_imap_finish_fetch(s, error_r) < 0 ||
			    source_imap_fetch_batch(s, s->pending_next - 1, error_r) < 0)
				return source_imap_fail(s, *error_r, error_r);
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
	if (s->literal_left == 0 || s->conn == NULL)
		return 0;
	if (size > s->literal_left)
		size = (size_t)s->literal_left;
	ssize_t n = imap_client_conn_read(s->conn, buf, size, error_r);
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
	uint32_t validity = 0;
	int ret = source_imap_select(s, "SELECT", f->name, &validity, error_r);
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
		ret = imap_client_conn_command(s->conn, store, NULL, NULL, error_r);
		if (ret == 0)
			ret = imap_client_conn_command(s->conn,
						       tstr_printf("UID EXPUNGE %s", str_c(set)),
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
				imap_client_conn_destroy(&s->conn);
				return -1;
			}
			opened = true;
			int ret = source_imap_delete_folder(s, f, error_r);
			if (ret < 0) {
				imap_client_conn_destroy(&s->conn);
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
