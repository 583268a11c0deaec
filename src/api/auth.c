/* /api/v1/auth: login, refresh, logout, me (API.md "Auth").
 *
 * Login runs in three steps so no database connection is held while
 * argon2 works: (1) read the email's recent failures and the user; refuse
 * with 429 at LOGIN_MAX_FAILURES failures in LOGIN_WINDOW_US, before any
 * password work; (2) verify the password outside any transaction (an
 * unknown email spends the same time on password_dummy_verify); (3) one
 * write transaction records the failure, or clears the failures, stamps
 * last_login_at, issues the token pair and writes the audit row. Unknown
 * email, wrong password and deactivated user get the same 401. All three
 * steps run on the password worker pool with the answer deferred
 * (api/offload.h), never on an HTTP thread; a full pool queue is 503. */
#include "api/api.h"

#include <string.h>

#include "api/answer.h"
#include "api/offload.h"
#include "app/app.h"
#include "auth/authn.h"
#include "auth/password.h"
#include "auth/tokens.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "domain/audit.h"
#include "domain/users.h"

#define LOGIN_MAX_FAILURES 5
#define LOGIN_WINDOW_US (15 * 60 * INT64_C(1000000))
#define US_PER_S INT64_C(1000000)

/* ---- shared answers ---------------------------------------------------- */

static void answer_pair(struct http_response *res, const struct token_pair *p)
{
	http_json(res, 200,
		  json_pack("{s:s, s:s, s:s, s:I}", "access_token", p->access_token,
			    "refresh_token", p->refresh_token, "token_type", "bearer",
			    "expires_in", (json_int_t)p->expires_in));
}

static void audit_auth_event(struct audit_entry *e, const struct http_request *req,
			     const char *org_id, const char *user_id, const char *action)
{
	memset(e, 0, sizeof *e);
	e->org_id = org_id;
	e->user_id = user_id;
	e->action = action;
	e->table_name = "users";
	e->record_id = user_id;
	e->changes = NULL;
	e->ip = req->client_ip;
	e->request_id = req->request_id;
}

/* ---- login ------------------------------------------------------------- */

struct login {
	struct http_request *req;
	const struct tokens_params *tp;
	char email[255];
	int64_t now_us;
	/* step 1 */
	int64_t failures, oldest_us;
	bool found;
	struct tokens_login_user user;
	/* step 3 */
	bool ok;
	struct token_pair pair;
};

static int login_read_fn(struct db_conn *c, void *ctx)
{
	struct login *l = ctx;
	int rc = tokens_login_failures(c, l->email, l->now_us - LOGIN_WINDOW_US,
				       &l->failures, &l->oldest_us);
	if (rc != DB_OK)
		return rc;
	rc = tokens_login_find(c, l->email, &l->user);
	l->found = rc == 0;
	return rc > 0 ? DB_OK : rc;
}

static int login_write_fn(struct db_conn *c, void *ctx)
{
	struct login *l = ctx;
	if (!l->ok)
		return tokens_login_failure_add(c, l->email, l->now_us,
						l->now_us - LOGIN_WINDOW_US);
	int rc = tokens_login_failures_clear(c, l->email);
	if (rc == DB_OK)
		rc = tokens_login_touch(c, l->user.org_id, l->user.id, l->now_us);
	if (rc == DB_OK)
		rc = tokens_issue(c, l->tp, l->user.org_id, l->user.id, l->user.role, NULL,
				  l->now_us, &l->pair);
	if (rc == DB_OK) {
		struct audit_entry e;
		audit_auth_event(&e, l->req, l->user.org_id, l->user.id, "login");
		rc = audit_record(c, &e);
	}
	return rc;
}

/* Parse {email, password}; false after filling res. */
static bool login_parse(struct http_request *req, struct http_response *res,
			json_t **body, const char **email, const char **password)
{
	*body = http_body_json(req, res);
	if (*body == NULL)
		return false;
	struct json_check chk = JSON_CHECK_INIT;
	json_check_str(&chk, *body, "email", true, 1, 254, email);
	json_check_str(&chk, *body, "password", true, 1, PASSWORD_MAX_LEN, password);
	return api_check_passed(res, &chk);
}

static void answer_locked(struct http_response *res, struct arena *a,
			  const struct login *l)
{
	int64_t wait_us = l->oldest_us + LOGIN_WINDOW_US - l->now_us;
	int64_t secs = (wait_us + US_PER_S - 1) / US_PER_S;
	if (secs < 1)
		secs = 1;
	const char *v = arena_printf(a, "%lld", (long long)secs);
	http_add_header(res, "Retry-After", v != NULL ? v : "900");
	http_error(res, 429, "too_many_attempts",
		   "too many failed logins for this email; try again later", NULL);
}

/* Step 2: true when the password is right for an active user; *busy when
 * no argon2 slot was free, *error on a hashing failure. */
static bool login_verify(struct login *l, const char *password, bool *busy, bool *error)
{
	int pr = l->found ? password_verify(password, l->user.password_hash)
			  : password_dummy_verify();
	*busy = pr == PASSWORD_BUSY;
	*error = pr == PASSWORD_ERROR && !l->found;
	if (pr == PASSWORD_ERROR && l->found)
		log_event(LOG_WARN, "stored password hash is unusable", LF_S("user_id", l->user.id));
	return l->found && pr == PASSWORD_OK && l->user.is_active &&
	       l->user.role != ROLE_NONE;
}

