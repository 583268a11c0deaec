/* campaigns: bulk template sends of an organization (API.md "Campaigns").
 *
 * Design note
 * - A campaign names a number, one of that number's templates, an
 *   audience ({contact_ids?: [..], tags?: [..]}: a contact is in when its
 *   id is listed OR it carries one of the tags) and the template
 *   parameters, where a string value may be "{{contact.name}}",
 *   "{{contact.phone}}" or "{{contact.attributes.KEY}}" (resolved per
 *   recipient by campaigns_resolve_parameters at send time).
 * - State machine (campaigns_next_status, a pure table):
 *     draft --start--> running, or scheduled when scheduled_at is future
 *     scheduled --(the dispatcher, at scheduled_at)--> running
 *     running --pause--> paused --resume--> running
 *     draft/scheduled/running/paused --cancel--> cancelled
 *     running --(no pending/sending recipient left)--> completed
 *     running --(number or template unusable)--> failed
 *   Anything else is CAMPAIGNS_INVALID_STATE (API: 409 invalid_state).
 * - Start materialises the audience into campaign_recipients (one row per
 *   contact, UNIQUE (campaign_id, contact_id)) in the same transaction
 *   that moves the status: opted-out contacts and contacts without a
 *   phone are 'skipped', the others 'pending' (multi-row INSERTs of 1,000
 *   rows, passed as one JSON array: 100,000 recipients in ~5 s on a busy
 *   machine). The estimate is computed
 *   from the same audience and the rate card in force now; start refuses
 *   (CAMPAIGNS_BUDGET_EXCEEDED) when it exceeds budget_limit or the org's
 *   remaining monthly budget (costs_remaining_budget, domain/costs.h).
 * - Counters are DERIVED (campaigns_counters): recipients joined with
 *   their message rows, which the webhook processor moves forward, so
 *   they cannot drift from the status webhooks. Each recipient counts
 *   once, in its furthest state.
 * - Every function takes the organization id and puts it in the WHERE
 *   clause; another org's id, or one that is not a UUID, is "not found".
 *
 * Return convention: 0 ok / found, 1 not found, a positive
 * CAMPAIGNS_* refusal where documented, or < 0 a db_status. */
#ifndef PYTAKE_CAMPAIGNS_H
#define PYTAKE_CAMPAIGNS_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

struct pricing_card;

#define CAMPAIGNS_NAME_MAX 200        /* code points */
#define CAMPAIGNS_AUDIENCE_IDS_MAX 100000
#define CAMPAIGNS_AUDIENCE_TAGS_MAX 50
#define CAMPAIGNS_MARKETS_MAX 64

enum campaigns_refusal {
	CAMPAIGNS_INVALID_STATE = 2,       /* illegal transition (409) */
	CAMPAIGNS_BUDGET_EXCEEDED,         /* start: estimate above the budget (422) */
	CAMPAIGNS_TEMPLATE_NOT_APPROVED,   /* start: template not APPROVED (422) */
	CAMPAIGNS_BAD_NUMBER,              /* create: number not the org's (422) */
	CAMPAIGNS_BAD_TEMPLATE,            /* create: template not the org's / number's (422) */
	CAMPAIGNS_NO_RATE,                 /* estimate: the card has no rate (422) */
};

struct campaign {
	char id[37];
	char organization_id[37];
	char name[4 * CAMPAIGNS_NAME_MAX + 1];
	char whatsapp_number_id[37];
	char template_id[37];
	json_t *audience;       /* owned */
	json_t *parameters;     /* owned; NULL = none */
	char status[12];
	int64_t scheduled_at;   /* 0 = null */
	bool has_budget;
	int64_t budget_limit;   /* micro-units */
	char currency[8];       /* "" = unknown */
	bool has_estimate;
	int64_t estimated_cost; /* micro-units, set at start */
	char error_message[256];
	int64_t started_at, completed_at, created_at, updated_at; /* 0 = null */
};

/* Drop JSON references and zero c. NULL is a no-op. */
void campaign_release(struct campaign *c);
/* Release n rows of a malloc'd array, then free it. */
void campaign_rows_free(struct campaign *rows, int n);

/* ---- pure rules --------------------------------------------------------- */

enum campaign_action { CAMPAIGN_START, CAMPAIGN_PAUSE, CAMPAIGN_RESUME, CAMPAIGN_CANCEL };

/* The status after action on a campaign in status from (scheduled_future:
 * its scheduled_at is after now); NULL when the transition is illegal.
 * Static strings. */
const char *campaigns_next_status(const char *from, enum campaign_action action,
				  bool scheduled_future);
/* True for a status that never changes again. */
bool campaigns_status_final(const char *status);

/* Resolve placeholders in params (the campaign's parameters; NULL = none)
 * for one recipient: every string value that is exactly
 * "{{contact.name}}", "{{contact.phone}}" or "{{contact.attributes.KEY}}"
 * becomes that field (numbers and booleans as text; an absent value
 * becomes ""), other values are copied. name/phone may be NULL;
 * attributes may be NULL. New reference (NULL when params is NULL or out
 * of memory). */
