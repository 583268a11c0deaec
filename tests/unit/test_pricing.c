/* Unit tests for domain/pricing: market by longest calling-code prefix,
 * the rate in force at a moment, OTHER fallback, card parsing and
 * validation (CSV and JSON), and storing/seeding on SQLite (identical rows
 * ignored, different ones a conflict, a later card leaving earlier rates in
 * force for earlier moments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/json.h"
#include "core/money.h"
#include "db/migrate.h"
#include "domain/pricing.h"

static int64_t day(const char *date)
{
	int64_t us = 0;
	if (!pricing_parse_date(date, &us))
		fail_msg("bad test date %s", date);
	return us;
}

static struct pricing_rate mk(const char *market, const char *codes, const char *category,
			      const char *rate, const char *from)
{
	struct pricing_rate r;
	memset(&r, 0, sizeof r);
	snprintf(r.market, sizeof r.market, "%s", market);
	snprintf(r.calling_codes, sizeof r.calling_codes, "%s", codes);
	snprintf(r.category, sizeof r.category, "%s", category);
	snprintf(r.currency, sizeof r.currency, "USD");
	if (money_parse(rate, &r.rate) != MONEY_OK)
		fail_msg("bad test rate %s", rate);
	r.effective_from = day(from);
	return r;
}

static struct pricing_card *test_card(void)
{
	struct pricing_rate rates[] = {
		mk("NORTH_AMERICA", "1", "utility", "0.0040", "2025-01-01"),
		mk("NORTH_AMERICA", "1", "utility", "0.0034", "2026-10-01"),
		mk("NORTH_AMERICA", "1", "marketing", "0.0250", "2025-01-01"),
		mk("JM", "1876", "utility", "0.0100", "2025-01-01"),
		mk("BR", "55", "marketing", "0.0625", "2025-01-01"),
		mk("IN", "91", "authentication_international", "0.0280", "2025-01-01"),
		mk("IN", "91", "utility", "0.0014", "2025-01-01"),
		mk("CO", "57", "utility", "0.0008", "2026-10-01"),
		mk("OTHER", "", "marketing", "0.0600", "2025-01-01"),
		mk("OTHER", "", "utility", "0.0080", "2025-01-01"),
	};
	struct pricing_card *card = pricing_card_from_rates(rates, sizeof rates / sizeof rates[0]);
	assert_non_null(card);
	return card;
}

struct market_case {
	const char *digits, *at, *market;
};

static const struct market_case market_cases[] = {
	{ "14155552671", "2026-11-29", "NORTH_AMERICA" },
	{ "18765551234", "2026-11-29", "JM" },          /* 1876 beats 1 */
	{ "1876", "2026-11-29", "JM" },
	{ "187", "2026-11-29", "NORTH_AMERICA" },       /* too short for 1876 */
	{ "5511987654321", "2026-11-29", "BR" },
	{ "919876543210", "2026-11-29", "IN" },
	{ "442079460958", "2026-11-29", "OTHER" },      /* no UK market */
	{ "", "2026-11-29", "OTHER" },
	{ "573001234567", "2026-11-29", "CO" },
	{ "573001234567", "2026-09-30", "OTHER" },      /* CO not in force yet */
	{ "14155552671", "2024-12-31", "OTHER" },       /* nothing in force yet */
};

static void test_market_longest_prefix(void **state)
{
	(void)state;
	struct pricing_card *card = test_card();
	for (size_t i = 0; i < sizeof market_cases / sizeof market_cases[0]; i++) {
		const struct market_case *c = &market_cases[i];
		char market[PRICING_MARKET_LEN];
		pricing_market_for(card, c->digits, day(c->at) + 3600000000LL, market);
		if (strcmp(market, c->market))
			fail_msg("%s at %s: %s, want %s", c->digits, c->at, market, c->market);
	}
	pricing_card_release(card);
}

