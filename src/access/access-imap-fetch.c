/* access-imap-fetch: FETCH and UID FETCH with every RFC 3501 item.
 *
 * The messages are asked for in batches (ClientFetch), two batches in
 * flight so the instance works while this side writes, and written out in
 * order. A batch is written only while the client's output buffer is below
 * IMAP_OUTPUT_LOW, and at most two batches are held, so a slow reader costs
 * bounded memory. A message bigger than one answer arrives in pieces. What
 * IMAP needs besides the bytes (size, internal date, envelope, body
 * structure) was computed at ingest; FLAGS and UID need no call at all.
 * Messages go out in IMAP's canonical form (imap_msgpart_canonical()):
 * CRLF line ends and no NUL, whatever the archive holds. */
#include "access-imap-private.h"
#include "array.h"
#include "base64.h"
#include "imap-arg.h"
#include "imap-date.h"
#include "imap-msgpart.h"
#include "imap-parser.h"
#include "imap-seqset.h"
#include "imap-uidmap.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FETCH_MAX_ITEMS 64
#define FETCH_BATCH_RAW 256
#define FETCH_BATCH_META 1000
/* answers asked for ahead per FETCH: two keep the instance busy while one
 * is written; each more holds up to CLIENT_FETCH_BUDGET (1 MiB) here and in
 * the instance per session */
#define FETCH_IN_FLIGHT 2

enum fetch_kind {
	FETCH_FLAGS,
	FETCH_UID,
	FETCH_INTERNALDATE,
	FETCH_SIZE,
	FETCH_ENVELOPE,
	FETCH_BODYSTRUCTURE,
	FETCH_BODY,    /* BODY alone: the structure without extension data */
	FETCH_SECTION, /* BODY[...], BODY.PEEK[...], RFC822, RFC822.HEADER/TEXT */
};

struct fetch_item {
	enum fetch_kind kind;
	struct imap_msgpart *part;
	char *label; /* the response's name for a section: "BODY[HEADER]", "RFC822" */
	bool partial;
	uint32_t partial_offset, partial_len;
};

struct fetch_batch {
	struct fetch_batch *next;
	struct access_imap_fetch *fetch;
	uint32_t *seqs, *uids;
	unsigned int count;
	uint32_t skip; /* a piece of one big message: bytes already received */
	bool sent, answered, failed;
	struct json *result;
	/* the answer's bytes, in the chains they arrived in (moved here, never
	 * copied: a MiB made contiguous was a copy and fresh pages each time) */
	struct evbuffer *blob;
	size_t blob_len;
};

struct access_imap_fetch {
	struct imap_client *client;
	struct fetch_item items[FETCH_MAX_ITEMS];
	unsigned int item_count;
	bool need_meta, need_imap, need_raw, headers_only;
	uint32_t *seqs; /* every message to fetch, in order */
	size_t seq_count, next_seq;
	struct fetch_batch *queue;
	struct str *big;        /* a message arriving in pieces */
	unsigned char *scratch; /* a message across two chains of an answer */
	size_t scratch_size;
	bool writing;
};

/* ---- items ---- */

static void fetch_item_add(struct access_imap_fetch *f, enum fetch_kind kind)
{
	if (f->item_count < FETCH_MAX_ITEMS)
		f->items[f->item_count++] = (struct fetch_item){.kind = kind};
}

/* "<o.n>" after a section. */
static bool fetch_parse_partial(const char *p, struct fetch_item *item)
{
	if (*p == '\0')
		return true;
	char *end;
	unsigned long long o, n;
	if (*p != '<' || p[1] < '0' || p[1] > '9')
		return false;
	o = strtoull(p + 1, &end, 10);
	if (*end != '.' || end[1] < '0' || end[1] > '9')
		return false;
	n = strtoull(end + 1, &end, 10);
	if (*end != '>' || end[1] != '\0' || o > UINT32_MAX || n == 0 || n > UINT32_MAX)
		return false;
	item->partial = true;
	item->partial_offset = (uint32_t)o;
	item->partial_len = (uint32_t)n;
	return true;
}

