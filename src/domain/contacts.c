/* contacts: storage and validation of contacts (see contacts.h). */
#include "domain/contacts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/rows.h"

#define CONTACT_COLS                                                          \
	"id, organization_id, wa_id, bsuid, name, email, tags, attributes, " \
	"opted_out, opted_out_at, created_at, updated_at"

/* ---- rows --------------------------------------------------------------- */

void contact_release(struct contact *c)
{
	if (!c)
		return;
	json_decref(c->tags);
	json_decref(c->attributes);
	memset(c, 0, sizeof *c);
}

void contact_rows_free(struct contact *rows, int n)
{
	if (!rows)
		return;
	for (int i = 0; i < n; i++)
		contact_release(&rows[i]);
	free(rows);
}

/* Parse a stored JSON column; fallback (new ref) when null or unreadable. */
static json_t *json_column(const struct db_res *r, int row, int col, json_t *fallback)
{
	const char *s = db_get_text(r, row, col);
	json_t *v = s ? json_loadb(s, db_get_len(r, row, col), 0, NULL) : NULL;
	if (!v)
		return fallback;
	json_decref(fallback);
	return v;
}

static void row_from_result(const struct db_res *r, int i, void *elem)
{
	struct contact *c = elem;
	memset(c, 0, sizeof *c);
	str_copy(c->id, sizeof c->id, db_get_text(r, i, 0));
	str_copy(c->organization_id, sizeof c->organization_id, db_get_text(r, i, 1));
	str_copy(c->wa_id, sizeof c->wa_id, db_get_text(r, i, 2));
	str_copy(c->bsuid, sizeof c->bsuid, db_get_text(r, i, 3));
	str_copy(c->name, sizeof c->name, db_get_text(r, i, 4));
	str_copy(c->email, sizeof c->email, db_get_text(r, i, 5));
	c->tags = json_column(r, i, 6, json_array());
	c->attributes = json_column(r, i, 7, json_object());
	c->opted_out = db_get_bool(r, i, 8);
	c->opted_out_at = db_get_int(r, i, 9);
	c->created_at = db_get_int(r, i, 10);
	c->updated_at = db_get_int(r, i, 11);
}

/* Run a statement expected to return at most one contact row.
 * 0 (filled), 1 (no row), < 0. */
static int exec_one(struct db_conn *c, const char *sql, const struct db_param *p, int np,
		    struct contact *out)
{
	return rows_first(c, sql, p, np, sizeof *out, row_from_result, out);
}

/* ---- validation --------------------------------------------------------- */

static bool array_has_string(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (!strcmp(json_string_value(v), s))
			return true;
	return false;
}

const char *contacts_check_tags(const json_t *tags, json_t **out)
{
	const char *err = NULL;
	json_t *uniq = json_array();
	size_t i;
	json_t *v;
	if (!uniq)
		return "out of memory";
	if (!json_is_array(tags)) {
		err = "must be an array of strings";
		goto out;
	}
	json_array_foreach(tags, i, v) {
		const char *s = json_string_value(v);
		if (!s) {
			err = "must be an array of strings";
			goto out;
		}
		size_t len = json_utf8_len(s);
		if (len < 1 || len > CONTACTS_TAG_MAX) {
			err = "each tag must be 1 to 64 characters";
			goto out;
		}
		if (array_has_string(uniq, s))
			continue;
		if (json_array_size(uniq) >= CONTACTS_TAGS_MAX) {
			err = "must hold at most 50 distinct tags";
			goto out;
		}
		json_array_append(uniq, v);
	}
out:
	if (err) {
		json_decref(uniq);
		return err;
	}
	*out = uniq;
	return NULL;
}

static bool attribute_value_ok(const json_t *v)
{
	if (json_is_string(v))
		return json_utf8_len(json_string_value(v)) <= CONTACTS_ATTR_VALUE_MAX;
	return json_is_number(v) || json_is_boolean(v) || json_is_null(v);
}

