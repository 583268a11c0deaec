/* send: one outbound message, the POST /api/v1/messages flow.
 *
 * Design note
 *   1. validate and store (one short write transaction): the number must
 *      be a live number of the org; `to` is a phone (normalised to wa_id)
 *      or the BSUID of a known contact; the 24-hour rule is checked
 *      BEFORE anything is stored or sent: free text needs the open
 *      conversation's window_expires_at > now (SEND_OUTSIDE_WINDOW), a
 *      template must be the org's, of this number, and APPROVED
 *      (SEND_TEMPLATE_NOT_APPROVED), with parameters that fit it
 *      (template_send_components; SEND_BAD_PARAMETERS with details). Then
 *      the contact is found or created, the open conversation found or
 *      opened, the message inserted 'queued', the conversation's
 *      last_message_at moved, and the audit row (action "send", table
 *      "messages") written -- all in that transaction, which also reads the
 *      number's access token. A refusal rolls everything back. Losing the
 *      race to create the contact or open the conversation (unique index)
 *      reruns the transaction, which then finds the winner's row.
 *   2. the Graph call, OUTSIDE any transaction, with the number's token.
 *      Transient errors (graph_error_is_transient: 130429, 131000, 131016,
 *      5xx, timeouts, ...) are retried by the Graph client: SEND_RETRIES
 *      extra attempts with exponential backoff (SEND_BACKOFF_BASE_MS,
 *      doubling, capped at SEND_BACKOFF_MAX_MS) plus jitter, so at most 3
 *      attempts and about 1 s of waiting inside the HTTP request (plus each
 *      attempt's own Graph timeout).
 *   3. record the outcome (second short transaction): 'sent' with the
 *      wamid, then any statuses Meta reported for that wamid before we
 *      knew it (webhook_apply_pending); or 'failed' with Meta's error code
 *      and message (a transport failure has a null code and a message
 *      naming the failure).
 * A Graph failure is not an API error: the message exists and is 'failed'
 * (the API answers 202 with it).
 *
 * Return convention: SEND_OK (*out holds the stored message, status sent
 * or failed; caller releases), a positive enum send_result for a refusal
 * (nothing stored, nothing sent), or < 0 a db_status (nothing sent when it
 * happened in step 1). */
#ifndef PYTAKE_SEND_H
#define PYTAKE_SEND_H
#include <jansson.h>
#include <stdint.h>

#include "db/db.h"
#include "domain/messages.h"

struct graph_client;

#define SEND_RETRIES 2
#define SEND_BACKOFF_BASE_MS 200L
#define SEND_BACKOFF_MAX_MS 800L
#define SEND_BSUID_MAX 128

enum send_result {
	SEND_OK = 0,
	SEND_NUMBER_NOT_FOUND = 1,   /* whatsapp_number_id: not a live number of the org */
	SEND_BAD_TO,                 /* to: not a phone number nor a known BSUID */
	SEND_OUTSIDE_WINDOW,         /* free text outside the 24-hour window */
	SEND_TEMPLATE_NOT_FOUND,     /* template_id: not the org's, or of another number */
	SEND_TEMPLATE_NOT_APPROVED,  /* the template is not APPROVED */
	SEND_BAD_PARAMETERS,         /* *details says why (422) */
	SEND_BAD_PARAMETER_TYPE,     /* *details says why (400) */
	SEND_SECRET,                 /* the number's access token does not open */
	SEND_STORE_AFTER,            /* Meta answered but recording it failed:
	                                the message stays queued; *out is it */
};

enum send_type { SEND_TEXT = 1, SEND_TEMPLATE = 2 };

/* Who asks (for the audit row); strings borrowed. */
struct send_actor {
	const char *org_id;
	const char *user_id;     /* NULL for system sends */
	const char *ip, *request_id;
};

struct send_request {
	const char *number_id;       /* whatsapp_number_id */
	const char *to;              /* phone (any common spelling) or BSUID */
	enum send_type type;
	const char *text;            /* SEND_TEXT: 1..MESSAGES_TEXT_MAX chars */
	const char *template_id;     /* SEND_TEMPLATE */
	const json_t *parameters;    /* SEND_TEMPLATE: may be NULL (no variables) */
};

/* Send in for actor through graph with the numbers' key (32 bytes).
 * *to_error (may be NULL) gets a static reason for SEND_BAD_TO; *details
 * (may be NULL) gets a new array for SEND_BAD_PARAMETERS / _TYPE (caller
 * decrefs). See the design note for the rest. */
int send_message(struct db *db, struct graph_client *graph, const uint8_t key[32],
		 const struct send_actor *actor, const struct send_request *in,
		 struct message *out, const char **to_error, json_t **details)
	__attribute__((warn_unused_result));

/* Meta's request body for a message (new reference, NULL on out of
 * memory): {"messaging_product": "whatsapp", "recipient_type":
 * "individual", "to": wa_id (or "recipient": bsuid when wa_id is NULL),
 * "type": type, type: object}. */
json_t *send_graph_body(const char *wa_id, const char *bsuid, const char *type,
			const json_t *object);

#endif