static bool fetch_parse_section(struct access_imap_fetch *f, const char *atom, size_t prefix,
				const char **error_r)
{
	const char *open = atom + prefix;
	const char *close = strrchr(open, ']');
	if (close == NULL || f->item_count == FETCH_MAX_ITEMS) {
		*error_r = "Invalid section in FETCH";
		return false;
	}
	char *section = mem_strndup(open + 1, (size_t)(close - open - 1));
	struct fetch_item item = {.kind = FETCH_SECTION};
	int ret = imap_msgpart_parse(section, &item.part, error_r);
	mem_free(section);
	if (ret < 0)
		return false;
	if (!fetch_parse_partial(close + 1, &item)) {
		imap_msgpart_destroy(&item.part);
		*error_r = "Invalid partial in FETCH";
		return false;
	}
	item.label = mem_printf("BODY[%s]", imap_msgpart_section(item.part));
	f->items[f->item_count++] = item;
	return true;
}

static bool fetch_parse_rfc822(struct access_imap_fetch *f, const char *name, const char *section)
{
	struct fetch_item item = {.kind = FETCH_SECTION};
	const char *error;
	if (f->item_count == FETCH_MAX_ITEMS || imap_msgpart_parse(section, &item.part, &error) < 0)
		return false;
	item.label = mem_strdup(name);
	f->items[f->item_count++] = item;
	return true;
}

static bool fetch_parse_item(struct access_imap_fetch *f, const char *atom, const char **error_r)
{
	*error_r = NULL;
	if (strcasecmp(atom, "FLAGS") == 0)
		fetch_item_add(f, FETCH_FLAGS);
	else if (strcasecmp(atom, "UID") == 0)
		fetch_item_add(f, FETCH_UID);
	else if (strcasecmp(atom, "INTERNALDATE") == 0)
		fetch_item_add(f, FETCH_INTERNALDATE);
	else if (strcasecmp(atom, "RFC822.SIZE") == 0)
		fetch_item_add(f, FETCH_SIZE);
	else if (strcasecmp(atom, "ENVELOPE") == 0)
		fetch_item_add(f, FETCH_ENVELOPE);
	else if (strcasecmp(atom, "BODYSTRUCTURE") == 0)
		fetch_item_add(f, FETCH_BODYSTRUCTURE);
	else if (strcasecmp(atom, "BODY") == 0)
		fetch_item_add(f, FETCH_BODY);
	else if (strcasecmp(atom, "RFC822") == 0)
		return fetch_parse_rfc822(f, "RFC822", "");
	else if (strcasecmp(atom, "RFC822.HEADER") == 0)
		return fetch_parse_rfc822(f, "RFC822.HEADER", "HEADER");
	else if (strcasecmp(atom, "RFC822.TEXT") == 0)
		return fetch_parse_rfc822(f, "RFC822.TEXT", "TEXT");
	else if (strncasecmp(atom, "BODY[", 5) == 0)
		return fetch_parse_section(f, atom, 4, error_r);
	else if (strncasecmp(atom, "BODY.PEEK[", 10) == 0)
		return fetch_parse_section(f, atom, 9, error_r);
	else
		return false;
	return true;
}

static bool fetch_parse_items(struct access_imap_fetch *f, const struct imap_arg *arg,
			      const char **error_r)
{
	const char *atom;
	const struct imap_arg *list;
	unsigned int n;
	*error_r = NULL;
	if (imap_arg_get_atom(arg, &atom)) {
		/* the macros stand alone */
		if (strcasecmp(atom, "ALL") == 0 || strcasecmp(atom, "FAST") == 0 ||
		    strcasecmp(atom, "FULL") == 0) {
			fetch_item_add(f, FETCH_FLAGS);
			fetch_item_add(f, FETCH_INTERNALDATE);
			fetch_item_add(f, FETCH_SIZE);
			if (strcasecmp(atom, "FAST") != 0)
				fetch_item_add(f, FETCH_ENVELOPE);
			if (strcasecmp(atom, "FULL") == 0)
				fetch_item_add(f, FETCH_BODY);
			return true;
		}
		return fetch_parse_item(f, atom, error_r);
	}
	if (!imap_arg_get_list(arg, &list, &n) || n == 0)
		return false;
	for (unsigned int i = 0; i < n; i++) {
		if (!imap_arg_get_atom(&list[i], &atom) || !fetch_parse_item(f, atom, error_r))
			return false;
	}
	return true;
}

