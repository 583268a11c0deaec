/* pricing_load: parsing, validating and storing rate cards (see pricing.h).
 * CSV goes through domain/csv.h; JSON through core/json.h's checks. Every
 * problem is reported with where it is ("line 4", "rates[3].rate") so one
 * answer lists them all. */
#include "domain/pricing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/money.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/csv.h"

#define PRICING_MAX_CODES 24
#define PRICING_CODE_MAX_DIGITS 6
#define PRICING_FIELD_MAX 256
/* Advisory lock key of card loads ("RATECARD" in ASCII, truncated). */
#define PRICING_LOCK_KEY INT64_C(0x5241544543415244)

void pricing_upload_release(struct pricing_upload *up)
{
	if (up == NULL)
		return;
	free(up->rows);
	free(up->where);
	up->rows = NULL;
	up->where = NULL;
	up->n = up->cap = 0;
}

/* A new zeroed row labelled where; NULL on out of memory. */
static struct pricing_rate *upload_add(struct pricing_upload *up, const char *where)
{
	if (up->n == up->cap) {
		int cap = up->cap ? up->cap * 2 : 64;
		struct pricing_rate *rows = realloc(up->rows, (size_t)cap * sizeof *rows);
		if (rows == NULL)
			return NULL;
		up->rows = rows;
		char(*w)[32] = realloc(up->where, (size_t)cap * sizeof *w);
		if (w == NULL)
			return NULL;
		up->where = w;
		up->cap = cap;
	}
	struct pricing_rate *r = &up->rows[up->n];
	memset(r, 0, sizeof *r);
	str_copy(up->where[up->n], sizeof up->where[0], where);
	up->n++;
	return r;
}

/* ---- one row's fields ---------------------------------------------------- */

/* Where problems of one row go: JSON rows name the field
 * ("rates[3].rate"), CSV rows the line ("line 4", message "rate: ..."). */
struct row_ctx {
	struct json_check *chk;
	const char *where;
	bool json;
};

static void row_error(const struct row_ctx *rc, const char *col, const char *msg)
{
	char field[64];
	if (rc->json) {
		snprintf(field, sizeof field, "%s.%s", rc->where, col);
		json_check_rule(rc->chk, field, "%s", msg);
	} else {
		json_check_rule(rc->chk, rc->where, "%s: %s", col, msg);
	}
}

static bool check_market(const struct row_ctx *rc, const char *s, struct pricing_rate *r)
{
	size_t n = strlen(s);
	bool ok = n > 0 && n < PRICING_MARKET_LEN && s[0] >= 'A' && s[0] <= 'Z';
	for (size_t i = 1; ok && i < n; i++)
		ok = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_';
	if (!ok) {
		row_error(rc, "market", "must be 1 to 32 characters A-Z, 0-9 or '_', starting "
					"with a letter (e.g. \"BR\", \"NORTH_AMERICA\", \"OTHER\")");
		return false;
	}
	str_copy(r->market, sizeof r->market, s);
	return true;
}

static bool check_category(const struct row_ctx *rc, const char *s, struct pricing_rate *r)
{
	if (!pricing_category_is_known(s)) {
		row_error(rc, "category", "must be one of marketing, marketing_lite, utility, "
					  "authentication, authentication_international, "
					  "service, referral_conversion");
		return false;
	}
	str_copy(r->category, sizeof r->category, s);
	return true;
}

static bool check_rate(const struct row_ctx *rc, const char *s, struct pricing_rate *r)
{
	int64_t v;
	char msg[256];
	int st = money_parse(s, &v);
	if (st != MONEY_OK) {
		snprintf(msg, sizeof msg, "\"%.40s\" %s", s, money_strerror(st));
		row_error(rc, "rate", msg);
		return false;
	}
	if (v < 0) {
		row_error(rc, "rate", "must not be negative");
		return false;
	}
	r->rate = v;
	return true;
}

static bool check_currency(const struct row_ctx *rc, const char *s, struct pricing_rate *r)
{
	if (strlen(s) != 3 || !currency_is_known(s)) {
		row_error(rc, "currency", "must be an upper-case ISO 4217 code we know "
					  "(e.g. \"USD\", \"EUR\", \"BRL\")");
		return false;
	}
	str_copy(r->currency, sizeof r->currency, s);
	return true;
}

