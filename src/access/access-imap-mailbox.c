/* access-imap-mailbox: the archive tree as IMAP mailboxes: LIST, LSUB,
 * STATUS, SELECT/EXAMINE (always read-only), NOOP/CHECK and IDLE.
 *
 * Names: a user's own folders appear under their own path ("alice@example.com
 * (IMAP)/INBOX"), INBOX always exists (empty unless the archive has one), and
 * an auditor sees every other user's archive under "Other Users/<user>/".
 * Parents that are not folders themselves are listed \Noselect. The
 * hierarchy delimiter is "/". */
#include "access-imap-private.h"
#include "array.h"
#include "hash.h"
#include "imap-arg.h"
#include "imap-mailbox.h"
#include "imap-parser.h"
#include "imap-uidmap.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMAP_OTHER_USERS "Other Users"

/* ---- names ---- */

static char *imap_folder_name(const struct imap_client *client, const char *owner, const char *path)
{
	if (strcmp(owner, client->archive_name) == 0)
		return strcasecmp(path, "INBOX") == 0 ? mem_strdup("INBOX") : mem_strdup(path);
	return mem_printf(IMAP_OTHER_USERS "/%s/%s", owner, path);
}

/* The archive folder a mailbox name stands for: 0 with owner/path, -1 if the
 * name cannot be one (the answer is then "no such mailbox"). */
static int imap_folder_from_name(const struct imap_client *client, const char *name, char **owner_r,
				 char **path_r)
{
	size_t prefix = strlen(IMAP_OTHER_USERS "/");
	if (strncmp(name, IMAP_OTHER_USERS "/", prefix) == 0) {
		const char *slash = strchr(name + prefix, '/');
		if (!client->auditor || slash == NULL || slash[1] == '\0')
			return -1;
		*owner_r = mem_strndup(name + prefix, (size_t)(slash - name - (ptrdiff_t)prefix));
		*path_r = mem_strdup(slash + 1);
		return 0;
	}
	*owner_r = mem_strdup(client->archive_name);
	*path_r = mem_strdup(name);
	return 0;
}

/* ---- LIST and LSUB ---- */

struct imap_listed {
	char *name;
	bool selectable, children;
};

static int imap_listed_cmp(const void *a, const void *b)
{
	const struct imap_listed *x = a, *y = b;
	return strcmp(x->name, y->name);
}

/* IMAP LIST wildcards: '*' matches anything, '%' anything but the
 * delimiter. INBOX matches case-insensitively. */
static bool imap_list_match(const char *pattern, const char *name)
{
	if (*pattern == '\0')
		return *name == '\0';
	if (*pattern == '*' || *pattern == '%') {
		for (const char *n = name;; n++) {
			if (imap_list_match(pattern + 1, n))
				return true;
			if (*n == '\0' || (*pattern == '%' && *n == '/'))
				return false;
		}
	}
	return *name != '\0' && *pattern == *name && imap_list_match(pattern + 1, name + 1);
}

/* The names listed so far, with a table from name to position: a user with
 * thousands of folders must not cost a scan of the list per name. */
struct imap_list_builder {
	ARRAY(struct imap_listed) list;
	struct hash *positions; /* name -> index + 1 in list (the array moves) */
};

static struct imap_listed *imap_list_find(struct imap_list_builder *b, const char *name)
{
	uintptr_t pos = (uintptr_t)hash_get(b->positions, name);
	return pos == 0 ? NULL : &b->list.items[pos - 1];
}

static void imap_list_add(struct imap_list_builder *b, const char *name, bool selectable)
{
	struct imap_listed *found = imap_list_find(b, name);
	if (found != NULL) {
		found->selectable = found->selectable || selectable;
		return;
	}
	struct imap_listed listed = {mem_strdup(name), selectable, false};
	array_append(&b->list, listed);
	hash_set(b->positions, name, (void *)(uintptr_t)b->list.count);
}

/* \HasChildren: every name below the top was added with its parent (the
 * name up to its last '/'), so marking each name's parent finds them all. */
static void imap_list_mark_parents(struct imap_list_builder *b)
{
	for (size_t i = 0; i < b->list.count; i++) {
		const char *name = b->list.items[i].name, *slash = strrchr(name, '/');
		if (slash == NULL)
			continue;
		char *parent = mem_strndup(name, (size_t)(slash - name));
		struct imap_listed *p = imap_list_find(b, parent);
		if (p != NULL)
			p->children = true;
		mem_free(parent);
	}
}