const char *contacts_check_attributes(const json_t *attributes)
{
	const char *key;
	json_t *v;
	size_t len = 0;
	if (!json_is_object(attributes))
		return "must be an object";
	if (json_object_size(attributes) > CONTACTS_ATTR_KEYS_MAX)
		return "must hold at most 50 keys";
	json_object_foreach((json_t *)attributes, key, v) {
		size_t klen = json_utf8_len(key);
		if (klen < 1 || klen > CONTACTS_ATTR_KEY_MAX)
			return "keys must be 1 to 64 characters";
		if (!attribute_value_ok(v))
			return "values must be strings (at most 1024 characters), numbers, "
			       "booleans or null";
	}
	char *text = json_dump_compact(attributes, &len);
	if (!text)
		return "out of memory";
	free(text);
	if (len > CONTACTS_ATTR_BYTES_MAX)
		return "must be at most 8192 bytes as JSON";
	return NULL;
}

/* ---- create / find ------------------------------------------------------ */

static struct db_param text_or_null(const char *s)
{
	return (s && *s) ? DBP_TEXT(s) : DBP_NULL;
}

int contacts_create(struct db_conn *c, const char *org_id, const struct contact_fields *f,
		    struct contact *out)
{
	char id[UUID_STR_LEN];
	char *tags = NULL, *attrs = NULL;
	size_t tags_len = 0, attrs_len = 0;
	int rc = DB_ERR;
	if (!uuid_is_valid(org_id) || !f->wa_id || uuid_v7_str(id) != 0)
		return DB_ERR;
	tags = f->tags ? json_dump_compact(f->tags, &tags_len) : strdup("[]");
	attrs = f->attributes ? json_dump_compact(f->attributes, &attrs_len) : strdup("{}");
	if (!tags || !attrs)
		goto out;
	int64_t now = time_now_us();
	struct db_param p[] = {
		DBP_TEXT(id), DBP_TEXT(org_id), DBP_TEXT(f->wa_id), text_or_null(f->name),
		text_or_null(f->email), DBP_TEXT(tags), DBP_TEXT(attrs), DBP_BOOL(f->opted_out),
		f->opted_out ? DBP_INT(now) : DBP_NULL, DBP_INT(now),
	};
	rc = exec_one(c,
		      "INSERT INTO contacts (id, organization_id, wa_id, name, email, tags, "
		      "attributes, opted_out, opted_out_at, created_at, updated_at) "
		      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) "
		      "RETURNING " CONTACT_COLS,
		      p, (int)(sizeof p / sizeof p[0]), out);
	if (rc == 1)
		rc = DB_ERR;
out:
	free(tags);
	free(attrs);
	return rc;
}

int contacts_find(struct db_conn *c, const char *org_id, const char *id, struct contact *out)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	return exec_one(c,
			"SELECT " CONTACT_COLS " FROM contacts "
			"WHERE organization_id = $1 AND id = $2",
			p, 2, out);
}

int contacts_find_by_wa_id(struct db_conn *c, const char *org_id, const char *wa_id,
			   struct contact *out)
{
	if (!uuid_is_valid(org_id) || !wa_id)
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(wa_id) };
	return exec_one(c,
			"SELECT " CONTACT_COLS " FROM contacts "
			"WHERE organization_id = $1 AND wa_id = $2",
			p, 2, out);
}

/* ---- list --------------------------------------------------------------- */

/* JSON array membership of a tag: the one per-engine condition. PostgreSQL
 * uses the jsonb `?` operator (top-level string element; index-friendly
 * with a GIN index); SQLite has no jsonb, so it walks the array with
 * json_each. Both mean: tags contains the string $k. */
