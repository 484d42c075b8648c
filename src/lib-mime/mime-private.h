#ifndef COFFER_MIME_PRIVATE_H
#define COFFER_MIME_PRIVATE_H
/* Shared by mime.c and mime-view.c (GMime types; not for other modules). */
#include <gmime/gmime.h>

/* Valid UTF-8 copies (mem_free): invalid bytes replaced, NULL gives "". */
char *mime_utf8(const char *s);
/* An address list as display text, "" for none. */
char *mime_addresses(InternetAddressList *list);

struct mime_info;
/* Fill info's envelope, bodystructure, body and imap_size (mime-imap.c);
 * msg may be NULL (a message GMime could not parse). */
void mime_imap_build(GMimeMessage *msg, const unsigned char *data, size_t len,
		     struct mime_info *info);

#endif
