/* archive-source-files: EML files, directories, mbox files and Maildir trees
 * as an archive source (archive-source.h). The directory walk keeps an
 * explicit stack of open directories (their sorted names), so that the
 * iterator can stop after any message and carry on from there. */
#include "archive-source.h"
#include "array.h"
#include "mbox.h"
#include "mem.h"
#include "pst.h"
#include "tstr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper trees are reported, not walked (no runaway recursion). */
#define ARCHIVE_SOURCE_FILES_MAX_DEPTH 32

struct archive_source_files_dir {
	char *path, *folder;
	int depth;
	bool maildir;
	/* sorted names; in a Maildir, "cur/NAME" and "new/NAME" first */
	char **names;
	size_t count, next;
};

struct archive_source_files_skip {
	char *label, *folder, *reason;
	enum archive_import_skip kind;
};

struct archive_source_files {
	const char *const *paths;
	size_t path_count, next_path;
	char *base_folder;
	/* the import's folder was given: PST folders go below it */
	bool base_given;
	uint64_t max_message;
	ARRAY(struct archive_source_files_dir) dirs;
	ARRAY(struct archive_source_files_skip) skips;
	size_t skip_next;

	/* the message last returned: its strings live until the next call */
	char *label, *folder, *reason;
	/* a single-message file being read */
	int fd;
	/* an mbox being split: its descriptor (closed unless stdin) and name */
	struct mbox_reader *mbox;
	int mbox_fd;
	char *mbox_name, *mbox_folder;
	bool mbox_has_message;
	size_t mbox_len;
	/* a PST being read: its name and the folder its folders go below
	 * (NULL: the top) */
	struct pst_reader *pst;
	char *pst_name, *pst_folder;
	bool pst_has_message;
};

static const char *archive_source_files_too_large(uint64_t size, uint64_t max)
{
	return tstr_printf("too large: %llu bytes, the limit is %llu (max_message_size)",
			   (unsigned long long)size, (unsigned long long)max);
}

struct archive_source_files *archive_source_files_create(const char *const *paths,
							 size_t path_count, const char *base_folder,
							 uint64_t max_message_size)
{
	struct archive_source_files *f = mem_new(struct archive_source_files);
	f->paths = paths;
	f->path_count = path_count;
	f->base_folder = mem_strdup(base_folder != NULL ? base_folder : "INBOX");
	f->base_given = base_folder != NULL;
	f->max_message = max_message_size != 0 ? max_message_size : ARCHIVE_IMPORT_MAX_MESSAGE;
	f->fd = -1;
	f->mbox_fd = -1;
	return f;
}

static void archive_source_files_free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		mem_free(names[i]);
	mem_free(names);
}

static void archive_source_files_close_mbox(struct archive_source_files *f)
{
	mbox_reader_destroy(&f->mbox);
	if (f->mbox_fd > STDIN_FILENO)
		close(f->mbox_fd);
	f->mbox_fd = -1;
	mem_free(f->mbox_name);
	mem_free(f->mbox_folder);
	f->mbox_name = f->mbox_folder = NULL;
	f->mbox_has_message = false;
}

static void archive_source_files_close_pst(struct archive_source_files *f)
{
	pst_reader_destroy(&f->pst);
	mem_free(f->pst_name);
	mem_free(f->pst_folder);
	f->pst_name = f->pst_folder = NULL;
	f->pst_has_message = false;
}

static void archive_source_files_clear_current(struct archive_source_files *f)
{
	mem_free(f->label);
	mem_free(f->folder);
	mem_free(f->reason);
	f->label = f->folder = f->reason = NULL;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	f->mbox_has_message = false;
	f->pst_has_message = false;
}

static void archive_source_files_clear_skips(struct archive_source_files *f)
{
	for (size_t i = 0; i < f->skips.count; i++) {
		mem_free(f->skips.items[i].label);
		mem_free(f->skips.items[i].folder);
		mem_free(f->skips.items[i].reason);
	}
	array_clear(&f->skips);
	f->skip_next = 0;
}

