/* Unit tests for auth/ratelimit: token buckets (capacity, exact refill with
 * no drift, exact Retry-After/Reset, independence, concurrency, eviction)
 * and window counters, each against the in-process backend and, when
 * PYTAKE_TEST_REDIS_URL is set, against Redis (skipped otherwise); Redis
 * shared between instances, NOSCRIPT fallback, key expiry; fail-open with
 * counting and backoff when Redis is unreachable or silent; URL parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/ratelimit.h"
#include "auth/ratelimit_redis.h"

#define T0 1700000000000000LL /* µs: 2023-11-14 */
#define SEC 1000000LL

enum backend { LOCAL, REDIS };
static enum backend be_local = LOCAL;
static enum backend be_redis = REDIS;

static char run_id[64]; /* unique per run: Redis keeps keys between runs */

static const char *redis_url(void)
{
	const char *u = getenv("PYTAKE_TEST_REDIS_URL");
	return u && u[0] ? u : NULL;
}

/* A limiter on the backend in *state; skips the test when it is Redis and
 * no test Redis is configured. */
static struct ratelimit *make(void **state, int64_t per_minute, size_t max_keys)
{
	struct ratelimit_options o = { .per_minute = per_minute, .max_keys = max_keys };
	struct ratelimit *rl;

	if (*(enum backend *)*state == REDIS) {
		o.redis_url = redis_url();
		if (!o.redis_url)
			skip();
		o.redis_timeout_ms = 1000; /* generous: the test box is noisy */
	}
	rl = ratelimit_new(&o);
	assert_non_null(rl);
	return rl;
}

/* A key unique to this run and test. */
static const char *k(const char *name)
{
	static __thread char buf[RATELIMIT_KEY_MAX + 1];
	snprintf(buf, sizeof(buf), "%s:%s", run_id, name);
	return buf;
}

static struct ratelimit_result take(struct ratelimit *rl, const char *key, int64_t now)
{
	struct ratelimit_result r;
	assert_int_equal(ratelimit_take(rl, key, now, &r), RATELIMIT_OK);
	assert_false(r.degraded);
	return r;
}

/* ---- buckets ---- */

static void test_capacity(void **state)
{
	static const int64_t caps[] = { 1, 5, 60, 600 };

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		struct ratelimit *rl = make(state, caps[i], 0);
		char name[32];
		struct ratelimit_result r;

		snprintf(name, sizeof(name), "cap%zu", i);
		for (int64_t n = 0; n < caps[i]; n++) {
			r = take(rl, k(name), T0);
			assert_true(r.allowed);
			assert_int_equal(r.limit, caps[i]);
			assert_int_equal(r.remaining, caps[i] - n - 1);
			assert_int_equal(r.retry_after_seconds, 0);
		}
		for (int n = 0; n < 3; n++) {
			r = take(rl, k(name), T0);
			assert_false(r.allowed);
			assert_int_equal(r.remaining, 0);
			assert_true(r.retry_after_seconds >= 1);
		}
		ratelimit_free(rl);
	}
}

/* Drain a bucket at T0, then take once at T0 + after_us: exact answers. */
static void test_result_values(void **state)
{
	static const struct {
		int64_t per_minute;
		int64_t after_us;
		bool allowed;
		int64_t remaining, reset, retry;
	} rows[] = {
		{ 60, 0, false, 0, 60, 1 },
		{ 600, 0, false, 0, 60, 1 },   /* a token per 0.1 s: rounds up to 1 */
		{ 1, 0, false, 0, 60, 60 },
		{ 7, 0, false, 0, 60, 9 },     /* 8.57 s per token */
		{ 1, 30 * SEC, false, 0, 30, 30 },
		{ 1, 59 * SEC + 1, false, 0, 1, 1 },
		{ 1, 60 * SEC, true, 0, 60, 0 },
		{ 60, SEC / 2, false, 0, 60, 1 },  /* half a token */
		{ 60, SEC, true, 0, 60, 0 },
		{ 60, 10 * SEC, true, 9, 51, 0 },
		{ 60, 3600 * SEC, true, 59, 1, 0 },
		{ 120, 5 * SEC, true, 9, 56, 0 },  /* 10 back, one taken: 111 to go = 55.5 s */
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct ratelimit *rl = make(state, rows[i].per_minute, 0);
		char name[32];
		struct ratelimit_result r;

		snprintf(name, sizeof(name), "vals%zu", i);
		for (int64_t n = 0; n < rows[i].per_minute; n++)
			assert_true(take(rl, k(name), T0).allowed);
		r = take(rl, k(name), T0 + rows[i].after_us);
		assert_int_equal(r.allowed, rows[i].allowed);
		assert_int_equal(r.remaining, rows[i].remaining);
		assert_int_equal(r.reset_seconds, rows[i].reset);
		assert_int_equal(r.retry_after_seconds, rows[i].retry);
		ratelimit_free(rl);
	}
}

