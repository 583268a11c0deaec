/* costs: message pricing, daily roll-ups, budgets and alerts (see
 * costs.h for the design). */
#include "domain/costs.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/money.h"
#include "core/timeutil.h"
#include "core/tz.h"
#include "core/uuid.h"

/* Alerts raised by this process, by kind (pytake_cost_alerts_total). A
 * transaction retried after raising one may count it twice: the database
 * row (UNIQUE per org, kind, month) is the record, this is a signal. */
static _Atomic int64_t alerts_threshold_count;
static _Atomic int64_t alerts_limit_count;

/* Bounded copy (truncates), "" for NULL. */
/* "YYYY-MM-DD" (years outside 0..9999 are clamped: never in practice). */
static void format_day(char out[COSTS_DAY_LEN], int y, unsigned m, unsigned d)
{
	char tmp[48];
	y = y < 0 ? 0 : y > 9999 ? 9999 : y;
	snprintf(tmp, sizeof tmp, "%04d-%02u-%02u", y, m % 100, d % 100);
	memcpy(out, tmp, COSTS_DAY_LEN - 1);
	out[COSTS_DAY_LEN - 1] = '\0';
}

char *costs_local_day(const char *tz, int64_t us, char out[COSTS_DAY_LEN])
{
	int y;
	unsigned m, d;
	int64_t s = us / 1000000 - (us % 1000000 < 0 ? 1 : 0);
	tz_local_date(tz, s, &y, &m, &d);
	format_day(out, y, m, d);
	return out;
}

/* ---- budgets -------------------------------------------------------------- */

int costs_budget_get(struct db_conn *c, const char *org_id, struct costs_budget *out)
{
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_TEXT(org_id) };
	int rc = db_exec(c,
			 "SELECT monthly_limit, alert_threshold_percent, currency FROM budgets"
			 " WHERE organization_id = $1",
			 p, 1, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) == 0) {
		rc = 1;
		goto out;
	}
	out->monthly_limit = db_get_money(r, 0, 0);
	out->alert_threshold_percent = (int)db_get_int(r, 0, 1);
	str_copy(out->currency, sizeof out->currency, db_get_text(r, 0, 2));
out:
	db_res_free(r);
	return rc;
}

int costs_budget_put(struct db_conn *c, const char *org_id, const struct costs_budget *b,
		     int64_t now, struct costs_budget *old_out, bool *had_old)
{
	struct costs_budget old;
	int rc = costs_budget_get(c, org_id, &old);
	if (rc < 0)
		return rc;
	if (had_old != NULL)
		*had_old = rc == 0;
	if (old_out != NULL && rc == 0)
		*old_out = old;
	const struct db_param p[] = { DBP_TEXT(org_id), DBP_MONEY(b->monthly_limit),
				      DBP_INT(b->alert_threshold_percent), DBP_TEXT(b->currency),
				      DBP_INT(now) };
	return db_exec(c,
		       "INSERT INTO budgets (organization_id, monthly_limit,"
		       " alert_threshold_percent, currency, created_at, updated_at)"
		       " VALUES ($1, $2, $3, $4, $5, $5)"
		       " ON CONFLICT (organization_id) DO UPDATE SET"
		       " monthly_limit = excluded.monthly_limit,"
		       " alert_threshold_percent = excluded.alert_threshold_percent,"
		       " currency = excluded.currency, updated_at = excluded.updated_at",
		       p, 5, NULL, NULL);
}

/* "YYYY-MM" -> the first day of it and of the next month ("YYYY-MM-01"). */
static void month_bounds(const char *month, char first[COSTS_DAY_LEN],
			 char next[COSTS_DAY_LEN])
{
	int y = (int)strtol(month, NULL, 10);
	int m = (int)strtol(month + 5, NULL, 10);
	format_day(first, y, (unsigned)m, 1);
	if (++m > 12) {
		m = 1;
		y++;
	}
	format_day(next, y, (unsigned)m, 1);
}

