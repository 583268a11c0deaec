/* Costs (API.md "Costs"):
 *   GET /api/v1/costs/summary   (viewer and up)
 *   GET /api/v1/costs/budget    (viewer and up)
 *   PUT /api/v1/costs/budget    (org_admin, audited)
 *   GET /api/v1/costs/alerts    (viewer and up)
 *
 * Choices (API.md is terse):
 * - summary: from and to are required local dates (YYYY-MM-DD, inclusive,
 *   the org's time zone), from <= to, at most 366 days; group_by defaults
 *   to "day". Anything else is 422 validation_error naming the field. The
 *   answer is {from, to, group_by, currency, total, messages, groups:
 *   [{key, messages, amount}]} ordered by key; amounts are exact decimal
 *   strings with at least the currency's minor digits ("12.50",
 *   "0.0034"); a campaign key is null for messages outside campaigns;
 *   currency is the installation's (the rate card's) when nothing was
 *   priced in the range, null when there is no card either. Only the
 *   daily roll-up is read.
 * - budget GET answers {monthly_limit, alert_threshold_percent, currency,
 *   month, spent} (month-to-date spend of the current local month); with
 *   no budget set monthly_limit is null (threshold 80). PUT takes
 *   {monthly_limit: "decimal string" (required, >= 0),
 *   alert_threshold_percent (1..100, default 80), currency (default the
 *   rate card's; must be the card's when there is one)} and answers 200
 *   like GET.
 * - alerts: a cursor-paged list, newest first, items {id, kind, month,
 *   spent, limit, currency, created_at}. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/list.h"
#include "app/app.h"
#include "core/json.h"
#include "core/money.h"
#include "core/timeutil.h"
#include "domain/audit.h"
#include "domain/costs.h"
#include "domain/pricing.h"

/* Exact decimal with at least the currency's minor digits. */
static json_t *amount_json(int64_t m, const char *currency)
{
	char buf[MONEY_TEXT_LEN];
	int minor = currency != NULL ? currency_minor_units(currency) : -1;
	return json_string(money_format_min(m, minor >= 0 ? minor : 2, buf, sizeof buf));
}

/* The installation's currency (the rate card's) into out; "" when none. */
static void card_currency(struct app *app, char out[PRICING_CURRENCY_LEN])
{
	struct pricing_card *card = NULL;
	out[0] = '\0';
	if (pricing_current(app->db, &card) == DB_OK && pricing_card_count(card) > 0)
		memcpy(out, pricing_card_rate(card, 0)->currency, PRICING_CURRENCY_LEN);
	pricing_card_release(card);
}

static void answer_validation(struct http_response *res, const char *field, const char *msg)
{
	http_error(res, 422, "validation_error", "the request is not valid",
		   json_pack("[{s:s, s:s}]", "field", field, "message", msg));
}

/* ---- GET /api/v1/costs/summary -------------------------------------------- */

struct summary_query {
	const char *org_id;
	const char *from, *to;
	enum costs_group group;
	struct costs_summary sum;
};

/* Parse and check from/to/group_by; false after answering 422. */
static bool summary_parse(struct http_request *req, struct http_response *res,
			  struct summary_query *q)
{
	int64_t from = 0, to = 0;
	const char *g = http_query(req, "group_by");
	q->from = http_query(req, "from");
	q->to = http_query(req, "to");
	if (q->from == NULL || !pricing_parse_date(q->from, &from)) {
		answer_validation(res, "from", "is required: a date YYYY-MM-DD");
		return false;
	}
	if (q->to == NULL || !pricing_parse_date(q->to, &to)) {
		answer_validation(res, "to", "is required: a date YYYY-MM-DD");
		return false;
	}
	if (from > to) {
		answer_validation(res, "to", "must not be before from");
		return false;
	}
	if ((to - from) / (86400 * INT64_C(1000000)) + 1 > COSTS_MAX_RANGE_DAYS) {
		answer_validation(res, "to", "the range must not exceed 366 days");
		return false;
	}
	if (g == NULL)
		g = "day";
	if (!costs_group_parse(g, &q->group)) {
		answer_validation(res, "group_by",
				  "must be one of day, category, campaign, market, whatsapp_number");
		return false;
	}
	return true;
}

static int summary_fn(struct db_conn *c, void *ctx)
{
	struct summary_query *q = ctx;
	costs_summary_release(&q->sum); /* an earlier attempt's */
	return costs_summary(c, q->org_id, q->from, q->to, q->group, &q->sum);
}

