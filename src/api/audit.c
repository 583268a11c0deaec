/* GET /api/v1/audit-logs (org_admin+): the caller's organization's audit
 * log, newest first, cursor-paged. Filters table_name, user_id (a UUID),
 * action, record_id, from, to (RFC 3339, both inclusive); a bad user_id,
 * from or to is 422 naming the field. */
#include "api/api.h"

#include "api/paging.h"
#include "app/app.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/audit.h"

struct list_tx {
	const char *org_id;
	struct audit_filter filter;
	struct page page;
	struct audit_row *rows;
	int n;
};

static int list_fn(struct db_conn *c, void *ctx)
{
	struct list_tx *t = ctx;
	audit_rows_free(t->rows, t->n);
	t->rows = NULL;
	t->n = 0;
	return audit_list(c, t->org_id, &t->filter, t->page.limit + 1, t->page.after_at,
			  t->page.after_id, &t->rows, &t->n);
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *row_json(const struct audit_row *r)
{
	return json_pack("{s:s, s:o, s:o, s:s, s:s, s:o, s:O, s:o, s:o}", "id", r->id,
			 "created_at", api_time_json(r->created_at), "user_id",
			 str_or_null(r->user_id), "action", r->action, "table_name",
			 r->table_name, "record_id", str_or_null(r->record_id), "changes",
			 r->changes, "ip", str_or_null(r->ip), "request_id",
			 str_or_null(r->request_id));
}

static bool time_filter(struct http_request *req, json_t *details, const char *name,
			bool *has, int64_t *out)
{
	const char *s = http_query(req, name);
	if (!s)
		return true;
	if (!time_parse_rfc3339(s, out)) {
		json_array_append_new(details,
				      json_pack("{s:s, s:s}", "field", name, "message",
						"must be an RFC 3339 timestamp such as "
						"2026-11-29T10:00:00Z"));
		return false;
	}
	*has = true;
	return true;
}

/* Read the filters; false after answering 422. */
static bool parse_filter(struct http_request *req, struct http_response *res,
			 struct audit_filter *f)
{
	json_t *details = json_array();
	f->table_name = http_query(req, "table_name");
	f->action = http_query(req, "action");
	f->record_id = http_query(req, "record_id");
	f->user_id = http_query(req, "user_id");
	if (f->user_id && !uuid_is_valid(f->user_id))
		json_array_append_new(details, json_pack("{s:s, s:s}", "field", "user_id",
							 "message", "must be a UUID"));
	time_filter(req, details, "from", &f->has_from, &f->from_us);
	time_filter(req, details, "to", &f->has_to, &f->to_us);
	if (json_array_size(details) > 0) {
		http_error(res, 422, "validation_error", "invalid query parameter", details);
		return false;
	}
	json_decref(details);
	if (f->user_id) { /* stored lower-case */
		char *low = arena_strdup(req->arena, f->user_id);
		for (char *p = low; p && *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p + ('a' - 'A'));
		f->user_id = low;
	}
	return true;
}

void api_audit_list(struct http_request *req, struct http_response *res)
{
	struct list_tx t = { .org_id = req->auth.org_id };
	if (!parse_filter(req, res, &t.filter) || !page_from_request(req, res, &t.page))
		return;
	int rc = db_tx(req->app->db, false, list_fn, &t);
	if (rc != DB_OK) {
		api_answer_db_error(res, rc);
		goto out;
	}
	json_t *items = json_array();
	int kept = t.n > t.page.limit ? t.page.limit : t.n;
	for (int i = 0; i < kept; i++)
		json_array_append_new(items, row_json(&t.rows[i]));
	const struct audit_row *last = kept > 0 ? &t.rows[kept - 1] : NULL;
	http_json(res, 200,
		  page_answer(req->arena, items, t.n, &t.page, last ? last->created_at : 0,
			      last ? last->id : ""));
out:
	audit_rows_free(t.rows, t.n);
}
