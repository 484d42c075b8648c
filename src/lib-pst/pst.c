/* pst: PST files through libpff, each mail item made an RFC 5322 message
 * (see pst.h). MIME encodings (encoded words, addresses, parameters) are
 * GMime's, through lib-mime's mime-write; base64 is src/lib's. */
#include "pst.h"
#include "array.h"
#include "base64.h"
#include "mem.h"
#include "mime-write.h"
#include "mime.h"
#include "str.h"
#include "tstr.h"

#include <errno.h>
#include <fcntl.h>
#include <libpff.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Folders nested deeper, and attached items nested deeper, are not read. */
#define PST_MAX_DEPTH 64
#define PST_MAX_EMBED_DEPTH 8
/* Attachments are read and encoded this much at a time (a multiple of 57:
 * whole 76-character base64 lines). */
#define PST_CHUNK (57 * 1024)
/* A property string longer than this is not read (a damaged size). */
#define PST_MAX_PROPERTY (64 * 1024 * 1024)

/* MAPI property tags (MS-OXPROPS) */
#define PST_PR_SUBJECT 0x0037
#define PST_PR_SENT_REPRESENTING_NAME 0x0042
#define PST_PR_SENT_REPRESENTING_EMAIL 0x0065
#define PST_PR_TRANSPORT_HEADERS 0x007d
#define PST_PR_RECIPIENT_TYPE 0x0c15
#define PST_PR_SENDER_NAME 0x0c1a
#define PST_PR_SENDER_EMAIL 0x0c1f
#define PST_PR_INTERNET_MESSAGE_ID 0x1035
#define PST_PR_IN_REPLY_TO 0x1042
#define PST_PR_DISPLAY_NAME 0x3001
#define PST_PR_EMAIL_ADDRESS 0x3003
#define PST_PR_ATTACH_FILENAME 0x3704
#define PST_PR_ATTACH_LONG_FILENAME 0x3707
#define PST_PR_ATTACH_MIME_TAG 0x370e
#define PST_PR_ATTACH_CONTENT_ID 0x3712
#define PST_PR_SMTP_ADDRESS 0x39fe
#define PST_PR_INTERNET_CPID 0x3fde
#define PST_PR_IPM_SUBTREE_ENTRYID 0x35e0

struct pst_folder {
	libpff_item_t *item;
	char *path;
	int depth;
	int messages, next_message;
	int folders, next_folder;
};

/* A piece of the message being read: bytes written already, or an
 * attachment's data, read and base64-encoded when its turn comes */
struct pst_segment {
	char *text;
	size_t len;
	libpff_item_t *att;
	uint64_t size;
};

struct pst_reader {
	libpff_file_t *file;
	uint64_t max;
	ARRAY(struct pst_folder) stack;
	uint64_t index;
	/* the message last returned: its pieces, the libpff items they need
	 * (freed last first), and how far it was read */
	char *folder, *reason;
	ARRAY(struct pst_segment) segs;
	ARRAY(libpff_item_t *) keep;
	size_t seg_next, seg_off;
	uint64_t att_done;
	struct str *pending;
	size_t pending_off;
	uint8_t *chunk;
};

/* The writing of one message */
struct pst_writer {
	struct pst_reader *r;
	struct str *out;
	uint64_t max;
	/* the size of the segments so far */
	uint64_t total;
	unsigned int boundaries;
	const char *error;
	enum pst_skip error_kind;
};

