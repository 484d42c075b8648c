#include "host-move.h"
#include "crypto.h"
#include "file.h"
#include "hex.h"
#include "host-instances.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "str.h"
#include "tstr.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

struct host_move_out {
	struct host_move_out *next;
	struct rpc_conn *owner; /* the Management Server's link it began on */
	char *id, *token, *peer_fp, *base_dir, *key_path;
	struct json *entries; /* [{path, kind: key|dir|file, size, mode}] */
	long long bytes;
	/* the file being read, in order */
	size_t index;
	long long offset;
	int fd;
	struct crypto_sha256_ctx *hash;
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
	struct event *timer; /* connect deadline; closing the link after a failure */
	struct json *entries;
	size_t index;
	long long offset;
	int fd;
	char *cur_path;
	long long bytes_done, bytes_total;
	bool listed;
	unsigned int early_closes; /* links closed before the listing */
};

struct host_move {
	struct event_base *base;
	struct host_instances *hi;
	struct tls_context *client_tls;
	const struct json *hello;
	struct host_move_out *outs;
	struct host_move_in *ins;
};

static const char *host_move_ctx(const char *id)
{
	return tstr_printf("instance=%s", id);
}

/* ---- source ---- */

static int host_move_list_dir(const char *abs, const char *rel, struct json *entries,
			      long long *bytes, const char **error_r)
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
			*error_r = tstr_printf("cannot stat %s: %s", full, strerror(errno));
			ret = -1;
		} else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
			struct json *e = json_new_object();
			json_set_string(e, "path", sub);
			json_set_string(e, "kind", S_ISDIR(st.st_mode) ? "dir" : "file");
			json_set_int(e, "size", S_ISDIR(st.st_mode) ? 0 : (long long)st.st_size);
			json_set_int(e, "mode", (long long)(st.st_mode & 0777));
			json_append(entries, e);
			if (S_ISDIR(st.st_mode))
				ret = host_move_list_dir(full, sub, entries, bytes, error_r);
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
	if (m->hash != NULL) {
		unsigned char sink[CRYPTO_SHA256_LEN];
		crypto_sha256_finish(&m->hash, sink);
	}
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