void archive_source_files_destroy(struct archive_source_files **files)
{
	struct archive_source_files *f = *files;
	if (f == NULL)
		return;
	archive_source_files_clear_current(f);
	archive_source_files_close_mbox(f);
	archive_source_files_close_pst(f);
	archive_source_files_clear_skips(f);
	array_free(&f->skips);
	for (size_t i = 0; i < f->dirs.count; i++) {
		struct archive_source_files_dir *d = &f->dirs.items[i];
		mem_free(d->path);
		mem_free(d->folder);
		archive_source_files_free_names(d->names, d->count);
	}
	array_free(&f->dirs);
	mem_free(f->base_folder);
	mem_free(f);
	*files = NULL;
}

static void archive_source_files_skip(struct archive_source_files *f, const char *label,
				      const char *folder, enum archive_import_skip kind,
				      const char *reason)
{
	struct archive_source_files_skip *s = array_push(&f->skips);
	s->label = mem_strdup(label);
	s->folder = mem_strdup(folder);
	s->reason = mem_strdup(reason);
	s->kind = kind;
}

static int archive_source_files_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in path, sorted, each after prefix; hidden ones left out if
 * skip_hidden. */
static void archive_source_files_list(const char *path, const char *prefix, bool skip_hidden,
				      void *names_array)
{
	ARRAY(char *) *names = names_array;
	ARRAY(char *) found = ARRAY_INIT;
	DIR *d = opendir(path);
	if (d != NULL) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			    (skip_hidden && de->d_name[0] == '.'))
				continue;
			array_append(&found, mem_printf("%s%s", prefix, de->d_name));
		}
		closedir(d);
	}
	array_sort(&found, archive_source_files_name_cmp);
	for (size_t i = 0; i < found.count; i++)
		array_append(names, found.items[i]);
	array_free(&found);
}

