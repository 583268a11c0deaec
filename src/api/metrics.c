/* GET /metrics and the metrics this layer exposes.
 *
 * Design note
 * -----------
 * api_metrics_new() registers, in the app's registry (core/metrics.h):
 *   - per request (recorded by api_metrics_on_complete, the server's
 *     on_complete hook): pytake_http_requests_total{route,method,status}
 *     and pytake_http_request_duration_seconds{route,method}. route is the
 *     matched pattern or "unmatched" (never a raw path) and method is folded
 *     to the known verbs or "other", so the label sets stay bounded.
 *   - at scrape time (a collector reading the modules' own counters):
 *     HTTP in-flight requests and open connections, DB pool connections by
 *     state, waiters, acquisitions, timeouts, transaction retries, rate-limit
 *     rejections and fail-opens (when app->rl is set), process RSS (from
 *     /proc/self/statm), process start time and build info.
 * Later modules register their own families in the same registry
 * (app->metrics). */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "auth/ratelimit.h"
#include "core/metrics.h"
#include "db/db.h"

#define US_PER_SECOND 1000000

struct api_metrics {
	struct app *app;
	struct metric_family *requests, *duration;
	struct metric_series *in_flight, *open_connections;
	struct metric_series *pool_in_use, *pool_idle, *pool_waiting;
	struct metric_series *pool_acquired, *pool_timeouts, *tx_retries;
	struct metric_series *rl_rejections, *rl_fail_open;
	struct metric_series *rss, *start_time;
};

/* Latency buckets in µs: 0.5 ms .. 10 s. */
static const int64_t duration_bounds[] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static const char *method_label(const char *method)
{
	static const char *const known[] = { "GET", "POST", "PUT", "PATCH",
					     "DELETE", "HEAD", "OPTIONS" };

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (method != NULL && strcmp(method, known[i]) == 0)
			return known[i];
	return "other";
}

void api_metrics_on_complete(void *ctx, const char *route, const char *method, int status,
			     int64_t duration_us)
{
	struct api_metrics *am = ctx;
	const char *m = method_label(method);
	char code[4];

	if (am == NULL)
		return;
	if (status < 100 || status > 599)
		status = 0;
	/* three digits by hand: snprintf costs more than the rest of the hook */
	code[0] = (char)('0' + status / 100);
	code[1] = (char)('0' + status / 10 % 10);
	code[2] = (char)('0' + status % 10);
	code[3] = '\0';
	metrics_inc(am->requests, (const char *const[]){ route, m, code }, 1);
	metrics_record(am->duration, (const char *const[]){ route, m }, duration_us);
}

/* Resident set size in bytes from /proc/self/statm; -1 when unreadable. */
static int64_t resident_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long long size = 0, resident = 0;
	long page = sysconf(_SC_PAGESIZE);
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "%llu %llu", &size, &resident);
	(void)fclose(f);
	if (n != 2 || page <= 0)
		return -1;
	return (int64_t)resident * page;
}

static void collect_http(struct api_metrics *am)
{
	struct http_stats hs;

	http_server_stats(am->app->server, &hs);
	metrics_set(am->in_flight, (int64_t)hs.in_flight);
	metrics_set(am->open_connections, (int64_t)hs.open_connections);
}

static void collect_db(struct api_metrics *am)
{
	struct db_pool_stats ps = { 0 };

	if (am->app->db == NULL)
		return;
	db_pool_stats(am->app->db, &ps);
	metrics_set(am->pool_in_use, ps.in_use);
	metrics_set(am->pool_idle, ps.size - ps.in_use);
	metrics_set(am->pool_waiting, ps.waiting);
	metrics_set(am->pool_acquired, (int64_t)ps.acquired);
	metrics_set(am->pool_timeouts, (int64_t)ps.timeouts);
	metrics_set(am->tx_retries, (int64_t)db_tx_retries(am->app->db));
}

static void collect(struct metrics *m, void *ctx)
{
	struct api_metrics *am = ctx;
	int64_t rss = resident_bytes();

	(void)m;
	collect_http(am);
	collect_db(am);
	if (am->app->rl != NULL) {
		struct ratelimit_stats rs;

		ratelimit_stats(am->app->rl, &rs);
		metrics_set(am->rl_rejections, (int64_t)rs.denied);
		metrics_set(am->rl_fail_open, (int64_t)rs.fail_open);
	}
	if (rss >= 0)
		metrics_set(am->rss, rss);
}

static struct metric_series *gauge(struct metrics *m, const char *name, const char *help)
{
	return metrics_series(metrics_gauge_new(m, name, help, 0, NULL), NULL);
}

