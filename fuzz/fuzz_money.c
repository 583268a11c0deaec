/* libFuzzer driver for core/money parsing and formatting.
 *
 * The input is a candidate amount. Whatever money_parse_n accepts must be
 * within +/- MONEY_MAX, re-format to a text that parses back to the same
 * value (full and shortest forms), and round half-even for presentation
 * without leaving the range by more than one minor unit. Arithmetic on the
 * value must either succeed exactly or report MONEY_ERR_RANGE.
 * money_parse_numeric (the database's reader, sharing the scanner) must
 * accept whatever money_parse_n accepts, with the same value, and read
 * back any int64 it accepts from its full text.
 *
 * Build and run (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c17 -D_GNU_SOURCE \
 *     -include src/core/banned.h -Isrc fuzz/fuzz_money.c src/core/money.c \
 *     -o build-fuzz/fuzz_money
 *   mkdir -p fuzz/corpus-out/money
 *   build-fuzz/fuzz_money -max_total_time=60 -max_len=64 \
 *     fuzz/corpus-out/money fuzz/corpus/money */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(int64_t v)
{
	char buf[MONEY_TEXT_LEN];
	int64_t back = 0;
	money_format(v, buf, sizeof buf);
	if (money_parse(buf, &back) != MONEY_OK || back != v)
		abort();
	for (int d = 0; d <= MONEY_DECIMALS; d++) {
		money_format_min(v, d, buf, sizeof buf);
		if (money_parse(buf, &back) != MONEY_OK || back != v)
			abort();
	}
}

static void check_arithmetic(int64_t v)
{
	int64_t r;
	int rc = money_add(v, v, &r);
	if (rc == MONEY_OK && r != v * 2)
		abort();
	if (rc != MONEY_OK && rc != MONEY_ERR_RANGE)
		abort();
	rc = money_mul_count(v, 3, &r);
	if (rc == MONEY_OK && (r / 3 != v || r % 3 != 0))
		abort();
	rc = money_round(v, 2, &r);
	if (rc == MONEY_OK && (r % 10000 != 0 || llabs(r - v) > 5000))
		abort();
	char buf[MONEY_TEXT_LEN];
	rc = money_format_currency(v, "USD", buf, sizeof buf);
	if (rc != MONEY_OK && rc != MONEY_ERR_RANGE)
		abort();
}

/* The NUMERIC reader on the same bytes (NUL-terminated; an embedded NUL
 * ends the text, so such inputs are skipped). strict_rc/strict_v: what
 * money_parse_n said. */
static void check_numeric(const uint8_t *data, size_t size, int strict_rc, int64_t strict_v)
{
	char text[96], buf[MONEY_TEXT_LEN];
	int64_t v = 0, back = 0;
	if (size >= sizeof text || memchr(data, '\0', size) != NULL)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	int rc = money_parse_numeric(text, &v);
	if (rc != MONEY_OK && rc != MONEY_ERR_SYNTAX && rc != MONEY_ERR_RANGE)
		abort();
	if (strict_rc == MONEY_OK && (rc != MONEY_OK || v != strict_v))
		abort();
	if (rc != MONEY_OK)
		return;
	money_format(v, buf, sizeof buf);
	if (money_parse_numeric(buf, &back) != MONEY_OK || back != v)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t v = 0;
	int rc = money_parse_n((const char *)data, size, &v);
	check_numeric(data, size, rc, v);
	if (rc != MONEY_OK)
		return 0;
	if (v > MONEY_MAX || v < -MONEY_MAX)
		abort();
	for (size_t i = 0; i < size; i++) /* accepted text is plain ASCII */
		if (!((data[i] >= '0' && data[i] <= '9') || data[i] == '-' || data[i] == '.'))
			abort();
	check_round_trip(v);
	check_arithmetic(v);
	return 0;
}
