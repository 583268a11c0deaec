/* webhook_apply: the database effects of parsed webhook changes, for the
 * webhook processor (internal to src/jobs; see webhook_processor.h for the
 * design). Every function runs on c inside the processor's transaction,
 * is idempotent, and returns 0 or a negative db_status (the batch is then
 * rolled back and retried). Tenant data is always written with the
 * organization id of the number the change was routed to. */
#ifndef PYTAKE_WEBHOOK_APPLY_H
#define PYTAKE_WEBHOOK_APPLY_H
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "domain/numbers.h"
#include "meta/webhook_parse.h"

#define WH_WINDOW_US (24LL * 3600 * 1000000) /* customer service window */

/* What one set query learnt about the outbound messages that a window of
 * statuses names (wh_known_fetch), so applying a status needs no answer
 * from the database: a known wamid gets its UPDATE, an unknown one its
 * pending_statuses row, both queued in the processor's pipeline; only a
 * billable status of a message not priced yet waits for the costs module.
 * The wamid strings are borrowed from the parsed events, which must
 * outlive the set. Messages are not made by the processor (inbound ones
 * never take statuses), so the set stays true during the batch; one made
 * by a send that commits meanwhile gets its status kept as pending, which
 * the send (webhook_apply_pending) or the processor's sweep applies. */
struct wh_known_entry {
	const char *wamid;
	bool exists;    /* an outbound message has this wamid */
	bool unpriced;  /* ... and priced_at IS NULL */
	uint8_t kept;   /* bit 1 << wh_status_kind: a pending row is held back */
};
/* A status held back to be written with others (wh_known_flush). */
struct wh_keep {
	const char *wamid, *status; /* borrowed, as the set's wamids */
	char org_id[37];
	int64_t status_at, received_at;
	char *payload;              /* malloc'd */
};
/* The set also holds back the pending_statuses rows of unknown wamids, so
 * they go in a few multi-row INSERTs (wh_known_flush) instead of one
 * statement each; the processor flushes before the window ends, and
 * wh_apply_messages before an inbound message (which reads that table). */
struct wh_known {
	struct wh_known_entry *v; /* sorted by wamid, unique */
	size_t n, cap;
	struct wh_keep *keep;
	size_t nkeep, keep_cap;
};

/* Add the statuses' wamids of ch (before wh_known_fetch). 0 or DB_ERR
 * (no memory). */
int wh_known_add(struct wh_known *k, const struct wh_change *ch)
	__attribute__((warn_unused_result));
/* Sort, deduplicate and look every wamid up (one pipelined round trip).
 * 0 or a db_status. */
int wh_known_fetch(struct db_conn *c, struct wh_known *k) __attribute__((warn_unused_result));
/* Write the held-back statuses (queued multi-row INSERTs, ON CONFLICT DO
 * NOTHING). 0 or a db_status. */
int wh_known_flush(struct db_conn *c, struct wh_known *k) __attribute__((warn_unused_result));
/* Empty the set, dropping what was not flushed (keeps its memory);
 * wh_known_free releases it. */
void wh_known_clear(struct wh_known *k);
void wh_known_free(struct wh_known *k);

/* Inbound messages (contacts, conversations, messages, opt-out keywords)
 * and statuses of a "messages" change routed to number n. known (may be
 * NULL: every status asks the database) holds the statuses' wamids. */
int wh_apply_messages(struct db_conn *c, const struct wa_number *n,
		      const struct wh_change *ch, const char *opt_out_keywords, int64_t now,
		      struct wh_known *known)
	__attribute__((warn_unused_result));

/* user_preferences (marketing stop/resume) routed to number n. */
int wh_apply_preferences(struct db_conn *c, const struct wa_number *n,
			 const struct wh_change *ch, int64_t now)
	__attribute__((warn_unused_result));

/* A template status/quality/category change for the templates of number n
 * (one of the WABA's numbers). *matched gets the rows changed. */
int wh_apply_template(struct db_conn *c, const struct wa_number *n,
		      const struct wh_change *ch, int64_t now, int64_t *matched)
	__attribute__((warn_unused_result));

/* A phone_number_quality_update for number n (a number of the WABA whose
 * display number matches, or any when the event names none). */
int wh_apply_phone_quality(struct db_conn *c, const struct wa_number *n,
			   const struct wh_change *ch, int64_t now)
	__attribute__((warn_unused_result));

/* Does the event's display number (any punctuation) name number n? True
 * when the event gives none. */
bool wh_display_matches(const struct wa_number *n, const char *display);

/* See webhook_apply_pending in webhook_processor.h. */
int wh_apply_pending(struct db_conn *c, const char *wamid)
	__attribute__((warn_unused_result));

#endif
