/* mime-imap: a message's IMAP ENVELOPE and BODYSTRUCTURE (RFC 3501 7.4.2),
 * as IMAP clients read them and as Dovecot writes them:
 *
 * - ENVELOPE strings are the raw header values, unfolded (CR and LF
 *   removed, a fold's tab a space), never RFC 2047-decoded: clients decode;
 *   8-bit bytes go out as they are, in a literal (as Dovecot sends them).
 *   Parameter values are
 *   GMime's (RFC 2231 joined and decoded), as valid UTF-8;
 * - an address without a domain gets the host "MISSING_DOMAIN" (NIL would
 *   start a group), one without a local part "MISSING_MAILBOX";
 * - sizes and line counts are those of the canonical form FETCH serves
 *   (CRLF line ends): an encoded body's length plus its bare LFs;
 * - message/rfc822 parts carry their own size, encapsulated envelope, body
 *   and line count; one whose encoding is not 7bit, 8bit or binary cannot
 *   encapsulate a message (RFC 2046 5.2.1) and is described as a basic part;
 * - BODYSTRUCTURE has the extension data (MD5, disposition, language,
 *   location), BODY leaves it out.
 *
 * GMime gives the tree and the parsed Content-Type / Content-Disposition;
 * the byte ranges of encapsulated messages come from imap-msgpart, the same
 * code that cuts BODY[section], so that sizes and sections agree. */
#include "mime.h"
#include "mime-private.h"
#include "imap-msgpart.h"
#include "mem.h"
#include "str.h"

#include <stdio.h>
#include <string.h>

#define MIME_IMAP_MAX_DEPTH 50
#define MIME_IMAP_EXACT_PARTS 64

struct mime_imap_ctx {
	const unsigned char *data;
	size_t len;
	size_t base; /* GMime's offsets + base = offsets into data (blank lines skipped
		      * before the parse, or header fields left out) */
	unsigned int leaves;
	struct str *bs, *body; /* BODYSTRUCTURE, BODY */
};

/* ---- strings ---- */

/* An IMAP string: quoted when it can be, a literal otherwise. */
static void imap_string(struct str *out, const char *s)
{
	if (s == NULL) {
		str_append(out, "NIL");
		return;
	}
	bool quotable = strlen(s) < 1024;
	for (const char *p = s; *p != '\0' && quotable; p++) {
		/* control characters and 8-bit: a literal, which takes any byte */
		if ((unsigned char)*p < 0x20 || *p == 0x7f || (unsigned char)*p >= 0x80)
			quotable = false;
	}
	if (!quotable) {
		str_printfa(out, "{%zu}\r\n%s", strlen(s), s);
		return;
	}
	/* runs between the bytes that need a backslash, copied whole */
	str_append_c(out, '"');
	const char *run = s;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			str_append_n(out, run, (size_t)(p - run));
			str_append_c(out, '\\');
			run = p;
		}
	}
	str_append(out, run);
	str_append_c(out, '"');
}

/* Valid UTF-8 for an IMAP string (NULL stays NULL). */
static void imap_text(struct str *out, const char *s)
{
	if (s == NULL) {
		str_append(out, "NIL");
		return;
	}
	char *v = mime_utf8(s);
	imap_string(out, v);
	mem_free(v);
}

/* Both structures get the same text. */
static void both(struct mime_imap_ctx *ctx, const char *text)
{
	str_append(ctx->bs, text);
	str_append(ctx->body, text);
}

static void both_text(struct mime_imap_ctx *ctx, const char *s)
{
	imap_text(ctx->bs, s);
	imap_text(ctx->body, s);
}

/* A header's raw value, unfolded: CR and LF dropped, leading blanks too.
 * NULL if absent. mem_free. */
static char *unfold(const char *raw)
{
	size_t n = strlen(raw), w = 0;
	char *out = mem_alloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		char c = raw[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '\t' && i > 0 && raw[i - 1] == '\n') {
			out[w++] = ' '; /* a fold's tab unfolds to a space */
			continue;
		}
		if (w == 0 && (c == ' ' || c == '\t'))
			continue;
		out[w++] = c;
	}
	while (w > 0 && (out[w - 1] == ' ' || out[w - 1] == '\t'))
		w--;
	out[w] = '\0';
	return out;
}