/* Spend of the month in one currency (NULL: every currency). */
static int month_spent(struct db_conn *c, const char *org_id, const char *month,
		       const char *currency, int64_t *out)
{
	char first[COSTS_DAY_LEN], next[COSTS_DAY_LEN];
	struct db_res *r = NULL;
	month_bounds(month, first, next);
	const struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(first), DBP_TEXT(next),
				      DBP_TEXT(currency) };
	int rc = currency != NULL
			 ? db_exec(c,
				   "SELECT SUM(amount) FROM cost_daily_by WHERE organization_id = $1"
				   " AND dimension = 'day' AND day >= $2 AND day < $3"
				   " AND currency = $4",
				   p, 4, &r, NULL)
			 : db_exec(c,
				   "SELECT SUM(amount) FROM cost_daily_by WHERE organization_id = $1"
				   " AND dimension = 'day' AND day >= $2 AND day < $3",
				   p, 3, &r, NULL);
	if (rc == DB_OK)
		*out = db_rows(r) > 0 && !db_isnull(r, 0, 0) ? db_get_money(r, 0, 0) : 0;
	db_res_free(r);
	return rc;
}

int costs_month_spent(struct db_conn *c, const char *org_id, const char *month, int64_t *out)
{
	return month_spent(c, org_id, month, NULL, out);
}

/* The org's IANA time zone into tz[TZ_NAME_MAX + 1] ("UTC" when unset). */
static int org_timezone(struct db_conn *c, const char *org_id, char *tz, size_t len)
{
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_TEXT(org_id) };
	int rc = db_exec(c, "SELECT timezone FROM organizations WHERE id = $1", p, 1, &r, NULL);
	if (rc == DB_OK)
		str_copy(tz, len, db_rows(r) > 0 && db_get_text(r, 0, 0) != NULL
					  ? db_get_text(r, 0, 0) : "UTC");
	db_res_free(r);
	return rc;
}

int costs_remaining_budget(struct db_conn *c, const char *org_id, int64_t now_us,
			   int64_t *remaining, bool *has_budget)
{
	struct costs_budget b;
	char tz[TZ_NAME_MAX + 1], day[COSTS_DAY_LEN];
	int64_t spent = 0;
	*remaining = 0;
	*has_budget = false;
	int rc = costs_budget_get(c, org_id, &b);
	if (rc != 0)
		return rc == 1 ? DB_OK : rc;
	rc = org_timezone(c, org_id, tz, sizeof tz);
	if (rc != DB_OK)
		return rc;
	costs_local_day(tz, now_us, day);
	day[7] = '\0';
	rc = month_spent(c, org_id, day, b.currency, &spent);
	if (rc != DB_OK)
		return rc;
	*has_budget = true;
	*remaining = spent < b.monthly_limit ? b.monthly_limit - spent : 0;
	return DB_OK;
}

/* ---- pricing -------------------------------------------------------------- */

enum costs_kind costs_classify(const struct costs_status *s, char *reason, size_t len)
{
	const char *type = s->pricing_type;
	str_copy(reason, len, "");
	if (type != NULL && type[0] != '\0') {
		if (strcmp(type, "regular") == 0)
			return COSTS_KIND_BILLABLE;
		if (strncmp(type, "free_", 5) == 0) {
			str_copy(reason, len, type);
			return COSTS_KIND_FREE;
		}
		return COSTS_KIND_NONE; /* a type we do not know: no decision */
	}
	if (s->billable == 1)
		return COSTS_KIND_BILLABLE;
	if (s->billable == 0) {
		str_copy(reason, len, "not_billable");
		return COSTS_KIND_FREE;
	}
	return COSTS_KIND_NONE;
}

/* The unpriced outbound message of a wamid and what pricing needs. */
struct msg_info {
	char id[37], org_id[37], number_id[37], campaign_id[37];
	char digits[32], category[PRICING_CATEGORY_LEN];
	char tz[TZ_NAME_MAX + 1];
};

