#ifndef COFFER_AUDIT_H
#define COFFER_AUDIT_H
/* audit: an append-only, hash-chained audit log (one JSON object per line).
 *
 * Each line is {"time", "user", "address", "action", "details", "prev",
 * "hash"} where prev is the previous line's hash (64 zeros for the first)
 * and hash = SHA-256 over prev and the line's other fields as written. A
 * line that is changed, removed or reordered breaks the chain, and
 * audit_verify() names the first line that does not fit. Every append is
 * written with one write(); a write that fails half-way is cut off again,
 * so a full disk never leaves a torn line inside the chain.
 *
 * Two ways to open: audit_open() checks the whole chain first (a small log:
 * the Management Server's); audit_open_tail() checks only the last line (a
 * log that grows with every message read: an instance's), leaving the rest
 * to audit_verify() on request. Neither appends to a chain found damaged. */
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct json;
struct audit;

/* Open (creating it with mode 0600) and check the whole chain. A torn last
 * line (a crash mid-write) is cut off. */
int audit_open(const char *path, struct audit **audit_r, const char **error_r);
/* The same, checking only the last complete line (its hash covers it). */
int audit_open_tail(const char *path, struct audit **audit_r, const char **error_r);
void audit_close(struct audit **audit);

/* Append and fsync(). details may be NULL; it is copied. */
int audit_append(struct audit *audit, time_t when, const char *user, const char *address,
		 const char *action, const struct json *details, const char **error_r);
/* Append without fsync(): audit_sync() makes it durable (group commit). */
int audit_append_nosync(struct audit *audit, time_t when, const char *user, const char *address,
			const char *action, const struct json *details, const char **error_r);
/* fsync() what was appended; may run on another thread while appends go on
 * (not while audit_close() runs). */
int audit_sync(struct audit *audit, const char **error_r);

/* Bytes of complete lines written so far (for audit_foreach()'s limit). */
long long audit_size(struct audit *audit);

/* Each entry in order, the chain checked as it goes, one line in memory at
 * a time, up to `limit` bytes (-1: the whole file); cb (may be NULL)
 * returns false to stop early. Returns the number of lines read, or -1 with
 * *error_r naming the first bad line. A torn line is bad: to read a log
 * while it is appended to, pass audit_size() taken before as the limit. */
typedef bool audit_entry_cb(const struct json *entry, void *context);
long audit_foreach(const char *path, long long limit, audit_entry_cb *cb, void *context,
		   const char **error_r);

/* Check the whole chain: the number of lines, or -1 with *error_r. */
long audit_verify(const char *path, const char **error_r);

#endif
