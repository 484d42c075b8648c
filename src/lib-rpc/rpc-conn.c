/* rpc-conn: framing, calls, events, streams and keep-alive on one connection. */
#include "rpc.h"
#include "json.h"
#include "mem.h"
#include "tls.h"
#include "tstr.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#define RPC_FRAME_JSON 1
#define RPC_FRAME_DATA 2
#define RPC_FRAME_JSON_BLOB 3
#define RPC_DATA_CHUNK (1024 * 1024)
/* room made for the rest of a large frame on its way (rpc_conn_expect());
 * below malloc's mmap threshold, so the memory is reused */
#define RPC_READ_CHAIN (64 * 1024)
/* a frame missing more than this is large: room is made for it, and on a
 * plain link it is read ahead */
#define RPC_LARGE_REST (16 * 1024)
/* what rpc_conn_read_ahead() reads at most per wake-up */
#define RPC_READ_AHEAD (1024 * 1024)

struct rpc_pending_call {
	struct rpc_pending_call *next;
	uint32_t id;
	time_t deadline;
	rpc_answer_fn *answer;
	void *ctx;
};

struct rpc_conn {
	struct bufferevent *bev;
	struct event *timer;
	const struct rpc_conn_callbacks *callbacks;
	void *ctx;
	struct json *peer_hello;
	char fingerprint[TLS_FINGERPRINT_HEX_LEN + 1];
	char address[64];
	unsigned int keepalive_secs;
	time_t last_contact;
	time_t last_sent;
	uint32_t next_id;
	struct rpc_pending_call *pending;
	/* the blob of the answer being delivered (valid during its callback):
	 * moved out of the input buffer, never copied, so that a relay can
	 * pass it on as it came (rpc_conn_reply_blob_buffer()) */
	struct evbuffer *answer_blob;
	bool answer_has_blob;
	/* rpc_conn_when_drained(): called once the output is below the mark */
	void (*drained)(void *ctx);
	void *drained_ctx;
	bool reading_paused;
	bool closing;
	unsigned int unanswered; /* calls received, minus answers sent */
	int plain_fd;            /* the socket of a link without TLS, else -1 */
	/* a local link (rpc-local.c): the peer's hello says who it is */
	bool local;
	bool (*local_check)(const char *peer_fingerprint, void *ctx);
	void *local_ctx;
	struct json *local_hello; /* ours, sent once the peer's was accepted */
	char *local_fingerprint;
};

static void rpc_conn_close(struct rpc_conn *conn, const char *reason);
static void rpc_conn_send_hello(struct rpc_conn *conn, const struct json *hello,
				const char *local_fingerprint);

/* Call the drained callback once (the output drained, or the connection
 * ends: whoever waits must not wait for ever). */
static void rpc_conn_notify_drained(struct rpc_conn *conn)
{
	void (*fn)(void *) = conn->drained;
	if (fn == NULL)
		return;
	conn->drained = NULL;
	bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
	fn(conn->drained_ctx);
}

static void rpc_conn_send_frame(struct rpc_conn *conn, uint8_t type, const void *head,
				size_t head_len, const void *data, size_t len)
{
	size_t total = 1 + head_len + len;
	unsigned char prefix[5] = {(unsigned char)(total >> 24), (unsigned char)(total >> 16),
				   (unsigned char)(total >> 8), (unsigned char)total, type};
	struct evbuffer *out = bufferevent_get_output(conn->bev);
	evbuffer_add(out, prefix, sizeof(prefix));
	if (head_len > 0)
		evbuffer_add(out, head, head_len);
	if (len > 0)
		evbuffer_add(out, data, len);
	conn->last_sent = time(NULL);
}

static void rpc_conn_send_json(struct rpc_conn *conn, struct json *msg)
{
	char *text = json_serialize(msg, false);
	rpc_conn_send_frame(conn, RPC_FRAME_JSON, NULL, 0, text, strlen(text));
	mem_free(text);
	json_unref(&msg);
}

static void rpc_conn_answer_pending(struct rpc_conn *conn, uint32_t id, const struct json *result,
				    const char *code, const char *text)
{
	for (struct rpc_pending_call **p = &conn->pending; *p != NULL; p = &(*p)->next) {
		if ((*p)->id != id)
			continue;
		struct rpc_pending_call *call = *p;
		*p = call->next;
		call->answer(conn, result, code, text, call->ctx);
		mem_free(call);
		return;
	}
	/* An answer to a call that already timed out: nothing waits for it. */
}

