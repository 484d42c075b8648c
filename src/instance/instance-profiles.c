#include "instance-profiles.h"
#include "instance-archive.h"
#include "instance-calls.h"
#include "instance-jobs.h"
#include "instance-users.h"
#include "instance.h"
#include "archive-source.h"
#include "archive.h"
#include "array.h"
#include "auth-secret.h"
#include "crypto.h"
#include "file.h"
#include "hash.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mime.h"
#include "source-imap.h"
#include "source-pop3.h"
#include "str.h"
#include "tls.h"
#include "tstr.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROFILES_FILE "profiles.sealed"
#define PROFILES_MAX_FILE (16 * 1024 * 1024)
#define PROFILES_SEAL_CONTEXT "instance-profiles"
#define PROFILES_STATE_CONTEXT "instance-profile-state"
#define PROFILES_MAX 1000
/* How often the schedule is looked at. */
#define PROFILES_TICK_SECS 5
#define PROFILES_JOB_KIND "profile"

struct instance_profiles {
	struct instance *inst;
	char *path;
	unsigned char key[CRYPTO_KEY_LEN];
	bool have_key;
	struct json *root; /* {"nextID": n, "profiles": [{...}]} */
	struct event *timer;
	/* the profile whose run is the running job, or "" */
	char running[32];
};

/* ---- what a profile holds ---- */

enum profile_field_type { FIELD_STRING, FIELD_INT, FIELD_BOOL, FIELD_LIST };

struct profile_field {
	const char *name;
	enum profile_field_type type;
	/* FIELD_STRING: the values allowed, '|'-separated, or NULL for any;
	 * FIELD_INT: the range */
	const char *choices;
	long long min, max;
};

static const struct profile_field profile_fields[] = {
	{"name", FIELD_STRING, NULL, 0, 0},
	{"type", FIELD_STRING, "imap|pop3", 0, 0},
	{"host", FIELD_STRING, NULL, 0, 0},
	{"port", FIELD_INT, NULL, 1, 65535},
	{"security", FIELD_STRING, "tls|starttls", 0, 0},
	{"fingerprint", FIELD_STRING, NULL, 0, 0},
	{"caCertificate", FIELD_STRING, NULL, 0, 0},
	{"login", FIELD_STRING, NULL, 0, 0},
	{"password", FIELD_STRING, NULL, 0, 0},
	{"adminMode", FIELD_STRING, "none|master|authzid", 0, 0},
	{"masterSeparator", FIELD_STRING, NULL, 0, 0},
	{"mailboxes", FIELD_LIST, NULL, 0, 0},
	{"user", FIELD_STRING, NULL, 0, 0},
	{"folders", FIELD_LIST, NULL, 0, 0},
	{"exclude", FIELD_LIST, NULL, 0, 0},
	{"schedule", FIELD_STRING, "manual|interval|continuous", 0, 0},
	{"intervalMinutes", FIELD_INT, NULL, 1, 7 * 24 * 60},
	{"pauseSeconds", FIELD_INT, NULL, 0, 24 * 3600},
	{"deleteAfterArchive", FIELD_BOOL, NULL, 0, 0},
	{"timeoutSeconds", FIELD_INT, NULL, 5, 3600},
	{"distribute", FIELD_STRING, "mailbox|recipients", 0, 0},
	{"unknownRecipients", FIELD_STRING, "skip|catch-all", 0, 0},
	{"catchAllUser", FIELD_STRING, NULL, 0, 0},
};

static const struct profile_field *profile_field_find(const char *name)
{
	for (size_t i = 0; i < sizeof(profile_fields) / sizeof(profile_fields[0]); i++) {
		if (strcmp(profile_fields[i].name, name) == 0)
			return &profile_fields[i];
	}
	return NULL;
}

static bool profile_choice_ok(const char *choices, const char *value)
{
	size_t len = strlen(value);
	for (const char *p = choices; *p != '\0';) {
		const char *end = strchr(p, '|');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == len && strncmp(p, value, n) == 0)
			return true;
		p += n + (end != NULL);
	}
	return false;
}

