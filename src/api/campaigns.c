/* Campaigns (API.md "Campaigns"): reads for every role, writes org_admin.
 *   GET/POST /api/v1/campaigns, GET /api/v1/campaigns/{id},
 *   POST /api/v1/campaigns/{id}/estimate|start|pause|resume|cancel,
 *   GET /api/v1/campaigns/{id}/recipients (?status=, ?format=csv)
 *
 * Choices (API.md is silent):
 * - A campaign is shown with counters and cost on GET /{id} and on the
 *   actions' answers; list items carry neither (one query per page).
 * - Amounts are exact decimal strings with at least 2 decimals.
 * - whatsapp_number_id / template_id that are not the caller's (or the
 *   template of another number) are 422 on that field.
 * - start: 422 template_not_approved, 422 budget_exceeded (details carry
 *   the estimate and the limit), 422 no_rate when the rate card cannot
 *   price a recipient.
 * - ?format=csv answers every matching recipient (no paging) as text/csv
 *   with the columns of the JSON items, streamed (chunked) a page of
 *   CSV_PAGE rows at a time: memory stays flat whatever the audience. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/list.h"
#include "app/app.h"
#include "core/json.h"
#include "core/log.h"
#include "core/money.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "domain/audit.h"
#include "domain/campaigns.h"
#include "domain/pricing.h"

/* ---- rendering ---------------------------------------------------------------- */

static json_t *money_json(bool has, int64_t m)
{
	char buf[MONEY_TEXT_LEN];
	return has ? json_string(money_format_min(m, 2, buf, sizeof buf)) : json_null();
}

static json_t *campaign_json(const struct campaign *c)
{
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "id", json_string(c->id));
	json_object_set_new(o, "name", json_string(c->name));
	json_object_set_new(o, "whatsapp_number_id", json_string(c->whatsapp_number_id));
	json_object_set_new(o, "template_id", json_string(c->template_id));
	json_object_set(o, "audience", c->audience ? c->audience : json_object());
	json_object_set_new(o, "parameters", c->parameters ? json_incref(c->parameters) : json_null());
	json_object_set_new(o, "status", json_string(c->status));
	json_object_set_new(o, "scheduled_at", api_time_json(c->scheduled_at));
	json_object_set_new(o, "budget_limit", money_json(c->has_budget, c->budget_limit));
	json_object_set_new(o, "currency", c->currency[0] ? json_string(c->currency) : json_null());
	json_object_set_new(o, "error_message",
			    c->error_message[0] ? json_string(c->error_message) : json_null());
	json_object_set_new(o, "started_at", api_time_json(c->started_at));
	json_object_set_new(o, "completed_at", api_time_json(c->completed_at));
	json_object_set_new(o, "created_at", api_time_json(c->created_at));
	json_object_set_new(o, "updated_at", api_time_json(c->updated_at));
	return o;
}

static json_t *campaign_full_json(const struct campaign *c, const struct campaign_counters *k)
{
	json_t *o = campaign_json(c);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "counters",
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "total", k->total,
				      "queued", k->queued, "sent", k->sent, "delivered",
				      k->delivered, "read", k->read, "failed", k->failed, "skipped",
				      k->skipped));
	json_t *cost = json_object();
	json_object_set_new(cost, "estimated", money_json(c->has_estimate, c->estimated_cost));
	json_object_set_new(cost, "actual", money_json(true, k->actual_cost));
	json_object_set_new(cost, "currency", c->currency[0] ? json_string(c->currency) : json_null());
	json_object_set_new(o, "cost", cost);
	return o;
}

static json_t *estimate_json(const struct campaign_estimate *e)
{
	json_t *markets = json_array();
	for (int i = 0; i < e->nmarkets; i++)
		json_array_append_new(markets,
				      json_pack("{s:s, s:I, s:o}", "market", e->markets[i].market,
						"recipients", e->markets[i].recipients, "amount",
						money_json(true, e->markets[i].amount)));
	return json_pack("{s:I, s:I, s:{s:o, s:s?}, s:s, s:o}", "recipients", e->recipients,
			 "skipped_opted_out", e->skipped_opted_out, "cost", "amount",
			 money_json(true, e->amount), "currency",
			 e->currency[0] ? e->currency : NULL, "category", e->category, "by_market",
			 markets);
}

