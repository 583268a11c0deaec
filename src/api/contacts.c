/* Contacts of the caller's organization (API.md "Contacts"):
 *   GET/POST /api/v1/contacts, GET/PATCH/DELETE /api/v1/contacts/{id},
 *   POST /api/v1/contacts/{id}/opt-out, /opt-in, POST /api/v1/contacts/import.
 * Reads: viewer and up; writes: agent and up (routes.c).
 *
 * Choices (API.md is silent):
 * - `phone` is normalised to digits-only E.164 `wa_id` (domain/phone.h);
 *   answers carry both `wa_id` and `phone` (the same digits).
 * - POST takes `opted_in` (default true); `opted_in: false` creates the
 *   contact opted out. Answers carry `opted_out` and `opted_out_at`.
 * - PATCH may change phone, name, email (null clears), tags and
 *   attributes (each replaced whole). Opt-out state changes only through
 *   the opt-out / opt-in actions, which answer 200 with the contact, are
 *   idempotent and write an audit row (action opt_out / opt_in) only when
 *   the state changes.
 * - DELETE of a contact that conversations or messages still refer to is
 *   409 conflict (history is kept; opt the contact out instead).
 * - Import (text/csv; 415 otherwise): the header line names the columns
 *   (phone required; name, email, tags optional; any order; unknown
 *   columns ignored; case-insensitive). Blank lines are skipped. Each
 *   other line is validated, then created or updated by its phone in its
 *   own transaction with its audit row, so a line is written whole or not
 *   at all; a later line with the same phone updates the contact an
 *   earlier line created. On update, empty cells leave the field as it
 *   is; a non-empty tags cell replaces the tags. Lines with more fields
 *   than the header, bad phones, bad emails, bad tags or broken quoting
 *   are reported as {line, error} (physical line numbers, header = 1).
 *   The whole body is checked first (header, at most IMPORT_MAX_ROWS
 *   lines: else 413 / 422 with nothing written). A database outage midway
 *   answers 503: lines before it are written, and re-running the import is
 *   safe (it is an upsert by phone). */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/answer.h"
#include "api/list.h"
#include "app/app.h"
#include "core/json.h"
#include "core/str.h"
#include "core/uuid.h"
#include "domain/audit.h"
#include "domain/contacts.h"
#include "domain/csv.h"
#include "domain/users.h"

#define IMPORT_MAX_ROWS 100000
#define IMPORT_MAX_FIELD_BYTES (16 * 1024)
#define IMPORT_MAX_LINE_BYTES (32 * 1024)
#define IMPORT_MAX_FIELDS 32

/* Positive codes a transaction function returns to roll back. */
enum { TX_NOT_FOUND = 1 };

static const char NOT_FOUND[] = "no such contact";

/* ---- rendering and answers ---------------------------------------------- */

json_t *api_contact_json(const struct contact *c)
{
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:o}", "id",
			 c->id, "wa_id", api_str_or_null(c->wa_id), "phone", api_str_or_null(c->wa_id),
			 "bsuid", api_str_or_null(c->bsuid), "name", api_str_or_null(c->name), "email",
			 api_str_or_null(c->email), "tags",
			 c->tags ? json_incref(c->tags) : json_array(), "attributes",
			 c->attributes ? json_incref(c->attributes) : json_object(),
			 "opted_out", c->opted_out, "opted_out_at",
			 api_time_json(c->opted_out_at), "created_at",
			 api_time_json(c->created_at), "updated_at",
			 api_time_json(c->updated_at));
}

/* s[0..len) is valid UTF-8 without NUL bytes (as jansson demands). */
static bool text_ok(const char *s, size_t len)
{
	if (memchr(s, '\0', len))
		return false;
	json_t *v = json_stringn(s, len);
	json_decref(v);
	return v != NULL;
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
	case DB_ERR_CONFLICT:
		http_error(res, 409, "conflict", "a contact with this phone number already exists",
			   NULL);
		break;
	case DB_ERR_FK:
		http_error(res, 409, "conflict",
			   "the contact has conversations or messages; opt it out instead",
			   NULL);
		break;
	default:
		api_answer_db_error(res, rc);
	}
	return false;
}

