/* http: the request/response model, the route table and the server.
 *
 * A handler reads a parsed request and fills a response; it never touches
 * libmicrohttpd. The server (server.c) runs the middleware around it:
 * request id -> body limit (413) -> route match (404/405) -> client rate
 * limit -> authenticate (routes with a min_role) -> rate limit -> handler ->
 * render -> access log, slow log and metrics. */
#ifndef PYTAKE_HTTP_H
#define PYTAKE_HTTP_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

struct app;

enum role {
	ROLE_NONE = 0,     /* public route: no token needed */
	ROLE_VIEWER = 1,
	ROLE_AGENT = 2,
	ROLE_ORG_ADMIN = 3,
	ROLE_SUPER_ADMIN = 4,
};
const char *role_name(enum role r);            /* "viewer", ... */
enum role role_parse(const char *s);           /* ROLE_NONE when unknown */

/* Who made the request, filled by the authenticate hook. */
struct http_auth {
	bool authenticated;
	char user_id[37];
	char org_id[37];
	enum role role;
	char jti[64];
	int64_t exp;       /* token expiry, seconds since epoch */
};

#define HTTP_MAX_PARAMS 8
#define HTTP_MAX_RESPONSE_HEADERS 16

struct http_request {
	struct app *app;
	struct arena *arena;      /* freed when the response is sent */
	const char *method;       /* "GET", ... */
	const char *path;         /* decoded path, no query string */
	const char *route;        /* matched pattern, e.g. "/api/v1/users/{id}";
	                             "unmatched" before/without a match */
	int nparams;
	const char *param_names[HTTP_MAX_PARAMS];
	const char *param_values[HTTP_MAX_PARAMS];
	const char *body;         /* NUL-terminated copy, body_len bytes */
	size_t body_len;
	const char *request_id;
	const char *client_ip;    /* text form of the peer address */
	struct http_auth auth;
	void *impl;               /* server's connection; use the accessors */
};

/* Header (case-insensitive) or query parameter of the request; NULL when
 * absent. For repeated query keys the first wins. */
const char *http_header(const struct http_request *r, const char *name);
const char *http_query(const struct http_request *r, const char *name);
/* Path parameter by name ("id" for "{id}"); NULL when the route has none. */
const char *http_param(const struct http_request *r, const char *name);

struct http_response {
	int status;
	json_t *json;             /* owned; rendered when body is NULL */
	const char *body;         /* raw body (in the arena or static) */
	size_t body_len;
	const char *content_type; /* default "application/json; charset=utf-8" */
	int nheaders;
	const char *header_names[HTTP_MAX_RESPONSE_HEADERS];
	const char *header_values[HTTP_MAX_RESPONSE_HEADERS];
	/* streamed body (http_stream); owned by the response until sent */
	long (*stream_next)(void *ctx, char *buf, size_t cap);
	void (*stream_free)(void *ctx);
	void *stream_ctx;
};

/* Set a JSON answer (takes ownership of body). */
void http_json(struct http_response *res, int status, json_t *body);
/* The error shape of API.md: {"error": {"code", "message", "details"?}}.
 * details (an array, may be NULL) is taken over. */
void http_error(struct http_response *res, int status, const char *code,
		const char *message, json_t *details);
/* Raw body; the bytes must outlive the response (arena or static). */
void http_body(struct http_response *res, int status, const char *content_type,
	       const char *body, size_t len);
/* Streamed body, sent with chunked transfer encoding as it is produced,
 * so a large export never sits in memory whole. The server calls
 * next(ctx, buf, cap) on its connection thread whenever the socket can
 * take more: it fills buf with 1..cap bytes and returns the count, 0 at
 * the end, < 0 on an error (the connection is then closed: the client
 * sees a truncated chunked body, never a complete-looking one). next must
 * not touch the request (its arena may be gone): ctx carries copies.
 * free_ctx(ctx) is called exactly once: after the last call, or when the
 * answer is replaced or never sent. No Content-Length; the status is
 * final once the first byte is out. */
void http_stream(struct http_response *res, int status, const char *content_type,
		 long (*next)(void *ctx, char *buf, size_t cap), void (*free_ctx)(void *ctx),
		 void *ctx);
/* Add a response header; name and value must outlive the response (arena
 * or static). Ignored past HTTP_MAX_RESPONSE_HEADERS. */
void http_add_header(struct http_response *res, const char *name, const char *value);

/* The request body parsed with json_parse_object(). NULL after filling res
 * with 400 invalid_json (the message says why: not JSON, not an object,
 * too deep). The caller owns the result (json_decref). */