/* Every folder, its parents, and INBOX. */
static struct imap_listed *imap_list_build(struct imap_client *client, const struct json *folders,
					   size_t *count_r)
{
	struct imap_list_builder b = {ARRAY_INIT, hash_create()};
	imap_list_add(&b, "INBOX", true);
	for (size_t i = 0; i < json_count(folders); i++) {
		const struct json *f = json_at(folders, i);
		const char *owner = json_get_string(f, "owner"), *path = json_get_string(f, "path");
		if (owner == NULL || path == NULL)
			continue;
		char *name = imap_folder_name(client, owner, path);
		for (char *slash = strchr(name, '/'); slash != NULL;
		     slash = strchr(slash + 1, '/')) {
			*slash = '\0';
			if (name[0] != '\0')
				imap_list_add(&b, name, false);
			*slash = '/';
		}
		imap_list_add(&b, name, true);
		mem_free(name);
	}
	imap_list_mark_parents(&b);
	hash_destroy(&b.positions);
	array_sort(&b.list, imap_listed_cmp);
	*count_r = b.list.count;
	return b.list.items;
}

struct imap_list_cmd {
	char *pattern;
	bool lsub;
};

static void imap_list_answer(struct imap_client *client, const struct json *result,
			     const void *blob, size_t blob_len, const char *code, const char *text,
			     void *ctx)
{
	struct imap_list_cmd *cmd = ctx;
	if (client->disconnected) {
	} else if (code != NULL) {
		imap_client_done(client, "NO",
				 "[UNAVAILABLE] The archive is not available right now");
	} else {
		size_t count;
		struct imap_listed *list = imap_list_build(client, result, &count);
		struct str *line = str_create(256);
		const char *error;
		for (size_t i = 0; i < count; i++) {
			bool inbox = strcmp(list[i].name, "INBOX") == 0;
			if (imap_list_match(cmd->pattern, list[i].name) ||
			    (inbox && imap_list_match(cmd->pattern, "inbox")) ||
			    (inbox && strcasecmp(cmd->pattern, "INBOX") == 0)) {
				str_truncate(line, 0);
				str_printfa(line, "* %s (%s%s) \"/\" ", cmd->lsub ? "LSUB" : "LIST",
					    list[i].selectable ? "" : "\\Noselect ",
					    list[i].children ? "\\HasChildren" : "\\HasNoChildren");
				if (imap_mailbox_write(line, list[i].name, &error) == 0)
					imap_client_send(client, "%s", str_c(line));
			}
			mem_free(list[i].name);
		}
		mem_free(list);
		str_destroy(&line);
		imap_client_done(client, "OK", "%s completed", cmd->lsub ? "LSUB" : "LIST");
	}
	mem_free(cmd->pattern);
	mem_free(cmd);
}

void imap_cmd_list(struct imap_client *client, const struct imap_command *cmd, bool lsub)
{
	const char *ref, *pattern;
	struct str *ref_utf8 = str_create(64), *pattern_utf8 = str_create(64);
	const char *error;
	if (cmd->arg_count != 2 || !imap_arg_get_astring(&cmd->args[0], &ref) ||
	    !imap_arg_get_astring(&cmd->args[1], &pattern) ||
	    imap_mailbox_from_arg(&cmd->args[0], ref_utf8, &error) < 0 ||
	    imap_mailbox_from_arg(&cmd->args[1], pattern_utf8, &error) < 0) {
		str_destroy(&ref_utf8);
		str_destroy(&pattern_utf8);
		imap_client_done(client, "BAD", "%s needs a reference and a mailbox pattern",
				 lsub ? "LSUB" : "LIST");
		return;
	}
	if (str_len(pattern_utf8) == 0 && !lsub) {
		/* the delimiter and the root */
		imap_client_send(client, "* LIST (\\Noselect) \"/\" \"\"");
		imap_client_done(client, "OK", "LIST completed");
	} else {
		struct imap_list_cmd *c = mem_new(struct imap_list_cmd);
		c->pattern = mem_printf("%s%s", str_c(ref_utf8), str_c(pattern_utf8));
		c->lsub = lsub;
		imap_client_call(client, "ClientFolders", NULL, imap_list_answer, c);
	}
	str_destroy(&ref_utf8);
	str_destroy(&pattern_utf8);
}

