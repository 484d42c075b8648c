#include "catalog.h"
#include "array.h"
#include "catalog-vfs.h"
#include "file.h"
#include "mem.h"
#include "search-query.h"
#include "str.h"
#include "tstr.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum catalog_stmt {
	ST_STORE_ADD,
	ST_STORE_STATE,
	ST_STORE_TAIL,
	ST_DICT_ADD,
	ST_CONTENT_FIND,
	ST_CONTENT_ADD,
	ST_FTS_ADD,
	ST_CONTENT_PART,
	ST_PART_FIND,
	ST_PART_ADD,
	ST_FOLDER_FIND,
	ST_FOLDER_ADD,
	ST_MESSAGE_ADD,
	ST_MESSAGE_CONTENT,
	ST_MESSAGE_FIND,
	ST_MESSAGE_META,
	ST_USER_ADD,
	ST_USER_UPDATE,
	ST_USER_DELETE,
	ST_USER_EMAIL_DELETE,
	ST_USER_PRIV_DELETE,
	ST_USER_RIGHT_DELETE,
	ST_USER_APP_DELETE,
	ST_USER_EMAIL_ADD,
	ST_USER_PRIV_ADD,
	ST_USER_RIGHT_ADD,
	ST_USER_APP_ADD,
	ST_MESSAGE_REF,
	ST_MESSAGE_REMOVE_INFO,
	ST_MESSAGE_DELETE,
	ST_REMOVAL_ADD,
	ST_CONTENT_RECORD,
	ST_FTS_DELETE,
	ST_PARTS_ORPHANED,
	ST_PART_DELETE,
	ST_CONTENT_PARTS_DELETE,
	ST_CONTENT_DELETE,
	ST_COUNT
};

struct catalog {
	sqlite3 *db;
	struct catalog_vfs *vfs;
	/* contents ids are never reused: the contentless index cannot forget a
	 * detached store's rows, so a reused id would inherit their words */
	int64_t next_content_id;
	char *path;
	const char *scope_sql; /* set by catalog_search_scoped() for one search */
	sqlite3_stmt *stmts[ST_COUNT];
	struct catalog_cost cost;
	bool cache_bounded; /* catalog_read_begin_scan() lowered the cache */
};

/* SQLite's page cache: large, since searches come back to the same index
 * pages; but a read that visits each row once (a FETCH of a whole folder)
 * gains nothing from keeping what it read, and would grow the process by
 * the whole catalog, so it runs with a small cache. */
#define CATALOG_CACHE_PRAGMA "PRAGMA cache_size = -65536"
/* pages: the WAL is checkpointed every 32 MB */
#define CATALOG_WAL_AUTOCHECKPOINT "8192"
#define CATALOG_SCAN_CACHE_PRAGMA "PRAGMA cache_size = -2048"
/* The scrub's cache. SQLite sizes more than the cache from it: VACUUM's
 * transient copy gets a cache as large, and its index builds sort in as
 * much memory; with 64 MiB a compaction of 1,000,000 messages peaked at
 * 443 MB, with 16 MiB at 138 MB, for 4 % more time (docs/benchmarks.md). */
#define CATALOG_SCRUB_CACHE_PRAGMA "PRAGMA cache_size = -16384"

/* Schema migrations: migrations[i] upgrades from version i to i + 1. */
static const char *const catalog_migrations[] = {
	"CREATE TABLE stores (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	"  state INTEGER NOT NULL, tail_segment INTEGER NOT NULL DEFAULT 0,"
	"  tail_length INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE dicts (id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
	"CREATE TABLE folders (id INTEGER PRIMARY KEY, user TEXT NOT NULL, path TEXT NOT NULL,"
	"  UNIQUE (user, path));"
	"CREATE TABLE contents (id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
	"  store_id INTEGER NOT NULL, segment INTEGER NOT NULL, offset INTEGER NOT NULL,"
	"  length INTEGER NOT NULL, size INTEGER NOT NULL, date INTEGER NOT NULL,"
	"  from_ TEXT NOT NULL, subject TEXT NOT NULL, imap BLOB NOT NULL,"
	"  has_attachment INTEGER NOT NULL, defects INTEGER NOT NULL);"
	"CREATE TABLE parts (id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
	"  store_id INTEGER NOT NULL, segment INTEGER NOT NULL, offset INTEGER NOT NULL,"
	"  length INTEGER NOT NULL, size INTEGER NOT NULL);"
	"CREATE TABLE content_parts (content_id INTEGER NOT NULL, part_id INTEGER NOT NULL,"
	"  PRIMARY KEY (content_id, part_id)) WITHOUT ROWID;"
	"CREATE INDEX content_parts_part ON content_parts (part_id);"
	"CREATE TABLE messages (id INTEGER PRIMARY KEY, content_id INTEGER NOT NULL,"
	"  folder_id INTEGER NOT NULL, date INTEGER NOT NULL, internal_date INTEGER NOT NULL,"
	"  store_id INTEGER NOT NULL, segment INTEGER NOT NULL, offset INTEGER NOT NULL,"
	"  length INTEGER NOT NULL, UNIQUE (content_id, folder_id));"
	"CREATE INDEX messages_date ON messages (date, id);"
	/* f_body first: FTS5 marks every position list of a column other than
	 * the first with its number, and the body holds most words (2 bytes
	 * less per message and word: the index went from 0.261 to 0.211 of
	 * corpus A's raw size). Columns are always named, so catalogs made
	 * with the earlier order (body fifth) work the same. */
	"CREATE VIRTUAL TABLE fts USING fts5 (f_body, f_from, f_to, f_cc, f_subject,"
	"  f_attachment, content='', tokenize='unicode61 remove_diacritics 2');"
	"CREATE VIRTUAL TABLE fts_vocab USING fts5vocab (fts, row);",
	/* 2: text searches join index matches to messages by content and sort
	 * by date; this index answers both without touching the table */
	"CREATE INDEX messages_content_date ON messages (content_id, date);",
	/* 3: a folder's messages in id order (folder listings, IMAP UIDs) */
	"CREATE INDEX messages_folder ON messages (folder_id, id);",
	/* 4: facts about the catalog itself. uid_validity (IMAP UIDVALIDITY)
	 * is set when a catalog is made, so a rebuilt catalog, whose message
	 * ids may differ, tells IMAP clients to forget what they cached. */
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO meta VALUES ('uid_validity', CAST(strftime('%s', 'now') AS INTEGER));",
	/* 5: dictionary generations. An import trains a new dictionary once
	 * enough mail came in under the latest one (mail drifts: a dictionary
	 * from ten years ago compresses today's mail a third worse); these
	 * columns say where each began, so the next import knows how much. */
	"ALTER TABLE dicts ADD COLUMN first_content INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE dicts ADD COLUMN raw_before INTEGER NOT NULL DEFAULT 0;",
	/* 6: the content ids of a date range from the date index alone (the
	 * bounds of a date-restricted text search), in the same order */
	"DROP INDEX messages_date;"
	"CREATE INDEX messages_date ON messages (date, id, content_id);",
	/* 7: FTS5 merges 8 segments of a level instead of 4: fewer levels, so
	 * a big archive's import rewrites its index fewer times */
	"INSERT INTO fts (fts, rank) VALUES ('automerge', 8);",
	/* 8: contents.defects holds the kinds of parse defect as bits (see
	 * catalog_defect_counts()) instead of a count; a count from before
	 * says only that there were defects: bit 0, "unnamed" (a rebuild
	 * names them) */
	"UPDATE contents SET defects = 1 WHERE defects <> 0;",
	/* 9: every folder keeps its message count and raw bytes, kept right by
	 * triggers whoever adds or removes messages, so listing folders (IMAP
	 * LIST, Web Access, every client-API folder list) reads the folders
	 * table, not every message of the archive. Existing archives get
	 * their counts here, once. */
	"ALTER TABLE folders ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE folders ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;"
	"UPDATE folders SET messages = (SELECT count(*) FROM messages m WHERE m.folder_id ="
	"  folders.id), bytes = (SELECT coalesce(sum(c.size), 0) FROM messages m JOIN contents c"
	"  ON c.id = m.content_id WHERE m.folder_id = folders.id);"
	"CREATE TRIGGER folder_count_add AFTER INSERT ON messages BEGIN"
	"  UPDATE folders SET messages = messages + 1, bytes = bytes + coalesce((SELECT size"
	"  FROM contents WHERE id = NEW.content_id), 0) WHERE id = NEW.folder_id; END;"
	"CREATE TRIGGER folder_count_remove AFTER DELETE ON messages BEGIN"
	"  UPDATE folders SET messages = messages - 1, bytes = bytes - coalesce((SELECT size"
	"  FROM contents WHERE id = OLD.content_id), 0) WHERE id = OLD.folder_id; END;",
	/* 10: the Date header's zone, for searches by the day it was written
	 * on (IMAP SENTON); contents from before read as UTC until a rebuild */
	"ALTER TABLE contents ADD COLUMN zone INTEGER NOT NULL DEFAULT 0;",
	/* 11: the instance's users, one row each, and what belongs to a user
	 * in tables keyed by user_id first (so one user's rows are found and
	 * replaced by index, without reading the others). Names are unique
	 * regardless of (ASCII) case, as user names are. The rows were one
	 * sealed JSON file (users.sealed) before: the instance moves them in
	 * on its first start (instance-users.c); this file is encrypted page
	 * by page like the rest of the catalog. */
	"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE UNIQUE,"
	"  archive_name TEXT NOT NULL, full_name TEXT NOT NULL, password_hash TEXT,"
	"  mfa_state TEXT, mfa_secret TEXT, mfa_last_step INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE user_emails (user_id INTEGER NOT NULL, position INTEGER NOT NULL,"
	"  address TEXT NOT NULL, PRIMARY KEY (user_id, position)) WITHOUT ROWID;"
	/* kind 0: privileges (admin, login, ...), 1: login privileges */
	"CREATE TABLE user_privileges (user_id INTEGER NOT NULL, kind INTEGER NOT NULL,"
	"  position INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (user_id, kind, position))"
	"  WITHOUT ROWID;"
	/* rights: the folder's rights as a comma-separated list (read,write) */
	"CREATE TABLE user_folder_rights (user_id INTEGER NOT NULL, position INTEGER NOT NULL,"
	"  folder TEXT NOT NULL, rights TEXT NOT NULL, PRIMARY KEY (user_id, position))"
	"  WITHOUT ROWID;"
	"CREATE TABLE user_app_passwords (user_id INTEGER NOT NULL, position INTEGER NOT NULL,"
	"  name TEXT NOT NULL, hash TEXT NOT NULL, created INTEGER NOT NULL,"
	"  PRIMARY KEY (user_id, position)) WITHOUT ROWID;",
	/* 12: compliance. Legal holds (user '' holds the whole instance,
	 * otherwise an archive name), retention policies (kind 0: minimum,
	 * 1: maximum keep time; users and folders newline-separated, '' for
	 * all), and the records deleted messages left in the stores, which
	 * stay there until a compaction rewrites their segments (kind 1: a
	 * MESSAGE record, 2: a PART, 3: a REF; 4: the MESSAGE record of a
	 * deleted reference whose content other folders still use). */
	"CREATE TABLE legal_holds (user TEXT NOT NULL PRIMARY KEY, since INTEGER NOT NULL,"
	"  reason TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE retention_policies (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
	"  kind INTEGER NOT NULL, days INTEGER NOT NULL, users TEXT NOT NULL,"
	"  folders TEXT NOT NULL, query TEXT NOT NULL);"
	"CREATE TABLE removals (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL,"
	"  hash BLOB NOT NULL, store_id INTEGER NOT NULL, segment INTEGER NOT NULL,"
	"  offset INTEGER NOT NULL, length INTEGER NOT NULL, deleted_at INTEGER NOT NULL);",
};

static const char *const catalog_state_names[] = {"current", "normal", "write-protected",
						  "disabled"};

const char *catalog_store_state_name(enum catalog_store_state state)
{
	return (unsigned)state < 4 ? catalog_state_names[state] : "unknown";
}

int catalog_store_state_parse(const char *name, enum catalog_store_state *state_r)
{
	for (unsigned i = 0; i < 4; i++) {
		if (strcmp(name, catalog_state_names[i]) == 0) {
			*state_r = (enum catalog_store_state)i;
			return 0;
		}
	}
	return -1;
}

/* Every statement prepared for one call ends here: what it read is added
 * to the catalog's cost (catalog_cost()). */
static void catalog_finalize(struct catalog *cat, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	cat->cost.fullscan_steps +=
		(uint64_t)sqlite3_stmt_status(st, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0);
	cat->cost.vm_steps += (uint64_t)sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0);
	sqlite3_finalize(st);
}

