/* Unit tests for costs (pricing once, free types, roll-up arithmetic,
 * summaries, budget alerts once per month, remaining budget) on SQLite, and
 * for core/tz (TZif parsing, footers, day boundaries in America/Sao_Paulo
 * and Asia/Kolkata, malformed input, zone names). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/timeutil.h"
#include "core/tz.h"
#include "core/uuid.h"
#include "db/migrate.h"
#include "domain/costs.h"
#include "domain/orgs.h"
#include "domain/pricing.h"

#define US INT64_C(1000000)

/* ---- time zones -------------------------------------------------------------- */

static int64_t utc(int y, unsigned mo, unsigned d, int h, int mi, int s)
{
	return (time_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s);
}

static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = malloc(TZ_FILE_MAX);
	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, TZ_FILE_MAX, f);
	fclose(f);
	return buf;
}

static void test_tz_offsets(void **state)
{
	(void)state;
	static const struct {
		const char *zone;
		int64_t t;
		int32_t off;
	} cases[] = {
		{ "America/Sao_Paulo", 0, -3 * 3600 },
		{ "America/Sao_Paulo", 1544000000, -2 * 3600 },  /* 2018-12-05: DST */
		{ "America/Sao_Paulo", 1720000000, -3 * 3600 },  /* 2024: no DST */
		{ "America/Sao_Paulo", 4102444800, -3 * 3600 },  /* 2100: footer */
		{ "Asia/Kolkata", 1706745599, 19800 },
		{ "Asia/Kolkata", 4102444800, 19800 },
		{ "UTC", 1706745599, 0 },
		{ "America/New_York", 1720000000, -4 * 3600 },   /* July 2024 */
		{ "America/New_York", 1705000000, -5 * 3600 },   /* Jan 2024 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct tz_zone *z = tz_get(cases[i].zone);
		assert_non_null(z);
		assert_int_equal(tz_offset_at(z, cases[i].t), cases[i].off);
	}
}

/* Past the last transition (2037) the POSIX footer rules. */
static void test_tz_footer_rules(void **state)
{
	(void)state;
	const struct tz_zone *ny = tz_get("America/New_York");
	const struct tz_zone *syd = tz_get("Australia/Sydney");
	assert_non_null(ny);
	assert_non_null(syd);
	/* 2040-03-11 (second Sunday of March) 02:00 EST = 07:00 UTC */
	assert_int_equal(tz_offset_at(ny, utc(2040, 3, 11, 6, 59, 59)), -5 * 3600);
	assert_int_equal(tz_offset_at(ny, utc(2040, 3, 11, 7, 0, 0)), -4 * 3600);
	/* 2040-11-04 (first Sunday of November) 02:00 EDT = 06:00 UTC */
	assert_int_equal(tz_offset_at(ny, utc(2040, 11, 4, 5, 59, 59)), -4 * 3600);
	assert_int_equal(tz_offset_at(ny, utc(2040, 11, 4, 6, 0, 0)), -5 * 3600);
	/* southern hemisphere: DST across the new year */
	assert_int_equal(tz_offset_at(syd, utc(2045, 1, 15, 0, 0, 0)), 11 * 3600);
	assert_int_equal(tz_offset_at(syd, utc(2045, 7, 15, 0, 0, 0)), 10 * 3600);
}

static void test_tz_day_boundaries(void **state)
{
	(void)state;
	static const struct {
		const char *zone;
		int64_t t;
		const char *day;
	} cases[] = {
		/* Sao Paulo, UTC-3: local midnight of 2024-03-01 is 03:00 UTC */
		{ "America/Sao_Paulo", 1709261999, "2024-02-29" }, /* 02:59:59Z */
		{ "America/Sao_Paulo", 1709262000, "2024-03-01" }, /* 03:00:00Z */
		/* Sao Paulo in DST (UTC-2), 2018-12-01 00:00 local = 02:00Z */
		{ "America/Sao_Paulo", 1543629599, "2018-11-30" },
		{ "America/Sao_Paulo", 1543629600, "2018-12-01" },
		/* Kolkata, UTC+5:30: 2024-02-01 00:00 local = 2024-01-31 18:30Z */
		{ "Asia/Kolkata", 1706725799, "2024-01-31" },
		{ "Asia/Kolkata", 1706725800, "2024-02-01" },
		/* unknown / invalid names fall back to UTC */
		{ "Nowhere/Atlantis", 1706725800, "2024-01-31" },
		{ "../../etc/passwd", 1706725800, "2024-01-31" },
		{ NULL, 1706745600, "2024-02-01" },
	};
	char day[COSTS_DAY_LEN];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_string_equal(costs_local_day(cases[i].zone, cases[i].t * US, day),
				    cases[i].day);
}

static void test_tz_names(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		bool ok;
	} cases[] = {
		{ "UTC", true },	    { "America/Sao_Paulo", true },
		{ "Etc/GMT+3", true },	    { "America/Port-au-Prince", true },
		{ "", false },		    { "/etc/passwd", false },
		{ "../x", false },	    { "America/../../x", false },
		{ "America//X", false },    { "America/", false },
		{ "Amer ica/X", false },    { ".hidden", false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_int_equal(tz_name_valid(cases[i].name), cases[i].ok);
	assert_null(tz_get("Nowhere/Atlantis"));
	assert_null(tz_get("../../etc/passwd"));
}

/* Every truncation of a real file is rejected (or parses) without reading
 * past its end (ASan checks that); corrupting fields is rejected. */
static void test_tz_malformed(void **state)
{
	(void)state;
	size_t len = 0;
	unsigned char *buf = read_all(TZ_DIR "/America/Sao_Paulo", &len);
	struct tz_zone *z = NULL;
	assert_int_equal(tz_parse(buf, len, &z), 0);
	tz_free(z);
	for (size_t n = 0; n < len; n++) {
		unsigned char *copy = malloc(n + 1);
		assert_non_null(copy);
		memcpy(copy, buf, n);
		z = NULL;
		assert_int_equal(tz_parse(copy, n, &z), -1);
		free(copy);
	}
	buf[0] = 'X'; /* magic */
	assert_int_equal(tz_parse(buf, len, &z), -1);
	buf[0] = 'T';
	buf[4] = '9'; /* version */
	assert_int_equal(tz_parse(buf, len, &z), -1);
	buf[4] = '2';
	buf[36] = 0xff; /* typecnt far too large */
	assert_int_equal(tz_parse(buf, len, &z), -1);
	free(buf);
	assert_int_equal(tz_parse(NULL, 0, &z), -1);
}

/* A hand-made v2 file: one type, no transitions, footer "<-03>3". */
static void test_tz_minimal_v2(void **state)
{
	(void)state;
	unsigned char f[200];
	size_t n = 0;
	memset(f, 0, sizeof f);
	for (int part = 0; part < 2; part++) {
		memcpy(f + n, "TZif2", 5);
		f[n + 39] = 1; /* typecnt */
		f[n + 43] = 4; /* charcnt */
		n += 44;
		/* ttinfo: utoff -10800, isdst 0, idx 0 */
		uint32_t off = (uint32_t)-10800;
		f[n] = (unsigned char)(off >> 24);
		f[n + 1] = (unsigned char)(off >> 16);
		f[n + 2] = (unsigned char)(off >> 8);
		f[n + 3] = (unsigned char)off;
		n += 6;
		memcpy(f + n, "-03", 4);
		n += 4;
	}
	memcpy(f + n, "\n<-03>3\n", 8);
	struct tz_zone *z = NULL;
	assert_int_equal(tz_parse(f, n + 8, &z), 0);
	assert_int_equal(tz_offset_at(z, 1700000000), -10800);
	tz_free(z);
	memcpy(f + n, "\n<-03>X\n", 8); /* bad footer */
	assert_int_equal(tz_parse(f, n + 8, &z), -1);
	memcpy(f + n, "\n<-03>3", 7); /* unterminated footer */
	assert_int_equal(tz_parse(f, n + 7, &z), -1);
}

/* ---- classification ------------------------------------------------------------ */

static void test_classify(void **state)
{
	(void)state;
	static const struct {
		int billable;
		const char *type;
		enum costs_kind kind;
		const char *reason;
	} cases[] = {
		{ 1, "regular", COSTS_KIND_BILLABLE, "" },
		{ 0, "regular", COSTS_KIND_BILLABLE, "" }, /* type wins */
		{ -1, "regular", COSTS_KIND_BILLABLE, "" },
		{ 0, "free_customer_service", COSTS_KIND_FREE, "free_customer_service" },
		{ 0, "free_entry_point", COSTS_KIND_FREE, "free_entry_point" },
		{ 1, NULL, COSTS_KIND_BILLABLE, "" },
		{ 0, NULL, COSTS_KIND_FREE, "not_billable" },
		{ -1, NULL, COSTS_KIND_NONE, "" },
		{ 1, "something_new", COSTS_KIND_NONE, "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char reason[COSTS_REASON_LEN];
		struct costs_status s = { .wamid = "w", .billable = cases[i].billable,
					  .pricing_type = cases[i].type };
		assert_int_equal(costs_classify(&s, reason, sizeof reason), cases[i].kind);
		assert_string_equal(reason, cases[i].reason);
	}
	struct costs_group_row r;
	enum costs_group g;
	(void)r;
	assert_true(costs_group_parse("whatsapp_number", &g));
	assert_int_equal(g, COSTS_BY_NUMBER);
	assert_false(costs_group_parse("country", &g));
	assert_false(costs_group_parse(NULL, &g));
}

/* ---- pricing on SQLite ------------------------------------------------------------ */

struct fx {
	char path[64];
	struct db *db;
	struct db_conn *c;
	struct org org, other;
	char number_id[37];
	struct pricing_card *card;
	int seq;
};

static const struct pricing_rate test_rates[] = {
	{ "BR", "55", "marketing", 62500, "USD", 1704067200 * US },     /* 2024-01-01 */
	{ "BR", "55", "utility", 6800, "USD", 1704067200 * US },
	{ "BR", "55", "marketing", 70000, "USD", 1719792000 * US },     /* 2024-07-01 */
	{ "NORTH_AMERICA", "1", "marketing", 25000, "USD", 1704067200 * US },
	{ "IN", "91", "marketing", 10700, "USD", 1704067200 * US },
	{ "OTHER", "", "marketing", 50000, "USD", 1704067200 * US },
};

static void exec_ok(struct fx *f, const char *sql, const struct db_param *p, int n)
{
	int rc = db_exec(f->c, sql, p, n, NULL, NULL);
	if (rc != DB_OK)
		fprintf(stderr, "%s: %s\n", sql, db_errmsg(f->c));
	assert_int_equal(rc, DB_OK);
}

static void add_number(struct fx *f, const char *org_id, char id[37])
{
	char path[48];
	assert_int_equal(uuid_v7_str(id), 0);
	snprintf(path, sizeof path, "path-%s", id);
	const struct db_param p[] = { DBP_TEXT(id), DBP_TEXT(org_id), DBP_TEXT(path) };
	exec_ok(f,
		"INSERT INTO whatsapp_numbers (id, organization_id, phone_number_id, waba_id,"
		" display_phone_number, access_token_enc, webhook_path, created_at, updated_at)"
		" VALUES ($1, $2, $1, 'waba', '+1 555', 'x', $3, 0, 0)",
		p, 3);
}

/* An outbound message to wa_id with wamid (campaign may be NULL). */
static void add_message(struct fx *f, const char *org_id, const char *number_id,
			const char *wa_id, const char *wamid, const char *campaign,
			const char *direction)
{
	char contact[37], conv[37], msg[37];
	struct db_res *r = NULL;
	const struct db_param q[] = { DBP_TEXT(org_id), DBP_TEXT(wa_id) };
	assert_int_equal(db_exec(f->c, "SELECT id FROM contacts WHERE organization_id = $1"
				       " AND wa_id = $2", q, 2, &r, NULL), DB_OK);
	if (db_rows(r) == 1) {
		snprintf(contact, sizeof contact, "%s", db_get_text(r, 0, 0));
	} else {
		assert_int_equal(uuid_v7_str(contact), 0);
		const struct db_param p[] = { DBP_TEXT(contact), DBP_TEXT(org_id), DBP_TEXT(wa_id) };
		exec_ok(f, "INSERT INTO contacts (id, organization_id, wa_id, created_at, updated_at)"
			   " VALUES ($1, $2, $3, 0, 0)", p, 3);
	}
	db_res_free(r);
	assert_int_equal(uuid_v7_str(conv), 0);
	assert_int_equal(uuid_v7_str(msg), 0);
	const struct db_param pc[] = { DBP_TEXT(conv), DBP_TEXT(org_id), DBP_TEXT(contact),
				       DBP_TEXT(number_id) };
	exec_ok(f, "INSERT INTO conversations (id, organization_id, contact_id, whatsapp_number_id,"
		   " status, created_at, updated_at) VALUES ($1, $2, $3, $4, 'closed', 0, 0)",
		pc, 4);
	const struct db_param pm[] = { DBP_TEXT(msg), DBP_TEXT(org_id), DBP_TEXT(conv),
				       DBP_TEXT(number_id), DBP_TEXT(contact), DBP_TEXT(wamid),
				       DBP_TEXT(campaign), DBP_TEXT(direction) };
	exec_ok(f, "INSERT INTO messages (id, organization_id, conversation_id, whatsapp_number_id,"
		   " contact_id, direction, type, status, wamid, created_at, campaign_id)"
		   " VALUES ($1, $2, $3, $4, $5, $8, 'template',"
		   " CASE WHEN $8 = 'inbound' THEN 'received' ELSE 'sent' END, $6, 0, $7)",
		pm, 8);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char url[96], err[256];
	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/pytake-test-costs-%d.db", (int)getpid());
	unlink(f->path);
	snprintf(url, sizeof url, "sqlite:%s", f->path);
	assert_int_equal(db_open(url, NULL, &f->db, err, sizeof err), 0);
	assert_int_equal(migrate_upgrade(f->db, migrations_embedded, migrations_embedded_count, 0,
					 err, sizeof err), 0);
	f->c = db_acquire(f->db);
	assert_non_null(f->c);
	assert_int_equal(orgs_create(f->c, "Org", "org", "America/Sao_Paulo", &f->org), DB_OK);
	assert_int_equal(orgs_create(f->c, "Other", "other", "Asia/Kolkata", &f->other), DB_OK);
	add_number(f, f->org.id, f->number_id);
	f->card = pricing_card_from_rates(test_rates, sizeof test_rates / sizeof test_rates[0]);
	assert_non_null(f->card);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	pricing_card_release(f->card);
	db_release(f->db, f->c);
	db_close(f->db);
	unlink(f->path);
	free(f);
	return 0;
}

static int price(struct fx *f, const char *wamid, const char *type, int billable,
		 const char *category, int64_t at_s, struct costs_priced *out)
{
	const struct costs_status s = { .wamid = wamid, .billable = billable,
					.pricing_type = type, .category = category,
					.at_us = at_s * US };
	return costs_price_status(f->c, f->card, &s, out);
}

static int64_t count_where(struct fx *f, const char *sql, const char *arg)
{
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_TEXT(arg) };
	assert_int_equal(db_exec(f->c, sql, p, arg != NULL ? 1 : 0, &r, NULL), DB_OK);
	int64_t v = db_get_int(r, 0, 0);
	db_res_free(r);
	return v;
}

static void test_price_once(void **state)
{
	struct fx *f = *state;
	struct costs_priced pr;
	int64_t t = utc(2024, 3, 10, 12, 0, 0);
	add_message(f, f->org.id, f->number_id, "5511999990001", "w1", NULL, "outbound");
	assert_int_equal(price(f, "w1", "regular", 1, "marketing", t, &pr), 0);
	assert_string_equal(pr.market, "BR");
	assert_string_equal(pr.category, "marketing");
	assert_int_equal(pr.rate, 62500);
	assert_int_equal(pr.amount, 62500);
	assert_string_equal(pr.currency, "USD");
	assert_string_equal(pr.day, "2024-03-10");
	assert_string_equal(pr.free_reason, "");
	/* duplicates and later statuses never price again, whatever they say */
	for (int i = 0; i < 5; i++)
		assert_int_equal(price(f, "w1", "regular", 1, "utility", t + 60 * i, NULL),
				 COSTS_NOT_PRICED);
	assert_int_equal(price(f, "w1", "free_customer_service", 0, "service", t, NULL),
			 COSTS_NOT_PRICED);
	assert_int_equal(count_where(f, "SELECT cost FROM messages WHERE wamid = $1", "w1"),
			 62500);
	assert_int_equal(count_where(f, "SELECT priced_at FROM messages WHERE wamid = $1", "w1"),
			 t * US);
	assert_int_equal(count_where(f, "SELECT SUM(messages) FROM cost_daily", NULL), 1);
	assert_int_equal(count_where(f, "SELECT SUM(amount) FROM cost_daily", NULL), 62500);
	/* the per-dimension roll-up (migration 0011) got it once per dimension */
	static const char *const dims[] = { "day", "category", "campaign", "market",
					    "whatsapp_number" };
	for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
		assert_int_equal(count_where(f, "SELECT SUM(messages) FROM cost_daily_by"
					     " WHERE dimension = $1", dims[i]), 1);
		assert_int_equal(count_where(f, "SELECT SUM(amount) FROM cost_daily_by"
					     " WHERE dimension = $1", dims[i]), 62500);
	}
	/* a status without pricing, an unknown wamid, an inbound message */
	add_message(f, f->org.id, f->number_id, "5511999990002", "w2", NULL, "outbound");
	assert_int_equal(price(f, "w2", NULL, -1, NULL, t, NULL), COSTS_NOT_PRICED);
	assert_int_equal(price(f, "nope", "regular", 1, "marketing", t, NULL), COSTS_NOT_PRICED);
	add_message(f, f->org.id, f->number_id, "5511999990003", "in1", NULL, "inbound");
	assert_int_equal(price(f, "in1", "regular", 1, "marketing", t, NULL), COSTS_NOT_PRICED);
	assert_int_equal(count_where(f, "SELECT COUNT(*) FROM messages WHERE priced_at IS NOT NULL",
				     NULL), 1);
}

static void test_free_and_markets(void **state)
{
	struct fx *f = *state;
	struct costs_priced pr;
	int64_t t = utc(2024, 3, 10, 12, 0, 0);
	static const struct {
		const char *wa_id, *type;
		int billable;
		const char *category, *market;
		int64_t amount;
		const char *reason;
	} cases[] = {
		{ "5511900000001", "regular", 1, "marketing", "BR", 62500, "" },
		{ "5511900000002", NULL, 1, "utility", "BR", 6800, "" },
		{ "15551230001", "regular", 1, "marketing", "NORTH_AMERICA", 25000, "" },
		{ "919800000001", "regular", 1, "MARKETING", "IN", 10700, "" },
		{ "34600000001", "regular", 1, "marketing", "OTHER", 50000, "" },
		{ "34600000002", "free_customer_service", 0, "service", "OTHER", 0,
		  "free_customer_service" },
		{ "5511900000003", "free_entry_point", 0, "marketing", "BR", 0, "free_entry_point" },
		{ "5511900000004", NULL, 0, "service", "BR", 0, "not_billable" },
	};
	int64_t sum = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char wamid[32];
		snprintf(wamid, sizeof wamid, "wf%zu", i);
		add_message(f, f->org.id, f->number_id, cases[i].wa_id, wamid, NULL, "outbound");
		assert_int_equal(price(f, wamid, cases[i].type, cases[i].billable,
				       cases[i].category, t, &pr), 0);
		assert_string_equal(pr.market, cases[i].market);
		assert_int_equal(pr.amount, cases[i].amount);
		assert_string_equal(pr.free_reason, cases[i].reason);
		sum += cases[i].amount;
	}
	/* a billable category without any rate is left unpriced */
	add_message(f, f->org.id, f->number_id, "5511900000009", "wnr", NULL, "outbound");
	assert_int_equal(price(f, "wnr", "regular", 1, "authentication", t, NULL), COSTS_NO_RATE);
	assert_int_equal(count_where(f, "SELECT COUNT(*) FROM messages WHERE wamid = $1"
				       " AND priced_at IS NULL", "wnr"), 1);
	struct costs_summary s = COSTS_SUMMARY_INIT;
	assert_int_equal(costs_summary(f->c, f->org.id, "2024-03-01", "2024-03-31",
				       COSTS_BY_MARKET, &s), DB_OK);
	assert_int_equal(s.total, sum);
	assert_int_equal(s.messages, 8);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.rows[0].key, "BR");
	assert_int_equal(s.rows[0].messages, 4);
	assert_int_equal(s.rows[0].amount, 62500 + 6800);
	assert_string_equal(s.rows[3].key, "OTHER");
	assert_int_equal(s.rows[3].messages, 2);
	assert_int_equal(s.rows[3].amount, 50000);
	costs_summary_release(&s);
	/* free ones counted under their category with amount 0 */
	assert_int_equal(costs_summary(f->c, f->org.id, "2024-03-10", "2024-03-10",
				       COSTS_BY_CATEGORY, &s), DB_OK);
	assert_string_equal(s.rows[s.n - 1].key, "utility");
	assert_string_equal(s.rows[1].key, "service");
	assert_int_equal(s.rows[1].messages, 2);
	assert_int_equal(s.rows[1].amount, 0);
	costs_summary_release(&s);
}