/* {field: [old, new]} of what differs between before (NULL: created) and after. */
static json_t *contact_changes(const struct contact *before, const struct contact *after)
{
	json_t *ch = json_object();
	audit_change_str(ch, "wa_id", before && *before->wa_id ? before->wa_id : NULL,
			 *after->wa_id ? after->wa_id : NULL);
	audit_change_str(ch, "name", before && *before->name ? before->name : NULL,
			 *after->name ? after->name : NULL);
	audit_change_str(ch, "email", before && *before->email ? before->email : NULL,
			 *after->email ? after->email : NULL);
	const json_t *old_tags = before ? before->tags : NULL;
	if (!old_tags || !json_equal(old_tags, after->tags))
		json_object_set_new(ch, "tags", json_pack("[OO]", old_tags ? old_tags : json_null(),
							  after->tags));
	const json_t *old_attrs = before ? before->attributes : NULL;
	if (!old_attrs || !json_equal(old_attrs, after->attributes))
		json_object_set_new(ch, "attributes",
				    json_pack("[OO]", old_attrs ? old_attrs : json_null(),
					      after->attributes));
	if (!before || before->opted_out != after->opted_out)
		audit_change_bool(ch, "opted_out", before ? before->opted_out : false,
				  after->opted_out);
	return ch;
}

static int audit_contact(struct db_conn *c, const struct http_request *req, const char *action,
			 const struct contact *before, const struct contact *after)
{
	json_t *changes = contact_changes(before, after);
	struct audit_entry e = { .action = action, .table_name = "contacts",
				 .record_id = after->id, .changes = changes };
	audit_entry_from_request(&e, req);
	int rc = audit_record(c, &e);
	json_decref(changes);
	return rc;
}

/* ---- GET /api/v1/contacts ----------------------------------------------- */

struct list_ctx {
	const char *org_id;
	struct contact_filter f;
	struct contact *rows;
	int n;
};

static int list_fetch(struct db_conn *c, void *arg, const struct page *p, int limit, int *n)
{
	struct list_ctx *t = arg;
	contact_rows_free(t->rows, t->n);
	t->rows = NULL;
	t->n = 0;
	int rc = contacts_list(c, t->org_id, &t->f, limit, p->after_at, p->after_id, &t->rows,
			       &t->n);
	*n = t->n;
	return rc;
}

static json_t *list_render(void *arg, int i, int64_t *at, const char **id)
{
	struct list_ctx *t = arg;
	*at = t->rows[i].created_at;
	*id = t->rows[i].id;
	return api_contact_json(&t->rows[i]);
}

/* Read the filters; false after answering 422. */
static bool parse_filters(struct http_request *req, struct http_response *res,
			  struct contact_filter *f)
{
	struct json_check chk = JSON_CHECK_INIT;
	const char *opted = http_query(req, "opted_out");
	f->q = http_query(req, "q");
	f->tag = http_query(req, "tag");
	if (f->q && (!text_ok(f->q, strlen(f->q)) || json_utf8_len(f->q) > CONTACTS_Q_MAX))
		json_check_rule(&chk, "q", "must be valid text of at most %d characters",
				CONTACTS_Q_MAX);
	if (f->q && !*f->q)
		f->q = NULL;
	if (f->tag && (!*f->tag || !text_ok(f->tag, strlen(f->tag)) ||
		       json_utf8_len(f->tag) > CONTACTS_TAG_MAX))
		json_check_rule(&chk, "tag", "must be 1 to %d characters", CONTACTS_TAG_MAX);
	if (opted) {
		f->has_opted_out = true;
		if (!strcmp(opted, "true"))
			f->opted_out = true;
		else if (strcmp(opted, "false") != 0)
			json_check_rule(&chk, "opted_out", "must be true or false");
	}
	return api_query_check_passed(res, &chk);
}

