/* send: see send.h for the design note (validate + store, call Meta
 * outside any transaction, record the outcome). */
#include "domain/send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/audit.h"
#include "domain/conversations.h"
#include "domain/numbers.h"
#include "domain/phone.h"
#include "domain/templates.h"
#include "jobs/webhook_processor.h"
#include "meta/graph.h"
#include "meta/template_rules.h"

/* ---- Meta's body --------------------------------------------------------- */

json_t *send_graph_body(const char *wa_id, const char *bsuid, const char *type,
			const json_t *object)
{
	json_t *b = json_pack("{s:s, s:s}", "messaging_product", "whatsapp", "recipient_type",
			      "individual");
	if (!b)
		return NULL;
	if (wa_id && wa_id[0])
		json_object_set_new(b, "to", json_string(wa_id));
	else
		json_object_set_new(b, "recipient", json_string(bsuid ? bsuid : ""));
	json_object_set_new(b, "type", json_string(type));
	json_object_set(b, type, (json_t *)object);
	return b;
}

/* ---- step 1: validate and store ------------------------------------------ */

struct contact_ref {
	char id[37];
	char wa_id[PHONE_BUF_LEN];        /* "" = none */
	char bsuid[SEND_BSUID_MAX + 1];   /* "" = none */
};

struct prepare_tx {
	const uint8_t *key;
	const struct send_actor *actor;
	const struct send_request *in;
	char wa_id[PHONE_BUF_LEN];        /* `to` as a phone, "" when it is not */
	const char *to_error;
	/* filled by prepare_fn */
	struct wa_number number;
	struct contact_ref contact;
	struct conversation conv;
	json_t *object;                   /* the type's object Meta gets */
	char *rendered;                   /* template: the rendered body text */
	json_t *details;
	char *token;                      /* access token (crypto_secret_free) */
	struct message msg;
};

static void prepare_reset(struct prepare_tx *t)
{
	json_decref(t->object);
	t->object = NULL;
	free(t->rendered);
	t->rendered = NULL;
	json_decref(t->details);
	t->details = NULL;
	crypto_secret_free(t->token);
	t->token = NULL;
	message_release(&t->msg);
}

/* The contact of org_id with column col ("wa_id"/"bsuid") = value. 0, 1, <0. */
static int contact_find(struct db_conn *c, const char *org_id, bool by_phone,
			const char *value, struct contact_ref *out)
{
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(value) };
	struct db_res *r = NULL;
	int rc = db_exec(c,
			 by_phone ? "SELECT id, wa_id, bsuid FROM contacts "
				    "WHERE organization_id = $1 AND wa_id = $2"
				  : "SELECT id, wa_id, bsuid FROM contacts "
				    "WHERE organization_id = $1 AND bsuid = $2",
			 p, 2, &r, NULL);
	if (rc != DB_OK)
		return rc;
	if (db_rows(r) == 0) {
		rc = 1;
	} else {
		const char *w = db_get_text(r, 0, 1), *b = db_get_text(r, 0, 2);
		str_copy(out->id, sizeof out->id, db_get_text(r, 0, 0));
		str_copy(out->wa_id, sizeof out->wa_id, w ? w : "");
		str_copy(out->bsuid, sizeof out->bsuid, b ? b : "");
	}
	db_res_free(r);
	return rc;
}

/* A new contact of org_id known by phone wa_id. 0 or < 0. */
static int contact_create(struct db_conn *c, const char *org_id, const char *wa_id,
			  struct contact_ref *out)
{
	memset(out, 0, sizeof *out);
	if (uuid_v7_str(out->id) != 0)
		return DB_ERR;
	str_copy(out->wa_id, sizeof out->wa_id, wa_id);
	struct db_param p[] = { DBP_TEXT(out->id), DBP_TEXT(org_id), DBP_TEXT(wa_id),
				DBP_INT(time_now_us()) };
	return db_exec(c,
		       "INSERT INTO contacts (id, organization_id, wa_id, created_at, updated_at) "
		       "VALUES ($1, $2, $3, $4, $4)",
		       p, 4, NULL, NULL);
}

/* Resolve `to` to an existing contact: 0 found, 1 none (a phone we may
 * create), SEND_BAD_TO, < 0. */
static int resolve_contact(struct db_conn *c, struct prepare_tx *t)
{
	const char *org = t->actor->org_id;
	if (t->wa_id[0])
		return contact_find(c, org, true, t->wa_id, &t->contact);
	int rc = contact_find(c, org, false, t->in->to, &t->contact);
	if (rc == 1) {
		if (!t->to_error)
			t->to_error = "is neither a phone number nor a known contact's BSUID";
		return SEND_BAD_TO;
	}
	return rc;
}

