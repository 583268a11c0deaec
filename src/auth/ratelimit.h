/* ratelimit: token buckets for request rate limits, and fixed-window counters
 * for login lock-out, either in process or shared through Redis.
 *
 * Design
 * ------
 * Token bucket. Each key (the caller chooses it: "user:<uuid>", "ip:<addr>")
 * owns a bucket of `per_minute` tokens that refills at per_minute tokens per
 * 60 s; a request takes one token. Levels are exact integers in units of
 * 1/60,000,000 token: one token is 60e6 units, the bucket holds
 * per_minute * 60e6 units and gains exactly per_minute units per elapsed
 * microsecond. No floating point, no rounding, so no drift however often a
 * key is hit. A key never seen, or idle long enough to be full again, is a
 * full bucket: full buckets need no state and are dropped.
 *
 * Window counter. ratelimit_window_hit() counts events per key in a window
 * that opens at the first event and lasts window_seconds; the count starts
 * again from zero once the window has passed. Window keys and bucket keys are
 * separate namespaces. Login lock-out ("5 failures in 15 min per email"):
 *   ratelimit_window_count(rl, "login:<lowercased email>", 900, now, &w);
 *   if (w.count >= 5) -> 429 too_many_attempts, Retry-After: w.reset_seconds
 *   else check the password; on failure ratelimit_window_hit(same key),
 *   on success ratelimit_window_reset(same key).
 *
 * Time. Callers pass now_us (µs since the Unix epoch, normally
 * time_now_us()). Every decision is a function of the stored state and now_us
 * only, in both backends, so tests inject time. Time that goes backwards
 * refills nothing. With Redis, processes sharing buckets should have clocks
 * in sync (NTP); skew only makes a bucket refill late or early by the skew.
 *
 * In process: a hash table (SipHash with a random key, so clients cannot
 * choose colliding keys) split in up to 64 shards, each with its own mutex
 * and an LRU list. At most max_keys entries live at once: inserting into a
 * full shard first drops idle entries that are full/expired (no information
 * lost), then the least recently used one (counted as `evicted`; that key
 * starts again with a full bucket).
 *
 * Redis (redis_url set): every operation is one atomic Lua script run with
 * EVALSHA (the SHA-1 of the script is computed locally; on NOSCRIPT it falls
 * back to EVAL, which also loads it). Keys are "pytake:rl:b:<key>" (buckets,
 * a hash {l: level, t: last µs}) and "pytake:rl:w:<key>" (windows, a hash
 * {s: start µs, c: count}); each key has a PEXPIRE of the time until it is
 * full/expired plus one second, so idle keys disappear. Connections come from
 * a small mutex-guarded pool; connect and command timeouts are
 * redis_timeout_ms. Any Redis failure FAILS OPEN: the request is allowed
 * (result.degraded = true), the failure is counted, the connection dropped,
 * and Redis is not tried again before a backoff (100 ms doubling to 5 s)
 * has passed; meanwhile every call fails open at once without I/O.
 * Connections are named "pytake-rl" (CLIENT SETNAME). hiredis writes with
 * write(2): the process must ignore SIGPIPE (pytake serve does).
 *
 * All functions are thread-safe. */
#ifndef PYTAKE_AUTH_RATELIMIT_H
#define PYTAKE_AUTH_RATELIMIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_MAX_PER_MINUTE 1000000
#define RATELIMIT_KEY_MAX 512          /* bytes, not counting the NUL */
#define RATELIMIT_DEFAULT_MAX_KEYS 100000
#define RATELIMIT_DEFAULT_REDIS_TIMEOUT_MS 50
#define RATELIMIT_DEFAULT_REDIS_POOL 8
#define RATELIMIT_MAX_WINDOW_SECONDS (7 * 24 * 3600)

/* Return codes. */
enum {
	RATELIMIT_OK = 0,
	RATELIMIT_EINVAL = -1, /* NULL argument, empty/too long key, now_us < 0,
				  window_seconds out of range */
};

