#ifndef COFFER_MIME_WRITE_H
#define COFFER_MIME_WRITE_H
/* mime-write: the encodings a writer of new messages needs (a PST's
 * messages made into RFC 5322), done by GMime: RFC 2047 encoded words for
 * unstructured header text, mailboxes for address fields, and the
 * Content-Type and Content-Disposition fields of a part with RFC 2231
 * parameters. Input is UTF-8 (invalid bytes are GMime's to replace);
 * results are mem_alloc()ed, 7-bit, without the field name, and may be
 * folded with CRLF + space. mime_init() first. */
#include <stdint.h>

/* Unstructured text (Subject), encoded words where needed. */
char *mime_write_text(const char *utf8);
/* One mailbox: "Name <addr>", the name quoted or encoded as needed; a
 * missing or empty name gives the address alone. */
char *mime_write_mailbox(const char *name, const char *addr);
/* The Content-Type value "type/subtype" with an optional name and charset
 * parameter (NULL: none). */
char *mime_write_content_type(const char *type, const char *charset, const char *name);
/* The Content-Disposition value "attachment" / "inline" with an optional
 * filename parameter. */
char *mime_write_disposition(const char *disposition, const char *filename);
/* An RFC 5322 date of seconds since the epoch, in UTC. */
char *mime_write_date(int64_t t);

#endif