/* ---- STATUS, SELECT ---- */

struct imap_mailbox_cmd {
	char *name;
	char *owner, *path;
	bool examine;
	unsigned int items; /* STATUS items, IMAP_STATUS_* bits */
};

enum {
	IMAP_STATUS_MESSAGES = 1,
	IMAP_STATUS_RECENT = 2,
	IMAP_STATUS_UIDNEXT = 4,
	IMAP_STATUS_UIDVALIDITY = 8,
	IMAP_STATUS_UNSEEN = 16,
};

static void imap_mailbox_cmd_free(struct imap_mailbox_cmd *m)
{
	mem_free(m->name);
	mem_free(m->owner);
	mem_free(m->path);
	mem_free(m);
}

/* INBOX with nothing archived in it is an empty mailbox, not an error. */
static bool imap_is_empty_inbox(const struct imap_mailbox_cmd *m, const char *code)
{
	return code != NULL && strcmp(code, "not-found") == 0 && strcmp(m->name, "INBOX") == 0;
}

static void imap_mailbox_failed(struct imap_client *client, const char *code)
{
	if (strcmp(code, "not-found") == 0 || strcmp(code, "bad-request") == 0)
		imap_client_done(client, "NO", "[NONEXISTENT] No such mailbox");
	else
		imap_client_done(client, "NO",
				 "[UNAVAILABLE] The archive is not available right now");
}

static void imap_status_answer(struct imap_client *client, const struct json *result,
			       const void *blob, size_t blob_len, const char *code,
			       const char *text, void *ctx)
{
	struct imap_mailbox_cmd *m = ctx;
	long long count = 0, uid_next = 1, uid_validity = 1;
	if (client->disconnected) {
		imap_mailbox_cmd_free(m);
		return;
	}
	if (code != NULL && !imap_is_empty_inbox(m, code)) {
		imap_mailbox_failed(client, code);
		imap_mailbox_cmd_free(m);
		return;
	}
	(void)json_get_int(result, "count", &count);
	(void)json_get_int(result, "uidNext", &uid_next);
	(void)json_get_int(result, "uidValidity", &uid_validity);
	struct str *line = str_create(128);
	const char *error;
	str_append(line, "* STATUS ");
	(void)imap_mailbox_write(line, m->name, &error);
	str_append(line, " (");
	const char *sep = "";
	if ((m->items & IMAP_STATUS_MESSAGES) != 0) {
		str_printfa(line, "%sMESSAGES %lld", sep, count);
		sep = " ";
	}
	if ((m->items & IMAP_STATUS_RECENT) != 0) {
		str_printfa(line, "%sRECENT 0", sep);
		sep = " ";
	}
	if ((m->items & IMAP_STATUS_UIDNEXT) != 0) {
		str_printfa(line, "%sUIDNEXT %lld", sep, uid_next);
		sep = " ";
	}
	if ((m->items & IMAP_STATUS_UIDVALIDITY) != 0) {
		str_printfa(line, "%sUIDVALIDITY %lld", sep, uid_validity);
		sep = " ";
	}
	if ((m->items & IMAP_STATUS_UNSEEN) != 0)
		str_printfa(line, "%sUNSEEN 0", sep);
	str_append_c(line, ')');
	imap_client_send(client, "%s", str_c(line));
	str_destroy(&line);
	imap_client_done(client, "OK", "STATUS completed");
	imap_mailbox_cmd_free(m);
}

/* The mailbox argument into m (name, owner, path): false if it is bad. */
static bool imap_mailbox_arg(struct imap_client *client, const struct imap_arg *arg,
			     struct imap_mailbox_cmd *m)
{
	struct str *name = str_create(64);
	const char *error;
	if (imap_mailbox_from_arg(arg, name, &error) < 0) {
		str_destroy(&name);
		return false;
	}
	m->name = str_steal(&name);
	if (imap_folder_from_name(client, m->name, &m->owner, &m->path) < 0) {
		m->owner = mem_strdup("");
		m->path = mem_strdup("");
	}
	return true;
}

static struct json *imap_folder_args(const struct imap_mailbox_cmd *m)
{
	struct json *args = json_new_object();
	json_set_string(args, "owner", m->owner);
	json_set_string(args, "path", m->path);
	return args;
}

