/* Meta message templates (API.md "Templates"):
 *   GET/POST /api/v1/templates, GET/PATCH/DELETE /api/v1/templates/{id},
 *   POST /api/v1/templates/{id}/submit, /{id}/preview, /sync.
 *
 * Design note: talking to Meta. No database transaction is ever open
 * across a Graph call. A handler that calls Meta (submit, sync, delete)
 * reads what it needs in a short read transaction (the template, the
 * number's WABA id and decrypted access token), calls Meta with nothing
 * held, then writes in a short write transaction that re-checks the row:
 * every write is conditional on the updated_at that was read
 * (templates_save / templates_delete), so a template changed or deleted
 * meanwhile answers 409 invalid_state (or 404) and nothing is overwritten.
 * The access token lives only between the read and the Graph call and is
 * wiped when freed.
 *
 * Choices (API.md is silent):
 * - whatsapp_number_id in a POST /templates or /sync body that is unknown,
 *   another org's, deleted or not a UUID is 422 validation_error with a
 *   details entry on "whatsapp_number_id" (it is a body field, not the
 *   resource in the path); all four cases answer exactly alike.
 * - PATCH takes any of name, language, category, parameter_format (null
 *   removes it), components; the merged template is validated as a whole
 *   (422 with one details entry per broken rule). whatsapp_number_id
 *   cannot change (ignored). The status stays as it was.
 * - Meta errors are 502 meta_error with details
 *   [{"code", "subcode", "message", "fbtrace_id"}] (subcode / fbtrace_id
 *   null when Meta sent none); no answer from Meta (timeout, refused, not
 *   JSON) is 502 meta_error with details [{"transport", "message"}].
 * - DELETE of a submitted template whose number was deleted meanwhile (its
 *   credentials are gone) deletes locally only.
 * - Sync imports what Meta reports; entries it cannot store (no name or
 *   language, an unknown status or category) are skipped and not counted.
 *   parameter_format / quality_score / rejected_reason missing from Meta's
 *   answer keep their stored value; rejected_reason "NONE" means null.
 * - Every write writes its audit row (table "templates") in its
 *   transaction: create, update, submit, delete; sync writes one create
 *   or update row per changed template. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/answer.h"
#include "api/list.h"
#include "app/app.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/str.h"
#include "core/uuid.h"
#include "domain/audit.h"
#include "domain/numbers.h"
#include "domain/templates.h"
#include "meta/graph.h"
#include "meta/template_rules.h"

/* Positive codes a transaction function returns to roll back. */
enum {
	TX_NOT_FOUND = 1,
	TX_STALE = TEMPLATES_STALE, /* 2: the row changed since it was read */
	TX_STATE = 3,               /* not in a state that allows this */
	TX_NO_NUMBER = 4,           /* body's whatsapp_number_id unusable */
	TX_SECRET = 5,              /* the number's token does not decrypt */
	TX_NUMBER_GONE = 6,         /* the template's own number was deleted */
};

static const char NOT_FOUND[] = "no such template";

/* Retries for the (idempotent) list call of a sync. */
static const struct graph_call_opts LIST_OPTS = { .retries = 2 };

/* ---- rendering --------------------------------------------------------- */

static json_t *template_json(const struct template_row *t)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:O, s:o, s:o}",
			 "id", t->id, "whatsapp_number_id", t->whatsapp_number_id, "name",
			 t->name, "language", t->language, "category", t->category, "status",
			 t->status, "rejected_reason", api_str_or_null(t->rejected_reason),
			 "quality_score", api_str_or_null(t->quality_score), "meta_template_id",
			 api_str_or_null(t->meta_template_id), "parameter_format",
			 api_str_or_null(t->parameter_format), "components", t->components,
			 "created_at", api_time_json(t->created_at), "updated_at",
			 api_time_json(t->updated_at));
}

/* ---- answers ----------------------------------------------------------- */

static json_t *field_detail(const char *field, const char *message)
{
	return json_pack("[{s:s, s:s}]", "field", field, "message", message);
}

