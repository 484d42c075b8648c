/* imap-msgpart: BODY[section] from raw message bytes. The MIME structure is
 * found again on every fetch by a small scanner (header end, Content-Type,
 * boundaries): it is cheap next to reading the message, and needs no state. */
#include "imap-msgpart.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MSGPART_MAX_DEPTH 32
#define MSGPART_MAX_FIELDS 64

enum msgpart_text {
	MSGPART_NONE,
	MSGPART_HEADER,
	MSGPART_FIELDS,
	MSGPART_FIELDS_NOT,
	MSGPART_TEXT,
	MSGPART_MIME,
};

struct imap_msgpart {
	unsigned int numbers[MSGPART_MAX_DEPTH];
	unsigned int depth;
	enum msgpart_text text;
	char *fields[MSGPART_MAX_FIELDS];
	unsigned int field_count;
	char *canonical;
};

/* One MIME entity within the message: its header and its body. */
struct msgpart_entity {
	const unsigned char *start;
	size_t header_len; /* including the empty line that ends it */
	size_t len;
	bool digest_child; /* default type message/rfc822 */
};

/* ---- parsing the section ---- */

static int msgpart_parse_fields(struct imap_msgpart *part, const char *p, const char **error_r)
{
	while (*p == ' ')
		p++;
	if (*p++ != '(') {
		*error_r = "HEADER.FIELDS needs a parenthesised list of field names";
		return -1;
	}
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == ')')
			break;
		const char *start = p;
		bool quoted = *p == '"';
		if (quoted)
			start = ++p;
		while (*p != '\0' && (quoted ? *p != '"' : (*p != ' ' && *p != ')')))
			p++;
		if (p == start || (quoted && *p != '"') ||
		    part->field_count == MSGPART_MAX_FIELDS) {
			*error_r = "bad field list in HEADER.FIELDS";
			return -1;
		}
		for (const char *c = start; c < p; c++) {
			if ((unsigned char)*c <= ' ' || *c == ':' || (unsigned char)*c >= 0x7f) {
				*error_r = "bad field name in HEADER.FIELDS";
				return -1;
			}
		}
		part->fields[part->field_count++] = mem_strndup(start, (size_t)(p - start));
		if (quoted)
			p++;
	}
	if (part->field_count == 0 || p[1] != '\0') {
		*error_r = "bad field list in HEADER.FIELDS";
		return -1;
	}
	return 0;
}

static int msgpart_parse_text(struct imap_msgpart *part, const char *p, const char **error_r)
{
	if (*p == '\0') {
		part->text = MSGPART_NONE;
	} else if (strcasecmp(p, "HEADER") == 0) {
		part->text = MSGPART_HEADER;
	} else if (strcasecmp(p, "TEXT") == 0) {
		part->text = MSGPART_TEXT;
	} else if (strcasecmp(p, "MIME") == 0 && part->depth > 0) {
		part->text = MSGPART_MIME;
	} else if (strncasecmp(p, "HEADER.FIELDS.NOT", 17) == 0 && (p[17] == ' ' || p[17] == '(')) {
		part->text = MSGPART_FIELDS_NOT;
		return msgpart_parse_fields(part, p + 17, error_r);
	} else if (strncasecmp(p, "HEADER.FIELDS", 13) == 0 && (p[13] == ' ' || p[13] == '(')) {
		part->text = MSGPART_FIELDS;
		return msgpart_parse_fields(part, p + 13, error_r);
	} else {
		*error_r = tstr_printf("unknown section text '%.40s'", p);
		return -1;
	}
	return 0;
}

static void msgpart_make_canonical(struct imap_msgpart *part)
{
	static const char *const names[] = {"",     "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT",
					    "TEXT", "MIME"};
	struct str *s = str_create(64);
	for (unsigned int i = 0; i < part->depth; i++)
		str_printfa(s, "%s%u", i == 0 ? "" : ".", part->numbers[i]);
	if (part->text != MSGPART_NONE)
		str_printfa(s, "%s%s", part->depth > 0 ? "." : "", names[part->text]);
	if (part->field_count > 0) {
		str_append(s, " (");
		for (unsigned int i = 0; i < part->field_count; i++) {
			if (i > 0)
				str_append_c(s, ' ');
			for (const char *c = part->fields[i]; *c != '\0'; c++)
				str_append_c(s, (char)toupper((unsigned char)*c));
		}
		str_append_c(s, ')');
	}
	part->canonical = str_steal(&s);
}