static void test_rate_in_force(void **state)
{
	(void)state;
	struct pricing_card *card = test_card();
	const struct pricing_rate *r;
	int64_t switch_at = day("2026-10-01");
	r = pricing_rate_in_force(card, "NORTH_AMERICA", "utility", switch_at - 1);
	assert_non_null(r);
	assert_int_equal(r->rate, 4000);
	r = pricing_rate_in_force(card, "NORTH_AMERICA", "utility", switch_at);
	assert_non_null(r);
	assert_int_equal(r->rate, 3400);
	assert_int_equal(r->effective_from, switch_at);
	r = pricing_rate_in_force(card, "NORTH_AMERICA", "utility", day("2030-01-01"));
	assert_int_equal(r->rate, 3400);
	assert_null(pricing_rate_in_force(card, "NORTH_AMERICA", "utility", day("2025-01-01") - 1));
	assert_null(pricing_rate_in_force(card, "BR", "utility", switch_at));
	assert_null(pricing_rate_in_force(card, "XX", "utility", switch_at));
	/* Meta's hyphenated spelling and upper case are normalised */
	r = pricing_rate_in_force(card, "IN", "AUTHENTICATION-INTERNATIONAL", switch_at);
	assert_non_null(r);
	assert_int_equal(r->rate, 28000);
	pricing_card_release(card);
}

static void test_quote(void **state)
{
	(void)state;
	struct pricing_card *card = test_card();
	struct pricing_quote q;
	int64_t at = day("2026-11-29");
	assert_int_equal(pricing_quote(card, "5511987654321", "marketing", at, &q), 0);
	assert_string_equal(q.market, "BR");
	assert_string_equal(q.rate_market, "BR");
	assert_int_equal(q.rate, 62500);
	assert_string_equal(q.currency, "USD");
	/* CO has no marketing rate: OTHER's, market stays CO */
	assert_int_equal(pricing_quote(card, "573001234567", "marketing", at, &q), 0);
	assert_string_equal(q.market, "CO");
	assert_string_equal(q.rate_market, "OTHER");
	assert_int_equal(q.rate, 60000);
	/* unknown country */
	assert_int_equal(pricing_quote(card, "442079460958", "utility", at, &q), 0);
	assert_string_equal(q.market, "OTHER");
	assert_int_equal(q.rate, 8000);
	/* nobody prices "service" */
	assert_int_equal(pricing_quote(card, "5511987654321", "service", at, &q), PRICING_NO_RATE);
	assert_string_equal(q.market, "BR");
	assert_int_equal(pricing_quote(card, "5511987654321", "", at, &q), PRICING_NO_RATE);
	/* 10,000 NA utility messages after the switch cost exactly 34 */
	assert_int_equal(pricing_quote(card, "14155552671", "utility", at, &q), 0);
	int64_t total;
	assert_int_equal(money_mul_count(q.rate, 10000, &total), MONEY_OK);
	assert_int_equal(total, 34 * MONEY_SCALE);
	pricing_card_release(card);
}

static void test_in_force_list(void **state)
{
	(void)state;
	struct pricing_card *card = test_card();
	const struct pricing_rate **list = NULL;
	int n = 0;
	assert_int_equal(pricing_card_in_force(card, day("2026-11-29"), &list, &n), 0);
	assert_int_equal(n, 9); /* 10 rows, NA utility twice */
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i]->market, "NORTH_AMERICA") && !strcmp(list[i]->category, "utility"))
			assert_int_equal(list[i]->rate, 3400);
	free(list);
	assert_int_equal(pricing_card_in_force(card, day("2026-01-01"), &list, &n), 0);
	assert_int_equal(n, 8); /* no CO yet */
	free(list);
	pricing_card_release(card);
}

static void test_dates(void **state)
{
	(void)state;
	int64_t us;
	char buf[PRICING_DATE_LEN];
	assert_true(pricing_parse_date("2026-10-01", &us));
	assert_string_equal(pricing_format_date(us, buf), "2026-10-01");
	assert_true(pricing_parse_date("2024-02-29", &us));
	assert_false(pricing_parse_date("2025-02-29", &us));
	assert_false(pricing_parse_date("2025-13-01", &us));
	assert_false(pricing_parse_date("2025-1-01", &us));
	assert_false(pricing_parse_date("01/01/2025", &us));
	assert_false(pricing_parse_date("2025-01-01T00:00:00Z", &us));
	assert_false(pricing_parse_date("1969-12-31", &us));
	assert_false(pricing_parse_date("", &us));
}

/* ---- parsing ------------------------------------------------------------- */