static bool check_date(const struct row_ctx *rc, const char *s, struct pricing_rate *r)
{
	if (!pricing_parse_date(s, &r->effective_from)) {
		row_error(rc, "effective_from", "must be a date YYYY-MM-DD (from 1970-01-01)");
		return false;
	}
	return true;
}

/* ---- calling codes ------------------------------------------------------- */

struct codes {
	char code[PRICING_MAX_CODES][PRICING_CODE_MAX_DIGITS + 1];
	int n;
	bool bad;
	bool too_many;
};

static void codes_add(struct codes *cs, const char *s, size_t len)
{
	bool digits = len >= 1 && len <= PRICING_CODE_MAX_DIGITS && s[0] != '0';
	for (size_t i = 0; digits && i < len; i++)
		digits = s[i] >= '0' && s[i] <= '9';
	if (!digits) {
		cs->bad = true;
		return;
	}
	for (int i = 0; i < cs->n; i++)
		if (strlen(cs->code[i]) == len && !memcmp(cs->code[i], s, len))
			return; /* duplicate */
	if (cs->n == PRICING_MAX_CODES) {
		cs->too_many = true;
		return;
	}
	memcpy(cs->code[cs->n], s, len);
	cs->code[cs->n][len] = '\0';
	cs->n++;
}

static int code_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Checked, sorted, space-joined codes into r->calling_codes. */
static bool codes_finish(const struct row_ctx *rc, struct codes *cs, struct pricing_rate *r)
{
	bool other = !strcmp(r->market, PRICING_MARKET_OTHER);
	const char *why = NULL;
	if (cs->bad)
		why = "each calling code must be 1 to 6 digits, not starting with 0";
	else if (cs->too_many)
		why = "at most 24 calling codes per market";
	else if (other && cs->n > 0)
		why = "must be empty for OTHER (it applies where no code matches)";
	else if (!other && r->market[0] && cs->n == 0)
		why = "at least one calling code is required (e.g. \"55\")";
	if (why) {
		row_error(rc, "calling_codes", why);
		return false;
	}
	qsort(cs->code, (size_t)cs->n, sizeof cs->code[0], code_cmp);
	size_t off = 0;
	r->calling_codes[0] = '\0';
	for (int i = 0; i < cs->n; i++)
		off += (size_t)snprintf(r->calling_codes + off, sizeof r->calling_codes - off,
					"%s%s", i ? " " : "", cs->code[i]);
	return true;
}

/* "1 1876" (spaces; CSV) into cs. */
static void codes_from_text(struct codes *cs, const char *s)
{
	while (*s) {
		while (*s == ' ')
			s++;
		size_t len = strcspn(s, " ");
		if (len > 0)
			codes_add(cs, s, len);
		s += len;
	}
}

/* ---- CSV ---------------------------------------------------------------- */

enum col { COL_MARKET, COL_CODES, COL_CATEGORY, COL_RATE, COL_CURRENCY, COL_FROM, NCOLS };
static const char *const col_names[NCOLS] = {
	"market", "calling_codes", "category", "rate", "currency", "effective_from",
};

struct csv_ctx {
	struct pricing_upload *up;
	struct json_check *chk;
	int col[NCOLS];      /* field index of each column, -1 = missing */
	size_t min_fields;
	bool have_header;
	bool failed;         /* header bad, too many rows or out of memory */
	bool oom;
};

static void csv_header(struct csv_ctx *x, const struct csv_record *rec)
{
	x->have_header = true;
	for (int c = 0; c < NCOLS; c++) {
		x->col[c] = -1;
		for (size_t f = 0; f < rec->nfields; f++)
			if (!strcmp(rec->fields[f], col_names[c]))
				x->col[c] = (int)f;
		if (x->col[c] < 0) {
			json_check_rule(x->chk, "header", "missing column \"%s\" (line %llu)",
					col_names[c], (unsigned long long)rec->line);
			x->failed = true;
		} else if ((size_t)x->col[c] + 1 > x->min_fields) {
			x->min_fields = (size_t)x->col[c] + 1;
		}
	}
}

