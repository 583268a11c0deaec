/* response: helpers handlers use to fill a struct http_response, the error
 * shape of API.md, role names, and the two request helpers every JSON
 * handler needs (body as a JSON object, the `limit` query parameter). */
#include "http/http.h"

#include <errno.h>
#include <limits.h>

#include "core/json.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 200

static const char *const role_names[] = {
	[ROLE_NONE] = "none",
	[ROLE_VIEWER] = "viewer",
	[ROLE_AGENT] = "agent",
	[ROLE_ORG_ADMIN] = "org_admin",
	[ROLE_SUPER_ADMIN] = "super_admin",
};

const char *role_name(enum role r)
{
	if ((int)r < 0 || (size_t)r >= sizeof role_names / sizeof role_names[0])
		return "none";
	return role_names[r];
}

enum role role_parse(const char *s)
{
	if (s == NULL)
		return ROLE_NONE;
	for (size_t i = ROLE_VIEWER; i < sizeof role_names / sizeof role_names[0]; i++)
		if (strcmp(s, role_names[i]) == 0)
			return (enum role)i;
	return ROLE_NONE;
}

/* Forget whatever body the response had (a handler may answer twice, e.g.
 * set a success and then an error). */
static void response_clear_body(struct http_response *res)
{
	if (res->stream_free != NULL && res->stream_ctx != NULL)
		res->stream_free(res->stream_ctx);
	res->stream_next = NULL;
	res->stream_free = NULL;
	res->stream_ctx = NULL;
	json_decref(res->json);
	res->json = NULL;
	res->body = NULL;
	res->body_len = 0;
	res->content_type = NULL;
}

/* Last resort when even the error object cannot be built. */
static const char oom_body[] =
	"{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";

void http_json(struct http_response *res, int status, json_t *body)
{
	response_clear_body(res);
	if (body == NULL && status != 204) {
		/* A NULL body means the handler's json_pack() failed. */
		http_body(res, 500, NULL, oom_body, sizeof oom_body - 1);
		return;
	}
	res->status = status;
	res->json = body;
}

void http_error(struct http_response *res, int status, const char *code,
		const char *message, json_t *details)
{
	json_t *root = json_object();
	json_t *err = json_object();
	json_t *msg = json_string(message != NULL ? message : "");
	int rc = 0;

	if (msg == NULL) /* not UTF-8: never echo raw bytes */
		msg = json_string("invalid request");
	response_clear_body(res);
	if (root == NULL || err == NULL) {
		json_decref(root);
		json_decref(err);
		json_decref(msg);
		json_decref(details);
		http_body(res, status, NULL, oom_body, sizeof oom_body - 1);
		return;
	}
	/* json_object_set_new() consumes its value even when it fails. */
	rc |= json_object_set_new(err, "code", json_string(code != NULL ? code : "error"));
	rc |= json_object_set_new(err, "message", msg);
	if (details != NULL)
		rc |= json_object_set_new(err, "details", details);
	rc |= json_object_set_new(root, "error", err);
	if (rc != 0) {
		json_decref(root);
		http_body(res, status, NULL, oom_body, sizeof oom_body - 1);
		return;
	}
	res->status = status;
	res->json = root;
}

void http_body(struct http_response *res, int status, const char *content_type,
	       const char *body, size_t len)
{
	response_clear_body(res);
	res->status = status;
	res->body = body != NULL ? body : "";
	res->body_len = body != NULL ? len : 0;
	res->content_type = content_type;
}

void http_stream(struct http_response *res, int status, const char *content_type,
		 long (*next)(void *ctx, char *buf, size_t cap), void (*free_ctx)(void *ctx),
		 void *ctx)
{
	response_clear_body(res);
	res->status = status;
	res->content_type = content_type;
	res->stream_next = next;
	res->stream_free = free_ctx;
	res->stream_ctx = ctx;
}

void http_add_header(struct http_response *res, const char *name, const char *value)
{
	if (name == NULL || value == NULL || res->nheaders >= HTTP_MAX_RESPONSE_HEADERS)
		return;
	res->header_names[res->nheaders] = name;
	res->header_values[res->nheaders] = value;
	res->nheaders++;
}

json_t *http_body_json(struct http_request *req, struct http_response *res)
{
	char err[256] = "";
	json_t *obj = json_parse_object(req->body != NULL ? req->body : "",
					req->body != NULL ? req->body_len : 0,
					err, sizeof err);

	if (obj == NULL)
		http_error(res, 400, "invalid_json",
			   err[0] != '\0' ? err : "body is not valid JSON", NULL);
	return obj;
}

/* Strict decimal: digits only, no sign, no spaces, fits an int. */
static bool parse_small_int(const char *s, int *out)
{
	char *end = NULL;
	long v;

	if (s == NULL || *s < '0' || *s > '9' || strlen(s) > 9)
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

bool http_query_limit(struct http_request *req, struct http_response *res, int *limit)
{
	const char *s = http_query(req, "limit");
	int v = 0;
	json_t *details;

	if (s == NULL) {
		*limit = LIMIT_DEFAULT;
		return true;
	}
	if (parse_small_int(s, &v) && v >= 1 && v <= LIMIT_MAX) {
		*limit = v;
		return true;
	}
	details = json_pack("[{s:s, s:s}]", "field", "limit", "message",
			    "must be an integer from 1 to 200");
	http_error(res, 422, "validation_error", "invalid query parameter", details);
	return false;
}
