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

/* ---- the work ---- */

enum export_mode { EXPORT_RAW, EXPORT_ZIP, EXPORT_MBOX };

struct export_work {
	enum export_mode mode;
	long long *ids;
	size_t count, next;
	struct str *out;
	struct zip_writer *zw;
	size_t messages;
	long long raw_id;
	/* a message larger than one answer, gathered piece by piece */
	struct str *piece;
	struct json *piece_meta;
};

static void export_work_free(void *ctx)
{
	struct export_work *w = ctx;
	zip_writer_destroy(&w->zw);
	str_destroy(&w->out);
	str_destroy(&w->piece);
	json_unref(&w->piece_meta);
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
static void export_fetch(struct web_call *call, struct json *ids, long long skip);

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
	if (w->mode == EXPORT_RAW) {
		str_append_n(w->out, data, len);
		w->raw_id = id;
	} else if (w->mode == EXPORT_ZIP) {
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

/* One message of an answer: 0 taken, 1 the rest of it was asked for, -1
 * answered (an error). */
static int export_take(struct web_call *call, struct export_work *w, const struct json *m,
		       const unsigned char *data, size_t len)
{
	bool partial = json_get_bool(m, "partial", false);
	if (w->piece == NULL && !partial)
		return export_add(call, w, m, data, len);
	if (w->piece == NULL) {
		w->piece = str_create(len * 2);
		w->piece_meta = json_clone(m);
	}
	str_append_n(w->piece, data, len);
	if (partial) {
		if (str_len(w->piece) + str_len(w->out) > EXPORT_MAX_BYTES) {
			access_web_call_reply_error(call, 413, "too-large",
						    "the selection is too large to export at once");
			return -1;
		}
		long long id = 0;
		(void)json_get_int(m, "id", &id);
		struct json *ids = json_new_array();
		json_append(ids, json_new_int(id));
		export_fetch(call, ids, (long long)str_len(w->piece));
		return 1;
	}
	int ret = export_add(call, w, w->piece_meta, (const unsigned char *)str_c(w->piece),
			     str_len(w->piece));
	str_destroy(&w->piece);
	json_unref(&w->piece_meta);
	return ret;
}

static void export_batch_done(struct web_call *call, const struct json *result, const void *blob,
			      size_t blob_len)
{
	struct export_work *w = call->work;
	const struct json *list = json_get(result, "messages");
	size_t batch_start = w->next;
	if (json_count(list) == 0 && w->piece != NULL) {
		/* the rest of a message did not come (deleted meanwhile) */
		str_destroy(&w->piece);
		json_unref(&w->piece_meta);
	} else if (json_count(list) == 0) {
		/* none answered: no message of the batch is the user's to read */
		w->next = w->next + EXPORT_BATCH < w->count ? w->next + EXPORT_BATCH : w->count;
	}
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json *m = json_at(list, i);
		const unsigned char *data;
		size_t len;
		long long id = 0;
		(void)json_get_int(m, "id", &id);
		if (!export_slice(m, blob, blob_len, &data, &len)) {
			access_web_call_reply_error(call, 500, "failed",
						    "the archive sent a damaged answer");
			return;
		}
		/* The instance answers in order and may stop early (its answer
		 * has a size budget): go on after the last message it sent. */
		for (size_t k = batch_start; k < w->count; k++) {
			if (w->ids[k] == id) {
				w->next = k + 1;
				break;
			}
		}
		if (export_take(call, w, m, data, len) != 0)
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
	if (w->mode == EXPORT_ZIP)
		zip_writer_finish(&w->zw);
	const char *name = w->mode == EXPORT_ZIP ? "messages.zip" : w->mode == EXPORT_MBOX ?
			   "messages.mbox" : tstr_printf("message-%lld.eml", w->raw_id);
	const char *type = w->mode == EXPORT_ZIP ? "application/zip" : w->mode == EXPORT_MBOX ?
			   "application/mbox" : "message/rfc822";
	char *disposition = access_web_content_disposition(name);
	http_request_add_header(call->req, "Content-Disposition", disposition);
	http_request_add_header(call->req, "Content-Security-Policy", "default-src 'none'; sandbox");
	mem_free(disposition);
	if (w->mode == EXPORT_RAW)
		log_info(access_web_context(call), "download message %lld (%zu bytes)", w->raw_id,
			 str_len(w->out));
	else
		log_info(access_web_context(call), "export of %zu message(s) as %s (%zu bytes)",
			 w->messages, w->mode == EXPORT_ZIP ? "zip" : "mbox", str_len(w->out));
	access_web_reply(call->req, 200, type, str_c(w->out), str_len(w->out));
	call->req = NULL;
	access_web_call_free(call);
}

static void export_fetch(struct web_call *call, struct json *ids, long long skip)
{
	struct json *args = json_new_object();
	json_set(args, "ids", ids);
	json_set_bool(args, "raw", true);
	/* a selection needs the export privilege (one original does not) */
	if (((struct export_work *)call->work)->mode != EXPORT_RAW)
		json_set_bool(args, "export", true);
	if (skip > 0)
		json_set_int(args, "skip", skip);
	access_web_api_call(call, "ClientFetch", args, export_batch_done);
}

static void export_next_batch(struct web_call *call)
{
	struct export_work *w = call->work;
	if (w->next >= w->count) {
		export_finish(call);
		return;
	}
	struct json *ids = json_new_array();
	for (size_t i = w->next; i < w->next + EXPORT_BATCH && i < w->count; i++)
		json_append(ids, json_new_int(w->ids[i]));
	export_fetch(call, ids, 0);
}

static void export_start(struct web_call *call, enum export_mode mode, long long *ids,
			 size_t count)
{
	struct export_work *w = mem_new(struct export_work);
	w->mode = mode;
	w->ids = ids;
	w->count = count;
	w->out = str_create(64 * 1024);
	if (mode == EXPORT_ZIP)
		w->zw = zip_writer_create(w->out);
	call->work = w;
	call->work_free = export_work_free;
	export_next_batch(call);
}

void access_web_export_raw(struct web_call *call, long long id)
{
	long long *ids = mem_new(long long);
	ids[0] = id;
	export_start(call, EXPORT_RAW, ids, 1);
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
	export_start(call, strcmp(format, "zip") == 0 ? EXPORT_ZIP : EXPORT_MBOX, ids, count);
}
