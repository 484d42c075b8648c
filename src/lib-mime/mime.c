#include "mime.h"
#include "mime-private.h"
#include "mem.h"
#include "str.h"

#include <ctype.h>
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct mime_ctx {
	const unsigned char *data;
	size_t len;
	size_t large_part_min;
	struct mime_info *info;
	struct str *text, *names;
	size_t span_cap;
};

/* An extractor turns one leaf part into index text. Add new content types
 * (PDF, office documents) to mime_extractors[]. */
typedef void mime_extractor_t(struct mime_ctx *ctx, GMimePart *part);

static void mime_extract_plain(struct mime_ctx *ctx, GMimePart *part);
static void mime_extract_html(struct mime_ctx *ctx, GMimePart *part);

static const struct {
	const char *type, *subtype; /* subtype "*" matches any */
	mime_extractor_t *extract;
} mime_extractors[] = {
	{"text", "html", mime_extract_html},
	{"text", "plain", mime_extract_plain},
	{"text", "*", mime_extract_plain},
	{"message", "delivery-status", mime_extract_plain},
};

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void mime_init_once(void)
{
	g_mime_init();
}

void mime_init(void)
{
	pthread_once(&mime_once, mime_init_once);
}

char *mime_utf8(const char *s)
{
	if (s == NULL)
		return mem_strdup("");
	if (g_utf8_validate(s, -1, NULL))
		return mem_strdup(s);
	gchar *valid = g_utf8_make_valid(s, -1);
	char *ret = mem_strdup(valid);
	g_free(valid);
	return ret;
}

static char *mime_utf8_take(gchar *s)
{
	char *ret = mime_utf8(s);
	g_free(s);
	return ret;
}

static void mime_text_append(struct mime_ctx *ctx, const char *text, size_t len)
{
	size_t have = str_len(ctx->text);
	if (have >= MIME_TEXT_MAX)
		return;
	if (len > MIME_TEXT_MAX - have)
		len = MIME_TEXT_MAX - have;
	if (have > 0)
		str_append_c(ctx->text, '\n');
	str_append_n(ctx->text, text, len);
}

static void mime_extract_plain(struct mime_ctx *ctx, GMimePart *part)
{
	if (!GMIME_IS_TEXT_PART(part))
		return;
	gchar *text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
	if (text != NULL)
		mime_text_append(ctx, text, strlen(text));
	g_free(text);
}