static int profile_field_check(const struct profile_field *f, const struct json *v,
			       const char **error_r)
{
	switch (f->type) {
	case FIELD_STRING:
		if (json_kind(v) != JSON_KIND_STRING) {
			*error_r = tstr_printf("profile.%s: a string", f->name);
			return -1;
		}
		if (f->choices != NULL && !profile_choice_ok(f->choices, json_string_of(v))) {
			*error_r = tstr_printf("profile.%s: '%s' is not one of %s", f->name,
					       json_string_of(v), f->choices);
			return -1;
		}
		return 0;
	case FIELD_INT:
		if (json_kind(v) != JSON_KIND_INT || json_int_of(v) < f->min ||
		    json_int_of(v) > f->max) {
			*error_r = tstr_printf("profile.%s: a whole number from %lld to %lld",
					       f->name, f->min, f->max);
			return -1;
		}
		return 0;
	case FIELD_BOOL:
		if (json_kind(v) != JSON_KIND_BOOL) {
			*error_r = tstr_printf("profile.%s: true or false", f->name);
			return -1;
		}
		return 0;
	case FIELD_LIST:
		if (json_kind(v) != JSON_KIND_ARRAY) {
			*error_r = tstr_printf("profile.%s: a list of strings", f->name);
			return -1;
		}
		for (size_t i = 0; i < json_count(v); i++) {
			const char *s = json_string_of(json_at(v, i));
			if (s == NULL || s[0] == '\0') {
				*error_r = tstr_printf("profile.%s: a list of non-empty strings",
						       f->name);
				return -1;
			}
		}
		return 0;
	}
	return -1;
}

/* Whether the merged profile can run: what every source needs. */
static int profile_complete(const struct json *p, const char **error_r)
{
	static const char *const required[] = {"name", "type", "host", "login", "password"};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		const char *v = json_get_string(p, required[i]);
		if (v == NULL || v[0] == '\0') {
			*error_r = tstr_printf("profile.%s: required", required[i]);
			return -1;
		}
	}
	const char *fp = json_get_string(p, "fingerprint");
	char canonical[TLS_FINGERPRINT_HEX_LEN + 1];
	if (fp != NULL && fp[0] != '\0' && tls_fingerprint_normalize(fp, canonical, error_r) < 0) {
		*error_r = tstr_printf("profile.fingerprint: %s", *error_r);
		return -1;
	}
	const char *admin = json_get_string(p, "adminMode");
	if (admin != NULL && strcmp(admin, "none") != 0 &&
	    json_count(json_get(p, "mailboxes")) == 0) {
		*error_r = "profile.mailboxes: an administrator login (adminMode) needs the "
			   "mailboxes to read";
		return -1;
	}
	const char *unknown = json_get_string(p, "unknownRecipients");
	const char *catch_all = json_get_string(p, "catchAllUser");
	if (unknown != NULL && strcmp(unknown, "catch-all") == 0 &&
	    (catch_all == NULL || catch_all[0] == '\0')) {
		*error_r = "profile.catchAllUser: required with unknownRecipients catch-all";
		return -1;
	}
	const char *schedule = json_get_string(p, "schedule");
	long long minutes;
	if (schedule != NULL && strcmp(schedule, "interval") == 0 &&
	    json_get_int(p, "intervalMinutes", &minutes) < 0) {
		*error_r = "profile.intervalMinutes: required with schedule interval";
		return -1;
	}
	return 0;
}

/* old (may be NULL) with the fields of `in` put over it. */
static struct json *profile_merge(const struct json *old, const struct json *in,
				  const char **error_r)
{
	if (json_kind(in) != JSON_KIND_OBJECT) {
		*error_r = "profile: a JSON object";
		return NULL;
	}
	struct json *p = old != NULL ? json_clone(old) : json_new_object();
	for (void *it = json_iter(in); it != NULL; it = json_iter_next(in, it)) {
		const char *key = json_iter_key(it);
		const struct json *v = json_iter_value(it);
		const struct profile_field *f = profile_field_find(key);
		if (f == NULL) {
			*error_r = tstr_printf("profile.%s: not a profile field (docs/api.md lists "
					       "them)",
					       key);
			json_unref(&p);
			return NULL;
		}
		if (json_kind(v) == JSON_KIND_NULL) {
			(void)json_remove(p, key);
			continue;
		}
		if (profile_field_check(f, v, error_r) < 0) {
			json_unref(&p);
			return NULL;
		}
		json_set(p, key, json_clone(v));
	}
	if (profile_complete(p, error_r) < 0) {
		json_unref(&p);
		return NULL;
	}
	return p;
}

/* ---- the file ---- */

static int profiles_save(struct instance_profiles *ps, const char **error_r)
{
	if (!ps->have_key) {
		*error_r = "the instance key could not be read";
		return -1;
	}
	char *text = json_serialize(ps->root, false);
	char *sealed = auth_secret_seal(ps->key, text, PROFILES_SEAL_CONTEXT);
	crypto_wipe(text, strlen(text));
	mem_free(text);
	int ret = file_write_atomic(ps->path, sealed, strlen(sealed), 0600, error_r);
	mem_free(sealed);
	return ret;
}