static void rpc_conn_handle_hello(struct rpc_conn *conn, const struct json *hello)
{
	long long version = 0;
	if (json_get_int(hello, "protocol", &version) != 1 || version != RPC_PROTOCOL_VERSION) {
		rpc_conn_close(
			conn,
			tstr_printf("incompatible protocol version %lld (this side speaks %d)",
				    version, RPC_PROTOCOL_VERSION));
		return;
	}
	if (conn->peer_hello != NULL) {
		rpc_conn_close(conn, "protocol error: second hello");
		return;
	}
	if (conn->local) {
		const char *fp = json_get_string(hello, "localFingerprint");
		char canonical[TLS_FINGERPRINT_HEX_LEN + 1];
		const char *error;
		if (fp == NULL || tls_fingerprint_normalize(fp, canonical, &error) < 0 ||
		    !conn->local_check(canonical, conn->local_ctx)) {
			rpc_conn_close(conn, tstr_printf("local peer refused: fingerprint %s",
							 fp == NULL ? "missing" : fp));
			return;
		}
		memcpy(conn->fingerprint, canonical, sizeof(conn->fingerprint));
		if (conn->local_hello != NULL) {
			rpc_conn_send_hello(conn, conn->local_hello, conn->local_fingerprint);
			json_unref(&conn->local_hello);
		}
	}
	conn->peer_hello = json_clone(hello);
	if (conn->callbacks->ready != NULL)
		conn->callbacks->ready(conn, conn->peer_hello, conn->ctx);
}

static void rpc_conn_handle_call(struct rpc_conn *conn, long long id, const struct json *msg)
{
	const char *method = json_get_string(msg, "call");
	const struct json *args = json_get(msg, "args");
	conn->unanswered++;
	if (method == NULL || (args != NULL && json_kind(args) != JSON_KIND_OBJECT)) {
		rpc_conn_reply_error(conn, (uint32_t)id, "bad-request",
				     "a call needs a method name and an args object");
		return;
	}
	struct json *empty = NULL;
	if (args == NULL)
		args = empty = json_new_object();
	conn->callbacks->request(conn, (uint32_t)id, method, args, conn->ctx);
	json_unref(&empty);
}

static void rpc_conn_handle_json(struct rpc_conn *conn, const char *text, size_t len, bool has_blob)
{
	struct json *msg;
	const char *error;
	if (json_parse(text, len, &msg, &error) < 0) {
		rpc_conn_close(conn, tstr_printf("protocol error: %s", error));
		return;
	}
	if (json_kind(msg) != JSON_KIND_OBJECT) {
		json_unref(&msg);
		rpc_conn_close(conn, "protocol error: a message must be a JSON object");
		return;
	}
	long long id = -1, ping;
	const struct json *hello = json_get(msg, "hello");
	bool has_id = json_get_int(msg, "id", &id) == 1 && id >= 0 && id <= UINT32_MAX;
	if (hello != NULL) {
		rpc_conn_handle_hello(conn, hello);
	} else if (conn->peer_hello == NULL) {
		rpc_conn_close(conn, "protocol error: message before hello");
	} else if (json_get_int(msg, "ping", &ping) == 1) {
		struct json *pong = json_new_object();
		json_set_int(pong, "pong", ping);
		rpc_conn_send_json(conn, pong);
	} else if (json_get(msg, "pong") != NULL) {
		/* last_contact was updated already */
	} else if (json_get_string(msg, "event") != NULL) {
		if (conn->callbacks->event != NULL)
			conn->callbacks->event(conn, json_get_string(msg, "event"),
					       json_get(msg, "data"), conn->ctx);
	} else if (has_id && json_get(msg, "call") != NULL) {
		rpc_conn_handle_call(conn, id, msg);
	} else if (has_id && json_get(msg, "error") != NULL) {
		const struct json *e = json_get(msg, "error");
		const char *code = json_get_string(e, "code"), *m = json_get_string(e, "message");
		rpc_conn_answer_pending(conn, (uint32_t)id, NULL, code == NULL ? "error" : code,
					m == NULL ? "unspecified error" : m);
	} else if (has_id && json_get(msg, "result") != NULL) {
		conn->answer_has_blob = has_blob;
		rpc_conn_answer_pending(conn, (uint32_t)id, json_get(msg, "result"), NULL, NULL);
		conn->answer_has_blob = false;
	} else if (has_blob) {
		rpc_conn_close(conn, "protocol error: a blob belongs to an answer");
	} else {
		rpc_conn_close(conn, "protocol error: unknown message");
	}
	json_unref(&msg);
}

