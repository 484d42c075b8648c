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
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_HASH_LEN 64
#define AUDIT_MAX_SIZE (1024ULL * 1024 * 1024)

struct audit {
	int fd;
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

/* Check one line against the expected prev; on success *hash_r is its hash. */
static int audit_check_line(const char *line, size_t len, const char *prev,
			    char hash_r[AUDIT_HASH_LEN + 1], const char **error_r)
{
	struct json *entry;
	if (json_parse(line, len, &entry, error_r) < 0)
		return -1;
	const char *hash = json_get_string(entry, "hash");
	const char *entry_prev = json_get_string(entry, "prev");
	int ret = -1;
	if (hash == NULL || entry_prev == NULL || strlen(hash) != AUDIT_HASH_LEN) {
		*error_r = "missing hash or prev";
	} else if (strcmp(entry_prev, prev) != 0) {
		*error_r = "does not follow the line before it";
	} else {
		char *copy = mem_strdup(hash);
		json_remove(entry, "hash");
		char *body = json_serialize(entry, false);
		char computed[AUDIT_HASH_LEN + 1];
		audit_hash(prev, body, computed);
		if (strcmp(computed, copy) != 0) {
			*error_r = "its contents do not match its hash";
		} else {
			memcpy(hash_r, copy, AUDIT_HASH_LEN + 1);
			ret = 0;
		}
		mem_free(body);
		mem_free(copy);
	}
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
		if (audit_check_line(data + pos, (size_t)(nl - data - pos), prev, hash,
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

long audit_verify(const char *path, const char **error_r)
{
	char *data;
	size_t len, end;
	char last[AUDIT_HASH_LEN + 1];
	if (file_read_all(path, AUDIT_MAX_SIZE, &data, &len, error_r) < 0)
		return -1;
	const char *walk_error;
	long count = audit_walk(data, len, last, &end, &walk_error);
	mem_free(data);
	if (count < 0)
		*error_r = tstr_printf("%s: %s", path, walk_error);
	else if (end != len)
		*error_r = tstr_printf("%s: the last line is incomplete", path);
	return count < 0 || end != len ? -1 : count;
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
	if (end != len && ftruncate(fd, (off_t)end) < 0) {
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

int audit_append(struct audit *audit, time_t when, const char *user, const char *address,
		 const char *action, const struct json *details, const char **error_r)
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
	ssize_t n = write(audit->fd, line, len);
	int ret = 0;
	if (n != (ssize_t)len || fsync(audit->fd) < 0) {
		*error_r = tstr_printf("writing the audit log %s failed: %s", audit->path,
				       n < 0 ? strerror(errno) : "short write");
		ret = -1;
	} else {
		memcpy(audit->last_hash, hash, sizeof(hash));
	}
	mem_free(line);
	return ret;
}
