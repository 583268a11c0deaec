/* timeutil: clocks, civil-date arithmetic and RFC 3339.
 *
 * Civil conversions work on a calendar whose year starts on 1 March, so the
 * leap day is the last day of the "year" and month lengths from March on
 * follow a fixed 5-month pattern (31,30,31,30,31), which a linear formula
 * (153 * month + 2) / 5 reproduces. Years are grouped into 400-year eras of
 * exactly 146097 days; inside an era the leap rules are plain divisions.
 * No libc time zone code (gmtime/localtime) is used. */
#include "core/timeutil.h"

#include <stdint.h>

#define US_PER_SEC INT64_C(1000000)
#define SEC_PER_DAY INT64_C(86400)
#define US_PER_DAY (US_PER_SEC * SEC_PER_DAY)
#define DAYS_PER_ERA INT64_C(146097)
/* Days from 0000-03-01 to 1970-01-01. */
#define EPOCH_SHIFT INT64_C(719468)

static int64_t clock_us(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t time_now_us(void)
{
	return clock_us(CLOCK_REALTIME);
}

int64_t time_mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

/* Floor division for a negative-capable numerator and positive divisor. */
static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b) != 0 && a < 0)
		q--;
	return q;
}

int64_t time_days_from_civil(int y, unsigned m, unsigned d)
{
	/* Move Jan/Feb to the end of the previous March-based year. */
	int64_t year = (int64_t)y - (m <= 2 ? 1 : 0);
	unsigned mar_month = m > 2 ? m - 3 : m + 9;          /* 0 = March */
	int64_t era = floor_div(year, 400);
	int64_t year_of_era = year - era * 400;              /* [0, 399] */
	int64_t day_of_year = (153 * (int64_t)mar_month + 2) / 5 + (int64_t)d - 1;
	int64_t day_of_era = year_of_era * 365 + year_of_era / 4 -
			     year_of_era / 100 + day_of_year;

	return era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT;
}

