/* pricing: the rate card in memory and its lookups (see pricing.h). Loading
 * and validating cards lives in pricing_load.c. */
#include "domain/pricing.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/money.h"
#include "core/str.h"
#include "core/timeutil.h"

struct pricing_card {
	atomic_int refs;
	int n;
	struct pricing_rate *rates;
	const struct db *db;   /* the database it was loaded from (cache key) */
	int64_t version_rows;  /* rows and latest created_at when loaded */
	int64_t version_last;
};

/* ---- snapshots ---------------------------------------------------------- */

static int rate_cmp(const void *a, const void *b)
{
	const struct pricing_rate *x = a, *y = b;
	int c = strcmp(x->market, y->market);
	if (c == 0)
		c = strcmp(x->category, y->category);
	if (c == 0)
		c = (x->effective_from > y->effective_from) - (x->effective_from < y->effective_from);
	return c;
}

struct pricing_card *pricing_card_from_rates(const struct pricing_rate *rates, int n)
{
	struct pricing_card *card = calloc(1, sizeof *card);
	if (card == NULL)
		return NULL;
	if (n > 0) {
		card->rates = malloc((size_t)n * sizeof *card->rates);
		if (card->rates == NULL) {
			free(card);
			return NULL;
		}
		memcpy(card->rates, rates, (size_t)n * sizeof *card->rates);
		qsort(card->rates, (size_t)n, sizeof *card->rates, rate_cmp);
	}
	card->n = n;
	atomic_init(&card->refs, 1);
	return card;
}

struct pricing_card *pricing_card_ref(struct pricing_card *card)
{
	if (card != NULL)
		atomic_fetch_add(&card->refs, 1);
	return card;
}

void pricing_card_release(struct pricing_card *card)
{
	if (card == NULL || atomic_fetch_sub(&card->refs, 1) != 1)
		return;
	free(card->rates);
	free(card);
}

int pricing_card_count(const struct pricing_card *card)
{
	return card ? card->n : 0;
}

const struct pricing_rate *pricing_card_rate(const struct pricing_card *card, int i)
{
	return card && i >= 0 && i < card->n ? &card->rates[i] : NULL;
}

static void rate_from_row(const struct db_res *r, int row, struct pricing_rate *out)
{
	memset(out, 0, sizeof *out);
	str_copy(out->market, sizeof out->market, db_get_text(r, row, 0));
	str_copy(out->calling_codes, sizeof out->calling_codes, db_get_text(r, row, 1));
	str_copy(out->category, sizeof out->category, db_get_text(r, row, 2));
	out->rate = db_get_money(r, row, 3);
	str_copy(out->currency, sizeof out->currency, db_get_text(r, row, 4));
	out->effective_from = db_get_int(r, row, 5);
}

int pricing_card_load(struct db_conn *c, struct pricing_card **out)
{
	struct db_res *r = NULL;
	struct pricing_rate *rates = NULL;
	int rc = db_exec(c, "SELECT market, calling_codes, category, rate, currency, "
			    "effective_from FROM rate_cards",
			 NULL, 0, &r, NULL);
	if (rc != DB_OK)
		return rc;
	int n = db_rows(r);
	rc = DB_ERR;
	if (n > 0 && (rates = calloc((size_t)n, sizeof *rates)) == NULL)
		goto out;
	for (int i = 0; i < n; i++)
		rate_from_row(r, i, &rates[i]);
	struct pricing_card *card = pricing_card_from_rates(rates, n);
	if (card == NULL)
		goto out;
	*out = card;
	rc = DB_OK;
out:
	free(rates);
	db_res_free(r);
	return rc;
}

/* ---- the process-wide cache --------------------------------------------
 * One snapshot per process. The table is insert-only, so (row count,
 * latest created_at) changes with every change: at most once per
 * PRICING_SNAPSHOT_CHECK_US a caller probes it (one small query) and
 * reloads the table only when it moved; a store in this process
 * invalidates at once. */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pricing_card *cached;
static int64_t cache_checked_at;   /* monotonic µs of the last probe */
static uint64_t cache_generation;  /* bumped by pricing_invalidate */

struct card_version {
	int64_t rows, last_created_at;
};

struct refresh {
	struct pricing_card *have;  /* the cached snapshot, may be NULL */
	struct pricing_card *out;   /* result (a reference) */
	struct card_version version;
};

