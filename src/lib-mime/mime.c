#include "mime.h"
#include "array.h"
#include "mime-private.h"
#include "mem.h"
#include "str.h"

#include <ctype.h>
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mime_ctx {
	const unsigned char *data;
	size_t len;
	size_t large_part_min;
	struct mime_info *info;
	struct str *text, *names;
	ARRAY(struct mime_span) large_parts; /* handed to info at the end */
	size_t leaves;
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

/* Indexed by bit number (see enum mime_defect). */
static const char *const mime_defect_names[MIME_DEFECT_KINDS] = {
	"unnamed",
	"duplicate-header",
	"duplicate-parameter",
	"8bit-header",
	"bad-content-type",
	"bad-encoded-word",
	"empty-multipart",
	"truncated",
	"malformed",
	"bad-header-name",
	"conflicting-header",
	"conflicting-parameter",
	"missing-boundary",
	"bad-parameter",
	"bad-address",
	"nesting-too-deep",
	"part-without-content",
	"part-without-headers",
	"not-parsed",
	"nul-in-header",
	"bare-cr",
	"bad-charset",
	"too-many-parts",
	"text-truncated",
	"header-too-large",
	"line-too-long",
};

/* GMime's parser warnings, by their code. */
static const struct {
	GMimeParserWarning code;
	unsigned int defect;
} mime_warning_defects[] = {
	{GMIME_WARN_DUPLICATED_HEADER, MIME_DEFECT_DUPLICATE_HEADER},
	{GMIME_WARN_DUPLICATED_PARAMETER, MIME_DEFECT_DUPLICATE_PARAMETER},
	{GMIME_WARN_UNENCODED_8BIT_HEADER, MIME_DEFECT_8BIT_HEADER},
	{GMIME_WARN_INVALID_CONTENT_TYPE, MIME_DEFECT_BAD_CONTENT_TYPE},
	{GMIME_WARN_INVALID_RFC2047_HEADER_VALUE, MIME_DEFECT_BAD_ENCODED_WORD},
	{GMIME_WARN_MALFORMED_MULTIPART, MIME_DEFECT_EMPTY_MULTIPART},
	{GMIME_WARN_TRUNCATED_MESSAGE, MIME_DEFECT_TRUNCATED},
	{GMIME_WARN_MALFORMED_MESSAGE, MIME_DEFECT_MALFORMED},
	{GMIME_CRIT_INVALID_HEADER_NAME, MIME_DEFECT_BAD_HEADER_NAME},
	{GMIME_CRIT_CONFLICTING_HEADER, MIME_DEFECT_CONFLICTING_HEADER},
	{GMIME_CRIT_CONFLICTING_PARAMETER, MIME_DEFECT_CONFLICTING_PARAMETER},
	{GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY, MIME_DEFECT_MISSING_BOUNDARY},
	{GMIME_WARN_INVALID_PARAMETER, MIME_DEFECT_BAD_PARAMETER},
	{GMIME_WARN_INVALID_ADDRESS_LIST, MIME_DEFECT_BAD_ADDRESS},
	{GMIME_CRIT_NESTING_OVERFLOW, MIME_DEFECT_NESTING_TOO_DEEP},
	{GMIME_WARN_PART_WITHOUT_CONTENT, MIME_DEFECT_PART_WITHOUT_CONTENT},
	{GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT, MIME_DEFECT_PART_WITHOUT_HEADERS},
};

const char *mime_defect_name(unsigned int bit)
{
	return bit < MIME_DEFECT_KINDS ? mime_defect_names[bit] : NULL;
}

char *mime_defects_describe(unsigned int defects)
{
	struct str *s = str_create(64);
	for (unsigned int bit = 0; bit < MIME_DEFECT_KINDS; bit++) {
		if ((defects & (1u << bit)) == 0)
			continue;
		if (str_len(s) > 0)
			str_append(s, ", ");
		str_append(s, mime_defect_names[bit]);
	}
	return str_steal(&s);
}

/* Whether s is valid UTF-8: ASCII is checked a word at a time (most mail
 * text is), the rest by GLib. */
static bool mime_utf8_valid(const char *s, size_t len)
{
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, sizeof(w));
		if ((w & 0x8080808080808080ull) != 0)
			break;
	}
	while (i < len && (unsigned char)s[i] < 0x80)
		i++;
	/* GLib validates from the first byte of a multi-byte sequence */
	return i == len || g_utf8_validate(s + i, (gssize)(len - i), NULL);
}

char *mime_utf8(const char *s)
{
	if (s == NULL)
		return mem_strdup("");
	size_t len = strlen(s);
	if (mime_utf8_valid(s, len))
		return mem_strndup(s, len);
	gchar *valid = g_utf8_make_valid(s, -1);
	char *ret = mem_strdup(valid);
	g_free(valid);
	return ret;
}