static int profiles_load(struct instance_profiles *ps, const char **error_r)
{
	int exists = file_exists(ps->path, error_r);
	if (exists <= 0)
		return exists;
	char *sealed = NULL, *text = NULL;
	size_t len;
	struct json *root = NULL;
	int ret = file_read_all(ps->path, PROFILES_MAX_FILE, &sealed, &len, error_r);
	if (ret == 0)
		ret = auth_secret_open(ps->key, sealed, PROFILES_SEAL_CONTEXT, &text, error_r);
	if (ret == 0)
		ret = json_parse(text, strlen(text), &root, error_r);
	if (ret == 0 && json_kind(json_get(root, "profiles")) == JSON_KIND_ARRAY) {
		json_unref(&ps->root);
		ps->root = root;
		root = NULL;
	}
	json_unref(&root);
	if (text != NULL) {
		crypto_wipe(text, strlen(text));
		mem_free(text);
	}
	mem_free(sealed);
	return ret;
}

static struct json *profiles_list(struct instance_profiles *ps)
{
	return json_get(ps->root, "profiles");
}

static struct json *profiles_find(struct instance_profiles *ps, const char *id, size_t *index_r)
{
	struct json *list = profiles_list(ps);
	for (size_t i = 0; id != NULL && i < json_count(list); i++) {
		const char *pid = json_get_string(json_at(list, i), "profileID");
		if (pid != NULL && strcmp(pid, id) == 0) {
			if (index_r != NULL)
				*index_r = i;
			return json_at(list, i);
		}
	}
	return NULL;
}

static char *profiles_state_path(const char *base_dir, const char *id)
{
	return mem_printf("%s/profile-%s.state.sealed", base_dir, id);
}

/* ---- a run (the job's thread) ---- */

struct profile_run {
	struct instance_profiles *ps;
	struct archive *archive;
	struct json *profile; /* a copy: the profile may change meanwhile */
	char *id, *state_path, *ca_path;
	unsigned char key[CRYPTO_KEY_LEN];
	struct instance_job *job;
	/* the source: IMAP or POP3 */
	struct source_imap *imap;
	struct source_pop3 *pop3;
	long long archived, duplicates, failed;
	uint64_t messages, bytes;
	/* distribute "recipients": the users' addresses as they were when the
	 * run started (address -> archive name), the catch-all user's archive
	 * name or NULL, and what profile_run_route() last answered */
	struct hash *addresses;
	char *catch_all;
	/* journal messages filed through this run (instance-archive.h) */
	struct instance_lane *lane;
	ARRAY(const char *) route_owners;
	char *route_reason;
};

static void profile_run_free(void *ctx)
{
	struct profile_run *r = ctx;
	struct instance_profiles *ps = r->ps;
	if (ps != NULL && strcmp(ps->running, r->id) == 0) {
		struct json *p = profiles_find(ps, r->id, NULL);
		if (p != NULL)
			json_set_int(p, "lastFinished", (long long)time(NULL));
		ps->running[0] = '\0';
	}
	if (ps != NULL)
		instance_archive_lane_close(ps->inst->archive, &r->lane);
	json_unref(&r->profile);
	instance_users_address_map_free(&r->addresses);
	mem_free(r->catch_all);
	array_free(&r->route_owners);
	mem_free(r->route_reason);
	mem_free(r->id);
	mem_free(r->state_path);
	mem_free(r->ca_path);
	crypto_wipe(r->key, sizeof(r->key));
	mem_free(r);
}

static int profile_run_state_save(struct profile_run *r, const char **error_r)
{
	char *state = r->imap != NULL ? source_imap_state(r->imap) : source_pop3_state(r->pop3);
	char *sealed = auth_secret_seal(r->key, state, PROFILES_STATE_CONTEXT);
	mem_free(state);
	int ret = file_write_atomic(r->state_path, sealed, strlen(sealed), 0600, error_r);
	mem_free(sealed);
	return ret;
}

static char *profile_run_state_load(struct profile_run *r)
{
	char *sealed = NULL, *text = NULL;
	size_t len;
	const char *error;
	if (file_exists(r->state_path, &error) != 1 ||
	    file_read_all(r->state_path, PROFILES_MAX_FILE, &sealed, &len, &error) < 0)
		return NULL;
	if (auth_secret_open(r->key, sealed, PROFILES_STATE_CONTEXT, &text, &error) < 0)
		text = NULL;
	mem_free(sealed);
	return text;
}

static void profile_run_publish(struct profile_run *r)
{
	instance_job_count(r->job, "archived", r->archived);
	instance_job_count(r->job, "duplicates", r->duplicates);
	instance_job_count(r->job, "failed", r->failed);
	instance_job_count(r->job, "messagesRead", (long long)r->messages);
	instance_job_count(r->job, "bytesRead", (long long)r->bytes);
	instance_job_status(r->job, tstr_printf("%lld archived, %lld already there, %lld failed",
						r->archived, r->duplicates, r->failed));
}

