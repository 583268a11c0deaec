/* webhook_store: SQL for the webhook_events table (see webhook_store.h).
 *
 * Batches are one multi-row INSERT per power-of-two chunk (PostgreSQL 256,
 * 128, ..., 1 rows; SQLite 64, ..., 1), so at most nine distinct statement
 * texts are prepared per connection whatever the batch size. On SQLite this
 * replaced one INSERT per row: a chunk binds and steps once. On PostgreSQL
 * the chunks of a batch (and, in webhook_store_insert_tx, its BEGIN and
 * COMMIT) go in one libpq pipeline: one round trip per batch. */
#include "meta/webhook_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "db/sqlrepeat.h"

#define CHUNK_MAX_PG 256    /* 768 parameters */
#define CHUNK_MAX_SQLITE 64 /* 192 parameters; per-row statements cost more */
#define INSERT_HEAD "INSERT INTO webhook_events (received_at, source, body) VALUES "
/* "($1,$2,$3)," with three-digit numbers at most: 3 * 5 + 4 bytes */
#define INSERT_ROW_MAX 24
#define EVENT_COLS "id, received_at, source, organization_id, whatsapp_number_id, " \
	"field, parent_id, processed_at, attempts, error, body"

void webhook_event_release(struct webhook_event *ev)
{
	if (ev == NULL)
		return;
	free(ev->error);
	free(ev->body);
	ev->error = NULL;
	ev->body = NULL;
}