static char *raw_header(GMimeObject *obj, const char *name)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(obj);
	GMimeHeader *h = list == NULL ? NULL : g_mime_header_list_get_header(list, name);
	const char *raw = h == NULL ? NULL : g_mime_header_get_raw_value(h);
	return raw == NULL ? NULL : unfold(raw);
}

static void header_text(struct str *out, GMimeObject *obj, const char *name)
{
	char *v = raw_header(obj, name);
	imap_string(out, v);
	mem_free(v);
}

/* ---- addresses (RFC 5322 3.4, with the obsolete forms; raw text) ---- */

struct addr_parser {
	const char *p;
	struct str *out;
	char *comment; /* the last comment seen: the name of "a@b (Name)" */
	/* a mailbox's parts, reused from one mailbox to the next (a group's
	 * mailboxes are read after the group's name was written) */
	struct str *name, *local, *domain, *adl;
};

static void addr_skip_comment(struct addr_parser *ap)
{
	/* at '(' */
	struct str *c = str_create(32);
	int depth = 0;
	for (; *ap->p != '\0'; ap->p++) {
		if (*ap->p == '\\' && ap->p[1] != '\0') {
			ap->p++;
			str_append_c(c, *ap->p);
			continue;
		}
		if (*ap->p == '(') {
			if (depth++ > 0)
				str_append_c(c, '(');
			continue;
		}
		if (*ap->p == ')') {
			if (--depth == 0) {
				ap->p++;
				break;
			}
			str_append_c(c, ')');
			continue;
		}
		str_append_c(c, *ap->p);
	}
	mem_free(ap->comment);
	ap->comment = str_steal(&c);
}

static void addr_skip_cfws(struct addr_parser *ap)
{
	for (;;) {
		while (*ap->p == ' ' || *ap->p == '\t')
			ap->p++;
		if (*ap->p != '(')
			return;
		addr_skip_comment(ap);
	}
}

static bool addr_special(char c)
{
	/* a switch, not strchr(): this is asked of every byte of an address */
	switch (c) {
	case '(':
	case ')':
	case '<':
	case '>':
	case '[':
	case ']':
	case ':':
	case ';':
	case '@':
	case '\\':
	case ',':
	case '.':
	case '"':
	case '\0':
		return true;
	default:
		return false;
	}
}

/* One word (atom or quoted string) appended to w; false if none here. */
static bool addr_word(struct addr_parser *ap, struct str *w)
{
	addr_skip_cfws(ap);
	if (*ap->p == '"') {
		ap->p++;
		while (*ap->p != '\0' && *ap->p != '"') {
			if (*ap->p == '\\' && ap->p[1] != '\0')
				ap->p++;
			str_append_c(w, *ap->p++);
		}
		if (*ap->p == '"')
			ap->p++;
		return true;
	}
	const char *start = ap->p;
	while (*ap->p != '\0' && *ap->p != ' ' && *ap->p != '\t' && !addr_special(*ap->p))
		ap->p++;
	str_append_n(w, start, (size_t)(ap->p - start));
	return ap->p > start;
}

/* A display name: words and dots, words joined by one space. */
static void addr_phrase(struct addr_parser *ap, struct str *name)
{
	for (;;) {
		addr_skip_cfws(ap);
		if (*ap->p == '.') {
			str_append_c(name, '.');
			ap->p++;
			continue;
		}
		size_t before = str_len(name);
		if (before > 0)
			str_append_c(name, ' ');
		if (!addr_word(ap, name)) {
			str_truncate(name, before);
			return;
		}
	}
}

/* local-part "@" domain, up to '>' ',' ';' or the end. */
static void addr_spec(struct addr_parser *ap, struct str *local, struct str *domain)
{
	for (;;) {
		addr_skip_cfws(ap);
		if (*ap->p == '.') {
			str_append_c(local, '.');
			ap->p++;
		} else if (!addr_word(ap, local)) {
			break;
		}
	}
	addr_skip_cfws(ap);
	if (*ap->p != '@')
		return;
	ap->p++;
	for (;;) {
		addr_skip_cfws(ap);
		if (*ap->p == '[') {
			const char *start = ap->p;
			while (*ap->p != '\0' && *ap->p != ']')
				ap->p++;
			if (*ap->p == ']')
				ap->p++;
			str_append_n(domain, start, (size_t)(ap->p - start));
		} else if (*ap->p == '.') {
			str_append_c(domain, '.');
			ap->p++;
		} else if (str_len(domain) > 0 && str_c(domain)[str_len(domain) - 1] != '.') {
			/* atoms of a domain are joined by dots (RFC 5322 3.4.1): a
			 * word after a blank is not part of it ("a@b.com c@d") */
			break;
		} else if (!addr_word(ap, domain)) {
			break;
		}
	}
}

