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
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* One answer's bytes: large enough that a round trip per chunk costs little,
 * well under the frame limit. */
#define HOST_MOVE_CHUNK (4u * 1024 * 1024)
/* Pieces a target has asked for and not yet written: the source reads and
 * sends the next ones while the target writes the last (no stop-and-wait),
 * and neither side holds more than this many pieces of a move in memory. */
#define HOST_MOVE_IN_FLIGHT 4
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
 * the coarse clock file times come from, unseen by its stamp: on ext4,
 * XFS, btrfs and tmpfs that clock is the kernel's (a tick is at most 10 ms);
 * elsewhere (network file systems with their server's clock, FAT's 2 s
 * times) a generous 2 s. */
#define HOST_MOVE_RACY_LOCAL_MS 50
/* The longest a MoveInStatus waits for its pass to end. */
#define HOST_MOVE_STATUS_WAIT_MAX_MS 2000
#define HOST_MOVE_RACY_OTHER_MS 2000
/* Files being written or fsynced on the worker while later ones are
 * copied: the fsync of one overlaps the copy of the next, with a bound on
 * the fds held open. */
#define HOST_MOVE_VERIFIES 4
/* What O_DIRECT wants memory, offsets and lengths aligned to (a page: a
 * multiple of any disk's logical block size). */
#define HOST_MOVE_DIRECT_ALIGN 4096

struct host_move_out {
	struct host_move_out *next;
	struct rpc_conn *owner; /* the Management Server's link it began on */
	char *id, *token, *peer_fp, *base_dir, *key_path;
	struct json *entries; /* the latest listing: [{path, kind, size, mode, stamp}] */
	long long bytes;
	bool froze; /* MoveOutFreeze froze it: an undone move thaws it */
};

/* The checksum of a piece of a file (XXH3-128, crypto_checksum()): the two
 * ends are paired Instance Hosts and the bytes travel over mutually
 * authenticated TLS, whose AEAD already proves they arrived as sent; this
 * finds a piece read, handed on or written wrong, and tells pieces apart
 * that changed. SHA-256 here was half of a move's CPU (0.2 s a side for
 * corpus A). */
struct host_move_sum {
	unsigned char b[CRYPTO_CHECKSUM_LEN];
};

/* A piece read and hashed on the worker (source), answered on the loop. */
struct host_move_out_job {
	struct host_move *hm;
	struct host_move_out *m; /* NULL once the move-out ended */
	struct rpc_conn *conn;   /* NULL once the link closed: nobody to answer */
	uint32_t id;
	char *path;
	long long offset;
	bool has_have;
	struct host_move_sum have, sum;
	unsigned char *buf;
	size_t len;
	int open_errno, read_errno; /* of a failed open() or read, else 0 */
};

/* What the target holds of one entry, as of the pass that last copied it. */
struct host_move_file {
	char kind; /* 'k'ey, 'd'ir, 'f'ile */
	char *stamp;
	ARRAY(struct host_move_sum) sums; /* of each piece, as verified */
};

/* A file being copied on the target. Its pieces are written on the worker,
 * each checksummed as it is written and compared with the source's;
 * after the last one it is cut to its length and fsynced there. Shared by
 * the reads in flight for it and the worker's jobs; freed with the last. */
struct host_move_dst {
	unsigned int refs;
	int fd;
	char *path;                       /* where it is written */
	char *key;                        /* its path in the listing ("" for the key) */
	size_t index;                     /* in the listing */
	struct host_move_file *file;      /* joins known once durable */
	const struct host_move_file *old; /* in known, or NULL */
	long long listed_size;
	long long next_offset; /* of the next piece to ask for */
	unsigned int reads;    /* asked for, not taken in yet */
	unsigned int writes;   /* on the worker */
	long long end;         /* -1 until the source said where it ends */
	bool ending;           /* its last job (cut, fsync) was handed out */
	bool direct;           /* opened O_DIRECT (only the worker clears it) */
};

/* A MoveOutRead in flight; answers are taken in the order they were asked. */
struct host_move_req {
	struct host_move_in *m; /* NULL once the move failed or went: drop it */
	struct host_move_dst *dst;
	long long offset;
	bool answered;
	struct evbuffer *data; /* the bytes, as they came (not copied) */
	struct host_move_sum sum;
	long long length;
	bool same, eof;
};

/* Work for the target's worker: write a piece, or end a file. */
struct host_move_job {
	struct host_move_in *m; /* NULL once the move failed or went: drop it */
	struct host_move_dst *dst;
	bool end;         /* cut at `offset` and fsync; else write `data` there */
	long long offset; /* where the piece goes, or the file's length */
	struct evbuffer *data;
	struct host_move_sum sum; /* the source's, of the piece */
	unsigned char *bounce;    /* the worker's aligned buffer; NULL: buffered */
	unsigned int delay_ms;
	bool corrupt; /* COFFER_TEST_MOVE_CORRUPT_PIECES: one byte flipped */
	char *error;  /* mem_printf'd on the worker; never tstr there */
};

enum host_move_in_state { MOVE_IN_PREPARED, MOVE_IN_COPYING, MOVE_IN_COPIED, MOVE_IN_FAILED };
static const char *const host_move_in_state_names[] = {"prepared", "copying", "copied", "failed"};

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
	struct event *timer;                /* connect deadline; closing the link; test delays */
	struct json *entries;               /* this pass's listing */
	struct hash *known;                 /* path ("" for the key) -> struct host_move_file */
	size_t index;                       /* the next entry to open */
	struct host_move_dst *cur;          /* the file whose pieces are being asked for */
	ARRAY(struct host_move_req *) reqs; /* in flight, in the order asked */
	ARRAY(struct host_move_job *) jobs; /* on the worker */
	unsigned int held;                  /* pieces asked for or being written */
	unsigned int files_open;            /* opened in this pass, not yet durable */
	bool pumping, delayed;
	/* this pass */
	unsigned int pass;
	long long bytes_done, bytes_total, bytes_sent;
	unsigned int files_synced;
	bool listed;
	unsigned int early_closes;    /* links closed before the listing */
	unsigned int read_delay_ms;   /* COFFER_TEST_MOVE_READ_DELAY_MS */
	unsigned int verify_delay_ms; /* COFFER_TEST_MOVE_VERIFY_DELAY_MS, large files */
	/* a MoveInStatus waiting for this pass to end (conn NULL: none) */
	struct rpc_conn *status_conn;
	uint32_t status_id;
	struct event *status_timer;
};