int imap_msgpart_parse(const char *section, struct imap_msgpart **part_r, const char **error_r)
{
	struct imap_msgpart *part = mem_new(struct imap_msgpart);
	const char *p = section;
	while (*p >= '1' && *p <= '9') {
		char *end;
		unsigned long n = strtoul(p, &end, 10);
		if (n == 0 || n > 1000000 || part->depth == MSGPART_MAX_DEPTH) {
			*error_r = "bad part number in section";
			goto fail;
		}
		part->numbers[part->depth++] = (unsigned int)n;
		p = end;
		if (*p == '.')
			p++;
		else if (*p != '\0') {
			*error_r = "bad part number in section";
			goto fail;
		}
	}
	if (part->depth > 0 && p > section && p[-1] == '.' && *p == '\0') {
		*error_r = "section ends with a dot";
		goto fail;
	}
	if (msgpart_parse_text(part, p, error_r) < 0)
		goto fail;
	msgpart_make_canonical(part);
	*part_r = part;
	return 0;
fail:
	imap_msgpart_destroy(&part);
	*part_r = NULL;
	return -1;
}

void imap_msgpart_destroy(struct imap_msgpart **part)
{
	struct imap_msgpart *p = *part;
	if (p == NULL)
		return;
	for (unsigned int i = 0; i < p->field_count; i++)
		mem_free(p->fields[i]);
	mem_free(p->canonical);
	mem_free(p);
	*part = NULL;
}

const char *imap_msgpart_section(const struct imap_msgpart *part)
{
	return part->canonical;
}

bool imap_msgpart_header_only(const struct imap_msgpart *part)
{
	return part->depth == 0 && (part->text == MSGPART_HEADER || part->text == MSGPART_FIELDS ||
				    part->text == MSGPART_FIELDS_NOT);
}

/* ---- the canonical form ---- */

size_t imap_msgpart_canonical_size(const unsigned char *msg, size_t len)
{
	/* memchr() finds line ends many bytes at a time; a NUL keeps the size */
	size_t size = len;
	for (const unsigned char *p = msg, *end = msg + len;
	     p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		size += p == msg || p[-1] != '\r';
	return size;
}

void imap_msgpart_canonical_copy(const unsigned char *msg, size_t len, unsigned char *dest)
{
	if (len == 0)
		return;
	if (memchr(msg, '\0', len) == NULL) {
		/* the usual case: copy line by line, adding the CRs */
		const unsigned char *p = msg, *end = msg + len;
		while (p < end) {
			const unsigned char *lf = memchr(p, '\n', (size_t)(end - p));
			size_t n = (size_t)((lf != NULL ? lf : end) - p);
			memcpy(dest, p, n);
			dest += n;
			if (lf == NULL)
				break;
			if (lf == msg || lf[-1] != '\r')
				*dest++ = '\r';
			*dest++ = '\n';
			p = lf + 1;
		}
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\0') {
			*dest++ = 0x80;
			continue;
		}
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			*dest++ = '\r';
		*dest++ = msg[i];
	}
}

bool imap_msgpart_canonical(const unsigned char *msg, size_t len, struct str *out)
{
	size_t size = imap_msgpart_canonical_size(msg, len);
	if (size == len && (len == 0 || memchr(msg, '\0', len) == NULL))
		return false;
	unsigned char *dest = mem_alloc(size > 0 ? size : 1);
	imap_msgpart_canonical_copy(msg, len, dest);
	str_append_n(out, dest, size);
	mem_free(dest);
	return true;
}

/* ---- the message's structure ---- */

static struct msgpart_entity msgpart_entity(const unsigned char *start, size_t len, bool digest)
{
	struct msgpart_entity e = {start, len, len, digest};
	/* the header ends at the first empty line (CRLF or bare LF) */
	if (len > 0 && (start[0] == '\n' || (len > 1 && start[0] == '\r' && start[1] == '\n'))) {
		e.header_len = start[0] == '\n' ? 1 : 2;
		return e;
	}
	/* from line end to line end: this runs for every FETCH and every
	 * part of every message imported */
	for (const unsigned char *p = start, *end = start + len;
	     (p = memchr(p, '\n', (size_t)(end - p))) != NULL && p + 1 < end; p++) {
		size_t i = (size_t)(p - start);
		if (start[i + 1] == '\n') {
			e.header_len = i + 2;
			break;
		}
		if (i + 2 < len && start[i + 1] == '\r' && start[i + 2] == '\n') {
			e.header_len = i + 3;
			break;
		}
	}
	return e;
}

/* The next header field: [*pos, *end_r) including its continuation lines
 * and line end; the name's length in *name_len_r. false at the end. */
