/* GET /api/v1/audit-logs (org_admin+): the caller's organization's audit
 * log, newest first, cursor-paged. Filters table_name, user_id (a UUID),
 * action, record_id, from, to (RFC 3339, both inclusive); a bad user_id,
 * from or to is 422 naming the field. */
#include "api/api.h"

#include "api/answer.h"
#include "api/list.h"
#include "app/app.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/audit.h"

struct list_ctx {
	const char *org_id;
	struct audit_filter filter;
	struct audit_row *rows;
	int n;
};

static int list_fetch(struct db_conn *c, void *arg, const struct page *p, int limit, int *n)
{
	struct list_ctx *t = arg;
	audit_rows_free(t->rows, t->n);
	t->rows = NULL;
	t->n = 0;
	int rc = audit_list(c, t->org_id, &t->filter, limit, p->after_at, p->after_id, &t->rows,
			    &t->n);
	*n = t->n;
	return rc;
}

static json_t *row_json(const struct audit_row *r)
{
	return json_pack("{s:s, s:o, s:o, s:s, s:s, s:o, s:O, s:o, s:o}", "id", r->id,
			 "created_at", api_time_json(r->created_at), "user_id",
			 api_str_or_null(r->user_id), "action", r->action, "table_name",
			 r->table_name, "record_id", api_str_or_null(r->record_id), "changes",
			 r->changes, "ip", api_str_or_null(r->ip), "request_id",
			 api_str_or_null(r->request_id));
}

static json_t *list_render(void *arg, int i, int64_t *at, const char **id)
{
	struct list_ctx *t = arg;
	*at = t->rows[i].created_at;
	*id = t->rows[i].id;
	return row_json(&t->rows[i]);
}

static void time_filter(struct http_request *req, struct json_check *chk, const char *name,
			bool *has, int64_t *out)
{
	const char *s = http_query(req, name);
	if (!s)
		return;
	if (!time_parse_rfc3339(s, out)) {
		json_check_rule(chk, name, "must be an RFC 3339 timestamp such as "
					   "2026-11-29T10:00:00Z");
		return;
	}
	*has = true;
}

/* A text filter must be valid UTF-8 (PostgreSQL refuses anything else with
 * an error, which must be a 422 here, not a 500). */
static void text_filter(struct json_check *chk, const char *name, const char *s)
{
	json_t *v;
	if (!s)
		return;
	v = json_string(s);
	if (!v)
		json_check_rule(chk, name, "must be valid UTF-8 text");
	json_decref(v);
}

/* Read the filters; false after answering 422. */
static bool parse_filter(struct http_request *req, struct http_response *res,
			 struct audit_filter *f)
{
	struct json_check chk = JSON_CHECK_INIT;
	f->table_name = http_query(req, "table_name");
	f->action = http_query(req, "action");
	f->record_id = http_query(req, "record_id");
	f->user_id = http_query(req, "user_id");
	if (f->user_id && !uuid_is_valid(f->user_id))
		json_check_rule(&chk, "user_id", "must be a UUID");
	text_filter(&chk, "table_name", f->table_name);
	text_filter(&chk, "action", f->action);
	text_filter(&chk, "record_id", f->record_id);
	time_filter(req, &chk, "from", &f->has_from, &f->from_us);
	time_filter(req, &chk, "to", &f->has_to, &f->to_us);
	if (!api_query_check_passed(res, &chk))
		return false;
	if (f->user_id) /* stored lower-case */
		f->user_id = api_lower_dup(req, f->user_id);
	return true;
}

void api_audit_list(struct http_request *req, struct http_response *res)
{
	struct list_ctx t = { .org_id = req->auth.org_id };
	if (!parse_filter(req, res, &t.filter))
		return;
	struct api_list list = { .fetch = list_fetch, .render = list_render, .ctx = &t };
	(void)api_list_answer(req, res, &list);
	audit_rows_free(t.rows, t.n);
}
