/* Unit tests for core/money: parsing, formatting, half-even rounding and
 * overflow-checked arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/money.h"

struct parse_case {
	const char *text;
	int status;
	int64_t micros; /* when MONEY_OK */
};

static const struct parse_case parse_cases[] = {
	{ "12.5", MONEY_OK, 12500000 },
	{ "0.0034", MONEY_OK, 3400 },
	{ "-1", MONEY_OK, -1000000 },
	{ "0", MONEY_OK, 0 },
	{ "-0", MONEY_OK, 0 },
	{ "0.000001", MONEY_OK, 1 },
	{ "-0.000001", MONEY_OK, -1 },
	{ "0.0250", MONEY_OK, 25000 },
	{ "007.10", MONEY_OK, 7100000 },
	{ "123456789012", MONEY_OK, INT64_C(123456789012000000) },
	{ "999999999999.999999", MONEY_OK, MONEY_MAX },
	{ "-999999999999.999999", MONEY_OK, -MONEY_MAX },
	{ "0000000000000000001.5", MONEY_OK, 1500000 },
	{ "1.000000", MONEY_OK, 1000000 },
	{ "1e3", MONEY_ERR_SYNTAX, 0 },
	{ "1E3", MONEY_ERR_SYNTAX, 0 },
	{ "+1", MONEY_ERR_SYNTAX, 0 },
	{ " 1", MONEY_ERR_SYNTAX, 0 },
	{ "1 ", MONEY_ERR_SYNTAX, 0 },
	{ "1\t", MONEY_ERR_SYNTAX, 0 },
	{ "0,05", MONEY_ERR_SYNTAX, 0 },
	{ "1,000.00", MONEY_ERR_SYNTAX, 0 },
	{ ".5", MONEY_ERR_SYNTAX, 0 },
	{ "5.", MONEY_ERR_SYNTAX, 0 },
	{ "-", MONEY_ERR_SYNTAX, 0 },
	{ "-.5", MONEY_ERR_SYNTAX, 0 },
	{ "--1", MONEY_ERR_SYNTAX, 0 },
	{ "", MONEY_ERR_SYNTAX, 0 },
	{ ".", MONEY_ERR_SYNTAX, 0 },
	{ "1.2.3", MONEY_ERR_SYNTAX, 0 },
	{ "NaN", MONEY_ERR_SYNTAX, 0 },
	{ "inf", MONEY_ERR_SYNTAX, 0 },
	{ "0x10", MONEY_ERR_SYNTAX, 0 },
	{ "12.5USD", MONEY_ERR_SYNTAX, 0 },
	{ "0.0000001", MONEY_ERR_PRECISION, 0 },
	{ "1.0000000", MONEY_ERR_PRECISION, 0 },
	{ "1000000000000", MONEY_ERR_RANGE, 0 },
	{ "99999999999999999999999999", MONEY_ERR_RANGE, 0 },
	{ "-1000000000000.5", MONEY_ERR_RANGE, 0 },
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
		const struct parse_case *c = &parse_cases[i];
		int64_t v = -777;
		int rc = money_parse(c->text, &v);
		if (rc != c->status)
			fail_msg("\"%s\": status %d, want %d", c->text, rc, c->status);
		if (c->status == MONEY_OK && v != c->micros)
			fail_msg("\"%s\": %lld, want %lld", c->text, (long long)v,
				 (long long)c->micros);
		if (c->status != MONEY_OK)
			assert_int_equal(v, -777); /* untouched on failure */
	}
}

static void test_parse_n_and_nul(void **state)
{
	(void)state;
	int64_t v = 0;
	assert_int_equal(money_parse_n("12.5xyz", 4, &v), MONEY_OK);
	assert_int_equal(v, 12500000);
	assert_int_equal(money_parse_n("1\0002", 3, &v), MONEY_ERR_SYNTAX);
	assert_int_equal(money_parse(NULL, &v), MONEY_ERR_SYNTAX);
	assert_non_null(strstr(money_strerror(MONEY_ERR_PRECISION), "6 decimals"));
}