static bool msgpart_next_field(const unsigned char *h, size_t len, size_t *pos, size_t *start_r,
			       size_t *end_r, size_t *name_len_r)
{
	size_t p = *pos;
	if (p >= len || h[p] == '\n' || (h[p] == '\r' && p + 1 < len && h[p + 1] == '\n'))
		return false;
	*start_r = p;
	size_t colon = p;
	while (colon < len && h[colon] != ':' && h[colon] != '\n')
		colon++;
	*name_len_r = colon < len && h[colon] == ':' ? colon - p : 0;
	/* obsolete syntax (RFC 5322 4.5.3): blanks between name and colon */
	while (*name_len_r > 0 && (h[p + *name_len_r - 1] == ' ' || h[p + *name_len_r - 1] == '\t'))
		(*name_len_r)--;
	for (;;) {
		const unsigned char *nl = memchr(h + p, '\n', len - p);
		p = nl != NULL ? (size_t)(nl - h) + 1 : len;
		if (p >= len || (h[p] != ' ' && h[p] != '\t'))
			break;
	}
	*end_r = *pos = p;
	return true;
}

/* The value of the first `name` field, unfolded, into out (cleared). */
static bool msgpart_header_value(const struct msgpart_entity *e, const char *name, struct str *out)
{
	size_t pos = 0, start, end, name_len;
	size_t nlen = strlen(name);
	while (msgpart_next_field(e->start, e->header_len, &pos, &start, &end, &name_len)) {
		if (name_len != nlen ||
		    strncasecmp((const char *)e->start + start, name, nlen) != 0)
			continue;
		str_truncate(out, 0);
		for (size_t i = start + name_len + 1; i < end; i++) {
			unsigned char c = e->start[i];
			str_append_c(out, c == '\r' || c == '\n' || c == '\t' ? ' ' : (char)c);
		}
		return true;
	}
	return false;
}

/* Content-Type: is it multipart, message/rfc822, and the boundary. */
struct msgpart_type {
	bool multipart, digest, message;
	char boundary[201];
};

static const char *msgpart_find_ci(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = haystack; *p != '\0'; p++) {
		if (strncasecmp(p, needle, n) == 0)
			return p;
	}
	return NULL;
}

static void msgpart_boundary(const char *value, struct msgpart_type *t)
{
	const char *p = value;
	while ((p = msgpart_find_ci(p, "boundary")) != NULL) {
		/* must be a parameter name: preceded by ';' or space */
		const char *q = p + 8;
		bool at_param = p > value && (p[-1] == ';' || p[-1] == ' ');
		p = q;
		while (*q == ' ')
			q++;
		if (!at_param || *q != '=')
			continue;
		q++;
		while (*q == ' ')
			q++;
		size_t n = 0;
		if (*q == '"') {
			q++;
			while (q[n] != '\0' && q[n] != '"')
				n++;
		} else {
			while (q[n] != '\0' && q[n] != ';' && q[n] != ' ')
				n++;
		}
		if (n > 0 && n < sizeof(t->boundary)) {
			memcpy(t->boundary, q, n);
			t->boundary[n] = '\0';
		}
		return;
	}
}

static struct msgpart_type msgpart_type(const struct msgpart_entity *e)
{
	struct msgpart_type t = {0};
	struct str *v = str_create(128);
	if (!msgpart_header_value(e, "Content-Type", v)) {
		t.message = e->digest_child;
	} else {
		const char *s = str_c(v);
		while (*s == ' ')
			s++;
		if (strncasecmp(s, "multipart/", 10) == 0) {
			t.multipart = true;
			t.digest = strncasecmp(s + 10, "digest", 6) == 0;
			msgpart_boundary(s, &t);
			t.multipart = t.boundary[0] != '\0';
		} else if (strncasecmp(s, "message/rfc822", 14) == 0 ||
			   strncasecmp(s, "message/global", 14) == 0) {
			t.message = true;
		}
	}
	str_destroy(&v);
	return t;
}

