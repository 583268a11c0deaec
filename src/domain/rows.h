/* rows: copy a query result into a typed array, the one loop every
 * domain *_list function shares. */
#ifndef PYTAKE_DOMAIN_ROWS_H
#define PYTAKE_DOMAIN_ROWS_H
#include <stddef.h>

#include "db/db.h"

/* Fill the element at elem (size bytes, zeroed) from row `row` of r. */
typedef void (*rows_from_fn)(const struct db_res *r, int row, void *elem);

/* Copy every row of r into a new zeroed array of `size`-byte elements,
 * element i filled by from_row(r, i, ...). DB_OK with *out (owned by the
 * caller: free() it, or the type's *_rows_free when from_row allocates;
 * NULL when r has no rows) and *n; DB_ERR when out of memory (nothing
 * allocated, *out and *n untouched). */
int rows_copy(const struct db_res *r, size_t size, rows_from_fn from_row, void **out, int *n);

#endif
