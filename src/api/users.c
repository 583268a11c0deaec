/* Users of the caller's organization (org_admin and up):
 *   GET/POST /api/v1/users, GET/PATCH/DELETE /api/v1/users/{id}.
 *
 * Choices (API.md is silent):
 * - Only a super_admin may create a super_admin, promote someone to it, or
 *   change / deactivate an existing super_admin: others get 403 forbidden.
 * - Nobody deactivates their own account (PATCH is_active=false or DELETE
 *   on oneself): 422 validation_error, so an organization cannot lock its
 *   last administrator out by accident.
 * - A password change never appears in `changes`: the update row lists the
 *   other fields, and one extra row with action "password_change" and empty
 *   changes records that it happened. Deactivation and password changes
 *   also revoke the user's refresh tokens in the same transaction (access
 *   tokens stop at once because the auth hook reads is_active).
 * - DELETE deactivates (soft), answers 204 also when already inactive, and
 *   writes an audit row with action "delete". */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/answer.h"
#include "api/offload.h"
#include "api/list.h"
#include "app/app.h"
#include "auth/password.h"
#include "auth/tokens.h"
#include "core/json.h"
#include "core/timeutil.h"
#include "domain/audit.h"
#include "domain/users.h"

/* Positive codes a transaction function returns to roll back. */
enum { TX_NOT_FOUND = 1, TX_FORBIDDEN = 2, TX_SELF = 3 };

static const char NOT_FOUND[] = "no such user";

/* ---- shared with orgs.c (declared in api.h) ---------------------------- */

json_t *api_user_json(const struct user *u)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:o}", "id", u->id,
			 "organization_id", u->organization_id, "email", u->email,
			 "full_name", u->full_name, "role", role_name(u->role),
			 "is_active", u->is_active, "last_login_at",
			 api_time_json(u->last_login_at), "created_at",
			 api_time_json(u->created_at), "updated_at",
			 api_time_json(u->updated_at));
}

int api_hash_password(struct http_response *res, const char *plain, char *out,
		      size_t outsz)
{
	int rc = password_hash(plain, out, outsz);
	if (rc == PASSWORD_OK)
		return 0;
	if (rc == PASSWORD_BUSY) {
		http_add_header(res, "Retry-After", "1");
		http_error(res, 503, "service_unavailable",
			   "too many password operations at once; try again shortly", NULL);
	} else {
		http_error(res, 500, "internal_error", "cannot hash the password", NULL);
	}
	return -1;
}

/* ---- small helpers ---------------------------------------------------- */

static void answer_forbidden(struct http_response *res)
{
	http_error(res, 403, "forbidden",
		   "only a super_admin may create, change or promote a super_admin", NULL);
}

static void answer_self(struct http_response *res, const char *field)
{
	http_error(res, 422, "validation_error", "the request is not valid",
		   json_pack("[{s:s, s:s}]", "field", field, "message",
			     "you cannot deactivate your own account"));
}

static bool caller_is_super(const struct http_request *req)
{
	return req->auth.role == ROLE_SUPER_ADMIN;
}

/* Answer for a transaction's result; true when it succeeded. */
static bool tx_ok(struct http_response *res, int rc)
{
	switch (rc) {
	case DB_OK:
		return true;
	case TX_NOT_FOUND:
		api_answer_not_found(res, NOT_FOUND);
		break;
	case TX_FORBIDDEN:
		answer_forbidden(res);
		break;
	case TX_SELF:
		answer_self(res, "is_active");
		break;
	case DB_ERR_CONFLICT:
		http_error(res, 409, "conflict", "a user with this email already exists",
			   NULL);
		break;
	default:
		api_answer_db_error(res, rc);
	}
	return false;
}

/* role field: ROLE_NONE (after a check entry) when absent or bad. */
static enum role check_role(struct json_check *chk, const json_t *body, bool required)
{
	const char *s = NULL;
	if (!json_check_str(chk, body, "role", required, 1, 32, &s))
		return ROLE_NONE;
	enum role r = role_parse(s);
	if (r == ROLE_NONE)
		json_check_rule(chk, "role",
				"must be one of super_admin, org_admin, agent, viewer");
	return r;
}

/* ---- GET /api/v1/users ------------------------------------------------- */

struct list_ctx {
	const char *org_id;
	struct user *rows;
	int n;
};