/* The template's object for Meta, and its rendered body. */
static int prepare_template(struct db_conn *c, struct prepare_tx *t)
{
	struct template_row tpl;
	int rc = templates_find(c, t->actor->org_id, t->in->template_id, &tpl);
	if (rc == 1)
		return SEND_TEMPLATE_NOT_FOUND;
	if (rc != 0)
		return rc;
	json_t *send = NULL, *rendered = NULL;
	const char *pf = tpl.parameter_format[0] ? tpl.parameter_format : NULL;
	if (strcmp(tpl.whatsapp_number_id, t->number.id) != 0) {
		rc = SEND_TEMPLATE_NOT_FOUND;
		goto out;
	}
	if (strcmp(tpl.status, "APPROVED") != 0) {
		rc = SEND_TEMPLATE_NOT_APPROVED;
		goto out;
	}
	json_t *params = t->in->parameters ? (json_t *)t->in->parameters : NULL;
	json_t *empty = params ? NULL : json_array();
	rc = template_send_components(tpl.components, pf, params ? params : empty, &send,
				      &t->details);
	if (rc == TEMPLATE_OK) {
		json_t *unused = NULL;
		rc = template_render(tpl.components, pf, params ? params : empty, &rendered,
				     &unused);
		json_decref(unused);
	}
	json_decref(empty);
	if (rc == TEMPLATE_INVALID || rc == TEMPLATE_BAD_TYPE) {
		rc = rc == TEMPLATE_INVALID ? SEND_BAD_PARAMETERS : SEND_BAD_PARAMETER_TYPE;
		goto out;
	}
	if (rc != TEMPLATE_OK) {
		rc = DB_ERR;
		goto out;
	}
	t->object = json_pack("{s:s, s:{s:s}, s:O}", "name", tpl.name, "language", "code",
			      tpl.language, "components", send);
	const char *body = json_string_value(json_object_get(rendered, "body"));
	t->rendered = body ? strdup(body) : NULL;
	rc = t->object ? 0 : DB_ERR;
out:
	json_decref(send);
	json_decref(rendered);
	template_row_release(&tpl);
	return rc;
}

static int audit_send(struct db_conn *c, struct prepare_tx *t)
{
	json_t *changes = json_object();
	const char *to = t->contact.wa_id[0] ? t->contact.wa_id : t->contact.bsuid;
	audit_change_str(changes, "status", NULL, "queued");
	audit_change_str(changes, "type", NULL, t->msg.type);
	audit_change_str(changes, "to", NULL, to);
	audit_change_str(changes, "conversation_id", NULL, t->conv.id);
	struct audit_entry e = { .org_id = t->actor->org_id, .user_id = t->actor->user_id,
				 .action = "send", .table_name = "messages",
				 .record_id = t->msg.id, .changes = changes,
				 .ip = t->actor->ip, .request_id = t->actor->request_id };
	int rc = audit_record(c, &e);
	json_decref(changes);
	return rc;
}

/* Contact, conversation, queued message, audit row. A unique violation
 * creating the contact or opening the conversation means another
 * transaction (a concurrent send, the webhook processor) created it after
 * we looked (PostgreSQL, READ COMMITTED; SQLite writers are serialised):
 * DB_ERR_RETRY runs the transaction again, which then finds that row. */
static int store_queued(struct db_conn *c, struct prepare_tx *t, bool have_contact)
{
	const char *org = t->actor->org_id;
	int rc = have_contact ? 0 : contact_create(c, org, t->wa_id, &t->contact);
	if (rc == 0)
		rc = conversations_open(c, org, t->contact.id, t->number.id, &t->conv);
	if (rc == DB_ERR_CONFLICT)
		return DB_ERR_RETRY;
	if (rc != 0)
		return rc;
	bool text = t->in->type == SEND_TEXT;
	struct message_new m = { .conversation_id = t->conv.id,
				 .whatsapp_number_id = t->number.id,
				 .contact_id = t->contact.id,
				 .type = text ? "text" : "template",
				 .text = text ? t->in->text : t->rendered,
				 .content = t->object };
	rc = messages_create_outbound(c, org, &m, &t->msg);
	if (rc == 0)
		rc = conversations_touch(c, org, t->conv.id, t->msg.created_at);
	if (rc == 0)
		rc = audit_send(c, t);
	return rc;
}

static int prepare_fn(struct db_conn *c, void *ctx)
{
	struct prepare_tx *t = ctx;
	const char *org = t->actor->org_id;
	prepare_reset(t);
	int rc = numbers_find(c, org, t->in->number_id, &t->number);
	if (rc == 1)
		return SEND_NUMBER_NOT_FOUND;
	if (rc != 0)
		return rc;
	rc = resolve_contact(c, t);
	if (rc < 0 || rc > 1)
		return rc;
	bool have_contact = rc == 0;
	bool have_conv = false;
	if (have_contact) {
		rc = conversations_find_current(c, org, t->contact.id, t->number.id, &t->conv);
		if (rc < 0)
			return rc;
		have_conv = rc == 0;
	}
	if (t->in->type == SEND_TEXT) {
		if (!have_conv || !conversation_window_open(&t->conv, time_now_us()))
			return SEND_OUTSIDE_WINDOW;
		t->object = json_pack("{s:b, s:s}", "preview_url", false, "body", t->in->text);
		if (!t->object)
			return DB_ERR;
	} else if ((rc = prepare_template(c, t)) != 0) {
		return rc;
	}
	rc = numbers_access_token(c, t->key, org, t->number.id, &t->token);
	if (rc == 1)
		return SEND_NUMBER_NOT_FOUND;
	if (rc == NUMBERS_ERR_SECRET)
		return SEND_SECRET;
	if (rc != 0)
		return rc;
	return store_queued(c, t, have_contact);
}

