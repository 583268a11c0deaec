/* webhook_apply: the database effects of parsed webhook changes, for the
 * webhook processor (internal to src/jobs; see webhook_processor.h for the
 * design). Every function runs on c inside the processor's transaction,
 * is idempotent, and returns 0 or a negative db_status (the batch is then
 * rolled back and retried). Tenant data is always written with the
 * organization id of the number the change was routed to. */
#ifndef PYTAKE_WEBHOOK_APPLY_H
#define PYTAKE_WEBHOOK_APPLY_H
#include <stdint.h>

#include "db/db.h"
#include "domain/numbers.h"
#include "meta/webhook_parse.h"

#define WH_WINDOW_US (24LL * 3600 * 1000000) /* customer service window */

/* Inbound messages (contacts, conversations, messages, opt-out keywords)
 * and statuses of a "messages" change routed to number n. */
int wh_apply_messages(struct db_conn *c, const struct wa_number *n,
		      const struct wh_change *ch, const char *opt_out_keywords, int64_t now)
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
