#include "cli-relocate.h"
#include "config.h"
#include "file.h"
#include "json.h"
#include "mem.h"
#include "mgmtdb.h"
#include "tstr.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* What relocate reads and, once every check passed, writes. */
struct cli_relocate {
	const char *from, *to, *config_dir;
	char *host_path, *db_path;
	struct json *host; /* the Instance Host's registry, NULL if not here */
	struct mgmtdb *db; /* the management database, NULL if not here */
	int host_count, db_count;
};

/* `path` checked and without trailing slashes, into `out`. */
static int cli_relocate_check_path(const char *field, const char *path, char *out, size_t size,
				   const char **error_r)
{
	size_t len = path == NULL ? 0 : strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	bool ok = len > 1 && path[0] == '/' && len < size && len < PATH_MAX / 2;
	if (ok) {
		memcpy(out, path, len);
		out[len] = '\0';
		ok = strstr(out, "/./") == NULL && strstr(out, "/../") == NULL &&
		     strstr(out, "//") == NULL && !(len >= 2 && strcmp(out + len - 2, "/.") == 0) &&
		     !(len >= 3 && strcmp(out + len - 3, "/..") == 0);
	}
	for (const char *p = out; ok && *p != '\0'; p++)
		ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
	if (!ok) {
		*error_r = tstr_printf("field %s: '%s': expected an absolute path other than / "
				       "without . or .. components or control characters",
				       field, path == NULL ? "" : path);
		return -1;
	}
	return 0;
}

/* The new place of `dir` if it is `from` or below it (mem_printf), else NULL. */
static char *cli_relocate_path(const struct cli_relocate *r, const char *dir)
{
	size_t n = strlen(r->from);
	if (strncmp(dir, r->from, n) != 0 || (dir[n] != '\0' && dir[n] != '/'))
		return NULL;
	return mem_printf("%s%s", r->to, dir + n);
}

static bool cli_relocate_overlap(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;
	return strncmp(a, b, n) == 0 && (la == lb || (la < lb ? b[la] == '/' : a[lb] == '/'));
}

static int cli_relocate_load(struct cli_relocate *r, const char **error_r)
{
	r->host_path = config_path(r->config_dir, CONFIG_HOST_INSTANCES_FILE);
	r->db_path = config_path(r->config_dir, MGMTDB_FILE_NAME);
	int host = file_exists(r->host_path, error_r), db = file_exists(r->db_path, error_r);
	if (host < 0 || db < 0)
		return -1;
	if (host == 0 && db == 0) {
		*error_r = tstr_printf("no management database or Instance Host registry in %s",
				       r->config_dir);
		return -1;
	}
	if (host == 1) {
		char *text;
		size_t len;
		if (file_read_all(r->host_path, 64 * 1024 * 1024, &text, &len, error_r) < 0)
			return -1;
		int ret = json_parse(text, len, &r->host, error_r);
		mem_free(text);
		if (ret < 0) {
			*error_r = tstr_printf("%s: %s", r->host_path, *error_r);
			return -1;
		}
	}
	return db == 1 ? mgmtdb_load(r->db_path, &r->db, error_r) : 0;
}

/* The Instance Host's registry: the data must be at the new place already,
 * and no two instances may share a directory afterwards. */