struct fmt_case {
	int64_t micros;
	const char *full, *min2, *usd;
};

static const struct fmt_case fmt_cases[] = {
	{ 12500000, "12.500000", "12.50", "12.50" },
	{ 3400, "0.003400", "0.0034", "0.00" },
	{ -1000000, "-1.000000", "-1.00", "-1.00" },
	{ 0, "0.000000", "0.00", "0.00" },
	{ 1, "0.000001", "0.000001", "0.00" },
	{ -4000, "-0.004000", "-0.004", "0.00" }, /* never "-0.00" */
	{ 125000, "0.125000", "0.125", "0.12" },  /* half-even: down to even */
	{ 135000, "0.135000", "0.135", "0.14" },  /* half-even: up to even */
	{ -125000, "-0.125000", "-0.125", "-0.12" },
	{ -135000, "-0.135000", "-0.135", "-0.14" },
	{ 125001, "0.125001", "0.125001", "0.13" }, /* above half: up */
	{ 5000, "0.005000", "0.005", "0.00" },
	{ 15000, "0.015000", "0.015", "0.02" },
	{ MONEY_MAX, "999999999999.999999", "999999999999.999999", NULL },
	{ -MONEY_MAX, "-999999999999.999999", "-999999999999.999999", NULL },
};

static void test_format_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof fmt_cases / sizeof fmt_cases[0]; i++) {
		const struct fmt_case *c = &fmt_cases[i];
		char buf[MONEY_TEXT_LEN];
		assert_string_equal(money_format(c->micros, buf, sizeof buf), c->full);
		assert_string_equal(money_format_min(c->micros, 2, buf, sizeof buf), c->min2);
		int rc = money_format_currency(c->micros, "USD", buf, sizeof buf);
		if (c->usd == NULL) {
			assert_int_equal(rc, MONEY_ERR_RANGE); /* rounds past MONEY_MAX */
		} else {
			assert_int_equal(rc, MONEY_OK);
			assert_string_equal(buf, c->usd);
		}
	}
}

static void test_format_currencies(void **state)
{
	(void)state;
	char buf[MONEY_TEXT_LEN];
	assert_int_equal(money_format_currency(1234500000, "JPY", buf, sizeof buf), MONEY_OK);
	assert_string_equal(buf, "1234"); /* 1234.5 -> even 1234 */
	assert_int_equal(money_format_currency(1235500000, "JPY", buf, sizeof buf), MONEY_OK);
	assert_string_equal(buf, "1236");
	assert_int_equal(money_format_currency(1234500, "KWD", buf, sizeof buf), MONEY_OK);
	assert_string_equal(buf, "1.234"); /* 1.2345 -> 1.234 */
	assert_int_equal(money_format_currency(12500000, "EUR", buf, sizeof buf), MONEY_OK);
	assert_string_equal(buf, "12.50");
	memcpy(buf, "keep", 5);
	assert_int_equal(money_format_currency(1, "XXX", buf, sizeof buf), MONEY_ERR_ARG);
	assert_int_equal(money_format_currency(1, "usd", buf, sizeof buf), MONEY_ERR_ARG);
	assert_int_equal(money_format_currency(1, NULL, buf, sizeof buf), MONEY_ERR_ARG);
	assert_int_equal(money_format_currency(12500000, "USD", buf, 5), MONEY_ERR_ARG);
	assert_string_equal(buf, "keep");
	assert_string_equal(money_format_min(1000000, 0, buf, sizeof buf), "1");
	assert_string_equal(money_format_min(1500000, 0, buf, sizeof buf), "1.5");
	assert_int_equal(currency_minor_units("USD"), 2);
	assert_int_equal(currency_minor_units("BRL"), 2);
	assert_int_equal(currency_minor_units("INR"), 2);
	assert_int_equal(currency_minor_units("MXN"), 2);
	assert_int_equal(currency_minor_units("GBP"), 2);
	assert_int_equal(currency_minor_units("JPY"), 0);
	assert_int_equal(currency_minor_units("ZZZ"), -1);
	assert_true(currency_is_known("EUR"));
	assert_false(currency_is_known("EURO"));
}