/* mime_utf8() of a string of ours (mem_alloc), which it takes: no copy
 * when it is valid already. */
static char *mime_utf8_own(char *s)
{
	if (mime_utf8_valid(s, strlen(s)))
		return s;
	char *ret = mime_utf8(s);
	mem_free(s);
	return ret;
}

static char *mime_utf8_take(gchar *s)
{
	char *ret = mime_utf8(s);
	g_free(s);
	return ret;
}

static bool mime_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends a part's text for the index, runs of white space made one (the
 * full-text index does not see them, and they would use up the cap): a
 * run becomes a line end if it holds one (or begins with CR), else its
 * first byte. This sees every byte of a message's text, so it writes in
 * place rather than a call per word. */
static void mime_text_append(struct mime_ctx *ctx, const char *text, size_t len)
{
	struct str *out = ctx->text;
	if (str_len(out) > 0 && len > 0 && str_len(out) < MIME_TEXT_MAX)
		str_append_c(out, '\n');
	size_t start = str_len(out);
	size_t room = start < MIME_TEXT_MAX ? MIME_TEXT_MAX - start : 0;
	/* never longer than the input: runs only shrink */
	size_t cap = len < room ? len : room;
	char *dst = str_append_space(out, cap);
	size_t i = 0, w = 0;
	while (i < len) {
		if (w >= room) {
			ctx->info->defects |= MIME_DEFECT_TEXT_TRUNCATED;
			break;
		}
		char c = text[i];
		/* a byte above ' ' is never white space: one test for most */
		if ((unsigned char)c > ' ' || !mime_space(c)) {
			dst[w++] = c;
			i++;
			continue;
		}
		while (i + 1 < len && mime_space(text[i + 1])) {
			if (text[++i] == '\n')
				c = '\n';
		}
		dst[w++] = c == '\r' ? '\n' : c;
		i++;
	}
	str_truncate(out, start + w);
}

bool mime_part_bounds(GMimePart *part, const unsigned char *data, size_t len, size_t *off_r,
		      size_t *len_r)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *stream = content != NULL ? g_mime_data_wrapper_get_stream(content) : NULL;
	if (stream == NULL || stream->bound_start < 0 || stream->bound_end < stream->bound_start ||
	    (uint64_t)stream->bound_end > len)
		return false;
	size_t start = (size_t)stream->bound_start, end = (size_t)stream->bound_end;
	/* GMime ends a part two bytes before the boundary line that follows
	 * it, as if that line break were CRLF. After a bare LF this cuts the
	 * part's last character (a base64 part lost its last group): the part
	 * ends where its boundary's line break begins. */
	if (end + 3 < len && data[end + 1] == '\n' && data[end + 2] == '-' &&
	    data[end + 3] == '-') {
		size_t fixed = data[end] == '\r' ? end : end + 1;
		if (fixed >= start)
			end = fixed;
	}
	*off_r = start;
	*len_r = end - start;
	return true;
}

GMimeStream *mime_part_open(GMimePart *part, const unsigned char *data, size_t len)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *raw = content != NULL ? g_mime_data_wrapper_get_stream(content) : NULL;
	if (raw == NULL)
		return NULL;
	size_t off, n;
	GMimeStream *src;
	if (raw->super_stream != NULL && mime_part_bounds(part, data, len, &off, &n)) {
		src = g_mime_stream_substream(raw->super_stream, (gint64)off, (gint64)(off + n));
	} else {
		src = raw;
		g_object_ref(src);
	}
	g_mime_stream_reset(src);
	GMimeStream *filtered = g_mime_stream_filter_new(src);
	g_object_unref(src);
	GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(content);
	if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		GMimeFilter *f = g_mime_filter_basic_new(enc, FALSE);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
		g_object_unref(f);
	}
	return filtered;
}

/* A text part's decoded text in UTF-8, at most max bytes (*more_r: there was
 * more), read through GMime's filters so that a part of any size costs at
 * most max bytes. NULL without content. */
