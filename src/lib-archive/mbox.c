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
/* An envelope line is at most this long; the field name after it at most
 * MBOX_FIELD_NAME_MAX (both far above what any mailer writes). */
#define MBOX_ENVELOPE_MAX 1024
#define MBOX_FIELD_NAME_MAX 128
/* A Content-Length is looked for only in a header block up to this size. */
#define MBOX_CL_HEADER_MAX (1024 * 1024)

struct mbox_reader {
	int fd; /* -1 for a memory buffer */
	const unsigned char *mem;
	size_t mem_len, mem_pos;

	unsigned char *buf;
	size_t start, end, cap; /* unconsumed bytes are buf[start..end) */
	bool eof;

	unsigned char *out; /* the unescaped message */
	size_t out_cap;
	size_t max;         /* larger messages are refused */
	bool mid_line;      /* skipping a line longer than the buffer */
	uint64_t input_pos; /* offset of buf[start] in the input */
	enum mbox_format format;
	uint64_t count, skipped;
	uint64_t read_total, dropped_upto; /* input offsets (fd readers) */
};

struct mbox_reader *mbox_reader_create_fd(int fd)
{
	struct mbox_reader *r = mem_new(struct mbox_reader);
	r->fd = fd;
	r->max = MBOX_MESSAGE_MAX;
	return r;
}

struct mbox_reader *mbox_reader_create_buffer(const void *data, size_t len)
{
	struct mbox_reader *r = mem_new(struct mbox_reader);
	r->fd = -1;
	r->mem = data;
	r->mem_len = len;
	r->max = MBOX_MESSAGE_MAX;
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

/* Read more input; 0 at the end, -1 on errors. */
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
		/* never reached: larger messages are dropped while read */
		if (r->end - r->start > r->max + 4 * (size_t)MBOX_READ_SIZE) {
			*error_r = tstr_printf("mbox: buffered more than %zu bytes", r->max);
			return -1;
		}
		/* A window that read() fills in place, not an ARRAY or a str:
		 * array_grow() zeroes the new room, touching up to r->max of
		 * pages that realloc() leaves unmapped until read() fills them,
		 * and str has no room to read into (one more copy per byte). */
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
	/* an empty buffer may not exist yet (GCC's nonnull check at -O with
	 * the sanitizers sees that path) */
	if (hay == NULL || len == 0)
		return NULL;
	return memmem(hay, len, needle, nlen);
}

static bool mbox_word_in(const unsigned char *w, size_t len, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (len == 3 && strncasecmp((const char *)w, list[i], 3) == 0)
			return true;
	}
	return false;
}

static bool mbox_word_digits(const unsigned char *w, size_t len, size_t min, size_t max)
{
	if (len < min || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (w[i] < '0' || w[i] > '9')
			return false;
	}
	return true;
}

/* hh:mm or hh:mm:ss */
static bool mbox_word_time(const unsigned char *w, size_t len)
{
	if (len != 5 && len != 8)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool colon = i % 3 == 2;
		if (colon ? w[i] != ':' : (w[i] < '0' || w[i] > '9'))
			return false;
	}
	return true;
}

#define MBOX_ENVELOPE_WORDS 16

/* An envelope line (without its line end): "From ", a sender of at least one
 * word (Mailman writes "user at example.org"), then a ctime date: weekday,
 * month, day, time and a year (optionally after a time zone); or an
 * address-like sender alone. A body line such as "From here we go on
 * Monday" is neither, so it stays in its message. */
static bool mbox_envelope_line(const unsigned char *p, size_t len)
{
	static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	const unsigned char *w[MBOX_ENVELOPE_WORDS];
	size_t wl[MBOX_ENVELOPE_WORDS], n = 0;
	if (len > 0 && p[len - 1] == '\r')
		len--;
	for (size_t i = 5; i < len && n < MBOX_ENVELOPE_WORDS;) {
		if (p[i] == ' ' || p[i] == '\t') {
			i++;
			continue;
		}
		size_t k = i;
		while (k < len && p[k] != ' ' && p[k] != '\t')
			k++;
		w[n] = p + i;
		wl[n++] = k - i;
		i = k;
	}
	/* "From sender" alone, as Mozilla ("From - ") and Google Takeout
	 * ("From 1844347792267117879@xxx") write it: the sender must look like
	 * an address, so that "From here" is not taken */
	if (n == 1 && (memchr(w[0], '@', wl[0]) != NULL || (wl[0] == 1 && w[0][0] == '-') ||
		       (wl[0] == 13 && memcmp(w[0], "MAILER-DAEMON", 13) == 0)))
		return true;
	/* the sender is w[0] (and more words), the date follows it */
	for (size_t d = 1; d + 4 <= n; d++) {
		if (!mbox_word_in(w[d], wl[d], days, 7) ||
		    !mbox_word_in(w[d + 1], wl[d + 1], months, 12) ||
		    !mbox_word_digits(w[d + 2], wl[d + 2], 1, 2) ||
		    !mbox_word_time(w[d + 3], wl[d + 3]))
			continue;
		for (size_t y = d + 4; y < n && y <= d + 5; y++) {
			if (mbox_word_digits(w[y], wl[y], 4, 4))
				return true;
		}
	}
	return false;
}

