/* Conversations of the caller's organization (API.md "Conversations and
 * messages"): reads for every role, assign/close for agents and up.
 *   GET  /api/v1/conversations                 filters status, assigned_to,
 *                                              whatsapp_number_id
 *   GET  /api/v1/conversations/{id}
 *   GET  /api/v1/conversations/{id}/messages   oldest first
 *   POST /api/v1/conversations/{id}/assign     {user_id}
 *   POST /api/v1/conversations/{id}/close
 *
 * Choices (API.md is silent):
 * - Reading a conversation's messages marks it read (unread_count = 0):
 *   that is what an inbox user expects when they open a thread.
 * - assign: user_id must be an ACTIVE user of the same organization; any
 *   other id (another org's user, a deactivated one, garbage) is 422
 *   validation_error on "user_id". user_id null unassigns.
 * - close answers 200 with the conversation, also when it was already
 *   closed (no change, no audit row then).
 * - Audit rows: action "assign" / "close" on table "conversations". */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/list.h"
#include "app/app.h"
#include "core/json.h"
#include "core/timeutil.h"
#include "domain/audit.h"
#include "domain/conversations.h"
#include "domain/messages.h"

enum { TX_NOT_FOUND = 1, TX_BAD_USER = 2 };

static const char NOT_FOUND[] = "no such conversation";

static bool tx_ok(struct http_response *res, int rc)
{
	if (rc == DB_OK)
		return true;
	if (rc == TX_NOT_FOUND)
		api_answer_not_found(res, NOT_FOUND);
	else if (rc == TX_BAD_USER)
		http_error(res, 422, "validation_error", "the request is not valid",
			   json_pack("[{s:s, s:s}]", "field", "user_id", "message",
				     "must be an active user of this organization"));
	else
		api_answer_db_error(res, rc);
	return false;
}

/* ---- GET /api/v1/conversations ------------------------------------------ */

struct conv_list {
	const char *org_id;
	struct conversation_filter filter;
	struct conversation *rows;
	int n;
};

static int conv_fetch(struct db_conn *c, void *ctx, const struct page *p, int limit, int *n)
{
	struct conv_list *l = ctx;
	free(l->rows);
	l->rows = NULL;
	int rc = conversations_list(c, l->org_id, &l->filter, limit, p->after_at, p->after_id,
				    &l->rows, &l->n);
	*n = l->n;
	return rc;
}

static json_t *conv_render(void *ctx, int i, int64_t *at, const char **id)
{
	struct conv_list *l = ctx;
	*at = conversation_sort_at(&l->rows[i]);
	*id = l->rows[i].id;
	return conversation_json(&l->rows[i]);
}

/* Read the filters; false after answering 422. */
static bool parse_filters(struct http_request *req, struct http_response *res,
			  struct conversation_filter *f)
{
	f->status = http_query(req, "status");
	f->assigned_to = http_query(req, "assigned_to");
	f->number_id = http_query(req, "whatsapp_number_id");
	if (f->status && strcmp(f->status, "open") != 0 && strcmp(f->status, "closed") != 0) {
		http_error(res, 422, "validation_error", "invalid query parameter",
			   json_pack("[{s:s, s:s}]", "field", "status", "message",
				     "must be open or closed"));
		return false;
	}
	return true;
}

void api_conversations_list(struct http_request *req, struct http_response *res)
{
	struct conv_list l = { .org_id = req->auth.org_id };
	if (!parse_filters(req, res, &l.filter))
		return;
	struct api_list list = { .fetch = conv_fetch, .render = conv_render, .ctx = &l };
	(void)api_list_answer(req, res, &list);
	free(l.rows);
}

/* ---- GET /api/v1/conversations/{id} -------------------------------------- */

struct get_tx {
	const char *org_id, *id;
	bool mark_read;
	struct conversation cv;
};

static int get_fn(struct db_conn *c, void *ctx)
{
	struct get_tx *t = ctx;
	if (t->mark_read)
		return conversations_mark_read(c, t->org_id, t->id);
	return conversations_find(c, t->org_id, t->id, &t->cv);
}

void api_conversations_get(struct http_request *req, struct http_response *res)
{
	struct get_tx t = { .org_id = req->auth.org_id };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	if (tx_ok(res, db_tx(req->app->db, false, get_fn, &t)))
		http_json(res, 200, conversation_json(&t.cv));
}

/* ---- GET /api/v1/conversations/{id}/messages ----------------------------- */

struct msg_list {
	const char *org_id, *conv_id;
	struct message *rows;
	int n;
};

