/* audit: the audit log. Every change made through the API writes one row
 * here in the same transaction as the change (call audit_record with the
 * transaction's connection). Secrets (passwords, tokens, keys) never go
 * into changes: callers add only safe fields, and audit_record drops any
 * key named like a secret as a last guard. */
#ifndef PYTAKE_AUDIT_H
#define PYTAKE_AUDIT_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

struct http_request;

struct audit_entry {
	const char *org_id;      /* required */
	const char *user_id;     /* NULL for system actions (webhooks, CLI) */
	const char *action;      /* create|update|delete|login|logout|opt_out|... */
	const char *table_name;  /* "users", "organizations", ... */
	const char *record_id;   /* may be NULL */
	json_t *changes;         /* {field: [old, new]}; borrowed; NULL = {} */
	const char *ip;          /* client IP, may be NULL */
	const char *request_id;  /* may be NULL */
};

/* Fill org/user/ip/request_id from an authenticated request. */
void audit_entry_from_request(struct audit_entry *e, const struct http_request *req);

/* Insert the row. Returns DB_OK or a db_status. */
int audit_record(struct db_conn *c, const struct audit_entry *e)
	__attribute__((warn_unused_result));

/* changes helpers: add field -> [old, new] only when they differ. NULL
 * means JSON null. */
void audit_change_str(json_t *changes, const char *field, const char *old_v,
		      const char *new_v);
void audit_change_int(json_t *changes, const char *field, int64_t old_v,
		      int64_t new_v);
void audit_change_bool(json_t *changes, const char *field, bool old_v, bool new_v);

/* ---- reading the log (GET /api/v1/audit-logs) ---------------------- */

/* Filters; NULL / has_* false = not filtered. user_id must be a UUID. */
struct audit_filter {
	const char *table_name, *user_id, *action, *record_id;
	bool has_from, has_to;
	int64_t from_us, to_us; /* inclusive bounds on created_at */
};

struct audit_row {
	char id[37];
	char user_id[37];      /* "" = null */
	char action[64];
	char table_name[64];
	char *record_id;       /* malloc'd, NULL = null */
	json_t *changes;       /* owned */
	char *ip;              /* malloc'd, NULL = null */
	char *request_id;      /* malloc'd, NULL = null */
	int64_t created_at;
};

/* The rows of org_id matching f, newest first: up to limit rows strictly
 * after (after_at, after_id) in (created_at DESC, id DESC) order. *out is
 * a malloc'd array of *n rows; free with audit_rows_free. DB_OK or a
 * db_status. */
int audit_list(struct db_conn *c, const char *org_id, const struct audit_filter *f,
	       int limit, int64_t after_at, const char *after_id,
	       struct audit_row **out, int *n) __attribute__((warn_unused_result));
/* Free rows from audit_list (NULL is fine). */
void audit_rows_free(struct audit_row *rows, int n);

#endif