static void answer_error(struct http_response *res, int rc)
{
	switch (rc) {
	case 1:
		api_answer_not_found(res, "no such campaign");
		break;
	case CAMPAIGNS_INVALID_STATE:
		http_error(res, 409, "invalid_state", "the campaign cannot do that in its state",
			   NULL);
		break;
	case CAMPAIGNS_TEMPLATE_NOT_APPROVED:
		http_error(res, 422, "template_not_approved", "the template is not APPROVED", NULL);
		break;
	case CAMPAIGNS_NO_RATE:
		http_error(res, 422, "no_rate", "the rate card has no rate for a recipient", NULL);
		break;
	default:
		api_answer_db_error(res, rc);
	}
}

/* ---- GET /campaigns, GET /campaigns/{id} ----------------------------------------- */

struct list_ctx {
	const char *org_id;
	struct campaign *rows;
	int n;
};

static int list_fetch(struct db_conn *c, void *ctx, const struct page *p, int limit, int *n)
{
	struct list_ctx *l = ctx;
	campaign_rows_free(l->rows, l->n);
	l->rows = NULL;
	l->n = 0;
	int rc = campaigns_list(c, l->org_id, limit, p->after_at, p->after_id, &l->rows, &l->n);
	*n = l->n;
	return rc;
}

static json_t *list_render(void *ctx, int i, int64_t *at, const char **id)
{
	struct list_ctx *l = ctx;
	*at = l->rows[i].created_at;
	*id = l->rows[i].id;
	return campaign_json(&l->rows[i]);
}

void api_campaigns_list(struct http_request *req, struct http_response *res)
{
	struct list_ctx l = { .org_id = req->auth.org_id };
	struct api_list list = { .fetch = list_fetch, .render = list_render, .ctx = &l };
	(void)api_list_answer(req, res, &list);
	campaign_rows_free(l.rows, l.n);
}

struct get_tx {
	const char *org_id, *id;
	struct campaign cp;
	struct campaign_counters k;
};

static int get_fn(struct db_conn *c, void *ctx)
{
	struct get_tx *t = ctx;
	campaign_release(&t->cp);
	int rc = campaigns_find(c, t->org_id, t->id, &t->cp);
	if (rc == 0)
		rc = campaigns_counters(c, t->org_id, t->id, &t->k);
	return rc;
}

static void answer_campaign(struct http_request *req, struct http_response *res,
			    const char *id, int status)
{
	struct get_tx t = { .org_id = req->auth.org_id, .id = id };
	int rc = db_tx(req->app->db, false, get_fn, &t);
	if (rc == 0)
		http_json(res, status, campaign_full_json(&t.cp, &t.k));
	else
		answer_error(res, rc);
	campaign_release(&t.cp);
}

void api_campaigns_get(struct http_request *req, struct http_response *res)
{
	const char *id;
	if (api_path_id(req, res, "no such campaign", &id))
		answer_campaign(req, res, id, 200);
}

/* ---- POST /campaigns ------------------------------------------------------------------ */

static bool parse_create(struct http_response *res, const json_t *body, struct campaign_new *in)
{
	struct json_check chk = JSON_CHECK_INIT;
	json_check_str(&chk, body, "name", true, 1, CAMPAIGNS_NAME_MAX, &in->name);
	json_check_str(&chk, body, "whatsapp_number_id", true, 1, 64, &in->whatsapp_number_id);
	json_check_str(&chk, body, "template_id", true, 1, 64, &in->template_id);
	json_t *aud = json_object_get(body, "audience");
	if (aud == NULL || json_is_null(aud))
		json_check_rule(&chk, "audience", "is required");
	else if (!json_is_object(aud))
		json_check_type(&chk, "audience", "must be an object");
	else {
		const char *why = campaigns_check_audience(aud);
		if (why)
			json_check_rule(&chk, "audience", "%s", why);
		in->audience = aud;
	}
	json_t *params = json_object_get(body, "parameters");
	if (params && !json_is_null(params)) {
		if (!json_is_array(params) && !json_is_object(params))
			json_check_type(&chk, "parameters", "must be an array or object");
		else
			in->parameters = params;
	}
	const char *s = NULL;
	if (json_check_str(&chk, body, "scheduled_at", false, 1, 64, &s) &&
	    !time_parse_rfc3339(s, &in->scheduled_at))
		json_check_rule(&chk, "scheduled_at", "must be an RFC 3339 time");
	s = NULL;
	if (json_check_str(&chk, body, "budget_limit", false, 1, MONEY_TEXT_LEN, &s)) {
		if (money_parse(s, &in->budget_limit) != MONEY_OK || in->budget_limit < 0)
			json_check_rule(&chk, "budget_limit", "must be a non-negative decimal string");
		else
			in->has_budget = true;
	}
	if (json_check_ok(&chk)) {
		json_check_release(&chk);
		return true;
	}
	api_answer_check(res, &chk);
	return false;
}