static void rpc_conn_handle_data(struct rpc_conn *conn, const unsigned char *p, size_t len)
{
	if (len < 5 || conn->peer_hello == NULL) {
		rpc_conn_close(conn, "protocol error: bad data frame");
		return;
	}
	uint32_t id = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	bool last = (p[4] & 1) != 0;
	if (conn->callbacks->data == NULL) {
		rpc_conn_close(conn, "protocol error: this side takes no streams");
		return;
	}
	conn->callbacks->data(conn, id, p + 5, len - 5, last, conn->ctx);
}

/* A JSON answer with a binary payload: 4-byte JSON length, JSON, blob. The
 * frame (len bytes after the prefix, its type byte first) is still in `in`:
 * the JSON is copied out, the blob moved into answer_blob (evbuffer chains
 * change hands, the bytes are not copied), and the frame drained. */
static void rpc_conn_handle_json_blob(struct rpc_conn *conn, struct evbuffer *in, size_t len)
{
	unsigned char head[5];
	if (len < 5 || evbuffer_copyout(in, head, 5) != 5) {
		rpc_conn_close(conn, "protocol error: bad blob frame");
		return;
	}
	size_t json_len =
		(size_t)head[1] << 24 | (size_t)head[2] << 16 | (size_t)head[3] << 8 | head[4];
	if (json_len > len - 5) {
		rpc_conn_close(conn, "protocol error: bad blob frame");
		return;
	}
	char *text = mem_alloc(json_len + 1);
	evbuffer_drain(in, 5);
	evbuffer_remove(in, text, json_len);
	evbuffer_drain(conn->answer_blob, evbuffer_get_length(conn->answer_blob));
	evbuffer_remove_buffer(in, conn->answer_blob, len - 5 - json_len);
	rpc_conn_handle_json(conn, text, json_len, true);
	mem_free(text);
	if (!conn->closing)
		evbuffer_drain(conn->answer_blob, evbuffer_get_length(conn->answer_blob));
}

/* A large frame is on its way: room for the rest of it (up to
 * RPC_READ_CHAIN) in one chain, which the coming reads fill, instead of the
 * few-KiB chain each read would make. A relay passes a blob on in the chains
 * it came in, and over TLS each chain becomes a record and a write of its
 * own (and a read of its own on the other side). */
static void rpc_conn_expect(struct evbuffer *in, size_t missing)
{
	if (missing > RPC_LARGE_REST)
		(void)evbuffer_expand(in, missing < RPC_READ_CHAIN ? missing : RPC_READ_CHAIN);
}

/* libevent 2.1 reads a socket at most 4 KiB per wake-up (EVBUFFER_MAX_READ):
 * an instance's answers reached its Instance Host in 150,000 reads and as
 * many trips through the event loop for one FETCH of a large folder. While
 * a large frame is incomplete on a link without TLS, the rest of it is read
 * here at once, up to RPC_READ_AHEAD; true if anything came. End of file
 * and errors are left to the bufferevent, whose next read meets them. */
static bool rpc_conn_read_ahead(struct rpc_conn *conn, struct evbuffer *in, size_t missing)
{
	if (conn->plain_fd < 0 || missing <= RPC_LARGE_REST)
		return false;
	size_t budget = missing < RPC_READ_AHEAD ? missing : RPC_READ_AHEAD, got_total = 0;
	/* a bufferevent keeps the end of its input frozen between its own
	 * reads: thawed for ours, as it does for its */
	evbuffer_unfreeze(in, 0);
	while (got_total < budget) {
		size_t want =
			budget - got_total < RPC_READ_CHAIN ? budget - got_total : RPC_READ_CHAIN;
		struct evbuffer_iovec vec[2];
		int n = evbuffer_reserve_space(in, (ev_ssize_t)want, vec, 2);
		if (n <= 0)
			break;
		struct iovec iov[2];
		size_t room = 0;
		for (int i = 0; i < n; i++) {
			iov[i].iov_base = vec[i].iov_base;
			iov[i].iov_len = vec[i].iov_len;
			room += vec[i].iov_len;
		}
		ssize_t got = readv(conn->plain_fd, iov, n);
		if (got <= 0) {
			(void)evbuffer_commit_space(in, NULL, 0);
			break;
		}
		size_t left = (size_t)got;
		for (int i = 0; i < n; i++) {
			vec[i].iov_len = left < vec[i].iov_len ? left : vec[i].iov_len;
			left -= vec[i].iov_len;
		}
		(void)evbuffer_commit_space(in, vec, n);
		got_total += (size_t)got;
		if ((size_t)got < room)
			break; /* the socket is empty for now */
	}
	evbuffer_freeze(in, 0);
	return got_total > 0;
}

