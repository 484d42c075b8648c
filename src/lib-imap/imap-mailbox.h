#ifndef COFFER_IMAP_MAILBOX_H
#define COFFER_IMAP_MAILBOX_H
/* imap-mailbox: mailbox names between the wire and the archive.
 *
 * Contract: imap_mailbox_from_arg() reads an astring argument (atom, quoted,
 * literal; "NIL" is a name), decodes it from modified UTF-7 and appends the
 * UTF-8 name to dest, writing "INBOX" for any case of "inbox" (RFC 3501 5.1:
 * INBOX is case-insensitive, other names are not). It returns 0, or -1 with
 * *error_r (not an astring, NUL inside, bad modified UTF-7), dest unchanged.
 * imap_mailbox_write() appends a UTF-8 name as the astring a client expects. */
#include "imap-arg.h"
#include "str.h"

int imap_mailbox_from_arg(const struct imap_arg *arg, struct str *dest, const char **error_r);
/* -1 with *error_r only for invalid UTF-8. */
int imap_mailbox_write(struct str *dest, const char *utf8_name, const char **error_r);

#endif