static bool archive_source_files_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool archive_source_files_is_regular(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool archive_source_files_is_maildir(const char *path)
{
	char *cur = mem_printf("%s/cur", path), *new_ = mem_printf("%s/new", path);
	bool ret = archive_source_files_is_dir(cur) || archive_source_files_is_dir(new_);
	mem_free(cur);
	mem_free(new_);
	return ret;
}

/* Opens a directory for the walk: a Maildir lists cur/ and new/ (its mail)
 * before its own entries (Maildir++ subfolders, nested Maildirs). */
static void archive_source_files_push_dir(struct archive_source_files *f, const char *path,
					  const char *folder, int depth)
{
	if (depth > ARCHIVE_SOURCE_FILES_MAX_DEPTH) {
		archive_source_files_skip(f, path, folder, ARCHIVE_IMPORT_SKIP_UNREADABLE,
					  "directory tree too deep");
		return;
	}
	ARRAY(char *) names = ARRAY_INIT;
	bool maildir = archive_source_files_is_maildir(path);
	if (maildir) {
		char *cur = mem_printf("%s/cur", path), *new_ = mem_printf("%s/new", path);
		archive_source_files_list(cur, "cur/", true, &names);
		archive_source_files_list(new_, "new/", true, &names);
		mem_free(cur);
		mem_free(new_);
	}
	archive_source_files_list(path, "", false, &names);
	struct archive_source_files_dir *d = array_push(&f->dirs);
	d->path = mem_strdup(path);
	d->folder = mem_strdup(folder);
	d->depth = depth;
	d->maildir = maildir;
	d->names = names.items;
	d->count = names.count;
}

static void archive_source_files_pop_dir(struct archive_source_files *f)
{
	struct archive_source_files_dir *d = &f->dirs.items[f->dirs.count - 1];
	mem_free(d->path);
	mem_free(d->folder);
	archive_source_files_free_names(d->names, d->count);
	f->dirs.count--;
}

static void archive_source_files_set_current(struct archive_source_files *f,
					     struct archive_source_message *msg, const char *label,
					     const char *folder)
{
	memset(msg, 0, sizeof(*msg));
	f->label = mem_strdup(label);
	f->folder = mem_strdup(folder);
	msg->label = f->label;
	msg->folder = f->folder;
}

static bool archive_source_files_is_pst(const unsigned char *data, size_t len)
{
	return len >= 4 && memcmp(data, "!BDN", 4) == 0;
}

static bool archive_source_files_pst_name(const char *path)
{
	size_t len = strlen(path);
	return len >= 4 && strcasecmp(path + len - 4, ".pst") == 0;
}

/* A PST file: its messages come from the next calls, in its folders (below
 * the import's folder if one was given, else at the top); one that cannot
 * be opened (not a PST, truncated, damaged) is reported and nothing of it
 * is archived. */
static void archive_source_files_open_pst(struct archive_source_files *f, const char *path,
					  const char *folder, bool in_dir)
{
	const char *error;
	if (pst_reader_open(path, f->max_message, &f->pst, &error) < 0) {
		archive_source_files_skip(f, path, folder, ARCHIVE_IMPORT_SKIP_UNREADABLE,
					  tstr_printf("PST: %s", error));
		return;
	}
	f->pst_name = mem_strdup(path);
	f->pst_folder = f->base_given || in_dir ? mem_strdup(folder) : NULL;
}

static int archive_source_files_pst_next(struct archive_source_files *f,
					 struct archive_source_message *msg)
{
	struct pst_message m;
	const char *error;
	int ret = pst_reader_next(f->pst, &m, &error);
	if (ret == 1) {
		char *label = mem_printf("%s:%llu", f->pst_name, (unsigned long long)m.index);
		char *folder;
		if (f->pst_folder == NULL && strncasecmp(m.folder, "Inbox", 5) == 0 &&
		    (m.folder[5] == '\0' || m.folder[5] == '/'))
			/* Outlook's Inbox is the archive's INBOX (IMAP) */
			folder = mem_printf("INBOX%s", m.folder + 5);
		else if (f->pst_folder == NULL)
			folder = mem_strdup(m.folder[0] != '\0' ? m.folder : f->base_folder);
		else if (m.folder[0] != '\0')
			folder = mem_printf("%s/%s", f->pst_folder, m.folder);
		else
			folder = mem_strdup(f->pst_folder);
		archive_source_files_set_current(f, msg, label, folder);
		mem_free(label);
		mem_free(folder);
		msg->key = m.index;
		msg->received = m.received;
		msg->size = m.len;
		if (m.skip_reason != NULL) {
			msg->skip_kind =
				m.skip_kind == PST_SKIP_TOO_LARGE  ? ARCHIVE_IMPORT_SKIP_TOO_LARGE
				: m.skip_kind == PST_SKIP_NOT_MAIL ? ARCHIVE_IMPORT_SKIP_UNSUPPORTED
								   : ARCHIVE_IMPORT_SKIP_UNREADABLE;
			f->reason = mem_strdup(m.skip_reason);
			msg->skip_reason = f->reason;
		} else {
			f->pst_has_message = true;
		}
		return 1;
	}
	if (ret < 0) {
		archive_source_files_skip(
			f, f->pst_name, f->pst_folder != NULL ? f->pst_folder : f->base_folder,
			ARCHIVE_IMPORT_SKIP_UNREADABLE, tstr_printf("PST: %s", error));
	}
	archive_source_files_close_pst(f);
	return 0;
}

/* An mbox starts with an envelope line, "From " and a sender; "From :" is
 * a header field in RFC 5322's obsolete syntax, so a single message. */
static bool archive_source_files_is_mbox(const unsigned char *head, size_t len)
{
	if (len < 5 || memcmp(head, "From ", 5) != 0)
		return false;
	size_t i = 5;
	while (i < len && (head[i] == ' ' || head[i] == '\t'))
		i++;
	return i < len && head[i] != ':' && head[i] != '\n' && head[i] != '\r';
}

static void archive_source_files_open_mbox(struct archive_source_files *f, int fd, const char *name,
					   const char *folder)
{
	f->mbox = mbox_reader_create_fd(fd);
	mbox_reader_set_max(f->mbox, (size_t)f->max_message);
	f->mbox_fd = fd;
	f->mbox_name = mem_strdup(name);
	f->mbox_folder = mem_strdup(folder);
}

/* One file: an mbox if it starts with a From_ line (split by the next
 * calls), else one message, returned as 1 with its size known before it is
 * read; what cannot be read is queued as a skip. */
static int archive_source_files_open(struct archive_source_files *f, const char *path,
				     const char *folder, struct archive_source_message *msg)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		archive_source_files_skip(f, path, folder, ARCHIVE_IMPORT_SKIP_UNREADABLE,
					  tstr_printf("cannot open: %s", strerror(errno)));
		if (fd >= 0)
			close(fd);
		return 0;
	}
	unsigned char head[64];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	if (n > 0 && archive_source_files_is_mbox(head, (size_t)n)) {
		archive_source_files_open_mbox(f, fd, path, folder);
		return 0;
	}
	if ((n >= 4 && archive_source_files_is_pst(head, (size_t)n)) ||
	    archive_source_files_pst_name(path)) {
		close(fd);
		archive_source_files_open_pst(f, path, folder, f->dirs.count > 0);
		return 0;
	}
	const char *why = NULL;
	enum archive_import_skip kind = ARCHIVE_IMPORT_SKIP_UNSUPPORTED;
	if ((uint64_t)st.st_size > f->max_message) {
		kind = ARCHIVE_IMPORT_SKIP_TOO_LARGE;
		why = archive_source_files_too_large((uint64_t)st.st_size, f->max_message);
	} else if (st.st_size == 0) {
		kind = ARCHIVE_IMPORT_SKIP_EMPTY;
		why = "empty file";
	}
	if (why != NULL) {
		archive_source_files_skip(f, path, folder, kind, why);
		close(fd);
		return 0;
	}
	archive_source_files_set_current(f, msg, path, folder);
	f->fd = fd;
	msg->received = (int64_t)st.st_mtime;
	msg->size = (uint64_t)st.st_size;
	return 1;
}