static void fetch_plan(struct access_imap_fetch *f, bool uid_command)
{
	bool has_uid = false;
	f->headers_only = true;
	for (unsigned int i = 0; i < f->item_count; i++) {
		struct fetch_item *it = &f->items[i];
		has_uid = has_uid || it->kind == FETCH_UID;
		if (it->kind == FETCH_INTERNALDATE)
			f->need_meta = true;
		if (it->kind == FETCH_ENVELOPE || it->kind == FETCH_BODYSTRUCTURE ||
		    it->kind == FETCH_BODY || it->kind == FETCH_SIZE)
			f->need_imap = true;
		if (it->kind == FETCH_SECTION) {
			f->need_raw = true;
			f->headers_only = f->headers_only && imap_msgpart_header_only(it->part);
		}
	}
	if (!f->need_raw)
		f->headers_only = false;
	if (uid_command && !has_uid && f->item_count < FETCH_MAX_ITEMS) {
		/* UID FETCH answers always carry the UID, first */
		memmove(&f->items[1], &f->items[0], f->item_count * sizeof(f->items[0]));
		f->items[0] = (struct fetch_item){.kind = FETCH_UID};
		f->item_count++;
	}
}

/* ---- lifetime ---- */

static void fetch_batch_free(struct fetch_batch *b)
{
	mem_free(b->seqs);
	mem_free(b->uids);
	json_unref(&b->result);
	if (b->blob != NULL)
		evbuffer_free(b->blob);
	mem_free(b);
}

void imap_fetch_free(struct access_imap_fetch **fetch)
{
	struct access_imap_fetch *f = *fetch;
	if (f == NULL)
		return;
	for (unsigned int i = 0; i < f->item_count; i++) {
		imap_msgpart_destroy(&f->items[i].part);
		mem_free(f->items[i].label);
	}
	while (f->queue != NULL) {
		struct fetch_batch *b = f->queue;
		f->queue = b->next;
		if (b->sent && !b->answered)
			b->fetch = NULL; /* the answer frees it */
		else
			fetch_batch_free(b);
	}
	mem_free(f->seqs);
	str_destroy(&f->big);
	mem_free(f->scratch);
	mem_free(f);
	*fetch = NULL;
}

static void fetch_finish(struct imap_client *client, const char *status, const char *text)
{
	imap_fetch_free(&client->fetch);
	imap_client_done(client, status, "%s", text);
}

/* ---- writing ---- */

static void fetch_write_literal(struct str *out, const char *label, const struct fetch_item *it,
				const unsigned char *data, size_t len)
{
	size_t start = 0, n = len;
	if (it->partial) {
		start = it->partial_offset < len ? it->partial_offset : len;
		n = len - start < it->partial_len ? len - start : it->partial_len;
		str_printfa(out, "%s<%u> {%zu}\r\n", label, it->partial_offset, n);
	} else {
		str_printfa(out, "%s {%zu}\r\n", label, n);
	}
	str_append_n(out, data + start, n);
}

/* ENVELOPE, BODYSTRUCTURE, BODY: base64 in the answer, since they carry raw
 * 8-bit header bytes (literals), which JSON strings cannot. */
static void fetch_write_imap_data(struct str *out, const char *label, const struct json *m,
				  const char *key)
{
	const char *b64 = json_get_string(m, key);
	size_t len = 0;
	unsigned char *data = b64 != NULL ? base64_decode(b64, strlen(b64), &len) : NULL;
	str_append(out, label);
	if (data != NULL && len > 0)
		str_append_n(out, data, len);
	else
		str_append(out, "NIL");
	mem_free(data);
}

/* The message in canonical form, made once, when a section or a partial
 * fetch is cut from it (a whole message goes out without it). */
static void fetch_canonical(const unsigned char **data, size_t *len, struct str **canonical)
{
	if (*canonical != NULL)
		return;
	*canonical = str_create(1);
	if (imap_msgpart_canonical(*data, *len, *canonical)) {
		*data = (const unsigned char *)str_c(*canonical);
		*len = str_len(*canonical);
	}
}