void catalog_cost(struct catalog *cat, struct catalog_cost *cost_r)
{
	*cost_r = cat->cost;
}

/* SQLite's message for the last error, with the system's reason where the
 * file system failed: "disk I/O error" alone does not tell a full disk
 * from a broken one. (tstr) */
static const char *catalog_errmsg(struct catalog *cat, const char *message)
{
	int code = sqlite3_extended_errcode(cat->db) & 0xff;
	int sys = sqlite3_system_errno(cat->db);
	if (sys == 0 || (code != SQLITE_IOERR && code != SQLITE_FULL && code != SQLITE_CANTOPEN))
		return message;
	return tstr_printf("%s (%s)", message, strerror(sys));
}

static int catalog_fail(struct catalog *cat, const char *what, const char **error_r)
{
	*error_r = tstr_printf("%s: %s: %s", cat->path, what,
			       catalog_errmsg(cat, sqlite3_errmsg(cat->db)));
	return -1;
}

static int catalog_exec(struct catalog *cat, const char *sql, const char **error_r)
{
	char *err = NULL;
	if (sqlite3_exec(cat->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		*error_r = tstr_printf("%s: %s", cat->path,
				       catalog_errmsg(cat, err != NULL ? err : "exec failed"));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *catalog_stmt(struct catalog *cat, enum catalog_stmt idx, const char *sql,
				  const char **error_r)
{
	if (cat->stmts[idx] == NULL &&
	    sqlite3_prepare_v3(cat->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &cat->stmts[idx],
			       NULL) != SQLITE_OK) {
		catalog_fail(cat, "prepare", error_r);
		return NULL;
	}
	sqlite3_reset(cat->stmts[idx]);
	sqlite3_clear_bindings(cat->stmts[idx]);
	return cat->stmts[idx];
}

/* The first row of a query whose columns are all integers (none bound):
 * values_r[0..count) get them, or stay as they are if there is no row.
 * Returns 0, or -1 with "<what>: <SQLite's error>". */
static int catalog_select_ints(struct catalog *cat, const char *sql, const char *what,
			       int64_t *values_r, int count, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, what, error_r);
	int rc = sqlite3_step(st);
	for (int i = 0; rc == SQLITE_ROW && i < count; i++)
		values_r[i] = sqlite3_column_int64(st, i);
	catalog_finalize(cat, st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : catalog_fail(cat, what, error_r);
}

_Static_assert(sizeof(catalog_migrations) / sizeof(catalog_migrations[0]) == CATALOG_SCHEMA_VERSION,
	       "CATALOG_SCHEMA_VERSION is the number of migrations");

static int catalog_user_version(struct catalog *cat, int64_t *version_r, const char **error_r)
{
	*version_r = 0;
	if (catalog_select_ints(cat, "PRAGMA user_version", "user_version", version_r, 1, error_r) <
	    0)
		return -1;
	if (*version_r > CATALOG_SCHEMA_VERSION) {
		*error_r = tstr_printf("%s: schema version %lld is newer than this program (%d)",
				       cat->path, (long long)*version_r, CATALOG_SCHEMA_VERSION);
		return -1;
	}
	return 0;
}

/* One migration at a time, each in its own transaction that reads the
 * version again once it holds the write lock: another process opening the
 * same catalog may have migrated it meanwhile. An up-to-date catalog takes
 * no lock at all (readers open while an import writes). */
static int catalog_migrate(struct catalog *cat, const char **error_r)
{
	int64_t version;
	if (catalog_user_version(cat, &version, error_r) < 0)
		return -1;
	while (version < CATALOG_SCHEMA_VERSION) {
		if (catalog_exec(cat, "BEGIN IMMEDIATE", error_r) < 0)
			return -1;
		if (catalog_user_version(cat, &version, error_r) < 0) {
			catalog_rollback(cat);
			return -1;
		}
		if (version == CATALOG_SCHEMA_VERSION) {
			catalog_rollback(cat); /* done by someone else; nothing written */
			break;
		}
		char *bump = mem_printf("PRAGMA user_version = %lld", (long long)version + 1);
		int ret = catalog_exec(cat, catalog_migrations[version], error_r) < 0 ||
					  catalog_exec(cat, bump, error_r) < 0 ||
					  catalog_exec(cat, "COMMIT", error_r) < 0
				  ? -1
				  : 0;
		mem_free(bump);
		if (ret < 0) {
			catalog_rollback(cat);
			return -1;
		}
		version++;
	}
	return 0;
}

/* A new database gets the page layout the encrypting VFS needs before its
 * first write: its page size (16 KiB) with room for a nonce and a tag in
 * each page. */
static int catalog_set_layout(struct catalog *cat, const char **error_r)
{
	int reserve = CATALOG_VFS_RESERVE;
	if (catalog_exec(cat, tstr_printf("PRAGMA page_size = %d", catalog_vfs_page_size(cat->vfs)),
			 error_r) < 0)
		return -1;
	if (sqlite3_file_control(cat->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve) !=
	    SQLITE_OK)
		return catalog_fail(cat, "reserving page bytes", error_r);
	return 0;
}

int catalog_open(const char *path, const unsigned char key[CATALOG_KEY_LEN],
		 struct catalog **catalog_r, const char **error_r)
{
	struct catalog *cat = mem_new(struct catalog);
	cat->path = mem_strdup(path);
	if (catalog_vfs_create(key, CATALOG_VFS_PAGE_SIZE, &cat->vfs, error_r) < 0) {
		catalog_destroy(&cat);
		return -1;
	}
	char *dir = file_dirname(path);
	catalog_vfs_set_temp_dir(cat->vfs, dir);
	mem_free(dir);
	FILE *probe = fopen(path, "rb");
	bool is_new = probe == NULL || fgetc(probe) == EOF;
	if (probe != NULL)
		fclose(probe);
	if (sqlite3_open_v2(path, &cat->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    catalog_vfs_name(cat->vfs)) != SQLITE_OK) {
		*error_r =
			tstr_printf("%s: cannot open: %s", path,
				    cat->db != NULL ? catalog_errmsg(cat, sqlite3_errmsg(cat->db))
						    : "no memory");
		catalog_destroy(&cat);
		return -1;
	}
	sqlite3_busy_timeout(cat->db, 10000);
	if (is_new && catalog_set_layout(cat, error_r) < 0) {
		catalog_destroy(&cat);
		return -1;
	}
	if (catalog_exec(cat,
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			 "PRAGMA temp_store = MEMORY; " CATALOG_CACHE_PRAGMA ";"
			 "PRAGMA wal_autocheckpoint = " CATALOG_WAL_AUTOCHECKPOINT ";"
			 "PRAGMA foreign_keys = OFF",
			 error_r) < 0 ||
	    catalog_migrate(cat, error_r) < 0) {
		catalog_destroy(&cat);
		return -1;
	}
	*catalog_r = cat;
	return 0;
}

void catalog_destroy(struct catalog **_cat)
{
	struct catalog *cat = *_cat;
	if (cat == NULL)
		return;
	*_cat = NULL;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(cat->stmts[i]);
	sqlite3_close(cat->db);
	catalog_vfs_destroy(&cat->vfs);
	mem_free(cat->path);
	mem_free(cat);
}

int catalog_begin(struct catalog *cat, const char **error_r)
{
	return catalog_exec(cat, "BEGIN IMMEDIATE", error_r);
}

int catalog_commit(struct catalog *cat, const char **error_r)
{
	return catalog_exec(cat, "COMMIT", error_r);
}

void catalog_read_begin(struct catalog *cat)
{
	/* only outside a write transaction; a failure just means each
	 * statement takes its own snapshot, as without this */
	if (sqlite3_get_autocommit(cat->db))
		(void)sqlite3_exec(cat->db, "BEGIN DEFERRED", NULL, NULL, NULL);
}

void catalog_read_begin_scan(struct catalog *cat)
{
	/* lowering the limit also frees the pages above it; a failure only
	 * leaves the usual cache */
	if (sqlite3_exec(cat->db, CATALOG_SCAN_CACHE_PRAGMA, NULL, NULL, NULL) == SQLITE_OK)
		cat->cache_bounded = true;
	catalog_read_begin(cat);
}

void catalog_read_end(struct catalog *cat)
{
	if (!sqlite3_get_autocommit(cat->db))
		(void)sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL);
	if (cat->cache_bounded) {
		(void)sqlite3_exec(cat->db, CATALOG_CACHE_PRAGMA, NULL, NULL, NULL);
		cat->cache_bounded = false;
	}
}

void catalog_rollback(struct catalog *cat)
{
	if (!sqlite3_get_autocommit(cat->db))
		(void)sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
	/* ids handed out in the rolled back transaction are free again */
	cat->next_content_id = 0;
}

static int catalog_step_done(struct catalog *cat, sqlite3_stmt *st, const char *what,
			     const char **error_r)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return catalog_fail(cat, what, error_r);
	return 0;
}

int catalog_stores(struct catalog *cat, struct catalog_store **stores_r, size_t *count_r,
		   const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db,
			       "SELECT id, name, state, tail_segment, tail_length FROM stores "
			       "ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "stores", error_r);
	ARRAY(struct catalog_store) stores = ARRAY_INIT;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct catalog_store *s = array_push(&stores);
		s->id = sqlite3_column_int64(st, 0);
		s->name = mem_strdup((const char *)sqlite3_column_text(st, 1));
		s->state = (enum catalog_store_state)sqlite3_column_int(st, 2);
		s->tail_segment = (uint32_t)sqlite3_column_int64(st, 3);
		s->tail_length = (uint64_t)sqlite3_column_int64(st, 4);
	}
	catalog_finalize(cat, st);
	if (rc != SQLITE_DONE) {
		catalog_stores_free(stores.items, stores.count);
		return catalog_fail(cat, "stores", error_r);
	}
	*stores_r = stores.items;
	*count_r = stores.count;
	return 0;
}

void catalog_stores_free(struct catalog_store *stores, size_t count)
{
	for (size_t i = 0; i < count; i++)
		mem_free(stores[i].name);
	mem_free(stores);
}

int catalog_store_add(struct catalog *cat, const char *name, enum catalog_store_state state,
		      int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *st = catalog_stmt(cat, ST_STORE_ADD,
					"INSERT INTO stores (name, state) VALUES (?, ?)", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)state);
	if (catalog_step_done(cat, st, "adding a store", error_r) < 0)
		return -1;
	*id_r = sqlite3_last_insert_rowid(cat->db);
	return 0;
}

int catalog_store_set_state(struct catalog *cat, int64_t id, enum catalog_store_state state,
			    const char **error_r)
{
	sqlite3_stmt *st = catalog_stmt(cat, ST_STORE_STATE,
					"UPDATE stores SET state = ? WHERE id = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, (int)state);
	sqlite3_bind_int64(st, 2, id);
	return catalog_step_done(cat, st, "store state", error_r);
}

int catalog_store_set_tail(struct catalog *cat, int64_t id, uint32_t segment, uint64_t length,
			   const char **error_r)
{
	sqlite3_stmt *st = catalog_stmt(
		cat, ST_STORE_TAIL,
		"UPDATE stores SET tail_segment = ?, tail_length = ? WHERE id = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, segment);
	sqlite3_bind_int64(st, 2, (int64_t)length);
	sqlite3_bind_int64(st, 3, id);
	return catalog_step_done(cat, st, "store tail", error_r);
}

static int catalog_exec_id(struct catalog *cat, const char *sql, int64_t id, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "prepare", error_r);
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	catalog_finalize(cat, st);
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, sql, error_r);
}

int catalog_store_remove(struct catalog *cat, int64_t id, const char **error_r)
{
	/* The index rows of a contentless FTS table cannot be deleted without
	 * their text; search joins through contents, so orphan index rows
	 * never show. A rebuild drops them. */
	static const char *const sqls[] = {
		"DELETE FROM messages WHERE store_id = ?1 OR content_id IN "
		"(SELECT id FROM contents WHERE store_id = ?1)",
		"DELETE FROM content_parts WHERE content_id IN "
		"(SELECT id FROM contents WHERE store_id = ?1)",
		"DELETE FROM contents WHERE store_id = ?1",
		"DELETE FROM parts WHERE store_id = ?1",
		"DELETE FROM stores WHERE id = ?1",
	};
	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		if (catalog_exec_id(cat, sqls[i], id, error_r) < 0)
			return -1;
	}
	return 0;
}

static int catalog_next_content_id(struct catalog *cat, const char **error_r);

