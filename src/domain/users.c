#include "domain/users.h"

#include <ctype.h>

#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"

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