static int cli_relocate_host(struct cli_relocate *r, const char **error_r)
{
	struct json *list = json_get(r->host, "instances");
	size_t count = json_count(list);
	for (size_t i = 0; i < count; i++) {
		struct json *e = json_at(list, i);
		const char *id = json_get_string(e, "instanceID"),
			   *dir = json_get_string(e, "baseDirectory");
		if (id == NULL || dir == NULL) {
			*error_r = tstr_printf("%s: entry %zu is invalid", r->host_path, i);
			return -1;
		}
		char *moved = cli_relocate_path(r, dir);
		if (moved == NULL)
			continue;
		struct stat st;
		if (stat(moved, &st) < 0 || !S_ISDIR(st.st_mode)) {
			*error_r = tstr_printf("instance %s: %s is not a directory: move the data "
					       "first (mv %s %s), then relocate",
					       id, moved, r->from, r->to);
			mem_free(moved);
			return -1;
		}
		printf("instance %s: %s -> %s\n", id, dir, moved);
		json_set_string(e, "baseDirectory", moved);
		mem_free(moved);
		r->host_count++;
	}
	for (size_t i = 0; i < count; i++) {
		const struct json *a = json_at(list, i);
		for (size_t j = i + 1; j < count; j++) {
			const struct json *b = json_at(list, j);
			if (cli_relocate_overlap(json_get_string(a, "baseDirectory"),
						 json_get_string(b, "baseDirectory"))) {
				*error_r = tstr_printf(
					"the base directories of instances %s and %s would overlap "
					"(%s, %s)",
					json_get_string(a, "instanceID"),
					json_get_string(b, "instanceID"),
					json_get_string(a, "baseDirectory"),
					json_get_string(b, "baseDirectory"));
				return -1;
			}
		}
	}
	return 0;
}

static int cli_relocate_db(struct cli_relocate *r, const char **error_r)
{
	for (size_t i = 0; i < mgmtdb_instance_count(r->db); i++) {
		struct mgmtdb_instance inst;
		mgmtdb_instance_get(r->db, i, &inst);
		char *moved = cli_relocate_path(r, inst.base_directory);
		if (moved == NULL)
			continue;
		if (r->host == NULL)
			printf("instance %s: %s -> %s\n", inst.id, inst.base_directory, moved);
		inst.base_directory = moved;
		int ret = mgmtdb_instance_update(r->db, &inst, error_r);
		mem_free(moved);
		if (ret < 0)
			return -1;
		r->db_count++;
	}
	return 0;
}

static int cli_relocate_save(struct cli_relocate *r, const char **error_r)
{
	if (r->host != NULL && r->host_count > 0) {
		char *text = json_serialize(r->host, true);
		int ret = file_write_atomic(r->host_path, text, strlen(text), 0600, error_r);
		mem_free(text);
		if (ret < 0)
			return -1;
	}
	if (r->db != NULL && r->db_count > 0 && mgmtdb_save(r->db, r->db_path, error_r) < 0) {
		*error_r = tstr_printf("%s%s", *error_r,
				       r->host_count > 0
					       ? " (the Instance Host's registry was rewritten "
						 "already: run relocate again once this is fixed)"
					       : "");
		return -1;
	}
	return 0;
}

int cli_relocate(const char *config_dir, const char *from, const char *to, const char **error_r)
{
	char from_buf[PATH_MAX], to_buf[PATH_MAX];
	if (cli_relocate_check_path("from", from, from_buf, sizeof(from_buf), error_r) < 0 ||
	    cli_relocate_check_path("to", to, to_buf, sizeof(to_buf), error_r) < 0)
		return -1;
	if (strcmp(from_buf, to_buf) == 0) {
		*error_r = "fields from and to: the same directory, nothing to relocate";
		return -1;
	}
	if (cli_relocate_overlap(to_buf, config_dir)) {
		*error_r = tstr_printf("field to: '%s' overlaps the config directory %s", to_buf,
				       config_dir);
		return -1;
	}
	struct cli_relocate r = {.from = from_buf, .to = to_buf, .config_dir = config_dir};
	int ret = cli_relocate_load(&r, error_r);
	if (ret == 0 && r.host != NULL)
		ret = cli_relocate_host(&r, error_r);
	if (ret == 0 && r.db != NULL)
		ret = cli_relocate_db(&r, error_r);
	if (ret == 0 && r.host_count == 0 && r.db_count == 0) {
		*error_r = tstr_printf("no instance's base directory is %s or below it", from_buf);
		ret = -1;
	}
	if (ret == 0)
		ret = cli_relocate_save(&r, error_r);
	if (ret == 0)
		ret = r.host_count > r.db_count ? r.host_count : r.db_count;
	json_unref(&r.host);
	mgmtdb_destroy(&r.db);
	mem_free(r.host_path);
	mem_free(r.db_path);
	return ret;
}
