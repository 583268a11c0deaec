/* csv: a streaming RFC 4180 reader (push parser).
 *
 * Design note
 * - Bytes are fed in chunks of any size (csv_feed), then csv_finish; each
 *   complete record is handed to a callback with its fields and the
 *   physical line it started on (1-based; a quoted field may span lines,
 *   so the next record's line accounts for them). Memory is bounded by
 *   one record: at most max_record_bytes of field bytes and max_fields
 *   fields, both held in the reader.
 * - Accepted: quoted fields with doubled quotes ("a ""b"""), separators
 *   and line breaks inside quotes, CRLF, LF or lone CR line ends, a UTF-8
 *   BOM at the very start (skipped), no final line break. Leniently, a
 *   '"' inside an unquoted field is data (5'11" stays 5'11"), as most
 *   readers do, so one stray quote cannot swallow the following lines.
 * - Record errors (a field longer than max_field_bytes, a record longer
 *   than max_record_bytes or with more than max_fields fields, a stray
 *   character after a closing quote) do
 *   not stop the reader: the rest of that record is skipped and the
 *   callback gets it with `error` set and no fields, so the caller can
 *   report the line and go on.
 * - Stream errors stop it: more than max_records records
 *   (CSV_ERR_TOO_MANY_RECORDS) or a quote still open at csv_finish
 *   (CSV_ERR_UNTERMINATED_QUOTE). The reader keeps the line of the error.
 * - Field bytes are passed through as they are (no UTF-8 check, NUL bytes
 *   included): each field is also NUL-terminated, callers that need text
 *   check len == strlen. */
#ifndef PYTAKE_CSV_H
#define PYTAKE_CSV_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum csv_error {
	CSV_OK = 0,
	CSV_ERR_FIELD_TOO_LONG,     /* record error */
	CSV_ERR_RECORD_TOO_LONG,    /* record error */
	CSV_ERR_TOO_MANY_FIELDS,    /* record error */
	CSV_ERR_BAD_QUOTE,          /* record error: a character after a closing quote ("ab"c) */
	CSV_ERR_TOO_MANY_RECORDS,   /* stream error */
	CSV_ERR_UNTERMINATED_QUOTE, /* stream error (at csv_finish) */
	CSV_ERR_STOPPED,            /* the callback asked to stop */
	CSV_ERR_NOMEM,              /* stream error: could not allocate the buffers */
};

/* Human text for an error ("field is longer than the limit", ...). */
const char *csv_error_message(enum csv_error e);

struct csv_limits {
	size_t max_field_bytes;   /* bytes of one field's value */
	size_t max_record_bytes;  /* bytes of all field values of one record */
	size_t max_fields;        /* fields per record */
	uint64_t max_records;     /* records in the stream (blank lines count) */
};

struct csv_record {
	uint64_t line;            /* physical line the record starts on, 1-based */
	uint64_t index;           /* 0-based record number in the stream */
	enum csv_error error;     /* CSV_OK, or a record error (then nfields = 0) */
	size_t nfields;
	const char *const *fields; /* each NUL-terminated, nfields entries */
	const size_t *lens;
	bool blank;               /* an empty line: one unquoted empty field */
};

/* Called once per record. Return 0 to go on, non-zero to stop (csv_feed
 * then returns CSV_ERR_STOPPED). rec and its fields are valid during the
 * call only. */
typedef int (*csv_record_fn)(void *ctx, const struct csv_record *rec);

struct csv_reader; /* opaque */

/* A reader with these limits (each must be > 0). NULL on out of memory or
 * a zero limit. Free with csv_reader_free. */
struct csv_reader *csv_reader_new(const struct csv_limits *limits, csv_record_fn fn,
				  void *ctx);
/* csv_reader_free(NULL) is a no-op. */
void csv_reader_free(struct csv_reader *r);

/* Feed len bytes. CSV_OK, or a stream error / CSV_ERR_STOPPED (the reader
 * then refuses further input with the same error). */
enum csv_error csv_feed(struct csv_reader *r, const char *data, size_t len)
	__attribute__((warn_unused_result));
/* End of input: emits a last record without a line break, then checks no
 * quote is open. CSV_OK or an error as for csv_feed. */
enum csv_error csv_finish(struct csv_reader *r) __attribute__((warn_unused_result));

/* Line where the reader stopped with a stream error (or the current line),
 * and the number of records delivered so far. */
uint64_t csv_reader_line(const struct csv_reader *r);
uint64_t csv_reader_records(const struct csv_reader *r);

#endif
