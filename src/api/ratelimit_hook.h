/* ratelimit_hook: request rate limits (API.md "Rate limiting") as the
 * server's two rate-limit hooks, on top of auth/ratelimit.h.
 *
 * Design note
 * -----------
 * Two token buckets of RATE_LIMIT_REQUESTS_PER_MINUTE each:
 *   "ip:<client_ip>"  taken by ratelimit_hook_client, which the server runs
 *                     BEFORE authenticate, so requests rejected with 401
 *                     (floods of bad or revoked tokens) are limited per IP
 *                     too and cost no database query once over the limit;
 *   "user:<user_id>"  taken by ratelimit_hook_user, which runs after
 *                     authenticate, only for authenticated requests.
 * Routes flagged ROUTE_NO_RATE_LIMIT (/health, /ready, /webhooks/meta) run
 * neither hook. A denied bucket answers 429 rate_limited with Retry-After
 * (seconds, >= 1) and RateLimit-Limit / RateLimit-Remaining (0) /
 * RateLimit-Reset. An allowed request carries the same three headers with
 * the numbers of the more restrictive bucket (fewer tokens left; on a tie
 * the later reset). When the user bucket denies, the IP token already taken
 * is not given back.
 *
 * RATE_LIMIT_ENABLED=false: nothing is limited and NO RateLimit-* header is
 * sent on any answer (a header would promise a limit that does not exist).
 *
 * Backend: in process, or Redis when REDIS_URL is set (several processes
 * then share each budget). Redis trouble fails open inside the limiter; the
 * hook logs one warning "rate limiter degraded" at most every 10 s per
 * process (not per request) and the request goes on, never a 500. The
 * headers of a fail-open answer show a full bucket.
 *
 * Keys carry no installation prefix: installations sharing one Redis server
 * must use different logical databases (REDIS_URL redis://host:port/N). */
#ifndef PYTAKE_API_RATELIMIT_HOOK_H
#define PYTAKE_API_RATELIMIT_HOOK_H
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "http/http.h"

struct ratelimit;

/* The limiter for cfg: per_minute RATE_LIMIT_REQUESTS_PER_MINUTE, disabled
 * when RATE_LIMIT_ENABLED=false, Redis when REDIS_URL is set (not
 * connected yet). Returns 0 and *out (caller frees with ratelimit_free), or
 * -1 with a message in err (bad setting or out of memory). */
int ratelimit_hook_new(const struct config *cfg, struct ratelimit **out, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

/* http_server_options.rate_limit_client: the per-IP bucket. Uses
 * req->app->rl and req->app->cfg; allows everything when either is NULL or
 * limits are disabled. Returns false after filling res with the 429. */
bool ratelimit_hook_client(struct http_request *req, const struct route *rt,
			   struct http_response *res);

/* http_server_options.rate_limit: the per-user bucket, for authenticated
 * requests (req->auth.authenticated); merges its numbers into the headers
 * set by ratelimit_hook_client. Returns false after filling res with the
 * 429. */
bool ratelimit_hook_user(struct http_request *req, const struct route *rt,
			 struct http_response *res);

#endif