static const char *pst_error(const char *what, libpff_error_t **err)
{
	char buf[2048] = "";
	if (*err != NULL) {
		libpff_error_backtrace_sprint(*err, buf, sizeof(buf));
		libpff_error_free(err);
	}
	/* the backtrace has one line per level, the innermost cause first:
	 * "function: reason"; the reason is what is said */
	buf[strcspn(buf, "\r\n")] = '\0';
	size_t len = strlen(buf);
	while (len > 0 && (buf[len - 1] == '.' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	const char *reason = strstr(buf, ": ");
	reason = reason != NULL ? reason + 2 : buf;
	return reason[0] != '\0' ? tstr_printf("%s: %s", what, reason) : what;
}

/* ---- reading properties ---- */

/* The entry of property tag in record set `set` (any value type), or NULL */
static libpff_record_entry_t *pst_entry(libpff_item_t *item, int set, uint32_t tag)
{
	libpff_error_t *err = NULL;
	libpff_record_set_t *rs = NULL;
	libpff_record_entry_t *entry = NULL;
	if (libpff_item_get_record_set_by_index(item, set, &rs, &err) != 1 ||
	    libpff_record_set_get_entry_by_type(
		    rs, tag, 0, &entry, LIBPFF_ENTRY_VALUE_FLAG_MATCH_ANY_VALUE_TYPE, &err) != 1)
		entry = NULL;
	libpff_error_free(&err);
	libpff_record_set_free(&rs, NULL);
	return entry;
}

/* A string property as UTF-8 (mem_free()), NULL if absent; with `raw` as
 * stored, else control characters made spaces except line ends if
 * keep_lines. */
static char *pst_string_raw(libpff_item_t *item, int set, uint32_t tag, bool raw, bool keep_lines)
{
	libpff_error_t *err = NULL;
	libpff_record_entry_t *entry = pst_entry(item, set, tag);
	size_t size = 0;
	uint8_t *s = NULL;
	if (entry != NULL &&
	    libpff_record_entry_get_data_as_utf8_string_size(entry, &size, &err) == 1 && size > 0 &&
	    size <= PST_MAX_PROPERTY) {
		s = mem_alloc(size + 1);
		if (libpff_record_entry_get_data_as_utf8_string(entry, s, size, &err) != 1) {
			mem_free(s);
			s = NULL;
		} else {
			s[size] = '\0';
		}
	}
	libpff_error_free(&err);
	libpff_record_entry_free(&entry, NULL);
	if (s == NULL || raw)
		return (char *)s;
	for (uint8_t *p = s; *p != '\0'; p++) {
		if (*p < 0x20 && *p != '\t' && !(keep_lines && (*p == '\r' || *p == '\n')))
			*p = ' ';
	}
	return (char *)s;
}

static char *pst_string(libpff_item_t *item, int set, uint32_t tag, bool keep_lines)
{
	return pst_string_raw(item, set, tag, false, keep_lines);
}

static bool pst_u32(libpff_item_t *item, int set, uint32_t tag, uint32_t *value_r)
{
	libpff_error_t *err = NULL;
	libpff_record_entry_t *entry = pst_entry(item, set, tag);
	bool ok = entry != NULL &&
		  libpff_record_entry_get_data_as_32bit_integer(entry, value_r, &err) == 1;
	libpff_error_free(&err);
	libpff_record_entry_free(&entry, NULL);
	return ok;
}

/* A binary property of exactly len bytes */
static bool pst_binary(libpff_item_t *item, uint32_t tag, uint8_t *buf, size_t len)
{
	libpff_error_t *err = NULL;
	libpff_record_entry_t *entry = pst_entry(item, 0, tag);
	size_t size = 0;
	bool ok = entry != NULL && libpff_record_entry_get_data_size(entry, &size, &err) == 1 &&
		  size == len && libpff_record_entry_get_data(entry, buf, len, &err) == 1;
	libpff_error_free(&err);
	libpff_record_entry_free(&entry, NULL);
	return ok;
}

static int64_t pst_filetime(uint64_t ft)
{
	/* 100 ns since 1601-01-01 */
	return ft == 0 ? 0 : (int64_t)(ft / 10000000ULL) - 11644473600LL;
}

static int64_t pst_time(libpff_item_t *msg, bool submit_first)
{
	libpff_error_t *err = NULL;
	uint64_t ft = 0;
	int (*order[3])(libpff_item_t *, uint64_t *, libpff_error_t **) = {
		libpff_message_get_delivery_time, libpff_message_get_client_submit_time,
		libpff_message_get_creation_time};
	if (submit_first) {
		order[0] = libpff_message_get_client_submit_time;
		order[1] = libpff_message_get_delivery_time;
	}
	for (size_t i = 0; i < 3; i++) {
		if (order[i](msg, &ft, &err) == 1 && ft != 0)
			return pst_filetime(ft);
		libpff_error_free(&err);
	}
	return 0;
}

/* ---- writing ---- */

static bool pst_writer_full(struct pst_writer *w)
{
	if (w->error != NULL)
		return true;
	if (w->max != 0 && w->total + str_len(w->out) > w->max) {
		w->error = tstr_printf("too large: over %llu bytes (max_message_size)",
				       (unsigned long long)w->max);
		w->error_kind = PST_SKIP_TOO_LARGE;
		return true;
	}
	return false;
}

static void pst_field(struct pst_writer *w, const char *name, char *value)
{
	if (value != NULL && value[0] != '\0')
		str_printfa(w->out, "%s: %s\r\n", name, value);
	mem_free(value);
}

/* base64 lines of data, each ended by CRLF */
static void pst_base64(struct str *out, const void *data, size_t len)
{
	char *b = base64_encode(data, len);
	size_t n = strlen(b);
	for (size_t i = 0; i < n; i += 76) {
		str_append_n(out, b + i, n - i < 76 ? n - i : 76);
		str_append(out, "\r\n");
	}
	mem_free(b);
}

/* the size of pst_base64() of len bytes (in PST_CHUNK pieces the same:
 * a chunk is whole lines) */
static uint64_t pst_base64_size(uint64_t len)
{
	uint64_t chars = (len + 2) / 3 * 4;
	return chars + (chars + 75) / 76 * 2;
}

/* libpff items the message's segments need until it is read */
static void pst_keep(struct pst_writer *w, libpff_item_t *item)
{
	array_append(&w->r->keep, item);
}

/* What was written so far becomes a segment */
static void pst_flush(struct pst_writer *w)
{
	size_t len = str_len(w->out);
	if (len == 0)
		return;
	struct pst_segment *seg = array_push(&w->r->segs);
	memset(seg, 0, sizeof(*seg));
	seg->text = str_steal(&w->out);
	seg->len = len;
	w->total += len;
	w->out = str_create(4096);
}

static bool pst_is_mime_field(const char *line, size_t len)
{
	static const char *const names[] = {"content-type:", "content-transfer-encoding:",
					    "mime-version:", "content-disposition:"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);
		if (len >= n && strncasecmp(line, names[i], n) == 0)
			return true;
	}
	return false;
}

/* The transport headers' fields, up to their blank line, without the MIME
 * fields (ours follow), line ends made CRLF. false if there are none. */
static bool pst_transport_headers(struct pst_writer *w, const char *h)
{
	size_t start = str_len(w->out);
	bool skipping = false;
	const char *p = h;
	while (*p != '\0') {
		const char *eol = strpbrk(p, "\r\n");
		size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
		if (len == 0)
			break; /* the end of the header block */
		if (p[0] == ' ' || p[0] == '\t') {
			/* a continuation of the field before */
		} else {
			skipping = pst_is_mime_field(p, len) || memchr(p, ':', len) == NULL;
		}
		if (!skipping) {
			str_append_n(w->out, p, len);
			str_append(w->out, "\r\n");
		}
		if (eol == NULL)
			break;
		p = eol + (eol[0] == '\r' && eol[1] == '\n' ? 2 : 1);
	}
	if (str_len(w->out) == start)
		return false;
	return true;
}

static void pst_address_list(struct pst_writer *w, libpff_item_t *msg, uint32_t type,
			     const char *name)
{
	libpff_error_t *err = NULL;
	libpff_item_t *rcpts = NULL;
	int sets = 0;
	if (libpff_message_get_recipients(msg, &rcpts, &err) != 1 ||
	    libpff_item_get_number_of_record_sets(rcpts, &sets, &err) != 1) {
		libpff_error_free(&err);
		libpff_item_free(&rcpts, NULL);
		return;
	}
	struct str *list = str_create(128);
	for (int i = 0; i < sets; i++) {
		uint32_t t = 0;
		if (!pst_u32(rcpts, i, PST_PR_RECIPIENT_TYPE, &t) || t != type)
			continue;
		char *dname = pst_string(rcpts, i, PST_PR_DISPLAY_NAME, false);
		char *addr = pst_string(rcpts, i, PST_PR_SMTP_ADDRESS, false);
		if (addr == NULL)
			addr = pst_string(rcpts, i, PST_PR_EMAIL_ADDRESS, false);
		if (addr != NULL && strchr(addr, '@') == NULL) {
			/* an Exchange DN is no address */
			mem_free(addr);
			addr = NULL;
		}
		if (dname != NULL || addr != NULL) {
			char *mb = addr != NULL ? mime_write_mailbox(dname, addr)
						: mime_write_text(dname);
			if (str_len(list) > 0)
				str_append(list, ",\r\n ");
			str_append(list, mb);
			mem_free(mb);
		}
		mem_free(dname);
		mem_free(addr);
	}
	libpff_item_free(&rcpts, NULL);
	if (str_len(list) > 0)
		str_printfa(w->out, "%s: %s\r\n", name, str_c(list));
	str_destroy(&list);
}

static const char *pst_subject(char *s)
{
	/* a subject may start with a prefix-length marker: 0x01 and a byte
	 * (made a space above) */
	if (s != NULL && (unsigned char)s[0] == 0x01)
		return s[1] != '\0' ? s + 2 : s + 1;
	if (s != NULL && s[0] == ' ' && s[1] == ' ')
		return s + 2;
	return s;
}

/* From, To, Cc, Subject, Date, Message-ID, In-Reply-To from properties */
static void pst_synthesise_headers(struct pst_writer *w, libpff_item_t *msg)
{
	char *name = pst_string(msg, 0, PST_PR_SENT_REPRESENTING_NAME, false);
	char *addr = pst_string(msg, 0, PST_PR_SENT_REPRESENTING_EMAIL, false);
	if (name == NULL && addr == NULL) {
		name = pst_string(msg, 0, PST_PR_SENDER_NAME, false);
		addr = pst_string(msg, 0, PST_PR_SENDER_EMAIL, false);
	}
	if (addr != NULL && strchr(addr, '@') != NULL)
		pst_field(w, "From", mime_write_mailbox(name, addr));
	else if (name != NULL)
		pst_field(w, "From", mime_write_text(name));
	mem_free(name);
	mem_free(addr);
	pst_address_list(w, msg, LIBPFF_RECIPIENT_TYPE_TO, "To");
	pst_address_list(w, msg, LIBPFF_RECIPIENT_TYPE_CC, "Cc");
	/* raw: the subject's 0x01 prefix marker is kept for pst_subject() */
	char *subject = pst_string_raw(msg, 0, PST_PR_SUBJECT, true, false);
	if (subject != NULL) {
		for (char *p = subject +
			       ((unsigned char)subject[0] == 0x01 && subject[1] != '\0' ? 2 : 0);
		     *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20)
				*p = ' ';
		}
	}
	const char *subj = pst_subject(subject);
	if (subj != NULL && subj[0] != '\0')
		pst_field(w, "Subject", mime_write_text(subj));
	mem_free(subject);
	int64_t date = pst_time(msg, true);
	if (date != 0)
		pst_field(w, "Date", mime_write_date(date));
	char *id = pst_string(msg, 0, PST_PR_INTERNET_MESSAGE_ID, false);
	if (id != NULL && strchr(id, ' ') == NULL)
		pst_field(w, "Message-ID", mem_strdup(id));
	mem_free(id);
	id = pst_string(msg, 0, PST_PR_IN_REPLY_TO, false);
	if (id != NULL && strchr(id, ' ') == NULL)
		pst_field(w, "In-Reply-To", mem_strdup(id));
	mem_free(id);
}

