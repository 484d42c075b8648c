#ifndef COFFER_AUDIT_H
#define COFFER_AUDIT_H
/* audit: an append-only, hash-chained audit log (one JSON object per line).
 *
 * Each line is {"time", "user", "address", "action", "details", "prev",
 * "hash"} where prev is the previous line's hash (64 zeros for the first)
 * and hash = SHA-256 over prev and the line's other fields as written. A
 * line that is changed, removed or reordered breaks the chain, and
 * audit_verify() names the first line that does not fit. Every append is
 * written with one write() and fsync()ed before it returns. */
#include <stddef.h>
#include <time.h>

struct json;
struct audit;

/* Open (creating it with mode 0600) and read the last hash, verifying the
 * tail line. A torn last line (a crash mid-write) is cut off. */
int audit_open(const char *path, struct audit **audit_r, const char **error_r);
void audit_close(struct audit **audit);

/* details may be NULL; it is copied. */
int audit_append(struct audit *audit, time_t when, const char *user, const char *address,
		 const char *action, const struct json *details, const char **error_r);

/* Check the whole chain: returns the number of lines, or -1 with *error_r
 * naming the first bad line. */
long audit_verify(const char *path, const char **error_r);

#endif
