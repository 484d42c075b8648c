/* instance-client-web: reading one message as Web Access shows it, its
 * attachments, and the user's own password and MFA (see the header). */
#include "instance-client-web.h"
#include "instance-calls.h"
#include "instance-rights.h"
#include "archive.h"
#include "catalog.h"
#include "instance-archive.h"
#include "instance-users.h"
#include "instance.h"
#include "json.h"
#include "mem.h"
#include "mime-view.h"
#include "tstr.h"

#include <string.h>

struct web_request {
	struct instance *inst;
	const struct json *args;
	const struct json *user; /* instance_users_client_view() */
	const char *user_name;
	const char **code_r, **error_r;
};

static int web_fail(struct web_request *r, const char *code, const char *error)
{
	*r->code_r = code;
	*r->error_r = error;
	return -1;
}

/* The raw bytes of the message in args "id", if the user may read it. */
static int web_read_message(struct web_request *r, unsigned char **data_r, size_t *len_r)
{
	long long id;
	const char *error;
	if (json_get_int(r->args, "id", &id) != 1 || id <= 0)
		return web_fail(r, "bad-request", "id: a message ID (a positive integer)");
	struct archive *a = instance_archive_for_reading(r->inst->archive, &error);
	if (a == NULL)
		return web_fail(r, "failed", error);
	struct catalog_message_meta meta;
	int ret = catalog_message_meta(archive_catalog(a), id, &meta, &error);
	if (ret < 0)
		return web_fail(r, "failed", error);
	/* A message the user may not read answers exactly like one that does
	 * not exist. */
	if (ret == 0 || !instance_rights_folder(r->user, meta.user, meta.path, "read"))
		return web_fail(r, "not-found", "no such message");
	ret = archive_read_message(a, id, data_r, len_r, &error);
	if (ret < 0)
		return web_fail(r, "failed", error);
	if (ret == 0)
		return web_fail(r, "not-found", "no such message");
	return 0;
}

static int web_message_view(struct web_request *r, struct json **result_r)
{
	unsigned char *data;
	size_t len;
	if (web_read_message(r, &data, &len) < 0)
		return -1;
	struct mime_view *v = mime_view(data, len);
	mem_free(data);
	struct json *m = json_new_object(), *list = json_new_array();
	long long id = 0;
	(void)json_get_int(r->args, "id", &id);
	json_set_int(m, "id", id);
	json_set_string(m, "from", v->from);
	json_set_string(m, "to", v->to);
	json_set_string(m, "cc", v->cc);
	json_set_string(m, "subject", v->subject);
	json_set_int(m, "date", v->date);
	json_set_int(m, "size", (long long)len);
	json_set_string(m, "text", v->text);
	json_set_string(m, "html", v->html);
	for (size_t i = 0; i < v->attachment_count; i++) {
		struct json *a = json_new_object();
		json_set_string(a, "part", v->attachments[i].part);
		json_set_string(a, "filename", v->attachments[i].filename);
		json_set_string(a, "contentType", v->attachments[i].content_type);
		json_set_int(a, "size", (long long)v->attachments[i].size);
		json_append(list, a);
	}
	json_set(m, "attachments", list);
	mime_view_destroy(&v);
	*result_r = m;
	return 0;
}

static int web_part(struct web_request *r, struct json **result_r, unsigned char **blob_r,
		    size_t *blob_len_r)
{
	const char *part = json_get_string(r->args, "part");
	if (part == NULL || part[0] == '\0' || strlen(part) > 64)
		return web_fail(r, "bad-request",
				"part: a MIME section number such as \"2\" or \"1.3\"");
	unsigned char *data;
	size_t len;
	if (web_read_message(r, &data, &len) < 0)
		return -1;
	char *filename, *type;
	int found = mime_view_part(data, len, part, blob_r, blob_len_r, &filename, &type);
	mem_free(data);
	if (found == 0)
		return web_fail(r, "not-found", tstr_printf("the message has no part '%s'", part));
	if (*blob_len_r > INSTANCE_CLIENT_WEB_PART_MAX) {
		mem_free(*blob_r);
		*blob_r = NULL;
		mem_free(filename);
		mem_free(type);
		return web_fail(
			r, "too-large",
			"the part is larger than 15 MiB: download the whole message instead");
	}
	*result_r = json_new_object();
	json_set_string(*result_r, "filename", filename);
	json_set_string(*result_r, "contentType", type);
	mem_free(filename);
	mem_free(type);
	return 0;
}

/* A call of this module: the user's view is checked already (instance-calls). */
static int web_run(struct instance_call *c,
		   int (*fn)(struct web_request *r, struct instance_call *c))
{
	struct web_request r = {.inst = c->inst,
				.args = c->args,
				.user = c->user,
				.code_r = &c->code,
				.error_r = &c->error};
	int ret = fn(&r, c);
	if (ret < 0) {
		json_unref(&c->result);
		mem_free(c->blob);
		c->blob = NULL;
		return -1;
	}
	return 0;
}

static int web_call_message_view(struct web_request *r, struct instance_call *c)
{
	return web_message_view(r, &c->result);
}

static int web_call_part(struct web_request *r, struct instance_call *c)
{
	return web_part(r, &c->result, &c->blob, &c->blob_len);
}

static const char *web_user(struct web_request *r)
{
	return json_get_string(r->user, "userName");
}

static int web_call_set_password(struct web_request *r, struct instance_call *c)
{
	return instance_users_change_password(
		r->inst->users, web_user(r), json_get_string(r->args, "oldPassword"),
		json_get_string(r->args, "newPassword"), r->code_r, r->error_r);
}

static int web_call_mfa_begin(struct web_request *r, struct instance_call *c)
{
	return instance_users_mfa_begin(r->inst->users, web_user(r),
					json_get_string(r->args, "password"), &c->result, r->code_r,
					r->error_r);
}

static int web_call_mfa_activate(struct web_request *r, struct instance_call *c)
{
	return instance_users_mfa_activate(r->inst->users, web_user(r),
					   json_get_string(r->args, "code"), r->code_r, r->error_r);
}

static int web_call_mfa_disable(struct web_request *r, struct instance_call *c)
{
	return instance_users_mfa_disable(r->inst->users, web_user(r),
					  json_get_string(r->args, "password"),
					  json_get_string(r->args, "code"), r->code_r, r->error_r);
}

int instance_client_web_message_view(struct instance_call *c)
{
	return web_run(c, web_call_message_view);
}

int instance_client_web_part(struct instance_call *c)
{
	return web_run(c, web_call_part);
}

int instance_client_web_set_password(struct instance_call *c)
{
	return web_run(c, web_call_set_password);
}

int instance_client_web_mfa_begin(struct instance_call *c)
{
	return web_run(c, web_call_mfa_begin);
}

int instance_client_web_mfa_activate(struct instance_call *c)
{
	return web_run(c, web_call_mfa_activate);
}

int instance_client_web_mfa_disable(struct instance_call *c)
{
	return web_run(c, web_call_mfa_disable);
}
