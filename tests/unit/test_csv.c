/* Unit tests for domain/csv: the streaming RFC 4180 reader. Each case is
 * fed whole and byte by byte (the answers must match), and rendered as
 * "line:field|field|...;" per record ("line:!<error>;" for record errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "domain/csv.h"

#define OUT_MAX 4096

struct collect {
	char out[OUT_MAX];
	size_t len;
	int stop_after; /* 0 = never */
	int seen;
};

static void put(struct collect *c, const char *s, size_t n)
{
	if (c->len + n + 1 > sizeof c->out)
		fail_msg("collect buffer too small");
	memcpy(c->out + c->len, s, n);
	c->len += n;
	c->out[c->len] = '\0';
}

static int on_record(void *ctx, const struct csv_record *rec)
{
	struct collect *c = ctx;
	char head[64];
	int n = snprintf(head, sizeof head, "%llu:", (unsigned long long)rec->line);
	put(c, head, (size_t)n);
	if (rec->error != CSV_OK) {
		n = snprintf(head, sizeof head, "!%d", (int)rec->error);
		put(c, head, (size_t)n);
	} else if (rec->blank) {
		put(c, "<blank>", 7);
	}
	for (size_t i = 0; i < rec->nfields; i++) {
		if (i > 0)
			put(c, "|", 1);
		assert_int_equal(strlen(rec->fields[i]) <= rec->lens[i], 1);
		put(c, rec->fields[i], rec->lens[i]);
	}
	put(c, ";", 1);
	c->seen++;
	return c->stop_after && c->seen >= c->stop_after;
}

static const struct csv_limits SMALL = {
	.max_field_bytes = 16, .max_record_bytes = 40, .max_fields = 5, .max_records = 10,
};

/* Parse input with limits, chunk bytes at a time (0 = all at once). */
static enum csv_error parse(const char *in, size_t len, const struct csv_limits *lim,
			    size_t chunk, struct collect *c, uint64_t *line)
{
	struct csv_reader *r = csv_reader_new(lim, on_record, c);
	assert_non_null(r);
	enum csv_error e = CSV_OK;
	size_t step = chunk ? chunk : (len ? len : 1);
	for (size_t off = 0; e == CSV_OK && off < len; off += step)
		e = csv_feed(r, in + off, len - off < step ? len - off : step);
	if (e == CSV_OK)
		e = csv_finish(r);
	*line = csv_reader_line(r);
	csv_reader_free(r);
	return e;
}

struct csv_case {
	const char *name;
	const char *in;
	size_t len; /* 0 = strlen */
	enum csv_error err;
	const char *want;
	uint64_t err_line; /* when err is a stream error */
};

static const struct csv_case CASES[] = {
	{ "simple LF", "a,b,c\n1,2,3\n", 0, CSV_OK, "1:a|b|c;2:1|2|3;", 0 },
	{ "CRLF", "a,b\r\n1,2\r\n", 0, CSV_OK, "1:a|b;2:1|2;", 0 },
	{ "lone CR", "a,b\r1,2\r", 0, CSV_OK, "1:a|b;2:1|2;", 0 },
	{ "no final newline", "a,b\n1,2", 0, CSV_OK, "1:a|b;2:1|2;", 0 },
	{ "empty input", "", 0, CSV_OK, "", 0 },
	{ "BOM", "\xEF\xBB\xBFphone,name\n1,x\n", 0, CSV_OK, "1:phone|name;2:1|x;", 0 },
	{ "partial BOM is data", "\xEF\xBBx\n", 0, CSV_OK, "1:\xEF\xBBx;", 0 },
	{ "quoted comma", "\"a,b\",c\n", 0, CSV_OK, "1:a,b|c;", 0 },
	{ "doubled quotes", "\"say \"\"hi\"\"\",x\n", 0, CSV_OK, "1:say \"hi\"|x;", 0 },
	{ "quoted newline moves lines", "\"l1\nl2\",x\nnext,y\n", 0, CSV_OK,
	  "1:l1\nl2|x;3:next|y;", 0 },
	{ "quoted CRLF kept", "\"a\r\nb\"\r\nc\r\n", 0, CSV_OK, "1:a\r\nb;3:c;", 0 },
	{ "empty fields", ",,\n", 0, CSV_OK, "1:||;", 0 },
	{ "empty quoted", "\"\",x\n", 0, CSV_OK, "1:|x;", 0 },
	{ "blank lines", "a\n\n\r\nb\n", 0, CSV_OK, "1:a;2:<blank>;3:<blank>;4:b;", 0 },
	{ "quote mid field is data", "5'11\" tall,d\nok\n", 0, CSV_OK, "1:5'11\" tall|d;2:ok;", 0 },
	{ "junk after closing quote", "\"ab\"c,d\nok\n", 0, CSV_OK, "1:!4;2:ok;", 0 },
	{ "field too long", "12345678901234567,x\nok\n", 0, CSV_OK, "1:!1;2:ok;", 0 },
	{ "field too long quoted with newline", "\"12345678901234567\n,\",x\nok\n", 0,
	  CSV_OK, "1:!1;3:ok;", 0 },
	{ "record too long", "123456789012345,123456789012345,1234567890123\nok\n", 0,
	  CSV_OK, "1:!2;2:ok;", 0 },
	{ "too many fields", "1,2,3,4,5,6\nok\n", 0, CSV_OK, "1:!3;2:ok;", 0 },
	{ "exactly max fields", "1,2,3,4,5\n", 0, CSV_OK, "1:1|2|3|4|5;", 0 },
	{ "exactly max field", "1234567890123456\n", 0, CSV_OK, "1:1234567890123456;", 0 },
	{ "unterminated quote", "a\n\"open,x\nmore\n", 0, CSV_ERR_UNTERMINATED_QUOTE, "1:a;",
	  2 },
	{ "too many records", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", 0,
	  CSV_ERR_TOO_MANY_RECORDS, "1:1;2:2;3:3;4:4;5:5;6:6;7:7;8:8;9:9;10:10;", 11 },
	{ "NUL byte in field", "a\0b,c\n", 6, CSV_OK, "1:a\0b|c;", 0 },
	{ "utf8", "Jos\xC3\xA9,\xE2\x82\xAC\n", 0, CSV_OK, "1:Jos\xC3\xA9|\xE2\x82\xAC;", 0 },
};

