/* users: people who log in. Emails are unique across the installation and
 * stored lower-cased. Every function is scoped by organization id except
 * the login lookup by email. */
#ifndef PYTAKE_USERS_H
#define PYTAKE_USERS_H
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "http/http.h"

struct user {
	char id[37];
	char organization_id[37];
	char email[255];
	char full_name[201];
	enum role role;
	bool is_active;
	int64_t last_login_at; /* 0 = never */
	int64_t created_at;
	int64_t updated_at;
};

/* Validation: NULL when fine, else a message for the API's details. */
const char *users_check_email(const char *email);
const char *users_check_password(const char *password);   /* >= 8 chars, <= 1024 bytes */
const char *users_check_full_name(const char *name);

/* Lower-case copy of email into out (size outlen); false when too long. */
bool users_normalize_email(const char *email, char *out, size_t outlen);

/* Insert; password_hash is an argon2id string (see auth/password.h).
 * DB_ERR_CONFLICT when the email is taken. */
int users_create(struct db_conn *c, const char *org_id, const char *email,
		 const char *password_hash, const char *full_name, enum role role,
		 struct user *out) __attribute__((warn_unused_result));

#endif