static json_t *summary_json(const struct summary_query *q, const char *group_by)
{
	const char *cur = q->sum.currency;
	json_t *groups = json_array();
	for (int i = 0; i < q->sum.n; i++) {
		const struct costs_group_row *g = &q->sum.rows[i];
		json_array_append_new(groups, json_pack("{s:o, s:I, s:o}", "key",
							json_str_or_null(g->key), "messages",
							(json_int_t)g->messages, "amount",
							amount_json(g->amount, cur)));
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:o}", "from", q->from, "to", q->to,
			 "group_by", group_by, "currency", json_str_or_null(cur), "total",
			 amount_json(q->sum.total, cur), "messages", (json_int_t)q->sum.messages,
			 "groups", groups);
}

void api_costs_summary(struct http_request *req, struct http_response *res)
{
	struct summary_query q = { .org_id = req->auth.org_id, .sum = COSTS_SUMMARY_INIT };
	if (!summary_parse(req, res, &q))
		return;
	int rc = db_tx(req->app->db, false, summary_fn, &q);
	if (rc != DB_OK) {
		api_answer_db_error(res, rc);
		goto out;
	}
	if (q.sum.currency[0] == '\0')
		card_currency(req->app, q.sum.currency);
	const char *g = http_query(req, "group_by");
	json_t *body = summary_json(&q, g != NULL ? g : "day");
	if (body == NULL)
		http_error(res, 500, "internal_error", "out of memory", NULL);
	else
		http_json(res, 200, body);
out:
	costs_summary_release(&q.sum);
}

/* ---- budget ------------------------------------------------------------------ */

struct budget_view {
	const char *org_id;
	bool has;
	struct costs_budget b;
	char month[COSTS_MONTH_LEN];
	int64_t spent;
};

/* Read the org's budget and this month's spend into v. */
static int budget_read(struct db_conn *c, struct budget_view *v)
{
	char tz[80] = "UTC", day[COSTS_DAY_LEN];
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_TEXT(v->org_id) };
	int rc = costs_budget_get(c, v->org_id, &v->b);
	if (rc < 0)
		return rc;
	v->has = rc == 0;
	rc = db_exec(c, "SELECT timezone FROM organizations WHERE id = $1", p, 1, &r, NULL);
	if (rc != DB_OK)
		return rc;
	if (db_rows(r) > 0 && db_get_text(r, 0, 0) != NULL)
		snprintf(tz, sizeof tz, "%s", db_get_text(r, 0, 0));
	db_res_free(r);
	costs_local_day(tz, time_now_us(), day);
	memcpy(v->month, day, COSTS_MONTH_LEN - 1);
	v->month[COSTS_MONTH_LEN - 1] = '\0';
	return costs_month_spent(c, v->org_id, v->month, &v->spent);
}

static int budget_get_fn(struct db_conn *c, void *ctx)
{
	return budget_read(c, ctx);
}

static json_t *budget_json(struct app *app, struct budget_view *v)
{
	if (!v->has) {
		v->b.alert_threshold_percent = COSTS_THRESHOLD_DEFAULT;
		card_currency(app, v->b.currency);
	}
	const char *cur = v->b.currency;
	return json_pack("{s:o, s:i, s:o, s:s, s:o}", "monthly_limit",
			 v->has ? amount_json(v->b.monthly_limit, cur) : json_null(),
			 "alert_threshold_percent", v->b.alert_threshold_percent, "currency",
			 json_str_or_null(cur), "month", v->month, "spent",
			 amount_json(v->spent, cur));
}

static void answer_budget(struct http_request *req, struct http_response *res,
			  struct budget_view *v)
{
	json_t *body = budget_json(req->app, v);
	if (body == NULL)
		http_error(res, 500, "internal_error", "out of memory", NULL);
	else
		http_json(res, 200, body);
}

void api_costs_budget_get(struct http_request *req, struct http_response *res)
{
	struct budget_view v = { .org_id = req->auth.org_id };
	int rc = db_tx(req->app->db, false, budget_get_fn, &v);
	if (rc != DB_OK)
		api_answer_db_error(res, rc);
	else
		answer_budget(req, res, &v);
}

