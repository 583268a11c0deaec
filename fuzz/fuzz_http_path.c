/* libFuzzer driver for the HTTP request target: http_path_decode and
 * http_query_unescape (src/http/path.c, what server.c runs on every raw
 * request target) followed by router_match against the real route table
 * (api_routes, src/api/routes.c).
 *
 * Input: "METHOD TARGET" (split at the first space; no space: GET and the
 * whole input). TARGET splits at the first '?' into the raw path and the
 * query; the query splits at '&' into key[=value] arguments, each cut at
 * its first NUL as MHD hands them over.
 *
 * Checked promises:
 *   - a decoded path starts with '/', is no longer than the raw one, is
 *     UTF-8 without controls, and has no empty, "." or ".." segment; an
 *     invalid one has a reason; only a raw path over HTTP_MAX_PATH_BYTES
 *     is "too long";
 *   - the router on a decoded path: a found route has the asked method
 *     (GET for a HEAD),
 *     its parameters are non-empty and free of '/'; 405 lists methods;
 *   - a query argument unescapes in place to at most its length, with the
 *     returned length its strlen (no NUL is ever produced).
 * Run: make fuzz (fuzz/corpus/http_path/ seeds). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/arena.h"
#include "http/http.h"
#include "http/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decoded(const char *raw, size_t raw_len, const char *p)
{
	size_t n = strlen(p);

	if (p[0] != '/' || n > raw_len || !http_utf8_valid_no_ctl(p, n))
		__builtin_trap();
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '/')
			continue;
		size_t seg = strcspn(p + i + 1, "/");
		if (seg == 0 && p[i + 1] == '/')
			__builtin_trap();
		if ((seg == 1 && p[i + 1] == '.') ||
		    (seg == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
			__builtin_trap();
	}
	(void)raw;
}

static void check_route(struct arena *a, const char *method, const char *path)
{
	struct http_request req = { .arena = a, .method = method, .path = path };
	const struct route *rt = NULL;
	const char *allow = NULL;

	switch (router_match(api_routes, api_routes_count, &req, &rt, &allow)) {
	case ROUTE_FOUND:
		if (rt == NULL || rt->handler == NULL ||
		    strcmp(rt->method, strcmp(method, "HEAD") == 0 ? "GET" : method) != 0)
			__builtin_trap();
		for (int i = 0; i < req.nparams; i++)
			if (req.param_values[i] == NULL || req.param_values[i][0] == '\0' ||
			    strchr(req.param_values[i], '/') != NULL)
				__builtin_trap();
		break;
	case ROUTE_METHOD_NOT_ALLOWED:
		if (rt != NULL || allow == NULL || allow[0] == '\0')
			__builtin_trap();
		break;
	case ROUTE_NOT_FOUND:
		if (rt != NULL)
			__builtin_trap();
		break;
	}
}

static void check_query(char *q, size_t len)
{
	char *end = q + len;

	while (q < end) {
		char *amp = memchr(q, '&', (size_t)(end - q));
		size_t arg_len = amp ? (size_t)(amp - q) : (size_t)(end - q);
		q[arg_len] = '\0'; /* the '&' or the buffer's terminator */
		size_t before = strlen(q);
		size_t after = http_query_unescape(q);
		if (after > before || after != strlen(q))
			__builtin_trap();
		(void)http_utf8_valid_no_ctl(q, after);
		q += arg_len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a = ARENA_INIT;
	char *buf = malloc(size + 1);
	const char *method = "GET";
	char *target;
	char *decoded = NULL;
	const char *why = NULL;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	target = buf;
	char *space = memchr(buf, ' ', size);
	if (space != NULL) {
		*space = '\0';
		method = buf;
		target = space + 1;
	}
	size_t tlen = size - (size_t)(target - buf);
	char *qmark = memchr(target, '?', tlen);
	size_t raw_len = qmark ? (size_t)(qmark - target) : tlen;

	switch (http_path_decode(&a, target, raw_len, &decoded, &why)) {
	case HTTP_PATH_OK:
		if (decoded == NULL)
			__builtin_trap();
		check_decoded(target, raw_len, decoded);
		if (strlen(method) > 0)
			check_route(&a, method, decoded);
		break;
	case HTTP_PATH_INVALID:
		if (decoded != NULL || why == NULL || why[0] == '\0')
			__builtin_trap();
		break;
	case HTTP_PATH_TOO_LONG:
		if (decoded != NULL || raw_len <= HTTP_MAX_PATH_BYTES)
			__builtin_trap();
		break;
	}
	if (qmark != NULL)
		check_query(qmark + 1, tlen - raw_len - 1);
	arena_release(&a);
	free(buf);
	return 0;
}