static void fetch_write_message(struct access_imap_fetch *f, uint32_t seq, uint32_t uid,
				const struct json *m, const unsigned char *data, size_t len)
{
	struct str *out = str_create(256);
	struct str *section = NULL, *canonical = NULL;
	str_printfa(out, "* %u FETCH (", seq);
	for (unsigned int i = 0; i < f->item_count; i++) {
		const struct fetch_item *it = &f->items[i];
		long long v = 0;
		if (i > 0)
			str_append_c(out, ' ');
		switch (it->kind) {
		case FETCH_FLAGS:
			/* archived mail counts as read; nothing can change it */
			str_append(out, "FLAGS (\\Seen)");
			break;
		case FETCH_UID:
			str_printfa(out, "UID %u", uid);
			break;
		case FETCH_INTERNALDATE:
			(void)json_get_int(m, "internalDate", &v);
			str_append(out, "INTERNALDATE ");
			imap_date_append_datetime(out, (time_t)v, 0);
			break;
		case FETCH_SIZE:
			/* the size of the form FETCH serves: "imapSize" */
			(void)json_get_int(m, "imapSize", &v);
			str_printfa(out, "RFC822.SIZE %lld", v);
			break;
		case FETCH_ENVELOPE:
			fetch_write_imap_data(out, "ENVELOPE ", m, "envelope");
			break;
		case FETCH_BODYSTRUCTURE:
			fetch_write_imap_data(out, "BODYSTRUCTURE ", m, "bodystructure");
			break;
		case FETCH_BODY:
			fetch_write_imap_data(out, "BODY ", m, "body");
			break;
		case FETCH_SECTION:
			if (imap_msgpart_section(it->part)[0] == '\0' && !it->partial) {
				/* the whole message (BODY[], RFC822): converted
				 * straight into the output, the usual case */
				size_t size = imap_msgpart_canonical_size(data, len);
				str_printfa(out, "%s {%zu}\r\n", it->label, size);
				imap_client_send_raw(f->client, str_c(out), str_len(out));
				str_truncate(out, 0);
				imap_client_send_canonical(f->client, data, len, size);
				break;
			}
			/* sections are cut from the form IMAP serves (CRLF, no
			 * NUL); with headersOnly the instance sent only the
			 * header, which is all a header-only section needs */
			fetch_canonical(&data, &len, &canonical);
			if (imap_msgpart_section(it->part)[0] == '\0') {
				fetch_write_literal(out, it->label, it, data, len);
				break;
			}
			if (section == NULL)
				section = str_create(1024);
			str_truncate(section, 0);
			imap_msgpart_extract(it->part, data, len, section);
			fetch_write_literal(out, it->label, it,
					    (const unsigned char *)str_c(section),
					    str_len(section));
			break;
		}
	}
	str_append(out, ")\r\n");
	imap_client_send_raw(f->client, str_c(out), str_len(out));
	str_destroy(&out);
	str_destroy(&section);
	str_destroy(&canonical);
}

/* ---- batches ---- */

static void fetch_pump(struct access_imap_fetch *f);

static void fetch_batch_answer(struct imap_client *client, const struct json *result,
			       struct evbuffer *blob, const char *code, const char *text, void *ctx)
{
	struct fetch_batch *b = ctx;
	struct access_imap_fetch *f = b->fetch;
	if (f == NULL) { /* the fetch ended meanwhile */
		fetch_batch_free(b);
		return;
	}
	b->answered = true;
	if (client->disconnected)
		return; /* freed with the fetch */
	if (code != NULL) {
		log_warning(client->context, "FETCH: %s: %s", code, text);
		b->failed = true;
	} else {
		/* read only from here on: shared, not cloned */
		b->result = json_ref((struct json *)result);
		b->blob = evbuffer_new();
		if (b->blob == NULL)
			abort(); /* without memory only */
		if (blob != NULL)
			evbuffer_add_buffer(b->blob, blob);
		b->blob_len = evbuffer_get_length(b->blob);
	}
	fetch_pump(f);
}