static char *mime_part_text(struct mime_ctx *ctx, GMimePart *part, size_t max, bool *more_r)
{
	*more_r = false;
	GMimeStream *in = mime_part_open(part, ctx->data, ctx->len);
	if (in == NULL)
		return NULL;
	const char *charset =
		g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
	bool converted = false;
	if (charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
	    g_ascii_strcasecmp(charset, "us-ascii") != 0) {
		GMimeFilter *f = g_mime_filter_charset_new(charset, "UTF-8");
		if (f == NULL) {
			ctx->info->defects |= MIME_DEFECT_BAD_CHARSET;
		} else {
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(in), f);
			g_object_unref(f);
			converted = true;
		}
	}
	struct str *text = str_create(4096);
	char buf[16384];
	ssize_t n;
	while ((n = g_mime_stream_read(in, buf, sizeof(buf))) > 0) {
		size_t room = max - str_len(text);
		if ((size_t)n > room) {
			str_append_n(text, buf, room);
			*more_r = true;
			break;
		}
		str_append_n(text, buf, (size_t)n);
	}
	g_object_unref(in);
	char *ret = str_steal(&text);
	if (!converted && charset == NULL && !mime_utf8_valid(ret, strlen(ret))) {
		/* no charset named: as mail readers do, Latin-1 */
		gchar *latin = g_convert(ret, -1, "UTF-8", "ISO-8859-1", NULL, NULL, NULL);
		if (latin != NULL) {
			mem_free(ret);
			ret = mem_strdup(latin);
			g_free(latin);
		}
	}
	return ret;
}

static void mime_extract_plain(struct mime_ctx *ctx, GMimePart *part)
{
	bool more;
	char *text = mime_part_text(ctx, part, MIME_TEXT_MAX, &more);
	if (text != NULL)
		mime_text_append(ctx, text, strlen(text));
	if (more)
		ctx->info->defects |= MIME_DEFECT_TEXT_TRUNCATED;
	mem_free(text);
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
			/* text up to the next tag or entity, in one piece */
			size_t end = i + 1;
			while (end < len && html[end] != '<' && html[end] != '&')
				end++;
			str_append_n(out, html + i, end - i);
			i = end;
		}
	}
	return str_steal(&out);
}

static void mime_extract_html(struct mime_ctx *ctx, GMimePart *part)
{
	/* markup is most of an HTML part: read more of it than of plain text */
	bool more;
	char *html = mime_part_text(ctx, part, 4 * MIME_TEXT_MAX, &more);
	if (html == NULL)
		return;
	char *text = mime_html_to_text(html, strlen(html));
	mime_text_append(ctx, text, strlen(text));
	if (more)
		ctx->info->defects |= MIME_DEFECT_TEXT_TRUNCATED;
	mem_free(text);
	mem_free(html);
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
	if (++ctx->leaves > MIME_PARTS_MAX)
		ctx->info->defects |= MIME_DEFECT_TOO_MANY_PARTS;
	for (size_t i = 0; ctx->leaves <= MIME_PARTS_MAX && i < G_N_ELEMENTS(mime_extractors);
	     i++) {
		if (g_ascii_strcasecmp(type, mime_extractors[i].type) == 0 &&
		    (strcmp(mime_extractors[i].subtype, "*") == 0 ||
		     g_ascii_strcasecmp(subtype, mime_extractors[i].subtype) == 0)) {
			mime_extractors[i].extract(ctx, part);
			break;
		}
	}

	size_t off = 0, len = 0;
	bool have_span = mime_part_bounds(part, ctx->data, ctx->len, &off, &len);
	if (have_span && len >= ctx->large_part_min) {
		size_t n = ctx->large_parts.count;
		const struct mime_span *last = n == 0 ? NULL : &ctx->large_parts.items[n - 1];
		/* keep spans ascending and disjoint whatever GMime reports */
		if (last == NULL || off >= last->offset + last->len) {
			struct mime_span *span = array_push(&ctx->large_parts);
			span->offset = off;
			span->len = len;
		}
	}
}

/* Text, attachment names and large parts of every leaf (the IMAP
 * structures are built apart, in mime-imap.c). */
static void mime_walk(struct mime_ctx *ctx, GMimeObject *obj, int depth)
{
	if (depth > MIME_DEPTH_MAX) {
		ctx->info->defects |= MIME_DEFECT_NESTING_TOO_DEEP;
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
	for (size_t i = 0; i < G_N_ELEMENTS(mime_warning_defects); i++) {
		if (mime_warning_defects[i].code == errcode) {
			info->defects |= mime_warning_defects[i].defect;
			return;
		}
	}
	info->defects |= MIME_DEFECT_MALFORMED;
}

static bool mime_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

/* GMime writes each mailbox through its IDN form
 * (internet_address_mailbox_get_idn_addr()): libidn2 for every domain,
 * about a tenth of the whole import's CPU, although an ASCII domain comes
 * out of it as it went in (GMime keeps the domain whenever libidn2 fails
 * or answers the same name in another case). So a mailbox with an ASCII
 * domain gets its IDN form, the address itself, before GMime asks:
 * the same text, without libidn2. Only other domains go through it. */
static void mime_idn_prime(InternetAddressList *list, int depth)
{
	int n = list != NULL && depth < 8 ? internet_address_list_length(list) : 0;
	for (int i = 0; i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_GROUP(a)) {
			mime_idn_prime(
				internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)),
				depth + 1);
			continue;
		}
		if (!INTERNET_ADDRESS_IS_MAILBOX(a))
			continue;
		InternetAddressMailbox *mb = INTERNET_ADDRESS_MAILBOX(a);
		if (mb->idn_addr == NULL && mb->addr != NULL && mb->at > 0 &&
		    mime_ascii(mb->addr + mb->at + 1))
			mb->idn_addr = g_strdup(mb->addr);
	}
}