struct host_move {
	struct event_base *base;
	struct host_instances *hi;
	struct tls_context *client_tls;
	const struct json *hello;
	/* reading and hashing (source), writing, hashing and fsync (target)
	 * off the event loop */
	struct worker_pool *pool;
	bool destroying;
	/* a piece's bytes on their way to a file opened O_DIRECT: aligned,
	 * used by the one worker thread only */
	unsigned char *bounce;
	/* COFFER_TEST_MOVE_CORRUPT_PIECES (tests only): so many of the next
	 * pieces this process receives get a byte flipped before they are
	 * written, as memory or a bug could, to show the checksum finds it */
	unsigned int corrupt_left;
	struct host_move_out *outs;
	struct host_move_in *ins;
	ARRAY(struct host_move_out_job *) out_jobs;
};

static const char *host_move_ctx(const char *id)
{
	return tstr_printf("instance=%s", id);
}

static void host_move_sum_hex(const struct host_move_sum *sum,
			      char hex[CRYPTO_CHECKSUM_LEN * 2 + 1])
{
	hex_encode(sum->b, sizeof(sum->b), hex);
}

/* ---- source ---- */

/* When a listing was made, and the devices whose file times come from the
 * kernel's clock (see HOST_MOVE_RACY_LOCAL_MS). */
struct host_move_now {
	long long ns;
	dev_t local_devs[2];
};

static long long host_move_ns(const struct timespec *ts)
{
	return (long long)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* The device of `path` if its file system stamps times with the kernel's
 * clock, else (dev_t)-1. */
static dev_t host_move_local_dev(const char *path)
{
	struct statfs sfs;
	struct stat st;
	if (statfs(path, &sfs) < 0 || stat(path, &st) < 0)
		return (dev_t)-1;
	switch ((unsigned long)sfs.f_type) {
	case EXT4_SUPER_MAGIC:
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case TMPFS_MAGIC:
		return st.st_dev;
	default:
		return (dev_t)-1;
	}
}

static void host_move_now_read(const char *key_path, const char *base_dir,
			       struct host_move_now *now_r)
{
	struct timespec ts;
	now_r->local_devs[0] = host_move_local_dev(key_path);
	now_r->local_devs[1] = host_move_local_dev(base_dir);
	clock_gettime(CLOCK_REALTIME, &ts);
	now_r->ns = host_move_ns(&ts);
}

/* What tells a later listing that a file did not change since: device,
 * inode, size, modification and change time. Empty ("look at the bytes")
 * while either time is so recent that a write in the same clock tick
 * could follow unseen: file times come from a coarse clock. This holds for
 * files written with write(), which is how an instance writes its files;
 * the one file written through a shared mapping, SQLite's catalog.db-shm
 * (whose times may lag), is an index SQLite rebuilds when the first
 * connection opens the catalog, as the target's instance does. */
static char *host_move_stamp(const struct stat *st, const struct host_move_now *now)
{
	bool local = st->st_dev == now->local_devs[0] || st->st_dev == now->local_devs[1];
	long long racy =
		(long long)(local ? HOST_MOVE_RACY_LOCAL_MS : HOST_MOVE_RACY_OTHER_MS) * 1000000;
	if (host_move_ns(&st->st_mtim) >= now->ns - racy ||
	    host_move_ns(&st->st_ctim) >= now->ns - racy)
		return mem_strdup("");
	return mem_printf("%llx:%llx:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)st->st_dev,
			  (unsigned long long)st->st_ino, (long long)st->st_size,
			  (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
			  (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

static struct json *host_move_entry(const char *path, const char *kind, const struct stat *st,
				    const struct host_move_now *now)
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
			      long long *bytes, const struct host_move_now *now,
			      const char **error_r)
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

/* List the key and the base directory as they are now; the instance may
 * be writing meanwhile, which a later listing catches up with. */
static int host_move_out_list(struct host_move_out *m, const char **error_r)
{
	struct stat st;
	struct host_move_now now;
	host_move_now_read(m->key_path, m->base_dir, &now);
	if (stat(m->key_path, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = tstr_printf("the instance's key %s is missing", m->key_path);
		return -1;
	}
	struct json *entries = json_new_array();
	json_append(entries, host_move_entry("", "key", &st, &now));
	long long bytes = (long long)st.st_size;
	if (host_move_list_dir(m->base_dir, "", entries, &bytes, &now, error_r) < 0) {
		json_unref(&entries);
		return -1;
	}
	json_unref(&m->entries);
	m->entries = entries;
	m->bytes = bytes;
	return 0;
}

static void host_move_out_free(struct host_move *hm, struct host_move_out *m)
{
	/* reads on the worker answer that the move is over */
	for (size_t i = 0; i < hm->out_jobs.count; i++) {
		if (hm->out_jobs.items[i]->m == m)
			hm->out_jobs.items[i]->m = NULL;
	}
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
			host_move_out_free(hm, m);
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
	if (host_move_out_list(m, &error) < 0) {
		host_move_out_free(hm, m);
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

static void host_move_out_job_free(struct host_move_out_job *j)
{
	mem_free(j->path);
	mem_free(j->buf);
	mem_free(j);
}

/* Whether every page of the piece at offset is in the page cache; asked
 * with mincore() on a mapping that is never touched, so asking reads
 * nothing and starts no readahead (a read with RWF_NOWAIT would). */
static bool host_move_piece_cached(int fd, long long offset)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || offset >= (long long)st.st_size)
		return false;
	size_t len = (size_t)(st.st_size - offset);
	if (len > HOST_MOVE_CHUNK)
		len = HOST_MOVE_CHUNK;
	long page = sysconf(_SC_PAGESIZE);
	/* one byte per page; pages are at least 4 KiB */
	unsigned char vec[HOST_MOVE_CHUNK / 4096];
	if (page < 4096)
		return false;
	void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)offset);
	if (map == MAP_FAILED)
		return false;
	bool all = mincore(map, len, vec) == 0;
	for (size_t i = 0; all && i < (len + (size_t)page - 1) / (size_t)page; i++)
		all = (vec[i] & 1) != 0;
	munmap(map, len);
	return all;
}

/* Read the piece: from the page cache when all of it is there, else with
 * O_DIRECT where the file system takes it.
 *
 * An instance in use has much of its data cached: reading it from the
 * disk again would take the disk from the target's writes (on a shared
 * disk, half of the copy's time). What is not cached a move reads once,
 * so the cache gains nothing from it, and filling the cache with a whole
 * instance costs more CPU than the reading (in a VM, each page allocated
 * faults in the hypervisor): with a cold cache it was two thirds of the
 * source's CPU time. The kernel writes back dirty cached pages of the
 * range before an O_DIRECT read, so what the running instance just wrote
 * is read as it is. A file system that refuses O_DIRECT (EINVAL, when it
 * is set or at the read) is read buffered. */
static ssize_t host_move_out_read_piece(int fd, unsigned char *buf, long long offset)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0 && !host_move_piece_cached(fd, offset) &&
	    fcntl(fd, F_SETFL, flags | O_DIRECT) == 0) {
		ssize_t n = host_move_pread_piece(fd, buf, offset);
		if (n >= 0 || errno != EINVAL || fcntl(fd, F_SETFL, flags) < 0)
			return n;
	}
	return host_move_pread_piece(fd, buf, offset);
}

/* On the worker: read the piece and hash it. */
static void host_move_out_job_work(void *ctx)
{
	struct host_move_out_job *j = ctx;
	int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		/* removed since the listing (the instance runs): empty for now,
		 * and gone from the next listing, which the target follows */
		if (errno != ENOENT)
			j->open_errno = errno;
		crypto_checksum("", 0, j->sum.b);
		return;
	}
	/* aligned as O_DIRECT wants it (pieces start at multiples of the
	 * chunk); freed with mem_free() like any other */
	j->buf = mem_alloc_aligned(HOST_MOVE_DIRECT_ALIGN, HOST_MOVE_CHUNK);
	ssize_t n = host_move_out_read_piece(fd, j->buf, j->offset);
	if (n < 0) {
		j->read_errno = errno;
	} else {
		j->len = (size_t)n;
		crypto_checksum(j->buf, j->len, j->sum.b);
	}
	close(fd);
}

