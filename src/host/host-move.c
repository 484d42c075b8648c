#include "host-move.h"
#include "crypto.h"
#include "array.h"
#include "file.h"
#include "hash.h"
#include "hex.h"
#include "host-instances.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "str.h"
#include "tstr.h"
#include "worker-pool.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* One answer's bytes: large enough that a round trip per chunk costs little,
 * well under the frame limit. */
#define HOST_MOVE_CHUNK (4u * 1024 * 1024)
/* How long a target keeps trying to reach its source before it gives up. */
#define HOST_MOVE_CONNECT_SECS 60
#define HOST_MOVE_READ_SECS 120
/* With TLS 1.3 a source that refuses our certificate (it has no move open
 * for us, e.g. it restarted) only closes the link after the handshake: so
 * many closes before the listing end the move instead of retrying. */
#define HOST_MOVE_EARLY_CLOSES 3
/* In a base directory from MoveInPrepare until MoveInCommit: a directory
 * holding it is the leftover of a copy cut short (this Instance Host died
 * during it), which the next MoveInPrepare may clear. */
#define HOST_MOVE_MARKER ".coffer-moving-in"
/* A file changed this recently may change again within the same tick of
 * the coarse clock file times come from, unseen by its stamp. */
#define HOST_MOVE_RACY_SECS 2
/* Files verified on the worker while later ones are copied: the fsync of
 * one overlaps the copy of the next, with a bound on the fds held open. */
#define HOST_MOVE_VERIFIES 4

struct host_move_out {
	struct host_move_out *next;
	struct rpc_conn *owner; /* the Management Server's link it began on */
	char *id, *token, *peer_fp, *base_dir, *key_path;
	struct json *entries; /* the latest listing: [{path, kind, size, mode, stamp}] */
	long long bytes;
	/* the file last read from, kept open between its pieces */
	size_t fd_index;
	int fd;
	bool froze; /* MoveOutFreeze froze it: an undone move thaws it */
};

/* One SHA-256, of a piece of a file. */
struct host_move_sum {
	unsigned char b[CRYPTO_SHA256_LEN];
};

/* What the target holds of one entry, as of the pass that last copied it. */
struct host_move_file {
	char kind; /* 'k'ey, 'd'ir, 'f'ile */
	char *stamp;
	ARRAY(struct host_move_sum) sums; /* of each piece, as verified */
};

/* A piece written in this pass, to be read back. */
struct host_move_written {
	long long offset;
	size_t len;
	struct host_move_sum sum;
};

enum host_move_in_state { MOVE_IN_PREPARED, MOVE_IN_COPYING, MOVE_IN_COPIED, MOVE_IN_FAILED };
static const char *const host_move_in_state_names[] = {"prepared", "copying", "copied", "failed"};

struct host_move_verify;

struct host_move_in {
	struct host_move_in *next;
	struct host_move *hm;
	struct rpc_conn *owner; /* the Management Server's link it began on */
	char *id, *base_dir, *key_path, *key_tmp;
	enum host_move_in_state state;
	char *error;
	bool created_base; /* removed again on abort */
	bool tearing_down; /* answers from a link being destroyed are ignored */
	char *token;
	struct rpc_client *link;
	struct event *timer;  /* connect deadline; closing the link; test delays */
	struct json *entries; /* this pass's listing */
	struct hash *known;   /* path ("" for the key) -> struct host_move_file */
	size_t index;
	/* the file being copied */
	int fd;
	char *cur_path;
	struct host_move_file *cur;
	const struct host_move_file *old; /* in known, or NULL */
	long long offset;
	ARRAY(struct host_move_written) written;
	/* files being fsynced and read back on the worker while the next ones
	 * are copied; at most HOST_MOVE_VERIFIES at a time */
	ARRAY(struct host_move_verify *) verifies;
	bool next_waiting; /* for a verify to end before the next file */
	bool pass_waiting; /* for the verifies to end before the pass does */
	/* this pass */
	unsigned int pass;
	long long bytes_done, bytes_total, bytes_sent;
	unsigned int files_synced;
	bool listed;
	unsigned int early_closes;    /* links closed before the listing */
	unsigned int read_delay_ms;   /* COFFER_TEST_MOVE_READ_DELAY_MS */
	unsigned int verify_delay_ms; /* COFFER_TEST_MOVE_VERIFY_DELAY_MS, large files */
};

struct host_move {
	struct event_base *base;
	struct host_instances *hi;
	struct tls_context *client_tls;
	const struct json *hello;
	struct worker_pool *pool; /* fsync and read-back off the event loop */
	bool destroying;
	struct host_move_out *outs;
	struct host_move_in *ins;
};

static const char *host_move_ctx(const char *id)
{
	return tstr_printf("instance=%s", id);
}

static void host_move_sum_hex(const struct host_move_sum *sum, char hex[CRYPTO_SHA256_LEN * 2 + 1])
{
	hex_encode(sum->b, sizeof(sum->b), hex);
}

/* ---- source ---- */

/* What tells a later listing that a file did not change since: device,
 * inode, size, modification and change time. Empty ("look at the bytes")
 * while either time is so recent that a write in the same clock tick
 * could follow unseen: file times come from a coarse clock. This holds for
 * files written with write(), which is how an instance writes its files;
 * the one file written through a shared mapping, SQLite's catalog.db-shm
 * (whose times may lag), is an index SQLite rebuilds when the first
 * connection opens the catalog, as the target's instance does. */
