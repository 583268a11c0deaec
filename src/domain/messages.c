#include "domain/messages.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"

#define MSG_COLS                                                                     \
	"id, organization_id, conversation_id, whatsapp_number_id, contact_id, "      \
	"direction, type, text, content, status, wamid, error_code, error_message, "  \
	"created_at, COALESCE(sent_at, 0), COALESCE(delivered_at, 0), "               \
	"COALESCE(read_at, 0), COALESCE(failed_at, 0), cost, currency, "              \
	"pricing_category "

void message_release(struct message *m)
{
	if (!m)
		return;
	free(m->text);
	json_decref(m->content);
	memset(m, 0, sizeof *m);
}

void messages_free(struct message *rows, int n)
{
	if (!rows)
		return;
	for (int i = 0; i < n; i++)
		message_release(&rows[i]);
	free(rows);
}

/* Fill m from row; false on out of memory (m released). */
static bool msg_from_row(const struct db_res *r, int row, struct message *m)
{
	memset(m, 0, sizeof *m);
	str_copy(m->id, sizeof m->id, db_get_text(r, row, 0));
	str_copy(m->organization_id, sizeof m->organization_id, db_get_text(r, row, 1));
	str_copy(m->conversation_id, sizeof m->conversation_id, db_get_text(r, row, 2));
	str_copy(m->whatsapp_number_id, sizeof m->whatsapp_number_id,
		 db_get_text(r, row, 3));
	str_copy(m->contact_id, sizeof m->contact_id, db_get_text(r, row, 4));
	str_copy(m->direction, sizeof m->direction, db_get_text(r, row, 5));
	str_copy(m->type, sizeof m->type, db_get_text(r, row, 6));
	const char *text = db_get_text(r, row, 7);
	if (text && !(m->text = strdup(text)))
		return false;
	const char *content = db_get_text(r, row, 8);
	if (content) /* stored by us or the processor: valid JSON; bad -> null */
		m->content = json_loadb(content, db_get_len(r, row, 8), JSON_DECODE_ANY, NULL);
	str_copy(m->status, sizeof m->status, db_get_text(r, row, 9));
	str_copy(m->wamid, sizeof m->wamid, db_get_text(r, row, 10));
	m->has_error_code = !db_isnull(r, row, 11);
	m->error_code = db_get_int(r, row, 11);
	str_copy(m->error_message, sizeof m->error_message, db_get_text(r, row, 12));
	m->created_at = db_get_int(r, row, 13);
	m->sent_at = db_get_int(r, row, 14);
	m->delivered_at = db_get_int(r, row, 15);
	m->read_at = db_get_int(r, row, 16);
	m->failed_at = db_get_int(r, row, 17);
	m->has_cost = !db_isnull(r, row, 18);
	m->cost_micros = m->has_cost ? db_get_money(r, row, 18) : 0;
	str_copy(m->currency, sizeof m->currency, db_get_text(r, row, 19));
	str_copy(m->pricing_category, sizeof m->pricing_category, db_get_text(r, row, 20));
	return true;
}

/* Exact decimal text of micro-units: 12500000 -> "12.500000". */
static json_t *money_json(int64_t micros)
{
	char buf[40];
	uint64_t mag = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
	snprintf(buf, sizeof buf, "%s%" PRIu64 ".%06" PRIu64, micros < 0 ? "-" : "",
		 mag / 1000000u, mag % 1000000u);
	return json_string(buf);
}

json_t *message_json(const struct message *m)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:O?, s:s, s:o}", "id", m->id,
			      "conversation_id", m->conversation_id, "direction",
			      m->direction, "type", m->type, "text", json_str_or_null(m->text),
			      "content", m->content, "status", m->status, "wamid",
			      json_str_or_null(m->wamid));
	if (!o)
		return NULL;
	json_object_set_new(o, "error_code",
			    m->has_error_code ? json_integer(m->error_code) : json_null());
	json_object_set_new(o, "error_message", json_str_or_null(m->error_message));
	json_object_set_new(o, "created_at", json_time_or_null(m->created_at));
	json_object_set_new(o, "sent_at", json_time_or_null(m->sent_at));
	json_object_set_new(o, "delivered_at", json_time_or_null(m->delivered_at));
	json_object_set_new(o, "read_at", json_time_or_null(m->read_at));
	json_object_set_new(o, "failed_at", json_time_or_null(m->failed_at));
	json_object_set_new(o, "cost", m->has_cost ? money_json(m->cost_micros) : json_null());
	json_object_set_new(o, "currency", json_str_or_null(m->currency));
	json_object_set_new(o, "pricing_category", json_str_or_null(m->pricing_category));
	return o;
}