static int probe_version(struct db_conn *c, struct card_version *v)
{
	struct db_res *r = NULL;
	int rc = db_exec(c, "SELECT count(*), COALESCE(max(created_at), 0) FROM rate_cards",
			 NULL, 0, &r, NULL);
	if (rc != DB_OK)
		return rc;
	v->rows = db_rows(r) > 0 ? db_get_int(r, 0, 0) : 0;
	v->last_created_at = db_rows(r) > 0 ? db_get_int(r, 0, 1) : 0;
	db_res_free(r);
	return DB_OK;
}

static int refresh_fn(struct db_conn *c, void *ctx)
{
	struct refresh *x = ctx;
	pricing_card_release(x->out); /* a retried transaction */
	x->out = NULL;
	int rc = probe_version(c, &x->version);
	if (rc != DB_OK)
		return rc;
	if (x->have != NULL && x->have->version_rows == x->version.rows &&
	    x->have->version_last == x->version.last_created_at) {
		x->out = pricing_card_ref(x->have);
		return DB_OK;
	}
	rc = pricing_card_load(c, &x->out);
	if (rc == DB_OK) {
		x->out->version_rows = x->version.rows;
		x->out->version_last = x->version.last_created_at;
	}
	return rc;
}

/* A fresh cached snapshot for db (new reference), or NULL; then *stale
 * gets the cached one (a reference, may be NULL) to compare versions. */
static struct pricing_card *cache_get(const struct db *db, uint64_t *generation,
				      struct pricing_card **stale)
{
	struct pricing_card *card = NULL;
	*stale = NULL;
	pthread_mutex_lock(&cache_lock);
	if (cached != NULL && cached->db == db) {
		if (time_mono_us() - cache_checked_at < PRICING_SNAPSHOT_CHECK_US)
			card = pricing_card_ref(cached);
		else
			*stale = pricing_card_ref(cached);
	}
	*generation = cache_generation;
	pthread_mutex_unlock(&cache_lock);
	return card;
}

/* Install card unless the cache was invalidated since generation. */
static void cache_put(struct pricing_card *card, uint64_t generation)
{
	struct pricing_card *old = NULL;
	pthread_mutex_lock(&cache_lock);
	if (cache_generation == generation) {
		if (cached != card) {
			old = cached;
			cached = pricing_card_ref(card);
		}
		cache_checked_at = time_mono_us();
	}
	pthread_mutex_unlock(&cache_lock);
	pricing_card_release(old);
}

int pricing_current(struct db *db, struct pricing_card **out)
{
	uint64_t generation;
	struct refresh x = { 0 };
	struct pricing_card *card = cache_get(db, &generation, &x.have);
	if (card != NULL) {
		*out = card;
		return DB_OK;
	}
	int rc = db_tx(db, false, refresh_fn, &x);
	pricing_card_release(x.have);
	if (rc != DB_OK) {
		pricing_card_release(x.out);
		return rc;
	}
	x.out->db = db;
	cache_put(x.out, generation);
	*out = x.out;
	return DB_OK;
}

void pricing_invalidate(void)
{
	struct pricing_card *old;
	pthread_mutex_lock(&cache_lock);
	old = cached;
	cached = NULL;
	cache_generation++;
	pthread_mutex_unlock(&cache_lock);
	pricing_card_release(old);
}

/* ---- lookups ------------------------------------------------------------ */

/* End (exclusive) of the group of rows starting at i with the same market
 * (and the same category when by_category). */
static int group_end(const struct pricing_card *card, int i, bool by_category)
{
	const struct pricing_rate *first = &card->rates[i];
	int j = i + 1;
	while (j < card->n && !strcmp(card->rates[j].market, first->market) &&
	       (!by_category || !strcmp(card->rates[j].category, first->category)))
		j++;
	return j;
}

/* Index of the row in [s, e) with the latest effective_from <= at_us, or -1.
 * Ties (several categories on one date) go to the first. */
static int latest_in(const struct pricing_card *card, int s, int e, int64_t at_us)
{
	int best = -1;
	for (int i = s; i < e; i++) {
		int64_t ef = card->rates[i].effective_from;
		if (ef <= at_us && (best < 0 || ef > card->rates[best].effective_from))
			best = i;
	}
	return best;
}

/* Length of the longest code of codes ("1 1876") that prefixes digits, or 0. */
static size_t longest_code_match(const char *codes, const char *digits)
{
	size_t best = 0;
	const char *p = codes;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, " ");
		if (len > best && !strncmp(p, digits, len) && strlen(digits) >= len)
			best = len;
		p += len;
	}
	return best;
}