static void tag_condition(struct db_conn *c, struct sqlbuf *b, const char *tag)
{
	if (db_engine(db_conn_db(c)) == DB_ENGINE_PG)
		sqlbuf_cond(b, " AND tags ? ", DBP_TEXT(tag), "::text");
	else
		sqlbuf_cond(b, " AND EXISTS (SELECT 1 FROM json_each(contacts.tags) AS t "
			       "WHERE t.value = ", DBP_TEXT(tag), ")");
}

/* '%' + s lower-cased (ASCII) with \, % and _ escaped + '%' into out. */
static bool like_pattern(const char *s, char *out, size_t outsz)
{
	size_t n = 0;
	if (outsz < 3)
		return false;
	out[n++] = '%';
	for (; *s; s++) {
		char ch = *s;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch + ('a' - 'A'));
		bool esc = ch == '\\' || ch == '%' || ch == '_';
		if (n + (esc ? 2 : 1) + 2 > outsz)
			return false;
		if (esc)
			out[n++] = '\\';
		out[n++] = ch;
	}
	out[n++] = '%';
	out[n] = '\0';
	return true;
}

/* '%' + the digits of q + '%' when q looks like (part of) a phone number:
 * digits and separators only, at least one digit. */
static bool phone_pattern(const char *q, char *out, size_t outsz)
{
	size_t n = 0;
	bool digit = false;
	out[n++] = '%';
	for (; *q; q++) {
		if (*q >= '0' && *q <= '9') {
			if (n + 2 >= outsz)
				return false;
			out[n++] = *q;
			digit = true;
		} else if (!strchr(" +-().", *q)) {
			return false;
		}
	}
	out[n++] = '%';
	out[n] = '\0';
	return digit;
}

static void build_list_query(struct db_conn *c, struct sqlbuf *b, const char *org_id,
			     const struct contact_filter *f, int limit, int64_t after_at,
			     const char *after_id, char *name_pat, size_t name_sz, char *phone_pat,
			     size_t phone_sz)
{
	sqlbuf_add(b, "SELECT " CONTACT_COLS " FROM contacts WHERE ");
	sqlbuf_cond(b, "organization_id = ", DBP_TEXT(org_id), "");
	if (f->q && like_pattern(f->q, name_pat, name_sz)) {
		sqlbuf_cond(b, " AND (lower(name) LIKE ", DBP_TEXT(name_pat), " ESCAPE '\\'");
		if (phone_pattern(f->q, phone_pat, phone_sz))
			sqlbuf_cond(b, " OR wa_id LIKE ", DBP_TEXT(phone_pat), "");
		sqlbuf_add(b, ")");
	}
	if (f->tag)
		tag_condition(c, b, f->tag);
	if (f->has_opted_out)
		sqlbuf_cond(b, " AND opted_out = ", DBP_BOOL(f->opted_out), "");
	sqlbuf_page_desc(b, "created_at", "id", after_at, after_id, limit);
}

int contacts_list(struct db_conn *c, const char *org_id, const struct contact_filter *f,
		  int limit, int64_t after_at, const char *after_id, struct contact **out,
		  int *n)
{
	/* a pattern is at most 2 bytes per query byte plus the two '%' */
	char name_pat[2 * 4 * CONTACTS_Q_MAX + 3], phone_pat[4 * CONTACTS_Q_MAX + 3];
	struct sqlbuf b = SQLBUF_INIT;
	void *rows = NULL;

	*out = NULL;
	*n = 0;
	if (!uuid_is_valid(org_id))
		return DB_OK;
	build_list_query(c, &b, org_id, f, limit, after_at, after_id, name_pat, sizeof name_pat,
			 phone_pat, sizeof phone_pat);
	int rc = rows_select_sqlbuf(c, &b, sizeof **out, row_from_result, &rows, n);
	if (rc == DB_OK)
		*out = rows;
	return rc;
}

/* ---- writes ------------------------------------------------------------- */

/* A write time strictly after the row's last one (the optimistic check
 * below compares updated_at). */
static int64_t next_time(int64_t prev)
{
	int64_t now = time_now_us();
	return now > prev ? now : prev + 1;
}