/* From the import's writer thread, after each durable commit. */
static void profile_run_event(const struct archive_import_event *ev, void *context)
{
	struct profile_run *r = context;
	if (r->imap != NULL)
		source_imap_event(r->imap, ev);
	else
		source_pop3_event(r->pop3, ev);
	const char *error;
	switch (ev->type) {
	case ARCHIVE_IMPORT_ARCHIVED:
		r->archived++;
		break;
	case ARCHIVE_IMPORT_DUPLICATE:
		r->duplicates++;
		break;
	case ARCHIVE_IMPORT_SKIPPED:
		r->failed++;
		instance_job_report(r->job,
				    tstr_printf("failed %s: %s [%s]", ev->source, ev->reason,
						archive_import_skip_name(ev->skip)));
		break;
	case ARCHIVE_IMPORT_PROGRESS:
		r->messages = ev->messages;
		r->bytes = ev->bytes;
		/* what is committed is in the state from now on: a run killed
		 * later does not fetch it again */
		if (profile_run_state_save(r, &error) < 0)
			instance_job_log(r->job, tstr_printf("saving the state: %s", error));
		profile_run_publish(r);
		/* a progress report per committed batch (its percentage is not
		 * known: a source does not say how much it holds) */
		instance_job_progress(r->job, r->messages, 0);
		break;
	}
}

static const char *const *profile_strings(const struct json *list, size_t *count_r)
{
	size_t n = json_count(list);
	const char **out = mem_calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		out[i] = json_string_of(json_at(list, i));
	*count_r = n;
	return out;
}

/* "mailbox" or "mailbox=archive user" */
static void profile_mailboxes(const struct json *list, char ***mailboxes_r, char ***owners_r,
			      size_t *count_r)
{
	size_t n = json_count(list);
	char **mailboxes = mem_calloc(n + 1, sizeof(char *)),
	     **owners = mem_calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_of(json_at(list, i));
		const char *eq = strchr(s, '=');
		mailboxes[i] = eq != NULL ? mem_strndup(s, (size_t)(eq - s)) : mem_strdup(s);
		owners[i] = mem_strdup(eq != NULL ? eq + 1 : s);
	}
	*mailboxes_r = mailboxes;
	*owners_r = owners;
	*count_r = n;
}

static void profile_free_strings(char **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		mem_free(list[i]);
	mem_free(list);
}

/* What both sources are given, from the profile. */
struct profile_common {
	const char *host, *fingerprint, *login, *password, *separator;
	unsigned int port, timeout;
	bool starttls, delete_after;
	enum source_imap_admin admin;
	char **mailboxes, **owners;
	size_t mailbox_count;
	const char *one_owner[1];
};

static void profile_common_get(const struct json *p, struct profile_common *c)
{
	const char *security = json_get_string(p, "security");
	const char *type = json_get_string(p, "type");
	bool pop3 = type != NULL && strcmp(type, "pop3") == 0;
	c->starttls = security != NULL && strcmp(security, "starttls") == 0;
	long long port = c->starttls ? (pop3 ? 110 : 143) : (pop3 ? 995 : 993), timeout = 60;
	(void)json_get_int(p, "port", &port);
	(void)json_get_int(p, "timeoutSeconds", &timeout);
	c->port = (unsigned int)port;
	c->timeout = (unsigned int)timeout;
	c->host = json_get_string(p, "host");
	c->fingerprint = json_get_string(p, "fingerprint");
	c->login = json_get_string(p, "login");
	c->password = json_get_string(p, "password");
	c->separator = json_get_string(p, "masterSeparator");
	c->delete_after = json_get_bool(p, "deleteAfterArchive", false);
	const char *admin = json_get_string(p, "adminMode");
	c->admin = admin == NULL || strcmp(admin, "none") == 0 ? SOURCE_IMAP_ADMIN_NONE
		   : strcmp(admin, "master") == 0              ? SOURCE_IMAP_ADMIN_MASTER
							       : SOURCE_IMAP_ADMIN_AUTHZID;
	c->one_owner[0] = json_get_string(p, "user");
	if (c->admin != SOURCE_IMAP_ADMIN_NONE)
		profile_mailboxes(json_get(p, "mailboxes"), &c->mailboxes, &c->owners,
				  &c->mailbox_count);
}

static void profile_common_free(struct profile_common *c)
{
	profile_free_strings(c->mailboxes, c->mailbox_count);
	profile_free_strings(c->owners, c->mailbox_count);
}

/* distribute "recipients" (the import's route hook, on the job's thread):
 * the users whose addresses are among the message's recipients, else the
 * catch-all user, else none (SKIPPED, no-recipient: it stays on the source,
 * and a later run after the address was given to a user does not see it
 * again unless the profile's state is reset). */
