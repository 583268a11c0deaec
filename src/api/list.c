/* list: the shared GET collection handler and path id (see list.h). */
#include "api/list.h"

#include "api/api.h"
#include "app/app.h"
#include "core/uuid.h"

struct list_tx {
	const struct api_list *l;
	const struct page *page;
	int n;
};

static int list_fetch(struct db_conn *c, void *arg)
{
	struct list_tx *t = arg;
	t->n = 0;
	return t->l->fetch(c, t->l->ctx, t->page, t->page->limit + 1, &t->n);
}

/* Render the kept rows and the paging envelope into res. */
static bool answer_rows(struct http_request *req, struct http_response *res,
			const struct api_list *l, const struct page *p, int n)
{
	json_t *items = json_array();
	int kept = n > p->limit ? p->limit : n;
	int64_t last_at = 0;
	const char *last_id = "";
	if (!items) {
		api_answer_db_error(res, DB_ERR);
		return false;
	}
	for (int i = 0; i < kept; i++) {
		json_t *item = l->render(l->ctx, i, &last_at, &last_id);
		if (!item || json_array_append_new(items, item) != 0) {
			json_decref(items);
			api_answer_db_error(res, DB_ERR);
			return false;
		}
	}
	http_json(res, 200, page_answer(req->arena, items, n, p, last_at, last_id));
	return true;
}

bool api_list_answer(struct http_request *req, struct http_response *res,
		     const struct api_list *l)
{
	struct page page;
	struct list_tx t = { .l = l, .page = &page };
	if (!page_from_request(req, res, &page))
		return false;
	int rc = db_tx(req->app->db, false, list_fetch, &t);
	if (rc != DB_OK) {
		api_answer_db_error(res, rc);
		return false;
	}
	return answer_rows(req, res, l, &page, t.n);
}

bool api_path_id(struct http_request *req, struct http_response *res, const char *what,
		 const char **id)
{
	const char *raw = http_param(req, "id");
	char *low = raw ? arena_strdup(req->arena, raw) : NULL;
	if (!low || !uuid_is_valid(low)) {
		api_answer_not_found(res, what);
		return false;
	}
	for (char *p = low; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + ('a' - 'A'));
	*id = low;
	return true;
}