static void test_first_take_values(void **state)
{
	struct ratelimit *rl = make(state, 60, 0);
	struct ratelimit_result r = take(rl, k("first"), T0);

	assert_true(r.allowed);
	assert_int_equal(r.limit, 60);
	assert_int_equal(r.remaining, 59);
	assert_int_equal(r.reset_seconds, 1);
	assert_int_equal(r.retry_after_seconds, 0);
	ratelimit_free(rl);
}

/* Calls at a fixed step over exactly one minute, starting drained: exactly
 * per_minute are allowed, whatever the step (no rounding loss). */
static void test_refill_no_drift(void **state)
{
	static const struct {
		int64_t per_minute;
		int64_t step_us;
		bool local_only; /* too many round trips for Redis */
	} rows[] = {
		{ 600, 10000, false },
		{ 7, 100000, false },
		{ 7, 1000, true },   /* 0.0001167 token per step */
		{ 1000, 997, true }, /* steps not dividing anything */
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct ratelimit *rl;
		char name[32];
		int64_t allowed = 0, t;

		if (rows[i].local_only && *(enum backend *)*state == REDIS)
			continue;
		rl = make(state, rows[i].per_minute, 0);
		snprintf(name, sizeof(name), "drift%zu", i);
		for (int64_t n = 0; n < rows[i].per_minute; n++)
			assert_true(take(rl, k(name), T0).allowed);
		for (t = T0 + rows[i].step_us; t <= T0 + 60 * SEC; t += rows[i].step_us)
			allowed += take(rl, k(name), t).allowed;
		/* The last step may land short of the minute: at most one less. */
		if ((60 * SEC) % rows[i].step_us == 0)
			assert_int_equal(allowed, rows[i].per_minute);
		else
			assert_in_range(allowed, rows[i].per_minute - 1, rows[i].per_minute);
		ratelimit_free(rl);
	}
}

static void test_keys_independent(void **state)
{
	struct ratelimit *rl = make(state, 3, 0);

	for (int n = 0; n < 3; n++)
		assert_true(take(rl, k("user:a"), T0).allowed);
	assert_false(take(rl, k("user:a"), T0).allowed);
	assert_true(take(rl, k("user:b"), T0).allowed);
	assert_int_equal(take(rl, k("user:b"), T0).remaining, 1);
	assert_true(take(rl, k("ip:a"), T0).allowed);
	assert_false(take(rl, k("user:a"), T0).allowed);
	ratelimit_free(rl);
}

static void test_clock_backwards(void **state)
{
	struct ratelimit *rl = make(state, 60, 0);
	struct ratelimit_result r;

	for (int n = 0; n < 60; n++)
		assert_true(take(rl, k("back"), T0).allowed);
	r = take(rl, k("back"), T0 - 30 * SEC); /* no refill, no panic */
	assert_false(r.allowed);
	assert_int_equal(r.retry_after_seconds, 1);
	assert_false(take(rl, k("back"), T0 + SEC / 2).allowed);
	assert_true(take(rl, k("back"), T0 + SEC).allowed);
	ratelimit_free(rl);
}

struct hammer {
	struct ratelimit *rl;
	const char *key;
	int calls;
	bool real_clock;
	pthread_barrier_t *start;
	int64_t allowed;
};

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;

	pthread_barrier_wait(h->start); /* all threads at once */
	for (int i = 0; i < h->calls; i++) {
		struct ratelimit_result r;
		int64_t now = h->real_clock ? wall_us() : T0;
		if (ratelimit_take(h->rl, h->key, now, &r) != RATELIMIT_OK || r.degraded)
			return NULL;
		h->allowed += r.allowed;
	}
	return h;
}