static void csv_row(struct csv_ctx *x, const struct csv_record *rec)
{
	char where[32];
	snprintf(where, sizeof where, "line %llu", (unsigned long long)rec->line);
	if (x->up->n >= PRICING_MAX_ROWS) {
		json_check_rule(x->chk, where, "more than %d rows in one card", PRICING_MAX_ROWS);
		x->failed = true;
		return;
	}
	struct pricing_rate *r = upload_add(x->up, where);
	if (r == NULL) {
		x->failed = x->oom = true;
		return;
	}
	const struct row_ctx rc = { x->chk, x->up->where[x->up->n - 1], false };
	if (rec->nfields < x->min_fields) {
		json_check_rule(x->chk, where, "has %zu fields, the header names %zu",
				rec->nfields, x->min_fields);
		return;
	}
	const char *const *f = rec->fields;
	struct codes cs = { .n = 0 };
	bool market_ok = check_market(&rc, f[x->col[COL_MARKET]], r);
	check_category(&rc, f[x->col[COL_CATEGORY]], r);
	check_rate(&rc, f[x->col[COL_RATE]], r);
	check_currency(&rc, f[x->col[COL_CURRENCY]], r);
	check_date(&rc, f[x->col[COL_FROM]], r);
	codes_from_text(&cs, f[x->col[COL_CODES]]);
	if (market_ok)
		codes_finish(&rc, &cs, r);
}

static int csv_record_cb(void *ctx, const struct csv_record *rec)
{
	struct csv_ctx *x = ctx;
	if (rec->blank)
		return 0;
	if (rec->error != CSV_OK) {
		char where[32];
		snprintf(where, sizeof where, "line %llu", (unsigned long long)rec->line);
		json_check_rule(x->chk, x->have_header ? where : "header", "%s",
				csv_error_message(rec->error));
		if (!x->have_header)
			x->failed = true;
		return x->failed ? 1 : 0;
	}
	if (!x->have_header)
		csv_header(x, rec);
	else
		csv_row(x, rec);
	return x->failed ? 1 : 0;
}

int pricing_parse_csv(const char *text, size_t len, struct pricing_upload *up,
		      struct json_check *chk)
{
	const struct csv_limits limits = { .max_field_bytes = PRICING_FIELD_MAX,
					   .max_record_bytes = 4096,
					   .max_fields = 32,
					   .max_records = 4 * PRICING_MAX_ROWS };
	struct csv_ctx x = { .up = up, .chk = chk };
	struct csv_reader *rd = csv_reader_new(&limits, csv_record_cb, &x);
	if (rd == NULL)
		return -1;
	enum csv_error e = csv_feed(rd, text, len);
	if (e == CSV_OK)
		e = csv_finish(rd);
	if (e != CSV_OK && e != CSV_ERR_STOPPED && e != CSV_ERR_NOMEM) {
		char where[32];
		snprintf(where, sizeof where, "line %llu",
			 (unsigned long long)csv_reader_line(rd));
		json_check_rule(chk, where, "%s", csv_error_message(e));
	}
	csv_reader_free(rd);
	if (e == CSV_ERR_NOMEM || x.oom)
		return -1;
	if (!x.have_header)
		json_check_rule(chk, "header", "the card is empty: expected a header line "
					       "market,calling_codes,category,rate,currency,"
					       "effective_from and rows");
	else if (up->n == 0 && !x.failed)
		json_check_rule(chk, "header", "the card has no rows");
	return 0;
}

/* ---- JSON --------------------------------------------------------------- */

/* A required string field of a rates[] item; NULL after reporting. */
static const char *json_row_str(const struct row_ctx *rc, const json_t *item,
				const char *key)
{
	const char *s = NULL;
	char field[64];
	snprintf(field, sizeof field, "%s.%s", rc->where, key);
	switch (json_get_str(item, key, &s)) {
	case JSON_GET_OK:
		if (strlen(s) <= PRICING_FIELD_MAX)
			return s;
		json_check_rule(rc->chk, field, "is too long");
		return NULL;
	case JSON_GET_WRONG_TYPE:
		json_check_type(rc->chk, field, "must be a string%s",
				!strcmp(key, "rate") ? " (money is never a JSON number: \"0.05\")"
						     : "");
		return NULL;
	default:
		json_check_rule(rc->chk, field, "is required");
		return NULL;
	}
}

