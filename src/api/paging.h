/* paging: cursor paging for GET collections (API.md "Lists").
 *
 * Lists are ordered newest first by (created_at DESC, id DESC); a cursor is
 * the opaque base64url text of the last row's "created_at:id". The next
 * page is WHERE (created_at, id) < ($at, $id) — row-value comparison that
 * both PostgreSQL and SQLite support — with LIMIT limit+1 to learn whether
 * there is a next page. */
#ifndef PYTAKE_PAGING_H
#define PYTAKE_PAGING_H
#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"

struct page {
	int limit;          /* 1..200, default 50 */
	bool has_cursor;
	int64_t after_at;   /* cursor: created_at of the last row seen */
	char after_id[37];  /* cursor: id of the last row seen */
};

/* The first page of `limit` rows: no cursor, and after_at/after_id set to
 * sentinels above every real row (INT64_MAX, "ffffffff-..."), so a store
 * can always use WHERE (created_at, id) < ($at, $id). */
void page_first(struct page *p, int limit);
/* Read `limit` and `cursor` from the query (page_first when no cursor). On a bad value fills res with
 * 422 validation_error (details name the field: "limit" or "cursor";
 * a cursor that does not decode to "<int64>:<uuid>" is rejected) and
 * returns false. */
bool page_from_request(struct http_request *req, struct http_response *res,
		       struct page *out);
/* Decode cursor text (untrusted: the `cursor` query parameter) into p's
 * after_at / after_id (id lower-cased) and set has_cursor; false, p
 * untouched, unless it is base64url of "<int64 >= 0>:<uuid>". */
bool page_cursor_decode(const char *text, struct page *p);
/* Cursor text for a row (arena memory; NULL when out of memory). */
const char *page_cursor(struct arena *a, int64_t at, const char *id);
/* Wrap items (taken over) as {"items": [...], "next_cursor": ...}: when
 * rows_fetched > limit the extra last item is dropped and next_cursor
 * points after the last kept item, whose (at, id) the caller passes. */
json_t *page_answer(struct arena *a, json_t *items, int rows_fetched,
		    const struct page *p, int64_t last_at, const char *last_id);

#endif
