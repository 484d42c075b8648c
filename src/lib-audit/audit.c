#include "audit.h"
#include "crypto.h"
#include "file.h"
#include "hex.h"
#include "json.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_HASH_LEN 64
#define AUDIT_MAX_SIZE (1024ULL * 1024 * 1024)
/* Each line is read whole, up to this: a longer one is damage, not an entry. */
#define AUDIT_MAX_LINE (1024 * 1024)

struct audit {
	int fd;
	long long size; /* of the complete lines written (audit_size()) */
	char *path;
	char last_hash[AUDIT_HASH_LEN + 1];
};

/* The hash covers prev plus the serialized entry without "hash". */
static void audit_hash(const char *prev, const char *body, char out[AUDIT_HASH_LEN + 1])
{
	unsigned char digest[CRYPTO_SHA256_LEN];
	struct crypto_sha256_ctx *ctx = crypto_sha256_create();
	crypto_sha256_update(ctx, prev, strlen(prev));
	crypto_sha256_update(ctx, "\n", 1);
	crypto_sha256_update(ctx, body, strlen(body));
	crypto_sha256_finish(&ctx, digest);
	hex_encode(digest, sizeof(digest), out);
}

/* Check one line: it follows `prev` (NULL: whatever its own prev says) and
 * its hash covers it. On success *hash_r is its hash and, if entry_r is not
 * NULL, *entry_r the parsed entry (the caller's). */
static int audit_check_line(const char *line, size_t len, const char *prev,
			    char hash_r[AUDIT_HASH_LEN + 1], struct json **entry_r,
			    const char **error_r)
{
	struct json *entry;
	if (json_parse(line, len, &entry, error_r) < 0)
		return -1;
	const char *hash = json_get_string(entry, "hash");
	const char *entry_prev = json_get_string(entry, "prev");
	int ret = -1;
	if (hash == NULL || entry_prev == NULL || strlen(hash) != AUDIT_HASH_LEN ||
	    strlen(entry_prev) != AUDIT_HASH_LEN) {
		*error_r = "missing hash or prev";
	} else if (prev != NULL && strcmp(entry_prev, prev) != 0) {
		*error_r = "does not follow the line before it";
	} else {
		char *copy = mem_strdup(hash), *prev_copy = mem_strdup(entry_prev);
		json_remove(entry, "hash");
		char *body = json_serialize(entry, false);
		char computed[AUDIT_HASH_LEN + 1];
		audit_hash(prev_copy, body, computed);
		if (strcmp(computed, copy) != 0) {
			*error_r = "its contents do not match its hash";
		} else {
			memcpy(hash_r, copy, AUDIT_HASH_LEN + 1);
			json_set_string(entry, "hash", copy);
			ret = 0;
		}
		mem_free(body);
		mem_free(copy);
		mem_free(prev_copy);
	}
	if (ret == 0 && entry_r != NULL)
		*entry_r = entry;
	else
		json_unref(&entry);
	return ret;
}

/* Walk the chain; returns the line count and the offset after the last
 * complete line (a torn tail is not counted). */
static long audit_walk(const char *data, size_t len, char last_r[AUDIT_HASH_LEN + 1],
		       size_t *good_end_r, const char **error_r)
{
	char prev[AUDIT_HASH_LEN + 1];
	memset(prev, '0', AUDIT_HASH_LEN);
	prev[AUDIT_HASH_LEN] = '\0';
	long count = 0;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		if (nl == NULL)
			break; /* torn tail */
		char hash[AUDIT_HASH_LEN + 1];
		const char *line_error;
		if (audit_check_line(data + pos, (size_t)(nl - data - pos), prev, hash, NULL,
				     &line_error) < 0) {
			*error_r = tstr_printf("line %ld: %s", count + 1, line_error);
			return -1;
		}
		memcpy(prev, hash, sizeof(prev));
		count++;
		pos = (size_t)(nl - data) + 1;
	}
	memcpy(last_r, prev, AUDIT_HASH_LEN + 1);
	*good_end_r = pos;
	return count;
}