static void answer_no_number(struct http_response *res)
{
	http_error(res, 422, "validation_error", "the request is not valid",
		   field_detail("whatsapp_number_id",
				"is not a WhatsApp number of this organization"));
}

static void answer_meta_error(struct http_response *res, enum graph_rc rc,
			      const struct graph_error *e)
{
	json_t *d;
	if (rc == GRAPH_ERR_META)
		d = json_pack("{s:I, s:o, s:s, s:o}", "code", (json_int_t)e->code, "subcode",
			      e->subcode ? json_integer(e->subcode) : json_null(), "message",
			      e->message, "fbtrace_id", api_str_or_null(e->fbtrace_id));
	else if (rc == GRAPH_ERR_TRANSPORT)
		d = json_pack("{s:s, s:s}", "transport", graph_transport_name(e->transport),
			      "message", e->message[0] ? e->message : "no usable answer");
	else
		d = json_pack("{s:s}", "message", "the request to Meta could not be made");
	http_error(res, 502, "meta_error", "Meta's Graph API refused or failed the request",
		   d ? json_pack("[o]", d) : NULL);
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
	case TX_STALE:
		http_error(res, 409, "invalid_state",
			   "the template changed while this request ran; read it and try again",
			   NULL);
		break;
	case TX_STATE:
		http_error(res, 409, "invalid_state",
			   "only a DRAFT or REJECTED template may be changed or submitted", NULL);
		break;
	case TX_NO_NUMBER:
		answer_no_number(res);
		break;
	case TX_NUMBER_GONE:
		http_error(res, 409, "invalid_state",
			   "the template's WhatsApp number has been deleted", NULL);
		break;
	case TX_SECRET:
		http_error(res, 500, "internal_error",
			   "the WhatsApp number's access token cannot be decrypted", NULL);
		break;
	case DB_ERR_CONFLICT:
		http_error(res, 409, "conflict",
			   "this number already has a template with this name and language",
			   NULL);
		break;
	default:
		api_answer_db_error(res, rc);
	}
	return false;
}

static bool have_graph(const struct http_request *req, struct http_response *res)
{
	if (req->app->graph)
		return true;
	http_add_header(res, "Retry-After", "5");
	http_error(res, 503, "service_unavailable", "the Meta Graph API client is not set up",
		   NULL);
	return false;
}

/* The body's whatsapp_number_id raw, lower-cased (arena memory); NULL
 * after answering 422 when it is not a UUID. */
static const char *body_number_id(struct http_request *req, struct http_response *res,
				  const char *raw)
{
	const char *id = uuid_is_valid(raw) ? api_lower_dup(req, raw) : NULL;
	if (!id)
		answer_no_number(res);
	return id;
}

/* 400 / 422 for a template_rules result (details taken over). */
static void answer_rules(struct http_response *res, int rc, json_t *details)
{
	if (rc == TEMPLATE_BAD_TYPE)
		http_error(res, 400, "invalid_request", "a field has the wrong JSON type", details);
	else if (rc == TEMPLATE_INVALID)
		http_error(res, 422, "validation_error", "the template is not valid", details);
	else {
		json_decref(details);
		http_error(res, 500, "internal_error", "the template could not be checked", NULL);
	}
}

/* ---- the number behind a template (read transactions) ------------------ */

/* What a Graph call needs: the WABA id and the decrypted token. */
struct meta_creds {
	char waba_id[64];
	char *token; /* crypto_secret_free */
};

static void creds_release(struct meta_creds *m)
{
	crypto_secret_free(m->token);
	m->token = NULL;
}

/* Fill m from number_id of org_id. 0, TX_NO_NUMBER / TX_SECRET, < 0. */
static int load_creds(struct db_conn *c, const struct app *app, const char *org_id,
		      const char *number_id, struct meta_creds *m)
{
	struct wa_number n;
	creds_release(m);
	int rc = numbers_find(c, org_id, number_id, &n);
	if (rc == 1)
		return TX_NO_NUMBER;
	if (rc != 0)
		return rc;
	str_copy(m->waba_id, sizeof m->waba_id, n.waba_id);
	rc = numbers_access_token(c, app->cfg->encryption_key, org_id, number_id, &m->token);
	if (rc == 1)
		return TX_NO_NUMBER;
	if (rc == NUMBERS_ERR_SECRET)
		return TX_SECRET;
	return rc;
}

