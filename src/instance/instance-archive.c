#include "instance-archive.h"
#include "archive-import.h"
#include "archive.h"
#include "json.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct instance_import {
	char *id;
	char *owner, *folder;
	char **paths;
	size_t path_count;
	atomic_bool cancel;
	pthread_t thread;
	pthread_mutex_t lock;
	/* guarded by lock: */
	bool running;
	struct archive_import_result result;
	uint64_t messages, bytes, skipped, archived, duplicates;
	char *error;
	struct str *log;
};

struct instance_archive {
	char *base_dir;
	char *key_file;
	struct archive *archive; /* writable; owned by the import thread while it runs */
	struct archive *reader;  /* read-only, while an import holds the writable one */
	struct instance_import *import;
	unsigned int import_count;
};

struct instance_archive *instance_archive_create(const char *base_dir, const char *key_file)
{
	struct instance_archive *ia = mem_new(struct instance_archive);
	ia->base_dir = mem_strdup(base_dir);
	ia->key_file = mem_strdup(key_file);
	return ia;
}

bool instance_archive_busy(struct instance_archive *ia)
{
	if (ia->import == NULL)
		return false;
	pthread_mutex_lock(&ia->import->lock);
	bool running = ia->import->running;
	pthread_mutex_unlock(&ia->import->lock);
	return running;
}

bool instance_archive_close(struct instance_archive *ia)
{
	if (instance_archive_busy(ia))
		return false;
	archive_destroy(&ia->reader);
	archive_destroy(&ia->archive);
	return true;
}

static int instance_archive_open(struct instance_archive *ia, bool write, struct archive **a_r,
				 const char **error_r)
{
	struct archive_settings set = {
		.base_dir = ia->base_dir,
		.key_file = ia->key_file,
		.create = true,
		.write = write,
	};
	return archive_open(&set, a_r, error_r);
}

/* The handle for a call: the writable one, or (while an import holds it) a
 * read-only one kept until the import has ended. */
static struct archive *instance_archive_get(struct instance_archive *ia, bool write,
					    const char **error_r)
{
	if (instance_archive_busy(ia)) {
		if (write) {
			*error_r = "an import is running: try again when it has finished";
			return NULL;
		}
		/* one read-only handle serves reads for the whole import */
		if (ia->reader == NULL &&
		    instance_archive_open(ia, false, &ia->reader, error_r) < 0)
			return NULL;
		return ia->reader;
	}
	archive_destroy(&ia->reader);
	if (ia->archive == NULL && instance_archive_open(ia, true, &ia->archive, error_r) < 0)
		return NULL;
	return ia->archive;
}

/* ---- imports ---- */

static void instance_import_free(struct instance_import *imp)
{
	for (size_t i = 0; i < imp->path_count; i++)
		mem_free(imp->paths[i]);
	mem_free(imp->paths);
	mem_free(imp->id);
	mem_free(imp->owner);
	mem_free(imp->folder);
	mem_free(imp->error);
	str_destroy(&imp->log);
	pthread_mutex_destroy(&imp->lock);
	mem_free(imp);
}

static void instance_import_event(const struct archive_import_event *ev, void *context)
{
	struct instance_import *imp = context;
	pthread_mutex_lock(&imp->lock);
	switch (ev->type) {
	case ARCHIVE_IMPORT_ARCHIVED:
		imp->archived++;
		break;
	case ARCHIVE_IMPORT_DUPLICATE:
		imp->duplicates++;
		break;
	case ARCHIVE_IMPORT_SKIPPED:
		imp->skipped++;
		if (str_len(imp->log) < 64 * 1024)
			str_printfa(imp->log, "skipped %s: %s\n", ev->source, ev->reason);
		break;
	case ARCHIVE_IMPORT_PROGRESS:
		imp->messages = ev->messages;
		imp->bytes = ev->bytes;
		break;
	}
	pthread_mutex_unlock(&imp->lock);
}

struct instance_import_run {
	struct instance_archive *ia;
	struct instance_import *imp;
};