static void fetch_batch_send(struct access_imap_fetch *f, struct fetch_batch *b)
{
	struct json *args = json_new_object(), *ids = json_new_array();
	for (unsigned int i = 0; i < b->count; i++)
		json_append(ids, json_new_int(b->uids[i]));
	json_set(args, "ids", ids);
	json_set_bool(args, "raw", f->need_raw);
	json_set_bool(args, "imap", f->need_imap);
	if (f->headers_only)
		json_set_bool(args, "headersOnly", true);
	if (b->skip > 0)
		json_set_int(args, "skip", b->skip);
	b->sent = true;
	imap_client_call_buffer(f->client, "ClientFetch", args, fetch_batch_answer, b);
}

static struct fetch_batch *fetch_batch_new(struct access_imap_fetch *f, const uint32_t *seqs,
					   unsigned int count)
{
	struct fetch_batch *b = mem_new(struct fetch_batch);
	b->fetch = f;
	b->count = count;
	b->seqs = mem_alloc(count * sizeof(uint32_t));
	b->uids = mem_alloc(count * sizeof(uint32_t));
	memcpy(b->seqs, seqs, count * sizeof(uint32_t));
	for (unsigned int i = 0; i < count; i++)
		b->uids[i] = imap_uidmap_uid(f->client->uids, seqs[i]);
	return b;
}

/* Queue the next batch of the fetch at the end. */
static void fetch_queue_next(struct access_imap_fetch *f)
{
	size_t max = f->need_raw ? FETCH_BATCH_RAW : FETCH_BATCH_META;
	size_t n = f->seq_count - f->next_seq < max ? f->seq_count - f->next_seq : max;
	struct fetch_batch *b = fetch_batch_new(f, f->seqs + f->next_seq, (unsigned int)n);
	f->next_seq += n;
	struct fetch_batch **p = &f->queue;
	while (*p != NULL)
		p = &(*p)->next;
	*p = b;
	fetch_batch_send(f, b);
}

/* Insert a batch right after the head (the rest of the head's messages). */
static void fetch_queue_after_head(struct access_imap_fetch *f, struct fetch_batch *b)
{
	b->next = f->queue->next;
	f->queue->next = b;
	fetch_batch_send(f, b);
}

/* A message's bytes in the answer: in place when they lie in one chain (most
 * do), else gathered into `scratch`. */
static const unsigned char *fetch_blob_bytes(struct fetch_batch *b, size_t offset, size_t length,
					     struct access_imap_fetch *f)
{
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v;
	if (length == 0 || evbuffer_ptr_set(b->blob, &pos, offset, EVBUFFER_PTR_SET) < 0)
		return (const unsigned char *)"";
	if (evbuffer_peek(b->blob, (ev_ssize_t)length, &pos, &v, 1) >= 1 && v.iov_len >= length)
		return v.iov_base;
	if (f->scratch_size < length) {
		f->scratch = mem_realloc(f->scratch, length);
		f->scratch_size = length;
	}
	(void)evbuffer_copyout_from(b->blob, &pos, f->scratch, length);
	return f->scratch;
}