int catalog_dict_add(struct catalog *cat, uint32_t id, const void *data, size_t len,
		     uint64_t raw_before, const char **error_r)
{
	if (cat->next_content_id == 0 && catalog_next_content_id(cat, error_r) < 0)
		return -1;
	sqlite3_stmt *st = catalog_stmt(cat, ST_DICT_ADD,
					"INSERT OR REPLACE INTO dicts (id, data, first_content,"
					" raw_before) VALUES (?, ?, ?, ?)",
					error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob(st, 2, data, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, cat->next_content_id);
	sqlite3_bind_int64(st, 4, (int64_t)raw_before);
	return catalog_step_done(cat, st, "adding a dictionary", error_r);
}

int catalog_dict_max_id(struct catalog *cat, uint32_t *id_r, const char **error_r)
{
	int64_t id = 0;
	int ret = catalog_select_ints(cat, "SELECT ifnull(max(id), 0) FROM dicts", "dicts", &id, 1,
				      error_r);
	*id_r = (uint32_t)id;
	return ret;
}

int catalog_dict_usage(struct catalog *cat, uint64_t *raw_before_r, uint64_t *raw_since_r,
		       const char **error_r)
{
	/* a range of content ids: cheap however big the catalog is */
	int64_t v[2] = {0, 0};
	int ret = catalog_select_ints(cat,
				      "SELECT d.raw_before, (SELECT ifnull(sum(size), 0) FROM"
				      " contents WHERE id >= d.first_content) FROM (SELECT"
				      " raw_before, first_content FROM dicts ORDER BY id DESC"
				      " LIMIT 1) AS d",
				      "dictionary usage", v, 2, error_r);
	*raw_before_r = (uint64_t)v[0];
	*raw_since_r = (uint64_t)v[1];
	return ret;
}

int catalog_dicts(struct catalog *cat, uint32_t min_id, catalog_dict_cb *cb, void *context,
		  const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "SELECT id, data FROM dicts WHERE id >= ? ORDER BY id", -1,
			       &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "dicts", error_r);
	sqlite3_bind_int64(st, 1, min_id);
	int rc, ret = 0;
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = cb((uint32_t)sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
			 (size_t)sqlite3_column_bytes(st, 1), context);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = catalog_fail(cat, "dicts", error_r);
	else if (ret < 0)
		*error_r = "dictionary callback failed";
	catalog_finalize(cat, st);
	return ret;
}

int catalog_content_find(struct catalog *cat, const unsigned char hash[CATALOG_HASH_LEN],
			 int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *st = catalog_stmt(cat, ST_CONTENT_FIND,
					"SELECT id FROM contents WHERE hash = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, hash, CATALOG_HASH_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "finding a content", error_r);
}

static void bind_loc(sqlite3_stmt *st, int first, const struct catalog_loc *loc)
{
	sqlite3_bind_int64(st, first, loc->store_id);
	sqlite3_bind_int64(st, first + 1, loc->segment);
	sqlite3_bind_int64(st, first + 2, (int64_t)loc->offset);
	sqlite3_bind_int64(st, first + 3, loc->length);
}

static void column_loc(sqlite3_stmt *st, int first, struct catalog_loc *loc)
{
	loc->store_id = sqlite3_column_int64(st, first);
	loc->segment = (uint32_t)sqlite3_column_int64(st, first + 1);
	loc->offset = (uint64_t)sqlite3_column_int64(st, first + 2);
	loc->length = (uint32_t)sqlite3_column_int64(st, first + 3);
}

static int catalog_next_content_id(struct catalog *cat, const char **error_r)
{
	return catalog_select_ints(cat,
				   "SELECT max(ifnull((SELECT max(id) FROM contents), 0),"
				   " ifnull((SELECT max(id) FROM fts_docsize), 0)) + 1",
				   "content ids", &cat->next_content_id, 1, error_r);
}

/* One index row's values, bound from the first parameter on: the same for
 * adding a content and for FTS5's 'delete' of it, which must be given
 * exactly the values the row was indexed with. */
static int catalog_fts_write(struct catalog *cat, sqlite3_stmt *st, int64_t id,
			     const struct catalog_content *c, const char *what,
			     const char **error_r)
{
	struct str *addr[3] = {str_create(128), str_create(128), str_create(128)};
	const char *fields[3] = {c->from, c->to, c->cc};
	for (int i = 0; i < 3; i++) {
		str_append(addr[i], fields[i]);
		search_query_address_tokens(fields[i], addr[i]);
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, str_c(addr[0]), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, str_c(addr[1]), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, str_c(addr[2]), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, c->body_text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, c->attachment_names, -1, SQLITE_STATIC);
	int ret = catalog_step_done(cat, st, what, error_r);
	for (int i = 0; i < 3; i++)
		str_destroy(&addr[i]);
	return ret;
}

int catalog_content_add(struct catalog *cat, const struct catalog_content *c, int64_t *id_r,
			const char **error_r)
{
	if (cat->next_content_id == 0 && catalog_next_content_id(cat, error_r) < 0)
		return -1;
	sqlite3_stmt *st = catalog_stmt(
		cat, ST_CONTENT_ADD,
		"INSERT INTO contents (hash, store_id, segment, offset, length, size, date, from_,"
		" subject, imap, has_attachment, defects, id, zone)"
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 13, cat->next_content_id);
	sqlite3_bind_blob(st, 1, c->hash, CATALOG_HASH_LEN, SQLITE_STATIC);
	bind_loc(st, 2, &c->loc);
	sqlite3_bind_int64(st, 6, (int64_t)c->size);
	sqlite3_bind_int64(st, 7, c->date);
	sqlite3_bind_text(st, 8, c->from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, c->subject, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 10, c->imap != NULL ? c->imap : "", (int)c->imap_len, SQLITE_STATIC);
	sqlite3_bind_int(st, 11, c->has_attachment ? 1 : 0);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)c->defects);
	sqlite3_bind_int(st, 14, c->zone_minutes);
	if (catalog_step_done(cat, st, "adding a content", error_r) < 0)
		return -1;
	int64_t id = cat->next_content_id++;

	st = catalog_stmt(cat, ST_FTS_ADD,
			  "INSERT INTO fts (rowid, f_from, f_to, f_cc, f_subject, f_body,"
			  " f_attachment) VALUES (?, ?, ?, ?, ?, ?, ?)",
			  error_r);
	if (st == NULL || catalog_fts_write(cat, st, id, c, "indexing a content", error_r) < 0)
		return -1;

	for (size_t i = 0; i < c->part_count; i++) {
		st = catalog_stmt(cat, ST_CONTENT_PART,
				  "INSERT OR IGNORE INTO content_parts (content_id, part_id)"
				  " SELECT ?, id FROM parts WHERE hash = ?",
				  error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_blob(st, 2, c->part_hashes[i], CATALOG_HASH_LEN, SQLITE_STATIC);
		if (catalog_step_done(cat, st, "linking a part", error_r) < 0)
			return -1;
	}
	*id_r = id;
	return 0;
}

int catalog_part_find(struct catalog *cat, const unsigned char hash[CATALOG_HASH_LEN],
		      struct catalog_loc *loc_r, const char **error_r)
{
	sqlite3_stmt *st = catalog_stmt(
		cat, ST_PART_FIND,
		"SELECT store_id, segment, offset, length FROM parts WHERE hash = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, hash, CATALOG_HASH_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && loc_r != NULL)
		column_loc(st, 0, loc_r);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "finding a part", error_r);
}

int catalog_part_add(struct catalog *cat, const unsigned char hash[CATALOG_HASH_LEN],
		     const struct catalog_loc *loc, uint64_t size, const char **error_r)
{
	sqlite3_stmt *st =
		catalog_stmt(cat, ST_PART_ADD,
			     "INSERT OR IGNORE INTO parts (hash, store_id, segment, offset,"
			     " length, size) VALUES (?, ?, ?, ?, ?, ?)",
			     error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, hash, CATALOG_HASH_LEN, SQLITE_STATIC);
	bind_loc(st, 2, loc);
	sqlite3_bind_int64(st, 6, (int64_t)size);
	return catalog_step_done(cat, st, "adding a part", error_r);
}

static int catalog_folder_id(struct catalog *cat, const char *user, const char *path, int64_t *id_r,
			     const char **error_r)
{
	sqlite3_stmt *st = catalog_stmt(
		cat, ST_FOLDER_FIND, "SELECT id FROM folders WHERE user = ? AND path = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return catalog_fail(cat, "finding a folder", error_r);
	st = catalog_stmt(cat, ST_FOLDER_ADD, "INSERT INTO folders (user, path) VALUES (?, ?)",
			  error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	if (catalog_step_done(cat, st, "adding a folder", error_r) < 0)
		return -1;
	*id_r = sqlite3_last_insert_rowid(cat->db);
	return 0;
}

int catalog_message_add(struct catalog *cat, int64_t content_id, const char *user,
			const char *folder, int64_t date, int64_t internal_date,
			const struct catalog_loc *loc, int64_t *id_r, const char **error_r)
{
	int64_t folder_id;
	if (catalog_folder_id(cat, user, folder, &folder_id, error_r) < 0)
		return -1;
	sqlite3_stmt *st = catalog_stmt(
		cat, ST_MESSAGE_ADD,
		"INSERT OR IGNORE INTO messages (content_id, folder_id, date, internal_date,"
		" store_id, segment, offset, length) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, content_id);
	sqlite3_bind_int64(st, 2, folder_id);
	sqlite3_bind_int64(st, 3, date);
	sqlite3_bind_int64(st, 4, internal_date);
	bind_loc(st, 5, loc);
	if (catalog_step_done(cat, st, "adding a message", error_r) < 0)
		return -1;
	if (sqlite3_changes(cat->db) == 0)
		return 0;
	*id_r = sqlite3_last_insert_rowid(cat->db);
	return 1;
}

int catalog_message_find(struct catalog *cat, int64_t content_id, const char *user,
			 const char *folder, int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *st =
		catalog_stmt(cat, ST_MESSAGE_FIND,
			     "SELECT m.id FROM messages m JOIN folders f ON f.id = m.folder_id"
			     " WHERE m.content_id = ? AND f.user = ? AND f.path = ?",
			     error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, content_id);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, folder, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "finding a message", error_r);
}

int catalog_message_imap(struct catalog *cat, int64_t message_id, void **imap_r, size_t *len_r,
			 const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    cat->db,
		    "SELECT c.imap FROM messages m JOIN contents c ON c.id = m.content_id"
		    " WHERE m.id = ?",
		    -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "imap data", error_r);
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		void *data = mem_alloc(len + 1);
		if (len > 0)
			memcpy(data, sqlite3_column_blob(st, 0), len);
		*imap_r = data;
		*len_r = len;
	}
	catalog_finalize(cat, st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "imap data", error_r);
}

int catalog_message_content(struct catalog *cat, int64_t message_id,
			    unsigned char hash_r[CATALOG_HASH_LEN], struct catalog_loc *loc_r,
			    const char **error_r)
{
	sqlite3_stmt *st = catalog_stmt(
		cat, ST_MESSAGE_CONTENT,
		"SELECT c.hash, c.store_id, c.segment, c.offset, c.length FROM messages m"
		" JOIN contents c ON c.id = m.content_id JOIN stores s ON s.id = c.store_id"
		" WHERE m.id = ? AND s.state != 3",
		error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) == CATALOG_HASH_LEN)
			memcpy(hash_r, sqlite3_column_blob(st, 0), CATALOG_HASH_LEN);
		column_loc(st, 1, loc_r);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "finding a message", error_r);
}

struct catalog_expand_ctx {
	struct catalog *cat;
};

/* ? wildcards: look the pattern up in the index vocabulary, using the part
 * before the first wildcard as a range so the scan stays short. */
static size_t catalog_expand(const char *pattern, size_t max, char ***terms_r, void *context)
{
	struct catalog *cat = context;
	size_t prefix_len = strcspn(pattern, "?*[");
	char *lo = mem_strndup(pattern, prefix_len);
	char *hi = mem_printf("%s\xf4\x8f\xbf\xbf", lo);
	sqlite3_stmt *st;
	ARRAY(char *) terms = ARRAY_INIT;
	if (sqlite3_prepare_v2(cat->db,
			       "SELECT term FROM fts_vocab WHERE term >= ? AND term <= ?"
			       " AND term GLOB ? LIMIT ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, pattern, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (int64_t)max);
		while (sqlite3_step(st) == SQLITE_ROW)
			array_append(&terms, mem_strdup((const char *)sqlite3_column_text(st, 0)));
		catalog_finalize(cat, st);
	}
	mem_free(lo);
	mem_free(hi);
	*terms_r = terms.items;
	return terms.count;
}

static void bind_search_params(sqlite3_stmt *st, const struct search_sql *sql)
{
	int first = 1;
	if (sql->fts_match != NULL)
		sqlite3_bind_text(st, first++, sql->fts_match, -1, SQLITE_STATIC);
	for (size_t i = 0; i < sql->param_count; i++) {
		if (sql->params[i].type == SEARCH_PARAM_TEXT)
			sqlite3_bind_text(st, first + (int)i, sql->params[i].text, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, first + (int)i, sql->params[i].value);
	}
}

/* Messages whose content lives in a disabled store are invisible. */
static int catalog_any_disabled(struct catalog *cat, bool *any_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "SELECT 1 FROM stores WHERE state = 3 LIMIT 1", -1, &st,
			       NULL) != SQLITE_OK)
		return catalog_fail(cat, "stores", error_r);
	int rc = sqlite3_step(st);
	catalog_finalize(cat, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return catalog_fail(cat, "stores", error_r);
	*any_r = rc == SQLITE_ROW;
	return 0;
}

