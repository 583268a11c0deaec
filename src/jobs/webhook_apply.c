/* webhook_apply: database effects of parsed webhook changes (see
 * webhook_apply.h and the design note in webhook_processor.h). */
#include "jobs/webhook_apply.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/uuid.h"
#include "db/sqlrepeat.h"
#include "domain/audit.h"
#include "domain/conversations.h"
#include "domain/costs.h"
#include "domain/templates.h"
#include "jobs/webhook_processor.h"

/* ---- contacts ---- */

struct contact_ref {
	char id[37];
	bool opted_out;
};

/* The profile name Meta sent for this sender, if any. */
static const char *profile_name(const struct wh_change *ch, const char *wa_id,
				const char *bsuid)
{
	for (size_t i = 0; i < ch->ncontacts; i++) {
		const struct wh_contact *k = &ch->contacts[i];
		if ((wa_id != NULL && k->wa_id != NULL && strcmp(k->wa_id, wa_id) == 0) ||
		    (bsuid != NULL && k->user_id != NULL && strcmp(k->user_id, bsuid) == 0))
			return k->name;
	}
	return NULL;
}

/* Fill what the row lacks (name, wa_id, bsuid); never overwrite. */
static int contact_fill(struct db_conn *c, const struct db_res *r, const char *wa_id,
			const char *bsuid, const char *name, int64_t now)
{
	bool need = (db_isnull(r, 0, 2) && wa_id != NULL) ||
		    (db_isnull(r, 0, 3) && bsuid != NULL) ||
		    ((db_isnull(r, 0, 4) || db_get_text(r, 0, 4)[0] == '\0') && name != NULL);
	if (!need)
		return DB_OK;
	const struct db_param p[] = { DBP_TEXT(db_get_text(r, 0, 0)), DBP_TEXT(wa_id),
				      DBP_TEXT(bsuid), DBP_TEXT(name), DBP_INT(now) };
	return db_exec(c,
		       "UPDATE contacts SET wa_id = COALESCE(wa_id, $2),"
		       " bsuid = COALESCE(bsuid, $3),"
		       " name = COALESCE(NULLIF(name, ''), $4), updated_at = $5 WHERE id = $1",
		       p, 5, NULL, NULL);
}

/* Find the org's contact by wa_id or bsuid, else create it. */
static int contact_upsert(struct db_conn *c, const char *org_id, const char *wa_id,
			  const char *bsuid, const char *name, int64_t now,
			  struct contact_ref *out)
{
	struct db_res *r = NULL;
	const struct db_param q[] = { DBP_TEXT(org_id), DBP_TEXT(wa_id), DBP_TEXT(bsuid) };
	int rc = db_exec(c,
			 "SELECT id, opted_out, wa_id, bsuid, name FROM contacts"
			 " WHERE organization_id = $1 AND (wa_id = $2 OR bsuid = $3)"
			 " ORDER BY created_at LIMIT 1",
			 q, 3, &r, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(r) == 1) {
		snprintf(out->id, sizeof out->id, "%s", db_get_text(r, 0, 0));
		out->opted_out = db_get_bool(r, 0, 1);
		rc = contact_fill(c, r, wa_id, bsuid, name, now);
		goto out;
	}
	if (uuid_v7_str(out->id) != 0) {
		rc = DB_ERR;
		goto out;
	}
	out->opted_out = false;
	const struct db_param p[] = { DBP_TEXT(out->id), DBP_TEXT(org_id), DBP_TEXT(wa_id),
				      DBP_TEXT(bsuid), DBP_TEXT(name), DBP_INT(now) };
	rc = db_exec(c,
		     "INSERT INTO contacts (id, organization_id, wa_id, bsuid, name, tags,"
		     " attributes, opted_out, created_at, updated_at)"
		     " VALUES ($1, $2, $3, $4, $5, '[]', '{}', FALSE, $6, $6)",
		     p, 6, NULL, NULL);
out:
	db_res_free(r);
	return rc;
}

