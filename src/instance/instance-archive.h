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

/* File one message (a file under the base directory) for each of `owners`
 * (archive names) in `folder`, committed durably before it returns: the
 * content is stored once however many owners (deduplication), and an owner
 * that already holds it in that folder is not given it again. Runs on the
 * calling thread (one message: bounded). Refused ("busy") while a job
 * holds the archive's writer. *archived_r / *duplicates_r count owners. */
int instance_archive_file_message(struct instance_archive *ia, const char *path,
				  const char *const *owners, size_t owner_count, const char *folder,
				  uint64_t max_size, unsigned int *archived_r,
				  unsigned int *duplicates_r, const char **code_r,
				  const char **error_r);

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

#endif