struct catalog_ranked {
	int64_t id, date;
};

/* newest first */
static int catalog_ranked_cmp(const void *a, const void *b)
{
	const struct catalog_ranked *x = a, *y = b;
	if (x->date != y->date)
		return x->date > y->date ? -1 : 1;
	return x->id > y->id ? -1 : x->id < y->id;
}

static void catalog_hit_from_row(sqlite3_stmt *st, struct catalog_hit *hit)
{
	hit->id = sqlite3_column_int64(st, 0);
	hit->date = sqlite3_column_int64(st, 1);
	hit->from = (const char *)sqlite3_column_text(st, 2);
	hit->subject = (const char *)sqlite3_column_text(st, 3);
	hit->folder = (const char *)sqlite3_column_text(st, 4);
	hit->user = (const char *)sqlite3_column_text(st, 5);
	hit->size = (uint64_t)sqlite3_column_int64(st, 6);
	hit->has_attachment = sqlite3_column_int(st, 7) != 0;
	hit->internal_date = sqlite3_column_int64(st, 8);
}

/* Date bounds on the index. When a whole query is ANDed with a date range,
 * only contents of messages in that range can match, and their ids come in
 * runs: mail is imported roughly in date order, so a year's messages have a
 * few narrow bands of content ids (one per import of that year). The text
 * query then runs once per band with its rowids bounded, and FTS5 skips the
 * rest of long doclists. The bounds are implied by the date condition, so
 * they change no result. */
#define CATALOG_BOUNDS_MAX 64
#define CATALOG_BOUNDS_GAP 256

struct catalog_bounds {
	bool empty;   /* no message in the date range: nothing can match */
	size_t count; /* 0: not bounded */
	int64_t lo[CATALOG_BOUNDS_MAX], hi[CATALOG_BOUNDS_MAX];
};

/* Runs of the ids set in `bits` (bit i: id min + i) no more than `gap`
 * apart; 0 if there are more runs than the maximum. */
static size_t catalog_bounds_runs(const uint64_t *bits, size_t nbits, int64_t min, int64_t gap,
				  struct catalog_bounds *b)
{
	size_t n = 0;
	for (size_t w = 0; w < (nbits + 63) / 64; w++) {
		for (uint64_t word = bits[w]; word != 0; word &= word - 1) {
			int64_t id = min + (int64_t)(w * 64 + (size_t)__builtin_ctzll(word));
			if (n > 0 && id - b->hi[n - 1] <= gap) {
				b->hi[n - 1] = id;
				continue;
			}
			if (n == CATALOG_BOUNDS_MAX)
				return 0;
			b->lo[n] = b->hi[n] = id;
			n++;
		}
	}
	return n;
}

static void catalog_fts_bounds(struct catalog *cat, const struct search_sql *sql,
			       struct catalog_bounds *b)
{
	b->empty = false;
	b->count = 0;
	sqlite3_stmt *st;
	if (sql->fts_match == NULL || !sql->date_bounded ||
	    sqlite3_prepare_v2(cat->db,
			       "SELECT content_id FROM messages WHERE date >= ? AND date < ?", -1,
			       &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, sql->date_lo);
	sqlite3_bind_int64(st, 2, sql->date_hi);
	ARRAY(int64_t) ids = ARRAY_INIT;
	int64_t min = INT64_MAX, max = INT64_MIN;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		array_append(&ids, id);
		min = id < min ? id : min;
		max = id > max ? id : max;
	}
	catalog_finalize(cat, st);
	if (rc == SQLITE_DONE && ids.count == 0) {
		b->empty = true;
	} else if (rc == SQLITE_DONE && (uint64_t)(max - min) < (uint64_t)1 << 32) {
		/* a bitmap orders the ids: cheaper than sorting them */
		size_t nbits = (size_t)(max - min) + 1;
		uint64_t *bits = mem_alloc((nbits + 63) / 64 * sizeof(uint64_t));
		memset(bits, 0, (nbits + 63) / 64 * sizeof(uint64_t));
		for (size_t i = 0; i < ids.count; i++) {
			size_t bit = (size_t)(ids.items[i] - min);
			bits[bit / 64] |= (uint64_t)1 << (bit % 64);
		}
		/* widen the gaps a run may bridge until the runs are few enough */
		for (int64_t gap = CATALOG_BOUNDS_GAP; b->count == 0; gap *= 4)
			b->count = catalog_bounds_runs(bits, nbits, min, gap, b);
		mem_free(bits);
	}
	array_free(&ids);
}

/* The bounds as the last condition of a text query's SQL ("" if none). */
static const char *catalog_bounds_sql(const struct catalog_bounds *b)
{
	return b->count > 0 ? " AND fts.rowid BETWEEN :lo AND :hi" : "";
}

typedef void catalog_row_cb(sqlite3_stmt *st, void *context);

/* Runs a text query's SQL once per band of the bounds (or once if none). */
static int catalog_run_bounded(struct catalog *cat, const char *text, const struct search_sql *sql,
			       const struct catalog_bounds *b, catalog_row_cb *cb, void *context,
			       const char **error_r)
{
	if (b->empty)
		return 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, text, -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "search", error_r);
	bind_search_params(st, sql);
	int lo = sqlite3_bind_parameter_index(st, ":lo"),
	    hi = sqlite3_bind_parameter_index(st, ":hi");
	int rc = SQLITE_DONE;
	for (size_t i = 0; i < (b->count > 0 ? b->count : 1) && rc == SQLITE_DONE; i++) {
		if (b->count > 0) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, lo, b->lo[i]);
			sqlite3_bind_int64(st, hi, b->hi[i]);
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			cb(st, context);
	}
	catalog_finalize(cat, st);
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "search", error_r);
}

/* The newest `keep` rows of a text query, counted all: a heap whose root
 * is the oldest row kept, so most rows cost one comparison. */
struct catalog_top {
	ARRAY(struct catalog_ranked) rows;
	size_t keep;
	uint64_t total;
};

static bool catalog_ranked_older(const struct catalog_ranked *x, const struct catalog_ranked *y)
{
	return catalog_ranked_cmp(x, y) > 0;
}

static void catalog_top_sift_down(struct catalog_top *t, size_t i)
{
	struct catalog_ranked *rows = t->rows.items;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, oldest = i;
		if (l < t->rows.count && catalog_ranked_older(&rows[l], &rows[oldest]))
			oldest = l;
		if (r < t->rows.count && catalog_ranked_older(&rows[r], &rows[oldest]))
			oldest = r;
		if (oldest == i)
			return;
		struct catalog_ranked tmp = rows[i];
		rows[i] = rows[oldest];
		rows[oldest] = tmp;
		i = oldest;
	}
}

static void catalog_top_add(sqlite3_stmt *st, void *context)
{
	struct catalog_top *t = context;
	struct catalog_ranked row = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
	t->total++;
	if (t->keep == 0)
		return;
	if (t->rows.count < t->keep) {
		array_append(&t->rows, row);
		struct catalog_ranked *rows = t->rows.items;
		size_t i = t->rows.count - 1;
		while (i > 0 && catalog_ranked_older(&rows[i], &rows[(i - 1) / 2])) {
			struct catalog_ranked tmp = rows[i];
			rows[i] = rows[(i - 1) / 2];
			rows[(i - 1) / 2] = tmp;
			i = (i - 1) / 2;
		}
	} else if (catalog_ranked_older(&t->rows.items[0], &row)) {
		t->rows.items[0] = row;
		catalog_top_sift_down(t, 0);
	}
}

static int catalog_search_ranked(struct catalog *cat, const char *ids_sql,
				 const struct search_sql *sql, const struct catalog_bounds *bounds,
				 uint64_t limit, uint64_t offset, uint64_t *total_r,
				 catalog_hit_cb *cb, void *context, const char **error_r)
{
	struct catalog_top top = {0};
	/* limit may be "everything" (UINT64_MAX): saturate */
	top.keep = limit == 0                                         ? 0
		   : offset >= SIZE_MAX || limit >= SIZE_MAX - offset ? SIZE_MAX
								      : (size_t)(offset + limit);
	if (catalog_run_bounded(cat, ids_sql, sql, bounds, catalog_top_add, &top, error_r) < 0) {
		array_free(&top.rows);
		return -1;
	}
	*total_r = top.total;
	array_sort(&top.rows, catalog_ranked_cmp);
	int ret = 0;
	sqlite3_stmt *st;
	if (offset < top.rows.count) {
		if (sqlite3_prepare_v2(
			    cat->db,
			    "SELECT m.id, m.date, c.from_, c.subject, f.path, f.user, c.size,"
			    " c.has_attachment, m.internal_date"
			    " FROM messages m JOIN contents c ON c.id = m.content_id"
			    " JOIN folders f ON f.id = m.folder_id WHERE m.id = ?",
			    -1, &st, NULL) != SQLITE_OK) {
			array_free(&top.rows);
			return catalog_fail(cat, "search", error_r);
		}
		for (uint64_t i = offset; i < top.rows.count && ret == 0; i++) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, top.rows.items[i].id);
			int rc = sqlite3_step(st);
			if (rc == SQLITE_ROW) {
				struct catalog_hit hit;
				catalog_hit_from_row(st, &hit);
				cb(&hit, context);
			} else if (rc != SQLITE_DONE) {
				ret = catalog_fail(cat, "search", error_r);
			}
		}
		catalog_finalize(cat, st);
	}
	array_free(&top.rows);
	return ret;
}

/* A query in the archive's language as SQL, and whether any store is
 * disabled (its messages must then be filtered out). */
static int catalog_compile_query(struct catalog *cat, const char *query, struct search_sql *sql_r,
				 bool *any_disabled_r, const char **error_r)
{
	struct search_query *q;
	if (catalog_any_disabled(cat, any_disabled_r, error_r) < 0 ||
	    search_query_parse(query, &q, error_r) < 0)
		return -1;
	int ret = search_query_compile(q, catalog_expand, cat, sql_r, error_r);
	search_query_destroy(&q);
	return ret < 0 ? -1 : 0;
}