/* ---- step 3: record the outcome ------------------------------------------ */

struct record_tx {
	const char *org_id, *msg_id;
	bool sent;
	const char *wamid;
	const struct graph_error *err;
	char message[600];
	struct message out;
};

static int record_fn(struct db_conn *c, void *ctx)
{
	struct record_tx *t = ctx;
	int64_t now = time_now_us();
	int rc;
	message_release(&t->out);
	if (t->sent) {
		rc = messages_set_sent(c, t->org_id, t->msg_id, t->wamid, now);
		if (rc == 0) { /* statuses Meta reported before we knew the wamid */
			int applied = webhook_apply_pending(c, t->wamid);
			rc = applied < 0 ? applied : 0;
		}
	} else {
		rc = messages_set_failed(c, t->org_id, t->msg_id, t->err->code != 0,
					 t->err->code, t->message, now);
	}
	if (rc < 0)
		return rc;
	/* rc 1: a status webhook moved it already; read it as it is */
	rc = messages_find(c, t->org_id, t->msg_id, &t->out);
	return rc == 1 ? DB_ERR : rc;
}

/* The error_message stored for a failed send. */
static void failure_text(const struct graph_error *e, enum graph_rc grc, char *buf,
			 size_t n)
{
	if (grc == GRAPH_ERR_TRANSPORT)
		snprintf(buf, n, "%s: %s", graph_transport_name(e->transport), e->message);
	else if (grc == GRAPH_ERR_META)
		snprintf(buf, n, "%s", e->message[0] ? e->message : "Meta refused the message");
	else
		snprintf(buf, n, "the message could not be sent");
}

static int call_meta(struct graph_client *graph, struct prepare_tx *t, char *wamid,
		     size_t wamid_sz, struct graph_error *err)
{
	json_t *body = send_graph_body(t->contact.wa_id, t->contact.bsuid, t->msg.type,
				       t->object);
	size_t len = 0;
	char *text = body ? json_dump_compact(body, &len) : NULL;
	json_decref(body);
	struct graph_call_opts opts = { .retries = SEND_RETRIES,
					.backoff_base_ms = SEND_BACKOFF_BASE_MS,
					.backoff_max_ms = SEND_BACKOFF_MAX_MS };
	graph_error_clear(err);
	enum graph_rc grc = GRAPH_ERR_NOMEM;
	if (text)
		grc = graph_send_message(graph, t->token, t->number.phone_number_id, text, len,
					 &opts, wamid, wamid_sz, err);
	free(text);
	return (int)grc;
}

int send_message(struct db *db, struct graph_client *graph, const uint8_t key[32],
		 const struct send_actor *actor, const struct send_request *in,
		 struct message *out, const char **to_error, json_t **details)
{
	struct prepare_tx t = { .key = key, .actor = actor, .in = in };
	struct record_tx rec = { .org_id = actor->org_id };
	char wamid[GRAPH_WAMID_MAX];
	struct graph_error gerr;
	enum phone_rc prc = phone_normalize(in->to, t.wa_id);
	if (prc != PHONE_OK)
		t.to_error = phone_error_message(prc);
	int rc = db_tx(db, true, prepare_fn, &t);
	if (rc != 0) {
		if (to_error)
			*to_error = t.to_error;
		if (details) {
			*details = t.details;
			t.details = NULL;
		}
		goto out;
	}
	enum graph_rc grc = (enum graph_rc)call_meta(graph, &t, wamid, sizeof wamid, &gerr);
	rec.msg_id = t.msg.id;
	rec.sent = grc == GRAPH_OK;
	rec.wamid = wamid;
	rec.err = &gerr;
	if (!rec.sent)
		failure_text(&gerr, grc, rec.message, sizeof rec.message);
	rc = db_tx(db, true, record_fn, &rec);
	if (rc == 0) {
		*out = rec.out;
		memset(&rec.out, 0, sizeof rec.out);
	} else {
		log_event(LOG_ERROR, "send: outcome not recorded", LF_S("message_id", t.msg.id),
			  LF_S("org_id", actor->org_id), LF_B("sent", rec.sent),
			  LF_S("wamid", rec.sent ? wamid : ""), LF_I("db_rc", rc));
		*out = t.msg;
		memset(&t.msg, 0, sizeof t.msg);
		rc = SEND_STORE_AFTER;
	}
out:
	message_release(&rec.out);
	prepare_reset(&t);
	return rc;
}
