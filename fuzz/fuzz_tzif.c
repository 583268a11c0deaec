/* libFuzzer driver for core/tz's TZif parser.
 *
 * The input is a candidate TZif file. tz_parse must never read past the
 * input (ASan), and whatever it accepts must answer offsets within the
 * validated bound (+/- TZ_MAX_OFFSET) for instants across the whole
 * int32/int64 range, including after the last transition (the footer).
 *
 * Build and run (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c17 -D_GNU_SOURCE \
 *     -include src/core/banned.h -Isrc fuzz/fuzz_tzif.c src/core/tz.c \
 *     src/core/timeutil.c -o build-fuzz/fuzz_tzif
 *   mkdir -p fuzz/corpus-out/tzif
 *   build-fuzz/fuzz_tzif -max_total_time=60 -max_len=8192 \
 *     fuzz/corpus-out/tzif fuzz/corpus/tzif */
#include <stdint.h>
#include <stdlib.h>

#include "core/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t probes[] = { INT64_C(-10000000000), -2147483648LL, -1, 0, 1,
					  951782400, 1700000000, 2147483647LL,
					  INT64_C(4102444800), INT64_C(253402300799) };
	struct tz_zone *z = NULL;
	if (size > TZ_FILE_MAX || tz_parse(data, size, &z) != 0)
		return 0;
	for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
		int32_t off = tz_offset_at(z, probes[i]);
		if (off <= -TZ_MAX_OFFSET || off >= TZ_MAX_OFFSET)
			abort();
	}
	tz_free(z);
	return 0;
}