struct write_tx {
	const struct http_request *req;
	const char *id;
	const struct campaign_new *in;
	const struct pricing_card *card;
	enum campaign_action action;
	const char *audit_action;
	struct campaign out;
	struct campaign_estimate est;
};

static int audit_fn(struct db_conn *c, struct write_tx *t, const char *old_status)
{
	json_t *changes = json_object();
	audit_change_str(changes, "status", old_status, t->out.status);
	if (old_status == NULL)
		audit_change_str(changes, "name", NULL, t->out.name);
	struct audit_entry e;
	audit_entry_from_request(&e, t->req);
	e.action = t->audit_action;
	e.table_name = "campaigns";
	e.record_id = t->out.id;
	e.changes = changes;
	int rc = audit_record(c, &e);
	json_decref(changes);
	return rc;
}

static int create_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	campaign_release(&t->out);
	int rc = campaigns_create(c, t->req->auth.org_id, t->in, &t->out);
	return rc == 0 ? audit_fn(c, t, NULL) : rc;
}

static const char *card_currency(struct db *db)
{
	static char cur[PRICING_CURRENCY_LEN];
	struct pricing_card *card = NULL;
	const char *out = NULL;
	if (pricing_current(db, &card) == DB_OK && card && pricing_card_count(card) > 0) {
		/* one currency per installation (pricing.h) */
		memcpy(cur, pricing_card_rate(card, 0)->currency, sizeof cur);
		out = cur;
	}
	pricing_card_release(card);
	return out;
}

void api_campaigns_create(struct http_request *req, struct http_response *res)
{
	json_t *body = http_body_json(req, res);
	struct campaign_new in;
	memset(&in, 0, sizeof in);
	struct write_tx t = { .req = req, .in = &in, .audit_action = "create" };
	if (body == NULL)
		return;
	if (!parse_create(res, body, &in))
		goto out;
	in.currency = card_currency(req->app->db);
	int rc = db_tx(req->app->db, true, create_fn, &t);
	if (rc == CAMPAIGNS_BAD_NUMBER || rc == CAMPAIGNS_BAD_TEMPLATE) {
		const char *field = rc == CAMPAIGNS_BAD_NUMBER ? "whatsapp_number_id" : "template_id";
		http_error(res, 422, "validation_error", "the request is not valid",
			   json_pack("[{s:s, s:s}]", "field", field, "message",
				     rc == CAMPAIGNS_BAD_NUMBER
					     ? "is not a WhatsApp number of this organization"
					     : "is not a template of this organization and number"));
		goto out;
	}
	if (rc != 0) {
		answer_error(res, rc);
		goto out;
	}
	http_add_header(res, "Location", arena_printf(req->arena, "/api/v1/campaigns/%s", t.out.id));
	struct campaign_counters k;
	memset(&k, 0, sizeof k);
	http_json(res, 201, campaign_full_json(&t.out, &k));
out:
	campaign_release(&t.out);
	json_decref(body);
}

/* ---- estimate ---------------------------------------------------------------------- */

static int estimate_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	campaign_release(&t->out);
	int rc = campaigns_find(c, t->req->auth.org_id, t->id, &t->out);
	if (rc == 0)
		rc = campaigns_estimate(c, t->card, t->req->auth.org_id, &t->out, time_now_us(),
					&t->est);
	return rc;
}