/* Roll-up rows: local days, campaigns, later cards, other org untouched. */
static void test_rollup_and_summary(void **state)
{
	struct fx *f = *state;
	char other_number[37];
	add_number(f, f->other.id, other_number);
	/* 2024-03-10 23:30 local (02:30Z on the 11th) is still the 10th in Sao Paulo */
	struct {
		const char *wamid, *campaign;
		int64_t t;
	} msgs[] = {
		{ "r1", NULL, utc(2024, 3, 10, 12, 0, 0) },
		{ "r2", NULL, utc(2024, 3, 11, 2, 30, 0) },
		{ "r3", "0190a0b0-0000-7000-8000-000000000001", utc(2024, 3, 11, 3, 0, 0) },
		{ "r4", "0190a0b0-0000-7000-8000-000000000001", utc(2024, 7, 2, 12, 0, 0) },
	};
	for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
		add_message(f, f->org.id, f->number_id, "5521988887777", msgs[i].wamid,
			    msgs[i].campaign, "outbound");
		assert_int_equal(price(f, msgs[i].wamid, "regular", 1, "marketing", msgs[i].t, NULL),
				 0);
	}
	/* the other org, same day, priced in its own zone */
	add_message(f, f->other.id, other_number, "5521988887777", "x1", NULL, "outbound");
	assert_int_equal(price(f, "x1", "regular", 1, "marketing", utc(2024, 3, 10, 20, 0, 0),
			       NULL), 0);
	struct costs_summary s = COSTS_SUMMARY_INIT;
	assert_int_equal(costs_summary(f->c, f->org.id, "2024-03-01", "2024-07-31", COSTS_BY_DAY,
				       &s), DB_OK);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.rows[0].key, "2024-03-10");
	assert_int_equal(s.rows[0].messages, 2);
	assert_int_equal(s.rows[0].amount, 125000);
	assert_string_equal(s.rows[1].key, "2024-03-11");
	assert_string_equal(s.rows[2].key, "2024-07-02");
	assert_int_equal(s.rows[2].amount, 70000); /* the July card */
	assert_int_equal(s.total, 3 * 62500 + 70000);
	assert_string_equal(s.currency, "USD");
	costs_summary_release(&s);
	assert_int_equal(costs_summary(f->c, f->org.id, "2024-03-01", "2024-07-31",
				       COSTS_BY_CAMPAIGN, &s), DB_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.rows[0].key, "");
	assert_int_equal(s.rows[0].amount, 125000);
	assert_string_equal(s.rows[1].key, "0190a0b0-0000-7000-8000-000000000001");
	assert_int_equal(s.rows[1].amount, 62500 + 70000);
	costs_summary_release(&s);
	assert_int_equal(costs_summary(f->c, f->org.id, "2024-03-01", "2024-07-31",
				       COSTS_BY_NUMBER, &s), DB_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.rows[0].key, f->number_id);
	costs_summary_release(&s);
	/* the other org sees only its own message, on its own local day */
	assert_int_equal(costs_summary(f->c, f->other.id, "2024-01-01", "2024-12-31",
				       COSTS_BY_DAY, &s), DB_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.rows[0].key, "2024-03-11"); /* 20:00Z = 01:30 IST */
	assert_int_equal(s.total, 62500);
	costs_summary_release(&s);
	/* an empty range */
	assert_int_equal(costs_summary(f->c, f->org.id, "2023-01-01", "2023-01-31", COSTS_BY_DAY,
				       &s), DB_OK);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.total, 0);
	assert_string_equal(s.currency, "");
	costs_summary_release(&s);
}