static void test_round(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(money_round(125000, 2, &v), MONEY_OK);
	assert_int_equal(v, 120000);
	assert_int_equal(money_round(2500000, 0, &v), MONEY_OK);
	assert_int_equal(v, 2000000);
	assert_int_equal(money_round(3500000, 0, &v), MONEY_OK);
	assert_int_equal(v, 4000000);
	assert_int_equal(money_round(-2500000, 0, &v), MONEY_OK);
	assert_int_equal(v, -2000000);
	assert_int_equal(money_round(123456, 6, &v), MONEY_OK);
	assert_int_equal(v, 123456);
	assert_int_equal(money_round(1, 7, &v), MONEY_ERR_ARG);
	assert_int_equal(money_round(1, -1, &v), MONEY_ERR_ARG);
}

static void test_issue_examples(void **state)
{
	(void)state;
	int64_t rate, amount;
	char buf[MONEY_TEXT_LEN];
	/* 0.025 x 500 = 12.500000 */
	assert_int_equal(money_parse("0.025", &rate), MONEY_OK);
	assert_int_equal(money_mul_count(rate, 500, &amount), MONEY_OK);
	assert_string_equal(money_format(amount, buf, sizeof buf), "12.500000");
	/* 10,000 x 0.0034 = 34 exactly */
	assert_int_equal(money_parse("0.0034", &rate), MONEY_OK);
	assert_int_equal(money_mul_count(rate, 10000, &amount), MONEY_OK);
	assert_int_equal(amount, 34 * MONEY_SCALE);
	assert_string_equal(money_format(amount, buf, sizeof buf), "34.000000");
	/* a million x 0.000001 summed one by one = 1 exactly */
	int64_t micro, sum = 0;
	assert_int_equal(money_parse("0.000001", &micro), MONEY_OK);
	for (int i = 0; i < 1000000; i++)
		assert_int_equal(money_add(sum, micro, &sum), MONEY_OK);
	assert_int_equal(sum, MONEY_SCALE);
	assert_string_equal(money_format(sum, buf, sizeof buf), "1.000000");
	/* 0.1 + 0.2 == 0.3, unlike binary floating point */
	int64_t a, b, c;
	assert_int_equal(money_parse("0.1", &a), MONEY_OK);
	assert_int_equal(money_parse("0.2", &b), MONEY_OK);
	assert_int_equal(money_add(a, b, &c), MONEY_OK);
	assert_string_equal(money_format_min(c, 1, buf, sizeof buf), "0.3");
}

static void test_overflow(void **state)
{
	(void)state;
	int64_t v = 42;
	assert_int_equal(money_add(MONEY_MAX, 1, &v), MONEY_ERR_RANGE);
	assert_int_equal(v, 42);
	assert_int_equal(money_add(-MONEY_MAX, -1, &v), MONEY_ERR_RANGE);
	assert_int_equal(money_add(INT64_MAX, INT64_MAX, &v), MONEY_ERR_RANGE);
	assert_int_equal(money_add(MONEY_MAX, -1, &v), MONEY_OK);
	assert_int_equal(v, MONEY_MAX - 1);
	assert_int_equal(money_sub(-MONEY_MAX, 1, &v), MONEY_ERR_RANGE);
	assert_int_equal(money_sub(5, 7, &v), MONEY_OK);
	assert_int_equal(v, -2);
	v = 42;
	assert_int_equal(money_mul_count(MONEY_MAX, 2, &v), MONEY_ERR_RANGE);
	assert_int_equal(v, 42);
	assert_int_equal(money_mul_count(INT64_MAX, INT64_MAX, &v), MONEY_ERR_RANGE);
	assert_int_equal(money_mul_count(INT64_MIN, -1, &v), MONEY_ERR_RANGE);
	assert_int_equal(money_mul_count(1000000, 999999999999, &v), MONEY_OK);
	assert_int_equal(v, INT64_C(999999999999000000));
	assert_int_equal(money_mul_count(1000000, 1000000000000, &v), MONEY_ERR_RANGE);
	assert_int_equal(money_mul_count(-3400, 3, &v), MONEY_OK);
	assert_int_equal(v, -10200);
}