void api_campaigns_estimate(struct http_request *req, struct http_response *res)
{
	struct write_tx t = { .req = req };
	struct pricing_card *card = NULL;
	if (!api_path_id(req, res, "no such campaign", &t.id))
		return;
	int rc = pricing_current(req->app->db, &card);
	t.card = card;
	if (rc == 0)
		rc = db_tx(req->app->db, false, estimate_fn, &t);
	if (rc == 0)
		http_json(res, 200, estimate_json(&t.est));
	else
		answer_error(res, rc);
	pricing_card_release(card);
	campaign_release(&t.out);
}

/* ---- actions ------------------------------------------------------------------------- */

static int start_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	campaign_release(&t->out);
	int rc = campaigns_start(c, t->card, t->req->auth.org_id, t->id, time_now_us(), &t->out,
				 &t->est);
	return rc == 0 ? audit_fn(c, t, "draft") : rc;
}

static void answer_budget(struct http_response *res, const struct write_tx *t,
			  const struct campaign *cp)
{
	char a[MONEY_TEXT_LEN], b[MONEY_TEXT_LEN];
	money_format_min(t->est.amount, 2, a, sizeof a);
	money_format_min(cp->budget_limit, 2, b, sizeof b);
	http_error(res, 422, "budget_exceeded", "the estimated cost exceeds the budget",
		   json_pack("[{s:s, s:s}]", "field", "budget_limit", "message",
			     cp->has_budget ? b : "the organization's remaining monthly budget"));
	json_object_set_new(json_object_get(res->json, "error"), "estimate",
			    json_pack("{s:s, s:s}", "amount", a, "currency", t->est.currency));
}

static int find_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	campaign_release(&t->out);
	return campaigns_find(c, t->req->auth.org_id, t->id, &t->out);
}

void api_campaigns_start(struct http_request *req, struct http_response *res)
{
	struct write_tx t = { .req = req, .audit_action = "start" };
	struct pricing_card *card = NULL;
	if (!api_path_id(req, res, "no such campaign", &t.id))
		return;
	int rc = pricing_current(req->app->db, &card);
	t.card = card;
	if (rc == 0)
		rc = db_tx(req->app->db, true, start_fn, &t);
	if (rc == CAMPAIGNS_BUDGET_EXCEEDED) {
		if (db_tx(req->app->db, false, find_fn, &t) == 0)
			answer_budget(res, &t, &t.out);
		else
			api_answer_db_error(res, DB_ERR);
	} else if (rc == 0) {
		answer_campaign(req, res, t.id, 200);
	} else {
		answer_error(res, rc);
	}
	pricing_card_release(card);
	campaign_release(&t.out);
}

static int transition_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	campaign_release(&t->out);
	struct campaign before;
	int rc = campaigns_find(c, t->req->auth.org_id, t->id, &before);
	if (rc != 0)
		return rc;
	rc = campaigns_transition(c, t->req->auth.org_id, t->id, t->action, time_now_us(), &t->out);
	if (rc == 0)
		rc = audit_fn(c, t, before.status);
	campaign_release(&before);
	return rc;
}

static void transition(struct http_request *req, struct http_response *res,
		       enum campaign_action action, const char *audit_action)
{
	struct write_tx t = { .req = req, .action = action, .audit_action = audit_action };
	if (!api_path_id(req, res, "no such campaign", &t.id))
		return;
	int rc = db_tx(req->app->db, true, transition_fn, &t);
	if (rc == 0)
		answer_campaign(req, res, t.id, 200);
	else
		answer_error(res, rc);
	campaign_release(&t.out);
}

void api_campaigns_pause(struct http_request *req, struct http_response *res)
{
	transition(req, res, CAMPAIGN_PAUSE, "pause");
}

void api_campaigns_resume(struct http_request *req, struct http_response *res)
{
	transition(req, res, CAMPAIGN_RESUME, "resume");
}

void api_campaigns_cancel(struct http_request *req, struct http_response *res)
{
	transition(req, res, CAMPAIGN_CANCEL, "cancel");
}

/* ---- recipients ------------------------------------------------------------------------ */

struct rcp_ctx {
	const char *org_id, *id, *status;
	bool exists;
	struct campaign_recipient *rows;
	int n;
};

