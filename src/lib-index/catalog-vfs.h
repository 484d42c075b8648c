#ifndef COFFER_CATALOG_VFS_H
#define COFFER_CATALOG_VFS_H
/* catalog-vfs: an SQLite VFS that encrypts the catalog's database and WAL
 * files page by page, so a copy of the base directory reveals no subjects,
 * addresses or index terms.
 *
 * Layout: pages are 16 KiB (CATALOG_VFS_PAGE_SIZE, for a new database) or
 * 4 KiB (catalogs made before 2026-12-05 keep theirs), of which SQLite
 * leaves the last CATALOG_VFS_RESERVE bytes unused (the database's
 * "reserved bytes"). Each page is stored as nonce (24) | XChaCha20-Poly1305
 * ciphertext of the first page size - RESERVE bytes | tag (16), with the
 * file kind and page
 * offset as associated data, and a fresh random nonce on every write. WAL
 * headers and frame headers (page numbers, salts, checksums) stay plain;
 * the shared-memory index holds no content. A page that fails
 * authentication reads as an I/O error, never as wrong data.
 *
 * Page size: opening a database file tells its page size from the file
 * itself (the first page authenticates as a 4 KiB or a 16 KiB unit); a new
 * one gets the page size given to catalog_vfs_create(). The WAL and VACUUM's
 * transient copy use the page size of the database open through the same
 * VFS, so databases open at once through one VFS must share a page size (a
 * second one with another is refused).
 *
 * Contract: catalog_vfs_create() registers a uniquely named VFS over the
 * default one, bound to one key; pass catalog_vfs_name() to
 * sqlite3_open_v2() and set the page size (catalog_vfs_page_size()) and
 * the reserved bytes on a new database before its first write (catalog.c
 * does). Writing page 1 with another page size or reserve is refused, so no
 * page can ever lose bytes to the nonce and tag, nor be cut into units that
 * are not its own. Destroy only after every connection using it is closed.
 *
 * Temporary files: SQLite's own (in /var/tmp, in plain text) are refused.
 * A temporary database (SQLITE_OPEN_TEMP_DB: VACUUM's transient copy of
 * the catalog, when temp_store is FILE) is encrypted like the catalog, in
 * the directory catalog_vfs_set_temp_dir() names, and unlinked as soon as
 * it is open; without that directory it is refused too. */
#include <stddef.h>

/* A new catalog's pages: 16 KiB. Against 4 KiB, a quarter of the page
 * encryptions and reads or writes for the same bytes: a compaction's index
 * merge and VACUUM, which rewrite the whole catalog, took 23 % less time,
 * and the catalog came out 9 % smaller (docs/benchmarks.md). */
#define CATALOG_VFS_PAGE_SIZE 16384
/* the page size of catalogs made before 2026-12-05, still read and written */
#define CATALOG_VFS_PAGE_SIZE_OLD 4096
#define CATALOG_VFS_RESERVE 40
#define CATALOG_VFS_KEY_LEN 32

struct catalog_vfs;

/* new_page_size: CATALOG_VFS_PAGE_SIZE or CATALOG_VFS_PAGE_SIZE_OLD, the
 * page size a database made through this VFS gets. */
int catalog_vfs_create(const unsigned char key[CATALOG_VFS_KEY_LEN], int new_page_size,
		       struct catalog_vfs **vfs_r, const char **error_r);
void catalog_vfs_destroy(struct catalog_vfs **vfs);
const char *catalog_vfs_name(const struct catalog_vfs *vfs);
/* The page size of the database open through this VFS, or before one is
 * open, of a new one. */
int catalog_vfs_page_size(const struct catalog_vfs *vfs);
/* Where temporary databases go (the catalog's directory); NULL: nowhere. */
void catalog_vfs_set_temp_dir(struct catalog_vfs *vfs, const char *dir);

#endif
