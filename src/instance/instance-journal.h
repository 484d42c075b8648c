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
 * ({owners, archived, duplicates}); the file is removed after. Refused
 * ("busy") while a job holds the archive's writer, so the client retries.
 *
 * Tests: with COFFER_TEST_JOURNAL_DELAY_MS set, JournalDeliver waits that
 * long after the commit before it answers (blocking the loop), so that a
 * test can kill the process after the commit and before the 250. Never set
 * it in production. */
#define INSTANCE_JOURNAL_FOLDER "Journal"
#define INSTANCE_JOURNAL_SPOOL "journal-spool"

struct instance_call;

int instance_journal_resolve(struct instance_call *call);
int instance_journal_deliver(struct instance_call *call);

#endif