static void rpc_conn_read(struct bufferevent *bev, void *ctx)
{
	struct rpc_conn *conn = ctx;
	struct evbuffer *in = bufferevent_get_input(bev);
	conn->last_contact = time(NULL);
	while (!conn->closing && !conn->reading_paused && evbuffer_get_length(in) >= 4) {
		unsigned char prefix[4];
		evbuffer_copyout(in, prefix, 4);
		size_t len = (size_t)prefix[0] << 24 | (size_t)prefix[1] << 16 |
			     (size_t)prefix[2] << 8 | prefix[3];
		if (len == 0 || len > RPC_MAX_FRAME + 5) {
			rpc_conn_close(conn,
				       tstr_printf("protocol error: frame of %zu bytes", len));
			return;
		}
		if (evbuffer_get_length(in) < 4 + len) {
			size_t missing = 4 + len - evbuffer_get_length(in);
			if (rpc_conn_read_ahead(conn, in, missing))
				continue;
			rpc_conn_expect(in, missing);
			return;
		}
		evbuffer_drain(in, 4);
		unsigned char type;
		evbuffer_copyout(in, &type, 1);
		if (type == RPC_FRAME_JSON_BLOB) {
			/* drains the frame itself, before its callback */
			rpc_conn_handle_json_blob(conn, in, len);
			continue;
		}
		unsigned char *frame = evbuffer_pullup(in, (ev_ssize_t)len);
		if (frame[0] == RPC_FRAME_JSON)
			rpc_conn_handle_json(conn, (const char *)frame + 1, len - 1, false);
		else if (frame[0] == RPC_FRAME_DATA)
			rpc_conn_handle_data(conn, frame + 1, len - 1);
		else
			rpc_conn_close(conn,
				       tstr_printf("protocol error: frame type %u", frame[0]));
		if (conn->closing)
			return;
		evbuffer_drain(in, len);
	}
}

static void rpc_conn_event_cb(struct bufferevent *bev, short events, void *ctx)
{
	struct rpc_conn *conn = ctx;
	if ((events & BEV_EVENT_EOF) != 0) {
		rpc_conn_close(conn, "closed by peer");
	} else if ((events & BEV_EVENT_ERROR) != 0) {
		const char *text;
		/* With TLS 1.3 a client learns that the server refused its
		 * certificate only here, on its first read after the handshake:
		 * say so, so that the link shows refusedByPeer, not unreachable. */
		if (tls_bufferevent_failure(bev, &text) == TLS_FAILURE_REFUSED_BY_PEER &&
		    conn->peer_hello == NULL)
			rpc_conn_close(conn,
				       tstr_printf("%s: %s", RPC_REFUSED_BY_PEER_REASON, text));
		else
			rpc_conn_close(conn, tstr_printf("connection error: %s", text));
	}
}

/* The output went below the mark set by rpc_conn_when_drained(). */
static void rpc_conn_write(struct bufferevent *bev, void *ctx)
{
	struct rpc_conn *conn = ctx;
	rpc_conn_notify_drained(conn);
}

static void rpc_conn_timer(evutil_socket_t fd, short events, void *ctx)
{
	struct rpc_conn *conn = ctx;
	time_t now = time(NULL);
	/* Expire calls first: each gets its one answer. */
	for (struct rpc_pending_call **p = &conn->pending; *p != NULL;) {
		struct rpc_pending_call *call = *p;
		if (call->deadline > now) {
			p = &call->next;
			continue;
		}
		*p = call->next;
		call->answer(conn, NULL, "timeout", "the peer did not answer in time", call->ctx);
		mem_free(call);
	}
	if (conn->closing)
		return;
	if (conn->reading_paused)
		conn->last_contact = now; /* not silence: this side chose not to read */
	if (now - conn->last_contact > (time_t)conn->keepalive_secs * 3) {
		rpc_conn_close(conn,
			       tstr_printf("peer silent for %u seconds", conn->keepalive_secs * 3));
		return;
	}
	if (conn->peer_hello != NULL && now - conn->last_sent >= (time_t)conn->keepalive_secs) {
		struct json *ping = json_new_object();
		json_set_int(ping, "ping", (long long)now);
		rpc_conn_send_json(conn, ping);
	}
}