static void *instance_import_thread(void *ctx)
{
	struct instance_import_run *run = ctx;
	struct instance_import *imp = run->imp;
	struct archive_import_settings set = {
		.user = imp->owner,
		.folder = imp->folder,
		.cb = instance_import_event,
		.context = imp,
		.cancel = &imp->cancel,
	};
	struct archive_import_result result = {0};
	const char *error = NULL;
	int ret = archive_import(run->ia->archive, &set, (const char *const *)imp->paths,
				 imp->path_count, &result, &error);
	pthread_mutex_lock(&imp->lock);
	imp->result = result;
	if (ret < 0)
		imp->error = mem_strdup(error);
	imp->running = false;
	pthread_mutex_unlock(&imp->lock);
	mem_free(run);
	return NULL;
}

/* "import/x.mbox" or an absolute path, in both cases below <base>/import. */
static char *instance_import_path(struct instance_archive *ia, const char *path,
				  const char **error_r)
{
	char *root = mem_printf("%s/import", ia->base_dir);
	char *joined = path[0] == '/' ? mem_strdup(path) : mem_printf("%s/%s", ia->base_dir, path);
	char resolved[PATH_MAX], resolved_root[PATH_MAX];
	char *ret = NULL;
	(void)mkdir(root, 0700);
	if (realpath(root, resolved_root) == NULL || realpath(joined, resolved) == NULL) {
		*error_r = tstr_printf(
			"path '%s': not found (import paths are files or folders below %s)", path,
			root);
	} else if (strncmp(resolved, resolved_root, strlen(resolved_root)) != 0 ||
		   (resolved[strlen(resolved_root)] != '/' &&
		    resolved[strlen(resolved_root)] != '\0')) {
		*error_r = tstr_printf("path '%s': an instance imports only from below its own %s",
				       path, root);
	} else {
		ret = mem_strdup(resolved);
	}
	mem_free(root);
	mem_free(joined);
	return ret;
}

static int instance_import_start(struct instance_archive *ia, const struct json *args,
				 const char *owner, struct json **result_r, const char **error_r)
{
	if (owner == NULL) {
		*error_r = "userName: no such user";
		return -1;
	}
	if (instance_archive_busy(ia)) {
		*error_r = "an import is already running in this instance";
		return -1;
	}
	const struct json *paths = json_get(args, "paths");
	const char *one = json_get_string(args, "path");
	size_t count = one != NULL ? 1 : json_count(paths);
	if (count == 0) {
		*error_r = "path: give the file or folder to import";
		return -1;
	}
	struct instance_import *imp = mem_new(struct instance_import);
	pthread_mutex_init(&imp->lock, NULL);
	imp->log = str_create(0);
	imp->paths = mem_calloc(count, sizeof(char *));
	for (size_t i = 0; i < count; i++) {
		const char *p = one != NULL ? one : json_string_of(json_at(paths, i));
		imp->paths[i] = p == NULL ? NULL : instance_import_path(ia, p, error_r);
		if (imp->paths[i] == NULL) {
			imp->path_count = i;
			instance_import_free(imp);
			return -1;
		}
		imp->path_count = i + 1;
	}
	struct archive *a;
	if ((a = instance_archive_get(ia, true, error_r)) == NULL) {
		instance_import_free(imp);
		return -1;
	}
	imp->id = mem_printf("import-%u", ++ia->import_count);
	imp->owner = mem_strdup(owner);
	const char *folder = json_get_string(args, "folder");
	imp->folder = mem_strdup(folder != NULL && folder[0] != '\0' ? folder : "Import");
	imp->running = true;
	if (ia->import != NULL)
		instance_import_free(ia->import);
	ia->import = imp;
	struct instance_import_run *run = mem_new(struct instance_import_run);
	run->ia = ia;
	run->imp = imp;
	if (pthread_create(&imp->thread, NULL, instance_import_thread, run) != 0) {
		imp->running = false;
		imp->error = mem_strdup("cannot start the import thread");
		mem_free(run);
		*error_r = "cannot start the import thread";
		return -1;
	}
	struct json *r = json_new_object();
	json_set_string(r, "importID", imp->id);
	*result_r = r;
	return 0;
}

