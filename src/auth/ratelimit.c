/* ratelimit: token buckets and window counters. Design note in ratelimit.h.
 *
 * This file holds the arithmetic shared by both backends (levels in units of
 * 1/60e6 token, results), the in-process sharded table, and the dispatch to
 * ratelimit_redis.c. */
#include "auth/ratelimit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>

#include "auth/ratelimit_redis.h"

#define RL_UNITS_PER_TOKEN 60000000LL /* µs per minute: refill is per_minute units/µs */
#define RL_US_PER_SECOND 1000000LL
#define RL_MAX_SHARDS 64
#define RL_KEYS_PER_SHARD_MIN 1024 /* fewer keys than this per shard: fewer shards */
#define RL_TRIM_SCAN 4             /* idle entries dropped per insert at most */

enum rl_kind { RL_BUCKET = 'b', RL_WINDOW = 'w' };

struct rl_entry {
	struct rl_entry *hnext; /* hash chain */
	struct rl_entry *newer; /* LRU list */
	struct rl_entry *older;
	uint64_t hash;
	union {
		struct {
			int64_t level; /* units */
			int64_t last_us;
		} bucket;
		struct {
			int64_t start_us;
			int64_t window_us;
			int64_t count;
		} window;
	} u;
	size_t klen; /* bytes of key, kind byte included */
	char key[];  /* kind byte + caller's key, not NUL-terminated */
};

struct rl_shard {
	pthread_mutex_t mu;
	struct rl_entry **slots;
	size_t nslots; /* power of two */
	size_t count;
	size_t cap;
	struct rl_entry *newest;
	struct rl_entry *oldest;
} __attribute__((aligned(64)));

struct ratelimit {
	int64_t per_minute;
	bool disabled;
	struct rl_redis *redis; /* NULL: in process */
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
	size_t nshards; /* power of two */
	struct rl_shard *shards;
	_Atomic uint64_t allowed;
	_Atomic uint64_t denied;
	_Atomic uint64_t fail_open;
	_Atomic uint64_t evicted;
	_Atomic uint64_t keys;
};

/* ---- arithmetic shared by both backends ---- */

static int64_t ceil_div(int64_t a, int64_t b)
{
	return a <= 0 ? 0 : (a + b - 1) / b;
}

static int64_t bucket_capacity(int64_t per_minute)
{
	return per_minute * RL_UNITS_PER_TOKEN;
}

/* Level of a bucket last at (level, last_us), refilled up to now_us. */
static int64_t bucket_refill(int64_t per_minute, int64_t level, int64_t last_us,
			     int64_t now_us)
{
	int64_t cap = bucket_capacity(per_minute);
	if (level >= cap)
		return cap;
	if (now_us <= last_us)
		return level;
	/* Compare times, not products, so nothing overflows. */
	if (now_us - last_us >= ceil_div(cap - level, per_minute))
		return cap;
	return level + (now_us - last_us) * per_minute;
}

/* Fill *out from the level left after the decision. */
static void bucket_result(int64_t per_minute, int64_t level, bool allowed,
			  struct ratelimit_result *out)
{
	int64_t cap = bucket_capacity(per_minute);
	int64_t units_per_second = per_minute * RL_US_PER_SECOND;

	out->allowed = allowed;
	out->degraded = false;
	out->limit = per_minute;
	out->remaining = level / RL_UNITS_PER_TOKEN;
	out->reset_seconds = ceil_div(cap - level, units_per_second);
	out->retry_after_seconds = 0;
	if (!allowed) {
		int64_t s = ceil_div(RL_UNITS_PER_TOKEN - level, units_per_second);
		out->retry_after_seconds = s < 1 ? 1 : s;
	}
}

static void window_result(int64_t count, int64_t start_us, int64_t window_us,
			  int64_t now_us, struct ratelimit_window *out)
{
	int64_t left = start_us + window_us - now_us;

	if (left > window_us)
		left = window_us; /* clock went backwards */
	out->degraded = false;
	out->count = count;
	out->reset_seconds = count > 0 ? ceil_div(left, RL_US_PER_SECOND) : 0;
}

static bool key_valid(const char *key)
{
	if (!key || !key[0])
		return false;
	return strnlen(key, RATELIMIT_KEY_MAX + 1) <= RATELIMIT_KEY_MAX;
}

/* ---- in-process table ---- */