/* Opt the contact out (stop = true) or back in, with a system audit row. */
static int contact_set_opt_out(struct db_conn *c, const char *org_id, const char *contact_id,
			       bool stop, int64_t now)
{
	int64_t affected = 0;
	const struct db_param p[] = { DBP_TEXT(contact_id), DBP_TEXT(org_id), DBP_BOOL(stop),
				      DBP_INT(now), stop ? DBP_INT(now) : DBP_NULL };
	int rc = db_exec(c,
			 "UPDATE contacts SET opted_out = $3, opted_out_at = $5, updated_at = $4"
			 " WHERE id = $1 AND organization_id = $2 AND opted_out <> $3",
			 p, 5, NULL, &affected);
	if (rc != DB_OK || affected == 0)
		return rc;
	json_t *changes = json_object();
	if (changes == NULL)
		return DB_ERR;
	audit_change_bool(changes, "opted_out", !stop, stop);
	const struct audit_entry e = { .org_id = org_id, .action = stop ? "opt_out" : "opt_in",
				       .table_name = "contacts", .record_id = contact_id,
				       .changes = changes };
	rc = audit_record(c, &e);
	json_decref(changes);
	return rc;
}

bool webhook_is_opt_out_keyword(const char *text, const char *keywords)
{
	const char *kw = keywords != NULL ? keywords : "STOP,SAIR,PARAR,CANCELAR,UNSUBSCRIBE";
	if (text == NULL)
		return false;
	while (isspace((unsigned char)*text))
		text++;
	size_t tlen = strlen(text);
	while (tlen > 0 && isspace((unsigned char)text[tlen - 1]))
		tlen--;
	if (tlen == 0)
		return false;
	while (*kw != '\0') {
		const char *end = strchr(kw, ',');
		size_t klen = end != NULL ? (size_t)(end - kw) : strlen(kw);
		const char *k = kw;
		while (klen > 0 && isspace((unsigned char)*k)) {
			k++;
			klen--;
		}
		while (klen > 0 && isspace((unsigned char)k[klen - 1]))
			klen--;
		if (klen == tlen && strncasecmp(k, text, tlen) == 0)
			return true;
		if (end == NULL)
			break;
		kw = end + 1;
	}
	return false;
}

/* ---- conversations ---- */

/* A new inbound message at ts: activity, window = ts + 24 h, unread + 1.
 * Times only move forward (an older message arriving late keeps them). */
static int conversation_inbound(struct db_conn *c, const char *conv_id, int64_t ts, int64_t now)
{
	const struct db_param p[] = { DBP_TEXT(conv_id), DBP_INT(ts), DBP_INT(ts + WH_WINDOW_US),
				      DBP_INT(now) };
	return db_exec_queued(c,
		       "UPDATE conversations SET"
		       " last_message_at = CASE WHEN last_message_at IS NULL"
		       "   OR last_message_at < $2 THEN $2 ELSE last_message_at END,"
		       " last_inbound_at = CASE WHEN last_inbound_at IS NULL"
		       "   OR last_inbound_at < $2 THEN $2 ELSE last_inbound_at END,"
		       " window_expires_at = CASE WHEN window_expires_at IS NULL"
		       "   OR window_expires_at < $3 THEN $3 ELSE window_expires_at END,"
		       " unread_count = unread_count + 1, updated_at = $4 WHERE id = $1",
		       p, 4, NULL, NULL);
}

/* ---- statuses ---- */

static struct costs_status costs_of(const struct wh_status *s)
{
	return (struct costs_status){
		.wamid = s->id, .billable = s->billable, .pricing_type = s->pricing_type,
		.category = s->pricing_category, .recipient_id = s->recipient_id,
		.at_us = s->timestamp_us,
	};
}