char *pricing_market_for(const struct pricing_card *card, const char *digits,
			 int64_t at_us, char out[PRICING_MARKET_LEN])
{
	size_t best_len = 0;
	int64_t best_ef = 0;
	str_copy(out, PRICING_MARKET_LEN, PRICING_MARKET_OTHER);
	if (card == NULL || digits == NULL || *digits == '\0')
		return out;
	for (int s = 0; s < card->n;) {
		int e = group_end(card, s, false);
		int row = latest_in(card, s, e, at_us);
		if (row >= 0 && strcmp(card->rates[row].market, PRICING_MARKET_OTHER)) {
			const struct pricing_rate *r = &card->rates[row];
			size_t len = longest_code_match(r->calling_codes, digits);
			if (len > best_len || (len > 0 && len == best_len &&
					       r->effective_from > best_ef)) {
				best_len = len;
				best_ef = r->effective_from;
				str_copy(out, PRICING_MARKET_LEN, r->market);
			}
		}
		s = e;
	}
	return out;
}

/* category lower-cased with '-' as '_' into out; false when too long. */
static bool normalise_category(const char *category, char out[PRICING_CATEGORY_LEN])
{
	size_t n = category ? strlen(category) : 0;
	if (n == 0 || n >= PRICING_CATEGORY_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = category[i] == '-' ? '_' : (char)tolower((unsigned char)category[i]);
	out[n] = '\0';
	return true;
}

const struct pricing_rate *pricing_rate_in_force(const struct pricing_card *card,
						 const char *market,
						 const char *category, int64_t at_us)
{
	char cat[PRICING_CATEGORY_LEN];
	if (card == NULL || market == NULL || !normalise_category(category, cat))
		return NULL;
	for (int s = 0; s < card->n;) {
		int e = group_end(card, s, true);
		if (!strcmp(card->rates[s].market, market) && !strcmp(card->rates[s].category, cat)) {
			int row = latest_in(card, s, e, at_us);
			return row >= 0 ? &card->rates[row] : NULL;
		}
		s = e;
	}
	return NULL;
}

int pricing_quote(const struct pricing_card *card, const char *digits,
		  const char *category, int64_t at_us, struct pricing_quote *out)
{
	memset(out, 0, sizeof *out);
	pricing_market_for(card, digits, at_us, out->market);
	if (!normalise_category(category, out->category))
		return PRICING_NO_RATE;
	const struct pricing_rate *r =
		pricing_rate_in_force(card, out->market, out->category, at_us);
	if (r == NULL)
		r = pricing_rate_in_force(card, PRICING_MARKET_OTHER, out->category, at_us);
	if (r == NULL)
		return PRICING_NO_RATE;
	str_copy(out->rate_market, sizeof out->rate_market, r->market);
	out->rate = r->rate;
	str_copy(out->currency, sizeof out->currency, r->currency);
	out->effective_from = r->effective_from;
	return 0;
}

int pricing_card_in_force(const struct pricing_card *card, int64_t at_us,
			  const struct pricing_rate ***out, int *n)
{
	int count = 0;
	const struct pricing_rate **list = NULL;
	if (card != NULL && card->n > 0) {
		list = malloc((size_t)card->n * sizeof *list);
		if (list == NULL)
			return -1;
		for (int s = 0; s < card->n;) {
			int e = group_end(card, s, true);
			int row = latest_in(card, s, e, at_us);
			if (row >= 0)
				list[count++] = &card->rates[row];
			s = e;
		}
	}
	*out = list;
	*n = count;
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

bool pricing_parse_date(const char *s, int64_t *us_out)
{
	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return false;
	int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
	unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
		return false;
	int64_t days = time_days_from_civil(y, m, d);
	int yy;
	unsigned mm, dd;
	time_civil_from_days(days, &yy, &mm, &dd);
	if (yy != y || mm != m || dd != d) /* 2025-02-30 */
		return false;
	*us_out = days * INT64_C(86400000000);
	return true;
}

char *pricing_format_date(int64_t us, char out[PRICING_DATE_LEN])
{
	int64_t days = us / INT64_C(86400000000);
	if (us < 0 && us % INT64_C(86400000000) != 0)
		days--;
	int y;
	unsigned m, d;
	time_civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999)
		y = 0;
	snprintf(out, PRICING_DATE_LEN, "%04d-%02u-%02u", y, m % 100, d % 100);
	return out;
}

static const char *const categories[] = {
	"marketing", "marketing_lite", "utility", "authentication",
	"authentication_international", "service", "referral_conversion",
};

bool pricing_category_is_known(const char *category)
{
	for (size_t i = 0; i < sizeof categories / sizeof categories[0]; i++)
		if (category != NULL && !strcmp(categories[i], category))
			return true;
	return false;
}
