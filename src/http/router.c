/* router: method + decoded path -> route.
 *
 * The table is small (~100 routes), so matching is a linear scan that
 * splits each pattern on the fly: no allocation except the parameter values
 * and the Allow string, which go into the request's arena.
 *
 * Rules:
 *  - a path is "/" or "/seg1/seg2..." with non-empty segments; a trailing
 *    slash is an empty last segment, so "/health/" does NOT match "/health"
 *    (404), and neither do "//", "." or ".." segments;
 *  - a literal pattern segment matches byte-for-byte (case-sensitive); a
 *    "{name}" segment matches any one non-empty segment;
 *  - among the routes that match the path, the one whose FIRST differing
 *    segment is literal wins ("/templates/sync" beats "/templates/{id}");
 *    equal shapes: the first in the table wins;
 *  - HEAD is answered by the GET route of the path (the server sends the
 *    headers, Content-Length included, without the body), and a 405's
 *    Allow list names HEAD after GET;
 *  - routes that match the path but not the method make the Allow list of a
 *    405 (table order, no duplicates).
 * The path given to the router is already percent-decoded by the server;
 * the router never decodes again. */
#include "http/http.h"

#define ROUTER_MAX_SEGMENTS 32
#define ROUTER_ALLOW_MAX 128

struct segs {
	int n;
	const char *p[ROUTER_MAX_SEGMENTS];
	size_t len[ROUTER_MAX_SEGMENTS];
};

/* Split "/a/b" into {"a","b"}; "/" gives zero segments. False for a path
 * that does not start with '/', has an empty, "." or ".." segment, or too
 * many segments. */
static bool split_path(const char *path, struct segs *out)
{
	const char *s;

	out->n = 0;
	if (path == NULL || path[0] != '/')
		return false;
	if (path[1] == '\0')
		return true;
	s = path + 1;
	for (;;) {
		const char *slash = strchr(s, '/');
		size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);

		if (len == 0 || out->n >= ROUTER_MAX_SEGMENTS)
			return false;
		if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		out->p[out->n] = s;
		out->len[out->n] = len;
		out->n++;
		if (slash == NULL)
			return true;
		s = slash + 1;
	}
}

static bool seg_is_param(const char *p, size_t len)
{
	return len >= 3 && p[0] == '{' && p[len - 1] == '}';
}

/* Does the pattern match the path segments? On a match *literal_mask has
 * bit (31 - i) set for each literal segment i, so a larger mask means "a
 * literal earlier". */
static bool pattern_matches(const char *pattern, const struct segs *path,
			    uint32_t *literal_mask)
{
	struct segs pat;
	uint32_t mask = 0;

	if (!split_path(pattern, &pat) || pat.n != path->n)
		return false;
	for (int i = 0; i < pat.n; i++) {
		if (seg_is_param(pat.p[i], pat.len[i]))
			continue;
		if (pat.len[i] != path->len[i] ||
		    memcmp(pat.p[i], path->p[i], pat.len[i]) != 0)
			return false;
		mask |= 1u << (31 - i);
	}
	*literal_mask = mask;
	return true;
}

/* Append method to the comma-separated allow list unless already there. */
static void allow_add(char *allow, size_t cap, const char *method)
{
	size_t mlen = strlen(method);
	size_t used = strlen(allow);
	const char *p = allow;

	while ((p = strstr(p, method)) != NULL) {
		bool starts = p == allow || p[-1] == ' ';
		bool ends = p[mlen] == '\0' || p[mlen] == ',';

		if (starts && ends)
			return;
		p += mlen;
	}
	if (used + mlen + 3 > cap)
		return;
	if (used > 0) {
		memcpy(allow + used, ", ", 2);
		used += 2;
	}
	memcpy(allow + used, method, mlen + 1);
}

/* Store the {name} parameters of rt's pattern into req (arena copies). */
static bool store_params(const struct route *rt, const struct segs *path,
			 struct http_request *req)
{
	struct segs pat;

	req->nparams = 0;
	if (!split_path(rt->pattern, &pat))
		return false;
	for (int i = 0; i < pat.n; i++) {
		char *name, *value;

		if (!seg_is_param(pat.p[i], pat.len[i]))
			continue;
		if (req->nparams >= HTTP_MAX_PARAMS)
			return false;
		name = arena_strndup(req->arena, pat.p[i] + 1, pat.len[i] - 2);
		value = arena_strndup(req->arena, path->p[i], path->len[i]);
		if (name == NULL || value == NULL)
			return false;
		req->param_names[req->nparams] = name;
		req->param_values[req->nparams] = value;
		req->nparams++;
	}
	return true;
}

enum route_match router_match(const struct route *table, size_t n,
			      struct http_request *req, const struct route **out,
			      const char **allow)
{
	struct segs path;
	const struct route *best = NULL;
	uint32_t best_mask = 0;
	char allow_buf[ROUTER_ALLOW_MAX] = "";
	bool path_known = false;
	bool head = false;

	*out = NULL;
	if (allow != NULL)
		*allow = NULL;
	req->nparams = 0;
	if (req->method == NULL || !split_path(req->path, &path))
		return ROUTE_NOT_FOUND;
	head = strcmp(req->method, "HEAD") == 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t mask = 0;

		if (!pattern_matches(table[i].pattern, &path, &mask))
			continue;
		path_known = true;
		if (strcmp(table[i].method, req->method) != 0 &&
		    !(head && strcmp(table[i].method, "GET") == 0)) {
			allow_add(allow_buf, sizeof allow_buf, table[i].method);
			if (strcmp(table[i].method, "GET") == 0)
				allow_add(allow_buf, sizeof allow_buf, "HEAD");
			continue;
		}
		if (best == NULL || mask > best_mask) {
			best = &table[i];
			best_mask = mask;
		}
	}
	if (best != NULL) {
		if (!store_params(best, &path, req))
			return ROUTE_NOT_FOUND; /* arena exhausted */
		*out = best;
		return ROUTE_FOUND;
	}
	if (!path_known)
		return ROUTE_NOT_FOUND;
	if (allow != NULL)
		*allow = arena_strdup(req->arena, allow_buf);
	return ROUTE_METHOD_NOT_ALLOWED;
}

const char *http_param(const struct http_request *r, const char *name)
{
	for (int i = 0; i < r->nparams; i++)
		if (strcmp(r->param_names[i], name) == 0)
			return r->param_values[i];
	return NULL;
}
