#ifndef COFFER_INSTANCE_RETENTION_H
#define COFFER_INSTANCE_RETENTION_H
/* instance-retention: legal hold, deletion and retention policies in an
 * instance process (SPEC §6; docs/compliance.md).
 *
 * Calls (rows in instance-calls.c, each audited):
 *   GetComplianceConfiguration, SetComplianceConfiguration {legalHold,
 *     userName?, reason?}: the instance's legal hold, or one user's;
 *   DeleteMessage {messageID, reason, userName?}, DeleteMessages {query,
 *     reason, userName?}: all or nothing, refused ("protected") where a
 *     hold or a minimum keep time protects a message; with userName the
 *     user needs the delete privilege and the delete right on each folder;
 *   GetRetentionPolicies, SetRetentionPolicies {policies};
 *   ProcessRetentionPolicies {dryRun?, listLimit?}: a job ("retention") of
 *     the instance's job runner.
 * Holds and policies are read and written through a catalog handle of
 * their own, so a hold can be set while a job (a retention run) holds the
 * archive; the run reads the holds again in each batch's transaction.
 *
 * Schedule: a retention run starts every INSTANCE_RETENTION_PERIOD_SECS
 * (COFFER_TEST_RETENTION_PERIOD_SECS overrides it, for tests) when a
 * maximum keep time exists and no other job runs; it is audited as
 * ProcessRetentionPolicies by "scheduler". */
#define INSTANCE_RETENTION_PERIOD_SECS (24 * 3600)
#define INSTANCE_RETENTION_DELETE_MAX 10000
#define INSTANCE_RETENTION_LIST_MAX 1000

struct instance;
struct instance_call;

void instance_retention_init(struct instance *inst);
void instance_retention_deinit(struct instance *inst);

int instance_retention_get_compliance(struct instance_call *c);
int instance_retention_set_compliance(struct instance_call *c);
int instance_retention_delete_message(struct instance_call *c);
int instance_retention_delete_messages(struct instance_call *c);
int instance_retention_get_policies(struct instance_call *c);
int instance_retention_set_policies(struct instance_call *c);
int instance_retention_process(struct instance_call *c);
/* CompactStore: a job rewriting segments without deleted records. */
int instance_retention_compact(struct instance_call *c);

#endif