static int rcp_fetch(struct db_conn *c, void *ctx, const struct page *p, int limit, int *n)
{
	struct rcp_ctx *l = ctx;
	struct campaign cp;
	memset(&cp, 0, sizeof cp);
	free(l->rows);
	l->rows = NULL;
	l->n = 0;
	*n = 0;
	int rc = campaigns_find(c, l->org_id, l->id, &cp);
	campaign_release(&cp);
	l->exists = rc == 0;
	if (rc == 1)
		return DB_OK;
	if (rc != 0)
		return rc;
	rc = campaigns_recipients(c, l->org_id, l->id, l->status, limit, p->after_at, p->after_id,
				  &l->rows, &l->n);
	*n = l->n;
	return rc;
}

static json_t *rcp_json(const struct campaign_recipient *r)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:I}", "contact_id", r->contact_id, "phone",
			      r->phone, "status", r->status, "message_id",
			      r->message_id[0] ? r->message_id : NULL, "attempts", r->attempts);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "wamid", r->wamid[0] ? json_string(r->wamid) : json_null());
	json_object_set_new(o, "error_code",
			    r->has_error_code ? json_integer(r->error_code) : json_null());
	json_object_set_new(o, "error_message",
			    r->error_message[0] ? json_string(r->error_message) : json_null());
	json_object_set_new(o, "cost", money_json(r->has_cost, r->cost));
	return o;
}

static json_t *rcp_render(void *ctx, int i, int64_t *at, const char **id)
{
	struct rcp_ctx *l = ctx;
	*at = l->rows[i].created_at;
	*id = l->rows[i].id;
	return rcp_json(&l->rows[i]);
}

static bool status_filter_ok(struct http_response *res, const char *s)
{
	static const char *const ok[] = { "pending", "sending", "sent", "delivered", "read",
					  "failed", "skipped" };
	if (s == NULL)
		return true;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (!strcmp(s, ok[i]))
			return true;
	http_error(res, 422, "validation_error", "the request is not valid",
		   json_pack("[{s:s, s:s}]", "field", "status", "message",
			     "must be pending, sending, sent, delivered, read, failed or skipped"));
	return false;
}

/* ---- CSV export (streamed) ------------------------------------------------------------ */

#define CSV_PAGE 1000 /* recipients read per query while streaming */

struct csv_stream {
	struct app *app;
	char org_id[37], id[37], status[16];
	bool has_status;
	int64_t after_at;          /* keyset position (page_first's sentinels at first) */
	char after_id[37];
	bool header_done, last_page;
	char *buf;                 /* the current page as CSV */
	size_t len, pos, cap;
	struct campaign_recipient *rows;
	int n;
};

static bool csv_reserve(struct csv_stream *s, size_t more)
{
	if (s->len + more <= s->cap)
		return true;
	size_t ncap = (s->len + more) * 2;
	char *nb = realloc(s->buf, ncap);
	if (nb == NULL)
		return false;
	s->buf = nb;
	s->cap = ncap;
	return true;
}

/* CSV field: quoted when it holds a comma, quote or newline. */
static bool csv_field(struct csv_stream *s, const char *v, bool last)
{
	if (!csv_reserve(s, 2 * strlen(v) + 4))
		return false;
	bool quote = strpbrk(v, ",\"\r\n") != NULL;
	char *p = s->buf + s->len;
	if (quote)
		*p++ = '"';
	for (; *v; v++) {
		if (*v == '"')
			*p++ = '"';
		*p++ = *v;
	}
	if (quote)
		*p++ = '"';
	*p++ = last ? '\n' : ',';
	s->len = (size_t)(p - s->buf);
	return true;
}

static int csv_page_fn(struct db_conn *c, void *ctx)
{
	struct csv_stream *s = ctx;
	free(s->rows);
	s->rows = NULL;
	s->n = 0;
	return campaigns_recipients(c, s->org_id, s->id, s->has_status ? s->status : NULL,
				    CSV_PAGE, s->after_at, s->after_id, &s->rows, &s->n);
}