void api_contacts_list(struct http_request *req, struct http_response *res)
{
	struct list_ctx t = { .org_id = req->auth.org_id };
	if (!parse_filters(req, res, &t.f))
		return;
	struct api_list list = { .fetch = list_fetch, .render = list_render, .ctx = &t };
	(void)api_list_answer(req, res, &list);
	contact_rows_free(t.rows, t.n);
}

/* ---- request bodies (POST and PATCH) ------------------------------------ */

struct contact_body {
	struct contact_fields f;
	char wa_id[PHONE_BUF_LEN];
	json_t *tags;   /* owned: the de-duplicated tags */
};

static void contact_body_release(struct contact_body *b)
{
	json_decref(b->tags);
	b->tags = NULL;
}

static bool is_null_field(const json_t *body, const char *key)
{
	const json_t *v = json_object_get(body, key);
	return v && json_is_null(v);
}

static void parse_phone(struct json_check *chk, const json_t *body, bool create,
			struct contact_body *b)
{
	const char *s = NULL;
	if (!create && is_null_field(body, "phone")) {
		json_check_rule(chk, "phone", "cannot be removed");
		return;
	}
	if (!json_check_str(chk, body, "phone", create, 1, 64, &s))
		return;
	enum phone_rc rc = phone_normalize(s, b->wa_id);
	if (rc != PHONE_OK) {
		json_check_rule(chk, "phone", "%s", phone_error_message(rc));
		return;
	}
	b->f.has_wa_id = true;
	b->f.wa_id = b->wa_id;
}

/* name / email: a string sets, null clears, absent leaves. */
static void parse_nullable_str(struct json_check *chk, const json_t *body, const char *key,
			       size_t max, bool *has, const char **out)
{
	if (is_null_field(body, key)) {
		*has = true;
		*out = NULL;
		return;
	}
	if (json_check_str(chk, body, key, false, 1, max, out))
		*has = true;
}

static void parse_json_fields(struct json_check *chk, const json_t *body,
			      struct contact_body *b)
{
	const char *why;
	json_t *v = json_object_get(body, "tags");
	if (v && !json_is_null(v)) {
		if (!json_is_array(v))
			json_check_type(chk, "tags", "must be an array of strings");
		else if ((why = contacts_check_tags(v, &b->tags)))
			json_check_rule(chk, "tags", "%s", why);
		else {
			b->f.has_tags = true;
			b->f.tags = b->tags;
		}
	}
	v = json_object_get(body, "attributes");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v))
			json_check_type(chk, "attributes", "must be an object");
		else if ((why = contacts_check_attributes(v)))
			json_check_rule(chk, "attributes", "%s", why);
		else {
			b->f.has_attributes = true;
			b->f.attributes = v;
		}
	}
}

/* Validate a POST (create) or PATCH body into b; false after answering. */
static bool parse_body(struct http_response *res, const json_t *body, bool create,
		       struct contact_body *b)
{
	struct json_check chk = JSON_CHECK_INIT;
	const char *why;
	parse_phone(&chk, body, create, b);
	parse_nullable_str(&chk, body, "name", CONTACTS_NAME_MAX, &b->f.has_name, &b->f.name);
	parse_nullable_str(&chk, body, "email", CONTACTS_EMAIL_MAX, &b->f.has_email,
			   &b->f.email);
	if (b->f.email && (why = users_check_email(b->f.email)))
		json_check_rule(&chk, "email", "%s", why);
	parse_json_fields(&chk, body, b);
	if (create) {
		bool opted_in = true;
		if (json_check_bool(&chk, body, "opted_in", false, &opted_in))
			b->f.opted_out = !opted_in;
	}
	return api_check_passed(res, &chk);
}

/* ---- POST /api/v1/contacts ---------------------------------------------- */

struct write_tx {
	const struct http_request *req;
	const char *id;
	const char *action;
	const struct contact_fields *f;
	bool opted_out;
	struct contact before, after;
};

static void write_tx_release(struct write_tx *t)
{
	contact_release(&t->before);
	contact_release(&t->after);
}

