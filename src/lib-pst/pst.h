#ifndef COFFER_PST_H
#define COFFER_PST_H
/* pst: Outlook PST files read through libpff (the only module that uses it)
 * as an iterator of RFC 5322 messages.
 *
 * pst_reader_open() checks the file first (the !BDN signature, a known
 * format version, the file as long as its header says: a truncated PST is
 * refused before anything is read from it) and then opens it with libpff.
 * pst_reader_next() walks the folders depth first from the top of the
 * personal folders (a folder's messages, then its subfolders, by their
 * order in the file), giving each item's folder path ("Inbox/Projects",
 * the root's own name left out), its received date and its bytes:
 *  - the header fields are the transport headers (PR_TRANSPORT_MESSAGE_
 *    HEADERS) without their MIME fields when present, else From, To, Cc,
 *    Subject, Date and Message-ID made from the item's properties;
 *  - the body is text/plain and/or text/html (multipart/alternative when
 *    both), attachments are base64 parts with filename and content type,
 *    and an attached Outlook item is a message/rfc822 part made the same way.
 * Everything written is deterministic (boundaries are counters), so the
 * same PST gives the same bytes again: a second import finds duplicates.
 *
 * Items that are not mail (contacts, appointments, tasks, notes,
 * distribution lists) come back with skip_reason set (PST_SKIP_NOT_MAIL).
 * next() writes a message's header fields, bodies and part headers and
 * notes its attachments, so that its exact size is known before any
 * attachment is read: a message larger than max_message_size is refused
 * then (PST_SKIP_TOO_LARGE); an item libpff cannot read is
 * PST_SKIP_UNREADABLE. pst_reader_read() then streams the message,
 * reading and base64-encoding each attachment 57 KiB at a time. Memory:
 * the message but its attachments, plus one chunk; libpff reads the file
 * on demand.
 *
 * A password-protected PST opens as any other: the password is only a CRC
 * in the message store that Outlook checks; the data is not encrypted by
 * it (docs/sources.md, "PST"). */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum pst_skip {
	PST_SKIP_NONE = 0,
	PST_SKIP_NOT_MAIL,
	PST_SKIP_TOO_LARGE,
	PST_SKIP_UNREADABLE,
};

struct pst_message {
	/* 1, 2, ... in the order of the walk */
	uint64_t index;
	/* "Inbox/Projects"; "" for an item in the top folder */
	const char *folder;
	/* delivery time, else submit time, else creation time (seconds since
	 * the epoch); 0 if none */
	int64_t received;
	/* the exact size of the message, known before it is read */
	size_t len;
	/* non-NULL: the item is not given (with this kind) */
	const char *skip_reason;
	enum pst_skip skip_kind;
};

struct pst_reader;

/* 0 and *reader_r, or -1 and *error_r ("not a PST file", "truncated PST
 * file", libpff's reason). max_message_size 0: no limit. */
int pst_reader_open(const char *path, uint64_t max_message_size, struct pst_reader **reader_r,
		    const char **error_r);
void pst_reader_destroy(struct pst_reader **reader);
/* 1 and *msg_r (strings valid until the next call), 0 at the end. A
 * folder libpff cannot open comes back as an item with skip_reason
 * (PST_SKIP_UNREADABLE) and the walk goes on; -1 and *error_r are kept for
 * a failure of the whole file. */
int pst_reader_next(struct pst_reader *reader, struct pst_message *msg_r, const char **error_r);
/* The next piece of the message last returned into buf: the count, 0 at
 * its end (exactly msg_r->len bytes in all), -1 and *error_r if libpff
 * cannot read an attachment's data. */
ssize_t pst_reader_read(struct pst_reader *reader, unsigned char *buf, size_t size,
			const char **error_r);

#endif
