#ifndef COFFER_MBOX_H
#define COFFER_MBOX_H
/* mbox: splits an mbox stream into messages, with bounded memory (one
 * message plus a read buffer), whatever the size of the file.
 *
 * Messages start at envelope lines only: "From ", a sender and a ctime date
 * ("From a@b.example Tue Jan  2 10:00:00 2018"), followed by a header line.
 * Mailman-style mboxo archives leave body lines beginning with "From " unescaped;
 * such a line is not an envelope and stays in its message. The first line of
 * the input needs no date (an mbox announces itself with "From ").
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
 * reader, valid until the next call, or taken with mbox_reader_take()), 0 at
 * the end, -1 on a read error. A message larger than the reader's maximum
 * (mbox_reader_set_max(), default MBOX_MESSAGE_MAX) is returned with
 * `refused` set, its size in `len` and no data: its bytes are dropped while
 * read, so memory stays bounded by the maximum whatever the input. Bytes
 * before the first envelope are not part of any message; they are counted
 * in mbox_reader_skipped() for the caller to report. Never reads out of
 * bounds on any input. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MBOX_MESSAGE_MAX (512u * 1024 * 1024)

enum mbox_format { MBOX_FORMAT_UNKNOWN, MBOX_FORMAT_MBOXRD, MBOX_FORMAT_MBOXCL2 };

struct mbox_message {
	const unsigned char *data;
	size_t len;
	int64_t from_date; /* the From_ line's date, 0 if none could be read */
	uint64_t index;    /* 1-based position in the file */
	bool refused;      /* larger than the maximum: data is NULL */
};

struct mbox_reader;

/* Reads from fd (not closed by the reader). */
struct mbox_reader *mbox_reader_create_fd(int fd);
/* Reads from memory (the buffer must outlive the reader). */
struct mbox_reader *mbox_reader_create_buffer(const void *data, size_t len);
void mbox_reader_destroy(struct mbox_reader **reader);

int mbox_reader_next(struct mbox_reader *reader, struct mbox_message *msg_r, const char **error_r);
/* Messages larger than max bytes are refused (see above). */
void mbox_reader_set_max(struct mbox_reader *reader, size_t max);
/* Takes the last message's data (mem_free() it; allocated with one spare
 * byte after len), so that it need not be copied. */
unsigned char *mbox_reader_take(struct mbox_reader *reader);
enum mbox_format mbox_reader_format(const struct mbox_reader *reader);
uint64_t mbox_reader_skipped(const struct mbox_reader *reader);

#endif
