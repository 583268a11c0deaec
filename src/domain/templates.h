/* templates: Meta message templates of an organization, one WhatsApp
 * number (so one WABA) each.
 *
 * Design note
 * - The row holds Meta's own template JSON split into columns: name,
 *   language, category, parameter_format (NULL = not given, Meta's
 *   POSITIONAL) and components (Meta's component array, as sent).
 *   Validation against Meta's rules is meta/template_rules.h's job; this
 *   module stores and reads.
 * - Lifecycle: DRAFT (created here) -> PENDING (submitted, with
 *   meta_template_id) -> APPROVED / REJECTED / PAUSED / DISABLED /
 *   ARCHIVED / DELETED (webhooks, sync). Content may change only while
 *   DRAFT or REJECTED.
 * - Optimistic concurrency: the API reads a row, may talk to Meta with no
 *   transaction open, then writes in a short transaction. Every write
 *   below takes the updated_at it read (`expect_at`) and changes nothing
 *   when the row moved on meanwhile (returns TEMPLATES_STALE), so a
 *   concurrent change is never overwritten.
 * - (whatsapp_number_id, name, language) is unique (DB_ERR_CONFLICT).
 * - Every function takes the organization id and puts it in the WHERE
 *   clause; another org's id is "not found".
 *
 * Return convention: 0 ok / found, 1 not found (also other org or not a
 * UUID), TEMPLATES_STALE (2) where documented, < 0 a db_status. */
#ifndef PYTAKE_TEMPLATES_H
#define PYTAKE_TEMPLATES_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

#define TEMPLATES_STALE 2

#define TEMPLATES_NAME_MAX 512
#define TEMPLATES_LANGUAGE_MAX 16
#define TEMPLATES_META_ID_MAX 128
#define TEMPLATES_REASON_MAX 512

struct template_row {
	char id[37];
	char organization_id[37];
	char whatsapp_number_id[37];
	char name[TEMPLATES_NAME_MAX + 1];
	char language[TEMPLATES_LANGUAGE_MAX + 1];
	char category[32];
	char parameter_format[16];      /* "" = not given (null) */
	json_t *components;             /* owned; an array */
	char status[16];
	char rejected_reason[TEMPLATES_REASON_MAX + 1]; /* "" = null */
	char quality_score[16];         /* "" = null */
	char meta_template_id[TEMPLATES_META_ID_MAX + 1]; /* "" = null */
	int64_t created_at;
	int64_t updated_at;
};

/* Drop the components reference and zero the row. NULL is a no-op. */
void template_row_release(struct template_row *t);
/* Release every row of a malloc'd array of n rows, then free it. */
void template_rows_free(struct template_row *rows, int n);

/* One of DRAFT|PENDING|APPROVED|REJECTED|PAUSED|DISABLED|ARCHIVED|DELETED. */
bool templates_status_valid(const char *status);
/* MARKETING|UTILITY|AUTHENTICATION. */
bool templates_category_valid(const char *category);
/* True in DRAFT and REJECTED: content may change and it may be submitted. */
bool templates_editable(const char *status);
/* Our status for a status Meta reports (APPROVED, IN_APPEAL,
 * PENDING_DELETION, LIMIT_EXCEEDED, ...; case-insensitive); NULL when it
 * cannot be mapped. Static string. */
const char *templates_status_from_meta(const char *meta_status);

/* Insert t for org_id: t holds whatsapp_number_id (a number of org_id; the
 * caller checked it), the content and the Meta facts (status "" = DRAFT);
 * this sets t->id, organization_id, created_at and updated_at. The
 * components stay owned by t. 0, DB_ERR_CONFLICT when (number, name,
 * language) exists, or a db_status. */
int templates_create(struct db_conn *c, const char *org_id, struct template_row *t)
	__attribute__((warn_unused_result));

/* 0 found (*out filled; caller releases), 1 not found, < 0 db_status. */
int templates_find(struct db_conn *c, const char *org_id, const char *id,
		   struct template_row *out) __attribute__((warn_unused_result));

/* The template of number_id with this name and language. 0, 1, < 0. */
int templates_find_by_key(struct db_conn *c, const char *org_id, const char *number_id,
			  const char *name, const char *language, struct template_row *out)
	__attribute__((warn_unused_result));

/* List filters; NULL = not filtered. number_id must be a UUID. */
struct template_filter {
	const char *status, *category, *language, *name, *number_id;
};

/* The templates of org_id matching f, newest first: up to limit rows
 * strictly after (after_at, after_id) in (created_at DESC, id DESC)
 * order. *out is a malloc'd array of *n rows (free with
 * template_rows_free; NULL when none). 0 or a db_status. */
int templates_list(struct db_conn *c, const char *org_id, const struct template_filter *f,
		   int limit, int64_t after_at, const char *after_id,
		   struct template_row **out, int *n) __attribute__((warn_unused_result));

/* Write every mutable column of t (name, language, category,
 * parameter_format, components, status, rejected_reason, quality_score,
 * meta_template_id) to the row t->id of org_id, when its updated_at is
 * still expect_at; t->updated_at becomes the new (strictly larger) time.
 * 0 saved, 1 not found, TEMPLATES_STALE (changed meanwhile; nothing
 * written), DB_ERR_CONFLICT (name/language taken), < 0 db_status. */
int templates_save(struct db_conn *c, const char *org_id, struct template_row *t,
		   int64_t expect_at) __attribute__((warn_unused_result));

/* Delete template id of org_id when updated_at is still expect_at.
 * 0 deleted, 1 not found, TEMPLATES_STALE, < 0 db_status. */
int templates_delete(struct db_conn *c, const char *org_id, const char *id,
		     int64_t expect_at) __attribute__((warn_unused_result));

#endif
