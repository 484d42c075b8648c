/* archive-retention: legal holds, retention policies and the rules they make. */
#include "archive-retention.h"
#include "array.h"
#include "catalog.h"
#include "json.h"
#include "mem.h"
#include "search-query.h"
#include "str.h"
#include "tstr.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- policies in the catalog: lists as newline-separated text ---- */

static char *retention_join(const char *const *items, size_t count)
{
	struct str *s = str_create(64);
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			str_append(s, "\n");
		str_append(s, items[i]);
	}
	char *out = mem_strdup(str_c(s));
	str_destroy(&s);
	return out;
}

static int retention_check_list(const char *what, const char *const *items, size_t count,
				const char **error_r)
{
	for (size_t i = 0; i < count; i++) {
		if (items[i] == NULL || items[i][0] == '\0' || strchr(items[i], '\n') != NULL) {
			*error_r = tstr_printf("%s: an entry is empty or has a line break", what);
			return -1;
		}
	}
	return 0;
}

static int retention_check_policy(const struct archive_policy *p, const char **error_r)
{
	struct search_query *q;
	if (p->name == NULL || p->name[0] == '\0') {
		*error_r = "name: every policy needs one";
		return -1;
	}
	if (p->days < 0 || p->days > ARCHIVE_RETENTION_DAYS_MAX) {
		*error_r = tstr_printf("policy '%s': days %lld: 0 to %d", p->name,
				       (long long)p->days, ARCHIVE_RETENTION_DAYS_MAX);
		return -1;
	}
	if (retention_check_list("users", p->users, p->user_count, error_r) < 0 ||
	    retention_check_list("folders", p->folders, p->folder_count, error_r) < 0)
		return -1;
	if (p->query != NULL && p->query[0] != '\0') {
		if (search_query_parse(p->query, &q, error_r) < 0) {
			*error_r = tstr_printf("policy '%s': query: %s", p->name, *error_r);
			return -1;
		}
		search_query_destroy(&q);
	}
	return 0;
}

int archive_retention_set_policies(struct catalog *cat, const struct archive_policy *policies,
				   size_t count, const char **error_r)
{
	if (count > ARCHIVE_RETENTION_POLICIES_MAX) {
		*error_r = tstr_printf("policies: at most %d", ARCHIVE_RETENTION_POLICIES_MAX);
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		if (retention_check_policy(&policies[i], error_r) < 0)
			return -1;
	}
	struct catalog_policy *rows = mem_calloc(count + 1, sizeof(*rows));
	for (size_t i = 0; i < count; i++) {
		const struct archive_policy *p = &policies[i];
		rows[i] = (struct catalog_policy){
			.name = p->name,
			.kind = p->maximum ? 1 : 0,
			.days = p->days,
			.users = retention_join(p->users, p->user_count),
			.folders = retention_join(p->folders, p->folder_count),
			.query = p->query != NULL ? p->query : "",
		};
	}
	int ret = catalog_begin(cat, error_r);
	if (ret == 0 && (catalog_policies_replace(cat, rows, count, error_r) < 0 ||
			 catalog_commit(cat, error_r) < 0)) {
		catalog_rollback(cat);
		ret = -1;
	}
	for (size_t i = 0; i < count; i++) {
		mem_free((char *)rows[i].users);
		mem_free((char *)rows[i].folders);
	}
	mem_free(rows);
	return ret;
}

/* ---- policies as JSON (SetRetentionPolicies, coffer archive retention) ---- */

/* A JSON list of strings, or absent; borrowed strings into *items_r. */
static int retention_list_arg(const struct json *policy, const char *key, const char ***items_r,
			      size_t *count_r, const char **error_r)
{
	const struct json *list = json_get(policy, key);
	*items_r = NULL;
	*count_r = 0;
	if (list == NULL)
		return 0;
	if (json_kind(list) != JSON_KIND_ARRAY) {
		*error_r = tstr_printf("%s: a list of names", key);
		return -1;
	}
	*items_r = mem_calloc(json_count(list) + 1, sizeof(char *));
	for (size_t i = 0; i < json_count(list); i++) {
		if (((*items_r)[i] = json_string_of(json_at(list, i))) == NULL) {
			*error_r = tstr_printf("%s: a list of names", key);
			return -1;
		}
	}
	*count_r = json_count(list);
	return 0;
}

