/* templates: storage of Meta message templates (see templates.h). */
#include "domain/templates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/rows.h"

#define TEMPLATE_COLS                                                           \
	"id, organization_id, whatsapp_number_id, name, language, category, "    \
	"parameter_format, components, status, rejected_reason, quality_score, " \
	"meta_template_id, created_at, updated_at"

static const char *const STATUSES[] = {
	"DRAFT", "PENDING", "APPROVED", "REJECTED", "PAUSED", "DISABLED", "ARCHIVED", "DELETED",
};

static const char *const CATEGORIES[] = { "MARKETING", "UTILITY", "AUTHENTICATION" };

/* Meta's template statuses that are not ours, and what they become. */
static const struct {
	const char *meta, *ours;
} META_STATUS_MAP[] = {
	{ "IN_APPEAL", "PENDING" },
	{ "PENDING_DELETION", "DELETED" },
	{ "LIMIT_EXCEEDED", "DISABLED" },
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	if (!s)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

bool templates_status_valid(const char *status)
{
	return in_list(status, STATUSES, sizeof STATUSES / sizeof STATUSES[0]);
}

bool templates_category_valid(const char *category)
{
	return in_list(category, CATEGORIES, sizeof CATEGORIES / sizeof CATEGORIES[0]);
}

bool templates_editable(const char *status)
{
	return status && (!strcmp(status, "DRAFT") || !strcmp(status, "REJECTED"));
}

const char *templates_status_from_meta(const char *meta_status)
{
	if (!meta_status)
		return NULL;
	for (size_t i = 0; i < sizeof STATUSES / sizeof STATUSES[0]; i++)
		if (!strcasecmp(meta_status, STATUSES[i]))
			return STATUSES[i];
	for (size_t i = 0; i < sizeof META_STATUS_MAP / sizeof META_STATUS_MAP[0]; i++)
		if (!strcasecmp(meta_status, META_STATUS_MAP[i].meta))
			return META_STATUS_MAP[i].ours;
	return NULL;
}

void template_row_release(struct template_row *t)
{
	if (!t)
		return;
	json_decref(t->components);
	memset(t, 0, sizeof *t);
}

void template_rows_free(struct template_row *rows, int n)
{
	if (!rows)
		return;
	for (int i = 0; i < n; i++)
		template_row_release(&rows[i]);
	free(rows);
}

/* "" -> SQL NULL, else the text. */
static struct db_param text_or_null(const char *s)
{
	return (s && *s) ? DBP_TEXT(s) : DBP_NULL;
}

static void row_from_result(const struct db_res *r, int i, void *elem)
{
	struct template_row *t = elem;
	str_copy(t->id, sizeof t->id, db_get_text(r, i, 0));
	str_copy(t->organization_id, sizeof t->organization_id, db_get_text(r, i, 1));
	str_copy(t->whatsapp_number_id, sizeof t->whatsapp_number_id, db_get_text(r, i, 2));
	str_copy(t->name, sizeof t->name, db_get_text(r, i, 3));
	str_copy(t->language, sizeof t->language, db_get_text(r, i, 4));
	str_copy(t->category, sizeof t->category, db_get_text(r, i, 5));
	str_copy(t->parameter_format, sizeof t->parameter_format, db_get_text(r, i, 6));
	const char *comp = db_get_text(r, i, 7);
	t->components = comp ? json_loadb(comp, db_get_len(r, i, 7), 0, NULL) : NULL;
	if (!t->components)
		t->components = json_array();
	str_copy(t->status, sizeof t->status, db_get_text(r, i, 8));
	str_copy(t->rejected_reason, sizeof t->rejected_reason, db_get_text(r, i, 9));
	str_copy(t->quality_score, sizeof t->quality_score, db_get_text(r, i, 10));
	str_copy(t->meta_template_id, sizeof t->meta_template_id, db_get_text(r, i, 11));
	t->created_at = db_get_int(r, i, 12);
	t->updated_at = db_get_int(r, i, 13);
}

int templates_create(struct db_conn *c, const char *org_id, struct template_row *t)
{
	size_t comp_len = 0;
	char *comp = NULL;
	int rc = DB_ERR;
	if (!uuid_is_valid(org_id) || !uuid_is_valid(t->whatsapp_number_id))
		return DB_ERR_CHECK;
	if (uuid_v7_str(t->id) != 0)
		return DB_ERR;
	comp = json_dump_compact(t->components, &comp_len);
	if (!comp)
		goto out;
	str_copy(t->organization_id, sizeof t->organization_id, org_id);
	if (!t->status[0])
		str_copy(t->status, sizeof t->status, "DRAFT");
	t->created_at = t->updated_at = time_now_us();
	struct db_param p[] = {
		DBP_TEXT(t->id), DBP_TEXT(org_id), DBP_TEXT(t->whatsapp_number_id),
		DBP_TEXT(t->name), DBP_TEXT(t->language), DBP_TEXT(t->category),
		text_or_null(t->parameter_format), DBP_TEXTN(comp, comp_len),
		DBP_TEXT(t->status), text_or_null(t->rejected_reason),
		text_or_null(t->quality_score), text_or_null(t->meta_template_id),
		DBP_INT(t->created_at), DBP_INT(t->updated_at),
	};
	rc = db_exec(c,
		     "INSERT INTO templates (" TEMPLATE_COLS ") VALUES "
		     "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
		     p, 14, NULL, NULL);
out:
	free(comp);
	return rc;
}

/* Run a SELECT of TEMPLATE_COLS expected to give at most one row. */
static int find_one(struct db_conn *c, const char *sql, const struct db_param *p, int np,
		    struct template_row *out)
{
	return rows_first(c, sql, p, np, sizeof *out, row_from_result, out);
}

int templates_find(struct db_conn *c, const char *org_id, const char *id,
		   struct template_row *out)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	return find_one(c,
			"SELECT " TEMPLATE_COLS " FROM templates "
			"WHERE organization_id = $1 AND id = $2",
			p, 2, out);
}

