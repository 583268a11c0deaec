/* Rate cards (API.md "Costs"):
 *   GET /api/v1/pricing/rates   (viewer and up)
 *   PUT /api/v1/pricing/rates   (super_admin)
 *
 * Choices (API.md is terse):
 * - GET answers {"at", "currency", "rates": [{market, calling_codes: [..],
 *   category, rate, currency, effective_from}]}: the row in force for each
 *   (market, category) at `at` (query ?at=YYYY-MM-DD or an RFC 3339 time;
 *   default now), ordered by market then category. rate is an exact
 *   decimal string with at least the currency's minor units ("0.0034",
 *   "0.025" -> "0.025", "1" -> "1.00"); effective_from is a date. The
 *   answer is itself a valid PUT body.
 * - PUT takes text/csv (columns of the example card) or application/json
 *   {"rates": [...]}; other types 415. The card is validated as a whole:
 *   a field of the wrong JSON type is 400 invalid_request, anything else
 *   422 validation_error with one detail per problem ("line 4" / 
 *   "rates[3].rate"); nothing is stored then.
 * - History is insert-only: a row whose (market, category, effective_from)
 *   is already stored is ignored when identical (re-uploading a card is
 *   harmless) and is 409 conflict when it differs (details list each such
 *   row; nothing stored): the past is not rewritten, a new rate needs a new
 *   effective_from. One currency per installation (another is 422).
 * - Success is 200 with the card in force now plus {"inserted",
 *   "unchanged"}; the change is audited (table rate_cards, action
 *   "import") in the caller's organization when rows were inserted. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/answer.h"
#include "app/app.h"
#include "core/json.h"
#include "core/money.h"
#include "core/timeutil.h"
#include "domain/audit.h"
#include "domain/pricing.h"

static json_t *codes_json(const char *codes)
{
	json_t *arr = json_array();
	const char *p = codes;
	while (*p) {
		size_t len = strcspn(p, " ");
		if (len > 0)
			json_array_append_new(arr, json_stringn(p, len));
		p += len;
		while (*p == ' ')
			p++;
	}
	return arr;
}

static json_t *rate_json(const struct pricing_rate *r)
{
	char rate[MONEY_TEXT_LEN], date[PRICING_DATE_LEN];
	int minor = currency_minor_units(r->currency);
	money_format_min(r->rate, minor >= 0 ? minor : 2, rate, sizeof rate);
	return json_pack("{s:s, s:o, s:s, s:s, s:s, s:s}", "market", r->market,
			 "calling_codes", codes_json(r->calling_codes), "category",
			 r->category, "rate", rate, "currency", r->currency,
			 "effective_from", pricing_format_date(r->effective_from, date));
}

/* {"at", "currency", "rates"} of card at at_us; NULL on out of memory. */
static json_t *card_json(const struct pricing_card *card, int64_t at_us)
{
	const struct pricing_rate **list = NULL;
	int n = 0;
	if (pricing_card_in_force(card, at_us, &list, &n) != 0)
		return NULL;
	json_t *rates = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(rates, rate_json(list[i]));
	json_t *out = json_pack("{s:o, s:o, s:o}", "at", api_time_json(at_us), "currency",
				n > 0 ? json_string(list[0]->currency) : json_null(),
				"rates", rates);
	free(list);
	return out;
}

/* ?at=: absent -> now; a date or an RFC 3339 time; else false after 422. */
static bool parse_at(struct http_request *req, struct http_response *res, int64_t *at)
{
	const char *s = http_query(req, "at");
	if (s == NULL) {
		*at = time_now_us();
		return true;
	}
	if (pricing_parse_date(s, at) || time_parse_rfc3339(s, at))
		return true;
	http_error(res, 422, "validation_error", "the request is not valid",
		   json_pack("[{s:s, s:s}]", "field", "at", "message",
			     "must be a date YYYY-MM-DD or an RFC 3339 time"));
	return false;
}