static void host_move_out_buf_free(const void *data, size_t len, void *extra)
{
	mem_free((void *)data);
}

/* On the loop: the piece's checksum, and its bytes unless the target has a
 * piece with that checksum there already. The bytes go out as they were
 * read (an evbuffer reference, not a copy). */
static void host_move_out_job_done(void *ctx, bool ran)
{
	struct host_move_out_job *j = ctx;
	struct host_move *hm = j->hm;
	for (size_t i = 0; i < hm->out_jobs.count; i++) {
		if (hm->out_jobs.items[i] == j) {
			array_delete(&hm->out_jobs, i, 1);
			break;
		}
	}
	struct rpc_conn *conn = j->conn;
	if (hm->destroying || conn == NULL) {
		host_move_out_job_free(j);
		return;
	}
	if (!ran || j->m == NULL) {
		rpc_conn_reply_error(conn, j->id, "forbidden", "no move under way for this peer");
	} else if (j->open_errno != 0) {
		rpc_conn_reply_error(
			conn, j->id, "io",
			tstr_printf("cannot open %s: %s", j->path, strerror(j->open_errno)));
	} else if (j->read_errno != 0) {
		rpc_conn_reply_error(conn, j->id, "io",
				     tstr_printf("read failed: %s", strerror(j->read_errno)));
	} else {
		char hex[CRYPTO_CHECKSUM_LEN * 2 + 1];
		host_move_sum_hex(&j->sum, hex);
		bool same = j->has_have && memcmp(j->have.b, j->sum.b, sizeof(j->sum.b)) == 0;
		struct json *r = json_new_object();
		json_set_bool(r, "eof", j->len < HOST_MOVE_CHUNK);
		json_set_int(r, "length", (long long)j->len);
		json_set_string(r, "xxh3", hex);
		json_set_bool(r, "same", same);
		if (same) {
			rpc_conn_reply(conn, j->id, r);
		} else {
			struct evbuffer *blob = evbuffer_new();
			if (j->len > 0 && evbuffer_add_reference(blob, j->buf, j->len,
								 host_move_out_buf_free, NULL) == 0)
				j->buf = NULL; /* the output's now */
			else if (j->len > 0)
				evbuffer_add(blob, j->buf, j->len);
			rpc_conn_reply_blob_buffer(conn, j->id, r, blob);
			evbuffer_free(blob);
		}
	}
	host_move_out_job_free(j);
}