static void json_row_codes(const struct row_ctx *rc, const json_t *item,
			   struct pricing_rate *r)
{
	json_t *arr = NULL;
	char field[64];
	struct codes cs = { .n = 0 };
	snprintf(field, sizeof field, "%s.calling_codes", rc->where);
	enum json_get g = json_get_arr(item, "calling_codes", &arr);
	if (g == JSON_GET_WRONG_TYPE) {
		json_check_type(rc->chk, field, "must be an array of strings");
		return;
	}
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v)) {
			json_check_type(rc->chk, field, "must be an array of strings");
			return;
		}
		codes_add(&cs, json_string_value(v), json_string_length(v));
	}
	codes_finish(rc, &cs, r);
}

static void json_row(struct pricing_upload *up, struct json_check *chk,
		     const json_t *item, struct pricing_rate *r)
{
	const struct row_ctx rc = { chk, up->where[up->n - 1], true };
	if (!json_is_object(item)) {
		json_check_type(chk, rc.where, "must be an object");
		return;
	}
	const char *s;
	bool market_ok = false;
	if ((s = json_row_str(&rc, item, "market")))
		market_ok = check_market(&rc, s, r);
	if ((s = json_row_str(&rc, item, "category")))
		check_category(&rc, s, r);
	if ((s = json_row_str(&rc, item, "rate")))
		check_rate(&rc, s, r);
	if ((s = json_row_str(&rc, item, "currency")))
		check_currency(&rc, s, r);
	if ((s = json_row_str(&rc, item, "effective_from")))
		check_date(&rc, s, r);
	if (market_ok)
		json_row_codes(&rc, item, r);
}

int pricing_parse_json(const json_t *body, struct pricing_upload *up,
		       struct json_check *chk)
{
	json_t *rates = NULL;
	switch (json_get_arr(body, "rates", &rates)) {
	case JSON_GET_OK:
		break;
	case JSON_GET_WRONG_TYPE:
		json_check_type(chk, "rates", "must be an array");
		return 0;
	default:
		json_check_rule(chk, "rates", "is required");
		return 0;
	}
	if (json_array_size(rates) == 0) {
		json_check_rule(chk, "rates", "the card has no rows");
		return 0;
	}
	if (json_array_size(rates) > PRICING_MAX_ROWS) {
		json_check_rule(chk, "rates", "more than %d rows in one card", PRICING_MAX_ROWS);
		return 0;
	}
	size_t i;
	json_t *item;
	json_array_foreach(rates, i, item) {
		char where[32];
		snprintf(where, sizeof where, "rates[%d]", (int)i);
		struct pricing_rate *r = upload_add(up, where);
		if (r == NULL)
			return -1;
		json_row(up, chk, item, r);
	}
	return 0;
}

/* ---- checks across rows --------------------------------------------------- */

static int key_cmp(const void *a, const void *b, void *ctx)
{
	const struct pricing_rate *rows = ctx;
	const struct pricing_rate *x = &rows[*(const int *)a], *y = &rows[*(const int *)b];
	int c = strcmp(x->market, y->market);
	if (c == 0)
		c = (x->effective_from > y->effective_from) - (x->effective_from < y->effective_from);
	if (c == 0)
		c = strcmp(x->category, y->category);
	if (c == 0)
		c = *(const int *)a - *(const int *)b;
	return c;
}

