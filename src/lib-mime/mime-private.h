#ifndef COFFER_MIME_PRIVATE_H
#define COFFER_MIME_PRIVATE_H
/* Shared by mime.c and mime-view.c (GMime types; not for other modules). */
#include <gmime/gmime.h>
#include <stdbool.h>
#include <stddef.h>

/* Valid UTF-8 copies (mem_free): invalid bytes replaced, NULL gives "". */
char *mime_utf8(const char *s);
/* An address list as display text, "" for none. */
char *mime_addresses(InternetAddressList *list);

/* A leaf part's content within the message data (GMime's bounds, with the
 * part's last character restored where GMime cuts it; see mime.c). false
 * if the part has no content or GMime did not keep its position. */
bool mime_part_bounds(GMimePart *part, const unsigned char *data, size_t len, size_t *off_r,
		      size_t *len_r);
/* A stream of a leaf part's decoded content (g_object_unref), NULL if none.
 * The parser must have run with a persistent stream over `data`. */
GMimeStream *mime_part_open(GMimePart *part, const unsigned char *data, size_t len);
struct mime_info;
/* Fill info's envelope, bodystructure, body and imap_size (mime-imap.c);
 * msg may be NULL (a message GMime could not parse). GMime parsed `data`
 * with `shift` bytes of header fields left out (its offsets + shift are
 * offsets into data). */
void mime_imap_build(GMimeMessage *msg, const unsigned char *data, size_t len, size_t shift,
		     struct mime_info *info);

#endif
