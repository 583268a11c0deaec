/* answer: the answer helpers shared by every handler (api.h, answer.h). */
#include "api/answer.h"

#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/arena.h"
#include "db/db.h"

void api_answer_db_error(struct http_response *res, int rc)
{
	if (rc == DB_ERR_UNAVAILABLE || rc == DB_ERR_RETRY) {
		http_add_header(res, "Retry-After", "1");
		http_error(res, 503, "service_unavailable",
			   "the database is busy or not answering; try again shortly", NULL);
		return;
	}
	http_error(res, 500, "internal_error", "the request could not be completed", NULL);
}

void api_answer_check(struct http_response *res, struct json_check *chk)
{
	if (json_array_size(chk->type_errors) > 0)
		http_error(res, 400, "invalid_request", "a field has the wrong JSON type",
			   json_incref(chk->type_errors));
	else
		http_error(res, 422, "validation_error", "the request is not valid",
			   json_incref(chk->rule_errors));
	json_check_release(chk);
}

void api_answer_not_found(struct http_response *res, const char *what)
{
	http_error(res, 404, "not_found", what, NULL);
}

json_t *api_time_json(int64_t us)
{
	return json_time_or_null(us);
}

bool api_check_passed(struct http_response *res, struct json_check *chk)
{
	if (!json_check_ok(chk)) {
		api_answer_check(res, chk);
		return false;
	}
	json_check_release(chk);
	return true;
}

bool api_query_check_passed(struct http_response *res, struct json_check *chk)
{
	bool ok = json_check_ok(chk);
	if (!ok)
		http_error(res, 422, "validation_error", "invalid query parameter",
			   json_incref(chk->rule_errors));
	json_check_release(chk);
	return ok;
}

void api_answer_created(struct http_request *req, struct http_response *res,
			const char *collection, const char *id, json_t *body)
{
	http_add_header(res, "Location", arena_printf(req->arena, "%s/%s", collection, id));
	http_json(res, 201, body);
}

json_t *api_str_or_null(const char *s)
{
	return json_str_or_null(s);
}

char *api_lower_dup(struct http_request *req, const char *s)
{
	char *low = s ? arena_strdup(req->arena, s) : NULL;
	for (char *p = low; p && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + ('a' - 'A'));
	return low;
}

bool api_content_type_is(const struct http_request *req, const char *type)
{
	const char *ct = http_header(req, "Content-Type");
	size_t n = strlen(type);
	return ct != NULL && strncasecmp(ct, type, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}
