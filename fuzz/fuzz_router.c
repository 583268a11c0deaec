/* libFuzzer driver for router_match (src/http/router.c).
 *
 * Input: "METHOD PATH" (split at the first space; no space: the whole input
 * is the path and the method is GET). Runs the router against a table shaped
 * like the real API and checks its promises: a found route has the asked
 * method (GET for a HEAD) and a pattern matching the path, parameter values are non-empty
 * segments, a 405 has a non-empty Allow list.
 *
 * Build and run (60 s):
 *   clang -g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *     -include src/core/banned.h -Isrc fuzz/fuzz_router.c src/http/router.c \
 *     src/core/arena.c $(pkg-config --cflags --libs jansson) -o build-http/fuzz_router
 *   ./build-http/fuzz_router -max_total_time=60 -max_len=4096
 */
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "http/http.h"

static void h(struct http_request *req, struct http_response *res)
{
	(void)req;
	(void)res;
}

static const struct route table[] = {
	{ "GET", "/health", h, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/ready", h, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/metrics", h, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/openapi.json", h, ROLE_NONE, 0 },
	{ "POST", "/api/v1/auth/login", h, ROLE_NONE, 0 },
	{ "POST", "/api/v1/auth/refresh", h, ROLE_NONE, 0 },
	{ "GET", "/api/v1/auth/me", h, ROLE_VIEWER, 0 },
	{ "GET", "/api/v1/organizations/me", h, ROLE_VIEWER, 0 },
	{ "PATCH", "/api/v1/organizations/me", h, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/users", h, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/users", h, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/users/{id}", h, ROLE_ORG_ADMIN, 0 },
	{ "PATCH", "/api/v1/users/{id}", h, ROLE_ORG_ADMIN, 0 },
	{ "DELETE", "/api/v1/users/{id}", h, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/templates", h, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/templates", h, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/templates/sync", h, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/templates/{id}", h, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/templates/{id}/submit", h, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/templates/{id}/preview", h, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/contacts/import", h, ROLE_AGENT, ROUTE_RAW_BODY },
	{ "GET", "/api/v1/contacts/{id}", h, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/contacts/{id}/opt-out", h, ROLE_AGENT, 0 },
	{ "GET", "/api/v1/conversations/{id}/messages", h, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/campaigns/{id}/start", h, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/campaigns/{id}/recipients", h, ROLE_VIEWER, 0 },
	{ "GET", "/webhooks/meta", h, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "POST", "/webhooks/meta", h, ROLE_NONE, ROUTE_NO_RATE_LIMIT | ROUTE_RAW_BODY },
	{ "GET", "/webhooks/meta/{webhook_path}", h, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "POST", "/webhooks/meta/{webhook_path}", h, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/x/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", h, ROLE_NONE, 0 },
};

/* Does the pattern's literal segments match the path at the same places? */
static void check_found(const struct route *rt, const struct http_request *req)
{
	const char *p = rt->pattern, *s = req->path;
	int params = 0;

	while (*p != '\0' && *s != '\0') {
		size_t pl = strcspn(p + 1, "/"), sl = strcspn(s + 1, "/");

		if (p[1] == '{') {
			if (sl == 0)
				__builtin_trap(); /* a parameter matched an empty segment */
			if (strlen(req->param_values[params]) != sl ||
			    memcmp(req->param_values[params], s + 1, sl) != 0)
				__builtin_trap();
			params++;
		} else if (pl != sl || memcmp(p + 1, s + 1, pl) != 0) {
			__builtin_trap();
		}
		p += 1 + pl;
		s += 1 + sl;
	}
	if (*p != '\0' || *s != '\0' || params != req->nparams)
		__builtin_trap();
	if (strcmp(rt->method, strcmp(req->method, "HEAD") == 0 ? "GET" : req->method) != 0)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a = ARENA_INIT;
	char *buf = malloc(size + 1);
	char *space;
	struct http_request req = { .arena = &a };
	const struct route *rt = NULL;
	const char *allow = NULL;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0'; /* the server never gives the router a NUL mid-path */
	space = strchr(buf, ' ');
	if (space != NULL) {
		*space = '\0';
		req.method = buf;
		req.path = space + 1;
	} else {
		req.method = "GET";
		req.path = buf;
	}
	switch (router_match(table, sizeof table / sizeof table[0], &req, &rt, &allow)) {
	case ROUTE_FOUND:
		if (rt == NULL || allow != NULL)
			__builtin_trap();
		check_found(rt, &req);
		break;
	case ROUTE_METHOD_NOT_ALLOWED:
		if (rt != NULL || allow == NULL || allow[0] == '\0' || req.nparams != 0)
			__builtin_trap();
		break;
	case ROUTE_NOT_FOUND:
		if (rt != NULL || allow != NULL || req.nparams != 0)
			__builtin_trap();
		break;
	}
	arena_release(&a);
	free(buf);
	return 0;
}
