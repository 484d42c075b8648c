#ifndef COFFER_HOST_JOURNAL_H
#define COFFER_HOST_JOURNAL_H
/* host-journal: the journal receiver of an Instance Host (docs/sources.md,
 * "Journal receiver"): SMTP and LMTP listeners that take journal copies
 * for the instances this host carries and have them archived.
 *
 * Settings: <config-dir>/journal.json (`coffer config journal`, or the
 * Management API through host_journal_request()), read at start; no file,
 * no listeners. Changes through the API apply at once and are saved.
 * Each recipient is mapped to an instance (by its exact address, else its
 * domain) and, by that instance's process (JournalResolve), to a user: the
 * one the instance's recipients map names, else the one with that email
 * address, else the instance's catch-all user, else refused (550).
 *
 * Durability: the message is written as it arrives to a spool file in each
 * recipient instance's base directory (<base>/journal-spool/), then the
 * instance archives it for all its recipients' users at once
 * (JournalDeliver) and removes the file once committed. Only then is the
 * message answered 250 (SMTP: every instance committed; LMTP: per
 * recipient, once its instance committed). Any failure, a killed instance
 * process included, is answered 451 and the file removed: the client
 * retries, and an owner that already holds the message is not given it
 * twice (the archive's deduplication).
 *
 * Nothing here waits: instances are called asynchronously, so a slow or
 * dead instance delays only the transactions that have recipients there. */
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct json;
struct rpc_conn;
struct host_instances;
struct tls_context;
struct host_journal;

/* 0 with *journal_r (without journal.json: no listeners), -1 with *error_r
 * (bad settings, a port that cannot be bound). tls: the host's certificate
 * for STARTTLS (borrowed, may be NULL: no STARTTLS). */
int host_journal_create(struct event_base *base, const char *config_dir,
			struct host_instances *instances, struct tls_context *tls,
			struct host_journal **journal_r, const char **error_r);
void host_journal_destroy(struct host_journal **journal);

/* The Management Server's calls: GetJournal, SetJournal {settings},
 * SetJournalAuthUser {userName, password}, DeleteJournalAuthUser
 * {userName}, GetJournalInstance {instanceID}, SetJournalInstance
 * {instanceID, addresses, domains, recipients, unknownRecipients,
 * catchAllUser}. Answers and returns true when `method` is one of them. */
bool host_journal_request(struct host_journal *j, struct rpc_conn *conn, uint32_t id,
			  const char *method, const struct json *args);

#endif