/* Same key, same codes per (market, date), one currency. */
static void check_keys(const struct pricing_upload *up, const int *idx,
		       struct json_check *chk)
{
	for (int k = 1; k < up->n; k++) {
		const struct pricing_rate *p = &up->rows[idx[k - 1]], *r = &up->rows[idx[k]];
		const char *where = up->where[idx[k]];
		if (strcmp(p->market, r->market) || p->effective_from != r->effective_from)
			continue;
		if (!strcmp(p->category, r->category))
			json_check_rule(chk, where, "%s %s from this date appears twice "
						    "(also %s)", r->market, r->category,
					up->where[idx[k - 1]]);
		else if (strcmp(p->calling_codes, r->calling_codes))
			json_check_rule(chk, where, "calling_codes \"%s\" differ from \"%s\" "
						    "of %s for the same market and date",
					r->calling_codes, p->calling_codes,
					up->where[idx[k - 1]]);
	}
	for (int k = 1; k < up->n; k++)
		if (strcmp(up->rows[k].currency, up->rows[0].currency))
			json_check_rule(chk, up->where[k], "currency %s differs from %s of %s: "
							   "one card, one currency",
					up->rows[k].currency, up->rows[0].currency,
					up->where[0]);
}

struct code_use {
	char code[PRICING_CODE_MAX_DIGITS + 1];
	int row;
};

static int code_use_cmp(const void *a, const void *b, void *ctx)
{
	const struct pricing_rate *rows = ctx;
	const struct code_use *x = a, *y = b;
	int64_t ex = rows[x->row].effective_from, ey = rows[y->row].effective_from;
	int c = (ex > ey) - (ex < ey);
	if (c == 0)
		c = strcmp(x->code, y->code);
	if (c == 0)
		c = x->row - y->row;
	return c;
}

/* No calling code in two markets on one date. */
static void check_code_owners(const struct pricing_upload *up, struct json_check *chk)
{
	size_t n = 0, cap = 0;
	struct code_use *uses = NULL;
	for (int i = 0; i < up->n; i++) {
		const char *p = up->rows[i].calling_codes;
		while (*p) {
			size_t len = strcspn(p, " ");
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				struct code_use *u = realloc(uses, cap * sizeof *u);
				if (u == NULL)
					goto out; /* best effort: skip this check */
				uses = u;
			}
			if (len <= PRICING_CODE_MAX_DIGITS) {
				memcpy(uses[n].code, p, len);
				uses[n].code[len] = '\0';
				uses[n++].row = i;
			}
			p += len;
			while (*p == ' ')
				p++;
		}
	}
	qsort_r(uses, n, sizeof *uses, code_use_cmp, up->rows);
	for (size_t k = 1; k < n; k++) {
		const struct pricing_rate *a = &up->rows[uses[k - 1].row], *b = &up->rows[uses[k].row];
		if (a->effective_from == b->effective_from && !strcmp(uses[k - 1].code, uses[k].code) &&
		    strcmp(a->market, b->market))
			json_check_rule(chk, up->where[uses[k].row],
					"calling code %s is also in market %s (%s) on this date",
					uses[k].code, a->market, up->where[uses[k - 1].row]);
	}
out:
	free(uses);
}

void pricing_check_upload(const struct pricing_upload *up, struct json_check *chk)
{
	if (up->n < 2)
		return;
	int *idx = malloc((size_t)up->n * sizeof *idx);
	if (idx == NULL)
		return;
	for (int i = 0; i < up->n; i++)
		idx[i] = i;
	qsort_r(idx, (size_t)up->n, sizeof *idx, key_cmp, up->rows);
	check_keys(up, idx, chk);
	free(idx);
	check_code_owners(up, chk);
}

/* ---- storing -------------------------------------------------------------- */

