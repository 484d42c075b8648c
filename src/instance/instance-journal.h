#ifndef COFFER_INSTANCE_JOURNAL_H
#define COFFER_INSTANCE_JOURNAL_H
/* instance-journal: the instance's side of the journal receiver that the
 * Instance Host runs (docs/sources.md, "Journal receiver"; the calls in
 * docs/protocol.md).
 *
 * JournalResolve {address, catchAllUser?}: the user that takes mail for a
 * recipient: the one with that email address, else the catch-all user;
 * {userName, archiveName}, or error "no-such-user".
 *
 * JournalDeliver {file, owners}: archive <base>/journal-spool/<file> (which
 * the Instance Host wrote) for each owner (archive names) in their folder
 * INSTANCE_JOURNAL_FOLDER, durably committed before the answer
 * ({owners, archived, duplicates}); the file is removed after. Deliveries
 * that arrive together are committed together (one fsync), on a thread of
 * their own (the loop goes on meanwhile; reads use the read-only handle, a
 * write on the loop waits for that one commit). While a job holds the
 * archive's writer, a delivery goes through the job's pipeline if it takes
 * messages (an import, a profile's run), else it waits for the job to end,
 * unanswered, for up to 90 s, then is refused ("busy") so that the client
 * retries.
 *
 * Tests: with COFFER_TEST_JOURNAL_DELAY_MS set, JournalDeliver waits that
 * long after the commit before it answers (blocking the loop), so that a
 * test can kill the process after the commit and before the 250. With
 * COFFER_TEST_JOURNAL_COMMIT_DELAY_MS set, each batch's commit holds the
 * archive's writer that much longer, on the committer's thread (the loop
 * goes on answering), so that a test can call the instance meanwhile.
 * COFFER_TEST_JOURNAL_HOLD_SECS replaces the 90 s a delivery waits for a
 * job. Never set any of them in production. */
#define INSTANCE_JOURNAL_FOLDER "Journal"
#define INSTANCE_JOURNAL_SPOOL "journal-spool"

struct instance;
struct instance_call;
struct instance_journal;

/* The journal's batch state of one instance (on its loop). Destroy after
 * the jobs stopped and before the archive and the Instance Host's link:
 * the batch being committed is finished and answered first. */
struct instance_journal *instance_journal_create(struct instance *inst);
void instance_journal_destroy(struct instance_journal **journal);

int instance_journal_resolve(struct instance_call *call);
int instance_journal_deliver(struct instance_call *call);

#endif
