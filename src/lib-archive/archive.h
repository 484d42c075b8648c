#ifndef COFFER_ARCHIVE_H
#define COFFER_ARCHIVE_H
/* archive: the archive engine of one instance, on its base directory:
 *   <base>/catalog.db      SQLite catalog and full-text index (lib-index)
 *   <base>/stores/NAME/    archive stores of encrypted segments (lib-store)
 *   <base>/key-check       proves a key file belongs to this base directory
 *   <base>/lock            held by the one writer (imports, rebuild, stores)
 * The instance key lives OUTSIDE the base directory (a key file whose path
 * the caller gives), so a copy of the base directory alone reveals no mail
 * (see docs/storage.md).
 *
 * Contract: archive_open() checks the key against the base directory (or,
 * with `create`, initialises both), opens the catalog and cuts every
 * writable store back to its committed tail, so records written after the
 * last durable commit (a crash) are dropped: they were never reported. A
 * message counts as archived only once its records are fsynced and the
 * catalog transaction that references them has committed. Functions return
 * -1 with *error_r, 0 on success, and 1/0 for found/not found where stated.
 * One archive object is used by one thread at a time (the import runs its
 * own worker threads inside). */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARCHIVE_STORE_MAX_DEFAULT (16ull * 1024 * 1024 * 1024)

struct archive;
struct catalog;
struct str;

struct archive_settings {
	const char *base_dir;
	const char *key_file;
	bool create;             /* create the base directory and the key file if missing */
	bool write;              /* take the writer lock */
	uint64_t store_max_size; /* start a new current store past this; 0 = default */
	uint64_t segment_max;    /* 0 = default */
};

/* The instance key file: 64 hex digits and a newline, mode 0600. It is kept
 * outside the base directory (see docs/storage.md). */
int archive_key_file_read(const char *path, unsigned char key_r[32], const char **error_r);
int archive_key_file_create(const char *path, const char **error_r);

/* The catalog of a base directory on its own (the instance's users live
 * there), created if there is none yet; refused if it is missing while
 * stores exist (a rebuild makes it again). The caller destroys it. */
struct catalog;
int archive_catalog_open(const char *base_dir, const char *key_file, struct catalog **catalog_r,
			 const char **error_r);

int archive_open(const struct archive_settings *set, struct archive **archive_r,
		 const char **error_r);
void archive_destroy(struct archive **archive);

/* The raw bytes of a message, exactly as archived: 1 found, 0 no such
 * message, -1 error (including damage: the hash is checked on every read). */
int archive_read_message(struct archive *archive, int64_t message_id, unsigned char **data_r,
			 size_t *len_r, const char **error_r);

/* The IMAP data of a message (mime-imap.c), computed at ingest: ENVELOPE,
 * BODYSTRUCTURE, BODY and RFC822.SIZE (the size of the CRLF form). For a
 * message archived before this data was corrected (its record lacks the
 * version tag) it is derived again from the message on each read; `coffer
 * rebuild` stores it for good. 1 found, 0 not found, -1 error; free with
 * archive_imap_free(). */
struct archive_imap {
	char *envelope, *bodystructure, *body;
	uint64_t size;
};
#define ARCHIVE_IMAP_TAG "2:"
int archive_message_imap(struct archive *archive, int64_t message_id, struct archive_imap *imap,
			 const char **error_r);
void archive_imap_free(struct archive_imap *imap);

/* Where a message's content record lives: "store-NNNN/seg-NNNNNN OFFSET
 * LENGTH" (for operators and tests). 1 found, 0 not found, -1 error. */
int archive_message_location(struct archive *archive, int64_t message_id, struct str *out,
			     const char **error_r);

struct archive_hit {
	int64_t id;
	int64_t date;
	const char *from, *subject, *user, *folder;
	uint64_t size;
};
typedef void archive_hit_cb(const struct archive_hit *hit, void *context);
int archive_search(struct archive *archive, const char *query, uint64_t limit, uint64_t offset,
		   uint64_t *total_r, archive_hit_cb *cb, void *context, const char **error_r);

/* Folders: (user, path, messages, raw bytes) for each folder, by user and path. */
struct archive_folder {
	const char *user, *path;
	uint64_t messages, bytes;
};
typedef void archive_folder_cb(const struct archive_folder *folder, void *context);
int archive_folders(struct archive *archive, archive_folder_cb *cb, void *context,
		    const char **error_r);
/* A user's folder's messages, newest first, paged: 1 with *total_r, 0 if
 * there is no such folder, -1 on error. */
int archive_folder_messages(struct archive *archive, const char *user, const char *path,
			    uint64_t limit, uint64_t offset, uint64_t *total_r, archive_hit_cb *cb,
			    void *context, const char **error_r);

/* JSON: {"messages":..,"unique_contents":..,"shared_parts":..,"raw_bytes":..,
 * "stored_bytes":..,"catalog_bytes":..,"stores":[{"name":..,"state":..,...}],
 * "catalog_space":{"<table or index>":bytes,...,"(free)":bytes}} */
int archive_stats_json(struct archive *archive, struct str *out, const char **error_r);

/* Problems found by verify and rebuild, one line each, for the caller to print. */
typedef void archive_report_cb(const char *line, void *context);
/* Returns the number of problems (0 = clean), or -1 if verify could not run. */
int archive_verify(struct archive *archive, archive_report_cb *cb, void *context,
		   const char **error_r);

/* Long work (verify, rebuild) tells how far it got and can be stopped.
 * `progress` (may be NULL) is called from the working thread now and then
 * with `done` of `total` units (total may grow a little; done never goes
 * back). When `cancel` (may be NULL) becomes true, from any thread, the work
 * stops soon and returns -1 with "cancelled", having changed nothing that
 * the work would not have changed anyway (a cancelled rebuild keeps the old
 * catalog). */
typedef void archive_progress_cb(uint64_t done, uint64_t total, void *context);
struct archive_work {
	archive_report_cb *report;
	archive_progress_cb *progress;
	void *context; /* for both callbacks */
	const atomic_bool *cancel;
};
int archive_verify_work(struct archive *archive, const struct archive_work *work,
			const char **error_r);

/* The catalog, for read-only lookups that end-user access needs
 * (catalog.h: scoped searches, folder ids, message metadata). Borrowed. */
struct catalog *archive_catalog(struct archive *archive);

/* Stores. */
int archive_store_list(struct archive *archive, archive_report_cb *cb, void *context,
		       const char **error_r);
int archive_store_new(struct archive *archive, const char **error_r);
int archive_store_set_state(struct archive *archive, const char *name, const char *state,
			    const char **error_r);
int archive_store_detach(struct archive *archive, const char *name, const char **error_r);
/* Attach a store directory already under <base>/stores/ (e.g. copied back
 * from a backup): its records are read into the catalog. */
int archive_store_attach(struct archive *archive, const char *name, archive_report_cb *cb,
			 void *context, const char **error_r);

/* Rebuild the catalog and index of a base directory from its segments
 * alone. Damaged records are reported and skipped. The archive must not be
 * open; returns the number of damaged records, or -1. */
int archive_rebuild(const struct archive_settings *set, archive_report_cb *cb, void *context,
		    const char **error_r);
int archive_rebuild_work(const struct archive_settings *set, const struct archive_work *work,
			 const char **error_r);

#endif
