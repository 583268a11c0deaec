/* ratelimit_hook: per-IP and per-user request limits as server hooks. See
 * ratelimit_hook.h for the design note. */
#include "api/ratelimit_hook.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "app/app.h"
#include "auth/ratelimit.h"
#include "core/log.h"
#include "core/timeutil.h"

#define WARN_INTERVAL_US (10LL * 1000 * 1000)

static const char H_LIMIT[] = "RateLimit-Limit";
static const char H_REMAINING[] = "RateLimit-Remaining";
static const char H_RESET[] = "RateLimit-Reset";

/* When the last "degraded" warning was written (µs); 0 = never. */
static _Atomic int64_t last_warn_us;

int ratelimit_hook_new(const struct config *cfg, struct ratelimit **out, char *err,
		       size_t errlen)
{
	struct ratelimit_options o = {
		.per_minute = cfg->rate_limit_requests_per_minute,
		.disabled = !cfg->rate_limit_enabled,
		.redis_url = cfg->redis_url,
	};
	*out = ratelimit_new(&o);
	if (*out == NULL) {
		(void)snprintf(err, errlen,
			       "cannot create the rate limiter (RATE_LIMIT_REQUESTS_PER_MINUTE "
			       "must be 1..%d, REDIS_URL redis://[[user]:password@]host[:port][/db])",
			       RATELIMIT_MAX_PER_MINUTE);
		return -1;
	}
	return 0;
}

/* The limiter to use for req, or NULL when nothing is to be limited. */
static struct ratelimit *active_limiter(const struct http_request *req)
{
	const struct app *app = req->app;
	if (app == NULL || app->rl == NULL || app->cfg == NULL ||
	    !app->cfg->rate_limit_enabled)
		return NULL;
	return app->rl;
}

/* One warning per WARN_INTERVAL_US per process while the backend fails. */
static void warn_degraded(struct ratelimit *rl, int64_t now_us)
{
	int64_t last = atomic_load(&last_warn_us);
	if (last != 0 && now_us - last < WARN_INTERVAL_US && now_us >= last)
		return;
	if (!atomic_compare_exchange_strong(&last_warn_us, &last, now_us))
		return; /* another thread warns */
	struct ratelimit_stats st;
	ratelimit_stats(rl, &st);
	log_event(LOG_WARN, "rate limiter degraded: backend unavailable, allowing requests",
		  LF_B("redis", st.redis), LF_I("backend_errors", (long long)st.backend_errors),
		  LF_I("fail_open", (long long)st.fail_open));
}

/* Take one token from key ("<kind>:<id>"). false when the limiter refused
 * the key (EINVAL: cannot happen for our keys); the request then goes on. */
static bool take(struct ratelimit *rl, const char *kind, const char *id,
		 struct ratelimit_result *r)
{
	char key[RATELIMIT_KEY_MAX + 1];
	int n = snprintf(key, sizeof key, "%s:%s", kind, id);
	if (n < 0 || (size_t)n >= sizeof key)
		return false;
	int64_t now = time_now_us();
	if (ratelimit_take(rl, key, now, r) != RATELIMIT_OK) {
		log_event(LOG_ERROR, "rate limiter refused a key", LF_S("kind", kind));
		return false;
	}
	if (r->degraded)
		warn_degraded(rl, now);
	return true;
}

/* Set header name to value, replacing an earlier value of ours. */
static void set_header(struct http_response *res, const char *name, const char *value)
{
	if (value == NULL)
		return;
	for (int i = 0; i < res->nheaders; i++) {
		if (strcasecmp(res->header_names[i], name) == 0) {
			res->header_values[i] = value;
			return;
		}
	}
	http_add_header(res, name, value);
}

static const char *num(struct arena *a, int64_t v)
{
	return arena_printf(a, "%lld", (long long)v);
}

static void set_headers(struct http_request *req, struct http_response *res,
			const struct ratelimit_result *r)
{
	set_header(res, H_LIMIT, num(req->arena, r->limit));
	set_header(res, H_REMAINING, num(req->arena, r->remaining));
	set_header(res, H_RESET, num(req->arena, r->reset_seconds));
}

/* A header we set earlier, as a number; false when absent or not ours. */
static bool header_number(const struct http_response *res, const char *name, int64_t *out)
{
	for (int i = 0; i < res->nheaders; i++) {
		if (strcasecmp(res->header_names[i], name) != 0)
			continue;
		char *end = NULL;
		errno = 0;
		long long v = strtoll(res->header_values[i], &end, 10);
		if (errno != 0 || end == res->header_values[i] || *end != '\0')
			return false;
		*out = v;
		return true;
	}
	return false;
}

static void answer_limited(struct http_request *req, struct http_response *res,
			   const struct ratelimit_result *r)
{
	int64_t wait = r->retry_after_seconds >= 1 ? r->retry_after_seconds : 1;
	set_headers(req, res, r);
	const char *ra = num(req->arena, wait);
	set_header(res, "Retry-After", ra != NULL ? ra : "1");
	const char *msg = arena_printf(req->arena, "rate limit exceeded; retry in %lld s",
				       (long long)wait);
	http_error(res, 429, "rate_limited", msg != NULL ? msg : "rate limit exceeded", NULL);
}

bool ratelimit_hook_client(struct http_request *req, const struct route *rt,
			   struct http_response *res)
{
	(void)rt;
	struct ratelimit *rl = active_limiter(req);
	struct ratelimit_result r;
	if (rl == NULL)
		return true;
	if (!take(rl, "ip", req->client_ip != NULL ? req->client_ip : "unknown", &r))
		return true;
	if (!r.allowed) {
		answer_limited(req, res, &r);
		return false;
	}
	set_headers(req, res, &r);
	return true;
}

bool ratelimit_hook_user(struct http_request *req, const struct route *rt,
			 struct http_response *res)
{
	(void)rt;
	struct ratelimit *rl = active_limiter(req);
	struct ratelimit_result r;
	if (rl == NULL || !req->auth.authenticated || req->auth.user_id[0] == '\0')
		return true;
	if (!take(rl, "user", req->auth.user_id, &r))
		return true;
	if (!r.allowed) {
		answer_limited(req, res, &r);
		return false;
	}
	int64_t ip_remaining = 0, ip_reset = 0;
	bool have_ip = header_number(res, H_REMAINING, &ip_remaining) &&
		       header_number(res, H_RESET, &ip_reset);
	bool user_tighter = !have_ip || r.remaining < ip_remaining ||
			    (r.remaining == ip_remaining && r.reset_seconds > ip_reset);
	if (user_tighter)
		set_headers(req, res, &r);
	return true;
}