static void detail(json_t *details, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void detail(json_t *details, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", msg));
}

static int insert_row(struct db_conn *c, const struct pricing_rate *r, int64_t now)
{
	char id[UUID_STR_LEN];
	if (uuid_v7_str(id) != 0)
		return DB_ERR;
	struct db_param p[] = { DBP_TEXT(id), DBP_TEXT(r->market), DBP_TEXT(r->calling_codes),
				DBP_TEXT(r->category), DBP_MONEY(r->rate), DBP_TEXT(r->currency),
				DBP_INT(r->effective_from), DBP_INT(now) };
	return db_exec(c, "INSERT INTO rate_cards (id, market, calling_codes, category, "
			  "rate, currency, effective_from, created_at) "
			  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		       p, 8, NULL, NULL);
}

/* Compare row i of up with what is stored: 0 new, 1 identical, -1 after a
 * detail (conflict or currency). */
static int classify(const struct pricing_card *stored, const struct pricing_upload *up,
		    int i, json_t *conflicts, json_t *invalid)
{
	const struct pricing_rate *r = &up->rows[i];
	const struct pricing_rate *any = pricing_card_rate(stored, 0);
	char a[MONEY_TEXT_LEN], date[PRICING_DATE_LEN];
	if (any != NULL && strcmp(any->currency, r->currency)) {
		detail(invalid, up->where[i], "currency %s differs from %s of the stored "
					       "rate card: one installation, one currency",
		       r->currency, any->currency);
		return -1;
	}
	const struct pricing_rate *s =
		pricing_rate_in_force(stored, r->market, r->category, r->effective_from);
	if (s == NULL || s->effective_from != r->effective_from)
		return 0;
	if (s->rate == r->rate && !strcmp(s->calling_codes, r->calling_codes))
		return 1;
	detail(conflicts, up->where[i], "%s %s from %s is already stored (rate %s, "
					"calling codes \"%s\"); a card never rewrites the past: "
					"give the new rate a later effective_from",
	       r->market, r->category, pricing_format_date(r->effective_from, date),
	       money_format_min(s->rate, 2, a, sizeof a), s->calling_codes);
	return -1;
}

int pricing_store(struct db_conn *c, const struct pricing_upload *up, json_t *details,
		  struct pricing_store_result *res)
{
	struct pricing_card *stored = NULL;
	json_t *invalid = json_array();
	int *state = calloc((size_t)(up->n > 0 ? up->n : 1), sizeof *state);
	int rc = DB_ERR;
	memset(res, 0, sizeof *res);
	if (invalid == NULL || state == NULL)
		goto out;
	/* Concurrent loads queue here, so each sees the other's rows (no
	 * unique violation half-way through a card). */
	if ((rc = db_lock_xact(c, PRICING_LOCK_KEY)) != DB_OK)
		goto out;
	if ((rc = pricing_card_load(c, &stored)) != DB_OK)
		goto out;
	for (int i = 0; i < up->n; i++)
		state[i] = classify(stored, up, i, details, invalid);
	if (json_array_size(invalid) > 0) {
		json_array_extend(details, invalid);
		rc = PRICING_STORE_INVALID;
		goto out;
	}
	if (json_array_size(details) > 0) {
		rc = PRICING_STORE_CONFLICT;
		goto out;
	}
	int64_t now = time_now_us();
	for (int i = 0; i < up->n; i++) {
		if (state[i] == 1) {
			res->unchanged++;
			continue;
		}
		if ((rc = insert_row(c, &up->rows[i], now)) != DB_OK)
			goto out;
		res->inserted++;
	}
	rc = DB_OK;
out:
	json_decref(invalid);
	free(state);
	pricing_card_release(stored);
	return rc;
}

int pricing_seed_if_empty(struct db_conn *c, int *inserted)
{
	struct db_res *r = NULL;
	struct pricing_upload up = PRICING_UPLOAD_INIT;
	struct json_check chk = JSON_CHECK_INIT;
	json_t *details = json_array();
	struct pricing_store_result res;
	*inserted = 0;
	int rc = db_exec(c, "SELECT 1 FROM rate_cards LIMIT 1", NULL, 0, &r, NULL);
	if (rc != DB_OK || db_rows(r) > 0)
		goto out;
	rc = DB_ERR;
	if (details == NULL || pricing_parse_csv(pricing_seed_csv, pricing_seed_csv_len, &up,
						 &chk) != 0)
		goto out;
	pricing_check_upload(&up, &chk);
	if (!json_check_ok(&chk))
		goto out;
	rc = pricing_store(c, &up, details, &res);
	if (rc == DB_OK)
		*inserted = res.inserted;
	else if (rc > 0)
		rc = DB_ERR;
out:
	json_decref(details);
	json_check_release(&chk);
	pricing_upload_release(&up);
	db_res_free(r);
	return rc;
}