/* Is the line at p a delimiter "--boundary" (1), a close "--boundary--" (2)? */
static int msgpart_delimiter(const unsigned char *p, size_t left, const char *boundary, size_t blen)
{
	if (left < blen + 2 || p[0] != '-' || p[1] != '-' || memcmp(p + 2, boundary, blen) != 0)
		return 0;
	size_t i = blen + 2;
	int kind = 1;
	if (i + 1 < left && p[i] == '-' && p[i + 1] == '-') {
		kind = 2;
		i += 2;
	}
	while (i < left && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i == left || p[i] == '\r' || p[i] == '\n' ? kind : 0;
}

/* The n-th (1-based) child of a multipart body: 1 found, 0 not. */
static int msgpart_child(const struct msgpart_entity *e, const struct msgpart_type *t,
			 unsigned int n, struct msgpart_entity *child_r)
{
	const unsigned char *body = e->start + e->header_len;
	size_t len = e->len - e->header_len, blen = strlen(t->boundary);
	unsigned int index = 0;
	size_t child_start = 0;
	bool in_child = false;
	for (size_t line = 0; line < len;) {
		size_t eol = line;
		while (eol < len && body[eol] != '\n')
			eol++;
		int kind = msgpart_delimiter(body + line, eol - line, t->boundary, blen);
		if (kind != 0) {
			if (in_child && index == n) {
				/* the line break before the delimiter belongs to it */
				size_t end = line;
				if (end > child_start && body[end - 1] == '\n')
					end--;
				if (end > child_start && body[end - 1] == '\r')
					end--;
				*child_r = msgpart_entity(body + child_start, end - child_start,
							  t->digest);
				return 1;
			}
			if (kind == 2)
				return 0;
			index++;
			in_child = true;
			child_start = eol < len ? eol + 1 : len;
		}
		line = eol < len ? eol + 1 : len;
	}
	if (in_child && index == n) { /* no closing delimiter: to the end */
		*child_r = msgpart_entity(body + child_start, len - child_start, t->digest);
		return 1;
	}
	return 0;
}

/* Walk the part numbers: 1 found, 0 no such part. */
static int msgpart_find(const struct imap_msgpart *part, const unsigned char *msg, size_t len,
			struct msgpart_entity *e_r)
{
	struct msgpart_entity cur = msgpart_entity(msg, len, false);
	for (unsigned int i = 0; i < part->depth; i++) {
		unsigned int n = part->numbers[i];
		struct msgpart_type t = msgpart_type(&cur);
		if (t.message && i > 0) {
			/* a part number inside a message/rfc822 part refers to
			 * the encapsulated message's parts */
			cur = msgpart_entity(cur.start + cur.header_len, cur.len - cur.header_len,
					     false);
			t = msgpart_type(&cur);
		}
		if (t.multipart) {
			if (msgpart_child(&cur, &t, n, &cur) == 0)
				return 0;
		} else if (n != 1) {
			return 0;
		}
	}
	*e_r = cur;
	return 1;
}

static bool msgpart_field_listed(const struct imap_msgpart *part, const unsigned char *name,
				 size_t len)
{
	for (unsigned int i = 0; i < part->field_count; i++) {
		if (strlen(part->fields[i]) == len &&
		    strncasecmp(part->fields[i], (const char *)name, len) == 0)
			return true;
	}
	return false;
}

static void msgpart_fields(const struct imap_msgpart *part, const struct msgpart_entity *e,
			   struct str *out)
{
	size_t pos = 0, start, end, name_len;
	bool want = part->text == MSGPART_FIELDS;
	while (msgpart_next_field(e->start, e->header_len, &pos, &start, &end, &name_len)) {
		if (name_len > 0 && msgpart_field_listed(part, e->start + start, name_len) == want)
			str_append_n(out, e->start + start, end - start);
	}
	str_append(out, "\r\n");
}

bool imap_msgpart_span(const struct imap_msgpart *part, const unsigned char *msg, size_t len,
		       size_t *offset_r, size_t *len_r)
{
	struct msgpart_entity e;
	*offset_r = *len_r = 0;
	if (part->text == MSGPART_FIELDS || part->text == MSGPART_FIELDS_NOT)
		return false;
	if (msgpart_find(part, msg, len, &e) == 0)
		return true;
	const unsigned char *start;
	size_t n;
	if (part->depth == 0 && part->text == MSGPART_NONE) {
		start = msg;
		n = len;
	} else if (part->text == MSGPART_NONE) {
		/* a part's content: the whole of it for the top-level body */
		start = e.start + e.header_len;
		n = e.len - e.header_len;
	} else if (part->text == MSGPART_MIME) {
		start = e.start;
		n = e.header_len;
	} else {
		/* HEADER and TEXT of a part are those of the message it
		 * encapsulates */
		if (part->depth > 0)
			e = msgpart_entity(e.start + e.header_len, e.len - e.header_len, false);
		start = part->text == MSGPART_HEADER ? e.start : e.start + e.header_len;
		n = part->text == MSGPART_HEADER ? e.header_len : e.len - e.header_len;
	}
	*offset_r = (size_t)(start - msg);
	*len_r = n;
	return true;
}

void imap_msgpart_extract(const struct imap_msgpart *part, const unsigned char *msg, size_t len,
			  struct str *out)
{
	size_t off, n;
	if (imap_msgpart_span(part, msg, len, &off, &n)) {
		str_append_n(out, msg + off, n);
		return;
	}
	struct msgpart_entity e;
	if (msgpart_find(part, msg, len, &e) == 0)
		return;
	/* HEADER.FIELDS of a part are those of the message it encapsulates */
	if (part->depth > 0)
		e = msgpart_entity(e.start + e.header_len, e.len - e.header_len, false);
	msgpart_fields(part, &e, out);
}
