#ifndef COFFER_SERVICE_SANDBOX_H
#define COFFER_SERVICE_SANDBOX_H
/* service-sandbox: confine the calling process's file system access with
 * Landlock, so that an instance process can open only its own base
 * directory, its own key file and the read-only system files every program
 * needs, whatever a bug or a crafted message makes it try.
 *
 * Contract: service_sandbox_restrict() applies to the calling process and
 * every child it starts, and cannot be undone. Returns 1 when applied, 0 when
 * the kernel has no Landlock (the caller decides whether to go on), -1 with
 * *error_r on a real failure (e.g. a listed path does not exist). */
#include <stdbool.h>
#include <stddef.h>

struct service_sandbox_path {
	const char *path;
	bool write; /* full access below it; else read and execute only */
};

int service_sandbox_restrict(const struct service_sandbox_path *paths, size_t count,
			     const char **error_r);

#endif
