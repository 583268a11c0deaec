/* ratelimit_redis: Redis backend of ratelimit. Design note in ratelimit.h
 * and ratelimit_redis.h.
 *
 * Every operation is one Lua script, so read-modify-write is atomic across
 * all processes. The scripts only use integers below 2^53 (Lua numbers are
 * doubles): levels are at most 1e6 * 60e6 = 6e13, times are µs since the
 * epoch (~1.8e15). Numbers are stored with string.format('%d'). */
#include "auth/ratelimit_redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>

#include "auth/ratelimit.h"

#define RL_REDIS_PREFIX_BUCKET "pytake:rl:b:"
#define RL_REDIS_PREFIX_WINDOW "pytake:rl:w:"
#define RL_REDIS_PREFIX_LEN 12
#define RL_REDIS_BACKOFF_MIN_US 100000LL  /* 100 ms */
#define RL_REDIS_BACKOFF_MAX_US 5000000LL /* 5 s */
#define RL_REDIS_DB_MAX 9999
#define RL_REDIS_SHA_HEX 41
#define RL_REDIS_CLIENT_NAME "pytake-rl"

/* KEYS[1] bucket; ARGV per_minute, now_us. Returns {allowed, level}. */
static const char bucket_lua[] =
	"local rate = tonumber(ARGV[1])\n"
	"local now = tonumber(ARGV[2])\n"
	"local unit = 60000000\n"
	"local cap = rate * unit\n"
	"local level = cap\n"
	"local last = now\n"
	"local s = redis.call('HMGET', KEYS[1], 'l', 't')\n"
	"if s[1] and s[2] then\n"
	"  level = tonumber(s[1])\n"
	"  last = tonumber(s[2])\n"
	"  if level > cap then level = cap end\n"
	"  if now > last then\n"
	"    if (now - last) * rate >= cap - level then level = cap\n"
	"    else level = level + (now - last) * rate end\n"
	"    last = now\n"
	"  end\n"
	"end\n"
	"local allowed = 0\n"
	"if level >= unit then\n"
	"  level = level - unit\n"
	"  allowed = 1\n"
	"end\n"
	"if level >= cap then\n"
	"  redis.call('DEL', KEYS[1])\n"
	"else\n"
	"  redis.call('HSET', KEYS[1], 'l', string.format('%d', level),\n"
	"             't', string.format('%d', last))\n"
	"  redis.call('PEXPIRE', KEYS[1], math.ceil((cap - level) / rate / 1000) + 1000)\n"
	"end\n"
	"return {allowed, level}\n";

/* KEYS[1] window; ARGV window_us, now_us, incr (0|1). Returns {count, start}. */
static const char window_lua[] =
	"local w = tonumber(ARGV[1])\n"
	"local now = tonumber(ARGV[2])\n"
	"local start = now\n"
	"local count = 0\n"
	"local s = redis.call('HMGET', KEYS[1], 's', 'c')\n"
	"if s[1] and s[2] then\n"
	"  start = tonumber(s[1])\n"
	"  count = tonumber(s[2])\n"
	"  if now >= start + w then\n"
	"    start = now\n"
	"    count = 0\n"
	"  end\n"
	"end\n"
	"if ARGV[3] == '1' then\n"
	"  count = count + 1\n"
	"  redis.call('HSET', KEYS[1], 's', string.format('%d', start),\n"
	"             'c', string.format('%d', count))\n"
	"  redis.call('PEXPIRE', KEYS[1], math.ceil((start + w - now) / 1000) + 1000)\n"
	"end\n"
	"return {count, start}\n";

struct rl_script {
	const char *body;
	size_t len;
	char sha[RL_REDIS_SHA_HEX];
};

struct rl_redis {
	struct rl_redis_addr addr;
	struct timeval tv;
	int64_t timeout_us;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a connection went back to the pool */
	redisContext **idle;
	int nidle;
	int nopen; /* connections existing, idle or in use */
	int max;
	bool down;
	int64_t retry_at_us; /* monotonic; meaningful while down */
	int64_t backoff_us;
	_Atomic uint64_t errors;
	struct rl_script bucket;
	struct rl_script window;
};

/* ---- URL ---- */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copy s[0..len) into dst (cap bytes with NUL), decoding %XX. */
static int copy_decoded(char *dst, size_t cap, const char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= len)
				return -1;
			hi = hex_digit(s[i + 1]);
			lo = hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1; /* no NUL inside a password */
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

