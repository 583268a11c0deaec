/* app: what one running server (or CLI command) shares between threads:
 * the immutable configuration, the database pool and start-up facts.
 * Built by app_open() and torn down by app_close(); handlers reach it
 * through req->app. */
#ifndef PYTAKE_APP_H
#define PYTAKE_APP_H
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "db/db.h"

struct http_server;
struct authn;
struct ratelimit;
struct metrics;
struct graph_client;
struct webhooks;
struct workpool;

struct app {
	const struct config *cfg;
	struct db *db;
	struct http_server *server;
	int64_t started_at_us;
	/* authentication state (Redis revocation mirror), set by serve;
	 * NULL is fine: auth/authn.c then uses the database alone. */
	struct authn *authn;
	/* request rate limiter (api/ratelimit_hook.h), set by serve; NULL:
	 * nothing is rate limited. */
	struct ratelimit *rl;
	/* Prometheus registry (core/metrics.h) rendered by GET /metrics, set
	 * by serve; NULL: no metrics (the route answers 404). */
	struct metrics *metrics;
	/* Meta Graph API client (meta/graph.h) for GRAPH_API_BASE_URL, set by
	 * serve; shared by every thread. NULL: routes that call Meta answer
	 * 503. */
	struct graph_client *graph;
	/* Meta webhook ingestion (api/webhooks.c: group-commit writer and
	 * per-number secrets cache), set by serve; NULL: /webhooks/meta
	 * answers 503. */
	struct webhooks *webhooks;
	/* Worker pool for slow CPU work off the HTTP threads (argon2 in login,
	 * user create/patch and organization create; api/offload.h), set by
	 * serve; NULL: that work runs on the calling thread. */
	struct workpool *slow_pool;
};

/* Open the database pool for cfg (which must outlive app). 0 or -1 with a
 * message in err. */
int app_open(struct app *app, const struct config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Close what app_open opened. */
void app_close(struct app *app);
/* HTTP worker threads: HTTP_THREADS, or 2 x cores (at most 64). */
int app_http_threads(const struct config *cfg);

#endif
