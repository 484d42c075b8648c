#include "mime-view.h"
#include "array.h"
#include "mime-private.h"
#include "base64.h"
#include "mem.h"
#include "mime.h"
#include "str.h"

#include <gmime/gmime.h>
#include <stdbool.h>
#include <string.h>

#define MIME_VIEW_MAX_DEPTH 30
#define MIME_VIEW_MAX_ATTACHMENTS 1000

struct mime_view_ctx {
	const unsigned char *data; /* the message, for part bounds */
	size_t len;
	struct mime_view *view;
	ARRAY(struct mime_view_attachment) attachments; /* handed to view at the end */
	GPtrArray *cid_parts; /* GMimePart with a Content-ID, for cid: references */
	bool have_text, have_html;
};

static GMimeMessage *view_parse(const void *data, size_t len)
{
	mime_init();
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	/* parts keep their place in the message (see mime_part_bounds()) */
	g_mime_parser_set_persist_stream(parser, TRUE);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	return msg;
}

static char *view_content_type(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *type = ct != NULL ? g_mime_content_type_get_media_type(ct) : NULL;
	const char *subtype = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;
	char *s = mem_printf("%s/%s", type != NULL ? type : "text",
			     subtype != NULL ? subtype : "plain");
	for (char *p = s; *p != '\0'; p++)
		*p = g_ascii_tolower(*p);
	return s;
}

/* The decoded content of a leaf part (a GByteArray the caller unrefs). */
static GByteArray *view_decode(GMimePart *part, const unsigned char *data, size_t len)
{
	GMimeStream *content = mime_part_open(part, data, len);
	GMimeStream *mem = g_mime_stream_mem_new();
	if (content != NULL) {
		g_mime_stream_write_to_stream(content, mem);
		g_object_unref(content);
	}
	/* the array outlives the stream; the caller unrefs it */
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	g_object_unref(mem);
	return bytes;
}

static GByteArray *view_message_bytes(GMimeMessagePart *mp)
{
	GMimeMessage *inner = g_mime_message_part_get_message(mp);
	GMimeStream *mem = g_mime_stream_mem_new();
	if (inner != NULL)
		g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, mem);
	/* the array outlives the stream; the caller unrefs it */
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	g_object_unref(mem);
	return bytes;
}

static void view_add_attachment(struct mime_view_ctx *ctx, const char *section, GMimeObject *obj,
				const char *filename, size_t size)
{
	if (ctx->attachments.count >= MIME_VIEW_MAX_ATTACHMENTS)
		return;
	struct mime_view_attachment *a = array_push(&ctx->attachments);
	a->part = mem_strdup(section);
	a->filename = mime_utf8(filename);
	a->content_type = view_content_type(obj);
	a->size = size;
}

static char *view_part_text(GMimePart *part)
{
	if (!GMIME_IS_TEXT_PART(part))
		return mem_strdup("");
	gchar *text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
	char *ret = mime_utf8(text);
	g_free(text);
	if (strlen(ret) > MIME_VIEW_BODY_MAX) {
		/* cut at a character boundary */
		size_t cut = MIME_VIEW_BODY_MAX;
		while (cut > 0 && ((unsigned char)ret[cut] & 0xc0) == 0x80)
			cut--;
		ret[cut] = '\0';
	}
	return ret;
}

static void view_leaf(struct mime_view_ctx *ctx, GMimePart *part, const char *section)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	char *type = view_content_type(obj);
	const char *filename = g_mime_part_get_filename(part);
	bool attachment = g_mime_part_is_attachment(part) || filename != NULL;
	if (!attachment && strcmp(type, "text/plain") == 0 && !ctx->have_text) {
		mem_free(ctx->view->text);
		ctx->view->text = view_part_text(part);
		ctx->have_text = true;
	} else if (!attachment && strcmp(type, "text/html") == 0 && !ctx->have_html) {
		mem_free(ctx->view->html);
		ctx->view->html = view_part_text(part);
		ctx->have_html = true;
	} else {
		if (g_mime_object_get_content_id(obj) != NULL)
			g_ptr_array_add(ctx->cid_parts, part);
		/* Inline images referenced by the HTML are not listed as attachments
		 * unless they are attachments or have a name. */
		if (attachment || strncmp(type, "text/", 5) != 0) {
			if (attachment || g_mime_object_get_content_id(obj) == NULL) {
				GByteArray *bytes = view_decode(part, ctx->data, ctx->len);
				view_add_attachment(ctx, section, obj, filename, bytes->len);
				g_byte_array_unref(bytes);
			}
		}
	}
	mem_free(type);
}