/* A decimal in s[0..len) within [min, max]. */
static int parse_int(const char *s, size_t len, long min, long max, int *out)
{
	char buf[16];
	char *end = NULL;
	long v;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[0] < '0' || buf[0] > '9')
		return -1;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_userinfo(const char *s, size_t len, struct rl_redis_addr *out)
{
	const char *colon = memchr(s, ':', len);

	if (!colon)
		return -1; /* "redis://secret@host" is ambiguous: require ':' */
	if (copy_decoded(out->user, sizeof(out->user), s, (size_t)(colon - s)) ||
	    copy_decoded(out->password, sizeof(out->password), colon + 1,
			 len - (size_t)(colon - s) - 1))
		return -1;
	return 0;
}

static int parse_hostport(const char *s, size_t len, struct rl_redis_addr *out)
{
	const char *host = s;
	size_t hlen;
	const char *rest;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		rest = close + 1;
	} else {
		const char *colon = memchr(s, ':', len);
		hlen = colon ? (size_t)(colon - s) : len;
		rest = s + hlen;
	}
	if (hlen == 0 || hlen > RL_REDIS_HOST_MAX)
		return -1;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (rest == s + len)
		return 0;
	if (*rest != ':')
		return -1;
	return parse_int(rest + 1, (size_t)(s + len - rest - 1), 1, 65535, &out->port);
}

int rl_redis_parse_url(const char *url, struct rl_redis_addr *out)
{
	static const char scheme[] = "redis://";
	struct rl_redis_addr a = { .port = 6379, .db = 0 };
	const char *p, *end, *slash, *at;

	if (!url || !out || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return -1;
	p = url + sizeof(scheme) - 1;
	end = p + strlen(p);
	if (strpbrk(p, "?# \t\r\n"))
		return -1;
	at = strrchr(p, '@');
	if (at) {
		if (parse_userinfo(p, (size_t)(at - p), &a))
			return -1;
		p = at + 1;
	}
	slash = strchr(p, '/');
	if (parse_hostport(p, (size_t)((slash ? slash : end) - p), &a))
		return -1;
	if (slash && slash + 1 < end &&
	    parse_int(slash + 1, (size_t)(end - slash - 1), 0, RL_REDIS_DB_MAX, &a.db))
		return -1;
	*out = a;
	return 0;
}

/* ---- pool and health ---- */

static int64_t mono_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void free_idle_locked(struct rl_redis *r)
{
	while (r->nidle > 0) {
		redisFree(r->idle[--r->nidle]);
		r->nopen--;
	}
}

/* A connection-level failure: count it, back off, drop idle connections
 * (after a Redis restart they are all dead). */
static void mark_down_locked(struct rl_redis *r)
{
	atomic_fetch_add(&r->errors, 1);
	if (r->backoff_us == 0)
		r->backoff_us = RL_REDIS_BACKOFF_MIN_US;
	else if (r->backoff_us < RL_REDIS_BACKOFF_MAX_US / 2)
		r->backoff_us *= 2;
	else
		r->backoff_us = RL_REDIS_BACKOFF_MAX_US;
	r->down = true;
	r->retry_at_us = mono_us() + r->backoff_us;
	free_idle_locked(r);
}

static bool reply_ok(const redisReply *rep)
{
	return rep && rep->type != REDIS_REPLY_ERROR;
}

/* AUTH, SELECT and CLIENT SETNAME on a fresh connection. */
static int connection_setup(struct rl_redis *r, redisContext *c)
{
	redisReply *rep = NULL;
	int rc = -1;

	if (r->addr.password[0]) {
		if (r->addr.user[0])
			rep = redisCommand(c, "AUTH %s %s", r->addr.user, r->addr.password);
		else
			rep = redisCommand(c, "AUTH %s", r->addr.password);
		if (!reply_ok(rep))
			goto out;
		freeReplyObject(rep);
		rep = NULL;
	}
	if (r->addr.db != 0) {
		rep = redisCommand(c, "SELECT %d", r->addr.db);
		if (!reply_ok(rep))
			goto out;
		freeReplyObject(rep);
	}
	/* A name for CLIENT LIST; an error reply (ACL) does not matter. */
	rep = redisCommand(c, "CLIENT SETNAME " RL_REDIS_CLIENT_NAME);
	if (!rep)
		goto out;
	rc = 0;
out:
	if (rep)
		freeReplyObject(rep);
	return rc;
}

static redisContext *connection_open(struct rl_redis *r)
{
	redisContext *c = redisConnectWithTimeout(r->addr.host, r->addr.port, r->tv);

	if (!c)
		return NULL;
	if (c->err || redisSetTimeout(c, r->tv) != REDIS_OK ||
	    connection_setup(r, c) != 0) {
		redisFree(c);
		return NULL;
	}
	return c;
}

static void cond_wait_until(struct rl_redis *r, int64_t deadline_us)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_us / 1000000),
		.tv_nsec = (long)(deadline_us % 1000000) * 1000,
	};

	(void)pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