static int profile_run_route(void *context, const unsigned char *data, size_t len,
			     const char *const **owners_r, size_t *count_r, const char **reason_r)
{
	struct profile_run *r = context;
	char **addresses;
	size_t n = mime_recipients(data, len, &addresses);
	array_clear(&r->route_owners);
	for (size_t i = 0; i < n; i++) {
		const char *owner = hash_get(r->addresses, addresses[i]);
		bool seen = owner == NULL;
		for (size_t k = 0; !seen && k < r->route_owners.count; k++)
			seen = strcmp(r->route_owners.items[k], owner) == 0;
		if (!seen)
			array_append(&r->route_owners, owner);
	}
	if (r->route_owners.count == 0 && r->catch_all != NULL)
		array_append(&r->route_owners, (const char *)r->catch_all);
	if (r->route_owners.count == 0) {
		mem_free(r->route_reason);
		r->route_reason =
			mem_printf("no recipient is a user of the instance (%zu address%s in "
				   "its header)",
				   n, n == 1 ? "" : "es");
		*reason_r = r->route_reason;
	}
	mime_recipients_free(&addresses);
	*owners_r = r->route_owners.items;
	*count_r = r->route_owners.count;
	return r->route_owners.count > 0 ? 1 : 0;
}

/* Runs the source through the archive; then, if asked, deletes from it
 * what was archived. */
static int profile_run_source(struct profile_run *r, const struct profile_common *c,
			      const struct archive_source_funcs *funcs, void *src,
			      const char **error_r)
{
	/* journal deliveries meanwhile go through this run's pipeline */
	const struct archive_source_funcs *lane_funcs;
	instance_archive_lane_wrap(r->lane, funcs, src, profile_run_event, r, &lane_funcs);
	struct archive_import_settings is = {
		.folder = "INBOX",
		.cb = instance_archive_lane_event,
		.context = r->lane,
		.cancel = instance_job_cancel_flag(r->job),
		.route = r->addresses != NULL ? profile_run_route : NULL,
		.route_context = r,
	};
	struct archive_import_result result = {0};
	instance_job_status(r->job, tstr_printf("reading %s", c->host));
	int ret = archive_source_import(r->archive, &is, lane_funcs, r->lane, &result, error_r);
	instance_archive_lane_end(r->lane);
	const char *failure =
		r->imap != NULL ? source_imap_failure(r->imap) : source_pop3_failure(r->pop3);
	if (ret == 0 && failure != NULL) {
		*error_r = tstr_dup(failure);
		ret = -1;
	}
	const char *error;
	if (profile_run_state_save(r, &error) < 0)
		instance_job_log(r->job, tstr_printf("saving the state: %s", error));
	if (c->delete_after && (ret == 0 || failure != NULL)) {
		/* only what the events said is durably archived */
		long long removed = r->imap != NULL ? source_imap_delete_archived(r->imap, &error)
						    : source_pop3_delete_archived(r->pop3, &error);
		if (removed < 0) {
			instance_job_report(r->job,
					    tstr_printf("deleting from the source: %s", error));
			if (ret == 0) {
				*error_r = tstr_printf("deleting from the source: %s", error);
				ret = -1;
			}
		} else {
			instance_job_count(r->job, "deletedFromSource", removed);
		}
	}
	profile_run_publish(r);
	return ret;
}

static int profile_run_imap(struct profile_run *r, const char **error_r)
{
	const struct json *p = r->profile;
	struct profile_common c = {0};
	profile_common_get(p, &c);
	struct source_imap_settings set = {
		.host = c.host,
		.port = c.port,
		.starttls = c.starttls,
		.fingerprint = c.fingerprint,
		.ca_file = r->ca_path,
		.timeout_secs = c.timeout,
		.login = c.login,
		.password = c.password,
		.admin = c.admin,
		.master_separator = c.separator,
		.mailboxes = (const char *const *)c.mailboxes,
		.owners = c.admin != SOURCE_IMAP_ADMIN_NONE ? (const char *const *)c.owners
							    : c.one_owner,
		.mailbox_count = c.admin != SOURCE_IMAP_ADMIN_NONE ? c.mailbox_count : 1,
		.delete_after = c.delete_after,
	};
	const char *const *folders = profile_strings(json_get(p, "folders"), &set.folder_count);
	const char *const *exclude = profile_strings(json_get(p, "exclude"), &set.exclude_count);
	set.folders = folders;
	set.exclude = exclude;
	char *state = profile_run_state_load(r);
	r->imap = source_imap_create(&set, state);
	mem_free(state);
	int ret = profile_run_source(r, &c, &source_imap_funcs, r->imap, error_r);
	source_imap_destroy(&r->imap);
	mem_free((void *)folders);
	mem_free((void *)exclude);
	profile_common_free(&c);
	return ret;
}