/* 0 found, 1 none (unknown, inbound or already priced), or a db_status. */
static int message_info(struct db_conn *c, const struct costs_status *s, struct msg_info *m)
{
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_TEXT(s->wamid) };
	int rc = db_exec(c,
			 "SELECT m.id, m.organization_id, m.whatsapp_number_id, m.campaign_id,"
			 " ct.wa_id, m.pricing_category, o.timezone"
			 " FROM messages m JOIN contacts ct ON ct.id = m.contact_id"
			 " JOIN organizations o ON o.id = m.organization_id"
			 " WHERE m.wamid = $1 AND m.direction = 'outbound' AND m.priced_at IS NULL",
			 p, 1, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) == 0) {
		rc = 1;
		goto out;
	}
	str_copy(m->id, sizeof m->id, db_get_text(r, 0, 0));
	str_copy(m->org_id, sizeof m->org_id, db_get_text(r, 0, 1));
	str_copy(m->number_id, sizeof m->number_id, db_get_text(r, 0, 2));
	str_copy(m->campaign_id, sizeof m->campaign_id, db_get_text(r, 0, 3));
	str_copy(m->digits, sizeof m->digits,
		 db_get_text(r, 0, 4) != NULL ? db_get_text(r, 0, 4) : s->recipient_id);
	str_copy(m->category, sizeof m->category,
		 s->category != NULL && s->category[0] ? s->category : db_get_text(r, 0, 5));
	str_copy(m->tz, sizeof m->tz, db_get_text(r, 0, 6) ? db_get_text(r, 0, 6) : "UTC");
out:
	db_res_free(r);
	return rc;
}

/* Lower case, '-' -> '_' (Meta writes "authentication-international"). */
static void normalise_category(char *s)
{
	for (; *s; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
		else if (*s == '-')
			*s = '_';
	}
}

/* The card's currency: any row's (one per installation), else "USD". */
static const char *card_currency(const struct pricing_card *card)
{
	return pricing_card_count(card) > 0 ? pricing_card_rate(card, 0)->currency : "USD";
}

/* Fill out's market, rate, currency for message m. 0 or COSTS_NO_RATE. */
static int quote_message(const struct pricing_card *card, const struct msg_info *m,
			 enum costs_kind kind, int64_t at_us, struct costs_priced *out)
{
	struct pricing_quote q;
	int qrc = pricing_quote(card, m->digits, out->category, at_us, &q);
	str_copy(out->market, sizeof out->market, q.market);
	if (kind == COSTS_KIND_FREE) {
		out->rate = 0;
		str_copy(out->currency, sizeof out->currency,
			 qrc == 0 ? q.currency : card_currency(card));
		return 0;
	}
	if (qrc != 0)
		return COSTS_NO_RATE;
	out->rate = q.rate;
	str_copy(out->currency, sizeof out->currency, q.currency);
	return 0;
}

/* The guarded write: 0 when this call priced the message, else
 * COSTS_NOT_PRICED (someone else did first) or a db_status. */
static int record_price(struct db_conn *c, const struct costs_priced *pr, int64_t at_us)
{
	int64_t affected = 0;
	const struct db_param p[] = {
		DBP_TEXT(pr->message_id), DBP_MONEY(pr->amount), DBP_TEXT(pr->currency),
		DBP_TEXT(pr->market), DBP_MONEY(pr->rate), DBP_INT(at_us),
		DBP_TEXT(pr->free_reason[0] ? pr->free_reason : NULL), DBP_TEXT(pr->category),
	};
	int rc = db_exec(c,
			 "UPDATE messages SET cost = $2, currency = $3, pricing_market = $4,"
			 " pricing_rate = $5, priced_at = $6, pricing_free_reason = $7,"
			 " pricing_category = COALESCE(pricing_category, $8)"
			 " WHERE id = $1 AND priced_at IS NULL",
			 p, 8, NULL, &affected);
	if (rc != DB_OK)
		return rc;
	return affected == 1 ? 0 : COSTS_NOT_PRICED;
}

static int rollup_add(struct db_conn *c, const struct msg_info *m,
		      const struct costs_priced *pr)
{
	const struct db_param p[] = {
		DBP_TEXT(m->org_id),   DBP_TEXT(pr->day),      DBP_TEXT(pr->category),
		DBP_TEXT(pr->market),  DBP_TEXT(m->number_id), DBP_TEXT(m->campaign_id),
		DBP_TEXT(pr->currency), DBP_MONEY(pr->amount),
	};
	return db_exec(c,
		       "INSERT INTO cost_daily (organization_id, day, category, market,"
		       " whatsapp_number_id, campaign_id, currency, messages, amount)"
		       " VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)"
		       " ON CONFLICT (organization_id, day, category, market, whatsapp_number_id,"
		       " campaign_id, currency) DO UPDATE SET"
		       " messages = cost_daily.messages + excluded.messages,"
		       " amount = cost_daily.amount + excluded.amount",
		       p, 8, NULL, NULL);
}