static const char *pst_charset(uint32_t cpid)
{
	static const struct {
		uint32_t cpid;
		const char *name;
	} map[] = {{65001, "utf-8"},        {20127, "us-ascii"},    {28591, "iso-8859-1"},
		   {28592, "iso-8859-2"},   {28595, "iso-8859-5"},  {28597, "iso-8859-7"},
		   {28605, "iso-8859-15"},  {1250, "windows-1250"}, {1251, "windows-1251"},
		   {1252, "windows-1252"},  {1253, "windows-1253"}, {1254, "windows-1254"},
		   {1255, "windows-1255"},  {1256, "windows-1256"}, {1257, "windows-1257"},
		   {1258, "windows-1258"},  {932, "shift_jis"},     {936, "gb2312"},
		   {949, "ks_c_5601-1987"}, {950, "big5"},          {20866, "koi8-r"},
		   {21866, "koi8-u"},       {50220, "iso-2022-jp"}, {51932, "euc-jp"}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (map[i].cpid == cpid)
			return map[i].name;
	}
	return NULL;
}

enum pst_body_kind { PST_BODY_TEXT, PST_BODY_HTML, PST_BODY_RTF };

/* A body (libpff gives the size with its NUL; RTF decompressed) or NULL */
static uint8_t *pst_body(libpff_item_t *msg, enum pst_body_kind kind, size_t *len_r)
{
	libpff_error_t *err = NULL;
	size_t size = 0;
	int ret = kind == PST_BODY_HTML ? libpff_message_get_html_body_size(msg, &size, &err)
		  : kind == PST_BODY_RTF
			  ? libpff_message_get_rtf_body_size(msg, &size, &err)
			  : libpff_message_get_plain_text_body_size(msg, &size, &err);
	if (ret != 1 || size == 0 || size > PST_MAX_PROPERTY) {
		libpff_error_free(&err);
		return NULL;
	}
	uint8_t *body = mem_alloc(size + 1);
	ret = kind == PST_BODY_HTML  ? libpff_message_get_html_body(msg, body, size, &err)
	      : kind == PST_BODY_RTF ? libpff_message_get_rtf_body(msg, body, size, &err)
				     : libpff_message_get_plain_text_body(msg, body, size, &err);
	if (ret != 1) {
		libpff_error_free(&err);
		mem_free(body);
		return NULL;
	}
	body[size] = '\0';
	/* the sizes count a NUL at the end */
	while (size > 0 && body[size - 1] == '\0')
		size--;
	*len_r = size;
	return body;
}