void webhook_event_array_free(struct webhook_event *evs, size_t n)
{
	if (evs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		webhook_event_release(&evs[i]);
	free(evs);
}

static char *dup_bytes(const char *s, size_t len)
{
	char *p = malloc(len + 1);
	if (p == NULL)
		return NULL;
	if (len > 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Rows of a SELECT EVENT_COLS into a malloc'd array. */
static int events_from_res(const struct db_res *r, struct webhook_event **out, size_t *n)
{
	int rows = db_rows(r);
	struct webhook_event *evs = NULL;

	*out = NULL;
	*n = 0;
	if (rows <= 0)
		return DB_OK;
	evs = calloc((size_t)rows, sizeof *evs);
	if (evs == NULL)
		return DB_ERR;
	for (int i = 0; i < rows; i++) {
		struct webhook_event *ev = &evs[i];
		ev->id = db_get_int(r, i, 0);
		ev->received_at = db_get_int(r, i, 1);
		str_copy(ev->source, sizeof ev->source, db_get_text(r, i, 2));
		str_copy(ev->organization_id, sizeof ev->organization_id, db_get_text(r, i, 3));
		str_copy(ev->whatsapp_number_id, sizeof ev->whatsapp_number_id,
			  db_get_text(r, i, 4));
		str_copy(ev->field, sizeof ev->field, db_get_text(r, i, 5));
		ev->parent_id = db_get_int(r, i, 6);
		ev->processed_at = db_get_int(r, i, 7);
		ev->attempts = (int)db_get_int(r, i, 8);
		if (!db_isnull(r, i, 9)) {
			ev->error = dup_bytes(db_get_text(r, i, 9), db_get_len(r, i, 9));
			if (ev->error == NULL)
				goto oom;
		}
		ev->body = dup_bytes(db_get_text(r, i, 10) != NULL ? db_get_text(r, i, 10) : "",
				     db_get_len(r, i, 10));
		if (ev->body == NULL)
			goto oom;
		ev->body_len = db_get_len(r, i, 10);
	}
	*out = evs;
	*n = (size_t)rows;
	return DB_OK;
oom:
	webhook_event_array_free(evs, (size_t)rows);
	return DB_ERR;
}

static int query_events(struct db_conn *c, const char *sql, const struct db_param *p,
			int np, struct webhook_event **out, size_t *n)
{
	struct db_res *r = NULL;
	int rc = db_exec(c, sql, p, np, &r, NULL);
	if (rc == DB_OK)
		rc = events_from_res(r, out, n);
	db_res_free(r);
	return rc;
}

/* ---- ingestion ---------------------------------------------------------- */

/* "INSERT ... VALUES ($1,$2,$3),...,(...) RETURNING id" for rows rows. */
static char *insert_sql(size_t rows)
{
	size_t cap = sizeof INSERT_HEAD + rows * INSERT_ROW_MAX + 32;
	char *sql = malloc(cap);
	size_t off = 0;

	if (sql == NULL)
		return NULL;
	off = (size_t)snprintf(sql, cap, "%s", INSERT_HEAD);
	for (size_t i = 0; i < rows; i++) {
		int w = snprintf(sql + off, cap - off, "%s($%zu,$%zu,$%zu)", i > 0 ? "," : "",
				 3 * i + 1, 3 * i + 2, 3 * i + 3);
		if (w < 0 || (size_t)w >= cap - off) {
			free(sql);
			return NULL;
		}
		off += (size_t)w;
	}
	snprintf(sql + off, cap - off, " RETURNING id");
	return sql;
}

/* The statement texts, made once per chunk size (power of two). */
static char *chunk_sql[16];
static pthread_once_t chunk_sql_once = PTHREAD_ONCE_INIT;

static void chunk_sql_init(void)
{
	for (size_t k = 0; k < sizeof chunk_sql / sizeof chunk_sql[0]; k++)
		if (((size_t)1 << k) <= CHUNK_MAX_PG)
			chunk_sql[k] = insert_sql((size_t)1 << k); /* NULL: out of memory */
}

/* Queue (db_exec_queued) one multi-row INSERT of n rows (a power of two);
 * *res gets its ids after the sync. */
static int insert_chunk(struct db_conn *c, const struct webhook_raw *rows, size_t n,
			struct db_res **res, struct db_param *p)
{
	size_t k = 0;

	while (((size_t)1 << k) < n)
		k++;
	pthread_once(&chunk_sql_once, chunk_sql_init);
	if (((size_t)1 << k) != n || k >= sizeof chunk_sql / sizeof chunk_sql[0] ||
	    chunk_sql[k] == NULL)
		return DB_ERR;
	for (size_t i = 0; i < n; i++) {
		p[3 * i] = DBP_INT(rows[i].received_at);
		p[3 * i + 1] = DBP_TEXT(rows[i].source);
		/* Ingestion's bodies are NUL-terminated (webhook_ingest.h): passed
		 * as plain text, no engine copies them to terminate them. */
		p[3 * i + 2] = strlen(rows[i].body) == rows[i].body_len
				       ? DBP_TEXT(rows[i].body)
				       : DBP_TEXTN(rows[i].body, rows[i].body_len);
	}
	return db_exec_queued(c, chunk_sql[k], p, (int)(3 * n), res, NULL);
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static size_t chunk_max(struct db_conn *c)
{
	return db_engine(db_conn_db(c)) == DB_ENGINE_PG ? CHUNK_MAX_PG : CHUNK_MAX_SQLITE;
}

/* Transaction control inside insert_rows: queued on PostgreSQL (same
 * round trip as the rows), a plain script on SQLite. */
static int queue_control(struct db_conn *c, const char *sql)
{
	if (db_engine(db_conn_db(c)) == DB_ENGINE_PG)
		return db_exec_queued(c, sql, NULL, 0, NULL, NULL);
	return db_exec_script(c, sql);
}

/* Power-of-two chunks of at most chunk_max rows, each one multi-row INSERT,
 * queued in one pipeline between begin and commit (NULL: none) and synced
 * once. Within one statement (and one writer) ids grow in VALUES order,
 * but RETURNING does not promise its row order: sorting restores it. */
static int insert_rows(struct db_conn *c, const struct webhook_raw *rows, size_t n,
		       int64_t *ids_out, const char *begin, const char *commit)
{
	size_t max = chunk_max(c), nchunks = n / max + 16, k = 0, done = 0;
	struct db_res **res = calloc(nchunks, sizeof *res);
	struct db_param *p = calloc(3 * max, sizeof *p);
	int rc = res == NULL || p == NULL ? DB_ERR : db_pipeline_begin(c);

	if (rc == DB_OK && begin != NULL)
		rc = queue_control(c, begin);
	while (rc == DB_OK && done < n) {
		size_t chunk = max;
		while (chunk > n - done)
			chunk /= 2;
		rc = insert_chunk(c, rows + done, chunk, ids_out != NULL ? &res[k] : NULL, p);
		done += chunk;
		k++;
	}
	if (rc == DB_OK && commit != NULL)
		rc = queue_control(c, commit);
	if (rc == DB_OK)
		rc = db_pipeline_end(c);
	done = 0;
	for (size_t i = 0; rc == DB_OK && ids_out != NULL && i < k; i++) {
		size_t chunk = (size_t)db_rows(res[i]);
		if (res[i] == NULL || done + chunk > n) {
			rc = DB_ERR;
			break;
		}
		for (size_t j = 0; j < chunk; j++)
			ids_out[done + j] = db_get_int(res[i], (int)j, 0);
		qsort(ids_out + done, chunk, sizeof *ids_out, cmp_id);
		done += chunk;
	}
	if (rc == DB_OK && ids_out != NULL && done != n)
		rc = DB_ERR;
	for (size_t i = 0; res != NULL && i < k; i++)
		db_res_free(res[i]);
	free(res);
	free(p);
	return rc;
}

int webhook_store_insert_batch(struct db_conn *c, const struct webhook_raw *rows,
			       size_t n, int64_t *ids_out)
{
	if (n == 0)
		return DB_OK;
	return insert_rows(c, rows, n, ids_out, NULL, NULL);
}

int webhook_store_insert_tx(struct db_conn *c, const struct webhook_raw *rows, size_t n,
			    int64_t *ids_out)
{
	bool sqlite = db_engine(db_conn_db(c)) == DB_ENGINE_SQLITE;

	if (n == 0)
		return DB_OK;
	return insert_rows(c, rows, n, ids_out, sqlite ? "BEGIN IMMEDIATE" : "BEGIN", "COMMIT");
}

/* ---- processing --------------------------------------------------------- */

int webhook_store_claim(struct db_conn *c, int64_t after_id, int limit,
			struct webhook_event **out, size_t *n)
{
	const struct db_param p[] = { DBP_INT(after_id), DBP_INT(limit) };
	return query_events(c,
			    "SELECT " EVENT_COLS " FROM webhook_events"
			    " WHERE processed_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
			    p, 2, out, n);
}

static int affected_to_rc(int rc, int64_t affected)
{
	if (rc != DB_OK)
		return rc;
	return affected > 0 ? 0 : 1;
}

int webhook_store_mark_processed(struct db_conn *c, int64_t id, int64_t now,
				 const char *org_id, const char *number_id,
				 const char *field)
{
	const struct db_param p[] = { DBP_INT(id), DBP_INT(now), DBP_TEXT(org_id),
				      DBP_TEXT(number_id), DBP_TEXT(field) };
	int64_t affected = 0;
	int rc = db_exec(c,
			 "UPDATE webhook_events SET processed_at = $2, attempts = attempts + 1,"
			 " error = NULL,"
			 " organization_id = COALESCE($3, organization_id),"
			 " whatsapp_number_id = COALESCE($4, whatsapp_number_id),"
			 " field = COALESCE($5, field) WHERE id = $1",
			 p, 5, NULL, &affected);
	return affected_to_rc(rc, affected);
}

int webhook_store_mark_done(struct db_conn *c, int64_t id, int64_t now, const char *org_id,
			    const char *number_id, const char *field, const char *error)
{
	char msg[WEBHOOK_ERROR_MAX + 1];
	if (error != NULL)
		str_copy(msg, sizeof msg, error);
	const struct db_param p[] = { DBP_INT(id),	    DBP_INT(now),	  DBP_TEXT(org_id),
				      DBP_TEXT(number_id), DBP_TEXT(field),
				      DBP_TEXT(error != NULL ? msg : NULL) };
	return db_exec_queued(c,
			      "UPDATE webhook_events SET processed_at = $2, attempts = attempts + 1,"
			      " error = $6,"
			      " organization_id = COALESCE($3, organization_id),"
			      " whatsapp_number_id = COALESCE($4, whatsapp_number_id),"
			      " field = COALESCE($5, field) WHERE id = $1",
			      p, 6, NULL, NULL);
}

#define MARK_CHUNK 64 /* ids per grouped mark (power of two) */

/* "UPDATE ... WHERE id IN ($6, ..., $n+5)" for a power-of-two n. */
static const char *mark_sql(size_t n)
{
	static struct sql_repeat text = SQL_REPEAT_INIT(
		"UPDATE webhook_events SET processed_at = $1, attempts = attempts + 1,"
		" error = $2, organization_id = COALESCE($3, organization_id),"
		" whatsapp_number_id = COALESCE($4, whatsapp_number_id),"
		" field = COALESCE($5, field) WHERE id IN (",
		")", 1, 6);
	return sql_repeat_text(&text, n);
}

int webhook_store_mark_done_many(struct db_conn *c, const int64_t *ids, size_t n, int64_t now,
				 const char *org_id, const char *number_id, const char *field,
				 const char *error)
{
	char msg[WEBHOOK_ERROR_MAX + 1];
	struct db_param p[5 + MARK_CHUNK];
	size_t done = 0;
	int rc = DB_OK;

	if (error != NULL)
		str_copy(msg, sizeof msg, error);
	p[0] = DBP_INT(now);
	p[1] = DBP_TEXT(error != NULL ? msg : NULL);
	p[2] = DBP_TEXT(org_id);
	p[3] = DBP_TEXT(number_id);
	p[4] = DBP_TEXT(field);
	while (rc == DB_OK && done < n) {
		size_t chunk = MARK_CHUNK;
		while (chunk > n - done)
			chunk /= 2;
		const char *sql = mark_sql(chunk);
		if (sql == NULL)
			return DB_ERR;
		for (size_t i = 0; i < chunk; i++)
			p[5 + i] = DBP_INT(ids[done + i]);
		rc = db_exec_queued(c, sql, p, (int)(5 + chunk), NULL, NULL);
		done += chunk;
	}
	return rc;
}

int webhook_store_mark_failed(struct db_conn *c, int64_t id, int64_t now,
			      const char *error, bool final)
{
	char msg[WEBHOOK_ERROR_MAX + 1];
	str_copy(msg, sizeof msg, error != NULL ? error : "error");
	const struct db_param p[] = { DBP_INT(id), final ? DBP_INT(now) : DBP_NULL,
				      DBP_TEXT(msg) };
	int64_t affected = 0;
	int rc = db_exec(c,
			 "UPDATE webhook_events SET attempts = attempts + 1, error = $3,"
			 " processed_at = $2 WHERE id = $1",
			 p, 3, NULL, &affected);
	return affected_to_rc(rc, affected);
}

int webhook_store_insert_child(struct db_conn *c, int64_t parent_id,
			       const struct webhook_raw *row, const char *org_id,
			       const char *number_id, const char *field,
			       int64_t processed_at, int64_t *id_out)
{
	const struct db_param p[] = {
		DBP_INT(row->received_at), DBP_TEXT(row->source),
		DBP_TEXTN(row->body, row->body_len), DBP_TEXT(org_id), DBP_TEXT(number_id),
		DBP_TEXT(field), DBP_INT(parent_id),
		processed_at > 0 ? DBP_INT(processed_at) : DBP_NULL,
	};
	struct db_res *r = NULL;
	static const char sql[] =
		"INSERT INTO webhook_events (received_at, source, body, organization_id,"
		" whatsapp_number_id, field, parent_id, processed_at)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
	if (id_out == NULL)
		return db_exec_queued(c, sql, p, 8, NULL, NULL);
	int rc = db_exec(c, sql, p, 8, &r, NULL);
	if (rc == DB_OK && id_out != NULL)
		*id_out = db_rows(r) > 0 ? db_get_int(r, 0, 0) : 0;
	db_res_free(r);
	return rc;
}

int webhook_store_pending(struct db_conn *c, int64_t *count, int64_t *oldest_received_at)
{
	struct db_res *r = NULL;
	int rc = db_exec(c,
			 "SELECT COUNT(*), COALESCE(MIN(received_at), 0) FROM webhook_events"
			 " WHERE processed_at IS NULL",
			 NULL, 0, &r, NULL);
	if (rc == DB_OK) {
		*count = db_get_int(r, 0, 0);
		*oldest_received_at = db_get_int(r, 0, 1);
	}
	db_res_free(r);
	return rc;
}

/* ---- operators ---------------------------------------------------------- */

/* Builds "SELECT ... WHERE <conditions of f>" with only the conditions
 * that apply (so every parameter has a type both engines can infer), and
 * the matching parameters. A handful of distinct texts result, each
 * prepared once per connection. */
struct query {
	char sql[1024];
	size_t len;
	struct db_param p[8];
	int np;
	bool bad;
};

static void q_add(struct query *q, const char *text)
{
	int w = snprintf(q->sql + q->len, sizeof q->sql - q->len, "%s", text);
	if (w < 0 || (size_t)w >= sizeof q->sql - q->len) {
		q->bad = true;
		return;
	}
	q->len += (size_t)w;
}

/* Append cond with "$?" replaced by the next parameter number. */
static void q_cond(struct query *q, const char *cond, struct db_param v)
{
	char buf[256];
	const char *mark = strstr(cond, "$?");
	if (mark == NULL || q->np >= (int)(sizeof q->p / sizeof q->p[0])) {
		q->bad = true;
		return;
	}
	q->p[q->np++] = v;
	snprintf(buf, sizeof buf, " AND %.*s$%d%s", (int)(mark - cond), cond, q->np, mark + 2);
	q_add(q, buf);
}

/* Append the keyset condition "after (a = received_at, b = id)" in
 * (received_at DESC, id DESC) order, adding both parameters. */
static void q_keyset(struct query *q, struct db_param a, struct db_param b)
{
	char buf[256];
	if (q->np + 2 > (int)(sizeof q->p / sizeof q->p[0])) {
		q->bad = true;
		return;
	}
	q->p[q->np++] = a;
	q->p[q->np++] = b;
	snprintf(buf, sizeof buf, " AND (received_at < $%d OR (received_at = $%d AND id < $%d))",
		 q->np - 1, q->np - 1, q->np);
	q_add(q, buf);
}

static void q_limit(struct query *q, int limit)
{
	char buf[32];
	if (q->np >= (int)(sizeof q->p / sizeof q->p[0])) {
		q->bad = true;
		return;
	}
	q->p[q->np++] = DBP_INT(limit);
	snprintf(buf, sizeof buf, " LIMIT $%d", q->np);
	q_add(q, buf);
}

static void q_filter(struct query *q, const struct webhook_filter *f)
{
	q_add(q, "SELECT " EVENT_COLS " FROM webhook_events WHERE TRUE");
	if (f->unrouted)
		q_add(q, " AND organization_id IS NULL");
	else if (f->org_id != NULL)
		q_cond(q, "organization_id = $?", DBP_TEXT(f->org_id));
	if (f->processed == 0)
		q_add(q, " AND processed_at IS NULL");
	else if (f->processed == 1)
		q_add(q, " AND processed_at IS NOT NULL");
	if (f->field != NULL)
		q_cond(q, "field = $?", DBP_TEXT(f->field));
}

static int q_run(struct db_conn *c, struct query *q, struct webhook_event **out, size_t *n)
{
	if (q->bad)
		return DB_ERR;
	return query_events(c, q->sql, q->p, q->np, out, n);
}

int webhook_store_list(struct db_conn *c, const struct webhook_filter *f, int limit,
		       int64_t before_received_at, int64_t before_id,
		       struct webhook_event **out, size_t *n)
{
	struct query q = { .len = 0 };

	q_filter(&q, f);
	if (before_id > 0)
		q_keyset(&q, DBP_INT(before_received_at), DBP_INT(before_id));
	q_add(&q, " ORDER BY received_at DESC, id DESC");
	q_limit(&q, limit);
	return q_run(c, &q, out, n);
}

int webhook_store_since(struct db_conn *c, const struct webhook_filter *f,
			int64_t after_id, int limit, struct webhook_event **out, size_t *n)
{
	struct query q = { .len = 0 };

	q_filter(&q, f);
	q_cond(&q, "id > $?", DBP_INT(after_id));
	q_add(&q, " ORDER BY id");
	q_limit(&q, limit);
	return q_run(c, &q, out, n);
}

int webhook_store_max_id(struct db_conn *c, int64_t *out)
{
	struct db_res *r = NULL;
	int rc = db_exec(c, "SELECT COALESCE(MAX(id), 0) FROM webhook_events", NULL, 0, &r,
			 NULL);
	if (rc == DB_OK)
		*out = db_get_int(r, 0, 0);
	db_res_free(r);
	return rc;
}
