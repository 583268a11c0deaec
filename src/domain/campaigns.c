/* campaigns: see campaigns.h for the design note. */
#include "domain/campaigns.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/money.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/costs.h"
#include "domain/numbers.h"
#include "domain/pricing.h"
#include "domain/templates.h"

#define CAMPAIGN_COLS                                                                      \
	"id, organization_id, name, whatsapp_number_id, template_id, audience, parameters," \
	" status, scheduled_at, budget_limit, currency, estimated_cost, error_message,"     \
	" started_at, completed_at, created_at, updated_at"

void campaign_release(struct campaign *c)
{
	if (c == NULL)
		return;
	json_decref(c->audience);
	json_decref(c->parameters);
	memset(c, 0, sizeof *c);
}

void campaign_rows_free(struct campaign *rows, int n)
{
	for (int i = 0; rows != NULL && i < n; i++)
		campaign_release(&rows[i]);
	free(rows);
}

/* ---- pure rules ------------------------------------------------------------ */

const char *campaigns_next_status(const char *from, enum campaign_action action,
				  bool scheduled_future)
{
	if (from == NULL)
		return NULL;
	switch (action) {
	case CAMPAIGN_START:
		if (!strcmp(from, "draft"))
			return scheduled_future ? "scheduled" : "running";
		return NULL;
	case CAMPAIGN_PAUSE:
		return !strcmp(from, "running") ? "paused" : NULL;
	case CAMPAIGN_RESUME:
		return !strcmp(from, "paused") ? "running" : NULL;
	case CAMPAIGN_CANCEL:
		if (!strcmp(from, "draft") || !strcmp(from, "scheduled") ||
		    !strcmp(from, "running") || !strcmp(from, "paused"))
			return "cancelled";
		return NULL;
	}
	return NULL;
}

bool campaigns_status_final(const char *status)
{
	return status != NULL && (!strcmp(status, "completed") || !strcmp(status, "cancelled") ||
				  !strcmp(status, "failed"));
}

/* The value a placeholder names, as a new JSON string. */
static json_t *placeholder_value(const char *ph, const char *name, const char *phone,
				 const json_t *attributes)
{
	static const char attr_prefix[] = "contact.attributes.";
	if (!strcmp(ph, "contact.name"))
		return json_string(name ? name : "");
	if (!strcmp(ph, "contact.phone"))
		return json_string(phone ? phone : "");
	if (strncmp(ph, attr_prefix, sizeof attr_prefix - 1) != 0)
		return NULL;
	const json_t *v = attributes ? json_object_get(attributes, ph + sizeof attr_prefix - 1)
				     : NULL;
	char buf[64];
	if (json_is_string(v))
		return json_string(json_string_value(v));
	if (json_is_integer(v)) {
		snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
		return json_string(buf);
	}
	if (json_is_boolean(v))
		return json_string(json_is_true(v) ? "true" : "false");
	if (json_is_real(v)) {
		char *t = json_dumps(v, JSON_ENCODE_ANY);
		json_t *s = json_string(t ? t : "");
		free(t);
		return s;
	}
	return json_string("");
}

/* A string "{{X}}" with X a known placeholder -> its value; else NULL. */
static json_t *resolve_string(const char *s, const char *name, const char *phone,
			      const json_t *attributes)
{
	size_t n = strlen(s);
	if (n < 5 || strncmp(s, "{{", 2) != 0 || strcmp(s + n - 2, "}}") != 0 || n > 300)
		return NULL;
	char ph[300];
	memcpy(ph, s + 2, n - 4);
	ph[n - 4] = '\0';
	return placeholder_value(ph, name, phone, attributes);
}