static struct json *instance_import_status(struct instance_import *imp)
{
	struct json *r = json_new_object();
	pthread_mutex_lock(&imp->lock);
	bool cancelled = atomic_load(&imp->cancel);
	json_set_string(r, "importID", imp->id);
	json_set_string(r, "state",
			imp->running         ? "running"
			: imp->error != NULL ? "failed"
			: cancelled          ? "cancelled"
					     : "succeeded");
	json_set_int(r, "messagesRead", (long long)imp->messages);
	json_set_int(r, "bytesRead", (long long)imp->bytes);
	json_set_int(r, "archived",
		     (long long)(imp->running ? imp->archived : imp->result.archived));
	json_set_int(r, "duplicates",
		     (long long)(imp->running ? imp->duplicates : imp->result.duplicates));
	json_set_int(r, "skipped", (long long)(imp->running ? imp->skipped : imp->result.skipped));
	json_set_int(r, "defects", (long long)imp->result.defects);
	json_set_string(r, "error", imp->error == NULL ? "" : imp->error);
	json_set_string(r, "log", str_c(imp->log));
	pthread_mutex_unlock(&imp->lock);
	return r;
}

/* ---- the calls ---- */

struct instance_search_collect {
	struct json *list;
};

static void instance_search_hit(const struct archive_hit *hit, void *context)
{
	struct instance_search_collect *c = context;
	struct json *m = json_new_object();
	json_set_int(m, "id", hit->id);
	json_set_int(m, "date", hit->date);
	json_set_string(m, "from", hit->from);
	json_set_string(m, "subject", hit->subject);
	json_set_string(m, "user", hit->user);
	json_set_string(m, "folder", hit->folder);
	json_set_int(m, "size", (long long)hit->size);
	json_append(c->list, m);
}

static void instance_report_line(const char *line, void *context)
{
	json_append(context, json_new_string(line));
}

static int instance_archive_search(struct archive *a, const struct json *args,
				   struct json **result_r, const char **error_r)
{
	const char *query = json_get_string(args, "query");
	long long limit = 50, offset = 0;
	(void)json_get_int(args, "limit", &limit);
	(void)json_get_int(args, "offset", &offset);
	if (limit < 1 || limit > 1000 || offset < 0) {
		*error_r = "limit: 1 to 1000; offset: 0 or more";
		return -1;
	}
	/* An administrator's search covers the whole instance; every hit names
	 * its user. (End users' searches, scoped to their own archive, come
	 * with Web Access and IMAP.) */
	struct instance_search_collect c = {json_new_array()};
	uint64_t total = 0;
	int ret = archive_search(a, query == NULL ? "" : query, (uint64_t)limit, (uint64_t)offset,
				 &total, instance_search_hit, &c, error_r);
	if (ret < 0) {
		json_unref(&c.list);
		return -1;
	}
	struct json *r = json_new_object();
	json_set_int(r, "total", (long long)total);
	json_set(r, "messages", c.list);
	*result_r = r;
	return 0;
}

/* ---- folders: "archiveName/path/of/folder" names ---- */

struct instance_folder_walk {
	struct json *list;
	const char *parent; /* GetChildFolders: "" for the top */
	struct json *seen;  /* child name -> entry */
};

static void instance_folder_stat(const struct archive_folder *f, void *context)
{
	struct instance_folder_walk *w = context;
	struct json *e = json_new_object();
	char *full = mem_printf("%s/%s", f->user, f->path);
	json_set_string(e, "folder", full);
	json_set_int(e, "messages", (long long)f->messages);
	json_set_int(e, "bytes", (long long)f->bytes);
	json_append(w->list, e);
	mem_free(full);
}

