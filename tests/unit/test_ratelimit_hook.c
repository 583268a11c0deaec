/* Unit tests for api/ratelimit_hook.c: the client (IP) and user hooks, how
 * their headers merge, disabled limits, fail-open logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/ratelimit_hook.h"
#include "app/app.h"
#include "auth/ratelimit.h"
#include "core/log.h"

struct fixture {
	struct config cfg;
	struct app app;
	struct arena arena;
};

static const struct route any_route = { "GET", "/x", NULL, ROLE_VIEWER, 0 };

static struct fixture *fixture_new(int per_minute, bool enabled, const char *redis_url)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->cfg.rate_limit_enabled = enabled;
	f->cfg.rate_limit_requests_per_minute = per_minute;
	f->cfg.redis_url = (char *)redis_url;
	f->app.cfg = &f->cfg;
	char err[256];
	assert_int_equal(ratelimit_hook_new(&f->cfg, &f->app.rl, err, sizeof err), 0);
	f->arena = (struct arena)ARENA_INIT;
	return f;
}

static void fixture_free(struct fixture *f)
{
	ratelimit_free(f->app.rl);
	arena_release(&f->arena);
	free(f);
}

static void request_init(struct fixture *f, struct http_request *req, const char *ip,
			 const char *user_id)
{
	memset(req, 0, sizeof *req);
	req->app = &f->app;
	req->arena = &f->arena;
	req->client_ip = ip;
	if (user_id != NULL) {
		req->auth.authenticated = true;
		(void)snprintf(req->auth.user_id, sizeof req->auth.user_id, "%s", user_id);
	}
}

static const char *hdr(const struct http_response *res, const char *name)
{
	for (int i = 0; i < res->nheaders; i++)
		if (strcasecmp(res->header_names[i], name) == 0)
			return res->header_values[i];
	return NULL;
}

static int count_hdr(const struct http_response *res, const char *name)
{
	int n = 0;
	for (int i = 0; i < res->nheaders; i++)
		n += strcasecmp(res->header_names[i], name) == 0;
	return n;
}

/* Both hooks as the server runs them; returns whether the request passed. */
static bool run_hooks(struct fixture *f, const char *ip, const char *user,
		      struct http_response *res)
{
	struct http_request req;
	request_init(f, &req, ip, user);
	memset(res, 0, sizeof *res);
	if (!ratelimit_hook_client(&req, &any_route, res))
		return false;
	return ratelimit_hook_user(&req, &any_route, res);
}

static void response_free(struct http_response *res)
{
	json_decref(res->json);
	res->json = NULL;
}

static void test_ip_bucket_counts_down_then_429(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(3, true, NULL);
	struct http_response res;
	static const char *const want[] = { "2", "1", "0" };
	for (int i = 0; i < 3; i++) {
		assert_true(run_hooks(f, "10.0.0.1", NULL, &res));
		assert_string_equal(hdr(&res, "RateLimit-Limit"), "3");
		assert_string_equal(hdr(&res, "RateLimit-Remaining"), want[i]);
		assert_non_null(hdr(&res, "RateLimit-Reset"));
		assert_null(hdr(&res, "Retry-After"));
		response_free(&res);
	}
	assert_false(run_hooks(f, "10.0.0.1", NULL, &res));
	assert_int_equal(res.status, 429);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(res.json, "error"), "code")),
			    "rate_limited");
	assert_string_equal(hdr(&res, "RateLimit-Remaining"), "0");
	assert_true(strtol(hdr(&res, "Retry-After"), NULL, 10) >= 1);
	assert_true(strtol(hdr(&res, "RateLimit-Reset"), NULL, 10) >= 1);
	response_free(&res);
	/* another IP has its own bucket */
	assert_true(run_hooks(f, "10.0.0.2", NULL, &res));
	assert_string_equal(hdr(&res, "RateLimit-Remaining"), "2");
	response_free(&res);
	fixture_free(f);
}

/* Table: IP tokens spent before, user tokens spent before, expected
 * Remaining on the next authenticated request (the smaller of the two). */
