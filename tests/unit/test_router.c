/* Unit tests for the router (src/http/router.c) and the response helpers
 * (src/http/response.c). Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/arena.h"
#include "http/http.h"

static void h_dummy(struct http_request *req, struct http_response *res)
{
	(void)req;
	(void)res;
}

static const struct route table[] = {
	{ "GET", "/health", h_dummy, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/", h_dummy, ROLE_NONE, 0 },
	{ "GET", "/api/v1/users", h_dummy, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/users", h_dummy, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/users/{id}", h_dummy, ROLE_VIEWER, 0 },
	{ "PATCH", "/api/v1/users/{id}", h_dummy, ROLE_ORG_ADMIN, 0 },
	{ "DELETE", "/api/v1/users/{id}", h_dummy, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/templates/{id}", h_dummy, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/templates/{id}/submit", h_dummy, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/templates/sync", h_dummy, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/orgs/{org}/users/{user}", h_dummy, ROLE_VIEWER, 0 },
	{ "GET", "/a/{x}/c", h_dummy, ROLE_NONE, 0 },
	{ "GET", "/a/b/{y}", h_dummy, ROLE_NONE, 0 },
	{ "GET", "/webhooks/meta/{webhook_path}", h_dummy, ROLE_NONE, 0 },
	{ "POST", "/webhooks/meta/{webhook_path}", h_dummy, ROLE_NONE, 0 },
};
#define NTABLE (sizeof table / sizeof table[0])

struct match_case {
	const char *method;
	const char *path;
	enum route_match want;
	const char *want_pattern;  /* ROUTE_FOUND */
	const char *want_allow;    /* ROUTE_METHOD_NOT_ALLOWED */
	const char *p1_name, *p1_value, *p2_name, *p2_value;
};

