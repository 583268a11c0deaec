/* pricing: Meta's rate cards (price per delivered message by market and
 * category) and the lookups that price a message.
 *
 * Design note
 * - The card is installation-wide (Meta's prices, not a tenant's) and
 *   insert-only: table rate_cards (migration 0008) holds every row ever
 *   loaded, each with its effective_from (a date, 00:00 UTC). For a
 *   (market, category) the rate in force at t is the row with the latest
 *   effective_from <= t, so a new card never changes what was in force
 *   before its date.
 * - Markets are found by the recipient's country calling code: each row
 *   carries its market's calling-code prefixes ("1", "55", "1876"); at t,
 *   a market's prefixes are those of its latest row with effective_from <=
 *   t, and the longest prefix matching the phone's digits wins. No match:
 *   market "OTHER". A market with no rate for the category at t is priced
 *   at OTHER's rate for that category (quote.rate_market says so).
 * - Loading a card (PUT /api/v1/pricing/rates, `pytake pricing import`) is
 *   validated as a whole: every bad row is reported and nothing is stored.
 *   Rows whose (market, category, effective_from) is already stored are
 *   ignored when identical (same codes, rate, currency: re-importing a file
 *   is harmless) and are a conflict when they differ (the past is not
 *   rewritten; load a row with a new effective_from instead). One currency
 *   per installation: every row must use the currency already stored.
 * - The pricing hot path (one lookup per status webhook) reads an immutable,
 *   reference-counted in-memory snapshot of the whole table
 *   (pricing_current): reloaded after this process stores a card
 *   (pricing_invalidate), and when another process changed the table: at
 *   most once per PRICING_SNAPSHOT_CHECK_US a caller probes (row count,
 *   latest created_at) with one small query and reloads only if it moved.
 * - Categories: marketing, marketing_lite, utility, authentication,
 *   authentication_international, service, referral_conversion (lookups
 *   accept Meta's "authentication-international" spelling too). */
#ifndef PYTAKE_PRICING_H
#define PYTAKE_PRICING_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define PRICING_MARKET_LEN 33    /* [A-Z][A-Z0-9_]{0,31} */
#define PRICING_CATEGORY_LEN 33
#define PRICING_CODES_LEN 200    /* space-separated prefixes of 1..6 digits */
#define PRICING_CURRENCY_LEN 4
#define PRICING_MAX_ROWS 10000   /* rows in one upload */
#define PRICING_MARKET_OTHER "OTHER"
/* How often the snapshot is checked against the table (other processes'
 * changes). */
#define PRICING_SNAPSHOT_CHECK_US INT64_C(1000000)
/* "YYYY-MM-DD" + NUL */
#define PRICING_DATE_LEN 11

struct pricing_rate {
	char market[PRICING_MARKET_LEN];
	char calling_codes[PRICING_CODES_LEN]; /* "1 1876"; "" for OTHER */
	char category[PRICING_CATEGORY_LEN];
	int64_t rate;                          /* micro-units, >= 0 */
	char currency[PRICING_CURRENCY_LEN];
	int64_t effective_from;                /* µs since the epoch, 00:00 UTC */
};

/* ---- loading a card --------------------------------------------------- */

/* A parsed upload: rows plus where each came from ("line 4", "rates[3]")
 * for error details. */
struct pricing_upload {
	struct pricing_rate *rows;
	char (*where)[32];
	int n, cap;
};
#define PRICING_UPLOAD_INIT { NULL, NULL, 0, 0 }
void pricing_upload_release(struct pricing_upload *up);

/* Error details of an upload: an array of {"field", "message"} entries
 * ("line 4" / "rates[3].rate"). type_errors: a JSON field of the wrong type
 * (answer 400); rule_errors: anything else (422). Same as core/json.h's
 * struct json_check, which is what the parsers fill. */
struct json_check;

/* Parse CSV text (header market,calling_codes,category,rate,currency,
 * effective_from in any order; extra columns ignored) into up, checking
 * each row; problems go to chk as rule errors keyed "line N" (or "header").
 * Returns 0, or -1 on out of memory. Rows are added even when some are bad:
 * the caller stores nothing unless json_check_ok(chk). */
int pricing_parse_csv(const char *text, size_t len, struct pricing_upload *up,
		      struct json_check *chk) __attribute__((warn_unused_result));
/* Parse {"rates": [{market, calling_codes: ["55"], category, rate: "0.05",
 * currency, effective_from: "YYYY-MM-DD"}]} the same way; fields are keyed
 * "rates[3].rate". */
int pricing_parse_json(const json_t *body, struct pricing_upload *up,
		       struct json_check *chk) __attribute__((warn_unused_result));
/* Checks across the rows of an upload (after parsing): no (market,
 * category, effective_from) twice, one currency, one set of calling codes
 * per (market, effective_from), no calling code in two markets on one
 * date. Adds rule errors to chk. */
void pricing_check_upload(const struct pricing_upload *up, struct json_check *chk);

