#include "domain/orgs.h"

#include <ctype.h>

#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"

#define ORG_COLS "id, name, slug, timezone, created_at, updated_at"

const char *orgs_check_slug(const char *slug)
{
	size_t n = strlen(slug);
	if (n < 2 || n > 63)
		return "must be 2 to 63 characters";
	if (!isalnum((unsigned char)slug[0]))
		return "must start with a letter or digit";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)slug[i];
		if (!(islower(ch) || isdigit(ch) || ch == '-'))
			return "may contain only lower-case letters, digits and '-'";
	}
	return NULL;
}

const char *orgs_check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return "must not be empty";
	if (n > 200)
		return "must be at most 200 characters";
	return NULL;
}

static void org_from_row(const struct db_res *r, int row, struct org *o)
{
	str_copy(o->id, sizeof o->id, db_get_text(r, row, 0));
	str_copy(o->name, sizeof o->name, db_get_text(r, row, 1));
	str_copy(o->slug, sizeof o->slug, db_get_text(r, row, 2));
	str_copy(o->timezone, sizeof o->timezone, db_get_text(r, row, 3));
	o->created_at = db_get_int(r, row, 4);
	o->updated_at = db_get_int(r, row, 5);
}

int orgs_create(struct db_conn *c, const char *name, const char *slug,
		const char *timezone, struct org *out)
{
	struct org o = { 0 };
	if (uuid_v7_str(o.id) != 0)
		return DB_ERR;
	str_copy(o.name, sizeof o.name, name);
	str_copy(o.slug, sizeof o.slug, slug);
	str_copy(o.timezone, sizeof o.timezone, timezone ? timezone : "UTC");
	o.created_at = o.updated_at = time_now_us();
	struct db_param p[] = { DBP_TEXT(o.id), DBP_TEXT(o.name), DBP_TEXT(o.slug),
				DBP_TEXT(o.timezone), DBP_INT(o.created_at),
				DBP_INT(o.updated_at) };
	int rc = db_exec(c, "INSERT INTO organizations (" ORG_COLS ") "
			    "VALUES ($1, $2, $3, $4, $5, $6)",
			 p, 6, NULL, NULL);
	if (rc == DB_OK)
		*out = o;
	return rc;
}

static int find_one(struct db_conn *c, const char *sql, const char *arg,
		    struct org *out)
{
	struct db_param p[] = { DBP_TEXT(arg) };
	struct db_res *r = NULL;
	int rc = db_exec(c, sql, p, 1, &r, NULL);
	if (rc != DB_OK)
		return rc;
	rc = 1;
	if (db_rows(r) > 0) {
		org_from_row(r, 0, out);
		rc = 0;
	}
	db_res_free(r);
	return rc;
}

int orgs_find_by_slug(struct db_conn *c, const char *slug, struct org *out)
{
	return find_one(c, "SELECT " ORG_COLS " FROM organizations WHERE slug = $1",
			slug, out);
}

int orgs_find(struct db_conn *c, const char *id, struct org *out)
{
	if (!uuid_is_valid(id))
		return 1;
	return find_one(c, "SELECT " ORG_COLS " FROM organizations WHERE id = $1",
			id, out);
}

int orgs_count(struct db_conn *c, int64_t *out)
{
	struct db_res *r = NULL;
	int rc = db_exec(c, "SELECT COUNT(*) FROM organizations", NULL, 0, &r, NULL);
	if (rc != DB_OK)
		return rc;
	*out = db_get_int(r, 0, 0);
	db_res_free(r);
	return DB_OK;
}
