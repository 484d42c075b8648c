#include "mgmt-auth-log.h"
#include "log.h"
#include "mem.h"
#include "tstr.h"

#include <event2/event.h>

struct mgmt_auth_log {
	struct event *window_end; /* pending while failures of a window are held back */
	time_t window_start;
	unsigned int logged;      /* failures logged one by one in this window */
	unsigned long suppressed; /* failures counted only */
	char *last_address;
	char *last_reason;
};

static void mgmt_auth_log_summary(struct mgmt_auth_log *log)
{
	if (log->suppressed > 0) {
		log_info(
			tstr_printf("conn=%s", log->last_address),
			"API authentication failed %lu more time(s) in %d s, not logged one by one "
			"(last: %s)",
			log->suppressed, MGMT_AUTH_LOG_WINDOW_SECS, log->last_reason);
	}
	log->suppressed = 0;
	log->logged = 0;
	log->window_start = 0;
	mem_free(log->last_address);
	mem_free(log->last_reason);
	log->last_address = log->last_reason = NULL;
}

static void mgmt_auth_log_window_end(evutil_socket_t fd, short events, void *ctx)
{
	mgmt_auth_log_summary(ctx);
}

struct mgmt_auth_log *mgmt_auth_log_create(struct event_base *base)
{
	struct mgmt_auth_log *log = mem_new(struct mgmt_auth_log);
	log->window_end = evtimer_new(base, mgmt_auth_log_window_end, log);
	return log;
}

void mgmt_auth_log_destroy(struct mgmt_auth_log **_log)
{
	struct mgmt_auth_log *log = *_log;
	if (log == NULL)
		return;
	mgmt_auth_log_summary(log);
	event_free(log->window_end);
	mem_free(log);
	*_log = NULL;
}

void mgmt_auth_log_failure(struct mgmt_auth_log *log, const char *address, const char *reason)
{
	time_t now = time(NULL);
	if (log->window_start == 0) {
		log->window_start = now;
		struct timeval tv = {MGMT_AUTH_LOG_WINDOW_SECS, 0};
		evtimer_add(log->window_end, &tv);
	}
	if (log->logged < MGMT_AUTH_LOG_BURST) {
		log->logged++;
		log_info(
			tstr_printf("conn=%s", address), "API authentication failed: %s%s", reason,
			log->logged == MGMT_AUTH_LOG_BURST
				? tstr_printf(" (further failures in the next %d s are summarised)",
					      MGMT_AUTH_LOG_WINDOW_SECS -
						      (int)(now - log->window_start))
				: "");
		return;
	}
	log->suppressed++;
	mem_free(log->last_address);
	mem_free(log->last_reason);
	log->last_address = mem_strdup(address);
	log->last_reason = mem_strdup(reason);
}
