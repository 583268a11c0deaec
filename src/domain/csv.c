/* csv: streaming RFC 4180 reader (see csv.h). A byte-at-a-time state
 * machine; field bytes go into one record buffer, each field followed by
 * a NUL. */
#include "domain/csv.h"

#include <stdlib.h>
#include <string.h>

enum csv_state {
	ST_FIELD_START,  /* at the start of a field */
	ST_UNQUOTED,     /* inside an unquoted field */
	ST_QUOTED,       /* inside a quoted field */
	ST_QUOTE_SEEN,   /* a '"' inside a quoted field: end, or the first of "" */
	ST_SKIP,         /* record error: skipping to the end of the record */
	ST_SKIP_QUOTED,  /* ... and inside quotes while skipping */
};

static const unsigned char BOM[3] = { 0xEF, 0xBB, 0xBF };

struct csv_reader {
	struct csv_limits lim;
	csv_record_fn fn;
	void *ctx;
	char *buf;               /* max_record_bytes + max_fields + 1 */
	size_t pos;              /* bytes used in buf */
	size_t field_start, field_len, record_bytes, raw_bytes;
	size_t *starts, *lens;   /* max_fields each */
	const char **ptrs;
	size_t nfields;
	enum csv_state st;
	enum csv_error rec_err;
	enum csv_error stream_err;
	bool in_record, prev_cr, bom_done;
	int bom_n;
	uint64_t line, rec_line, records, err_line;
};

const char *csv_error_message(enum csv_error e)
{
	switch (e) {
	case CSV_OK:
		return "ok";
	case CSV_ERR_FIELD_TOO_LONG:
		return "a field is longer than the limit";
	case CSV_ERR_RECORD_TOO_LONG:
		return "the line is longer than the limit";
	case CSV_ERR_TOO_MANY_FIELDS:
		return "the line has too many fields";
	case CSV_ERR_BAD_QUOTE:
		return "misplaced double quote (quote the whole field and double inner quotes)";
	case CSV_ERR_TOO_MANY_RECORDS:
		return "too many lines";
	case CSV_ERR_UNTERMINATED_QUOTE:
		return "a quoted field is not closed before the end of the input";
	case CSV_ERR_STOPPED:
		return "stopped";
	case CSV_ERR_NOMEM:
		return "out of memory";
	}
	return "invalid CSV";
}

struct csv_reader *csv_reader_new(const struct csv_limits *limits, csv_record_fn fn,
				  void *ctx)
{
	struct csv_reader *r = NULL;
	if (!limits || !fn || limits->max_field_bytes == 0 || limits->max_record_bytes == 0 ||
	    limits->max_fields == 0 || limits->max_records == 0 ||
	    limits->max_fields > SIZE_MAX / 4 / sizeof(size_t) ||
	    limits->max_record_bytes > SIZE_MAX / 2)
		return NULL;
	r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->lim = *limits;
	r->fn = fn;
	r->ctx = ctx;
	r->buf = malloc(limits->max_record_bytes + limits->max_fields + 1);
	r->starts = calloc(limits->max_fields, sizeof *r->starts);
	r->lens = calloc(limits->max_fields, sizeof *r->lens);
	r->ptrs = calloc(limits->max_fields, sizeof *r->ptrs);
	if (!r->buf || !r->starts || !r->lens || !r->ptrs) {
		csv_reader_free(r);
		return NULL;
	}
	r->line = 1;
	r->st = ST_FIELD_START;
	return r;
}

void csv_reader_free(struct csv_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r->starts);
	free(r->lens);
	free(r->ptrs);
	free(r);
}

uint64_t csv_reader_line(const struct csv_reader *r)
{
	return r->stream_err != CSV_OK ? r->err_line : r->line;
}

uint64_t csv_reader_records(const struct csv_reader *r)
{
	return r->records;
}

/* ---- record assembly ---------------------------------------------------- */

static void begin_record(struct csv_reader *r)
{
	r->in_record = true;
	r->rec_line = r->line;
	r->pos = r->field_start = r->field_len = 0;
	r->record_bytes = r->raw_bytes = 0;
	r->nfields = 0;
	r->rec_err = CSV_OK;
	r->st = ST_FIELD_START;
}

/* Enter the skipping state with error e (the first error of a record wins). */
static void record_error(struct csv_reader *r, enum csv_error e, bool in_quotes)
{
	if (r->rec_err == CSV_OK)
		r->rec_err = e;
	r->st = in_quotes ? ST_SKIP_QUOTED : ST_SKIP;
}

static void append(struct csv_reader *r, char ch, bool in_quotes)
{
	if (r->field_len + 1 > r->lim.max_field_bytes) {
		record_error(r, CSV_ERR_FIELD_TOO_LONG, in_quotes);
		return;
	}
	if (r->record_bytes + 1 > r->lim.max_record_bytes) {
		record_error(r, CSV_ERR_RECORD_TOO_LONG, in_quotes);
		return;
	}
	r->buf[r->pos++] = ch;
	r->field_len++;
	r->record_bytes++;
}