/* COSTS HOOK: price the message once (domain/costs.h); a status that is
 * not a pricing decision, or a message already priced, changes nothing.
 * *priced (may be NULL): this call priced it. */
static int price_status(struct db_conn *c, const struct wh_status *s, bool *priced)
{
	const struct costs_status cs = costs_of(s);
	int rc = costs_price_status(c, NULL, &cs, NULL);
	if (priced != NULL)
		*priced = rc == 0;
	return rc > 0 ? DB_OK : rc; /* not priced / no rate: nothing to undo */
}

static const char status_update_sql[] =
	"UPDATE messages SET"
	" status = CASE"
	"   WHEN status IN ('failed', 'received') THEN status"
	"   WHEN $2 = 'failed' THEN CASE WHEN status IN ('queued', 'sent')"
	"     THEN 'failed' ELSE status END"
	"   WHEN $3 > (CASE status WHEN 'queued' THEN 0 WHEN 'sent' THEN 1"
	"     WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 9 END) THEN $2"
	"   ELSE status END,"
	" sent_at = CASE WHEN $2 = 'sent' THEN COALESCE(sent_at, $4) ELSE sent_at END,"
	" delivered_at = CASE WHEN $2 = 'delivered'"
	"   THEN COALESCE(delivered_at, $4) ELSE delivered_at END,"
	" read_at = CASE WHEN $2 = 'read' THEN COALESCE(read_at, $4) ELSE read_at END,"
	" failed_at = CASE WHEN $2 = 'failed'"
	"   THEN COALESCE(failed_at, $4) ELSE failed_at END,"
	" error_code = COALESCE($5, error_code),"
	" error_message = COALESCE($6, error_message),"
	" pricing_billable = COALESCE($7, pricing_billable),"
	" pricing_type = COALESCE($8, pricing_type),"
	" pricing_category = COALESCE($9, pricing_category),"
	" pricing_model = COALESCE($10, pricing_model),"
	" biz_opaque_callback_data = COALESCE(biz_opaque_callback_data, $11)"
	" WHERE wamid = $1 AND direction = 'outbound'";

/* Move the message with this wamid forward. found NULL: queued (the
 * caller knows the message exists; no pricing here); else *found: a
 * message matched (and it was priced when due). */
static int status_update(struct db_conn *c, const struct wh_status *s, bool *found)
{
	int64_t affected = 0;
	int rank = wh_status_rank(s->status);
	bool err = s->has_error;
	struct db_param p[] = {
		DBP_TEXT(s->id),
		DBP_TEXT(s->status),
		DBP_INT(rank),
		DBP_INT(s->timestamp_us),
		err ? DBP_INT(s->error_code) : DBP_NULL,
		DBP_TEXT(err ? (s->error_details != NULL ? s->error_details
			       : s->error_message != NULL ? s->error_message : s->error_title)
			     : NULL),
		s->billable >= 0 ? DBP_BOOL(s->billable) : DBP_NULL,
		DBP_TEXT(s->pricing_type),
		DBP_TEXT(s->pricing_category),
		DBP_TEXT(s->pricing_model),
		DBP_TEXT(s->biz_opaque_callback_data),
	};
	/* COSTS HOOK: the costs module prices a message here, once, when a
	 * status first reports it billable (pricing_type 'regular', or
	 * billable true without a type): cost = rate(market of the recipient,
	 * pricing_category) in force at s->timestamp_us; leave cost NULL until
	 * then, and never change a cost already set. */
	if (found == NULL)
		return db_exec_queued(c, status_update_sql, p, 11, NULL, NULL);
	int rc = db_exec(c, status_update_sql, p, 11, NULL, &affected);
	*found = affected > 0;
	if (rc == DB_OK && *found)
		rc = price_status(c, s, NULL);
	return rc;
}