static struct rpc_conn *rpc_conn_new(struct bufferevent *bev, unsigned int keepalive_secs,
				     const struct rpc_conn_callbacks *callbacks, void *ctx)
{
	struct rpc_conn *conn = mem_new(struct rpc_conn);
	conn->bev = bev;
	conn->callbacks = callbacks;
	conn->ctx = ctx;
	conn->keepalive_secs = keepalive_secs == 0 ? RPC_DEFAULT_KEEPALIVE_SECS : keepalive_secs;
	conn->last_contact = conn->last_sent = time(NULL);
	conn->next_id = 1;
	if (!tls_bufferevent_peer_fingerprint(bev, conn->fingerprint))
		conn->fingerprint[0] = '\0';
	/* read ahead only from a socket that never blocks */
	int fd = (int)bufferevent_getfd(bev);
	conn->plain_fd =
		tls_bufferevent_is_tls(bev) || fd < 0 || (fcntl(fd, F_GETFL) & O_NONBLOCK) == 0
			? -1
			: fd;
	/* on a plain link, frames of up to a MiB go out in few writes, not in
	 * libevent's 16 KiB steps (a TLS link writes a record at a time) */
	if (conn->plain_fd >= 0)
		(void)bufferevent_set_max_single_write(bev, RPC_READ_AHEAD);
	snprintf(conn->address, sizeof(conn->address), "%s",
		 netaddr_peer_str((int)bufferevent_getfd(bev)));
	conn->answer_blob = evbuffer_new();
	bufferevent_setcb(bev, rpc_conn_read, rpc_conn_write, rpc_conn_event_cb, conn);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* A third of the keep-alive period: idle links (a thousand instances)
	 * should not wake their processes every second. */
	struct timeval period = {conn->keepalive_secs >= 3 ? conn->keepalive_secs / 3 : 1, 0};
	conn->timer = event_new(bufferevent_get_base(bev), -1, EV_PERSIST, rpc_conn_timer, conn);
	event_add(conn->timer, &period);
	return conn;
}

static void rpc_conn_send_hello(struct rpc_conn *conn, const struct json *hello,
				const char *local_fingerprint)
{
	struct json *msg = json_new_object();
	struct json *h = json_clone(hello);
	json_set_int(h, "protocol", RPC_PROTOCOL_VERSION);
	if (local_fingerprint != NULL)
		json_set_string(h, "localFingerprint", local_fingerprint);
	json_set(msg, "hello", h);
	rpc_conn_send_json(conn, msg);
}

struct rpc_conn *rpc_conn_create(struct bufferevent *bev, const struct json *hello,
				 unsigned int keepalive_secs,
				 const struct rpc_conn_callbacks *callbacks, void *ctx)
{
	struct rpc_conn *conn = rpc_conn_new(bev, keepalive_secs, callbacks, ctx);
	rpc_conn_send_hello(conn, hello, NULL);
	return conn;
}

struct rpc_conn *rpc_conn_create_local(struct bufferevent *bev, const struct json *hello,
				       unsigned int keepalive_secs,
				       const struct rpc_local_identity *identity, bool hello_first,
				       const struct rpc_conn_callbacks *callbacks, void *ctx)
{
	struct rpc_conn *conn = rpc_conn_new(bev, keepalive_secs, callbacks, ctx);
	conn->local = true;
	conn->local_check = identity->check;
	conn->local_ctx = identity->ctx;
	conn->local_fingerprint = mem_strdup(identity->fingerprint);
	if (hello_first)
		rpc_conn_send_hello(conn, hello, identity->fingerprint);
	else
		conn->local_hello = json_clone(hello);
	return conn;
}

bool rpc_conn_is_local(const struct rpc_conn *conn)
{
	return conn->local;
}