static void pst_text_part(struct pst_writer *w, const char *type, const char *charset,
			  const uint8_t *data, size_t len)
{
	char *ct = mime_write_content_type(type, charset, NULL);
	str_printfa(w->out, "Content-Type: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n", ct);
	mem_free(ct);
	for (size_t off = 0; off < len && !pst_writer_full(w); off += PST_CHUNK)
		pst_base64(w->out, data + off, len - off < PST_CHUNK ? len - off : PST_CHUNK);
}

static int pst_write_item(struct pst_writer *w, libpff_item_t *msg, int depth);

static void pst_attachment(struct pst_writer *w, libpff_item_t *att, int index, int depth)
{
	libpff_error_t *err = NULL;
	int type = 0;
	if (libpff_attachment_get_type(att, &type, &err) != 1) {
		libpff_error_free(&err);
		return;
	}
	char *fname = pst_string(att, 0, PST_PR_ATTACH_LONG_FILENAME, false);
	if (fname == NULL)
		fname = pst_string(att, 0, PST_PR_ATTACH_FILENAME, false);
	if (fname == NULL)
		fname = pst_string(att, 0, PST_PR_DISPLAY_NAME, false);
	char *mtype = pst_string(att, 0, PST_PR_ATTACH_MIME_TAG, false);
	char *cid = pst_string(att, 0, PST_PR_ATTACH_CONTENT_ID, false);

	if (type == LIBPFF_ATTACHMENT_TYPE_ITEM && depth < PST_MAX_EMBED_DEPTH) {
		libpff_item_t *sub = NULL;
		if (libpff_attachment_get_item(att, &sub, &err) == 1) {
			str_append(w->out, "Content-Type: message/rfc822\r\n");
			char *disp = mime_write_disposition("attachment", fname);
			str_printfa(w->out, "Content-Disposition: %s\r\n\r\n", disp);
			mem_free(disp);
			pst_keep(w, sub);
			(void)pst_write_item(w, sub, depth + 1);
		}
		libpff_error_free(&err);
	} else if (type == LIBPFF_ATTACHMENT_TYPE_DATA) {
		size64_t size = 0;
		if (libpff_attachment_get_data_size(att, &size, &err) != 1)
			size = 0;
		libpff_error_free(&err);
		if (fname == NULL)
			fname = mem_printf("attachment-%d", index + 1);
		const char *ctype = mtype != NULL && strchr(mtype, '/') != NULL
					    ? mtype
					    : "application/octet-stream";
		char *ct = mime_write_content_type(ctype, NULL, fname);
		char *disp = mime_write_disposition("attachment", fname);
		str_printfa(w->out, "Content-Type: %s\r\nContent-Disposition: %s\r\n", ct, disp);
		if (cid != NULL && strchr(cid, ' ') == NULL)
			str_printfa(w->out, "Content-ID: <%s>\r\n", cid);
		str_append(w->out, "Content-Transfer-Encoding: base64\r\n\r\n");
		mem_free(ct);
		mem_free(disp);
		if (w->max != 0 && size > w->max) {
			w->error =
				tstr_printf("too large: an attachment of %llu bytes, the limit "
					    "is %llu (max_message_size)",
					    (unsigned long long)size, (unsigned long long)w->max);
			w->error_kind = PST_SKIP_TOO_LARGE;
		} else if (size > 0) {
			/* read and encoded by pst_reader_read(), a chunk at a
			 * time */
			pst_flush(w);
			struct pst_segment *seg = array_push(&w->r->segs);
			memset(seg, 0, sizeof(*seg));
			seg->att = att;
			seg->size = size;
			w->total += pst_base64_size(size);
		}
	}
	/* reference attachments (links to files elsewhere) carry no data */
	mem_free(fname);
	mem_free(mtype);
	mem_free(cid);
}