/* Keep a status for a wamid not known yet (one row per (wamid, status)). */
static int status_keep(struct db_conn *c, const char *org_id, const struct wh_status *s,
		       int64_t now)
{
	char *payload = json_dumps(s->raw, JSON_COMPACT);
	if (payload == NULL)
		return DB_ERR;
	const struct db_param p[] = { DBP_TEXT(s->id), DBP_TEXT(s->status), DBP_TEXT(org_id),
				      DBP_INT(s->timestamp_us), DBP_TEXT(payload), DBP_INT(now) };
	int rc = db_exec_queued(c,
				"INSERT INTO pending_statuses (wamid, status, organization_id,"
				" status_at, payload, received_at) VALUES ($1, $2, $3, $4, $5, $6)"
				" ON CONFLICT (wamid, status) DO NOTHING",
				p, 6, NULL, NULL);
	free(payload);
	return rc;
}

/* ---- the known-wamid set ---- */

static int known_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wh_known_entry *)a)->wamid,
		      ((const struct wh_known_entry *)b)->wamid);
}

int wh_known_add(struct wh_known *k, const struct wh_change *ch)
{
	for (size_t i = 0; i < ch->nstatuses; i++) {
		if (ch->statuses[i].id == NULL)
			continue;
		if (k->n == k->cap) {
			size_t cap = k->cap > 0 ? k->cap * 2 : 64;
			struct wh_known_entry *v = realloc(k->v, cap * sizeof *v);
			if (v == NULL)
				return DB_ERR;
			k->v = v;
			k->cap = cap;
		}
		k->v[k->n++] = (struct wh_known_entry){ .wamid = ch->statuses[i].id };
	}
	return DB_OK;
}

static struct wh_known_entry *known_find(struct wh_known *k, const char *wamid)
{
	const struct wh_known_entry key = { .wamid = wamid };
	if (k == NULL || wamid == NULL || k->n == 0)
		return NULL;
	return bsearch(&key, k->v, k->n, sizeof key, known_cmp);
}

#define KNOWN_CHUNK 64 /* wamids per lookup statement (power of two) */

/* "SELECT ... WHERE wamid IN ($1, ..., $n)" for a power-of-two n. */
static const char *known_sql(size_t n)
{
	static struct sql_repeat text = SQL_REPEAT_INIT(
		"SELECT wamid, CASE WHEN priced_at IS NULL THEN 1 ELSE 0 END"
		" FROM messages WHERE direction = 'outbound' AND wamid IN (",
		")", 1, 1);
	return sql_repeat_text(&text, n);
}

int wh_known_fetch(struct db_conn *c, struct wh_known *k)
{
	size_t w = 0, done = 0, nres = 0;
	int rc = DB_OK;

	if (k->n == 0)
		return DB_OK;
	qsort(k->v, k->n, sizeof *k->v, known_cmp);
	for (size_t i = 0; i < k->n; i++)
		if (w == 0 || strcmp(k->v[w - 1].wamid, k->v[i].wamid) != 0)
			k->v[w++] = k->v[i];
	k->n = w;
	struct db_res **res = calloc(k->n / KNOWN_CHUNK + 8, sizeof *res);
	struct db_param p[KNOWN_CHUNK];
	if (res == NULL)
		return DB_ERR;
	while (rc == DB_OK && done < k->n) {
		size_t chunk = KNOWN_CHUNK;
		while (chunk > k->n - done)
			chunk /= 2;
		const char *sql = known_sql(chunk);
		if (sql == NULL) {
			rc = DB_ERR;
			break;
		}
		for (size_t i = 0; i < chunk; i++)
			p[i] = DBP_TEXT(k->v[done + i].wamid);
		rc = db_exec_queued(c, sql, p, (int)chunk, &res[nres++], NULL);
		done += chunk;
	}
	if (rc == DB_OK)
		rc = db_pipeline_sync(c);
	for (size_t i = 0; rc == DB_OK && i < nres; i++)
		for (int row = 0; row < db_rows(res[i]); row++) {
			struct wh_known_entry *e = known_find(k, db_get_text(res[i], row, 0));
			if (e != NULL) {
				e->exists = true;
				e->unpriced = db_get_int(res[i], row, 1) != 0;
			}
		}
	for (size_t i = 0; i < nres; i++)
		db_res_free(res[i]);
	free(res);
	return rc;
}