static bool has_detail(const json_t *arr, const char *field, const char *needle)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		const char *f = json_string_value(json_object_get(e, "field"));
		const char *m = json_string_value(json_object_get(e, "message"));
		if (f && m && !strcmp(f, field) && strstr(m, needle))
			return true;
	}
	return false;
}

static void test_seed_parses(void **state)
{
	(void)state;
	struct pricing_upload up = PRICING_UPLOAD_INIT;
	struct json_check chk = JSON_CHECK_INIT;
	assert_int_equal(pricing_parse_csv(pricing_seed_csv, pricing_seed_csv_len, &up, &chk), 0);
	pricing_check_upload(&up, &chk);
	assert_true(json_check_ok(&chk));
	assert_int_equal(up.n, 22);
	assert_string_equal(up.rows[0].market, "NORTH_AMERICA");
	assert_int_equal(up.rows[0].rate, 25000);
	assert_string_equal(up.where[0], "line 2");
	pricing_upload_release(&up);
	json_check_release(&chk);
}

static void test_csv_errors(void **state)
{
	(void)state;
	static const char csv[] =
		"market,calling_codes,category,rate,currency,effective_from\r\n"
		"BR,55,marketing,0.0625,USD,2025-01-01\r\n"
		"BR,55,utility,\"0,05\",USD,2025-01-01\r\n"
		"BR,55,gossip,0.01,USD,2025-01-01\r\n"
		"BR,55,authentication,-0.01,USD,2025-01-01\r\n"
		"BR,55,service,0.01,USD,2025-02-30\r\n"
		"OTHER,44,utility,0.01,USD,2025-01-01\r\n"
		"IN,,utility,0.01,USD,2025-01-01\r\n"
		"br,55,utility,0.01,USD,2025-01-01\r\n"
		"IN,91,marketing,0.01,EUR,2025-01-01\r\n"
		"BR,55,marketing,0.0700,USD,2025-01-01\r\n"
		"AR,55,marketing,0.0700,USD,2025-01-01\r\n"
		"IN,91,utility,0.0000001,USD,2025-01-01\r\n"
		"IN,91\r\n";
	struct pricing_upload up = PRICING_UPLOAD_INIT;
	struct json_check chk = JSON_CHECK_INIT;
	assert_int_equal(pricing_parse_csv(csv, sizeof csv - 1, &up, &chk), 0);
	pricing_check_upload(&up, &chk);
	assert_false(json_check_ok(&chk));
	const json_t *e = chk.rule_errors;
	assert_false(has_detail(e, "line 2", ""));
	assert_true(has_detail(e, "line 3", "rate: \"0,05\""));
	assert_true(has_detail(e, "line 4", "category"));
	assert_true(has_detail(e, "line 5", "negative"));
	assert_true(has_detail(e, "line 6", "effective_from"));
	assert_true(has_detail(e, "line 7", "calling_codes: must be empty for OTHER"));
	assert_true(has_detail(e, "line 8", "calling_codes: at least one"));
	assert_true(has_detail(e, "line 9", "market"));
	assert_true(has_detail(e, "line 10", "currency EUR differs"));
	assert_true(has_detail(e, "line 11", "appears twice"));
	assert_true(has_detail(e, "line 12", "calling code 55 is also in market BR"));
	assert_true(has_detail(e, "line 13", "6 decimals"));
	assert_true(has_detail(e, "line 14", "has 2 fields"));
	assert_null(chk.type_errors);
	pricing_upload_release(&up);
	json_check_release(&chk);
}

static void test_csv_missing_column(void **state)
{
	(void)state;
	static const char csv[] = "market,calling_codes,category,currency,effective_from\n"
				  "BR,55,marketing,USD,2025-01-01\n";
	struct pricing_upload up = PRICING_UPLOAD_INIT;
	struct json_check chk = JSON_CHECK_INIT;
	assert_int_equal(pricing_parse_csv(csv, sizeof csv - 1, &up, &chk), 0);
	assert_true(has_detail(chk.rule_errors, "header", "missing column \"rate\""));
	assert_int_equal(up.n, 0);
	json_check_release(&chk);
	pricing_upload_release(&up);
	/* empty body */
	struct json_check chk2 = JSON_CHECK_INIT;
	assert_int_equal(pricing_parse_csv("", 0, &up, &chk2), 0);
	assert_true(has_detail(chk2.rule_errors, "header", "empty"));
	json_check_release(&chk2);
	pricing_upload_release(&up);
}

