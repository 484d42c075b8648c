#ifndef COFFER_INSTANCE_USERS_H
#define COFFER_INSTANCE_USERS_H
/* instance-users: the users of one instance.
 *
 * Stored in the instance's catalog (schema 11, docs/storage.md), encrypted
 * page by page: a change writes that user's rows in one transaction, and
 * every user is kept in memory (by name) from the catalog's rows read once
 * at open. An instance that still has <base>/users.sealed (the one sealed
 * JSON document of earlier versions) moves its users in at open and
 * removes the file after the commit. SyncUsers writes a directory of users
 * in one transaction. Each user has a user name
 * (unique regardless of case), full name, email addresses, privileges
 * (admin, login, archive, export, delete), login privileges (web, imap,
 * api), rights per folder (read, write, delete), an Argon2id password hash,
 * optionally TOTP MFA, and an archive name: the owner name the archive
 * files the user's mail under. It is fixed at creation, so renaming a user
 * keeps their archive. Secrets never leave this module: listings carry no
 * hashes and no MFA seeds. */
#include <stdbool.h>

struct hash;

struct instance_call;
struct json;
struct instance_users;

int instance_users_open(const char *base_dir, const char *key_file, struct instance_users **users_r,
			const char **error_r);
void instance_users_close(struct instance_users **users);
/* Keep the users (read from the catalog at open) and let go of the catalog:
 * a frozen instance must not touch its base directory (SQLite's -wal and
 * -shm files appear while a catalog is open). Every change then fails
 * with "frozen" until the users are closed and opened again. */
void instance_users_release_catalog(struct instance_users *users);

/* The administrator's calls (docs/protocol.md), each a handler of its own
 * row in the instance's call table (instance-calls.h), run with
 * call->inst->users open. A change is committed to the catalog before
 * memory follows; refused or failed, the user stays as it was. Each
 * answers with the user's view (userName etc., no secrets), except
 * GetUsers (every user, in the order they were made), DeleteUser (no
 * result), SyncUsers ({usersCreated, usersUpdated, usersUnchanged,
 * usersDeleted}) and InitializeMFA ({secret, uri, qrCodeSvg}). */
int instance_users_get_users(struct instance_call *call);
int instance_users_get_user_info(struct instance_call *call);
int instance_users_create_user(struct instance_call *call);
int instance_users_delete_user(struct instance_call *call);
int instance_users_sync_users(struct instance_call *call);
int instance_users_set_user_password(struct instance_call *call);
int instance_users_set_user_full_name(struct instance_call *call);
int instance_users_set_user_email_addresses(struct instance_call *call);
int instance_users_set_user_privileges(struct instance_call *call);
int instance_users_set_user_login_privileges(struct instance_call *call);
int instance_users_set_user_privileges_on_folder(struct instance_call *call);
int instance_users_rename_user(struct instance_call *call);
int instance_users_initialize_mfa(struct instance_call *call);
int instance_users_disable_mfa(struct instance_call *call);

/* The archive name of a user (borrowed), or NULL. */
const char *instance_users_archive_name(struct instance_users *users, const char *user_name);

/* The user with this email address (any case), borrowed name, or NULL.
 * A scan of every user: called once per journal recipient. */
const char *instance_users_find_by_address(struct instance_users *users, const char *address);
/* A snapshot for a thread that routes messages by recipient: every user's
 * email addresses (ASCII lower case) to the user's archive name (strings
 * owned by the table; instance_users_address_map_free()). */
struct hash *instance_users_address_map(struct instance_users *users);
void instance_users_address_map_free(struct hash **map);

/* ---- end users (Client* calls) ---- */

/* What a logged-in user's session needs: {userName, fullName,
 * emailAddresses, privileges, loginPrivileges, auditor, mfaEnabled,
 * archiveName, folderRights, effectivePrivileges, readsOtherArchives};
 * NULL if the user does not exist or may not log in (instance-rights.h
 * says what each privilege and right allows). */
struct json *instance_users_client_view(struct instance_users *users, const char *user_name);
/* The same whether or not the user may log in (for calls made for them). */
struct json *instance_users_rights_view(struct instance_users *users, const char *user_name);

