/* access-web-export: downloads of stored messages: one original message, or
 * a selection as a zip of .eml files or one mbox.
 *
 * The instance builds the download (ClientExport) and hands it out in
 * pieces (ClientExportRead); this side only forwards them. The next piece
 * is asked for once the previous one has gone out to the client, so a slow
 * client slows only its own download, one piece is held here at a time,
 * and nothing is built or copied on this server's event loop beyond that
 * piece. A client that goes away ends the export in the instance
 * (ClientExportEnd). */
#include "access-web-private.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "tstr.h"

#include <stdlib.h>
#include <string.h>

/* The instance refuses more; checked here too so a long query is answered
 * before it travels. */
#define EXPORT_MAX_IDS 1000

enum export_mode { EXPORT_RAW, EXPORT_ZIP, EXPORT_MBOX };

static const char *const export_formats[] = {"eml", "zip", "mbox"};

struct export_work {
	enum export_mode mode;
	long long export_id;
	unsigned long long size, offset;
	long long messages, first_id;
	bool end;  /* the last piece has been asked for */
	bool gone; /* the client went away */
};

static void export_work_free(void *ctx)
{
	mem_free(ctx);
}

/* Ids "1,2,3" (also spaces): 1 to EXPORT_MAX_IDS positive numbers. */
static struct json *export_parse_ids(const char *text, const char **error_r)
{
	struct json *ids = json_new_array();
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
			json_unref(&ids);
			return NULL;
		}
		if (json_count(ids) == EXPORT_MAX_IDS) {
			*error_r =
				tstr_printf("ids: at most %d messages per export", EXPORT_MAX_IDS);
			json_unref(&ids);
			return NULL;
		}
		json_append(ids, json_new_int(id));
		p = end;
	}
	if (json_count(ids) == 0) {
		*error_r = "ids: name at least one message";
		json_unref(&ids);
		return NULL;
	}
	return ids;
}

/* ---- the end ---- */

static void export_log_done(struct web_call *call, struct export_work *w, const char *how)
{
	if (w->mode == EXPORT_RAW)
		log_info(access_web_context(call), "download message %lld (%llu bytes)%s",
			 w->first_id, w->size, how);
	else
		log_info(access_web_context(call), "export of %lld message(s) as %s (%llu bytes)%s",
			 w->messages, export_formats[w->mode], w->size, how);
}

static void export_end_ignored(struct web_call *call, const struct json *result, const void *blob,
			       size_t blob_len)
{
	access_web_call_free(call);
}

/* The answer ends here; the instance drops the export, the call ends. */
static void export_end(struct web_call *call)
{
	struct export_work *w = call->work;
	http_request_reply_end(call->req);
	call->req = NULL;
	call->streaming = false;
	struct json *args = json_new_object();
	json_set_int(args, "export", w->export_id);
	/* answered into the void; an error is answered to no one either */
	access_web_api_call(call, "ClientExportEnd", args, export_end_ignored);
}

/* The client went away. */
static void export_abandon(struct web_call *call)
{
	struct export_work *w = call->work;
	export_log_done(call, w, tstr_printf(": the client left after %llu bytes", w->offset));
	export_end(call);
}

static void export_gone(struct http_request *req, void *ctx)
{
	struct web_call *call = ctx;
	struct export_work *w = call->work;
	w->gone = true;
	if (!call->waiting_instance)
		export_abandon(call);
}

/* ---- pieces ---- */

static void export_read_next(struct web_call *call);

static void export_sent(struct http_request *req, void *ctx)
{
	struct web_call *call = ctx;
	struct export_work *w = call->work;
	if (!w->end) {
		export_read_next(call);
		return;
	}
	export_log_done(call, w, "");
	http_request_reply_end(call->req);
	call->req = NULL;
	access_web_call_free(call);
}

