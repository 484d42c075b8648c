#ifndef COFFER_MBOX_H
#define COFFER_MBOX_H
/* mbox: splits an mbox stream into messages, with bounded memory (one
 * message plus a read buffer), whatever the size of the file.
 *
 * Formats are told apart automatically from the first message: if it has a
 * Content-Length header that ends exactly before the next From_ line (or the
 * end of the file), the file is read as mboxcl2 (lengths trusted where they
 * are consistent, no unescaping); otherwise as mboxrd, which also reads
 * mboxo correctly except for original lines that began with ">From " (mboxo
 * loses that distinction when writing; see docs/storage.md). mboxrd
 * unescaping removes one '>' from lines matching ^>+From . The blank line
 * that separates messages is not part of a message.
 *
 * Contract: mbox_reader_next() returns 1 with a message (data owned by the
 * reader, valid until the next call), 0 at the end, -1 on a read error or a
 * message larger than MBOX_MESSAGE_MAX. Bytes before the first From_ line
 * are skipped and counted in mbox_reader_skipped(). Never reads out of
 * bounds on any input. */
#include <stddef.h>
#include <stdint.h>

#define MBOX_MESSAGE_MAX (512u * 1024 * 1024)

enum mbox_format { MBOX_FORMAT_UNKNOWN, MBOX_FORMAT_MBOXRD, MBOX_FORMAT_MBOXCL2 };

struct mbox_message {
	const unsigned char *data;
	size_t len;
	int64_t from_date; /* the From_ line's date, 0 if none could be read */
	uint64_t index;	   /* 1-based position in the file */
};

struct mbox_reader;

/* Reads from fd (not closed by the reader). */
struct mbox_reader *mbox_reader_create_fd(int fd);
/* Reads from memory (the buffer must outlive the reader). */
struct mbox_reader *mbox_reader_create_buffer(const void *data, size_t len);
void mbox_reader_destroy(struct mbox_reader **reader);

int mbox_reader_next(struct mbox_reader *reader, struct mbox_message *msg_r,
		     const char **error_r);
enum mbox_format mbox_reader_format(const struct mbox_reader *reader);
uint64_t mbox_reader_skipped(const struct mbox_reader *reader);

#endif
