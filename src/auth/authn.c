/* authn: the authenticate hook; see authn.h for the design. */
#include "auth/authn.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "app/app.h"
#include "auth/jwt.h"
#include "auth/ratelimit_redis.h"
#include "auth/tokens.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"

#define REDIS_TIMEOUT_MS 50
#define REDIS_BACKOFF_US (5 * INT64_C(1000000))
#define WARN_EVERY_US (60 * INT64_C(1000000))
#define REVOKED_PREFIX "pytake:revoked:"

struct authn {
	const struct config *cfg;
	bool redis;
	struct rl_redis_addr addr;
	pthread_key_t conn_key;        /* this thread's redisContext */
	_Atomic int64_t down_until_us; /* no Redis I/O before this */
	_Atomic int64_t last_warn_us;
};

static void conn_destroy(void *p)
{
	redisFree(p);
}

int authn_new(const struct config *cfg, struct authn **out, char *err, size_t errlen)
{
	struct authn *a = calloc(1, sizeof *a);
	int rc = -1;
	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	a->cfg = cfg;
	if (cfg->redis_url != NULL && cfg->redis_url[0] != '\0') {
		if (rl_redis_parse_url(cfg->redis_url, &a->addr) != 0) {
			snprintf(err, errlen, "REDIS_URL: expected redis://[[user]:password@]host[:port][/db]");
			goto out;
		}
		if (pthread_key_create(&a->conn_key, conn_destroy) != 0) {
			snprintf(err, errlen, "cannot create a thread key");
			goto out;
		}
		a->redis = true;
	}
	rc = 0;
out:
	if (rc == 0) {
		*out = a;
	} else if (a != NULL) {
		crypto_wipe(&a->addr, sizeof a->addr);
		free(a);
	}
	return rc;
}

void authn_free(struct authn *a)
{
	if (a == NULL)
		return;
	if (a->redis) {
		redisContext *c = pthread_getspecific(a->conn_key);
		if (c != NULL)
			redisFree(c);
		pthread_key_delete(a->conn_key);
	}
	crypto_wipe(&a->addr, sizeof a->addr);
	free(a);
}

/* ---- Redis mirror ------------------------------------------------------ */

static void redis_warn(struct authn *a, const char *what, const char *detail)
{
	int64_t now = time_mono_us();
	int64_t last = atomic_load(&a->last_warn_us);
	if (last != 0 && now - last < WARN_EVERY_US)
		return;
	if (!atomic_compare_exchange_strong(&a->last_warn_us, &last, now))
		return;
	log_event(LOG_WARN, "redis unavailable for token revocations; using the database alone",
		  LF_S("operation", what), LF_S("error", detail != NULL ? detail : "unknown"));
}

static void redis_down(struct authn *a, redisContext *c, const char *what)
{
	redis_warn(a, what, c != NULL && c->errstr[0] ? c->errstr : "bad reply");
	if (c != NULL) {
		redisFree(c);
		(void)pthread_setspecific(a->conn_key, NULL);
	}
	atomic_store(&a->down_until_us, time_mono_us() + REDIS_BACKOFF_US);
}

static bool reply_ok(redisReply *r)
{
	return r != NULL && r->type != REDIS_REPLY_ERROR;
}

/* Authenticate and select the database on a new connection. */
static bool redis_handshake(struct authn *a, redisContext *c)
{
	redisReply *r = NULL;
	bool ok = true;
	if (a->addr.password[0] != '\0') {
		r = a->addr.user[0] != '\0'
			? redisCommand(c, "AUTH %s %s", a->addr.user, a->addr.password)
			: redisCommand(c, "AUTH %s", a->addr.password);
		ok = reply_ok(r);
		freeReplyObject(r);
	}
	if (ok && a->addr.db != 0) {
		r = redisCommand(c, "SELECT %d", a->addr.db);
		ok = reply_ok(r);
		freeReplyObject(r);
	}
	return ok;
}

/* This thread's connection, or NULL (Redis off, backing off, or failing). */
static redisContext *redis_conn(struct authn *a)
{
	if (a == NULL || !a->redis)
		return NULL;
	if (time_mono_us() < atomic_load(&a->down_until_us))
		return NULL;
	redisContext *c = pthread_getspecific(a->conn_key);
	if (c != NULL)
		return c;
	struct timeval tv = { 0, REDIS_TIMEOUT_MS * 1000 };
	c = redisConnectWithTimeout(a->addr.host, a->addr.port, tv);
	if (c == NULL || c->err || redisSetTimeout(c, tv) != REDIS_OK ||
	    !redis_handshake(a, c)) {
		redis_warn(a, "connect", c != NULL ? c->errstr : "out of memory");
		redisFree(c);
		atomic_store(&a->down_until_us, time_mono_us() + REDIS_BACKOFF_US);
		return NULL;
	}
	if (pthread_setspecific(a->conn_key, c) != 0) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* 1 revoked, 0 not known to Redis, -1 Redis unusable. */
static int redis_is_revoked(struct authn *a, const char *jti)
{
	redisContext *c = redis_conn(a);
	if (c == NULL)
		return -1;
	redisReply *r = redisCommand(c, "EXISTS " REVOKED_PREFIX "%b", jti, strlen(jti));
	if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(r);
		redis_down(a, c, "check");
		return -1;
	}
	int hit = r->integer > 0;
	freeReplyObject(r);
	return hit;
}