/* One piece of a file of the latest listing, read and hashed on the
 * worker: several may be asked for at once, each answered when read. */
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
	struct host_move_out_job *j = mem_new(struct host_move_out_job);
	j->hm = hm;
	j->m = m;
	j->conn = conn;
	j->id = id;
	j->path = strcmp(kind, "key") == 0
			  ? mem_strdup(m->key_path)
			  : mem_printf("%s/%s", m->base_dir, json_get_string(e, "path"));
	j->offset = offset;
	const char *have = json_get_string(args, "have");
	j->has_have = have != NULL && strlen(have) == CRYPTO_CHECKSUM_LEN * 2 &&
		      hex_decode(have, j->have.b, sizeof(j->have.b)) == CRYPTO_CHECKSUM_LEN;
	array_append(&hm->out_jobs, j);
	if (hm->pool == NULL ||
	    worker_pool_submit(hm->pool, host_move_out_job_work, host_move_out_job_done, j) < 0) {
		/* no worker to be had: here rather than not at all */
		host_move_out_job_work(j);
		host_move_out_job_done(j, true);
	}
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

static void host_move_dst_unref(struct host_move_dst **dst)
{
	struct host_move_dst *d = *dst;
	*dst = NULL;
	if (d == NULL || --d->refs > 0)
		return;
	if (d->fd >= 0)
		close(d->fd);
	mem_free(d->path);
	mem_free(d->key);
	host_move_file_free(d->file);
	mem_free(d);
}

static struct host_move_dst *host_move_dst_ref(struct host_move_dst *d)
{
	d->refs++;
	return d;
}

static void host_move_req_free(struct host_move_req *r)
{
	if (r->data != NULL)
		evbuffer_free(r->data);
	host_move_dst_unref(&r->dst);
	mem_free(r);
}

static void host_move_job_free(struct host_move_job *j)
{
	if (j->data != NULL)
		evbuffer_free(j->data);
	host_move_dst_unref(&j->dst);
	mem_free(j->error);
	mem_free(j);
}

/* The move is failing or going: reads and jobs still under way drop their
 * result (a job keeps its file's fd until it has run). */
static void host_move_in_orphan(struct host_move_in *m)
{
	for (size_t i = 0; i < m->reqs.count; i++) {
		struct host_move_req *r = m->reqs.items[i];
		if (r->answered)
			host_move_req_free(r);
		else
			r->m = NULL; /* its answer frees it */
	}
	array_clear(&m->reqs);
	for (size_t i = 0; i < m->jobs.count; i++)
		m->jobs.items[i]->m = NULL;
	array_clear(&m->jobs);
	host_move_dst_unref(&m->cur);
	m->held = m->files_open = 0;
	m->delayed = false;
}

/* waited: the answer honoured a MoveInStatus's waitMs (the caller may ask
 * again at once); an answer at once says false, so that a caller asking
 * about a copy that has not begun does not ask again at once, and again. */
static struct json *host_move_in_status_json(const struct host_move_in *m, bool waited)
{
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
	json_set_bool(r, "waited", waited);
	return r;
}

/* Answer a MoveInStatus that waits, if one does: the pass ended, its wait
 * is over, or the move is. */
static void host_move_in_status_wake(struct host_move_in *m)
{
	if (m->status_conn == NULL)
		return;
	struct rpc_conn *conn = m->status_conn;
	m->status_conn = NULL;
	event_del(m->status_timer);
	rpc_conn_reply(conn, m->status_id, host_move_in_status_json(m, true));
}

static void host_move_in_status_waited(evutil_socket_t fd, short events, void *ctx)
{
	host_move_in_status_wake(ctx);
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
	host_move_in_orphan(m);
	log_error(host_move_ctx(m->id), "moving in failed: %s", error);
	host_move_in_status_wake(m);
	/* not from inside the link's own callbacks */
	event_del(m->timer);
	event_assign(m->timer, m->hm->base, -1, 0, host_move_in_close_link, m);
	event_active(m->timer, EV_TIMEOUT, 0);
}