static int list_fetch(struct db_conn *c, void *arg, const struct page *p, int limit, int *n)
{
	struct list_ctx *t = arg;
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
	int rc = users_list(c, t->org_id, limit, p->after_at, p->after_id, &t->rows, &t->n);
	*n = t->n;
	return rc;
}

static json_t *list_render(void *arg, int i, int64_t *at, const char **id)
{
	struct list_ctx *t = arg;
	*at = t->rows[i].created_at;
	*id = t->rows[i].id;
	return api_user_json(&t->rows[i]);
}

void api_users_list(struct http_request *req, struct http_response *res)
{
	struct list_ctx t = { .org_id = req->auth.org_id };
	struct api_list list = { .fetch = list_fetch, .render = list_render, .ctx = &t };
	(void)api_list_answer(req, res, &list);
	free(t.rows);
}

/* ---- POST /api/v1/users ------------------------------------------------ */

struct create_tx {
	const struct http_request *req;
	const char *email, *full_name;
	enum role role;
	char hash[PASSWORD_HASH_LEN];
	struct user user;
};

static int create_fn(struct db_conn *c, void *ctx)
{
	struct create_tx *t = ctx;
	int rc = users_create(c, t->req->auth.org_id, t->email, t->hash, t->full_name,
			      t->role, &t->user);
	if (rc != DB_OK)
		return rc;
	json_t *changes = json_object();
	audit_change_str(changes, "email", NULL, t->user.email);
	audit_change_str(changes, "full_name", NULL, t->user.full_name);
	audit_change_str(changes, "role", NULL, role_name(t->user.role));
	json_object_set_new(changes, "is_active", json_pack("[nb]", true));
	struct audit_entry e = { .action = "create", .table_name = "users",
				 .record_id = t->user.id, .changes = changes };
	audit_entry_from_request(&e, t->req);
	rc = audit_record(c, &e);
	json_decref(changes);
	return rc;
}

/* Validate the POST body into t; false after answering. */
static bool parse_create(struct http_response *res, const json_t *body,
			 struct create_tx *t, const char **password)
{
	struct json_check chk = JSON_CHECK_INIT;
	const char *why;
	if (json_check_str(&chk, body, "email", true, 1, 254, &t->email) &&
	    (why = users_check_email(t->email)))
		json_check_rule(&chk, "email", "%s", why);
	if (json_check_str(&chk, body, "password", true, 1, PASSWORD_MAX_LEN, password) &&
	    (why = users_check_password(*password)))
		json_check_rule(&chk, "password", "%s", why);
	json_check_str(&chk, body, "full_name", true, 1, 200, &t->full_name);
	t->role = check_role(&chk, body, true);
	return api_check_passed(res, &chk);
}

static void users_create_run(struct http_request *req, struct http_response *res)
{
	struct create_tx t = { .req = req };
	const char *password = NULL;
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	if (!parse_create(res, body, &t, &password))
		goto out;
	if (t.role == ROLE_SUPER_ADMIN && !caller_is_super(req)) {
		answer_forbidden(res);
		goto out;
	}
	if (api_hash_password(res, password, t.hash, sizeof t.hash) != 0)
		goto out;
	if (!tx_ok(res, db_tx(req->app->db, true, create_fn, &t)))
		goto out;
	api_answer_created(req, res, "/api/v1/users", t.user.id, api_user_json(&t.user));
out:
	explicit_bzero(t.hash, sizeof t.hash);
	json_decref(body);
}

/* argon2 hashing: off the HTTP threads (api/offload.h). */
void api_users_create(struct http_request *req, struct http_response *res)
{
	api_offload(req, res, users_create_run);
}

/* ---- GET /api/v1/users/{id} -------------------------------------------- */

struct get_tx {
	const char *org_id, *id;
	struct user user;
};

static int get_fn(struct db_conn *c, void *ctx)
{
	struct get_tx *t = ctx;
	return users_find(c, t->org_id, t->id, &t->user);
}

void api_users_get(struct http_request *req, struct http_response *res)
{
	struct get_tx t = { .org_id = req->auth.org_id };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	if (tx_ok(res, db_tx(req->app->db, false, get_fn, &t)))
		http_json(res, 200, api_user_json(&t.user));
}

/* ---- PATCH and DELETE /api/v1/users/{id} -------------------------------- */

struct update_tx {
	const struct http_request *req;
	const char *id;
	const char *action; /* "update" | "delete" */
	struct user_patch patch;
	struct user before, after;
};