static void login_run(struct http_request *req, struct http_response *res)
{
	json_t *body = NULL;
	const char *email = NULL, *password = NULL;
	struct tokens_params tp;
	struct login l = { .req = req, .tp = &tp };
	tokens_params_from_config(req->app->cfg, &tp);
	if (!login_parse(req, res, &body, &email, &password))
		goto out;
	if (!users_normalize_email(email, l.email, sizeof l.email)) {
		http_error(res, 401, "invalid_credentials", "email or password is wrong", NULL);
		goto out;
	}
	l.now_us = time_now_us();
	int rc = db_tx(req->app->db, false, login_read_fn, &l);
	if (rc != DB_OK) {
		api_answer_db_error(res, rc);
		goto out;
	}
	if (l.failures >= LOGIN_MAX_FAILURES) {
		answer_locked(res, req->arena, &l);
		goto out;
	}
	bool busy = false, error = false;
	l.ok = login_verify(&l, password, &busy, &error);
	if (busy || error) {
		http_add_header(res, "Retry-After", "1");
		http_error(res, 503, "service_unavailable",
			   "too many logins at once; try again shortly", NULL);
		goto out;
	}
	l.now_us = time_now_us();
	rc = db_tx(req->app->db, true, login_write_fn, &l);
	if (rc != DB_OK)
		api_answer_db_error(res, rc);
	else if (!l.ok)
		http_error(res, 401, "invalid_credentials", "email or password is wrong", NULL);
	else
		answer_pair(res, &l.pair);
out:
	crypto_wipe(&l.user, sizeof l.user);
	token_pair_release(&l.pair);
	json_decref(body);
}

/* argon2 verify: off the HTTP threads (api/offload.h); the answer is
 * deferred and completed by the worker. */
void api_auth_login(struct http_request *req, struct http_response *res)
{
	api_offload(req, res, login_run);
}

/* ---- refresh ----------------------------------------------------------- */

struct refresh {
	const struct tokens_params *tp;
	const char *token;
	int64_t now_us;
	enum tokens_rotate_result result;
	struct token_pair pair;
};

static int refresh_fn(struct db_conn *c, void *ctx)
{
	struct refresh *r = ctx;
	return tokens_rotate(c, r->tp, r->token, r->now_us, &r->pair, &r->result);
}

/* {refresh_token} required (refresh) or optional (logout); false after
 * filling res. *token is NULL when optional and absent. */
static bool parse_refresh_body(struct http_request *req, struct http_response *res,
			       bool required, json_t **body, const char **token)
{
	*token = NULL;
	*body = NULL;
	if (!required && req->body_len == 0)
		return true;
	*body = http_body_json(req, res);
	if (*body == NULL)
		return false;
	struct json_check chk = JSON_CHECK_INIT;
	json_check_str(&chk, *body, "refresh_token", required, 1, TOKENS_REFRESH_MAX_LEN * 4,
		       token);
	return api_check_passed(res, &chk);
}

void api_auth_refresh(struct http_request *req, struct http_response *res)
{
	json_t *body = NULL;
	struct tokens_params tp;
	struct refresh r = { .tp = &tp };
	tokens_params_from_config(req->app->cfg, &tp);
	if (!parse_refresh_body(req, res, true, &body, &r.token))
		goto out;
	r.now_us = time_now_us();
	int rc = db_tx(req->app->db, true, refresh_fn, &r);
	if (rc != DB_OK)
		api_answer_db_error(res, rc);
	else if (r.result == TOKENS_ROTATED)
		answer_pair(res, &r.pair);
	else
		authn_unauthorized(res, "invalid_token",
				   r.result == TOKENS_REPLAYED
					   ? "the refresh token was already used; its family is revoked"
					   : "the refresh token is not valid");
out:
	token_pair_release(&r.pair);
	json_decref(body);
}

/* ---- logout ------------------------------------------------------------ */

struct logout {
	const struct http_request *req;
	const char *refresh_token;
	int64_t now_us;
};

static int logout_fn(struct db_conn *c, void *ctx)
{
	struct logout *l = ctx;
	const struct http_auth *a = &l->req->auth;
	int rc = tokens_logout(c, a->org_id, a->user_id, a->jti, a->exp, l->refresh_token,
			       l->now_us);
	if (rc == DB_OK) {
		struct audit_entry e;
		audit_auth_event(&e, l->req, a->org_id, a->user_id, "logout");
		rc = audit_record(c, &e);
	}
	return rc;
}

void api_auth_logout(struct http_request *req, struct http_response *res)
{
	json_t *body = NULL;
	struct logout l = { .req = req };
	if (!parse_refresh_body(req, res, false, &body, &l.refresh_token))
		goto out;
	l.now_us = time_now_us();
	int rc = db_tx(req->app->db, true, logout_fn, &l);
	if (rc != DB_OK) {
		api_answer_db_error(res, rc);
		goto out;
	}
	authn_mirror_revocation(req->app->authn, req->auth.jti, req->auth.exp);
	http_body(res, 204, NULL, NULL, 0);
out:
	json_decref(body);
}

/* ---- me ---------------------------------------------------------------- */

void api_auth_me(struct http_request *req, struct http_response *res)
{
	struct tokens_profile p;
	struct db_conn *c = db_acquire(req->app->db);
	if (c == NULL) {
		api_answer_db_error(res, DB_ERR_UNAVAILABLE);
		return;
	}
	int rc = tokens_profile_load(c, req->auth.org_id, req->auth.user_id, &p);
	db_release(req->app->db, c);
	if (rc < 0) {
		api_answer_db_error(res, rc);
		return;
	}
	if (rc == 1) {
		authn_unauthorized(res, "invalid_token", "the token is not valid");
		return;
	}
	http_json(res, 200,
		  json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "id", p.id, "email",
			    p.email, "full_name", p.full_name, "role", role_name(p.role),
			    "organization", "id", p.org_id, "name", p.org_name, "slug",
			    p.org_slug));
}
