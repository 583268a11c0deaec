#include "domain/orgs.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/rows.h"

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

static void org_from_row(const struct db_res *r, int row, void *elem)
{
	struct org *o = elem;
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
	return rows_first(c, sql, p, 1, sizeof *out, org_from_row, out);
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

static bool tz_part_ok(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!(isalnum(ch) || ch == '_' || ch == '-' || ch == '+'))
			return false;
	}
	return true;
}

const char *orgs_check_timezone(const char *tz)
{
	static const char *const areas[] = { "Africa",   "America",   "Antarctica",
					     "Arctic",   "Asia",      "Atlantic",
					     "Australia", "Europe",   "Indian",
					     "Pacific",  "Etc" };
	static const char *msg =
		"must be \"UTC\" or an IANA time zone name such as \"America/Sao_Paulo\"";
	size_t len = strlen(tz);
	if (!strcmp(tz, "UTC"))
		return NULL;
	if (len > 63)
		return msg;
	const char *slash = strchr(tz, '/');
	if (!slash)
		return msg;
	size_t area_len = (size_t)(slash - tz);
	bool known = false;
	for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++)
		if (strlen(areas[i]) == area_len && !strncmp(tz, areas[i], area_len))
			known = true;
	if (!known)
		return msg;
	const char *p = slash + 1;
	for (;;) {
		const char *next = strchr(p, '/');
		size_t n = next ? (size_t)(next - p) : strlen(p);
		if (!tz_part_ok(p, n))
			return msg;
		if (!next)
			break;
		p = next + 1;
	}
	return NULL;
}

int orgs_update(struct db_conn *c, const char *id, const char *name,
		const char *timezone, struct org *before, struct org *out)
{
	if (!uuid_is_valid(id))
		return 1;
	int64_t now = time_now_us();
	/* Touch first: takes the row lock (PostgreSQL) so the "before" we read
	 * next is exactly what this update replaces. */
	struct db_param lp[] = { DBP_TEXT(id), DBP_INT(now) };
	int64_t affected = 0;
	int rc = db_exec(c, "UPDATE organizations SET updated_at = $2 WHERE id = $1",
			 lp, 2, NULL, &affected);
	if (rc != DB_OK)
		return rc;
	if (affected == 0)
		return 1;
	struct org o;
	rc = orgs_find(c, id, &o);
	if (rc != 0)
		return rc;
	if (before)
		*before = o;
	if (name)
		str_copy(o.name, sizeof o.name, name);
	if (timezone)
		str_copy(o.timezone, sizeof o.timezone, timezone);
	struct db_param p[] = { DBP_TEXT(id), DBP_TEXT(o.name), DBP_TEXT(o.timezone) };
	rc = db_exec(c, "UPDATE organizations SET name = $2, timezone = $3 WHERE id = $1",
		     p, 3, NULL, NULL);
	if (rc == DB_OK)
		*out = o;
	return rc;
}

int orgs_list(struct db_conn *c, int limit, int64_t after_at, const char *after_id,
	      struct org **out, int *n)
{
	struct db_param p[] = { DBP_INT(after_at), DBP_TEXT(after_id), DBP_INT(limit) };
	void *rows = NULL;
	int rc = rows_select(c,
			     "SELECT " ORG_COLS " FROM organizations "
			     "WHERE (created_at, id) < ($1, $2) "
			     "ORDER BY created_at DESC, id DESC LIMIT $3",
			     p, 3, sizeof **out, org_from_row, &rows, n);
	if (rc == DB_OK)
		*out = rows;
	return rc;
}