/* A login for `service` ("web", "imap", "api") is checked in three steps,
 * so that the Argon2id part runs off the event loop:
 * - prepare (loop): copies what the check needs (the password and the
 *   user's hashes; for an unknown user, a dummy hash of the same cost, so
 *   timing does not tell which names exist). NULL: refused without a check
 *   (empty or over-long password).
 * - run (any thread): the Argon2id verifications; touches only the check.
 * - finish (loop): 1 with *view_r, 0 refused with *code_r "auth-failed" (one
 *   text whatever was wrong) or "mfa-required" (web, password right, MFA on,
 *   no code), -1 on an error saving the used TOTP step. The user is looked
 *   up again: a password changed, a user deleted or a privilege removed
 *   during the check refuses. With MFA on, imap and api take app passwords
 *   only; a TOTP code is accepted once (the used step is saved if
 *   `persist`; a frozen instance keeps it in memory). */
struct instance_users_check;
struct instance_users_check *instance_users_login_prepare(struct instance_users *users,
							  const char *user_name,
							  const char *password,
							  const char *service);
void instance_users_check_run(struct instance_users_check *check);
int instance_users_login_finish(struct instance_users *users,
				const struct instance_users_check *check, const char *totp,
				bool persist, struct json **view_r, const char **code_r,
				const char **error_r);
void instance_users_check_free(struct instance_users_check **check);

/* The same for an account password that a call carries (changing the
 * password, MFA, app passwords): prepare on the loop, run on a worker,
 * then instance_users_account_checked() keeps the outcome so that the call
 * run next with that name and password uses it instead of Argon2id on the
 * loop; instance_users_account_forget() after that call. */
/* new_password (may be NULL): a new account password to hash on the worker
 * as well, once the password matched (ClientSetPassword). */
struct instance_users_check *instance_users_account_prepare(struct instance_users *users,
							    const char *user_name,
							    const char *password,
							    const char *new_password);
void instance_users_account_checked(struct instance_users *users,
				    const struct instance_users_check *check);
void instance_users_account_forget(struct instance_users *users);

/* GetUserAppPasswords {userName}: [{name, created}]; DeleteUserAppPassword
 * {userName, name}: an administrator revokes one (a lost phone). Creating
 * one needs the user's own password, so only the user can (Web Access). */
int instance_users_get_app_passwords(struct instance_call *c);
int instance_users_delete_app_password(struct instance_call *c);

/* App passwords: [{name, created}]; create needs the account password and
 * returns {name, password} (shown once; 96 random bits, kept as a salted
 * SHA-256: a login costs one Argon2id check whatever the user has). */
struct json *instance_users_app_passwords(struct instance_users *users, const char *user_name);
int instance_users_app_password_create(struct instance_users *users, const char *user_name,
				       const char *password, const char *name,
				       struct json **result_r, const char **error_r);
int instance_users_app_password_delete(struct instance_users *users, const char *user_name,
				       const char *name, const char **error_r);

/* An end user's own password and MFA (ClientSetPassword, ClientMfa*):
 * 0 done, -1 refused or failed with *code_r ("forbidden": the password or
 * code given is not right; "bad-request"; "failed": not saved) and
 * *error_r. Changing anything needs the account password, except
 * activating MFA, which needs a code from the secret mfa_begin returned
 * ({secret, uri, qrCodeSvg}, pending until activated). */
int instance_users_change_password(struct instance_users *users, const char *user_name,
				   const char *old_password, const char *new_password,
				   const char **code_r, const char **error_r);
int instance_users_mfa_begin(struct instance_users *users, const char *user_name,
			     const char *password, struct json **result_r, const char **code_r,
			     const char **error_r);
int instance_users_mfa_activate(struct instance_users *users, const char *user_name,
				const char *code, const char **code_r, const char **error_r);
int instance_users_mfa_disable(struct instance_users *users, const char *user_name,
			       const char *password, const char *code, const char **code_r,
			       const char **error_r);

#endif
