/* conversations: the shared inbox's threads. One conversation joins a
 * contact and one of the organization's WhatsApp numbers; at most one is
 * OPEN per (contact, number) (partial unique index in 0007_messaging.sql).
 * Closing is not the end of the thread: the next inbound message (the
 * webhook processor) or an outbound send to the same (contact, number)
 * REOPENS the most recent closed conversation (same id, its messages, its
 * assignee), so an agent sees the customer's history in one place; a new
 * conversation is opened only for a pair that never had one. The
 * customer-service window belongs to the pair, so it survives closing.
 *
 * Design note
 * - window_expires_at is the end of Meta's customer-service window (last
 *   inbound message + 24 h), kept by the webhook processor. Free-form text
 *   may be sent only while it is in the future (send.h checks it).
 * - Lists are ordered by most recent activity: COALESCE(last_message_at,
 *   created_at) DESC, id DESC (a conversation opened by a send before any
 *   message has only created_at), keyset paged on that pair. The index
 *   conversations_org_activity_idx (migration 0012) is on that very
 *   expression, so a page walks limit + 1 index entries instead of
 *   sorting the org's conversations; unread_count is a counter kept on the
 *   row (the webhook processor adds, conversations_mark_read zeroes it),
 *   never counted from messages. bench/conversations.sh measures it.
 * - Reading: GET /conversations/{id}/messages marks the conversation read
 *   (unread_count = 0, conversations_mark_read), which is what an inbox
 *   user expects when they open a thread. GET /conversations/{id} does not.
 * - Every function takes the organization id and puts it in the WHERE
 *   clause; another org's id, or an id that is not a UUID, is "not found".
 *
 * Return convention: 0 ok / found, 1 not found, CONV_BAD_USER (2) where
 * documented, < 0 a db_status. */
#ifndef PYTAKE_CONVERSATIONS_H
#define PYTAKE_CONVERSATIONS_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

#define CONV_BAD_USER 2

#define CONV_NAME_MAX 256
#define CONV_WA_ID_MAX 32
#define CONV_BSUID_MAX 128

struct conversation {
	char id[37];
	char organization_id[37];
	char whatsapp_number_id[37];
	char status[8];                 /* "open" | "closed" */
	char assigned_to[37];           /* "" = nobody */
	int64_t last_message_at;        /* 0 = none */
	int64_t last_inbound_at;        /* 0 = none */
	int64_t window_expires_at;      /* 0 = never opened */
	int64_t unread_count;
	int64_t created_at, updated_at;
	/* the contact, joined */
	char contact_id[37];
	char contact_name[CONV_NAME_MAX + 1];  /* "" = null */
	char contact_wa_id[CONV_WA_ID_MAX + 1]; /* "" = null */
	char contact_bsuid[CONV_BSUID_MAX + 1]; /* "" = null */
};

/* The activity time lists order by: last_message_at, else created_at. */
int64_t conversation_sort_at(const struct conversation *cv);

/* True while the customer-service window is open at now_us. */
bool conversation_window_open(const struct conversation *cv, int64_t now_us);

/* The conversation as the API shows it: {id, whatsapp_number_id, status,
 * assigned_to, contact: {id, name, phone, bsuid}, last_message_at,
 * last_inbound_at, window_expires_at, unread_count, created_at,
 * updated_at} (phone is the contact's wa_id). New reference; NULL on out
 * of memory. */
json_t *conversation_json(const struct conversation *cv);

/* 0 found (*out filled), 1 not found, < 0 db_status. */
int conversations_find(struct db_conn *c, const char *org_id, const char *id,
		       struct conversation *out) __attribute__((warn_unused_result));

/* The conversation a message of (contact_id, number_id) belongs to: the
 * open one, else the most recent closed one (index conversations_pair_idx,
 * migration 0013). 0, 1 none, < 0. */
int conversations_find_current(struct db_conn *c, const char *org_id, const char *contact_id,
			       const char *number_id, struct conversation *out)
	__attribute__((warn_unused_result));

/* The open conversation of (contact_id, number_id): the current one
 * (above), reopened when it was closed, or one opened at now (no window,
 * nothing unread) when the pair never had one. Both ids must belong to
 * org_id (the caller checked). Its id into id_out; DB_OK, or < 0
 * db_status (DB_ERR_CONFLICT when a concurrent transaction opened one
 * first). The one opener of conversations: the webhook processor's
 * inbound messages and sends (below) both go through it. */
int conversations_open_id(struct db_conn *c, const char *org_id, const char *contact_id,
			  const char *number_id, int64_t now, char id_out[37])
	__attribute__((warn_unused_result));

/* conversations_open_id, then the conversation read back into *out.
 * 0 or < 0 db_status. */
int conversations_open(struct db_conn *c, const char *org_id, const char *contact_id,
		       const char *number_id, struct conversation *out)
	__attribute__((warn_unused_result));

/* List filters; NULL = not filtered. assigned_to / number_id that are not
 * UUIDs match nothing. */
struct conversation_filter {
	const char *status;       /* "open" | "closed" */
	const char *assigned_to;  /* user id */
	const char *number_id;    /* whatsapp_number_id */
};

/* Conversations of org_id matching f, most recent activity first: up to
 * limit rows strictly after (after_at, after_id) in that order. *out is a
 * malloc'd array of *n rows (free with free(); NULL when none). 0 or a
 * db_status. */
int conversations_list(struct db_conn *c, const char *org_id,
		       const struct conversation_filter *f, int limit, int64_t after_at,
		       const char *after_id, struct conversation **out, int *n)
	__attribute__((warn_unused_result));

/* Assign conversation id of org_id to user_id, which must be an ACTIVE
 * user of the same org. before / after (may be NULL) get the row as it
 * was / is. 0, 1 (no such conversation), CONV_BAD_USER (no such active
 * user in org_id), < 0 db_status. */
int conversations_assign(struct db_conn *c, const char *org_id, const char *id,
			 const char *user_id, struct conversation *before,
			 struct conversation *after) __attribute__((warn_unused_result));

/* Close conversation id of org_id (closing a closed one changes nothing
 * and succeeds). before / after as above. 0, 1, < 0. */
int conversations_close(struct db_conn *c, const char *org_id, const char *id,
			struct conversation *before, struct conversation *after)
	__attribute__((warn_unused_result));

/* unread_count = 0. 0, 1, < 0. */
int conversations_mark_read(struct db_conn *c, const char *org_id, const char *id)
	__attribute__((warn_unused_result));

/* last_message_at = at (only forward) after an outbound message. 0, 1, < 0. */
int conversations_touch(struct db_conn *c, const char *org_id, const char *id, int64_t at)
	__attribute__((warn_unused_result));

#endif