static void test_json_parse(void **state)
{
	(void)state;
	json_t *body = json_loads(
		"{\"rates\": ["
		"{\"market\": \"BR\", \"calling_codes\": [\"55\"], \"category\": \"marketing\","
		" \"rate\": \"0.0625\", \"currency\": \"USD\", \"effective_from\": \"2027-01-01\"},"
		"{\"market\": \"NORTH_AMERICA\", \"calling_codes\": [\"1876\", \"1\", \"1\"],"
		" \"category\": \"utility\", \"rate\": \"0.0034\", \"currency\": \"USD\","
		" \"effective_from\": \"2027-01-01\"},"
		"{\"market\": \"IN\", \"calling_codes\": [\"91\"], \"category\": \"utility\","
		" \"rate\": \"1e3\", \"currency\": \"USD\"}"
		"]}", 0, NULL);
	assert_non_null(body);
	struct pricing_upload up = PRICING_UPLOAD_INIT;
	struct json_check chk = JSON_CHECK_INIT;
	assert_int_equal(pricing_parse_json(body, &up, &chk), 0);
	assert_int_equal(up.n, 3);
	assert_string_equal(up.rows[1].calling_codes, "1 1876"); /* sorted, deduplicated */
	assert_true(has_detail(chk.rule_errors, "rates[2].rate", "1e3"));
	assert_true(has_detail(chk.rule_errors, "rates[2].effective_from", "required"));
	assert_false(has_detail(chk.rule_errors, "rates[0].rate", ""));
	assert_null(chk.type_errors);
	json_check_release(&chk);
	pricing_upload_release(&up);
	json_decref(body);

	/* a JSON number for money is a type error (400) */
	body = json_loads("{\"rates\": [{\"market\": \"BR\", \"calling_codes\": [\"55\"],"
			  " \"category\": \"marketing\", \"rate\": 0.05, \"currency\": \"USD\","
			  " \"effective_from\": \"2027-01-01\"}]}", 0, NULL);
	struct json_check chk2 = JSON_CHECK_INIT;
	assert_int_equal(pricing_parse_json(body, &up, &chk2), 0);
	assert_true(has_detail(chk2.type_errors, "rates[0].rate", "string"));
	json_check_release(&chk2);
	pricing_upload_release(&up);
	json_decref(body);
}

/* ---- storing on SQLite --------------------------------------------------- */

struct fx {
	char path[64];
	struct db *db;
};

static int setup_db(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char url[96], err[256];
	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/pytake-test-pricing-%d.db", (int)getpid());
	unlink(f->path);
	snprintf(url, sizeof url, "sqlite:%s", f->path);
	assert_int_equal(db_open(url, NULL, &f->db, err, sizeof err), 0);
	assert_int_equal(migrate_upgrade(f->db, migrations_embedded,
					 migrations_embedded_count, 0, err, sizeof err), 0);
	*state = f;
	return 0;
}

static int teardown_db(void **state)
{
	struct fx *f = *state;
	pricing_invalidate();
	db_close(f->db);
	unlink(f->path);
	free(f);
	return 0;
}

struct store_tx {
	const char *csv;
	json_t *details;
	struct pricing_store_result res;
	int seeded;
};

static int store_fn(struct db_conn *c, void *ctx)
{
	struct store_tx *t = ctx;
	struct pricing_upload up = PRICING_UPLOAD_INIT;
	struct json_check chk = JSON_CHECK_INIT;
	json_array_clear(t->details);
	assert_int_equal(pricing_parse_csv(t->csv, strlen(t->csv), &up, &chk), 0);
	pricing_check_upload(&up, &chk);
	assert_true(json_check_ok(&chk));
	int rc = pricing_store(c, &up, t->details, &t->res);
	pricing_upload_release(&up);
	json_check_release(&chk);
	return rc;
}

static int seed_fn(struct db_conn *c, void *ctx)
{
	struct store_tx *t = ctx;
	return pricing_seed_if_empty(c, &t->seeded);
}

#define HEADER "market,calling_codes,category,rate,currency,effective_from\n"

