#include "domain/users.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/rows.h"

const char *users_check_email(const char *email)
{
	size_t n = strlen(email);
	if (n < 3 || n > 254)
		return "must be an email address of at most 254 characters";
	const char *at = strchr(email, '@');
	if (!at || at == email || strchr(at + 1, '@'))
		return "must be an email address";
	const char *domain = at + 1;
	if (!*domain || domain[0] == '.' || !strchr(domain, '.') ||
	    email[n - 1] == '.')
		return "must be an email address";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)email[i];
		if (ch <= ' ' || ch == 0x7f || ch == '<' || ch == '>' || ch == ',')
			return "must be an email address";
	}
	return NULL;
}

const char *users_check_password(const char *password)
{
	size_t n = strlen(password);
	if (n < 8)
		return "must be at least 8 characters";
	if (n > 1024)
		return "must be at most 1024 bytes";
	return NULL;
}

const char *users_check_full_name(const char *name)
{
	size_t n = strlen(name);
	if (n > 200)
		return "must be at most 200 characters";
	return NULL;
}

bool users_normalize_email(const char *email, char *out, size_t outlen)
{
	size_t n = strlen(email);
	if (n >= outlen)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)email[i]);
	out[n] = '\0';
	return true;
}

int users_create(struct db_conn *c, const char *org_id, const char *email,
		 const char *password_hash, const char *full_name, enum role role,
		 struct user *out)
{
	struct user u = { 0 };
	if (uuid_v7_str(u.id) != 0)
		return DB_ERR;
	str_copy(u.organization_id, sizeof u.organization_id, org_id);
	if (!users_normalize_email(email, u.email, sizeof u.email))
		return DB_ERR_CHECK;
	str_copy(u.full_name, sizeof u.full_name, full_name);
	u.role = role;
	u.is_active = true;
	u.created_at = u.updated_at = time_now_us();
	struct db_param p[] = {
		DBP_TEXT(u.id), DBP_TEXT(u.organization_id), DBP_TEXT(u.email),
		DBP_TEXT(password_hash), DBP_TEXT(u.full_name),
		DBP_TEXT(role_name(role)), DBP_BOOL(true), DBP_INT(u.created_at),
		DBP_INT(u.updated_at),
	};
	int rc = db_exec(c,
			 "INSERT INTO users (id, organization_id, email, password_hash, "
			 "full_name, role, is_active, created_at, updated_at) "
			 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			 p, 9, NULL, NULL);
	if (rc == DB_OK)
		*out = u;
	return rc;
}

#define USER_COLS                                                              \
	"id, organization_id, email, full_name, role, is_active, "              \
	"COALESCE(last_login_at, 0), created_at, updated_at"

static void user_from_row(const struct db_res *r, int row, void *elem)
{
	struct user *u = elem;
	str_copy(u->id, sizeof u->id, db_get_text(r, row, 0));
	str_copy(u->organization_id, sizeof u->organization_id, db_get_text(r, row, 1));
	str_copy(u->email, sizeof u->email, db_get_text(r, row, 2));
	str_copy(u->full_name, sizeof u->full_name, db_get_text(r, row, 3));
	const char *role = db_get_text(r, row, 4);
	u->role = role ? role_parse(role) : ROLE_NONE;
	u->is_active = db_get_bool(r, row, 5);
	u->last_login_at = db_get_int(r, row, 6);
	u->created_at = db_get_int(r, row, 7);
	u->updated_at = db_get_int(r, row, 8);
}

int users_find(struct db_conn *c, const char *org_id, const char *id,
	       struct user *out)
{
	if (!uuid_is_valid(id) || !uuid_is_valid(org_id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	return rows_first(c,
			  "SELECT " USER_COLS " FROM users "
			  "WHERE organization_id = $1 AND id = $2",
			  p, 2, sizeof *out, user_from_row, out);
}

int users_list(struct db_conn *c, const char *org_id, int limit, int64_t after_at,
	       const char *after_id, struct user **out, int *n)
{
	struct db_param p[] = { DBP_TEXT(org_id), DBP_INT(after_at), DBP_TEXT(after_id),
				DBP_INT(limit) };
	void *rows = NULL;
	int rc = rows_select(c,
			     "SELECT " USER_COLS " FROM users WHERE organization_id = $1 "
			     "AND (created_at, id) < ($2, $3) "
			     "ORDER BY created_at DESC, id DESC LIMIT $4",
			     p, 4, sizeof **out, user_from_row, &rows, n);
	if (rc == DB_OK)
		*out = rows;
	return rc;
}

/* Bump updated_at of the row: takes its lock (PostgreSQL) so what we read
 * next is exactly what the update replaces. 0, 1 not found, < 0. */
static int users_touch(struct db_conn *c, const char *org_id, const char *id,
		       int64_t now)
{
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id), DBP_INT(now) };
	int64_t affected = 0;
	int rc = db_exec(c,
			 "UPDATE users SET updated_at = $3 "
			 "WHERE organization_id = $1 AND id = $2",
			 p, 3, NULL, &affected);
	if (rc != DB_OK)
		return rc;
	return affected == 0 ? 1 : 0;
}

int users_update(struct db_conn *c, const char *org_id, const char *id,
		 const struct user_patch *patch, struct user *before,
		 struct user *out)
{
	if (!uuid_is_valid(id) || !uuid_is_valid(org_id))
		return 1;
	int64_t now = time_now_us();
	int rc = users_touch(c, org_id, id, now);
	if (rc != 0)
		return rc;
	struct user u;
	rc = users_find(c, org_id, id, &u);
	if (rc != 0)
		return rc;
	if (before)
		*before = u;
	if (patch->has_full_name)
		str_copy(u.full_name, sizeof u.full_name, patch->full_name);
	if (patch->has_role)
		u.role = patch->role;
	if (patch->has_active)
		u.is_active = patch->is_active;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id), DBP_TEXT(u.full_name),
				DBP_TEXT(role_name(u.role)), DBP_BOOL(u.is_active) };
	rc = db_exec(c,
		     "UPDATE users SET full_name = $3, role = $4, is_active = $5 "
		     "WHERE organization_id = $1 AND id = $2",
		     p, 5, NULL, NULL);
	if (rc == DB_OK && patch->has_password) {
		struct db_param pp[] = { DBP_TEXT(org_id), DBP_TEXT(id),
					 DBP_TEXT(patch->password_hash) };
		rc = db_exec(c,
			     "UPDATE users SET password_hash = $3 "
			     "WHERE organization_id = $1 AND id = $2",
			     pp, 3, NULL, NULL);
	}
	if (rc == DB_OK)
		*out = u;
	return rc;
}
