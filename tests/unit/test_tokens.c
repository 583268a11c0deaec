/* Unit tests for auth/tokens.c on an in-memory SQLite database: issuing,
 * rotation, replay, expiry, deactivation, logout (and the revocation list's
 * expiry), the access check and the failed-login counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/jwt.h"
#include "auth/tokens.h"
#include "core/crypto.h"
#include "core/timeutil.h"
#include "db/migrate.h"
#include "domain/orgs.h"
#include "domain/users.h"

#define KEY "unit-test-secret-unit-test-secret-0123456789"
#define NOW (INT64_C(1800000000) * 1000000)

struct fixture {
	struct db *db;
	struct db_conn *c;
	struct org org;
	struct user user;
	struct tokens_params tp;
};

static int setup(void **state)
{
	static struct fixture f;
	char err[256];
	memset(&f, 0, sizeof f);
	struct db_options o = { .pool_size = 1, .acquire_timeout_ms = 1000,
				.busy_timeout_ms = 1000 };
	if (db_open("sqlite::memory:", &o, &f.db, err, sizeof err) != 0 ||
	    migrate_upgrade(f.db, migrations_embedded, migrations_embedded_count, 0, err,
			    sizeof err) != 0)
		return -1;
	f.c = db_acquire(f.db);
	if (f.c == NULL || orgs_create(f.c, "Acme", "acme", NULL, &f.org) != DB_OK ||
	    users_create(f.c, f.org.id, "a@example.com", "$argon2id$fake", "A", ROLE_AGENT,
			 &f.user) != DB_OK)
		return -1;
	f.tp = (struct tokens_params){ .key = KEY, .keylen = strlen(KEY),
				       .access_ttl_s = 900, .refresh_ttl_s = 7 * 86400 };
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	db_release(f->db, f->c);
	db_close(f->db);
	return 0;
}

static void issue(struct fixture *f, int64_t now_us, struct token_pair *p)
{
	assert_int_equal(tokens_issue(f->c, &f->tp, f->org.id, f->user.id, ROLE_AGENT, NULL,
				      now_us, p),
			 DB_OK);
}

static enum tokens_rotate_result rotate(struct fixture *f, const char *tok, int64_t now_us,
					struct token_pair *out)
{
	enum tokens_rotate_result r = TOKENS_ROTATED;
	assert_int_equal(tokens_rotate(f->c, &f->tp, tok, now_us, out, &r), DB_OK);
	return r;
}

static void test_issue_signs_and_stores_hash(void **state)
{
	struct fixture *f = *state;
	struct token_pair p = { 0 };
	issue(f, NOW, &p);
	assert_int_equal(strlen(p.refresh_token), 43);
	assert_int_equal(p.expires_in, 900);
	struct jwt_claims cl;
	assert_int_equal(jwt_decode(p.access_token, KEY, strlen(KEY), "pytake", NOW / 1000000,
				    &cl),
			 JWT_OK);
	assert_string_equal(cl.sub, f->user.id);
	assert_string_equal(cl.org, f->org.id);
	assert_string_equal(cl.role, "agent");
	assert_string_equal(cl.jti, p.jti);
	assert_int_equal(cl.exp - cl.iat, 900);
	/* Only the hash is stored, under the jti's id. */
	char hash[CRYPTO_SHA256_HEX_LEN];
	assert_int_equal(crypto_sha256_hex(p.refresh_token, strlen(p.refresh_token), hash), 0);
	struct db_res *r = NULL;
	struct db_param prm[] = { DBP_TEXT(p.jti) };
	assert_int_equal(db_exec(f->c, "SELECT token_hash, family_id FROM refresh_tokens WHERE id = $1",
				 prm, 1, &r, NULL),
			 DB_OK);
	assert_int_equal(db_rows(r), 1);
	assert_string_equal(db_get_text(r, 0, 0), hash);
	assert_string_equal(db_get_text(r, 0, 1), p.family_id);
	db_res_free(r);
	token_pair_release(&p);
	assert_null(p.access_token);
}

