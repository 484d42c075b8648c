#include "file.h"
#include "mem.h"
#include "tstr.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *file_dirname(const char *path)
{
	char *copy = mem_strdup(path);
	char *dir = mem_strdup(dirname(copy));
	mem_free(copy);
	return dir;
}

int file_fsync_dir(const char *dir, const char **error_r)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = tstr_printf("open(%s) failed: %s", dir, strerror(errno));
		return -1;
	}
	int ret = fsync(fd);
	int saved = errno;
	close(fd);
	if (ret < 0) {
		*error_r = tstr_printf("fsync(%s) failed: %s", dir, strerror(saved));
		return -1;
	}
	return 0;
}

static int file_write_fd(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      const char **error_r)
{
	char *dir = file_dirname(path);
	char *tmp = mem_printf("%s.tmp.%ld", path, (long)getpid());
	int ret = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		*error_r = tstr_printf("creating %s failed: %s", tmp, strerror(errno));
		goto out;
	}
	/* open() applies the umask; the caller's mode is what it asked for. */
	if (fchmod(fd, mode) < 0 || file_write_fd(fd, data, len) < 0 || fsync(fd) < 0) {
		*error_r = tstr_printf("writing %s failed: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0) {
		*error_r = tstr_printf("closing %s failed: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		*error_r = tstr_printf("rename(%s, %s) failed: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	ret = file_fsync_dir(dir, error_r);
out:
	mem_free(tmp);
	mem_free(dir);
	return ret;
}

int file_read_all(const char *path, size_t max_size, char **data_r, size_t *len_r,
		  const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = tstr_printf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*error_r = tstr_printf("fstat(%s) failed: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = tstr_printf("%s is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((unsigned long long)st.st_size > max_size) {
		*error_r = tstr_printf("%s is too large (%lld bytes, at most %zu)", path,
				       (long long)st.st_size, max_size);
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size, len = 0;
	char *data = mem_alloc(size + 1);
	while (len < size) {
		ssize_t n = read(fd, data + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = tstr_printf("read(%s) failed: %s", path, strerror(errno));
			mem_free(data);
			close(fd);
			return -1;
		}
		if (n == 0)
			break; /* shrank while reading */
		len += (size_t)n;
	}
	close(fd);
	data[len] = '\0';
	*data_r = data;
	*len_r = len;
	return 0;
}

int file_mkdir_parents(const char *path, mode_t mode, const char **error_r)
{
	char *copy = mem_strdup(path);
	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			*error_r = tstr_printf("mkdir(%s) failed: %s", copy, strerror(errno));
			mem_free(copy);
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	mem_free(copy);
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = tstr_printf("%s is not a directory", path);
		return -1;
	}
	return 0;
}

int file_exists(const char *path, const char **error_r)
{
	struct stat st;
	if (stat(path, &st) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	*error_r = tstr_printf("stat(%s) failed: %s", path, strerror(errno));
	return -1;
}

int file_copy(const char *src, const char *dest, mode_t mode, const char **error_r)
{
	char *data;
	size_t len;
	if (file_read_all(src, 64 * 1024 * 1024, &data, &len, error_r) < 0)
		return -1;
	int ret = file_write_atomic(dest, data, len, mode, error_r);
	mem_free(data);
	return ret;
}