#define KEEP_CHUNK 64 /* rows per multi-row INSERT (power of two) */
#define KEEP_COLS 6

/* "INSERT INTO pending_statuses ... VALUES (...) x n ON CONFLICT DO
 * NOTHING" for a power-of-two n. */
static const char *keep_sql(size_t n)
{
	static struct sql_repeat text = SQL_REPEAT_INIT(
		"INSERT INTO pending_statuses (wamid, status, organization_id, status_at,"
		" payload, received_at) VALUES ",
		" ON CONFLICT (wamid, status) DO NOTHING", KEEP_COLS, 1);
	return sql_repeat_text(&text, n);
}

static void keep_drop(struct wh_known *k)
{
	for (size_t i = 0; i < k->nkeep; i++)
		free(k->keep[i].payload);
	k->nkeep = 0;
}

int wh_known_flush(struct db_conn *c, struct wh_known *k)
{
	struct db_param p[KEEP_CHUNK * KEEP_COLS];
	size_t done = 0;
	int rc = DB_OK;

	while (rc == DB_OK && done < k->nkeep) {
		size_t chunk = KEEP_CHUNK;
		while (chunk > k->nkeep - done)
			chunk /= 2;
		const char *sql = keep_sql(chunk);
		if (sql == NULL) {
			rc = DB_ERR;
			break;
		}
		for (size_t i = 0; i < chunk; i++) {
			const struct wh_keep *w = &k->keep[done + i];
			struct db_param *q = &p[KEEP_COLS * i];
			q[0] = DBP_TEXT(w->wamid);
			q[1] = DBP_TEXT(w->status);
			q[2] = DBP_TEXT(w->org_id[0] != '\0' ? w->org_id : NULL);
			q[3] = DBP_INT(w->status_at);
			q[4] = DBP_TEXT(w->payload);
			q[5] = DBP_INT(w->received_at);
		}
		rc = db_exec_queued(c, sql, p, (int)(KEEP_COLS * chunk), NULL, NULL);
		done += chunk;
	}
	keep_drop(k);
	for (size_t i = 0; i < k->n; i++)
		k->v[i].kept = 0;
	return rc;
}

/* Hold back the pending row of s (unknown wamid, entry e) for the next
 * flush; a second one for the same (wamid, status) is a no-op, as the
 * INSERT's ON CONFLICT DO NOTHING would make it. */
static int status_hold(struct wh_known *k, struct wh_known_entry *e, const char *org_id,
		       const struct wh_status *s, int64_t now)
{
	uint8_t bit = (uint8_t)(1u << s->kind);
	if (e->kept & bit)
		return DB_OK;
	if (k->nkeep == k->keep_cap) {
		size_t cap = k->keep_cap > 0 ? k->keep_cap * 2 : 64;
		struct wh_keep *v = realloc(k->keep, cap * sizeof *v);
		if (v == NULL)
			return DB_ERR;
		k->keep = v;
		k->keep_cap = cap;
	}
	char *payload = json_dumps(s->raw, JSON_COMPACT);
	if (payload == NULL)
		return DB_ERR;
	struct wh_keep *w = &k->keep[k->nkeep++];
	*w = (struct wh_keep){ .wamid = s->id, .status = s->status, .status_at = s->timestamp_us,
			       .received_at = now, .payload = payload };
	snprintf(w->org_id, sizeof w->org_id, "%s", org_id != NULL ? org_id : "");
	e->kept |= bit;
	return DB_OK;
}

void wh_known_clear(struct wh_known *k)
{
	keep_drop(k);
	k->n = 0;
}