void imap_cmd_status(struct imap_client *client, const struct imap_command *cmd)
{
	struct imap_mailbox_cmd *m = mem_new(struct imap_mailbox_cmd);
	const struct imap_arg *items;
	unsigned int n;
	if (cmd->arg_count != 2 || !imap_mailbox_arg(client, &cmd->args[0], m) ||
	    !imap_arg_get_list(&cmd->args[1], &items, &n) || n == 0) {
		imap_mailbox_cmd_free(m);
		imap_client_done(client, "BAD", "STATUS needs a mailbox and a list of items");
		return;
	}
	static const char *const names[] = {"MESSAGES",    "RECENT", "UIDNEXT",
					    "UIDVALIDITY", "UNSEEN", NULL};
	for (unsigned int i = 0; i < n; i++) {
		unsigned int bit = 0;
		for (unsigned int k = 0; names[k] != NULL; k++) {
			if (imap_arg_atom_equals(&items[i], names[k]))
				bit = 1u << k;
		}
		if (bit == 0) {
			imap_mailbox_cmd_free(m);
			imap_client_done(client, "BAD", "Unknown STATUS item");
			return;
		}
		m->items |= bit;
	}
	imap_client_call(client, "ClientFolderUids", imap_folder_args(m), imap_status_answer, m);
}

void imap_client_unselect(struct imap_client *client)
{
	mem_free(client->mailbox);
	mem_free(client->owner);
	mem_free(client->path);
	client->mailbox = client->owner = client->path = NULL;
	imap_uidmap_destroy(&client->uids);
	if (client->state == IMAP_STATE_SELECTED)
		client->state = IMAP_STATE_AUTH;
}

