/* Unit tests for core/timeutil. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/timeutil.h"

#define S(x) ((int64_t)(x) * 1000000)

struct civil_case {
	int y;
	unsigned m, d;
	int64_t days;
};

static const struct civil_case civil_cases[] = {
	{ 1970, 1, 1, 0 },
	{ 1970, 1, 2, 1 },
	{ 1969, 12, 31, -1 },
	{ 1972, 2, 29, 789 },
	{ 1972, 3, 1, 790 },
	{ 2000, 1, 1, 10957 },
	{ 2000, 2, 29, 11016 },
	{ 2000, 3, 1, 11017 },
	{ 2001, 1, 1, 11323 },
	{ 2024, 2, 29, 19782 },
	{ 2026, 11, 29, 20786 },
	{ 2038, 1, 19, 24855 },
	{ 2100, 2, 28, 47540 },
	{ 2100, 3, 1, 47541 },     /* 2100 is not a leap year */
	{ 1900, 1, 1, -25567 },
	{ 1900, 3, 1, -25508 },    /* 1900 is not a leap year */
	{ 1600, 2, 29, -135081 },  /* 1600 is */
	{ 1, 1, 1, -719162 },
	{ 0, 3, 1, -719468 },
	{ 0, 1, 1, -719528 },
	{ -1, 12, 31, -719529 },
	{ 9999, 12, 31, 2932896 },
};

static void test_days_from_civil(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof civil_cases / sizeof civil_cases[0]; i++) {
		const struct civil_case *c = &civil_cases[i];
		int y;
		unsigned m, d;

		if (time_days_from_civil(c->y, c->m, c->d) != c->days)
			fail_msg("%d-%u-%u: got %lld want %lld", c->y, c->m, c->d,
				 (long long)time_days_from_civil(c->y, c->m, c->d),
				 (long long)c->days);
		time_civil_from_days(c->days, &y, &m, &d);
		assert_int_equal(y, c->y);
		assert_int_equal(m, c->m);
		assert_int_equal(d, c->d);
	}
}

/* Walk every day from 1600 to 2400: consecutive and month lengths right. */
static void test_civil_walk(void **state)
{
	static const unsigned len[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int64_t day = time_days_from_civil(1600, 1, 1);
	int y = 1600;
	unsigned m = 1, d = 1;

	(void)state;
	while (y < 2400) {
		int gy;
		unsigned gm, gd, mlen;
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

		time_civil_from_days(day, &gy, &gm, &gd);
		assert_int_equal(gy, y);
		assert_int_equal(gm, m);
		assert_int_equal(gd, d);
		assert_true(time_days_from_civil(y, m, d) == day);
		mlen = len[m - 1] + (m == 2 && leap ? 1 : 0);
		if (++d > mlen) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
		day++;
	}
}

struct fmt_case {
	int64_t us;
	const char *full;
	const char *ms;
};

static void test_format(void **state)
{
	static const struct fmt_case cases[] = {
		{ 0, "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z" },
		{ 1, "1970-01-01T00:00:00.000001Z", "1970-01-01T00:00:00.000Z" },
		{ S(1795946400) + 123000, "2026-11-29T10:00:00.123000Z",
		  "2026-11-29T10:00:00.123Z" },
		{ S(1795946400) + 123999, "2026-11-29T10:00:00.123999Z",
		  "2026-11-29T10:00:00.123Z" },
		{ S(1795946400), "2026-11-29T10:00:00Z", "2026-11-29T10:00:00.000Z" },
		{ -1, "1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999Z" },
		{ S(-1), "1969-12-31T23:59:59Z", "1969-12-31T23:59:59.000Z" },
		{ S(951782400), "2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000Z" },
		{ S(-2208988800), "1900-01-01T00:00:00Z", "1900-01-01T00:00:00.000Z" },
		{ S(253402300799) + 999999, "9999-12-31T23:59:59.999999Z",
		  "9999-12-31T23:59:59.999Z" },
	};
	char buf[TIME_RFC3339_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_string_equal(time_format_rfc3339(cases[i].us, buf, sizeof buf),
				    cases[i].full);
		assert_string_equal(time_format_rfc3339_ms(cases[i].us, buf, sizeof buf),
				    cases[i].ms);
	}
	/* a short buffer is truncated, still NUL-terminated */
	assert_string_equal(time_format_rfc3339(0, buf, 5), "1970");
}

struct parse_case {
	const char *s;
	int64_t us;
};

static void test_parse_valid(void **state)
{
	static const struct parse_case cases[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "1970-01-01t00:00:00z", 0 },
		{ "2026-11-29T10:00:00Z", S(1795946400) },
		{ "2026-11-29T10:00:00.123Z", S(1795946400) + 123000 },
		{ "2026-11-29T10:00:00.5+02:00", S(1795946400 - 7200) + 500000 },
		{ "2026-11-29T10:00:00-05:30", S(1795946400 + 19800) },
		{ "2026-11-29T10:00:00+00:00", S(1795946400) },
		{ "2026-11-29T10:00:00-00:00", S(1795946400) },
		{ "2026-11-29T10:00:00.000001Z", S(1795946400) + 1 },
		{ "2026-11-29T10:00:00.123456789Z", S(1795946400) + 123456 },
		{ "2026-11-29T10:00:00.9999999Z", S(1795946400) + 999999 },
		{ "2024-02-29T23:59:59Z", S(1709251199) },
		{ "2000-02-29T12:00:00Z", S(951825600) },
		{ "1969-12-31T23:59:59.999999Z", -1 },
		{ "1900-01-01T00:00:00Z", S(-2208988800) },
		{ "1970-01-01T00:00:00+23:59", S(-86340) },
		{ "0000-01-01T00:00:00Z", S(-62167219200) },
		{ "9999-12-31T23:59:59Z", S(253402300799) },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t us = 42;

		if (!time_parse_rfc3339(cases[i].s, &us))
			fail_msg("rejected %s", cases[i].s);
		if (us != cases[i].us)
			fail_msg("%s: got %lld want %lld", cases[i].s, (long long)us,
				 (long long)cases[i].us);
	}
}