static void addr_write(struct addr_parser *ap, const char *name, const char *adl, const char *local,
		       const char *domain)
{
	str_append_c(ap->out, '(');
	imap_string(ap->out, name != NULL && *name != '\0' ? name : NULL);
	str_append_c(ap->out, ' ');
	imap_string(ap->out, adl != NULL && *adl != '\0' ? adl : NULL);
	str_append_c(ap->out, ' ');
	imap_string(ap->out, *local != '\0' ? local : "MISSING_MAILBOX");
	str_append_c(ap->out, ' ');
	imap_string(ap->out, *domain != '\0' ? domain : "MISSING_DOMAIN");
	str_append_c(ap->out, ')');
}

/* Skip to the next ',' (or stop char) after garbage. */
static void addr_skip_rest(struct addr_parser *ap, const char *stops)
{
	while (*ap->p != '\0' && strchr(stops, *ap->p) == NULL) {
		if (*ap->p == '"') {
			struct str *dummy = str_create(16);
			(void)addr_word(ap, dummy);
			str_destroy(&dummy);
		} else if (*ap->p == '(') {
			addr_skip_comment(ap);
		} else {
			ap->p++;
		}
	}
}

/* One mailbox (or, when groups are allowed, a group); false if empty. */
static bool addr_mailbox(struct addr_parser *ap, bool group_ok, const char *stops);

static void addr_list(struct addr_parser *ap, bool group_ok, const char *stops)
{
	for (;;) {
		addr_skip_cfws(ap);
		if (*ap->p == '\0' || (strchr(stops, *ap->p) != NULL && *ap->p != ','))
			return;
		if (*ap->p == ',') {
			ap->p++;
			continue;
		}
		const char *before = ap->p;
		(void)addr_mailbox(ap, group_ok, stops);
		addr_skip_rest(ap, stops);
		if (ap->p == before)
			ap->p++;
	}
}

static bool addr_mailbox(struct addr_parser *ap, bool group_ok, const char *stops)
{
	struct str *name = ap->name, *local = ap->local, *domain = ap->domain, *adl = ap->adl;
	str_truncate(name, 0);
	str_truncate(local, 0);
	str_truncate(domain, 0);
	str_truncate(adl, 0);
	const char *start = ap->p;
	mem_free(ap->comment);
	ap->comment = NULL;
	addr_phrase(ap, name);
	addr_skip_cfws(ap);
	bool written = true;
	if (*ap->p == ':' && group_ok) {
		ap->p++;
		str_append(ap->out, "(NIL NIL ");
		imap_string(ap->out, str_c(name));
		str_append(ap->out, " NIL)");
		addr_list(ap, false, ",;");
		if (*ap->p == ';')
			ap->p++;
		str_append(ap->out, "(NIL NIL NIL NIL)");
	} else if (*ap->p == '<') {
		ap->p++;
		addr_skip_cfws(ap);
		if (*ap->p == '@') { /* obsolete route: @a,@b: */
			const char *r = ap->p;
			while (*ap->p != '\0' && *ap->p != ':' && *ap->p != '>')
				ap->p++;
			str_append_n(adl, r, (size_t)(ap->p - r));
			if (*ap->p == ':')
				ap->p++;
		}
		addr_spec(ap, local, domain);
		addr_skip_rest(ap, ">");
		if (*ap->p == '>')
			ap->p++;
		addr_skip_cfws(ap);
		addr_write(ap, str_c(name), str_c(adl), str_c(local), str_c(domain));
	} else {
		/* no angle brackets: it was an addr-spec all along */
		ap->p = start;
		str_truncate(name, 0);
		mem_free(ap->comment);
		ap->comment = NULL;
		addr_spec(ap, local, domain);
		addr_skip_cfws(ap);
		if (str_len(local) == 0 && str_len(domain) == 0) {
			written = false;
		} else {
			addr_write(ap, ap->comment, NULL, str_c(local), str_c(domain));
		}
	}
	(void)stops;
	return written;
}

/* Every field of that name, in order: a message with two To fields has
 * the addresses of both (as Dovecot and RFC 5322 3.6 readers do). */