/* A header field's start: a field name (printable ASCII but ':') and a
 * colon. 1 yes, 0 no, -1 more input needed to tell. */
static int mbox_header_line_at(const unsigned char *p, size_t avail, bool eof)
{
	for (size_t i = 0; i < avail; i++) {
		if (p[i] == ':')
			return i > 0 ? 1 : 0;
		if (p[i] <= 32 || p[i] >= 127 || i >= MBOX_FIELD_NAME_MAX)
			return 0;
	}
	return eof ? 0 : -1;
}

/* Whether an envelope starts at p (a line start): an envelope line followed
 * by a header line. The first line of an input that starts with "From " needs
 * no date: that is how an mbox announces itself. 1 yes, 0 no, -1 more input
 * needed to tell. */
static int mbox_envelope_at(const struct mbox_reader *r, const unsigned char *p, size_t avail,
			    bool first)
{
	if (avail < 5)
		return r->eof || (avail > 0 && memcmp(p, "From ", avail) != 0) ? 0 : -1;
	if (!is_from_line(p, avail))
		return 0;
	size_t look = avail < MBOX_ENVELOPE_MAX ? avail : MBOX_ENVELOPE_MAX;
	const unsigned char *nl = memchr(p, '\n', look);
	if (nl == NULL)
		return look == avail && !r->eof ? -1 : 0;
	size_t line_len = (size_t)(nl - p);
	if (!first && !mbox_envelope_line(p, line_len))
		return 0;
	return mbox_header_line_at(nl + 1, avail - line_len - 1, r->eof);
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
			return r->eof || avail > MBOX_CL_HEADER_MAX ? 0 : -1;
		body = (size_t)(crlf - p) + 4;
	}
	long long cl = mbox_content_length(p, body);
	if (cl < 0 || (unsigned long long)cl > r->max)
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

/* Exactly the largest message so far, not doubled as an ARRAY would be:
 * room for a message near r->max must not become twice that. */
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

/* Skip input up to the next envelope (1), or to the end (0). What is skipped
 * is not part of any message and is counted in r->skipped. */
static int mbox_find_envelope(struct mbox_reader *r, const char **error_r)
{
	for (;;) {
		size_t avail = r->end - r->start;
		const unsigned char *p = r->buf + r->start;
		int env = r->mid_line ? 0 : mbox_envelope_at(r, p, avail, r->input_pos == 0);
		if (env == 1)
			return 1;
		if (env == 0 && avail > 0) {
			/* on to the next line that could start an envelope */
			const unsigned char *next = find_bytes(p, avail, "\nFrom ", 6);
			size_t skip;
			if (next != NULL) {
				skip = (size_t)(next - p) + 1;
				r->mid_line = false;
			} else {
				const unsigned char *nl = memrchr(p, '\n', avail);
				skip = nl != NULL ? (size_t)(nl - p) + 1 : avail;
				r->mid_line = nl == NULL;
			}
			r->skipped += skip;
			r->start += skip;
			r->input_pos += skip;
			if (next != NULL)
				continue;
		}
		int ret = mbox_fill(r, error_r);
		if (ret < 0)
			return -1;
		if (ret == 0 && r->end == r->start)
			return 0;
	}
}

/* The end of the message whose body starts at r->start + msg (relative
 * offsets throughout, as filling may move the buffer): the next envelope or
 * the end of the input. A message over r->max is not kept: its bytes are
 * dropped as they are read (memory stays bounded) and counted in
 * *dropped_r. Returns 0 with *end_r, -1 on a read error. */