json_t *campaigns_resolve_parameters(const json_t *params, const char *name, const char *phone,
				     const json_t *attributes);

/* Validate an audience object: NULL when fine, else a message. Needs at
 * least one contact id or tag; ids must be UUIDs, tags strings. */
const char *campaigns_check_audience(const json_t *audience);

/* ---- store ---------------------------------------------------------------- */

/* What campaigns_create inserts (strings and JSON borrowed). */
struct campaign_new {
	const char *name, *whatsapp_number_id, *template_id;
	const json_t *audience;     /* checked with campaigns_check_audience */
	const json_t *parameters;   /* may be NULL */
	int64_t scheduled_at;       /* 0 = none */
	bool has_budget;
	int64_t budget_limit;
	const char *currency;       /* the rate card's, may be NULL */
};

/* Insert a draft for org_id; the number must be a live number of the org
 * (else CAMPAIGNS_BAD_NUMBER) and the template the org's and of that
 * number (else CAMPAIGNS_BAD_TEMPLATE). 0 and *out (caller releases). */
int campaigns_create(struct db_conn *c, const char *org_id, const struct campaign_new *in,
		     struct campaign *out) __attribute__((warn_unused_result));

/* 0 found (*out filled; caller releases), 1, < 0. */
int campaigns_find(struct db_conn *c, const char *org_id, const char *id,
		   struct campaign *out) __attribute__((warn_unused_result));

/* Newest first, keyset paged like every list (see api/paging.h): up to
 * limit rows strictly before (after_at, after_id). *out malloc'd array of
 * *n (campaign_rows_free). 0 or < 0. */
int campaigns_list(struct db_conn *c, const char *org_id, int limit, int64_t after_at,
		   const char *after_id, struct campaign **out, int *n)
	__attribute__((warn_unused_result));

struct campaign_market {
	char market[33];
	int64_t recipients;
	int64_t amount;         /* micro-units */
};

struct campaign_estimate {
	int64_t recipients;         /* to be sent */
	int64_t skipped_opted_out;  /* opted out (and phone-less) contacts */
	int64_t unpriced;           /* recipients the card has no rate for */
	int64_t amount;             /* micro-units */
	char currency[8];
	char category[33];
	int nmarkets;
	struct campaign_market markets[CAMPAIGNS_MARKETS_MAX]; /* by market code */
};

/* Price the audience of campaign cp (of org_id) with card at at_us:
 * category = the template's category lower-cased; market of each phone by
 * calling code. 0, CAMPAIGNS_NO_RATE, 1 (template gone), < 0. */
int campaigns_estimate(struct db_conn *c, const struct pricing_card *card, const char *org_id,
		       const struct campaign *cp, int64_t at_us, struct campaign_estimate *out)
	__attribute__((warn_unused_result));

/* Start campaign id of org_id now: state check, template APPROVED, the
 * estimate within budget, then recipients materialised and the status
 * set (running, or scheduled). est (may be NULL) gets the estimate.
 * 0 and *out as it now is, 1, CAMPAIGNS_INVALID_STATE, _TEMPLATE_NOT_APPROVED,
 * _BUDGET_EXCEEDED, _NO_RATE, < 0. */
int campaigns_start(struct db_conn *c, const struct pricing_card *card, const char *org_id,
		    const char *id, int64_t now, struct campaign *out,
		    struct campaign_estimate *est) __attribute__((warn_unused_result));

/* Pause, resume or cancel (cancel also turns pending recipients into
 * skipped). 0 and *out (caller releases), 1, CAMPAIGNS_INVALID_STATE, < 0. */
int campaigns_transition(struct db_conn *c, const char *org_id, const char *id,
			 enum campaign_action action, int64_t now, struct campaign *out)
	__attribute__((warn_unused_result));

struct campaign_counters {
	int64_t total, queued, sent, delivered, read, failed, skipped;
	int64_t actual_cost;        /* micro-units, priced messages */
};

/* Derived counters of campaign id (of org_id). 0 or < 0. */
int campaigns_counters(struct db_conn *c, const char *org_id, const char *id,
		       struct campaign_counters *out) __attribute__((warn_unused_result));

struct campaign_recipient {
	char id[37];
	char contact_id[37];
	char phone[24];
	char status[12];            /* furthest state, message status included */
	char message_id[37];        /* "" = null */
	char wamid[257];            /* "" = null */
	bool has_error_code;
	int64_t error_code;
	char error_message[256];
	int64_t attempts;
	bool has_cost;
	int64_t cost;
	int64_t created_at;
};

/* Recipients of campaign id (of org_id; the caller checked it exists),
 * newest first, keyset paged; status (NULL = all) filters on the furthest
 * state. *out malloc'd (free()). 0 or < 0. */
int campaigns_recipients(struct db_conn *c, const char *org_id, const char *id,
			 const char *status, int limit, int64_t after_at, const char *after_id,
			 struct campaign_recipient **out, int *n)
	__attribute__((warn_unused_result));

#endif