static void instance_folder_child(const struct archive_folder *f, void *context)
{
	struct instance_folder_walk *w = context;
	char *full = mem_printf("%s/%s", f->user, f->path);
	size_t plen = strlen(w->parent);
	if (plen == 0 || (strncmp(full, w->parent, plen) == 0 && full[plen] == '/')) {
		const char *rest = full + (plen == 0 ? 0 : plen + 1);
		const char *slash = strchr(rest, '/');
		char *name =
			mem_strndup(rest, slash == NULL ? strlen(rest) : (size_t)(slash - rest));
		struct json *e = json_get(w->seen, name);
		if (e == NULL) {
			e = json_new_object();
			char *child =
				plen == 0 ? mem_strdup(name) : mem_printf("%s/%s", w->parent, name);
			json_set_string(e, "folder", child);
			json_set_string(e, "name", name);
			json_set_int(e, "messages", 0);
			json_set_bool(e, "hasChildren", false);
			json_set(w->seen, name, e);
			json_append(w->list, json_ref(e));
			mem_free(child);
		}
		if (slash == NULL)
			json_set_int(e, "messages", (long long)f->messages);
		else
			json_set_bool(e, "hasChildren", true);
		mem_free(name);
	}
	mem_free(full);
}

static int instance_archive_folders(struct archive *a, const char *method, const struct json *args,
				    struct json **result_r, const char **error_r)
{
	struct instance_folder_walk w = {json_new_array(), json_get_string(args, "folder"),
					 json_new_object()};
	if (w.parent == NULL)
		w.parent = "";
	int ret = archive_folders(a,
				  strcmp(method, "GetChildFolders") == 0 ? instance_folder_child
									 : instance_folder_stat,
				  &w, error_r);
	json_unref(&w.seen);
	if (ret < 0) {
		json_unref(&w.list);
		return -1;
	}
	*result_r = w.list;
	return 0;
}

static int instance_archive_messages(struct archive *a, const struct json *args,
				     struct json **result_r, const char **error_r)
{
	const char *folder = json_get_string(args, "folder");
	const char *slash = folder == NULL ? NULL : strchr(folder, '/');
	long long limit = 50, offset = 0;
	(void)json_get_int(args, "limit", &limit);
	(void)json_get_int(args, "offset", &offset);
	if (slash == NULL || slash == folder || slash[1] == '\0') {
		*error_r = "folder: expected USER/PATH (as GetChildFolders names it)";
		return -1;
	}
	if (limit < 1 || limit > 1000 || offset < 0) {
		*error_r = "limit: 1 to 1000; offset: 0 or more";
		return -1;
	}
	char *user = mem_strndup(folder, (size_t)(slash - folder));
	struct instance_search_collect c = {json_new_array()};
	uint64_t total = 0;
	int ret = archive_folder_messages(a, user, slash + 1, (uint64_t)limit, (uint64_t)offset,
					  &total, instance_search_hit, &c, error_r);
	mem_free(user);
	if (ret <= 0) {
		if (ret == 0)
			*error_r = tstr_printf("no folder '%s'", folder);
		json_unref(&c.list);
		return -1;
	}
	struct json *r = json_new_object();
	json_set_int(r, "total", (long long)total);
	json_set(r, "messages", c.list);
	*result_r = r;
	return 0;
}

