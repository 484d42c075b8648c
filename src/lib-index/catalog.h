#ifndef COFFER_CATALOG_H
#define COFFER_CATALOG_H
/* catalog: the archive's SQLite database (the only module, with vfs.c and
 * the search compiler, that uses SQLite): stores, folders, unique contents
 * with their precomputed IMAP data, large shared parts, folder references
 * (messages), zstd dictionaries, and the FTS5 full-text index.
 *
 * Contract: catalog_open() creates or migrates the schema (versioned with
 * PRAGMA user_version) and runs in WAL mode with synchronous=FULL, so a
 * transaction is durable once catalog_commit() returns 0. Writes happen
 * between catalog_begin() and catalog_commit()/catalog_rollback(). Lookups
 * return 1 (found), 0 (not found) or -1 (error, *error_r set). One catalog
 * object is used by one thread at a time; other processes may read while one
 * writes (WAL). Every statement uses bound parameters. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CATALOG_HASH_LEN 32
#define CATALOG_SCHEMA_VERSION 12

struct catalog;

enum catalog_store_state {
	CATALOG_STORE_CURRENT = 0,
	CATALOG_STORE_NORMAL,
	CATALOG_STORE_WRITE_PROTECTED,
	CATALOG_STORE_DISABLED,
};

struct catalog_store {
	int64_t id;
	char *name;
	enum catalog_store_state state;
	uint32_t tail_segment;
	uint64_t tail_length;
};

struct catalog_loc {
	int64_t store_id;
	uint32_t segment;
	uint64_t offset;
	uint32_t length;
};

struct catalog_content {
	unsigned char hash[CATALOG_HASH_LEN];
	struct catalog_loc loc;
	uint64_t size;
	int64_t date;
	int zone_minutes; /* of the Date header: its day for sent: (search-query.h) */
	const char *from, *to, *cc, *subject;
	const char *body_text, *attachment_names;
	/* precomputed IMAP data (envelope, body structure), opaque here: the
	 * engine stores it compressed */
	const void *imap;
	size_t imap_len;
	bool has_attachment;
	unsigned int defects;
	/* hashes of the PART records the content refers to (already added) */
	const unsigned char (*part_hashes)[CATALOG_HASH_LEN];
	size_t part_count;
};

struct catalog_hit {
	int64_t id;
	int64_t date;
	const char *from, *subject, *folder, *user;
	uint64_t size;
	bool has_attachment; /* computed at ingest (contents.has_attachment) */
	int64_t internal_date;
};

struct catalog_stats {
	uint64_t messages, contents, parts, raw_bytes, stored_bytes;
};

/* What the statements a catalog prepared for its calls read, summed since
 * it was opened (SQLite's counters): rows stepped through in full table
 * scans, and virtual machine steps. Tests use it to show that a call reads
 * an index, not the archive. */
struct catalog_cost {
	uint64_t fullscan_steps, vm_steps;
};
void catalog_cost(struct catalog *cat, struct catalog_cost *cost_r);

const char *catalog_store_state_name(enum catalog_store_state state);
int catalog_store_state_parse(const char *name, enum catalog_store_state *state_r);

/* The database and its WAL are encrypted under `key` (see catalog-vfs.h);
 * opening with another key fails. */
#define CATALOG_KEY_LEN 32
int catalog_open(const char *path, const unsigned char key[CATALOG_KEY_LEN],
		 struct catalog **catalog_r, const char **error_r);
void catalog_destroy(struct catalog **catalog);

int catalog_begin(struct catalog *cat, const char **error_r);
int catalog_commit(struct catalog *cat, const char **error_r);
void catalog_rollback(struct catalog *cat);
/* Many lookups in one read transaction: one snapshot and one lock for all
 * of them instead of one per statement (IMAP FETCH batches). Not inside a
 * write transaction. */
void catalog_read_begin(struct catalog *cat);
/* The same for a read that visits each row once (a FETCH of a whole
 * folder): SQLite's page cache is held to 2 MiB until catalog_read_end(),
 * so such a read does not grow the process by what it read; pages cached
 * above that (a search's) are dropped. */
void catalog_read_begin_scan(struct catalog *cat);
void catalog_read_end(struct catalog *cat);

/* Stores: catalog_stores() fills a mem_alloc()ed array; free with
 * catalog_stores_free(). */