int catalog_search(struct catalog *cat, const char *query, uint64_t limit, uint64_t offset,
		   uint64_t *total_r, catalog_hit_cb *cb, void *context, const char **error_r)
{
	bool any_disabled;
	struct search_sql sql;
	if (catalog_compile_query(cat, query, &sql, &any_disabled, error_r) < 0)
		return -1;
	int ret;
	char *visible = mem_printf(
		"%s%s",
		any_disabled ? " AND c.store_id NOT IN (SELECT id FROM stores WHERE state = 3)"
			     : "",
		cat->scope_sql != NULL ? cat->scope_sql : "");
	/* the count needs the contents table only for conditions on it */
	bool count_needs_c = any_disabled || strstr(sql.where, "c.") != NULL;
	/* with a text part, the index drives: its matches are joined to the
	 * messages, then the rest of the conditions filter */
	const char *from = sql.fts_match != NULL
				   ? "fts CROSS JOIN messages m ON m.content_id = fts.rowid"
				   : "messages m";
	const char *match = sql.fts_match != NULL ? "fts MATCH ? AND " : "";
	char *count_sql = mem_printf("SELECT count(*) FROM %s%s WHERE %s(%s)%s", from,
				     count_needs_c ? " JOIN contents c ON c.id = m.content_id" : "",
				     match, sql.where, visible);
	char *page_sql = mem_printf(
		"SELECT m.id, m.date, c.from_, c.subject, f.path, f.user, c.size,"
		" c.has_attachment, m.internal_date FROM %s"
		" JOIN contents c ON c.id = m.content_id JOIN folders f ON f.id = m.folder_id"
		" WHERE %s(%s)%s ORDER BY m.date DESC, m.id DESC LIMIT %llu OFFSET %llu",
		from, match, sql.where, visible,
		(unsigned long long)(limit > INT64_MAX ? INT64_MAX : limit),
		(unsigned long long)(offset > INT64_MAX ? INT64_MAX : offset));
	sqlite3_stmt *st = NULL;
	ret = -1;
	if (sql.fts_match != NULL) {
		/* One pass over the index's matches gives the count and the
		 * page: the text part is evaluated once, not twice. */
		struct catalog_bounds bounds;
		catalog_fts_bounds(cat, &sql, &bounds);
		char *ids_sql =
			mem_printf("SELECT m.id, m.date FROM %s%s WHERE %s(%s)%s%s", from,
				   count_needs_c ? " JOIN contents c ON c.id = m.content_id" : "",
				   match, sql.where, visible, catalog_bounds_sql(&bounds));
		ret = catalog_search_ranked(cat, ids_sql, &sql, &bounds, limit, offset, total_r, cb,
					    context, error_r);
		mem_free(ids_sql);
		goto out;
	}
	if (sqlite3_prepare_v2(cat->db, count_sql, -1, &st, NULL) != SQLITE_OK) {
		catalog_fail(cat, "search", error_r);
		goto out;
	}
	bind_search_params(st, &sql);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		catalog_fail(cat, "search", error_r);
		goto out;
	}
	*total_r = (uint64_t)sqlite3_column_int64(st, 0);
	catalog_finalize(cat, st);
	st = NULL;
	if (limit > 0 && *total_r > offset) {
		if (sqlite3_prepare_v2(cat->db, page_sql, -1, &st, NULL) != SQLITE_OK) {
			catalog_fail(cat, "search", error_r);
			goto out;
		}
		bind_search_params(st, &sql);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct catalog_hit hit;
			catalog_hit_from_row(st, &hit);
			cb(&hit, context);
		}
		if (rc != SQLITE_DONE) {
			catalog_fail(cat, "search", error_r);
			goto out;
		}
	}
	ret = 0;
out:
	catalog_finalize(cat, st);
	mem_free(count_sql);
	mem_free(page_sql);
	mem_free(visible);
	search_sql_free(&sql);
	return ret;
}

static int catalog_query_stats(struct catalog *cat, const char *sql, int64_t id,
			       struct catalog_stats *stats_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "stats", error_r);
	if (id != 0)
		sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		stats_r->messages = (uint64_t)sqlite3_column_int64(st, 0);
		stats_r->contents = (uint64_t)sqlite3_column_int64(st, 1);
		stats_r->parts = (uint64_t)sqlite3_column_int64(st, 2);
		stats_r->raw_bytes = (uint64_t)sqlite3_column_int64(st, 3);
		stats_r->stored_bytes = (uint64_t)sqlite3_column_int64(st, 4);
	}
	catalog_finalize(cat, st);
	return rc == SQLITE_ROW ? 0 : catalog_fail(cat, "stats", error_r);
}

int catalog_stats(struct catalog *cat, struct catalog_stats *stats_r, const char **error_r)
{
	return catalog_query_stats(
		cat,
		"SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM contents),"
		" (SELECT count(*) FROM parts), (SELECT ifnull(sum(size), 0) FROM contents),"
		" (SELECT ifnull(sum(length), 0) FROM contents) +"
		" (SELECT ifnull(sum(length), 0) FROM parts)",
		0, stats_r, error_r);
}

int catalog_defect_counts(struct catalog *cat, uint64_t counts_r[CATALOG_DEFECT_BITS],
			  uint64_t *flagged_r, const char **error_r)
{
	/* one pass over the messages for every kind */
	struct str *sql = str_create(2048);
	str_append(sql, "SELECT ifnull(sum(c.defects <> 0), 0)");
	for (int bit = 0; bit < CATALOG_DEFECT_BITS; bit++)
		str_printfa(sql, ", ifnull(sum((c.defects >> %d) & 1), 0)", bit);
	str_append(sql, " FROM messages m JOIN contents c ON c.id = m.content_id");
	int64_t values[CATALOG_DEFECT_BITS + 1] = {0};
	int ret = catalog_select_ints(cat, str_c(sql), "defect counts", values,
				      CATALOG_DEFECT_BITS + 1, error_r);
	str_destroy(&sql);
	if (ret < 0)
		return -1;
	*flagged_r = (uint64_t)values[0];
	for (int bit = 0; bit < CATALOG_DEFECT_BITS; bit++)
		counts_r[bit] = (uint64_t)values[bit + 1];
	return 0;
}

int catalog_space(struct catalog *cat, catalog_space_cb *cb, void *context, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db,
			       "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"
			       " UNION ALL SELECT '(free)', (SELECT freelist_count FROM"
			       " pragma_freelist_count) * (SELECT page_size FROM pragma_page_size)"
			       " ORDER BY 2 DESC",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "space", error_r);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cb((const char *)sqlite3_column_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
		   context);
	catalog_finalize(cat, st);
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "space", error_r);
}

int catalog_store_stats(struct catalog *cat, int64_t id, struct catalog_stats *stats_r,
			const char **error_r)
{
	return catalog_query_stats(
		cat,
		"SELECT (SELECT count(*) FROM messages WHERE store_id = ?1),"
		" (SELECT count(*) FROM contents WHERE store_id = ?1),"
		" (SELECT count(*) FROM parts WHERE store_id = ?1),"
		" (SELECT ifnull(sum(size), 0) FROM contents WHERE store_id = ?1),"
		" (SELECT ifnull(sum(length), 0) FROM contents WHERE store_id = ?1) +"
		" (SELECT ifnull(sum(length), 0) FROM parts WHERE store_id = ?1)",
		id, stats_r, error_r);
}

static int catalog_foreach(struct catalog *cat, const char *sql, catalog_record_cb *cb,
			   void *context, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "listing", error_r);
	int rc, ret = 0;
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		unsigned char hash[CATALOG_HASH_LEN] = {0};
		if (sqlite3_column_bytes(st, 1) == CATALOG_HASH_LEN)
			memcpy(hash, sqlite3_column_blob(st, 1), CATALOG_HASH_LEN);
		struct catalog_loc loc;
		column_loc(st, 2, &loc);
		ret = cb(sqlite3_column_int64(st, 0), hash, &loc, context);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = catalog_fail(cat, "listing", error_r);
	else if (ret < 0)
		*error_r = "stopped";
	catalog_finalize(cat, st);
	return ret;
}

int catalog_foreach_content(struct catalog *cat, catalog_record_cb *cb, void *context,
			    const char **error_r)
{
	return catalog_foreach(cat,
			       "SELECT id, hash, store_id, segment, offset, length FROM contents"
			       " ORDER BY store_id, segment, offset",
			       cb, context, error_r);
}

int catalog_foreach_part(struct catalog *cat, catalog_record_cb *cb, void *context,
			 const char **error_r)
{
	return catalog_foreach(cat,
			       "SELECT id, hash, store_id, segment, offset, length FROM parts"
			       " ORDER BY store_id, segment, offset",
			       cb, context, error_r);
}

int catalog_foreach_message(struct catalog *cat, catalog_record_cb *cb, void *context,
			    const char **error_r)
{
	return catalog_foreach(cat,
			       "SELECT m.id, c.hash, m.store_id, m.segment, m.offset, m.length"
			       " FROM messages m LEFT JOIN contents c ON c.id = m.content_id"
			       " ORDER BY m.store_id, m.segment, m.offset",
			       cb, context, error_r);
}

static int catalog_ids(struct catalog *cat, const char *sql, const void *blob, int64_t id,
		       catalog_id_cb *cb, void *context, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "listing", error_r);
	if (blob != NULL)
		sqlite3_bind_blob(st, 1, blob, CATALOG_HASH_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	int rc, ret = 0;
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ret = cb(sqlite3_column_int64(st, 0), context);
	if (ret == 0 && rc != SQLITE_DONE)
		ret = catalog_fail(cat, "listing", error_r);
	catalog_finalize(cat, st);
	return ret;
}

int catalog_messages_of_content(struct catalog *cat, int64_t content_id, catalog_id_cb *cb,
				void *context, const char **error_r)
{
	return catalog_ids(cat, "SELECT id FROM messages WHERE content_id = ? ORDER BY id", NULL,
			   content_id, cb, context, error_r);
}

int catalog_messages_of_part(struct catalog *cat, const unsigned char hash[CATALOG_HASH_LEN],
			     catalog_id_cb *cb, void *context, const char **error_r)
{
	return catalog_ids(cat,
			   "SELECT m.id FROM messages m JOIN content_parts cp ON cp.content_id ="
			   " m.content_id JOIN parts p ON p.id = cp.part_id WHERE p.hash = ?"
			   " ORDER BY m.id",
			   hash, 0, cb, context, error_r);
}

int catalog_check_index(struct catalog *cat, const char **error_r)
{
	if (catalog_exec(cat, "INSERT INTO fts (fts, rank) VALUES ('integrity-check', 0)",
			 error_r) < 0)
		return -1;
	/* every content has its index row: the vocabulary's document count for
	 * the most common column equals the number of contents only loosely,
	 * so compare the index's own row count instead */
	int64_t missing = 0;
	if (catalog_select_ints(cat,
				"SELECT count(*) FROM contents WHERE id NOT IN"
				" (SELECT id FROM fts_docsize)",
				"index check", &missing, 1, error_r) < 0)
		return -1;
	if (missing != 0) {
		*error_r = tstr_printf("%lld contents have no full-text index entry",
				       (long long)missing);
		return -1;
	}
	return 0;
}

/* ---- folders ---- */

int catalog_folders(struct catalog *cat, catalog_folder_cb *cb, void *context, const char **error_r)
{
	sqlite3_stmt *st;
	/* the counts kept by the folder_count_* triggers (schema 8) */
	if (sqlite3_prepare_v2(cat->db,
			       "SELECT id, user, path, messages, bytes FROM folders"
			       " ORDER BY user, path",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "folders", error_r);
	int rc, ret = 0;
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct catalog_folder f = {
			.id = sqlite3_column_int64(st, 0),
			.user = (const char *)sqlite3_column_text(st, 1),
			.path = (const char *)sqlite3_column_text(st, 2),
			.messages = (uint64_t)sqlite3_column_int64(st, 3),
			.bytes = (uint64_t)sqlite3_column_int64(st, 4),
		};
		ret = cb(&f, context);
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		catalog_finalize(cat, st);
		return catalog_fail(cat, "folders", error_r);
	}
	catalog_finalize(cat, st);
	return 0;
}

int catalog_folder_list(struct catalog *cat, const char *user, catalog_folder_cb *cb, void *context,
			const char **error_r)
{
	/* the folders table alone, through its (user, path) index: no message
	 * is read, so a search that needs a user's folders costs the same in a
	 * small archive and a big one */
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db,
			       user != NULL
				       ? "SELECT id, user, path FROM folders WHERE user = ?"
					 " ORDER BY path"
				       : "SELECT id, user, path FROM folders ORDER BY user, path",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "folders", error_r);
	if (user != NULL)
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	int rc, ret = 0;
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct catalog_folder f = {
			.id = sqlite3_column_int64(st, 0),
			.user = (const char *)sqlite3_column_text(st, 1),
			.path = (const char *)sqlite3_column_text(st, 2),
		};
		ret = cb(&f, context);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = catalog_fail(cat, "folders", error_r);
	else
		ret = 0;
	catalog_finalize(cat, st);
	return ret;
}

int catalog_folder_messages(struct catalog *cat, int64_t folder_id, uint64_t limit, uint64_t offset,
			    uint64_t *total_r, catalog_hit_cb *cb, void *context,
			    const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "SELECT count(*) FROM messages WHERE folder_id = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "folder messages", error_r);
	sqlite3_bind_int64(st, 1, folder_id);
	*total_r = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	catalog_finalize(cat, st);
	if (sqlite3_prepare_v2(
		    cat->db,
		    "SELECT m.id, m.date, c.from_, c.subject, f.path, f.user, c.size,"
		    " c.has_attachment, m.internal_date"
		    " FROM messages m JOIN contents c ON c.id = m.content_id"
		    " JOIN folders f ON f.id = m.folder_id"
		    " WHERE m.folder_id = ? ORDER BY m.date DESC, m.id DESC LIMIT ? OFFSET ?",
		    -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "folder messages", error_r);
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(limit > INT64_MAX ? INT64_MAX : limit));
	sqlite3_bind_int64(st, 3, (sqlite3_int64)(offset > INT64_MAX ? INT64_MAX : offset));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct catalog_hit hit;
		catalog_hit_from_row(st, &hit);
		cb(&hit, context);
	}
	catalog_finalize(cat, st);
	if (rc != SQLITE_DONE)
		return catalog_fail(cat, "folder messages", error_r);
	return 0;
}