static char *pst_boundary(struct pst_writer *w)
{
	/* "=_" never occurs in base64 */
	return mem_printf("=_coffer-pst-%u", ++w->boundaries);
}

/* The body of one message: text, HTML, alternative, attachments */
static void pst_write_body(struct pst_writer *w, libpff_item_t *msg, int depth)
{
	libpff_error_t *err = NULL;
	size_t text_len = 0, html_len = 0;
	uint8_t *text = pst_body(msg, PST_BODY_TEXT, &text_len);
	uint8_t *html = pst_body(msg, PST_BODY_HTML, &html_len);
	const char *text_type = "text/plain", *text_charset = "utf-8";
	if (text == NULL && html == NULL) {
		/* only RTF (PR_RTF_COMPRESSED): kept as text/rtf */
		text = pst_body(msg, PST_BODY_RTF, &text_len);
		if (text != NULL) {
			text_type = "text/rtf";
			text_charset = NULL;
		}
	}
	uint32_t cpid = 0;
	const char *html_charset =
		pst_u32(msg, 0, PST_PR_INTERNET_CPID, &cpid) ? pst_charset(cpid) : NULL;
	int atts = 0;
	if (libpff_message_get_number_of_attachments(msg, &atts, &err) != 1) {
		libpff_error_free(&err);
		atts = 0;
	}
	char *mixed = NULL;
	if (atts > 0) {
		mixed = pst_boundary(w);
		str_printfa(w->out,
			    "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
			    "This is a multi-part message in MIME format.\r\n",
			    mixed);
	}
	if (text != NULL || html != NULL || atts == 0) {
		if (mixed != NULL)
			str_printfa(w->out, "\r\n--%s\r\n", mixed);
		if (text != NULL && html != NULL) {
			char *alt = pst_boundary(w);
			str_printfa(w->out,
				    "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
				    "\r\n--%s\r\n",
				    alt, alt);
			pst_text_part(w, text_type, text_charset, text, text_len);
			str_printfa(w->out, "\r\n--%s\r\n", alt);
			pst_text_part(w, "text/html", html_charset, html, html_len);
			str_printfa(w->out, "\r\n--%s--\r\n", alt);
			mem_free(alt);
		} else if (html != NULL) {
			pst_text_part(w, "text/html", html_charset, html, html_len);
		} else {
			pst_text_part(w, text_type, text_charset, text, text_len);
		}
	}
	mem_free(text);
	mem_free(html);
	for (int i = 0; i < atts && !pst_writer_full(w); i++) {
		libpff_item_t *att = NULL;
		if (libpff_message_get_attachment(msg, i, &att, &err) != 1) {
			w->error = pst_error("attachment unreadable", &err);
			w->error_kind = PST_SKIP_UNREADABLE;
			break;
		}
		pst_keep(w, att);
		str_printfa(w->out, "\r\n--%s\r\n", mixed);
		pst_attachment(w, att, i, depth);
	}
	if (mixed != NULL)
		str_printfa(w->out, "\r\n--%s--\r\n", mixed);
	mem_free(mixed);
}

