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

/* 0 found, 1 not found (also for an id that is not a UUID or belongs to
 * another organization), < 0 db_status. */
int users_find(struct db_conn *c, const char *org_id, const char *id,
	       struct user *out) __attribute__((warn_unused_result));

/* The users of org_id, newest first: up to `limit` rows strictly after
 * (after_at, after_id) in (created_at DESC, id DESC) order. *out is a
 * malloc'd array of *n rows (caller frees; NULL when none). */
int users_list(struct db_conn *c, const char *org_id, int limit, int64_t after_at,
	       const char *after_id, struct user **out, int *n)
	__attribute__((warn_unused_result));

/* What users_update changes: each field only when its has_* flag is set.
 * password_hash is a new argon2id string (see auth/password.h). */
struct user_patch {
	bool has_full_name, has_role, has_active, has_password;
	const char *full_name;
	enum role role;
	bool is_active;
	const char *password_hash;
};

/* Apply patch to user id of org_id, under a row lock. before (may be NULL)
 * gets the row as it was, out the row as it now is. 0 updated, 1 not found
 * (other org, not a UUID), < 0 db_status. */
int users_update(struct db_conn *c, const char *org_id, const char *id,
		 const struct user_patch *patch, struct user *before,
		 struct user *out) __attribute__((warn_unused_result));

#endif
