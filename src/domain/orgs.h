/* orgs: organizations (tenants). Store functions take a connection inside
 * the caller's transaction. */
#ifndef PYTAKE_ORGS_H
#define PYTAKE_ORGS_H
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

struct org {
	char id[37];
	char name[201];
	char slug[64];
	char timezone[64];
	int64_t created_at;
	int64_t updated_at;
};

/* Rules: slug is 2..63 of [a-z0-9-], starting with a letter or digit; name
 * is 1..200 characters. Return NULL when fine, else a message. */
const char *orgs_check_slug(const char *slug);
const char *orgs_check_name(const char *name);
/* Time zone: "UTC", or an IANA-looking name "Area/Location[/More]" where
 * Area is one of the IANA areas (Africa, America, Antarctica, Arctic, Asia,
 * Atlantic, Australia, Europe, Indian, Pacific, Etc) and each part is
 * [A-Za-z0-9_+-], starting with a letter or digit (at most 63 bytes). */
const char *orgs_check_timezone(const char *tz);

/* Insert a new organization (UUID v7 id, timezone "UTC" when NULL).
 * Returns DB_OK and fills out, DB_ERR_CONFLICT when the slug is taken, or
 * another db_status. */
int orgs_create(struct db_conn *c, const char *name, const char *slug,
		const char *timezone, struct org *out) __attribute__((warn_unused_result));
/* 0 found, 1 not found, < 0 db_status. */
int orgs_find_by_slug(struct db_conn *c, const char *slug, struct org *out)
	__attribute__((warn_unused_result));
int orgs_find(struct db_conn *c, const char *id, struct org *out)
	__attribute__((warn_unused_result));
/* Change name and/or timezone (NULL = keep) of organization id; fills out
 * with the row as it now is and before (may be NULL) with the row as it was.
 * 0 updated, 1 not found, < 0 db_status. */
int orgs_update(struct db_conn *c, const char *id, const char *name,
		const char *timezone, struct org *before, struct org *out)
	__attribute__((warn_unused_result));
/* Every organization, newest first, for super_admin: up to `limit` rows
 * strictly after (after_at, after_id) in (created_at DESC, id DESC) order.
 * *out is a malloc'd array of *n rows (caller frees; NULL when 0 rows).
 * DB_OK or a db_status. */
int orgs_list(struct db_conn *c, int limit, int64_t after_at, const char *after_id,
	      struct org **out, int *n) __attribute__((warn_unused_result));
/* Number of organizations (for first-run bootstrap). */
int orgs_count(struct db_conn *c, int64_t *out) __attribute__((warn_unused_result));

#endif
