/* money: exact decimal amounts as int64 micro-units (1 unit = 1 000 000).
 *
 * Design: every amount is an int64 count of millionths of a currency unit,
 * kept within +/- MONEY_MAX (the range of PostgreSQL NUMERIC(18,6), so any
 * value fits both engines). Arithmetic goes through __int128 and reports
 * overflow instead of wrapping. There is no floating point anywhere: text
 * in, text out. Rounding happens only when an amount is presented in a
 * currency's minor units (half-even, "banker's rounding").
 *
 * Text forms:
 *   input  "12.5", "0.0034", "-1", "007" — optional '-', digits, optional
 *          '.' and 1..6 digits. Rejected: '+', spaces, exponents ("1e3"),
 *          "1,5", ".5", "5.", more than 6 decimals, > 12 integer digits.
 *   NUMERIC what PostgreSQL returns for a NUMERIC (money_parse_numeric):
 *          also '+', ".5", "5.", and more than 6 decimals (rounded
 *          half-even); range: the whole int64. One scanner serves both.
 *   full   "12.500000" (always 6 decimals; money_format)
 *   short  "12.5" -> "12.50" with at least N decimals, trailing zeros of
 *          the rest dropped (money_format_min; rates: "0.0034")
 *   shown  rounded half-even to the currency's minor units: "12.50" USD,
 *          "1235" JPY (money_format_currency). */
#ifndef PYTAKE_MONEY_H
#define PYTAKE_MONEY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MONEY_SCALE INT64_C(1000000)
#define MONEY_DECIMALS 6
/* 999 999 999 999.999999: NUMERIC(18,6). */
#define MONEY_MAX INT64_C(999999999999999999)
/* Enough for "-999999999999.999999" and the NUL. */
#define MONEY_TEXT_LEN 32

enum money_status {
	MONEY_OK = 0,
	MONEY_ERR_SYNTAX = -1,    /* not a plain decimal number */
	MONEY_ERR_PRECISION = -2, /* more than 6 decimals */
	MONEY_ERR_RANGE = -3,     /* beyond +/- MONEY_MAX (overflow) */
	MONEY_ERR_ARG = -4,       /* bad argument (unknown currency, buffer) */
};

/* Parse the whole NUL-terminated string s (see the input rules above) into
 * *out (micro-units). *out is set only on MONEY_OK. */
int money_parse(const char *s, int64_t *out) __attribute__((warn_unused_result));
/* The same over exactly len bytes (no NUL needed; an embedded NUL is a
 * syntax error). */
int money_parse_n(const char *s, size_t len, int64_t *out)
	__attribute__((warn_unused_result));
/* A NUMERIC text as the database returns it (the db layer reads money
 * with this): optional '-' or '+', digits with an optional '.' and
 * fraction, at least one digit on either side of the '.' ("5.", ".5");
 * digits past the sixth decimal round half-even ("0.0000015" -> 2).
 * MONEY_ERR_SYNTAX, or MONEY_ERR_RANGE beyond int64 micro-units (not
 * MONEY_MAX: an aggregate may exceed one column's range). *out is set only
 * on MONEY_OK. */
int money_parse_numeric(const char *s, int64_t *out) __attribute__((warn_unused_result));
/* A short English reason for a money_status ("has more than 6 decimals"),
 * static. */
const char *money_strerror(int status);

/* Full form "12.500000" into buf (len >= MONEY_TEXT_LEN). Returns buf. */
char *money_format(int64_t m, char *buf, size_t len);
/* Exact form with at least min_decimals (0..6) decimals and no trailing
 * zeros past them: (12500000, 2) -> "12.50", (3400, 2) -> "0.0034",
 * (1000000, 0) -> "1". Never rounds. Returns buf. */
char *money_format_min(int64_t m, int min_decimals, char *buf, size_t len);
/* Presentation form: m rounded half-even to the currency's minor units and
 * printed with exactly that many decimals ("0.125" USD -> "0.12", "-0.125"
 * -> "-0.12", never "-0.00"). MONEY_ERR_ARG for an unknown currency or a
 * short buffer; buf is untouched then. */
int money_format_currency(int64_t m, const char *currency, char *buf, size_t len)
	__attribute__((warn_unused_result));

/* m rounded half-even to `decimals` (0..6) decimal places, still in
 * micro-units: (125000, 2) -> 120000. MONEY_ERR_ARG for bad decimals,
 * MONEY_ERR_RANGE when rounding up leaves the range. */
int money_round(int64_t m, int decimals, int64_t *out) __attribute__((warn_unused_result));

/* *out = a + b / a - b; MONEY_ERR_RANGE (and *out untouched) on overflow. */
int money_add(int64_t a, int64_t b, int64_t *out) __attribute__((warn_unused_result));
int money_sub(int64_t a, int64_t b, int64_t *out) __attribute__((warn_unused_result));
/* *out = m x count, exact (rate x number of messages). MONEY_ERR_RANGE on
 * overflow. */
int money_mul_count(int64_t m, int64_t count, int64_t *out)
	__attribute__((warn_unused_result));
/* *out = m x num / den rounded half-even to a micro-unit (e.g. a budget
 * threshold: limit x 80 / 100). MONEY_ERR_ARG when den <= 0,
 * MONEY_ERR_RANGE on overflow. */
int money_mul_ratio(int64_t m, int64_t num, int64_t den, int64_t *out)
	__attribute__((warn_unused_result));

/* ISO 4217 minor units of an upper-case currency code ("USD" -> 2,
 * "JPY" -> 0, "KWD" -> 3); -1 when the code is not in our table. */
int currency_minor_units(const char *code);
/* True when code is a currency we know (in the table above). */
bool currency_is_known(const char *code);

#endif
