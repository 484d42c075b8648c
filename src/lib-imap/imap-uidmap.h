#ifndef COFFER_IMAP_UIDMAP_H
#define COFFER_IMAP_UIDMAP_H
/* imap-uidmap: a selected mailbox's message sequence numbers and UIDs,
 * kept as runs of consecutive UIDs, so a folder of 84,000 messages imported
 * in one go costs a few bytes, not 4 bytes a message (a thousand idle
 * sessions must stay small).
 *
 * Contract: built from ascending UIDs (imap_uidmap_append(), or a sequence
 * set text such as "1:500,731"); UIDs only grow (a read-only archive has no
 * expunges). Sequence numbers are 1..count. Lookups are O(log runs). */
#include <stdbool.h>
#include <stdint.h>

struct imap_uidmap;

struct imap_uidmap *imap_uidmap_create(void);
void imap_uidmap_destroy(struct imap_uidmap **map);

/* Append UIDs from an ascending sequence set text; -1 with *error_r if the
 * text is not one or does not continue above the current highest UID. */
int imap_uidmap_append_set(struct imap_uidmap *map, const char *set, const char **error_r);
/* Append one UID (must be above the highest): false if it is not. */
bool imap_uidmap_append(struct imap_uidmap *map, uint32_t uid);

uint32_t imap_uidmap_count(const struct imap_uidmap *map);
uint32_t imap_uidmap_max_uid(const struct imap_uidmap *map); /* 0 if empty */
/* The UID of sequence number seq (1-based), 0 if out of range. */
uint32_t imap_uidmap_uid(const struct imap_uidmap *map, uint32_t seq);
/* The sequence number of uid, 0 if not in the mailbox. */
uint32_t imap_uidmap_seq(const struct imap_uidmap *map, uint32_t uid);
/* The first sequence number whose UID is >= uid (count + 1 if none). */
uint32_t imap_uidmap_seq_at_or_after(const struct imap_uidmap *map, uint32_t uid);

#endif
