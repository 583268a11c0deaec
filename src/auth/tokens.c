/* tokens: see tokens.h for the design. */
#include "auth/tokens.h"

#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "core/str.h"
#include "core/uuid.h"

#define US_PER_S INT64_C(1000000)

void tokens_params_from_config(const struct config *cfg, struct tokens_params *p)
{
	p->key = cfg->jwt_secret_key;
	p->keylen = cfg->jwt_secret_key != NULL ? strlen(cfg->jwt_secret_key) : 0;
	p->access_ttl_s = (int64_t)cfg->access_token_expire_minutes * 60;
	p->refresh_ttl_s = (int64_t)cfg->refresh_token_expire_days * 86400;
}

void token_pair_release(struct token_pair *p)
{
	if (p == NULL)
		return;
	if (p->access_token != NULL)
		crypto_secret_free(p->access_token);
	crypto_wipe(p, sizeof *p);
}

static int hash_refresh(const char *token, char out[CRYPTO_SHA256_HEX_LEN])
{
	return crypto_sha256_hex(token, strlen(token), out) == 0 ? DB_OK : DB_ERR;
}

static int sign_access(const struct tokens_params *tp, const char *org_id,
		       const char *user_id, enum role role, const char *jti,
		       int64_t now_s, char **out)
{
	struct jwt_claims cl = { .iat = now_s, .exp = now_s + tp->access_ttl_s };
	str_copy(cl.sub, sizeof cl.sub, user_id);
	str_copy(cl.org, sizeof cl.org, org_id);
	str_copy(cl.role, sizeof cl.role, role_name(role));
	str_copy(cl.jti, sizeof cl.jti, jti);
	str_copy(cl.iss, sizeof cl.iss, TOKENS_ISSUER);
	return jwt_encode(&cl, tp->key, tp->keylen, out) == 0 ? DB_OK : DB_ERR;
}

int tokens_issue(struct db_conn *c, const struct tokens_params *tp,
		 const char *org_id, const char *user_id, enum role role,
		 const char *family_id, int64_t now_us, struct token_pair *out)
{
	struct token_pair p = { 0 };
	char hash[CRYPTO_SHA256_HEX_LEN];
	int rc = DB_ERR;
	if (tp->keylen == 0 || uuid_v7_str(p.jti) != 0)
		goto out;
	if (family_id != NULL)
		str_copy(p.family_id, sizeof p.family_id, family_id);
	else if (uuid_v7_str(p.family_id) != 0)
		goto out;
	str_copy(p.user_id, sizeof p.user_id, user_id);
	str_copy(p.org_id, sizeof p.org_id, org_id);
	if (crypto_token(p.refresh_token, sizeof p.refresh_token, TOKENS_REFRESH_BYTES) != 0 ||
	    hash_refresh(p.refresh_token, hash) != DB_OK)
		goto out;
	int64_t now_s = now_us / US_PER_S;
	p.expires_in = tp->access_ttl_s;
	p.access_exp = now_s + tp->access_ttl_s;
	if (sign_access(tp, org_id, user_id, role, p.jti, now_s, &p.access_token) != DB_OK)
		goto out;
	struct db_param prm[] = {
		DBP_TEXT(p.jti), DBP_TEXT(org_id), DBP_TEXT(user_id), DBP_TEXT(p.family_id),
		DBP_TEXT(hash), DBP_INT(now_us + tp->refresh_ttl_s * US_PER_S),
		DBP_INT(now_us),
	};
	rc = db_exec(c,
		     "INSERT INTO refresh_tokens (id, organization_id, user_id, family_id, "
		     "token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
		     prm, 7, NULL, NULL);
out:
	if (rc == DB_OK) {
		token_pair_release(out);
		*out = p;
	} else {
		token_pair_release(&p);
	}
	crypto_wipe(hash, sizeof hash);
	return rc;
}