static void export_piece(struct web_call *call, const struct json *result, const void *blob,
			 size_t blob_len)
{
	struct export_work *w = call->work;
	long long offset = -1;
	call->waiting_instance = false;
	if (w->gone) {
		export_abandon(call);
		return;
	}
	(void)json_get_int(result, "offset", &offset);
	if (offset < 0 || (unsigned long long)offset != w->offset || blob_len == 0 ||
	    blob_len > w->size - w->offset) {
		access_web_call_reply_error(call, 500, "failed",
					    "the archive sent a damaged answer");
		return;
	}
	w->offset += blob_len;
	w->end = json_get_bool(result, "end", false) || w->offset == w->size;
	http_request_reply_piece(call->req, blob, blob_len, export_sent, call);
}

static void export_read_next(struct web_call *call)
{
	struct export_work *w = call->work;
	struct json *args = json_new_object();
	json_set_int(args, "export", w->export_id);
	json_set_int(args, "offset", (long long)w->offset);
	call->waiting_instance = true;
	access_web_api_call(call, "ClientExportRead", args, export_piece);
}

/* ---- the start ---- */

static void export_begun(struct web_call *call, const struct json *result, const void *blob,
			 size_t blob_len)
{
	struct export_work *w = call->work;
	long long id = 0, size = -1;
	(void)json_get_int(result, "export", &id);
	(void)json_get_int(result, "size", &size);
	(void)json_get_int(result, "messages", &w->messages);
	(void)json_get_int(result, "firstId", &w->first_id);
	if (id <= 0 || size <= 0) {
		access_web_call_reply_error(call, 500, "failed",
					    "the archive sent a damaged answer");
		return;
	}
	w->export_id = id;
	w->size = (unsigned long long)size;
	const char *name = w->mode == EXPORT_ZIP    ? "messages.zip"
			   : w->mode == EXPORT_MBOX ? "messages.mbox"
						    : tstr_printf("message-%lld.eml", w->first_id);
	const char *type = w->mode == EXPORT_ZIP    ? "application/zip"
			   : w->mode == EXPORT_MBOX ? "application/mbox"
						    : "message/rfc822";
	char *disposition = access_web_content_disposition(name);
	http_request_add_header(call->req, "Content-Disposition", disposition);
	http_request_add_header(call->req, "Content-Security-Policy",
				"default-src 'none'; sandbox");
	mem_free(disposition);
	call->streaming = true;
	http_request_set_gone(call->req, export_gone, call);
	http_request_reply_start(call->req, 200, type, w->size);
	if (strcmp(http_request_method(call->req), "HEAD") == 0) {
		/* the head is all there is to send: the export is not needed */
		export_end(call);
		return;
	}
	if (!http_request_connected(call->req)) {
		export_abandon(call);
		return;
	}
	export_read_next(call);
}

static void export_start(struct web_call *call, enum export_mode mode, struct json *ids)
{
	struct export_work *w = mem_new(struct export_work);
	w->mode = mode;
	call->work = w;
	call->work_free = export_work_free;
	struct json *args = json_new_object();
	json_set_string(args, "format", export_formats[mode]);
	json_set(args, "ids", ids);
	access_web_api_call(call, "ClientExport", args, export_begun);
}

void access_web_export_raw(struct web_call *call, long long id)
{
	struct json *ids = json_new_array();
	json_append(ids, json_new_int(id));
	export_start(call, EXPORT_RAW, ids);
}

void access_web_export_selection(struct web_call *call)
{
	const char *format = access_web_api_param(call, "format");
	const char *error = "ids: expected message IDs separated by commas";
	if (format == NULL || (strcmp(format, "zip") != 0 && strcmp(format, "mbox") != 0)) {
		access_web_call_reply_error(call, 400, "bad-request", "format: zip or mbox");
		return;
	}
	struct json *ids = export_parse_ids(access_web_api_param(call, "ids"), &error);
	if (ids == NULL) {
		access_web_call_reply_error(call, 400, "bad-request", error);
		return;
	}
	export_start(call, strcmp(format, "zip") == 0 ? EXPORT_ZIP : EXPORT_MBOX, ids);
}