char *mime_addresses(InternetAddressList *list)
{
	if (list == NULL || internet_address_list_length(list) == 0)
		return mem_strdup("");
	mime_idn_prime(list, 0);
	return mime_utf8_take(internet_address_list_to_string(list, NULL, FALSE));
}

/* The length of the header block, its blank line included (len if none). */
static size_t mime_header_len(const unsigned char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		const unsigned char *nl = memchr(data + i, '\n', len - i);
		if (nl == NULL)
			return len;
		i = (size_t)(nl - data) + 1;
		if (i < len && data[i] == '\n')
			return i + 1;
		if (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n')
			return i + 2;
		i--;
	}
	return len;
}

/* A memory stream over bytes the caller keeps (GMime's own copies them):
 * *borrowed_r is freed with g_byte_array_free(array, FALSE). */
static GMimeStream *mime_borrow_stream(const unsigned char *data, size_t len,
				       GByteArray **borrowed_r)
{
	GByteArray *array = g_byte_array_new_take((guint8 *)data, len);
	GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(array);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
	*borrowed_r = array;
	return stream;
}

/* Whether a line after the header block is longer than MIME_LINE_MAX. */
static bool mime_long_line_after(const unsigned char *data, size_t len, size_t from)
{
	while (from < len) {
		const unsigned char *nl = memchr(data + from, '\n', len - from);
		size_t end = nl != NULL ? (size_t)(nl - data) : len;
		if (end - from > MIME_LINE_MAX)
			return true;
		from = end + 1;
	}
	return false;
}

/* A part's header line of a hundred megabytes costs GMime about ten times
 * that, and GMime cannot tell us where part headers are before it parses
 * them: every line over MIME_LINE_MAX after the message's header block is
 * cut to that length, the rest turned into line ends (same length, so
 * offsets stay right). Only what GMime sees changes (index text, part
 * structure); the message is stored as it is. */
static void mime_mend_long_lines(unsigned char *data, size_t len, size_t from)
{
	while (from < len) {
		unsigned char *nl = memchr(data + from, '\n', len - from);
		size_t end = nl != NULL ? (size_t)(nl - data) : len;
		if (end - from > MIME_LINE_MAX)
			memset(data + from + MIME_LINE_MAX, '\n', end - from - MIME_LINE_MAX);
		from = end + 1;
	}
}

/* The MIME fields GMime reads from a header block; of each it keeps the
 * last, Dovecot (and the mail clients that follow it) the first. */
static const char *const mime_structure_fields[] = {"Content-Type", "Content-Transfer-Encoding",
						    "Content-Disposition"};

/* The index into mime_structure_fields of the field that starts at line
 * (name, optional blanks, colon: RFC 5322 4.5.3 allows blanks), or -1;
 * *value_r: where its value starts. */
static int mime_structure_field_at(const unsigned char *line, size_t len, size_t *value_r)
{
	/* all begin with "Content-": most lines are rejected by one byte */
	if (len == 0 || (line[0] != 'C' && line[0] != 'c'))
		return -1;
	for (size_t i = 0; i < G_N_ELEMENTS(mime_structure_fields); i++) {
		size_t n = strlen(mime_structure_fields[i]);
		if (len <= n ||
		    g_ascii_strncasecmp((const char *)line, mime_structure_fields[i], n) != 0)
			continue;
		size_t j = n;
		while (j < len && (line[j] == ' ' || line[j] == '\t'))
			j++;
		if (j < len && line[j] == ':') {
			*value_r = j + 1;
			return (int)i;
		}
	}
	return -1;
}

/* The value of the field whose value starts at `from`: folded lines
 * included, blanks and line ends around it left out. */
static void mime_field_value(const unsigned char *head, size_t len, size_t from, size_t *start_r,
			     size_t *end_r)
{
	size_t end = from;
	for (;;) {
		const unsigned char *nl = memchr(head + end, '\n', len - end);
		end = nl != NULL ? (size_t)(nl - head) + 1 : len;
		if (end >= len || (head[end] != ' ' && head[end] != '\t'))
			break;
	}
	while (from < end && g_ascii_isspace(head[from]))
		from++;
	while (end > from && g_ascii_isspace(head[end - 1]))
		end--;
	*start_r = from;
	*end_r = end;
}