static size_t pow2_at_least(size_t n)
{
	size_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

static bool entry_idle(const struct ratelimit *rl, const struct rl_entry *e,
		       int64_t now_us)
{
	if (e->key[0] == RL_BUCKET)
		return bucket_refill(rl->per_minute, e->u.bucket.level,
				     e->u.bucket.last_us, now_us) >=
		       bucket_capacity(rl->per_minute);
	return now_us >= e->u.window.start_us + e->u.window.window_us;
}

static void lru_unlink(struct rl_shard *sh, struct rl_entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		sh->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		sh->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push_newest(struct rl_shard *sh, struct rl_entry *e)
{
	e->newer = NULL;
	e->older = sh->newest;
	if (sh->newest)
		sh->newest->newer = e;
	sh->newest = e;
	if (!sh->oldest)
		sh->oldest = e;
}

static void shard_remove(struct ratelimit *rl, struct rl_shard *sh,
			 struct rl_entry *e)
{
	struct rl_entry **link = &sh->slots[e->hash & (sh->nslots - 1)];

	while (*link != e)
		link = &(*link)->hnext;
	*link = e->hnext;
	lru_unlink(sh, e);
	sh->count--;
	atomic_fetch_sub(&rl->keys, 1);
	free(e);
}

static struct rl_entry *shard_find(struct rl_shard *sh, uint64_t hash,
				   const char *k, size_t klen)
{
	struct rl_entry *e = sh->slots[hash & (sh->nslots - 1)];

	for (; e; e = e->hnext)
		if (e->hash == hash && e->klen == klen && !memcmp(e->key, k, klen))
			return e;
	return NULL;
}

/* Make room for one more entry: drop idle entries from the old end, then
 * evict the least recently used one if the shard is still full. */
static void shard_make_room(struct ratelimit *rl, struct rl_shard *sh,
			    int64_t now_us)
{
	for (int i = 0; i < RL_TRIM_SCAN && sh->oldest; i++) {
		if (!entry_idle(rl, sh->oldest, now_us))
			break;
		shard_remove(rl, sh, sh->oldest);
	}
	if (sh->count >= sh->cap && sh->oldest) {
		shard_remove(rl, sh, sh->oldest);
		atomic_fetch_add(&rl->evicted, 1);
	}
}

/* New zeroed entry for k, linked in as newest. NULL when out of memory. */
static struct rl_entry *shard_insert(struct ratelimit *rl, struct rl_shard *sh,
				     uint64_t hash, const char *k, size_t klen,
				     int64_t now_us)
{
	struct rl_entry *e;
	size_t slot;

	shard_make_room(rl, sh, now_us);
	e = calloc(1, sizeof(*e) + klen);
	if (!e)
		return NULL;
	e->hash = hash;
	e->klen = klen;
	memcpy(e->key, k, klen);
	slot = hash & (sh->nslots - 1);
	e->hnext = sh->slots[slot];
	sh->slots[slot] = e;
	lru_push_newest(sh, e);
	sh->count++;
	atomic_fetch_add(&rl->keys, 1);
	return e;
}

static void shard_touch(struct rl_shard *sh, struct rl_entry *e)
{
	if (sh->newest == e)
		return;
	lru_unlink(sh, e);
	lru_push_newest(sh, e);
}

/* The table key: kind byte + caller key, hashed with the instance's
 * random SipHash key. buf needs RATELIMIT_KEY_MAX + 1 bytes. */
static size_t table_key(const struct ratelimit *rl, enum rl_kind kind,
			const char *key, char *buf, uint64_t *hash)
{
	size_t len = strlen(key);
	unsigned char h[crypto_shorthash_BYTES];

	buf[0] = (char)kind;
	memcpy(buf + 1, key, len);
	crypto_shorthash(h, (const unsigned char *)buf, len + 1, rl->hash_key);
	memcpy(hash, h, sizeof(*hash));
	return len + 1;
}

static struct rl_shard *shard_for(const struct ratelimit *rl, uint64_t hash)
{
	return &rl->shards[(hash >> 40) & (rl->nshards - 1)];
}

static void local_take(struct ratelimit *rl, const char *key, int64_t now_us,
		       struct ratelimit_result *out)
{
	char k[RATELIMIT_KEY_MAX + 1];
	uint64_t hash;
	size_t klen = table_key(rl, RL_BUCKET, key, k, &hash);
	struct rl_shard *sh = shard_for(rl, hash);
	int64_t cap = bucket_capacity(rl->per_minute);
	int64_t level = cap;
	bool allowed = false;
	struct rl_entry *e;

	pthread_mutex_lock(&sh->mu);
	e = shard_find(sh, hash, k, klen);
	if (e)
		level = bucket_refill(rl->per_minute, e->u.bucket.level,
				      e->u.bucket.last_us, now_us);
	if (level >= RL_UNITS_PER_TOKEN) {
		level -= RL_UNITS_PER_TOKEN;
		allowed = true;
	}
	if (!e && level < cap)
		e = shard_insert(rl, sh, hash, k, klen, now_us);
	if (e) {
		e->u.bucket.level = level;
		if (now_us > e->u.bucket.last_us)
			e->u.bucket.last_us = now_us;
		shard_touch(sh, e);
	}
	pthread_mutex_unlock(&sh->mu);
	bucket_result(rl->per_minute, level, allowed, out);
	if (!e && level < cap)
		out->degraded = true; /* no memory to remember it: fail open */
}

/* Count (incr) or read key's window; *count and *start_us as in Redis.
 * Returns false when out of memory (nothing counted). */
static bool local_window(struct ratelimit *rl, const char *key,
			 int64_t window_us, int64_t now_us, bool incr,
			 int64_t *count, int64_t *start_us)
{
	char k[RATELIMIT_KEY_MAX + 1];
	uint64_t hash;
	size_t klen = table_key(rl, RL_WINDOW, key, k, &hash);
	struct rl_shard *sh = shard_for(rl, hash);
	struct rl_entry *e;
	bool ok = true;

	*count = 0;
	*start_us = now_us;
	pthread_mutex_lock(&sh->mu);
	e = shard_find(sh, hash, k, klen);
	if (e && now_us < e->u.window.start_us + window_us) {
		*count = e->u.window.count;
		*start_us = e->u.window.start_us;
	}
	if (incr) {
		if (!e)
			e = shard_insert(rl, sh, hash, k, klen, now_us);
		if (e) {
			*count += 1;
			e->u.window.start_us = *start_us;
			e->u.window.window_us = window_us;
			e->u.window.count = *count;
			shard_touch(sh, e);
		} else {
			ok = false;
		}
	}
	pthread_mutex_unlock(&sh->mu);
	return ok;
}

static void local_window_del(struct ratelimit *rl, const char *key)
{
	char k[RATELIMIT_KEY_MAX + 1];
	uint64_t hash;
	size_t klen = table_key(rl, RL_WINDOW, key, k, &hash);
	struct rl_shard *sh = shard_for(rl, hash);
	struct rl_entry *e;

	pthread_mutex_lock(&sh->mu);
	e = shard_find(sh, hash, k, klen);
	if (e)
		shard_remove(rl, sh, e);
	pthread_mutex_unlock(&sh->mu);
}

/* ---- lifecycle ---- */

static bool options_valid(const struct ratelimit_options *o)
{
	return o && o->per_minute >= 1 &&
	       o->per_minute <= RATELIMIT_MAX_PER_MINUTE &&
	       o->redis_timeout_ms >= 0 && o->redis_pool_size >= 0;
}

static int shards_init(struct ratelimit *rl, size_t max_keys)
{
	size_t n = pow2_at_least(max_keys / RL_KEYS_PER_SHARD_MIN + 1);

	if (n > RL_MAX_SHARDS)
		n = RL_MAX_SHARDS;
	if (n > max_keys)
		n = 1;
	rl->shards = calloc(n, sizeof(*rl->shards));
	if (!rl->shards)
		return -1;
	rl->nshards = n;
	for (size_t i = 0; i < n; i++) {
		struct rl_shard *sh = &rl->shards[i];
		sh->cap = max_keys / n; /* n * cap <= max_keys */
		sh->nslots = pow2_at_least(sh->cap);
		sh->slots = calloc(sh->nslots, sizeof(*sh->slots));
		if (!sh->slots || pthread_mutex_init(&sh->mu, NULL) != 0) {
			free(sh->slots);
			sh->slots = NULL;
			return -1;
		}
	}
	return 0;
}

struct ratelimit *ratelimit_new(const struct ratelimit_options *opts)
{
	struct ratelimit *rl = NULL;
	size_t max_keys;

	if (!options_valid(opts) || sodium_init() < 0)
		goto fail;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		goto fail;
	rl->per_minute = opts->per_minute;
	rl->disabled = opts->disabled;
	randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
	max_keys = opts->max_keys ? opts->max_keys : RATELIMIT_DEFAULT_MAX_KEYS;
	if (shards_init(rl, max_keys) != 0)
		goto fail;
	if (opts->redis_url && opts->redis_url[0]) {
		rl->redis = rl_redis_new(opts->redis_url,
					 opts->redis_timeout_ms ? opts->redis_timeout_ms
								: RATELIMIT_DEFAULT_REDIS_TIMEOUT_MS,
					 opts->redis_pool_size ? opts->redis_pool_size
							       : RATELIMIT_DEFAULT_REDIS_POOL);
		if (!rl->redis)
			goto fail;
	}
	return rl;
fail:
	ratelimit_free(rl);
	return NULL;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	rl_redis_free(rl->redis);
	for (size_t i = 0; rl->shards && i < rl->nshards; i++) {
		struct rl_shard *sh = &rl->shards[i];
		struct rl_entry *e = sh->newest;
		if (!sh->slots)
			break; /* shards_init stopped here */
		while (e) {
			struct rl_entry *older = e->older;
			free(e);
			e = older;
		}
		free(sh->slots);
		pthread_mutex_destroy(&sh->mu);
	}
	free(rl->shards);
	free(rl);
}

/* ---- public operations ---- */

static void fail_open_result(const struct ratelimit *rl, bool degraded,
			     struct ratelimit_result *out)
{
	out->allowed = true;
	out->degraded = degraded;
	out->limit = rl->per_minute;
	out->remaining = rl->per_minute;
	out->reset_seconds = 0;
	out->retry_after_seconds = 0;
}

static void redis_take(struct ratelimit *rl, const char *key, int64_t now_us,
		       struct ratelimit_result *out)
{
	bool allowed = false;
	int64_t level = 0;

	if (rl_redis_bucket(rl->redis, key, strlen(key), rl->per_minute, now_us,
			    &allowed, &level) != RL_REDIS_OK) {
		fail_open_result(rl, true, out);
		return;
	}
	if (level < 0)
		level = 0; /* the script never answers these; stay sane anyway */
	if (level > bucket_capacity(rl->per_minute))
		level = bucket_capacity(rl->per_minute);
	bucket_result(rl->per_minute, level, allowed, out);
}

int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_us,
		   struct ratelimit_result *out)
{
	if (!rl || !out || !key_valid(key) || now_us < 0)
		return RATELIMIT_EINVAL;
	if (rl->disabled)
		fail_open_result(rl, false, out);
	else if (rl->redis)
		redis_take(rl, key, now_us, out);
	else
		local_take(rl, key, now_us, out);
	if (out->degraded)
		atomic_fetch_add(&rl->fail_open, 1);
	atomic_fetch_add(out->allowed ? &rl->allowed : &rl->denied, 1);
	return RATELIMIT_OK;
}

static int window_op(struct ratelimit *rl, const char *key, int window_seconds,
		     int64_t now_us, bool incr, struct ratelimit_window *out)
{
	int64_t window_us = (int64_t)window_seconds * RL_US_PER_SECOND;
	int64_t count = 0;
	int64_t start_us = now_us;
	bool ok;

	if (!rl || !out || !key_valid(key) || now_us < 0 || window_seconds < 1 ||
	    window_seconds > RATELIMIT_MAX_WINDOW_SECONDS)
		return RATELIMIT_EINVAL;
	if (!rl->redis)
		ok = local_window(rl, key, window_us, now_us, incr, &count, &start_us);
	else
		ok = rl_redis_window(rl->redis, key, strlen(key), window_us, now_us,
				     incr, &count, &start_us) == RL_REDIS_OK;
	if (!ok) {
		atomic_fetch_add(&rl->fail_open, 1);
		*out = (struct ratelimit_window){ .degraded = true };
		return RATELIMIT_OK;
	}
	window_result(count, start_us, window_us, now_us, out);
	return RATELIMIT_OK;
}

int ratelimit_window_hit(struct ratelimit *rl, const char *key,
			 int window_seconds, int64_t now_us,
			 struct ratelimit_window *out)
{
	return window_op(rl, key, window_seconds, now_us, true, out);
}

int ratelimit_window_count(struct ratelimit *rl, const char *key,
			   int window_seconds, int64_t now_us,
			   struct ratelimit_window *out)
{
	return window_op(rl, key, window_seconds, now_us, false, out);
}

int ratelimit_window_reset(struct ratelimit *rl, const char *key)
{
	if (!rl || !key_valid(key))
		return RATELIMIT_EINVAL;
	if (!rl->redis)
		local_window_del(rl, key);
	else if (rl_redis_window_del(rl->redis, key, strlen(key)) != RL_REDIS_OK)
		atomic_fetch_add(&rl->fail_open, 1);
	return RATELIMIT_OK;
}

void ratelimit_stats(const struct ratelimit *rl, struct ratelimit_stats *out)
{
	struct ratelimit *m = (struct ratelimit *)rl; /* atomics: loads only */

	*out = (struct ratelimit_stats){ 0 };
	if (!rl)
		return;
	out->allowed = atomic_load(&m->allowed);
	out->denied = atomic_load(&m->denied);
	out->fail_open = atomic_load(&m->fail_open);
	out->evicted = atomic_load(&m->evicted);
	out->keys = atomic_load(&m->keys);
	out->redis = rl->redis != NULL;
	out->backend_up = !rl->redis || rl_redis_is_up(rl->redis);
	out->backend_errors = rl->redis ? rl_redis_errors(rl->redis) : 0;
}
