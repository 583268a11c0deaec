/* tokens: access + refresh token pairs, refresh rotation with families,
 * logout revocation, and the small store the login and authentication paths
 * need (user state by email / by id, failed-login counts).
 *
 * Design note
 * -----------
 * An access token is a short-lived HS256 JWT (auth/jwt.h). Its jti is the id
 * of the refresh_tokens row issued with it, so a logout that carries only the
 * access token still finds the refresh family to revoke.
 *
 * A refresh token is 32 random bytes as base64url (43 characters). Only its
 * SHA-256 (hex) is stored. Every refresh token belongs to a family: login
 * starts one, and each rotation marks the presented token used and issues
 * the next one into the same family. Presenting a token that is already
 * used or revoked is a replay (it was stolen, or the client is confused):
 * the whole family is revoked and the caller answers 401. Rotation runs in
 * one transaction; on PostgreSQL two concurrent rotations of one token race
 * on "UPDATE ... WHERE used_at IS NULL" and the loser is treated as a replay.
 *
 * Logout revokes the access token's jti until the token's own expiry
 * (revoked_tokens; rows past expiry are purged) and the refresh family.
 * The database is the authority for revocation; auth/authn.c also mirrors
 * revoked jtis into Redis when REDIS_URL is set.
 *
 * Every function takes a connection inside the caller's transaction (so a
 * db_tx callback may call several and they commit together) and returns
 * DB_OK or a negative db_status unless documented otherwise. Tenant data is
 * always filtered by organization id; the lookups by email and by refresh
 * token hash are the two installation-wide entry points. Nothing here logs. */
#ifndef PYTAKE_AUTH_TOKENS_H
#define PYTAKE_AUTH_TOKENS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/password.h"
#include "core/config.h"
#include "core/crypto.h"
#include "db/db.h"
#include "http/http.h"

/* Issuer of every access token. */
#define TOKENS_ISSUER "pytake"
/* Random bytes in a refresh token, and its text size (with NUL). */
#define TOKENS_REFRESH_BYTES 32
#define TOKENS_REFRESH_STRLEN CRYPTO_TOKEN_STRLEN(TOKENS_REFRESH_BYTES)
/* Refresh tokens longer than this are unknown without a lookup. */
#define TOKENS_REFRESH_MAX_LEN 256

/* What signing and lifetimes come from (ACCESS_TOKEN_EXPIRE_MINUTES,
 * REFRESH_TOKEN_EXPIRE_DAYS, JWT_SECRET_KEY). key is borrowed. */
struct tokens_params {
	const void *key;
	size_t keylen;
	int64_t access_ttl_s;
	int64_t refresh_ttl_s;
};
/* Fill p from cfg (the key points into cfg, which must outlive p). */
void tokens_params_from_config(const struct config *cfg, struct tokens_params *p);

/* A freshly issued pair. access_token is malloc'd: release with
 * token_pair_release (safe on a zeroed or released pair). */
struct token_pair {
	char *access_token;
	char refresh_token[TOKENS_REFRESH_STRLEN];
	int64_t expires_in;    /* access token lifetime, seconds */
	int64_t access_exp;    /* access token exp, seconds since the epoch */
	char jti[37];          /* = the refresh row id */
	char family_id[37];
	char user_id[37];
	char org_id[37];
};
void token_pair_release(struct token_pair *p);

/* Issue an access + refresh pair for a user with role, starting a new
 * family when family_id is NULL, else continuing that family. now_us is the
 * issue time. Inserts the refresh row; out is filled only on DB_OK (any
 * previous content of out is released first). DB_ERR also covers signing
 * or randomness failures. */
int tokens_issue(struct db_conn *c, const struct tokens_params *tp,
		 const char *org_id, const char *user_id, enum role role,
		 const char *family_id, int64_t now_us, struct token_pair *out)
	__attribute__((warn_unused_result));