int templates_find_by_key(struct db_conn *c, const char *org_id, const char *number_id,
			  const char *name, const char *language, struct template_row *out)
{
	if (!uuid_is_valid(org_id) || !uuid_is_valid(number_id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(number_id), DBP_TEXT(name),
				DBP_TEXT(language) };
	return find_one(c,
			"SELECT " TEMPLATE_COLS " FROM templates "
			"WHERE organization_id = $1 AND whatsapp_number_id = $2 "
			"AND name = $3 AND language = $4",
			p, 4, out);
}

/* ---- list ------------------------------------------------------------- */

static void build_list_query(struct sqlbuf *b, const char *org_id,
			     const struct template_filter *f, int limit, int64_t after_at,
			     const char *after_id)
{
	sqlbuf_add(b, "SELECT " TEMPLATE_COLS " FROM templates WHERE TRUE");
	sqlbuf_cond(b, " AND organization_id = ", DBP_TEXT(org_id), "");
	sqlbuf_eq(b, "status", f->status);
	sqlbuf_eq(b, "category", f->category);
	sqlbuf_eq(b, "language", f->language);
	sqlbuf_eq(b, "name", f->name);
	sqlbuf_eq(b, "whatsapp_number_id", f->number_id);
	sqlbuf_page_desc(b, "created_at", "id", after_at, after_id, limit);
}

int templates_list(struct db_conn *c, const char *org_id, const struct template_filter *f,
		   int limit, int64_t after_at, const char *after_id,
		   struct template_row **out, int *n)
{
	struct sqlbuf b = SQLBUF_INIT;
	void *rows = NULL;

	if (f->number_id && !uuid_is_valid(f->number_id)) {
		*out = NULL;
		*n = 0;
		return DB_OK;
	}
	build_list_query(&b, org_id, f, limit, after_at, after_id);
	int rc = rows_select_sqlbuf(c, &b, sizeof **out, row_from_result, &rows, n);
	if (rc == DB_OK)
		*out = rows;
	return rc;
}

/* ---- writes ----------------------------------------------------------- */

/* After a conditional write touched no row: 1 when the row is gone,
 * TEMPLATES_STALE when it is there but changed, < 0 on error. */
static int why_unchanged(struct db_conn *c, const char *org_id, const char *id)
{
	struct template_row now;
	int rc = templates_find(c, org_id, id, &now);
	if (rc == 0) {
		template_row_release(&now);
		return TEMPLATES_STALE;
	}
	return rc;
}

int templates_save(struct db_conn *c, const char *org_id, struct template_row *t,
		   int64_t expect_at)
{
	size_t comp_len = 0;
	char *comp = NULL;
	int64_t affected = 0;
	int rc = DB_ERR;
	if (!uuid_is_valid(org_id) || !uuid_is_valid(t->id))
		return 1;
	comp = json_dump_compact(t->components, &comp_len);
	if (!comp)
		goto out;
	int64_t now = time_now_us();
	if (now <= expect_at)
		now = expect_at + 1;
	struct db_param p[] = {
		DBP_TEXT(org_id), DBP_TEXT(t->id), DBP_INT(expect_at),
		DBP_TEXT(t->name), DBP_TEXT(t->language), DBP_TEXT(t->category),
		text_or_null(t->parameter_format), DBP_TEXTN(comp, comp_len),
		DBP_TEXT(t->status), text_or_null(t->rejected_reason),
		text_or_null(t->quality_score), text_or_null(t->meta_template_id),
		DBP_INT(now),
	};
	rc = db_exec(c,
		     "UPDATE templates SET name = $4, language = $5, category = $6, "
		     "parameter_format = $7, components = $8, status = $9, "
		     "rejected_reason = $10, quality_score = $11, meta_template_id = $12, "
		     "updated_at = $13 "
		     "WHERE organization_id = $1 AND id = $2 AND updated_at = $3",
		     p, 13, NULL, &affected);
	if (rc != DB_OK)
		goto out;
	if (affected == 0) {
		rc = why_unchanged(c, org_id, t->id);
		goto out;
	}
	t->updated_at = now;
out:
	free(comp);
	return rc;
}

int templates_delete(struct db_conn *c, const char *org_id, const char *id,
		     int64_t expect_at)
{
	int64_t affected = 0;
	if (!uuid_is_valid(org_id) || !uuid_is_valid(id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id), DBP_INT(expect_at) };
	int rc = db_exec(c,
			 "DELETE FROM templates "
			 "WHERE organization_id = $1 AND id = $2 AND updated_at = $3",
			 p, 3, NULL, &affected);
	if (rc != DB_OK)
		return rc;
	return affected == 0 ? why_unchanged(c, org_id, id) : 0;
}