/* ---- end-user access: scoped searches, IMAP views ---- */

/* " AND m.folder_id IN (1,2,3)": ids are integers the caller looked up,
 * printed, not user text. */
static char *catalog_scope_sql(const struct catalog_scope *scope)
{
	if (scope == NULL)
		return mem_strdup("");
	struct str *sql = str_create(32 + scope->folder_count * 21);
	str_append(sql, " AND m.folder_id IN (");
	for (size_t i = 0; i < scope->folder_count; i++)
		str_printfa(sql, "%s%lld", i == 0 ? "" : ",", (long long)scope->folder_ids[i]);
	str_append_c(sql, ')');
	return str_steal(&sql);
}

int catalog_search_scoped(struct catalog *cat, const char *query, const struct catalog_scope *scope,
			  uint64_t limit, uint64_t offset, uint64_t *total_r, catalog_hit_cb *cb,
			  void *context, const char **error_r)
{
	if (scope != NULL && scope->folder_count == 0) {
		*total_r = 0;
		return 0;
	}
	/* the scope joins the query as one more SQL condition */
	char *scope_sql = catalog_scope_sql(scope);
	cat->scope_sql = scope_sql;
	int ret = catalog_search(cat, query, limit, offset, total_r, cb, context, error_r);
	cat->scope_sql = NULL;
	mem_free(scope_sql);
	return ret;
}

static int catalog_id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

struct catalog_ids {
	ARRAY(int64_t) ids;
};

static void catalog_ids_add(sqlite3_stmt *st, void *context)
{
	struct catalog_ids *c = context;
	array_append(&c->ids, sqlite3_column_int64(st, 0));
}

int catalog_search_ids(struct catalog *cat, const char *query, const struct catalog_scope *scope,
		       catalog_id_cb *cb, void *context, const char **error_r)
{
	if (scope != NULL && scope->folder_count == 0)
		return 0;
	bool any_disabled;
	struct search_sql sql;
	if (catalog_compile_query(cat, query, &sql, &any_disabled, error_r) < 0)
		return -1;
	char *scope_sql = catalog_scope_sql(scope);
	struct catalog_bounds bounds;
	catalog_fts_bounds(cat, &sql, &bounds);
	bool needs_c = any_disabled || strstr(sql.where, "c.") != NULL;
	char *ids_sql = mem_printf(
		"SELECT m.id FROM %s%s WHERE %s(%s)%s%s%s",
		sql.fts_match != NULL ? "fts CROSS JOIN messages m ON m.content_id = fts.rowid"
				      : "messages m",
		needs_c ? " JOIN contents c ON c.id = m.content_id" : "",
		sql.fts_match != NULL ? "fts MATCH ? AND " : "", sql.where,
		any_disabled ? " AND c.store_id NOT IN (SELECT id FROM stores WHERE state = 3)"
			     : "",
		scope_sql, catalog_bounds_sql(&bounds));
	struct catalog_ids found = {0};
	int ret =
		catalog_run_bounded(cat, ids_sql, &sql, &bounds, catalog_ids_add, &found, error_r);
	/* sorted here: SQLite's sorter costs more for many matches */
	if (ret == 0)
		array_sort(&found.ids, catalog_id_cmp);
	for (size_t i = 0; ret == 0 && i < found.ids.count; i++)
		if (cb(found.ids.items[i], context) != 0)
			break;
	array_free(&found.ids);
	mem_free(ids_sql);
	mem_free(scope_sql);
	search_sql_free(&sql);
	return ret;
}

int catalog_folder_find(struct catalog *cat, const char *user, const char *path,
			int64_t *folder_id_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "SELECT id FROM folders WHERE user = ? AND path = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "folders", error_r);
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*folder_id_r = sqlite3_column_int64(st, 0);
	catalog_finalize(cat, st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "folders", error_r);
}

int catalog_folder_ids(struct catalog *cat, int64_t folder_id, catalog_id_cb *cb, void *context,
		       const char **error_r)
{
	sqlite3_stmt *st;
	bool any_disabled;
	if (catalog_any_disabled(cat, &any_disabled, error_r) < 0)
		return -1;
	/* the index on (folder_id, id) answers alone unless a store is disabled */
	if (sqlite3_prepare_v2(
		    cat->db,
		    any_disabled
			    ? "SELECT m.id FROM messages m JOIN contents c ON c.id = m.content_id"
			      " WHERE m.folder_id = ? AND c.store_id NOT IN"
			      " (SELECT id FROM stores WHERE state = 3) ORDER BY m.id"
			    : "SELECT id FROM messages WHERE folder_id = ? ORDER BY id",
		    -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "folder messages", error_r);
	sqlite3_bind_int64(st, 1, folder_id);
	int rc, stop = 0;
	while (stop == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		stop = cb(sqlite3_column_int64(st, 0), context);
	catalog_finalize(cat, st);
	if (stop == 0 && rc != SQLITE_DONE)
		return catalog_fail(cat, "folder messages", error_r);
	return 0;
}

int catalog_imap_ids(struct catalog *cat, uint32_t *uid_validity_r, int64_t *next_id_r,
		     const char **error_r)
{
	int64_t v[2] = {0, 1};
	int ret = catalog_select_ints(cat,
				      "SELECT (SELECT value FROM meta WHERE key = 'uid_validity'),"
				      " (SELECT coalesce(max(id), 0) + 1 FROM messages)",
				      "meta", v, 2, error_r);
	*uid_validity_r = (uint32_t)v[0];
	*next_id_r = v[1];
	return ret;
}

int catalog_message_meta(struct catalog *cat, int64_t message_id,
			 struct catalog_message_meta *meta_r, const char **error_r)
{
	sqlite3_stmt *st = catalog_stmt(
		cat, ST_MESSAGE_META,
		"SELECT f.id, f.user, f.path, c.size, m.internal_date, m.date, c.from_, c.subject,"
		" c.has_attachment FROM messages m JOIN contents c ON c.id = m.content_id"
		" JOIN folders f ON f.id = m.folder_id JOIN stores s ON s.id = c.store_id"
		" WHERE m.id = ? AND s.state != 3",
		error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		meta_r->folder_id = sqlite3_column_int64(st, 0);
		snprintf(meta_r->user, sizeof(meta_r->user), "%s", sqlite3_column_text(st, 1));
		snprintf(meta_r->path, sizeof(meta_r->path), "%s", sqlite3_column_text(st, 2));
		meta_r->size = (uint64_t)sqlite3_column_int64(st, 3);
		meta_r->internal_date = sqlite3_column_int64(st, 4);
		meta_r->date = sqlite3_column_int64(st, 5);
		snprintf(meta_r->from, sizeof(meta_r->from), "%s", sqlite3_column_text(st, 6));
		snprintf(meta_r->subject, sizeof(meta_r->subject), "%s",
			 sqlite3_column_text(st, 7));
		meta_r->has_attachment = sqlite3_column_int(st, 8) != 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "finding a message", error_r);
}

/* ---- the instance's users ---- */

static void catalog_bind_text_or_null(sqlite3_stmt *st, int index, const char *text)
{
	if (text == NULL)
		sqlite3_bind_null(st, index);
	else
		sqlite3_bind_text(st, index, text, -1, SQLITE_STATIC);
}

static int catalog_user_row(struct catalog *cat, struct catalog_user *user, const char **error_r)
{
	bool is_new = user->id == 0;
	sqlite3_stmt *st =
		is_new ? catalog_stmt(
				 cat, ST_USER_ADD,
				 "INSERT INTO users (name, archive_name, full_name, password_hash,"
				 " mfa_state, mfa_secret, mfa_last_step) VALUES (?, ?, ?, ?, ?, ?, "
				 "?)",
				 error_r)
		       : catalog_stmt(cat, ST_USER_UPDATE,
				      "UPDATE users SET name = ?, archive_name = ?, full_name = ?,"
				      " password_hash = ?, mfa_state = ?, mfa_secret = ?,"
				      " mfa_last_step = ? WHERE id = ?",
				      error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, user->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, user->archive_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, user->full_name != NULL ? user->full_name : "", -1, SQLITE_STATIC);
	catalog_bind_text_or_null(st, 4, user->password_hash);
	catalog_bind_text_or_null(st, 5, user->mfa_state);
	catalog_bind_text_or_null(st, 6, user->mfa_secret);
	sqlite3_bind_int64(st, 7, user->mfa_last_step);
	if (!is_new)
		sqlite3_bind_int64(st, 8, user->id);
	if (catalog_step_done(cat, st, "writing a user", error_r) < 0)
		return -1;
	if (is_new)
		user->id = sqlite3_last_insert_rowid(cat->db);
	return 0;
}

/* The rows that belong to a user, dropped before they are written again. */
static int catalog_user_children_delete(struct catalog *cat, int64_t id, const char **error_r)
{
	static const struct {
		enum catalog_stmt idx;
		const char *sql;
	} deletes[] = {
		{ST_USER_EMAIL_DELETE, "DELETE FROM user_emails WHERE user_id = ?"},
		{ST_USER_PRIV_DELETE, "DELETE FROM user_privileges WHERE user_id = ?"},
		{ST_USER_RIGHT_DELETE, "DELETE FROM user_folder_rights WHERE user_id = ?"},
		{ST_USER_APP_DELETE, "DELETE FROM user_app_passwords WHERE user_id = ?"},
	};
	for (size_t i = 0; i < sizeof(deletes) / sizeof(deletes[0]); i++) {
		sqlite3_stmt *st = catalog_stmt(cat, deletes[i].idx, deletes[i].sql, error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		if (catalog_step_done(cat, st, "removing a user's rows", error_r) < 0)
			return -1;
	}
	return 0;
}

static int catalog_user_texts_add(struct catalog *cat, int64_t id, int kind,
				  const char *const *texts, size_t count, const char **error_r)
{
	for (size_t i = 0; i < count; i++) {
		sqlite3_stmt *st =
			kind < 0 ? catalog_stmt(cat, ST_USER_EMAIL_ADD,
						"INSERT INTO user_emails VALUES (?, ?, ?)", error_r)
				 : catalog_stmt(cat, ST_USER_PRIV_ADD,
						"INSERT INTO user_privileges VALUES (?, ?, ?, ?)",
						error_r);
		if (st == NULL)
			return -1;
		int col = 1;
		sqlite3_bind_int64(st, col++, id);
		if (kind >= 0)
			sqlite3_bind_int(st, col++, kind);
		sqlite3_bind_int64(st, col++, (int64_t)i);
		sqlite3_bind_text(st, col, texts[i], -1, SQLITE_STATIC);
		if (catalog_step_done(cat, st, "writing a user's list", error_r) < 0)
			return -1;
	}
	return 0;
}

static int catalog_user_rights_add(struct catalog *cat, const struct catalog_user *user,
				   const char **error_r)
{
	for (size_t i = 0; i < user->right_count; i++) {
		sqlite3_stmt *st =
			catalog_stmt(cat, ST_USER_RIGHT_ADD,
				     "INSERT INTO user_folder_rights VALUES (?, ?, ?, ?)", error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, user->id);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		sqlite3_bind_text(st, 3, user->rights[i].folder, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, user->rights[i].rights, -1, SQLITE_STATIC);
		if (catalog_step_done(cat, st, "writing a folder right", error_r) < 0)
			return -1;
	}
	for (size_t i = 0; i < user->app_count; i++) {
		sqlite3_stmt *st = catalog_stmt(
			cat, ST_USER_APP_ADD,
			"INSERT INTO user_app_passwords VALUES (?, ?, ?, ?, ?)", error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, user->id);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		sqlite3_bind_text(st, 3, user->apps[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, user->apps[i].hash, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, user->apps[i].created);
		if (catalog_step_done(cat, st, "writing an app password", error_r) < 0)
			return -1;
	}
	return 0;
}

int catalog_user_put(struct catalog *cat, struct catalog_user *user, const char **error_r)
{
	bool is_new = user->id == 0;
	if (catalog_user_row(cat, user, error_r) < 0 ||
	    (!is_new && catalog_user_children_delete(cat, user->id, error_r) < 0) ||
	    catalog_user_texts_add(cat, user->id, -1, user->emails, user->email_count, error_r) <
		    0 ||
	    catalog_user_texts_add(cat, user->id, 0, user->privileges, user->privilege_count,
				   error_r) < 0 ||
	    catalog_user_texts_add(cat, user->id, 1, user->login_privileges,
				   user->login_privilege_count, error_r) < 0 ||
	    catalog_user_rights_add(cat, user, error_r) < 0)
		return -1;
	return 0;
}

int catalog_user_delete(struct catalog *cat, int64_t id, const char **error_r)
{
	sqlite3_stmt *st =
		catalog_stmt(cat, ST_USER_DELETE, "DELETE FROM users WHERE id = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (catalog_step_done(cat, st, "deleting a user", error_r) < 0)
		return -1;
	return catalog_user_children_delete(cat, id, error_r);
}

/* What each user table gives back, in the order catalog_users_load()
 * walks them: columns after user_id map onto the row's texts, except the
 * column numbered `number_col` (0: none), which is the row's number. */
static const struct {
	enum catalog_user_row_kind kind;
	const char *sql;
	int number_col;
} catalog_user_reads[] = {
	{CATALOG_USER_ROW_USER,
	 "SELECT id, name, archive_name, full_name, password_hash, mfa_state, mfa_secret,"
	 " mfa_last_step FROM users ORDER BY id",
	 7},
	{CATALOG_USER_ROW_EMAIL,
	 "SELECT user_id, address FROM user_emails ORDER BY user_id, position", 0},
	{CATALOG_USER_ROW_PRIVILEGE,
	 "SELECT user_id, name FROM user_privileges WHERE kind = 0 ORDER BY user_id, position", 0},
	{CATALOG_USER_ROW_LOGIN_PRIVILEGE,
	 "SELECT user_id, name FROM user_privileges WHERE kind = 1 ORDER BY user_id, position", 0},
	{CATALOG_USER_ROW_FOLDER_RIGHT,
	 "SELECT user_id, folder, rights FROM user_folder_rights ORDER BY user_id, position", 0},
	{CATALOG_USER_ROW_APP_PASSWORD,
	 "SELECT user_id, name, hash, created FROM user_app_passwords ORDER BY user_id, position",
	 3},
};

static const char *catalog_column_text(sqlite3_stmt *st, int col)
{
	return col < sqlite3_column_count(st) ? (const char *)sqlite3_column_text(st, col) : NULL;
}

static int catalog_users_read(struct catalog *cat, size_t table, catalog_user_row_cb *cb,
			      void *context, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, catalog_user_reads[table].sql, -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "reading users", error_r);
	int rc, ret = 0, number_col = catalog_user_reads[table].number_col;
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct catalog_user_row row = {.kind = catalog_user_reads[table].kind,
					       .user_id = sqlite3_column_int64(st, 0)};
		const char **texts[] = {&row.text, &row.text2, &row.text3, &row.text4, &row.text5};
		int first = 1;
		if (row.kind == CATALOG_USER_ROW_USER)
			row.name = catalog_column_text(st, first++);
		for (int col = first, t = 0; col < sqlite3_column_count(st); col++) {
			if (col == number_col)
				row.number = sqlite3_column_int64(st, col);
			else if (t < 5)
				*texts[t++] = catalog_column_text(st, col);
		}
		ret = cb(&row, context);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = catalog_fail(cat, "reading users", error_r);
	catalog_finalize(cat, st);
	return ret;
}

int catalog_users_load(struct catalog *cat, catalog_user_row_cb *cb, void *context,
		       const char **error_r)
{
	int ret = 0;
	catalog_read_begin(cat);
	for (size_t i = 0;
	     ret == 0 && i < sizeof(catalog_user_reads) / sizeof(catalog_user_reads[0]); i++)
		ret = catalog_users_read(cat, i, cb, context, error_r);
	catalog_read_end(cat);
	return ret;
}

/* Each table copied as it is (ids too), column by column. */
static int catalog_users_copy_table(struct catalog *from, struct catalog *to, const char *table,
				    const char **error_r)
{
	char *select = mem_printf("SELECT * FROM %s", table);
	sqlite3_stmt *st = NULL, *ins = NULL;
	int ret = 0, rc;
	if (sqlite3_prepare_v2(from->db, select, -1, &st, NULL) != SQLITE_OK)
		ret = catalog_fail(from, "reading users", error_r);
	mem_free(select);
	int cols = ret == 0 ? sqlite3_column_count(st) : 0;
	if (ret == 0) {
		struct str *sql = str_create(128);
		str_printfa(sql, "INSERT INTO %s VALUES (", table);
		for (int i = 0; i < cols; i++)
			str_append(sql, i == 0 ? "?" : ", ?");
		str_append(sql, ")");
		if (sqlite3_prepare_v2(to->db, str_c(sql), -1, &ins, NULL) != SQLITE_OK)
			ret = catalog_fail(to, "copying users", error_r);
		str_destroy(&sql);
	}
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < cols; i++)
			sqlite3_bind_value(ins, i + 1, sqlite3_column_value(st, i));
		if (sqlite3_step(ins) != SQLITE_DONE)
			ret = catalog_fail(to, "copying users", error_r);
		sqlite3_reset(ins);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = catalog_fail(from, "reading users", error_r);
	catalog_finalize(from, st);
	catalog_finalize(to, ins);
	return ret;
}

int catalog_users_copy(struct catalog *from, struct catalog *to, const char **error_r)
{
	/* legal holds and retention policies are not in the stores either */
	static const char *const tables[] = {"users",
					     "user_emails",
					     "user_privileges",
					     "user_folder_rights",
					     "user_app_passwords",
					     "legal_holds",
					     "retention_policies"};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		if (catalog_users_copy_table(from, to, tables[i], error_r) < 0)
			return -1;
	}
	return 0;
}

/* ---- compliance (schema 12) ---- */

int catalog_hold_set(struct catalog *cat, const char *user, bool on, int64_t since,
		     const char *reason, const char **error_r)
{
	sqlite3_stmt *st;
	const char *sql = on ? "INSERT OR REPLACE INTO legal_holds (user, since, reason)"
			       " VALUES (?, ?, ?)"
			     : "DELETE FROM legal_holds WHERE user = ?";
	if (sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "setting a legal hold", error_r);
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	if (on) {
		sqlite3_bind_int64(st, 2, since);
		sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	}
	int ret = catalog_step_done(cat, st, "setting a legal hold", error_r);
	catalog_finalize(cat, st);
	return ret;
}

int catalog_holds(struct catalog *cat, catalog_hold_cb *cb, void *context, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "SELECT user, since, reason FROM legal_holds ORDER BY user",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "listing legal holds", error_r);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
		   (const char *)sqlite3_column_text(st, 2), context);
	catalog_finalize(cat, st);
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "listing legal holds", error_r);
}

