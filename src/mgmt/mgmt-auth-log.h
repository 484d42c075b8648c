#ifndef COFFER_MGMT_AUTH_LOG_H
#define COFFER_MGMT_AUTH_LOG_H
/* mgmt-auth-log: the log lines of failed Management API logins, bounded.
 *
 * The first MGMT_AUTH_LOG_BURST failures of a minute are logged one line
 * each; the rest of that minute are counted and summarised in one line when
 * the minute ends (with the number, the last address and the last reason),
 * so a password-guessing flood cannot fill the disk with log lines while an
 * operator still sees that it happened and from where. */
#include <time.h>

struct event_base;
struct mgmt_auth_log;

#define MGMT_AUTH_LOG_BURST 10
#define MGMT_AUTH_LOG_WINDOW_SECS 60

struct mgmt_auth_log *mgmt_auth_log_create(struct event_base *base);
/* Logs the summary of a minute still open. */
void mgmt_auth_log_destroy(struct mgmt_auth_log **log);

/* One failed login from address (host:port) with the reason given to it. */
void mgmt_auth_log_failure(struct mgmt_auth_log *log, const char *address, const char *reason);

#endif