int catalog_stores(struct catalog *cat, struct catalog_store **stores_r, size_t *count_r,
		   const char **error_r);
void catalog_stores_free(struct catalog_store *stores, size_t count);
int catalog_store_add(struct catalog *cat, const char *name, enum catalog_store_state state,
		      int64_t *id_r, const char **error_r);
int catalog_store_set_state(struct catalog *cat, int64_t id, enum catalog_store_state state,
			    const char **error_r);
int catalog_store_set_tail(struct catalog *cat, int64_t id, uint32_t segment, uint64_t length,
			   const char **error_r);
/* Forget a store and everything stored in it (detach). */
int catalog_store_remove(struct catalog *cat, int64_t id, const char **error_r);
int catalog_store_stats(struct catalog *cat, int64_t id, struct catalog_stats *stats_r,
			const char **error_r);

/* zstd dictionaries, by id (1, 2, ...). A dictionary is used from the next
 * content added on; raw_before is how many raw bytes the archive held when it
 * was trained (what the next training's spacing is based on). */
int catalog_dict_add(struct catalog *cat, uint32_t id, const void *data, size_t len,
		     uint64_t raw_before, const char **error_r);
/* The latest dictionary's raw_before, and the raw bytes of the contents
 * added since it (both 0 without a dictionary). */
int catalog_dict_usage(struct catalog *cat, uint64_t *raw_before_r, uint64_t *raw_since_r,
		       const char **error_r);
typedef int catalog_dict_cb(uint32_t id, const void *data, size_t len, void *context);
/* The highest dictionary id (0: none). */
int catalog_dict_max_id(struct catalog *cat, uint32_t *id_r, const char **error_r);
/* Every dictionary with an id of at least min_id, in id order; a callback
 * that returns 1 stops the listing (and catalog_dicts() returns 1). */
int catalog_dicts(struct catalog *cat, uint32_t min_id, catalog_dict_cb *cb, void *context,
		  const char **error_r);

int catalog_content_find(struct catalog *cat, const unsigned char hash[CATALOG_HASH_LEN],
			 int64_t *id_r, const char **error_r);
int catalog_content_add(struct catalog *cat, const struct catalog_content *content, int64_t *id_r,
			const char **error_r);
int catalog_part_find(struct catalog *cat, const unsigned char hash[CATALOG_HASH_LEN],
		      struct catalog_loc *loc_r, const char **error_r);
int catalog_part_add(struct catalog *cat, const unsigned char hash[CATALOG_HASH_LEN],
		     const struct catalog_loc *loc, uint64_t size, const char **error_r);
/* Files a content in a user's folder: 1 if added, 0 if that folder already
 * holds it (imports are idempotent). */
int catalog_message_add(struct catalog *cat, int64_t content_id, const char *user,
			const char *folder, int64_t date, int64_t internal_date,
			const struct catalog_loc *loc, int64_t *id_r, const char **error_r);
/* Whether a user's folder already holds a content (1, with its message id). */
int catalog_message_find(struct catalog *cat, int64_t content_id, const char *user,
			 const char *folder, int64_t *id_r, const char **error_r);
/* The precomputed IMAP blob of a message's content (mem_free). */
int catalog_message_imap(struct catalog *cat, int64_t message_id, void **imap_r, size_t *len_r,
			 const char **error_r);
/* The content record of a message (and its hash). */
int catalog_message_content(struct catalog *cat, int64_t message_id,
			    unsigned char hash_r[CATALOG_HASH_LEN], struct catalog_loc *loc_r,
			    const char **error_r);

/* Search (query language in search-query.h): newest first; *total_r gets
 * the number of matches; cb is called for each message of the page. */
typedef void catalog_hit_cb(const struct catalog_hit *hit, void *context);
int catalog_search(struct catalog *cat, const char *query, uint64_t limit, uint64_t offset,
		   uint64_t *total_r, catalog_hit_cb *cb, void *context, const char **error_r);

int catalog_stats(struct catalog *cat, struct catalog_stats *stats_r, const char **error_r);
/* Messages whose content has each defect bit (contents.defects is a set of
 * kinds, named by the engine), and *flagged_r those with any. */