static int64_t run_hammer(struct ratelimit *rl, const char *key, int threads,
			  int calls, bool real_clock)
{
	pthread_t tid[16];
	struct hammer h[16];
	pthread_barrier_t start;
	int64_t total = 0;

	assert_true(threads <= 16);
	assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)threads), 0);
	for (int i = 0; i < threads; i++) {
		h[i] = (struct hammer){ rl, key, calls, real_clock, &start, 0 };
		assert_int_equal(pthread_create(&tid[i], NULL, hammer_main, &h[i]), 0);
	}
	for (int i = 0; i < threads; i++) {
		void *ret = NULL;
		assert_int_equal(pthread_join(tid[i], &ret), 0);
		assert_ptr_equal(ret, &h[i]);
		total += h[i].allowed;
	}
	pthread_barrier_destroy(&start);
	return total;
}

static void test_threads_fixed_clock(void **state)
{
	bool redis = *(enum backend *)*state == REDIS;
	/* Most calls are allowed, so a lost update would show as too many. */
	int64_t cap = redis ? 1200 : 30000;
	int calls = redis ? 200 : 5000;
	int rounds = redis ? 1 : 20; /* races are probabilistic: try often */
	struct ratelimit *rl = make(state, cap, 0);

	for (int i = 0; i < rounds; i++) {
		char name[32];
		snprintf(name, sizeof(name), "hammer%d", i);
		assert_int_equal(run_hammer(rl, k(name), 8, calls, false), cap);
	}
	ratelimit_free(rl);
}

static void test_threads_real_clock(void **state)
{
	bool redis = *(enum backend *)*state == REDIS;
	struct ratelimit *rl = make(state, 6000, 0); /* 100 per second */
	int64_t start = wall_us(), allowed, elapsed;
	int calls = redis ? 1000 : 20000;

	allowed = run_hammer(rl, k("hammer-rt"), 8, calls, true);
	elapsed = wall_us() - start;
	assert_true(allowed >= 6000);
	assert_true(allowed <= 6000 + (elapsed * 6000) / (60 * SEC) + 1);
	ratelimit_free(rl);
}