static int audit_update(struct db_conn *c, struct update_tx *t)
{
	json_t *changes = json_object();
	audit_change_str(changes, "full_name", t->before.full_name, t->after.full_name);
	audit_change_str(changes, "role", role_name(t->before.role),
			 role_name(t->after.role));
	audit_change_bool(changes, "is_active", t->before.is_active, t->after.is_active);
	struct audit_entry e = { .action = t->action, .table_name = "users",
				 .record_id = t->id, .changes = changes };
	audit_entry_from_request(&e, t->req);
	int rc = audit_record(c, &e);
	json_decref(changes);
	if (rc == DB_OK && t->patch.has_password) {
		struct audit_entry pw = e;
		pw.action = "password_change";
		pw.changes = NULL;
		rc = audit_record(c, &pw);
	}
	return rc;
}

static int update_fn(struct db_conn *c, void *ctx)
{
	struct update_tx *t = ctx;
	const struct http_request *req = t->req;
	bool deactivating = t->patch.has_active && !t->patch.is_active;
	if (deactivating && !strcmp(t->id, req->auth.user_id))
		return TX_SELF;
	int rc = users_update(c, req->auth.org_id, t->id, &t->patch, &t->before, &t->after);
	if (rc == 1)
		return TX_NOT_FOUND;
	if (rc != DB_OK)
		return rc;
	if (t->before.role == ROLE_SUPER_ADMIN && req->auth.role != ROLE_SUPER_ADMIN)
		return TX_FORBIDDEN;
	if ((t->before.is_active && !t->after.is_active) || t->patch.has_password) {
		rc = tokens_revoke_user(c, req->auth.org_id, t->id, time_now_us());
		if (rc != DB_OK)
			return rc;
	}
	return audit_update(c, t);
}

/* Validate the PATCH body into t->patch; false after answering. */
static bool parse_patch(struct http_response *res, const json_t *body,
			struct update_tx *t, const char **password)
{
	struct json_check chk = JSON_CHECK_INIT;
	struct user_patch *p = &t->patch;
	const char *why;
	p->has_full_name = json_check_str(&chk, body, "full_name", false, 1, 200,
					  &p->full_name);
	if (json_object_get(body, "role") && !json_is_null(json_object_get(body, "role"))) {
		p->role = check_role(&chk, body, false);
		p->has_role = p->role != ROLE_NONE;
	}
	p->has_active = json_check_bool(&chk, body, "is_active", false, &p->is_active);
	if (json_check_str(&chk, body, "password", false, 1, PASSWORD_MAX_LEN, password)) {
		if ((why = users_check_password(*password)))
			json_check_rule(&chk, "password", "%s", why);
		else
			p->has_password = true;
	}
	return api_check_passed(res, &chk);
}

static void users_patch_run(struct http_request *req, struct http_response *res)
{
	struct update_tx t = { .req = req, .action = "update" };
	char hash[PASSWORD_HASH_LEN] = "";
	const char *password = NULL;
	json_t *body = NULL;
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	body = http_body_json(req, res);
	if (!body)
		return;
	if (!parse_patch(res, body, &t, &password))
		goto out;
	if (t.patch.has_role && t.patch.role == ROLE_SUPER_ADMIN && !caller_is_super(req)) {
		answer_forbidden(res);
		goto out;
	}
	if (t.patch.has_password) {
		if (api_hash_password(res, password, hash, sizeof hash) != 0)
			goto out;
		t.patch.password_hash = hash;
	}
	if (tx_ok(res, db_tx(req->app->db, true, update_fn, &t)))
		http_json(res, 200, api_user_json(&t.after));
out:
	explicit_bzero(hash, sizeof hash);
	json_decref(body);
}

/* May hash a new password: off the HTTP threads (api/offload.h). */
void api_users_patch(struct http_request *req, struct http_response *res)
{
	api_offload(req, res, users_patch_run);
}

void api_users_delete(struct http_request *req, struct http_response *res)
{
	struct update_tx t = { .req = req, .action = "delete",
			       .patch = { .has_active = true, .is_active = false } };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	int rc = db_tx(req->app->db, true, update_fn, &t);
	if (rc == TX_SELF) {
		answer_self(res, "id");
		return;
	}
	if (tx_ok(res, rc))
		http_body(res, 204, NULL, "", 0);
}
