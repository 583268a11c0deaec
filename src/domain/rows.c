/* rows: query result to typed array (see rows.h). */
#include "domain/rows.h"

#include <stdlib.h>

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