static struct metric_series *counter(struct metrics *m, const char *name, const char *help)
{
	return metrics_series(metrics_counter_new(m, name, help, 0, NULL), NULL);
}

static bool register_http(struct api_metrics *am, struct metrics *m)
{
	static const char *const req_labels[] = { "route", "method", "status" };

	am->requests = metrics_counter_new(m, "pytake_http_requests_total",
					   "HTTP requests answered, by route pattern, method and status.",
					   3, req_labels);
	am->duration = metrics_histogram_new(
		m, "pytake_http_request_duration_seconds",
		"Time from request start to the answer sent, by route pattern and method.", 2,
		req_labels, duration_bounds, sizeof duration_bounds / sizeof duration_bounds[0],
		US_PER_SECOND);
	am->in_flight = gauge(m, "pytake_http_in_flight", "HTTP requests being handled now.");
	am->open_connections = gauge(m, "pytake_http_open_connections",
				     "Open client connections (keep-alive included).");
	return am->requests != NULL && am->duration != NULL && am->in_flight != NULL &&
	       am->open_connections != NULL;
}

static bool register_db(struct api_metrics *am, struct metrics *m)
{
	static const char *const state[] = { "state" };
	struct metric_family *conns = metrics_gauge_new(
		m, "pytake_db_pool_connections", "Database pool slots by state.", 1, state);

	am->pool_in_use = metrics_series(conns, (const char *const[]){ "in_use" });
	am->pool_idle = metrics_series(conns, (const char *const[]){ "idle" });
	am->pool_waiting = gauge(m, "pytake_db_pool_waiting",
				 "Threads waiting for a database connection now.");
	am->pool_acquired = counter(m, "pytake_db_pool_acquired_total",
				    "Database connections handed out by the pool.");
	am->pool_timeouts = counter(m, "pytake_db_pool_timeouts_total",
				    "Waits for a database connection that timed out (answered 503).");
	am->tx_retries = counter(m, "pytake_db_tx_retries_total",
				 "Transactions retried after a serialization failure, deadlock or busy "
				 "database.");
	return am->pool_in_use != NULL && am->pool_idle != NULL && am->pool_waiting != NULL &&
	       am->pool_acquired != NULL && am->pool_timeouts != NULL && am->tx_retries != NULL;
}

static bool register_process(struct api_metrics *am, struct metrics *m)
{
	static const char *const version[] = { "version" };
	int64_t started = am->app->started_at_us;

	am->rl_rejections = counter(m, "pytake_ratelimit_rejections_total",
				    "Requests answered 429 by the rate limiter.");
	am->rl_fail_open = counter(m, "pytake_ratelimit_fail_open_total",
				   "Rate-limit decisions allowed without the backend (Redis down).");
	am->rss = gauge(m, "process_resident_memory_bytes", "Resident memory size in bytes.");
	am->start_time = gauge(m, "process_start_time_seconds",
			       "Start time of the process since the Unix epoch in seconds.");
	metrics_set(am->start_time, started / US_PER_SECOND);
	metrics_put(metrics_gauge_new(m, "pytake_build_info",
				      "Build information; the value is always 1.", 1, version),
		    (const char *const[]){ PYTAKE_VERSION }, 1);
	return am->rl_rejections != NULL && am->rl_fail_open != NULL && am->rss != NULL &&
	       am->start_time != NULL;
}

struct api_metrics *api_metrics_new(struct metrics *m, struct app *app)
{
	struct api_metrics *am;

	if (m == NULL || app == NULL)
		return NULL;
	am = calloc(1, sizeof *am);
	if (am == NULL)
		return NULL;
	am->app = app;
	if (!register_http(am, m) || !register_db(am, m) || !register_process(am, m) ||
	    metrics_add_collector(m, collect, am) != 0) {
		free(am);
		return NULL;
	}
	return am;
}

void api_metrics_free(struct api_metrics *am)
{
	free(am);
}

void api_metrics(struct http_request *req, struct http_response *res)
{
	char *text = NULL;
	size_t len = 0;
	char *copy;

	if (req->app == NULL || req->app->metrics == NULL) {
		http_error(res, 404, "not_found", "metrics are not enabled", NULL);
		return;
	}
	if (metrics_render(req->app->metrics, &text, &len) != 0) {
		http_error(res, 500, "internal_error", "cannot render the metrics", NULL);
		return;
	}
	copy = arena_alloc(req->arena, len + 1);
	if (copy == NULL) {
		free(text);
		http_error(res, 500, "internal_error", "out of memory", NULL);
		return;
	}
	memcpy(copy, text, len + 1);
	free(text);
	http_body(res, 200, METRICS_CONTENT_TYPE, copy, len);
}