static const struct match_case cases[] = {
	/* literal */
	{ "GET", "/health", ROUTE_FOUND, "/health", NULL, NULL, NULL, NULL, NULL },
	{ "GET", "/", ROUTE_FOUND, "/", NULL, NULL, NULL, NULL, NULL },
	{ "GET", "/api/v1/users", ROUTE_FOUND, "/api/v1/users", NULL, NULL, NULL, NULL, NULL },
	{ "POST", "/api/v1/users", ROUTE_FOUND, "/api/v1/users", NULL, NULL, NULL, NULL, NULL },
	/* HEAD is answered by the GET route */
	{ "HEAD", "/health", ROUTE_FOUND, "/health", NULL, NULL, NULL, NULL, NULL },
	{ "HEAD", "/api/v1/users/42", ROUTE_FOUND, "/api/v1/users/{id}", NULL, "id", "42",
	  NULL, NULL },
	{ "HEAD", "/api/v1/templates/sync", ROUTE_FOUND, "/api/v1/templates/{id}", NULL, "id",
	  "sync", NULL, NULL },
	/* one param */
	{ "GET", "/api/v1/users/0192f3a0-7b1c-7c00-8000-000000000001", ROUTE_FOUND,
	  "/api/v1/users/{id}", NULL, "id", "0192f3a0-7b1c-7c00-8000-000000000001", NULL, NULL },
	{ "DELETE", "/api/v1/users/42", ROUTE_FOUND, "/api/v1/users/{id}", NULL, "id", "42",
	  NULL, NULL },
	/* multiple params */
	{ "GET", "/api/v1/orgs/o1/users/u2", ROUTE_FOUND, "/api/v1/orgs/{org}/users/{user}",
	  NULL, "org", "o1", "user", "u2" },
	/* literal beats param */
	{ "POST", "/api/v1/templates/sync", ROUTE_FOUND, "/api/v1/templates/sync", NULL, NULL,
	  NULL, NULL, NULL },
	{ "GET", "/api/v1/templates/sync", ROUTE_FOUND, "/api/v1/templates/{id}", NULL, "id",
	  "sync", NULL, NULL },
	{ "POST", "/api/v1/templates/t1/submit", ROUTE_FOUND, "/api/v1/templates/{id}/submit",
	  NULL, "id", "t1", NULL, NULL },
	/* the earlier literal wins, whatever the table order */
	{ "GET", "/a/b/c", ROUTE_FOUND, "/a/b/{y}", NULL, "y", "c", NULL, NULL },
	{ "GET", "/a/z/c", ROUTE_FOUND, "/a/{x}/c", NULL, "x", "z", NULL, NULL },
	/* values are taken as given (the server decoded them already) */
	{ "GET", "/webhooks/meta/a b%41", ROUTE_FOUND, "/webhooks/meta/{webhook_path}", NULL,
	  "webhook_path", "a b%41", NULL, NULL },
	{ "GET", "/api/v1/users/caf\xc3\xa9", ROUTE_FOUND, "/api/v1/users/{id}", NULL, "id",
	  "caf\xc3\xa9", NULL, NULL },
	/* trailing slash does not match: 404 */
	{ "GET", "/health/", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	{ "GET", "/api/v1/users/", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	/* empty segments, dot segments, no leading slash */
	{ "GET", "/api//v1/users", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	{ "GET", "//health", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	{ "GET", "/api/v1/users/..", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	{ "GET", "/api/v1/users/.", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	{ "GET", "health", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	{ "GET", "", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	/* no match */
	{ "GET", "/nope", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	{ "GET", "/api/v1/users/1/extra", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	{ "GET", "/HEALTH", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	{ "GET", "/healthz", ROUTE_NOT_FOUND, NULL, NULL, NULL, NULL, NULL, NULL },
	/* 405 with Allow (table order, no duplicates) */
	{ "PUT", "/api/v1/users", ROUTE_METHOD_NOT_ALLOWED, NULL, "GET, HEAD, POST", NULL, NULL,
	  NULL, NULL },
	{ "POST", "/api/v1/users/7", ROUTE_METHOD_NOT_ALLOWED, NULL, "GET, HEAD, PATCH, DELETE",
	  NULL, NULL, NULL, NULL },
	{ "DELETE", "/health", ROUTE_METHOD_NOT_ALLOWED, NULL, "GET, HEAD", NULL, NULL, NULL, NULL },
	{ "PUT", "/api/v1/templates/sync", ROUTE_METHOD_NOT_ALLOWED, NULL, "GET, HEAD, POST", NULL,
	  NULL, NULL, NULL },
	{ "get", "/health", ROUTE_METHOD_NOT_ALLOWED, NULL, "GET, HEAD", NULL, NULL, NULL, NULL },
	{ "head", "/health", ROUTE_METHOD_NOT_ALLOWED, NULL, "GET, HEAD", NULL, NULL, NULL, NULL },
};

static void test_match_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct match_case *c = &cases[i];
		struct arena a = ARENA_INIT;
		struct http_request req = { .arena = &a, .method = c->method, .path = c->path };
		const struct route *rt = (const struct route *)&req; /* must be reset */
		const char *allow = "junk";
		enum route_match got = router_match(table, NTABLE, &req, &rt, &allow);

		print_message("case %zu: %s %s\n", i, c->method, c->path);
		assert_int_equal(got, c->want);
		if (c->want == ROUTE_FOUND) {
			assert_non_null(rt);
			assert_string_equal(rt->pattern, c->want_pattern);
			assert_string_equal(rt->method, strcmp(c->method, "HEAD") == 0 ?
							       "GET" : c->method);
		} else {
			assert_null(rt);
		}
		if (c->want == ROUTE_METHOD_NOT_ALLOWED) {
			assert_non_null(allow);
			assert_string_equal(allow, c->want_allow);
		} else {
			assert_null(allow);
		}
		assert_int_equal(req.nparams, (c->p1_name ? 1 : 0) + (c->p2_name ? 1 : 0));
		if (c->p1_name != NULL)
			assert_string_equal(http_param(&req, c->p1_name), c->p1_value);
		if (c->p2_name != NULL)
			assert_string_equal(http_param(&req, c->p2_name), c->p2_value);
		assert_null(http_param(&req, "missing"));
		arena_release(&a);
	}
}

static void test_params_are_copies(void **state)
{
	struct arena a = ARENA_INIT;
	char path[] = "/api/v1/users/abc";
	struct http_request req = { .arena = &a, .method = "GET", .path = path };
	const struct route *rt = NULL;

	(void)state;
	assert_int_equal(router_match(table, NTABLE, &req, &rt, NULL), ROUTE_FOUND);
	path[14] = 'X'; /* the request's value must not alias the path */
	assert_string_equal(http_param(&req, "id"), "abc");
	arena_release(&a);
}

static void test_too_many_segments(void **state)
{
	struct arena a = ARENA_INIT;
	char path[200] = "";
	struct http_request req = { .arena = &a, .method = "GET", .path = path };
	const struct route *rt = NULL;

	(void)state;
	for (int i = 0; i < 40; i++)
		memcpy(path + 2 * i, "/a", 3);
	assert_int_equal(router_match(table, NTABLE, &req, &rt, NULL), ROUTE_NOT_FOUND);
	arena_release(&a);
}

static void test_empty_table(void **state)
{
	struct arena a = ARENA_INIT;
	struct http_request req = { .arena = &a, .method = "GET", .path = "/health" };
	const struct route *rt = NULL;

	(void)state;
	assert_int_equal(router_match(NULL, 0, &req, &rt, NULL), ROUTE_NOT_FOUND);
	arena_release(&a);
}

/* ------------------------------------------------------ response helpers */

static void test_error_shape(void **state)
{
	struct http_response res = { 0 };
	json_t *details = json_pack("[{s:s,s:s}]", "field", "email", "message", "is required");
	json_t *err, *d;

	(void)state;
	http_error(&res, 422, "validation_error", "invalid body", details);
	assert_int_equal(res.status, 422);
	assert_null(res.body);
	err = json_object_get(res.json, "error");
	assert_non_null(err);
	assert_string_equal(json_string_value(json_object_get(err, "code")), "validation_error");
	assert_string_equal(json_string_value(json_object_get(err, "message")), "invalid body");
	d = json_object_get(err, "details");
	assert_true(json_is_array(d));
	assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "field")),
			    "email");
	/* a second answer replaces the first (no leak under ASan) */
	http_error(&res, 404, "not_found", "no such user", NULL);
	assert_int_equal(res.status, 404);
	err = json_object_get(res.json, "error");
	assert_null(json_object_get(err, "details"));
	/* invalid UTF-8 in a message is never echoed */
	http_error(&res, 400, "invalid_path", "bad \xff byte", NULL);
	err = json_object_get(res.json, "error");
	assert_string_equal(json_string_value(json_object_get(err, "message")), "invalid request");
	json_decref(res.json);
}

static void test_json_and_body(void **state)
{
	struct http_response res = { 0 };

	(void)state;
	http_json(&res, 201, json_pack("{s:s}", "id", "x"));
	assert_int_equal(res.status, 201);
	assert_string_equal(json_string_value(json_object_get(res.json, "id")), "x");
	http_body(&res, 200, "text/plain", "hello", 5);
	assert_null(res.json);
	assert_int_equal(res.body_len, 5);
	assert_string_equal(res.content_type, "text/plain");
	/* NULL JSON (a failed json_pack) is a 500, not an empty 200 */
	http_json(&res, 200, NULL);
	assert_int_equal(res.status, 500);
	assert_non_null(res.body);
	assert_non_null(strstr(res.body, "internal_error"));
	http_json(&res, 204, NULL);
	assert_int_equal(res.status, 204);
	assert_null(res.json);
}

static void test_add_header_bounded(void **state)
{
	struct http_response res = { 0 };

	(void)state;
	for (int i = 0; i < HTTP_MAX_RESPONSE_HEADERS + 5; i++)
		http_add_header(&res, "X-A", "b");
	assert_int_equal(res.nheaders, HTTP_MAX_RESPONSE_HEADERS);
	http_add_header(&res, NULL, "b");
	assert_int_equal(res.nheaders, HTTP_MAX_RESPONSE_HEADERS);
}

static void test_roles(void **state)
{
	static const struct { enum role r; const char *name; } roles[] = {
		{ ROLE_VIEWER, "viewer" },
		{ ROLE_AGENT, "agent" },
		{ ROLE_ORG_ADMIN, "org_admin" },
		{ ROLE_SUPER_ADMIN, "super_admin" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		assert_string_equal(role_name(roles[i].r), roles[i].name);
		assert_int_equal(role_parse(roles[i].name), roles[i].r);
	}
	assert_int_equal(role_parse("admin"), ROLE_NONE);
	assert_int_equal(role_parse("VIEWER"), ROLE_NONE);
	assert_int_equal(role_parse(""), ROLE_NONE);
	assert_int_equal(role_parse(NULL), ROLE_NONE);
	assert_int_equal(role_parse("none"), ROLE_NONE);
	assert_string_equal(role_name((enum role)99), "none");
}

static void test_body_json(void **state)
{
	static const struct { const char *body; bool ok; } bodies[] = {
		{ "{\"a\":1}", true },
		{ "", false },
		{ "[1,2]", false },
		{ "{\"a\":", false },
		{ "{\"a\":1,\"a\":2}", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		struct http_request req = { .body = bodies[i].body,
					    .body_len = strlen(bodies[i].body) };
		struct http_response res = { 0 };
		json_t *obj = http_body_json(&req, &res);

		print_message("body %zu: %s\n", i, bodies[i].body);
		if (bodies[i].ok) {
			assert_non_null(obj);
			assert_int_equal(res.status, 0);
		} else {
			json_t *err;

			assert_null(obj);
			assert_int_equal(res.status, 400);
			err = json_object_get(res.json, "error");
			assert_string_equal(json_string_value(json_object_get(err, "code")),
					    "invalid_json");
			assert_true(strlen(json_string_value(json_object_get(err, "message"))) > 0);
		}
		json_decref(obj);
		json_decref(res.json);
	}
}

static void test_query_limit_without_connection(void **state)
{
	struct http_request req = { 0 };
	struct http_response res = { 0 };
	int limit = 0;

	(void)state;
	/* no connection: no query, so the default */
	assert_true(http_query_limit(&req, &res, &limit));
	assert_int_equal(limit, 50);
	assert_null(http_header(&req, "X-Request-Id"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_params_are_copies),
		cmocka_unit_test(test_too_many_segments),
		cmocka_unit_test(test_empty_table),
		cmocka_unit_test(test_error_shape),
		cmocka_unit_test(test_json_and_body),
		cmocka_unit_test(test_add_header_bounded),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_body_json),
		cmocka_unit_test(test_query_limit_without_connection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
