#include "domain/conversations.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/rows.h"

#define CONV_COLS                                                                  \
	"cv.id, cv.organization_id, cv.whatsapp_number_id, cv.status, "             \
	"cv.assigned_to, COALESCE(cv.last_message_at, 0), "                         \
	"COALESCE(cv.last_inbound_at, 0), COALESCE(cv.window_expires_at, 0), "      \
	"cv.unread_count, cv.created_at, cv.updated_at, "                           \
	"ct.id, ct.name, ct.wa_id, ct.bsuid "

#define CONV_FROM " FROM conversations cv JOIN contacts ct ON ct.id = cv.contact_id "

/* COALESCE(last_message_at, created_at): the list's sort key. */
#define CONV_SORT "COALESCE(cv.last_message_at, cv.created_at)"

static void conv_from_row(const struct db_res *r, int row, void *elem)
{
	struct conversation *cv = elem;
	memset(cv, 0, sizeof *cv);
	str_copy(cv->id, sizeof cv->id, db_get_text(r, row, 0));
	str_copy(cv->organization_id, sizeof cv->organization_id, db_get_text(r, row, 1));
	str_copy(cv->whatsapp_number_id, sizeof cv->whatsapp_number_id,
		 db_get_text(r, row, 2));
	str_copy(cv->status, sizeof cv->status, db_get_text(r, row, 3));
	str_copy(cv->assigned_to, sizeof cv->assigned_to, db_get_text(r, row, 4));
	cv->last_message_at = db_get_int(r, row, 5);
	cv->last_inbound_at = db_get_int(r, row, 6);
	cv->window_expires_at = db_get_int(r, row, 7);
	cv->unread_count = db_get_int(r, row, 8);
	cv->created_at = db_get_int(r, row, 9);
	cv->updated_at = db_get_int(r, row, 10);
	str_copy(cv->contact_id, sizeof cv->contact_id, db_get_text(r, row, 11));
	str_copy(cv->contact_name, sizeof cv->contact_name, db_get_text(r, row, 12));
	str_copy(cv->contact_wa_id, sizeof cv->contact_wa_id, db_get_text(r, row, 13));
	str_copy(cv->contact_bsuid, sizeof cv->contact_bsuid, db_get_text(r, row, 14));
}

int64_t conversation_sort_at(const struct conversation *cv)
{
	return cv->last_message_at > 0 ? cv->last_message_at : cv->created_at;
}

bool conversation_window_open(const struct conversation *cv, int64_t now_us)
{
	return cv->window_expires_at > now_us;
}

json_t *conversation_json(const struct conversation *cv)
{
	json_t *contact = json_pack("{s:s, s:o, s:o, s:o}", "id", cv->contact_id, "name",
				    json_str_or_null(cv->contact_name), "phone",
				    json_str_or_null(cv->contact_wa_id), "bsuid",
				    json_str_or_null(cv->contact_bsuid));
	if (!contact)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o}", "id",
			 cv->id, "whatsapp_number_id", cv->whatsapp_number_id, "status",
			 cv->status, "assigned_to", json_str_or_null(cv->assigned_to), "contact",
			 contact, "last_message_at", json_time_or_null(cv->last_message_at),
			 "last_inbound_at", json_time_or_null(cv->last_inbound_at),
			 "window_expires_at", json_time_or_null(cv->window_expires_at),
			 "unread_count", (json_int_t)cv->unread_count, "created_at",
			 json_time_or_null(cv->created_at), "updated_at",
			 json_time_or_null(cv->updated_at));
}

/* Run a query returning CONV_COLS rows; 0 with *out = first row, 1 none. */
static int find_one(struct db_conn *c, const char *sql, const struct db_param *p, int np,
		    struct conversation *out)
{
	return rows_first(c, sql, p, np, sizeof *out, conv_from_row, out);
}

int conversations_find(struct db_conn *c, const char *org_id, const char *id,
		       struct conversation *out)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	return find_one(c,
			"SELECT " CONV_COLS CONV_FROM
			"WHERE cv.organization_id = $1 AND cv.id = $2",
			p, 2, out);
}