/* Audit one change of a template inside the write transaction. */
static int audit_template(struct db_conn *c, const struct http_request *req,
			  const char *action, const char *id, json_t *changes)
{
	struct audit_entry e = { .action = action, .table_name = "templates",
				 .record_id = id, .changes = changes };
	audit_entry_from_request(&e, req);
	return audit_record(c, &e);
}

/* {field: [old, new]} of every content / state field that differs. NULL
 * rows stand for "nothing" (create / delete). */
static json_t *template_changes(const struct template_row *a, const struct template_row *b)
{
	static const struct template_row none;
	json_t *ch = json_object();
	if (!a)
		a = &none;
	if (!b)
		b = &none;
#define CH(f) audit_change_str(ch, #f, a->f[0] ? a->f : NULL, b->f[0] ? b->f : NULL)
	CH(whatsapp_number_id);
	CH(name);
	CH(language);
	CH(category);
	CH(parameter_format);
	CH(status);
	CH(rejected_reason);
	CH(quality_score);
	CH(meta_template_id);
#undef CH
	if (!json_equal(a->components, b->components))
		json_object_set_new(ch, "components",
				    json_pack("[OO]", a->components ? a->components : json_null(),
					      b->components ? b->components : json_null()));
	return ch;
}

/* ---- GET /api/v1/templates --------------------------------------------- */

struct list_ctx {
	const char *org_id;
	struct template_filter f;
	struct template_row *rows;
	int n;
};

static int list_fetch(struct db_conn *c, void *arg, const struct page *p, int limit, int *n)
{
	struct list_ctx *t = arg;
	template_rows_free(t->rows, t->n);
	t->rows = NULL;
	t->n = 0;
	int rc = templates_list(c, t->org_id, &t->f, limit, p->after_at, p->after_id, &t->rows,
				&t->n);
	*n = t->n;
	return rc;
}

static json_t *list_render(void *arg, int i, int64_t *at, const char **id)
{
	struct list_ctx *t = arg;
	*at = t->rows[i].created_at;
	*id = t->rows[i].id;
	return template_json(&t->rows[i]);
}

/* True when s is valid UTF-8 text (PostgreSQL refuses anything else with an
 * error, which must be a 422 here, not a 500). */
static bool filter_text_ok(const char *s)
{
	json_t *v = json_string(s);
	json_decref(v);
	return v != NULL;
}

/* Read the filters; false after answering 422. */
static bool parse_filters(struct http_request *req, struct http_response *res,
			  struct template_filter *f)
{
	struct json_check chk = JSON_CHECK_INIT;
	f->status = http_query(req, "status");
	f->category = http_query(req, "category");
	f->language = http_query(req, "language");
	f->name = http_query(req, "name");
	f->number_id = http_query(req, "whatsapp_number_id");
	if (f->status && !templates_status_valid(f->status))
		json_check_rule(&chk, "status", "must be one of DRAFT, PENDING, APPROVED, "
						"REJECTED, PAUSED, DISABLED, ARCHIVED, DELETED");
	if (f->category && !templates_category_valid(f->category))
		json_check_rule(&chk, "category",
				"must be one of MARKETING, UTILITY, AUTHENTICATION");
	if (f->name && !filter_text_ok(f->name))
		json_check_rule(&chk, "name", "must be valid UTF-8 text");
	if (f->language && !filter_text_ok(f->language))
		json_check_rule(&chk, "language", "must be valid UTF-8 text");
	if (f->number_id && !uuid_is_valid(f->number_id))
		json_check_rule(&chk, "whatsapp_number_id", "must be a UUID");
	return api_query_check_passed(res, &chk);
}

