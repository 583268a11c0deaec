/* rows: query result to typed array (see rows.h). */
#include "domain/rows.h"

#include <stdlib.h>
#include <string.h>

int rows_copy(const struct db_res *r, size_t size, rows_from_fn from_row, void **out, int *n)
{
	int count = db_rows(r);
	char *rows = NULL;
	if (count > 0 && !(rows = calloc((size_t)count, size)))
		return DB_ERR;
	for (int i = 0; i < count; i++)
		from_row(r, i, rows + (size_t)i * size);
	*out = rows;
	*n = count;
	return DB_OK;
}

int rows_select(struct db_conn *c, const char *sql, const struct db_param *p, int np,
		size_t size, rows_from_fn from_row, void **out, int *n)
{
	struct db_res *r = NULL;
	int rc = db_exec(c, sql, p, np, &r, NULL);
	if (rc == DB_OK)
		rc = rows_copy(r, size, from_row, out, n);
	db_res_free(r);
	return rc;
}

int rows_select_sqlbuf(struct db_conn *c, const struct sqlbuf *b, size_t size,
		       rows_from_fn from_row, void **out, int *n)
{
	if (b->overflow)
		return DB_ERR;
	return rows_select(c, b->sql, b->params, b->n, size, from_row, out, n);
}

int rows_first(struct db_conn *c, const char *sql, const struct db_param *p, int np,
	       size_t size, rows_from_fn from_row, void *elem)
{
	struct db_res *r = NULL;
	int rc = db_exec(c, sql, p, np, &r, NULL);
	if (rc == DB_OK && db_rows(r) == 0) {
		rc = 1;
	} else if (rc == DB_OK && elem != NULL) {
		memset(elem, 0, size);
		from_row(r, 0, elem);
	}
	db_res_free(r);
	return rc;
}
