#ifndef COFFER_IMAP_DATE_H
#define COFFER_IMAP_DATE_H
/* imap-date: IMAP dates ("1-Feb-2024", SEARCH) and date-times
 * ("22-Nov-2026 13:16:26 +0000", INTERNALDATE and APPEND).
 *
 * Contract: parsers return 0, or -1 with *error_r naming the text and the
 * accepted form. Month names are case-insensitive; the day may have one or two
 * digits (a date-time's single-digit day may also be space-padded); the day must
 * exist in its month; years are 4 digits. A day is counted from 1970-01-01
 * (day 0; negative before). Time zones are minutes east of UTC, -1439..1439. */
#include <stdint.h>
#include <time.h>

#include "str.h"

int imap_date_parse_day(const char *text, int64_t *day_r, const char **error_r);
int imap_date_parse_datetime(const char *text, time_t *time_r, int *tz_minutes_r,
			     const char **error_r);
/* Append "\"dd-Mon-yyyy hh:mm:ss +hhmm\"" (day space-padded) for t in the
 * zone tz_minutes east of UTC. */
void imap_date_append_datetime(struct str *dest, time_t t, int tz_minutes);
/* The day (since 1970-01-01) of a calendar date, no checks. */
int64_t imap_date_day_from_civil(int year, int month, int mday);

#endif