json_t *http_body_json(struct http_request *req, struct http_response *res);
/* The `limit` query parameter of list endpoints: absent -> 50; an integer
 * 1..200 -> that; anything else -> false after filling res with 422
 * validation_error, details [{"field": "limit", "message": ...}]. */
bool http_query_limit(struct http_request *req, struct http_response *res, int *limit);

/* Deferred answers: a handler that waits for another thread (e.g. the
 * webhook group-commit writer) calls http_defer(req) instead of filling res,
 * hands the token to that thread and returns at once; the server suspends
 * the connection (its HTTP thread serves other connections meanwhile). The
 * other thread later fills http_deferred_response(d) with the usual helpers
 * (http_json, http_error, http_body, http_add_header: no arena use, strings
 * static or owned by the response) and calls http_complete(d) exactly once;
 * the server then resumes the connection and sends the answer. Completing
 * before the handler returned is allowed (then nothing is suspended). After
 * http_defer the handler must not touch res, and after http_complete nobody
 * may touch req or d. The request (body, arena) stays alive until completed.
 * http_server_stop waits for deferred requests: completers must complete. */
struct http_deferred;
/* Returns the token, or NULL when already deferred (answer synchronously). */
struct http_deferred *http_defer(struct http_request *req);
struct http_response *http_deferred_response(struct http_deferred *d);
void http_complete(struct http_deferred *d);

typedef void (*http_handler)(struct http_request *req, struct http_response *res);

enum route_flags {
	ROUTE_NO_RATE_LIMIT = 1u << 0, /* e.g. /webhooks/meta, /health */
	ROUTE_RAW_BODY = 1u << 1,      /* body is not JSON (CSV, webhook bytes) */
};

struct route {
	const char *method;       /* "GET", "POST", "PATCH", "PUT", "DELETE" */
	const char *pattern;      /* "/api/v1/users/{id}": literal segments and
	                             {name} segments matching one non-empty
	                             segment */
	http_handler handler;
	enum role min_role;       /* ROLE_NONE: public */
	unsigned flags;
};

/* Routing result. */
enum route_match { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_METHOD_NOT_ALLOWED };
/* Match method+path against table. On ROUTE_FOUND *out is the route and the
 * params are stored into req (names and values are arena copies). On ROUTE_METHOD_NOT_ALLOWED allow gets "GET, POST" (arena).
 * Literal segments win over parameters ("/templates/sync" beats
 * "/templates/{id}"). Paths with "..", empty segments or NUL never match. */
enum route_match router_match(const struct route *table, size_t n,
			      struct http_request *req, const struct route **out,
			      const char **allow);

/* Hooks the server calls; NULL hooks are skipped. Each returns true to go
 * on, or false after filling res (401/403/429...). */
typedef bool (*http_hook)(struct http_request *req, const struct route *rt,
			  struct http_response *res);

struct http_server_options {
	const char *bind_address;
	int port;                 /* 0 = any free port (tests) */
	int threads;
	size_t max_body_bytes;
	size_t max_header_bytes;
	int request_timeout_s;
	int slow_request_ms;
	int max_connections;
	const struct route *routes;
	size_t nroutes;
	struct app *app;
	/* runs first, before authenticate, unless ROUTE_NO_RATE_LIMIT: limits
	 * per client (IP) so unauthenticated floods are limited too */
	http_hook rate_limit_client;
	http_hook authenticate;   /* runs for routes with min_role != ROLE_NONE */
	http_hook rate_limit;     /* runs after authenticate unless ROUTE_NO_RATE_LIMIT */
	/* Called once per answered request, after the answer is sent, on the
	 * connection's thread: route is the matched pattern ("unmatched" when
	 * none), method as sent, status as answered, duration in µs. Requests
	 * aborted before an answer are not reported. NULL: skipped. Must be
	 * fast and thread-safe (e.g. metrics). */
	void (*on_complete)(void *ctx, const char *route, const char *method,
			    int status, int64_t duration_us);
	void *on_complete_ctx;
};

struct http_server;
int http_server_start(const struct http_server_options *opt,
		      struct http_server **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int http_server_port(const struct http_server *s);
/* Stop accepting new connections; in-flight requests go on. */
void http_server_quiesce(struct http_server *s);
/* Wait for in-flight requests (at most timeout_ms), then stop and free.
 * http_server_stop(NULL) is a no-op. */
void http_server_stop(struct http_server *s, int timeout_ms);

/* Counters for /metrics. */
struct http_stats { uint64_t requests, in_flight, open_connections; };
void http_server_stats(struct http_server *s, struct http_stats *out);

#endif