static void rpc_conn_fail_pending(struct rpc_conn *conn, const char *reason)
{
	while (conn->pending != NULL) {
		struct rpc_pending_call *call = conn->pending;
		conn->pending = call->next;
		call->answer(conn, NULL, "closed", reason, call->ctx);
		mem_free(call);
	}
}

static void rpc_conn_close(struct rpc_conn *conn, const char *reason)
{
	if (conn->closing)
		return;
	conn->closing = true;
	char *saved = mem_strdup(reason);
	bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
	event_del(conn->timer);
	rpc_conn_fail_pending(conn, saved);
	rpc_conn_notify_drained(conn);
	if (conn->callbacks->closed != NULL)
		conn->callbacks->closed(conn, saved, conn->ctx);
	mem_free(saved);
}

void rpc_conn_destroy(struct rpc_conn **conn)
{
	struct rpc_conn *c = *conn;
	if (c == NULL)
		return;
	c->closing = true;
	rpc_conn_fail_pending(c, "connection destroyed");
	c->drained = NULL; /* its owner is going away too */
	event_free(c->timer);
	evbuffer_free(c->answer_blob);
	bufferevent_free(c->bev);
	json_unref(&c->peer_hello);
	json_unref(&c->local_hello);
	mem_free(c->local_fingerprint);
	mem_free(c);
	*conn = NULL;
}

void rpc_conn_call(struct rpc_conn *conn, const char *method, struct json *args,
		   unsigned int timeout_secs, rpc_answer_fn *answer, void *answer_ctx)
{
	if (conn->closing) {
		json_unref(&args);
		answer(conn, NULL, "closed", "connection is closing", answer_ctx);
		return;
	}
	struct rpc_pending_call *call = mem_new(struct rpc_pending_call);
	call->id = conn->next_id++;
	call->deadline = time(NULL) + (timeout_secs == 0 ? 30 : timeout_secs);
	call->answer = answer;
	call->ctx = answer_ctx;
	call->next = conn->pending;
	conn->pending = call;
	struct json *msg = json_new_object();
	json_set_int(msg, "id", call->id);
	json_set_string(msg, "call", method);
	json_set(msg, "args", args != NULL ? args : json_new_object());
	rpc_conn_send_json(conn, msg);
}

static void rpc_conn_answered(struct rpc_conn *conn)
{
	if (conn->unanswered > 0)
		conn->unanswered--;
}

unsigned int rpc_conn_unanswered(const struct rpc_conn *conn)
{
	return conn->unanswered;
}

void rpc_conn_reply(struct rpc_conn *conn, uint32_t id, struct json *result)
{
	rpc_conn_answered(conn);
	struct json *msg = json_new_object();
	json_set_int(msg, "id", id);
	json_set(msg, "result", result != NULL ? result : json_new_null());
	if (!conn->closing)
		rpc_conn_send_json(conn, msg);
	else
		json_unref(&msg);
}

void rpc_conn_reply_blob(struct rpc_conn *conn, uint32_t id, struct json *result, const void *blob,
			 size_t blob_len)
{
	/* one framing for both: the bytes go into the output once either way */
	struct evbuffer *buf = evbuffer_new();
	if (blob_len > 0)
		evbuffer_add(buf, blob, blob_len);
	rpc_conn_reply_blob_buffer(conn, id, result, buf);
	evbuffer_free(buf);
}

void rpc_conn_reply_blob_buffer(struct rpc_conn *conn, uint32_t id, struct json *result,
				struct evbuffer *blob)
{
	rpc_conn_answered(conn);
	struct json *msg = json_new_object();
	json_set_int(msg, "id", id);
	json_set(msg, "result", result != NULL ? result : json_new_null());
	char *text = json_serialize(msg, false);
	json_unref(&msg);
	size_t text_len = strlen(text), blob_len = evbuffer_get_length(blob);
	if (!conn->closing) {
		unsigned char head[4] = {(unsigned char)(text_len >> 24),
					 (unsigned char)(text_len >> 16),
					 (unsigned char)(text_len >> 8), (unsigned char)text_len};
		struct evbuffer *out = bufferevent_get_output(conn->bev);
		size_t total = 1 + sizeof(head) + text_len + blob_len;
		unsigned char prefix[5] = {
			(unsigned char)(total >> 24), (unsigned char)(total >> 16),
			(unsigned char)(total >> 8), (unsigned char)total, RPC_FRAME_JSON_BLOB};
		evbuffer_add(out, prefix, sizeof(prefix));
		evbuffer_add(out, head, sizeof(head));
		evbuffer_add(out, text, text_len);
		evbuffer_add_buffer(out, blob);
		conn->last_sent = time(NULL);
	} else {
		evbuffer_drain(blob, blob_len);
	}
	mem_free(text);
}

