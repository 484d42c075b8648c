#ifndef COFFER_MBOX_WRITER_H
#define COFFER_MBOX_WRITER_H
/* mbox-writer: messages appended to an mbox in the mboxrd format (exports).
 *
 * Contract: each message gets a "From MAILER-DAEMON <asctime date, UTC>"
 * separator line; every line of the message that starts with any number of
 * '>' followed by "From " gets one more '>' (so mboxrd readers give back the
 * exact bytes, and mboxo readers at least never split a message); a message
 * not ending in a newline gets one, and a blank line follows each message.
 * Line endings (LF or CRLF) are kept as they are. */
#include <stddef.h>
#include <time.h>

struct str;

void mbox_writer_append(struct str *out, const void *data, size_t len, time_t date);

#endif