static void host_move_in_free(struct host_move_in *m, bool remove_data)
{
	host_move_in_status_wake(m);
	event_free(m->status_timer);
	host_move_in_orphan(m);
	m->tearing_down = true;
	rpc_client_destroy(&m->link);
	array_free(&m->reqs);
	array_free(&m->jobs);
	if (remove_data) {
		const char *error;
		if (host_instances_remove_dir(m->hm->hi, m->base_dir, &error) < 0)
			log_error(host_move_ctx(m->id), "removing the copy: %s", error);
		if (!m->created_base)
			(void)mkdir(m->base_dir, 0700);
		(void)unlink(m->key_tmp);
	}
	event_free(m->timer);
	json_unref(&m->entries);
	host_move_known_clear(m);
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
		if (host_instances_remove_dir(m->hm->hi, m->base_dir, error_r) < 0)
			return -1;
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
	m->known = hash_create();
	m->timer = evtimer_new(hm->base, host_move_in_close_link, m);
	m->status_timer = evtimer_new(hm->base, host_move_in_status_waited, m);
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

static void host_move_in_pump(struct host_move_in *m);
static void host_move_in_pass_done(struct host_move_in *m);

/* Write all of iov (n entries, changed) at offset; -1 with errno. */
static int host_move_pwritev_all(int fd, struct iovec *iov, int n, long long offset)
{
	while (n > 0) {
		ssize_t w = pwritev(fd, iov, n, (off_t)offset);
		if (w < 0 && errno == EINTR)
			continue;
		int flags = w < 0 && errno == EINVAL ? fcntl(fd, F_GETFL) : -1;
		if (flags >= 0 && (flags & O_DIRECT) != 0) {
			/* a file opened O_DIRECT, written here from unaligned
			 * buffers (no worker was to be had): buffered from now */
			if (fcntl(fd, F_SETFL, flags & ~O_DIRECT) < 0)
				return -1;
			continue;
		}
		if (w < 0) {
			if (flags >= 0)
				errno = EINVAL;
			return -1;
		}
		offset += w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Write the piece as it came (its evbuffer chains, no copy), hashing the
 * bytes as they are written; -1 with j->error. */
static int host_move_write_buffered(struct host_move_job *j, struct host_move_sum *sum)
{
	struct host_move_dst *d = j->dst;
	struct crypto_checksum_ctx *sum_ctx = crypto_checksum_create();
	long long at = j->offset;
	while (j->error == NULL && evbuffer_get_length(j->data) > 0) {
		struct evbuffer_iovec vec[32];
		struct iovec iov[32];
		int n = evbuffer_peek(j->data, -1, NULL, vec, 32);
		size_t len = 0;
		if (n > 32)
			n = 32;
		for (int i = 0; i < n; i++) {
			iov[i].iov_base = vec[i].iov_base;
			iov[i].iov_len = vec[i].iov_len;
			len += vec[i].iov_len;
		}
		if (host_move_pwritev_all(d->fd, iov, n, at) < 0) {
			j->error = mem_printf("writing %s: %s", d->path, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++)
			crypto_checksum_update(sum_ctx, vec[i].iov_base, vec[i].iov_len);
		evbuffer_drain(j->data, len);
		at += (long long)len;
	}
	crypto_checksum_finish(&sum_ctx, sum->b);
	return j->error != NULL ? -1 : 0;
}

/* The piece straight to the disk (O_DIRECT), not copied into the page
 * cache on its way: that copy was the larger part of a target's CPU time
 * (the more so in a VM, where reused page cache pages fault in the
 * hypervisor), and fsync has nothing left to write back. O_DIRECT wants
 * aligned memory, offsets and lengths: the piece is copied into the
 * worker's aligned buffer and hashed there, and a short last piece is
 * padded with zeros, which the file's end cuts off again. 0 written, 1 not
 * (a file system that refuses: then buffered, from here on), -1 with
 * j->error. */
static int host_move_write_direct(struct host_move_job *j, struct host_move_sum *sum)
{
	struct host_move_dst *d = j->dst;
	size_t len = evbuffer_get_length(j->data);
	size_t padded = (len + HOST_MOVE_DIRECT_ALIGN - 1) / HOST_MOVE_DIRECT_ALIGN *
			HOST_MOVE_DIRECT_ALIGN;
	unsigned char *buf = j->bounce;
	if (evbuffer_copyout(j->data, buf, len) != (ev_ssize_t)len)
		return 1;
	memset(buf + len, 0, padded - len);
	crypto_checksum(buf, len, sum->b);
	size_t done = 0;
	while (done < padded) {
		ssize_t w = pwrite(d->fd, buf + done, padded - done,
				   (off_t)(j->offset + (long long)done));
		if (w < 0 && errno == EINTR)
			continue;
		if (d->direct && ((w < 0 && errno == EINVAL) ||
				  (w >= 0 && (size_t)w % HOST_MOVE_DIRECT_ALIGN != 0))) {
			/* refused, or a part that leaves the rest unaligned:
			 * the rest (and the file's other pieces) buffered */
			int flags = fcntl(d->fd, F_GETFL);
			d->direct = false;
			if (flags < 0 || fcntl(d->fd, F_SETFL, flags & ~O_DIRECT) < 0) {
				j->error = mem_printf("writing %s: %s", d->path, strerror(errno));
				return -1;
			}
			if (w > 0)
				done += (size_t)w;
			continue;
		}
		if (w <= 0) {
			j->error = mem_printf("writing %s: %s", d->path,
					      w < 0 ? strerror(errno) : "nothing written");
			return -1;
		}
		done += (size_t)w;
	}
	evbuffer_drain(j->data, len);
	return 0;
}

/* On the worker: write a piece, hashing what is written, and compare with
 * the source's checksum; or, after the last piece, cut the file to its
 * length and make it durable. */
static void host_move_job_work(void *ctx)
{
	struct host_move_job *j = ctx;
	struct host_move_dst *d = j->dst;
	if (j->end) {
		if (j->delay_ms > 0)
			usleep(j->delay_ms * 1000);
		if (ftruncate(d->fd, (off_t)j->offset) < 0)
			j->error = mem_printf("ftruncate(%s): %s", d->path, strerror(errno));
		else if (fsync(d->fd) < 0)
			j->error = mem_printf("fsync(%s): %s", d->path, strerror(errno));
		return;
	}
	if (j->corrupt)
		evbuffer_pullup(j->data, 1)[0] ^= 0x01;
	struct host_move_sum sum;
	int direct = j->bounce != NULL && d->direct ? host_move_write_direct(j, &sum) : 1;
	if (direct < 0)
		return;
	if (direct > 0 && host_move_write_buffered(j, &sum) < 0)
		return;
	if (memcmp(sum.b, j->sum.b, sizeof(sum.b)) != 0) {
		char got[CRYPTO_CHECKSUM_LEN * 2 + 1], want[CRYPTO_CHECKSUM_LEN * 2 + 1];
		host_move_sum_hex(&sum, got);
		host_move_sum_hex(&j->sum, want);
		j->error = mem_printf("%s at %lld: checksum of the copy (%s) differs from the "
				      "source's (%s)",
				      d->path, j->offset, got, want);
	}
}
static void host_move_job_done(void *ctx, bool ran);

/* Hand a job to the worker (it holds a reference to its file). */
static void host_move_in_submit(struct host_move_in *m, struct host_move_job *j)
{
	struct host_move *hm = m->hm;
	j->m = m;
	array_append(&m->jobs, j);
	if (hm->pool != NULL && hm->bounce == NULL)
		hm->bounce = mem_alloc_aligned(HOST_MOVE_DIRECT_ALIGN, HOST_MOVE_CHUNK);
	j->bounce = hm->bounce; /* the worker's alone */
	if (hm->corrupt_left > 0 && !j->end && evbuffer_get_length(j->data) > 0) {
		hm->corrupt_left--;
		j->corrupt = true;
	}
	if (hm->pool == NULL ||
	    worker_pool_submit(hm->pool, host_move_job_work, host_move_job_done, j) < 0) {
		/* no worker to be had: here rather than not at all (buffered:
		 * the worker may be using its buffer) */
		j->bounce = NULL;
		host_move_job_work(j);
		host_move_job_done(j, true);
	}
}

/* Once its last piece is written: cut the file and fsync it. */
static void host_move_in_maybe_end(struct host_move_in *m, struct host_move_dst *d)
{
	if (d->end < 0 || d->writes > 0 || d->ending || m->state != MOVE_IN_COPYING)
		return;
	d->ending = true;
	struct host_move_job *j = mem_new(struct host_move_job);
	j->dst = host_move_dst_ref(d);
	j->end = true;
	j->offset = d->end;
	/* tests: an end that takes long, of a file of several pieces */
	if (d->end > (long long)HOST_MOVE_CHUNK)
		j->delay_ms = m->verify_delay_ms;
	host_move_in_submit(m, j);
}

/* A piece is written and verified, or a file is durable: it joins what
 * the target holds, and the copy goes on. */
static void host_move_job_done(void *ctx, bool ran)
{
	struct host_move_job *j = ctx;
	struct host_move_in *m = j->m;
	if (m == NULL || m->hm->destroying) {
		host_move_job_free(j);
		return;
	}
	for (size_t i = 0; i < m->jobs.count; i++) {
		if (m->jobs.items[i] == j) {
			array_delete(&m->jobs, i, 1);
			break;
		}
	}
	if (!ran || j->error != NULL) {
		host_move_in_fail(m, j->error != NULL ? j->error : "writing was cut short");
		host_move_job_free(j);
		return;
	}
	struct host_move_dst *d = j->dst;
	if (j->end) {
		host_move_file_free(hash_set(m->known, d->key, d->file));
		d->file = NULL;
		d->old = NULL;
		m->files_synced++;
		m->files_open--;
	} else {
		d->writes--;
		m->held--;
		host_move_in_maybe_end(m, d);
	}
	host_move_job_free(j);
	host_move_in_pump(m);
}

/* A piece answered, taken in the order asked: written on the worker unless
 * the target holds it already (or the file ended before it). */
static void host_move_in_take(struct host_move_in *m, struct host_move_req *r)
{
	struct host_move_dst *d = r->dst;
	d->reads--;
	if (d->end >= 0) {
		/* asked for beyond where the file turned out to end */
		m->held--;
		return;
	}
	array_append(&d->file->sums, r->sum);
	m->bytes_done += r->length;
	if (r->eof) {
		d->end = r->offset + r->length;
		if (m->cur == d)
			host_move_dst_unref(&m->cur);
	}
	if (!r->same && r->length > 0) {
		struct host_move_job *j = mem_new(struct host_move_job);
		j->dst = host_move_dst_ref(d);
		j->offset = r->offset;
		j->data = r->data;
		r->data = NULL;
		j->sum = r->sum;
		d->writes++;
		m->bytes_sent += r->length;
		host_move_in_submit(m, j); /* keeps its piece held until written */
	} else {
		m->held--;
	}
	host_move_in_maybe_end(m, d);
}

static void host_move_in_read_answer(struct rpc_conn *conn, const struct json *result,
				     const char *code, const char *text, void *ctx)
{
	struct host_move_req *r = ctx;
	struct host_move_in *m = r->m;
	r->answered = true;
	if (m == NULL || m->tearing_down || m->state != MOVE_IN_COPYING) {
		if (m == NULL)
			host_move_req_free(r);
		return; /* otherwise freed with the move's reads */
	}
	if (code != NULL) {
		host_move_in_fail(m, tstr_printf("reading from the source: %s", text));
		return;
	}
	struct evbuffer *blob = rpc_conn_answer_blob_buffer(conn);
	size_t len = blob == NULL ? 0 : evbuffer_get_length(blob);
	const char *hex = json_get_string(result, "xxh3");
	r->same = json_get_bool(result, "same", false);
	r->eof = json_get_bool(result, "eof", false);
	if (hex == NULL || hex_decode(hex, r->sum.b, sizeof(r->sum.b)) != CRYPTO_CHECKSUM_LEN ||
	    json_get_int(result, "length", &r->length) != 1 || r->length < 0 ||
	    r->length > (long long)HOST_MOVE_CHUNK ||
	    r->eof != (r->length < (long long)HOST_MOVE_CHUNK) ||
	    (!r->same && (size_t)r->length != len)) {
		host_move_in_fail(m, "reading from the source: a malformed answer");
		return;
	}
	if (!r->same && len > 0) {
		r->data = evbuffer_new();
		evbuffer_add_buffer(r->data, blob); /* the chains change hands */
	}
	while (m->state == MOVE_IN_COPYING && m->reqs.count > 0 && m->reqs.items[0]->answered) {
		struct host_move_req *head = m->reqs.items[0];
		array_delete(&m->reqs, 0, 1);
		host_move_in_take(m, head);
		host_move_req_free(head);
	}
	host_move_in_pump(m);
}

/* Ask the source for the next piece of the current file. */
static void host_move_in_ask(struct host_move_in *m)
{
	struct host_move_dst *d = m->cur;
	struct rpc_conn *conn = rpc_client_conn(m->link);
	if (conn == NULL) {
		host_move_in_fail(m, "the link to the source Instance Host went down");
		return;
	}
	struct host_move_req *r = mem_new(struct host_move_req);
	r->m = m;
	r->dst = host_move_dst_ref(d);
	r->offset = d->next_offset;
	d->next_offset += HOST_MOVE_CHUNK;
	d->reads++;
	m->held++;
	array_append(&m->reqs, r);
	struct json *args = json_new_object();
	json_set_string(args, "moveToken", m->token);
	json_set_int(args, "index", (long long)d->index);
	json_set_int(args, "offset", r->offset);
	/* the piece the target holds there already: the source sends its
	 * checksum only, if it is the same */
	size_t piece = (size_t)(r->offset / HOST_MOVE_CHUNK);
	if (d->old != NULL && piece < d->old->sums.count) {
		char hex[CRYPTO_CHECKSUM_LEN * 2 + 1];
		host_move_sum_hex(&d->old->sums.items[piece], hex);
		json_set_string(args, "have", hex);
	}
	rpc_conn_call(conn, "MoveOutRead", args, HOST_MOVE_READ_SECS, host_move_in_read_answer, r);
}

/* Tests: one read at a time, each after a wait. */
static void host_move_in_ask_delayed(evutil_socket_t fd, short events, void *ctx)
{
	struct host_move_in *m = ctx;
	m->delayed = false;
	if (m->state != MOVE_IN_COPYING || m->cur == NULL)
		return;
	host_move_in_ask(m);
	host_move_in_pump(m);
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
 * (the same stamp as when it was copied): 1 opened (m->cur), 0 skipped,
 * -1 failed. */
static int host_move_in_open(struct host_move_in *m, const struct json *e, const char **error_r)
{
	const char *kind = json_get_string(e, "kind");
	const char *path = json_get_string(e, "path");
	const char *stamp = json_get_string(e, "stamp");
	const struct host_move_file *old = hash_get(m->known, path);
	long long size = 0;
	if (stamp == NULL)
		stamp = "";
	if (old != NULL && old->kind == kind[0] && old->stamp[0] != '\0' &&
	    strcmp(old->stamp, stamp) == 0)
		return 0;
	long long mode = 0600;
	(void)json_get_int(e, "mode", &mode);
	(void)json_get_int(e, "size", &size);
	char *dest;
	int fd;
	bool direct = false;
	if (kind[0] == 'k') {
		char *key_dir = mem_strdup(m->key_path);
		*strrchr(key_dir, '/') = '\0';
		int ret = file_mkdir_parents(key_dir, 0700, error_r);
		mem_free(key_dir);
		if (ret < 0)
			return -1;
		dest = mem_strdup(m->key_tmp);
		fd = open(dest, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	} else {
		dest = mem_printf("%s/%s", m->base_dir, path);
		/* straight to the disk where the file system can */
		fd = open(dest, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_DIRECT,
			  (mode_t)(mode & 0700) | 0600);
		direct = fd >= 0;
		if (fd < 0 && errno == EINVAL)
			fd = open(dest, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
				  (mode_t)(mode & 0700) | 0600);
	}
	if (fd < 0) {
		*error_r = tstr_printf("cannot create %s: %s", dest, strerror(errno));
		mem_free(dest);
		return -1;
	}
	struct host_move_dst *d = mem_new(struct host_move_dst);
	d->refs = 1; /* m->cur's */
	d->fd = fd;
	d->direct = direct;
	d->path = dest;
	d->key = mem_strdup(path);
	d->index = m->index;
	d->old = old != NULL && old->kind == kind[0] ? old : NULL;
	d->file = mem_new(struct host_move_file);
	d->file->kind = kind[0];
	d->file->stamp = mem_strdup(stamp);
	d->listed_size = size;
	d->end = -1;
	m->cur = d;
	m->files_open++;
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
	host_move_in_status_wake(m);
}

/* Make the directories and open the next file that changed: 1 opened, 0
 * none for now (all done, or waiting for files to end), -1 failed. */
static int host_move_in_open_next(struct host_move_in *m)
{
	const char *error;
	for (; m->index < json_count(m->entries); m->index++) {
		const struct json *e = json_at(m->entries, m->index);
		const char *kind = json_get_string(e, "kind");
		if (strcmp(kind, "dir") == 0) {
			if (host_move_in_mkdir(m, json_get_string(e, "path"), &error) < 0) {
				host_move_in_fail(m, error);
				return -1;
			}
			continue;
		}
		if (m->files_open >= HOST_MOVE_VERIFIES)
			return 0; /* a file's end (on the worker) calls again */
		int ret = host_move_in_open(m, e, &error);
		if (ret < 0) {
			host_move_in_fail(m, error);
			return -1;
		}
		if (ret > 0) {
			m->index++;
			return 1;
		}
	}
	return 0;
}

/* Keep the source busy: ask for pieces of the current file (and open the
 * next once its end is known) while fewer than HOST_MOVE_IN_FLIGHT pieces
 * are asked for or being written; end the pass when all is durable. */
static void host_move_in_pump(struct host_move_in *m)
{
	if (m->state != MOVE_IN_COPYING || m->pumping)
		return;
	m->pumping = true;
	unsigned int most = m->read_delay_ms > 0 ? 1 : HOST_MOVE_IN_FLIGHT;
	while (m->state == MOVE_IN_COPYING && !m->delayed) {
		if (m->cur == NULL && host_move_in_open_next(m) <= 0)
			break;
		struct host_move_dst *d = m->cur;
		if (m->held >= most)
			break;
		/* past its listed size: only once what was asked shows it grew */
		if (d->next_offset > d->listed_size && d->reads > 0)
			break;
		if (m->read_delay_ms > 0) {
			struct timeval tv = {m->read_delay_ms / 1000,
					     (m->read_delay_ms % 1000) * 1000};
			m->delayed = true;
			event_del(m->timer);
			event_assign(m->timer, m->hm->base, -1, 0, host_move_in_ask_delayed, m);
			event_add(m->timer, &tv);
			break;
		}
		host_move_in_ask(m);
	}
	m->pumping = false;
	if (m->state == MOVE_IN_COPYING && m->cur == NULL && m->reqs.count == 0 &&
	    m->jobs.count == 0 && !m->delayed && m->index >= json_count(m->entries))
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
	host_move_in_pump(m);
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
 * role during the last (COFFER_TEST_MOVE_READ_DELAY_MS, before each read,
 * one read at a time), the end of a large file (its fsync, on the worker)
 * slow enough to call the Instance Host during it (..._VERIFY_DELAY_MS). */
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

/* With waitMs, a pass still copying answers when it ends (or after waitMs,
 * at most HOST_MOVE_STATUS_WAIT_MAX_MS): the Management Server learns at
 * once that a pass ended instead of at its next poll. */
static void host_move_in_status(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
				const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	struct host_move_in *m = iid == NULL ? NULL : host_move_in_find(hm, iid);
	if (m == NULL) {
		rpc_conn_reply_error(conn, id, "failed", "no move of this instance here");
		return;
	}
	long long wait_ms = 0;
	(void)json_get_int(args, "waitMs", &wait_ms);
	if (wait_ms <= 0 || m->state != MOVE_IN_COPYING) {
		rpc_conn_reply(conn, id, host_move_in_status_json(m, false));
		return;
	}
	host_move_in_status_wake(m); /* one waits at a time */
	if (wait_ms > HOST_MOVE_STATUS_WAIT_MAX_MS)
		wait_ms = HOST_MOVE_STATUS_WAIT_MAX_MS;
	m->status_conn = conn;
	m->status_id = id;
	struct timeval tv = {(time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000};
	event_add(m->status_timer, &tv);
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
	/* reads on the worker for a link that closed: nobody to answer */
	for (size_t i = 0; i < hm->out_jobs.count; i++) {
		if (hm->out_jobs.items[i]->conn == conn)
			hm->out_jobs.items[i]->conn = NULL;
	}
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
		if (m->status_conn == conn)
			m->status_conn = NULL;
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

static void host_move_out_end_call(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
				   const struct json *args)
{
	const char *iid = json_get_string(args, "instanceID");
	if (iid != NULL)
		host_move_out_end(hm, iid, json_get_bool(args, "taken", false));
	rpc_conn_reply(conn, id, NULL);
}

/* Who may make a move call: the Management Server drives a move, the
 * target Instance Host only reads from the source. */
#define HOST_MOVE_FROM_PEER 1u

static const struct host_move_call {
	const char *name;
	void (*handler)(struct host_move *hm, struct rpc_conn *conn, uint32_t id,
			const struct json *args);
	unsigned int flags;
} host_move_calls[] = {
	{"MoveOutBegin", host_move_out_begin, 0},
	{"MoveOutEnd", host_move_out_end_call, 0},
	{"MoveOutFreeze", host_move_out_freeze, 0},
	{"MoveOutList", host_move_out_list_call, HOST_MOVE_FROM_PEER},
	{"MoveOutRead", host_move_out_read, HOST_MOVE_FROM_PEER},
	{"MoveInPrepare", host_move_in_prepare, 0},
	{"MoveInStart", host_move_in_start, 0},
	{"MoveInCatchUp", host_move_in_catch_up, 0},
	{"MoveInStatus", host_move_in_status, 0},
	{"MoveInCommit", host_move_in_commit, 0},
	{"MoveInAbort", host_move_in_abort, 0},
};

bool host_move_request(struct host_move *hm, struct rpc_conn *conn, uint32_t id, const char *method,
		       const struct json *args, bool from_management)
{
	if (strncmp(method, "MoveOut", 7) != 0 && strncmp(method, "MoveIn", 6) != 0)
		return false;
	const struct host_move_call *call = NULL;
	for (size_t i = 0; i < sizeof(host_move_calls) / sizeof(host_move_calls[0]); i++) {
		if (strcmp(host_move_calls[i].name, method) == 0)
			call = &host_move_calls[i];
	}
	if (call == NULL) {
		rpc_conn_reply_error(conn, id, "unknown-method",
				     tstr_printf("no call '%s'", method));
	} else if (((call->flags & HOST_MOVE_FROM_PEER) != 0) == from_management) {
		rpc_conn_reply_error(conn, id, "forbidden",
				     tstr_printf("%s is not taken from this peer", method));
	} else {
		call->handler(hm, conn, id, args);
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
	/* one thread: the pieces of a file are written in the order they
	 * came; room for the pieces and file ends of a few moves at once */
	if (worker_pool_create(base, 1, 1, 64, &hm->pool, &error) < 0)
		log_warning(NULL, "moves read and verify on the event loop: %s", error);
	const char *corrupt = getenv("COFFER_TEST_MOVE_CORRUPT_PIECES");
	int pieces = corrupt == NULL ? 0 : atoi(corrupt);
	if (pieces > 0) {
		hm->corrupt_left = (unsigned int)pieces;
		log_warning(NULL,
			    "COFFER_TEST_MOVE_CORRUPT_PIECES=%u: pieces moved in are corrupted "
			    "(for tests only)",
			    hm->corrupt_left);
	}
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
		host_move_out_free(h, h->outs);
		h->outs = next;
	}
	/* a copy not yet committed is of no use to anyone: the instance is
	 * still the source's */
	while (h->ins != NULL) {
		struct host_move_in *next = h->ins->next;
		host_move_in_free(h->ins, true);
		h->ins = next;
	}
	array_free(&h->out_jobs);
	mem_free(h->bounce);
	mem_free(h);
	*hm = NULL;
}
