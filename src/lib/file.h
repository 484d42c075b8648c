#ifndef COFFER_FILE_H
#define COFFER_FILE_H
/* file: whole-file reads and durable writes.
 *
 * Contract: file_write_atomic() writes to a temporary file in the same
 * directory, fsyncs it, renames it over the target and fsyncs the directory;
 * on any failure the old file is untouched and the temporary file removed.
 * All functions return 0 on success and -1 with *error_r set (a tstr string
 * naming the path and the system error). */
#include <stddef.h>
#include <sys/types.h>

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      const char **error_r);
/* Reads at most max_size bytes; a larger file is an error. *data_r is
 * NUL-terminated (not counted in *len_r) and freed with mem_free(). */
int file_read_all(const char *path, size_t max_size, char **data_r, size_t *len_r,
		  const char **error_r);
int file_fsync_dir(const char *dir, const char **error_r);
/* The directory part of path, as dirname(3) gives it; mem_free(). */
char *file_dirname(const char *path);
/* mkdir -p with the given mode for directories it creates. */
int file_mkdir_parents(const char *path, mode_t mode, const char **error_r);
/* 1 if path exists, 0 if not, -1 on other errors. */
int file_exists(const char *path, const char **error_r);
/* Copy a file's bytes durably (via file_write_atomic). */
int file_copy(const char *src, const char *dest, mode_t mode, const char **error_r);

#endif
