#include "mbox.h"
#include "mem.h"
#include "tstr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MBOX_READ_SIZE (1024 * 1024)
/* Read input is dropped from the page cache every this many bytes: a
 * multi-gigabyte mbox is read once, and keeping it cached would push out the
 * catalog's pages, which the import and every search need. */
#define MBOX_DROP_CACHE_EVERY (64 * 1024 * 1024)

struct mbox_reader {
	int fd; /* -1 for a memory buffer */
	const unsigned char *mem;
	size_t mem_len, mem_pos;

	unsigned char *buf;
	size_t start, end, cap; /* unconsumed bytes are buf[start..end) */
	bool eof;

	unsigned char *out; /* the unescaped message */
	size_t out_cap;
	enum mbox_format format;
	uint64_t count, skipped;
	uint64_t read_total, dropped_upto; /* input offsets (fd readers) */
};

struct mbox_reader *mbox_reader_create_fd(int fd)
{
	struct mbox_reader *r = mem_new(struct mbox_reader);
	r->fd = fd;
	return r;
}

struct mbox_reader *mbox_reader_create_buffer(const void *data, size_t len)
{
	struct mbox_reader *r = mem_new(struct mbox_reader);
	r->fd = -1;
	r->mem = data;
	r->mem_len = len;
	return r;
}

void mbox_reader_destroy(struct mbox_reader **_r)
{
	struct mbox_reader *r = *_r;
	if (r == NULL)
		return;
	*_r = NULL;
	mem_free(r->buf);
	mem_free(r->out);
	mem_free(r);
}

enum mbox_format mbox_reader_format(const struct mbox_reader *r)
{
	return r->format;
}

uint64_t mbox_reader_skipped(const struct mbox_reader *r)
{
	return r->skipped;
}

/* Read more input; 0 at the end, -1 on errors or when a message would not
 * fit in MBOX_MESSAGE_MAX. */
static int mbox_fill(struct mbox_reader *r, const char **error_r)
{
	if (r->eof)
		return 0;
	if (r->start > 0 && r->start == r->end) {
		r->start = r->end = 0;
	} else if (r->start > r->cap / 2) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->cap - r->end < MBOX_READ_SIZE) {
		if (r->end - r->start > MBOX_MESSAGE_MAX + (size_t)MBOX_READ_SIZE) {
			*error_r = tstr_printf("mbox: a message is larger than %u bytes",
					       MBOX_MESSAGE_MAX);
			return -1;
		}
		r->cap = r->cap == 0 ? 2 * MBOX_READ_SIZE : r->cap * 2;
		r->buf = mem_realloc(r->buf, r->cap);
	}
	size_t room = r->cap - r->end;
	if (r->fd < 0) {
		size_t n = r->mem_len - r->mem_pos < room ? r->mem_len - r->mem_pos : room;
		memcpy(r->buf + r->end, r->mem + r->mem_pos, n);
		r->mem_pos += n;
		r->end += n;
		if (n == 0)
			r->eof = true;
		return n > 0 ? 1 : 0;
	}
	for (;;) {
		ssize_t n = read(r->fd, r->buf + r->end, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = tstr_printf("mbox: read failed: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			r->eof = true;
		r->end += (size_t)n;
		r->read_total += (uint64_t)n;
		if (r->read_total - r->dropped_upto >= MBOX_DROP_CACHE_EVERY) {
			/* only advice: fails harmlessly on pipes (stdin) */
			(void)posix_fadvise(r->fd, (off_t)r->dropped_upto,
					    (off_t)(r->read_total - r->dropped_upto),
					    POSIX_FADV_DONTNEED);
			r->dropped_upto = r->read_total;
		}
		return n > 0 ? 1 : 0;
	}
}

static bool is_from_line(const unsigned char *p, size_t avail)
{
	return avail >= 5 && memcmp(p, "From ", 5) == 0;
}

static const unsigned char *find_bytes(const unsigned char *hay, size_t len, const char *needle,
				       size_t nlen)
{
	return memmem(hay, len, needle, nlen);
}

static int64_t mbox_parse_from_date(const unsigned char *line, size_t len)
{
	/* "From sender Tue Jan  2 10:00:00 2018": the date is the last 24 chars */
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len < 5 + 24)
		return 0;
	char buf[32];
	memcpy(buf, line + len - 24, 24);
	buf[24] = '\0';
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(buf, "%a %b %d %H:%M:%S %Y", &tm);
	if (end == NULL || *end != '\0')
		return 0;
	return (int64_t)timegm(&tm);
}