json_t *campaigns_resolve_parameters(const json_t *params, const char *name, const char *phone,
				     const json_t *attributes)
{
	if (params == NULL)
		return NULL;
	if (json_is_string(params)) {
		json_t *v = resolve_string(json_string_value(params), name, phone, attributes);
		return v ? v : json_deep_copy(params);
	}
	if (json_is_array(params)) {
		json_t *out = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(params, i, e)
		{
			json_t *v = campaigns_resolve_parameters(e, name, phone, attributes);
			if (v == NULL || json_array_append_new(out, v) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	if (json_is_object(params)) {
		json_t *out = json_object();
		const char *k;
		json_t *e;
		json_object_foreach((json_t *)params, k, e)
		{
			json_t *v = campaigns_resolve_parameters(e, name, phone, attributes);
			if (v == NULL || json_object_set_new(out, k, v) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	return json_deep_copy(params);
}

const char *campaigns_check_audience(const json_t *audience)
{
	if (!json_is_object(audience))
		return "must be an object with contact_ids and/or tags";
	const json_t *ids = json_object_get(audience, "contact_ids");
	const json_t *tags = json_object_get(audience, "tags");
	size_t nids = 0, ntags = 0, i;
	json_t *e;
	if (ids != NULL && !json_is_null(ids)) {
		if (!json_is_array(ids))
			return "contact_ids must be an array of ids";
		if (json_array_size(ids) > CAMPAIGNS_AUDIENCE_IDS_MAX)
			return "contact_ids has too many ids";
		json_array_foreach(ids, i, e)
		{
			if (!json_is_string(e) || !uuid_is_valid(json_string_value(e)))
				return "contact_ids must hold contact ids (UUIDs)";
		}
		nids = json_array_size(ids);
	}
	if (tags != NULL && !json_is_null(tags)) {
		if (!json_is_array(tags))
			return "tags must be an array of strings";
		if (json_array_size(tags) > CAMPAIGNS_AUDIENCE_TAGS_MAX)
			return "tags has too many tags";
		json_array_foreach(tags, i, e)
		{
			if (!json_is_string(e) || json_string_length(e) == 0)
				return "tags must be non-empty strings";
		}
		ntags = json_array_size(tags);
	}
	if (nids + ntags == 0)
		return "needs at least one contact id or tag";
	return NULL;
}

/* ---- rows ------------------------------------------------------------------ */

static json_t *load_json(const struct db_res *r, int row, int col)
{
	const char *t = db_get_text(r, row, col);
	return t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
}

static void campaign_from_row(const struct db_res *r, int i, struct campaign *c)
{
	memset(c, 0, sizeof *c);
	str_copy(c->id, sizeof c->id, db_get_text(r, i, 0));
	str_copy(c->organization_id, sizeof c->organization_id, db_get_text(r, i, 1));
	str_copy(c->name, sizeof c->name, db_get_text(r, i, 2));
	str_copy(c->whatsapp_number_id, sizeof c->whatsapp_number_id, db_get_text(r, i, 3));
	str_copy(c->template_id, sizeof c->template_id, db_get_text(r, i, 4));
	c->audience = load_json(r, i, 5);
	c->parameters = load_json(r, i, 6);
	str_copy(c->status, sizeof c->status, db_get_text(r, i, 7));
	c->scheduled_at = db_get_int(r, i, 8);
	c->has_budget = !db_isnull(r, i, 9);
	c->budget_limit = db_get_money(r, i, 9);
	str_copy(c->currency, sizeof c->currency, db_get_text(r, i, 10));
	c->has_estimate = !db_isnull(r, i, 11);
	c->estimated_cost = db_get_money(r, i, 11);
	str_copy(c->error_message, sizeof c->error_message, db_get_text(r, i, 12));
	c->started_at = db_get_int(r, i, 13);
	c->completed_at = db_get_int(r, i, 14);
	c->created_at = db_get_int(r, i, 15);
	c->updated_at = db_get_int(r, i, 16);
}

int campaigns_find(struct db_conn *c, const char *org_id, const char *id, struct campaign *out)
{
	if (!uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	struct db_res *r = NULL;
	int rc = db_exec(c,
			 "SELECT " CAMPAIGN_COLS " FROM campaigns"
			 " WHERE organization_id = $1 AND id = $2",
			 p, 2, &r, NULL);
	if (rc == DB_OK) {
		if (db_rows(r) == 0)
			rc = 1;
		else
			campaign_from_row(r, 0, out);
	}
	db_res_free(r);
	return rc;
}

int campaigns_list(struct db_conn *c, const char *org_id, int limit, int64_t after_at,
		   const char *after_id, struct campaign **out, int *n)
{
	struct db_param p[] = { DBP_TEXT(org_id), DBP_INT(after_at),
				DBP_TEXT(after_id ? after_id : "ffffffff-ffff-ffff-ffff-ffffffffffff"),
				DBP_INT(limit) };
	struct db_res *r = NULL;
	*out = NULL;
	*n = 0;
	int rc = db_exec(c,
			 "SELECT " CAMPAIGN_COLS " FROM campaigns WHERE organization_id = $1"
			 " AND (created_at, id) < ($2, $3)"
			 " ORDER BY created_at DESC, id DESC LIMIT $4",
			 p, 4, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) > 0) {
		*out = calloc((size_t)db_rows(r), sizeof **out);
		if (*out == NULL) {
			rc = DB_ERR;
			goto out;
		}
		for (int i = 0; i < db_rows(r); i++)
			campaign_from_row(r, i, &(*out)[i]);
		*n = db_rows(r);
	}
out:
	db_res_free(r);
	return rc;
}

int campaigns_create(struct db_conn *c, const char *org_id, const struct campaign_new *in,
		     struct campaign *out)
{
	struct wa_number num;
	struct template_row tpl;
	int rc = numbers_find(c, org_id, in->whatsapp_number_id, &num);
	if (rc == 1)
		return CAMPAIGNS_BAD_NUMBER;
	if (rc != 0)
		return rc;
	rc = templates_find(c, org_id, in->template_id, &tpl);
	if (rc == 1)
		return CAMPAIGNS_BAD_TEMPLATE;
	if (rc != 0)
		return rc;
	bool same_number = strcmp(tpl.whatsapp_number_id, num.id) == 0;
	template_row_release(&tpl);
	if (!same_number)
		return CAMPAIGNS_BAD_TEMPLATE;
	char id[37];
	if (uuid_v7_str(id) != 0)
		return DB_ERR;
	char *aud = json_dumps(in->audience, JSON_COMPACT);
	char *par = in->parameters ? json_dumps(in->parameters, JSON_COMPACT | JSON_ENCODE_ANY)
				   : NULL;
	int64_t now = time_now_us();
	struct db_param p[] = {
		DBP_TEXT(id), DBP_TEXT(org_id), DBP_TEXT(in->name), DBP_TEXT(num.id),
		DBP_TEXT(in->template_id), DBP_TEXT(aud), DBP_TEXT(par),
		in->scheduled_at > 0 ? DBP_INT(in->scheduled_at) : DBP_NULL,
		in->has_budget ? DBP_MONEY(in->budget_limit) : DBP_NULL,
		DBP_TEXT(in->currency), DBP_INT(now),
	};
	if (aud == NULL || (in->parameters && par == NULL)) {
		rc = DB_ERR;
		goto out;
	}
	rc = db_exec(c,
		     "INSERT INTO campaigns (id, organization_id, name, whatsapp_number_id,"
		     " template_id, audience, parameters, status, scheduled_at, budget_limit,"
		     " currency, created_at, updated_at)"
		     " VALUES ($1, $2, $3, $4, $5, $6, $7, 'draft', $8, $9, $10, $11, $11)",
		     p, 11, NULL, NULL);
	if (rc == DB_OK)
		rc = campaigns_find(c, org_id, id, out);
	if (rc == 1)
		rc = DB_ERR;
out:
	free(aud);
	free(par);
	return rc;
}

/* ---- audience ---------------------------------------------------------------- */

struct member {
	char id[37];
	char phone[24];     /* "" = none */
	bool opted_out;
};

struct audience {
	struct member *rows;
	int n;
};

/* A JSON array (or null/absent) as compact text; "[]" when absent. NULL
 * on out of memory (free() the result). */
static char *array_text(const json_t *arr)
{
	if (arr == NULL || !json_is_array(arr))
		return strdup("[]");
	return json_dump_compact(arr, NULL);
}

/* The contacts of org_id the audience names (listed id OR one of the
 * tags), in (created_at, id) order, selected in SQL: only the audience is
 * read, never the whole contact book. */
static int audience_load(struct db_conn *c, const char *org_id, const json_t *audience,
			 struct audience *out)
{
	static const char pg_sql[] =
		"SELECT id, wa_id, opted_out FROM contacts WHERE organization_id = $1 AND ("
		" id IN (SELECT CAST(e AS uuid) FROM jsonb_array_elements_text(CAST($2 AS jsonb)) e)"
		" OR tags ?| ARRAY(SELECT jsonb_array_elements_text(CAST($3 AS jsonb))))"
		" ORDER BY created_at, id";
	static const char sqlite_sql[] =
		"SELECT id, wa_id, opted_out FROM contacts WHERE organization_id = $1 AND ("
		" id IN (SELECT value FROM json_each($2))"
		" OR EXISTS (SELECT 1 FROM json_each(contacts.tags) t"
		"  WHERE t.value IN (SELECT value FROM json_each($3))))"
		" ORDER BY created_at, id";
	char *ids = array_text(json_object_get(audience, "contact_ids"));
	char *tags = array_text(json_object_get(audience, "tags"));
	struct db_res *r = NULL;
	int rc = DB_ERR;
	out->rows = NULL;
	out->n = 0;
	if (ids == NULL || tags == NULL)
		goto out;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(ids), DBP_TEXT(tags) };
	bool pg = db_engine(db_conn_db(c)) == DB_ENGINE_PG;
	rc = db_exec(c, pg ? pg_sql : sqlite_sql, p, 3, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) > 0 && (out->rows = calloc((size_t)db_rows(r), sizeof *out->rows)) == NULL) {
		rc = DB_ERR;
		goto out;
	}
	for (int i = 0; i < db_rows(r); i++) {
		struct member *m = &out->rows[out->n++];
		str_copy(m->id, sizeof m->id, db_get_text(r, i, 0));
		str_copy(m->phone, sizeof m->phone, db_get_text(r, i, 1));
		m->opted_out = db_get_bool(r, i, 2);
	}
out:
	db_res_free(r);
	free(ids);
	free(tags);
	return rc;
}

static void lower_copy(char *dst, size_t n, const char *src)
{
	size_t i = 0;
	for (; src && src[i] && i + 1 < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

static struct campaign_market *market_slot(struct campaign_estimate *e, const char *market)
{
	for (int i = 0; i < e->nmarkets; i++)
		if (!strcmp(e->markets[i].market, market))
			return &e->markets[i];
	if (e->nmarkets >= CAMPAIGNS_MARKETS_MAX)
		return NULL;
	/* keep the array sorted by market code */
	int at = e->nmarkets;
	while (at > 0 && strcmp(e->markets[at - 1].market, market) > 0)
		at--;
	memmove(&e->markets[at + 1], &e->markets[at],
		(size_t)(e->nmarkets - at) * sizeof e->markets[0]);
	memset(&e->markets[at], 0, sizeof e->markets[0]);
	str_copy(e->markets[at].market, sizeof e->markets[at].market, market);
	e->nmarkets++;
	return &e->markets[at];
}

/* Price the members into est. 0, CAMPAIGNS_NO_RATE, DB_ERR (overflow). */
static int price_members(const struct pricing_card *card, const struct audience *a,
			 int64_t at_us, struct campaign_estimate *est)
{
	for (int i = 0; i < a->n; i++) {
		const struct member *m = &a->rows[i];
		if (m->opted_out || m->phone[0] == '\0') {
			est->skipped_opted_out++;
			continue;
		}
		struct pricing_quote q;
		if (card == NULL || pricing_quote(card, m->phone, est->category, at_us, &q) != 0) {
			est->unpriced++;
			est->recipients++;
			continue;
		}
		struct campaign_market *slot = market_slot(est, q.market);
		if (slot == NULL)
			return DB_ERR;
		if (money_add(slot->amount, q.rate, &slot->amount) != MONEY_OK ||
		    money_add(est->amount, q.rate, &est->amount) != MONEY_OK)
			return DB_ERR;
		slot->recipients++;
		est->recipients++;
		if (est->currency[0] == '\0')
			str_copy(est->currency, sizeof est->currency, q.currency);
	}
	return 0;
}

static int estimate_with(struct db_conn *c, const struct pricing_card *card,
			 const char *org_id, const struct campaign *cp, int64_t at_us,
			 struct campaign_estimate *out, struct audience *keep)
{
	struct template_row tpl;
	struct audience a = { NULL, 0 };
	memset(out, 0, sizeof *out);
	int rc = templates_find(c, org_id, cp->template_id, &tpl);
	if (rc != 0)
		return rc;
	lower_copy(out->category, sizeof out->category, tpl.category);
	template_row_release(&tpl);
	str_copy(out->currency, sizeof out->currency, cp->currency);
	rc = audience_load(c, org_id, cp->audience, &a);
	if (rc == DB_OK)
		rc = price_members(card, &a, at_us, out);
	if (rc == 0 && keep != NULL) {
		*keep = a;
		a.rows = NULL;
	}
	free(a.rows);
	return rc;
}

int campaigns_estimate(struct db_conn *c, const struct pricing_card *card, const char *org_id,
		       const struct campaign *cp, int64_t at_us, struct campaign_estimate *out)
{
	int rc = estimate_with(c, card, org_id, cp, at_us, out, NULL);
	return rc == 0 && out->unpriced > 0 ? CAMPAIGNS_NO_RATE : rc;
}

/* ---- start / transitions ---------------------------------------------------- */

/* The org's remaining monthly budget (costs module, API.md "Costs"):
 * *limited = false when the org has no budget. DB_OK or a db_status. */
static int org_budget_remaining(struct db_conn *c, const char *org_id, int64_t now,
				int64_t *remaining, bool *limited)
{
	return costs_remaining_budget(c, org_id, now, remaining, limited);
}

#define RECIPIENTS_PER_INSERT 1000

/* Materialise the audience: one multi-row INSERT per RECIPIENTS_PER_INSERT
 * members (the rows travel as one JSON array parameter), so 100,000
 * recipients are a hundred statements, not 100,000 round trips. */
static int insert_recipients(struct db_conn *c, const char *org_id, const char *campaign_id,
			     const struct audience *a, int64_t now)
{
	static const char pg_sql[] =
		"INSERT INTO campaign_recipients (id, organization_id, campaign_id, contact_id,"
		" phone, status, idempotency_key, next_attempt_at, error_message, created_at,"
		" updated_at)"
		" SELECT v.id, CAST($2 AS uuid), CAST($3 AS uuid), v.c, v.ph, v.st, v.k, 0, v.em,"
		" CAST($4 AS bigint), CAST($4 AS bigint)"
		" FROM jsonb_to_recordset(CAST($1 AS jsonb))"
		"  AS v(id uuid, c uuid, ph text, st text, k text, em text)"
		" ON CONFLICT (campaign_id, contact_id) DO NOTHING";
	static const char sqlite_sql[] =
		"INSERT INTO campaign_recipients (id, organization_id, campaign_id, contact_id,"
		" phone, status, idempotency_key, next_attempt_at, error_message, created_at,"
		" updated_at)"
		" SELECT json_extract(value, '$.id'), $2, $3, json_extract(value, '$.c'),"
		" json_extract(value, '$.ph'), json_extract(value, '$.st'),"
		" json_extract(value, '$.k'), 0, json_extract(value, '$.em'), $4, $4"
		" FROM json_each($1) WHERE true"
		" ON CONFLICT (campaign_id, contact_id) DO NOTHING";
	bool pg = db_engine(db_conn_db(c)) == DB_ENGINE_PG;
	for (int at = 0; at < a->n; at += RECIPIENTS_PER_INSERT) {
		json_t *rows = json_array();
		int rc = rows ? DB_OK : DB_ERR;
		for (int i = at; rc == DB_OK && i < a->n && i < at + RECIPIENTS_PER_INSERT; i++) {
			const struct member *m = &a->rows[i];
			char id[37], key[80];
			if (uuid_v7_str(id) != 0) {
				rc = DB_ERR;
				break;
			}
			snprintf(key, sizeof key, "%s:%s", campaign_id, id);
			bool skip = m->opted_out || m->phone[0] == '\0';
			json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s?}", "id", id, "c", m->id,
					      "ph", m->phone[0] ? m->phone : NULL, "st",
					      skip ? "skipped" : "pending", "k", key, "em",
					      m->opted_out ? "opted out"
					      : skip	   ? "no phone number"
							   : NULL);
			if (o == NULL || json_array_append_new(rows, o) != 0)
				rc = DB_ERR;
		}
		char *text = rc == DB_OK ? json_dump_compact(rows, NULL) : NULL;
		json_decref(rows);
		if (text == NULL)
			return DB_ERR;
		struct db_param p[] = { DBP_TEXT(text), DBP_TEXT(org_id), DBP_TEXT(campaign_id),
					DBP_INT(now) };
		rc = db_exec(c, pg ? pg_sql : sqlite_sql, p, 4, NULL, NULL);
		free(text);
		if (rc != DB_OK)
			return rc;
	}
	return 0;
}

/* Refusals of start before anything changes. */
static int start_checks(struct db_conn *c, const char *org_id, const struct campaign *cp,
			int64_t now, const struct campaign_estimate *est)
{
	struct template_row tpl;
	int rc = templates_find(c, org_id, cp->template_id, &tpl);
	if (rc != 0)
		return rc == 1 ? CAMPAIGNS_TEMPLATE_NOT_APPROVED : rc;
	bool approved = strcmp(tpl.status, "APPROVED") == 0;
	template_row_release(&tpl);
	if (!approved)
		return CAMPAIGNS_TEMPLATE_NOT_APPROVED;
	/* without a rate for everyone a budget cannot be checked */
	if (cp->has_budget && est->unpriced > 0)
		return CAMPAIGNS_NO_RATE;
	if (cp->has_budget && est->amount > cp->budget_limit)
		return CAMPAIGNS_BUDGET_EXCEEDED;
	int64_t remaining = 0;
	bool limited = false;
	rc = org_budget_remaining(c, org_id, now, &remaining, &limited);
	if (rc != DB_OK)
		return rc;
	if (limited && est->unpriced > 0)
		return CAMPAIGNS_NO_RATE;
	if (limited && est->amount > remaining)
		return CAMPAIGNS_BUDGET_EXCEEDED;
	return 0;
}

int campaigns_start(struct db_conn *c, const struct pricing_card *card, const char *org_id,
		    const char *id, int64_t now, struct campaign *out,
		    struct campaign_estimate *est)
{
	struct campaign cp;
	struct campaign_estimate e;
	struct audience a = { NULL, 0 };
	int rc = campaigns_find(c, org_id, id, &cp);
	if (rc != 0)
		return rc;
	const char *next = campaigns_next_status(cp.status, CAMPAIGN_START, cp.scheduled_at > now);
	if (next == NULL) {
		rc = CAMPAIGNS_INVALID_STATE;
		goto out;
	}
	rc = estimate_with(c, card, org_id, &cp, now, &e, &a);
	if (rc == 1)
		rc = CAMPAIGNS_TEMPLATE_NOT_APPROVED;
	if (rc == 0)
		rc = start_checks(c, org_id, &cp, now, &e);
	if (rc == 0)
		rc = insert_recipients(c, org_id, cp.id, &a, now);
	if (rc != 0)
		goto out;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(cp.id), DBP_TEXT(next),
				DBP_MONEY(e.amount), DBP_TEXT(e.currency[0] ? e.currency : NULL),
				DBP_INT(now) };
	rc = db_exec(c,
		     "UPDATE campaigns SET status = $3, estimated_cost = $4,"
		     " currency = COALESCE($5, currency),"
		     " started_at = CASE WHEN $3 = 'running' THEN $6 ELSE started_at END,"
		     " updated_at = $6 WHERE organization_id = $1 AND id = $2 AND status = 'draft'",
		     p, 6, NULL, NULL);
	if (rc == DB_OK)
		rc = campaigns_find(c, org_id, cp.id, out);
	if (rc == 0 && est != NULL)
		*est = e;
out:
	free(a.rows);
	campaign_release(&cp);
	return rc;
}

int campaigns_transition(struct db_conn *c, const char *org_id, const char *id,
			 enum campaign_action action, int64_t now, struct campaign *out)
{
	struct campaign cp;
	int rc = campaigns_find(c, org_id, id, &cp);
	if (rc != 0)
		return rc;
	const char *next = campaigns_next_status(cp.status, action, false);
	if (next == NULL || action == CAMPAIGN_START) {
		rc = CAMPAIGNS_INVALID_STATE;
		goto out;
	}
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(cp.id), DBP_TEXT(next),
				DBP_TEXT(cp.status), DBP_INT(now) };
	int64_t changed = 0;
	rc = db_exec(c,
		     "UPDATE campaigns SET status = $3, updated_at = $5,"
		     " completed_at = CASE WHEN $3 = 'cancelled' THEN $5 ELSE completed_at END"
		     " WHERE organization_id = $1 AND id = $2 AND status = $4",
		     p, 5, NULL, &changed);
	if (rc == DB_OK && changed == 0)
		rc = CAMPAIGNS_INVALID_STATE; /* moved meanwhile (completed) */
	if (rc == DB_OK && action == CAMPAIGN_CANCEL)
		rc = db_exec(c,
			     "UPDATE campaign_recipients SET status = 'skipped',"
			     " error_message = 'campaign cancelled', updated_at = $3"
			     " WHERE organization_id = $1 AND campaign_id = $2 AND status = 'pending'",
			     (struct db_param[]){ DBP_TEXT(org_id), DBP_TEXT(cp.id), DBP_INT(now) }, 3,
			     NULL, NULL);
	if (rc == DB_OK)
		rc = campaigns_find(c, org_id, cp.id, out);
out:
	campaign_release(&cp);
	return rc;
}

/* ---- counters and recipients -------------------------------------------------- */

/* The furthest state of a recipient with status rs whose message (if any)
 * has status ms. */
static const char *furthest(const char *rs, const char *ms)
{
	if (rs == NULL)
		return "pending";
	if (strcmp(rs, "sent") != 0 || ms == NULL)
		return rs;
	if (!strcmp(ms, "delivered") || !strcmp(ms, "read") || !strcmp(ms, "failed"))
		return ms;
	return "sent";
}

int campaigns_counters(struct db_conn *c, const char *org_id, const char *id,
		       struct campaign_counters *out)
{
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	struct db_res *r = NULL;
	memset(out, 0, sizeof *out);
	int rc = db_exec(c,
			 "SELECT r.status, m.status, COUNT(*), SUM(m.cost)"
			 " FROM campaign_recipients r LEFT JOIN messages m ON m.id = r.message_id"
			 " WHERE r.organization_id = $1 AND r.campaign_id = $2"
			 " GROUP BY r.status, m.status",
			 p, 2, &r, NULL);
	if (rc != DB_OK)
		goto out;
	for (int i = 0; i < db_rows(r); i++) {
		const char *st = furthest(db_get_text(r, i, 0), db_get_text(r, i, 1));
		int64_t n = db_get_int(r, i, 2);
		out->total += n;
		if (!db_isnull(r, i, 3) &&
		    money_add(out->actual_cost, db_get_money(r, i, 3), &out->actual_cost) != MONEY_OK) {
			rc = DB_ERR;
			goto out;
		}
		if (!strcmp(st, "pending") || !strcmp(st, "sending"))
			out->queued += n;
		else if (!strcmp(st, "sent"))
			out->sent += n;
		else if (!strcmp(st, "delivered"))
			out->delivered += n;
		else if (!strcmp(st, "read"))
			out->read += n;
		else if (!strcmp(st, "failed"))
			out->failed += n;
		else
			out->skipped += n;
	}
out:
	db_res_free(r);
	return rc;
}

static void recipient_from_row(const struct db_res *r, int i, struct campaign_recipient *o)
{
	memset(o, 0, sizeof *o);
	str_copy(o->id, sizeof o->id, db_get_text(r, i, 0));
	str_copy(o->contact_id, sizeof o->contact_id, db_get_text(r, i, 1));
	str_copy(o->phone, sizeof o->phone, db_get_text(r, i, 2));
	str_copy(o->status, sizeof o->status, furthest(db_get_text(r, i, 3), db_get_text(r, i, 12)));
	str_copy(o->message_id, sizeof o->message_id, db_get_text(r, i, 4));
	str_copy(o->wamid, sizeof o->wamid, db_get_text(r, i, 5));
	o->has_error_code = !db_isnull(r, i, 6) || !db_isnull(r, i, 13);
	o->error_code = !db_isnull(r, i, 13) ? db_get_int(r, i, 13) : db_get_int(r, i, 6);
	str_copy(o->error_message, sizeof o->error_message, db_get_text(r, i, 7));
	o->attempts = db_get_int(r, i, 8);
	o->has_cost = !db_isnull(r, i, 9);
	o->cost = db_get_money(r, i, 9);
	o->created_at = db_get_int(r, i, 10);
}

int campaigns_recipients(struct db_conn *c, const char *org_id, const char *id,
			 const char *status, int limit, int64_t after_at, const char *after_id,
			 struct campaign_recipient **out, int *n)
{
	/* The furthest state in SQL, so the status filter pages correctly. */
#define FURTHEST                                                                       \
	"CASE WHEN r.status = 'sent' AND m.status IN ('delivered', 'read', 'failed')" \
	" THEN m.status ELSE r.status END"
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id), DBP_INT(after_at),
				DBP_TEXT(after_id ? after_id : "ffffffff-ffff-ffff-ffff-ffffffffffff"),
				DBP_INT(limit), DBP_TEXT(status) };
	struct db_res *r = NULL;
	*out = NULL;
	*n = 0;
	int rc = db_exec(c,
			 "SELECT r.id, r.contact_id, r.phone, r.status, r.message_id, r.wamid,"
			 " r.error_code, COALESCE(m.error_message, r.error_message), r.attempts,"
			 " m.cost, r.created_at, " FURTHEST ", m.status, m.error_code"
			 " FROM campaign_recipients r LEFT JOIN messages m ON m.id = r.message_id"
			 " WHERE r.organization_id = $1 AND r.campaign_id = $2"
			 " AND (r.created_at, r.id) < ($3, $4)"
			 " AND (CAST($6 AS TEXT) IS NULL OR " FURTHEST " = CAST($6 AS TEXT))"
			 " ORDER BY r.created_at DESC, r.id DESC LIMIT $5",
			 p, 6, &r, NULL);
#undef FURTHEST
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) > 0) {
		*out = calloc((size_t)db_rows(r), sizeof **out);
		if (*out == NULL) {
			rc = DB_ERR;
			goto out;
		}
		for (int i = 0; i < db_rows(r); i++)
			recipient_from_row(r, i, &(*out)[i]);
		*n = db_rows(r);
	}
out:
	db_res_free(r);
	return rc;
}