#define CATALOG_DEFECT_BITS 32
int catalog_defect_counts(struct catalog *cat, uint64_t counts_r[CATALOG_DEFECT_BITS],
			  uint64_t *flagged_r, const char **error_r);

/* Where the catalog's bytes go: cb() once per table or index with the bytes of
 * its pages (SQLite's dbstat; FTS5's shadow tables are named fts_*), then once
 * with name "(free)" for unused pages. */
typedef void catalog_space_cb(const char *name, uint64_t bytes, void *context);
int catalog_space(struct catalog *cat, catalog_space_cb *cb, void *context, const char **error_r);

/* Verification helpers. Callbacks return 0 to go on, -1 to stop. */
typedef int catalog_record_cb(int64_t id, const unsigned char hash[CATALOG_HASH_LEN],
			      const struct catalog_loc *loc, void *context);
int catalog_foreach_content(struct catalog *cat, catalog_record_cb *cb, void *context,
			    const char **error_r);
int catalog_foreach_part(struct catalog *cat, catalog_record_cb *cb, void *context,
			 const char **error_r);
/* Message records (the MESSAGE or REF record that filed each message). */
int catalog_foreach_message(struct catalog *cat, catalog_record_cb *cb, void *context,
			    const char **error_r);
/* Messages whose content is `content_id`, or which need part `part_hash`. */
typedef int catalog_id_cb(int64_t message_id, void *context);
int catalog_messages_of_content(struct catalog *cat, int64_t content_id, catalog_id_cb *cb,
				void *context, const char **error_r);
int catalog_messages_of_part(struct catalog *cat, const unsigned char hash[CATALOG_HASH_LEN],
			     catalog_id_cb *cb, void *context, const char **error_r);
/* FTS5 integrity and one index row per content: 0 if consistent, -1 with
 * *error_r describing the first problem. */
int catalog_check_index(struct catalog *cat, const char **error_r);

/* Folders with their message counts and raw sizes, by user and path (the
 * counts the folders table keeps: no message is read). A callback
 * returning non-zero stops the walk. */
struct catalog_folder {
	int64_t id;
	const char *user, *path;
	uint64_t messages, bytes;
};
typedef int catalog_folder_cb(const struct catalog_folder *folder, void *context);
int catalog_folders(struct catalog *cat, catalog_folder_cb *cb, void *context,
		    const char **error_r);
/* The folders of one user (NULL: of everyone), by path, without counting
 * their messages (messages and bytes are 0): from the folders table and its
 * index alone, whatever the archive's size. A callback returning non-zero
 * stops the walk. */
int catalog_folder_list(struct catalog *cat, const char *user, catalog_folder_cb *cb, void *context,
			const char **error_r);
/* A folder's messages, newest first, paged; *total_r counts them all. */
int catalog_folder_messages(struct catalog *cat, int64_t folder_id, uint64_t limit, uint64_t offset,
			    uint64_t *total_r, catalog_hit_cb *cb, void *context,
			    const char **error_r);

/* ---- end-user access ---- */

/* A search limited to some folders (a user's archive, one IMAP folder). */
struct catalog_scope {
	const int64_t *folder_ids;
	size_t folder_count;
};
/* As catalog_search(), within scope (NULL: everything). */
int catalog_search_scoped(struct catalog *cat, const char *query, const struct catalog_scope *scope,
			  uint64_t limit, uint64_t offset, uint64_t *total_r, catalog_hit_cb *cb,
			  void *context, const char **error_r);
/* The ids of every match within scope, ascending (IMAP SEARCH). A callback
 * returning non-zero stops the walk. */
int catalog_search_ids(struct catalog *cat, const char *query, const struct catalog_scope *scope,
		       catalog_id_cb *cb, void *context, const char **error_r);
int catalog_folder_find(struct catalog *cat, const char *user, const char *path,
			int64_t *folder_id_r, const char **error_r);
/* A folder's message ids, ascending (IMAP UIDs); non-zero from cb stops. */
int catalog_folder_ids(struct catalog *cat, int64_t folder_id, catalog_id_cb *cb, void *context,
		       const char **error_r);
/* UIDVALIDITY (fixed when the catalog was made) and the next message id. */
int catalog_imap_ids(struct catalog *cat, uint32_t *uid_validity_r, int64_t *next_id_r,
		     const char **error_r);
