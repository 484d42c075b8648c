#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <sqlite3.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-vfs.h"
#include "catalog.h"
#include "crypto.h"
#include "file.h"
#include "mem.h"
#include "test-tmpdir.h"

static char *tmpdir;

static sqlite3 *open_db(const char *path, struct catalog_vfs *vfs, bool layout)
{
	sqlite3 *db;
	/* opening reads page 1, so a wrong key already fails here */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    catalog_vfs_name(vfs)) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	/* as catalog.c: SQLite's temporary files stay in memory (the VFS
	 * refuses them) */
	assert_int_equal(sqlite3_exec(db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL),
			 SQLITE_OK);
	if (layout) {
		int reserve = CATALOG_VFS_RESERVE;
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA page_size = %d", catalog_vfs_page_size(vfs));
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		assert_int_equal(
			sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve),
			SQLITE_OK);
	}
	return db;
}

/* A VFS that encrypts with key and gives a new database page_size. */
static struct catalog_vfs *vfs_with_pages(const unsigned char key[CATALOG_VFS_KEY_LEN],
					  int page_size)
{
	struct catalog_vfs *vfs;
	const char *error;
	assert_int_equal(catalog_vfs_create(key, page_size, &vfs, &error), 0);
	return vfs;
}

/* A fresh key in key, and a VFS that encrypts with it. */
static struct catalog_vfs *new_vfs(unsigned char key[CATALOG_VFS_KEY_LEN])
{
	crypto_key_generate(key);
	return vfs_with_pages(key, CATALOG_VFS_PAGE_SIZE);
}

static int count_rows(sqlite3 *db)
{
	sqlite3_stmt *st;
	if (db == NULL || sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE v LIKE 'secret%'",
					     -1, &st, NULL) != SQLITE_OK)
		return -1;
	int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return n;
}