static int instance_archive_on(struct archive *a, const char *method, const struct json *args,
			       const char *owner, struct json **result_r, const char **error_r)
{
	struct json *lines = json_new_array();
	int ret = 0;
	if (strcmp(method, "GetStatistics") == 0) {
		struct str *out = str_create(256);
		ret = archive_stats_json(a, out, error_r);
		if (ret == 0)
			ret = json_parse(str_c(out), str_len(out), result_r, error_r);
		str_destroy(&out);
	} else if (strcmp(method, "Search") == 0) {
		ret = instance_archive_search(a, args, result_r, error_r);
	} else if (strcmp(method, "GetChildFolders") == 0 ||
		   strcmp(method, "GetFolderStatistics") == 0) {
		ret = instance_archive_folders(a, method, args, result_r, error_r);
	} else if (strcmp(method, "GetMessages") == 0) {
		ret = instance_archive_messages(a, args, result_r, error_r);
	} else if (strcmp(method, "GetStores") == 0) {
		ret = archive_store_list(a, instance_report_line, lines, error_r);
		*result_r = json_ref(lines);
	} else if (strcmp(method, "CreateStore") == 0) {
		ret = archive_store_new(a, error_r);
	} else if (strcmp(method, "SetStoreRequestedState") == 0) {
		ret = archive_store_set_state(a, json_get_string(args, "storeName"),
					      json_get_string(args, "requestedState"), error_r);
	} else if (strcmp(method, "VerifyStores") == 0) {
		ret = archive_verify(a, instance_report_line, lines, error_r);
		if (ret >= 0) {
			struct json *r = json_new_object();
			json_set_int(r, "problems", ret);
			json_set(r, "report", json_ref(lines));
			*result_r = r;
			ret = 0;
		}
	}
	json_unref(&lines);
	return ret;
}

int instance_archive_call(struct instance_archive *ia, const char *method, const struct json *args,
			  const char *owner, struct json **result_r, const char **error_r)
{
	static const char *const read_calls[] = {"GetStatistics",   "Search",
						 "GetStores",       "VerifyStores",
						 "GetChildFolders", "GetFolderStatistics",
						 "GetMessages",     NULL};
	static const char *const write_calls[] = {"CreateStore", "SetStoreRequestedState", NULL};
	*result_r = NULL;
	if (strcmp(method, "StartImport") == 0)
		return instance_import_start(ia, args, owner, result_r, error_r) < 0 ? -1 : 1;
	if (strcmp(method, "GetImportStatus") == 0 || strcmp(method, "CancelImport") == 0) {
		if (ia->import == NULL) {
			*error_r = "no import has run since this instance started";
			return -1;
		}
		if (strcmp(method, "CancelImport") == 0)
			atomic_store(&ia->import->cancel, true);
		*result_r = instance_import_status(ia->import);
		return 1;
	}
	if (strcmp(method, "RebuildSelectedStoreIndexes") == 0) {
		if (!instance_archive_close(ia)) {
			*error_r = "an import is running: rebuild when it has finished";
			return -1;
		}
		struct archive_settings set = {
			.base_dir = ia->base_dir, .key_file = ia->key_file, .write = true};
		struct json *lines = json_new_array();
		int damaged = archive_rebuild(&set, instance_report_line, lines, error_r);
		if (damaged < 0) {
			json_unref(&lines);
			return -1;
		}
		struct json *r = json_new_object();
		json_set_int(r, "damagedRecords", damaged);
		json_set(r, "report", lines);
		*result_r = r;
		return 1;
	}
	bool write = false, known = false;
	for (const char *const *m = read_calls; *m != NULL; m++)
		known = known || strcmp(*m, method) == 0;
	for (const char *const *m = write_calls; *m != NULL; m++)
		write = write || strcmp(*m, method) == 0;
	if (!known && !write)
		return 0;
	struct archive *a = instance_archive_get(ia, write, error_r);
	if (a == NULL)
		return -1;
	int ret = instance_archive_on(a, method, args, owner, result_r, error_r);
	return ret < 0 ? -1 : 1;
}

struct archive *instance_archive_for_reading(struct instance_archive *ia, const char **error_r)
{
	return instance_archive_get(ia, false, error_r);
}

void instance_archive_destroy(struct instance_archive **ia)
{
	struct instance_archive *a = *ia;
	if (a == NULL)
		return;
	if (a->import != NULL) {
		/* Let a running import commit what it has, then stop. */
		atomic_store(&a->import->cancel, true);
		if (a->import->thread != 0)
			pthread_join(a->import->thread, NULL);
		instance_import_free(a->import);
	}
	archive_destroy(&a->reader);
	archive_destroy(&a->archive);
	mem_free(a->base_dir);
	mem_free(a->key_file);
	mem_free(a);
	*ia = NULL;
}
