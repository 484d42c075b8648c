#ifndef COFFER_IMAP_MSGPART_H
#define COFFER_IMAP_MSGPART_H
/* imap-msgpart: the BODY[section] of a FETCH (RFC 3501 6.4.5), cut out of a
 * message's raw bytes.
 *
 * Sections: "" (the whole message), "HEADER", "HEADER.FIELDS (A B)",
 * "HEADER.FIELDS.NOT (A B)", "TEXT", and part numbers "1.2" optionally
 * followed by ".HEADER", ".HEADER.FIELDS ...", ".TEXT" (of an encapsulated
 * message/rfc822) or ".MIME" (the part's own MIME header).
 *
 * Contract: imap_msgpart_parse() takes the text between '[' and ']' and
 * returns 0, or -1 with *error_r for a section that is not valid IMAP.
 * imap_msgpart_extract() never fails: a malformed message or a part that does
 * not exist gives the best cut it can, or an empty one; the bytes returned
 * are always a copy of bytes of the message (HEADER.FIELDS: the matching
 * fields, in order, then the empty line). imap_msgpart_section() gives the
 * canonical section text for the FETCH response ("HEADER.FIELDS (FROM TO)").
 * It does no I/O and keeps no state between messages. */
#include <stdbool.h>
#include <stddef.h>

struct str;
struct imap_msgpart;

int imap_msgpart_parse(const char *section, struct imap_msgpart **part_r, const char **error_r);
void imap_msgpart_destroy(struct imap_msgpart **part);

/* The section as it goes back to the client, inside the brackets. */
const char *imap_msgpart_section(const struct imap_msgpart *part);
/* True if only the header is needed (no body bytes are looked at). */
bool imap_msgpart_header_only(const struct imap_msgpart *part);

/* The message as IMAP serves it (RFC 3501 2.3.1.1, 4.3; as Dovecot does):
 * every bare LF becomes CRLF and NUL, which no literal may carry, becomes
 * 0x80. Returns false and leaves out alone when the bytes are already in that
 * form; else appends the converted message to out and returns true. Sections
 * and partial fetches are cut from this form, so that they agree with
 * RFC822.SIZE and BODYSTRUCTURE. */
bool imap_msgpart_canonical(const unsigned char *msg, size_t len, struct str *out);
/* The length of that form. */
size_t imap_msgpart_canonical_size(const unsigned char *msg, size_t len);
/* Write that form to dest, which holds imap_msgpart_canonical_size() bytes
 * (a FETCH writes it straight into the client's output). */
void imap_msgpart_canonical_copy(const unsigned char *msg, size_t len, unsigned char *dest);

/* Where the section's bytes are when they are one piece of the message
 * (every section but HEADER.FIELDS and HEADER.FIELDS.NOT): true, with their
 * offset and length (0 and 0 for a part that does not exist). false for
 * those two, whose bytes only imap_msgpart_extract() gives. */
bool imap_msgpart_span(const struct imap_msgpart *part, const unsigned char *msg, size_t len,
		       size_t *offset_r, size_t *len_r);
/* Append the section's bytes of the message to out. */
void imap_msgpart_extract(const struct imap_msgpart *part, const unsigned char *msg, size_t len,
			  struct str *out);

#endif