static int revoke_family(struct db_conn *c, const char *family_id, int64_t now_us)
{
	struct db_param p[] = { DBP_INT(now_us), DBP_TEXT(family_id) };
	return db_exec(c,
		       "UPDATE refresh_tokens SET revoked_at = $1 "
		       "WHERE family_id = $2 AND revoked_at IS NULL",
		       p, 2, NULL, NULL);
}

/* The row a refresh token names, with its user's current state. */
struct refresh_row {
	char id[37], org_id[37], user_id[37], family_id[37];
	int64_t expires_at;
	bool used_or_revoked;
	enum role role;
	bool is_active;
};

/* 0 found, 1 not found, < 0 db_status. */
static int find_refresh(struct db_conn *c, const char *hash, struct refresh_row *out)
{
	struct db_res *r = NULL;
	struct db_param p[] = { DBP_TEXT(hash) };
	int rc = db_exec(c,
			 "SELECT t.id, t.organization_id, t.user_id, t.family_id, t.expires_at, "
			 "t.used_at IS NOT NULL OR t.revoked_at IS NOT NULL, u.role, u.is_active "
			 "FROM refresh_tokens t JOIN users u "
			 "ON u.id = t.user_id AND u.organization_id = t.organization_id "
			 "WHERE t.token_hash = $1",
			 p, 1, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) == 0) {
		rc = 1;
		goto out;
	}
	str_copy(out->id, sizeof out->id, db_get_text(r, 0, 0));
	str_copy(out->org_id, sizeof out->org_id, db_get_text(r, 0, 1));
	str_copy(out->user_id, sizeof out->user_id, db_get_text(r, 0, 2));
	str_copy(out->family_id, sizeof out->family_id, db_get_text(r, 0, 3));
	out->expires_at = db_get_int(r, 0, 4);
	out->used_or_revoked = db_get_bool(r, 0, 5);
	out->role = role_parse(db_get_text(r, 0, 6));
	out->is_active = db_get_bool(r, 0, 7);
out:
	db_res_free(r);
	return rc;
}

/* Mark the token used; *won is false when a concurrent rotation got there
 * first. */
static int mark_used(struct db_conn *c, const char *id, int64_t now_us, bool *won)
{
	int64_t n = 0;
	struct db_param p[] = { DBP_INT(now_us), DBP_TEXT(id) };
	int rc = db_exec(c,
			 "UPDATE refresh_tokens SET used_at = $1 "
			 "WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
			 p, 2, NULL, &n);
	*won = rc == DB_OK && n == 1;
	return rc;
}

int tokens_rotate(struct db_conn *c, const struct tokens_params *tp,
		  const char *refresh_token, int64_t now_us, struct token_pair *out,
		  enum tokens_rotate_result *result)
{
	char hash[CRYPTO_SHA256_HEX_LEN];
	struct refresh_row row = { 0 };
	*result = TOKENS_UNKNOWN;
	size_t n = strlen(refresh_token);
	if (n == 0 || n > TOKENS_REFRESH_MAX_LEN)
		return DB_OK;
	if (hash_refresh(refresh_token, hash) != DB_OK)
		return DB_ERR;
	int rc = find_refresh(c, hash, &row);
	if (rc != DB_OK) /* 1: unknown */
		return rc > 0 ? DB_OK : rc;
	if (row.used_or_revoked || !row.is_active || row.role == ROLE_NONE) {
		*result = row.used_or_revoked ? TOKENS_REPLAYED : TOKENS_USER_INACTIVE;
		return revoke_family(c, row.family_id, now_us);
	}
	if (row.expires_at <= now_us) {
		*result = TOKENS_EXPIRED;
		return DB_OK;
	}
	bool won = false;
	rc = mark_used(c, row.id, now_us, &won);
	if (rc != DB_OK)
		return rc;
	if (!won) {
		*result = TOKENS_REPLAYED;
		return revoke_family(c, row.family_id, now_us);
	}
	rc = tokens_issue(c, tp, row.org_id, row.user_id, row.role, row.family_id,
			  now_us, out);
	if (rc == DB_OK)
		*result = TOKENS_ROTATED;
	return rc;
}

