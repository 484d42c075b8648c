#ifndef COFFER_INSTANCE_RIGHTS_H
#define COFFER_INSTANCE_RIGHTS_H
/* instance-rights: what a user may do, decided in one place for every way
 * in (IMAP, Web Access, the client API, the Management API).
 *
 * Everything is read from the user's client view
 * (instance_users_client_view(): privileges, loginPrivileges, archiveName,
 * folderRights), looked up again on every call, so a change takes effect
 * at the next call.
 *
 * Privileges:
 *   login    may log in at all (with one of the login privileges);
 *   web, imap, api (login privileges): which way in; checked at the login
 *            and again on every call that says which way it came;
 *   archive  may file mail into archives (ImportFiles runs for the user);
 *   export   may export a selection of messages (zip, mbox);
 *   delete   may delete messages, where the folder's delete right allows;
 *   auditor  may read every folder of the instance;
 *   admin    every other privilege (not the login privileges), and every
 *            right on every folder.
 *
 * Folder rights are set per folder: the key "OWNER" (a whole user archive)
 * or "OWNER/PATH" (that folder and everything below it), OWNER being the
 * archive name. A user's own archive is readable and writable without a
 * right; nothing is deletable without one. write needs the archive
 * privilege, delete the delete privilege, whatever the folder rights say. */
#include <stdbool.h>

struct instance_users;
struct json;

/* The privilege, directly or through admin. */
bool instance_rights_has(const struct json *view, const char *privilege);

/* The right ("read", "write" or "delete") on the folder owner/path. */
bool instance_rights_folder(const struct json *view, const char *owner, const char *path,
			    const char *right);

/* Whether the user may read any archive but their own (auditor, admin, a
 * folder right on another archive): IMAP lists the other users' namespace. */
bool instance_rights_reads_others(const struct json *view);

/* The privileges in effect (admin expanded), for the view a client gets. */
struct json *instance_rights_effective(const struct json *view);

/* Before a Client* call other than ClientLogin (instance-calls.c): the
 * user's client view must exist (the user has the login privilege), with
 * the login privilege `service` when the caller names one, and with
 * `privilege` (NULL: none needed). 0 allowed, -1 refused with *code_r
 * ("auth-failed", "forbidden") and *error_r. */
int instance_rights_client_call(const struct json *view, const char *service, const char *privilege,
				const char **code_r, const char **error_r);

/* Before a Management Server call that acts for the user args "userName"
 * (ImportFiles' StartImport): `privilege` and the write right on the
 * target folder (args "archive", default the user's own; "folder", default
 * "Import"). 0 allowed or no such user, -1 refused with *error_r. The
 * archive name the call files into is set in *owner_r (NULL: no user, or
 * users == NULL: they could not be opened). */
int instance_rights_data_call(struct instance_users *users, const char *privilege,
			      const struct json *args, const char **owner_r, const char **error_r);

#endif
