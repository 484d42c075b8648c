#ifndef COFFER_TEST_TMPDIR_H
#define COFFER_TEST_TMPDIR_H
/* test-tmpdir: the temporary directory of a unit test (linked into tests only).
 *
 * Contract: test_tmpdir_create() makes a fresh private directory (mode 0700)
 * named after the test under $TMPDIR (default /tmp) and returns its path
 * (mem_free, or let test_tmpdir_remove() do it); it aborts if it cannot, as a
 * test without its directory cannot run. test_tmpdir_remove() removes the
 * directory and everything below it without following symbolic links, frees
 * the path and sets it to NULL; it returns 0, or -1 if something could not
 * be removed (NULL is a no-op returning 0). No shell is involved, so paths
 * may contain any character. */

char *test_tmpdir_create(const char *name);
int test_tmpdir_remove(char **dir);

#endif