/* Add the priced message to cost_daily_by: one row per dimension, in one
 * statement (the five keys differ by dimension, so no row is hit twice). */
static int rollup_by_add(struct db_conn *c, const struct msg_info *m,
			 const struct costs_priced *pr)
{
	const struct db_param p[] = {
		DBP_TEXT(m->org_id),   DBP_TEXT(pr->day),      DBP_TEXT(pr->category),
		DBP_TEXT(pr->market),  DBP_TEXT(m->number_id), DBP_TEXT(m->campaign_id),
		DBP_TEXT(pr->currency), DBP_MONEY(pr->amount),
	};
	return db_exec(c,
		       "INSERT INTO cost_daily_by (organization_id, dimension, day, group_key,"
		       " currency, messages, amount) VALUES"
		       " ($1, 'day', $2, $2, $7, 1, $8),"
		       " ($1, 'category', $2, $3, $7, 1, $8),"
		       " ($1, 'market', $2, $4, $7, 1, $8),"
		       " ($1, 'whatsapp_number', $2, $5, $7, 1, $8),"
		       " ($1, 'campaign', $2, $6, $7, 1, $8)"
		       " ON CONFLICT (organization_id, dimension, day, group_key, currency)"
		       " DO UPDATE SET messages = cost_daily_by.messages + excluded.messages,"
		       " amount = cost_daily_by.amount + excluded.amount",
		       p, 8, NULL, NULL);
}

/* Insert the (org, kind, month) alert unless there is one: *raised. */
static int alert_insert(struct db_conn *c, const char *org_id, const char *kind,
			const char *month, int64_t spent, const struct costs_budget *b,
			bool *raised)
{
	char id[37];
	int64_t affected = 0;
	*raised = false;
	if (uuid_v7_str(id) != 0)
		return DB_ERR;
	const struct db_param p[] = { DBP_TEXT(id),	  DBP_TEXT(org_id),
				      DBP_TEXT(kind),	  DBP_TEXT(month),
				      DBP_MONEY(spent),	  DBP_MONEY(b->monthly_limit),
				      DBP_TEXT(b->currency), DBP_INT(time_now_us()) };
	int rc = db_exec(c,
			 "INSERT INTO cost_alerts (id, organization_id, kind, month, spent,"
			 " limit_amount, currency, created_at)"
			 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
			 " ON CONFLICT (organization_id, kind, month) DO NOTHING",
			 p, 8, NULL, &affected);
	*raised = rc == DB_OK && affected == 1;
	return rc;
}

static void alert_announce(const char *org_id, const char *kind, const char *month,
			   int64_t spent, const struct costs_budget *b)
{
	char s[MONEY_TEXT_LEN], l[MONEY_TEXT_LEN];
	atomic_fetch_add(strcmp(kind, "limit") == 0 ? &alerts_limit_count
						    : &alerts_threshold_count, 1);
	money_format(spent, s, sizeof s);
	money_format(b->monthly_limit, l, sizeof l);
	log_event(LOG_WARN, "cost budget alert", LF_S("org_id", org_id), LF_S("kind", kind),
		  LF_S("month", month), LF_S("spent", s), LF_S("limit", l),
		  LF_S("currency", b->currency));
}

