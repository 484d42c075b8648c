#ifndef COFFER_ARCHIVE_RETENTION_H
#define COFFER_ARCHIVE_RETENTION_H
/* archive-retention: what may be deleted, and what must be (SPEC §6).
 *
 * Legal holds (the whole instance, or one user archive) and retention
 * policies live in the catalog (schema 12), so they travel with the base
 * directory and survive a rebuild. A policy is a minimum keep time (no
 * message it covers is deleted before it is that old, by anyone) or a
 * maximum keep time (a retention run deletes what it covers once older),
 * each optionally limited to user archives, folders (and the folders below
 * them) and a search query. A message's age is counted from its date (the
 * Date field, or the time it was archived when it has none).
 *
 * archive_retention_rules_load() reads holds and policies once (a query is
 * evaluated once, into the set of message ids it matches), so checking a
 * batch of messages costs one lookup each. A caller deleting messages loads
 * the rules inside its write transaction, so a hold committed before the
 * deletion is always seen. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct catalog;
struct catalog_message_ref;

#define ARCHIVE_RETENTION_DAYS_MAX 36500 /* a hundred years */
#define ARCHIVE_RETENTION_POLICIES_MAX 100

struct archive_policy {
	const char *name;
	bool maximum; /* false: a minimum keep time */
	int64_t days;
	const char *const *users; /* archive names; none: every archive */
	size_t user_count;
	const char *const *folders; /* "PATH" in any archive; none: every folder */
	size_t folder_count;
	const char *query; /* NULL or "": every message */
};

/* Replace every policy (checked first: names, days, queries). */
int archive_retention_set_policies(struct catalog *cat, const struct archive_policy *policies,
				   size_t count, const char **error_r);
/* The policies of a JSON list as SetRetentionPolicies takes it: objects
 * {name, type ("minimum" or "maximum"), days, users, folders, query}; the
 * strings are borrowed from the list, the arrays allocated: free them with
 * archive_retention_policies_parsed_free() (after a failure nothing is
 * left to free). Checked further by archive_retention_set_policies(). */
struct json;
int archive_retention_policies_parse(const struct json *list, struct archive_policy **policies_r,
				     size_t *count_r, const char **error_r);
void archive_retention_policies_parsed_free(struct archive_policy **policies, size_t count);
typedef void archive_policy_cb(const struct archive_policy *policy, void *context);
int archive_retention_policies(struct catalog *cat, archive_policy_cb *cb, void *context,
			       const char **error_r);

/* user NULL: the whole instance. */
int archive_retention_set_hold(struct catalog *cat, const char *user, bool on, const char *reason,
			       int64_t now, const char **error_r);
typedef void archive_hold_cb(const char *user, int64_t since, const char *reason, void *context);
int archive_retention_holds(struct catalog *cat, archive_hold_cb *cb, void *context,
			    const char **error_r);

struct archive_retention_rules;
int archive_retention_rules_load(struct catalog *cat, int64_t now,
				 struct archive_retention_rules **rules_r, const char **error_r);
void archive_retention_rules_free(struct archive_retention_rules **rules);
/* Read the holds again (cheap: a retention run does it in each batch's
 * transaction; the policies and their queries stay as they were). */
int archive_retention_rules_reload_holds(struct catalog *cat, struct archive_retention_rules *rules,
					 const char **error_r);
/* NULL if the message may be deleted now, else why not: "legal hold on
 * ..." or "minimum keep time of policy ... until ..." (tstr). */
const char *archive_retention_blocks(const struct archive_retention_rules *rules,
				     const struct catalog_message_ref *ref);
/* Whether a legal hold (of the instance or of this archive) is on. */
bool archive_retention_held(const struct archive_retention_rules *rules, const char *user);
/* The maximum keep time policy that says the message must go, or NULL. */
const char *archive_retention_expired(const struct archive_retention_rules *rules,
				      const struct catalog_message_ref *ref);
/* The oldest date a maximum keep time lets stay: messages dated before it
 * may be expired (INT64_MIN: no maximum keep time). */
int64_t archive_retention_expiry_bound(const struct archive_retention_rules *rules);

#endif
