/* contacts: the people an organization talks to (API.md "Contacts").
 *
 * Design note
 * - A contact is known by its phone (wa_id, digits-only E.164, see
 *   phone.h) and/or Meta's business-scoped user id (bsuid); this module
 *   writes contacts made through the API, which always have a wa_id.
 *   (organization_id, wa_id) is unique: DB_ERR_CONFLICT.
 * - tags: a JSON array of distinct strings (1..CONTACTS_TAG_MAX code
 *   points, at most CONTACTS_TAGS_MAX); attributes: a JSON object of
 *   scalar values (string, number, boolean, null) with bounded keys and
 *   size. contacts_check_tags / contacts_check_attributes validate (and
 *   de-duplicate) before anything is stored.
 * - Every function takes the organization id and puts it in the WHERE
 *   clause; an id of another org, or not a UUID, is "not found".
 * - The tag filter is the one place with per-engine SQL (JSON array
 *   membership): see tag_condition() in contacts.c.
 *
 * Return convention: 0 ok / found, 1 not found, < 0 a db_status. */
#ifndef PYTAKE_CONTACTS_H
#define PYTAKE_CONTACTS_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "domain/phone.h"

#define CONTACTS_NAME_MAX 200      /* code points */
#define CONTACTS_EMAIL_MAX 254
#define CONTACTS_TAG_MAX 64        /* code points per tag */
#define CONTACTS_TAGS_MAX 50
#define CONTACTS_ATTR_KEYS_MAX 50
#define CONTACTS_ATTR_KEY_MAX 64   /* code points */
#define CONTACTS_ATTR_VALUE_MAX 1024 /* code points of a string value */
#define CONTACTS_ATTR_BYTES_MAX 8192 /* compact JSON of the whole object */
#define CONTACTS_Q_MAX 200

struct contact {
	char id[37];
	char organization_id[37];
	char wa_id[PHONE_BUF_LEN];  /* "" = null (a bsuid-only contact) */
	char bsuid[257];            /* "" = null */
	char name[4 * CONTACTS_NAME_MAX + 1];   /* "" = null */
	char email[CONTACTS_EMAIL_MAX + 1];     /* "" = null */
	json_t *tags;               /* owned; an array of strings */
	json_t *attributes;         /* owned; an object */
	bool opted_out;
	int64_t opted_out_at;       /* 0 = null */
	int64_t created_at, updated_at;
};

/* Drop the JSON references and zero c. NULL is a no-op. */
void contact_release(struct contact *c);
/* Release every row of a malloc'd array of n rows, then free it. */
void contact_rows_free(struct contact *rows, int n);

/* Validation: NULL when fine, else a message for the API's details.
 * contacts_check_tags: tags must be an array of strings, each 1..64 code
 * points, at most 50 after de-duplication; on success *out is a new
 * array with duplicates dropped (first occurrence kept, order kept). */
const char *contacts_check_tags(const json_t *tags, json_t **out);
/* attributes must be an object of at most 50 keys (1..64 code points) with
 * string (<= 1024 code points), number, boolean or null values, at most
 * 8 KiB as compact JSON. */
const char *contacts_check_attributes(const json_t *attributes);

/* What a create or update writes. For an update, has_* says which fields
 * change (a NULL string clears it); for a create, NULL strings / JSON are
 * null / [] / {}. Strings are validated by the caller; JSON values by
 * contacts_check_* (tags de-duplicated). Borrowed. */
struct contact_fields {
	bool has_wa_id, has_name, has_email, has_tags, has_attributes;
	const char *wa_id;          /* normalised */
	const char *name, *email;
	const json_t *tags, *attributes;
	bool opted_out;             /* create only */
};

/* Insert a contact for org_id; *out gets the stored row (caller
 * releases). 0, DB_ERR_CONFLICT when org_id has this wa_id, < 0. */
int contacts_create(struct db_conn *c, const char *org_id, const struct contact_fields *f,
		    struct contact *out) __attribute__((warn_unused_result));

/* 0 found (*out filled; caller releases), 1 not found, < 0 db_status. */
int contacts_find(struct db_conn *c, const char *org_id, const char *id,
		  struct contact *out) __attribute__((warn_unused_result));
/* The contact of org_id with this wa_id. 0, 1, < 0. */
int contacts_find_by_wa_id(struct db_conn *c, const char *org_id, const char *wa_id,
			   struct contact *out) __attribute__((warn_unused_result));

/* List filters; NULL / has_opted_out false = not filtered.
 * q: case-insensitive substring of name, or (when q looks like a phone:
 * digits and separators only) a substring of wa_id's digits. */
struct contact_filter {
	const char *q;
	const char *tag;
	bool has_opted_out, opted_out;
};

/* The contacts of org_id matching f, newest first: up to limit rows
 * strictly after (after_at, after_id) in (created_at DESC, id DESC)
 * order. *out is a malloc'd array of *n rows (contact_rows_free; NULL
 * when none). 0 or a db_status. */
int contacts_list(struct db_conn *c, const char *org_id, const struct contact_filter *f,
		  int limit, int64_t after_at, const char *after_id, struct contact **out,
		  int *n) __attribute__((warn_unused_result));

/* Apply f to contact id of org_id; before/after (may be NULL) get the row
 * as it was and as it is now (caller releases). 0, 1 not found,
 * DB_ERR_CONFLICT (wa_id taken), < 0. */
int contacts_update(struct db_conn *c, const char *org_id, const char *id,
		    const struct contact_fields *f, struct contact *before, struct contact *after)
	__attribute__((warn_unused_result));

/* Set opted_out (opted_out_at = now when opting out, null when opting in).
 * before/after as for contacts_update. 0, 1, < 0. */
int contacts_set_opt_out(struct db_conn *c, const char *org_id, const char *id,
			 bool opted_out, struct contact *before, struct contact *after)
	__attribute__((warn_unused_result));

/* Delete contact id of org_id; *before (may be NULL) gets the row. 0, 1,
 * DB_ERR_FK when conversations or messages still refer to it, < 0. */
int contacts_delete(struct db_conn *c, const char *org_id, const char *id,
		    struct contact *before) __attribute__((warn_unused_result));

#endif