struct catalog_message_meta {
	int64_t folder_id;
	char user[256], path[1024];
	uint64_t size;
	int64_t internal_date, date;
	char from[256], subject[256];
	bool has_attachment;
};
/* 1 found, 0 not (or in a disabled store), -1 error. */
int catalog_message_meta(struct catalog *cat, int64_t message_id,
			 struct catalog_message_meta *meta_r, const char **error_r);

/* ---- the instance's users (schema 11) ----
 *
 * One user is written at a time, inside the caller's transaction:
 * catalog_user_put() inserts (id 0; *id is set) or replaces the user's row
 * and every row that belongs to it, by index, so a change costs the same
 * however many users there are. Strings are the caller's. */
struct catalog_user_right {
	const char *folder;
	const char *rights; /* comma-separated: read,write,delete */
};
struct catalog_user_app {
	const char *name, *hash;
	int64_t created;
};
struct catalog_user {
	int64_t id;
	const char *name, *archive_name, *full_name;
	const char *password_hash;          /* NULL: none */
	const char *mfa_state, *mfa_secret; /* NULL: MFA off */
	int64_t mfa_last_step;
	const char *const *emails;
	size_t email_count;
	const char *const *privileges;
	size_t privilege_count;
	const char *const *login_privileges;
	size_t login_privilege_count;
	const struct catalog_user_right *rights;
	size_t right_count;
	const struct catalog_user_app *apps;
	size_t app_count;
};
int catalog_user_put(struct catalog *cat, struct catalog_user *user, const char **error_r);
int catalog_user_delete(struct catalog *cat, int64_t id, const char **error_r);

/* Reading every user back: first one CATALOG_USER_ROW_USER row per user
 * (ascending id, the order they were made in), then the rows that belong
 * to users, each in its user's order. Only the fields of the row's kind
 * are set; strings are valid during the callback. Non-zero from cb stops
 * the walk and is returned. */
enum catalog_user_row_kind {
	CATALOG_USER_ROW_USER,
	CATALOG_USER_ROW_EMAIL,
	CATALOG_USER_ROW_PRIVILEGE,
	CATALOG_USER_ROW_LOGIN_PRIVILEGE,
	CATALOG_USER_ROW_FOLDER_RIGHT,
	CATALOG_USER_ROW_APP_PASSWORD,
};
struct catalog_user_row {
	enum catalog_user_row_kind kind;
	int64_t user_id;
	/* USER: name, archive_name (text), full_name (text2), password_hash
	 * (text3), mfa_state (text4), mfa_secret (text5), mfa_last_step (number);
	 * EMAIL, PRIVILEGE, LOGIN_PRIVILEGE: text; FOLDER_RIGHT: text (folder),
	 * text2 (rights); APP_PASSWORD: text (name), text2 (hash), number
	 * (created) */
	const char *name, *text, *text2, *text3, *text4, *text5;
	int64_t number;
};
typedef int catalog_user_row_cb(const struct catalog_user_row *row, void *context);
int catalog_users_load(struct catalog *cat, catalog_user_row_cb *cb, void *context,
		       const char **error_r);
/* Copy every user row of `from` into `to` (a rebuilt catalog, inside its
 * transaction): users are not in the stores, so a rebuild keeps them this
 * way. */
int catalog_users_copy(struct catalog *from, struct catalog *to, const char **error_r);

/* ---- compliance (schema 12) ----
 *
 * Legal holds: user "" holds the whole instance, any other value the
 * archive of that name. catalog_hold_set() sets (on) or lifts one. */
int catalog_hold_set(struct catalog *cat, const char *user, bool on, int64_t since,
		     const char *reason, const char **error_r);
typedef void catalog_hold_cb(const char *user, int64_t since, const char *reason, void *context);
int catalog_holds(struct catalog *cat, catalog_hold_cb *cb, void *context, const char **error_r);

/* Retention policies, as the engine gives them (archive-retention.c reads
 * them): kind 0 keeps for at least `days`, 1 deletes after `days`; users
 * and folders are newline-separated lists ("" for all), query is in the
 * query language ("" for all). Replaced all at once. */
struct catalog_policy {
	const char *name;
	int kind;
	int64_t days;
	const char *users, *folders, *query;
};
int catalog_policies_replace(struct catalog *cat, const struct catalog_policy *policies,
			     size_t count, const char **error_r);