static void test_parse_invalid(void **state)
{
	static const char *const cases[] = {
		"",
		"2026",
		"2026-11-29",
		"2026-11-29T10:00Z",
		"2026-11-29T10:00:00",            /* no offset */
		"2026-11-29 10:00:00Z",           /* space separator */
		"2026-11-29T10:00:00ZZ",
		"2026-11-29T10:00:00Z ",
		" 2026-11-29T10:00:00Z",
		"2026-02-30T00:00:00Z",
		"2026-02-29T00:00:00Z",           /* not a leap year */
		"1900-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z",
		"2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z",
		"2026-01-00T00:00:00Z",
		"2026-01-32T00:00:00Z",
		"2026-11-29T24:00:00Z",
		"2026-11-29T23:60:00Z",
		"2026-11-29T23:59:60Z",
		"2026-11-29T10:00:00.Z",
		"2026-11-29T10:00:00.1234567890Z", /* 10 fraction digits */
		"2026-11-29T10:00:00,5Z",
		"2026-11-29T10:00:00+2:00",
		"2026-11-29T10:00:00+0200",
		"2026-11-29T10:00:00+24:00",
		"2026-11-29T10:00:00+02:60",
		"2026-11-29T10:00:00+02",
		"26-11-29T10:00:00Z",
		"+2026-11-29T10:00:00Z",
		"2026-1-29T10:00:00Z",
		"2026-11-29T1:00:00Z",
		"2026/11/29T10:00:00Z",
		"2026-11-29X10:00:00Z",
		"2026-11-29T10:00:00UTC",
		"abcd-ef-ghTij:kl:mnZ",
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t us = 42;

		if (time_parse_rfc3339(cases[i], &us))
			fail_msg("accepted %s", cases[i]);
		assert_true(us == 42); /* untouched */
	}
	assert_false(time_parse_rfc3339(NULL, NULL));
}

/* format -> parse gives the same value, before and after the epoch. */
static void test_round_trip(void **state)
{
	static const int64_t values[] = {
		0, 1, -1, 999999, -999999, S(1795946400) + 123456,
		S(-2208988800) + 7, S(951782400) - 1, S(253402300799) + 999999,
		S(-62167219200), INT64_C(1234567890123456), -INT64_C(1234567890123456),
	};
	char buf[TIME_RFC3339_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		int64_t back = 0;

		time_format_rfc3339(values[i], buf, sizeof buf);
		if (!time_parse_rfc3339(buf, &back))
			fail_msg("cannot parse own output %s", buf);
		assert_true(back == values[i]);
	}
	/* and a sweep every ~7.3 days + odd µs over 1900..2100 */
	for (int64_t us = S(-2208988800); us < S(4102444800); us += S(631151) + 777) {
		int64_t back = 0;

		time_format_rfc3339(us, buf, sizeof buf);
		assert_true(time_parse_rfc3339(buf, &back));
		assert_true(back == us);
	}
}

static void test_clocks(void **state)
{
	int64_t now = time_now_us(), m1, m2;

	(void)state;
	assert_true(now > S(1700000000)); /* after 2023 */
	m1 = time_mono_us();
	m2 = time_mono_us();
	assert_true(m1 > 0);
	assert_true(m2 >= m1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_days_from_civil),
		cmocka_unit_test(test_civil_walk),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