static int msg_fetch(struct db_conn *c, void *ctx, const struct page *p, int limit, int *n)
{
	struct msg_list *l = ctx;
	messages_free(l->rows, l->n);
	l->rows = NULL;
	l->n = 0;
	int rc = messages_list_by_conversation(c, l->org_id, l->conv_id, limit, p->after_at,
					       p->has_cursor ? p->after_id : NULL, &l->rows,
					       &l->n);
	*n = l->n;
	return rc;
}

static json_t *msg_render(void *ctx, int i, int64_t *at, const char **id)
{
	struct msg_list *l = ctx;
	*at = l->rows[i].created_at;
	*id = l->rows[i].id;
	return message_json(&l->rows[i]);
}

void api_conversations_messages(struct http_request *req, struct http_response *res)
{
	struct get_tx t = { .org_id = req->auth.org_id, .mark_read = true };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	/* marks read first (and 404s an unknown id), then lists */
	if (!tx_ok(res, db_tx(req->app->db, true, get_fn, &t)))
		return;
	struct msg_list l = { .org_id = req->auth.org_id, .conv_id = t.id };
	struct api_list list = { .fetch = msg_fetch, .render = msg_render, .ctx = &l };
	(void)api_list_answer(req, res, &list);
	messages_free(l.rows, l.n);
}

/* ---- POST /api/v1/conversations/{id}/assign and /close ------------------- */

struct change_tx {
	const struct http_request *req;
	const char *id;
	bool close;
	const char *user_id; /* assign: NULL = unassign */
	struct conversation before, after;
};

static int audit_change(struct db_conn *c, struct change_tx *t)
{
	json_t *changes = json_object();
	audit_change_str(changes, "assigned_to", t->before.assigned_to[0] ? t->before.assigned_to : NULL,
			 t->after.assigned_to[0] ? t->after.assigned_to : NULL);
	audit_change_str(changes, "status", t->before.status, t->after.status);
	int rc = DB_OK;
	if (json_object_size(changes) > 0) {
		struct audit_entry e = { .action = t->close ? "close" : "assign",
					 .table_name = "conversations", .record_id = t->id,
					 .changes = changes };
		audit_entry_from_request(&e, t->req);
		rc = audit_record(c, &e);
	}
	json_decref(changes);
	return rc;
}

static int unassign(struct db_conn *c, struct change_tx *t)
{
	const char *org = t->req->auth.org_id;
	int rc = conversations_find(c, org, t->id, &t->before);
	if (rc != 0)
		return rc;
	struct db_param p[] = { DBP_TEXT(org), DBP_TEXT(t->id), DBP_INT(time_now_us()) };
	rc = db_exec(c,
		     "UPDATE conversations SET assigned_to = NULL, updated_at = $3 "
		     "WHERE organization_id = $1 AND id = $2",
		     p, 3, NULL, NULL);
	if (rc == DB_OK)
		rc = conversations_find(c, org, t->id, &t->after);
	return rc == 1 ? DB_ERR : rc;
}

static int change_fn(struct db_conn *c, void *ctx)
{
	struct change_tx *t = ctx;
	const char *org = t->req->auth.org_id;
	int rc;
	if (t->close)
		rc = conversations_close(c, org, t->id, &t->before, &t->after);
	else if (t->user_id)
		rc = conversations_assign(c, org, t->id, t->user_id, &t->before, &t->after);
	else
		rc = unassign(c, t);
	if (rc == CONV_BAD_USER)
		return TX_BAD_USER;
	if (rc != 0)
		return rc;
	return audit_change(c, t);
}

void api_conversations_assign(struct http_request *req, struct http_response *res)
{
	struct change_tx t = { .req = req };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	json_t *uid = json_object_get(body, "user_id");
	if (!uid) {
		http_error(res, 422, "validation_error", "the request is not valid",
			   json_pack("[{s:s, s:s}]", "field", "user_id", "message",
				     "is required"));
		goto out;
	}
	if (!json_is_null(uid) && !json_is_string(uid)) {
		http_error(res, 400, "invalid_request", "a field has the wrong JSON type",
			   json_pack("[{s:s, s:s}]", "field", "user_id", "message",
				     "must be a string or null"));
		goto out;
	}
	t.user_id = json_string_value(uid);
	if (tx_ok(res, db_tx(req->app->db, true, change_fn, &t)))
		http_json(res, 200, conversation_json(&t.after));
out:
	json_decref(body);
}

void api_conversations_close(struct http_request *req, struct http_response *res)
{
	struct change_tx t = { .req = req, .close = true };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	if (tx_ok(res, db_tx(req->app->db, true, change_fn, &t)))
		http_json(res, 200, conversation_json(&t.after));
}