int catalog_policies_replace(struct catalog *cat, const struct catalog_policy *policies,
			     size_t count, const char **error_r)
{
	if (catalog_exec(cat, "DELETE FROM retention_policies", error_r) < 0)
		return -1;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db,
			       "INSERT INTO retention_policies (name, kind, days, users, folders,"
			       " query) VALUES (?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "saving retention policies", error_r);
	int ret = 0;
	for (size_t i = 0; ret == 0 && i < count; i++) {
		const struct catalog_policy *p = &policies[i];
		sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, p->kind);
		sqlite3_bind_int64(st, 3, p->days);
		sqlite3_bind_text(st, 4, p->users, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, p->folders, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, p->query, -1, SQLITE_STATIC);
		ret = catalog_step_done(cat, st, "saving a retention policy", error_r);
	}
	catalog_finalize(cat, st);
	return ret;
}

int catalog_policies(struct catalog *cat, catalog_policy_cb *cb, void *context,
		     const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db,
			       "SELECT name, kind, days, users, folders, query FROM"
			       " retention_policies ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "reading retention policies", error_r);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct catalog_policy p = {
			.name = (const char *)sqlite3_column_text(st, 0),
			.kind = sqlite3_column_int(st, 1),
			.days = sqlite3_column_int64(st, 2),
			.users = (const char *)sqlite3_column_text(st, 3),
			.folders = (const char *)sqlite3_column_text(st, 4),
			.query = (const char *)sqlite3_column_text(st, 5),
		};
		cb(&p, context);
	}
	catalog_finalize(cat, st);
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "reading retention policies", error_r);
}

static void catalog_column_ref(sqlite3_stmt *st, struct catalog_message_ref *ref_r)
{
	ref_r->id = sqlite3_column_int64(st, 0);
	ref_r->content_id = sqlite3_column_int64(st, 1);
	ref_r->date = sqlite3_column_int64(st, 2);
	snprintf(ref_r->user, sizeof(ref_r->user), "%s", sqlite3_column_text(st, 3));
	snprintf(ref_r->path, sizeof(ref_r->path), "%s", sqlite3_column_text(st, 4));
}

#define CATALOG_REF_COLUMNS                                                                        \
	"SELECT m.id, m.content_id, m.date, f.user, f.path FROM messages m"                        \
	" JOIN folders f ON f.id = m.folder_id"

