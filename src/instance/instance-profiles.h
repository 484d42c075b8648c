#ifndef COFFER_INSTANCE_PROFILES_H
#define COFFER_INSTANCE_PROFILES_H
/* instance-profiles: where an instance's mail comes from by itself.
 *
 * A profile names a source (an IMAP server today), the mailbox(es) and
 * archive user(s), the folders, when it runs (manually, every N minutes, or
 * continuously with a pause between runs) and whether to delete from the
 * source what was archived. Profiles are kept in <base>/profiles.sealed,
 * sealed under a key derived from the instance key: the credentials never
 * leave the instance process again (no call returns them; GetProfiles says
 * only "hasPassword").
 *
 * A run is a job of kind "profile" in the instance's one job runner
 * (instance-jobs.h): incremental (the source's state, e.g. UIDVALIDITY and
 * UID per folder, is kept sealed in <base>/profile-<ID>.state.sealed and
 * saved after every durably committed batch), counting archived, duplicates
 * and failed messages, each failure with its reason in the job's report.
 * Scheduled runs start from a timer on the event loop when no other job
 * runs and the instance is not frozen.
 *
 * Calls (instance-calls.h): GetProfiles, CreateProfile {profile},
 * SetProfile {profileID, profile}, DeleteProfile {profileID},
 * RunProfile {profileID} (answers with the jobID), GetWorkerResults
 * {profileID?} (the kept runs, newest first), GetWorkerResultReport {jobID}
 * (one run with its report). */
struct event_base;
struct instance;
struct instance_archive;
struct instance_call;
struct instance_jobs;
struct instance_profiles;

struct instance_profiles *instance_profiles_create(struct instance *inst);
void instance_profiles_destroy(struct instance_profiles **profiles);

int instance_profiles_get(struct instance_call *c);
int instance_profiles_create_profile(struct instance_call *c);
int instance_profiles_set(struct instance_call *c);
int instance_profiles_delete(struct instance_call *c);
int instance_profiles_run(struct instance_call *c);
int instance_profiles_results(struct instance_call *c);
int instance_profiles_result_report(struct instance_call *c);

#endif