/* Close the current field; false (record error set) when there are too many. */
static bool end_field(struct csv_reader *r)
{
	if (r->nfields >= r->lim.max_fields) {
		record_error(r, CSV_ERR_TOO_MANY_FIELDS, false);
		return false;
	}
	r->buf[r->pos++] = '\0';
	r->starts[r->nfields] = r->field_start;
	r->lens[r->nfields] = r->field_len;
	r->nfields++;
	r->field_start = r->pos;
	r->field_len = 0;
	r->st = ST_FIELD_START;
	return true;
}

static enum csv_error stream_error(struct csv_reader *r, enum csv_error e, uint64_t line)
{
	r->stream_err = e;
	r->err_line = line;
	return e;
}

static enum csv_error end_record(struct csv_reader *r)
{
	struct csv_record rec = { .line = r->rec_line, .index = r->records,
				  .error = r->rec_err };
	r->in_record = false;
	r->st = ST_FIELD_START;
	if (r->records >= r->lim.max_records)
		return stream_error(r, CSV_ERR_TOO_MANY_RECORDS, r->rec_line);
	r->records++;
	if (rec.error == CSV_OK) {
		for (size_t i = 0; i < r->nfields; i++)
			r->ptrs[i] = r->buf + r->starts[i];
		rec.nfields = r->nfields;
		rec.fields = r->ptrs;
		rec.lens = r->lens;
		rec.blank = r->raw_bytes == 0;
	}
	if (r->fn(r->ctx, &rec) != 0)
		return stream_error(r, CSV_ERR_STOPPED, r->rec_line);
	return CSV_OK;
}

/* A line end outside quotes: close the field (unless skipping) and the record. */
static enum csv_error line_end(struct csv_reader *r)
{
	if (r->st != ST_SKIP)
		(void)end_field(r);
	return end_record(r);
}

/* ---- the state machine -------------------------------------------------- */

static enum csv_error step(struct csv_reader *r, char ch)
{
	bool eol = ch == '\r' || ch == '\n';
	switch (r->st) {
	case ST_FIELD_START:
		if (ch == '"')
			r->st = ST_QUOTED;
		else if (ch == ',')
			(void)end_field(r);
		else if (eol)
			return line_end(r);
		else {
			r->st = ST_UNQUOTED;
			append(r, ch, false);
		}
		break;
	case ST_UNQUOTED:
		if (ch == ',')
			(void)end_field(r);
		else if (eol)
			return line_end(r);
		else
			append(r, ch, false); /* a '"' mid-field is data (lenient) */
		break;
	case ST_QUOTED:
		if (ch == '"')
			r->st = ST_QUOTE_SEEN;
		else
			append(r, ch, true);
		break;
	case ST_QUOTE_SEEN:
		if (ch == '"') {
			r->st = ST_QUOTED;
			append(r, '"', true);
		} else if (ch == ',') {
			(void)end_field(r);
		} else if (eol) {
			return line_end(r);
		} else {
			record_error(r, CSV_ERR_BAD_QUOTE, false);
		}
		break;
	case ST_SKIP:
		if (ch == '"')
			r->st = ST_SKIP_QUOTED;
		else if (eol)
			return end_record(r);
		break;
	case ST_SKIP_QUOTED:
		if (ch == '"')
			r->st = ST_SKIP;
		break;
	}
	return CSV_OK;
}

static bool in_quotes(const struct csv_reader *r)
{
	return r->st == ST_QUOTED || r->st == ST_SKIP_QUOTED;
}

/* One input byte: line counting and CRLF folding around step(). */
static enum csv_error process_byte(struct csv_reader *r, char ch)
{
	bool was_cr = r->prev_cr;
	enum csv_error e = CSV_OK;
	r->prev_cr = ch == '\r';
	if (ch == '\n' && was_cr) {
		/* the LF of a CRLF: the CR already ended the line */
		if (in_quotes(r))
			e = step(r, ch);
		return e;
	}
	if (!r->in_record)
		begin_record(r);
	bool eol = ch == '\r' || ch == '\n';
	if (!eol || in_quotes(r))
		r->raw_bytes++;
	e = step(r, ch);
	if (eol)
		r->line++;
	return e;
}

enum csv_error csv_feed(struct csv_reader *r, const char *data, size_t len)
{
	enum csv_error e = r->stream_err;
	size_t i = 0;
	for (; e == CSV_OK && i < len && !r->bom_done; i++) {
		if ((unsigned char)data[i] == BOM[r->bom_n]) {
			if (++r->bom_n == 3)
				r->bom_done = true;
			continue;
		}
		r->bom_done = true;
		for (int k = 0; e == CSV_OK && k < r->bom_n; k++)
			e = process_byte(r, (char)BOM[k]);
		if (e == CSV_OK)
			e = process_byte(r, data[i]);
	}
	for (; e == CSV_OK && i < len; i++)
		e = process_byte(r, data[i]);
	return e;
}

enum csv_error csv_finish(struct csv_reader *r)
{
	enum csv_error e = r->stream_err;
	if (e != CSV_OK)
		return e;
	if (!r->bom_done) {
		r->bom_done = true;
		for (int k = 0; e == CSV_OK && k < r->bom_n; k++)
			e = process_byte(r, (char)BOM[k]);
		if (e != CSV_OK)
			return e;
	}
	if (!r->in_record)
		return CSV_OK;
	if (in_quotes(r))
		return stream_error(r, CSV_ERR_UNTERMINATED_QUOTE, r->rec_line);
	return line_end(r);
}
