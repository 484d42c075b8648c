/* instance-rights: privileges and folder rights (see the header). */
#include "instance-rights.h"
#include "instance-users.h"
#include "json.h"
#include "tstr.h"

#include <string.h>
#include <strings.h>

/* What admin brings: every privilege but the login privileges, which say
 * how a user comes in, not what they may do. */
static const char *const rights_all[] = {"login", "archive", "export", "delete", "auditor", NULL};

static bool rights_list_has(const struct json *list, const char *value)
{
	for (size_t i = 0; i < json_count(list); i++) {
		const char *v = json_string_of(json_at(list, i));
		if (v != NULL && strcmp(v, value) == 0)
			return true;
	}
	return false;
}

bool instance_rights_has(const struct json *view, const char *privilege)
{
	const struct json *list = json_get(view, "privileges");
	if (rights_list_has(list, privilege))
		return true;
	if (!rights_list_has(list, "admin"))
		return false;
	for (const char *const *p = rights_all; *p != NULL; p++) {
		if (strcmp(*p, privilege) == 0)
			return true;
	}
	return false;
}

/* One path segment of `a` and `b` equal; the first may be INBOX in any case
 * (IMAP's INBOX is case-insensitive, and so is the archive's). */
static bool rights_segment_equal(const char *a, size_t alen, const char *b, size_t blen, bool first)
{
	if (alen != blen)
		return false;
	if (first && alen == 5 && strncasecmp(a, "INBOX", 5) == 0)
		return strncasecmp(b, "INBOX", 5) == 0;
	return strncmp(a, b, alen) == 0;
}

/* Whether the folder-rights key covers owner/path: the key names the whole
 * archive ("OWNER"), the folder itself or a folder above it. */
static bool rights_key_covers(const char *key, const char *owner, const char *path)
{
	const char *slash = strchr(key, '/');
	size_t olen = slash == NULL ? strlen(key) : (size_t)(slash - key);
	if (olen != strlen(owner) || strncmp(key, owner, olen) != 0)
		return false;
	if (slash == NULL || slash[1] == '\0')
		return true;
	const char *k = slash + 1, *p = path;
	for (bool first = true;; first = false) {
		size_t klen = strcspn(k, "/"), plen = strcspn(p, "/");
		if (!rights_segment_equal(k, klen, p, plen, first))
			return false;
		if (k[klen] == '\0')
			return p[plen] == '\0' || p[plen] == '/';
		if (p[plen] == '\0')
			return false;
		k += klen + 1;
		p += plen + 1;
	}
}

static bool rights_granted(const struct json *view, const char *owner, const char *path,
			   const char *right)
{
	const struct json *rights = json_get(view, "folderRights");
	for (void *it = json_iter(rights); it != NULL; it = json_iter_next(rights, it)) {
		if (rights_key_covers(json_iter_key(it), owner, path) &&
		    rights_list_has(json_iter_value(it), right))
			return true;
	}
	return false;
}

bool instance_rights_folder(const struct json *view, const char *owner, const char *path,
			    const char *right)
{
	if (view == NULL || owner == NULL || path == NULL)
		return false;
	const char *own = json_get_string(view, "archiveName");
	bool mine = own != NULL && strcmp(own, owner) == 0;
	if (strcmp(right, "read") == 0)
		return mine || instance_rights_has(view, "auditor") ||
		       instance_rights_has(view, "admin") ||
		       rights_granted(view, owner, path, right);
	if (strcmp(right, "write") == 0)
		return instance_rights_has(view, "archive") &&
		       (mine || instance_rights_has(view, "admin") ||
			rights_granted(view, owner, path, right));
	if (strcmp(right, "delete") == 0)
		return instance_rights_has(view, "delete") &&
		       (instance_rights_has(view, "admin") ||
			rights_granted(view, owner, path, right));
	return false;
}

bool instance_rights_reads_others(const struct json *view)
{
	if (instance_rights_has(view, "auditor"))
		return true;
	const char *own = json_get_string(view, "archiveName");
	const struct json *rights = json_get(view, "folderRights");
	for (void *it = json_iter(rights); it != NULL; it = json_iter_next(rights, it)) {
		const char *key = json_iter_key(it);
		size_t olen = strcspn(key, "/");
		bool other = own == NULL || olen != strlen(own) || strncmp(key, own, olen) != 0;
		if (other && rights_list_has(json_iter_value(it), "read"))
			return true;
	}
	return false;
}

struct json *instance_rights_effective(const struct json *view)
{
	struct json *list = json_new_array();
	for (const char *const *p = rights_all; *p != NULL; p++) {
		if (instance_rights_has(view, *p))
			json_append(list, json_new_string(*p));
	}
	if (instance_rights_has(view, "admin"))
		json_append(list, json_new_string("admin"));
	return list;
}

static int rights_refuse(const char **code_r, const char **error_r, const char *code,
			 const char *error)
{
	*code_r = code;
	*error_r = error;
	return -1;
}

int instance_rights_client_call(const struct json *view, const char *service, const char *privilege,
				const char **code_r, const char **error_r)
{
	if (view == NULL ||
	    (service != NULL && !rights_list_has(json_get(view, "loginPrivileges"), service)))
		return rights_refuse(code_r, error_r, "auth-failed",
				     "the session has ended: log in again");
	if (privilege != NULL && !instance_rights_has(view, privilege))
		return rights_refuse(code_r, error_r, "forbidden",
				     tstr_printf("this needs the %s privilege", privilege));
	return 0;
}

int instance_rights_data_call(struct instance_users *users, const char *privilege,
			      const struct json *args, const char **owner_r, const char **error_r)
{
	const char *user = json_get_string(args, "userName");
	*owner_r = user == NULL || users == NULL ? NULL : instance_users_archive_name(users, user);
	if (*owner_r == NULL)
		return 0;
	const char *target = json_get_string(args, "archive");
	const char *folder = json_get_string(args, "folder");
	if (target != NULL && (target[0] == '\0' || strchr(target, '/') != NULL)) {
		*error_r = "archive: the archive name of a user (as GetChildFolders lists it)";
		return -1;
	}
	if (target != NULL)
		*owner_r = target;
	if (folder == NULL || folder[0] == '\0')
		folder = "Import"; /* the import's default folder */
	struct json *view = instance_users_rights_view(users, user);
	bool has = privilege == NULL || instance_rights_has(view, privilege);
	bool ok = instance_rights_folder(view, *owner_r, folder, "write");
	json_unref(&view);
	if (!ok) {
		*error_r = !has ? tstr_printf("user '%s' lacks the %s privilege", user, privilege)
				: tstr_printf("user '%s' has no write right on '%s/%s'", user,
					      *owner_r, folder);
		return -1;
	}
	return 0;
}