/* The row was changed between our read and write (PostgreSQL READ
 * COMMITTED): DB_ERR_RETRY lets db_tx run the transaction again. */
static int written_or_retry(int rc)
{
	return rc == 1 ? DB_ERR_RETRY : rc;
}

/* Take *before (read) and give it to the caller or release it. */
static void hand_over(struct contact *row, struct contact *dst)
{
	if (dst)
		*dst = *row;
	else
		contact_release(row);
}

int contacts_update(struct db_conn *c, const char *org_id, const char *id,
		    const struct contact_fields *f, struct contact *before, struct contact *after)
{
	struct contact old;
	char *tags = NULL, *attrs = NULL;
	size_t tags_len = 0, attrs_len = 0;
	int rc = contacts_find(c, org_id, id, &old);
	if (rc != 0)
		return rc;
	rc = DB_ERR;
	tags = json_dump_compact(f->has_tags ? f->tags : old.tags, &tags_len);
	attrs = json_dump_compact(f->has_attributes ? f->attributes : old.attributes,
				  &attrs_len);
	if (!tags || !attrs)
		goto out;
	struct db_param p[] = {
		DBP_TEXT(org_id), DBP_TEXT(id), DBP_INT(old.updated_at),
		f->has_wa_id ? DBP_TEXT(f->wa_id) : text_or_null(old.wa_id),
		text_or_null(f->has_name ? f->name : old.name),
		text_or_null(f->has_email ? f->email : old.email),
		DBP_TEXTN(tags, tags_len), DBP_TEXTN(attrs, attrs_len),
		DBP_INT(next_time(old.updated_at)),
	};
	rc = written_or_retry(exec_one(c,
				       "UPDATE contacts SET wa_id = $4, name = $5, email = $6, "
				       "tags = $7, attributes = $8, updated_at = $9 "
				       "WHERE organization_id = $1 AND id = $2 AND updated_at = $3 "
				       "RETURNING " CONTACT_COLS,
				       p, (int)(sizeof p / sizeof p[0]), after));
out:
	free(tags);
	free(attrs);
	if (rc == 0)
		hand_over(&old, before);
	else
		contact_release(&old);
	return rc;
}

int contacts_set_opt_out(struct db_conn *c, const char *org_id, const char *id,
			 bool opted_out, struct contact *before, struct contact *after)
{
	struct contact old;
	int rc = contacts_find(c, org_id, id, &old);
	if (rc != 0)
		return rc;
	int64_t now = next_time(old.updated_at);
	int64_t at = opted_out ? (old.opted_out ? old.opted_out_at : now) : 0;
	struct db_param p[] = {
		DBP_TEXT(org_id), DBP_TEXT(id), DBP_INT(old.updated_at), DBP_BOOL(opted_out),
		at > 0 ? DBP_INT(at) : DBP_NULL, DBP_INT(now),
	};
	rc = written_or_retry(exec_one(c,
				       "UPDATE contacts SET opted_out = $4, opted_out_at = $5, "
				       "updated_at = $6 "
				       "WHERE organization_id = $1 AND id = $2 AND updated_at = $3 "
				       "RETURNING " CONTACT_COLS,
				       p, (int)(sizeof p / sizeof p[0]), after));
	if (rc == 0)
		hand_over(&old, before);
	else
		contact_release(&old);
	return rc;
}

int contacts_delete(struct db_conn *c, const char *org_id, const char *id,
		    struct contact *before)
{
	struct contact old;
	int64_t affected = 0;
	int rc = contacts_find(c, org_id, id, &old);
	if (rc != 0)
		return rc;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	rc = db_exec(c, "DELETE FROM contacts WHERE organization_id = $1 AND id = $2", p, 2,
		     NULL, &affected);
	if (rc == DB_OK && affected == 0)
		rc = 1;
	if (rc == 0)
		hand_over(&old, before);
	else
		contact_release(&old);
	return rc;
}
