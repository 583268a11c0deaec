/* sqlrepeat: see sqlrepeat.h. */
#include "db/sqlrepeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* head + n groups + tail, or NULL. */
static char *build(const struct sql_repeat *r, size_t n)
{
	/* "$" + up to 20 digits + "," per placeholder, "()," per group */
	size_t cap = strlen(r->head) + strlen(r->tail) + n * (r->cols * 22 + 3) + 1;
	size_t off = 0, k = r->first;
	char *sql = malloc(cap);

	if (sql == NULL)
		return NULL;
	off += (size_t)snprintf(sql + off, cap - off, "%s", r->head);
	for (size_t g = 0; g < n; g++) {
		if (g > 0)
			sql[off++] = ',';
		if (r->cols > 1)
			sql[off++] = '(';
		for (size_t c = 0; c < r->cols; c++, k++)
			off += (size_t)snprintf(sql + off, cap - off, "%s$%zu", c > 0 ? "," : "", k);
		if (r->cols > 1)
			sql[off++] = ')';
	}
	(void)snprintf(sql + off, cap - off, "%s", r->tail);
	return sql;
}

const char *sql_repeat_text(struct sql_repeat *r, size_t n)
{
	size_t k = 0;
	const char *out;

	if (r == NULL || r->cols == 0 || n == 0 || (n & (n - 1)) != 0)
		return NULL;
	while (((size_t)1 << k) < n)
		k++;
	if (k > SQL_REPEAT_MAX_LOG2)
		return NULL;
	pthread_mutex_lock(&r->mu);
	if (r->texts[k] == NULL)
		r->texts[k] = build(r, n);
	out = r->texts[k];
	pthread_mutex_unlock(&r->mu);
	return out;
}