void api_templates_list(struct http_request *req, struct http_response *res)
{
	struct list_ctx t = { .org_id = req->auth.org_id };
	if (!parse_filters(req, res, &t.f))
		return;
	struct api_list list = { .fetch = list_fetch, .render = list_render, .ctx = &t };
	(void)api_list_answer(req, res, &list);
	template_rows_free(t.rows, t.n);
}

/* ---- POST /api/v1/templates -------------------------------------------- */

/* Copy the validated content fields of tmpl into t (components
 * referenced). */
static void content_from_json(struct template_row *t, const json_t *tmpl)
{
	const char *pf = json_string_value(json_object_get(tmpl, "parameter_format"));
	str_copy(t->name, sizeof t->name, json_string_value(json_object_get(tmpl, "name")));
	str_copy(t->language, sizeof t->language,
		 json_string_value(json_object_get(tmpl, "language")));
	str_copy(t->category, sizeof t->category,
		 json_string_value(json_object_get(tmpl, "category")));
	str_copy(t->parameter_format, sizeof t->parameter_format, pf ? pf : "");
	json_decref(t->components);
	t->components = json_incref(json_object_get(tmpl, "components"));
}

/* Validate a whole template (plus whatsapp_number_id when number_id is not
 * NULL); false after answering 400/422. */
static bool validate_template(struct http_response *res, const json_t *tmpl,
			      const char **number_id)
{
	struct json_check chk = JSON_CHECK_INIT;
	json_t *details = NULL;
	if (number_id)
		json_check_str(&chk, tmpl, "whatsapp_number_id", true, 1, 64, number_id);
	int rc = template_validate(tmpl, &details);
	if (rc == TEMPLATE_OK && json_check_ok(&chk)) {
		json_check_release(&chk);
		return true;
	}
	if (rc == TEMPLATE_ERROR) {
		json_check_release(&chk);
		answer_rules(res, rc, NULL);
		return false;
	}
	json_t *all = json_array();
	bool bad_type = rc == TEMPLATE_BAD_TYPE || json_array_size(chk.type_errors) > 0;
	if (chk.type_errors)
		json_array_extend(all, chk.type_errors);
	if (chk.rule_errors)
		json_array_extend(all, chk.rule_errors);
	if (details)
		json_array_extend(all, details);
	json_check_release(&chk);
	json_decref(details);
	answer_rules(res, bad_type ? TEMPLATE_BAD_TYPE : TEMPLATE_INVALID, all);
	return false;
}

struct create_tx {
	const struct http_request *req;
	struct template_row row;
};

static int create_fn(struct db_conn *c, void *ctx)
{
	struct create_tx *t = ctx;
	const char *org = t->req->auth.org_id;
	struct wa_number n;
	int rc = numbers_find(c, org, t->row.whatsapp_number_id, &n);
	if (rc == 1)
		return TX_NO_NUMBER;
	if (rc != 0)
		return rc;
	t->row.status[0] = '\0';
	rc = templates_create(c, org, &t->row);
	if (rc != DB_OK)
		return rc;
	json_t *changes = template_changes(NULL, &t->row);
	rc = audit_template(c, t->req, "create", t->row.id, changes);
	json_decref(changes);
	return rc;
}

void api_templates_create(struct http_request *req, struct http_response *res)
{
	struct create_tx t = { .req = req };
	const char *number_id = NULL;
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	if (!validate_template(res, body, &number_id) ||
	    !(number_id = body_number_id(req, res, number_id)))
		goto out;
	str_copy(t.row.whatsapp_number_id, sizeof t.row.whatsapp_number_id, number_id);
	content_from_json(&t.row, body);
	if (tx_ok(res, db_tx(req->app->db, true, create_fn, &t)))
		api_answer_created(req, res, "/api/v1/templates", t.row.id,
				   template_json(&t.row));
out:
	template_row_release(&t.row);
	json_decref(body);
}

/* ---- GET /api/v1/templates/{id} ---------------------------------------- */

/* A read transaction: the template, and the Meta credentials when
 * want_creds (and, for delete, only when it was submitted). */