void wh_known_free(struct wh_known *k)
{
	keep_drop(k);
	free(k->keep);
	free(k->v);
	*k = (struct wh_known){ 0 };
}

static int apply_status(struct db_conn *c, const char *org_id, const struct wh_status *s,
			int64_t now, struct wh_known *known)
{
	bool found = false;
	char reason[64];
	if (s->kind == WH_STATUS_OTHER)
		return DB_OK; /* "deleted", "warning": nothing moves */
	struct wh_known_entry *e = known_find(known, s->id);
	if (e == NULL) { /* not looked up: ask the database */
		int rc = status_update(c, s, &found);
		if (rc == DB_OK && !found)
			rc = status_keep(c, org_id, s, now);
		return rc;
	}
	if (!e->exists)
		return status_hold(known, e, org_id, s, now);
	int rc = status_update(c, s, NULL);
	const struct costs_status cs = costs_of(s);
	if (rc == DB_OK && e->unpriced && costs_classify(&cs, reason, sizeof reason) !=
						     COSTS_KIND_NONE) {
		bool priced = false;
		rc = price_status(c, s, &priced);
		if (priced)
			e->unpriced = false;
	}
	return rc;
}

int wh_apply_pending(struct db_conn *c, const char *wamid)
{
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_TEXT(wamid) };
	int applied = 0;
	int rc = db_exec(c,
			 "SELECT payload FROM pending_statuses WHERE wamid = $1"
			 " ORDER BY status_at, status",
			 p, 1, &r, NULL);
	if (rc != DB_OK || db_rows(r) == 0)
		goto out;
	for (int i = 0; i < db_rows(r) && rc == DB_OK; i++) {
		const char *text = db_get_text(r, i, 0);
		json_t *o = json_loads(text != NULL ? text : "", 0, NULL);
		struct wh_status s;
		bool found = false;
		if (o != NULL && webhook_parse_status(o, &s, NULL, 0) == WEBHOOK_PARSE_OK &&
		    s.kind != WH_STATUS_OTHER) {
			rc = status_update(c, &s, &found);
			applied += found ? 1 : 0;
		}
		json_decref(o);
	}
	if (rc == DB_OK)
		rc = db_exec(c, "DELETE FROM pending_statuses WHERE wamid = $1", p, 1, NULL, NULL);
out:
	db_res_free(r);
	return rc != DB_OK ? rc : applied;
}

int webhook_apply_pending(struct db_conn *c, const char *wamid)
{
	return wh_apply_pending(c, wamid);
}

/* ---- inbound messages ---- */

static int message_known(struct db_conn *c, const char *wamid, bool *known)
{
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_TEXT(wamid) };
	int rc = db_exec(c, "SELECT 1 FROM messages WHERE wamid = $1", p, 1, &r, NULL);
	*known = rc == DB_OK && db_rows(r) > 0;
	db_res_free(r);
	return rc;
}

struct inbound_ids {
	const char *org_id, *number_id;
	char contact_id[37], conv_id[37];
};

static int message_insert(struct db_conn *c, const struct inbound_ids *ids,
			  const struct wh_message *m, bool *inserted)
{
	char id[37];
	int64_t affected = 0;
	char *content = m->content != NULL ? json_dumps(m->content, JSON_COMPACT) : NULL;
	if (uuid_v7_str(id) != 0) {
		free(content);
		return DB_ERR;
	}
	const struct db_param p[] = {
		DBP_TEXT(id), DBP_TEXT(ids->org_id), DBP_TEXT(ids->conv_id),
		DBP_TEXT(ids->number_id), DBP_TEXT(ids->contact_id), DBP_TEXT(m->type_name),
		DBP_TEXT(m->text), DBP_TEXT(content), DBP_TEXT(m->id), DBP_INT(m->timestamp_us),
	};
	int rc = db_exec(c,
			 "INSERT INTO messages (id, organization_id, conversation_id,"
			 " whatsapp_number_id, contact_id, direction, type, text, content, status,"
			 " wamid, created_at)"
			 " VALUES ($1, $2, $3, $4, $5, 'inbound', $6, $7, $8, 'received', $9, $10)"
			 " ON CONFLICT (wamid) DO NOTHING",
			 p, 10, NULL, &affected);
	free(content);
	*inserted = affected > 0;
	return rc;
}

