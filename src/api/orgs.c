/* Organizations:
 *   GET /api/v1/organizations/me (viewer+), PATCH (org_admin+: name,
 *   timezone); GET /api/v1/organizations (super_admin: every org, paged),
 *   GET /api/v1/organizations/{id} (super_admin, the Location of POST),
 *   POST (super_admin: the org and its first org_admin in one transaction,
 *   with an audit row for each, recorded in the NEW organization's log). */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/answer.h"
#include "api/offload.h"
#include "api/list.h"
#include "app/app.h"
#include "auth/password.h"
#include "core/json.h"
#include "domain/audit.h"
#include "domain/orgs.h"
#include "domain/users.h"

enum { TX_NOT_FOUND = 1 };

static const char NOT_FOUND[] = "no such organization";

static json_t *org_json(const struct org *o)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", o->id, "name", o->name,
			 "slug", o->slug, "timezone", o->timezone, "created_at",
			 api_time_json(o->created_at), "updated_at",
			 api_time_json(o->updated_at));
}

/* ---- GET /api/v1/organizations/me ---------------------------------------- */

struct me_tx {
	const struct http_request *req;
	const char *name, *timezone;
	struct org before, org;
};

static int me_get_fn(struct db_conn *c, void *ctx)
{
	struct me_tx *t = ctx;
	int rc = orgs_find(c, t->req->auth.org_id, &t->org);
	return rc == 1 ? TX_NOT_FOUND : rc;
}

static void answer_org_tx(struct http_response *res, int rc, const struct org *o)
{
	if (rc == DB_OK)
		http_json(res, 200, org_json(o));
	else if (rc == TX_NOT_FOUND)
		api_answer_not_found(res, NOT_FOUND);
	else
		api_answer_db_error(res, rc);
}

void api_orgs_me_get(struct http_request *req, struct http_response *res)
{
	struct me_tx t = { .req = req };
	answer_org_tx(res, db_tx(req->app->db, false, me_get_fn, &t), &t.org);
}

/* ---- PATCH /api/v1/organizations/me -------------------------------------- */

static int me_patch_fn(struct db_conn *c, void *ctx)
{
	struct me_tx *t = ctx;
	int rc = orgs_update(c, t->req->auth.org_id, t->name, t->timezone, &t->before,
			     &t->org);
	if (rc != DB_OK)
		return rc == 1 ? TX_NOT_FOUND : rc;
	json_t *changes = json_object();
	audit_change_str(changes, "name", t->before.name, t->org.name);
	audit_change_str(changes, "timezone", t->before.timezone, t->org.timezone);
	struct audit_entry e = { .action = "update", .table_name = "organizations",
				 .record_id = t->org.id, .changes = changes };
	audit_entry_from_request(&e, t->req);
	rc = audit_record(c, &e);
	json_decref(changes);
	return rc;
}

void api_orgs_me_patch(struct http_request *req, struct http_response *res)
{
	struct me_tx t = { .req = req };
	struct json_check chk = JSON_CHECK_INIT;
	json_t *body = http_body_json(req, res);
	const char *why;
	if (!body)
		return;
	if (json_check_str(&chk, body, "name", false, 1, 200, &t.name) &&
	    (why = orgs_check_name(t.name)))
		json_check_rule(&chk, "name", "%s", why);
	if (json_check_str(&chk, body, "timezone", false, 1, 63, &t.timezone) &&
	    (why = orgs_check_timezone(t.timezone)))
		json_check_rule(&chk, "timezone", "%s", why);
	if (api_check_passed(res, &chk))
		answer_org_tx(res, db_tx(req->app->db, true, me_patch_fn, &t), &t.org);
	json_decref(body);
}

/* ---- GET /api/v1/organizations ------------------------------------------- */

struct list_ctx {
	struct org *rows;
	int n;
};

static int list_fetch(struct db_conn *c, void *arg, const struct page *p, int limit, int *n)
{
	struct list_ctx *t = arg;
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
	int rc = orgs_list(c, limit, p->after_at, p->after_id, &t->rows, &t->n);
	*n = t->n;
	return rc;
}

static json_t *list_render(void *arg, int i, int64_t *at, const char **id)
{
	struct list_ctx *t = arg;
	*at = t->rows[i].created_at;
	*id = t->rows[i].id;
	return org_json(&t->rows[i]);
}

void api_orgs_list(struct http_request *req, struct http_response *res)
{
	struct list_ctx t = { 0 };
	struct api_list list = { .fetch = list_fetch, .render = list_render, .ctx = &t };
	(void)api_list_answer(req, res, &list);
	free(t.rows);
}

/* ---- GET /api/v1/organizations/{id} (super_admin; the POST's Location) -- */

struct get_tx {
	const char *id;
	struct org org;
};

static int get_fn(struct db_conn *c, void *ctx)
{
	struct get_tx *t = ctx;
	int rc = orgs_find(c, t->id, &t->org);
	return rc == 1 ? TX_NOT_FOUND : rc;
}

void api_orgs_get(struct http_request *req, struct http_response *res)
{
	struct get_tx t = { 0 };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	answer_org_tx(res, db_tx(req->app->db, false, get_fn, &t), &t.org);
}

/* ---- POST /api/v1/organizations ------------------------------------------ */

struct create_tx {
	const struct http_request *req;
	const char *name, *slug, *timezone;
	const char *email, *full_name;
	char hash[PASSWORD_HASH_LEN];
	struct org org;
	struct user admin;
	bool email_taken;
};

