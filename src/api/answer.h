/* answer: small answer helpers shared by the handlers, on top of the ones
 * api.h declares (api_answer_db_error, api_answer_check,
 * api_answer_not_found, api_time_json; all defined in answer.c). */
#ifndef PYTAKE_API_ANSWER_H
#define PYTAKE_API_ANSWER_H
#include <jansson.h>
#include <stdbool.h>

#include "core/json.h"
#include "http/http.h"

/* The end of a body check: true when chk holds no error (chk released);
 * else answers 400 invalid_request / 422 validation_error like
 * api_answer_check (chk released) and returns false. */
bool api_check_passed(struct http_response *res, struct json_check *chk);

/* The same for query parameters: true when chk holds no error; else
 * answers 422 validation_error "invalid query parameter" with the rule
 * errors as details. chk is released either way. */
bool api_query_check_passed(struct http_response *res, struct json_check *chk);

/* 201 Created with body (taken over) and "Location: <collection>/<id>". */
void api_answer_created(struct http_request *req, struct http_response *res,
			const char *collection, const char *id, json_t *body);

/* True when the request's Content-Type is `type` (ASCII letters in any
 * case), alone or followed by ';', a space or a tab and its parameters:
 * "text/csv", "Text/CSV; charset=utf-8". False when the header is absent
 * or names another type ("text/csvx", "text/plain"). */
bool api_content_type_is(const struct http_request *req, const char *type);

/* JSON string of s, or JSON null when s is NULL or empty. New reference. */
json_t *api_str_or_null(const char *s);

/* A copy of s in the request's arena with ASCII upper-case letters
 * lower-cased (ids are stored lower-case). NULL when s is NULL or out of
 * memory. */
char *api_lower_dup(struct http_request *req, const char *s);

#endif