static int mbox_find_end(struct mbox_reader *r, size_t *msg, size_t *end_r, uint64_t *dropped_r,
			 const char **error_r)
{
	/* from the envelope's line end, so that "\nFrom " matches at once */
	size_t scan = *msg - 1;
	for (;;) {
		const unsigned char *base = r->buf + r->start;
		size_t avail = r->end - r->start;
		const unsigned char *cand = find_bytes(base + scan, avail - scan, "\nFrom ", 6);
		if (cand != NULL) {
			size_t at = (size_t)(cand - base) + 1;
			int env = mbox_envelope_at(r, base + at, avail - at, false);
			if (env == 1) {
				*end_r = at;
				return 0;
			}
			scan = env == 0 ? at : at - 1;
			if (env == 0)
				continue;
		} else if (r->eof) {
			*end_r = avail;
			return 0;
		} else if (avail > scan + 6) {
			scan = avail - 6;
		}
		if (scan > *msg && scan - *msg + *dropped_r > r->max) {
			/* too large: drop what is known to belong to it */
			*dropped_r += scan - *msg;
			r->start += scan;
			r->input_pos += scan;
			scan = 0;
			*msg = 0;
		}
		if (mbox_fill(r, error_r) < 0)
			return -1;
	}
}

/* After a large message, give its buffer back rather than keep it for the
 * rest of the input. */
static void mbox_shrink(struct mbox_reader *r)
{
	size_t left = r->end - r->start;
	if (r->cap <= 4 * (size_t)MBOX_READ_SIZE || left > MBOX_READ_SIZE)
		return;
	unsigned char *buf = mem_alloc(2 * MBOX_READ_SIZE);
	memcpy(buf, r->buf + r->start, left);
	mem_free(r->buf);
	r->buf = buf;
	r->cap = 2 * MBOX_READ_SIZE;
	r->start = 0;
	r->end = left;
}

int mbox_reader_next(struct mbox_reader *r, struct mbox_message *msg_r, const char **error_r)
{
	int found = mbox_find_envelope(r, error_r);
	if (found <= 0)
		return found;
	/* The From_ line itself: mbox_envelope_at() saw all of it. */
	const unsigned char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
	size_t from_len = (size_t)(nl - (r->buf + r->start)) + 1;
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
		}
		if (ret == 1) {
			by_length = true;
			if (r->format == MBOX_FORMAT_UNKNOWN)
				r->format = MBOX_FORMAT_MBOXCL2;
		} else if (r->format == MBOX_FORMAT_UNKNOWN) {
			r->format = MBOX_FORMAT_MBOXRD;
		}
	}
	memset(msg_r, 0, sizeof(*msg_r));
	msg_r->from_date = from_date;
	msg_r->index = ++r->count;
	size_t next_start;
	if (!by_length) {
		size_t rel = msg - r->start, end;
		uint64_t dropped = 0;
		if (mbox_find_end(r, &rel, &end, &dropped, error_r) < 0)
			return -1;
		msg = r->start + rel;
		msg_len = end - rel;
		next_start = r->start + end;
		/* the blank line separating messages is not part of the message */
		if (msg_len >= 2 && r->buf[msg + msg_len - 1] == '\n' &&
		    r->buf[msg + msg_len - 2] == '\n')
			msg_len--;
		if (dropped > 0) {
			msg_r->refused = true;
			msg_r->len = dropped + msg_len;
			r->input_pos += end;
			r->start = next_start;
			mbox_shrink(r);
			return 1;
		}
	} else {
		next_start = msg + msg_len;
		while (next_start < r->end &&
		       (r->buf[next_start] == '\n' || r->buf[next_start] == '\r') &&
		       !is_from_line(r->buf + next_start, r->end - next_start))
			next_start++;
	}
	if (by_length) {
		mbox_out(r, msg_len);
		memcpy(r->out, r->buf + msg, msg_len);
	} else {
		msg_len = mbox_unescape(r, r->buf + msg, msg_len);
	}
	r->input_pos += next_start - r->start;
	r->start = next_start;
	mbox_shrink(r);
	msg_r->data = r->out;
	msg_r->len = msg_len;
	return 1;
}

unsigned char *mbox_reader_take(struct mbox_reader *r)
{
	unsigned char *out = r->out;
	r->out = NULL;
	r->out_cap = 0;
	return out;
}

void mbox_reader_set_max(struct mbox_reader *r, size_t max)
{
	r->max = max;
}