static int apply_inbound(struct db_conn *c, const struct wa_number *n,
			 const struct wh_change *ch, const struct wh_message *m,
			 const char *keywords, int64_t now)
{
	struct inbound_ids ids = { .org_id = n->organization_id, .number_id = n->id };
	struct contact_ref who;
	bool known = false, inserted = false;
	int rc = message_known(c, m->id, &known);
	if (rc != DB_OK || known)
		return rc; /* a duplicate delivery changes nothing */
	rc = contact_upsert(c, n->organization_id, m->from, m->from_user_id,
			    profile_name(ch, m->from, m->from_user_id), now, &who);
	if (rc == DB_OK) {
		memcpy(ids.contact_id, who.id, sizeof ids.contact_id);
		rc = conversations_open_id(c, n->organization_id, who.id, n->id, now,
					   ids.conv_id);
	}
	if (rc == DB_OK)
		rc = message_insert(c, &ids, m, &inserted);
	if (rc != DB_OK || !inserted)
		return rc;
	rc = conversation_inbound(c, ids.conv_id, m->timestamp_us, now);
	if (rc == DB_OK) {
		int applied = wh_apply_pending(c, m->id);
		rc = applied < 0 ? applied : DB_OK;
	}
	if (rc == DB_OK && !who.opted_out && m->type == WH_MSG_TEXT &&
	    webhook_is_opt_out_keyword(m->text, keywords))
		rc = contact_set_opt_out(c, n->organization_id, who.id, true, now);
	return rc;
}

int wh_apply_messages(struct db_conn *c, const struct wa_number *n,
		      const struct wh_change *ch, const char *opt_out_keywords, int64_t now,
		      struct wh_known *known)
{
	int rc = DB_OK;
	/* an inbound message reads pending_statuses (wh_apply_pending) */
	if (ch->nmessages > 0 && known != NULL && known->nkeep > 0)
		rc = wh_known_flush(c, known);
	for (size_t i = 0; i < ch->nmessages && rc == DB_OK; i++)
		rc = apply_inbound(c, n, ch, &ch->messages[i], opt_out_keywords, now);
	for (size_t i = 0; i < ch->nstatuses && rc == DB_OK; i++)
		rc = apply_status(c, n->organization_id, &ch->statuses[i], now, known);
	return rc;
}

int wh_apply_preferences(struct db_conn *c, const struct wa_number *n,
			 const struct wh_change *ch, int64_t now)
{
	int rc = DB_OK;
	for (size_t i = 0; i < ch->npreferences && rc == DB_OK; i++) {
		const struct wh_preference *u = &ch->preferences[i];
		struct contact_ref who;
		bool stop = strcasecmp(u->value, "stop") == 0;
		if (!stop && strcasecmp(u->value, "resume") != 0)
			continue;
		if (u->wa_id == NULL && u->user_id == NULL)
			continue;
		rc = contact_upsert(c, n->organization_id, u->wa_id, u->user_id,
				    profile_name(ch, u->wa_id, u->user_id), now, &who);
		if (rc == DB_OK)
			rc = contact_set_opt_out(c, n->organization_id, who.id, stop, now);
	}
	return rc;
}

/* ---- templates and numbers ---- */