struct read_tx {
	const struct http_request *req;
	const char *id;
	bool want_creds;
	bool creds_if_submitted;
	bool number_gone; /* creds wanted but the number was deleted */
	struct template_row row;
	struct meta_creds creds;
};

static int read_fn(struct db_conn *c, void *ctx)
{
	struct read_tx *t = ctx;
	const char *org = t->req->auth.org_id;
	template_row_release(&t->row);
	t->number_gone = false;
	int rc = templates_find(c, org, t->id, &t->row);
	if (rc != 0)
		return rc == 1 ? TX_NOT_FOUND : rc;
	bool need = t->want_creds &&
		    (!t->creds_if_submitted || t->row.meta_template_id[0] != '\0');
	if (!need)
		return DB_OK;
	rc = load_creds(c, t->req->app, org, t->row.whatsapp_number_id, &t->creds);
	if (rc == TX_NO_NUMBER) {
		t->number_gone = true;
		return DB_OK;
	}
	return rc;
}

static void read_release(struct read_tx *t)
{
	template_row_release(&t->row);
	creds_release(&t->creds);
}

/* Read the template of the path's {id} (and the credentials t asks for)
 * into t; false after answering (404, 503...). read_release(t) either
 * way. */
static bool read_template(struct http_request *req, struct http_response *res,
			  struct read_tx *t)
{
	return api_path_id(req, res, NOT_FOUND, &t->id) &&
	       tx_ok(res, db_tx(req->app->db, false, read_fn, t));
}

void api_templates_get(struct http_request *req, struct http_response *res)
{
	struct read_tx t = { .req = req };
	if (read_template(req, res, &t))
		http_json(res, 200, template_json(&t.row));
	read_release(&t);
}

/* ---- PATCH /api/v1/templates/{id} -------------------------------------- */

struct save_tx {
	const struct http_request *req;
	const char *action;
	const struct template_row *before;
	struct template_row *after;
};

static int save_fn(struct db_conn *c, void *ctx)
{
	struct save_tx *t = ctx;
	int rc = templates_save(c, t->req->auth.org_id, t->after, t->before->updated_at);
	if (rc == 1)
		return TX_NOT_FOUND;
	if (rc != DB_OK)
		return rc;
	json_t *changes = template_changes(t->before, t->after);
	rc = audit_template(c, t->req, t->action, t->after->id, changes);
	json_decref(changes);
	return rc;
}

/* The stored template as a POST body, with body's content fields laid
 * over it (parameter_format: null removes it). New reference. */
static json_t *merged_template(const struct template_row *row, const json_t *body)
{
	static const char *const keys[] = { "name", "language", "category",
					    "parameter_format", "components" };
	json_t *m = json_pack("{s:s, s:s, s:s, s:O}", "name", row->name, "language",
			      row->language, "category", row->category, "components",
			      row->components);
	if (!m)
		return NULL;
	if (row->parameter_format[0])
		json_object_set_new(m, "parameter_format", json_string(row->parameter_format));
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		json_t *v = json_object_get(body, keys[i]);
		if (!v)
			continue;
		if (json_is_null(v) && !strcmp(keys[i], "parameter_format"))
			json_object_del(m, keys[i]);
		else
			json_object_set(m, keys[i], v);
	}
	return m;
}

void api_templates_patch(struct http_request *req, struct http_response *res)
{
	struct read_tx t = { .req = req };
	struct template_row after = { 0 };
	json_t *merged = NULL;
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	if (!read_template(req, res, &t))
		goto out;
	if (!templates_editable(t.row.status)) {
		tx_ok(res, TX_STATE);
		goto out;
	}
	merged = merged_template(&t.row, body);
	if (!merged) {
		http_error(res, 500, "internal_error", "out of memory", NULL);
		goto out;
	}
	if (!validate_template(res, merged, NULL))
		goto out;
	after = t.row;
	after.components = NULL;
	content_from_json(&after, merged);
	struct save_tx s = { .req = req, .action = "update", .before = &t.row, .after = &after };
	if (tx_ok(res, db_tx(req->app->db, true, save_fn, &s)))
		http_json(res, 200, template_json(&after));
out:
	template_row_release(&after);
	json_decref(merged);
	json_decref(body);
	read_release(&t);
}