static int pst_write_item(struct pst_writer *w, libpff_item_t *msg, int depth)
{
	char *headers = pst_string(msg, 0, PST_PR_TRANSPORT_HEADERS, true);
	if (headers == NULL || !pst_transport_headers(w, headers))
		pst_synthesise_headers(w, msg);
	mem_free(headers);
	str_append(w->out, "MIME-Version: 1.0\r\n");
	pst_write_body(w, msg, depth);
	return pst_writer_full(w) ? -1 : 0;
}

/* ---- the file and its folders ---- */

/* The header's own idea of the file's size, checked against the file: a
 * truncated PST is refused before libpff reads from it. */
static int pst_check_header(const char *path, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = tstr_printf("%s: %s", path, strerror(errno));
		return -1;
	}
	unsigned char h[512];
	struct stat st;
	ssize_t n = fstat(fd, &st) == 0 ? pread(fd, h, sizeof(h), 0) : -1;
	close(fd);
	if (n < 0) {
		*error_r = tstr_printf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (n < 4 || memcmp(h, "!BDN", 4) != 0) {
		*error_r = "not a PST file (no !BDN signature)";
		return -1;
	}
	if (n < 200) {
		*error_r = tstr_printf("truncated PST file: %lld bytes, shorter than its header",
				       (long long)st.st_size);
		return -1;
	}
	unsigned int ver = h[10] | (unsigned int)h[11] << 8;
	uint64_t eof = 0;
	if (ver == 14 || ver == 15) {
		/* ANSI: ibFileEof is 32 bits at 168 */
		for (int i = 3; i >= 0; i--)
			eof = eof << 8 | h[168 + i];
	} else if (ver >= 21) {
		/* Unicode: 64 bits at 184 */
		for (int i = 7; i >= 0; i--)
			eof = eof << 8 | h[184 + i];
	} else {
		*error_r = tstr_printf("not a PST file: unknown format version %u", ver);
		return -1;
	}
	if ((uint64_t)st.st_size < eof) {
		*error_r =
			tstr_printf("truncated PST file: %lld bytes of the %llu its header gives",
				    (long long)st.st_size, (unsigned long long)eof);
		return -1;
	}
	return 0;
}

static void pst_push(struct pst_reader *r, libpff_item_t *folder, const char *path, int depth)
{
	libpff_error_t *err = NULL;
	struct pst_folder *f = array_push(&r->stack);
	memset(f, 0, sizeof(*f));
	f->item = folder;
	f->path = mem_strdup(path);
	f->depth = depth;
	if (libpff_folder_get_number_of_sub_messages(folder, &f->messages, &err) != 1) {
		libpff_error_free(&err);
		f->messages = 0;
	}
	if (libpff_folder_get_number_of_sub_folders(folder, &f->folders, &err) != 1) {
		libpff_error_free(&err);
		f->folders = 0;
	}
}

static void pst_pop(struct pst_reader *r)
{
	struct pst_folder *f = &r->stack.items[r->stack.count - 1];
	libpff_item_free(&f->item, NULL);
	mem_free(f->path);
	r->stack.count--;
}

/* The top of the personal folders (the message store's IPM subtree), else
 * the root folder */
static libpff_item_t *pst_top(libpff_file_t *file)
{
	libpff_error_t *err = NULL;
	libpff_item_t *store = NULL, *top = NULL;
	if (libpff_file_get_message_store(file, &store, &err) == 1) {
		uint8_t entry[24];
		if (pst_binary(store, PST_PR_IPM_SUBTREE_ENTRYID, entry, sizeof(entry))) {
			uint32_t nid = entry[20] | (uint32_t)entry[21] << 8 |
				       (uint32_t)entry[22] << 16 | (uint32_t)entry[23] << 24;
			if (libpff_file_get_item_by_identifier(file, nid, &top, &err) != 1)
				top = NULL;
		}
	}
	libpff_error_free(&err);
	libpff_item_free(&store, NULL);
	if (top == NULL && libpff_file_get_root_folder(file, &top, &err) != 1) {
		libpff_error_free(&err);
		top = NULL;
	}
	return top;
}