/* The Content-Length header value in the header block h[0..len), or -1. */
static long long mbox_content_length(const unsigned char *h, size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		const unsigned char *nl = memchr(h + pos, '\n', len - pos);
		size_t line_len = nl != NULL ? (size_t)(nl - (h + pos)) : len - pos;
		if (line_len > 15 &&
		    strncasecmp((const char *)h + pos, "Content-Length:", 15) == 0) {
			long long v = 0;
			size_t i = pos + 15;
			while (i < pos + line_len && (h[i] == ' ' || h[i] == '\t'))
				i++;
			size_t digits = 0;
			while (i < pos + line_len && h[i] >= '0' && h[i] <= '9' && digits < 12) {
				v = v * 10 + (h[i] - '0');
				i++;
				digits++;
			}
			return digits > 0 ? v : -1;
		}
		pos += line_len + 1;
	}
	return -1;
}

/* Try the Content-Length of the message whose headers start at `msg`; on
 * success *len_r is the message length (headers + body). 1 found, 0 not
 * consistent, -1 need more data. */
static int mbox_try_cl(struct mbox_reader *r, size_t msg, size_t *len_r)
{
	const unsigned char *p = r->buf + msg;
	size_t avail = r->end - msg;
	const unsigned char *hdr_end = find_bytes(p, avail, "\n\n", 2);
	size_t body;
	if (hdr_end != NULL) {
		body = (size_t)(hdr_end - p) + 2;
	} else {
		const unsigned char *crlf = find_bytes(p, avail, "\r\n\r\n", 4);
		if (crlf == NULL)
			return r->eof ? 0 : -1;
		body = (size_t)(crlf - p) + 4;
	}
	long long cl = mbox_content_length(p, body);
	if (cl < 0 || (unsigned long long)cl > MBOX_MESSAGE_MAX)
		return 0;
	size_t total = body + (size_t)cl;
	if (total + 7 > avail && !r->eof)
		return -1;
	if (total > avail)
		return 0;
	const unsigned char *after = p + total;
	size_t rest = avail - total;
	if (rest == 0 || (rest == 1 && after[0] == '\n') || is_from_line(after, rest) ||
	    (after[0] == '\n' && is_from_line(after + 1, rest - 1)) ||
	    (rest >= 2 && after[0] == '\r' && after[1] == '\n' &&
	     is_from_line(after + 2, rest - 2))) {
		*len_r = total;
		return 1;
	}
	return 0;
}

static void mbox_out(struct mbox_reader *r, size_t len)
{
	if (r->out_cap < len + 1) {
		r->out_cap = len + 1;
		r->out = mem_realloc(r->out, r->out_cap);
	}
}

/* mboxrd: copy with one '>' removed from lines matching ^>+From . */
static size_t mbox_unescape(struct mbox_reader *r, const unsigned char *src, size_t len)
{
	mbox_out(r, len);
	size_t o = 0, i = 0;
	while (i < len) {
		if (src[i] == '>') {
			size_t k = i;
			while (k < len && src[k] == '>')
				k++;
			if (len - k >= 5 && memcmp(src + k, "From ", 5) == 0)
				i++; /* drop one '>' */
		}
		const unsigned char *nl = memchr(src + i, '\n', len - i);
		size_t line = nl != NULL ? (size_t)(nl - (src + i)) + 1 : len - i;
		memcpy(r->out + o, src + i, line);
		o += line;
		i += line;
	}
	return o;
}