static void envelope_addresses(struct str *out, GMimeObject *obj, const char *header,
			       const char *fallback)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(obj);
	int count = list != NULL ? g_mime_header_list_get_count(list) : 0;
	const char *name = header;
	bool found = false;
	for (int i = 0; i < count && !found; i++)
		found = g_ascii_strcasecmp(
				g_mime_header_get_name(g_mime_header_list_get_header_at(list, i)),
				header) == 0;
	if (!found)
		name = fallback;
	struct addr_parser ap = {.out = str_create(64),
				 .name = str_create(32),
				 .local = str_create(32),
				 .domain = str_create(32),
				 .adl = str_create(8)};
	for (int i = 0; name != NULL && i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		if (g_ascii_strcasecmp(g_mime_header_get_name(h), name) != 0)
			continue;
		char *v = unfold(g_mime_header_get_raw_value(h));
		ap.p = v;
		addr_list(&ap, true, ",");
		mem_free(v);
	}
	if (str_len(ap.out) == 0) {
		str_append(out, "NIL");
	} else {
		str_append_c(out, '(');
		str_append_n(out, str_c(ap.out), str_len(ap.out));
		str_append_c(out, ')');
	}
	str_destroy(&ap.out);
	str_destroy(&ap.name);
	str_destroy(&ap.local);
	str_destroy(&ap.domain);
	str_destroy(&ap.adl);
	mem_free(ap.comment);
}

static void mime_imap_envelope(struct str *out, GMimeObject *obj)
{
	str_append_c(out, '(');
	header_text(out, obj, "Date");
	str_append_c(out, ' ');
	header_text(out, obj, "Subject");
	str_append_c(out, ' ');
	envelope_addresses(out, obj, "From", NULL);
	str_append_c(out, ' ');
	/* RFC 3501: Sender and Reply-To default to From */
	envelope_addresses(out, obj, "Sender", "From");
	str_append_c(out, ' ');
	envelope_addresses(out, obj, "Reply-To", "From");
	str_append_c(out, ' ');
	envelope_addresses(out, obj, "To", NULL);
	str_append_c(out, ' ');
	envelope_addresses(out, obj, "Cc", NULL);
	str_append_c(out, ' ');
	envelope_addresses(out, obj, "Bcc", NULL);
	str_append_c(out, ' ');
	header_text(out, obj, "In-Reply-To");
	str_append_c(out, ' ');
	header_text(out, obj, "Message-ID");
	str_append_c(out, ')');
}

/* ---- body structure ---- */

struct span_count {
	size_t size, lines;
};

/* The canonical size (imap_msgpart_canonical_size()) and the line count
 * of a span, in one pass from line end to line end. */
static struct span_count span_count(const unsigned char *p, size_t len)
{
	struct span_count c = {len, 0};
	for (const unsigned char *at = p, *end = p + len;
	     at < end && (at = memchr(at, '\n', (size_t)(end - at))) != NULL; at++) {
		c.lines++;
		c.size += at == p || at[-1] != '\r';
	}
	return c;
}

/* The body of part `path` as BODY[path] cuts it (counted where it lies in
 * the message, not copied). */
static struct span_count section_count(struct mime_imap_ctx *ctx, const char *path)
{
	struct imap_msgpart *part;
	const char *error;
	struct span_count c = {0, 0};
	if (imap_msgpart_parse(path, &part, &error) < 0)
		return c;
	size_t off, len;
	if (imap_msgpart_span(part, ctx->data, ctx->len, &off, &len)) {
		c = span_count(ctx->data + off, len);
	} else {
		struct str *s = str_create(1024);
		imap_msgpart_extract(part, ctx->data, ctx->len, s);
		c = span_count((const unsigned char *)str_c(s), str_len(s));
		str_destroy(&s);
	}
	imap_msgpart_destroy(&part);
	return c;
}

/* The body of a leaf part, as BODY[path] cuts it, so that the two agree
 * to the byte. That scans the message again for each part; past
 * MIME_IMAP_EXACT_PARTS parts (where it would cost parts x size) the span
 * GMime's parser found is taken instead, which differs only where a body
 * ends in a stray CR. */
