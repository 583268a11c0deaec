/* WhatsApp numbers of the caller's organization (API.md "WhatsApp numbers"):
 *   GET/POST /api/v1/whatsapp-numbers,
 *   GET/PATCH/DELETE /api/v1/whatsapp-numbers/{id}.
 *
 * Choices (API.md is silent):
 * - Reads are open to viewer and up (agents and viewers need the list to
 *   pick a sender in the inbox; the answer holds no secret); writes need
 *   org_admin (see routes.c).
 * - access_token, app_secret and verify_token are write-only: they are
 *   validated, sealed by domain/numbers.c and never rendered, logged or
 *   audited. Answers say only has_app_secret / has_verify_token. Audit
 *   rows record WHICH credentials were set, rotated or removed, as
 *   {"credentials": [null, {"access_token": "set"|"rotated", ...}]}, never
 *   a value.
 * - PATCH changes display_phone_number, throughput_mps and rotates
 *   credentials (app_secret / verify_token: null removes; access_token
 *   cannot be removed: null is 422). phone_number_id and waba_id cannot
 *   change: sending the current value is accepted, another value is 422.
 * - DELETE is soft (the row stays for history, its credentials are
 *   scrubbed) and answers 204; afterwards the number is 404 everywhere and
 *   its phone_number_id may be connected again.
 * - quality_rating and messaging_limit_tier are null until Meta reports
 *   them by webhook. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/answer.h"
#include "api/list.h"
#include "app/app.h"
#include "core/config.h"
#include "core/json.h"
#include "domain/audit.h"
#include "domain/numbers.h"

/* Positive codes a transaction function returns to roll back. */
enum { TX_NOT_FOUND = 1, TX_IMMUTABLE = 2 };

static const char NOT_FOUND[] = "no such WhatsApp number";

static const uint8_t *sealing_key(const struct http_request *req)
{
	return req->app->cfg->encryption_key;
}

/* A number as the API shows it: never a credential. New ref. */
static json_t *number_json(const struct wa_number *n)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:s, s:b, s:b, s:o, s:o}",
			 "id", n->id, "phone_number_id", n->phone_number_id, "waba_id",
			 n->waba_id, "display_phone_number", n->display_phone_number,
			 "throughput_mps", n->throughput_mps, "quality_rating",
			 api_str_or_null(n->quality_rating), "messaging_limit_tier",
			 api_str_or_null(n->messaging_limit_tier), "webhook_path",
			 n->webhook_path, "has_app_secret", n->has_app_secret,
			 "has_verify_token", n->has_verify_token, "created_at",
			 api_time_json(n->created_at), "updated_at",
			 api_time_json(n->updated_at));
}

static void answer_immutable(struct http_response *res)
{
	http_error(res, 422, "validation_error", "the request is not valid",
		   json_pack("[{s:s, s:s}]", "field", "phone_number_id", "message",
			     "phone_number_id and waba_id cannot change; delete the "
			     "number and connect it again"));
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
	case TX_IMMUTABLE:
		answer_immutable(res);
		break;
	case DB_ERR_CONFLICT:
		http_error(res, 409, "conflict",
			   "this phone_number_id is already connected", NULL);
		break;
	case NUMBERS_ERR_SECRET:
		http_error(res, 500, "internal_error", "cannot seal the credentials", NULL);
		break;
	default:
		api_answer_db_error(res, rc);
	}
	return false;
}

/* Add {field: "set"|how} to creds when the credential is present. */
static void note_credential(json_t *creds, const char *field, bool present,
			    const char *how)
{
	if (present)
		json_object_set_new(creds, field, json_string(how));
}

/* Record one audit row; changes is taken over. */
static int audit_number(struct db_conn *c, const struct http_request *req,
			const char *action, const char *id, json_t *changes,
			json_t *creds)
{
	if (creds && json_object_size(creds) > 0)
		json_object_set_new(changes, "credentials", json_pack("[nO]", creds));
	struct audit_entry e = { .action = action, .table_name = "whatsapp_numbers",
				 .record_id = id, .changes = changes };
	audit_entry_from_request(&e, req);
	int rc = audit_record(c, &e);
	json_decref(changes);
	json_decref(creds);
	return rc;
}

/* ---- field checks (shared by POST and PATCH) ---------------------------- */

/* A string field checked by fn; true when *out was set and is valid. */
static bool check_field(struct json_check *chk, const json_t *body, const char *key,
			bool required, size_t max, const char *(*fn)(const char *),
			const char **out)
{
	const char *why;
	if (!json_check_str(chk, body, key, required, 1, max, out))
		return false;
	if ((why = fn(*out))) {
		json_check_rule(chk, key, "%s", why);
		return false;
	}
	return true;
}

/* A credential of PATCH that may be null (remove). *has set when present. */
static void check_removable(struct json_check *chk, const json_t *body,
			    const char *key, bool *has, const char **out)
{
	const json_t *v = json_object_get(body, key);
	if (!v)
		return;
	if (json_is_null(v)) {
		*has = true;
		*out = NULL;
		return;
	}
	*has = check_field(chk, body, key, false, NUMBERS_SECRET_MAX,
			   numbers_check_secret, out);
}