struct ratelimit_options {
	/* Bucket capacity and refill per minute, 1..RATELIMIT_MAX_PER_MINUTE
	 * (RATE_LIMIT_REQUESTS_PER_MINUTE). */
	int64_t per_minute;
	/* true: ratelimit_take() always allows (RATE_LIMIT_ENABLED=false).
	 * Window counters keep working: login lock-out is not a rate limit. */
	bool disabled;
	/* NULL or "": in process. Else "redis://[[user]:password@]host[:port][/db]"
	 * (host may be "[v6addr]"; port 6379, db 0 by default). The password
	 * is sent with AUTH and never logged. */
	const char *redis_url;
	int redis_timeout_ms;  /* connect and command timeout; 0 = 50 */
	int redis_pool_size;   /* max Redis connections; 0 = 8 */
	size_t max_keys;       /* in-process entry bound; 0 = 100000 */
};

struct ratelimit_result {
	bool allowed;
	bool degraded;               /* backend failed: allowed by fail-open */
	int64_t limit;               /* RateLimit-Limit: per_minute */
	int64_t remaining;           /* RateLimit-Remaining: whole tokens left */
	int64_t reset_seconds;       /* RateLimit-Reset: seconds until full, rounded up */
	int64_t retry_after_seconds; /* Retry-After: >= 1 when denied, else 0 */
};

struct ratelimit_window {
	bool degraded;       /* backend failed: count is 0 (fail open) */
	int64_t count;       /* events in the current window */
	int64_t reset_seconds; /* seconds until the window ends, rounded up;
				  0 when count is 0 */
};

struct ratelimit_stats {
	uint64_t allowed;        /* ratelimit_take() decisions, fail-open included */
	uint64_t denied;
	uint64_t fail_open;      /* calls answered without the backend */
	uint64_t backend_errors; /* Redis connect/command failures */
	uint64_t evicted;        /* in-process entries dropped early (max_keys) */
	uint64_t keys;           /* in-process entries held now */
	bool redis;              /* the Redis backend is configured */
	bool backend_up;         /* false while backing off after a failure */
};

struct ratelimit;

/* Create a limiter. Does not connect: Redis is reached on first use, so a
 * server starts while Redis is down (and fails open). Returns NULL when the
 * options are invalid (per_minute out of range, malformed redis_url, negative
 * sizes) or on out of memory. The caller owns the result: ratelimit_free(). */
struct ratelimit *ratelimit_new(const struct ratelimit_options *opts)
	__attribute__((warn_unused_result));

/* Free everything, closing Redis connections. NULL is a no-op. No call may be
 * running on rl. */
void ratelimit_free(struct ratelimit *rl);

/* Take one token from key's bucket at now_us and fill *out (all fields, also
 * on fail-open). Returns RATELIMIT_OK, or RATELIMIT_EINVAL with *out
 * untouched. A denied request takes nothing. Callers limiting both per user
 * and per IP call it once per key and answer 429 if either denies. */
int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_us,
		   struct ratelimit_result *out)
	__attribute__((warn_unused_result));

/* Count one event for key in its window of window_seconds
 * (1..RATELIMIT_MAX_WINDOW_SECONDS) and fill *out with the count including
 * this one. Returns RATELIMIT_OK (also on fail-open: count 0, degraded) or
 * RATELIMIT_EINVAL. */
int ratelimit_window_hit(struct ratelimit *rl, const char *key,
			 int window_seconds, int64_t now_us,
			 struct ratelimit_window *out)
	__attribute__((warn_unused_result));

/* Like ratelimit_window_hit() without counting: how many events key has in
 * its current window (0 when none or the window has passed). */
int ratelimit_window_count(struct ratelimit *rl, const char *key,
			   int window_seconds, int64_t now_us,
			   struct ratelimit_window *out)
	__attribute__((warn_unused_result));

/* Forget key's window (e.g. after a successful login). Returns RATELIMIT_OK
 * (also when there was nothing, or Redis failed: then counted in stats) or
 * RATELIMIT_EINVAL. */
int ratelimit_window_reset(struct ratelimit *rl, const char *key)
	__attribute__((warn_unused_result));

/* Snapshot of the counters (each read atomically; not one consistent cut). */
void ratelimit_stats(const struct ratelimit *rl, struct ratelimit_stats *out);

#endif
