#ifndef COFFER_MIME_H
#define COFFER_MIME_H
/* mime: everything the archive learns from a message's bytes at ingest (the
 * only module that uses GMime): header fields for display and search, the
 * IMAP ENVELOPE and BODYSTRUCTURE, the text to index, attachment names, and
 * the byte ranges of large MIME parts (for part-level deduplication).
 *
 * Contract: mime_init() once per process before any parse (idempotent).
 * mime_parse() never fails on bad input: a message GMime cannot make sense of
 * still yields whatever could be found, with the kinds of parse problems it
 * met in `defects` (bits of enum mime_defect, named by mime_defect_name();
 * docs/archive.md lists them). Strings are valid UTF-8 (invalid bytes replaced), owned by the
 * mime_info, and never NULL. mime_parse() may run in several threads at once
 * on different messages. Text extraction goes through a table of extractors
 * keyed by content type (see mime.c) so that PDF or office extractors can be
 * added without touching the rest. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parts whose encoded body is at least this big are stored once. */
#define MIME_LARGE_PART_MIN (16 * 1024)
/* Text extracted for the index is capped per message (MIME_DEFECT_TEXT_TRUNCATED
 * says when it was reached). */
#define MIME_TEXT_MAX (512 * 1024)
/* A header block larger than this is not parsed beyond it (GMime's header
 * parser needs about ten times a header's size). */
#define MIME_HEADER_MAX (1024 * 1024)
/* Lines after the header block longer than this are cut for GMime (see
 * mime.c: the message is stored whole). */
#define MIME_LINE_MAX (1024 * 1024)
/* Leaf parts beyond this many are not read for index text. */
#define MIME_PARTS_MAX 10000
/* Parts nested deeper than this are not walked. */
#define MIME_DEPTH_MAX 50

/* The kinds of parse defect, as bits. The first ones are GMime's parser
 * warnings; the numbering is stored in catalogs: only ever append. */
enum mime_defect {
	MIME_DEFECT_UNNAMED = 1u << 0, /* counted before defects had names */
	MIME_DEFECT_DUPLICATE_HEADER = 1u << 1,
	MIME_DEFECT_DUPLICATE_PARAMETER = 1u << 2,
	MIME_DEFECT_8BIT_HEADER = 1u << 3,
	MIME_DEFECT_BAD_CONTENT_TYPE = 1u << 4,
	MIME_DEFECT_BAD_ENCODED_WORD = 1u << 5,
	MIME_DEFECT_EMPTY_MULTIPART = 1u << 6,
	MIME_DEFECT_TRUNCATED = 1u << 7,
	MIME_DEFECT_MALFORMED = 1u << 8,
	MIME_DEFECT_BAD_HEADER_NAME = 1u << 9,
	MIME_DEFECT_CONFLICTING_HEADER = 1u << 10,
	MIME_DEFECT_CONFLICTING_PARAMETER = 1u << 11,
	MIME_DEFECT_MISSING_BOUNDARY = 1u << 12,
	MIME_DEFECT_BAD_PARAMETER = 1u << 13,
	MIME_DEFECT_BAD_ADDRESS = 1u << 14,
	MIME_DEFECT_NESTING_TOO_DEEP = 1u << 15,
	MIME_DEFECT_PART_WITHOUT_CONTENT = 1u << 16,
	MIME_DEFECT_PART_WITHOUT_HEADERS = 1u << 17,
	MIME_DEFECT_NOT_PARSED = 1u << 18,
	MIME_DEFECT_NUL_IN_HEADER = 1u << 19,
	MIME_DEFECT_BARE_CR = 1u << 20,
	MIME_DEFECT_BAD_CHARSET = 1u << 21,
	MIME_DEFECT_TOO_MANY_PARTS = 1u << 22,
	MIME_DEFECT_TEXT_TRUNCATED = 1u << 23,
	MIME_DEFECT_HEADER_TOO_LARGE = 1u << 24,
	MIME_DEFECT_LINE_TOO_LONG = 1u << 25,
};
#define MIME_DEFECT_KINDS 26

struct mime_span {
	size_t offset, len; /* the encoded body of one leaf part, within the message */
};

struct mime_info {
	int64_t date;     /* Date header, seconds since the epoch; 0 if absent or invalid */
	int zone_minutes; /* the Date header's offset from UTC (-0800: -480); 0 if none */
	char *subject, *from, *to, *cc, *message_id;
	char *envelope;      /* IMAP ENVELOPE, a parenthesised list (mime-imap.c) */
	char *bodystructure; /* IMAP BODYSTRUCTURE, with extension data */
	char *body;          /* IMAP BODY: BODYSTRUCTURE without extension data */
	uint64_t imap_size;  /* RFC822.SIZE: the size of the canonical (CRLF) form */
	char *body_text;     /* plain text of the body parts and text attachments */
	char *attachment_names;
	bool has_attachment;
	unsigned int defects;
	size_t large_part_count;
	struct mime_span *large_parts; /* in ascending, non-overlapping order */
};

void mime_init(void);
/* The name of defect bit `bit` (0-based), e.g. "missing-boundary"; NULL past
 * the last kind. */
const char *mime_defect_name(unsigned int bit);
/* "name, name" for a set of defects (mem_free). */
char *mime_defects_describe(unsigned int defects);
struct mime_info *mime_parse(const void *data, size_t len, size_t large_part_min);
/* mime_parse() without the IMAP data (envelope, bodystructure and body stay
 * NULL, imap_size 0): the fields the index was given, for unindexing a
 * deleted message (the same values as mime_parse() gave at ingest). */
struct mime_info *mime_parse_index(const void *data, size_t len, size_t large_part_min);
/* Only the IMAP data (envelope, bodystructure, body, imap_size; the other
 * strings are ""): for messages archived before that data was right. */
struct mime_info *mime_parse_imap(const void *data, size_t len);
void mime_info_destroy(struct mime_info **info);

/* The recipient addresses of a message, from its header block: To, Cc, Bcc,
 * Resent-To, Resent-Cc, Resent-Bcc and the fields mail servers put on a
 * journal or catch-all copy (Delivered-To, X-Original-To, Envelope-To,
 * X-Envelope-To, X-Rcpt-To); group members included. Each addr-spec once,
 * ASCII letters in lower case, in the order met. Returns the count and a
 * NULL-terminated array (mime_recipients_free()). Never fails: a header
 * GMime cannot read yields what it could find, perhaps nothing. */
size_t mime_recipients(const void *data, size_t len, char ***addresses_r);
void mime_recipients_free(char ***addresses);

/* HTML to text (tags dropped, script/style skipped, common entities decoded);
 * exposed for tests. Returns a mem_alloc()ed string. */
char *mime_html_to_text(const char *html, size_t len);

#endif