const void *rpc_conn_answer_blob(const struct rpc_conn *conn, size_t *len_r)
{
	*len_r = conn->answer_has_blob ? evbuffer_get_length(conn->answer_blob) : 0;
	if (!conn->answer_has_blob)
		return NULL;
	/* one contiguous copy only where a caller needs it (a relay does not) */
	return *len_r == 0 ? (const void *)"" : evbuffer_pullup(conn->answer_blob, -1);
}

struct evbuffer *rpc_conn_answer_blob_buffer(const struct rpc_conn *conn)
{
	return conn->answer_has_blob ? conn->answer_blob : NULL;
}

size_t rpc_conn_output_len(const struct rpc_conn *conn)
{
	return evbuffer_get_length(bufferevent_get_output(conn->bev));
}

void rpc_conn_when_drained(struct rpc_conn *conn, size_t below, void (*fn)(void *ctx), void *ctx)
{
	if (conn->closing || rpc_conn_output_len(conn) <= below) {
		fn(ctx);
		return;
	}
	conn->drained = fn;
	conn->drained_ctx = ctx;
	bufferevent_setwatermark(conn->bev, EV_WRITE, below, 0);
}

void rpc_conn_pause_reading(struct rpc_conn *conn, bool paused)
{
	if (conn->reading_paused == paused || conn->closing)
		return;
	conn->reading_paused = paused;
	if (paused) {
		bufferevent_disable(conn->bev, EV_READ);
		return;
	}
	bufferevent_enable(conn->bev, EV_READ);
	/* frames may wait in the input buffer already: read them from the
	 * loop, not from inside the caller's callback */
	bufferevent_trigger(conn->bev, EV_READ,
			    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void rpc_conn_reply_error(struct rpc_conn *conn, uint32_t id, const char *code, const char *text)
{
	rpc_conn_answered(conn);
	struct json *msg = json_new_object(), *e = json_new_object();
	json_set_int(msg, "id", id);
	json_set_string(e, "code", code);
	json_set_string(e, "message", text);
	json_set(msg, "error", e);
	if (!conn->closing)
		rpc_conn_send_json(conn, msg);
	else
		json_unref(&msg);
}

void rpc_conn_event(struct rpc_conn *conn, const char *name, struct json *data)
{
	struct json *msg = json_new_object();
	json_set_string(msg, "event", name);
	json_set(msg, "data", data != NULL ? data : json_new_object());
	if (!conn->closing)
		rpc_conn_send_json(conn, msg);
	else
		json_unref(&msg);
}

void rpc_conn_send_data(struct rpc_conn *conn, uint32_t id, const void *data, size_t size,
			bool last)
{
	const unsigned char *p = data;
	do {
		size_t n = size > RPC_DATA_CHUNK ? RPC_DATA_CHUNK : size;
		bool final = last && n == size;
		unsigned char head[5] = {(unsigned char)(id >> 24), (unsigned char)(id >> 16),
					 (unsigned char)(id >> 8), (unsigned char)id,
					 final ? 1 : 0};
		rpc_conn_send_frame(conn, RPC_FRAME_DATA, head, sizeof(head), p, n);
		p += n;
		size -= n;
	} while (size > 0);
}

bool rpc_conn_is_ready(const struct rpc_conn *conn)
{
	return conn->peer_hello != NULL && !conn->closing;
}

time_t rpc_conn_last_contact(const struct rpc_conn *conn)
{
	return conn->last_contact;
}

const char *rpc_conn_peer_fingerprint(const struct rpc_conn *conn)
{
	return conn->fingerprint;
}

const char *rpc_conn_peer_address(const struct rpc_conn *conn)
{
	return conn->address;
}

const struct json *rpc_conn_peer_hello(const struct rpc_conn *conn)
{
	return conn->peer_hello;
}

void rpc_conn_set_context(struct rpc_conn *conn, void *ctx)
{
	conn->ctx = ctx;
}

void *rpc_conn_get_context(const struct rpc_conn *conn)
{
	return conn->ctx;
}