static void test_alerts_once_per_month(void **state)
{
	struct fx *f = *state;
	struct costs_budget b = { .monthly_limit = 100000, .alert_threshold_percent = 50,
				  .currency = "USD" }, got;
	bool had = true, has = false;
	int64_t remaining = -1;
	assert_int_equal(costs_budget_get(f->c, f->org.id, &got), 1);
	assert_int_equal(costs_remaining_budget(f->c, f->org.id, time_now_us(), &remaining, &has),
			 DB_OK);
	assert_false(has);
	assert_int_equal(costs_budget_put(f->c, f->org.id, &b, 1, NULL, &had), DB_OK);
	assert_false(had);
	assert_int_equal(costs_budget_get(f->c, f->org.id, &got), 0);
	assert_int_equal(got.monthly_limit, 100000);
	assert_int_equal(got.alert_threshold_percent, 50);
	/* 0.0625 -> threshold (0.05); 0.125 -> limit (0.10); more: nothing */
	static const struct { int64_t t; int raised; } steps[] = {
		{ 1710072000, 1 }, /* 2024-03-10 12:00Z */
		{ 1710158400, 1 },
		{ 1710244800, 0 },
		{ 1710331200, 0 },
		{ 1712664000, 1 }, /* 2024-04-09: a new month, threshold again */
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		char wamid[16];
		struct costs_priced pr;
		snprintf(wamid, sizeof wamid, "a%zu", i);
		add_message(f, f->org.id, f->number_id, "5511911112222", wamid, NULL, "outbound");
		assert_int_equal(price(f, wamid, "regular", 1, "marketing", steps[i].t, &pr), 0);
		assert_int_equal(pr.alerts_raised, steps[i].raised);
		/* a duplicate raises nothing */
		assert_int_equal(price(f, wamid, "regular", 1, "marketing", steps[i].t, NULL),
				 COSTS_NOT_PRICED);
	}
	struct costs_alert *a = NULL;
	int n = 0;
	assert_int_equal(costs_alerts_list(f->c, f->org.id, INT64_MAX,
					   "ffffffff-ffff-ffff-ffff-ffffffffffff", 50, &a, &n),
			 DB_OK);
	assert_int_equal(n, 3);
	int thresholds = 0, limits = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(a[i].kind, "limit") == 0) {
			limits++;
			assert_string_equal(a[i].month, "2024-03");
			assert_int_equal(a[i].spent, 125000);
			assert_int_equal(a[i].limit, 100000);
		} else {
			thresholds++;
		}
	}
	free(a);
	assert_int_equal(thresholds, 2);
	assert_int_equal(limits, 1);
	int64_t spent = 0;
	assert_int_equal(costs_month_spent(f->c, f->org.id, "2024-03", &spent), DB_OK);
	assert_int_equal(spent, 4 * 62500);
	assert_int_equal(costs_month_spent(f->c, f->org.id, "2024-04", &spent), DB_OK);
	assert_int_equal(spent, 62500);
	/* remaining: limit - spend of the month of now, floored at 0 */
	assert_int_equal(costs_remaining_budget(f->c, f->org.id, 1710500000 * US, &remaining,
						&has), DB_OK);
	assert_true(has);
	assert_int_equal(remaining, 0);
	assert_int_equal(costs_remaining_budget(f->c, f->org.id, 1712700000 * US, &remaining,
						&has), DB_OK);
	assert_int_equal(remaining, 100000 - 62500);
	/* the other org has no budget and no alerts */
	assert_int_equal(costs_alerts_list(f->c, f->other.id, INT64_MAX,
					   "ffffffff-ffff-ffff-ffff-ffffffffffff", 50, &a, &n),
			 DB_OK);
	assert_int_equal(n, 0);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tz_offsets),
		cmocka_unit_test(test_tz_footer_rules),
		cmocka_unit_test(test_tz_day_boundaries),
		cmocka_unit_test(test_tz_names),
		cmocka_unit_test(test_tz_malformed),
		cmocka_unit_test(test_tz_minimal_v2),
		cmocka_unit_test(test_classify),
		cmocka_unit_test_setup_teardown(test_price_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_and_markets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollup_and_summary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alerts_once_per_month, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