static int create_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	contact_release(&t->after);
	int rc = contacts_create(c, t->req->auth.org_id, t->f, &t->after);
	if (rc != DB_OK)
		return rc;
	return audit_contact(c, t->req, "create", NULL, &t->after);
}

void api_contacts_create(struct http_request *req, struct http_response *res)
{
	struct contact_body b = { .tags = NULL };
	struct write_tx t = { .req = req, .f = &b.f };
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	if (!parse_body(res, body, true, &b))
		goto out;
	if (tx_ok(res, db_tx(req->app->db, true, create_fn, &t)))
		api_answer_created(req, res, "/api/v1/contacts", t.after.id,
				   api_contact_json(&t.after));
out:
	write_tx_release(&t);
	contact_body_release(&b);
	json_decref(body);
}

/* ---- GET /api/v1/contacts/{id} ------------------------------------------ */

static int get_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	contact_release(&t->after);
	return contacts_find(c, t->req->auth.org_id, t->id, &t->after);
}

void api_contacts_get(struct http_request *req, struct http_response *res)
{
	struct write_tx t = { .req = req };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	if (tx_ok(res, db_tx(req->app->db, false, get_fn, &t)))
		http_json(res, 200, api_contact_json(&t.after));
	write_tx_release(&t);
}

/* ---- PATCH and DELETE /api/v1/contacts/{id} ----------------------------- */

static int update_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	write_tx_release(t);
	int rc = contacts_update(c, t->req->auth.org_id, t->id, t->f, &t->before, &t->after);
	if (rc != DB_OK)
		return rc;
	return audit_contact(c, t->req, "update", &t->before, &t->after);
}

void api_contacts_patch(struct http_request *req, struct http_response *res)
{
	struct contact_body b = { .tags = NULL };
	struct write_tx t = { .req = req, .f = &b.f };
	json_t *body = NULL;
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	/* another org's id is 404 before the body is looked at */
	if (!tx_ok(res, db_tx(req->app->db, false, get_fn, &t)))
		goto out;
	body = http_body_json(req, res);
	if (!body || !parse_body(res, body, false, &b))
		goto out;
	if (tx_ok(res, db_tx(req->app->db, true, update_fn, &t)))
		http_json(res, 200, api_contact_json(&t.after));
out:
	write_tx_release(&t);
	contact_body_release(&b);
	json_decref(body);
}

static int delete_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	write_tx_release(t);
	int rc = contacts_delete(c, t->req->auth.org_id, t->id, &t->before);
	if (rc != DB_OK)
		return rc;
	json_t *changes = json_object();
	audit_change_str(changes, "wa_id", *t->before.wa_id ? t->before.wa_id : NULL, NULL);
	struct audit_entry e = { .action = "delete", .table_name = "contacts",
				 .record_id = t->id, .changes = changes };
	audit_entry_from_request(&e, t->req);
	rc = audit_record(c, &e);
	json_decref(changes);
	return rc;
}

void api_contacts_delete(struct http_request *req, struct http_response *res)
{
	struct write_tx t = { .req = req };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	if (tx_ok(res, db_tx(req->app->db, true, delete_fn, &t)))
		http_body(res, 204, NULL, "", 0);
	write_tx_release(&t);
}

/* ---- POST /api/v1/contacts/{id}/opt-out and /opt-in --------------------- */

static int opt_fn(struct db_conn *c, void *ctx)
{
	struct write_tx *t = ctx;
	write_tx_release(t);
	int rc = contacts_set_opt_out(c, t->req->auth.org_id, t->id, t->opted_out, &t->before,
				      &t->after);
	if (rc != DB_OK || t->before.opted_out == t->after.opted_out)
		return rc;
	return audit_contact(c, t->req, t->action, &t->before, &t->after);
}