static int retention_policy_arg(const struct json *o, struct archive_policy *p,
				const char **error_r)
{
	const char *type = json_get_string(o, "type");
	long long days;
	if (json_kind(o) != JSON_KIND_OBJECT) {
		*error_r = "policies: a list of {name, type, days, users, folders, query}";
		return -1;
	}
	p->name = json_get_string(o, "name");
	p->query = json_get_string(o, "query");
	if (type == NULL || (strcmp(type, "minimum") != 0 && strcmp(type, "maximum") != 0)) {
		*error_r = tstr_printf("policy '%s': type: minimum or maximum",
				       p->name != NULL ? p->name : "");
		return -1;
	}
	p->maximum = strcmp(type, "maximum") == 0;
	if (json_get_int(o, "days", &days) < 0) {
		*error_r = tstr_printf("policy '%s': days: a whole number",
				       p->name != NULL ? p->name : "");
		return -1;
	}
	p->days = days;
	const char **users, **folders;
	if (retention_list_arg(o, "users", &users, &p->user_count, error_r) < 0 ||
	    (p->users = users,
	     retention_list_arg(o, "folders", &folders, &p->folder_count, error_r) < 0))
		return -1;
	p->folders = folders;
	return 0;
}

int archive_retention_policies_parse(const struct json *list, struct archive_policy **policies_r,
				     size_t *count_r, const char **error_r)
{
	if (list == NULL || json_kind(list) != JSON_KIND_ARRAY) {
		*error_r = "policies: a JSON list of {name, type (minimum or maximum), days, "
			   "users, folders, query}";
		return -1;
	}
	size_t count = json_count(list);
	struct archive_policy *policies = mem_calloc(count + 1, sizeof(*policies));
	int ret = 0;
	for (size_t i = 0; ret == 0 && i < count; i++)
		ret = retention_policy_arg(json_at(list, i), &policies[i], error_r);
	if (ret < 0) {
		archive_retention_policies_parsed_free(&policies, count);
		return -1;
	}
	*policies_r = policies;
	*count_r = count;
	return 0;
}

void archive_retention_policies_parsed_free(struct archive_policy **policies, size_t count)
{
	for (size_t i = 0; *policies != NULL && i < count; i++) {
		mem_free((void *)(*policies)[i].users);
		mem_free((void *)(*policies)[i].folders);
	}
	mem_free(*policies);
	*policies = NULL;
}

/* One policy as read back: the lists split. */
struct retention_policy {
	char *name, *query;
	bool maximum;
	int64_t days;
	ARRAY(char *) users;
	ARRAY(char *) folders;
	/* the rules' view: the ids the query matches, ascending */
	ARRAY(int64_t) matches;
};

static void retention_split(const char *text, void *arr_ptr)
{
	ARRAY(char *) *arr = arr_ptr;
	const char *p = text;
	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		array_append(arr, mem_strndup(p, len));
		p = nl != NULL ? nl + 1 : NULL;
	}
}

static void retention_policy_free(struct retention_policy *p)
{
	for (size_t i = 0; i < p->users.count; i++)
		mem_free(p->users.items[i]);
	for (size_t i = 0; i < p->folders.count; i++)
		mem_free(p->folders.items[i]);
	array_free(&p->users);
	array_free(&p->folders);
	array_free(&p->matches);
	mem_free(p->name);
	mem_free(p->query);
}

typedef ARRAY(struct retention_policy) retention_policies_t;

