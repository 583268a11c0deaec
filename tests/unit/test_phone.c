/* Unit tests for domain/phone: normalisation to digits-only E.164 over
 * many countries' ways of writing numbers, rejects, calling codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "domain/phone.h"

struct norm_case {
	const char *in;
	enum phone_rc rc;
	const char *want; /* digits when PHONE_OK */
};

static const struct norm_case CASES[] = {
	/* Brazil */
	{ "+55 (11) 98765-4321", PHONE_OK, "5511987654321" },
	{ "55 11 98765 4321", PHONE_OK, "5511987654321" },
	{ "005511987654321", PHONE_OK, "5511987654321" },
	{ "+55.11.98765.4321", PHONE_OK, "5511987654321" },
	/* US / Canada */
	{ "+1 (415) 555-2671", PHONE_OK, "14155552671" },
	{ "1-415-555-2671", PHONE_OK, "14155552671" },
	{ "+1 416 555 0199", PHONE_OK, "14165550199" },
	{ "  +1 415.555.2671  ", PHONE_OK, "14155552671" },
	/* United Kingdom */
	{ "+44 20 7946 0958", PHONE_OK, "442079460958" },
	{ "0044 20 7946 0958", PHONE_OK, "442079460958" },
	{ "+44 (0)20 7946 0958", PHONE_OK, "442079460958" },
	{ "+44 7700 900123", PHONE_OK, "447700900123" },
	/* India */
	{ "+91 98765 43210", PHONE_OK, "919876543210" },
	{ "+91-98765-43210", PHONE_OK, "919876543210" },
	/* Germany */
	{ "+49 30 123456", PHONE_OK, "4930123456" },
	{ "+49 (0)30 123456", PHONE_OK, "4930123456" },
	{ "0049 151 23456789", PHONE_OK, "4915123456789" },
	{ "+49/30/123456", PHONE_OK, "4930123456" },
	/* Mexico (old mobile "1" kept as written) */
	{ "+52 1 55 1234 5678", PHONE_OK, "5215512345678" },
	{ "+52 55 1234 5678", PHONE_OK, "525512345678" },
	/* China */
	{ "+86 138 0013 8000", PHONE_OK, "8613800138000" },
	{ "+86 10 6552 9988", PHONE_OK, "861065529988" },
	/* Nigeria */
	{ "+234 803 123 4567", PHONE_OK, "2348031234567" },
	{ "00234 803 123 4567", PHONE_OK, "2348031234567" },
	/* Indonesia */
	{ "+62 812-3456-7890", PHONE_OK, "6281234567890" },
	/* more countries */
	{ "+33 1 23 45 67 89", PHONE_OK, "33123456789" },
	{ "+34 612 34 56 78", PHONE_OK, "34612345678" },
	{ "+351 912 345 678", PHONE_OK, "351912345678" },
	{ "+54 9 11 2345-6789", PHONE_OK, "5491123456789" },
	{ "+7 (495) 123-45-67", PHONE_OK, "74951234567" },
	{ "+81 90-1234-5678", PHONE_OK, "819012345678" },
	{ "+27 82 123 4567", PHONE_OK, "27821234567" },
	{ "+971 50 123 4567", PHONE_OK, "971501234567" },
	{ "+61 412 345 678", PHONE_OK, "61412345678" },
	{ "+852 6123 4567", PHONE_OK, "85261234567" },
	{ "+20 10 1234 5678", PHONE_OK, "201012345678" },
	{ "+90 532 123 45 67", PHONE_OK, "905321234567" },
	{ "+380 50 123 4567", PHONE_OK, "380501234567" },
	{ "12345678", PHONE_OK, "12345678" },               /* exactly 8 digits */
	{ "+1 234 567 890 123 45", PHONE_OK, "123456789012345" }, /* exactly 15 */
	/* rejects */
	{ "", PHONE_EMPTY, NULL },
	{ "   ", PHONE_EMPTY, NULL },
	{ "+", PHONE_TOO_SHORT, NULL },
	{ "+55 11 9876-ABCD", PHONE_BAD_CHAR, NULL },
	{ "call me", PHONE_BAD_CHAR, NULL },
	{ "+55 11 98765-4321 ext 12", PHONE_BAD_CHAR, NULL },
	{ "+55+11987654321", PHONE_BAD_CHAR, NULL },
	{ "*55 11 98765 4321#", PHONE_BAD_CHAR, NULL },
	{ "+55 11 98765\n4321", PHONE_BAD_CHAR, NULL },
	{ "+1 555 012", PHONE_TOO_SHORT, NULL },            /* 7 digits */
	{ "+55 1234", PHONE_TOO_SHORT, NULL },
	{ "+1 234 567 890 123 456", PHONE_TOO_LONG, NULL }, /* 16 digits */
	{ "5511987654321000000", PHONE_TOO_LONG, NULL },
	{ "(011) 98765-4321", PHONE_NO_COUNTRY_CODE, NULL }, /* national, trunk 0 */
	{ "011 98765 4321", PHONE_NO_COUNTRY_CODE, NULL },
	{ "0 20 7946 0958", PHONE_NO_COUNTRY_CODE, NULL },
	{ "+0 20 7946 0958", PHONE_NO_COUNTRY_CODE, NULL },
	{ "000 55 11 98765", PHONE_NO_COUNTRY_CODE, NULL },
	{ "+28 1234 5678", PHONE_UNKNOWN_COUNTRY, NULL },    /* zone 28x spare */
	{ "+80 1234 5678", PHONE_UNKNOWN_COUNTRY, NULL },
	{ "+999 1234 5678", PHONE_UNKNOWN_COUNTRY, NULL },
	{ "+259 1234 5678", PHONE_UNKNOWN_COUNTRY, NULL },
	{ "+800 1234 5678", PHONE_UNKNOWN_COUNTRY, NULL },   /* non-geographic */
	{ "+42 2 1234 5678", PHONE_UNKNOWN_COUNTRY, NULL },  /* 42x: only 420/421/423 */
};