static void test_headers_merge_to_the_tighter_bucket(void **state)
{
	(void)state;
	static const struct { int ip_before, user_before; const char *remaining; } cases[] = {
		{ 0, 0, "9" }, { 3, 0, "6" }, { 0, 5, "4" }, { 2, 2, "7" }, { 7, 1, "2" },
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct fixture *f = fixture_new(10, true, NULL);
		struct http_response res;
		for (int i = 0; i < cases[c].ip_before; i++) {
			assert_true(run_hooks(f, "10.1.1.1", NULL, &res));
			response_free(&res);
		}
		for (int i = 0; i < cases[c].user_before; i++) {
			char ip[32];
			(void)snprintf(ip, sizeof ip, "10.2.0.%d", i + 1);
			assert_true(run_hooks(f, ip, "u-1", &res));
			response_free(&res);
		}
		assert_true(run_hooks(f, "10.1.1.1", "u-1", &res));
		assert_string_equal(hdr(&res, "RateLimit-Remaining"), cases[c].remaining);
		assert_int_equal(count_hdr(&res, "RateLimit-Remaining"), 1);
		assert_int_equal(count_hdr(&res, "RateLimit-Limit"), 1);
		assert_int_equal(count_hdr(&res, "RateLimit-Reset"), 1);
		response_free(&res);
		fixture_free(f);
	}
}

static void test_user_bucket_denies_across_ips(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(2, true, NULL);
	struct http_response res;
	assert_true(run_hooks(f, "10.3.0.1", "u-2", &res));
	response_free(&res);
	assert_true(run_hooks(f, "10.3.0.2", "u-2", &res));
	response_free(&res);
	assert_false(run_hooks(f, "10.3.0.3", "u-2", &res));
	assert_int_equal(res.status, 429);
	assert_string_equal(hdr(&res, "RateLimit-Remaining"), "0");
	assert_int_equal(count_hdr(&res, "RateLimit-Remaining"), 1);
	assert_int_equal(count_hdr(&res, "Retry-After"), 1);
	response_free(&res);
	fixture_free(f);
}

static void test_disabled_sends_nothing(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(1, false, NULL);
	struct http_response res;
	for (int i = 0; i < 20; i++) {
		assert_true(run_hooks(f, "10.4.0.1", "u-3", &res));
		assert_int_equal(res.nheaders, 0);
		assert_int_equal(res.status, 0);
	}
	fixture_free(f);
}

static void test_no_limiter_allows(void **state)
{
	(void)state;
	struct http_request req;
	struct http_response res;
	memset(&req, 0, sizeof req);
	memset(&res, 0, sizeof res);
	req.client_ip = "10.5.0.1";
	assert_true(ratelimit_hook_client(&req, &any_route, &res)); /* no app */
	struct config cfg = { .rate_limit_enabled = true };
	struct app app = { .cfg = &cfg };
	req.app = &app;
	assert_true(ratelimit_hook_client(&req, &any_route, &res)); /* no rl */
	assert_true(ratelimit_hook_user(&req, &any_route, &res));
	assert_int_equal(res.nheaders, 0);
}

static void test_redis_down_fails_open_one_warning(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	log_setup(LOG_INFO, LOG_FORMAT_JSON);
	log_set_fd(fds[1]);
	/* port 1: nothing listens there */
	struct fixture *f = fixture_new(1, true, "redis://127.0.0.1:1");
	struct http_response res;
	for (int i = 0; i < 10; i++) {
		assert_true(run_hooks(f, "10.6.0.1", "u-4", &res));
		assert_int_equal(res.status, 0);
		assert_string_equal(hdr(&res, "RateLimit-Remaining"), "1");
	}
	log_set_fd(2);
	close(fds[1]);
	char buf[8192];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof buf - 1 && (n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fds[0]);
	int warnings = 0;
	for (const char *p = buf; (p = strstr(p, "rate limiter degraded")) != NULL; p++)
		warnings++;
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(buf, "\"level\":\"warn\""));
	fixture_free(f);
}

static void test_bad_settings_refused(void **state)
{
	(void)state;
	struct config cfg = { .rate_limit_enabled = true, .rate_limit_requests_per_minute = 0 };
	struct ratelimit *rl = (struct ratelimit *)&cfg;
	char err[256] = "";
	assert_int_equal(ratelimit_hook_new(&cfg, &rl, err, sizeof err), -1);
	assert_null(rl);
	assert_non_null(strstr(err, "RATE_LIMIT_REQUESTS_PER_MINUTE"));
	cfg.rate_limit_requests_per_minute = 10;
	cfg.redis_url = (char *)"http://nope";
	assert_int_equal(ratelimit_hook_new(&cfg, &rl, err, sizeof err), -1);
	assert_null(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_bucket_counts_down_then_429),
		cmocka_unit_test(test_headers_merge_to_the_tighter_bucket),
		cmocka_unit_test(test_user_bucket_denies_across_ips),
		cmocka_unit_test(test_disabled_sends_nothing),
		cmocka_unit_test(test_no_limiter_allows),
		cmocka_unit_test(test_redis_down_fails_open_one_warning),
		cmocka_unit_test(test_bad_settings_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