/* Hides from GMime every repeat of a structure field in the message's
 * header block (its first letter becomes 'X': same length, offsets stay),
 * so the first one counts, as in Dovecot. Returns the defects the repeats
 * are (a repeat of the same value, or a different one), 0 if none; with
 * `hide` false only finds them. */
static unsigned int mime_hide_repeated_fields(unsigned char *head, size_t header_len, bool hide)
{
	struct {
		bool seen;
		size_t start, end;
	} first[G_N_ELEMENTS(mime_structure_fields)] = {{false, 0, 0}};
	unsigned int defects = 0;
	for (size_t at = 0; at < header_len;) {
		const unsigned char *nl = memchr(head + at, '\n', header_len - at);
		size_t line_end = nl != NULL ? (size_t)(nl - head) + 1 : header_len, value, start,
		       end;
		int field = mime_structure_field_at(head + at, line_end - at, &value);
		if (field >= 0) {
			mime_field_value(head, header_len, at + value, &start, &end);
			if (!first[field].seen) {
				first[field].seen = true;
				first[field].start = start;
				first[field].end = end;
			} else {
				bool same =
					end - start == first[field].end - first[field].start &&
					g_ascii_strncasecmp((const char *)head + start,
							    (const char *)head + first[field].start,
							    end - start) == 0;
				defects |= same ? MIME_DEFECT_DUPLICATE_HEADER
						: MIME_DEFECT_CONFLICTING_HEADER;
				if (hide)
					head[at] = 'X';
			}
		}
		at = line_end;
	}
	return defects;
}

/* Header fields GMime acts on when it builds a message, besides Content-*
 * and Resent-*: GMimeMessage's own (addresses, subject, date, message id,
 * MIME-Version) and those whose repetition its parser reports (RFC 5322
 * 3.6's single fields). */
static const struct {
	const char *name;
	size_t len;
} mime_gmime_fields[] = {{"bcc", 3},           {"cc", 2},           {"date", 4},
			 {"from", 4},          {"in-reply-to", 11}, {"message-id", 10},
			 {"mime-version", 12}, {"references", 10},  {"reply-to", 8},
			 {"sender", 6},        {"subject", 7},      {"to", 2}};

static bool mime_field_for_gmime(const unsigned char *name, size_t len)
{
	if ((len >= 8 && g_ascii_strncasecmp((const char *)name, "content-", 8) == 0) ||
	    (len >= 7 && g_ascii_strncasecmp((const char *)name, "resent-", 7) == 0))
		return true;
	for (size_t i = 0; i < G_N_ELEMENTS(mime_gmime_fields); i++) {
		if (mime_gmime_fields[i].len == len &&
		    g_ascii_strncasecmp((const char *)name, mime_gmime_fields[i].name, len) == 0)
			return true;
	}
	return false;
}

/* Whether a field's name is one that may be left out: letters, digits,
 * '-', '_' and '.', and not a field GMime uses. */
static bool mime_idle_name(const unsigned char *name, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!g_ascii_isalnum(name[i]) && name[i] != '-' && name[i] != '_' && name[i] != '.')
			return false;
	}
	return !mime_field_for_gmime(name, len);
}

/* Whether a line of a field (from after the colon, or a folded line, to its
 * LF) holds only printable ASCII and tabs, ends with LF or CRLF, and, when
 * folded, more than blanks. */
static bool mime_idle_line(const unsigned char *p, size_t n, bool folded)
{
	size_t end = n >= 2 && p[n - 2] == '\r' ? n - 2 : n - 1;
	bool blank = true;
	for (size_t i = 0; i < end; i++) {
		unsigned char c = p[i];
		if ((unsigned char)(c - 0x20) > 0x5e && c != '\t')
			return false;
		blank = blank && (c == ' ' || c == '\t');
	}
	return !(folded && blank);
}

/* The fields of a header block GMime has no use for and cannot warn
 * about, as spans (adjacent ones merged): a name mime_idle_name() allows
 * right before its colon, every line mime_idle_line(). None in a block
 * with a line that neither starts a field (a name, blanks, a colon) nor
 * folds one, but for the blank line that ends it: GMime's reading of such
 * a line depends on the lines before it (it may take the first for the
 * start of the body). */
#define MIME_IDLE_SPANS 32
struct mime_idle {
	size_t count, bytes;
	struct {
		size_t start, end;
	} spans[MIME_IDLE_SPANS];
};

static void mime_idle_add(struct mime_idle *idle, size_t start, size_t end)
{
	if (idle->count > 0 && idle->spans[idle->count - 1].end == start) {
		idle->spans[idle->count - 1].end = end;
	} else if (idle->count < MIME_IDLE_SPANS) {
		idle->spans[idle->count].start = start;
		idle->spans[idle->count].end = end;
		idle->count++;
	} else {
		return; /* kept: it is only slower */
	}
	idle->bytes += end - start;
}