static int profile_run_pop3(struct profile_run *r, const char **error_r)
{
	struct profile_common c = {0};
	profile_common_get(r->profile, &c);
	const struct json *folders = json_get(r->profile, "folders");
	struct source_pop3_settings set = {
		.host = c.host,
		.port = c.port,
		.starttls = c.starttls,
		.fingerprint = c.fingerprint,
		.ca_file = r->ca_path,
		.timeout_secs = c.timeout,
		.login = c.login,
		.password = c.password,
		.admin = c.admin,
		.master_separator = c.separator,
		.mailboxes = (const char *const *)c.mailboxes,
		.owners = c.admin != SOURCE_IMAP_ADMIN_NONE ? (const char *const *)c.owners
							    : c.one_owner,
		.mailbox_count = c.admin != SOURCE_IMAP_ADMIN_NONE ? c.mailbox_count : 1,
		/* POP3 has one folder: the first of folders names the archive's */
		.folder = json_count(folders) > 0 ? json_string_of(json_at(folders, 0)) : NULL,
		.delete_after = c.delete_after,
	};
	char *state = profile_run_state_load(r);
	r->pop3 = source_pop3_create(&set, state);
	mem_free(state);
	int ret = profile_run_source(r, &c, &source_pop3_funcs, r->pop3, error_r);
	source_pop3_destroy(&r->pop3);
	profile_common_free(&c);
	return ret;
}

static int profile_run(struct instance_job *job, void *ctx, const char **error_r)
{
	struct profile_run *r = ctx;
	r->job = job;
	profile_run_publish(r);
	const char *ca = json_get_string(r->profile, "caCertificate");
	if (ca != NULL && ca[0] != '\0') {
		/* the CA is trusted from the profile, not from a path the
		 * sandboxed process may not read */
		r->ca_path = mem_printf("%s.ca.pem", r->state_path);
		if (file_write_atomic(r->ca_path, ca, strlen(ca), 0600, error_r) < 0)
			return -1;
	}
	const char *type = json_get_string(r->profile, "type");
	if (strcmp(type, "pop3") == 0)
		return profile_run_pop3(r, error_r);
	return profile_run_imap(r, error_r);
}

static const struct instance_job_kind profile_job_kind = {
	.name = PROFILES_JOB_KIND,
	.run = profile_run,
	.done = profile_run_free,
};

/* Starts a run on the event loop: 0 with *job_id_r, -1. */
static int profiles_start_run(struct instance_profiles *ps, struct json *profile, bool scheduled,
			      const char **job_id_r, const char **error_r)
{
	struct instance *inst = ps->inst;
	if (inst->frozen) {
		*error_r = "frozen";
		return -1;
	}
	if (!ps->have_key) {
		*error_r = "the instance key could not be read";
		return -1;
	}
	const char *distribute = json_get_string(profile, "distribute");
	bool by_recipient = distribute != NULL && strcmp(distribute, "recipients") == 0;
	const char *unknown = json_get_string(profile, "unknownRecipients");
	const char *catch_all = NULL;
	if (by_recipient && unknown != NULL && strcmp(unknown, "catch-all") == 0) {
		const char *user = json_get_string(profile, "catchAllUser");
		catch_all = instance_users_archive_name(inst->users, user);
		if (catch_all == NULL) {
			*error_r = tstr_printf("profile.catchAllUser: no user '%s'", user);
			return -1;
		}
	}
	struct archive *a = instance_archive_for_job(inst->archive, error_r);
	if (a == NULL)
		return -1;
	struct profile_run *r = mem_new(struct profile_run);
	if (by_recipient) {
		r->addresses = instance_users_address_map(inst->users);
		r->catch_all = catch_all != NULL ? mem_strdup(catch_all) : NULL;
	}
	r->ps = ps;
	r->archive = a;
	r->profile = json_clone(profile);
	r->id = mem_strdup(json_get_string(profile, "profileID"));
	r->state_path = profiles_state_path(inst->base_dir, r->id);
	memcpy(r->key, ps->key, sizeof(r->key));
	struct json *shown = json_new_object();
	json_set_string(shown, "profileID", r->id);
	json_set_string(shown, "name", json_get_string(profile, "name"));
	if (scheduled)
		json_set_bool(shown, "scheduled", true);
	r->lane = instance_archive_lane_open(inst->archive);
	if (instance_jobs_start(inst->jobs, &profile_job_kind, shown, NULL, r, job_id_r, error_r) <
	    0) {
		instance_archive_lane_close(inst->archive, &r->lane);
		r->ps = NULL;
		profile_run_free(r);
		return -1;
	}
	snprintf(ps->running, sizeof(ps->running), "%s", json_get_string(profile, "profileID"));
	json_set_int(profile, "lastStarted", (long long)time(NULL));
	return 0;
}

/* ---- the schedule ---- */