int conversations_find_current(struct db_conn *c, const char *org_id, const char *contact_id,
			       const char *number_id, struct conversation *out)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(contact_id) || !uuid_is_valid(number_id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(contact_id), DBP_TEXT(number_id) };
	return find_one(c,
			"SELECT " CONV_COLS CONV_FROM
			"WHERE cv.organization_id = $1 AND cv.contact_id = $2 "
			"AND cv.whatsapp_number_id = $3 "
			"ORDER BY CASE WHEN cv.status = 'open' THEN 0 ELSE 1 END, "
			"cv.created_at DESC, cv.id DESC LIMIT 1",
			p, 3, out);
}

int conversations_open_id(struct db_conn *c, const char *org_id, const char *contact_id,
			  const char *number_id, int64_t now, char id_out[37])
{
	struct db_res *r = NULL;
	const struct db_param q[] = { DBP_TEXT(org_id), DBP_TEXT(contact_id),
				      DBP_TEXT(number_id), DBP_INT(now) };
	int rc = db_exec(c,
			 "SELECT id, status FROM conversations WHERE organization_id = $1"
			 " AND contact_id = $2 AND whatsapp_number_id = $3"
			 " ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END,"
			 " created_at DESC, id DESC LIMIT 1",
			 q, 3, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) == 1) {
		snprintf(id_out, 37, "%s", db_get_text(r, 0, 0));
		if (strcmp(db_get_text(r, 0, 1), "open") == 0)
			goto out;
		/* reopen the most recent closed one; a concurrent opener makes
		 * this a unique violation (DB_ERR_CONFLICT) */
		const struct db_param u[] = { DBP_TEXT(org_id), DBP_TEXT(id_out), DBP_INT(now) };
		rc = db_exec(c,
			     "UPDATE conversations SET status = 'open', updated_at = $3"
			     " WHERE organization_id = $1 AND id = $2 AND status = 'closed'",
			     u, 3, NULL, NULL);
		goto out;
	}
	if (uuid_v7_str(id_out) != 0) {
		rc = DB_ERR;
		goto out;
	}
	const struct db_param p[] = { DBP_TEXT(id_out), DBP_TEXT(org_id), DBP_TEXT(contact_id),
				      DBP_TEXT(number_id), DBP_INT(now) };
	rc = db_exec(c,
		     "INSERT INTO conversations (id, organization_id, contact_id,"
		     " whatsapp_number_id, status, unread_count, created_at, updated_at)"
		     " VALUES ($1, $2, $3, $4, 'open', 0, $5, $5)",
		     p, 5, NULL, NULL);
out:
	db_res_free(r);
	return rc;
}

int conversations_open(struct db_conn *c, const char *org_id, const char *contact_id,
		       const char *number_id, struct conversation *out)
{
	char id[37];
	if (!uuid_is_valid(org_id) || !uuid_is_valid(contact_id) || !uuid_is_valid(number_id))
		return DB_ERR;
	int rc = conversations_open_id(c, org_id, contact_id, number_id, time_now_us(), id);
	if (rc != DB_OK)
		return rc;
	rc = conversations_find(c, org_id, id, out);
	return rc == 1 ? DB_ERR : rc;
}

/* The list SQL for the filters present (status, assigned_to, number):
 * only the conditions that apply rather than "($k IS NULL OR col = $k)",
 * which PostgreSQL cannot type; at most 8 texts, each prepared once. */
static void build_list_query(struct sqlbuf *b, const char *org_id,
			     const struct conversation_filter *f, int limit, int64_t after_at,
			     const char *after_id)
{
	sqlbuf_add(b, "SELECT " CONV_COLS CONV_FROM "WHERE TRUE");
	sqlbuf_cond(b, " AND cv.organization_id = ", DBP_TEXT(org_id), "");
	sqlbuf_eq(b, "cv.status", f->status);
	sqlbuf_eq(b, "cv.assigned_to", f->assigned_to);
	sqlbuf_eq(b, "cv.whatsapp_number_id", f->number_id);
	sqlbuf_page_desc(b, CONV_SORT, "cv.id", after_at,
			 after_id ? after_id : "ffffffff-ffff-ffff-ffff-ffffffffffff", limit);
}