int pst_reader_open(const char *path, uint64_t max_message_size, struct pst_reader **reader_r,
		    const char **error_r)
{
	if (pst_check_header(path, error_r) < 0)
		return -1;
	mime_init();
	libpff_error_t *err = NULL;
	libpff_file_t *file = NULL;
	if (libpff_file_initialize(&file, &err) != 1) {
		*error_r = pst_error("libpff", &err);
		return -1;
	}
	if (libpff_file_open(file, path, LIBPFF_OPEN_READ, &err) != 1) {
		*error_r = pst_error("not a readable PST file", &err);
		libpff_file_free(&file, NULL);
		return -1;
	}
	libpff_item_t *top = pst_top(file);
	if (top == NULL) {
		*error_r = "damaged PST file: no folders";
		libpff_file_close(file, NULL);
		libpff_file_free(&file, NULL);
		return -1;
	}
	struct pst_reader *r = mem_new(struct pst_reader);
	r->file = file;
	r->max = max_message_size;
	r->pending = str_create(PST_CHUNK / 57 * 78 + 16);
	r->chunk = mem_alloc(PST_CHUNK);
	pst_push(r, top, "", 0);
	*reader_r = r;
	return 0;
}

static void pst_clear_current(struct pst_reader *r)
{
	mem_free(r->folder);
	mem_free(r->reason);
	r->folder = r->reason = NULL;
	for (size_t i = 0; i < r->segs.count; i++)
		mem_free(r->segs.items[i].text);
	array_clear(&r->segs);
	for (size_t i = r->keep.count; i > 0; i--)
		libpff_item_free(&r->keep.items[i - 1], NULL);
	array_clear(&r->keep);
	r->seg_next = r->seg_off = 0;
	r->att_done = 0;
	str_truncate(r->pending, 0);
	r->pending_off = 0;
}

void pst_reader_destroy(struct pst_reader **reader)
{
	struct pst_reader *r = *reader;
	if (r == NULL)
		return;
	pst_clear_current(r);
	while (r->stack.count > 0)
		pst_pop(r);
	array_free(&r->stack);
	array_free(&r->segs);
	array_free(&r->keep);
	str_destroy(&r->pending);
	mem_free(r->chunk);
	libpff_file_close(r->file, NULL);
	libpff_file_free(&r->file, NULL);
	mem_free(r);
	*reader = NULL;
}

static bool pst_is_mail(uint8_t type)
{
	switch (type) {
	case LIBPFF_ITEM_TYPE_APPOINTMENT:
	case LIBPFF_ITEM_TYPE_CONTACT:
	case LIBPFF_ITEM_TYPE_DISTRIBUTION_LIST:
	case LIBPFF_ITEM_TYPE_NOTE:
	case LIBPFF_ITEM_TYPE_TASK:
	case LIBPFF_ITEM_TYPE_ACTIVITY:
	case LIBPFF_ITEM_TYPE_CONFIGURATION:
	case LIBPFF_ITEM_TYPE_FOLDER:
		return false;
	default:
		return true;
	}
}

static const char *pst_type_name(uint8_t type)
{
	switch (type) {
	case LIBPFF_ITEM_TYPE_APPOINTMENT:
		return "an appointment";
	case LIBPFF_ITEM_TYPE_CONTACT:
		return "a contact";
	case LIBPFF_ITEM_TYPE_DISTRIBUTION_LIST:
		return "a distribution list";
	case LIBPFF_ITEM_TYPE_NOTE:
		return "a note";
	case LIBPFF_ITEM_TYPE_TASK:
		return "a task";
	case LIBPFF_ITEM_TYPE_ACTIVITY:
		return "a journal entry";
	default:
		return "an item that is not mail";
	}
}

/* One item of folder f: made a message, or a skip */
static void pst_message(struct pst_reader *r, struct pst_folder *f, struct pst_message *msg)
{
	libpff_error_t *err = NULL;
	libpff_item_t *item = NULL;
	int i = f->next_message++;
	memset(msg, 0, sizeof(*msg));
	msg->index = ++r->index;
	r->folder = mem_strdup(f->path);
	msg->folder = r->folder;
	if (libpff_folder_get_sub_message(f->item, i, &item, &err) != 1) {
		r->reason = mem_strdup(pst_error("item unreadable", &err));
		msg->skip_reason = r->reason;
		msg->skip_kind = PST_SKIP_UNREADABLE;
		return;
	}
	uint8_t type = 0;
	if (libpff_item_get_type(item, &type, &err) != 1) {
		libpff_error_free(&err);
		type = LIBPFF_ITEM_TYPE_UNKNOWN;
	}
	msg->received = pst_time(item, false);
	if (!pst_is_mail(type)) {
		r->reason = mem_printf("not mail: %s (Outlook item, not archived)",
				       pst_type_name(type));
		msg->skip_reason = r->reason;
		msg->skip_kind = PST_SKIP_NOT_MAIL;
		libpff_item_free(&item, NULL);
		return;
	}
	/* written but for the attachments' data, so that the size is known
	 * before a byte is read */
	struct pst_writer w = {.r = r, .out = str_create(8192), .max = r->max};
	pst_keep(&w, item);
	int ret = pst_write_item(&w, item, 0);
	pst_flush(&w);
	str_destroy(&w.out);
	if (ret < 0) {
		r->reason = mem_strdup(w.error);
		msg->skip_reason = r->reason;
		msg->skip_kind = w.error_kind;
		return;
	}
	msg->len = w.total;
}