static void test_mul_ratio(void **state)
{
	(void)state;
	int64_t v;
	/* 80% of 100.00 */
	assert_int_equal(money_mul_ratio(100 * MONEY_SCALE, 80, 100, &v), MONEY_OK);
	assert_int_equal(v, 80 * MONEY_SCALE);
	/* 1 micro / 2 = 0.5 micro -> 0 (even); 3/2 = 1.5 -> 2 */
	assert_int_equal(money_mul_ratio(1, 1, 2, &v), MONEY_OK);
	assert_int_equal(v, 0);
	assert_int_equal(money_mul_ratio(3, 1, 2, &v), MONEY_OK);
	assert_int_equal(v, 2);
	assert_int_equal(money_mul_ratio(-3, 1, 2, &v), MONEY_OK);
	assert_int_equal(v, -2);
	assert_int_equal(money_mul_ratio(10, 1, 3, &v), MONEY_OK);
	assert_int_equal(v, 3);
	assert_int_equal(money_mul_ratio(1, 1, 0, &v), MONEY_ERR_ARG);
	assert_int_equal(money_mul_ratio(MONEY_MAX, 3, 2, &v), MONEY_ERR_RANGE);
	/* the intermediate exceeds int64 but the result fits */
	assert_int_equal(money_mul_ratio(MONEY_MAX, INT64_MAX, INT64_MAX, &v), MONEY_OK);
	assert_int_equal(v, MONEY_MAX);
}

static void test_round_trip(void **state)
{
	(void)state;
	static const int64_t values[] = { 0, 1, -1, 999999, 1000000, 3400, 25000,
					  -125000, 123456789012345678, MONEY_MAX,
					  -MONEY_MAX };
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		char full[MONEY_TEXT_LEN], shortf[MONEY_TEXT_LEN];
		int64_t back = 0;
		money_format(values[i], full, sizeof full);
		assert_int_equal(money_parse(full, &back), MONEY_OK);
		assert_int_equal(back, values[i]);
		for (int d = 0; d <= MONEY_DECIMALS; d++) {
			money_format_min(values[i], d, shortf, sizeof shortf);
			assert_int_equal(money_parse(shortf, &back), MONEY_OK);
			assert_int_equal(back, values[i]);
		}
	}
}

/* money_parse_numeric (what the db layer reads PostgreSQL NUMERIC text
 * with): the same scanner as money_parse, with the database's rules. Each
 * row also says what the strict money_parse answers, so the table shows
 * where the two readers differ. */