/* After pricing: raise the threshold / limit alert of the month once. */
static int check_budget(struct db_conn *c, const char *org_id, const char *day, int *raised)
{
	struct costs_budget b;
	char month[COSTS_MONTH_LEN];
	int64_t spent = 0, threshold = 0;
	int rc = costs_budget_get(c, org_id, &b);
	if (rc != 0)
		return rc == 1 ? DB_OK : rc;
	memcpy(month, day, COSTS_MONTH_LEN - 1); /* "YYYY-MM" of "YYYY-MM-DD" */
	month[COSTS_MONTH_LEN - 1] = '\0';
	rc = month_spent(c, org_id, month, b.currency, &spent);
	if (rc != DB_OK)
		return rc;
	if (money_mul_ratio(b.monthly_limit, b.alert_threshold_percent, 100, &threshold) !=
	    MONEY_OK)
		return DB_ERR;
	const struct { const char *kind; int64_t at; } levels[] = {
		{ "threshold", threshold }, { "limit", b.monthly_limit } };
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		bool up = false;
		if (spent < levels[i].at)
			continue;
		rc = alert_insert(c, org_id, levels[i].kind, month, spent, &b, &up);
		if (rc != DB_OK)
			return rc;
		if (up) {
			(*raised)++;
			alert_announce(org_id, levels[i].kind, month, spent, &b);
		}
	}
	return DB_OK;
}

/* Price message m (found unpriced) with the card. */
static int price_with(struct db_conn *c, const struct pricing_card *card,
		      const struct costs_status *s, enum costs_kind kind, const char *reason,
		      const struct msg_info *m, struct costs_priced *pr)
{
	memset(pr, 0, sizeof *pr);
	str_copy(pr->message_id, sizeof pr->message_id, m->id);
	str_copy(pr->organization_id, sizeof pr->organization_id, m->org_id);
	str_copy(pr->category, sizeof pr->category, m->category[0] ? m->category : "unknown");
	normalise_category(pr->category);
	str_copy(pr->free_reason, sizeof pr->free_reason, reason);
	int rc = quote_message(card, m, kind, s->at_us, pr);
	if (rc != 0) {
		log_event(LOG_WARN, "no rate to price message", LF_S("org_id", m->org_id),
			  LF_S("message_id", m->id), LF_S("market", pr->market),
			  LF_S("category", pr->category));
		return rc;
	}
	pr->amount = pr->rate; /* one message */
	costs_local_day(m->tz, s->at_us, pr->day);
	rc = record_price(c, pr, s->at_us);
	if (rc == 0)
		rc = rollup_add(c, m, pr);
	if (rc == 0)
		rc = rollup_by_add(c, m, pr);
	if (rc == 0 && pr->amount > 0)
		rc = check_budget(c, m->org_id, pr->day, &pr->alerts_raised);
	return rc;
}

int costs_price_status(struct db_conn *c, const struct pricing_card *card,
		       const struct costs_status *s, struct costs_priced *out)
{
	char reason[COSTS_REASON_LEN];
	struct msg_info m;
	struct costs_priced pr;
	struct pricing_card *owned = NULL;
	enum costs_kind kind = costs_classify(s, reason, sizeof reason);
	if (kind == COSTS_KIND_NONE || s->wamid == NULL)
		return COSTS_NOT_PRICED;
	int rc = message_info(c, s, &m);
	if (rc != 0)
		return rc == 1 ? COSTS_NOT_PRICED : rc;
	if (card == NULL) {
		rc = pricing_current(db_conn_db(c), &owned);
		if (rc != DB_OK)
			return rc;
		card = owned;
	}
	rc = price_with(c, card, s, kind, reason, &m, &pr);
	pricing_card_release(owned);
	if (rc == 0 && out != NULL)
		*out = pr;
	return rc;
}

/* ---- summaries -------------------------------------------------------------- */

static const char *const group_names[] = { "day", "category", "campaign", "market",
					   "whatsapp_number" };
/* Summaries read cost_daily_by (migration 0011): at most 31 x keys rows a
 * month, through its primary key (organization_id, dimension, day, ...).
 * $4 is group_names[g], the dimension. */
static const char summary_sql[] =
	"SELECT group_key, SUM(messages), SUM(amount), MIN(currency) FROM cost_daily_by"
	" WHERE organization_id = $1 AND dimension = $4 AND day >= $2 AND day <= $3"
	" GROUP BY group_key ORDER BY group_key";

bool costs_group_parse(const char *s, enum costs_group *out)
{
	for (size_t i = 0; s != NULL && i < sizeof group_names / sizeof group_names[0]; i++)
		if (strcmp(s, group_names[i]) == 0) {
			*out = (enum costs_group)i;
			return true;
		}
	return false;
}