static void test_encrypted_pages(void **state)
{
	unsigned char key[CATALOG_VFS_KEY_LEN], other[CATALOG_VFS_KEY_LEN];
	struct catalog_vfs *vfs = new_vfs(key), *wrong = new_vfs(other);
	const char *error;
	char *path = mem_printf("%s/t.db", tmpdir);

	sqlite3 *db = open_db(path, vfs, true);
	assert_non_null(db);
	assert_int_equal(
		sqlite3_exec(db,
			     "PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT);"
			     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
			     " WHERE i < 3000) INSERT INTO t SELECT 'secret words ' || i FROM n",
			     NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(count_rows(db), 3000);
	/* checkpoint half of it into the main file, keep the rest in the WAL */
	assert_int_equal(sqlite3_exec(db,
				      "PRAGMA wal_checkpoint(TRUNCATE);"
				      "INSERT INTO t VALUES ('secret in the wal')",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	char *files[] = {path, mem_printf("%s-wal", path)};
	for (int i = 0; i < 2; i++) {
		char *data;
		size_t len;
		assert_int_equal(file_read_all(files[i], 64 << 20, &data, &len, &error), 0);
		assert_true(len > 0);
		assert_null(memmem(data, len, "secret", 6));
		assert_null(memmem(data, len, "SQLite format 3", 15));
		mem_free(data);
	}
	/* a second connection through the same VFS reads the WAL too */
	sqlite3 *db2 = open_db(path, vfs, false);
	assert_int_equal(count_rows(db2), 3001);
	sqlite3_close(db2);
	/* another key reads nothing */
	db2 = open_db(path, wrong, false);
	assert_int_equal(count_rows(db2), -1);
	sqlite3_close(db2);
	sqlite3_close(db);

	/* a flipped byte in a page is an error, never wrong data */
	char *data;
	size_t len;
	assert_int_equal(file_read_all(path, 64 << 20, &data, &len, &error), 0);
	data[4096 * 2 + 100] ^= 1;
	assert_int_equal(file_write_atomic(path, data, len, 0600, &error), 0);
	mem_free(data);
	db = open_db(path, vfs, false);
	assert_int_equal(count_rows(db), -1);
	sqlite3_close(db);

	/* a database without the reserved bytes is refused before any write */
	char *plain = mem_printf("%s/noreserve.db", tmpdir);
	db = open_db(plain, vfs, false);
	assert_non_null(db);
	assert_int_not_equal(sqlite3_exec(db, "CREATE TABLE x (y)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	mem_free(plain);
	mem_free(files[1]);
	mem_free(path);
	catalog_vfs_destroy(&vfs);
	catalog_vfs_destroy(&wrong);
	assert_null(vfs);
}

static int setup(void **state)
{
	tmpdir = test_tmpdir_create("vfs");
	return crypto_init() < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	int ret = test_tmpdir_remove(&tmpdir);
	return ret == 0 ? 0 : -1;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	return v;
}

/* Messages 1..n, 100 bytes each, message 1 in folder A, the rest in B. */
static void add_messages(struct catalog *cat, int n)
{
	const char *error = NULL;
	int64_t store_id, content_id, msg_id;
	assert_int_equal(catalog_begin(cat, &error), 0);
	assert_int_equal(catalog_store_add(cat, "s", CATALOG_STORE_CURRENT, &store_id, &error), 0);
	for (int i = 1; i <= n; i++) {
		struct catalog_content c = {.loc = {.store_id = store_id, .length = 1},
					    .size = 100,
					    .from = "",
					    .to = "",
					    .cc = "",
					    .subject = "",
					    .body_text = "",
					    .attachment_names = "",
					    .imap = "NIL",
					    .imap_len = 3};
		memset(c.hash, i, sizeof(c.hash));
		assert_int_equal(catalog_content_add(cat, &c, &content_id, &error), 0);
		assert_int_equal(catalog_message_add(cat, content_id, "u", i == 1 ? "A" : "B", 0, 0,
						     &c.loc, &msg_id, &error),
				 1);
	}
	assert_int_equal(catalog_commit(cat, &error), 0);
}

/* catalog_open() brings an older catalog up to date (here: from schema 6,
 * through FTS5's automerge (7), defect kinds (8), the folders' kept
 * counts (9), which an existing archive gets filled in, the Date header's
 * zone (10) and the users' tables (11)) and refuses one from a newer
 * program. */
static void test_schema_versions(void **state)
{
	unsigned char key[CATALOG_VFS_KEY_LEN];
	struct catalog_vfs *vfs = new_vfs(key);
	const char *error;
	char *path = mem_printf("%s/schema.db", tmpdir);
	struct catalog *cat;
	assert_int_equal(catalog_open(path, key, &cat, &error), 0);
	add_messages(cat, 3);
	catalog_destroy(&cat);

	sqlite3 *db = open_db(path, vfs, false);
	assert_non_null(db);
	assert_int_equal(query_int(db, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
	assert_int_equal(query_int(db, "SELECT v FROM fts_config WHERE k = 'automerge'"), 8);
	assert_int_equal(query_int(db, "SELECT sum(messages) FROM folders"), 3);
	/* schema 6: no compliance tables (12), no users' tables (11), no zones (10), no counts and
	 * no triggers (9), a count of defects instead of kinds (8), FTS5's default automerge (7) */
	char *older = mem_printf("DROP TABLE legal_holds; DROP TABLE retention_policies;"
				 "DROP TABLE removals;"
				 "DROP TABLE users; DROP TABLE user_emails;"
				 "DROP TABLE user_privileges; DROP TABLE user_folder_rights;"
				 "DROP TABLE user_app_passwords;"
				 "ALTER TABLE contents DROP COLUMN zone;"
				 "DROP TRIGGER folder_count_add; DROP TRIGGER folder_count_remove;"
				 "ALTER TABLE folders DROP COLUMN messages;"
				 "ALTER TABLE folders DROP COLUMN bytes;"
				 "UPDATE contents SET defects = 3 WHERE id = 1;"
				 "DELETE FROM fts_config WHERE k = 'automerge';"
				 "PRAGMA user_version = %d",
				 6);
	assert_int_equal(sqlite3_exec(db, older, NULL, NULL, NULL), SQLITE_OK);
	mem_free(older);
	sqlite3_close(db);
	assert_int_equal(catalog_open(path, key, &cat, &error), 0);
	catalog_destroy(&cat);

	db = open_db(path, vfs, false);
	assert_int_equal(query_int(db, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
	assert_int_equal(query_int(db, "SELECT v FROM fts_config WHERE k = 'automerge'"), 8);
	/* 8: a count of defects becomes the "unnamed" kind */
	assert_int_equal(query_int(db, "SELECT defects FROM contents WHERE id = 1"), 1);
	assert_int_equal(query_int(db, "SELECT defects FROM contents WHERE id = 2"), 0);
	/* 9: the counts of the messages filed before the migration */
	assert_int_equal(query_int(db, "SELECT sum(messages) FROM folders"), 3);
	assert_int_equal(query_int(db, "SELECT messages FROM folders WHERE path = 'B'"), 2);
	assert_int_equal(query_int(db, "SELECT bytes FROM folders WHERE path = 'B'"), 200);
	/* 10: contents from before have no zone: their days are UTC days */
	assert_int_equal(query_int(db, "SELECT count(*) FROM contents WHERE zone = 0"), 3);
	/* 11: the users' tables, empty (the instance moves users.sealed in) */
	assert_int_equal(query_int(db, "SELECT count(*) FROM users"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM user_app_passwords"), 0);
	/* 12: no holds, no policies, nothing deleted yet */
	assert_int_equal(query_int(db, "SELECT count(*) FROM legal_holds"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM retention_policies"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM removals"), 0);
	char *newer = mem_printf("PRAGMA user_version = %d", CATALOG_SCHEMA_VERSION + 1);
	assert_int_equal(sqlite3_exec(db, newer, NULL, NULL, NULL), SQLITE_OK);
	mem_free(newer);
	sqlite3_close(db);
	assert_int_equal(catalog_open(path, key, &cat, &error), -1);
	assert_non_null(strstr(error, "newer than this program"));
	catalog_vfs_destroy(&vfs);
	mem_free(path);
}

/* Deleting (schema 12): a content goes only with its last folder
 * reference, and then its words leave the contentless index (FTS5's
 * 'delete' with the values it was indexed with): the vocabulary no longer
 * has them, the index is consistent, and what is left to compact is
 * recorded. */
static void test_deletion_forgets_words(void **state)
{
	unsigned char key[CATALOG_VFS_KEY_LEN];
	struct catalog_vfs *vfs = new_vfs(key);
	const char *error = NULL;
	char *path = mem_printf("%s/delete.db", tmpdir);
	struct catalog *cat;
	assert_int_equal(catalog_open(path, key, &cat, &error), 0);
	int64_t store_id, gone_id, kept_id, m1, m2, m3, content_id = 0;
	assert_int_equal(catalog_begin(cat, &error), 0);
	assert_int_equal(catalog_store_add(cat, "s", CATALOG_STORE_CURRENT, &store_id, &error), 0);
	struct catalog_content gone = {.loc = {.store_id = store_id, .offset = 0, .length = 10},
				       .size = 100,
				       .from = "Zed <zed@zanzi.test>",
				       .to = "a@b.test",
				       .cc = "",
				       .subject = "zanzibarsubject common",
				       .body_text = "zanzibarword and common words",
				       .attachment_names = "zanzibar.pdf",
				       .imap = "NIL",
				       .imap_len = 3};
	struct catalog_content kept = gone;
	memset(gone.hash, 1, sizeof(gone.hash));
	memset(kept.hash, 2, sizeof(kept.hash));
	kept.loc.offset = 100;
	kept.from = "kept@example.test";
	kept.subject = "other";
	kept.body_text = "common words";
	kept.attachment_names = "";
	struct catalog_loc ref = {.store_id = store_id, .offset = 200, .length = 10};
	assert_int_equal(catalog_content_add(cat, &gone, &gone_id, &error), 0);
	assert_int_equal(catalog_content_add(cat, &kept, &kept_id, &error), 0);
	assert_int_equal(catalog_message_add(cat, gone_id, "u", "A", 0, 0, &gone.loc, &m1, &error),
			 1);
	assert_int_equal(catalog_message_add(cat, gone_id, "v", "B", 0, 0, &ref, &m2, &error), 1);
	assert_int_equal(catalog_message_add(cat, kept_id, "u", "A", 0, 0, &kept.loc, &m3, &error),
			 1);
	assert_int_equal(catalog_commit(cat, &error), 0);

	assert_int_equal(catalog_begin(cat, &error), 0);
	/* the first reference: the content stays for the other folder */
	assert_int_equal(catalog_message_remove(cat, m1, 1000, &content_id, &error), 1);
	assert_int_equal(catalog_message_remove(cat, m1, 1000, &content_id, &error), 0);
	assert_int_equal(catalog_message_remove(cat, m2, 1000, &content_id, &error), 2);
	assert_int_equal(content_id, gone_id);
	assert_int_equal(catalog_content_remove(cat, content_id, &gone, 1000, &error), 1);
	assert_int_equal(catalog_commit(cat, &error), 0);
	assert_int_equal(catalog_check_index(cat, &error), 0);
	uint64_t records, bytes;
	assert_int_equal(catalog_removals_pending(cat, &records, &bytes, &error), 0);
	/* the REF (m2) and the MESSAGE record; m1's entry only says the
	 * reference went (its record was the content's) */
	assert_int_equal(records, 2);
	assert_int_equal(bytes, 20);
	catalog_destroy(&cat);

	sqlite3 *db = open_db(path, vfs, false);
	assert_non_null(db);
	assert_int_equal(query_int(db, "SELECT count(*) FROM fts_vocab WHERE term LIKE 'zanzi%'"),
			 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM fts_vocab WHERE term = 'zed'"), 0);
	assert_int_equal(query_int(db, "SELECT doc FROM fts_vocab WHERE term = 'common'"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM fts_docsize"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM removals"), 3);
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO fts (fts, rank) VALUES ('integrity-check', 0)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	catalog_vfs_destroy(&vfs);
	mem_free(path);
}

/* A transaction larger than the page cache spills pages into the WAL before
 * its commit, and writes a page it spilled before over its own frame: the
 * page alone, without a frame header. Such a page is not page 1 because
 * the frame header written last happens to be page 1's (the VFS must take
 * the page number from the frame's own header): this failed as a disk I/O
 * error in a VACUUM with a small cache. */
static void test_spilled_pages_written_again(void **state)
{
	unsigned char key[CATALOG_VFS_KEY_LEN];
	struct catalog_vfs *vfs = new_vfs(key);
	char *path = mem_printf("%s/spill.db", tmpdir);
	sqlite3 *db = open_db(path, vfs, true);
	assert_non_null(db);
	assert_int_equal(
		sqlite3_exec(db,
			     "PRAGMA journal_mode = WAL; PRAGMA cache_size = 10;"
			     " CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT);"
			     " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
			     " WHERE i < 20000) INSERT INTO t SELECT i, printf('a%039d', i) FROM n;"
			     /* rewritten in place: spilled, page 1 untouched */
			     "BEGIN; UPDATE t SET v = printf('b%039d', k);"
			     /* the first pages change again and so does page 1: the
			      * commit appends page 1 with its frame header, then
			      * overwrites the first pages' frames */
			     " UPDATE t SET v = printf('c%039d', k) WHERE k <= 100;"
			     " CREATE TABLE u (x);"
			     "COMMIT;",
			     NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t WHERE v LIKE 'b%'"), 19900);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t WHERE v LIKE 'c%'"), 100);
	assert_int_equal(sqlite3_exec(db, "VACUUM", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 20000);
	sqlite3_close(db);
	catalog_vfs_destroy(&vfs);
	mem_free(path);
}

/* What VACUUM's transient copy looked like, seen from a progress handler
 * while the VACUUM ran. */
struct temp_seen {
	const char *dir;
	bool found;     /* an open, unlinked .catalog-temp-* file in dir */
	bool plain;     /* "secret" in it */
	off_t max_size; /* the largest it was seen */
};

static bool memmem_secret(const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i + 6 <= len; i++) {
		if (memcmp(buf + i, "secret", 6) == 0)
			return true;
	}
	return false;
}

/* Look through this process's open files for the transient database: it
 * is unlinked, so only /proc/self/fd still reaches it. */
static int look_at_temp_files(void *ctx)
{
	struct temp_seen *seen = ctx;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char want[4096];
	snprintf(want, sizeof(want), "%s/.catalog-temp-", seen->dir);
	while (d != NULL && (e = readdir(d)) != NULL) {
		char link[300], target[4096];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, want, strlen(want)) != 0 || strstr(target, "(deleted)") == NULL)
			continue;
		seen->found = true;
		FILE *f = fopen(link, "rb");
		unsigned char buf[65536];
		size_t got;
		off_t size = 0;
		while (f != NULL && (got = fread(buf, 1, sizeof(buf), f)) > 0) {
			seen->plain = seen->plain || memmem_secret(buf, got);
			size += (off_t)got;
		}
		if (f != NULL)
			fclose(f);
		if (size > seen->max_size)
			seen->max_size = size;
	}
	if (d != NULL)
		closedir(d);
	return 0;
}

static sqlite3_int64 vacuum_memory_peak(sqlite3 *db, const char *temp_store)
{
	sqlite3_int64 cur, peak;
	char *sql = mem_printf("PRAGMA temp_store = %s", temp_store);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	mem_free(sql);
	assert_int_equal(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &peak, 1), SQLITE_OK);
	int rc = sqlite3_exec(db, "VACUUM", NULL, NULL, NULL);
	assert_int_equal(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &peak, 0), SQLITE_OK);
	assert_int_equal(rc, SQLITE_OK);
	return peak;
}

/* VACUUM copies the database into a transient one first. In memory
 * (temp_store = MEMORY) that copy is as large as the database, so a
 * compaction's memory grew with the instance; as a file it costs only its
 * cache. The file must then hold no plain text: it is encrypted like the
 * catalog, in the catalog's directory, and unlinked at once. Any other
 * temporary file (SQLite's own, plain, in /var/tmp) is refused. */
static void test_vacuum_copies_into_an_encrypted_file(void **state)
{
	unsigned char key[CATALOG_VFS_KEY_LEN];
	struct catalog_vfs *vfs = new_vfs(key);
	char *path = mem_printf("%s/vacuum.db", tmpdir);
	sqlite3 *db = open_db(path, vfs, true);
	assert_non_null(db);
	/* 32 MB of rows; a 1 MB cache */
	assert_int_equal(
		sqlite3_exec(db,
			     "PRAGMA journal_mode = WAL; PRAGMA cache_size = -1024;"
			     " CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT);"
			     " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
			     " WHERE i < 32000) INSERT INTO t SELECT i, printf('secret%01000d', i) "
			     "FROM n;"
			     " DELETE FROM t WHERE k % 3 = 0;",
			     NULL, NULL, NULL),
		SQLITE_OK);

	/* no directory for it: refused, not written elsewhere */
	assert_int_equal(sqlite3_exec(db, "PRAGMA temp_store = FILE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "VACUUM", NULL, NULL, NULL), SQLITE_OK);

	/* in memory: the copy's size (the premise of the change) */
	sqlite3_int64 in_memory = vacuum_memory_peak(db, "MEMORY");
	assert_true(in_memory > 16 * 1024 * 1024);

	catalog_vfs_set_temp_dir(vfs, tmpdir);
	struct temp_seen seen = {.dir = tmpdir};
	sqlite3_progress_handler(db, 20000, look_at_temp_files, &seen);
	sqlite3_int64 as_file = vacuum_memory_peak(db, "FILE");
	sqlite3_progress_handler(db, 0, NULL, NULL);
	/* the two caches (1 MB and the transient copy's default 2 MB) */
	assert_true(as_file < 8 * 1024 * 1024);
	assert_true(as_file < in_memory / 3);
	assert_true(seen.found);
	assert_true(seen.max_size > 1024 * 1024);
	assert_false(seen.plain);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 21334);
	assert_int_equal(count_rows(db), 21334);

	/* a sort larger than its memory would spill to a plain file: refused */
	assert_int_equal(sqlite3_exec(db, "PRAGMA cache_size = 10", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(
		sqlite3_prepare_v2(db, "SELECT v FROM t ORDER BY substr(v, 7) DESC", -1, &st, NULL),
		SQLITE_OK);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
	}
	sqlite3_finalize(st);
	assert_int_not_equal(rc, SQLITE_DONE);
	/* nothing left behind in the directory */
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		assert_null(strstr(e->d_name, ".catalog-temp-"));
	closedir(d);
	sqlite3_close(db);
	catalog_vfs_destroy(&vfs);
	mem_free(path);
}

/* The database file and its WAL as they are now, under another name: what
 * a crash would leave. */
static char *snapshot(const char *path, const char *name)
{
	const char *error;
	char *copy = mem_printf("%s/%s", tmpdir, name);
	char *wal = mem_printf("%s-wal", path), *copy_wal = mem_printf("%s-wal", copy);
	assert_int_equal(file_copy(path, copy, 0600, &error), 0);
	assert_int_equal(file_copy(wal, copy_wal, 0600, &error), 0);
	mem_free(wal);
	mem_free(copy_wal);
	return copy;
}

static void insert_secrets(sqlite3 *db, int n)
{
	char *sql = mem_printf("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
			       " WHERE i < %d) INSERT INTO t SELECT 'secret words ' || i FROM n",
			       n);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	mem_free(sql);
}

/* Catalogs made with 4 KiB pages (before 16 KiB) stay readable and
 * writable, their WAL too: the VFS takes a database's page size from its
 * first page; a new one gets 16 KiB. One VFS serves one page size at a
 * time, since the WAL and VACUUM's transient copy follow the database. */
static void test_old_page_size(void **state)
{
	unsigned char key[CATALOG_VFS_KEY_LEN];
	crypto_key_generate(key);
	struct catalog_vfs *old = vfs_with_pages(key, CATALOG_VFS_PAGE_SIZE_OLD);
	char *path = mem_printf("%s/old.db", tmpdir);
	sqlite3 *db = open_db(path, old, true);
	assert_non_null(db);
	assert_int_equal(query_int(db, "PRAGMA page_size"), 4096);
	assert_int_equal(sqlite3_exec(db,
				      "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;"
				      " CREATE TABLE t (v TEXT)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	insert_secrets(db, 1000);
	/* the file holds page 1 alone (switching to WAL wrote it), the WAL
	 * the rest */
	char *wal_only = snapshot(path, "old-wal-only.db");
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
			 SQLITE_OK);
	insert_secrets(db, 500);
	char *both = snapshot(path, "old-both.db");
	sqlite3_close(db);
	catalog_vfs_destroy(&old);

	struct catalog_vfs *vfs = vfs_with_pages(key, CATALOG_VFS_PAGE_SIZE);
	struct {
		const char *path;
		int rows;
	} cases[] = {{wal_only, 1000}, {both, 1500}, {path, 1500}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		db = open_db(cases[i].path, vfs, false);
		assert_int_equal(count_rows(db), cases[i].rows);
		assert_int_equal(catalog_vfs_page_size(vfs), 4096);
		assert_int_equal(query_int(db, "PRAGMA page_size"), 4096);
		sqlite3_close(db);
	}

	/* written, vacuumed (the transient copy in 4 KiB units too), read back */
	catalog_vfs_set_temp_dir(vfs, tmpdir);
	db = open_db(path, vfs, false);
	insert_secrets(db, 200);
	assert_int_equal(sqlite3_exec(db, "PRAGMA temp_store = FILE; VACUUM;", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);

	/* a new database gets 16 KiB pages; while it is open, one of the
	 * other page size is refused */
	char *new_path = mem_printf("%s/new.db", tmpdir);
	db = open_db(new_path, vfs, true);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (v TEXT)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(query_int(db, "PRAGMA page_size"), CATALOG_VFS_PAGE_SIZE);
	sqlite3 *other;
	assert_int_not_equal(
		sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, catalog_vfs_name(vfs)),
		SQLITE_OK);
	sqlite3_close(other);
	sqlite3_close(db);

	db = open_db(path, vfs, false);
	assert_int_equal(count_rows(db), 1700);
	sqlite3_close(db);
	catalog_vfs_destroy(&vfs);
	mem_free(new_path);
	mem_free(both);
	mem_free(wal_only);
	mem_free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encrypted_pages),
		cmocka_unit_test(test_schema_versions),
		cmocka_unit_test(test_deletion_forgets_words),
		cmocka_unit_test(test_spilled_pages_written_again),
		cmocka_unit_test(test_vacuum_copies_into_an_encrypted_file),
		cmocka_unit_test(test_old_page_size),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