static void set_opt_out(struct http_request *req, struct http_response *res, bool opted_out)
{
	struct write_tx t = { .req = req, .opted_out = opted_out,
			      .action = opted_out ? "opt_out" : "opt_in" };
	if (!api_path_id(req, res, NOT_FOUND, &t.id))
		return;
	if (tx_ok(res, db_tx(req->app->db, true, opt_fn, &t)))
		http_json(res, 200, api_contact_json(&t.after));
	write_tx_release(&t);
}

void api_contacts_opt_out(struct http_request *req, struct http_response *res)
{
	set_opt_out(req, res, true);
}

void api_contacts_opt_in(struct http_request *req, struct http_response *res)
{
	set_opt_out(req, res, false);
}

/* ---- POST /api/v1/contacts/import --------------------------------------- */

enum import_col { COL_PHONE, COL_NAME, COL_EMAIL, COL_TAGS, COL_COUNT };
static const char *const COL_NAMES[COL_COUNT] = { "phone", "name", "email", "tags" };

struct import {
	struct http_request *req;
	bool writing;            /* pass 2: write lines (pass 1 only checks) */
	bool have_header;
	uint64_t header_index;
	const char *header_error;
	int col[COL_COUNT];      /* field index of each column, -1 = absent */
	size_t ncols;
	int64_t created, updated;
	json_t *rejected;
	int stop_rc;             /* database outage: stop, answer 503 */
	char *scratch;           /* trimmed copies of a line's cells */
};

/* One line's validated values. */
struct import_line {
	const char *cells[COL_COUNT]; /* trimmed, NUL-terminated, "" when empty */
	char wa_id[PHONE_BUF_LEN];
	json_t *tags;                 /* owned; NULL when the cell is empty */
};

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Report a line as rejected: error is prefix + why. */
static void reject(struct import *im, uint64_t line, const char *prefix, const char *why)
{
	char msg[256];
	snprintf(msg, sizeof msg, "%s%s", prefix, why);
	json_array_append_new(im->rejected, json_pack("{s:I, s:s}", "line", (json_int_t)line,
						      "error", msg));
}

/* The header: map known column names (trimmed, case-insensitive). */
static const char *parse_header(struct import *im, const struct csv_record *rec)
{
	for (int k = 0; k < COL_COUNT; k++)
		im->col[k] = -1;
	if (rec->error != CSV_OK)
		return csv_error_message(rec->error);
	im->ncols = rec->nfields;
	for (size_t i = 0; i < rec->nfields; i++) {
		const char *s = rec->fields[i];
		size_t len = rec->lens[i];
		while (len > 0 && is_space(*s))
			s++, len--;
		while (len > 0 && is_space(s[len - 1]))
			len--;
		for (int k = 0; k < COL_COUNT; k++) {
			if (len != strlen(COL_NAMES[k]) || strncasecmp(s, COL_NAMES[k], len) != 0)
				continue;
			if (im->col[k] >= 0)
				return "a column is named twice";
			im->col[k] = (int)i;
		}
	}
	if (im->col[COL_PHONE] < 0)
		return "the header line must name a phone column (phone,name,email,tags)";
	return NULL;
}

/* Copy the cells this import uses, trimmed, into im->scratch. NULL or the
 * reason the line is rejected. */
static const char *line_cells(struct import *im, const struct csv_record *rec,
			      struct import_line *l)
{
	char *out = im->scratch;
	if (rec->nfields > im->ncols)
		return "the line has more fields than the header";
	for (int k = 0; k < COL_COUNT; k++) {
		int i = im->col[k];
		const char *s = (i >= 0 && (size_t)i < rec->nfields) ? rec->fields[i] : "";
		size_t len = (i >= 0 && (size_t)i < rec->nfields) ? rec->lens[i] : 0;
		if (!text_ok(s, len))
			return "the line is not valid UTF-8 text";
		while (len > 0 && is_space(*s))
			s++, len--;
		while (len > 0 && is_space(s[len - 1]))
			len--;
		memcpy(out, s, len);
		out[len] = '\0';
		l->cells[k] = out;
		out += len + 1;
	}
	return NULL;
}

