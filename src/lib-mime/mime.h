#ifndef COFFER_MIME_H
#define COFFER_MIME_H
/* mime: everything the archive learns from a message's bytes at ingest (the
 * only module that uses GMime): header fields for display and search, the
 * IMAP ENVELOPE and BODYSTRUCTURE, the text to index, attachment names, and
 * the byte ranges of large MIME parts (for part-level deduplication).
 *
 * Contract: mime_init() once per process before any parse (idempotent).
 * mime_parse() never fails on bad input: a message GMime cannot make sense of
 * still yields whatever could be found, with the number of parse problems in
 * `defects`. Strings are valid UTF-8 (invalid bytes replaced), owned by the
 * mime_info, and never NULL. mime_parse() may run in several threads at once
 * on different messages. Text extraction goes through a table of extractors
 * keyed by content type (see mime.c) so that PDF or office extractors can be
 * added without touching the rest. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parts whose encoded body is at least this big are stored once. */
#define MIME_LARGE_PART_MIN (16 * 1024)
/* Text extracted for the index is capped per message. */
#define MIME_TEXT_MAX (512 * 1024)

struct mime_span {
	size_t offset, len; /* the encoded body of one leaf part, within the message */
};

struct mime_info {
	int64_t date; /* Date header, seconds since the epoch; 0 if absent or invalid */
	char *subject, *from, *to, *cc, *message_id;
	char *envelope;	     /* IMAP ENVELOPE, a parenthesised list (mime-imap.c) */
	char *bodystructure; /* IMAP BODYSTRUCTURE, with extension data */
	char *body;	     /* IMAP BODY: BODYSTRUCTURE without extension data */
	uint64_t imap_size;  /* RFC822.SIZE: the size of the canonical (CRLF) form */
	char *body_text;     /* plain text of the body parts and text attachments */
	char *attachment_names;
	bool has_attachment;
	unsigned int defects;
	size_t large_part_count;
	struct mime_span *large_parts; /* in ascending, non-overlapping order */
};

void mime_init(void);
struct mime_info *mime_parse(const void *data, size_t len, size_t large_part_min);
/* Only the IMAP data (envelope, bodystructure, body, imap_size; the other
 * strings are ""): for messages archived before that data was right. */
struct mime_info *mime_parse_imap(const void *data, size_t len);
void mime_info_destroy(struct mime_info **info);

/* HTML to text (tags dropped, script/style skipped, common entities decoded);
 * exposed for tests. Returns a mem_alloc()ed string. */
char *mime_html_to_text(const char *html, size_t len);

#endif