static bool check_mps(struct json_check *chk, const json_t *body, int *out)
{
	int64_t v = 0;
	if (!json_check_int(chk, body, "throughput_mps", false, NUMBERS_MIN_MPS,
			    NUMBERS_MAX_MPS, &v))
		return false;
	*out = (int)v;
	return true;
}

/* ---- GET /api/v1/whatsapp-numbers --------------------------------------- */

struct list_ctx {
	const char *org_id;
	struct wa_number *rows;
	int n;
};

static int list_fetch(struct db_conn *c, void *arg, const struct page *p, int limit, int *n)
{
	struct list_ctx *t = arg;
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
	int rc = numbers_list(c, t->org_id, limit, p->after_at, p->after_id, &t->rows, &t->n);
	*n = t->n;
	return rc;
}

static json_t *list_render(void *arg, int i, int64_t *at, const char **id)
{
	struct list_ctx *t = arg;
	*at = t->rows[i].created_at;
	*id = t->rows[i].id;
	return number_json(&t->rows[i]);
}

void api_numbers_list(struct http_request *req, struct http_response *res)
{
	struct list_ctx t = { .org_id = req->auth.org_id };
	struct api_list list = { .fetch = list_fetch, .render = list_render, .ctx = &t };
	(void)api_list_answer(req, res, &list);
	free(t.rows);
}

/* ---- POST /api/v1/whatsapp-numbers -------------------------------------- */

struct create_tx {
	const struct http_request *req;
	struct number_new in;
	struct wa_number number;
};

static int create_fn(struct db_conn *c, void *ctx)
{
	struct create_tx *t = ctx;
	int rc = numbers_create(c, sealing_key(t->req), t->req->auth.org_id, &t->in,
				&t->number);
	if (rc != DB_OK)
		return rc;
	const struct wa_number *n = &t->number;
	json_t *changes = json_object();
	audit_change_str(changes, "phone_number_id", NULL, n->phone_number_id);
	audit_change_str(changes, "waba_id", NULL, n->waba_id);
	audit_change_str(changes, "display_phone_number", NULL, n->display_phone_number);
	json_object_set_new(changes, "throughput_mps",
			    json_pack("[ni]", n->throughput_mps));
	json_t *creds = json_object();
	note_credential(creds, "access_token", true, "set");
	note_credential(creds, "app_secret", n->has_app_secret, "set");
	note_credential(creds, "verify_token", n->has_verify_token, "set");
	return audit_number(c, t->req, "create", n->id, changes, creds);
}

/* Validate the POST body into t->in; false after answering. */
static bool parse_create(struct http_response *res, const json_t *body,
			 struct number_new *in)
{
	struct json_check chk = JSON_CHECK_INIT;
	check_field(&chk, body, "phone_number_id", true, NUMBERS_ID_MAX_DIGITS,
		    numbers_check_meta_id, &in->phone_number_id);
	check_field(&chk, body, "waba_id", true, NUMBERS_ID_MAX_DIGITS,
		    numbers_check_meta_id, &in->waba_id);
	check_field(&chk, body, "display_phone_number", true, NUMBERS_DISPLAY_MAX,
		    numbers_check_display, &in->display_phone_number);
	check_field(&chk, body, "access_token", true, NUMBERS_TOKEN_MAX,
		    numbers_check_access_token, &in->access_token);
	check_field(&chk, body, "app_secret", false, NUMBERS_SECRET_MAX,
		    numbers_check_secret, &in->app_secret);
	check_field(&chk, body, "verify_token", false, NUMBERS_SECRET_MAX,
		    numbers_check_secret, &in->verify_token);
	check_mps(&chk, body, &in->throughput_mps);
	return api_check_passed(res, &chk);
}

void api_numbers_create(struct http_request *req, struct http_response *res)
{
	struct create_tx t = { .req = req };
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	if (!parse_create(res, body, &t.in))
		goto out;
	if (!tx_ok(res, db_tx(req->app->db, true, create_fn, &t)))
		goto out;
	api_answer_created(req, res, "/api/v1/whatsapp-numbers", t.number.id,
			   number_json(&t.number));
out:
	json_decref(body);
}

/* ---- GET /api/v1/whatsapp-numbers/{id} ---------------------------------- */

struct get_tx {
	const char *org_id, *id;
	struct wa_number number;
};

static int get_fn(struct db_conn *c, void *ctx)
{
	struct get_tx *t = ctx;
	return numbers_find(c, t->org_id, t->id, &t->number);
}

void api_numbers_get(struct http_request *req, struct http_response *res)
{
	struct get_tx t = { .org_id = req->auth.org_id };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	if (tx_ok(res, db_tx(req->app->db, false, get_fn, &t)))
		http_json(res, 200, number_json(&t.number));
}

/* ---- PATCH /api/v1/whatsapp-numbers/{id} -------------------------------- */