static void retention_policy_row(const struct catalog_policy *row, void *context)
{
	retention_policies_t *list = context;
	struct retention_policy *p = array_push(list);
	p->name = mem_strdup(row->name);
	p->query = mem_strdup(row->query);
	p->maximum = row->kind == 1;
	p->days = row->days;
	retention_split(row->users, &p->users);
	retention_split(row->folders, &p->folders);
}

static void retention_policies_free(retention_policies_t *list)
{
	for (size_t i = 0; i < list->count; i++)
		retention_policy_free(&list->items[i]);
	array_free(list);
}

int archive_retention_policies(struct catalog *cat, archive_policy_cb *cb, void *context,
			       const char **error_r)
{
	retention_policies_t list = ARRAY_INIT;
	if (catalog_policies(cat, retention_policy_row, &list, error_r) < 0) {
		retention_policies_free(&list);
		return -1;
	}
	for (size_t i = 0; i < list.count; i++) {
		struct retention_policy *p = &list.items[i];
		struct archive_policy out = {
			.name = p->name,
			.maximum = p->maximum,
			.days = p->days,
			.users = (const char *const *)p->users.items,
			.user_count = p->users.count,
			.folders = (const char *const *)p->folders.items,
			.folder_count = p->folders.count,
			.query = p->query,
		};
		cb(&out, context);
	}
	retention_policies_free(&list);
	return 0;
}

/* ---- legal holds ---- */

int archive_retention_set_hold(struct catalog *cat, const char *user, bool on, const char *reason,
			       int64_t now, const char **error_r)
{
	if (user != NULL && user[0] == '\0') {
		*error_r = "user: empty (leave it out to hold the whole instance)";
		return -1;
	}
	int ret = catalog_begin(cat, error_r);
	if (ret == 0 && (catalog_hold_set(cat, user != NULL ? user : "", on, now,
					  reason != NULL ? reason : "", error_r) < 0 ||
			 catalog_commit(cat, error_r) < 0)) {
		catalog_rollback(cat);
		ret = -1;
	}
	return ret;
}

struct retention_holds_walk {
	archive_hold_cb *cb;
	void *context;
};

static void retention_hold_row(const char *user, int64_t since, const char *reason, void *context)
{
	struct retention_holds_walk *w = context;
	w->cb(user[0] == '\0' ? NULL : user, since, reason, w->context);
}

int archive_retention_holds(struct catalog *cat, archive_hold_cb *cb, void *context,
			    const char **error_r)
{
	struct retention_holds_walk w = {cb, context};
	return catalog_holds(cat, retention_hold_row, &w, error_r);
}

/* ---- the rules in effect ---- */

struct archive_retention_rules {
	int64_t now;
	bool instance_held;
	ARRAY(char *) held_users;
	retention_policies_t policies;
};

static void retention_rules_hold(const char *user, int64_t since, const char *reason, void *context)
{
	struct archive_retention_rules *r = context;
	if (user[0] == '\0')
		r->instance_held = true;
	else
		array_append(&r->held_users, mem_strdup(user));
}

static int retention_match_add(int64_t id, void *context)
{
	struct retention_policy *p = context;
	array_append(&p->matches, id);
	return 0;
}

int archive_retention_rules_reload_holds(struct catalog *cat, struct archive_retention_rules *r,
					 const char **error_r)
{
	for (size_t i = 0; i < r->held_users.count; i++)
		mem_free(r->held_users.items[i]);
	array_clear(&r->held_users);
	r->instance_held = false;
	return catalog_holds(cat, retention_rules_hold, r, error_r);
}