static int revoke_jti(struct db_conn *c, const char *org_id, const char *jti,
		      int64_t exp_s, int64_t now_us)
{
	struct db_param p[] = { DBP_TEXT(jti), DBP_TEXT(org_id), DBP_INT(exp_s * US_PER_S),
				DBP_INT(now_us) };
	return db_exec(c,
		       "INSERT INTO revoked_tokens (jti, organization_id, expires_at, created_at) "
		       "VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
		       p, 4, NULL, NULL);
}

/* Revoke the family of the refresh row whose id or hash matches, when it
 * belongs to org_id/user_id. */
static int revoke_family_where(struct db_conn *c, const char *column, const char *value,
			       const char *org_id, const char *user_id, int64_t now_us)
{
	/* column is one of two literals chosen below, never input. */
	const char *sql = strcmp(column, "id") == 0
		? "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL "
		  "AND family_id = (SELECT family_id FROM refresh_tokens WHERE id = $2 "
		  "AND organization_id = $3 AND user_id = $4)"
		: "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL "
		  "AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $2 "
		  "AND organization_id = $3 AND user_id = $4)";
	struct db_param p[] = { DBP_INT(now_us), DBP_TEXT(value), DBP_TEXT(org_id),
				DBP_TEXT(user_id) };
	return db_exec(c, sql, p, 4, NULL, NULL);
}

int tokens_logout(struct db_conn *c, const char *org_id, const char *user_id,
		  const char *jti, int64_t exp_s, const char *refresh_token,
		  int64_t now_us)
{
	char hash[CRYPTO_SHA256_HEX_LEN];
	int rc = revoke_jti(c, org_id, jti, exp_s, now_us);
	if (rc == DB_OK && uuid_is_valid(jti))
		rc = revoke_family_where(c, "id", jti, org_id, user_id, now_us);
	if (rc == DB_OK && refresh_token != NULL && refresh_token[0] != '\0' &&
	    strlen(refresh_token) <= TOKENS_REFRESH_MAX_LEN) {
		rc = hash_refresh(refresh_token, hash);
		if (rc == DB_OK)
			rc = revoke_family_where(c, "hash", hash, org_id, user_id, now_us);
	}
	if (rc == DB_OK) {
		struct db_param p[] = { DBP_INT(now_us) };
		rc = db_exec(c, "DELETE FROM revoked_tokens WHERE expires_at < $1", p, 1,
			     NULL, NULL);
	}
	return rc;
}

int tokens_revoke_user(struct db_conn *c, const char *org_id, const char *user_id,
		       int64_t now_us)
{
	struct db_param p[] = { DBP_INT(now_us), DBP_TEXT(org_id), DBP_TEXT(user_id) };
	return db_exec(c,
		       "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL "
		       "AND organization_id = $2 AND user_id = $3",
		       p, 3, NULL, NULL);
}

int tokens_access_check(struct db_conn *c, const char *org_id, const char *user_id,
			const char *jti, struct tokens_access_state *out)
{
	struct db_res *r = NULL;
	struct db_param p[] = { DBP_TEXT(user_id), DBP_TEXT(org_id), DBP_TEXT(jti) };
	int rc = db_exec(c,
			 "SELECT u.role, u.is_active, "
			 "EXISTS (SELECT 1 FROM revoked_tokens k WHERE k.jti = $3) "
			 "FROM users u WHERE u.id = $1 AND u.organization_id = $2",
			 p, 3, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) == 0) {
		rc = 1;
		goto out;
	}
	out->role = role_parse(db_get_text(r, 0, 0));
	out->is_active = db_get_bool(r, 0, 1);
	out->revoked = db_get_bool(r, 0, 2);
out:
	db_res_free(r);
	return rc;
}

/* ---- login support -------------------------------------------------- */