int catalog_message_ref(struct catalog *cat, int64_t message_id, struct catalog_message_ref *ref_r,
			const char **error_r)
{
	/* prepared once: a retention run asks for every message it deletes */
	sqlite3_stmt *st =
		catalog_stmt(cat, ST_MESSAGE_REF, CATALOG_REF_COLUMNS " WHERE m.id = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		catalog_column_ref(st, ref_r);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "finding a message", error_r);
}

int catalog_messages_before(struct catalog *cat, int64_t before, catalog_ref_cb *cb, void *context,
			    const char **error_r)
{
	sqlite3_stmt *st;
	/* the date index (messages_date) gives the range in date order */
	if (sqlite3_prepare_v2(cat->db,
			       CATALOG_REF_COLUMNS " WHERE m.date < ? ORDER BY m.date, m.id", -1,
			       &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "listing old messages", error_r);
	sqlite3_bind_int64(st, 1, before);
	int rc, stop = 0;
	while (stop == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct catalog_message_ref ref;
		catalog_column_ref(st, &ref);
		stop = cb(&ref, context);
	}
	catalog_finalize(cat, st);
	if (stop != 0)
		return 0;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "listing old messages", error_r);
}

/* A record left behind in a store, for a later compaction. */
static int catalog_removal_add(struct catalog *cat, int kind, const void *hash,
			       const struct catalog_loc *loc, int64_t now, const char **error_r)
{
	sqlite3_stmt *st =
		catalog_stmt(cat, ST_REMOVAL_ADD,
			     "INSERT INTO removals (kind, hash, store_id, segment, offset,"
			     " length, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			     error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, kind);
	sqlite3_bind_blob(st, 2, hash, CATALOG_HASH_LEN, SQLITE_STATIC);
	bind_loc(st, 3, loc);
	sqlite3_bind_int64(st, 7, now);
	return catalog_step_done(cat, st, "recording a removal", error_r);
}

int catalog_message_remove(struct catalog *cat, int64_t message_id, int64_t now,
			   int64_t *content_id_r, const char **error_r)
{
	sqlite3_stmt *st = catalog_stmt(
		cat, ST_MESSAGE_REMOVE_INFO,
		"SELECT m.content_id, m.store_id, m.segment, m.offset, m.length, c.hash,"
		" (c.store_id = m.store_id AND c.segment = m.segment AND c.offset = m.offset),"
		" (SELECT count(*) FROM messages o WHERE o.content_id = m.content_id)"
		" FROM messages m JOIN contents c ON c.id = m.content_id WHERE m.id = ?",
		error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "removing a message", error_r);
	}
	struct catalog_loc loc;
	unsigned char hash[CATALOG_HASH_LEN];
	*content_id_r = sqlite3_column_int64(st, 0);
	column_loc(st, 1, &loc);
	memcpy(hash, sqlite3_column_blob(st, 5), CATALOG_HASH_LEN);
	bool is_content_record = sqlite3_column_int(st, 6) != 0;
	int64_t refs = sqlite3_column_int64(st, 7);
	sqlite3_reset(st);
	/* a REF record is garbage now (3); the MESSAGE record the content was
	 * stored in stays while the content is in use (4: only the reference
	 * went; 1 follows when the content goes). Both say which reference a
	 * rebuild from the segments must not bring back (archive-delete.h). */
	if (catalog_removal_add(cat, is_content_record ? 4 : 3, hash, &loc, now, error_r) < 0)
		return -1;
	st = catalog_stmt(cat, ST_MESSAGE_DELETE, "DELETE FROM messages WHERE id = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	if (catalog_step_done(cat, st, "removing a message", error_r) < 0)
		return -1;
	return refs <= 1 ? 2 : 1;
}

int catalog_content_record(struct catalog *cat, int64_t content_id,
			   unsigned char hash_r[CATALOG_HASH_LEN], struct catalog_loc *loc_r,
			   const char **error_r)
{
	/* prepared once (as the statements below): a retention run asks for
	 * every content it removes */
	sqlite3_stmt *st = catalog_stmt(cat, ST_CONTENT_RECORD,
					"SELECT hash, store_id, segment, offset, length FROM"
					" contents WHERE id = ?",
					error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, content_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memcpy(hash_r, sqlite3_column_blob(st, 0), CATALOG_HASH_LEN);
		column_loc(st, 1, loc_r);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "finding a content", error_r);
}

/* The parts only this content needed: recorded for removal and forgotten. */
static int catalog_content_parts_remove(struct catalog *cat, int64_t content_id, int64_t now,
					const char **error_r)
{
	sqlite3_stmt *st =
		catalog_stmt(cat, ST_PARTS_ORPHANED,
			     "SELECT p.id, p.hash, p.store_id, p.segment, p.offset, p.length"
			     " FROM content_parts cp JOIN parts p ON p.id = cp.part_id WHERE"
			     " cp.content_id = ?1 AND NOT EXISTS (SELECT 1 FROM content_parts o"
			     " WHERE o.part_id = cp.part_id AND o.content_id <> ?1)",
			     error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, content_id);
	ARRAY(int64_t) orphans = ARRAY_INIT;
	ARRAY(struct catalog_loc) locs = ARRAY_INIT;
	ARRAY(unsigned char) hashes = ARRAY_INIT;
	int rc, ret = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		array_append(&orphans, sqlite3_column_int64(st, 0));
		column_loc(st, 2, array_push(&locs));
		for (size_t i = 0; i < CATALOG_HASH_LEN; i++)
			array_append(&hashes,
				     ((const unsigned char *)sqlite3_column_blob(st, 1))[i]);
	}
	if (rc != SQLITE_DONE)
		ret = catalog_fail(cat, "removing parts", error_r);
	sqlite3_reset(st);
	for (size_t i = 0; ret == 0 && i < orphans.count; i++)
		ret = catalog_removal_add(cat, 2, hashes.items + i * CATALOG_HASH_LEN,
					  &locs.items[i], now, error_r);
	for (size_t i = 0; ret == 0 && i < orphans.count; i++) {
		st = catalog_stmt(cat, ST_PART_DELETE, "DELETE FROM parts WHERE id = ?", error_r);
		if (st == NULL) {
			ret = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, orphans.items[i]);
		ret = catalog_step_done(cat, st, "removing a part", error_r);
	}
	array_free(&orphans);
	array_free(&locs);
	array_free(&hashes);
	return ret;
}

int catalog_content_remove(struct catalog *cat, int64_t content_id,
			   const struct catalog_content *indexed, int64_t now, const char **error_r)
{
	unsigned char hash[CATALOG_HASH_LEN];
	struct catalog_loc loc;
	int found = catalog_content_record(cat, content_id, hash, &loc, error_r);
	if (found <= 0)
		return found;
	/* contentless FTS5 (SQLite 3.40: no contentless_delete) forgets a row
	 * only when told the values it was indexed with */
	sqlite3_stmt *st = catalog_stmt(cat, ST_FTS_DELETE,
					"INSERT INTO fts (fts, rowid, f_from, f_to, f_cc,"
					" f_subject, f_body, f_attachment) VALUES ('delete', ?, ?,"
					" ?, ?, ?, ?, ?)",
					error_r);
	if (st == NULL ||
	    catalog_fts_write(cat, st, content_id, indexed, "unindexing a content", error_r) < 0 ||
	    catalog_content_parts_remove(cat, content_id, now, error_r) < 0 ||
	    catalog_removal_add(cat, 1, hash, &loc, now, error_r) < 0)
		return -1;
	static const struct {
		enum catalog_stmt idx;
		const char *sql;
	} deletes[] = {
		{ST_CONTENT_PARTS_DELETE, "DELETE FROM content_parts WHERE content_id = ?"},
		{ST_CONTENT_DELETE, "DELETE FROM contents WHERE id = ?"},
	};
	for (size_t i = 0; i < 2; i++) {
		st = catalog_stmt(cat, deletes[i].idx, deletes[i].sql, error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, content_id);
		if (catalog_step_done(cat, st, "removing a content", error_r) < 0)
			return -1;
	}
	return 1;
}

int catalog_foreach_removal(struct catalog *cat, catalog_record_cb *cb, void *context,
			    const char **error_r)
{
	return catalog_foreach(cat,
			       "SELECT id, hash, store_id, segment, offset, length FROM removals"
			       " ORDER BY store_id, segment, offset",
			       cb, context, error_r);
}

int catalog_foreach_removed_message(struct catalog *cat, catalog_record_cb *cb, void *context,
				    const char **error_r)
{
	return catalog_foreach(cat,
			       "SELECT id, hash, store_id, segment, offset, length FROM removals"
			       " WHERE kind IN (3, 4) ORDER BY id",
			       cb, context, error_r);
}

int catalog_messages_at(struct catalog *cat, const struct catalog_loc *loc, catalog_id_cb *cb,
			void *context, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db,
			       "SELECT id FROM messages WHERE store_id = ? AND segment = ? AND"
			       " offset = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "finding messages by record", error_r);
	bind_loc(st, 1, loc);
	int rc, stop = 0;
	while (stop == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		stop = cb(sqlite3_column_int64(st, 0), context);
	catalog_finalize(cat, st);
	if (stop != 0)
		return 0;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "finding messages by record", error_r);
}

int catalog_removals_pending(struct catalog *cat, uint64_t *records_r, uint64_t *bytes_r,
			     const char **error_r)
{
	int64_t v[2] = {0, 0};
	if (catalog_select_ints(cat,
				"SELECT count(*), ifnull(sum(length), 0) FROM removals"
				" WHERE kind <> 4",
				"pending removals", v, 2, error_r) < 0)
		return -1;
	*records_r = (uint64_t)v[0];
	*bytes_r = (uint64_t)v[1];
	return 0;
}

int catalog_foreach_dropped_removal(struct catalog *cat, catalog_record_cb *cb, void *context,
				    const char **error_r)
{
	return catalog_foreach(cat,
			       "SELECT id, hash, store_id, segment, offset, length FROM removals"
			       " WHERE kind <> 4 ORDER BY store_id, segment, offset",
			       cb, context, error_r);
}

int catalog_segment_has_removals(struct catalog *cat, int64_t store_id, uint32_t segment,
				 const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db,
			       "SELECT 1 FROM removals WHERE kind <> 4 AND store_id = ? AND"
			       " segment = ? LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "finding removals", error_r);
	sqlite3_bind_int64(st, 1, store_id);
	sqlite3_bind_int64(st, 2, segment);
	int rc = sqlite3_step(st);
	catalog_finalize(cat, st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : catalog_fail(cat, "finding removals", error_r);
}

/* Every table that holds a record location, rewritten through the map in
 * one statement each (the map is keyed by the old offset, so a new offset
 * equal to another record's old one is never rewritten twice). */
static const char *const catalog_loc_tables[] = {"contents", "parts", "messages", "removals"};

static int catalog_segment_map_fill(struct catalog *cat, const uint64_t *old_offsets,
				    const uint64_t *new_offsets, size_t count, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cat->db, "INSERT INTO temp.compact_map VALUES (?, ?)", -1, &st,
			       NULL) != SQLITE_OK)
		return catalog_fail(cat, "mapping moved records", error_r);
	int ret = 0;
	for (size_t i = 0; ret == 0 && i < count; i++) {
		sqlite3_bind_int64(st, 1, (int64_t)old_offsets[i]);
		sqlite3_bind_int64(st, 2, (int64_t)new_offsets[i]);
		ret = catalog_step_done(cat, st, "mapping moved records", error_r);
		sqlite3_reset(st);
	}
	catalog_finalize(cat, st);
	return ret;
}

/* OR FAIL: a constraint error stops the statement where it is instead of
 * undoing it, so SQLite keeps no statement journal (the pages as they were
 * before the statement, to undo it alone). With temp_store = MEMORY that
 * journal was in memory, a copy of every page the UPDATE touched: the
 * segment rewrite of a 1,000,000-message instance peaked at 508 MB of RSS
 * with it, 133 MB without. The caller rolls the whole transaction back on
 * any error. */
static int catalog_segment_map_apply(struct catalog *cat, int64_t store_id, uint32_t segment,
				     const char **error_r)
{
	int ret = 0;
	for (size_t i = 0;
	     ret == 0 && i < sizeof(catalog_loc_tables) / sizeof(catalog_loc_tables[0]); i++) {
		const char *sql = tstr_printf(
			"UPDATE OR FAIL %s SET offset ="
			" (SELECT new FROM temp.compact_map WHERE old = %s.offset)"
			" WHERE store_id = ? AND segment = ? AND offset IN"
			" (SELECT old FROM temp.compact_map)%s",
			catalog_loc_tables[i], catalog_loc_tables[i],
			strcmp(catalog_loc_tables[i], "removals") == 0 ? " AND kind = 4" : "");
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL) != SQLITE_OK)
			return catalog_fail(cat, "moving record locations", error_r);
		sqlite3_bind_int64(st, 1, store_id);
		sqlite3_bind_int64(st, 2, segment);
		ret = catalog_step_done(cat, st, "moving record locations", error_r);
		catalog_finalize(cat, st);
	}
	return ret;
}

int catalog_segment_compacted(struct catalog *cat, int64_t store_id, uint32_t segment,
			      const uint64_t *old_offsets, const uint64_t *new_offsets,
			      size_t count, const char **error_r)
{
	if (catalog_exec(cat,
			 "CREATE TEMP TABLE IF NOT EXISTS compact_map (old INTEGER PRIMARY KEY,"
			 "  new INTEGER NOT NULL); DELETE FROM temp.compact_map;",
			 error_r) < 0 ||
	    catalog_segment_map_fill(cat, old_offsets, new_offsets, count, error_r) < 0 ||
	    catalog_segment_map_apply(cat, store_id, segment, error_r) < 0)
		return -1;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    cat->db,
		    "DELETE FROM removals WHERE kind <> 4 AND store_id = ? AND segment = ?", -1,
		    &st, NULL) != SQLITE_OK)
		return catalog_fail(cat, "forgetting removals", error_r);
	sqlite3_bind_int64(st, 1, store_id);
	sqlite3_bind_int64(st, 2, segment);
	int ret = catalog_step_done(cat, st, "forgetting removals", error_r);
	catalog_finalize(cat, st);
	return ret;
}

int catalog_defer_checkpoints(struct catalog *cat, const char **error_r)
{
	return catalog_exec(cat, "PRAGMA wal_autocheckpoint = 0;", error_r);
}

void catalog_resume_checkpoints(struct catalog *cat)
{
	const char *error;
	(void)catalog_exec(cat, "PRAGMA wal_autocheckpoint = " CATALOG_WAL_AUTOCHECKPOINT ";",
			   &error);
}

int catalog_scrub(struct catalog *cat, const char **error_r)
{
	/* VACUUM rewrites the file without its free pages (where deleted rows
	 * stayed); the checkpoint after it empties the WAL, which held the
	 * pages as they were before. No checkpoint runs before it (see
	 * catalog_defer_checkpoints()): VACUUM rewrites every page the
	 * optimize and the compaction's commits wrote, and a checkpoint copies
	 * a page from the WAL into the file by decrypting and encrypting it
	 * again (its file and offset are its associated data), so copying
	 * those pages first was work thrown away (a quarter of the scrub).
	 * The WAL grows to about the index plus the catalog meanwhile; the
	 * checkpoint truncates it.
	 *
	 * VACUUM first copies the catalog into a transient database. With
	 * temp_store = MEMORY that copy was all in memory: as large as the
	 * catalog (267 MB of RSS for corpus A's 136 MB catalog), so a large
	 * instance's compaction could exhaust its host. With FILE it is a
	 * file, encrypted and unlinked (catalog-vfs.h), and only its cache
	 * (the catalog's cache size) is in memory. */
	int ret = catalog_defer_checkpoints(cat, error_r) < 0
			  ? -1
			  : catalog_exec(cat,
					 CATALOG_SCRUB_CACHE_PRAGMA
					 "; PRAGMA temp_store = FILE;"
					 " INSERT INTO fts (fts) VALUES ('optimize'); VACUUM;",
					 error_r);
	const char *error;
	/* back to memory whatever happened: no other temporary file may
	 * open (catalog-vfs.c refuses them) */
	if (catalog_exec(cat, "PRAGMA temp_store = MEMORY; " CATALOG_CACHE_PRAGMA ";", &error) <
		    0 &&
	    ret == 0) {
		*error_r = error;
		ret = -1;
	}
	if (ret == 0)
		ret = catalog_exec(cat, "PRAGMA wal_checkpoint(TRUNCATE);", error_r);
	catalog_resume_checkpoints(cat);
	return ret;
}
