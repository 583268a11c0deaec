/* rows: copy a query result into a typed array, the one loop every
 * domain *_list function shares, and the run-then-copy around it. */
#ifndef PYTAKE_DOMAIN_ROWS_H
#define PYTAKE_DOMAIN_ROWS_H
#include <stddef.h>

#include "db/db.h"
#include "db/sqlbuf.h"

/* Fill the element at elem (size bytes, zeroed) from row `row` of r. */
typedef void (*rows_from_fn)(const struct db_res *r, int row, void *elem);

/* Copy every row of r into a new zeroed array of `size`-byte elements,
 * element i filled by from_row(r, i, ...). DB_OK with *out (owned by the
 * caller: free() it, or the type's *_rows_free when from_row allocates;
 * NULL when r has no rows) and *n; DB_ERR when out of memory (nothing
 * allocated, *out and *n untouched). */
int rows_copy(const struct db_res *r, size_t size, rows_from_fn from_row, void **out, int *n);

/* Run sql and fill elem (size bytes, zeroed first) from its first row:
 * 0 (filled), 1 (no row; elem untouched) or the db_exec error (< 0).
 * elem may be NULL to learn only whether there is a row. */
int rows_first(struct db_conn *c, const char *sql, const struct db_param *p, int np,
	       size_t size, rows_from_fn from_row, void *elem)
	__attribute__((warn_unused_result));

/* Run sql with its np parameters and rows_copy the result: DB_OK with
 * *out and *n as rows_copy, else the db_exec error or DB_ERR (out of
 * memory) with *out and *n untouched. */
int rows_select(struct db_conn *c, const char *sql, const struct db_param *p, int np,
		size_t size, rows_from_fn from_row, void **out, int *n)
	__attribute__((warn_unused_result));

/* The same for a built statement; DB_ERR, nothing run, when b overflowed. */
int rows_select_sqlbuf(struct db_conn *c, const struct sqlbuf *b, size_t size,
		       rows_from_fn from_row, void **out, int *n)
	__attribute__((warn_unused_result));

#endif
