/* Fuzz target: the role-to-role protocol decoder. The input is what a peer
 * sends after the TLS handshake; it is fed through an in-memory bufferevent
 * pair into a real rpc_conn, which must answer or close, never crash. */
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stddef.h>

#include "json.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_request(struct rpc_conn *conn, uint32_t id, const char *method,
			 const struct json *args, void *ctx)
{
	rpc_conn_reply(conn, id, json_clone(args));
}

static void fuzz_data(struct rpc_conn *conn, uint32_t id, const void *data, size_t size, bool last,
		      void *ctx)
{
}

static void fuzz_closed(struct rpc_conn *conn, const char *reason, void *ctx)
{
	*(bool *)ctx = true;
}

static const struct rpc_conn_callbacks fuzz_callbacks = {
	.request = fuzz_request,
	.data = fuzz_data,
	.closed = fuzz_closed,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event_base *base = event_base_new();
	struct bufferevent *pair[2];
	bool closed = false;
	if (base == NULL || bufferevent_pair_new(base, 0, pair) < 0)
		__builtin_trap();
	struct json *hello = json_new_object();
	struct rpc_conn *conn = rpc_conn_create(pair[0], hello, 1, &fuzz_callbacks, &closed);
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	bufferevent_write(pair[1], data, size);
	for (int i = 0; i < 8 && !closed; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	rpc_conn_destroy(&conn);
	bufferevent_free(pair[1]);
	json_unref(&hello);
	event_base_free(base);
	return 0;
}