static int archive_source_files_mbox_next(struct archive_source_files *f,
					  struct archive_source_message *msg)
{
	struct mbox_message m;
	const char *error;
	int ret = mbox_reader_next(f->mbox, &m, &error);
	if (ret == 1) {
		char *label = mem_printf("%s:%llu", f->mbox_name, (unsigned long long)m.index);
		archive_source_files_set_current(f, msg, label, f->mbox_folder);
		mem_free(label);
		msg->key = m.index;
		msg->received = m.from_date;
		msg->size = m.len;
		if (m.refused) {
			msg->skip_kind = ARCHIVE_IMPORT_SKIP_TOO_LARGE;
			f->reason =
				mem_strdup(archive_source_files_too_large(m.len, f->max_message));
			msg->skip_reason = f->reason;
		} else {
			f->mbox_has_message = true;
			f->mbox_len = m.len;
		}
		return 1;
	}
	if (ret < 0) {
		archive_source_files_skip(f, f->mbox_name, f->mbox_folder,
					  ARCHIVE_IMPORT_SKIP_UNREADABLE, error);
	}
	if (mbox_reader_skipped(f->mbox) > 0) {
		archive_source_files_skip(
			f, f->mbox_name, f->mbox_folder, ARCHIVE_IMPORT_SKIP_NOT_A_MESSAGE,
			tstr_printf("not a message: %llu bytes before the first message",
				    (unsigned long long)mbox_reader_skipped(f->mbox)));
	}
	archive_source_files_close_mbox(f);
	return 0;
}

/* The next entry of the innermost open directory: a file (1 if it is a
 * message), a directory pushed, or nothing. */
