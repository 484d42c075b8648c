/* test-tmpdir: see test-tmpdir.h. */
#include "test-tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"

char *test_tmpdir_create(const char *name)
{
	const char *base = getenv("TMPDIR");
	if (base == NULL || *base == '\0')
		base = "/tmp";
	char *dir = mem_printf("%s/coffer-test-%s-XXXXXX", base, name);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	return dir;
}

static int test_tmpdir_failures;

static int test_tmpdir_remove_one(const char *path, const struct stat *st, int type,
				  struct FTW *ftw)
{
	/* count a failure but go on, so that as much as possible is removed */
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0)
		test_tmpdir_failures++;
	return 0;
}

int test_tmpdir_remove(char **dirp)
{
	char *dir = *dirp;
	if (dir == NULL)
		return 0;
	*dirp = NULL;
	/* FTW_DEPTH: contents before their directory; FTW_PHYS: a symbolic
	 * link is removed, never followed out of the tree. */
	test_tmpdir_failures = 0;
	int ret = nftw(dir, test_tmpdir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
	mem_free(dir);
	return ret == 0 && test_tmpdir_failures == 0 ? 0 : -1;
}
