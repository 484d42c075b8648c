#ifndef COFFER_MIME_VIEW_H
#define COFFER_MIME_VIEW_H
/* mime-view: a message made ready for reading (Web Access), and the decoded
 * bytes of one of its MIME parts (downloads). Part of lib-mime, the only
 * module that uses GMime.
 *
 * Parts are named by IMAP section numbers (RFC 3501 6.4.5): "1" is the body
 * of a single-part message, "2.1" the first part of the second part, and a
 * message/rfc822 part's own parts are numbered below it.
 *
 * Contract: mime_view() never fails on bad input (like mime_parse(), it keeps
 * what could be found). `text` is the first inline text/plain part, or the
 * text of the HTML when there is none; `html` is the first inline text/html
 * part ("" if none), with cid: references to the message's own images
 * replaced by data: URLs (so a page whose policy allows only data: images
 * can show them, and nothing remote). The HTML is NOT sanitized: it must be
 * shown in a sandbox without scripts (see docs/web-access.md). Attachments
 * are the leaves that are attachments (or have a file name) and attached
 * messages, with their decoded size. Strings are UTF-8, never NULL. Both
 * bodies are capped at MIME_VIEW_BODY_MAX bytes. */
#include <stddef.h>
#include <stdint.h>

#define MIME_VIEW_BODY_MAX (2 * 1024 * 1024)
#define MIME_VIEW_INLINE_IMAGE_MAX (2 * 1024 * 1024)

struct mime_view_attachment {
	char *part; /* section number, e.g. "2" or "3.1" */
	char *filename;
	char *content_type; /* "type/subtype", lower case */
	size_t size;        /* decoded bytes */
};

struct mime_view {
	int64_t date;
	char *subject, *from, *to, *cc;
	char *text, *html;
	struct mime_view_attachment *attachments;
	size_t attachment_count;
};

struct mime_view *mime_view(const void *data, size_t len);
void mime_view_destroy(struct mime_view **view);

/* The decoded bytes of part `section` (an attached message: its bytes as
 * written in the message): 1 found (mem_free the outputs; *filename_r is ""
 * when the part names none), 0 no such part. */
int mime_view_part(const void *data, size_t len, const char *section, unsigned char **bytes_r,
		   size_t *size_r, char **filename_r, char **content_type_r);

#endif