static char *host_move_stamp(const struct stat *st, time_t now)
{
	if (st->st_mtim.tv_sec >= now - HOST_MOVE_RACY_SECS ||
	    st->st_ctim.tv_sec >= now - HOST_MOVE_RACY_SECS)
		return mem_strdup("");
	return mem_printf("%llx:%llx:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)st->st_dev,
			  (unsigned long long)st->st_ino, (long long)st->st_size,
			  (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
			  (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

static struct json *host_move_entry(const char *path, const char *kind, const struct stat *st,
				    time_t now)
{
	struct json *e = json_new_object();
	json_set_string(e, "path", path);
	json_set_string(e, "kind", kind);
	json_set_int(e, "size", S_ISDIR(st->st_mode) ? 0 : (long long)st->st_size);
	json_set_int(e, "mode", (long long)(st->st_mode & 0777));
	if (!S_ISDIR(st->st_mode)) {
		char *stamp = host_move_stamp(st, now);
		json_set_string(e, "stamp", stamp);
		mem_free(stamp);
	}
	return e;
}

static int host_move_list_dir(const char *abs, const char *rel, struct json *entries,
			      long long *bytes, time_t now, const char **error_r)
{
	DIR *dir = opendir(abs);
	if (dir == NULL) {
		*error_r = tstr_printf("cannot list %s: %s", abs, strerror(errno));
		return -1;
	}
	int ret = 0;
	struct dirent *de;
	while (ret == 0 && (de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *full = mem_printf("%s/%s", abs, de->d_name);
		char *sub = rel[0] == '\0' ? mem_strdup(de->d_name)
					   : mem_printf("%s/%s", rel, de->d_name);
		struct stat st;
		if (lstat(full, &st) < 0) {
			/* gone since readdir (a file the instance replaced or
			 * removed meanwhile): the next listing sees what is there */
			if (errno != ENOENT) {
				*error_r = tstr_printf("cannot stat %s: %s", full, strerror(errno));
				ret = -1;
			}
		} else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
			json_append(entries,
				    host_move_entry(sub, S_ISDIR(st.st_mode) ? "dir" : "file", &st,
						    now));
			if (S_ISDIR(st.st_mode))
				ret = host_move_list_dir(full, sub, entries, bytes, now, error_r);
			else
				*bytes += (long long)st.st_size;
		} else {
			/* an instance keeps only directories and files; anything
			 * else is not ours to carry over */
			*error_r =
				tstr_printf("%s is neither a directory nor a regular file", full);
			ret = -1;
		}
		mem_free(full);
		mem_free(sub);
	}
	closedir(dir);
	return ret;
}

static void host_move_out_close(struct host_move_out *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/* List the key and the base directory as they are now; the instance may
 * be writing meanwhile, which a later listing catches up with. */
static int host_move_out_list(struct host_move_out *m, const char **error_r)
{
	struct stat st;
	time_t now = time(NULL);
	if (stat(m->key_path, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = tstr_printf("the instance's key %s is missing", m->key_path);
		return -1;
	}
	struct json *entries = json_new_array();
	json_append(entries, host_move_entry("", "key", &st, now));
	long long bytes = (long long)st.st_size;
	if (host_move_list_dir(m->base_dir, "", entries, &bytes, now, error_r) < 0) {
		json_unref(&entries);
		return -1;
	}
	host_move_out_close(m);
	json_unref(&m->entries);
	m->entries = entries;
	m->bytes = bytes;
	return 0;
}

static void host_move_out_free(struct host_move_out *m)
{
	host_move_out_close(m);
	json_unref(&m->entries);
	mem_free(m->id);
	mem_free(m->token);
	mem_free(m->peer_fp);
	mem_free(m->base_dir);
	mem_free(m->key_path);
	mem_free(m);
}

static struct host_move_out *host_move_out_find(struct host_move *hm, const char *id,
						const char *token)
{
	for (struct host_move_out *m = hm->outs; m != NULL; m = m->next) {
		if ((id != NULL && strcmp(m->id, id) == 0) ||
		    (token != NULL && strcmp(m->token, token) == 0))
			return m;
	}
	return NULL;
}

/* The move-out is over: starts are allowed again, and an instance the move
 * froze is thawed unless the target took it over (then it must take no
 * more writes here: the Management Server stops it). */
static void host_move_out_end(struct host_move *hm, const char *id, bool taken)
{
	for (struct host_move_out **p = &hm->outs; *p != NULL; p = &(*p)->next) {
		if (strcmp((*p)->id, id) == 0) {
			struct host_move_out *m = *p;
			*p = m->next;
			host_instances_set_moving(hm->hi, id, false);
			if (m->froze && !taken)
				host_instances_thaw_after_move(hm->hi, id);
			host_move_out_free(m);
			return;
		}
	}
}

static void host_move_out_begin(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
				const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	const char *peer = json_get_string(args, "peerFingerprint");
	const char *error;
	char *base_dir, *key_path;
	bool stopped;
	if (iid == NULL || peer == NULL || strlen(peer) != 64) {
		rpc_conn_reply_error(conn, id, "bad-request",
				     "MoveOutBegin needs instanceID and peerFingerprint (64 hex)");
		return;
	}
	if (host_instances_lookup(hm->hi, iid, &base_dir, &key_path, &stopped) < 0) {
		rpc_conn_reply_error(conn, id, "no-such-instance",
				     tstr_printf("no instance '%s' on this Instance Host", iid));
		return;
	}
	/* A move started again after a failure replaces the old one. */
	host_move_out_end(hm, iid, false);
	struct host_move_out *m = mem_new(struct host_move_out);
	m->id = mem_strdup(iid);
	m->peer_fp = mem_strdup(peer);
	m->base_dir = base_dir;
	m->key_path = key_path;
	m->fd = -1;
	if (host_move_out_list(m, &error) < 0) {
		host_move_out_free(m);
		rpc_conn_reply_error(conn, id, "failed", error);
		return;
	}
	m->token = crypto_random_hex(16);
	m->owner = conn;
	m->next = hm->outs;
	hm->outs = m;
	host_instances_set_moving(hm->hi, iid, true);
	log_info(host_move_ctx(iid), "moving out (%s): %zu entries, %lld bytes",
		 stopped ? "stopped" : "running", json_count(m->entries), m->bytes);
	struct json *r = json_new_object();
	json_set_string(r, "moveToken", m->token);
	json_set_int(r, "entries", (long long)json_count(m->entries));
	json_set_int(r, "bytes", m->bytes);
	rpc_conn_reply(conn, id, r);
}

static void host_move_out_freeze(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
				 const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	struct host_move_out *m = iid == NULL ? NULL : host_move_out_find(hm, iid, NULL);
	if (m == NULL) {
		rpc_conn_reply_error(conn, id, "failed", "no move of this instance under way here");
		return;
	}
	if (host_instances_freeze_for_move(hm->hi, iid, conn, id))
		m->froze = true;
}

static struct host_move_out *host_move_out_for_peer(struct host_move *hm, struct rpc_conn *conn,
						    uint32_t id, const struct json *args)
{
	const char *token = json_get_string(args, "moveToken");
	struct host_move_out *m = token == NULL ? NULL : host_move_out_find(hm, NULL, token);
	if (m == NULL || strcmp(m->peer_fp, rpc_conn_peer_fingerprint(conn)) != 0) {
		rpc_conn_reply_error(conn, id, "forbidden", "no move under way for this peer");
		return NULL;
	}
	return m;
}

/* Read up to a piece at offset; -1 on a read error. */
static ssize_t host_move_pread_piece(int fd, unsigned char *buf, long long offset)
{
	size_t n = 0;
	while (n < HOST_MOVE_CHUNK) {
		ssize_t r = pread(fd, buf + n, HOST_MOVE_CHUNK - n, (off_t)(offset + (long long)n));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

static void host_move_out_list_call(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
				    const struct json *args)
{
	struct host_move_out *m = host_move_out_for_peer(hm, conn, id, args);
	const char *error;
	if (m == NULL)
		return;
	if (host_move_out_list(m, &error) < 0) {
		rpc_conn_reply_error(conn, id, "io", error);
		return;
	}
	struct json *r = json_new_object();
	json_set_string(r, "instanceID", m->id);
	json_set(r, "entries", json_clone(m->entries));
	rpc_conn_reply(conn, id, r);
}

/* One piece of a file of the latest listing: its SHA-256, and its bytes
 * unless the target has a piece with that SHA-256 there already. */
static void host_move_out_read(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
			       const struct json *args)
{
	struct host_move_out *m = host_move_out_for_peer(hm, conn, id, args);
	long long index, offset;
	if (m == NULL)
		return;
	if (json_get_int(args, "index", &index) != 1 ||
	    json_get_int(args, "offset", &offset) != 1 || index < 0 ||
	    (size_t)index >= json_count(m->entries) || offset < 0) {
		rpc_conn_reply_error(conn, id, "bad-request", "index or offset out of range");
		return;
	}
	const struct json *e = json_at(m->entries, (size_t)index);
	const char *kind = json_get_string(e, "kind");
	if (strcmp(kind, "dir") == 0) {
		rpc_conn_reply_error(conn, id, "bad-request", "entry is a directory");
		return;
	}
	if (m->fd < 0 || m->fd_index != (size_t)index) {
		host_move_out_close(m);
		char *path = strcmp(kind, "key") == 0
				     ? mem_strdup(m->key_path)
				     : mem_printf("%s/%s", m->base_dir, json_get_string(e, "path"));
		m->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		int open_errno = errno;
		const char *error = tstr_printf("cannot open %s: %s", path, strerror(errno));
		mem_free(path);
		/* removed since the listing (the instance runs): empty for now,
		 * and gone from the next listing, which the target follows */
		if (m->fd < 0 && open_errno != ENOENT) {
			rpc_conn_reply_error(conn, id, "io", error);
			return;
		}
		m->fd_index = (size_t)index;
	}
	unsigned char *buf = mem_alloc(HOST_MOVE_CHUNK);
	ssize_t n = m->fd < 0 ? 0 : host_move_pread_piece(m->fd, buf, offset);
	if (n < 0) {
		rpc_conn_reply_error(conn, id, "io",
				     tstr_printf("read failed: %s", strerror(errno)));
		mem_free(buf);
		host_move_out_close(m);
		return;
	}
	struct host_move_sum sum;
	char hex[CRYPTO_SHA256_LEN * 2 + 1];
	crypto_sha256(buf, (size_t)n, sum.b);
	host_move_sum_hex(&sum, hex);
	const char *have = json_get_string(args, "have");
	bool same = have != NULL && strcmp(have, hex) == 0;
	struct json *r = json_new_object();
	json_set_bool(r, "eof", (size_t)n < HOST_MOVE_CHUNK);
	json_set_int(r, "length", (long long)n);
	json_set_string(r, "sha256", hex);
	json_set_bool(r, "same", same);
	if (same)
		rpc_conn_reply(conn, id, r);
	else
		rpc_conn_reply_blob(conn, id, r, buf, (size_t)n);
	mem_free(buf);
}

/* ---- target ---- */

static struct host_move_in *host_move_in_find(struct host_move *hm, const char *id)
{
	for (struct host_move_in *m = hm->ins; m != NULL; m = m->next) {
		if (strcmp(m->id, id) == 0)
			return m;
	}
	return NULL;
}

static void host_move_file_free(struct host_move_file *f)
{
	if (f == NULL)
		return;
	array_free(&f->sums);
	mem_free(f->stamp);
	mem_free(f);
}

static void host_move_known_clear(struct host_move_in *m)
{
	struct hash_iter it;
	const char *key;
	void *value;
	hash_iter_init(&it, m->known);
	while (hash_iter_next(&it, &key, &value) == 1)
		host_move_file_free(value);
	hash_destroy(&m->known);
}

/* Work handed to the worker: fsync a file and read back what this pass
 * wrote of it. The fd is the job's from here on. */
struct host_move_verify {
	struct host_move_in *m; /* NULL once the move is gone: drop the result */
	int fd;
	char *path;
	char *key;                   /* its path in the listing ("" for the key) */
	struct host_move_file *file; /* joins m->known once verified */
	struct host_move_written *pieces;
	size_t count;
	char *error; /* mem_printf'd on the worker; never tstr there */
	unsigned int delay_ms;
};

static void host_move_verify_free(struct host_move_verify *v)
{
	if (v->fd >= 0)
		close(v->fd);
	mem_free(v->path);
	mem_free(v->key);
	host_move_file_free(v->file);
	mem_free(v->pieces);
	mem_free(v->error);
	mem_free(v);
}

static void host_move_in_close_file(struct host_move_in *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	mem_free(m->cur_path);
	m->cur_path = NULL;
	host_move_file_free(m->cur);
	m->cur = NULL;
	m->old = NULL;
	array_clear(&m->written);
}

/* The move is failing or going: verifies still under way drop their result. */
static void host_move_in_orphan_verifies(struct host_move_in *m)
{
	for (size_t i = 0; i < m->verifies.count; i++)
		m->verifies.items[i]->m = NULL;
	array_clear(&m->verifies);
	m->next_waiting = m->pass_waiting = false;
}

static void host_move_in_close_link(evutil_socket_t fd, short events, void *ctx)
{
	struct host_move_in *m = ctx;
	m->tearing_down = true;
	rpc_client_destroy(&m->link);
	m->tearing_down = false;
}

static void host_move_in_fail(struct host_move_in *m, const char *error)
{
	if (m->tearing_down || m->state != MOVE_IN_COPYING)
		return;
	m->state = MOVE_IN_FAILED;
	mem_free(m->error);
	m->error = mem_strdup(error);
	host_move_in_close_file(m);
	host_move_in_orphan_verifies(m);
	log_error(host_move_ctx(m->id), "moving in failed: %s", error);
	/* not from inside the link's own callbacks */
	event_del(m->timer);
	event_assign(m->timer, m->hm->base, -1, 0, host_move_in_close_link, m);
	event_active(m->timer, EV_TIMEOUT, 0);
}

static int host_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void host_move_in_free(struct host_move_in *m, bool remove_data)
{
	m->tearing_down = true;
	rpc_client_destroy(&m->link);
	host_move_in_close_file(m);
	host_move_in_orphan_verifies(m);
	array_free(&m->verifies);
	if (remove_data) {
		(void)nftw(m->base_dir, host_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		if (!m->created_base)
			(void)mkdir(m->base_dir, 0700);
		(void)unlink(m->key_tmp);
	}
	event_free(m->timer);
	json_unref(&m->entries);
	host_move_known_clear(m);
	array_free(&m->written);
	mem_free(m->id);
	mem_free(m->base_dir);
	mem_free(m->key_path);
	mem_free(m->key_tmp);
	mem_free(m->token);
	mem_free(m->error);
	mem_free(m);
}

static void host_move_in_remove(struct host_move *hm, struct host_move_in *m, bool remove_data)
{
	for (struct host_move_in **p = &hm->ins; *p != NULL; p = &(*p)->next) {
		if (*p == m) {
			*p = m->next;
			break;
		}
	}
	host_move_in_free(m, remove_data);
}

static bool host_move_in_leftover(const char *base_dir)
{
	char *marker = mem_printf("%s/%s", base_dir, HOST_MOVE_MARKER);
	struct stat st;
	bool found = lstat(marker, &st) == 0 && S_ISREG(st.st_mode);
	mem_free(marker);
	return found;
}

static int host_move_in_check_empty(const char *base_dir, const char **error_r)
{
	DIR *dir = opendir(base_dir);
	struct dirent *de;
	bool empty = true;
	while (dir != NULL && (de = readdir(dir)) != NULL)
		empty = empty && (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
	if (dir != NULL)
		closedir(dir);
	if (dir == NULL || !empty) {
		*error_r = "it exists and is not an empty directory";
		return -1;
	}
	return 0;
}

/* An empty (or new) directory the Instance Host's user can write, marked as
 * being moved into. */
static int host_move_in_make_base(struct host_move_in *m, const char **error_r)
{
	struct stat st;
	if (stat(m->base_dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	    host_move_in_leftover(m->base_dir)) {
		log_info(host_move_ctx(m->id), "removing the leftover of an interrupted copy in %s",
			 m->base_dir);
		(void)nftw(m->base_dir, host_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	if (stat(m->base_dir, &st) == 0) {
		if (host_move_in_check_empty(m->base_dir, error_r) < 0)
			return -1;
	} else if (file_mkdir_parents(m->base_dir, 0700, error_r) < 0) {
		return -1;
	} else {
		m->created_base = true;
	}
	/* the marker is also the proof that we can write there */
	char *marker = mem_printf("%s/%s", m->base_dir, HOST_MOVE_MARKER);
	int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		*error_r = tstr_printf("cannot write in %s: %s", m->base_dir, strerror(errno));
	else
		close(fd);
	mem_free(marker);
	if (fd >= 0 && chmod(m->base_dir, 0700) < 0) {
		*error_r = tstr_printf("chmod(%s) failed: %s", m->base_dir, strerror(errno));
		fd = -1;
	}
	if (fd >= 0 && file_fsync_dir(m->base_dir, error_r) < 0)
		fd = -1;
	return fd < 0 ? -1 : 0;
}

static void host_move_in_prepare(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
				 const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	const char *dir = json_get_string(args, "baseDirectory");
	const char *error;
	if (iid == NULL || dir == NULL) {
		rpc_conn_reply_error(conn, id, "bad-request",
				     "MoveInPrepare needs instanceID and baseDirectory");
		return;
	}
	struct host_move_in *old = host_move_in_find(hm, iid);
	if (old != NULL) /* left over from a move that did not finish */
		host_move_in_remove(hm, old, true);
	if (host_instances_check_new(hm->hi, iid, dir, &error) < 0) {
		rpc_conn_reply_error(conn, id, "failed", error);
		return;
	}
	struct host_move_in *m = mem_new(struct host_move_in);
	m->hm = hm;
	m->id = mem_strdup(iid);
	m->base_dir = mem_strdup(dir);
	m->key_path = host_instances_key_path(hm->hi, iid);
	m->key_tmp = mem_printf("%s.moving", m->key_path);
	m->error = mem_strdup("");
	m->fd = -1;
	m->known = hash_create();
	m->timer = evtimer_new(hm->base, host_move_in_close_link, m);
	if (host_move_in_make_base(m, &error) < 0) {
		error = tstr_printf("base directory %s on this Instance Host is not usable: %s",
				    dir, error);
		host_move_in_free(m, m->created_base);
		rpc_conn_reply_error(conn, id, "io", error);
		return;
	}
	m->owner = conn;
	m->next = hm->ins;
	hm->ins = m;
	rpc_conn_reply(conn, id, NULL);
}

static void host_move_in_next(struct host_move_in *m);
static void host_move_in_read(struct host_move_in *m);

/* On the worker: make the file durable, then check that what is on disk is
 * what the source sent, piece by piece. */
static void host_move_verify_work(void *ctx)
{
	struct host_move_verify *v = ctx;
	if (v->delay_ms > 0)
		usleep(v->delay_ms * 1000);
	if (fsync(v->fd) < 0) {
		v->error = mem_printf("fsync(%s): %s", v->path, strerror(errno));
		return;
	}
	unsigned char *buf = mem_alloc(HOST_MOVE_CHUNK);
	for (size_t i = 0; i < v->count && v->error == NULL; i++) {
		const struct host_move_written *w = &v->pieces[i];
		ssize_t n = host_move_pread_piece(v->fd, buf, w->offset);
		struct host_move_sum sum;
		if (n < 0) {
			v->error = mem_printf("cannot read back %s: %s", v->path, strerror(errno));
			break;
		}
		crypto_sha256(buf, n < (ssize_t)w->len ? (size_t)n : w->len, sum.b);
		if ((size_t)n < w->len || memcmp(sum.b, w->sum.b, sizeof(sum.b)) != 0) {
			char got[CRYPTO_SHA256_LEN * 2 + 1], want[CRYPTO_SHA256_LEN * 2 + 1];
			host_move_sum_hex(&sum, got);
			host_move_sum_hex(&w->sum, want);
			v->error = mem_printf("%s at %lld: SHA-256 of the copy (%s) differs from "
					      "the source's (%s)",
					      v->path, w->offset, got, want);
		}
	}
	mem_free(buf);
}

static void host_move_in_pass_done(struct host_move_in *m);

/* A verified file joins what the target holds; the copy goes on if it
 * waited for this. */
static void host_move_verify_done(void *ctx, bool ran)
{
	struct host_move_verify *v = ctx;
	struct host_move_in *m = v->m;
	if (m == NULL || m->hm->destroying) {
		host_move_verify_free(v);
		return;
	}
	for (size_t i = 0; i < m->verifies.count; i++) {
		if (m->verifies.items[i] == v) {
			array_delete(&m->verifies, i, 1);
			break;
		}
	}
	if (!ran || v->error != NULL) {
		host_move_in_fail(m, v->error != NULL ? v->error : "verifying was cut short");
		host_move_verify_free(v);
		return;
	}
	host_move_file_free(hash_set(m->known, v->key, v->file));
	v->file = NULL;
	m->files_synced++;
	host_move_verify_free(v);
	if (m->next_waiting) {
		m->next_waiting = false;
		host_move_in_next(m);
	} else if (m->pass_waiting && m->verifies.count == 0) {
		m->pass_waiting = false;
		host_move_in_pass_done(m);
	}
}

/* The file is complete at `end`: cut it there, then fsync and verify it
 * on the worker (a large file's read-back would stall every other call
 * of this Instance Host on its event loop). */
static void host_move_in_file_end(struct host_move_in *m, long long end)
{
	if (ftruncate(m->fd, (off_t)end) < 0) {
		host_move_in_fail(m,
				  tstr_printf("ftruncate(%s): %s", m->cur_path, strerror(errno)));
		return;
	}
	struct host_move_verify *v = mem_new(struct host_move_verify);
	v->m = m;
	v->fd = m->fd;
	m->fd = -1;
	v->path = mem_strdup(m->cur_path);
	v->key = mem_strdup(json_get_string(json_at(m->entries, m->index), "path"));
	v->file = m->cur;
	m->cur = NULL;
	v->count = m->written.count;
	v->pieces = mem_alloc(sizeof(*v->pieces) * (v->count > 0 ? v->count : 1));
	if (v->count > 0)
		memcpy(v->pieces, m->written.items, sizeof(*v->pieces) * v->count);
	/* tests: a read-back that takes long, of a file of several pieces */
	if (v->count > 1)
		v->delay_ms = m->verify_delay_ms;
	array_append(&m->verifies, v);
	host_move_in_close_file(m);
	m->index++;
	if (m->hm->pool == NULL ||
	    worker_pool_submit(m->hm->pool, host_move_verify_work, host_move_verify_done, v) < 0) {
		/* no worker to be had: do it here rather than not at all */
		host_move_verify_work(v);
		host_move_verify_done(v, true);
		if (m->state != MOVE_IN_COPYING)
			return;
	}
	if (m->verifies.count >= HOST_MOVE_VERIFIES)
		m->next_waiting = true;
	else
		host_move_in_next(m);
}

static int host_move_in_write(struct host_move_in *m, const unsigned char *data, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t w = pwrite(m->fd, data + done, len - done,
				   (off_t)(m->offset + (long long)done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			host_move_in_fail(
				m, tstr_printf("writing %s: %s", m->cur_path, strerror(errno)));
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}

static void host_move_in_read_answer(struct rpc_conn *conn, const struct json *result,
				     const char *code, const char *text, void *ctx)
{
	struct host_move_in *m = ctx;
	if (m->tearing_down || m->state != MOVE_IN_COPYING)
		return;
	if (code != NULL) {
		host_move_in_fail(m, tstr_printf("reading from the source: %s", text));
		return;
	}
	size_t len = 0;
	const unsigned char *data = rpc_conn_answer_blob(conn, &len);
	const char *hex = json_get_string(result, "sha256");
	long long length;
	bool same = json_get_bool(result, "same", false);
	struct host_move_sum sum;
	if (hex == NULL || hex_decode(hex, sum.b, sizeof(sum.b)) != CRYPTO_SHA256_LEN ||
	    json_get_int(result, "length", &length) != 1 || length < 0 ||
	    length > (long long)HOST_MOVE_CHUNK || (!same && (size_t)length != len)) {
		host_move_in_fail(m, "reading from the source: a malformed answer");
		return;
	}
	if (!same) {
		if (host_move_in_write(m, data, len) < 0)
			return;
		struct host_move_written *w = array_push(&m->written);
		w->offset = m->offset;
		w->len = len;
		w->sum = sum;
		m->bytes_sent += (long long)len;
	}
	array_append(&m->cur->sums, sum);
	m->offset += length;
	m->bytes_done += length;
	if (json_get_bool(result, "eof", false))
		host_move_in_file_end(m, m->offset);
	else
		host_move_in_read(m);
}

static void host_move_in_read_now(evutil_socket_t fd, short events, void *ctx)
{
	struct host_move_in *m = ctx;
	struct rpc_conn *conn = rpc_client_conn(m->link);
	if (conn == NULL) {
		host_move_in_fail(m, "the link to the source Instance Host went down");
		return;
	}
	struct json *args = json_new_object();
	json_set_string(args, "moveToken", m->token);
	json_set_int(args, "index", (long long)m->index);
	json_set_int(args, "offset", m->offset);
	/* the piece the target holds there already: the source sends its
	 * SHA-256 only, if it is the same */
	size_t piece = (size_t)(m->offset / HOST_MOVE_CHUNK);
	if (m->old != NULL && m->offset % HOST_MOVE_CHUNK == 0 && piece < m->old->sums.count) {
		char hex[CRYPTO_SHA256_LEN * 2 + 1];
		host_move_sum_hex(&m->old->sums.items[piece], hex);
		json_set_string(args, "have", hex);
	}
	rpc_conn_call(conn, "MoveOutRead", args, HOST_MOVE_READ_SECS, host_move_in_read_answer, m);
}

static void host_move_in_read(struct host_move_in *m)
{
	if (m->read_delay_ms > 0) {
		struct timeval tv = {m->read_delay_ms / 1000, (m->read_delay_ms % 1000) * 1000};
		event_del(m->timer);
		event_assign(m->timer, m->hm->base, -1, 0, host_move_in_read_now, m);
		event_add(m->timer, &tv);
		return;
	}
	host_move_in_read_now(-1, 0, m);
}

/* Relative paths from the source stay below the base directory. */
static bool host_move_path_ok(const char *path)
{
	if (path[0] == '\0' || path[0] == '/')
		return false;
	for (const char *p = path; *p != '\0';) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') || n == 0)
			return false;
		p += n;
		if (*p == '/')
			p++;
	}
	return true;
}

static int host_move_in_fsync_dirs(struct host_move_in *m, const char **error_r)
{
	for (size_t i = 0; i < json_count(m->entries); i++) {
		const struct json *e = json_at(m->entries, i);
		if (strcmp(json_get_string(e, "kind"), "dir") != 0)
			continue;
		char *dir = mem_printf("%s/%s", m->base_dir, json_get_string(e, "path"));
		int ret = file_fsync_dir(dir, error_r);
		mem_free(dir);
		if (ret < 0)
			return -1;
	}
	char *key_dir = mem_strdup(m->key_path);
	*strrchr(key_dir, '/') = '\0';
	int ret = file_fsync_dir(m->base_dir, error_r);
	if (ret == 0)
		ret = file_fsync_dir(key_dir, error_r);
	mem_free(key_dir);
	return ret;
}

static int host_move_in_mkdir(struct host_move_in *m, const char *path, const char **error_r)
{
	char *dir = mem_printf("%s/%s", m->base_dir, path);
	struct stat st;
	int ret = mkdir(dir, 0700);
	if (ret < 0 && errno == EEXIST && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		ret = 0; /* made by an earlier pass */
	else if (ret < 0)
		*error_r = tstr_printf("mkdir(%s): %s", dir, strerror(errno));
	mem_free(dir);
	if (ret == 0 && hash_get(m->known, path) == NULL) {
		struct host_move_file *f = mem_new(struct host_move_file);
		f->kind = 'd';
		f->stamp = mem_strdup("");
		hash_set(m->known, path, f);
	}
	return ret;
}

/* Open the entry's file to copy it, unless the target holds it as it is
 * (the same stamp as when it was copied): 1 opened, 0 skipped, -1 failed. */
static int host_move_in_open(struct host_move_in *m, const struct json *e, const char **error_r)
{
	const char *kind = json_get_string(e, "kind");
	const char *path = json_get_string(e, "path");
	const char *stamp = json_get_string(e, "stamp");
	const struct host_move_file *old = hash_get(m->known, path);
	if (stamp == NULL)
		stamp = "";
	if (old != NULL && old->kind == kind[0] && old->stamp[0] != '\0' &&
	    strcmp(old->stamp, stamp) == 0)
		return 0;
	long long mode = 0600;
	(void)json_get_int(e, "mode", &mode);
	if (kind[0] == 'k') {
		char *key_dir = mem_strdup(m->key_path);
		*strrchr(key_dir, '/') = '\0';
		int ret = file_mkdir_parents(key_dir, 0700, error_r);
		mem_free(key_dir);
		if (ret < 0)
			return -1;
		m->cur_path = mem_strdup(m->key_tmp);
		m->fd = open(m->cur_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	} else {
		m->cur_path = mem_printf("%s/%s", m->base_dir, path);
		m->fd = open(m->cur_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			     (mode_t)(mode & 0700) | 0600);
	}
	if (m->fd < 0) {
		*error_r = tstr_printf("cannot create %s: %s", m->cur_path, strerror(errno));
		return -1;
	}
	m->old = old != NULL && old->kind == kind[0] ? old : NULL;
	m->cur = mem_new(struct host_move_file);
	m->cur->kind = kind[0];
	m->cur->stamp = mem_strdup(stamp);
	m->offset = 0;
	array_clear(&m->written);
	return 1;
}

/* This pass is over: everything listed is here and verified. */
static void host_move_in_pass_done(struct host_move_in *m)
{
	const char *error;
	if (host_move_in_fsync_dirs(m, &error) < 0) {
		host_move_in_fail(m, error);
		return;
	}
	m->state = MOVE_IN_COPIED;
	log_info(host_move_ctx(m->id),
		 "moved in, pass %u: %zu entries, %u files copied, %lld bytes sent and verified",
		 m->pass, json_count(m->entries), m->files_synced, m->bytes_sent);
}

/* Make the directories and open the next file that changed, or finish. */
static void host_move_in_next(struct host_move_in *m)
{
	const char *error;
	for (; m->index < json_count(m->entries); m->index++) {
		const struct json *e = json_at(m->entries, m->index);
		const char *kind = json_get_string(e, "kind");
		if (strcmp(kind, "dir") == 0) {
			if (host_move_in_mkdir(m, json_get_string(e, "path"), &error) < 0) {
				host_move_in_fail(m, error);
				return;
			}
			continue;
		}
		int ret = host_move_in_open(m, e, &error);
		if (ret < 0) {
			host_move_in_fail(m, error);
			return;
		}
		if (ret > 0) {
			host_move_in_read(m);
			return;
		}
	}
	if (m->verifies.count > 0)
		m->pass_waiting = true;
	else
		host_move_in_pass_done(m);
}

static int host_move_path_depth_cmp(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* What the source no longer has goes here too (a file the instance
 * removed or renamed over since the last pass); deepest first. */
static int host_move_in_prune(struct host_move_in *m, const struct json *entries,
			      const char **error_r)
{
	struct hash *listed = hash_create();
	for (size_t i = 0; i < json_count(entries); i++)
		hash_set(listed, json_get_string(json_at(entries, i), "path"), (void *)entries);
	ARRAY(char *) gone = ARRAY_INIT;
	struct hash_iter it;
	const char *key;
	void *value;
	hash_iter_init(&it, m->known);
	while (hash_iter_next(&it, &key, &value) == 1) {
		if (hash_get(listed, key) == NULL)
			array_append(&gone, mem_strdup(key));
	}
	hash_destroy(&listed);
	array_sort(&gone, host_move_path_depth_cmp);
	int ret = 0;
	for (size_t i = 0; i < gone.count; i++) {
		struct host_move_file *f = hash_remove(m->known, gone.items[i]);
		char *full = mem_printf("%s/%s", m->base_dir, gone.items[i]);
		if (ret == 0 && (f->kind == 'd' ? rmdir(full) : unlink(full)) < 0 &&
		    errno != ENOENT) {
			*error_r = tstr_printf("cannot remove %s: %s", full, strerror(errno));
			ret = -1;
		}
		mem_free(full);
		host_move_file_free(f);
		mem_free(gone.items[i]);
	}
	array_free(&gone);
	return ret;
}

static void host_move_in_list_answer(struct rpc_conn *conn, const struct json *result,
				     const char *code, const char *text, void *ctx)
{
	struct host_move_in *m = ctx;
	const char *error = NULL;
	if (m->tearing_down || m->state != MOVE_IN_COPYING)
		return;
	const struct json *entries = json_get(result, "entries");
	if (code != NULL || json_kind(entries) != JSON_KIND_ARRAY) {
		host_move_in_fail(m, tstr_printf("listing the source: %s",
						 code != NULL ? text : "no entries"));
		return;
	}
	long long total = 0;
	size_t keys = 0;
	for (size_t i = 0; i < json_count(entries); i++) {
		const struct json *e = json_at(entries, i);
		const char *kind = json_get_string(e, "kind"), *path = json_get_string(e, "path");
		long long size;
		if (kind == NULL || path == NULL || json_get_int(e, "size", &size) != 1 ||
		    size < 0 ||
		    (strcmp(kind, "key") == 0
			     ? path[0] != '\0'
			     : (strcmp(kind, "dir") != 0 && strcmp(kind, "file") != 0) ||
				       !host_move_path_ok(path))) {
			host_move_in_fail(m,
					  tstr_printf("the source listed an invalid entry %zu", i));
			return;
		}
		keys += strcmp(kind, "key") == 0;
		total += size;
	}
	if (keys != 1) {
		host_move_in_fail(m, "the source listed no key");
		return;
	}
	if (host_move_in_prune(m, entries, &error) < 0) {
		host_move_in_fail(m, error);
		return;
	}
	json_unref(&m->entries);
	m->entries = json_clone(entries);
	m->bytes_total = total;
	m->index = 0;
	host_move_in_next(m);
}

static void host_move_in_list(struct host_move_in *m, struct rpc_conn *conn)
{
	m->bytes_done = m->bytes_total = m->bytes_sent = 0;
	m->files_synced = 0;
	struct json *args = json_new_object();
	json_set_string(args, "moveToken", m->token);
	rpc_conn_call(conn, "MoveOutList", args, HOST_MOVE_READ_SECS, host_move_in_list_answer, m);
}

static void host_move_in_ready(struct rpc_conn *conn, const struct json *hello, void *ctx)
{
	struct host_move_in *m = ctx;
	if (m->listed || m->state != MOVE_IN_COPYING)
		return;
	m->listed = true;
	event_del(m->timer);
	host_move_in_list(m, conn);
}

static void host_move_in_link_request(struct rpc_conn *conn, uint32_t id, const char *method,
				      const struct json *args, void *ctx)
{
	rpc_conn_reply_error(conn, id, "unknown-method", "this link only carries a move");
}

static void host_move_in_link_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	struct host_move_in *m = ctx;
	/* a copy in progress gets "closed" on its open call; a link lost
	 * before the listing is retried a few times, within the deadline */
	if (m->listed || ++m->early_closes >= HOST_MOVE_EARLY_CLOSES)
		host_move_in_fail(m, tstr_printf("the link to the source closed: %s", reason));
}

static void host_move_in_link_state(struct rpc_client *client, enum rpc_link_state state,
				    const char *reason, void *ctx)
{
	struct host_move_in *m = ctx;
	if (state == RPC_LINK_FINGERPRINT_REFUSED || state == RPC_LINK_REFUSED_BY_PEER ||
	    state == RPC_LINK_INCOMPATIBLE)
		host_move_in_fail(m, tstr_printf("the source Instance Host: %s", reason));
}

static void host_move_in_connect_deadline(evutil_socket_t fd, short events, void *ctx)
{
	struct host_move_in *m = ctx;
	const char *reason = NULL;
	(void)rpc_client_state(m->link, &reason);
	host_move_in_fail(m, tstr_printf("the source Instance Host could not be reached: %s",
					 reason == NULL ? "timeout" : reason));
}

static const struct rpc_conn_callbacks host_move_in_link_callbacks = {
	.ready = host_move_in_ready,
	.request = host_move_in_link_request,
	.closed = host_move_in_link_closed,
};

/* Tests only: passes slow enough to write during the first or to kill a
 * role during the last (COFFER_TEST_MOVE_READ_DELAY_MS, before each read),
 * a read-back slow enough to call the Instance Host during it
 * (..._VERIFY_DELAY_MS). */
static unsigned int host_move_test_delay(const char *id, const char *name)
{
	const char *env = getenv(name);
	int ms = env == NULL ? 0 : atoi(env);
	if (ms <= 0)
		return 0;
	log_warning(host_move_ctx(id), "%s=%d: moving in is slowed down (for tests only)", name,
		    ms);
	return (unsigned int)ms;
}

static void host_move_in_start(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
			       const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	const char *token = json_get_string(args, "moveToken");
	const struct json *source = json_get(args, "source");
	const char *address = json_get_string(source, "address");
	const char *fp = json_get_string(source, "fingerprint");
	long long port;
	struct host_move_in *m = iid == NULL ? NULL : host_move_in_find(hm, iid);
	if (token == NULL || address == NULL || fp == NULL ||
	    json_get_int(source, "port", &port) != 1 || port < 1 || port > 65535) {
		rpc_conn_reply_error(conn, id, "bad-request",
				     "MoveInStart needs instanceID, moveToken and source "
				     "{address, port, fingerprint}");
		return;
	}
	if (m == NULL || m->state != MOVE_IN_PREPARED) {
		rpc_conn_reply_error(conn, id, "failed",
				     tstr_printf("no move of %s prepared on this Instance Host",
						 iid == NULL ? "" : iid));
		return;
	}
	m->token = mem_strdup(token);
	m->state = MOVE_IN_COPYING;
	m->pass = 1;
	m->read_delay_ms = host_move_test_delay(iid, "COFFER_TEST_MOVE_READ_DELAY_MS");
	m->verify_delay_ms = host_move_test_delay(iid, "COFFER_TEST_MOVE_VERIFY_DELAY_MS");
	struct rpc_client_settings set = {
		.host = address,
		.port = (unsigned int)port,
		.fingerprint = fp,
		.tls = hm->client_tls,
		.hello = hm->hello,
		.max_backoff_secs = 2,
	};
	event_assign(m->timer, hm->base, -1, 0, host_move_in_connect_deadline, m);
	struct timeval tv = {HOST_MOVE_CONNECT_SECS, 0};
	event_add(m->timer, &tv);
	log_info(host_move_ctx(iid), "moving in from %s:%lld into %s", address, port, m->base_dir);
	m->link = rpc_client_create(hm->base, &set, &host_move_in_link_callbacks,
				    host_move_in_link_state, m);
	rpc_conn_reply(conn, id, NULL);
}

/* Another pass over the link the first one opened: what changed since. */
static void host_move_in_catch_up(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
				  const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	struct host_move_in *m = iid == NULL ? NULL : host_move_in_find(hm, iid);
	struct rpc_conn *link = m == NULL ? NULL : rpc_client_conn(m->link);
	if (m == NULL || m->state != MOVE_IN_COPIED) {
		rpc_conn_reply_error(conn, id, "failed", "no copied instance to catch up here");
		return;
	}
	if (link == NULL || !rpc_conn_is_ready(link)) {
		rpc_conn_reply_error(conn, id, "failed",
				     "the link to the source Instance Host is down");
		return;
	}
	m->state = MOVE_IN_COPYING;
	m->pass++;
	host_move_in_list(m, link);
	rpc_conn_reply(conn, id, NULL);
}

static void host_move_in_status(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
				const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	struct host_move_in *m = iid == NULL ? NULL : host_move_in_find(hm, iid);
	if (m == NULL) {
		rpc_conn_reply_error(conn, id, "failed", "no move of this instance here");
		return;
	}
	struct json *r = json_new_object();
	json_set_string(r, "state", host_move_in_state_names[m->state]);
	json_set_int(r, "pass", m->pass);
	json_set_int(r, "bytesDone", m->bytes_done);
	json_set_int(r, "bytesTotal", m->bytes_total);
	json_set_int(r, "bytesSent", m->bytes_sent);
	json_set_int(r, "filesCopied", m->files_synced);
	json_set_int(r, "entriesDone", (long long)m->index);
	json_set_int(r, "entriesTotal", (long long)json_count(m->entries));
	json_set_string(r, "error", m->error);
	rpc_conn_reply(conn, id, r);
}

static void host_move_in_commit(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
				const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	struct host_move_in *m = iid == NULL ? NULL : host_move_in_find(hm, iid);
	const char *error;
	if (m == NULL || m->state != MOVE_IN_COPIED) {
		rpc_conn_reply_error(conn, id, "failed", "no completed copy of this instance here");
		return;
	}
	/* The mark goes first: a marked directory is one nobody registered,
	 * which a later MoveInPrepare may clear; an unmarked one is never
	 * cleared, even if what follows fails. */
	char *marker = mem_printf("%s/%s", m->base_dir, HOST_MOVE_MARKER);
	int ret = 0;
	if (unlink(marker) < 0) {
		error = tstr_printf("cannot remove %s: %s", marker, strerror(errno));
		ret = -1;
	}
	mem_free(marker);
	char *key_dir = mem_strdup(m->key_path);
	*strrchr(key_dir, '/') = '\0';
	/* link(): an existing key (of an older instance of that ID) is never
	 * overwritten */
	if (ret < 0 || file_fsync_dir(m->base_dir, &error) < 0) {
		ret = -1;
	} else if (link(m->key_tmp, m->key_path) < 0) {
		error = tstr_printf("cannot put the key in place at %s: %s", m->key_path,
				    strerror(errno));
		ret = -1;
	} else if (file_fsync_dir(key_dir, &error) < 0 ||
		   host_instances_adopt(hm->hi, m->id, m->base_dir, &error) < 0) {
		(void)unlink(m->key_path);
		ret = -1;
	}
	mem_free(key_dir);
	if (ret < 0) {
		rpc_conn_reply_error(conn, id, "failed", error);
		return;
	}
	(void)unlink(m->key_tmp);
	host_move_in_remove(hm, m, false);
	rpc_conn_reply(conn, id, NULL);
}

static void host_move_in_abort(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
			       const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	struct host_move_in *m = iid == NULL ? NULL : host_move_in_find(hm, iid);
	if (m != NULL) {
		log_info(host_move_ctx(iid), "move in aborted, the copy is removed");
		host_move_in_remove(hm, m, true);
	}
	rpc_conn_reply(conn, id, NULL);
}

/* ---- dispatch ---- */

void host_move_forget_conn(struct host_move *hm, struct rpc_conn *conn)
{
	/* Without the Management Server that drives it, a move can only be
	 * undone: the instance must stay startable on the source. */
	for (struct host_move_out *m = hm->outs, *next; m != NULL; m = next) {
		next = m->next;
		if (m->owner == conn) {
			log_warning(host_move_ctx(m->id), "moving out ended: %s",
				    "the Management Server's link closed");
			host_move_out_end(hm, m->id, false);
		}
	}
	for (struct host_move_in *m = hm->ins, *next; m != NULL; m = next) {
		next = m->next;
		if (m->owner == conn) {
			log_warning(host_move_ctx(m->id),
				    "moving in ended, the copy is removed: %s",
				    "the Management Server's link closed");
			host_move_in_remove(hm, m, true);
		}
	}
}

bool host_move_peer_allowed(struct host_move *hm, const char *fingerprint)
{
	for (struct host_move_out *m = hm->outs; m != NULL; m = m->next) {
		if (strcmp(m->peer_fp, fingerprint) == 0)
			return true;
	}
	return false;
}

bool host_move_request(struct host_move *hm, struct rpc_conn *conn, uint32_t id, const char *method,
		       const struct json *args, bool from_management)
{
	if (strncmp(method, "MoveOut", 7) != 0 && strncmp(method, "MoveIn", 6) != 0)
		return false;
	bool from_peer = strcmp(method, "MoveOutList") == 0 || strcmp(method, "MoveOutRead") == 0;
	if (from_peer == from_management) {
		rpc_conn_reply_error(conn, id, "forbidden",
				     tstr_printf("%s is not taken from this peer", method));
		return true;
	}
	const char *iid = json_get_string(args, "instanceID");
	if (strcmp(method, "MoveOutBegin") == 0) {
		host_move_out_begin(hm, conn, id, args);
	} else if (strcmp(method, "MoveOutEnd") == 0) {
		if (iid != NULL)
			host_move_out_end(hm, iid, json_get_bool(args, "taken", false));
		rpc_conn_reply(conn, id, NULL);
	} else if (strcmp(method, "MoveOutFreeze") == 0) {
		host_move_out_freeze(hm, conn, id, args);
	} else if (strcmp(method, "MoveOutList") == 0) {
		host_move_out_list_call(hm, conn, id, args);
	} else if (strcmp(method, "MoveOutRead") == 0) {
		host_move_out_read(hm, conn, id, args);
	} else if (strcmp(method, "MoveInPrepare") == 0) {
		host_move_in_prepare(hm, conn, id, args);
	} else if (strcmp(method, "MoveInStart") == 0) {
		host_move_in_start(hm, conn, id, args);
	} else if (strcmp(method, "MoveInCatchUp") == 0) {
		host_move_in_catch_up(hm, conn, id, args);
	} else if (strcmp(method, "MoveInStatus") == 0) {
		host_move_in_status(hm, conn, id, args);
	} else if (strcmp(method, "MoveInCommit") == 0) {
		host_move_in_commit(hm, conn, id, args);
	} else if (strcmp(method, "MoveInAbort") == 0) {
		host_move_in_abort(hm, conn, id, args);
	} else {
		rpc_conn_reply_error(conn, id, "unknown-method",
				     tstr_printf("no call '%s'", method));
	}
	return true;
}

struct host_move *host_move_create(struct event_base *base, struct host_instances *hi,
				   struct tls_context *client_tls, const struct json *hello)
{
	struct host_move *hm = mem_new(struct host_move);
	hm->base = base;
	hm->hi = hi;
	hm->client_tls = client_tls;
	hm->hello = hello;
	const char *error;
	/* one thread: a move's files are verified one after the other */
	if (worker_pool_create(base, 1, 1, 16, &hm->pool, &error) < 0)
		log_warning(NULL, "moves verify on the event loop: %s", error);
	return hm;
}

void host_move_destroy(struct host_move **hm)
{
	struct host_move *h = *hm;
	if (h == NULL)
		return;
	h->destroying = true;
	worker_pool_destroy(&h->pool);
	while (h->outs != NULL) {
		struct host_move_out *next = h->outs->next;
		host_move_out_free(h->outs);
		h->outs = next;
	}
	/* a copy not yet committed is of no use to anyone: the instance is
	 * still the source's */
	while (h->ins != NULL) {
		struct host_move_in *next = h->ins->next;
		host_move_in_free(h->ins, true);
		h->ins = next;
	}
	mem_free(h);
	*hm = NULL;
}
