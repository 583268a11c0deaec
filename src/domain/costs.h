/* costs: what each message cost, daily roll-ups, monthly budgets and
 * budget alerts of an organization (API.md "Costs").
 *
 * Design note
 * - A message is priced ONCE, by the first status webhook that reports it
 *   billable (pricing.type "regular", or pricing.billable true when type is
 *   absent) or free (a "free_*" type, or billable false without a type).
 *   costs_price_status records on the message row {pricing_market,
 *   pricing_rate, cost, currency, priced_at (the status's own timestamp:
 *   the moment whose rate is in force), pricing_free_reason} with
 *   `UPDATE ... WHERE priced_at IS NULL`: only the statement that changed
 *   the row goes on, so duplicates and later statuses never price again,
 *   also under concurrency. The rate is the rate card's (recipient's market,
 *   category) rate in force at that timestamp (domain/pricing.h); one
 *   message costs exactly its rate; free types cost 0 with their reason.
 * - In the same transaction the priced message is added to cost_daily, a
 *   roll-up keyed by (org, day, category, market, number, campaign ('' for
 *   none), currency) with an upsert that adds messages and amount. `day` is
 *   the local date of priced_at in the organization's time zone
 *   (organizations.timezone, an IANA name read with core/tz.h). The same
 *   transaction adds it to cost_daily_by (migration 0011), one row per
 *   (org, dimension, day, group_key, currency) for each summary dimension
 *   (day, category, campaign, market, whatsapp_number). Summaries and
 *   month-to-date spend read only cost_daily_by: a month grouped by one
 *   dimension is at most 31 x keys rows, however many messages it holds.
 * - Budgets: one row per org (monthly_limit, alert_threshold_percent 1..100,
 *   default 80, currency). Month-to-date spend is the sum of the day
 *   roll-up over the local month. After pricing a message with a non-zero
 *   amount, spend >= limit x percent / 100 raises the 'threshold' alert and spend
 *   >= limit the 'limit' alert, each at most once per (org, month) (UNIQUE
 *   key, INSERT ... ON CONFLICT DO NOTHING); a raised alert is logged and
 *   counted in pytake_cost_alerts_total{kind}.
 * - Money is int64 micro-units (core/money.h) everywhere.
 *
 * Return convention: 0 ok / found, 1 not found (or a positive COSTS_*
 * outcome where documented), < 0 a db_status. Every function takes the
 * organization id and puts it in the WHERE clause. */
#ifndef PYTAKE_COSTS_H
#define PYTAKE_COSTS_H
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "domain/pricing.h"

struct metrics;

#define COSTS_DAY_LEN 11          /* "YYYY-MM-DD" + NUL */
#define COSTS_MONTH_LEN 8         /* "YYYY-MM" + NUL */
#define COSTS_REASON_LEN 64
#define COSTS_THRESHOLD_DEFAULT 80
#define COSTS_MAX_RANGE_DAYS 366  /* summary range, from..to inclusive */

/* ---- budgets -------------------------------------------------------------- */

struct costs_budget {
	int64_t monthly_limit;            /* micro-units, >= 0 */
	int alert_threshold_percent;      /* 1..100 */
	char currency[PRICING_CURRENCY_LEN];
};

/* The org's budget into *out: 0, 1 when the org has none, or a db_status. */
int costs_budget_get(struct db_conn *c, const char *org_id, struct costs_budget *out)
	__attribute__((warn_unused_result));

/* Create or replace the org's budget (values already validated). *old_out
 * (may be NULL) gets the previous budget and *had_old whether there was
 * one (for the audit row). DB_OK or a db_status. */
int costs_budget_put(struct db_conn *c, const char *org_id, const struct costs_budget *b,
		     int64_t now, struct costs_budget *old_out, bool *had_old)
	__attribute__((warn_unused_result));

/* The org's spend (micro-units) in local month "YYYY-MM" (from the
 * roll-up). DB_OK or a db_status. */
int costs_month_spent(struct db_conn *c, const char *org_id, const char *month,
		      int64_t *out) __attribute__((warn_unused_result));

/* What the org may still spend this month, for campaigns' start check:
 * *has_budget = false when the org has no budget (no limit; *remaining is
 * then 0); else *remaining = monthly_limit - month-to-date spend of the
 * local month containing now_us, never below 0. DB_OK or a db_status. */
int costs_remaining_budget(struct db_conn *c, const char *org_id, int64_t now_us,
			   int64_t *remaining, bool *has_budget)
	__attribute__((warn_unused_result));

/* ---- pricing a message ---------------------------------------------------- */

/* What a status webhook says about pricing (borrowed strings, may be
 * NULL). */
struct costs_status {
	const char *wamid;
	int billable;               /* -1 absent, 0 false, 1 true */
	const char *pricing_type;   /* "regular", "free_customer_service", ... */
	const char *category;       /* pricing.category */
	const char *recipient_id;   /* wa_id, used when the contact has none */
	int64_t at_us;              /* the status's timestamp */
};

