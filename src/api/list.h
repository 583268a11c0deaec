/* list: the one shape of every GET collection handler, factored out, and
 * the {id} path parameter of item routes.
 *
 * A handler parses its own filters, then describes its rows with a struct
 * api_list: api_list_answer reads `limit`/`cursor` (422 on a bad value),
 * runs fetch in a read transaction, renders the kept rows with render and
 * answers {"items": [...], "next_cursor": ...} (or the database error:
 * 503 / 500). The rows stay in the handler's ctx: free them afterwards,
 * whatever the answer was.
 *
 *     struct api_list list = { .fetch = my_fetch, .render = my_render, .ctx = &l };
 *     (void)api_list_answer(req, res, &list);
 *     my_rows_free(l.rows, l.n);
 */
#ifndef PYTAKE_API_LIST_H
#define PYTAKE_API_LIST_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/paging.h"
#include "db/db.h"
#include "http/http.h"

struct api_list {
	/* Fetch up to `limit` rows (the page's limit + 1, to learn whether
	 * there is a next page) strictly after p's cursor (after_at,
	 * after_id) into ctx; *n gets the number fetched. Runs inside a read
	 * transaction that may be retried: free what an earlier attempt left
	 * first. DB_OK or a db_status. */
	int (*fetch)(struct db_conn *c, void *ctx, const struct page *p, int limit, int *n);
	/* Row i as JSON (a new reference; NULL = out of memory) and its cursor
	 * key (time and id; valid while ctx holds the rows). */
	json_t *(*render)(void *ctx, int i, int64_t *at, const char **id);
	void *ctx;
};

/* Answer a GET collection request with l (see above). True when it
 * answered 200 with a page, false after answering an error. */
bool api_list_answer(struct http_request *req, struct http_response *res,
		     const struct api_list *l);

/* The {id} path parameter, lower-cased (ids are stored lower-case) into
 * *id (arena memory). When it is absent or not a UUID, answers 404
 * not_found with message `what` (exactly like an unknown id) and returns
 * false. */
bool api_path_id(struct http_request *req, struct http_response *res, const char *what,
		 const char **id);

#endif