static struct span_count leaf_count(struct mime_imap_ctx *ctx, GMimeObject *obj, const char *path)
{
	GMimeDataWrapper *w = GMIME_IS_PART(obj) ? g_mime_part_get_content(GMIME_PART(obj)) : NULL;
	GMimeStream *st = w != NULL ? g_mime_data_wrapper_get_stream(w) : NULL;
	if (++ctx->leaves > MIME_IMAP_EXACT_PARTS && st != NULL && st->bound_start >= 0 &&
	    st->bound_end >= st->bound_start && ctx->base + (uint64_t)st->bound_end <= ctx->len)
		return span_count(ctx->data + ctx->base + st->bound_start,
				  (size_t)(st->bound_end - st->bound_start));
	return section_count(ctx, path);
}

static void params_list(struct str *out, GMimeParamList *params)
{
	int n = params != NULL ? g_mime_param_list_length(params) : 0;
	if (n == 0) {
		str_append(out, "NIL");
		return;
	}
	str_append_c(out, '(');
	for (int i = 0; i < n; i++) {
		GMimeParam *p = g_mime_param_list_get_parameter_at(params, i);
		if (i > 0)
			str_append_c(out, ' ');
		imap_text(out, g_mime_param_get_name(p));
		str_append_c(out, ' ');
		imap_text(out, g_mime_param_get_value(p));
	}
	str_append_c(out, ')');
}

/* A token character of RFC 2045 5.1 (not a space, control or tspecial). */
static bool token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* disposition language location, after a leading space */
static void extension_tail(struct str *out, GMimeObject *obj)
{
	str_append_c(out, ' ');
	GMimeContentDisposition *disp = g_mime_object_get_content_disposition(obj);
	const char *dtype = disp != NULL ? g_mime_content_disposition_get_disposition(disp) : NULL;
	char *raw = raw_header(obj, "Content-Disposition");
	bool unparsable = raw != NULL && !token_char((unsigned char)raw[0]);
	mem_free(raw);
	if (!unparsable && (dtype == NULL || *dtype == '\0')) {
		str_append(out, "NIL");
	} else if (unparsable) {
		/* A field whose value is not a disposition type (empty, or an
		 * encoded word, which RFC 2047 5 does not allow here): there
		 * is a disposition, of no type, as Dovecot says too. */
		str_append(out, "(\"\" NIL)");
	} else {
		str_append_c(out, '(');
		imap_text(out, dtype);
		str_append_c(out, ' ');
		params_list(out, g_mime_content_disposition_get_parameters(disp));
		str_append_c(out, ')');
	}
	str_append_c(out, ' ');
	char *lang = raw_header(obj, "Content-Language");
	if (lang == NULL) {
		str_append(out, "NIL");
	} else {
		/* a comma-separated list of tags */
		str_append_c(out, '(');
		char *save = NULL;
		bool first = true;
		for (char *t = strtok_r(lang, ", \t", &save); t != NULL;
		     t = strtok_r(NULL, ", \t", &save)) {
			if (!first)
				str_append_c(out, ' ');
			imap_text(out, t);
			first = false;
		}
		str_append_c(out, ')');
		mem_free(lang);
	}
	str_append_c(out, ' ');
	header_text(out, obj, "Content-Location");
}

static void content_type(struct mime_imap_ctx *ctx, GMimeObject *obj, const char **type_r,
			 const char **subtype_r)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *type = ct != NULL ? g_mime_content_type_get_media_type(ct) : NULL;
	const char *subtype = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;
	if (type == NULL || *type == '\0')
		type = "text";
	char *raw = raw_header(obj, "Content-Type");
	if (raw != NULL && g_ascii_strncasecmp(raw, "text", 4) == 0 &&
	    (raw[4] == '\0' || raw[4] == ';' || raw[4] == ' ' || raw[4] == '\t')) {
		/* GMime takes a type without subtype for application/octet-stream */
		type = "text";
		subtype = NULL;
	}
	mem_free(raw);
	/* "Content-Type: text" without a subtype is text/plain (RFC 2045 5.2) */
	if (subtype == NULL || *subtype == '\0')
		subtype = g_ascii_strcasecmp(type, "text") == 0 ? "plain" : "";
	*type_r = type;
	*subtype_r = subtype;
	(void)ctx;
}

static void mime_imap_walk(struct mime_imap_ctx *ctx, GMimeObject *obj, const char *path,
			   int depth);

/* An empty text/plain part, where the structure has nothing (an empty
 * multipart, a part nested too deep). */
