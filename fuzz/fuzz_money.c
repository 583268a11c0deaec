/* libFuzzer driver for core/money parsing and formatting.
 *
 * The input is a candidate amount. Whatever money_parse_n accepts must be
 * within +/- MONEY_MAX, re-format to a text that parses back to the same
 * value (full and shortest forms), and round half-even for presentation
 * without leaving the range by more than one minor unit. Arithmetic on the
 * value must either succeed exactly or report MONEY_ERR_RANGE.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t v = 0;
	int rc = money_parse_n((const char *)data, size, &v);
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