int conversations_list(struct db_conn *c, const char *org_id,
		       const struct conversation_filter *f, int limit, int64_t after_at,
		       const char *after_id, struct conversation **out, int *n)
{
	struct sqlbuf b = SQLBUF_INIT;
	void *rows = NULL;

	*out = NULL;
	*n = 0;
	if ((f->assigned_to && !uuid_is_valid(f->assigned_to)) ||
	    (f->number_id && !uuid_is_valid(f->number_id)) || !uuid_is_valid(org_id))
		return DB_OK;
	build_list_query(&b, org_id, f, limit, after_at, after_id);
	int rc = rows_select_sqlbuf(c, &b, sizeof **out, conv_from_row, &rows, n);
	if (rc == DB_OK)
		*out = rows;
	return rc;
}

/* True when user_id is an active user of org_id. */
static int user_active_in_org(struct db_conn *c, const char *org_id, const char *user_id)
{
	if (!uuid_is_valid(user_id))
		return 0;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(user_id), DBP_BOOL(true) };
	struct db_res *r = NULL;
	int rc = db_exec(c,
			 "SELECT 1 FROM users WHERE organization_id = $1 AND id = $2 "
			 "AND is_active = $3",
			 p, 3, &r, NULL);
	if (rc != DB_OK)
		return rc;
	rc = db_rows(r) > 0 ? 1 : 0;
	db_res_free(r);
	return rc;
}

/* Run an UPDATE on conversation id (params $1 org, $2 id, $3 now, extra
 * from $4), with before/after snapshots. */
static int update_conv(struct db_conn *c, const char *org_id, const char *id,
		       const char *sql, const struct db_param *extra, int nextra,
		       struct conversation *before, struct conversation *after)
{
	struct conversation was, now_row;
	int rc = conversations_find(c, org_id, id, &was);
	if (rc != 0)
		return rc;
	struct db_param p[6] = { DBP_TEXT(org_id), DBP_TEXT(id), DBP_INT(time_now_us()) };
	for (int i = 0; i < nextra && i < 3; i++)
		p[3 + i] = extra[i];
	rc = db_exec(c, sql, p, 3 + nextra, NULL, NULL);
	if (rc != DB_OK)
		return rc;
	rc = conversations_find(c, org_id, id, &now_row);
	if (rc != 0)
		return rc == 1 ? DB_ERR : rc;
	if (before)
		*before = was;
	if (after)
		*after = now_row;
	return 0;
}

int conversations_assign(struct db_conn *c, const char *org_id, const char *id,
			 const char *user_id, struct conversation *before,
			 struct conversation *after)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct conversation cv;
	int rc = conversations_find(c, org_id, id, &cv);
	if (rc != 0)
		return rc;
	rc = user_active_in_org(c, org_id, user_id);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return CONV_BAD_USER;
	struct db_param extra[] = { DBP_TEXT(user_id) };
	return update_conv(c, org_id, id,
			   "UPDATE conversations SET assigned_to = $4, updated_at = $3 "
			   "WHERE organization_id = $1 AND id = $2",
			   extra, 1, before, after);
}

int conversations_close(struct db_conn *c, const char *org_id, const char *id,
			struct conversation *before, struct conversation *after)
{
	return update_conv(c, org_id, id,
			   "UPDATE conversations SET status = 'closed', updated_at = $3 "
			   "WHERE organization_id = $1 AND id = $2 AND status = 'open'",
			   NULL, 0, before, after);
}

/* UPDATE that touches one row of org_id: 0 done, 1 not found. */
static int exec_one(struct db_conn *c, const char *sql, const struct db_param *p, int np)
{
	int64_t affected = 0;
	int rc = db_exec(c, sql, p, np, NULL, &affected);
	if (rc != DB_OK)
		return rc;
	return affected > 0 ? 0 : 1;
}

int conversations_mark_read(struct db_conn *c, const char *org_id, const char *id)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	int rc = exec_one(c,
			  "UPDATE conversations SET unread_count = 0 "
			  "WHERE organization_id = $1 AND id = $2 AND unread_count <> 0",
			  p, 2);
	if (rc != 1)
		return rc;
	struct conversation cv;
	return conversations_find(c, org_id, id, &cv); /* 0 when already read */
}

int conversations_touch(struct db_conn *c, const char *org_id, const char *id, int64_t at)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id), DBP_INT(at) };
	int rc = exec_one(c,
			  "UPDATE conversations SET last_message_at = $3, updated_at = $3 "
			  "WHERE organization_id = $1 AND id = $2 "
			  "AND (last_message_at IS NULL OR last_message_at < $3)",
			  p, 3);
	return rc < 0 ? rc : 0; /* 1: already later, which is fine */
}
