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
 * ("busy") while a job holds the archive's writer, so the client retries. */
#define INSTANCE_JOURNAL_FOLDER "Journal"
#define INSTANCE_JOURNAL_SPOOL "journal-spool"

struct instance_call;

int instance_journal_resolve(struct instance_call *call);
int instance_journal_deliver(struct instance_call *call);

#endif