/* Get a connection. RL_REDIS_SKIPPED without I/O while backing off (one
 * caller per backoff period probes) or when the pool stays exhausted for the
 * timeout; RL_REDIS_ERROR when connecting failed. */
static int pool_acquire(struct rl_redis *r, redisContext **out)
{
	int64_t now = mono_us();
	int64_t deadline = now + r->timeout_us;
	int rc = RL_REDIS_SKIPPED;

	pthread_mutex_lock(&r->mu);
	if (r->down) {
		if (now < r->retry_at_us)
			goto out;
		r->retry_at_us = now + r->backoff_us; /* others wait while we probe */
	}
	while (r->nidle == 0 && r->nopen >= r->max && mono_us() < deadline)
		cond_wait_until(r, deadline);
	if (r->nidle > 0) {
		*out = r->idle[--r->nidle];
		rc = RL_REDIS_OK;
		goto out;
	}
	if (r->nopen >= r->max)
		goto out;
	r->nopen++;
	pthread_mutex_unlock(&r->mu);
	*out = connection_open(r);
	if (*out)
		return RL_REDIS_OK;
	pthread_mutex_lock(&r->mu);
	r->nopen--;
	mark_down_locked(r);
	pthread_cond_signal(&r->cv);
	rc = RL_REDIS_ERROR;
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* Give c back; a broken connection is closed and marks the backend down. */
static void pool_release(struct rl_redis *r, redisContext *c, bool broken)
{
	pthread_mutex_lock(&r->mu);
	if (broken) {
		redisFree(c);
		r->nopen--;
		mark_down_locked(r);
	} else {
		r->idle[r->nidle++] = c;
		r->down = false;
		r->backoff_us = 0;
	}
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* ---- commands ---- */

/* prefix + key into buf (RL_REDIS_PREFIX_LEN + RATELIMIT_KEY_MAX bytes). */
static size_t full_key(char *buf, const char *prefix, const char *key, size_t klen)
{
	memcpy(buf, prefix, RL_REDIS_PREFIX_LEN);
	memcpy(buf + RL_REDIS_PREFIX_LEN, key, klen);
	return RL_REDIS_PREFIX_LEN + klen;
}

/* EVALSHA, then EVAL when the script cache does not have it. NULL reply
 * means the connection broke. */
static redisReply *eval_script(redisContext *c, const struct rl_script *s,
			       const char **argv, size_t *lens, int argc)
{
	redisReply *rep;

	argv[0] = "EVALSHA";
	lens[0] = 7;
	argv[1] = s->sha;
	lens[1] = RL_REDIS_SHA_HEX - 1;
	rep = redisCommandArgv(c, argc, argv, lens);
	if (!rep || rep->type != REDIS_REPLY_ERROR || !rep->str ||
	    strncmp(rep->str, "NOSCRIPT", 8) != 0)
		return rep;
	freeReplyObject(rep);
	argv[0] = "EVAL";
	lens[0] = 4;
	argv[1] = s->body;
	lens[1] = s->len;
	return redisCommandArgv(c, argc, argv, lens);
}

/* Run script s on key with two or three integer arguments; on success the
 * script's {a, b} integer pair goes to res. */
static int run_script(struct rl_redis *r, const struct rl_script *s,
		      const char *prefix, const char *key, size_t klen,
		      const int64_t *args, int nargs, int64_t res[2])
{
	char kbuf[RL_REDIS_PREFIX_LEN + RATELIMIT_KEY_MAX];
	char nums[3][24];
	const char *argv[7];
	size_t lens[7];
	redisContext *c = NULL;
	redisReply *rep = NULL;
	int rc;

	if (klen > RATELIMIT_KEY_MAX || nargs > 3)
		return RL_REDIS_ERROR;
	argv[2] = "1";
	lens[2] = 1;
	argv[3] = kbuf;
	lens[3] = full_key(kbuf, prefix, key, klen);
	for (int i = 0; i < nargs; i++) {
		int n = snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)args[i]);
		argv[4 + i] = nums[i];
		lens[4 + i] = (size_t)n;
	}
	rc = pool_acquire(r, &c);
	if (rc != RL_REDIS_OK)
		return rc;
	rep = eval_script(c, s, argv, lens, 4 + nargs);
	if (!rep) {
		pool_release(r, c, true);
		return RL_REDIS_ERROR;
	}
	pool_release(r, c, false);
	rc = RL_REDIS_ERROR;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER)
		goto out; /* script error or a foreign value at the key */
	res[0] = rep->element[0]->integer;
	res[1] = rep->element[1]->integer;
	rc = RL_REDIS_OK;