/* tags cell "a; b;a" -> ["a", "b"]; NULL or the reason. */
static const char *line_tags(const char *cell, struct import_line *l)
{
	json_t *raw = json_array();
	const char *why = NULL;
	if (!raw)
		return "out of memory";
	for (const char *p = cell; *p;) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *s = p;
		p += len + (end ? 1 : 0);
		while (len > 0 && is_space(*s))
			s++, len--;
		while (len > 0 && is_space(s[len - 1]))
			len--;
		if (len > 0)
			json_array_append_new(raw, json_stringn(s, len));
	}
	why = contacts_check_tags(raw, &l->tags);
	json_decref(raw);
	return why;
}

/* Validate a line into l; false after rejecting it. */
static bool validate_line(struct import *im, const struct csv_record *rec,
			  struct import_line *l)
{
	const char *why = line_cells(im, rec, l);
	if (why) {
		reject(im, rec->line, "", why);
		return false;
	}
	enum phone_rc prc = phone_normalize(l->cells[COL_PHONE], l->wa_id);
	if (prc != PHONE_OK) {
		reject(im, rec->line, "phone: ", phone_error_message(prc));
		return false;
	}
	if (json_utf8_len(l->cells[COL_NAME]) > CONTACTS_NAME_MAX) {
		reject(im, rec->line, "name: ", "must be at most 200 characters");
		return false;
	}
	const char *email = l->cells[COL_EMAIL];
	if (*email && (strlen(email) > CONTACTS_EMAIL_MAX || (why = users_check_email(email)))) {
		reject(im, rec->line, "email: ", why ? why : "is too long");
		return false;
	}
	if (*l->cells[COL_TAGS] && (why = line_tags(l->cells[COL_TAGS], l))) {
		reject(im, rec->line, "tags: ", why);
		return false;
	}
	return true;
}

struct upsert_tx {
	const struct http_request *req;
	const struct import_line *l;
	bool created;
	struct contact before, after;
};

/* Fields of a line: non-empty cells only (an update leaves the rest). */
static void line_fields(const struct import_line *l, struct contact_fields *f)
{
	memset(f, 0, sizeof *f);
	f->wa_id = l->wa_id;
	f->has_name = *l->cells[COL_NAME] != '\0';
	f->name = l->cells[COL_NAME];
	f->has_email = *l->cells[COL_EMAIL] != '\0';
	f->email = l->cells[COL_EMAIL];
	f->has_tags = l->tags != NULL;
	f->tags = l->tags;
}

static int upsert_fn(struct db_conn *c, void *ctx)
{
	struct upsert_tx *t = ctx;
	struct contact_fields f;
	const char *org = t->req->auth.org_id;
	contact_release(&t->before);
	contact_release(&t->after);
	line_fields(t->l, &f);
	int rc = contacts_find_by_wa_id(c, org, t->l->wa_id, &t->before);
	if (rc < 0)
		return rc;
	t->created = rc == 1;
	if (t->created) {
		rc = contacts_create(c, org, &f, &t->after);
		if (rc == DB_ERR_CONFLICT)
			return DB_ERR_RETRY; /* created meanwhile: run again, update it */
	} else {
		char id[37];
		memcpy(id, t->before.id, sizeof id);
		contact_release(&t->before);
		rc = contacts_update(c, org, id, &f, &t->before, &t->after);
	}
	if (rc != DB_OK)
		return rc == 1 ? DB_ERR_RETRY : rc;
	return audit_contact(c, t->req, t->created ? "create" : "update",
			     t->created ? NULL : &t->before, &t->after);
}

static void write_line(struct import *im, const struct csv_record *rec,
		       const struct import_line *l)
{
	struct upsert_tx t = { .req = im->req, .l = l };
	int rc = db_tx(im->req->app->db, true, upsert_fn, &t);
	if (rc == DB_OK) {
		if (t.created)
			im->created++;
		else
			im->updated++;
	} else if (rc == DB_ERR_UNAVAILABLE || rc == DB_ERR_RETRY) {
		im->stop_rc = rc;
	} else {
		reject(im, rec->line, "", "the line could not be saved");
	}
	contact_release(&t.before);
	contact_release(&t.after);
}

