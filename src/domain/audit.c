/* audit: the audit log store.
 *
 * Design note: audit_record runs on the caller's connection, inside the
 * caller's transaction, so the row commits or rolls back with the change it
 * describes. The changes object is copied, then every top-level key that
 * looks like a secret (password, token, secret, key, hash — any case, as a
 * substring) is dropped before it is serialized: callers should never put
 * one there, and this is the last guard. */
#include "domain/audit.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/rows.h"
#include "http/http.h"

void audit_entry_from_request(struct audit_entry *e, const struct http_request *req)
{
	bool authed = req->auth.authenticated;
	e->org_id = authed && req->auth.org_id[0] ? req->auth.org_id : NULL;
	e->user_id = authed && req->auth.user_id[0] ? req->auth.user_id : NULL;
	e->ip = req->client_ip;
	e->request_id = req->request_id;
}

/* Case-insensitive substring search (ASCII). */
static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p; p++) {
		size_t i = 0;
		while (i < n && p[i] &&
		       tolower((unsigned char)p[i]) == (unsigned char)needle[i])
			i++;
		if (i == n)
			return true;
	}
	return false;
}

static bool is_secret_key(const char *key)
{
	static const char *const words[] = { "password", "token", "secret", "key",
					     "hash" };
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (contains_ci(key, words[i]))
			return true;
	return false;
}

/* A copy of changes without secret-looking keys; NULL on out of memory. */
static json_t *safe_changes(const json_t *changes)
{
	json_t *out = json_object();
	if (!out || !changes || !json_is_object(changes))
		return out;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)changes, key, val) {
		if (is_secret_key(key))
			continue;
		if (json_object_set(out, key, val) != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

int audit_record(struct db_conn *c, const struct audit_entry *e)
{
	int rc = DB_ERR;
	char id[UUID_STR_LEN];
	char *text = NULL;
	json_t *clean = NULL;

	if (!e->org_id || !e->action || !e->table_name)
		goto out;
	if (uuid_v7_str(id) != 0)
		goto out;
	clean = safe_changes(e->changes);
	if (!clean)
		goto out;
	text = json_dumps(clean, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		goto out;
	struct db_param p[] = {
		DBP_TEXT(id),        DBP_TEXT(e->org_id),     DBP_TEXT(e->user_id),
		DBP_TEXT(e->action), DBP_TEXT(e->table_name), DBP_TEXT(e->record_id),
		DBP_TEXT(text),      DBP_TEXT(e->ip),         DBP_TEXT(e->request_id),
		DBP_INT(time_now_us()),
	};
	rc = db_exec(c,
		     "INSERT INTO audit_logs (id, organization_id, user_id, action, "
		     "table_name, record_id, changes, ip, request_id, created_at) "
		     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
		     p, 10, NULL, NULL);
out:
	free(text);
	json_decref(clean);
	return rc;
}

static void add_pair(json_t *changes, const char *field, json_t *old_v, json_t *new_v)
{
	json_t *pair = json_pack("[oo]", old_v ? old_v : json_null(),
				 new_v ? new_v : json_null());
	if (pair)
		json_object_set_new(changes, field, pair);
}

void audit_change_str(json_t *changes, const char *field, const char *old_v,
		      const char *new_v)
{
	if (!changes)
		return;
	if ((old_v == NULL) == (new_v == NULL) && (!old_v || !strcmp(old_v, new_v)))
		return;
	add_pair(changes, field, old_v ? json_string(old_v) : NULL,
		 new_v ? json_string(new_v) : NULL);
}

void audit_change_int(json_t *changes, const char *field, int64_t old_v,
		      int64_t new_v)
{
	if (!changes || old_v == new_v)
		return;
	add_pair(changes, field, json_integer((json_int_t)old_v),
		 json_integer((json_int_t)new_v));
}

void audit_change_bool(json_t *changes, const char *field, bool old_v, bool new_v)
{
	if (!changes || old_v == new_v)
		return;
	add_pair(changes, field, json_boolean(old_v), json_boolean(new_v));
}

/* ---- reading -------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void audit_row_from(const struct db_res *r, int i, void *elem)
{
	struct audit_row *row = elem;
	str_copy(row->id, sizeof row->id, db_get_text(r, i, 0));
	str_copy(row->user_id, sizeof row->user_id, db_get_text(r, i, 1));
	str_copy(row->action, sizeof row->action, db_get_text(r, i, 2));
	str_copy(row->table_name, sizeof row->table_name, db_get_text(r, i, 3));
	row->record_id = dup_or_null(db_get_text(r, i, 4));
	const char *ch = db_get_text(r, i, 5);
	row->changes = ch ? json_loads(ch, 0, NULL) : NULL;
	if (!row->changes)
		row->changes = json_object();
	row->ip = dup_or_null(db_get_text(r, i, 6));
	row->request_id = dup_or_null(db_get_text(r, i, 7));
	row->created_at = db_get_int(r, i, 8);
}

static void audit_build_query(struct sqlbuf *b, const char *org_id,
			      const struct audit_filter *f, int limit,
			      int64_t after_at, const char *after_id)
{
	sqlbuf_add(b, "SELECT id, user_id, action, table_name, record_id, changes, ip, "
		      "request_id, created_at FROM audit_logs WHERE TRUE");
	sqlbuf_cond(b, " AND organization_id = ", DBP_TEXT(org_id), "");
	sqlbuf_eq(b, "table_name", f->table_name);
	sqlbuf_eq(b, "user_id", f->user_id);
	sqlbuf_eq(b, "action", f->action);
	sqlbuf_eq(b, "record_id", f->record_id);
	if (f->has_from)
		sqlbuf_cond(b, " AND created_at >= ", DBP_INT(f->from_us), "");
	if (f->has_to)
		sqlbuf_cond(b, " AND created_at <= ", DBP_INT(f->to_us), "");
	/* lets the index bound it */
	sqlbuf_cond(b, " AND created_at <= ", DBP_INT(after_at), "");
	sqlbuf_page_desc(b, "created_at", "id", after_at, after_id, limit);
}

int audit_list(struct db_conn *c, const char *org_id, const struct audit_filter *f,
	       int limit, int64_t after_at, const char *after_id,
	       struct audit_row **out, int *n)
{
	struct sqlbuf b = SQLBUF_INIT;
	void *rows = NULL;

	audit_build_query(&b, org_id, f, limit, after_at, after_id);
	int rc = rows_select_sqlbuf(c, &b, sizeof **out, audit_row_from, &rows, n);
	if (rc == DB_OK)
		*out = rows;
	return rc;
}

void audit_rows_free(struct audit_row *rows, int n)
{
	if (!rows)
		return;
	for (int i = 0; i < n; i++) {
		free(rows[i].record_id);
		free(rows[i].ip);
		free(rows[i].request_id);
		json_decref(rows[i].changes);
	}
	free(rows);
}