long audit_foreach(const char *path, long long limit, audit_entry_cb *cb, void *context,
		   const char **error_r)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		*error_r = tstr_printf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	char prev[AUDIT_HASH_LEN + 1];
	memset(prev, '0', AUDIT_HASH_LEN);
	prev[AUDIT_HASH_LEN] = '\0';
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long count = 0;
	long long consumed = 0;
	bool more = true, bad = false;
	while (more && !bad && (limit < 0 || consumed < limit) &&
	       (len = getline(&line, &cap, f)) > 0) {
		consumed += len;
		const char *line_error = NULL;
		char hash[AUDIT_HASH_LEN + 1];
		struct json *entry = NULL;
		if (line[len - 1] != '\n')
			line_error = "incomplete";
		else if (len > AUDIT_MAX_LINE)
			line_error = "too long";
		else
			(void)audit_check_line(line, (size_t)len - 1, prev, hash, &entry,
					       &line_error);
		if (entry == NULL) {
			*error_r = tstr_printf("%s: line %ld: %s", path, count + 1, line_error);
			bad = true;
			break;
		}
		memcpy(prev, hash, sizeof(prev));
		count++;
		if (cb != NULL)
			more = cb(entry, context);
		json_unref(&entry);
	}
	if (!bad && ferror(f)) {
		*error_r = tstr_printf("reading %s failed: %s", path, strerror(errno));
		bad = true;
	}
	free(line);
	fclose(f);
	return bad ? -1 : count;
}

long audit_verify(const char *path, const char **error_r)
{
	return audit_foreach(path, -1, NULL, NULL, error_r);
}

int audit_open(const char *path, struct audit **audit_r, const char **error_r)
{
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = tstr_printf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	char *data;
	size_t len, end;
	struct audit *a = mem_new(struct audit);
	a->fd = fd;
	a->path = mem_strdup(path);
	if (file_read_all(path, AUDIT_MAX_SIZE, &data, &len, error_r) < 0) {
		audit_close(&a);
		return -1;
	}
	const char *walk_error;
	long count = audit_walk(data, len, a->last_hash, &end, &walk_error);
	mem_free(data);
	if (count < 0) {
		/* Never append to a broken chain: an operator must look at it. */
		*error_r = tstr_printf("audit log %s is damaged: %s", path, walk_error);
		audit_close(&a);
		return -1;
	}
	a->size = (long long)end;
	if (end != len && ftruncate(fd, (off_t)end) < 0) {
		*error_r = tstr_printf("cutting the torn last line of %s failed: %s", path,
				       strerror(errno));
		audit_close(&a);
		return -1;
	}
	*audit_r = a;
	return 0;
}

/* The file's last 2 * AUDIT_MAX_LINE bytes (room for its last line and a
 * torn one after it), read from offset *window_r. */
static int audit_find_tail(int fd, const char *path, char **data_r, off_t *window_r, size_t *len_r,
			   const char **error_r)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*error_r = tstr_printf("fstat(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	off_t window = st.st_size > 2 * AUDIT_MAX_LINE ? st.st_size - 2 * AUDIT_MAX_LINE : 0;
	size_t len = (size_t)(st.st_size - window);
	char *data = mem_alloc(len + 1);
	ssize_t n = len == 0 ? 0 : pread(fd, data, len, window);
	if (n != (ssize_t)len) {
		*error_r = tstr_printf("reading %s failed: %s", path,
				       n < 0 ? strerror(errno) : "short read");
		mem_free(data);
		return -1;
	}
	*data_r = data;
	*window_r = window;
	*len_r = len;
	return 0;
}