static void test_store_and_seed(void **state)
{
	struct fx *f = *state;
	struct store_tx t = { .details = json_array() };
	struct pricing_card *card = NULL;
	assert_int_equal(db_tx(f->db, true, seed_fn, &t), DB_OK);
	assert_int_equal(t.seeded, 22);
	assert_int_equal(db_tx(f->db, true, seed_fn, &t), DB_OK);
	assert_int_equal(t.seeded, 0); /* not empty any more */

	/* the seed again through store: every row identical, nothing new */
	char *seed = strndup(pricing_seed_csv, pricing_seed_csv_len);
	t.csv = seed;
	assert_int_equal(db_tx(f->db, true, store_fn, &t), DB_OK);
	assert_int_equal(t.res.inserted, 0);
	assert_int_equal(t.res.unchanged, 22);
	free(seed);

	/* a different rate under an existing key: conflict, nothing stored */
	t.csv = HEADER "BR,55,utility,0.0099,USD,2026-10-01\n"
		       "BR,55,marketing,0.0700,USD,2030-01-01\n";
	assert_int_equal(db_tx(f->db, true, store_fn, &t), PRICING_STORE_CONFLICT);
	assert_true(has_detail(t.details, "line 2", "never rewrites the past"));
	assert_false(has_detail(t.details, "line 3", ""));
	/* another currency: invalid */
	t.csv = HEADER "BR,55,marketing,0.0700,EUR,2030-01-01\n";
	assert_int_equal(db_tx(f->db, true, store_fn, &t), PRICING_STORE_INVALID);
	assert_true(has_detail(t.details, "line 2", "one currency"));

	assert_int_equal(pricing_current(f->db, &card), DB_OK);
	assert_int_equal(pricing_card_count(card), 22);
	pricing_card_release(card);

	/* a later card: new BR marketing rate from 2030 */
	t.csv = HEADER "BR,55,marketing,0.0700,USD,2030-01-01\n";
	assert_int_equal(db_tx(f->db, true, store_fn, &t), DB_OK);
	assert_int_equal(t.res.inserted, 1);
	/* this process stored it: invalidated at once */
	pricing_invalidate();
	assert_int_equal(pricing_current(f->db, &card), DB_OK);
	assert_int_equal(pricing_card_count(card), 23);
	struct pricing_quote q;
	assert_int_equal(pricing_quote(card, "5511987654321", "marketing", day("2029-12-31"), &q), 0);
	assert_int_equal(q.rate, 62500); /* the earlier rate still in force before 2030 */
	assert_int_equal(pricing_quote(card, "5511987654321", "marketing", day("2030-01-01"), &q), 0);
	assert_int_equal(q.rate, 70000);
	/* money survives the database exactly */
	assert_int_equal(pricing_quote(card, "14155552671", "utility", day("2026-11-29"), &q), 0);
	assert_int_equal(q.rate, 3400);
	pricing_card_release(card);

	/* another process adds a row: seen within PRICING_SNAPSHOT_CHECK_US */
	struct db_conn *c = db_acquire(f->db);
	assert_non_null(c);
	struct db_param p[] = { DBP_INT(day("2031-01-01")) };
	assert_int_equal(db_exec(c, "INSERT INTO rate_cards (id, market, calling_codes, "
				    "category, rate, currency, effective_from, created_at) "
				    "VALUES ('0190d2a0-0000-7000-8000-000000000001', 'PE', '51', "
				    "'marketing', 70000, 'USD', $1, 1)",
				 p, 1, NULL, NULL),
			 DB_OK);
	db_release(f->db, c);
	usleep((useconds_t)(PRICING_SNAPSHOT_CHECK_US + 100000));
	assert_int_equal(pricing_current(f->db, &card), DB_OK);
	assert_int_equal(pricing_card_count(card), 24);
	struct pricing_card *again = NULL;
	assert_int_equal(pricing_current(f->db, &again), DB_OK);
	assert_ptr_equal(again, card); /* unchanged table: the same snapshot */
	pricing_card_release(again);
	pricing_card_release(card);
	json_decref(t.details);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_market_longest_prefix),
		cmocka_unit_test(test_rate_in_force),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_in_force_list),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_seed_parses),
		cmocka_unit_test(test_csv_errors),
		cmocka_unit_test(test_csv_missing_column),
		cmocka_unit_test(test_json_parse),
		cmocka_unit_test_setup_teardown(test_store_and_seed, setup_db, teardown_db),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
