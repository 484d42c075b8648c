#ifndef COFFER_LOG_H
#define COFFER_LOG_H
/* log: one line per event for daemons (libraries never log).
 *
 * Line format:
 *   2026-11-22T13:30:00.123Z coffer[PID] ROLE LEVEL: [CONTEXT: ]MESSAGE
 * CONTEXT names the instance and/or connection ("instance=acme conn=127.0.0.1:4711").
 * Newlines and other control characters in the message are escaped so one
 * event is always one line. Never pass secrets. Until log_open_file() succeeds
 * lines go to stderr. */
#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARNING, LOG_LEVEL_ERROR };

void log_init(const char *role);
int log_open_file(const char *path, const char **error_r);
/* Reopen the file (after rotation); keeps the old one on failure. */
void log_reopen(void);
void log_set_min_level(enum log_level level);
void log_msg(enum log_level level, const char *context, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *context, const char *fmt, va_list args)
	__attribute__((format(printf, 3, 0)));

/* Events that can come by the thousand (connections refused by a limit):
 * the first is logged, then at most one line per every_secs, with the count
 * since the last line. True: log it now, *count_r events (this one
 * included) since the last line. Start zeroed. */
struct log_throttle {
	unsigned int count;
	long long last;
};
bool log_throttle_pass(struct log_throttle *t, unsigned int every_secs, unsigned int *count_r);

#define log_debug(ctx, ...) log_msg(LOG_LEVEL_DEBUG, ctx, __VA_ARGS__)
#define log_info(ctx, ...) log_msg(LOG_LEVEL_INFO, ctx, __VA_ARGS__)
#define log_warning(ctx, ...) log_msg(LOG_LEVEL_WARNING, ctx, __VA_ARGS__)
#define log_error(ctx, ...) log_msg(LOG_LEVEL_ERROR, ctx, __VA_ARGS__)

#endif
