/* timeutil: wall-clock and monotonic time. Timestamps are stored everywhere
 * as int64 microseconds since the Unix epoch, UTC ("_at" columns). */
#ifndef PYTAKE_TIMEUTIL_H
#define PYTAKE_TIMEUTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int64_t time_now_us(void);       /* CLOCK_REALTIME, µs */
int64_t time_mono_us(void);      /* CLOCK_MONOTONIC, µs */

/* RFC 3339 UTC: "2026-11-29T10:00:00Z", or with ".123456" when the value has
 * a fraction. buf needs TIME_RFC3339_LEN bytes. Returns buf. */
#define TIME_RFC3339_LEN 40
char *time_format_rfc3339(int64_t us, char *buf, size_t len);
/* Millisecond precision, always 3 digits: for log lines. */
char *time_format_rfc3339_ms(int64_t us, char *buf, size_t len);

/* Parse RFC 3339 ("2026-11-29T10:00:00Z", "...T10:00:00.5+02:00", lowercase
 * t/z allowed). Returns false on anything else, including impossible dates. */
bool time_parse_rfc3339(const char *s, int64_t *us_out);

/* Civil date helpers (proleptic Gregorian, no time zone database). */
int64_t time_days_from_civil(int y, unsigned m, unsigned d);
void time_civil_from_days(int64_t days, int *y, unsigned *m, unsigned *d);

#endif