int audit_open_tail(const char *path, struct audit **audit_r, const char **error_r)
{
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = tstr_printf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	struct audit *a = mem_new(struct audit);
	a->fd = fd;
	a->path = mem_strdup(path);
	memset(a->last_hash, '0', AUDIT_HASH_LEN);
	char *data;
	off_t window;
	size_t len;
	if (audit_find_tail(fd, path, &data, &window, &len, error_r) < 0) {
		audit_close(&a);
		return -1;
	}
	/* a torn last line (a crash mid-write) is cut off */
	size_t end = len;
	while (end > 0 && data[end - 1] != '\n')
		end--;
	size_t start = end == 0 ? 0 : end - 1;
	while (start > 0 && data[start - 1] != '\n')
		start--;
	const char *line_error = NULL;
	if (end > 0 && start == 0 && window > 0)
		line_error = "the last line is too long";
	else if (end > 0)
		(void)audit_check_line(data + start, end - start - 1, NULL, a->last_hash, NULL,
				       &line_error);
	mem_free(data);
	if (line_error != NULL) {
		/* never append to a broken chain: an operator must look at it */
		*error_r = tstr_printf("audit log %s is damaged at its end: %s", path, line_error);
		audit_close(&a);
		return -1;
	}
	a->size = (long long)window + (long long)end;
	if (end != len && ftruncate(fd, window + (off_t)end) < 0) {
		*error_r = tstr_printf("cutting the torn last line of %s failed: %s", path,
				       strerror(errno));
		audit_close(&a);
		return -1;
	}
	*audit_r = a;
	return 0;
}

void audit_close(struct audit **audit)
{
	if (*audit == NULL)
		return;
	if ((*audit)->fd >= 0)
		close((*audit)->fd);
	mem_free((*audit)->path);
	mem_free(*audit);
	*audit = NULL;
}

static int audit_write(struct audit *audit, time_t when, const char *user, const char *address,
		       const char *action, const struct json *details, bool sync,
		       const char **error_r)
{
	char stamp[32];
	struct tm tm;
	gmtime_r(&when, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	struct json *entry = json_new_object();
	json_set_string(entry, "time", stamp);
	json_set_string(entry, "user", user);
	json_set_string(entry, "address", address);
	json_set_string(entry, "action", action);
	json_set(entry, "details", details != NULL ? json_clone(details) : json_new_null());
	json_set_string(entry, "prev", audit->last_hash);
	char *body = json_serialize(entry, false);
	char hash[AUDIT_HASH_LEN + 1];
	audit_hash(audit->last_hash, body, hash);
	mem_free(body);
	json_set_string(entry, "hash", hash);
	char *line = json_serialize(entry, false);
	json_unref(&entry);
	size_t len = strlen(line);
	line = mem_realloc(line, len + 2);
	line[len++] = '\n';
	off_t before = lseek(audit->fd, 0, SEEK_END);
	ssize_t n = write(audit->fd, line, len);
	int ret = 0;
	if (n != (ssize_t)len || (sync && fsync(audit->fd) < 0)) {
		*error_r = tstr_printf("writing the audit log %s failed: %s", audit->path,
				       n < 0 ? strerror(errno) : "short write");
		/* a torn line (a full disk) would break the chain for good */
		if (n > 0 && before >= 0)
			(void)ftruncate(audit->fd, before);
		ret = -1;
	} else {
		memcpy(audit->last_hash, hash, sizeof(hash));
		audit->size = (long long)before + (long long)len;
	}
	mem_free(line);
	return ret;
}

int audit_append(struct audit *audit, time_t when, const char *user, const char *address,
		 const char *action, const struct json *details, const char **error_r)
{
	return audit_write(audit, when, user, address, action, details, true, error_r);
}

int audit_append_nosync(struct audit *audit, time_t when, const char *user, const char *address,
			const char *action, const struct json *details, const char **error_r)
{
	return audit_write(audit, when, user, address, action, details, false, error_r);
}

int audit_sync(struct audit *audit, const char **error_r)
{
	if (fsync(audit->fd) < 0) {
		*error_r = tstr_printf("fsync(%s) failed: %s", audit->path, strerror(errno));
		return -1;
	}
	return 0;
}

long long audit_size(struct audit *audit)
{
	return audit->size;
}