static int archive_source_files_dir_next(struct archive_source_files *f,
					 struct archive_source_message *msg)
{
	struct archive_source_files_dir *d = &f->dirs.items[f->dirs.count - 1];
	if (d->next == d->count) {
		archive_source_files_pop_dir(f);
		return 0;
	}
	const char *name = d->names[d->next++];
	char *sub = mem_printf("%s/%s", d->path, name);
	char *folder = mem_strdup(d->folder);
	int depth = d->depth;
	int ret = 0;
	bool maildir = d->maildir;
	/* d may move from here on (push) */
	if (maildir && (strncmp(name, "cur/", 4) == 0 || strncmp(name, "new/", 4) == 0)) {
		ret = archive_source_files_open(f, sub, folder, msg);
	} else if (maildir) {
		if (strcmp(name, "cur") == 0 || strcmp(name, "new") == 0 ||
		    strcmp(name, "tmp") == 0) {
			/* the Maildir's own mail directories, listed above */
		} else if (archive_source_files_is_dir(sub)) {
			/* Maildir++ ".A.B" is the folder A/B */
			char *sname = mem_strdup(name[0] == '.' ? name + 1 : name);
			for (char *p = sname; name[0] == '.' && *p != '\0'; p++) {
				if (*p == '.')
					*p = '/';
			}
			char *subfolder = mem_printf("%s/%s", folder, sname);
			archive_source_files_push_dir(f, sub, subfolder, depth + 1);
			mem_free(subfolder);
			mem_free(sname);
		} else if (archive_source_files_is_regular(sub)) {
			/* not where a Maildir keeps mail (its own files, such as
			 * dovecot-uidlist, or messages put there by hand): read,
			 * so that it is archived or reported, never passed over */
			ret = archive_source_files_open(f, sub, folder, msg);
		}
	} else {
		struct stat st;
		if (lstat(sub, &st) < 0 || S_ISLNK(st.st_mode)) {
			/* symlinks are not followed (no loops, no escaping the tree) */
		} else if (S_ISDIR(st.st_mode)) {
			char *subfolder = mem_printf("%s/%s", folder, name);
			archive_source_files_push_dir(f, sub, subfolder, depth + 1);
			mem_free(subfolder);
		} else if (S_ISREG(st.st_mode)) {
			ret = archive_source_files_open(f, sub, folder, msg);
		}
	}
	mem_free(folder);
	mem_free(sub);
	return ret;
}

static int archive_source_files_path_next(struct archive_source_files *f,
					  struct archive_source_message *msg)
{
	const char *path = f->paths[f->next_path++];
	if (strcmp(path, "-") == 0) {
		archive_source_files_open_mbox(f, STDIN_FILENO, "-", f->base_folder);
		return 0;
	}
	if (archive_source_files_is_dir(path)) {
		archive_source_files_push_dir(f, path, f->base_folder, 0);
		return 0;
	}
	return archive_source_files_open(f, path, f->base_folder, msg);
}

static int archive_source_files_next(void *context, struct archive_source_message *msg_r,
				     const char **error_r)
{
	struct archive_source_files *f = context;
	(void)error_r;
	archive_source_files_clear_current(f);
	for (;;) {
		if (f->skip_next < f->skips.count) {
			struct archive_source_files_skip *s = &f->skips.items[f->skip_next++];
			archive_source_files_set_current(f, msg_r, s->label, s->folder);
			f->reason = mem_strdup(s->reason);
			msg_r->skip_reason = f->reason;
			msg_r->skip_kind = s->kind;
			return 1;
		}
		archive_source_files_clear_skips(f);
		int ret;
		if (f->mbox != NULL)
			ret = archive_source_files_mbox_next(f, msg_r);
		else if (f->pst != NULL)
			ret = archive_source_files_pst_next(f, msg_r);
		else if (f->dirs.count > 0)
			ret = archive_source_files_dir_next(f, msg_r);
		else if (f->next_path < f->path_count)
			ret = archive_source_files_path_next(f, msg_r);
		else
			return 0;
		/* a call that queues a skip never also returns a message,
		 * so the order of the input is kept */
		if (ret == 1)
			return 1;
	}
}

static ssize_t archive_source_files_read(void *context, unsigned char *buf, size_t size,
					 const char **error_r)
{
	struct archive_source_files *f = context;
	if (f->pst_has_message)
		return pst_reader_read(f->pst, buf, size, error_r);
	if (f->fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(f->fd, buf, size);
		if (n >= 0)
			return n;
		if (errno != EINTR) {
			*error_r = tstr_printf("read failed: %s", strerror(errno));
			return -1;
		}
	}
}

static unsigned char *archive_source_files_take(void *context, size_t *len_r)
{
	struct archive_source_files *f = context;
	if (!f->mbox_has_message)
		return NULL;
	f->mbox_has_message = false;
	unsigned char *data = mbox_reader_take(f->mbox);
	/* the message just returned by mbox_reader_next(): its length */
	*len_r = f->mbox_len;
	return data;
}

const struct archive_source_funcs archive_source_files_funcs = {
	.next = archive_source_files_next,
	.read = archive_source_files_read,
	.take = archive_source_files_take,
};
