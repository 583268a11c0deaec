/* libFuzzer driver for domain/csv: the streaming CSV reader of contact
 * imports (untrusted bytes). The input is fed in chunks whose size comes
 * from its first byte, so chunk boundaries land everywhere (BOM, CRLF,
 * doubled quotes split across feeds); each record's fields are checked
 * against the reader's own promises (bounds, NUL termination). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct csv_limits LIMITS = {
	.max_field_bytes = 64, .max_record_bytes = 256, .max_fields = 8, .max_records = 64,
};

static int check_record(void *ctx, const struct csv_record *rec)
{
	size_t total = 0;
	(void)ctx;
	if (rec->error != CSV_OK && rec->nfields != 0)
		abort();
	if (rec->nfields > LIMITS.max_fields || rec->line == 0)
		abort();
	for (size_t i = 0; i < rec->nfields; i++) {
		if (rec->lens[i] > LIMITS.max_field_bytes || rec->fields[i][rec->lens[i]] != '\0')
			abort();
		total += rec->lens[i];
	}
	if (total > LIMITS.max_record_bytes)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t chunk = (size_t)(data[0] % 7) + 1;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	struct csv_reader *r = csv_reader_new(&LIMITS, check_record, NULL);
	if (!r)
		return 0;
	enum csv_error e = CSV_OK;
	for (size_t off = 0; e == CSV_OK && off < len; off += chunk)
		e = csv_feed(r, in + off, len - off < chunk ? len - off : chunk);
	if (e == CSV_OK)
		e = csv_finish(r);
	if (csv_reader_records(r) > LIMITS.max_records)
		abort();
	csv_reader_free(r);
	return 0;
}
