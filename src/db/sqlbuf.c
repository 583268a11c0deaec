/* sqlbuf: a SQL statement and its numbered parameters (see sqlbuf.h). */
#include "db/sqlbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sqlbuf_add(struct sqlbuf *b, const char *text)
{
	size_t n = strlen(text);
	if (b->overflow || b->len + n >= sizeof b->sql) {
		b->overflow = true;
		return;
	}
	memcpy(b->sql + b->len, text, n + 1);
	b->len += n;
}

int sqlbuf_param(struct sqlbuf *b, struct db_param p)
{
	if (b->n >= SQLBUF_MAX_PARAMS) {
		b->overflow = true;
		return 0;
	}
	b->params[b->n++] = p;
	return b->n;
}

/* Append printf text; overflowed when it does not fit whole. */
static void sqlbuf_addf(struct sqlbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sqlbuf_addf(struct sqlbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->overflow)
		return;
	va_start(ap, fmt);
	int w = vsnprintf(b->sql + b->len, sizeof b->sql - b->len, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= sizeof b->sql - b->len) {
		b->sql[b->len] = '\0'; /* drop the partial piece */
		b->overflow = true;
		return;
	}
	b->len += (size_t)w;
}

void sqlbuf_cond(struct sqlbuf *b, const char *before, struct db_param p, const char *after)
{
	int k = sqlbuf_param(b, p);
	if (k != 0)
		sqlbuf_addf(b, "%s$%d%s", before, k, after);
}

void sqlbuf_eq(struct sqlbuf *b, const char *column, const char *value)
{
	int k;
	if (value != NULL && (k = sqlbuf_param(b, DBP_TEXT(value))) != 0)
		sqlbuf_addf(b, " AND %s = $%d", column, k);
}

void sqlbuf_page_desc(struct sqlbuf *b, const char *at, const char *id, int64_t after_at,
		      const char *after_id, int limit)
{
	int k_at = sqlbuf_param(b, DBP_INT(after_at));
	int k_id = sqlbuf_param(b, DBP_TEXT(after_id));
	int k_lim = sqlbuf_param(b, DBP_INT(limit));
	if (k_lim == 0)
		return;
	/* "<at> <= $a" says nothing the row comparison does not, but SQLite
	 * seeks its index only on a plain column/expression bound: without it
	 * page k re-walked the index from the top (test_page_seeks_the_index) */
	sqlbuf_addf(b,
		    " AND %s <= $%d AND (%s, %s) < ($%d, $%d) ORDER BY %s DESC, %s DESC LIMIT $%d",
		    at, k_at, at, id, k_at, k_id, at, id, k_lim);
}

int sqlbuf_exec(struct db_conn *c, const struct sqlbuf *b, struct db_res **out,
		int64_t *affected)
{
	if (b->overflow)
		return DB_ERR;
	return db_exec(c, b->sql, b->params, b->n, out, affected);
}