void time_civil_from_days(int64_t days, int *y, unsigned *m, unsigned *d)
{
	int64_t z = days + EPOCH_SHIFT;
	int64_t era = floor_div(z, DAYS_PER_ERA);
	int64_t day_of_era = z - era * DAYS_PER_ERA;         /* [0, 146096] */
	/* Remove the leap days before this day, then divide by 365. */
	int64_t year_of_era = (day_of_era - day_of_era / 1460 +
			       day_of_era / 36524 - day_of_era / 146096) / 365;
	int64_t day_of_year = day_of_era -
			      (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	int64_t mar_month = (5 * day_of_year + 2) / 153;     /* 0 = March */
	unsigned month = (unsigned)(mar_month < 10 ? mar_month + 3 : mar_month - 9);

	*d = (unsigned)(day_of_year - (153 * mar_month + 2) / 5 + 1);
	*m = month;
	*y = (int)(year_of_era + era * 400 + (month <= 2 ? 1 : 0));
}

struct civil_time {
	int year;
	unsigned month, day;
	int hour, min, sec;
	int64_t frac_us;
};

static void split_us(int64_t us, struct civil_time *ct)
{
	int64_t days = floor_div(us, US_PER_DAY);
	int64_t in_day = us - days * US_PER_DAY;             /* [0, US_PER_DAY) */
	int64_t secs = in_day / US_PER_SEC;

	time_civil_from_days(days, &ct->year, &ct->month, &ct->day);
	ct->frac_us = in_day % US_PER_SEC;
	ct->hour = (int)(secs / 3600);
	ct->min = (int)(secs / 60 % 60);
	ct->sec = (int)(secs % 60);
}

char *time_format_rfc3339(int64_t us, char *buf, size_t len)
{
	struct civil_time ct;
	int n;

	if (buf == NULL || len == 0)
		return buf;
	split_us(us, &ct);
	if (ct.frac_us != 0)
		n = snprintf(buf, len, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ",
			     ct.year, ct.month, ct.day, ct.hour, ct.min, ct.sec,
			     (long long)ct.frac_us);
	else
		n = snprintf(buf, len, "%04d-%02u-%02uT%02d:%02d:%02dZ", ct.year,
			     ct.month, ct.day, ct.hour, ct.min, ct.sec);
	if (n < 0)
		buf[0] = '\0';
	return buf;
}

char *time_format_rfc3339_ms(int64_t us, char *buf, size_t len)
{
	struct civil_time ct;
	int n;

	if (buf == NULL || len == 0)
		return buf;
	split_us(us, &ct);
	n = snprintf(buf, len, "%04d-%02u-%02uT%02d:%02d:%02d.%03lldZ", ct.year,
		     ct.month, ct.day, ct.hour, ct.min, ct.sec,
		     (long long)(ct.frac_us / 1000));
	if (n < 0)
		buf[0] = '\0';
	return buf;
}

/* ---- parsing ---- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Exactly n digits at *p; advances *p. */
static bool take_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit((*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool take_char(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static bool is_leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int y, unsigned m)
{
	static const unsigned len[12] = { 31, 28, 31, 30, 31, 30,
					  31, 31, 30, 31, 30, 31 };

	if (m == 2 && is_leap_year(y))
		return 29;
	return len[m - 1];
}

/* "YYYY-MM-DD" with a real calendar day. */
static bool parse_date(const char **p, struct civil_time *ct)
{
	int y, m, d;

	if (!take_digits(p, 4, &y) || !take_char(p, '-') ||
	    !take_digits(p, 2, &m) || !take_char(p, '-') ||
	    !take_digits(p, 2, &d))
		return false;
	if (m < 1 || m > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)m))
		return false;
	ct->year = y;
	ct->month = (unsigned)m;
	ct->day = (unsigned)d;
	return true;
}

/* ".d{1,9}": kept to microseconds, extra digits truncated. */
static bool parse_fraction(const char **p, int64_t *frac_us)
{
	int64_t us = 0;
	int n = 0;

	if (**p != '.')
		return true;
	(*p)++;
	while (is_digit(**p)) {
		if (n == 9)
			return false;
		if (n < 6)
			us = us * 10 + (**p - '0');
		n++;
		(*p)++;
	}
	if (n == 0)
		return false;
	for (int i = n; i < 6; i++)
		us *= 10;
	*frac_us = us;
	return true;
}

/* "HH:MM:SS[.frac]"; no leap second (60), no hour 24. */
static bool parse_clock(const char **p, struct civil_time *ct)
{
	if (!take_digits(p, 2, &ct->hour) || !take_char(p, ':') ||
	    !take_digits(p, 2, &ct->min) || !take_char(p, ':') ||
	    !take_digits(p, 2, &ct->sec))
		return false;
	if (ct->hour > 23 || ct->min > 59 || ct->sec > 59)
		return false;
	ct->frac_us = 0;
	return parse_fraction(p, &ct->frac_us);
}

/* "Z" / "z" / "+HH:MM" / "-HH:MM" into seconds east of UTC. */
static bool parse_offset(const char **p, int64_t *offset_s)
{
	int sign, hh, mm;

	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		*offset_s = 0;
		return true;
	}
	if (**p != '+' && **p != '-')
		return false;
	sign = **p == '-' ? -1 : 1;
	(*p)++;
	if (!take_digits(p, 2, &hh) || !take_char(p, ':') || !take_digits(p, 2, &mm))
		return false;
	if (hh > 23 || mm > 59)
		return false;
	*offset_s = sign * (int64_t)(hh * 3600 + mm * 60);
	return true;
}

bool time_parse_rfc3339(const char *s, int64_t *us_out)
{
	struct civil_time ct;
	int64_t offset_s, days, secs;
	const char *p = s;

	if (s == NULL || us_out == NULL)
		return false;
	if (!parse_date(&p, &ct))
		return false;
	if (*p != 'T' && *p != 't')
		return false;
	p++;
	if (!parse_clock(&p, &ct) || !parse_offset(&p, &offset_s) || *p != '\0')
		return false;
	days = time_days_from_civil(ct.year, ct.month, ct.day);
	secs = days * SEC_PER_DAY + ct.hour * 3600 + ct.min * 60 + ct.sec - offset_s;
	*us_out = secs * US_PER_SEC + ct.frac_us;
	return true;
}