static void test_invalid_args(void **state)
{
	struct ratelimit_options o = { .per_minute = 10 };
	struct ratelimit *rl = ratelimit_new(&o);
	struct ratelimit_result r = { .limit = -7 };
	struct ratelimit_window w = { .count = -7 };
	char longkey[RATELIMIT_KEY_MAX + 2];

	(void)state;
	assert_non_null(rl);
	memset(longkey, 'x', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	assert_int_equal(ratelimit_take(rl, NULL, T0, &r), RATELIMIT_EINVAL);
	assert_int_equal(ratelimit_take(rl, "", T0, &r), RATELIMIT_EINVAL);
	assert_int_equal(ratelimit_take(rl, longkey, T0, &r), RATELIMIT_EINVAL);
	assert_int_equal(ratelimit_take(rl, "a", -1, &r), RATELIMIT_EINVAL);
	assert_int_equal(ratelimit_take(NULL, "a", T0, &r), RATELIMIT_EINVAL);
	assert_int_equal(ratelimit_take(rl, "a", T0, NULL), RATELIMIT_EINVAL);
	assert_int_equal(r.limit, -7); /* untouched */
	longkey[RATELIMIT_KEY_MAX] = '\0'; /* exactly the maximum: fine */
	assert_int_equal(ratelimit_take(rl, longkey, T0, &r), RATELIMIT_OK);
	assert_int_equal(ratelimit_window_hit(rl, "a", 0, T0, &w), RATELIMIT_EINVAL);
	assert_int_equal(ratelimit_window_hit(rl, "a", RATELIMIT_MAX_WINDOW_SECONDS + 1,
					      T0, &w), RATELIMIT_EINVAL);
	assert_int_equal(ratelimit_window_count(rl, "", 60, T0, &w), RATELIMIT_EINVAL);
	assert_int_equal(ratelimit_window_reset(rl, NULL), RATELIMIT_EINVAL);
	assert_int_equal(w.count, -7);
	ratelimit_free(rl);
	ratelimit_free(NULL);
}

static void test_new_rejects_bad_options(void **state)
{
	static const struct ratelimit_options bad[] = {
		{ .per_minute = 0 },
		{ .per_minute = -5 },
		{ .per_minute = RATELIMIT_MAX_PER_MINUTE + 1 },
		{ .per_minute = 10, .redis_url = "http://127.0.0.1:6379" },
		{ .per_minute = 10, .redis_url = "redis://" },
		{ .per_minute = 10, .redis_url = "redis://h:99999" },
		{ .per_minute = 10, .redis_timeout_ms = -1 },
		{ .per_minute = 10, .redis_pool_size = -1 },
	};
	struct ratelimit_options ok = { .per_minute = RATELIMIT_MAX_PER_MINUTE };
	struct ratelimit *rl;

	(void)state;
	assert_null(ratelimit_new(NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(ratelimit_new(&bad[i]));
	rl = ratelimit_new(&ok);
	assert_non_null(rl);
	ratelimit_free(rl);
}

static void test_disabled(void **state)
{
	struct ratelimit_options o = { .per_minute = 2, .disabled = true };
	struct ratelimit *rl = ratelimit_new(&o);
	struct ratelimit_window w;

	(void)state;
	assert_non_null(rl);
	for (int n = 0; n < 10; n++) {
		struct ratelimit_result r = take(rl, "u", T0);
		assert_true(r.allowed);
		assert_int_equal(r.limit, 2);
		assert_int_equal(r.remaining, 2);
	}
	assert_int_equal(ratelimit_window_hit(rl, "login", 900, T0, &w), RATELIMIT_OK);
	assert_int_equal(ratelimit_window_hit(rl, "login", 900, T0, &w), RATELIMIT_OK);
	assert_int_equal(w.count, 2);
	ratelimit_free(rl);
}

/* ---- in-process memory bound ---- */

static void test_eviction_bound(void **state)
{
	static const size_t bounds[] = { 1, 3, 50, 5000 };

	(void)state;
	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		struct ratelimit_options o = { .per_minute = 10, .max_keys = bounds[i] };
		struct ratelimit *rl = ratelimit_new(&o);
		struct ratelimit_stats st;
		size_t n = bounds[i] * 4 + 10;

		assert_non_null(rl);
		for (size_t j = 0; j < n; j++) {
			char key[32];
			snprintf(key, sizeof(key), "ip:%zu", j);
			assert_true(take(rl, key, T0).allowed);
			ratelimit_stats(rl, &st);
			assert_true(st.keys <= bounds[i]);
		}
		ratelimit_stats(rl, &st);
		assert_true(st.keys >= bounds[i] / 2); /* the table is used */
		assert_int_equal(st.evicted, n - st.keys);
		assert_int_equal(st.allowed, n);
		ratelimit_free(rl);
	}
}

static void test_eviction_lru(void **state)
{
	struct ratelimit_options o = { .per_minute = 2, .max_keys = 3 };
	struct ratelimit *rl = ratelimit_new(&o);
	struct ratelimit_stats st;

	(void)state;
	assert_non_null(rl);
	assert_true(take(rl, "a", T0).allowed);
	assert_true(take(rl, "a", T0).allowed); /* a drained */
	assert_true(take(rl, "b", T0).allowed);
	assert_true(take(rl, "c", T0).allowed);
	assert_false(take(rl, "a", T0).allowed); /* a most recently used */
	assert_true(take(rl, "d", T0).allowed);  /* evicts b, the oldest */
	assert_false(take(rl, "a", T0).allowed); /* a kept its state */
	assert_int_equal(take(rl, "c", T0).remaining, 0);  /* c kept */
	assert_int_equal(take(rl, "b", T0).remaining, 1);  /* b was fresh again */
	ratelimit_stats(rl, &st);
	assert_int_equal(st.keys, 3);
	assert_int_equal(st.evicted, 2); /* b for d, then d for b */
	ratelimit_free(rl);
}

static void test_idle_entries_dropped_not_evicted(void **state)
{
	struct ratelimit_options o = { .per_minute = 60, .max_keys = 3 };
	struct ratelimit *rl = ratelimit_new(&o);
	struct ratelimit_stats st;

	(void)state;
	assert_non_null(rl);
	assert_true(take(rl, "a", T0).allowed);
	assert_true(take(rl, "b", T0).allowed);
	assert_true(take(rl, "c", T0).allowed);
	/* one second later each is full again: dropping them loses nothing */
	assert_true(take(rl, "d", T0 + SEC).allowed);
	ratelimit_stats(rl, &st);
	assert_int_equal(st.evicted, 0);
	assert_int_equal(st.keys, 1);
	ratelimit_free(rl);
}

/* ---- windows ---- */

static struct ratelimit_window whit(struct ratelimit *rl, const char *key,
				    int secs, int64_t now)
{
	struct ratelimit_window w;
	assert_int_equal(ratelimit_window_hit(rl, key, secs, now, &w), RATELIMIT_OK);
	assert_false(w.degraded);
	return w;
}

static struct ratelimit_window wcount(struct ratelimit *rl, const char *key,
				      int secs, int64_t now)
{
	struct ratelimit_window w;
	assert_int_equal(ratelimit_window_count(rl, key, secs, now, &w), RATELIMIT_OK);
	assert_false(w.degraded);
	return w;
}

static void test_window_counts(void **state)
{
	static const struct {
		int64_t at_us; /* after T0 */
		bool hit;
		int64_t count, reset;
	} steps[] = {
		{ 0, false, 0, 0 },
		{ 0, true, 1, 900 },
		{ 100 * SEC, true, 2, 800 },
		{ 100 * SEC, false, 2, 800 },
		{ 200 * SEC + 1, true, 3, 700 }, /* 699.999999 s rounds up */
		{ 300 * SEC, true, 4, 600 },
		{ 899 * SEC, true, 5, 1 },
		{ 899 * SEC, false, 5, 1 },
		{ 900 * SEC, false, 0, 0 },      /* the window has passed */
		{ 901 * SEC, true, 1, 900 },     /* a new window opens */
		{ 1000 * SEC, false, 1, 801 },
	};
	struct ratelimit *rl = make(state, 10, 0);

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int64_t now = T0 + steps[i].at_us;
		struct ratelimit_window w = steps[i].hit ? whit(rl, k("login:a@x"), 900, now)
							 : wcount(rl, k("login:a@x"), 900, now);
		assert_int_equal(w.count, steps[i].count);
		assert_int_equal(w.reset_seconds, steps[i].reset);
	}
	ratelimit_free(rl);
}

static void test_window_reset_and_namespaces(void **state)
{
	struct ratelimit *rl = make(state, 1, 0);

	for (int n = 1; n <= 5; n++)
		assert_int_equal(whit(rl, k("e1"), 900, T0).count, n);
	assert_int_equal(whit(rl, k("e2"), 900, T0).count, 1);
	assert_int_equal(ratelimit_window_reset(rl, k("e1")), RATELIMIT_OK);
	assert_int_equal(wcount(rl, k("e1"), 900, T0).count, 0);
	assert_int_equal(whit(rl, k("e1"), 900, T0).count, 1);
	assert_int_equal(wcount(rl, k("e2"), 900, T0).count, 1);
	assert_int_equal(ratelimit_window_reset(rl, k("never")), RATELIMIT_OK);
	/* same key string as a bucket: separate namespaces */
	assert_true(take(rl, k("e1"), T0).allowed);
	assert_false(take(rl, k("e1"), T0).allowed);
	assert_int_equal(wcount(rl, k("e1"), 900, T0).count, 1);
	ratelimit_free(rl);
}

/* ---- Redis only ---- */

static redisContext *test_redis_conn(void)
{
	struct rl_redis_addr a;
	redisContext *c;

	if (!redis_url())
		skip();
	assert_int_equal(rl_redis_parse_url(redis_url(), &a), 0);
	c = redisConnect(a.host, a.port);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	return c;
}

static void test_redis_shared_between_instances(void **state)
{
	struct ratelimit *a = make(state, 4, 0);
	struct ratelimit *b = make(state, 4, 0);

	assert_true(take(a, k("shared"), T0).allowed);
	assert_true(take(b, k("shared"), T0).allowed);
	assert_true(take(a, k("shared"), T0).allowed);
	assert_int_equal(take(b, k("shared"), T0).remaining, 0);
	assert_false(take(a, k("shared"), T0).allowed);
	assert_false(take(b, k("shared"), T0).allowed);
	assert_int_equal(whit(a, k("wshared"), 60, T0).count, 1);
	assert_int_equal(whit(b, k("wshared"), 60, T0).count, 2);
	assert_int_equal(ratelimit_window_reset(a, k("wshared")), RATELIMIT_OK);
	assert_int_equal(wcount(b, k("wshared"), 60, T0).count, 0);
	ratelimit_free(a);
	ratelimit_free(b);
}

static void test_redis_noscript_and_expiry(void **state)
{
	redisContext *c = test_redis_conn();
	struct ratelimit *rl = make(state, 60, 0);
	char key[RATELIMIT_KEY_MAX + 32];
	redisReply *rep;

	assert_true(take(rl, k("ns"), T0).allowed);
	rep = redisCommand(c, "SCRIPT FLUSH");
	assert_non_null(rep);
	freeReplyObject(rep);
	assert_int_equal(take(rl, k("ns"), T0).remaining, 58); /* EVAL fallback */
	assert_int_equal(take(rl, k("ns"), T0).remaining, 57);
	whit(rl, k("nsw"), 900, T0);

	snprintf(key, sizeof(key), "pytake:rl:b:%s", k("ns"));
	rep = redisCommand(c, "PTTL %s", key);
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
	assert_in_range(rep->integer, 2000, 4000); /* 3 s to full + 1 s */
	freeReplyObject(rep);
	snprintf(key, sizeof(key), "pytake:rl:w:%s", k("nsw"));
	rep = redisCommand(c, "PTTL %s", key);
	assert_non_null(rep);
	assert_in_range(rep->integer, 900000, 901000);
	freeReplyObject(rep);
	redisFree(c);
	ratelimit_free(rl);
}

static void test_redis_foreign_value_fails_open(void **state)
{
	redisContext *c = test_redis_conn();
	struct ratelimit *rl = make(state, 1, 0);
	struct ratelimit_result r;
	struct ratelimit_stats st;
	char key[RATELIMIT_KEY_MAX + 32];
	redisReply *rep;

	snprintf(key, sizeof(key), "pytake:rl:b:%s", k("foreign"));
	rep = redisCommand(c, "SET %s notahash", key);
	assert_non_null(rep);
	freeReplyObject(rep);
	for (int n = 0; n < 3; n++) {
		assert_int_equal(ratelimit_take(rl, k("foreign"), T0, &r), RATELIMIT_OK);
		assert_true(r.allowed);
		assert_true(r.degraded);
	}
	ratelimit_stats(rl, &st);
	assert_int_equal(st.backend_errors, 3);
	assert_int_equal(st.fail_open, 3);
	assert_true(st.backend_up); /* the connection is fine: no backoff */
	assert_true(take(rl, k("other"), T0).allowed);
	redisFree(c);
	ratelimit_free(rl);
}

static long long redis_int(redisContext *c, const char *cmd, const char *arg)
{
	redisReply *rep = arg ? redisCommand(c, cmd, arg) : redisCommand(c, cmd);
	long long v;

	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
	v = rep->integer;
	freeReplyObject(rep);
	return v;
}

/* Kill this process's limiter connections: named pytake-rl, id > min_id. */
static int kill_limiter_clients(redisContext *c, long long min_id)
{
	redisReply *rep = redisCommand(c, "CLIENT LIST");
	int killed = 0;
	char *line, *save = NULL;

	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_STRING);
	for (line = strtok_r(rep->str, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		long long id = strtoll(line + 3, NULL, 10);
		if (strncmp(line, "id=", 3) != 0 || id <= min_id ||
		    !strstr(line, " name=pytake-rl "))
			continue;
		char idbuf[32];
		snprintf(idbuf, sizeof(idbuf), "%lld", id);
		assert_true(redis_int(c, "CLIENT KILL ID %s", idbuf) == 1);
		killed++;
	}
	freeReplyObject(rep);
	return killed;
}

static void test_redis_reconnects_after_drop(void **state)
{
	redisContext *c = test_redis_conn();
	long long my_id = redis_int(c, "CLIENT ID", NULL);
	struct ratelimit *rl = make(state, 10, 0);
	struct ratelimit_result r;
	struct ratelimit_stats st;

	assert_int_equal(take(rl, k("recon"), T0).remaining, 9);
	assert_int_equal(kill_limiter_clients(c, my_id), 1);
	assert_int_equal(ratelimit_take(rl, k("recon"), T0, &r), RATELIMIT_OK);
	assert_true(r.degraded && r.allowed);
	assert_int_equal(ratelimit_take(rl, k("recon"), T0, &r), RATELIMIT_OK);
	assert_true(r.degraded); /* backing off: not tried */
	ratelimit_stats(rl, &st);
	assert_int_equal(st.backend_errors, 1);
	assert_false(st.backend_up);
	usleep(150000);
	assert_int_equal(take(rl, k("recon"), T0).remaining, 8); /* state kept */
	ratelimit_stats(rl, &st);
	assert_true(st.backend_up);
	assert_int_equal(st.fail_open, 2);
	redisFree(c);
	ratelimit_free(rl);
}

static void test_redis_db_select(void **state)
{
	redisContext *c = test_redis_conn();
	struct rl_redis_addr a;
	struct ratelimit_options o = { .per_minute = 5, .redis_timeout_ms = 1000 };
	struct ratelimit *rl;
	char url[512], key[RATELIMIT_KEY_MAX + 32];

	(void)state;
	assert_int_equal(rl_redis_parse_url(redis_url(), &a), 0);
	snprintf(url, sizeof(url), strchr(a.host, ':') ? "redis://[%s]:%d/5"
						       : "redis://%s:%d/5",
		 a.host, a.port);
	o.redis_url = url;
	rl = ratelimit_new(&o);
	assert_non_null(rl);
	assert_true(take(rl, k("db5"), T0).allowed);
	snprintf(key, sizeof(key), "pytake:rl:b:%s", k("db5"));
	assert_int_equal(redis_int(c, "EXISTS %s", key), 0);
	{
		redisReply *rep = redisCommand(c, "SELECT 5");
		assert_non_null(rep);
		assert_int_equal(rep->type, REDIS_REPLY_STATUS);
		freeReplyObject(rep);
	}
	assert_int_equal(redis_int(c, "EXISTS %s", key), 1);
	redisFree(c);
	ratelimit_free(rl);
}

/* ---- Redis unreachable: no server needed ---- */

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

/* A loopback socket on a free port: listening (never accepting) or closed. */
static int loopback_socket(bool listening, int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	if (listening) {
		assert_int_equal(listen(fd, 16), 0);
		return fd;
	}
	close(fd);
	return -1;
}

static void check_fails_open_fast(bool listening)
{
	struct ratelimit_options o = { .per_minute = 1, .redis_timeout_ms = 50 };
	struct ratelimit *rl;
	struct ratelimit_stats st;
	struct ratelimit_window w;
	char url[64];
	int port, fd = loopback_socket(listening, &port);
	int64_t t;

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	o.redis_url = url;
	rl = ratelimit_new(&o);
	assert_non_null(rl);
	t = mono_us();
	for (int n = 0; n < 100; n++) {
		struct ratelimit_result r;
		assert_int_equal(ratelimit_take(rl, "u", T0, &r), RATELIMIT_OK);
		assert_true(r.allowed); /* capacity 1, yet all allowed */
		assert_true(r.degraded);
		assert_int_equal(r.limit, 1);
	}
	assert_int_equal(ratelimit_window_hit(rl, "login", 900, T0, &w), RATELIMIT_OK);
	assert_true(w.degraded);
	assert_int_equal(w.count, 0);
	assert_int_equal(ratelimit_window_reset(rl, "login"), RATELIMIT_OK);
	t = mono_us() - t;
	assert_true(t < 400000); /* one 50 ms timeout at most, then backoff */
	ratelimit_stats(rl, &st);
	assert_true(st.redis);
	assert_false(st.backend_up);
	assert_int_equal(st.fail_open, 102);
	assert_int_equal(st.allowed, 100);
	assert_in_range(st.backend_errors, 1, 2); /* not once per call */

	usleep(150000); /* past the first 100 ms backoff: one probe, one more error */
	{
		struct ratelimit_result r;
		assert_int_equal(ratelimit_take(rl, "u", T0, &r), RATELIMIT_OK);
		assert_true(r.degraded);
	}
	ratelimit_stats(rl, &st);
	assert_in_range(st.backend_errors, 2, 3);
	ratelimit_free(rl);
	if (fd >= 0)
		close(fd);
}

static void test_redis_refused_fails_open(void **state)
{
	(void)state;
	check_fails_open_fast(false);
}

static void test_redis_silent_fails_open(void **state)
{
	(void)state;
	check_fails_open_fast(true);
}

/* ---- URL parsing ---- */

static void test_parse_url(void **state)
{
	static const struct {
		const char *url;
		int rc;
		const char *host, *user, *password;
		int port, db;
	} rows[] = {
		{ "redis://127.0.0.1", 0, "127.0.0.1", "", "", 6379, 0 },
		{ "redis://localhost:6380", 0, "localhost", "", "", 6380, 0 },
		{ "redis://h:7000/3", 0, "h", "", "", 7000, 3 },
		{ "redis://h/", 0, "h", "", "", 6379, 0 },
		{ "redis://:s3cret@h", 0, "h", "", "s3cret", 6379, 0 },
		{ "redis://app:p%40ss%3Aw@h:1/2", 0, "h", "app", "p@ss:w", 1, 2 },
		{ "redis://[::1]:6390", 0, "::1", "", "", 6390, 0 },
		{ "redis://[::1]", 0, "::1", "", "", 6379, 0 },
		{ "rediss://h", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://:6379", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://h:0", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://h:65536", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://h:12x", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://h:-1", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://h/x", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://h/-1", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://h/10000", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://secret@h", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://:%zz@h", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://:%4@h", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://:%00@h", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://[::1:6379", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://[::1]x", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://h?db=1", -1, NULL, NULL, NULL, 0, 0 },
		{ "redis://h :1", -1, NULL, NULL, NULL, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct rl_redis_addr a;
		int rc = rl_redis_parse_url(rows[i].url, &a);
		if (rc != rows[i].rc)
			fail_msg("%s: rc %d", rows[i].url, rc);
		if (rc != 0)
			continue;
		assert_string_equal(a.host, rows[i].host);
		assert_string_equal(a.user, rows[i].user);
		assert_string_equal(a.password, rows[i].password);
		assert_int_equal(a.port, rows[i].port);
		assert_int_equal(a.db, rows[i].db);
	}
	{
		char big[600] = "redis://";
		memset(big + 8, 'h', 300);
		big[308] = '\0';
		struct rl_redis_addr a;
		assert_int_equal(rl_redis_parse_url(big, &a), -1);
	}
}

#define BOTH(f) { #f "/local", f, NULL, NULL, &be_local }, \
		{ #f "/redis", f, NULL, NULL, &be_redis }

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_capacity),
		BOTH(test_result_values),
		BOTH(test_first_take_values),
		BOTH(test_refill_no_drift),
		BOTH(test_keys_independent),
		BOTH(test_clock_backwards),
		BOTH(test_threads_fixed_clock),
		BOTH(test_threads_real_clock),
		BOTH(test_window_counts),
		BOTH(test_window_reset_and_namespaces),
		cmocka_unit_test(test_invalid_args),
		cmocka_unit_test(test_new_rejects_bad_options),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_eviction_bound),
		cmocka_unit_test(test_eviction_lru),
		cmocka_unit_test(test_idle_entries_dropped_not_evicted),
		{ "test_shared_between_instances/redis",
		  test_redis_shared_between_instances, NULL, NULL, &be_redis },
		{ "test_noscript_and_expiry/redis",
		  test_redis_noscript_and_expiry, NULL, NULL, &be_redis },
		{ "test_foreign_value_fails_open/redis",
		  test_redis_foreign_value_fails_open, NULL, NULL, &be_redis },
		{ "test_reconnects_after_drop/redis",
		  test_redis_reconnects_after_drop, NULL, NULL, &be_redis },
		{ "test_db_select/redis", test_redis_db_select, NULL, NULL, &be_redis },
		cmocka_unit_test(test_redis_refused_fails_open),
		cmocka_unit_test(test_redis_silent_fails_open),
		cmocka_unit_test(test_parse_url),
	};

	signal(SIGPIPE, SIG_IGN); /* as pytake serve: hiredis uses write(2) */
	snprintf(run_id, sizeof(run_id), "test-%ld-%lld", (long)getpid(),
		 (long long)wall_us());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