struct update_tx {
	const struct http_request *req;
	const char *id;
	const char *phone_number_id, *waba_id; /* sent in the body, or NULL */
	struct number_patch patch;
	struct wa_number before, after;
};

static const char *credential_change(bool has, const char *value)
{
	return !has ? NULL : value ? "rotated" : "removed";
}

static int audit_update(struct db_conn *c, struct update_tx *t)
{
	const struct number_patch *p = &t->patch;
	json_t *changes = json_object();
	audit_change_str(changes, "display_phone_number", t->before.display_phone_number,
			 t->after.display_phone_number);
	audit_change_int(changes, "throughput_mps", t->before.throughput_mps,
			 t->after.throughput_mps);
	json_t *creds = json_object();
	const char *how;
	if ((how = credential_change(p->has_access_token, p->access_token)))
		note_credential(creds, "access_token", true, how);
	if ((how = credential_change(p->has_app_secret, p->app_secret)))
		note_credential(creds, "app_secret", true, how);
	if ((how = credential_change(p->has_verify_token, p->verify_token)))
		note_credential(creds, "verify_token", true, how);
	return audit_number(c, t->req, "update", t->after.id, changes, creds);
}

static int update_fn(struct db_conn *c, void *ctx)
{
	struct update_tx *t = ctx;
	const struct http_request *req = t->req;
	int rc = numbers_update(c, sealing_key(req), req->auth.org_id, t->id, &t->patch,
				&t->before, &t->after);
	if (rc == 1)
		return TX_NOT_FOUND;
	if (rc != DB_OK)
		return rc;
	if ((t->phone_number_id && strcmp(t->phone_number_id, t->before.phone_number_id)) ||
	    (t->waba_id && strcmp(t->waba_id, t->before.waba_id)))
		return TX_IMMUTABLE;
	return audit_update(c, t);
}

/* Validate the PATCH body into t; false after answering. */
static bool parse_patch(struct http_response *res, const json_t *body,
			struct update_tx *t)
{
	struct json_check chk = JSON_CHECK_INIT;
	struct number_patch *p = &t->patch;
	json_check_str(&chk, body, "phone_number_id", false, 1, 64, &t->phone_number_id);
	json_check_str(&chk, body, "waba_id", false, 1, 64, &t->waba_id);
	p->has_display = check_field(&chk, body, "display_phone_number", false,
				     NUMBERS_DISPLAY_MAX, numbers_check_display,
				     &p->display_phone_number);
	p->has_mps = check_mps(&chk, body, &p->throughput_mps);
	const json_t *tok = json_object_get(body, "access_token");
	if (tok && json_is_null(tok))
		json_check_rule(&chk, "access_token", "cannot be removed, only replaced");
	p->has_access_token = check_field(&chk, body, "access_token", false,
					  NUMBERS_TOKEN_MAX, numbers_check_access_token,
					  &p->access_token);
	check_removable(&chk, body, "app_secret", &p->has_app_secret, &p->app_secret);
	check_removable(&chk, body, "verify_token", &p->has_verify_token,
			&p->verify_token);
	return api_check_passed(res, &chk);
}

void api_numbers_patch(struct http_request *req, struct http_response *res)
{
	struct update_tx t = { .req = req };
	json_t *body = NULL;
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	body = http_body_json(req, res);
	if (!body)
		return;
	if (!parse_patch(res, body, &t))
		goto out;
	if (tx_ok(res, db_tx(req->app->db, true, update_fn, &t)))
		http_json(res, 200, number_json(&t.after));
out:
	json_decref(body);
}

/* ---- DELETE /api/v1/whatsapp-numbers/{id} ------------------------------- */

struct delete_tx {
	const struct http_request *req;
	const char *id;
	struct wa_number before;
};

static int delete_fn(struct db_conn *c, void *ctx)
{
	struct delete_tx *t = ctx;
	const struct http_request *req = t->req;
	int rc = numbers_delete(c, req->auth.org_id, t->id, &t->before);
	if (rc == 1)
		return TX_NOT_FOUND;
	if (rc != DB_OK)
		return rc;
	const struct wa_number *n = &t->before;
	json_t *changes = json_object();
	audit_change_str(changes, "phone_number_id", n->phone_number_id, NULL);
	audit_change_str(changes, "waba_id", n->waba_id, NULL);
	audit_change_str(changes, "display_phone_number", n->display_phone_number, NULL);
	json_t *creds = json_object();
	note_credential(creds, "access_token", true, "erased");
	note_credential(creds, "app_secret", n->has_app_secret, "erased");
	note_credential(creds, "verify_token", n->has_verify_token, "erased");
	return audit_number(c, req, "delete", n->id, changes, creds);
}

void api_numbers_delete(struct http_request *req, struct http_response *res)
{
	struct delete_tx t = { .req = req };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	if (tx_ok(res, db_tx(req->app->db, true, delete_fn, &t)))
		http_body(res, 204, NULL, "", 0);
}