static void view_walk(struct mime_view_ctx *ctx, GMimeObject *obj, const char *section, int depth);

/* The sections of a message's body below `section` ("" for the top). */
static void view_message_body(struct mime_view_ctx *ctx, GMimeObject *body, const char *section,
			      int depth)
{
	if (body == NULL)
		return;
	if (GMIME_IS_MULTIPART(body)) {
		view_walk(ctx, body, section, depth + 1);
	} else {
		char *sub = section[0] == '\0' ? mem_strdup("1") : mem_printf("%s.1", section);
		view_walk(ctx, body, sub, depth + 1);
		mem_free(sub);
	}
}

static void view_walk(struct mime_view_ctx *ctx, GMimeObject *obj, const char *section, int depth)
{
	if (depth > MIME_VIEW_MAX_DEPTH)
		return;
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++) {
			char *sub = section[0] == '\0' ? mem_printf("%d", i + 1)
						       : mem_printf("%s.%d", section, i + 1);
			view_walk(ctx, g_mime_multipart_get_part(mp, i), sub, depth + 1);
			mem_free(sub);
		}
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GByteArray *bytes = view_message_bytes(GMIME_MESSAGE_PART(obj));
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		const char *subject = inner != NULL ? g_mime_message_get_subject(inner) : NULL;
		char *name = mem_printf("%s.eml",
					subject != NULL && *subject != '\0' ? subject : "message");
		for (char *p = name; *p != '\0'; p++) {
			if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20)
				*p = '_';
		}
		view_add_attachment(ctx, section, obj, name, bytes->len);
		mem_free(name);
		g_byte_array_unref(bytes);
	} else if (GMIME_IS_PART(obj)) {
		view_leaf(ctx, GMIME_PART(obj), section);
	}
}

/* Replace "cid:ID" in the HTML by data: URLs of the message's own images. */
static void view_inline_images(struct mime_view_ctx *ctx)
{
	struct mime_view *v = ctx->view;
	for (guint i = 0; i < ctx->cid_parts->len && v->html[0] != '\0'; i++) {
		GMimePart *part = g_ptr_array_index(ctx->cid_parts, i);
		char *type = view_content_type(GMIME_OBJECT(part));
		char *needle =
			mem_printf("cid:%s", g_mime_object_get_content_id(GMIME_OBJECT(part)));
		if (strncmp(type, "image/", 6) == 0 && strstr(v->html, needle) != NULL &&
		    strpbrk(type, "\"'<> ") == NULL) {
			GByteArray *bytes = view_decode(part, ctx->data, ctx->len);
			if (bytes->len <= MIME_VIEW_INLINE_IMAGE_MAX) {
				char *b64 = base64_encode(bytes->data, bytes->len);
				char *url = mem_printf("data:%s;base64,%s", type, b64);
				struct str *out = str_create(strlen(v->html) + strlen(url));
				const char *p = v->html, *hit;
				while ((hit = strstr(p, needle)) != NULL) {
					str_append_n(out, p, (size_t)(hit - p));
					str_append(out, url);
					p = hit + strlen(needle);
				}
				str_append(out, p);
				mem_free(v->html);
				v->html = str_steal(&out);
				mem_free(url);
				mem_free(b64);
			}
			g_byte_array_unref(bytes);
		}
		mem_free(needle);
		mem_free(type);
	}
}