/* How a status prices a message, from its pricing fields alone:
 * COSTS_KIND_NONE (not a pricing decision: no pricing, or an unknown
 * type), COSTS_KIND_BILLABLE, or COSTS_KIND_FREE with the reason (the
 * type, or "not_billable") copied into reason[COSTS_REASON_LEN]. */
enum costs_kind { COSTS_KIND_NONE = 0, COSTS_KIND_BILLABLE, COSTS_KIND_FREE };
enum costs_kind costs_classify(const struct costs_status *s, char *reason, size_t len);

/* The pricing recorded for a message. */
struct costs_priced {
	char message_id[37];
	char organization_id[37];
	char market[PRICING_MARKET_LEN];
	char category[PRICING_CATEGORY_LEN];
	int64_t rate;                        /* micro-units (0 for free) */
	int64_t amount;                      /* = rate for one message */
	char currency[PRICING_CURRENCY_LEN];
	char day[COSTS_DAY_LEN];             /* local date of priced_at */
	char free_reason[COSTS_REASON_LEN];  /* "" when billable */
	int alerts_raised;                   /* alerts this pricing raised */
};

/* Outcomes of costs_price_status besides 0 (priced now). */
enum {
	COSTS_NOT_PRICED = 1,   /* not a pricing status, already priced, or no
	                           outbound message with that wamid */
	COSTS_NO_RATE = 2,      /* billable but the card has no rate for the
	                           category (left unpriced, logged) */
};

/* Price the outbound message with wamid s->wamid once, inside the caller's
 * write transaction on c (see the design note): message row, roll-up and
 * budget alerts. card: the rate card to use (NULL: pricing_current of c's
 * database). out (may be NULL) is filled when 0 is returned. Returns 0,
 * COSTS_NOT_PRICED, COSTS_NO_RATE or a db_status. */
int costs_price_status(struct db_conn *c, const struct pricing_card *card,
		       const struct costs_status *s, struct costs_priced *out)
	__attribute__((warn_unused_result));

/* ---- summaries -------------------------------------------------------------- */

enum costs_group { COSTS_BY_DAY = 0, COSTS_BY_CATEGORY, COSTS_BY_CAMPAIGN, COSTS_BY_MARKET,
		   COSTS_BY_NUMBER };
/* "day" | "category" | "campaign" | "market" | "whatsapp_number" -> *out;
 * false for anything else. */
bool costs_group_parse(const char *s, enum costs_group *out);

struct costs_group_row {
	char key[64];     /* the day, category, campaign id ("" none), market, number id */
	int64_t messages;
	int64_t amount;   /* micro-units */
};
struct costs_summary {
	char currency[PRICING_CURRENCY_LEN]; /* "" when nothing was priced */
	int64_t total;
	int64_t messages;
	struct costs_group_row *rows;        /* malloc'd, ordered by key */
	int n;
};
#define COSTS_SUMMARY_INIT { "", 0, 0, NULL, 0 }
void costs_summary_release(struct costs_summary *s);

/* Sum the org's per-dimension roll-up over local days from..to ("YYYY-MM-DD",
 * inclusive, already validated) grouped by g into *out, which is
 * overwritten (release an earlier result first; the caller releases).
 * DB_OK or a db_status (DB_ERR on an overflowing sum). */
int costs_summary(struct db_conn *c, const char *org_id, const char *from, const char *to,
		  enum costs_group g, struct costs_summary *out)
	__attribute__((warn_unused_result));

/* ---- alerts ---------------------------------------------------------------- */

struct costs_alert {
	char id[37];
	char kind[12];                 /* "threshold" | "limit" */
	char month[COSTS_MONTH_LEN];
	int64_t spent, limit;
	char currency[PRICING_CURRENCY_LEN];
	int64_t created_at;
};

/* Up to limit alerts of the org, newest first, strictly after the cursor
 * (after_at, after_id) (api/paging.h: the first page passes its sentinels).
 * *out malloc'd (caller frees), *n rows. DB_OK or a db_status. */
int costs_alerts_list(struct db_conn *c, const char *org_id, int64_t after_at,
		      const char *after_id, int limit, struct costs_alert **out, int *n)
	__attribute__((warn_unused_result));

/* Register pytake_cost_alerts_total{kind} in m (counted process-wide from
 * start-up). 0, or -1 on out of memory / name taken. */
int costs_metrics_register(struct metrics *m) __attribute__((warn_unused_result));

/* "YYYY-MM-DD" of us in IANA zone tz (UTC when tz is unknown) into
 * out[COSTS_DAY_LEN]; returns out. */
char *costs_local_day(const char *tz, int64_t us, char out[COSTS_DAY_LEN]);

#endif