static void test_parse_numeric_table(void **state)
{
	static const struct {
		const char *text;
		int status;     /* money_parse_numeric */
		int64_t micros; /* when MONEY_OK */
		int strict;     /* money_parse */
	} cases[] = {
		{ "12.500000", MONEY_OK, 12500000, MONEY_OK },
		{ "-0.000100", MONEY_OK, -100, MONEY_OK },
		{ "0", MONEY_OK, 0, MONEY_OK },
		{ "-0", MONEY_OK, 0, MONEY_OK },
		{ "007.10", MONEY_OK, 7100000, MONEY_OK },
		{ "+3.000001", MONEY_OK, 3000001, MONEY_ERR_SYNTAX },
		{ ".5", MONEY_OK, 500000, MONEY_ERR_SYNTAX },
		{ "-.5", MONEY_OK, -500000, MONEY_ERR_SYNTAX },
		{ "5.", MONEY_OK, 5000000, MONEY_ERR_SYNTAX },
		{ "999999999999.999999", MONEY_OK, MONEY_MAX, MONEY_OK },
		{ "1000000000000", MONEY_OK, INT64_C(1000000000000000000), MONEY_ERR_RANGE },
		{ "9223372036854.775807", MONEY_OK, INT64_MAX, MONEY_ERR_RANGE },
		{ "-9223372036854.775808", MONEY_OK, INT64_MIN, MONEY_ERR_RANGE },
		{ "009223372036854.775807", MONEY_OK, INT64_MAX, MONEY_ERR_RANGE },
		{ "9223372036854.775808", MONEY_ERR_RANGE, 0, MONEY_ERR_RANGE },
		{ "-9223372036854.775809", MONEY_ERR_RANGE, 0, MONEY_ERR_RANGE },
		{ "9223372036854.7758065", MONEY_OK, INT64_MAX - 1, MONEY_ERR_PRECISION },
		{ "9223372036854.7758075", MONEY_ERR_RANGE, 0, MONEY_ERR_PRECISION },
		{ "-9223372036854.7758075", MONEY_OK, INT64_MIN, MONEY_ERR_PRECISION },
		{ "-9223372036854.7758085", MONEY_OK, INT64_MIN, MONEY_ERR_PRECISION },
		{ "-9223372036854.7758086", MONEY_ERR_RANGE, 0, MONEY_ERR_PRECISION },
		{ "99999999999999999999", MONEY_ERR_RANGE, 0, MONEY_ERR_RANGE },
		/* half-even past the sixth decimal */
		{ "0.0000005", MONEY_OK, 0, MONEY_ERR_PRECISION },
		{ "0.0000015", MONEY_OK, 2, MONEY_ERR_PRECISION },
		{ "0.00000051", MONEY_OK, 1, MONEY_ERR_PRECISION },
		{ "0.0000025000", MONEY_OK, 2, MONEY_ERR_PRECISION },
		{ "-0.0000025", MONEY_OK, -2, MONEY_ERR_PRECISION },
		{ "-0.0000005", MONEY_OK, 0, MONEY_ERR_PRECISION },
		{ "1.23456749", MONEY_OK, 1234567, MONEY_ERR_PRECISION },
		{ "0.9999995", MONEY_OK, 1000000, MONEY_ERR_PRECISION },
		{ "12.3333333333333333333", MONEY_OK, 12333333, MONEY_ERR_PRECISION },
		{ "", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ "-", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ "+", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ ".", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ "-.", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ "--1", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ "1.2.3", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ "abc", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ "1e5", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ " 1", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ "1 ", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
		{ "NaN", MONEY_ERR_SYNTAX, 0, MONEY_ERR_SYNTAX },
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t v = -777, w = -777;
		int rc = money_parse_numeric(cases[i].text, &v);
		if (rc != cases[i].status || (rc == MONEY_OK && v != cases[i].micros))
			fail_msg("numeric \"%s\": %d %lld, want %d %lld", cases[i].text, rc,
				 (long long)v, cases[i].status, (long long)cases[i].micros);
		if (rc != MONEY_OK && v != -777)
			fail_msg("numeric \"%s\": *out written on failure", cases[i].text);
		rc = money_parse(cases[i].text, &w);
		if (rc != cases[i].strict)
			fail_msg("strict \"%s\": %d, want %d", cases[i].text, rc, cases[i].strict);
		if (rc == MONEY_OK && w != cases[i].micros)
			fail_msg("strict \"%s\": %lld, want %lld", cases[i].text, (long long)w,
				 (long long)cases[i].micros);
	}
	assert_int_equal(money_parse_numeric(NULL, &(int64_t){ 0 }), MONEY_ERR_SYNTAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_n_and_nul),
		cmocka_unit_test(test_format_table),
		cmocka_unit_test(test_format_currencies),
		cmocka_unit_test(test_round),
		cmocka_unit_test(test_issue_examples),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_mul_ratio),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_parse_numeric_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