int wh_apply_template(struct db_conn *c, const struct wa_number *n,
		      const struct wh_change *ch, int64_t now, int64_t *matched)
{
	const struct wh_template_event *t = &ch->tmpl;
	const char *status = NULL, *reason = NULL, *quality = NULL, *category = NULL;
	*matched = 0;
	if (ch->kind == WH_CHANGE_TEMPLATE_STATUS) {
		status = templates_status_from_meta(t->event);
		if (status == NULL)
			return DB_OK; /* an event we do not map (e.g. FLAGGED) */
		if (strcmp(status, "REJECTED") == 0 && t->reason != NULL &&
		    strcasecmp(t->reason, "NONE") != 0)
			reason = t->reason;
	} else if (ch->kind == WH_CHANGE_TEMPLATE_QUALITY) {
		quality = t->new_quality;
	} else if (t->new_category != NULL && templates_category_valid(t->new_category)) {
		category = t->new_category;
	}
	if (status == NULL && quality == NULL && category == NULL)
		return DB_OK;
	const struct db_param p[] = {
		DBP_TEXT(n->organization_id), DBP_TEXT(n->id),
		DBP_TEXT(t->meta_template_id[0] != '\0' ? t->meta_template_id : NULL),
		DBP_TEXT(t->name), DBP_TEXT(t->language), DBP_TEXT(status), DBP_TEXT(reason),
		DBP_TEXT(quality), DBP_TEXT(category), DBP_INT(now),
	};
	/* rejected_reason follows every status change: set on REJECTED,
	 * cleared by any other status. updated_at strictly grows (the API's
	 * optimistic concurrency). */
	return db_exec(c,
		       "UPDATE templates SET"
		       " status = COALESCE($6, status),"
		       " rejected_reason = CASE WHEN $6 IS NULL THEN rejected_reason ELSE $7 END,"
		       " quality_score = COALESCE($8, quality_score),"
		       " category = COALESCE($9, category),"
		       " meta_template_id = COALESCE(meta_template_id, $3),"
		       " updated_at = CASE WHEN updated_at >= $10 THEN updated_at + 1 ELSE $10 END"
		       " WHERE organization_id = $1 AND whatsapp_number_id = $2"
		       " AND (meta_template_id = $3 OR (meta_template_id IS NULL"
		       "   AND name = $4 AND language = $5))",
		       p, 10, NULL, matched);
}

bool wh_display_matches(const struct wa_number *n, const char *display)
{
	const char *a = n->display_phone_number, *b = display;
	if (display == NULL || display[0] == '\0')
		return true;
	for (;;) {
		while (*a != '\0' && !isdigit((unsigned char)*a))
			a++;
		while (*b != '\0' && !isdigit((unsigned char)*b))
			b++;
		if (*a == '\0' || *b == '\0')
			return *a == *b;
		if (*a++ != *b++)
			return false;
	}
}

int wh_apply_phone_quality(struct db_conn *c, const struct wa_number *n,
			   const struct wh_change *ch, int64_t now)
{
	const char *ev = ch->phone.event;
	bool upgrade = strcasecmp(ev, "THROUGHPUT_UPGRADE") == 0;
	/* FLAGGED / UNFLAGGED (and other quality events) are the rating; tier
	 * and throughput events leave it as it was. */
	bool rating = !upgrade && strcasecmp(ev, "UPGRADE") != 0 &&
		      strcasecmp(ev, "DOWNGRADE") != 0;
	const struct db_param p[] = { DBP_TEXT(n->id), DBP_TEXT(rating ? ev : NULL),
				      DBP_TEXT(ch->phone.limit_tier), DBP_BOOL(upgrade),
				      DBP_INT(now), DBP_INT(NUMBERS_MAX_MPS) };
	return db_exec(c,
		       "UPDATE whatsapp_numbers SET"
		       " quality_rating = COALESCE($2, quality_rating),"
		       " messaging_limit_tier = COALESCE($3, messaging_limit_tier),"
		       " throughput_mps = CASE WHEN $4 THEN $6 ELSE throughput_mps END,"
		       " updated_at = $5 WHERE id = $1 AND deleted_at IS NULL",
		       p, 6, NULL, NULL);
}