static void empty_part(struct mime_imap_ctx *ctx)
{
	both(ctx, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0");
	str_append(ctx->bs, " NIL NIL NIL NIL");
	both(ctx, ")");
}

static void basic_fields(struct mime_imap_ctx *ctx, GMimeObject *obj, const char *type,
			 const char *subtype, const char *encoding)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	both(ctx, "(");
	both_text(ctx, type);
	both(ctx, " ");
	both_text(ctx, subtype);
	both(ctx, " ");
	GMimeParamList *params = ct != NULL ? g_mime_content_type_get_parameters(ct) : NULL;
	if (g_ascii_strcasecmp(type, "text") == 0 &&
	    (params == NULL || g_mime_param_list_get_parameter(params, "charset") == NULL)) {
		/* RFC 2045 5.2: text is us-ascii unless it says otherwise */
		both(ctx, "(");
		int n = params != NULL ? g_mime_param_list_length(params) : 0;
		for (int i = 0; i < n; i++) {
			GMimeParam *p = g_mime_param_list_get_parameter_at(params, i);
			both_text(ctx, g_mime_param_get_name(p));
			both(ctx, " ");
			both_text(ctx, g_mime_param_get_value(p));
			both(ctx, " ");
		}
		both(ctx, "\"charset\" \"us-ascii\")");
	} else {
		params_list(ctx->bs, params);
		params_list(ctx->body, params);
	}
	both(ctx, " ");
	char *id = raw_header(obj, "Content-ID");
	char *desc = raw_header(obj, "Content-Description");
	both_text(ctx, id);
	both(ctx, " ");
	both_text(ctx, desc);
	both(ctx, " ");
	both_text(ctx, encoding != NULL && *encoding != '\0' ? encoding : "7bit");
	mem_free(id);
	mem_free(desc);
}

static void leaf_end(struct mime_imap_ctx *ctx, GMimeObject *obj)
{
	str_append(ctx->bs, " ");
	header_text(ctx->bs, obj, "Content-MD5");
	extension_tail(ctx->bs, obj);
	both(ctx, ")");
}

static bool identity_encoding(const char *enc)
{
	return enc == NULL || *enc == '\0' || g_ascii_strcasecmp(enc, "7bit") == 0 ||
	       g_ascii_strcasecmp(enc, "8bit") == 0 || g_ascii_strcasecmp(enc, "binary") == 0;
}

/* The Content-Transfer-Encoding if it is one token (RFC 2045 6.1), else
 * NULL: "quoted printable" or "text/html" there mean 7bit, as in Dovecot. */
static char *transfer_encoding(GMimeObject *obj)
{
	char *enc = raw_header(obj, "Content-Transfer-Encoding");
	for (const char *p = enc; p != NULL && *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
		    strchr("()<>@,;:\\\"/[]?=", *p) != NULL) {
			mem_free(enc);
			return NULL;
		}
	}
	return enc;
}

static void mime_imap_leaf(struct mime_imap_ctx *ctx, GMimeObject *obj, const char *path)
{
	const char *type, *subtype;
	content_type(ctx, obj, &type, &subtype);
	char *enc = transfer_encoding(obj);
	basic_fields(ctx, obj, type, subtype, enc);
	mem_free(enc);
	struct span_count c = leaf_count(ctx, obj, path);
	char num[64];
	snprintf(num, sizeof(num), " %zu", c.size);
	both(ctx, num);
	if (g_ascii_strcasecmp(type, "text") == 0) {
		snprintf(num, sizeof(num), " %zu", c.lines);
		both(ctx, num);
	}
	leaf_end(ctx, obj);
}