int messages_find(struct db_conn *c, const char *org_id, const char *id,
		  struct message *out)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	struct db_res *r = NULL;
	int rc = db_exec(c,
			 "SELECT " MSG_COLS "FROM messages WHERE organization_id = $1 AND id = $2",
			 p, 2, &r, NULL);
	if (rc != DB_OK)
		return rc;
	if (db_rows(r) == 0)
		rc = 1;
	else if (!msg_from_row(r, 0, out)) {
		message_release(out);
		rc = DB_ERR;
	}
	db_res_free(r);
	return rc;
}

int messages_list_by_conversation(struct db_conn *c, const char *org_id, const char *conv_id,
				  int limit, int64_t after_at, const char *after_id,
				  struct message **out, int *n)
{
	*out = NULL;
	*n = 0;
	if (!uuid_is_valid(org_id) || !uuid_is_valid(conv_id))
		return DB_OK;
	struct db_param p[] = {
		DBP_TEXT(org_id), DBP_TEXT(conv_id), DBP_INT(after_id ? after_at : INT64_MIN),
		DBP_TEXT(after_id ? after_id : "00000000-0000-0000-0000-000000000000"),
		DBP_INT(limit),
	};
	struct db_res *r = NULL;
	int rc = db_exec(c,
			 "SELECT " MSG_COLS "FROM messages "
			 "WHERE organization_id = $1 AND conversation_id = $2 "
			 "AND (created_at, id) > ($3, $4) "
			 "ORDER BY created_at, id LIMIT $5",
			 p, 5, &r, NULL);
	if (rc != DB_OK)
		return rc;
	int rows = db_rows(r);
	if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out))) {
		rc = DB_ERR;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		if (!msg_from_row(r, i, &(*out)[i])) {
			messages_free(*out, i + 1);
			*out = NULL;
			rc = DB_ERR;
			goto out;
		}
	}
	*n = rows;
out:
	db_res_free(r);
	return rc;
}

int messages_create_outbound(struct db_conn *c, const char *org_id,
			     const struct message_new *in, struct message *out)
{
	char id[37];
	char *content = NULL;
	int rc = DB_ERR;
	if (uuid_v7_str(id) != 0)
		goto out;
	if (in->content && !(content = json_dump_compact(in->content, NULL)))
		goto out;
	struct db_param p[] = {
		DBP_TEXT(id), DBP_TEXT(org_id), DBP_TEXT(in->conversation_id),
		DBP_TEXT(in->whatsapp_number_id), DBP_TEXT(in->contact_id), DBP_TEXT(in->type),
		DBP_TEXT(in->text), DBP_TEXT(content), DBP_INT(time_now_us()),
	};
	rc = db_exec(c,
		     "INSERT INTO messages (id, organization_id, conversation_id, "
		     "whatsapp_number_id, contact_id, direction, type, text, content, "
		     "status, created_at) "
		     "VALUES ($1, $2, $3, $4, $5, 'outbound', $6, $7, $8, 'queued', $9)",
		     p, 9, NULL, NULL);
	if (rc != DB_OK)
		goto out;
	rc = messages_find(c, org_id, id, out);
	if (rc == 1)
		rc = DB_ERR;
out:
	free(content);
	return rc;
}

/* UPDATE of one queued row: 0 done, 1 not found / not queued. */
static int update_queued(struct db_conn *c, const char *sql, const struct db_param *p,
			 int np)
{
	int64_t affected = 0;
	int rc = db_exec(c, sql, p, np, NULL, &affected);
	if (rc != DB_OK)
		return rc;
	return affected > 0 ? 0 : 1;
}

int messages_set_sent(struct db_conn *c, const char *org_id, const char *id,
		      const char *wamid, int64_t at)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id), DBP_TEXT(wamid), DBP_INT(at) };
	return update_queued(c,
			     "UPDATE messages SET status = 'sent', wamid = $3, sent_at = $4 "
			     "WHERE organization_id = $1 AND id = $2 AND status = 'queued'",
			     p, 4);
}

int messages_set_failed(struct db_conn *c, const char *org_id, const char *id,
			bool has_code, int64_t code, const char *message, int64_t at)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id),
				has_code ? DBP_INT(code) : DBP_NULL, DBP_TEXT(message),
				DBP_INT(at) };
	return update_queued(c,
			     "UPDATE messages SET status = 'failed', error_code = $3, "
			     "error_message = $4, failed_at = $5 "
			     "WHERE organization_id = $1 AND id = $2 AND status = 'queued'",
			     p, 5);
}