static void mime_idle_scan(const unsigned char *data, size_t header_len, struct mime_idle *idle)
{
	idle->count = idle->bytes = 0;
	bool field_idle = false;
	size_t field_start = 0;
	for (size_t at = 0; at < header_len;) {
		const unsigned char *nl = memchr(data + at, '\n', header_len - at);
		if (nl == NULL)
			goto none; /* a last line without a line end: left alone */
		size_t end = (size_t)(nl - data) + 1;
		if (data[at] == ' ' || data[at] == '\t') {
			/* leading blanks: mime_imap_build() parses past them */
			if (at == 0)
				goto none;
			field_idle = field_idle && mime_idle_line(data + at, end - at, true);
			at = end;
			continue;
		}
		if (field_idle)
			mime_idle_add(idle, field_start, at);
		field_idle = false;
		if (end == header_len && (end - at == 1 || (end - at == 2 && data[at] == '\r')))
			break; /* the blank line that ends the block */
		size_t i = at;
		while (i < end && data[i] > ' ' && data[i] < 0x7f && data[i] != ':')
			i++;
		size_t name_end = i;
		while (i < end && (data[i] == ' ' || data[i] == '\t'))
			i++;
		if (name_end == at || i >= end || data[i] != ':')
			goto none;
		field_start = at;
		field_idle = name_end == i && mime_idle_name(data + at, name_end - at) &&
			     mime_idle_line(data + i + 1, end - i - 1, false);
		at = end;
	}
	if (field_idle)
		mime_idle_add(idle, field_start, header_len);
	return;
none:
	idle->count = idle->bytes = 0;
}

/* The message without those fields: each becomes a GObject in GMime
 * (mailing list mail has about 30 fields, of which GMime uses 10), which
 * cost a third of GMime's parse (docs/benchmarks.md). */
static GByteArray *mime_without_idle_fields(const unsigned char *data, size_t len,
					    const struct mime_idle *idle)
{
	/* written in place and handed over: GByteArray's own growth cost
	 * more than the copy */
	size_t out_len = len - idle->bytes, from = 0;
	guint8 *out = g_malloc(out_len > 0 ? out_len : 1), *at = out;
	for (size_t i = 0; i < idle->count; i++) {
		memcpy(at, data + from, idle->spans[i].start - from);
		at += idle->spans[i].start - from;
		from = idle->spans[i].end;
	}
	memcpy(at, data + from, len - from);
	return g_byte_array_new_take(out, out_len);
}

/* What GMime parses: the caller's bytes, or a copy of them.
 * GMime's offsets + shift = offsets in the caller's bytes (every field left
 * out lies before the body). */
struct mime_input {
	GMimeStream *stream;
	GByteArray *borrowed; /* the caller's bytes, when borrowed */
	const unsigned char *data;
	size_t len, shift;
};

/* Messages up to this size are handed over without the fields GMime has
 * no use for (a copy); larger ones are borrowed as they are. */
#define MIME_IDLE_COPY_MAX (1024 * 1024)

/* Bytes are borrowed, not copied (a message may be hundreds of megabytes),
 * unless they are small enough to be copied without the fields GMime has
 * no use for (mime_without_idle_fields()). GMime's header parser works on
 * C strings, so a NUL in the header block would cut a field (the Subject
 * ended at it, a From after it was lost): such a message is handed over as
 * a copy with each NUL of its header block as a space, the same length, so
 * that offsets into the message stay right; so is one with a structure
 * field repeated in its header block (mime_hide_repeated_fields). A header
 * block over MIME_HEADER_MAX is parsed only up to that size (GMime needs
 * about ten times a header's size in memory). */