static void host_move_out_end(struct host_move *hm, const char *id)
{
	for (struct host_move_out **p = &hm->outs; *p != NULL; p = &(*p)->next) {
		if (strcmp((*p)->id, id) == 0) {
			struct host_move_out *m = *p;
			*p = m->next;
			host_instances_set_moving(hm->hi, id, false);
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
	host_move_out_end(hm, iid);
	struct host_move_out *m = mem_new(struct host_move_out);
	m->id = mem_strdup(iid);
	m->peer_fp = mem_strdup(peer);
	m->base_dir = base_dir;
	m->key_path = key_path;
	m->fd = -1;
	m->entries = json_new_array();
	struct stat st;
	int ret = 0;
	if (!stopped) {
		error = tstr_printf("instance %s is not stopped", iid);
		ret = -1;
	} else if (stat(key_path, &st) < 0 || !S_ISREG(st.st_mode)) {
		error = tstr_printf("the instance's key %s is missing", key_path);
		ret = -1;
	} else {
		struct json *key = json_new_object();
		json_set_string(key, "path", "");
		json_set_string(key, "kind", "key");
		json_set_int(key, "size", (long long)st.st_size);
		json_set_int(key, "mode", 0600);
		json_append(m->entries, key);
		m->bytes = (long long)st.st_size;
		ret = host_move_list_dir(base_dir, "", m->entries, &m->bytes, &error);
	}
	if (ret < 0) {
		host_move_out_free(m);
		rpc_conn_reply_error(conn, id, "failed", error);
		return;
	}
	m->token = crypto_random_hex(16);
	m->owner = conn;
	m->next = hm->outs;
	hm->outs = m;
	host_instances_set_moving(hm->hi, iid, true);
	log_info(host_move_ctx(iid), "moving out: %zu entries, %lld bytes", json_count(m->entries),
		 m->bytes);
	struct json *r = json_new_object();
	json_set_string(r, "moveToken", m->token);
	json_set_int(r, "entries", (long long)json_count(m->entries));
	json_set_int(r, "bytes", m->bytes);
	rpc_conn_reply(conn, id, r);
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

/* Read up to a chunk of the next bytes; -1 on a read error. */
static ssize_t host_move_read_chunk(int fd, unsigned char *buf)
{
	size_t n = 0;
	while (n < HOST_MOVE_CHUNK) {
		ssize_t r = read(fd, buf + n, HOST_MOVE_CHUNK - n);
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
	if ((size_t)index != m->index || offset == 0) {
		host_move_out_close(m);
		m->index = (size_t)index;
		m->offset = 0;
	}
	if (offset != m->offset) {
		rpc_conn_reply_error(conn, id, "bad-request",
				     "a file is read in order, from offset 0");
		return;
	}
	const char *kind = json_get_string(e, "kind");
	if (strcmp(kind, "dir") == 0) {
		rpc_conn_reply_error(conn, id, "bad-request", "entry is a directory");
		return;
	}
	if (m->fd < 0) {
		char *path = strcmp(kind, "key") == 0
				     ? mem_strdup(m->key_path)
				     : mem_printf("%s/%s", m->base_dir, json_get_string(e, "path"));
		m->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		const char *error = tstr_printf("cannot open %s: %s", path, strerror(errno));
		mem_free(path);
		if (m->fd < 0) {
			rpc_conn_reply_error(conn, id, "io", error);
			return;
		}
		m->hash = crypto_sha256_create();
	}
	unsigned char *buf = mem_alloc(HOST_MOVE_CHUNK);
	ssize_t n = host_move_read_chunk(m->fd, buf);
	if (n < 0) {
		rpc_conn_reply_error(conn, id, "io",
				     tstr_printf("read failed: %s", strerror(errno)));
		mem_free(buf);
		host_move_out_close(m);
		return;
	}
	crypto_sha256_update(m->hash, buf, (size_t)n);
	m->offset += n;
	struct json *r = json_new_object();
	bool eof = (size_t)n < HOST_MOVE_CHUNK;
	json_set_bool(r, "eof", eof);
	if (eof) {
		unsigned char digest[CRYPTO_SHA256_LEN];
		char hex[CRYPTO_SHA256_LEN * 2 + 1];
		crypto_sha256_finish(&m->hash, digest);
		hex_encode(digest, sizeof(digest), hex);
		json_set_string(r, "sha256", hex);
		host_move_out_close(m);
		m->index = (size_t)-1;
	}
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

static void host_move_in_close_file(struct host_move_in *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	mem_free(m->cur_path);
	m->cur_path = NULL;
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
	if (remove_data) {
		(void)nftw(m->base_dir, host_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		if (!m->created_base)
			(void)mkdir(m->base_dir, 0700);
		(void)unlink(m->key_tmp);
	}
	event_free(m->timer);
	json_unref(&m->entries);
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

static int host_move_in_verify(struct host_move_in *m, const char *path, const char *expected,
			       const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = tstr_printf("cannot read back %s: %s", path, strerror(errno));
		return -1;
	}
	unsigned char *buf = mem_alloc(HOST_MOVE_CHUNK);
	struct crypto_sha256_ctx *hash = crypto_sha256_create();
	ssize_t n;
	while ((n = host_move_read_chunk(fd, buf)) > 0)
		crypto_sha256_update(hash, buf, (size_t)n);
	unsigned char digest[CRYPTO_SHA256_LEN];
	char hex[CRYPTO_SHA256_LEN * 2 + 1];
	crypto_sha256_finish(&hash, digest);
	hex_encode(digest, sizeof(digest), hex);
	close(fd);
	mem_free(buf);
	if (n < 0 || expected == NULL || strcmp(hex, expected) != 0) {
		*error_r =
			tstr_printf("%s: SHA-256 of the copy (%s) differs from the source's (%s)",
				    path, hex, expected == NULL ? "none" : expected);
		return -1;
	}
	return 0;
}

static void host_move_in_read(struct host_move_in *m);

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
	size_t len;
	const unsigned char *data = rpc_conn_answer_blob(conn, &len);
	for (size_t done = 0; done < len;) {
		ssize_t w = write(m->fd, data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			host_move_in_fail(
				m, tstr_printf("writing %s: %s", m->cur_path, strerror(errno)));
			return;
		}
		done += (size_t)w;
	}
	m->offset += (long long)len;
	m->bytes_done += (long long)len;
	if (!json_get_bool(result, "eof", false)) {
		host_move_in_read(m);
		return;
	}
	const char *error;
	if (fsync(m->fd) < 0) {
		host_move_in_fail(m, tstr_printf("fsync(%s): %s", m->cur_path, strerror(errno)));
		return;
	}
	if (host_move_in_verify(m, m->cur_path, json_get_string(result, "sha256"), &error) < 0) {
		host_move_in_fail(m, error);
		return;
	}
	host_move_in_close_file(m);
	m->index++;
	host_move_in_next(m);
}

static void host_move_in_read(struct host_move_in *m)
{
	struct rpc_conn *conn = rpc_client_conn(m->link);
	if (conn == NULL) {
		host_move_in_fail(m, "the link to the source Instance Host went down");
		return;
	}
	struct json *args = json_new_object();
	json_set_string(args, "moveToken", m->token);
	json_set_int(args, "index", (long long)m->index);
	json_set_int(args, "offset", m->offset);
	rpc_conn_call(conn, "MoveOutRead", args, HOST_MOVE_READ_SECS, host_move_in_read_answer, m);
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

/* Make the directories and open the next file, or finish. */
static void host_move_in_next(struct host_move_in *m)
{
	const char *error;
	for (; m->index < json_count(m->entries); m->index++) {
		const struct json *e = json_at(m->entries, m->index);
		const char *kind = json_get_string(e, "kind");
		const char *path = json_get_string(e, "path");
		long long mode = 0600;
		(void)json_get_int(e, "mode", &mode);
		if (strcmp(kind, "dir") == 0) {
			char *dir = mem_printf("%s/%s", m->base_dir, path);
			int ret = mkdir(dir, 0700);
			if (ret < 0)
				error = tstr_printf("mkdir(%s): %s", dir, strerror(errno));
			mem_free(dir);
			if (ret < 0) {
				host_move_in_fail(m, error);
				return;
			}
			continue;
		}
		if (strcmp(kind, "key") == 0) {
			m->cur_path = mem_strdup(m->key_tmp);
			char *key_dir = mem_strdup(m->key_path);
			*strrchr(key_dir, '/') = '\0';
			int ret = file_mkdir_parents(key_dir, 0700, &error);
			mem_free(key_dir);
			if (ret < 0) {
				host_move_in_fail(m, error);
				return;
			}
			m->fd = open(m->cur_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		} else {
			m->cur_path = mem_printf("%s/%s", m->base_dir, path);
			m->fd = open(m->cur_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				     (mode_t)(mode & 0700) | 0600);
		}
		if (m->fd < 0) {
			host_move_in_fail(m, tstr_printf("cannot create %s: %s", m->cur_path,
							 strerror(errno)));
			return;
		}
		m->offset = 0;
		host_move_in_read(m);
		return;
	}
	if (host_move_in_fsync_dirs(m, &error) < 0) {
		host_move_in_fail(m, error);
		return;
	}
	m->state = MOVE_IN_COPIED;
	log_info(host_move_ctx(m->id), "moved in: %zu entries, %lld bytes verified",
		 json_count(m->entries), m->bytes_done);
	event_del(m->timer);
	event_assign(m->timer, m->hm->base, -1, 0, host_move_in_close_link, m);
	event_active(m->timer, EV_TIMEOUT, 0);
}

static void host_move_in_list_answer(struct rpc_conn *conn, const struct json *result,
				     const char *code, const char *text, void *ctx)
{
	struct host_move_in *m = ctx;
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
	m->entries = json_clone(entries);
	m->bytes_total = total;
	host_move_in_next(m);
}

static void host_move_in_ready(struct rpc_conn *conn, const struct json *hello, void *ctx)
{
	struct host_move_in *m = ctx;
	if (m->listed || m->state != MOVE_IN_COPYING)
		return;
	m->listed = true;
	event_del(m->timer);
	struct json *args = json_new_object();
	json_set_string(args, "moveToken", m->token);
	rpc_conn_call(conn, "MoveOutList", args, HOST_MOVE_READ_SECS, host_move_in_list_answer, m);
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
	json_set_int(r, "bytesDone", m->bytes_done);
	json_set_int(r, "bytesTotal", m->bytes_total);
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
			host_move_out_end(hm, m->id);
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
			host_move_out_end(hm, iid);
		rpc_conn_reply(conn, id, NULL);
	} else if (strcmp(method, "MoveOutList") == 0) {
		struct host_move_out *m = host_move_out_for_peer(hm, conn, id, args);
		if (m != NULL) {
			struct json *r = json_new_object();
			json_set_string(r, "instanceID", m->id);
			json_set(r, "entries", json_clone(m->entries));
			rpc_conn_reply(conn, id, r);
		}
	} else if (strcmp(method, "MoveOutRead") == 0) {
		host_move_out_read(hm, conn, id, args);
	} else if (strcmp(method, "MoveInPrepare") == 0) {
		host_move_in_prepare(hm, conn, id, args);
	} else if (strcmp(method, "MoveInStart") == 0) {
		host_move_in_start(hm, conn, id, args);
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
	return hm;
}

void host_move_destroy(struct host_move **hm)
{
	struct host_move *h = *hm;
	if (h == NULL)
		return;
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
