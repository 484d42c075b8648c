#ifndef COFFER_INSTANCE_ARCHIVE_H
#define COFFER_INSTANCE_ARCHIVE_H
/* instance-archive: the archive engine inside an instance process.
 *
 * The archive is opened on first use and closed when idle or frozen. Long
 * work (import, verify, rebuild) runs as a job of the instance's one job
 * runner (instance-jobs.h), in a thread of its own: the call answers at once
 * with the jobID, which GetJob follows. An import or a verify owns the
 * writable handle while it runs; meanwhile other calls read through a
 * second, read-only handle and writes are refused. A rebuild replaces the
 * catalog, so archive reads wait for it too. Imports read only below
 * <base>/import/: the process cannot open anything outside its base
 * directory (Landlock), and paths are checked here first so the error says
 * so.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct archive;
struct instance;
struct instance_archive;
struct instance_call;
struct instance_jobs;
struct json;

struct instance_archive *instance_archive_create(const char *base_dir, const char *key_file,
						 struct instance_jobs *jobs);
/* Correct the counts of jobs that the end of an earlier process cut short
 * (an import's archived count, from the catalog). */
void instance_archive_recover(struct instance_archive *ia);
void instance_archive_destroy(struct instance_archive **ia);
/* Close the handles (idle, freeze). Refused (false) while a job runs. */
bool instance_archive_close(struct instance_archive *ia);
bool instance_archive_busy(struct instance_archive *ia);

/* The calls (instance-calls.h). Reads: GetStatistics, Search, GetStores,
 * GetChildFolders, GetFolderStatistics, GetMessages. Writes: CreateStore,
 * SetStoreRequestedState. Jobs, answered with their jobID: StartImport
 * (for the user call->owner names), VerifyStores,
 * RebuildSelectedStoreIndexes. */
int instance_archive_get_statistics(struct instance_call *c);
int instance_archive_search(struct instance_call *c);
int instance_archive_get_stores(struct instance_call *c);
int instance_archive_get_child_folders(struct instance_call *c);
int instance_archive_get_folder_statistics(struct instance_call *c);
int instance_archive_get_messages(struct instance_call *c);
int instance_archive_create_store(struct instance_call *c);
int instance_archive_set_store_requested_state(struct instance_call *c);
int instance_archive_start_import(struct instance_call *c);
int instance_archive_verify(struct instance_call *c);
int instance_archive_rebuild(struct instance_call *c);

/* A handle for reads (end-user calls), valid until the next call into this
 * module; NULL with *error_r if the archive cannot be opened. */
/* The writable handle for a job about to start (a profile's run), which
 * owns it until it ends; NULL with *error_r while another job runs. */
struct archive *instance_archive_for_job(struct instance_archive *ia, const char **error_r);

struct archive *instance_archive_for_reading(struct instance_archive *ia, const char **error_r);
/* The writable handle, refused while a job runs (deletions; a job started
 * right after owns it until it ends, as an import does). */
struct archive *instance_archive_for_writing(struct instance_archive *ia, const char **error_r);

/* Lending the writable handle to a thread of the caller's (the journal's
 * group commit), so that the commit's fsync never blocks the loop. On the
 * loop, instance_archive_lend() gives it (NULL with code and error: a job
 * holds the writer, "busy"; the archive cannot be opened, "failed"). While
 * it is lent, reads go through the read-only handle, as during a job, and
 * whatever needs the writable handle on the loop (a write call, a job's
 * start, closing when idle or frozen) first calls wait(ctx), which must
 * return only once the borrower is done with the handle: the loop waits
 * for at most that one commit, and the handle is back. On the loop, once
 * the borrower is done, instance_archive_give_back() (harmless if the
 * handle was taken back already). */
typedef void instance_archive_wait_fn(void *ctx);
struct archive *instance_archive_lend(struct instance_archive *ia, instance_archive_wait_fn *wait,
				      void *ctx, const char **code_r, const char **error_r);
void instance_archive_give_back(struct instance_archive *ia);

/* File messages (files under the base directory), each for its `owners`
 * (archive names) in `folder`, committed durably before it returns: the
 * content is stored once however many owners (deduplication), and an owner
 * that already holds it in that folder is not given it again. Runs on the
 * calling thread, with the writable handle `a` (lent, see above; the
 * journal files at most 500 at a time on its committer's thread).
 *
 * Several messages filed as one batch: one import, one durable commit (a
 * group commit of journal deliveries that arrived together). -1 with
 * *error_r when none could be (the commit failed); else 0, and each item
 * says its own outcome (ret 0 with its counts; -1 "refused" with why:
 * unreadable, not a message, too large). *error_r is a tstr of the calling
 * thread. */
struct instance_filing {
	const char *path;
	const char *const *owners; /* archive names */
	size_t owner_count;
	/* out */
	int ret;
	unsigned int archived, duplicates;
	char error[256];
};
int instance_archive_file_messages(struct archive *a, struct instance_filing *items, size_t count,
				   const char *folder, uint64_t max_size, const char **error_r);

/* While an import job runs, a message need not wait for it: queued, it is
 * filed through the job's own pipeline (before the job's next message) and
 * committed with its batch; filed() runs on the loop once it is committed
 * (ret 0) or could not be (ret -1 with code and error: the job failed, was
 * cancelled or ended first). 1 queued, 0 no import job takes messages now
 * (the caller answers "busy"). */
struct event_base;
typedef void instance_archive_filed_fn(int ret, unsigned int archived, unsigned int duplicates,
				       const char *code, const char *error, void *ctx);
int instance_archive_file_message_queued(struct instance_archive *ia, struct event_base *base,
					 const char *path, const char *const *owners,
					 size_t owner_count, const char *folder,
					 instance_archive_filed_fn *filed, void *ctx);

/* The same lane for another job that runs a source of its own through
 * archive_source_import() (a profile's run), so that journal messages are
 * not refused while it runs. On the loop, before the job starts:
 * instance_archive_lane_open() (from then on messages are queued in it).
 * On the job's thread: instance_archive_lane_wrap() puts the lane around
 * the job's source and event callback (the import is given *funcs_r, the
 * lane, and instance_archive_lane_event with the lane as its context), and
 * instance_archive_lane_end() after the import. On the loop, once the job
 * is done (or did not start): instance_archive_lane_close() answers what
 * the job did not commit as failed (the sender retries). */
struct instance_lane;
struct archive_source_funcs;
struct archive_import_event;
struct instance_lane *instance_archive_lane_open(struct instance_archive *ia);
void instance_archive_lane_wrap(struct instance_lane *lane,
				const struct archive_source_funcs *inner, void *inner_ctx,
				void (*cb)(const struct archive_import_event *, void *),
				void *cb_ctx, const struct archive_source_funcs **funcs_r);
void instance_archive_lane_event(const struct archive_import_event *ev, void *lane);
void instance_archive_lane_end(struct instance_lane *lane);
void instance_archive_lane_close(struct instance_archive *ia, struct instance_lane **lane);

#endif