static int on_record(void *ctx, const struct csv_record *rec)
{
	struct import *im = ctx;
	if (!im->have_header) {
		if (rec->blank)
			return 0;
		im->have_header = true;
		im->header_index = rec->index;
		im->header_error = parse_header(im, rec);
		return im->header_error != NULL;
	}
	if (!im->writing || rec->blank)
		return 0;
	if (rec->error != CSV_OK) {
		reject(im, rec->line, "", csv_error_message(rec->error));
		return 0;
	}
	struct import_line l = { .tags = NULL };
	if (validate_line(im, rec, &l))
		write_line(im, rec, &l);
	json_decref(l.tags);
	return im->stop_rc != 0;
}

/* Run one pass over the body. */
static enum csv_error import_pass(struct import *im, const char *body, size_t len,
				  uint64_t *line)
{
	static const struct csv_limits LIMITS = {
		.max_field_bytes = IMPORT_MAX_FIELD_BYTES,
		.max_record_bytes = IMPORT_MAX_LINE_BYTES,
		.max_fields = IMPORT_MAX_FIELDS,
		.max_records = IMPORT_MAX_ROWS + 1,
	};
	struct csv_reader *r = csv_reader_new(&LIMITS, on_record, im);
	if (!r)
		return CSV_ERR_NOMEM;
	im->have_header = false;
	enum csv_error e = csv_feed(r, body, len);
	if (e == CSV_OK)
		e = csv_finish(r);
	*line = csv_reader_line(r);
	csv_reader_free(r);
	return e;
}

static void answer_header_problem(struct http_response *res, const char *why)
{
	http_error(res, 422, "validation_error", "the CSV cannot be imported",
		   json_pack("[{s:s, s:s}]", "field", "header", "message", why));
}

/* Pass 1: header and size, nothing written. False after answering. */
static bool import_check(struct import *im, struct http_response *res)
{
	uint64_t line = 0;
	enum csv_error e = import_pass(im, im->req->body, im->req->body_len, &line);
	if (e == CSV_ERR_TOO_MANY_RECORDS) {
		http_error(res, 413, "payload_too_large",
			   arena_printf(im->req->arena,
					"an import holds at most %d lines after the header",
					IMPORT_MAX_ROWS),
			   NULL);
		return false;
	}
	if (e == CSV_ERR_NOMEM) {
		api_answer_db_error(res, DB_ERR);
		return false;
	}
	if (!im->have_header) {
		answer_header_problem(res, "the CSV has no header line (phone,name,email,tags)");
		return false;
	}
	if (im->header_error) {
		answer_header_problem(res, im->header_error);
		return false;
	}
	return true;
}

void api_contacts_import(struct http_request *req, struct http_response *res)
{
	struct import im = { .req = req, .rejected = json_array() };
	uint64_t line = 0;
	if (!api_content_type_is(req, "text/csv")) {
		http_error(res, 415, "unsupported_media_type",
			   "send the contacts as text/csv with a header line phone,name,email,tags",
			   NULL);
		goto out;
	}
	im.scratch = malloc(IMPORT_MAX_LINE_BYTES + COL_COUNT + 1);
	if (!im.rejected || !im.scratch) {
		api_answer_db_error(res, DB_ERR);
		goto out;
	}
	if (!import_check(&im, res))
		goto out;
	im.writing = true;
	enum csv_error e = import_pass(&im, req->body, req->body_len, &line);
	if (im.stop_rc != 0) {
		api_answer_db_error(res, im.stop_rc);
		goto out;
	}
	if (e == CSV_ERR_UNTERMINATED_QUOTE)
		reject(&im, line, "", csv_error_message(e));
	http_json(res, 200, json_pack("{s:I, s:I, s:O}", "created", (json_int_t)im.created,
				      "updated", (json_int_t)im.updated, "rejected", im.rejected));
out:
	free(im.scratch);
	json_decref(im.rejected);
}
