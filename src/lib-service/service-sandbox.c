#include "service-sandbox.h"
#include "tstr.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Rights that apply to regular files; a rule on a file may carry only these. */
#define SANDBOX_FILE_RIGHTS                                                                        \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE)
#define SANDBOX_READ_RIGHTS                                                                        \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

/* Everything Landlock can restrict at a given ABI version. */
static __u64 service_sandbox_handled(long abi)
{
	__u64 rights = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0-12 */
	if (abi >= 2)
		rights |= LANDLOCK_ACCESS_FS_REFER;
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
	if (abi >= 3)
		rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
	return rights;
}

static int service_sandbox_add(int ruleset, const struct service_sandbox_path *p, __u64 handled,
			       const char **error_r)
{
	int fd = open(p->path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !p->write)
			return 0; /* an optional system path this machine lacks */
		*error_r = tstr_printf("sandbox: open(%s) failed: %s", p->path, strerror(errno));
		return -1;
	}
	struct stat st;
	__u64 rights = p->write ? handled : SANDBOX_READ_RIGHTS;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) {
		__u64 file_rights = SANDBOX_FILE_RIGHTS;
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
		file_rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
		rights &= file_rights & handled;
	}
	struct landlock_path_beneath_attr attr = {.allowed_access = rights, .parent_fd = fd};
	long ret = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0);
	int saved = errno;
	close(fd);
	if (ret < 0) {
		*error_r = tstr_printf("sandbox: adding %s failed: %s", p->path, strerror(saved));
		return -1;
	}
	return 0;
}

int service_sandbox_restrict(const struct service_sandbox_path *paths, size_t count,
			     const char **error_r)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1)
		return 0;
	struct landlock_ruleset_attr attr = {.handled_access_fs = service_sandbox_handled(abi)};
	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0) {
		*error_r =
			tstr_printf("sandbox: landlock_create_ruleset failed: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		if (service_sandbox_add(ruleset, &paths[i], attr.handled_access_fs, error_r) < 0) {
			close(ruleset);
			return -1;
		}
	}
	/* Required so an unprivileged process may restrict itself. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) {
		*error_r =
			tstr_printf("sandbox: landlock_restrict_self failed: %s", strerror(errno));
		close(ruleset);
		return -1;
	}
	close(ruleset);
	return 1;
}