/* Answer 200 with the card in force at at_us (plus extra's fields). */
static void answer_card(struct http_request *req, struct http_response *res, int64_t at_us,
			json_t *extra)
{
	struct pricing_card *card = NULL;
	int rc = pricing_current(req->app->db, &card);
	if (rc != DB_OK) {
		api_answer_db_error(res, rc);
		goto out;
	}
	json_t *body = card_json(card, at_us);
	if (body == NULL) {
		http_error(res, 500, "internal_error", "out of memory", NULL);
		goto out;
	}
	if (extra != NULL)
		json_object_update(body, extra);
	http_json(res, 200, body);
out:
	json_decref(extra);
	pricing_card_release(card);
}

void api_pricing_rates_get(struct http_request *req, struct http_response *res)
{
	int64_t at;
	if (parse_at(req, res, &at))
		answer_card(req, res, at, NULL);
}

/* ---- PUT ---------------------------------------------------------------- */

/* Parse the body into up (CSV or JSON by Content-Type). false after
 * answering 415 / 400 / 500. chk holds the row problems. */
static bool parse_card(struct http_request *req, struct http_response *res,
		       struct pricing_upload *up, struct json_check *chk)
{
	int rc;
	if (api_content_type_is(req, "text/csv")) {
		rc = pricing_parse_csv(req->body, req->body_len, up, chk);
	} else if (api_content_type_is(req, "application/json")) {
		json_t *body = http_body_json(req, res);
		if (body == NULL)
			return false;
		rc = pricing_parse_json(body, up, chk);
		json_decref(body);
	} else {
		http_error(res, 415, "unsupported_media_type",
			   "send the rate card as text/csv (market,calling_codes,category,rate,"
			   "currency,effective_from) or application/json {\"rates\": [...]}",
			   NULL);
		return false;
	}
	if (rc != 0) {
		http_error(res, 500, "internal_error", "out of memory", NULL);
		return false;
	}
	return true;
}

struct put_tx {
	const struct http_request *req;
	const struct pricing_upload *up;
	json_t *details;
	struct pricing_store_result res;
};

static int put_fn(struct db_conn *c, void *ctx)
{
	struct put_tx *t = ctx;
	json_array_clear(t->details);
	int rc = pricing_store(c, t->up, t->details, &t->res);
	if (rc != DB_OK || t->res.inserted == 0)
		return rc;
	struct audit_entry e = { 0 };
	json_t *changes = json_object();
	audit_entry_from_request(&e, t->req);
	e.action = "import";
	e.table_name = "rate_cards";
	audit_change_int(changes, "rows", 0, t->res.inserted);
	e.changes = changes;
	rc = audit_record(c, &e);
	json_decref(changes);
	return rc;
}

void api_pricing_rates_put(struct http_request *req, struct http_response *res)
{
	struct pricing_upload up = PRICING_UPLOAD_INIT;
	struct json_check chk = JSON_CHECK_INIT;
	struct put_tx t = { .req = req, .up = &up, .details = json_array() };
	if (!parse_card(req, res, &up, &chk))
		goto out;
	if (json_array_size(chk.type_errors) == 0)
		pricing_check_upload(&up, &chk);
	if (!json_check_ok(&chk)) {
		api_answer_check(res, &chk);
		goto out;
	}
	int rc = db_tx(req->app->db, true, put_fn, &t);
	if (rc == PRICING_STORE_CONFLICT) {
		http_error(res, 409, "conflict",
			   "the card changes rates already stored for these dates",
			   json_incref(t.details));
		goto out;
	}
	if (rc == PRICING_STORE_INVALID) {
		http_error(res, 422, "validation_error", "the rate card is not valid",
			   json_incref(t.details));
		goto out;
	}
	if (rc != DB_OK) {
		api_answer_db_error(res, rc);
		goto out;
	}
	if (t.res.inserted > 0)
		pricing_invalidate();
	answer_card(req, res, time_now_us(),
		    json_pack("{s:i, s:i}", "inserted", t.res.inserted, "unchanged",
			      t.res.unchanged));
out:
	json_check_release(&chk);
	json_decref(t.details);
	pricing_upload_release(&up);
}