/* Write the head batch out; false if the fetch cannot go on. */
static bool fetch_write_batch(struct access_imap_fetch *f, struct fetch_batch *b)
{
	const struct json *list = json_get(b->result, "messages");
	long long consumed = b->count;
	(void)json_get_int(b->result, "consumed", &consumed);
	if (consumed < 0 || consumed > b->count)
		return false;
	unsigned int j = 0;
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json *m = json_at(list, i);
		long long id = 0, offset = 0, length = 0;
		(void)json_get_int(m, "id", &id);
		while (j < (unsigned int)consumed && b->uids[j] != (uint32_t)id)
			j++; /* left out: not readable any more */
		if (j == (unsigned int)consumed)
			return false;
		(void)json_get_int(m, "offset", &offset);
		(void)json_get_int(m, "length", &length);
		if (offset < 0 || length < 0 || (size_t)offset + (size_t)length > b->blob_len)
			return false;
		const unsigned char *data = fetch_blob_bytes(b, (size_t)offset, (size_t)length, f);
		if (json_get_bool(m, "partial", false) || b->skip > 0) {
			/* a big message: gather its pieces */
			if (f->big == NULL)
				f->big = str_create((size_t)length * 2);
			str_append_n(f->big, data, (size_t)length);
			if (json_get_bool(m, "partial", false)) {
				/* the next piece first, then the rest of this batch */
				if ((unsigned int)consumed < b->count && b->skip == 0)
					fetch_queue_after_head(
						f,
						fetch_batch_new(f, b->seqs + consumed,
								b->count - (unsigned int)consumed));
				struct fetch_batch *more = fetch_batch_new(f, &b->seqs[j], 1);
				more->skip = (uint32_t)str_len(f->big);
				fetch_queue_after_head(f, more);
				return true;
			}
			fetch_write_message(f, b->seqs[j], b->uids[j], m,
					    (const unsigned char *)str_c(f->big), str_len(f->big));
			str_destroy(&f->big);
		} else {
			fetch_write_message(f, b->seqs[j], b->uids[j], m, data, (size_t)length);
		}
		j++;
	}
	if ((unsigned int)consumed < b->count && b->skip == 0)
		fetch_queue_after_head(f, fetch_batch_new(f, b->seqs + consumed,
							  b->count - (unsigned int)consumed));
	return true;
}

/* Move on: write answered batches in order while the client keeps up, and
 * keep FETCH_IN_FLIGHT batches asked for. */
static void fetch_pump(struct access_imap_fetch *f)
{
	struct imap_client *client = f->client;
	if (f->writing)
		return;
	f->writing = true;
	while (f->queue != NULL && f->queue->answered &&
	       imap_client_output_len(client) < IMAP_OUTPUT_LOW) {
		struct fetch_batch *b = f->queue;
		bool ok = !b->failed && fetch_write_batch(f, b);
		f->queue = b->next;
		fetch_batch_free(b);
		if (!ok) {
			f->writing = false;
			fetch_finish(client, "NO", "[UNAVAILABLE] Some messages could not be read");
			return;
		}
	}
	unsigned int held = 0;
	for (struct fetch_batch *b = f->queue; b != NULL; b = b->next)
		held++;
	while (f->next_seq < f->seq_count && held < FETCH_IN_FLIGHT && f->big == NULL) {
		fetch_queue_next(f);
		held++;
	}
	f->writing = false;
	if (f->queue == NULL && f->next_seq == f->seq_count)
		fetch_finish(client, "OK",
			     client->uid_command ? "UID FETCH completed" : "FETCH completed");
}

void imap_fetch_continue(struct imap_client *client)
{
	if (client->fetch != NULL && imap_client_output_len(client) < IMAP_OUTPUT_LOW)
		fetch_pump(client->fetch);
}

/* ---- the command ---- */

/* The sequence numbers a set names; false if a number is out of range
 * (FETCH; UID FETCH simply skips UIDs that are not there). */
static bool fetch_targets(struct access_imap_fetch *f, const char *set_text, bool uid,
			  const char **error_r)
{
	const struct imap_uidmap *map = f->client->uids;
	uint32_t count = imap_uidmap_count(map);
	struct imap_seqset *set;
	if (imap_seqset_parse(set_text, uid ? imap_uidmap_max_uid(map) : count, &set, error_r) < 0)
		return false;
	const struct imap_seqset_range *r = imap_seqset_ranges(set);
	ARRAY(uint32_t) seqs = ARRAY_INIT;
	bool ok = true;
	for (unsigned int i = 0; i < imap_seqset_range_count(set) && ok; i++) {
		uint32_t first = r[i].first, last = r[i].last;
		if (uid) {
			first = imap_uidmap_seq_at_or_after(map, r[i].first);
			uint32_t end = imap_uidmap_seq_at_or_after(map, r[i].last);
			last = end <= count && imap_uidmap_uid(map, end) == r[i].last ? end
										      : end - 1;
			if (first > last)
				continue;
		} else if (last > count) {
			*error_r = "Invalid messageset: no such message";
			ok = false;
			break;
		}
		for (uint64_t s = first; s <= last; s++)
			array_append(&seqs, (uint32_t)s);
	}
	imap_seqset_destroy(&set);
	f->seqs = seqs.items; /* freed with f, also after an error */
	f->seq_count = seqs.count;
	return ok;
}