static bool profiles_due(const struct json *p, time_t now)
{
	const char *schedule = json_get_string(p, "schedule");
	long long started = 0, finished = 0, minutes = 60, pause = 60;
	(void)json_get_int(p, "lastStarted", &started);
	(void)json_get_int(p, "lastFinished", &finished);
	(void)json_get_int(p, "intervalMinutes", &minutes);
	(void)json_get_int(p, "pauseSeconds", &pause);
	if (schedule == NULL || strcmp(schedule, "manual") == 0)
		return false;
	if (strcmp(schedule, "interval") == 0)
		return started == 0 || now >= started + minutes * 60;
	return finished == 0 ? started == 0 : now >= finished + pause;
}

static void profiles_tick(evutil_socket_t fd, short what, void *context)
{
	(void)fd;
	(void)what;
	struct instance_profiles *ps = context;
	if (ps->inst->frozen || ps->inst->stopping || instance_jobs_running(ps->inst->jobs) != NULL)
		return;
	time_t now = time(NULL);
	struct json *list = profiles_list(ps);
	for (size_t i = 0; i < json_count(list); i++) {
		struct json *p = json_at(list, i);
		if (!profiles_due(p, now))
			continue;
		const char *id, *error;
		if (profiles_start_run(ps, p, true, &id, &error) < 0) {
			log_warning(tstr_printf("instance=%s", ps->inst->id),
				    "profile %s: the scheduled run did not start: %s",
				    json_get_string(p, "profileID"), error);
			/* not again at once: the next tick after the period */
			json_set_int(p, "lastStarted", (long long)now);
			json_set_int(p, "lastFinished", (long long)now);
		}
		return;
	}
}

/* ---- create, destroy ---- */

struct instance_profiles *instance_profiles_create(struct instance *inst)
{
	struct instance_profiles *ps = mem_new(struct instance_profiles);
	ps->inst = inst;
	ps->path = mem_printf("%s/%s", inst->base_dir, PROFILES_FILE);
	ps->root = json_new_object();
	json_set_int(ps->root, "nextID", 1);
	json_set(ps->root, "profiles", json_new_array());
	unsigned char master[CRYPTO_KEY_LEN];
	const char *error;
	if (archive_key_file_read(inst->key_file, master, &error) < 0) {
		log_warning(tstr_printf("instance=%s", inst->id), "profiles cannot be read: %s",
			    error);
	} else {
		crypto_kdf_derive(master, "profiles", 1, ps->key);
		crypto_wipe(master, sizeof(master));
		ps->have_key = true;
		if (profiles_load(ps, &error) < 0)
			log_warning(tstr_printf("instance=%s", inst->id), "%s: %s", ps->path,
				    error);
	}
	ps->timer = event_new(inst->base, -1, EV_PERSIST, profiles_tick, ps);
	struct timeval tv = {PROFILES_TICK_SECS, 0};
	event_add(ps->timer, &tv);
	return ps;
}

void instance_profiles_destroy(struct instance_profiles **profiles)
{
	struct instance_profiles *ps = *profiles;
	if (ps == NULL)
		return;
	if (ps->timer != NULL)
		event_free(ps->timer);
	json_unref(&ps->root);
	crypto_wipe(ps->key, sizeof(ps->key));
	mem_free(ps->path);
	mem_free(ps);
	*profiles = NULL;
}

/* ---- the calls ---- */

/* A profile as calls show it: never a secret. */
static struct json *profiles_shown(const struct json *p)
{
	struct json *out = json_clone(p);
	(void)json_remove(out, "password");
	json_set_bool(out, "hasPassword", json_get_string(p, "password") != NULL);
	return out;
}

int instance_profiles_get(struct instance_call *c)
{
	struct json *list = profiles_list(c->inst->profiles), *out = json_new_array();
	for (size_t i = 0; i < json_count(list); i++)
		json_append(out, profiles_shown(json_at(list, i)));
	c->result = out;
	return 0;
}

int instance_profiles_create_profile(struct instance_call *c)
{
	struct instance_profiles *ps = c->inst->profiles;
	if (json_count(profiles_list(ps)) >= PROFILES_MAX) {
		c->error = tstr_printf("at most %d profiles per instance", PROFILES_MAX);
		return -1;
	}
	struct json *p = profile_merge(NULL, json_get(c->args, "profile"), &c->error);
	if (p == NULL)
		return -1;
	long long next = 1;
	(void)json_get_int(ps->root, "nextID", &next);
	char *id = mem_printf("p%lld", next);
	json_set_string(p, "profileID", id);
	mem_free(id);
	json_set_int(ps->root, "nextID", next + 1);
	json_append(profiles_list(ps), p);
	if (profiles_save(ps, &c->error) < 0) {
		(void)json_remove_at(profiles_list(ps), json_count(profiles_list(ps)) - 1);
		json_set_int(ps->root, "nextID", next);
		return -1;
	}
	c->result = profiles_shown(p);
	return 0;
}

