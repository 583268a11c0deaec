/* authn: the server's `authenticate` hook (http_server_options.authenticate).
 *
 * Design note
 * -----------
 * For every route with a min_role the hook
 *   1. reads "Authorization: Bearer <token>" (scheme case-insensitive); no
 *      header or another scheme -> 401 unauthenticated;
 *   2. verifies the JWT (HS256 pinned, iss "pytake", exp checked here with
 *      the wall clock) -> 401 token_expired / invalid_token;
 *   3. when REDIS_URL is set, asks Redis whether the jti is revoked (key
 *      pytake:revoked:<jti>): a hit answers 401 at once;
 *   4. runs ONE database query for the user's current role and activity and
 *      whether the jti is in revoked_tokens (tokens_access_check): a
 *      missing or inactive user or a revoked jti -> 401 invalid_token. The
 *      role used from here on is the user's CURRENT role from that row, not
 *      the token's claim, so a demotion or a deactivation takes effect on
 *      the next request;
 *   5. the route's min_role against that role -> 403 forbidden;
 *   6. fills req->auth.
 * Every 401 carries WWW-Authenticate: Bearer error="invalid_token" (plus
 * error_description="token expired" for token_expired). Database trouble
 * answers 503 with Retry-After.
 *
 * The database is the source of truth for revocations: durable, and shared
 * by every process on the same database. Redis is only a mirror that lets a
 * revoked token be refused without the revocation sub-query mattering; the
 * combined query always runs, so a Redis that lost its data (or is down)
 * changes nothing. Redis errors are logged as a warning at most once a
 * minute and Redis is not retried for a few seconds afterwards; requests
 * then go on with the database alone.
 *
 * Redis connections are one per server thread (made on first use), so the
 * check takes no lock. Thread-safe. */
#ifndef PYTAKE_AUTH_AUTHN_H
#define PYTAKE_AUTH_AUTHN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "http/http.h"

struct authn;

/* Create the authentication state for cfg (which must outlive it). With
 * cfg->redis_url set, prepares (does not open) Redis connections; returns
 * -1 with a message in err only when the URL is malformed. Caller frees
 * with authn_free (NULL is a no-op; no request may be running). */
int authn_new(const struct config *cfg, struct authn **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void authn_free(struct authn *a);

/* The hook (see the design note). Uses req->app->authn when set (Redis
 * mirror); works without it. Returns true to go on, false after filling
 * res. */
bool authn_authenticate(struct http_request *req, const struct route *rt,
			struct http_response *res);

/* After a logout committed: mirror jti's revocation into Redis until exp_s
 * (seconds since the epoch). A no-op without Redis or for a NULL a; Redis
 * errors are logged (rate-limited) and otherwise ignored. */
void authn_mirror_revocation(struct authn *a, const char *jti, int64_t exp_s);

/* Fill res with the 401 of the design note for code ("unauthenticated",
 * "invalid_token" or "token_expired") and message. */
void authn_unauthorized(struct http_response *res, const char *code, const char *message);

#endif