static void test_normalize_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
		const struct norm_case *c = &CASES[i];
		char out[PHONE_BUF_LEN] = "junk";
		enum phone_rc rc = phone_normalize(c->in, out);
		if (rc != c->rc || (c->want && strcmp(out, c->want) != 0)) {
			print_error("case %zu \"%s\": rc %d want %d, out \"%s\" want \"%s\"\n", i,
				    c->in, rc, c->rc, out, c->want ? c->want : "");
			fail();
		}
		if (rc != PHONE_OK)
			assert_string_equal(out, "");
	}
}

static void test_normalize_null_and_messages(void **state)
{
	(void)state;
	char out[PHONE_BUF_LEN];
	assert_int_equal(phone_normalize(NULL, out), PHONE_EMPTY);
	assert_string_equal(out, "");
	for (int rc = PHONE_OK; rc <= PHONE_UNKNOWN_COUNTRY; rc++) {
		const char *m = phone_error_message((enum phone_rc)rc);
		assert_non_null(m);
		assert_true(strlen(m) > 0);
	}
	assert_non_null(strstr(phone_error_message(PHONE_TOO_LONG), "15"));
}

/* Two spellings of one number normalise to the same wa_id. */
static void test_spellings_agree(void **state)
{
	(void)state;
	static const char *const SPELLINGS[] = {
		"+55 (11) 98765-4321", "0055 11 98765 4321", "5511987654321", "55.11.98765.4321",
	};
	for (size_t i = 0; i < sizeof SPELLINGS / sizeof SPELLINGS[0]; i++) {
		char out[PHONE_BUF_LEN];
		assert_int_equal(phone_normalize(SPELLINGS[i], out), PHONE_OK);
		assert_string_equal(out, "5511987654321");
	}
}

static void test_calling_code(void **state)
{
	(void)state;
	static const struct {
		const char *digits;
		int code;
	} T[] = {
		{ "5511987654321", 55 }, { "14155552671", 1 },   { "442079460958", 44 },
		{ "919876543210", 91 },  { "4930123456", 49 },   { "5215512345678", 52 },
		{ "8613800138000", 86 }, { "2348031234567", 234 }, { "6281234567890", 62 },
		{ "74951234567", 7 },    { "85261234567", 852 }, { "971501234567", 971 },
		{ "3801234", 380 },      { "35312345", 353 },    { "0123", 0 },
		{ "28", 0 },             { "", 0 },              { "9", 0 },
		{ "99912345", 0 },       { "21", 0 },            { "212600000000", 212 },
	};
	for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
		int got = phone_calling_code(T[i].digits);
		if (got != T[i].code) {
			print_error("\"%s\": got %d want %d\n", T[i].digits, got, T[i].code);
			fail();
		}
	}
	assert_int_equal(phone_calling_code(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize_table),
		cmocka_unit_test(test_normalize_null_and_messages),
		cmocka_unit_test(test_spellings_agree),
		cmocka_unit_test(test_calling_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
