/* access-web-export: downloads made of stored message bytes (ClientFetch
 * with raw): one original message, or a selection as a zip of .eml files
 * or one mbox. A selection is fetched in batches, so no single reply from
 * an instance grows large; the whole export is capped in size. */
#include "access-web-private.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mbox-writer.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"
#include "zip-writer.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT_MAX_IDS 1000
#define EXPORT_BATCH 100
#define EXPORT_MAX_BYTES (512ULL * 1024 * 1024)

/* The bytes of message `m` within a ClientFetch blob; false if out of range. */
static bool export_slice(const struct json *m, const void *blob, size_t blob_len,
			 const unsigned char **data_r, size_t *len_r)
{
	long long offset, length;
	if (json_get_int(m, "offset", &offset) != 1 || json_get_int(m, "length", &length) != 1 ||
	    offset < 0 || length < 0 || (unsigned long long)offset > blob_len ||
	    (unsigned long long)length > blob_len - (size_t)offset)
		return false;
	*data_r = (const unsigned char *)blob + offset;
	*len_r = (size_t)length;
	return true;
}

/* ---- one original message ---- */

static void export_raw_done(struct web_call *call, const struct json *result, const void *blob,
			    size_t blob_len)
{
	const struct json *m = json_at(json_get(result, "messages"), 0);
	const unsigned char *data;
	size_t len;
	if (m == NULL || !export_slice(m, blob, blob_len, &data, &len)) {
		access_web_call_reply_error(call, 404, "not-found", "no such message");
		return;
	}
	long long id = 0;
	(void)json_get_int(m, "id", &id);
	char *disposition = access_web_content_disposition(tstr_printf("message-%lld.eml", id));
	http_request_add_header(call->req, "Content-Disposition", disposition);
	http_request_add_header(call->req, "Content-Security-Policy", "default-src 'none'; sandbox");
	mem_free(disposition);
	log_info(access_web_context(call), "download message %lld (%zu bytes)", id, len);
	access_web_reply(call->req, 200, "message/rfc822", data, len);
	call->req = NULL;
	access_web_call_free(call);
}

void access_web_export_raw(struct web_call *call, long long id)
{
	struct json *args = json_new_object(), *ids = json_new_array();
	json_append(ids, json_new_int(id));
	json_set(args, "ids", ids);
	json_set_bool(args, "raw", true);
	access_web_api_call(call, "ClientFetch", args, export_raw_done);
}

/* ---- a selection ---- */

struct export_work {
	long long *ids;
	size_t count, next;
	bool zip;
	struct str *out;
	struct zip_writer *zw;
	size_t messages;
};

static void export_work_free(void *ctx)
{
	struct export_work *w = ctx;
	zip_writer_destroy(&w->zw);
	str_destroy(&w->out);
	mem_free(w->ids);
	mem_free(w);
}

/* Ids "1,2,3" (also spaces): 1 to EXPORT_MAX_IDS positive numbers. */
static int export_parse_ids(const char *text, long long **ids_r, size_t *count_r,
			    const char **error_r)
{
	long long *ids = mem_calloc(EXPORT_MAX_IDS, sizeof(long long));
	size_t count = 0;
	const char *p = text == NULL ? "" : text;
	while (*p != '\0') {
		while (*p == ',' || *p == ' ')
			p++;
		if (*p == '\0')
			break;
		char *end;
		long long id = strtoll(p, &end, 10);
		if (end == p || id <= 0 || (*end != ',' && *end != ' ' && *end != '\0')) {
			*error_r = "ids: expected message IDs separated by commas";
			mem_free(ids);
			return -1;
		}
		if (count == EXPORT_MAX_IDS) {
			*error_r = tstr_printf("ids: at most %d messages per export", EXPORT_MAX_IDS);
			mem_free(ids);
			return -1;
		}
		ids[count++] = id;
		p = end;
	}
	if (count == 0) {
		*error_r = "ids: name at least one message";
		mem_free(ids);
		return -1;
	}
	*ids_r = ids;
	*count_r = count;
	return 0;
}

static void export_next_batch(struct web_call *call);