enum tokens_rotate_result {
	TOKENS_ROTATED = 0,   /* out holds the new pair */
	TOKENS_UNKNOWN,       /* no such token (or malformed) */
	TOKENS_EXPIRED,       /* past its expires_at */
	TOKENS_REPLAYED,      /* used or revoked before: family now revoked */
	TOKENS_USER_INACTIVE, /* user deactivated: family now revoked */
};
/* Rotate refresh_token (see the design note). Returns DB_OK with *result
 * set (the transaction should commit in every case: a replay's revocation
 * must stick), or a db_status. out is filled only for TOKENS_ROTATED. */
int tokens_rotate(struct db_conn *c, const struct tokens_params *tp,
		  const char *refresh_token, int64_t now_us, struct token_pair *out,
		  enum tokens_rotate_result *result)
	__attribute__((warn_unused_result));

/* Logout: revoke the access token jti (kept until exp_s, seconds since the
 * epoch), the refresh family issued with it, and, when refresh_token is not
 * NULL, the family of that refresh token if it belongs to the same user
 * (someone else's token is silently ignored). Also purges expired
 * revocation rows. */
int tokens_logout(struct db_conn *c, const char *org_id, const char *user_id,
		  const char *jti, int64_t exp_s, const char *refresh_token,
		  int64_t now_us) __attribute__((warn_unused_result));

/* Revoke every refresh token of a user (deactivation, password change). */
int tokens_revoke_user(struct db_conn *c, const char *org_id, const char *user_id,
		       int64_t now_us) __attribute__((warn_unused_result));

/* The state an authenticated request needs, read in ONE query: the user's
 * current role and activity, and whether jti is revoked. Returns 0 when
 * the user exists in org, 1 when not, or a db_status. */
struct tokens_access_state {
	enum role role;
	bool is_active;
	bool revoked;
};
int tokens_access_check(struct db_conn *c, const char *org_id, const char *user_id,
			const char *jti, struct tokens_access_state *out)
	__attribute__((warn_unused_result));

/* ---- login support -------------------------------------------------- */

/* A user as login sees it. password_hash is a secret: wipe after use. */
struct tokens_login_user {
	char id[37];
	char org_id[37];
	char password_hash[PASSWORD_HASH_LEN];
	enum role role;
	bool is_active;
};
/* Find by (already lower-cased) email across the installation. 0 found,
 * 1 not found, or a db_status. */
int tokens_login_find(struct db_conn *c, const char *email,
		      struct tokens_login_user *out) __attribute__((warn_unused_result));

/* Failures recorded for email at or after since_us: *count and the oldest
 * one's time (*oldest_us, 0 when none). */
int tokens_login_failures(struct db_conn *c, const char *email, int64_t since_us,
			  int64_t *count, int64_t *oldest_us)
	__attribute__((warn_unused_result));
/* Record one failure at now_us; first drops every failure (any email)
 * older than purge_before_us, so the table holds one window's worth. */
int tokens_login_failure_add(struct db_conn *c, const char *email, int64_t now_us,
			     int64_t purge_before_us) __attribute__((warn_unused_result));
/* Forget email's failures (after a successful login). */
int tokens_login_failures_clear(struct db_conn *c, const char *email)
	__attribute__((warn_unused_result));
/* Set the user's last_login_at to now_us. */
int tokens_login_touch(struct db_conn *c, const char *org_id, const char *user_id,
		       int64_t now_us) __attribute__((warn_unused_result));

/* What GET /auth/me answers. */
struct tokens_profile {
	char id[37];
	char email[255];
	char full_name[201];
	enum role role;
	char org_id[37];
	char org_name[201];
	char org_slug[64];
};
/* Load user_id of org_id with its organization. 0 found, 1 not found, or a
 * db_status. */
int tokens_profile_load(struct db_conn *c, const char *org_id, const char *user_id,
			struct tokens_profile *out) __attribute__((warn_unused_result));

#endif
