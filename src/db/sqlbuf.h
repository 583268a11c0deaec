/* sqlbuf: one SQL statement built piece by piece together with its
 * parameters, for the queries whose conditions depend on which filters a
 * request sets (the list functions of the domain modules).
 *
 * Design: the buffer numbers each parameter as it is added and writes its
 * placeholder "$k" in the same call, so the text and the parameter array
 * cannot drift apart. "$k" is the one placeholder form both engines take
 * (db.h: PostgreSQL numbers them, the SQLite backend binds them by name).
 * Only conditions that apply are written — never "($k IS NULL OR col =
 * $k)", whose parameter PostgreSQL cannot type — so a query has a handful
 * of distinct texts, each prepared once per connection.
 *
 * Bounds: the text and the parameters have fixed maxima. A piece that does
 * not fit marks the buffer overflowed and is dropped; sqlbuf_exec then
 * answers DB_ERR without running anything, so a truncated statement never
 * reaches the database. Nothing is allocated: a struct sqlbuf lives on the
 * stack, initialised with SQLBUF_INIT. */
#ifndef PYTAKE_DB_SQLBUF_H
#define PYTAKE_DB_SQLBUF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define SQLBUF_TEXT_MAX 1024
#define SQLBUF_MAX_PARAMS 12

struct sqlbuf {
	char sql[SQLBUF_TEXT_MAX]; /* NUL-terminated */
	size_t len;
	bool overflow;             /* a piece did not fit: do not run */
	struct db_param params[SQLBUF_MAX_PARAMS];
	int n;                     /* parameters added; the last is $n */
};

#define SQLBUF_INIT { .len = 0 }

/* Append text as it is (no placeholder in it is renumbered). */
void sqlbuf_add(struct sqlbuf *b, const char *text);

/* Add parameter p without writing anything; its number k (for a "$k" the
 * caller writes), or 0 when the table is full (overflowed). */
int sqlbuf_param(struct sqlbuf *b, struct db_param p);

/* Append before + "$k" + after, k the number given to p:
 * sqlbuf_cond(b, " AND status = ", DBP_TEXT(s), "") -> " AND status = $3". */
void sqlbuf_cond(struct sqlbuf *b, const char *before, struct db_param p, const char *after);

/* " AND <column> = $k" with value as parameter k; nothing when value is
 * NULL (an absent filter). Not for the tenant column: write that one with
 * sqlbuf_cond, so a NULL org id still binds (and matches no row). */
void sqlbuf_eq(struct sqlbuf *b, const char *column, const char *value);

/* The keyset page tail of the list queries, newest first, on the sort
 * expression `at` and the tie-breaking column `id`:
 * " AND <at> <= $a AND (<at>, <id>) < ($a, $b)
 *   ORDER BY <at> DESC, <id> DESC LIMIT $c"
 * with after_at, after_id and limit as $a, $b, $c (the redundant first
 * bound lets SQLite seek an index on (.., <at> DESC, <id> DESC) to the
 * cursor instead of walking it from the top). */
void sqlbuf_page_desc(struct sqlbuf *b, const char *at, const char *id, int64_t after_at,
		      const char *after_id, int limit);

/* db_exec of the statement (out and affected as db_exec); DB_ERR, with
 * nothing run, when the buffer overflowed. */
int sqlbuf_exec(struct db_conn *c, const struct sqlbuf *b, struct db_res **out,
		int64_t *affected) __attribute__((warn_unused_result));

#endif