static int export_add(struct web_call *call, struct export_work *w, const struct json *m,
		      const unsigned char *data, size_t len)
{
	long long id = 0, date = 0;
	(void)json_get_int(m, "id", &id);
	(void)json_get_int(m, "internalDate", &date);
	if (str_len(w->out) + len > EXPORT_MAX_BYTES) {
		access_web_call_reply_error(call, 413, "too-large",
					    tstr_printf("the selection is larger than %llu MiB: "
							"export fewer messages at a time",
							EXPORT_MAX_BYTES >> 20));
		return -1;
	}
	if (w->zip) {
		const char *folder = json_get_string(m, "folder");
		const char *name = tstr_printf("%s/%lld.eml", folder != NULL && folder[0] != '\0' ?
					       folder : "messages", id);
		const char *error;
		if (zip_writer_add(w->zw, name, data, len, (time_t)date, &error) < 0) {
			access_web_call_reply_error(call, 413, "too-large", error);
			return -1;
		}
	} else {
		mbox_writer_append(w->out, data, len, (time_t)date);
	}
	w->messages++;
	return 0;
}

static void export_batch_done(struct web_call *call, const struct json *result, const void *blob,
			      size_t blob_len)
{
	struct export_work *w = call->work;
	const struct json *list = json_get(result, "messages");
	for (size_t i = 0; i < json_count(list); i++) {
		const unsigned char *data;
		size_t len;
		if (!export_slice(json_at(list, i), blob, blob_len, &data, &len)) {
			access_web_call_reply_error(call, 500, "failed",
						    "the archive sent a damaged answer");
			return;
		}
		if (export_add(call, w, json_at(list, i), data, len) < 0)
			return;
	}
	export_next_batch(call);
}

static void export_finish(struct web_call *call)
{
	struct export_work *w = call->work;
	if (w->messages == 0) {
		/* Nothing the user may read: the same as IDs that do not exist. */
		access_web_call_reply_error(call, 404, "not-found", "no such message");
		return;
	}
	if (w->zip)
		zip_writer_finish(&w->zw);
	char *disposition = access_web_content_disposition(w->zip ? "messages.zip" : "messages.mbox");
	http_request_add_header(call->req, "Content-Disposition", disposition);
	http_request_add_header(call->req, "Content-Security-Policy", "default-src 'none'; sandbox");
	mem_free(disposition);
	log_info(access_web_context(call), "export of %zu message(s) as %s (%zu bytes)", w->messages,
		 w->zip ? "zip" : "mbox", str_len(w->out));
	access_web_reply(call->req, 200, w->zip ? "application/zip" : "application/mbox",
			 str_c(w->out), str_len(w->out));
	call->req = NULL;
	access_web_call_free(call);
}

static void export_next_batch(struct web_call *call)
{
	struct export_work *w = call->work;
	if (w->next >= w->count) {
		export_finish(call);
		return;
	}
	struct json *args = json_new_object(), *ids = json_new_array();
	for (size_t i = 0; i < EXPORT_BATCH && w->next < w->count; i++)
		json_append(ids, json_new_int(w->ids[w->next++]));
	json_set(args, "ids", ids);
	json_set_bool(args, "raw", true);
	access_web_api_call(call, "ClientFetch", args, export_batch_done);
}

void access_web_export_selection(struct web_call *call)
{
	const char *format = access_web_api_param(call, "format");
	const char *error;
	long long *ids;
	size_t count;
	if (format == NULL || (strcmp(format, "zip") != 0 && strcmp(format, "mbox") != 0)) {
		access_web_call_reply_error(call, 400, "bad-request", "format: zip or mbox");
		return;
	}
	if (export_parse_ids(access_web_api_param(call, "ids"), &ids, &count, &error) < 0) {
		access_web_call_reply_error(call, 400, "bad-request", error);
		return;
	}
	struct export_work *w = mem_new(struct export_work);
	w->ids = ids;
	w->count = count;
	w->zip = strcmp(format, "zip") == 0;
	w->out = str_create(64 * 1024);
	if (w->zip)
		w->zw = zip_writer_create(w->out);
	call->work = w;
	call->work_free = export_work_free;
	export_next_batch(call);
}