static int audit_org_create(struct db_conn *c, struct create_tx *t)
{
	json_t *oc = json_object(), *uc = json_object();
	audit_change_str(oc, "name", NULL, t->org.name);
	audit_change_str(oc, "slug", NULL, t->org.slug);
	audit_change_str(oc, "timezone", NULL, t->org.timezone);
	audit_change_str(uc, "email", NULL, t->admin.email);
	audit_change_str(uc, "full_name", NULL, t->admin.full_name);
	audit_change_str(uc, "role", NULL, role_name(t->admin.role));
	json_object_set_new(uc, "is_active", json_pack("[nb]", true));
	struct audit_entry e = { .action = "create", .table_name = "organizations",
				 .record_id = t->org.id, .changes = oc };
	audit_entry_from_request(&e, t->req);
	e.org_id = t->org.id; /* the new tenant's log; user_id is the creator */
	int rc = audit_record(c, &e);
	if (rc == DB_OK) {
		e.table_name = "users";
		e.record_id = t->admin.id;
		e.changes = uc;
		rc = audit_record(c, &e);
	}
	json_decref(oc);
	json_decref(uc);
	return rc;
}

static int create_fn(struct db_conn *c, void *ctx)
{
	struct create_tx *t = ctx;
	t->email_taken = false;
	int rc = orgs_create(c, t->name, t->slug, t->timezone, &t->org);
	if (rc != DB_OK)
		return rc;
	rc = users_create(c, t->org.id, t->email, t->hash, t->full_name, ROLE_ORG_ADMIN,
			  &t->admin);
	if (rc == DB_ERR_CONFLICT)
		t->email_taken = true;
	if (rc != DB_OK)
		return rc;
	return audit_org_create(c, t);
}

/* The "admin" object's string field key, reported as "admin.<key>". */
static bool admin_str(struct json_check *chk, const json_t *admin, const char *key,
		      size_t max_len, const char **out)
{
	char field[32];
	snprintf(field, sizeof field, "admin.%s", key);
	const char *s = NULL;
	switch (json_get_str(admin, key, &s)) {
	case JSON_GET_OK:
		break;
	case JSON_GET_WRONG_TYPE:
		json_check_type(chk, field, "must be a string");
		return false;
	default:
		json_check_rule(chk, field, "is required");
		return false;
	}
	size_t n = json_utf8_len(s);
	if (n == 0 || n > max_len) {
		json_check_rule(chk, field, "must be 1 to %zu characters", max_len);
		return false;
	}
	*out = s;
	return true;
}

static void check_admin(struct json_check *chk, const json_t *body,
			struct create_tx *t, const char **password)
{
	json_t *admin = NULL;
	const char *why;
	switch (json_get_obj(body, "admin", &admin)) {
	case JSON_GET_OK:
		break;
	case JSON_GET_WRONG_TYPE:
		json_check_type(chk, "admin", "must be an object");
		return;
	default:
		json_check_rule(chk, "admin", "is required");
		return;
	}
	if (admin_str(chk, admin, "email", 254, &t->email) &&
	    (why = users_check_email(t->email)))
		json_check_rule(chk, "admin.email", "%s", why);
	if (admin_str(chk, admin, "password", PASSWORD_MAX_LEN, password) &&
	    (why = users_check_password(*password)))
		json_check_rule(chk, "admin.password", "%s", why);
	admin_str(chk, admin, "full_name", 200, &t->full_name);
}

static bool parse_create(struct http_response *res, const json_t *body,
			 struct create_tx *t, const char **password)
{
	struct json_check chk = JSON_CHECK_INIT;
	const char *why;
	if (json_check_str(&chk, body, "name", true, 1, 200, &t->name) &&
	    (why = orgs_check_name(t->name)))
		json_check_rule(&chk, "name", "%s", why);
	if (json_check_str(&chk, body, "slug", true, 1, 63, &t->slug) &&
	    (why = orgs_check_slug(t->slug)))
		json_check_rule(&chk, "slug", "%s", why);
	if (json_check_str(&chk, body, "timezone", false, 1, 63, &t->timezone) &&
	    (why = orgs_check_timezone(t->timezone)))
		json_check_rule(&chk, "timezone", "%s", why);
	check_admin(&chk, body, t, password);
	return api_check_passed(res, &chk);
}

static void orgs_create_run(struct http_request *req, struct http_response *res)
{
	struct create_tx t = { .req = req };
	const char *password = NULL;
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	if (!parse_create(res, body, &t, &password))
		goto out;
	if (api_hash_password(res, password, t.hash, sizeof t.hash) != 0)
		goto out;
	int rc = db_tx(req->app->db, true, create_fn, &t);
	if (rc == DB_ERR_CONFLICT) {
		http_error(res, 409, "conflict",
			   t.email_taken ? "a user with this email already exists"
					 : "an organization with this slug already exists",
			   NULL);
		goto out;
	}
	if (rc != DB_OK) {
		api_answer_db_error(res, rc);
		goto out;
	}
	json_t *answer = org_json(&t.org);
	json_object_set_new(answer, "admin", api_user_json(&t.admin));
	api_answer_created(req, res, "/api/v1/organizations", t.org.id, answer);
out:
	explicit_bzero(t.hash, sizeof t.hash);
	json_decref(body);
}

/* Hashes the first admin's password: off the HTTP threads (api/offload.h). */
void api_orgs_create(struct http_request *req, struct http_response *res)
{
	api_offload(req, res, orgs_create_run);
}