/* Fill s->buf with the next page (the header first). false on error. */
static bool csv_fill(struct csv_stream *s)
{
	static const char *const head[] = { "contact_id", "phone", "status", "message_id", "wamid",
					    "error_code", "error_message", "attempts", "cost" };
	s->len = s->pos = 0;
	if (!s->header_done) {
		for (size_t i = 0; i < 9; i++)
			if (!csv_field(s, head[i], i == 8))
				return false;
		s->header_done = true;
		return true;
	}
	int rc = db_tx(s->app->db, false, csv_page_fn, s);
	if (rc != 0) {
		log_event(LOG_ERROR, "campaign CSV export cut short", LF_S("campaign_id", s->id),
			  LF_I("db_rc", rc));
		return false;
	}
	s->last_page = s->n < CSV_PAGE;
	for (int i = 0; i < s->n; i++) {
		const struct campaign_recipient *r = &s->rows[i];
		char code[24] = "", att[24], cost[MONEY_TEXT_LEN] = "";
		if (r->has_error_code)
			snprintf(code, sizeof code, "%lld", (long long)r->error_code);
		snprintf(att, sizeof att, "%lld", (long long)r->attempts);
		if (r->has_cost)
			money_format_min(r->cost, 2, cost, sizeof cost);
		const char *f[] = { r->contact_id, r->phone, r->status, r->message_id, r->wamid,
				    code, r->error_message, att, cost };
		for (size_t k = 0; k < 9; k++)
			if (!csv_field(s, f[k], k == 8))
				return false;
	}
	if (s->n > 0) {
		s->after_at = s->rows[s->n - 1].created_at;
		str_copy(s->after_id, sizeof s->after_id, s->rows[s->n - 1].id);
	}
	return true;
}

static long csv_next(void *ctx, char *out, size_t cap)
{
	struct csv_stream *s = ctx;
	while (s->pos == s->len) {
		if (s->header_done && s->last_page)
			return 0;
		if (!csv_fill(s))
			return -1;
	}
	size_t n = s->len - s->pos < cap ? s->len - s->pos : cap;
	memcpy(out, s->buf + s->pos, n);
	s->pos += n;
	return (long)n;
}

static void csv_free(void *ctx)
{
	struct csv_stream *s = ctx;
	free(s->buf);
	free(s->rows);
	free(s);
}

static int csv_exists_fn(struct db_conn *c, void *ctx)
{
	struct rcp_ctx *l = ctx;
	struct campaign cp;
	memset(&cp, 0, sizeof cp);
	int rc = campaigns_find(c, l->org_id, l->id, &cp);
	campaign_release(&cp);
	l->exists = rc == 0;
	return rc == 1 ? DB_OK : rc;
}

/* ?format=csv: every matching recipient, newest first, streamed a page
 * at a time (each page its own read: rows are keyset-ordered by
 * (created_at, id), which never change, so each appears once). */
static void answer_csv(struct http_request *req, struct http_response *res, struct rcp_ctx *l)
{
	int rc = db_tx(req->app->db, false, csv_exists_fn, l);
	if (rc != 0) {
		api_answer_db_error(res, rc);
		return;
	}
	if (!l->exists) {
		api_answer_not_found(res, "no such campaign");
		return;
	}
	struct csv_stream *s = calloc(1, sizeof *s);
	if (s == NULL) {
		api_answer_db_error(res, DB_ERR);
		return;
	}
	struct page first;
	page_first(&first, CSV_PAGE);
	s->app = req->app;
	str_copy(s->org_id, sizeof s->org_id, l->org_id);
	str_copy(s->id, sizeof s->id, l->id);
	s->has_status = l->status != NULL;
	str_copy(s->status, sizeof s->status, l->status ? l->status : "");
	s->after_at = first.after_at;
	str_copy(s->after_id, sizeof s->after_id, first.after_id);
	http_stream(res, 200, "text/csv; charset=utf-8", csv_next, csv_free, s);
}

void api_campaigns_recipients(struct http_request *req, struct http_response *res)
{
	struct rcp_ctx l = { .org_id = req->auth.org_id, .status = http_query(req, "status") };
	if (!api_path_id(req, res, "no such campaign", &l.id) || !status_filter_ok(res, l.status))
		return;
	const char *fmt = http_query(req, "format");
	if (fmt != NULL && !strcmp(fmt, "csv")) {
		answer_csv(req, res, &l);
		return;
	}
	struct api_list list = { .fetch = rcp_fetch, .render = rcp_render, .ctx = &l };
	bool ok = api_list_answer(req, res, &list);
	if (ok && !l.exists) {
		json_decref(res->json);
		res->json = NULL;
		api_answer_not_found(res, "no such campaign");
	}
	free(l.rows);
}