void authn_mirror_revocation(struct authn *a, const char *jti, int64_t exp_s)
{
	int64_t ttl = exp_s - time_now_us() / 1000000;
	if (ttl <= 0)
		return;
	redisContext *c = redis_conn(a);
	if (c == NULL)
		return;
	redisReply *r = redisCommand(c, "SET " REVOKED_PREFIX "%b 1 EX %lld", jti,
				     strlen(jti), (long long)ttl);
	if (!reply_ok(r)) {
		freeReplyObject(r);
		redis_down(a, c, "revoke");
		return;
	}
	freeReplyObject(r);
}

/* ---- the hook ---------------------------------------------------------- */

void authn_unauthorized(struct http_response *res, const char *code, const char *message)
{
	http_add_header(res, "WWW-Authenticate",
			strcmp(code, "token_expired") == 0
				? "Bearer error=\"invalid_token\", error_description=\"token expired\""
				: "Bearer error=\"invalid_token\"");
	http_error(res, 401, code, message, NULL);
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* The credentials after "Bearer" (scheme case-insensitive), in the arena;
 * NULL when the header is not of the Bearer scheme. "" when it is but
 * carries nothing. */
static const char *bearer_token(struct http_request *req, const char *hdr)
{
	while (is_space(*hdr))
		hdr++;
	size_t n = 0;
	while (hdr[n] != '\0' && !is_space(hdr[n]))
		n++;
	if (n != 6 || strncasecmp(hdr, "bearer", 6) != 0)
		return NULL;
	const char *tok = hdr + n;
	while (is_space(*tok))
		tok++;
	size_t len = strlen(tok);
	while (len > 0 && is_space(tok[len - 1]))
		len--;
	const char *copy = arena_strndup(req->arena, tok, len);
	return copy != NULL ? copy : "";
}

static void unavailable(struct http_response *res)
{
	http_add_header(res, "Retry-After", "1");
	http_error(res, 503, "service_unavailable",
		   "the database is not answering; try again shortly", NULL);
}

/* Step 4 of the design note. True when the user may go on (*role set). */
static bool check_state(struct http_request *req, const struct jwt_claims *cl,
			struct http_response *res, enum role *role)
{
	struct db_conn *c = db_acquire(req->app->db);
	if (c == NULL) {
		unavailable(res);
		return false;
	}
	struct tokens_access_state st = { 0 };
	int rc = tokens_access_check(c, cl->org, cl->sub, cl->jti, &st);
	if (rc < 0)
		log_event(LOG_WARN, "authentication query failed", LF_I("db_status", rc),
			  LF_S("error", db_errmsg(c)));
	db_release(req->app->db, c);
	if (rc < 0) {
		unavailable(res);
		return false;
	}
	if (rc == 1 || !st.is_active || st.revoked || st.role == ROLE_NONE) {
		authn_unauthorized(res, "invalid_token", "the token is not valid");
		return false;
	}
	*role = st.role;
	return true;
}

bool authn_authenticate(struct http_request *req, const struct route *rt,
			struct http_response *res)
{
	const char *hdr = http_header(req, "Authorization");
	const char *token = hdr != NULL ? bearer_token(req, hdr) : NULL;
	if (token == NULL) {
		authn_unauthorized(res, "unauthenticated",
				   "an Authorization: Bearer <token> header is required");
		return false;
	}
	const struct config *cfg = req->app->cfg;
	const char *key = cfg->jwt_secret_key != NULL ? cfg->jwt_secret_key : "";
	struct jwt_claims cl;
	enum jwt_status js = jwt_decode(token, key, strlen(key), TOKENS_ISSUER,
					time_now_us() / 1000000, &cl);
	if (js == JWT_EXPIRED) {
		authn_unauthorized(res, "token_expired", "the token has expired");
		return false;
	}
	if (js != JWT_OK || strlen(key) == 0) {
		authn_unauthorized(res, "invalid_token", "the token is not valid");
		return false;
	}
	if (redis_is_revoked(req->app->authn, cl.jti) == 1) {
		authn_unauthorized(res, "invalid_token", "the token is not valid");
		return false;
	}
	enum role role = ROLE_NONE;
	if (!check_state(req, &cl, res, &role))
		return false;
	req->auth.authenticated = true;
	str_copy(req->auth.user_id, sizeof req->auth.user_id, cl.sub);
	str_copy(req->auth.org_id, sizeof req->auth.org_id, cl.org);
	str_copy(req->auth.jti, sizeof req->auth.jti, cl.jti);
	req->auth.role = role;
	req->auth.exp = cl.exp;
	if (role < rt->min_role) {
		http_error(res, 403, "forbidden", "your role may not do this", NULL);
		return false;
	}
	return true;
}
