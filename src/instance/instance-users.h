#ifndef COFFER_INSTANCE_USERS_H
#define COFFER_INSTANCE_USERS_H
/* instance-users: the users of one instance.
 *
 * Stored in <base>/users.sealed: one JSON document sealed (AEAD) under a
 * subkey of the instance key, written atomically. Each user has a user name
 * (unique regardless of case), full name, email addresses, privileges
 * (admin, login, archive, export, delete), login privileges (web, imap,
 * api), rights per folder (read, write, delete), an Argon2id password hash,
 * optionally TOTP MFA, and an archive name: the owner name the archive
 * files the user's mail under. It is fixed at creation, so renaming a user
 * keeps their archive. Secrets never leave this module: listings carry no
 * hashes and no MFA seeds. */
#include <stdbool.h>

struct json;
struct instance_users;

int instance_users_open(const char *base_dir, const char *key_file,
			struct instance_users **users_r, const char **error_r);
void instance_users_close(struct instance_users **users);

/* Handle a user function: 1 done (*result_r may be NULL), -1 failed with
 * *error_r, 0 not a user function. */
int instance_users_call(struct instance_users *users, const char *method,
			const struct json *args, struct json **result_r, const char **error_r);

/* The archive name of a user (borrowed), or NULL. */
const char *instance_users_archive_name(struct instance_users *users, const char *user_name);

#endif