int mbox_reader_next(struct mbox_reader *r, struct mbox_message *msg_r, const char **error_r)
{
	/* Find the From_ line that starts the next message. */
	for (;;) {
		size_t avail = r->end - r->start;
		const unsigned char *p = r->buf + r->start;
		if (avail >= 5 && is_from_line(p, avail))
			break;
		if (avail >= 5) {
			/* skip to the next line that starts with From */
			const unsigned char *next = find_bytes(p, avail, "\nFrom ", 6);
			size_t skip = next != NULL ? (size_t)(next - p) + 1 : avail - 5;
			r->skipped += skip;
			r->start += skip;
			if (next != NULL)
				continue;
		}
		int ret = mbox_fill(r, error_r);
		if (ret < 0)
			return -1;
		if (ret == 0) {
			r->skipped += r->end - r->start;
			r->start = r->end;
			return 0;
		}
	}
	/* The From_ line itself. */
	size_t scanned = 0;
	const unsigned char *nl;
	while ((nl = memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned)) ==
	       NULL) {
		scanned = r->end - r->start;
		int ret = mbox_fill(r, error_r);
		if (ret < 0)
			return -1;
		if (ret == 0)
			break;
	}
	size_t from_len = nl != NULL ? (size_t)(nl - (r->buf + r->start)) + 1 : r->end - r->start;
	int64_t from_date = mbox_parse_from_date(r->buf + r->start, from_len);
	size_t msg = r->start + from_len;

	size_t msg_len = 0;
	bool by_length = false;
	if (r->format != MBOX_FORMAT_MBOXRD) {
		int ret;
		while ((ret = mbox_try_cl(r, msg, &msg_len)) < 0) {
			size_t off = msg - r->start;
			int f = mbox_fill(r, error_r);
			if (f < 0)
				return -1;
			msg = r->start + off;
			if (f == 0 && ret < 0 && r->eof)
				continue;
		}
		if (ret == 1) {
			by_length = true;
			if (r->format == MBOX_FORMAT_UNKNOWN)
				r->format = MBOX_FORMAT_MBOXCL2;
		} else if (r->format == MBOX_FORMAT_UNKNOWN) {
			r->format = MBOX_FORMAT_MBOXRD;
		}
	}
	size_t next_start;
	if (!by_length) {
		/* up to the next line starting with "From " */
		size_t search_from = msg > 0 ? msg - 1 : msg; /* include the From_ line's \n */
		const unsigned char *next;
		for (;;) {
			next = find_bytes(r->buf + search_from, r->end - search_from, "\nFrom ", 6);
			if (next != NULL || r->eof)
				break;
			size_t keep = r->end - search_from > 6 ? r->end - search_from - 5 : 0;
			size_t off_msg = msg - r->start, off_search = search_from + keep - r->start;
			if (mbox_fill(r, error_r) < 0)
				return -1;
			msg = r->start + off_msg;
			search_from = r->start + off_search;
		}
		size_t end = next != NULL ? (size_t)(next - r->buf) + 1 : r->end;
		if (end < msg)
			end = msg;
		msg_len = end - msg;
		next_start = end;
		/* the blank line separating messages is not part of the message */
		if (msg_len >= 2 && r->buf[msg + msg_len - 1] == '\n' &&
		    r->buf[msg + msg_len - 2] == '\n')
			msg_len--;
	} else {
		next_start = msg + msg_len;
		while (next_start < r->end &&
		       (r->buf[next_start] == '\n' || r->buf[next_start] == '\r') &&
		       !is_from_line(r->buf + next_start, r->end - next_start))
			next_start++;
	}
	if (msg_len > MBOX_MESSAGE_MAX) {
		*error_r = tstr_printf("mbox: message %llu is larger than %u bytes",
				       (unsigned long long)r->count + 1, MBOX_MESSAGE_MAX);
		return -1;
	}
	if (by_length) {
		mbox_out(r, msg_len);
		memcpy(r->out, r->buf + msg, msg_len);
	} else {
		msg_len = mbox_unescape(r, r->buf + msg, msg_len);
	}
	r->start = next_start;
	msg_r->data = r->out;
	msg_r->len = msg_len;
	msg_r->from_date = from_date;
	msg_r->index = ++r->count;
	return 1;
}