/* Positive results of pricing_store (the transaction must roll back). */
enum { PRICING_STORE_CONFLICT = 1, PRICING_STORE_INVALID = 2 };
struct pricing_store_result {
	int inserted;   /* new rows */
	int unchanged;  /* identical rows already stored, ignored */
};
/* Store a checked upload inside the caller's transaction. Returns DB_OK;
 * PRICING_STORE_CONFLICT after appending to details ({field, message} per
 * row that differs from the stored row with its key: answer 409);
 * PRICING_STORE_INVALID after appending to details (currency differs from
 * the installation's: 422); or a db_status. details: a JSON array. */
int pricing_store(struct db_conn *c, const struct pricing_upload *up, json_t *details,
		  struct pricing_store_result *res) __attribute__((warn_unused_result));

/* The example card compiled into the binary (src/domain/rate_card_seed.csv,
 * generated rate_card_seed.c). */
extern const char pricing_seed_csv[];
extern const size_t pricing_seed_csv_len;
/* Inside a write transaction: when rate_cards is empty, load the embedded
 * card (*inserted rows; 0 when the table had rows). DB_OK or a db_status;
 * DB_ERR when the embedded card does not parse (a build bug). */
int pricing_seed_if_empty(struct db_conn *c, int *inserted)
	__attribute__((warn_unused_result));

/* ---- the card in memory ------------------------------------------------ */

/* An immutable snapshot of every stored row, sorted by (market, category,
 * effective_from). Shared between threads; reference-counted. */
struct pricing_card;

/* Read the whole table into a new snapshot (one reference, caller's).
 * DB_OK or a db_status. */
int pricing_card_load(struct db_conn *c, struct pricing_card **out)
	__attribute__((warn_unused_result));
/* A snapshot of n rows copied from rates (any order); NULL on out of
 * memory. For tests and tools. */
struct pricing_card *pricing_card_from_rates(const struct pricing_rate *rates, int n);
/* Take / drop a reference; pricing_card_release(NULL) is a no-op. */
struct pricing_card *pricing_card_ref(struct pricing_card *card);
void pricing_card_release(struct pricing_card *card);
int pricing_card_count(const struct pricing_card *card);
const struct pricing_rate *pricing_card_rate(const struct pricing_card *card, int i);

/* The process-wide snapshot of db's table (loaded on first use, after
 * pricing_invalidate, when the table changed (checked at most once per
 * PRICING_SNAPSHOT_CHECK_US) or when db differs from the cached one). *out gets a reference the caller releases.
 * Thread-safe. DB_OK or a db_status (DB_ERR_UNAVAILABLE: no connection). */
int pricing_current(struct db *db, struct pricing_card **out)
	__attribute__((warn_unused_result));
/* Drop the cached snapshot (after storing a card). */
void pricing_invalidate(void);

/* The market of phone digits (E.164 without '+') at time at_us: longest
 * calling-code prefix among the markets in force, else "OTHER". Copies the
 * code into out and returns out. */
char *pricing_market_for(const struct pricing_card *card, const char *digits,
			 int64_t at_us, char out[PRICING_MARKET_LEN]);
/* The row of (market, category) in force at at_us (latest effective_from
 * <= at_us), or NULL. category is normalised (case, '-' -> '_'). Points
 * into card. */
const struct pricing_rate *pricing_rate_in_force(const struct pricing_card *card,
						 const char *market,
						 const char *category, int64_t at_us);

struct pricing_quote {
	char market[PRICING_MARKET_LEN];      /* the recipient's market */
	char rate_market[PRICING_MARKET_LEN]; /* where the rate came from:
	                                          market, or OTHER as fallback */
	char category[PRICING_CATEGORY_LEN];  /* normalised */
	int64_t rate;                          /* micro-units */
	char currency[PRICING_CURRENCY_LEN];
	int64_t effective_from;
};
enum { PRICING_NO_RATE = 1 };
/* Price one message to digits of category at at_us: 0 with *out filled,
 * or PRICING_NO_RATE when neither the market nor OTHER has a rate for the
 * category then (out->market is still filled). */
int pricing_quote(const struct pricing_card *card, const char *digits,
		  const char *category, int64_t at_us, struct pricing_quote *out);

/* The rows in force at at_us, one per (market, category), in (market,
 * category) order: *out is a malloc'd array of n pointers into card
 * (caller frees the array only). 0, or -1 on out of memory. */
int pricing_card_in_force(const struct pricing_card *card, int64_t at_us,
			  const struct pricing_rate ***out, int *n)
	__attribute__((warn_unused_result));

/* ---- small helpers ---------------------------------------------------- */

/* "YYYY-MM-DD" (a real date) -> µs at 00:00 UTC; false otherwise. */
bool pricing_parse_date(const char *s, int64_t *us_out);
/* µs -> "YYYY-MM-DD" (UTC) into out[PRICING_DATE_LEN]; returns out. */
char *pricing_format_date(int64_t us, char out[PRICING_DATE_LEN]);
/* True for a category this module knows (exact spelling). */
bool pricing_category_is_known(const char *category);

#endif
