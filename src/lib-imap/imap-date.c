#include "imap-date.h"
#include "tstr.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days from 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil). */
int64_t imap_date_day_from_civil(int year, int month, int mday)
{
	int64_t y = year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + mday - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_day(int64_t z, int *year_r, int *month_r, int *mday_r)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*mday_r = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month_r = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year_r = (int)(yoe + era * 400 + (*month_r <= 2));
}

static int days_in_month(int year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

/* n digits at s into *value_r. */
static bool read_digits(const char *s, unsigned int n, int *value_r)
{
	int v = 0;
	for (unsigned int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*value_r = v;
	return true;
}

/* "d-Mon-yyyy" or "dd-Mon-yyyy" at *s; *s is moved past it. */
static bool parse_date_part(const char **s, bool space_pad, int64_t *day_r)
{
	const char *p = *s;
	int mday, year, month = -1;
	if (space_pad && p[0] == ' ' && read_digits(p + 1, 1, &mday))
		p += 2;
	else if (read_digits(p, 2, &mday))
		p += 2;
	else if (read_digits(p, 1, &mday))
		p += 1;
	else
		return false;
	if (*p++ != '-')
		return false;
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(p, month_names[i], 3) == 0)
			month = i + 1;
	}
	if (month < 0 || p[3] != '-' || !read_digits(p + 4, 4, &year))
		return false;
	if (mday < 1 || mday > days_in_month(year, month))
		return false;
	*day_r = imap_date_day_from_civil(year, month, mday);
	*s = p + 8;
	return true;
}

int imap_date_parse_day(const char *text, int64_t *day_r, const char **error_r)
{
	const char *p = text;
	if (!parse_date_part(&p, false, day_r) || *p != '\0') {
		*error_r = tstr_printf("invalid date \"%.40s\" (expected d-Mon-yyyy, "
				       "as in 1-Feb-2024)",
				       text);
		return -1;
	}
	return 0;
}

int imap_date_parse_datetime(const char *text, time_t *time_r, int *tz_minutes_r,
			     const char **error_r)
{
	const char *p = text;
	int64_t day;
	int h, m, s, tzh, tzm;
	if (!parse_date_part(&p, true, &day) || p[0] != ' ' || !read_digits(p + 1, 2, &h) ||
	    p[3] != ':' || !read_digits(p + 4, 2, &m) || p[6] != ':' ||
	    !read_digits(p + 7, 2, &s) || p[9] != ' ' || (p[10] != '+' && p[10] != '-') ||
	    !read_digits(p + 11, 2, &tzh) || !read_digits(p + 13, 2, &tzm) || p[15] != '\0' ||
	    h > 23 || m > 59 || s > 60 || tzm > 59) {
		*error_r = tstr_printf("invalid date-time \"%.40s\" (expected "
				       "dd-Mon-yyyy hh:mm:ss +hhmm)",
				       text);
		return -1;
	}
	int tz = (tzh * 60 + tzm) * (p[10] == '-' ? -1 : 1);
	*time_r = (time_t)(day * 86400 + h * 3600 + m * 60 + s - (int64_t)tz * 60);
	*tz_minutes_r = tz;
	return 0;
}

void imap_date_append_datetime(struct str *dest, time_t t, int tz_minutes)
{
	if (tz_minutes < -1439 || tz_minutes > 1439)
		tz_minutes = 0;
	int64_t local = (int64_t)t + (int64_t)tz_minutes * 60;
	int64_t day = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int64_t secs = local - day * 86400;
	int year, month, mday;
	civil_from_day(day, &year, &month, &mday);
	int tz_abs = tz_minutes < 0 ? -tz_minutes : tz_minutes;
	str_printfa(dest, "\"%2d-%s-%04d %02d:%02d:%02d %c%02d%02d\"", mday, month_names[month - 1],
		    year, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
		    tz_minutes < 0 ? '-' : '+', tz_abs / 60, tz_abs % 60);
}