typedef void catalog_policy_cb(const struct catalog_policy *policy, void *context);
int catalog_policies(struct catalog *cat, catalog_policy_cb *cb, void *context,
		     const char **error_r);

/* A message's folder reference, for deciding whether it may go. */
struct catalog_message_ref {
	int64_t id, content_id, date;
	char user[256], path[1024];
};
/* 1 found, 0 not, -1 error. */
int catalog_message_ref(struct catalog *cat, int64_t message_id, struct catalog_message_ref *ref_r,
			const char **error_r);
/* Messages dated before `before`, oldest first; non-zero from cb stops. */
typedef int catalog_ref_cb(const struct catalog_message_ref *ref, void *context);
int catalog_messages_before(struct catalog *cat, int64_t before, catalog_ref_cb *cb, void *context,
			    const char **error_r);

/* Deletion, inside the caller's transaction. catalog_message_remove()
 * forgets one folder reference (its REF record is recorded for removal):
 * 0 no such message, 1 removed and its content is still referred to, 2
 * removed and nothing refers to its content (*content_id_r) any more: the
 * caller then calls catalog_content_remove() with the values the content
 * was indexed with (derived again from the message), which drops its index
 * row, its row, and the parts no other content needs, recording their
 * records for removal. The records stay in the segments until a compaction
 * (catalog_removals_pending() counts them). */
int catalog_message_remove(struct catalog *cat, int64_t message_id, int64_t now,
			   int64_t *content_id_r, const char **error_r);
int catalog_content_record(struct catalog *cat, int64_t content_id,
			   unsigned char hash_r[CATALOG_HASH_LEN], struct catalog_loc *loc_r,
			   const char **error_r);
int catalog_content_remove(struct catalog *cat, int64_t content_id,
			   const struct catalog_content *indexed, int64_t now,
			   const char **error_r);
/* Records deleted messages left behind (verify knows them: not strays). */
int catalog_foreach_removal(struct catalog *cat, catalog_record_cb *cb, void *context,
			    const char **error_r);
/* The records of deleted folder references (a REF, or the MESSAGE record
 * a content was stored in, which stays while other folders use it),
 * oldest deletion first; and the messages filed by one record (a
 * rebuilt catalog: to delete again what was deleted). */
int catalog_foreach_removed_message(struct catalog *cat, catalog_record_cb *cb, void *context,
				    const char **error_r);
int catalog_messages_at(struct catalog *cat, const struct catalog_loc *loc, catalog_id_cb *cb,
			void *context, const char **error_r);
int catalog_removals_pending(struct catalog *cat, uint64_t *records_r, uint64_t *bytes_r,
			     const char **error_r);

/* Compaction (archive-compact.c). The removals whose records a compaction
 * drops (all but kind 4), ordered by store, segment and offset. */
int catalog_foreach_dropped_removal(struct catalog *cat, catalog_record_cb *cb, void *context,
				    const char **error_r);
/* 1 if records of this segment still wait for a compaction, 0 if not. */
int catalog_segment_has_removals(struct catalog *cat, int64_t store_id, uint32_t segment,
				 const char **error_r);
/* Inside the caller's transaction: the kept records of a rewritten segment
 * moved from old_offsets[i] to new_offsets[i], and its dropped records are
 * no longer waiting for removal. */
int catalog_segment_compacted(struct catalog *cat, int64_t store_id, uint32_t segment,
			      const uint64_t *old_offsets, const uint64_t *new_offsets,
			      size_t count, const char **error_r);
/* A compaction's commits and its scrub write pages that the scrub's VACUUM
 * rewrites: catalog_defer_checkpoints() stops the automatic WAL checkpoints
 * until catalog_scrub() (or catalog_resume_checkpoints() if the compaction
 * stops early), so that no page is copied into the file only to be replaced. */
int catalog_defer_checkpoints(struct catalog *cat, const char **error_r);
void catalog_resume_checkpoints(struct catalog *cat);
/* Outside a transaction: merge the full-text index into one segment,
 * VACUUM and checkpoint the WAL (truncating it), so that deleted rows
 * leave the index, the free pages and the WAL; resumes the checkpoints. */
int catalog_scrub(struct catalog *cat, const char **error_r);

#endif
