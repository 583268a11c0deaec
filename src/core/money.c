/* money: exact decimal amounts in int64 micro-units (see money.h). */
#include "core/money.h"

#include <stdio.h>
#include <string.h>

#define MONEY_MAX_INT_DIGITS 12

static bool in_range_128(__int128 v)
{
	return v >= -(__int128)MONEY_MAX && v <= (__int128)MONEY_MAX;
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* The text both readers share: [sign] digits ['.' digits], scanned once;
 * each reader then applies its own rules (money_parse_n: strict input;
 * money_parse_numeric: what the database returns). */
struct decimal_text {
	bool neg, plus;     /* a leading '-' / '+' */
	size_t nwritten;    /* integer digits as written ("007" -> 3) */
	const char *whole;  /* integer digits past the leading zeros */
	size_t nwhole;      /* their count ("007" -> 1, "000" -> 0) */
	bool dot;
	const char *frac;   /* fraction digits after the '.' */
	size_t nfrac;
};

/* True when all len bytes of s have the shape above (digits may be absent
 * on either side of the '.'; the readers decide what they accept). */
static bool scan_decimal(const char *s, size_t len, struct decimal_text *d)
{
	size_t i = 0;
	*d = (struct decimal_text){ .neg = false };
	if (i < len && (s[i] == '-' || s[i] == '+')) {
		d->neg = s[i] == '-';
		d->plus = s[i] == '+';
		i++;
	}
	size_t start = i;
	while (i < len && s[i] == '0')
		i++;
	d->whole = s + i;
	while (i < len && is_digit(s[i]))
		i++;
	d->nwritten = i - start;
	d->nwhole = (size_t)(s + i - d->whole);
	if (i < len && s[i] == '.') {
		d->dot = true;
		d->frac = s + ++i;
		while (i < len && is_digit(s[i]))
			i++;
		d->nfrac = (size_t)(s + i - d->frac);
	}
	return i == len;
}

/* |value| in micro-units from the integer digits (at most 13, checked by
 * the caller) and the first 6 fraction digits (zero-padded); the digits
 * past the sixth are the caller's to round or refuse. */
static uint64_t micro_units(const struct decimal_text *d)
{
	uint64_t whole = 0, frac = 0;
	for (size_t k = 0; k < d->nwhole; k++)
		whole = whole * 10 + (uint64_t)(d->whole[k] - '0');
	for (size_t k = 0; k < MONEY_DECIMALS; k++)
		frac = frac * 10 + (k < d->nfrac ? (uint64_t)(d->frac[k] - '0') : 0);
	return whole * (uint64_t)MONEY_SCALE + frac;
}

int money_parse_n(const char *s, size_t len, int64_t *out)
{
	struct decimal_text d;
	if (s == NULL || !scan_decimal(s, len, &d) || d.plus || d.nwritten == 0 ||
	    (d.dot && d.nfrac == 0))
		return MONEY_ERR_SYNTAX;
	if (d.nfrac > MONEY_DECIMALS)
		return MONEY_ERR_PRECISION;
	if (d.nwhole > MONEY_MAX_INT_DIGITS)
		return MONEY_ERR_RANGE;
	int64_t v = (int64_t)micro_units(&d); /* <= MONEY_MAX by digit counts */
	*out = d.neg ? -v : v;
	return MONEY_OK;
}

int money_parse(const char *s, int64_t *out)
{
	if (s == NULL)
		return MONEY_ERR_SYNTAX;
	return money_parse_n(s, strlen(s), out);
}

/* INT64_MIN's magnitude in micro-units has 13 integer digits
 * (9223372036854.775808); 14 or more are out of range whatever follows. */
#define NUMERIC_MAX_INT_DIGITS 13

int money_parse_numeric(const char *s, int64_t *out)
{
	const uint64_t limit = (uint64_t)INT64_MAX + 1u; /* |INT64_MIN| */
	struct decimal_text d;
	if (s == NULL || !scan_decimal(s, strlen(s), &d) || d.nwritten + d.nfrac == 0)
		return MONEY_ERR_SYNTAX;
	if (d.nwhole > NUMERIC_MAX_INT_DIGITS)
		return MONEY_ERR_RANGE;
	unsigned __int128 mag = micro_units(&d);
	if (d.nfrac > MONEY_DECIMALS) { /* half-even on the digits past the sixth */
		int next = d.frac[MONEY_DECIMALS] - '0';
		bool rest = false;
		for (size_t k = MONEY_DECIMALS + 1; k < d.nfrac; k++)
			rest = rest || d.frac[k] != '0';
		if (next > 5 || (next == 5 && (rest || (mag & 1u))))
			mag++;
	}
	if (mag > limit || (!d.neg && mag == limit))
		return MONEY_ERR_RANGE;
	*out = d.neg ? (int64_t)(0u - (uint64_t)mag) : (int64_t)mag;
	return MONEY_OK;
}

const char *money_strerror(int status)
{
	switch (status) {
	case MONEY_OK:
		return "ok";
	case MONEY_ERR_SYNTAX:
		return "is not a decimal amount like \"12.50\" (digits, an optional "
		       "'-' and '.', no exponent, sign '+', spaces or ',')";
	case MONEY_ERR_PRECISION:
		return "has more than 6 decimals";
	case MONEY_ERR_RANGE:
		return "is out of range (at most 12 integer digits)";
	default:
		return "is not a valid amount";
	}
}

/* "-"? whole "." frac(decimals digits) of |m| with `decimals` shown from the
 * 6 stored; the caller already rounded when it needed to. */
static char *format_digits(bool neg, uint64_t whole, uint64_t frac6, int decimals,
			   char *buf, size_t len)
{
	if (buf == NULL || len == 0)
		return buf;
	if (decimals <= 0) {
		snprintf(buf, len, "%s%llu", neg ? "-" : "", (unsigned long long)whole);
		return buf;
	}
	char digits[MONEY_DECIMALS + 1];
	uint64_t frac = frac6;
	for (int k = MONEY_DECIMALS - 1; k >= 0; k--) {
		digits[k] = (char)('0' + frac % 10);
		frac /= 10;
	}
	digits[decimals > MONEY_DECIMALS ? MONEY_DECIMALS : decimals] = '\0';
	snprintf(buf, len, "%s%llu.%s", neg ? "-" : "", (unsigned long long)whole,
		 digits);
	return buf;
}

static uint64_t abs_u64(int64_t m)
{
	return m < 0 ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
}

char *money_format(int64_t m, char *buf, size_t len)
{
	uint64_t a = abs_u64(m);
	return format_digits(m < 0, a / MONEY_SCALE, a % MONEY_SCALE, MONEY_DECIMALS,
			     buf, len);
}

char *money_format_min(int64_t m, int min_decimals, char *buf, size_t len)
{
	if (min_decimals < 0)
		min_decimals = 0;
	if (min_decimals > MONEY_DECIMALS)
		min_decimals = MONEY_DECIMALS;
	uint64_t a = abs_u64(m);
	uint64_t frac = a % MONEY_SCALE;
	int decimals = MONEY_DECIMALS;
	uint64_t probe = frac;
	while (decimals > min_decimals && probe % 10 == 0) {
		probe /= 10;
		decimals--;
	}
	return format_digits(m < 0, a / MONEY_SCALE, frac, decimals, buf, len);
}

static const int64_t pow10_tab[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };

int money_round(int64_t m, int decimals, int64_t *out)
{
	if (decimals < 0 || decimals > MONEY_DECIMALS)
		return MONEY_ERR_ARG;
	uint64_t unit = (uint64_t)pow10_tab[MONEY_DECIMALS - decimals];
	uint64_t a = abs_u64(m);
	uint64_t q = a / unit, r = a % unit;
	if (2 * r > unit || (2 * r == unit && (q & 1u)))
		q++;
	__int128 v = (__int128)q * unit;
	if (m < 0)
		v = -v;
	if (!in_range_128(v))
		return MONEY_ERR_RANGE;
	*out = (int64_t)v;
	return MONEY_OK;
}

int money_format_currency(int64_t m, const char *currency, char *buf, size_t len)
{
	int minor = currency_minor_units(currency);
	int64_t r;
	char tmp[MONEY_TEXT_LEN];
	if (minor < 0 || buf == NULL)
		return MONEY_ERR_ARG;
	int rc = money_round(m, minor, &r);
	if (rc != MONEY_OK)
		return rc;
	uint64_t a = abs_u64(r);
	format_digits(r < 0, a / MONEY_SCALE, a % MONEY_SCALE, minor, tmp, sizeof tmp);
	size_t n = strlen(tmp);
	if (n + 1 > len)
		return MONEY_ERR_ARG;
	memcpy(buf, tmp, n + 1);
	return MONEY_OK;
}

static int store_128(__int128 v, int64_t *out)
{
	if (!in_range_128(v))
		return MONEY_ERR_RANGE;
	*out = (int64_t)v;
	return MONEY_OK;
}

int money_add(int64_t a, int64_t b, int64_t *out)
{
	return store_128((__int128)a + b, out);
}

int money_sub(int64_t a, int64_t b, int64_t *out)
{
	return store_128((__int128)a - b, out);
}

int money_mul_count(int64_t m, int64_t count, int64_t *out)
{
	/* |m|, |count| < 2^63: the product fits in 127 bits. */
	return store_128((__int128)m * count, out);
}

int money_mul_ratio(int64_t m, int64_t num, int64_t den, int64_t *out)
{
	if (den <= 0)
		return MONEY_ERR_ARG;
	__int128 p = (__int128)m * num;
	bool neg = p < 0;
	unsigned __int128 a = neg ? (unsigned __int128)(-p) : (unsigned __int128)p;
	unsigned __int128 d = (unsigned __int128)den;
	unsigned __int128 q = a / d, r = a % d;
	if (2 * r > d || (2 * r == d && (q & 1u)))
		q++;
	if (q > (unsigned __int128)MONEY_MAX)
		return MONEY_ERR_RANGE;
	__int128 v = (__int128)q;
	*out = (int64_t)(neg ? -v : v);
	return MONEY_OK;
}

/* ISO 4217 minor units of the currencies we price and present in. */
static const struct {
	char code[4];
	int minor;
} currencies[] = {
	{ "AED", 2 }, { "ARS", 2 }, { "AUD", 2 }, { "BDT", 2 }, { "BHD", 3 },
	{ "BRL", 2 }, { "CAD", 2 }, { "CHF", 2 }, { "CLP", 0 }, { "CNY", 2 },
	{ "COP", 2 }, { "CZK", 2 }, { "DKK", 2 }, { "EGP", 2 }, { "EUR", 2 },
	{ "GBP", 2 }, { "HKD", 2 }, { "HUF", 2 }, { "IDR", 2 }, { "ILS", 2 },
	{ "INR", 2 }, { "ISK", 0 }, { "JOD", 3 }, { "JPY", 0 }, { "KES", 2 },
	{ "KRW", 0 }, { "KWD", 3 }, { "MXN", 2 }, { "MYR", 2 }, { "NGN", 2 },
	{ "NOK", 2 }, { "NZD", 2 }, { "OMR", 3 }, { "PEN", 2 }, { "PHP", 2 },
	{ "PKR", 2 }, { "PLN", 2 }, { "PYG", 0 }, { "RON", 2 }, { "SAR", 2 },
	{ "SEK", 2 }, { "SGD", 2 }, { "THB", 2 }, { "TND", 3 }, { "TRY", 2 },
	{ "TWD", 2 }, { "UGX", 0 }, { "USD", 2 }, { "UYU", 2 }, { "VND", 0 },
	{ "XAF", 0 }, { "XOF", 0 }, { "ZAR", 2 },
};

int currency_minor_units(const char *code)
{
	if (code == NULL)
		return -1;
	for (size_t i = 0; i < sizeof currencies / sizeof currencies[0]; i++)
		if (!strcmp(currencies[i].code, code))
			return currencies[i].minor;
	return -1;
}

bool currency_is_known(const char *code)
{
	return currency_minor_units(code) >= 0;
}