int tokens_login_find(struct db_conn *c, const char *email, struct tokens_login_user *out)
{
	struct db_res *r = NULL;
	struct db_param p[] = { DBP_TEXT(email) };
	int rc = db_exec(c,
			 "SELECT id, organization_id, password_hash, role, is_active "
			 "FROM users WHERE email = $1",
			 p, 1, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) == 0) {
		rc = 1;
		goto out;
	}
	str_copy(out->id, sizeof out->id, db_get_text(r, 0, 0));
	str_copy(out->org_id, sizeof out->org_id, db_get_text(r, 0, 1));
	if (!str_copy(out->password_hash, sizeof out->password_hash, db_get_text(r, 0, 2)))
		out->password_hash[0] = '\0'; /* cannot be a valid hash: never matches */
	out->role = role_parse(db_get_text(r, 0, 3));
	out->is_active = db_get_bool(r, 0, 4);
out:
	db_res_free(r);
	return rc;
}

int tokens_login_failures(struct db_conn *c, const char *email, int64_t since_us,
			  int64_t *count, int64_t *oldest_us)
{
	struct db_res *r = NULL;
	struct db_param p[] = { DBP_TEXT(email), DBP_INT(since_us) };
	int rc = db_exec(c,
			 "SELECT COUNT(*), MIN(failed_at) FROM login_failures "
			 "WHERE email = $1 AND failed_at >= $2",
			 p, 2, &r, NULL);
	if (rc != DB_OK)
		goto out;
	*count = db_rows(r) > 0 ? db_get_int(r, 0, 0) : 0;
	*oldest_us = db_rows(r) > 0 ? db_get_int(r, 0, 1) : 0;
out:
	db_res_free(r);
	return rc;
}

int tokens_login_failure_add(struct db_conn *c, const char *email, int64_t now_us,
			     int64_t purge_before_us)
{
	struct db_param del[] = { DBP_INT(purge_before_us) };
	int rc = db_exec(c, "DELETE FROM login_failures WHERE failed_at < $1", del, 1, NULL,
			 NULL);
	if (rc != DB_OK)
		return rc;
	struct db_param ins[] = { DBP_TEXT(email), DBP_INT(now_us) };
	return db_exec(c, "INSERT INTO login_failures (email, failed_at) VALUES ($1, $2)",
		       ins, 2, NULL, NULL);
}

int tokens_login_failures_clear(struct db_conn *c, const char *email)
{
	struct db_param p[] = { DBP_TEXT(email) };
	return db_exec(c, "DELETE FROM login_failures WHERE email = $1", p, 1, NULL, NULL);
}

int tokens_login_touch(struct db_conn *c, const char *org_id, const char *user_id,
		       int64_t now_us)
{
	struct db_param p[] = { DBP_INT(now_us), DBP_TEXT(user_id), DBP_TEXT(org_id) };
	return db_exec(c,
		       "UPDATE users SET last_login_at = $1 WHERE id = $2 AND organization_id = $3",
		       p, 3, NULL, NULL);
}

int tokens_profile_load(struct db_conn *c, const char *org_id, const char *user_id,
			struct tokens_profile *out)
{
	struct db_res *r = NULL;
	struct db_param p[] = { DBP_TEXT(user_id), DBP_TEXT(org_id) };
	int rc = db_exec(c,
			 "SELECT u.id, u.email, u.full_name, u.role, o.id, o.name, o.slug "
			 "FROM users u JOIN organizations o ON o.id = u.organization_id "
			 "WHERE u.id = $1 AND u.organization_id = $2",
			 p, 2, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) == 0) {
		rc = 1;
		goto out;
	}
	str_copy(out->id, sizeof out->id, db_get_text(r, 0, 0));
	str_copy(out->email, sizeof out->email, db_get_text(r, 0, 1));
	str_copy(out->full_name, sizeof out->full_name, db_get_text(r, 0, 2));
	out->role = role_parse(db_get_text(r, 0, 3));
	str_copy(out->org_id, sizeof out->org_id, db_get_text(r, 0, 4));
	str_copy(out->org_name, sizeof out->org_name, db_get_text(r, 0, 5));
	str_copy(out->org_slug, sizeof out->org_slug, db_get_text(r, 0, 6));
out:
	db_res_free(r);
	return rc;
}