/* FLAGS and UID only: answered from the UID map. */
static void fetch_without_calls(struct access_imap_fetch *f)
{
	for (size_t i = 0; i < f->seq_count; i++) {
		uint32_t seq = f->seqs[i];
		fetch_write_message(f, seq, imap_uidmap_uid(f->client->uids, seq), NULL, NULL, 0);
	}
	f->next_seq = f->seq_count;
}

void imap_cmd_fetch(struct imap_client *client, const struct imap_command *cmd)
{
	const char *set, *error = NULL;
	struct access_imap_fetch *f = mem_new(struct access_imap_fetch);
	f->client = client;
	client->fetch = f;
	if (cmd->arg_count != 2 || !imap_arg_get_atom(&cmd->args[0], &set) ||
	    !fetch_parse_items(f, &cmd->args[1], &error)) {
		fetch_finish(client, "BAD", error != NULL ? error : "Invalid FETCH items");
		return;
	}
	if (!fetch_targets(f, set, client->uid_command, &error)) {
		fetch_finish(client, "BAD", error);
		return;
	}
	fetch_plan(f, client->uid_command);
	if (!f->need_meta && !f->need_imap && !f->need_raw) {
		fetch_without_calls(f);
		fetch_finish(client, "OK",
			     client->uid_command ? "UID FETCH completed" : "FETCH completed");
		return;
	}
	fetch_pump(f);
}

/* ---- STORE ---- */

/* Whether a STORE would change nothing: every archived message has \Seen
 * and no other flag, so "+FLAGS (\Seen)", "FLAGS (\Seen)" and removing a
 * flag that is not set leave everything as it is. */
static bool store_changes_nothing(const char *mode, const struct imap_arg *flags,
				  unsigned int count)
{
	bool seen = false, other = false;
	for (unsigned int i = 0; i < count; i++) {
		const char *flag;
		if (!imap_arg_get_atom(&flags[i], &flag))
			return false;
		if (strcasecmp(flag, "\\Seen") == 0)
			seen = true;
		else
			other = true;
	}
	if (strncasecmp(mode, "+FLAGS", 6) == 0)
		return !other;
	if (strncasecmp(mode, "-FLAGS", 6) == 0)
		return !seen;
	return seen && !other; /* FLAGS */
}

void imap_cmd_store(struct imap_client *client, const struct imap_command *cmd)
{
	const char *set, *mode, *error = NULL;
	const struct imap_arg *flags;
	unsigned int count;
	if (cmd->arg_count != 3 || !imap_arg_get_atom(&cmd->args[0], &set) ||
	    !imap_arg_get_atom(&cmd->args[1], &mode) ||
	    (strcasecmp(mode, "FLAGS") != 0 && strcasecmp(mode, "+FLAGS") != 0 &&
	     strcasecmp(mode, "-FLAGS") != 0 && strcasecmp(mode, "FLAGS.SILENT") != 0 &&
	     strcasecmp(mode, "+FLAGS.SILENT") != 0 && strcasecmp(mode, "-FLAGS.SILENT") != 0)) {
		imap_client_done(client, "BAD", "STORE needs a message set, FLAGS and flags");
		return;
	}
	if (!imap_arg_get_list(&cmd->args[2], &flags, &count)) {
		flags = &cmd->args[2];
		count = 1;
	}
	if (!store_changes_nothing(mode, flags, count)) {
		imap_client_done(client, "NO",
				 "[CANNOT] The archive is read-only: flags cannot be changed");
		return;
	}
	struct access_imap_fetch *f = mem_new(struct access_imap_fetch);
	f->client = client;
	client->fetch = f;
	if (!fetch_targets(f, set, client->uid_command, &error)) {
		fetch_finish(client, "BAD", error);
		return;
	}
	if (strstr(mode, ".SILENT") == NULL && strstr(mode, ".silent") == NULL) {
		fetch_item_add(f, FETCH_FLAGS);
		fetch_plan(f, client->uid_command);
		fetch_without_calls(f);
	}
	fetch_finish(client, "OK", "STORE completed: nothing changed (every message is \\Seen)");
}