static struct json *profiles_arg(struct instance_call *c, size_t *index_r)
{
	const char *id = json_get_string(c->args, "profileID");
	struct json *p = profiles_find(c->inst->profiles, id, index_r);
	if (p == NULL)
		c->error = tstr_printf("profileID: no profile '%s'", id != NULL ? id : "");
	return p;
}

int instance_profiles_set(struct instance_call *c)
{
	struct instance_profiles *ps = c->inst->profiles;
	size_t index;
	struct json *old = profiles_arg(c, &index);
	if (old == NULL)
		return -1;
	const struct json *in = json_get(c->args, "profile");
	if (json_get(in, "profileID") != NULL) {
		c->error = "profile.profileID: cannot be changed";
		return -1;
	}
	struct json *p = profile_merge(old, in, &c->error);
	if (p == NULL)
		return -1;
	struct json *kept = json_clone(old);
	/* replaced in place, so the list keeps its order */
	struct json *list = profiles_list(ps);
	struct json *rebuilt = json_new_array();
	for (size_t i = 0; i < json_count(list); i++)
		json_append(rebuilt, i == index ? json_ref(p) : json_clone(json_at(list, i)));
	json_set(ps->root, "profiles", rebuilt);
	int ret = profiles_save(ps, &c->error);
	if (ret < 0) {
		struct json *back = json_new_array();
		for (size_t i = 0; i < json_count(rebuilt); i++)
			json_append(back,
				    i == index ? json_ref(kept) : json_clone(json_at(rebuilt, i)));
		json_set(ps->root, "profiles", back);
	} else {
		c->result = profiles_shown(p);
	}
	json_unref(&kept);
	json_unref(&p);
	return ret;
}

int instance_profiles_delete(struct instance_call *c)
{
	struct instance_profiles *ps = c->inst->profiles;
	size_t index;
	struct json *p = profiles_arg(c, &index);
	if (p == NULL)
		return -1;
	const char *id = json_get_string(p, "profileID");
	if (strcmp(ps->running, id) == 0) {
		c->error = "the profile is running: CancelJob first";
		return -1;
	}
	char *state = profiles_state_path(c->inst->base_dir, id);
	struct json *kept = json_clone(p);
	(void)json_remove_at(profiles_list(ps), index);
	if (profiles_save(ps, &c->error) < 0) {
		json_append(profiles_list(ps), kept);
		mem_free(state);
		return -1;
	}
	json_unref(&kept);
	(void)unlink(state);
	char *ca = mem_printf("%s.ca.pem", state);
	(void)unlink(ca);
	mem_free(ca);
	mem_free(state);
	c->result = json_new_object();
	return 0;
}

int instance_profiles_run(struct instance_call *c)
{
	struct json *p = profiles_arg(c, NULL);
	if (p == NULL)
		return -1;
	const char *id;
	if (profiles_start_run(c->inst->profiles, p, false, &id, &c->error) < 0)
		return -1;
	c->result = json_new_object();
	json_set_string(c->result, "jobID", id);
	return 0;
}

int instance_profiles_results(struct instance_call *c)
{
	const char *id = json_get_string(c->args, "profileID");
	struct json *all = instance_jobs_of_kind(c->inst->jobs, PROFILES_JOB_KIND);
	struct json *out = json_new_array();
	for (size_t i = 0; i < json_count(all); i++) {
		const struct json *j = json_at(all, i);
		const char *pid = json_get_string(json_get(j, "arguments"), "profileID");
		if (id != NULL && (pid == NULL || strcmp(pid, id) != 0))
			continue;
		struct json *row = json_clone(j);
		/* the report with every failure: GetWorkerResultReport */
		(void)json_remove(json_get(row, "result"), "report");
		(void)json_remove(row, "log");
		json_append(out, row);
	}
	json_unref(&all);
	c->result = out;
	return 0;
}

int instance_profiles_result_report(struct instance_call *c)
{
	struct json *all = instance_jobs_of_kind(c->inst->jobs, PROFILES_JOB_KIND);
	const char *id = json_get_string(c->args, "jobID");
	for (size_t i = 0; i < json_count(all); i++) {
		const struct json *j = json_at(all, i);
		if (id != NULL && strcmp(json_get_string(j, "jobID"), id) == 0) {
			c->result = json_clone(j);
			break;
		}
	}
	json_unref(&all);
	if (c->result == NULL) {
		c->error = tstr_printf("jobID: no profile run '%s' (GetWorkerResults lists them)",
				       id != NULL ? id : "");
		return -1;
	}
	return 0;
}