static void test_rotation_and_replay(void **state)
{
	struct fixture *f = *state;
	struct token_pair a = { 0 }, b = { 0 }, c = { 0 }, x = { 0 };
	issue(f, NOW, &a);
	assert_int_equal(rotate(f, a.refresh_token, NOW + 1, &b), TOKENS_ROTATED);
	assert_string_equal(b.family_id, a.family_id);
	assert_string_not_equal(b.refresh_token, a.refresh_token);
	assert_string_not_equal(b.jti, a.jti);
	/* Replaying a: the family dies, so b cannot be used either. */
	assert_int_equal(rotate(f, a.refresh_token, NOW + 2, &x), TOKENS_REPLAYED);
	assert_null(x.access_token);
	assert_int_equal(rotate(f, b.refresh_token, NOW + 3, &x), TOKENS_REPLAYED);
	/* Another family is untouched. */
	issue(f, NOW, &c);
	assert_int_equal(rotate(f, c.refresh_token, NOW + 4, &x), TOKENS_ROTATED);
	token_pair_release(&a);
	token_pair_release(&b);
	token_pair_release(&c);
	token_pair_release(&x);
}

static void test_rotate_rejects(void **state)
{
	struct fixture *f = *state;
	struct token_pair p = { 0 }, x = { 0 };
	static const char *const unknown[] = { "", "x", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
		assert_int_equal(rotate(f, unknown[i], NOW, &x), TOKENS_UNKNOWN);
	/* Expired: issued more than the refresh lifetime ago. */
	issue(f, NOW - f->tp.refresh_ttl_s * 1000000 - 1, &p);
	assert_int_equal(rotate(f, p.refresh_token, NOW, &x), TOKENS_EXPIRED);
	token_pair_release(&p);
	/* A deactivated user's token is refused and its family revoked. */
	issue(f, NOW, &p);
	struct db_param prm[] = { DBP_TEXT(f->user.id) };
	assert_int_equal(db_exec(f->c, "UPDATE users SET is_active = 0 WHERE id = $1", prm, 1,
				 NULL, NULL),
			 DB_OK);
	assert_int_equal(rotate(f, p.refresh_token, NOW, &x), TOKENS_USER_INACTIVE);
	assert_int_equal(db_exec(f->c, "UPDATE users SET is_active = 1 WHERE id = $1", prm, 1,
				 NULL, NULL),
			 DB_OK);
	assert_int_equal(rotate(f, p.refresh_token, NOW, &x), TOKENS_REPLAYED);
	assert_null(x.access_token);
	token_pair_release(&p);
}

static void test_logout_and_access_check(void **state)
{
	struct fixture *f = *state;
	struct token_pair p = { 0 }, x = { 0 };
	struct tokens_access_state st;
	issue(f, NOW, &p);
	assert_int_equal(tokens_access_check(f->c, f->org.id, f->user.id, p.jti, &st), 0);
	assert_false(st.revoked);
	assert_true(st.is_active);
	assert_int_equal(st.role, ROLE_AGENT);
	/* Another organization's id finds nothing. */
	assert_int_equal(tokens_access_check(f->c, "00000000-0000-7000-8000-000000000000",
					     f->user.id, p.jti, &st),
			 1);
	assert_int_equal(tokens_logout(f->c, f->org.id, f->user.id, p.jti, p.access_exp, NULL,
				       NOW + 1),
			 DB_OK);
	assert_int_equal(tokens_access_check(f->c, f->org.id, f->user.id, p.jti, &st), 0);
	assert_true(st.revoked);
	/* The family issued with the access token is gone too. */
	assert_int_equal(rotate(f, p.refresh_token, NOW + 2, &x), TOKENS_REPLAYED);
	/* Logging out twice is fine. */
	assert_int_equal(tokens_logout(f->c, f->org.id, f->user.id, p.jti, p.access_exp, NULL,
				       NOW + 3),
			 DB_OK);
	token_pair_release(&p);
}

static int64_t revoked_rows(struct fixture *f, const char *jti)
{
	struct db_res *r = NULL;
	struct db_param prm[] = { DBP_TEXT(jti) };
	int64_t n = -1;
	assert_int_equal(db_exec(f->c, "SELECT COUNT(*) FROM revoked_tokens WHERE jti = $1", prm,
				 1, &r, NULL),
			 DB_OK);
	n = db_get_int(r, 0, 0);
	db_res_free(r);
	return n;
}

/* The revocation list keeps a jti only while the token could still be
 * used: a later logout purges entries past their access token's expiry. */
static void test_revocations_expire(void **state)
{
	struct fixture *f = *state;
	const int64_t later = NOW + INT64_C(901) * 1000000; /* past the first token's exp */
	struct token_pair p = { 0 }, q = { 0 };
	issue(f, NOW, &p);
	assert_int_equal(tokens_logout(f->c, f->org.id, f->user.id, p.jti, p.access_exp, NULL,
				       NOW + 1),
			 DB_OK);
	assert_int_equal(revoked_rows(f, p.jti), 1);
	issue(f, later, &q);
	assert_int_equal(tokens_logout(f->c, f->org.id, f->user.id, q.jti, q.access_exp, NULL,
				       later + 1),
			 DB_OK);
	assert_int_equal(revoked_rows(f, p.jti), 0); /* expired: purged */
	assert_int_equal(revoked_rows(f, q.jti), 1); /* still live: kept */
	token_pair_release(&p);
	token_pair_release(&q);
}

static void test_login_failures(void **state)
{
	struct fixture *f = *state;
	const int64_t min = INT64_C(60) * 1000000;
	int64_t n = -1, oldest = -1;
	assert_int_equal(tokens_login_failures(f->c, "x@example.com", NOW - 15 * min, &n, &oldest),
			 DB_OK);
	assert_int_equal(n, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tokens_login_failure_add(f->c, "x@example.com", NOW + i * min,
							  NOW + i * min - 15 * min),
				 DB_OK);
	assert_int_equal(tokens_login_failure_add(f->c, "y@example.com", NOW, NOW - 15 * min),
			 DB_OK);
	assert_int_equal(tokens_login_failures(f->c, "x@example.com", NOW - 15 * min, &n, &oldest),
			 DB_OK);
	assert_int_equal(n, 3);
	assert_int_equal(oldest, NOW);
	/* The window slides: from NOW + 1 min on, the first one is out. */
	assert_int_equal(tokens_login_failures(f->c, "x@example.com", NOW + min, &n, &oldest),
			 DB_OK);
	assert_int_equal(n, 2);
	assert_int_equal(oldest, NOW + min);
	assert_int_equal(tokens_login_failures_clear(f->c, "x@example.com"), DB_OK);
	assert_int_equal(tokens_login_failures(f->c, "x@example.com", 0, &n, &oldest), DB_OK);
	assert_int_equal(n, 0);
	assert_int_equal(tokens_login_failures(f->c, "y@example.com", 0, &n, &oldest), DB_OK);
	assert_int_equal(n, 1);
}

static void test_login_find_and_profile(void **state)
{
	struct fixture *f = *state;
	struct tokens_login_user u;
	assert_int_equal(tokens_login_find(f->c, "a@example.com", &u), 0);
	assert_string_equal(u.id, f->user.id);
	assert_string_equal(u.password_hash, "$argon2id$fake");
	assert_int_equal(tokens_login_find(f->c, "nobody@example.com", &u), 1);
	struct tokens_profile p;
	assert_int_equal(tokens_profile_load(f->c, f->org.id, f->user.id, &p), 0);
	assert_string_equal(p.email, "a@example.com");
	assert_string_equal(p.org_slug, "acme");
	assert_int_equal(p.role, ROLE_AGENT);
	assert_int_equal(tokens_profile_load(f->c, "00000000-0000-7000-8000-000000000000",
					     f->user.id, &p),
			 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_signs_and_stores_hash),
		cmocka_unit_test(test_rotation_and_replay),
		cmocka_unit_test(test_rotate_rejects),
		cmocka_unit_test(test_logout_and_access_check),
		cmocka_unit_test(test_revocations_expire),
		cmocka_unit_test(test_login_failures),
		cmocka_unit_test(test_login_find_and_profile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
