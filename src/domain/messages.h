/* messages: inbound and outbound WhatsApp messages of an organization.
 *
 * Design note
 * - Inbound rows are written by the webhook processor; this module reads
 *   them and writes the OUTBOUND side of a send (send.h): a row is
 *   inserted 'queued' (no wamid) before Meta is called, then marked 'sent'
 *   with Meta's wamid, or 'failed' with Meta's error code and message.
 *   Status webhooks move it further (webhook processor).
 * - messages_set_sent / messages_set_failed only act on a row that is still
 *   'queued', so a status webhook that got there first is never undone.
 * - A conversation's messages are listed OLDEST first (API.md), keyset
 *   paged on (created_at ASC, id ASC).
 * - Every function takes the organization id and puts it in the WHERE
 *   clause; another org's id, or an id that is not a UUID, is "not found".
 *
 * Return convention: 0 ok / found, 1 not found, < 0 a db_status. */
#ifndef PYTAKE_MESSAGES_H
#define PYTAKE_MESSAGES_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

#define MESSAGES_TEXT_MAX 4096      /* Meta's limit on a text body */
#define MESSAGES_ERR_MSG_MAX 512

struct message {
	char id[37];
	char organization_id[37];
	char conversation_id[37];
	char whatsapp_number_id[37];
	char contact_id[37];
	char direction[10];            /* "inbound" | "outbound" */
	char type[32];
	char *text;                    /* malloc'd; NULL = null */
	json_t *content;               /* owned; NULL = null */
	char status[12];
	char wamid[257];               /* "" = null */
	bool has_error_code;
	int64_t error_code;
	char error_message[MESSAGES_ERR_MSG_MAX + 1]; /* "" = null */
	int64_t created_at, sent_at, delivered_at, read_at, failed_at; /* 0 = null */
	bool has_cost;
	int64_t cost_micros;           /* micro-units of currency */
	char currency[8];              /* "" = null */
	char pricing_category[64];     /* "" = null */
};

/* Free text and content and zero m. NULL is a no-op. */
void message_release(struct message *m);
/* Release each of n rows of a malloc'd array, then free it. */
void messages_free(struct message *rows, int n);

/* The message as API.md shows it: {id, conversation_id, direction, type,
 * text, content, status, wamid, error_code, error_message, created_at,
 * sent_at, delivered_at, read_at, failed_at, cost (exact decimal string),
 * currency, pricing_category}; absent values are null. New reference;
 * NULL on out of memory. */
json_t *message_json(const struct message *m);

/* 0 found (*out filled; caller releases), 1, < 0. */
int messages_find(struct db_conn *c, const char *org_id, const char *id,
		  struct message *out) __attribute__((warn_unused_result));

/* Messages of conversation conv_id (of org_id), oldest first: up to limit
 * rows strictly after (after_at, after_id) in (created_at, id) order;
 * after_id NULL = from the start. *out is a malloc'd array of *n rows
 * (free with messages_free; NULL when none). 0 or a db_status. */
int messages_list_by_conversation(struct db_conn *c, const char *org_id, const char *conv_id,
				  int limit, int64_t after_at, const char *after_id,
				  struct message **out, int *n)
	__attribute__((warn_unused_result));

/* What messages_create_outbound inserts; strings borrowed. */
struct message_new {
	const char *conversation_id, *whatsapp_number_id, *contact_id;
	const char *type;           /* "text" | "template" */
	const char *text;           /* text body, or NULL */
	const json_t *content;      /* the type's object (may be NULL) */
};

/* Insert an outbound 'queued' message for org_id (ids were checked by the
 * caller) created now; *out is the row as stored (caller releases).
 * 0 or a db_status. */
int messages_create_outbound(struct db_conn *c, const char *org_id,
			     const struct message_new *in, struct message *out)
	__attribute__((warn_unused_result));

/* Queued message id of org_id got Meta's wamid: status 'sent', sent_at =
 * at. 0 done, 1 not found or no longer queued, < 0 (DB_ERR_CONFLICT: the
 * wamid is already taken). */
int messages_set_sent(struct db_conn *c, const char *org_id, const char *id,
		      const char *wamid, int64_t at) __attribute__((warn_unused_result));

/* Queued message id of org_id failed at Meta: status 'failed', failed_at =
 * at, error_code (has_code false = null) and error_message (NULL = null).
 * 0, 1 (not found or no longer queued), < 0. */
int messages_set_failed(struct db_conn *c, const char *org_id, const char *id,
			bool has_code, int64_t code, const char *message, int64_t at)
	__attribute__((warn_unused_result));

#endif