/* ---- POST /api/v1/templates/{id}/submit -------------------------------- */

/* Meta's create body: {name, language, category, parameter_format?,
 * components}. malloc'd JSON text, NULL when out of memory. */
static char *meta_create_body(const struct template_row *t, size_t *len)
{
	json_t *b = json_pack("{s:s, s:s, s:s, s:O}", "name", t->name, "language", t->language,
			      "category", t->category, "components", t->components);
	if (!b)
		return NULL;
	if (t->parameter_format[0])
		json_object_set_new(b, "parameter_format", json_string(t->parameter_format));
	char *text = json_dump_compact(b, len);
	json_decref(b);
	return text;
}

/* Apply Meta's answer to a copy of the submitted row. */
static void apply_created(struct template_row *after, const struct graph_template_created *g)
{
	const char *status = templates_status_from_meta(g->status);
	str_copy(after->status, sizeof after->status,
		 status && strcmp(status, "DRAFT") ? status : "PENDING");
	if (templates_category_valid(g->category))
		str_copy(after->category, sizeof after->category, g->category);
	str_copy(after->meta_template_id, sizeof after->meta_template_id, g->id);
	after->rejected_reason[0] = '\0';
}

void api_templates_submit(struct http_request *req, struct http_response *res)
{
	struct read_tx t = { .req = req, .want_creds = true };
	struct template_row after = { 0 };
	struct graph_template_created created;
	struct graph_error gerr;
	char *body = NULL;
	size_t len = 0;
	if (!have_graph(req, res) || !api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	int rc = db_tx(req->app->db, false, read_fn, &t);
	if (rc == DB_OK && !templates_editable(t.row.status))
		rc = TX_STATE;
	if (rc == DB_OK && t.number_gone)
		rc = TX_NUMBER_GONE;
	if (!tx_ok(res, rc))
		goto out;
	if (!(body = meta_create_body(&t.row, &len))) {
		http_error(res, 500, "internal_error", "out of memory", NULL);
		goto out;
	}
	graph_error_clear(&gerr);
	enum graph_rc g = graph_create_template(req->app->graph, t.creds.token, t.creds.waba_id,
						body, len, NULL, &created, &gerr);
	creds_release(&t.creds);
	if (g != GRAPH_OK) {
		answer_meta_error(res, g, &gerr);
		goto out;
	}
	after = t.row;
	after.components = json_incref(t.row.components);
	apply_created(&after, &created);
	struct save_tx s = { .req = req, .action = "submit", .before = &t.row, .after = &after };
	if (tx_ok(res, db_tx(req->app->db, true, save_fn, &s)))
		http_json(res, 200, template_json(&after));
out:
	free(body);
	template_row_release(&after);
	read_release(&t);
}

/* ---- DELETE /api/v1/templates/{id} ------------------------------------- */

struct delete_tx {
	const struct http_request *req;
	const struct template_row *row;
};

static int delete_fn(struct db_conn *c, void *ctx)
{
	struct delete_tx *t = ctx;
	int rc = templates_delete(c, t->req->auth.org_id, t->row->id, t->row->updated_at);
	if (rc == 1)
		return TX_NOT_FOUND;
	if (rc != DB_OK)
		return rc;
	json_t *changes = template_changes(t->row, NULL);
	rc = audit_template(c, t->req, "delete", t->row->id, changes);
	json_decref(changes);
	return rc;
}

void api_templates_delete(struct http_request *req, struct http_response *res)
{
	struct read_tx t = { .req = req, .want_creds = true, .creds_if_submitted = true };
	struct graph_error gerr;
	if (!read_template(req, res, &t))
		goto out;
	if (t.creds.token) {
		if (!have_graph(req, res))
			goto out;
		graph_error_clear(&gerr);
		enum graph_rc g = graph_delete_template(req->app->graph, t.creds.token,
							t.creds.waba_id, t.row.name,
							t.row.meta_template_id, NULL, &gerr);
		creds_release(&t.creds);
		if (g != GRAPH_OK) {
			answer_meta_error(res, g, &gerr);
			goto out;
		}
	}
	struct delete_tx d = { .req = req, .row = &t.row };
	if (tx_ok(res, db_tx(req->app->db, true, delete_fn, &d)))
		http_body(res, 204, NULL, "", 0);
out:
	read_release(&t);
}

/* ---- POST /api/v1/templates/{id}/preview ------------------------------- */

/* New reference to obj[key], or null / [] when absent. */
static json_t *member_or(const json_t *obj, const char *key, bool array)
{
	json_t *v = json_object_get(obj, key);
	if (v)
		return json_incref(v);
	return array ? json_array() : json_null();
}

void api_templates_preview(struct http_request *req, struct http_response *res)
{
	struct read_tx t = { .req = req };
	json_t *rendered = NULL, *details = NULL, *empty = NULL;
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	if (!read_template(req, res, &t))
		goto out;
	json_t *params = json_object_get(body, "parameters");
	if (!params || json_is_null(params))
		params = empty = json_array();
	int rc = template_render(t.row.components,
				 t.row.parameter_format[0] ? t.row.parameter_format : NULL,
				 params, &rendered, &details);
	if (rc != TEMPLATE_OK) {
		answer_rules(res, rc, details);
		goto out;
	}
	http_json(res, 200,
		  json_pack("{s:o, s:o, s:o, s:o}", "header", member_or(rendered, "header", false),
			    "body", member_or(rendered, "body", false), "footer",
			    member_or(rendered, "footer", false), "buttons",
			    member_or(rendered, "buttons", true)));
out:
	json_decref(rendered);
	json_decref(empty);
	json_decref(body);
	read_release(&t);
}

/* ---- POST /api/v1/templates/sync --------------------------------------- */

struct sync_tx {
	const struct http_request *req;
	const char *number_id;
	const json_t *items; /* Meta's template objects */
	int created, updated, unchanged, skipped;
	struct meta_creds creds; /* read phase */
};

static int sync_read_fn(struct db_conn *c, void *ctx)
{
	struct sync_tx *t = ctx;
	return load_creds(c, t->req->app, t->req->auth.org_id, t->number_id, &t->creds);
}

/* Lay Meta's template object m over row (a copy of the stored row, or a
 * fresh one). false when m cannot be stored. */
static bool row_from_meta(struct template_row *row, const json_t *m)
{
	const char *name = json_string_value(json_object_get(m, "name"));
	const char *lang = json_string_value(json_object_get(m, "language"));
	const char *status = templates_status_from_meta(
		json_string_value(json_object_get(m, "status")));
	const char *cat = json_string_value(json_object_get(m, "category"));
	const char *id = json_string_value(json_object_get(m, "id"));
	const char *pf = json_string_value(json_object_get(m, "parameter_format"));
	const char *reason = json_string_value(json_object_get(m, "rejected_reason"));
	const char *quality = json_string_value(
		json_object_get(json_object_get(m, "quality_score"), "score"));
	json_t *comp = json_object_get(m, "components");
	if (!name || !lang || !status || !id || !json_is_array(comp) || !*name ||
	    !str_copy(row->name, sizeof row->name, name) ||
	    !str_copy(row->language, sizeof row->language, lang) || !*lang ||
	    !str_copy(row->meta_template_id, sizeof row->meta_template_id, id))
		return false;
	if (cat && templates_category_valid(cat))
		str_copy(row->category, sizeof row->category, cat);
	if (!row->category[0])
		return false;
	if (pf && (!strcmp(pf, "POSITIONAL") || !strcmp(pf, "NAMED")))
		str_copy(row->parameter_format, sizeof row->parameter_format, pf);
	if (reason)
		str_copy(row->rejected_reason, sizeof row->rejected_reason,
			 strcmp(reason, "NONE") ? reason : "");
	if (quality)
		str_copy(row->quality_score, sizeof row->quality_score, quality);
	str_copy(row->status, sizeof row->status, status);
	json_decref(row->components);
	row->components = json_incref(comp);
	return true;
}

static bool rows_differ(const struct template_row *a, const struct template_row *b)
{
	return strcmp(a->category, b->category) || strcmp(a->status, b->status) ||
	       strcmp(a->parameter_format, b->parameter_format) ||
	       strcmp(a->rejected_reason, b->rejected_reason) ||
	       strcmp(a->quality_score, b->quality_score) ||
	       strcmp(a->meta_template_id, b->meta_template_id) ||
	       !json_equal(a->components, b->components);
}

/* Create or update the local copy of Meta's template m. */
static int sync_one(struct db_conn *c, struct sync_tx *t, const json_t *m)
{
	const char *org = t->req->auth.org_id;
	struct template_row before = { 0 }, after = { 0 };
	const char *name = json_string_value(json_object_get(m, "name"));
	const char *lang = json_string_value(json_object_get(m, "language"));
	int rc = (name && lang) ? templates_find_by_key(c, org, t->number_id, name, lang, &before)
				: 1;
	if (rc < 0)
		return rc;
	bool exists = rc == 0;
	if (exists) {
		after = before;
		after.components = json_incref(before.components);
	}
	str_copy(after.whatsapp_number_id, sizeof after.whatsapp_number_id, t->number_id);
	rc = DB_OK;
	if (!row_from_meta(&after, m))
		t->skipped++;
	else if (exists && !rows_differ(&before, &after))
		t->unchanged++;
	else {
		rc = exists ? templates_save(c, org, &after, before.updated_at)
			    : templates_create(c, org, &after);
		if (rc == DB_OK) {
			json_t *changes = template_changes(exists ? &before : NULL, &after);
			rc = audit_template(c, t->req, exists ? "update" : "create", after.id,
					    changes);
			json_decref(changes);
			if (exists)
				t->updated++;
			else
				t->created++;
		}
	}
	template_row_release(&before);
	template_row_release(&after);
	return rc;
}

static int sync_write_fn(struct db_conn *c, void *ctx)
{
	struct sync_tx *t = ctx;
	t->created = t->updated = t->unchanged = t->skipped = 0;
	struct wa_number n;
	int rc = numbers_find(c, t->req->auth.org_id, t->number_id, &n);
	if (rc != 0)
		return rc == 1 ? TX_NO_NUMBER : rc;
	size_t i;
	const json_t *m;
	json_array_foreach(t->items, i, m) {
		if (!json_is_object(m)) {
			t->skipped++;
			continue;
		}
		rc = sync_one(c, t, m);
		if (rc == TEMPLATES_STALE)
			return TX_STALE;
		if (rc != DB_OK)
			return rc;
	}
	return DB_OK;
}

void api_templates_sync(struct http_request *req, struct http_response *res)
{
	struct sync_tx t = { .req = req };
	struct json_check chk = JSON_CHECK_INIT;
	struct graph_error gerr;
	json_t *items = NULL;
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	json_check_str(&chk, body, "whatsapp_number_id", true, 1, 64, &t.number_id);
	if (!api_check_passed(res, &chk) ||
	    !(t.number_id = body_number_id(req, res, t.number_id)) || !have_graph(req, res) ||
	    !tx_ok(res, db_tx(req->app->db, false, sync_read_fn, &t)))
		goto out;
	graph_error_clear(&gerr);
	enum graph_rc g = graph_list_templates(req->app->graph, t.creds.token, t.creds.waba_id,
					       0, &LIST_OPTS, &items, NULL, &gerr);
	creds_release(&t.creds);
	if (g != GRAPH_OK) {
		answer_meta_error(res, g, &gerr);
		goto out;
	}
	t.items = items;
	if (tx_ok(res, db_tx(req->app->db, true, sync_write_fn, &t)))
		http_json(res, 200, json_pack("{s:i, s:i, s:i}", "created", t.created, "updated",
					      t.updated, "unchanged", t.unchanged));
out:
	creds_release(&t.creds);
	json_decref(items);
	json_decref(body);
}