static void run_case(const struct csv_case *c, size_t chunk)
{
	struct collect col = { .len = 0 };
	uint64_t line = 0;
	size_t len = c->len ? c->len : strlen(c->in);
	size_t want_len = strlen(c->want);
	enum csv_error e = parse(c->in, len, &SMALL, chunk, &col, &line);
	if (e != c->err)
		fail_msg("%s (chunk %zu): error %d want %d", c->name, chunk, e, c->err);
	if (c->len == 0) {
		if (col.len != want_len || memcmp(col.out, c->want, want_len) != 0)
			fail_msg("%s (chunk %zu): got \"%s\" want \"%s\"", c->name, chunk, col.out,
				 c->want);
	} else {
		/* the NUL case: compare byte for byte with the known length */
		assert_int_equal(col.len, 8);
		assert_memory_equal(col.out, "1:a\0b|c;", 8);
	}
	if (c->err != CSV_OK && c->err_line)
		assert_int_equal(line, c->err_line);
}

static void test_cases_whole_and_bytewise(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
		run_case(&CASES[i], 0);
		run_case(&CASES[i], 1);
		run_case(&CASES[i], 2);
	}
}

static void test_callback_stops(void **state)
{
	(void)state;
	struct collect col = { .stop_after = 2 };
	uint64_t line = 0;
	const char *in = "a\nb\nc\nd\n";
	enum csv_error e = parse(in, strlen(in), &SMALL, 0, &col, &line);
	assert_int_equal(e, CSV_ERR_STOPPED);
	assert_string_equal(col.out, "1:a;2:b;");
	assert_int_equal(line, 2);
}

static void test_feed_after_error_refused(void **state)
{
	(void)state;
	struct collect col = { .len = 0 };
	struct csv_limits lim = SMALL;
	lim.max_records = 1;
	struct csv_reader *r = csv_reader_new(&lim, on_record, &col);
	assert_non_null(r);
	assert_int_equal(csv_feed(r, "a\nb\n", 4), CSV_ERR_TOO_MANY_RECORDS);
	assert_int_equal(csv_feed(r, "c\n", 2), CSV_ERR_TOO_MANY_RECORDS);
	assert_int_equal(csv_finish(r), CSV_ERR_TOO_MANY_RECORDS);
	assert_int_equal(csv_reader_records(r), 1);
	assert_string_equal(col.out, "1:a;");
	csv_reader_free(r);
}

static void test_bad_limits(void **state)
{
	(void)state;
	struct collect col = { .len = 0 };
	struct csv_limits lim = SMALL;
	lim.max_fields = 0;
	assert_null(csv_reader_new(&lim, on_record, &col));
	assert_null(csv_reader_new(&SMALL, NULL, &col));
	assert_null(csv_reader_new(NULL, on_record, &col));
	csv_reader_free(NULL);
	for (int e = CSV_OK; e <= CSV_ERR_NOMEM; e++)
		assert_true(strlen(csv_error_message((enum csv_error)e)) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases_whole_and_bytewise),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_feed_after_error_refused),
		cmocka_unit_test(test_bad_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