struct mime_view *mime_view(const void *data, size_t len)
{
	struct mime_view *v = mem_new(struct mime_view);
	v->text = mem_strdup("");
	v->html = mem_strdup("");
	struct mime_view_ctx ctx = {
		.data = data, .len = len, .view = v, .cid_parts = g_ptr_array_new()};
	GMimeMessage *msg = view_parse(data, len);
	if (msg != NULL) {
		GDateTime *date = g_mime_message_get_date(msg);
		v->date = date != NULL ? g_date_time_to_unix(date) : 0;
		v->subject = mime_utf8(g_mime_message_get_subject(msg));
		v->from = mime_addresses(g_mime_message_get_from(msg));
		v->to = mime_addresses(g_mime_message_get_to(msg));
		v->cc = mime_addresses(g_mime_message_get_cc(msg));
		view_message_body(&ctx, g_mime_message_get_mime_part(msg), "", 0);
		view_inline_images(&ctx);
	} else {
		v->subject = mem_strdup("");
		v->from = mem_strdup("");
		v->to = mem_strdup("");
		v->cc = mem_strdup("");
	}
	if (!ctx.have_text && v->html[0] != '\0') {
		mem_free(v->text);
		v->text = mime_html_to_text(v->html, strlen(v->html));
	}
	v->attachments = ctx.attachments.items;
	v->attachment_count = ctx.attachments.count;
	g_ptr_array_free(ctx.cid_parts, TRUE);
	if (msg != NULL)
		g_object_unref(msg);
	return v;
}

void mime_view_destroy(struct mime_view **_view)
{
	struct mime_view *v = *_view;
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->attachment_count; i++) {
		mem_free(v->attachments[i].part);
		mem_free(v->attachments[i].filename);
		mem_free(v->attachments[i].content_type);
	}
	mem_free(v->attachments);
	mem_free(v->subject);
	mem_free(v->from);
	mem_free(v->to);
	mem_free(v->cc);
	mem_free(v->text);
	mem_free(v->html);
	mem_free(v);
	*_view = NULL;
}

/* Follow a section number from a message's body: the object, or NULL. */
static GMimeObject *view_find(GMimeMessage *msg, const char *section)
{
	GMimeObject *obj = g_mime_message_get_mime_part(msg);
	const char *p = section;
	bool message_body = true; /* a single-part message body is its part 1 */
	for (int depth = 0; obj != NULL && depth <= MIME_VIEW_MAX_DEPTH; depth++) {
		char *end;
		if (*p < '1' || *p > '9')
			return NULL;
		unsigned long n = strtoul(p, &end, 10);
		if (GMIME_IS_MESSAGE_PART(obj)) {
			/* a number below an attached message goes into its body */
			GMimeMessage *inner =
				g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
			obj = inner != NULL ? g_mime_message_get_mime_part(inner) : NULL;
			if (obj == NULL)
				return NULL;
			message_body = true;
		}
		if (GMIME_IS_MULTIPART(obj)) {
			GMimeMultipart *mp = GMIME_MULTIPART(obj);
			if (n > (unsigned long)g_mime_multipart_get_count(mp))
				return NULL;
			obj = g_mime_multipart_get_part(mp, (int)n - 1);
		} else if (n != 1 || !message_body) {
			return NULL;
		}
		message_body = false;
		if (*end == '\0')
			return obj;
		if (*end != '.')
			return NULL;
		p = end + 1;
	}
	return NULL;
}

int mime_view_part(const void *data, size_t len, const char *section, unsigned char **bytes_r,
		   size_t *size_r, char **filename_r, char **content_type_r)
{
	GMimeMessage *msg = view_parse(data, len);
	GMimeObject *obj = msg != NULL && section != NULL ? view_find(msg, section) : NULL;
	GByteArray *bytes = NULL;
	char *filename = NULL;
	if (obj != NULL && GMIME_IS_PART(obj)) {
		bytes = view_decode(GMIME_PART(obj), data, len);
		filename = mime_utf8(g_mime_part_get_filename(GMIME_PART(obj)));
	} else if (obj != NULL && GMIME_IS_MESSAGE_PART(obj)) {
		bytes = view_message_bytes(GMIME_MESSAGE_PART(obj));
		filename = mem_strdup("");
	}
	if (bytes != NULL) {
		*bytes_r = mem_alloc(bytes->len + 1);
		if (bytes->len > 0)
			memcpy(*bytes_r, bytes->data, bytes->len);
		(*bytes_r)[bytes->len] = '\0';
		*size_r = bytes->len;
		*filename_r = filename;
		*content_type_r = view_content_type(obj);
		g_byte_array_unref(bytes);
	}
	if (msg != NULL)
		g_object_unref(msg);
	return bytes != NULL ? 1 : 0;
}