static void mime_input_open(struct mime_input *in, const unsigned char *data, size_t len,
			    unsigned int *defects)
{
	memset(in, 0, sizeof(*in));
	in->data = data;
	in->len = len;
	size_t header_len = mime_header_len(data, len);
	const unsigned char *cr = data;
	while ((cr = memchr(cr, '\r', len - (size_t)(cr - data))) != NULL) {
		if (cr + 1 == data + len || cr[1] != '\n') {
			*defects |= MIME_DEFECT_BARE_CR;
			break;
		}
		cr++;
	}
	bool too_large = header_len > MIME_HEADER_MAX;
	size_t keep = too_large ? MIME_HEADER_MAX : header_len;
	bool nul = memchr(data, '\0', keep) != NULL;
	bool long_lines = !too_large && mime_long_line_after(data, len, header_len);
	/* only read: the caller's bytes are changed in the copy below */
	unsigned int repeats = mime_hide_repeated_fields((unsigned char *)data, keep, false);
	if (!too_large && !nul && !long_lines && repeats == 0) {
		struct mime_idle idle = {0, 0, {{0, 0}}};
		if (len <= MIME_IDLE_COPY_MAX)
			mime_idle_scan(data, header_len, &idle);
		if (idle.bytes == 0) {
			in->stream = mime_borrow_stream(data, len, &in->borrowed);
			return;
		}
		GByteArray *copy = mime_without_idle_fields(data, len, &idle);
		in->data = copy->data;
		in->len = copy->len;
		in->shift = idle.bytes;
		in->stream = g_mime_stream_mem_new_with_byte_array(copy);
		return;
	}
	GByteArray *head = g_byte_array_sized_new((guint)(too_large ? keep + 2 : len));
	g_byte_array_append(head, data, (guint)keep);
	for (guint i = 0; i < head->len; i++) {
		if (head->data[i] == '\0')
			head->data[i] = ' ';
	}
	if (nul)
		*defects |= MIME_DEFECT_NUL_IN_HEADER;
	if (repeats != 0) {
		*defects |= repeats;
		(void)mime_hide_repeated_fields(head->data, head->len, true);
	}
	if (too_large) {
		*defects |= MIME_DEFECT_HEADER_TOO_LARGE;
		/* whole fields only, then the end of the header block */
		const unsigned char *last = memrchr(head->data, '\n', head->len);
		g_byte_array_set_size(head, last != NULL ? (guint)(last - head->data) + 1 : 0);
		g_byte_array_append(head, (const guint8 *)"\n", 1);
		in->data = head->data;
		in->len = head->len;
		in->stream = g_mime_stream_mem_new_with_byte_array(head);
		return;
	}
	/* rare: the whole message copied, mended (the copy lives only while
	 * the message is parsed, not while its record is sealed) */
	g_byte_array_append(head, data + keep, (guint)(len - keep));
	if (long_lines) {
		*defects |= MIME_DEFECT_LINE_TOO_LONG;
		mime_mend_long_lines(head->data, head->len, header_len);
	}
	in->data = head->data;
	in->len = head->len;
	in->stream = g_mime_stream_mem_new_with_byte_array(head);
}

static void mime_input_close(struct mime_input *in)
{
	g_object_unref(in->stream);
	/* frees the array, not the caller's bytes it borrowed */
	if (in->borrowed != NULL)
		g_byte_array_free(in->borrowed, FALSE);
}

/* The offset of a Date header's zone; beyond a day (RFC 5322 allows
 * +9959 in its syntax) it says nothing of the sender's day: 0. */
static int mime_zone_minutes(GDateTime *date)
{
	if (date == NULL)
		return 0;
	GTimeSpan offset = g_date_time_get_utc_offset(date) / G_TIME_SPAN_MINUTE;
	return offset >= -24 * 60 && offset <= 24 * 60 ? (int)offset : 0;
}

static struct mime_info *mime_parse_common(const void *data, size_t len, size_t large_part_min,
					   bool imap)
{
	mime_init();
	struct mime_info *info = mem_new(struct mime_info);
	struct mime_input in;
	mime_input_open(&in, data, len, &info->defects);
	/* the parts' text and spans are read from what GMime parsed */
	struct mime_ctx ctx = {.data = in.data,
			       .len = in.len,
			       .large_part_min = large_part_min,
			       .info = info,
			       .text = str_create(4096),
			       .names = str_create(16)};
	GMimeParser *parser = g_mime_parser_new_with_stream(in.stream);
	g_mime_parser_set_persist_stream(parser, TRUE);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeParserOptions *options = g_mime_parser_options_new();
	g_mime_parser_options_set_warning_callback(options, mime_warning, info);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, options);
	if (imap)
		mime_imap_build(msg, data, len, in.shift, info);
	if (msg != NULL) {
		GDateTime *date = g_mime_message_get_date(msg);
		info->date = date != NULL ? g_date_time_to_unix(date) : 0;
		info->zone_minutes = mime_zone_minutes(date);
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
		info->defects |= MIME_DEFECT_NOT_PARSED;
		info->subject = mem_strdup("");
		info->from = mem_strdup("");
		info->to = mem_strdup("");
		info->cc = mem_strdup("");
		info->message_id = mem_strdup("");
	}
	g_mime_parser_options_free(options);
	g_object_unref(parser);
	mime_input_close(&in);
	/* spans in the caller's bytes */
	for (size_t i = 0; i < ctx.large_parts.count; i++)
		ctx.large_parts.items[i].offset += in.shift;
	info->body_text = mime_utf8_own(str_steal(&ctx.text));
	info->attachment_names = str_steal(&ctx.names);
	info->large_parts = ctx.large_parts.items;
	info->large_part_count = ctx.large_parts.count;
	return info;
}

struct mime_info *mime_parse(const void *data, size_t len, size_t large_part_min)
{
	return mime_parse_common(data, len, large_part_min, true);
}