static void imap_select_answer(struct imap_client *client, const struct json *result,
			       const void *blob, size_t blob_len, const char *code,
			       const char *text, void *ctx)
{
	struct imap_mailbox_cmd *m = ctx;
	long long uid_next = 1, uid_validity = 1;
	if (client->disconnected) {
		imap_mailbox_cmd_free(m);
		return;
	}
	struct imap_uidmap *uids = imap_uidmap_create();
	const char *error, *set = json_get_string(result, "uids");
	if (code != NULL && !imap_is_empty_inbox(m, code)) {
		imap_uidmap_destroy(&uids);
		imap_mailbox_failed(client, code);
		imap_mailbox_cmd_free(m);
		return;
	}
	if (code == NULL && (set == NULL || imap_uidmap_append_set(uids, set, &error) < 0)) {
		log_warning(client->context, "SELECT: bad answer from the instance");
		imap_uidmap_destroy(&uids);
		imap_client_done(client, "NO", "[SERVERBUG] The archive gave a bad answer");
		imap_mailbox_cmd_free(m);
		return;
	}
	(void)json_get_int(result, "uidNext", &uid_next);
	(void)json_get_int(result, "uidValidity", &uid_validity);
	client->mailbox = m->name;
	client->owner = m->owner;
	client->path = m->path;
	m->name = m->owner = m->path = NULL;
	client->uids = uids;
	client->uid_next = (uint32_t)uid_next;
	client->uid_validity = (uint32_t)uid_validity;
	client->state = IMAP_STATE_SELECTED;
	imap_client_send(client, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
	imap_client_send(client, "* OK [PERMANENTFLAGS ()] The archive is read-only");
	imap_client_send(client, "* %u EXISTS", imap_uidmap_count(uids));
	imap_client_send(client, "* 0 RECENT");
	imap_client_send(client, "* OK [UIDVALIDITY %u] UIDs valid", client->uid_validity);
	imap_client_send(client, "* OK [UIDNEXT %u] Predicted next UID", client->uid_next);
	imap_client_done(client, "OK", "[READ-ONLY] %s completed",
			 m->examine ? "EXAMINE" : "SELECT");
	imap_mailbox_cmd_free(m);
}

void imap_cmd_select(struct imap_client *client, const struct imap_command *cmd, bool examine)
{
	/* a failed SELECT leaves no mailbox selected (RFC 3501 6.3.1) */
	imap_client_unselect(client);
	struct imap_mailbox_cmd *m = mem_new(struct imap_mailbox_cmd);
	m->examine = examine;
	if (cmd->arg_count != 1 || !imap_mailbox_arg(client, &cmd->args[0], m)) {
		imap_mailbox_cmd_free(m);
		imap_client_done(client, "BAD", "%s needs a mailbox name", cmd->name);
		return;
	}
	imap_client_call(client, "ClientFolderUids", imap_folder_args(m), imap_select_answer, m);
}

/* ---- new mail: NOOP, CHECK, IDLE ---- */

/* Messages deleted from the archive (retention, DeleteMessage) since the
 * mailbox was selected: "* n EXPUNGE" for each, from the highest sequence
 * number down so that each number is still right when sent. New messages
 * always get UIDs above the highest known, so below it the folder only
 * loses: equal counts mean nothing went, and the walk is skipped. */
static void imap_refresh_expunged(struct imap_client *client, const struct imap_uidmap *all)
{
	uint32_t max = imap_uidmap_max_uid(client->uids);
	uint32_t count = imap_uidmap_count(client->uids);
	if (imap_uidmap_seq_at_or_after(all, max + 1) - 1 == count)
		return;
	struct imap_uidmap *kept = imap_uidmap_create();
	for (uint32_t seq = count; seq >= 1; seq--) {
		if (imap_uidmap_seq(all, imap_uidmap_uid(client->uids, seq)) == 0)
			imap_client_send(client, "* %u EXPUNGE", seq);
	}
	for (uint32_t seq = 1; seq <= count; seq++) {
		uint32_t uid = imap_uidmap_uid(client->uids, seq);
		if (imap_uidmap_seq(all, uid) != 0)
			(void)imap_uidmap_append(kept, uid);
	}
	imap_uidmap_destroy(&client->uids);
	client->uids = kept;
}

static void imap_refresh_answer(struct imap_client *client, const struct json *result,
				const void *blob, size_t blob_len, const char *code,
				const char *text, void *ctx)
{
	bool finish = ctx != NULL;
	const char *set = json_get_string(result, "uids");
	if (client->disconnected)
		return;
	if (code == NULL && set != NULL && client->uids != NULL) {
		/* only what is new: UIDs above the highest known */
		struct imap_uidmap *all = imap_uidmap_create();
		const char *error;
		uint32_t before = imap_uidmap_count(client->uids);
		if (imap_uidmap_append_set(all, set, &error) == 0) {
			imap_refresh_expunged(client, all);
			before = imap_uidmap_count(client->uids);
			uint32_t max = imap_uidmap_max_uid(client->uids);
			for (uint32_t seq = imap_uidmap_seq_at_or_after(all, max + 1);
			     seq <= imap_uidmap_count(all); seq++)
				(void)imap_uidmap_append(client->uids, imap_uidmap_uid(all, seq));
		}
		imap_uidmap_destroy(&all);
		if (imap_uidmap_count(client->uids) != before)
			imap_client_send(client, "* %u EXISTS", imap_uidmap_count(client->uids));
	}
	if (finish)
		imap_client_done(client, "OK", "%s completed", client->command);
}

static void imap_refresh(struct imap_client *client, bool finish)
{
	struct json *args = json_new_object();
	json_set_string(args, "owner", client->owner);
	json_set_string(args, "path", client->path);
	imap_client_call(client, "ClientFolderUids", args, imap_refresh_answer,
			 finish ? (void *)client : NULL);
}

void imap_cmd_noop(struct imap_client *client)
{
	if (client->state == IMAP_STATE_SELECTED)
		imap_refresh(client, true);
	else
		imap_client_done(client, "OK", "%s completed", client->command);
}

static void imap_idle_check_cb(evutil_socket_t fd, short events, void *ctx)
{
	struct imap_client *client = ctx;
	if (client->idling && client->state == IMAP_STATE_SELECTED)
		imap_refresh(client, false);
}

void imap_cmd_idle(struct imap_client *client)
{
	client->idling = true;
	client->raw_line_wanted = true;
	imap_client_send(client, "+ idling");
	if (client->idle_check == NULL)
		client->idle_check = event_new(client->server->set.base, -1, EV_PERSIST,
					       imap_idle_check_cb, client);
	struct timeval tv = {IMAP_IDLE_CHECK_SECS, 0};
	event_add(client->idle_check, &tv);
}

void imap_idle_line(struct imap_client *client, const char *line)
{
	client->idling = false;
	client->raw_line_wanted = false;
	event_del(client->idle_check);
	if (strcasecmp(line, "DONE") == 0)
		imap_client_done(client, "OK", "IDLE terminated");
	else
		imap_client_done(client, "BAD", "Expected DONE");
}