/* The PUT body into *b; problems go to chk. */
static void budget_parse(struct http_request *req, const json_t *body, struct json_check *chk,
			 struct costs_budget *b)
{
	const char *limit = NULL, *currency = NULL;
	int64_t pct = COSTS_THRESHOLD_DEFAULT;
	char card_cur[PRICING_CURRENCY_LEN];
	memset(b, 0, sizeof *b);
	if (json_check_str(chk, body, "monthly_limit", true, 1, 40, &limit)) {
		int mrc = money_parse(limit, &b->monthly_limit);
		if (mrc != MONEY_OK)
			json_check_rule(chk, "monthly_limit", "must be a decimal string: %s",
					money_strerror(mrc));
		else if (b->monthly_limit < 0)
			json_check_rule(chk, "monthly_limit", "must not be negative");
	}
	(void)json_check_int(chk, body, "alert_threshold_percent", false, 1, 100, &pct);
	b->alert_threshold_percent = (int)pct;
	card_currency(req->app, card_cur);
	if (json_check_str(chk, body, "currency", false, 3, 3, &currency)) {
		if (!currency_is_known(currency))
			json_check_rule(chk, "currency", "is not a known ISO 4217 code");
		else if (card_cur[0] != '\0' && strcmp(currency, card_cur) != 0)
			json_check_rule(chk, "currency", "must be the rate card's currency (%s)",
					card_cur);
		else
			memcpy(b->currency, currency, PRICING_CURRENCY_LEN);
	} else {
		memcpy(b->currency, card_cur[0] ? card_cur : "USD", PRICING_CURRENCY_LEN);
	}
}

struct budget_put {
	const struct http_request *req;
	struct costs_budget b;
	struct budget_view v;
};

static int budget_put_fn(struct db_conn *c, void *ctx)
{
	struct budget_put *t = ctx;
	struct costs_budget old = { 0 };
	bool had = false;
	char o[MONEY_TEXT_LEN], n[MONEY_TEXT_LEN];
	int rc = costs_budget_put(c, t->req->auth.org_id, &t->b, time_now_us(), &old, &had);
	if (rc != DB_OK)
		return rc;
	struct audit_entry e = { 0 };
	json_t *changes = json_object();
	audit_entry_from_request(&e, t->req);
	e.action = had ? "update" : "create";
	e.table_name = "budgets";
	e.record_id = t->req->auth.org_id;
	audit_change_str(changes, "monthly_limit",
			 had ? money_format(old.monthly_limit, o, sizeof o) : NULL,
			 money_format(t->b.monthly_limit, n, sizeof n));
	audit_change_int(changes, "alert_threshold_percent",
			 had ? old.alert_threshold_percent : 0, t->b.alert_threshold_percent);
	audit_change_str(changes, "currency", had ? old.currency : NULL, t->b.currency);
	e.changes = changes;
	rc = audit_record(c, &e);
	json_decref(changes);
	if (rc == DB_OK)
		rc = budget_read(c, &t->v);
	return rc;
}

void api_costs_budget_put(struct http_request *req, struct http_response *res)
{
	struct json_check chk = JSON_CHECK_INIT;
	struct budget_put t = { .req = req, .v = { .org_id = req->auth.org_id } };
	json_t *body = http_body_json(req, res);
	if (body == NULL)
		return;
	budget_parse(req, body, &chk, &t.b);
	json_decref(body);
	if (!json_check_ok(&chk)) {
		api_answer_check(res, &chk);
		return;
	}
	json_check_release(&chk);
	int rc = db_tx(req->app->db, true, budget_put_fn, &t);
	if (rc != DB_OK)
		api_answer_db_error(res, rc);
	else
		answer_budget(req, res, &t.v);
}

/* ---- GET /api/v1/costs/alerts ----------------------------------------------- */

struct alerts_ctx {
	const char *org_id;
	struct costs_alert *rows;
	int n;
};

static int alerts_fetch(struct db_conn *c, void *arg, const struct page *p, int limit, int *n)
{
	struct alerts_ctx *t = arg;
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
	int rc = costs_alerts_list(c, t->org_id, p->after_at, p->after_id, limit, &t->rows,
				   &t->n);
	*n = t->n;
	return rc;
}

static json_t *alerts_render(void *arg, int i, int64_t *at, const char **id)
{
	struct alerts_ctx *t = arg;
	const struct costs_alert *a = &t->rows[i];
	*at = a->created_at;
	*id = a->id;
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o}", "id", a->id, "kind", a->kind,
			 "month", a->month, "spent", amount_json(a->spent, a->currency), "limit",
			 amount_json(a->limit, a->currency), "currency", a->currency,
			 "created_at", api_time_json(a->created_at));
}

void api_costs_alerts(struct http_request *req, struct http_response *res)
{
	struct alerts_ctx t = { .org_id = req->auth.org_id };
	struct api_list list = { .fetch = alerts_fetch, .render = alerts_render, .ctx = &t };
	(void)api_list_answer(req, res, &list);
	free(t.rows);
}