/* HTML 4's Latin-1 entities, by code point */
static const struct {
	const char *name;
	unsigned int cp;
} mime_latin1_entities[] = {
	{"nbsp", 0xa0},    {"iexcl", 0xa1},    {"cent", 0xa2},    {"pound", 0xa3},
	{"curren", 0xa4},  {"yen", 0xa5},      {"brvbar", 0xa6},  {"sect", 0xa7},
	{"uml", 0xa8},     {"copy", 0xa9},     {"ordf", 0xaa},    {"laquo", 0xab},
	{"not", 0xac},     {"shy", 0xad},      {"reg", 0xae},     {"macr", 0xaf},
	{"deg", 0xb0},     {"plusmn", 0xb1},   {"sup2", 0xb2},    {"sup3", 0xb3},
	{"acute", 0xb4},   {"micro", 0xb5},    {"para", 0xb6},    {"middot", 0xb7},
	{"cedil", 0xb8},   {"sup1", 0xb9},     {"ordm", 0xba},    {"raquo", 0xbb},
	{"frac14", 0xbc},  {"frac12", 0xbd},   {"frac34", 0xbe},  {"iquest", 0xbf},
	{"Agrave", 0xc0},  {"Aacute", 0xc1},   {"Acirc", 0xc2},   {"Atilde", 0xc3},
	{"Auml", 0xc4},    {"Aring", 0xc5},    {"AElig", 0xc6},   {"Ccedil", 0xc7},
	{"Egrave", 0xc8},  {"Eacute", 0xc9},   {"Ecirc", 0xca},   {"Euml", 0xcb},
	{"Igrave", 0xcc},  {"Iacute", 0xcd},   {"Icirc", 0xce},   {"Iuml", 0xcf},
	{"ETH", 0xd0},     {"Ntilde", 0xd1},   {"Ograve", 0xd2},  {"Oacute", 0xd3},
	{"Ocirc", 0xd4},   {"Otilde", 0xd5},   {"Ouml", 0xd6},    {"times", 0xd7},
	{"Oslash", 0xd8},  {"Ugrave", 0xd9},   {"Uacute", 0xda},  {"Ucirc", 0xdb},
	{"Uuml", 0xdc},    {"Yacute", 0xdd},   {"THORN", 0xde},   {"szlig", 0xdf},
	{"agrave", 0xe0},  {"aacute", 0xe1},   {"acirc", 0xe2},   {"atilde", 0xe3},
	{"auml", 0xe4},    {"aring", 0xe5},    {"aelig", 0xe6},   {"ccedil", 0xe7},
	{"egrave", 0xe8},  {"eacute", 0xe9},   {"ecirc", 0xea},   {"euml", 0xeb},
	{"igrave", 0xec},  {"iacute", 0xed},   {"icirc", 0xee},   {"iuml", 0xef},
	{"eth", 0xf0},     {"ntilde", 0xf1},   {"ograve", 0xf2},  {"oacute", 0xf3},
	{"ocirc", 0xf4},   {"otilde", 0xf5},   {"ouml", 0xf6},    {"divide", 0xf7},
	{"oslash", 0xf8},  {"ugrave", 0xf9},   {"uacute", 0xfa},  {"ucirc", 0xfb},
	{"uuml", 0xfc},    {"yacute", 0xfd},   {"thorn", 0xfe},   {"yuml", 0xff},
	{"euro", 0x20ac},  {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
	{"lsquo", 0x2018}, {"rsquo", 0x2019},  {"ldquo", 0x201c}, {"rdquo", 0x201d},
	{"bull", 0x2022},  {"trade", 0x2122},
};

static const struct {
	const char *name;
	const char *text;
} mime_entities[] = {
	{"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "},
};

char *mime_html_to_text(const char *html, size_t len)
{
	struct str *out = str_create(len / 2 + 16);
	size_t i = 0;
	while (i < len) {
		char c = html[i];
		if (c == '<') {
			size_t end = i + 1;
			while (end < len && html[end] != '>')
				end++;
			const char *tag = html + i + 1;
			size_t tag_len = end - i - 1;
			bool script = tag_len >= 6 && g_ascii_strncasecmp(tag, "script", 6) == 0;
			bool style = tag_len >= 5 && g_ascii_strncasecmp(tag, "style", 5) == 0;
			i = end < len ? end + 1 : len;
			if (script || style) {
				const char *close = script ? "</script" : "</style";
				size_t cl = strlen(close);
				while (i + cl <= len &&
				       g_ascii_strncasecmp(html + i, close, cl) != 0)
					i++;
			}
			str_append_c(out, ' ');
		} else if (c == '&') {
			size_t end = i + 1;
			while (end < len && end - i < 10 && html[end] != ';' &&
			       (isalnum((unsigned char)html[end]) || html[end] == '#'))
				end++;
			bool done = false;
			if (end < len && html[end] == ';') {
				const char *name = html + i + 1;
				size_t nlen = end - i - 1;
				for (size_t k = 0; k < G_N_ELEMENTS(mime_entities); k++) {
					if (strlen(mime_entities[k].name) == nlen &&
					    memcmp(mime_entities[k].name, name, nlen) == 0) {
						str_append(out, mime_entities[k].text);
						done = true;
					}
				}
				for (size_t k = 0; !done && k < G_N_ELEMENTS(mime_latin1_entities);
				     k++) {
					if (strlen(mime_latin1_entities[k].name) == nlen &&
					    memcmp(mime_latin1_entities[k].name, name, nlen) == 0) {
						char buf[8];
						int n = g_unichar_to_utf8(
							mime_latin1_entities[k].cp, buf);
						str_append_n(out, buf, (size_t)n);
						done = true;
					}
				}
				if (!done && nlen > 1 && name[0] == '#') {
					unsigned long cp = name[1] == 'x' || name[1] == 'X'
								   ? strtoul(name + 2, NULL, 16)
								   : strtoul(name + 1, NULL, 10);
					char buf[8];
					if (cp > 0 && cp < 0x110000 &&
					    g_unichar_validate((gunichar)cp)) {
						int n = g_unichar_to_utf8((gunichar)cp, buf);
						str_append_n(out, buf, (size_t)n);
						done = true;
					}
				}
			}
			if (done) {
				i = end + 1;
			} else {
				str_append_c(out, '&');
				i++;
			}
		} else {
			str_append_c(out, c);
			i++;
		}
	}
	return str_steal(&out);
}

static void mime_extract_html(struct mime_ctx *ctx, GMimePart *part)
{
	if (!GMIME_IS_TEXT_PART(part))
		return;
	gchar *html = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
	if (html == NULL)
		return;
	char *text = mime_html_to_text(html, strlen(html));
	mime_text_append(ctx, text, strlen(text));
	mem_free(text);
	g_free(html);
}

static bool mime_stream_span(GMimeStream *stream, const struct mime_ctx *ctx, size_t *off_r,
			     size_t *len_r)
{
	if (stream == NULL || stream->bound_start < 0 || stream->bound_end < stream->bound_start ||
	    (uint64_t)stream->bound_end > ctx->len)
		return false;
	*off_r = (size_t)stream->bound_start;
	*len_r = (size_t)(stream->bound_end - stream->bound_start);
	return true;
}

static void mime_leaf(struct mime_ctx *ctx, GMimePart *part)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *type = ct != NULL ? g_mime_content_type_get_media_type(ct) : "text";
	const char *subtype = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : "plain";
	if (type == NULL)
		type = "text";
	if (subtype == NULL)
		subtype = "plain";

	const char *filename = g_mime_part_get_filename(part);
	bool attachment = g_mime_part_is_attachment(part) || filename != NULL;
	if (attachment) {
		ctx->info->has_attachment = true;
		if (filename != NULL) {
			char *v = mime_utf8(filename);
			if (str_len(ctx->names) > 0)
				str_append_c(ctx->names, ' ');
			str_append(ctx->names, v);
			mem_free(v);
		}
	}
	/* Body text: inline parts, and attachments whose type we can read. */
	for (size_t i = 0; i < G_N_ELEMENTS(mime_extractors); i++) {
		if (g_ascii_strcasecmp(type, mime_extractors[i].type) == 0 &&
		    (strcmp(mime_extractors[i].subtype, "*") == 0 ||
		     g_ascii_strcasecmp(subtype, mime_extractors[i].subtype) == 0)) {
			mime_extractors[i].extract(ctx, part);
			break;
		}
	}

	size_t off = 0, len = 0;
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	bool have_span = content != NULL &&
			 mime_stream_span(g_mime_data_wrapper_get_stream(content), ctx, &off, &len);
	if (have_span && len >= ctx->large_part_min) {
		size_t n = ctx->info->large_part_count;
		/* keep spans ascending and disjoint whatever GMime reports */
		if (n == 0 || off >= ctx->info->large_parts[n - 1].offset +
					      ctx->info->large_parts[n - 1].len) {
			if (n == ctx->span_cap) {
				ctx->span_cap = ctx->span_cap == 0 ? 4 : ctx->span_cap * 2;
				ctx->info->large_parts =
					mem_realloc(ctx->info->large_parts,
						    ctx->span_cap * sizeof(struct mime_span));
			}
			ctx->info->large_parts[n].offset = off;
			ctx->info->large_parts[n].len = len;
			ctx->info->large_part_count++;
		}
	}
}