static void mime_imap_message(struct mime_imap_ctx *ctx, GMimeMessagePart *mp, const char *path,
			      int depth)
{
	GMimeObject *obj = GMIME_OBJECT(mp);
	GMimeMessage *inner = g_mime_message_part_get_message(mp);
	char *enc = transfer_encoding(obj);
	const char *type, *subtype;
	content_type(ctx, obj, &type, &subtype);
	if (!identity_encoding(enc) || g_ascii_strcasecmp(subtype, "rfc822") != 0) {
		/* not an encapsulated message: a basic part */
		mem_free(enc);
		mime_imap_leaf(ctx, obj, path);
		return;
	}
	basic_fields(ctx, obj, type, subtype, enc);
	mem_free(enc);
	struct span_count c = section_count(ctx, path);
	char num[64];
	snprintf(num, sizeof(num), " %zu ", c.size);
	both(ctx, num);
	struct str *env = str_create(256);
	if (inner != NULL) /* else an empty encapsulated message */
		mime_imap_envelope(env, GMIME_OBJECT(inner));
	else
		str_append(env, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	both(ctx, str_c(env));
	str_destroy(&env);
	both(ctx, " ");
	GMimeObject *body = inner != NULL ? g_mime_message_get_mime_part(inner) : NULL;
	char *inner_path = mem_printf("%s.1", path);
	if (body != NULL)
		mime_imap_walk(ctx, body, GMIME_IS_MULTIPART(body) ? path : inner_path, depth + 1);
	else
		empty_part(ctx);
	mem_free(inner_path);
	snprintf(num, sizeof(num), " %zu", c.lines);
	both(ctx, num);
	leaf_end(ctx, obj);
}

static void mime_imap_multipart(struct mime_imap_ctx *ctx, GMimeMultipart *mp, const char *path,
				int depth)
{
	GMimeObject *obj = GMIME_OBJECT(mp);
	int n = g_mime_multipart_get_count(mp);
	both(ctx, "(");
	for (int i = 0; i < n; i++) {
		char *child = path[0] == '\0' ? mem_printf("%d", i + 1)
					      : mem_printf("%s.%d", path, i + 1);
		mime_imap_walk(ctx, g_mime_multipart_get_part(mp, i), child, depth + 1);
		mem_free(child);
	}
	if (n == 0)
		empty_part(ctx);
	const char *type, *subtype;
	content_type(ctx, obj, &type, &subtype);
	both(ctx, " ");
	both_text(ctx, *subtype != '\0' ? subtype : "mixed");
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	str_append_c(ctx->bs, ' ');
	params_list(ctx->bs, ct != NULL ? g_mime_content_type_get_parameters(ct) : NULL);
	extension_tail(ctx->bs, obj);
	both(ctx, ")");
}

static void mime_imap_walk(struct mime_imap_ctx *ctx, GMimeObject *obj, const char *path, int depth)
{
	if (depth > MIME_IMAP_MAX_DEPTH)
		empty_part(ctx);
	else if (GMIME_IS_MULTIPART(obj))
		mime_imap_multipart(ctx, GMIME_MULTIPART(obj), path, depth);
	else if (GMIME_IS_MESSAGE_PART(obj))
		mime_imap_message(ctx, GMIME_MESSAGE_PART(obj), path, depth);
	else
		mime_imap_leaf(ctx, obj, path);
}

/* A message whose first lines hold only blanks: GMime finds no header in it,
 * Dovecot (and mail clients) skip those lines. The message after them. */
static GMimeMessage *reparse_after_blank_lines(const unsigned char *data, size_t len,
					       size_t *skip_r)
{
	size_t skip = 0;
	for (size_t i = 0;
	     i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n');
	     i++) {
		if (data[i] == '\n')
			skip = i + 1;
	}
	if (skip == 0 || skip == len)
		return NULL;
	GMimeStream *stream =
		g_mime_stream_mem_new_with_buffer((const char *)data + skip, len - skip);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	return msg;
}

void mime_imap_build(GMimeMessage *msg, const unsigned char *data, size_t len, size_t shift,
		     struct mime_info *info)
{
	GMimeMessage *own = NULL;
	size_t base = shift;
	GMimeHeaderList *headers =
		msg != NULL ? g_mime_object_get_header_list(GMIME_OBJECT(msg)) : NULL;
	if (len > 0 && (data[0] == ' ' || data[0] == '\t') &&
	    (headers == NULL || g_mime_header_list_get_count(headers) == 0))
		msg = own = reparse_after_blank_lines(data, len, &base);
	struct mime_imap_ctx ctx = {data, len, base, 0, str_create(256), str_create(256)};
	struct str *env = str_create(256);
	if (msg != NULL) {
		mime_imap_envelope(env, GMIME_OBJECT(msg));
		GMimeObject *body = g_mime_message_get_mime_part(msg);
		if (body != NULL)
			mime_imap_walk(&ctx, body, GMIME_IS_MULTIPART(body) ? "" : "1", 0);
		else
			empty_part(&ctx);
	} else {
		str_append(env, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
		empty_part(&ctx);
	}
	info->envelope = str_steal(&env);
	info->bodystructure = str_steal(&ctx.bs);
	info->body = str_steal(&ctx.body);
	info->imap_size = imap_msgpart_canonical_size(data, len);
	if (own != NULL)
		g_object_unref(own);
}
