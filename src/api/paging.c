/* paging: limit and cursor of GET collections. The cursor is base64url of
 * "<created_at µs>:<uuid>"; anything that does not decode to exactly that
 * shape is a 422 on the field "cursor". page_cursor_decode is fuzzed
 * (fuzz/fuzz_paging.c). */
#include "api/paging.h"

#include <string.h>

#include "core/crypto.h"
#include "core/str.h"
#include "core/uuid.h"

/* "<int64>:<36-char uuid>" is at most 20 + 1 + 36 characters. */
#define CURSOR_RAW_MAX 64
#define CURSOR_TEXT_MAX CRYPTO_B64URL_LEN(CURSOR_RAW_MAX)

bool page_cursor_decode(const char *text, struct page *p)
{
	size_t len = strlen(text);
	uint8_t raw[CURSOR_RAW_MAX + 1];
	if (len == 0 || len > CURSOR_TEXT_MAX)
		return false;
	long n = crypto_b64url_decode(text, len, raw, CURSOR_RAW_MAX);
	if (n <= 0)
		return false;
	raw[n] = '\0';
	if (memchr(raw, '\0', (size_t)n))
		return false;
	char *colon = strchr((char *)raw, ':');
	if (!colon)
		return false;
	*colon = '\0';
	int64_t at;
	const char *id = colon + 1;
	if (!str_to_int64((const char *)raw, &at) || at < 0 || !uuid_is_valid(id))
		return false;
	p->after_at = at;
	for (size_t i = 0; i < UUID_STR_LEN - 1; i++) /* canonical lower case */
		p->after_id[i] = (char)((id[i] >= 'A' && id[i] <= 'F') ? id[i] + 32 : id[i]);
	p->after_id[UUID_STR_LEN - 1] = '\0';
	p->has_cursor = true;
	return true;
}

void page_first(struct page *p, int limit)
{
	p->limit = limit;
	p->has_cursor = false;
	/* Sentinels above every real row, so one SQL text serves both cases. */
	p->after_at = INT64_MAX;
	str_copy(p->after_id, sizeof p->after_id, "ffffffff-ffff-ffff-ffff-ffffffffffff");
}

bool page_from_request(struct http_request *req, struct http_response *res,
		       struct page *out)
{
	int limit = 0;
	if (!http_query_limit(req, res, &limit))
		return false;
	struct page p;
	page_first(&p, limit);
	const char *cursor = http_query(req, "cursor");
	if (cursor && !page_cursor_decode(cursor, &p)) {
		http_error(res, 422, "validation_error", "invalid query parameter",
			   json_pack("[{s:s, s:s}]", "field", "cursor", "message",
				     "is not a cursor this server issued"));
		return false;
	}
	*out = p;
	return true;
}

const char *page_cursor(struct arena *a, int64_t at, const char *id)
{
	char raw[CURSOR_RAW_MAX];
	int n = snprintf(raw, sizeof raw, "%lld:%s", (long long)at, id);
	if (n <= 0 || (size_t)n >= sizeof raw)
		return NULL;
	char *out = arena_alloc(a, CRYPTO_B64URL_LEN(n) + 1);
	if (!out || crypto_b64url_encode(raw, (size_t)n, out, CRYPTO_B64URL_LEN(n) + 1) < 0)
		return NULL;
	return out;
}

json_t *page_answer(struct arena *a, json_t *items, int rows_fetched,
		    const struct page *p, int64_t last_at, const char *last_id)
{
	json_t *next = json_null();
	if (rows_fetched > p->limit) {
		if (json_array_size(items) > (size_t)p->limit)
			json_array_remove(items, json_array_size(items) - 1);
		const char *c = page_cursor(a, last_at, last_id);
		if (c)
			next = json_string(c);
	}
	return json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
}