void costs_summary_release(struct costs_summary *s)
{
	if (s == NULL)
		return;
	free(s->rows);
	*s = (struct costs_summary)COSTS_SUMMARY_INIT;
}

static int summary_fill(const struct db_res *r, struct costs_summary *out)
{
	int n = db_rows(r);
	out->rows = calloc((size_t)n + 1, sizeof *out->rows);
	if (out->rows == NULL)
		return DB_ERR;
	for (int i = 0; i < n; i++) {
		struct costs_group_row *g = &out->rows[i];
		str_copy(g->key, sizeof g->key, db_get_text(r, i, 0));
		g->messages = db_get_int(r, i, 1);
		g->amount = db_get_money(r, i, 2);
		if (money_add(out->total, g->amount, &out->total) != MONEY_OK)
			return DB_ERR;
		out->messages += g->messages;
		if (out->currency[0] == '\0')
			str_copy(out->currency, sizeof out->currency, db_get_text(r, i, 3));
		out->n++;
	}
	return DB_OK;
}

int costs_summary(struct db_conn *c, const char *org_id, const char *from, const char *to,
		  enum costs_group g, struct costs_summary *out)
{
	struct db_res *r = NULL;
	*out = (struct costs_summary)COSTS_SUMMARY_INIT;
	if ((unsigned)g >= sizeof group_names / sizeof group_names[0])
		return DB_ERR;
	const struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(from), DBP_TEXT(to),
				      DBP_TEXT(group_names[g]) };
	int rc = db_exec(c, summary_sql, p, 4, &r, NULL);
	if (rc == DB_OK)
		rc = summary_fill(r, out);
	db_res_free(r);
	if (rc != DB_OK)
		costs_summary_release(out);
	return rc;
}

/* ---- alerts ---------------------------------------------------------------- */

int costs_alerts_list(struct db_conn *c, const char *org_id, int64_t after_at,
		      const char *after_id, int limit, struct costs_alert **out, int *n)
{
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_TEXT(org_id), DBP_INT(after_at), DBP_TEXT(after_id),
				      DBP_INT(limit) };
	*out = NULL;
	*n = 0;
	int rc = db_exec(c,
			 "SELECT id, kind, month, spent, limit_amount, currency, created_at"
			 " FROM cost_alerts WHERE organization_id = $1"
			 " AND (created_at, id) < ($2, $3)"
			 " ORDER BY created_at DESC, id DESC LIMIT $4",
			 p, 4, &r, NULL);
	if (rc != DB_OK)
		goto out;
	*out = calloc((size_t)db_rows(r) + 1, sizeof **out);
	if (*out == NULL) {
		rc = DB_ERR;
		goto out;
	}
	for (int i = 0; i < db_rows(r); i++) {
		struct costs_alert *a = &(*out)[i];
		str_copy(a->id, sizeof a->id, db_get_text(r, i, 0));
		str_copy(a->kind, sizeof a->kind, db_get_text(r, i, 1));
		str_copy(a->month, sizeof a->month, db_get_text(r, i, 2));
		a->spent = db_get_money(r, i, 3);
		a->limit = db_get_money(r, i, 4);
		str_copy(a->currency, sizeof a->currency, db_get_text(r, i, 5));
		a->created_at = db_get_int(r, i, 6);
	}
	*n = db_rows(r);
out:
	db_res_free(r);
	return rc;
}

/* ---- metrics ------------------------------------------------------------- */

static struct metric_family *alerts_family;

static void collect(struct metrics *m, void *ctx)
{
	static const char *const threshold[] = { "threshold" };
	static const char *const limit[] = { "limit" };
	(void)m;
	(void)ctx;
	metrics_put(alerts_family, threshold, atomic_load(&alerts_threshold_count));
	metrics_put(alerts_family, limit, atomic_load(&alerts_limit_count));
}

int costs_metrics_register(struct metrics *m)
{
	static const char *const labels[] = { "kind" };
	if (m == NULL)
		return 0;
	alerts_family = metrics_counter_new(m, "pytake_cost_alerts_total",
					    "Budget alerts raised (threshold, limit)", 1, labels);
	if (alerts_family == NULL)
		return -1;
	return metrics_add_collector(m, collect, NULL);
}