/* Text, attachment names and large parts of every leaf (the IMAP
 * structures are built apart, in mime-imap.c). */
static void mime_walk(struct mime_ctx *ctx, GMimeObject *obj, int depth)
{
	if (depth > 50) {
		ctx->info->defects++;
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++)
			mime_walk(ctx, g_mime_multipart_get_part(mp, i), depth + 1);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		GMimeObject *body = inner != NULL ? g_mime_message_get_mime_part(inner) : NULL;
		if (inner != NULL)
			ctx->info->has_attachment = true;
		if (body != NULL)
			mime_walk(ctx, body, depth + 1);
	} else if (GMIME_IS_PART(obj)) {
		mime_leaf(ctx, GMIME_PART(obj));
	}
}

static void mime_warning(gint64 offset, GMimeParserWarning errcode, const gchar *item,
			 gpointer user_data)
{
	struct mime_info *info = user_data;
	info->defects++;
}

char *mime_addresses(InternetAddressList *list)
{
	if (list == NULL || internet_address_list_length(list) == 0)
		return mem_strdup("");
	return mime_utf8_take(internet_address_list_to_string(list, NULL, FALSE));
}

struct mime_info *mime_parse(const void *data, size_t len, size_t large_part_min)
{
	mime_init();
	struct mime_info *info = mem_new(struct mime_info);
	struct mime_ctx ctx = {.data = data,
			       .len = len,
			       .large_part_min = large_part_min,
			       .info = info,
			       .text = str_create(4096),
			       .names = str_create(16)};
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_persist_stream(parser, TRUE);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeParserOptions *options = g_mime_parser_options_new();
	g_mime_parser_options_set_warning_callback(options, mime_warning, info);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, options);
	mime_imap_build(msg, data, len, info);
	if (msg != NULL) {
		GDateTime *date = g_mime_message_get_date(msg);
		info->date = date != NULL ? g_date_time_to_unix(date) : 0;
		info->subject = mime_utf8(g_mime_message_get_subject(msg));
		info->from = mime_addresses(g_mime_message_get_from(msg));
		info->to = mime_addresses(g_mime_message_get_to(msg));
		info->cc = mime_addresses(g_mime_message_get_cc(msg));
		info->message_id = mime_utf8(g_mime_message_get_message_id(msg));
		GMimeObject *body = g_mime_message_get_mime_part(msg);
		if (body != NULL)
			mime_walk(&ctx, body, 0);
		g_object_unref(msg);
	} else {
		info->defects++;
		info->subject = mem_strdup("");
		info->from = mem_strdup("");
		info->to = mem_strdup("");
		info->cc = mem_strdup("");
		info->message_id = mem_strdup("");
	}
	g_mime_parser_options_free(options);
	g_object_unref(parser);
	g_object_unref(stream);
	char *text = str_steal(&ctx.text);
	info->body_text = mime_utf8(text);
	mem_free(text);
	info->attachment_names = str_steal(&ctx.names);
	return info;
}

struct mime_info *mime_parse_imap(const void *data, size_t len)
{
	mime_init();
	struct mime_info *info = mem_new(struct mime_info);
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_persist_stream(parser, TRUE); /* parts keep their spans */
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	mime_imap_build(msg, data, len, info);
	if (msg != NULL)
		g_object_unref(msg);
	g_object_unref(parser);
	g_object_unref(stream);
	info->subject = mem_strdup("");
	info->from = mem_strdup("");
	info->to = mem_strdup("");
	info->cc = mem_strdup("");
	info->message_id = mem_strdup("");
	info->body_text = mem_strdup("");
	info->attachment_names = mem_strdup("");
	return info;
}

void mime_info_destroy(struct mime_info **_info)
{
	struct mime_info *info = *_info;
	if (info == NULL)
		return;
	*_info = NULL;
	mem_free(info->subject);
	mem_free(info->from);
	mem_free(info->to);
	mem_free(info->cc);
	mem_free(info->message_id);
	mem_free(info->envelope);
	mem_free(info->bodystructure);
	mem_free(info->body);
	mem_free(info->body_text);
	mem_free(info->attachment_names);
	mem_free(info->large_parts);
	mem_free(info);
}