int archive_retention_rules_load(struct catalog *cat, int64_t now,
				 struct archive_retention_rules **rules_r, const char **error_r)
{
	struct archive_retention_rules *r = mem_new(struct archive_retention_rules);
	r->now = now;
	int ret = catalog_holds(cat, retention_rules_hold, r, error_r);
	if (ret == 0)
		ret = catalog_policies(cat, retention_policy_row, &r->policies, error_r);
	for (size_t i = 0; ret == 0 && i < r->policies.count; i++) {
		struct retention_policy *p = &r->policies.items[i];
		/* ascending ids (catalog_search_ids): looked up by bsearch */
		if (p->query[0] != '\0' &&
		    catalog_search_ids(cat, p->query, NULL, retention_match_add, p, error_r) < 0) {
			*error_r = tstr_printf("policy '%s': %s", p->name, *error_r);
			ret = -1;
		}
	}
	if (ret < 0) {
		archive_retention_rules_free(&r);
		return -1;
	}
	*rules_r = r;
	return 0;
}

void archive_retention_rules_free(struct archive_retention_rules **rules)
{
	struct archive_retention_rules *r = *rules;
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->held_users.count; i++)
		mem_free(r->held_users.items[i]);
	array_free(&r->held_users);
	retention_policies_free(&r->policies);
	mem_free(r);
	*rules = NULL;
}

bool archive_retention_held(const struct archive_retention_rules *r, const char *user)
{
	if (r->instance_held)
		return true;
	for (size_t i = 0; i < r->held_users.count; i++) {
		if (strcmp(r->held_users.items[i], user) == 0)
			return true;
	}
	return false;
}

static int retention_id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Whether the policy's limits (users, folders, query) take the message in. */
static bool retention_covers(const struct retention_policy *p,
			     const struct catalog_message_ref *ref)
{
	bool user_ok = p->users.count == 0;
	for (size_t i = 0; !user_ok && i < p->users.count; i++)
		user_ok = strcmp(p->users.items[i], ref->user) == 0;
	bool folder_ok = p->folders.count == 0;
	for (size_t i = 0; !folder_ok && i < p->folders.count; i++) {
		const char *f = p->folders.items[i];
		size_t len = strlen(f);
		folder_ok = strncmp(ref->path, f, len) == 0 &&
			    (ref->path[len] == '\0' || ref->path[len] == '/');
	}
	if (!user_ok || !folder_ok)
		return false;
	return p->query[0] == '\0' || bsearch(&ref->id, p->matches.items, p->matches.count,
					      sizeof(int64_t), retention_id_cmp) != NULL;
}

static int64_t retention_cutoff(const struct archive_retention_rules *r,
				const struct retention_policy *p)
{
	return r->now - p->days * 86400;
}

static const char *retention_day(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32];
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
	return tstr_dup(buf);
}

const char *archive_retention_blocks(const struct archive_retention_rules *r,
				     const struct catalog_message_ref *ref)
{
	if (r->instance_held)
		return "a legal hold on the whole instance";
	if (archive_retention_held(r, ref->user))
		return tstr_printf("a legal hold on the archive of '%s'", ref->user);
	for (size_t i = 0; i < r->policies.count; i++) {
		const struct retention_policy *p = &r->policies.items[i];
		if (!p->maximum && ref->date > retention_cutoff(r, p) && retention_covers(p, ref))
			return tstr_printf("the minimum keep time of policy '%s' (%lld days, "
					   "until %s)",
					   p->name, (long long)p->days,
					   retention_day(ref->date + p->days * 86400));
	}
	return NULL;
}

const char *archive_retention_expired(const struct archive_retention_rules *r,
				      const struct catalog_message_ref *ref)
{
	for (size_t i = 0; i < r->policies.count; i++) {
		const struct retention_policy *p = &r->policies.items[i];
		if (p->maximum && ref->date < retention_cutoff(r, p) && retention_covers(p, ref))
			return p->name;
	}
	return NULL;
}

int64_t archive_retention_expiry_bound(const struct archive_retention_rules *r)
{
	int64_t bound = INT64_MIN;
	for (size_t i = 0; i < r->policies.count; i++) {
		const struct retention_policy *p = &r->policies.items[i];
		if (p->maximum && retention_cutoff(r, p) > bound)
			bound = retention_cutoff(r, p);
	}
	return bound;
}