int pst_reader_next(struct pst_reader *r, struct pst_message *msg_r, const char **error_r)
{
	libpff_error_t *err = NULL;
	pst_clear_current(r);
	while (r->stack.count > 0) {
		struct pst_folder *f = &r->stack.items[r->stack.count - 1];
		if (f->next_message < f->messages) {
			pst_message(r, f, msg_r);
			return 1;
		}
		if (f->next_folder < f->folders) {
			libpff_item_t *sub = NULL;
			int i = f->next_folder++;
			if (libpff_folder_get_sub_folder(f->item, i, &sub, &err) != 1) {
				/* reported, and the walk goes on with the next */
				memset(msg_r, 0, sizeof(*msg_r));
				msg_r->index = ++r->index;
				r->folder = mem_strdup(f->path);
				msg_r->folder = r->folder;
				r->reason = mem_strdup(pst_error(
					tstr_printf("subfolder %d unreadable", i + 1), &err));
				msg_r->skip_reason = r->reason;
				msg_r->skip_kind = PST_SKIP_UNREADABLE;
				return 1;
			}
			size_t size = 0;
			char *name = NULL;
			if (libpff_folder_get_utf8_name_size(sub, &size, &err) == 1 && size > 0 &&
			    size < 65536) {
				name = mem_alloc(size + 1);
				if (libpff_folder_get_utf8_name(sub, (uint8_t *)name, size, &err) !=
				    1) {
					mem_free(name);
					name = NULL;
				} else {
					name[size] = '\0';
				}
			}
			libpff_error_free(&err);
			if (name == NULL)
				name = mem_printf("folder-%d", i + 1);
			/* "/" separates the levels of the path */
			for (char *p = name; *p != '\0'; p++) {
				if (*p == '/' || (unsigned char)*p < 0x20)
					*p = '_';
			}
			if (f->depth + 1 > PST_MAX_DEPTH) {
				mem_free(name);
				libpff_item_free(&sub, NULL);
				continue;
			}
			char *path = f->path[0] != '\0' ? mem_printf("%s/%s", f->path, name)
							: mem_strdup(name);
			pst_push(r, sub, path, f->depth + 1);
			mem_free(path);
			mem_free(name);
			continue;
		}
		pst_pop(r);
	}
	return 0;
}

ssize_t pst_reader_read(struct pst_reader *r, unsigned char *buf, size_t size, const char **error_r)
{
	libpff_error_t *err = NULL;
	for (;;) {
		size_t plen = str_len(r->pending);
		if (r->pending_off < plen) {
			size_t n = plen - r->pending_off < size ? plen - r->pending_off : size;
			memcpy(buf, str_c(r->pending) + r->pending_off, n);
			r->pending_off += n;
			return (ssize_t)n;
		}
		if (r->seg_next >= r->segs.count)
			return 0;
		struct pst_segment *seg = &r->segs.items[r->seg_next];
		if (seg->text != NULL) {
			if (r->seg_off < seg->len) {
				size_t n =
					seg->len - r->seg_off < size ? seg->len - r->seg_off : size;
				memcpy(buf, seg->text + r->seg_off, n);
				r->seg_off += n;
				return (ssize_t)n;
			}
			r->seg_next++;
			r->seg_off = 0;
			continue;
		}
		if (r->att_done >= seg->size) {
			r->seg_next++;
			r->att_done = 0;
			continue;
		}
		if (r->att_done == 0 &&
		    libpff_attachment_data_seek_offset(seg->att, 0, SEEK_SET, &err) < 0) {
			*error_r = pst_error("attachment unreadable", &err);
			return -1;
		}
		size_t want = seg->size - r->att_done < PST_CHUNK
				      ? (size_t)(seg->size - r->att_done)
				      : PST_CHUNK;
		/* a whole chunk: its base64 is whole lines */
		size_t got = 0;
		while (got < want) {
			ssize_t n = libpff_attachment_data_read_buffer(seg->att, r->chunk + got,
								       want - got, &err);
			if (n <= 0) {
				*error_r = pst_error("attachment unreadable", &err);
				return -1;
			}
			got += (size_t)n;
		}
		r->att_done += got;
		str_truncate(r->pending, 0);
		r->pending_off = 0;
		pst_base64(r->pending, r->chunk, got);
	}
}
