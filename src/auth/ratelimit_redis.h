/* ratelimit_redis: the Redis backend of ratelimit (internal to src/auth).
 *
 * Runs the bucket and window Lua scripts atomically (EVALSHA, EVAL on
 * NOSCRIPT) over a small mutex-guarded connection pool, and keeps the health
 * state: after a connection-level failure the backend is "down" and no I/O
 * is attempted until a backoff (100 ms doubling to 5 s) has passed; then one
 * caller probes. See ratelimit.h for the data layout. */
#ifndef PYTAKE_AUTH_RATELIMIT_REDIS_H
#define PYTAKE_AUTH_RATELIMIT_REDIS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RL_REDIS_HOST_MAX 255
#define RL_REDIS_USER_MAX 127
#define RL_REDIS_PASSWORD_MAX 255

enum {
	RL_REDIS_OK = 0,
	RL_REDIS_ERROR = -1,   /* talked to Redis and it failed (counted) */
	RL_REDIS_SKIPPED = -2, /* backing off or pool exhausted: no I/O done */
};

struct rl_redis_addr {
	char host[RL_REDIS_HOST_MAX + 1];
	char user[RL_REDIS_USER_MAX + 1];         /* "" when none */
	char password[RL_REDIS_PASSWORD_MAX + 1]; /* "" when none */
	int port;
	int db;
};

/* Parse "redis://[[user]:password@]host[:port][/db]". host may be "[v6]".
 * Returns 0 and fills *out, or -1 on anything malformed or too long. */
int rl_redis_parse_url(const char *url, struct rl_redis_addr *out)
	__attribute__((warn_unused_result));

struct rl_redis;

/* A backend for url; does not connect. NULL on a bad url or no memory.
 * Caller frees with rl_redis_free() (NULL is a no-op). */
struct rl_redis *rl_redis_new(const char *url, int timeout_ms, int pool_size);
void rl_redis_free(struct rl_redis *r);

/* Run the bucket script on key (the caller's key, unprefixed, klen bytes):
 * refill at now_us, take one token if there is one. On RL_REDIS_OK sets
 * *allowed and *level (units, see ratelimit.c). */
int rl_redis_bucket(struct rl_redis *r, const char *key, size_t klen,
		    int64_t per_minute, int64_t now_us, bool *allowed,
		    int64_t *level);

/* Run the window script: count (incr) or read key's window of window_us at
 * now_us. On RL_REDIS_OK sets *count and *start_us. */
int rl_redis_window(struct rl_redis *r, const char *key, size_t klen,
		    int64_t window_us, int64_t now_us, bool incr,
		    int64_t *count, int64_t *start_us);

/* Delete key's window. */
int rl_redis_window_del(struct rl_redis *r, const char *key, size_t klen);

uint64_t rl_redis_errors(const struct rl_redis *r);
bool rl_redis_is_up(struct rl_redis *r);

#endif
