#ifndef COFFER_CATALOG_VFS_H
#define COFFER_CATALOG_VFS_H
/* catalog-vfs: an SQLite VFS that encrypts the catalog's database and WAL
 * files page by page, so a copy of the base directory reveals no subjects,
 * addresses or index terms.
 *
 * Layout: pages are CATALOG_VFS_PAGE_SIZE bytes, of which SQLite leaves the
 * last CATALOG_VFS_RESERVE bytes unused (the database's "reserved bytes").
 * Each page is stored as nonce (24) | XChaCha20-Poly1305 ciphertext of the
 * first PAGE_SIZE - RESERVE bytes | tag (16), with the file kind and page
 * offset as associated data, and a fresh random nonce on every write. WAL
 * headers and frame headers (page numbers, salts, checksums) stay plain;
 * the shared-memory index holds no content. A page that fails
 * authentication reads as an I/O error, never as wrong data.
 *
 * Contract: catalog_vfs_create() registers a uniquely named VFS over the
 * default one, bound to one key; pass catalog_vfs_name() to
 * sqlite3_open_v2() and set the reserved bytes on a new database before its
 * first write (catalog.c does). Writing page 1 with another page size or
 * reserve is refused, so no page can ever lose bytes to the nonce and tag.
 * Destroy only after every connection using it is closed.
 *
 * Temporary files: SQLite's own (in /var/tmp, in plain text) are refused.
 * A temporary database (SQLITE_OPEN_TEMP_DB: VACUUM's transient copy of
 * the catalog, when temp_store is FILE) is encrypted like the catalog, in
 * the directory catalog_vfs_set_temp_dir() names, and unlinked as soon as
 * it is open; without that directory it is refused too. */
#include <stddef.h>

#define CATALOG_VFS_PAGE_SIZE 4096
#define CATALOG_VFS_RESERVE 40
#define CATALOG_VFS_KEY_LEN 32

struct catalog_vfs;

int catalog_vfs_create(const unsigned char key[CATALOG_VFS_KEY_LEN], struct catalog_vfs **vfs_r,
		       const char **error_r);
void catalog_vfs_destroy(struct catalog_vfs **vfs);
const char *catalog_vfs_name(const struct catalog_vfs *vfs);
/* Where temporary databases go (the catalog's directory); NULL: nowhere. */
void catalog_vfs_set_temp_dir(struct catalog_vfs *vfs, const char *dir);

#endif