struct mime_info *mime_parse_index(const void *data, size_t len, size_t large_part_min)
{
	return mime_parse_common(data, len, large_part_min, false);
}

struct mime_info *mime_parse_imap(const void *data, size_t len)
{
	mime_init();
	struct mime_info *info = mem_new(struct mime_info);
	/* the same input as mime_parse() (NULs of the header block as spaces,
	 * long lines mended), so the data derived again equals ingest's */
	unsigned int defects = 0;
	struct mime_input in;
	mime_input_open(&in, data, len, &defects);
	GMimeParser *parser = g_mime_parser_new_with_stream(in.stream);
	g_mime_parser_set_persist_stream(parser, TRUE); /* parts keep their spans */
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	mime_imap_build(msg, data, len, in.shift, info);
	if (msg != NULL)
		g_object_unref(msg);
	g_object_unref(parser);
	mime_input_close(&in);
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

/* ---- recipients (for sources that route messages by address) ---- */

/* what the array macros of array.h work on, named so that it can be passed */
struct mime_recipient_list {
	char **items;
	size_t count, capacity;
};

static const char *const mime_recipient_fields[] = {
	"To",         "Cc",           "Bcc",           "Resent-To",   "Resent-Cc",
	"Resent-Bcc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To",
	"X-Rcpt-To",
};

static bool mime_recipient_field(const char *name)
{
	for (size_t i = 0; i < sizeof(mime_recipient_fields) / sizeof(mime_recipient_fields[0]);
	     i++) {
		if (g_ascii_strcasecmp(name, mime_recipient_fields[i]) == 0)
			return true;
	}
	return false;
}

static void mime_recipient_add(struct mime_recipient_list *out, const char *addr)
{
	if (addr == NULL || strchr(addr, '@') == NULL)
		return;
	char *lower = mem_strdup(addr);
	for (char *p = lower; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	for (size_t i = 0; i < out->count; i++) {
		if (strcmp(out->items[i], lower) == 0) {
			mem_free(lower);
			return;
		}
	}
	array_append(out, lower);
}

static void mime_recipients_walk(struct mime_recipient_list *out, InternetAddressList *list,
				 int depth)
{
	int n = list != NULL ? internet_address_list_length(list) : 0;
	for (int i = 0; i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(a))
			mime_recipient_add(out, internet_address_mailbox_get_addr(
							INTERNET_ADDRESS_MAILBOX(a)));
		else if (INTERNET_ADDRESS_IS_GROUP(a) && depth < 4)
			mime_recipients_walk(
				out, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)),
				depth + 1);
	}
}

size_t mime_recipients(const void *data, size_t len, char ***addresses_r)
{
	mime_init();
	struct mime_recipient_list out = {0};
	/* only the header block is parsed: a copy (NULs as spaces, as for
	 * mime_parse()), at most MIME_HEADER_MAX, ended by a blank line */
	size_t header_len = mime_header_len(data, len);
	if (header_len > MIME_HEADER_MAX)
		header_len = MIME_HEADER_MAX;
	GByteArray *head = g_byte_array_sized_new((guint)header_len + 2);
	g_byte_array_append(head, data, (guint)header_len);
	for (guint i = 0; i < head->len; i++) {
		if (head->data[i] == '\0')
			head->data[i] = ' ';
	}
	g_byte_array_append(head, (const guint8 *)"\n\n", 2);
	GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(head);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeParserOptions *options = g_mime_parser_options_new();
	GMimeMessage *msg = g_mime_parser_construct_message(parser, options);
	if (msg != NULL) {
		GMimeHeaderList *headers = g_mime_object_get_header_list(GMIME_OBJECT(msg));
		int n = g_mime_header_list_get_count(headers);
		for (int i = 0; i < n; i++) {
			GMimeHeader *h = g_mime_header_list_get_header_at(headers, i);
			const char *value = g_mime_header_get_value(h);
			if (value == NULL || !mime_recipient_field(g_mime_header_get_name(h)))
				continue;
			InternetAddressList *list = internet_address_list_parse(options, value);
			mime_recipients_walk(&out, list, 0);
			if (list != NULL)
				g_object_unref(list);
		}
		g_object_unref(msg);
	}
	g_mime_parser_options_free(options);
	g_object_unref(parser);
	g_object_unref(stream);
	char *end = NULL;
	array_append(&out, end);
	*addresses_r = out.items;
	return out.count - 1;
}

void mime_recipients_free(char ***_addresses)
{
	char **addresses = *_addresses;
	if (addresses == NULL)
		return;
	*_addresses = NULL;
	for (size_t i = 0; addresses[i] != NULL; i++)
		mem_free(addresses[i]);
	mem_free(addresses);
}