out:
	if (rc != RL_REDIS_OK)
		atomic_fetch_add(&r->errors, 1);
	freeReplyObject(rep);
	return rc;
}

int rl_redis_bucket(struct rl_redis *r, const char *key, size_t klen,
		    int64_t per_minute, int64_t now_us, bool *allowed,
		    int64_t *level)
{
	int64_t args[2] = { per_minute, now_us };
	int64_t res[2];
	int rc = run_script(r, &r->bucket, RL_REDIS_PREFIX_BUCKET, key, klen,
			    args, 2, res);

	if (rc == RL_REDIS_OK) {
		*allowed = res[0] == 1;
		*level = res[1];
	}
	return rc;
}

int rl_redis_window(struct rl_redis *r, const char *key, size_t klen,
		    int64_t window_us, int64_t now_us, bool incr,
		    int64_t *count, int64_t *start_us)
{
	int64_t args[3] = { window_us, now_us, incr ? 1 : 0 };
	int64_t res[2];
	int rc = run_script(r, &r->window, RL_REDIS_PREFIX_WINDOW, key, klen,
			    args, 3, res);

	if (rc == RL_REDIS_OK) {
		*count = res[0];
		*start_us = res[1];
	}
	return rc;
}

int rl_redis_window_del(struct rl_redis *r, const char *key, size_t klen)
{
	char kbuf[RL_REDIS_PREFIX_LEN + RATELIMIT_KEY_MAX];
	const char *argv[2] = { "DEL", kbuf };
	size_t lens[2] = { 3, 0 };
	redisContext *c = NULL;
	redisReply *rep;
	int rc;

	if (klen > RATELIMIT_KEY_MAX)
		return RL_REDIS_ERROR;
	lens[1] = full_key(kbuf, RL_REDIS_PREFIX_WINDOW, key, klen);
	rc = pool_acquire(r, &c);
	if (rc != RL_REDIS_OK)
		return rc;
	rep = redisCommandArgv(c, 2, argv, lens);
	pool_release(r, c, rep == NULL);
	if (!reply_ok(rep)) {
		if (rep)
			atomic_fetch_add(&r->errors, 1);
		rc = RL_REDIS_ERROR;
	}
	if (rep)
		freeReplyObject(rep);
	return rc;
}

uint64_t rl_redis_errors(const struct rl_redis *r)
{
	return atomic_load(&((struct rl_redis *)r)->errors);
}

bool rl_redis_is_up(struct rl_redis *r)
{
	bool up;

	pthread_mutex_lock(&r->mu);
	up = !r->down;
	pthread_mutex_unlock(&r->mu);
	return up;
}

/* ---- lifecycle ---- */

static int script_init(struct rl_script *s, const char *body, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(body, len, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen * 2 + 1 != RL_REDIS_SHA_HEX)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++) {
		s->sha[2 * i] = hex[md[i] >> 4];
		s->sha[2 * i + 1] = hex[md[i] & 15];
	}
	s->sha[2 * mdlen] = '\0';
	s->body = body;
	s->len = len;
	return 0;
}

static int sync_init(struct rl_redis *r)
{
	pthread_condattr_t attr;
	int rc = -1;

	if (pthread_condattr_init(&attr) != 0)
		return -1;
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&r->cv, &attr) != 0)
		goto out;
	if (pthread_mutex_init(&r->mu, NULL) != 0) {
		pthread_cond_destroy(&r->cv);
		goto out;
	}
	rc = 0;
out:
	pthread_condattr_destroy(&attr);
	return rc;
}

struct rl_redis *rl_redis_new(const char *url, int timeout_ms, int pool_size)
{
	struct rl_redis *r = calloc(1, sizeof(*r));

	if (!r || timeout_ms < 1 || pool_size < 1 ||
	    rl_redis_parse_url(url, &r->addr) != 0 ||
	    script_init(&r->bucket, bucket_lua, sizeof(bucket_lua) - 1) != 0 ||
	    script_init(&r->window, window_lua, sizeof(window_lua) - 1) != 0)
		goto fail;
	r->idle = calloc((size_t)pool_size, sizeof(*r->idle));
	if (!r->idle || sync_init(r) != 0)
		goto fail;
	r->max = pool_size;
	r->timeout_us = (int64_t)timeout_ms * 1000;
	r->tv.tv_sec = timeout_ms / 1000;
	r->tv.tv_usec = (timeout_ms % 1000) * 1000;
	return r;
fail:
	if (r)
		free(r->idle);
	free(r);
	return NULL;
}

void rl_redis_free(struct rl_redis *r)
{
	if (!r)
		return;
	free_idle_locked(r);
	free(r->idle);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	explicit_bzero(r->addr.password, sizeof(r->addr.password));
	free(r);
}
