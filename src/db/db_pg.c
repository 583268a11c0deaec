/* db_pg: the PostgreSQL backend (libpq).
 *
 * One PGconn per pooled connection, made from DATABASE_URL with a 5 s
 * connect timeout (the URL may override it), then SET TimeZone='UTC' and
 * application_name='pytake'. Each distinct SQL text is prepared once per
 * connection (PQprepare, name "pt_<n>", and described once to learn its
 * parameter count) and run with PQexecPrepared; when the cache is full,
 * further texts run unnamed with PQexecParams. Parameters go as text
 * (DB_BOOL "true"/"false", DB_INT decimal, DB_MONEY exact 6-decimal text),
 * DB_BLOB as binary. Results come back as text and are copied into a
 * struct db_res (bytea columns are unescaped to raw bytes).
 *
 * A lost connection (PQstatus bad, SQLSTATE 08xxx, 57P01..57P03) returns
 * DB_ERR_UNAVAILABLE; db.c marks the slot broken and reconnects it on its
 * next acquire (the prepared statements go with it).
 *
 * Pipeline mode (db_pipeline_begin, db.h): PQenterPipelineMode; a queued
 * statement is sent with PQsendQueryPrepared (a text not prepared yet is
 * first sent with PQsendPrepare, its parameter count taken from the
 * highest $n in the text instead of a describe round trip) and remembered
 * in pc->pend with where its result goes; pipeline_sync sends a Sync and
 * reads the results in that order. A prepare that failed (or was skipped
 * after an earlier error) marks its cache entry dead so it is never used.
 * pg_exec inside a pipeline is queue + sync; exec_script ends the pipeline
 * (PQexec is not allowed in it). */
#include <libpq-fe.h>

#include "db/db_impl.h"

#define PG_BYTEA_OID 17
#define PG_NUM_LEN 32

struct pg_stmt {
	char *sql;
	char name[24];
	int nparams;
	bool dead; /* its pipelined prepare failed: never matches */
};

/* One result a pipeline sync must read: a prepare (stmt >= 0, the cache
 * index) or a statement (stmt < 0) whose result goes to out/affected. */
struct pg_pending {
	int stmt;
	struct db_res **out;
	int64_t *affected;
};

struct pg_conn {
	PGconn *pg;
	struct pg_stmt cache[DB_STMT_CACHE_MAX];
	int ncache;
	unsigned next_id;
	bool pipeline;
	struct pg_pending *pend;
	size_t npend, pend_cap;
};

static bool sqlstate_is(const char *st, const char *want)
{
	return st != NULL && strcmp(st, want) == 0;
}

static int map_sqlstate(PGconn *pg, const char *st)
{
	if (PQstatus(pg) != CONNECTION_OK)
		return DB_ERR_UNAVAILABLE;
	if (st == NULL)
		return DB_ERR;
	if (sqlstate_is(st, "23505"))
		return DB_ERR_CONFLICT;
	if (sqlstate_is(st, "23503"))
		return DB_ERR_FK;
	if (sqlstate_is(st, "23502") || sqlstate_is(st, "23514"))
		return DB_ERR_CHECK;
	if (sqlstate_is(st, "40001") || sqlstate_is(st, "40P01"))
		return DB_ERR_RETRY;
	if (sqlstate_is(st, "57P01") || sqlstate_is(st, "57P02") ||
	    sqlstate_is(st, "57P03"))
		return DB_ERR_UNAVAILABLE;
	if (strncmp(st, "08", 2) == 0 && !sqlstate_is(st, "08P01"))
		return DB_ERR_UNAVAILABLE;
	return DB_ERR;
}

/* Error of res (may be NULL) into c->errmsg, mapped to a db_status. */
static int pg_err(struct db_conn *c, PGconn *pg, const PGresult *res)
{
	const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
				      : NULL;
	int code = map_sqlstate(pg, st);

	if (msg == NULL)
		msg = PQerrorMessage(pg);
	db_set_err(c, code, "%s%s%s%s", msg, st != NULL ? " (SQLSTATE " : "",
		   st != NULL ? st : "", st != NULL ? ")" : "");
	/* libpq messages end in a newline: drop it. */
	size_t n = strlen(c->errmsg);
	while (n > 0 && (c->errmsg[n - 1] == '\n' || c->errmsg[n - 1] == '\r'))
		c->errmsg[--n] = '\0';
	return code;
}

static bool res_ok(const PGresult *res)
{
	ExecStatusType s = PQresultStatus(res);

	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* NOTICEs (e.g. "table does not exist, skipping") are not errors, and this
 * layer never writes to stderr. */
static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static int pg_connect(struct db_conn *c, const char *target, int busy_timeout_ms)
{
	/* Earlier keywords are overridden by the URL (expand_dbname). */
	const char *const keys[] = { "connect_timeout", "dbname", NULL };
	const char *const vals[] = { "5", target, NULL };
	struct pg_conn *pc = calloc(1, sizeof *pc);
	PGresult *res = NULL;
	int rc = DB_ERR_UNAVAILABLE;

	(void)busy_timeout_ms;
	if (pc == NULL)
		return db_set_err(c, DB_ERR, "out of memory");
	pc->pg = PQconnectdbParams(keys, vals, 1);
	if (pc->pg == NULL) {
		rc = db_set_err(c, DB_ERR, "out of memory");
		goto out;
	}
	if (PQstatus(pc->pg) != CONNECTION_OK) {
		pg_err(c, pc->pg, NULL);
		rc = DB_ERR_UNAVAILABLE;
		goto out;
	}
	PQsetNoticeProcessor(pc->pg, ignore_notice, NULL);
	res = PQexec(pc->pg, "SET TimeZone='UTC'; SET application_name='pytake'");
	if (res == NULL || !res_ok(res)) {
		rc = pg_err(c, pc->pg, res);
		goto out;
	}
	c->impl = pc;
	pc = NULL;
	rc = DB_OK;
out:
	PQclear(res);
	if (pc != NULL) {
		PQfinish(pc->pg);
		free(pc);
	}
	return rc;
}

static void pg_disconnect(struct db_conn *c)
{
	struct pg_conn *pc = c->impl;

	if (pc == NULL)
		return;
	for (int i = 0; i < pc->ncache; i++)
		free(pc->cache[i].sql);
	PQfinish(pc->pg);
	free(pc->pend);
	free(pc);
	c->impl = NULL;
}

/* A cache slot for a new statement: a dead one (its sql freed by the
 * caller), else the next unused; -1 when the cache is full. */
static int free_slot(struct pg_conn *pc)
{
	for (int i = 0; i < pc->ncache; i++)
		if (pc->cache[i].dead)
			return i;
	return pc->ncache < DB_STMT_CACHE_MAX ? pc->ncache : -1;
}

/* The cached prepared statement for sql; *out NULL when the cache is full
 * (run unnamed). */
/* The live cached statement for sql, or NULL. */
static const struct pg_stmt *stmt_find(const struct pg_conn *pc, const char *sql)
{
	for (int i = 0; i < pc->ncache; i++)
		if (!pc->cache[i].dead && strcmp(pc->cache[i].sql, sql) == 0)
			return &pc->cache[i];
	return NULL;
}

static int stmt_get(struct db_conn *c, struct pg_conn *pc, const char *sql,
		    const struct pg_stmt **out)
{
	struct pg_stmt *e;
	PGresult *res = NULL;
	int rc = DB_OK;

	*out = stmt_find(pc, sql);
	if (*out != NULL)
		return DB_OK;
	int slot = free_slot(pc);
	if (slot < 0)
		return DB_OK;
	e = &pc->cache[slot];
	free(e->sql);
	*e = (struct pg_stmt){ .sql = NULL, .dead = true }; /* until it is ready */
	snprintf(e->name, sizeof e->name, "pt_%u", pc->next_id++);
	res = PQprepare(pc->pg, e->name, sql, 0, NULL);
	if (res == NULL || !res_ok(res)) {
		rc = pg_err(c, pc->pg, res);
		goto out;
	}
	PQclear(res);
	res = PQdescribePrepared(pc->pg, e->name);
	if (res == NULL || !res_ok(res)) {
		rc = pg_err(c, pc->pg, res);
		goto out;
	}
	e->nparams = PQnparams(res);
	e->sql = strdup(sql);
	if (e->sql == NULL) {
		rc = db_set_err(c, DB_ERR, "out of memory");
		goto out;
	}
	e->dead = false;
	if (slot == pc->ncache)
		pc->ncache++;
	*out = e;
out:
	PQclear(res);
	return rc;
}

/* Text (or binary, for blobs) form of every parameter. */
struct pg_args {
	const char **values;
	int *lengths, *formats;
	char *scratch; /* n * PG_NUM_LEN: numbers, and text copies below */
	char **copies; /* DB_TEXT with explicit length, NUL-terminated */
	int n;
};

static void args_free(struct pg_args *a)
{
	if (a->copies != NULL)
		for (int i = 0; i < a->n; i++)
			free(a->copies[i]);
	free(a->values);
	free(a->lengths);
	free(a->formats);
	free(a->scratch);
	free(a->copies);
}

static int arg_one(struct pg_args *a, int i, const struct db_param *p)
{
	char *num = a->scratch + (size_t)i * PG_NUM_LEN;

	switch (p->type) {
	case DB_NULL:
		a->values[i] = NULL;
		return 0;
	case DB_TEXT:
		if (p->s != NULL && p->len > 0) {
			a->copies[i] = strndup(p->s, p->len);
			if (a->copies[i] == NULL)
				return -1;
			a->values[i] = a->copies[i];
		} else {
			a->values[i] = p->s;
		}
		return 0;
	case DB_INT:
		snprintf(num, PG_NUM_LEN, "%lld", (long long)p->i);
		a->values[i] = num;
		return 0;
	case DB_BOOL:
		a->values[i] = p->i != 0 ? "true" : "false";
		return 0;
	case DB_MONEY:
		db_money_format(p->i, num, PG_NUM_LEN);
		a->values[i] = num;
		return 0;
	case DB_BLOB:
		a->values[i] = p->s != NULL ? p->s : "";
		a->lengths[i] = (int)p->len;
		a->formats[i] = 1;
		return p->len > (size_t)INT32_MAX ? -1 : 0;
	}
	return -1;
}

static int args_build(struct pg_args *a, const struct db_param *params, int n)
{
	size_t sz = n > 0 ? (size_t)n : 1;

	a->n = n;
	a->values = calloc(sz, sizeof *a->values);
	a->lengths = calloc(sz, sizeof *a->lengths);
	a->formats = calloc(sz, sizeof *a->formats);
	a->scratch = calloc(sz, PG_NUM_LEN);
	a->copies = calloc(sz, sizeof *a->copies);
	if (a->values == NULL || a->lengths == NULL || a->formats == NULL ||
	    a->scratch == NULL || a->copies == NULL)
		return -1;
	for (int i = 0; i < n; i++)
		if (arg_one(a, i, &params[i]) != 0)
			return -1;
	return 0;
}

static int add_value(struct db_res *r, const PGresult *res, int row, int col)
{
	const char *v;
	unsigned char *raw;
	size_t len = 0;
	int rc;

	if (PQgetisnull(res, row, col))
		return db_res_add_cell(r, NULL, 0);
	v = PQgetvalue(res, row, col);
	if (PQftype(res, col) != PG_BYTEA_OID)
		return db_res_add_cell(r, v, (size_t)PQgetlength(res, row, col));
	raw = PQunescapeBytea((const unsigned char *)v, &len);
	if (raw == NULL)
		return DB_ERR;
	rc = db_res_add_cell(r, (const char *)raw, len);
	PQfreemem(raw);
	return rc;
}

static int copy_result(struct db_conn *c, const PGresult *res, struct db_res **out)
{
	int nrows = PQntuples(res), ncols = PQnfields(res);
	struct db_res *r = db_res_new(DB_ENGINE_PG, ncols);
	int rc = DB_OK;

	if (r == NULL)
		return db_set_err(c, DB_ERR, "out of memory");
	for (int i = 0; i < ncols && rc == DB_OK; i++)
		rc = db_res_set_colname(r, i, PQfname(res, i));
	for (int row = 0; row < nrows && rc == DB_OK; row++) {
		for (int col = 0; col < ncols && rc == DB_OK; col++)
			rc = add_value(r, res, row, col);
		db_res_end_row(r);
	}
	if (rc != DB_OK) {
		db_res_free(r);
		return db_set_err(c, DB_ERR, "out of memory");
	}
	*out = r;
	return DB_OK;
}

static void set_affected(const PGresult *res, int64_t *affected)
{
	const char *status = PQcmdStatus((PGresult *)res);
	int64_t n = 0;

	if (affected == NULL)
		return;
	if (status != NULL && strncmp(status, "SELECT", 6) == 0)
		n = 0;
	else if (db_parse_int64(PQcmdTuples((PGresult *)res), &n) != 0)
		n = 0;
	*affected = n;
}

static int pg_exec_queued(struct db_conn *c, const char *sql, const struct db_param *params,
			  int nparams, struct db_res **out, int64_t *affected);
static int pg_pipeline_sync(struct db_conn *c);
static int pg_pipeline_end(struct db_conn *c);

static int pg_exec(struct db_conn *c, const char *sql, const struct db_param *params,
		   int nparams, struct db_res **out, int64_t *affected)
{
	struct pg_conn *pc = c->impl;
	if (pc->pipeline) {
		int prc = pg_exec_queued(c, sql, params, nparams, out, affected);
		return prc != DB_OK ? prc : pg_pipeline_sync(c);
	}
	const struct pg_stmt *st = NULL;
	struct pg_args a = { 0 };
	PGresult *res = NULL;
	int rc = stmt_get(c, pc, sql, &st);
	int n = nparams;

	if (rc != DB_OK)
		goto out;
	if (st != NULL) {
		if (nparams < st->nparams) {
			rc = db_set_err(c, DB_ERR, "statement needs %d parameters, %d given",
					st->nparams, nparams);
			goto out;
		}
		n = st->nparams;
	}
	if (args_build(&a, params, n) != 0) {
		rc = db_set_err(c, DB_ERR, "out of memory or parameter too large");
		goto out;
	}
	if (st != NULL)
		res = PQexecPrepared(pc->pg, st->name, n, a.values, a.lengths, a.formats, 0);
	else
		res = PQexecParams(pc->pg, sql, n, NULL, a.values, a.lengths, a.formats, 0);
	if (res == NULL || !res_ok(res)) {
		rc = pg_err(c, pc->pg, res);
		goto out;
	}
	set_affected(res, affected);
	if (out != NULL)
		rc = copy_result(c, res, out);
out:
	args_free(&a);
	PQclear(res);
	return rc;
}

static int pg_exec_script(struct db_conn *c, const char *sql)
{
	struct pg_conn *pc = c->impl;
	PGresult *res = NULL;
	int rc = DB_OK;

	if (pc->pipeline) {
		/* A failed pipeline fails a COMMIT (PostgreSQL would answer a
		 * COMMIT of the aborted transaction with a silent ROLLBACK);
		 * a ROLLBACK still runs. */
		rc = pg_pipeline_end(c);
		if (rc != DB_OK && (c->broken || pc->pipeline || strncmp(sql, "ROLLBACK", 8) != 0))
			return rc;
		rc = DB_OK;
	}
	res = PQexec(pc->pg, sql);
	if (res == NULL || !res_ok(res))
		rc = pg_err(c, pc->pg, res);
	PQclear(res);
	return rc;
}

static int pg_begin(struct db_conn *c, bool write)
{
	(void)write;
	return pg_exec_script(c, "BEGIN");
}

static int pg_lock_xact(struct db_conn *c, int64_t key)
{
	struct db_param p = { .type = DB_INT, .i = key };

	return pg_exec(c, "SELECT pg_advisory_xact_lock($1::bigint)", &p, 1, NULL, NULL);
}

static bool pg_in_tx(struct db_conn *c)
{
	struct pg_conn *pc = c->impl;
	PGTransactionStatusType s;

	if (pc == NULL)
		return false;
	if (pc->pipeline)
		return true; /* release must end it (and roll back) */
	s = PQtransactionStatus(pc->pg);
	return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

/* ---- pipeline mode ---- */

static int pg_pipeline_begin(struct db_conn *c)
{
	struct pg_conn *pc = c->impl;

	if (pc->pipeline)
		return DB_OK;
	if (PQenterPipelineMode(pc->pg) != 1)
		return pg_err(c, pc->pg, NULL);
	pc->pipeline = true;
	return DB_OK;
}

static int pend_push(struct db_conn *c, struct pg_conn *pc, int stmt, struct db_res **out,
		     int64_t *affected)
{
	if (pc->npend == pc->pend_cap) {
		size_t cap = pc->pend_cap > 0 ? pc->pend_cap * 2 : 64;
		struct pg_pending *p = realloc(pc->pend, cap * sizeof *p);
		if (p == NULL)
			return db_set_err(c, DB_ERR, "out of memory");
		pc->pend = p;
		pc->pend_cap = cap;
	}
	pc->pend[pc->npend++] = (struct pg_pending){ .stmt = stmt, .out = out,
						     .affected = affected };
	return DB_OK;
}

/* The highest $n of sql: the parameter count of a statement prepared
 * without a describe round trip. */
static int max_param(const char *sql)
{
	int max = 0;
	for (const char *p = strchr(sql, '$'); p != NULL; p = strchr(p + 1, '$')) {
		int v = 0;
		const char *d = p + 1;
		while (*d >= '0' && *d <= '9' && v < 100000)
			v = v * 10 + (*d++ - '0');
		if (v > max)
			max = v;
	}
	return max;
}

/* The cached statement for sql, prepared in the pipeline when new; *out
 * NULL when the cache is full (run unnamed). */
static int stmt_get_queued(struct db_conn *c, struct pg_conn *pc, const char *sql,
			   const struct pg_stmt **out)
{
	struct pg_stmt *e;

	*out = stmt_find(pc, sql);
	if (*out != NULL)
		return DB_OK;
	int slot = free_slot(pc);
	if (slot < 0)
		return DB_OK;
	e = &pc->cache[slot];
	free(e->sql);
	*e = (struct pg_stmt){ .nparams = max_param(sql), .dead = true };
	snprintf(e->name, sizeof e->name, "pt_%u", pc->next_id++);
	e->sql = strdup(sql);
	if (e->sql == NULL)
		return db_set_err(c, DB_ERR, "out of memory");
	if (pend_push(c, pc, slot, NULL, NULL) != DB_OK)
		return DB_ERR;
	if (PQsendPrepare(pc->pg, e->name, sql, 0, NULL) != 1) {
		pc->npend--;
		return pg_err(c, pc->pg, NULL);
	}
	e->dead = false; /* used from now on; dead again if the prepare fails */
	if (slot == pc->ncache)
		pc->ncache++;
	*out = e;
	return DB_OK;
}

static int pg_exec_queued(struct db_conn *c, const char *sql, const struct db_param *params,
			  int nparams, struct db_res **out, int64_t *affected)
{
	struct pg_conn *pc = c->impl;
	const struct pg_stmt *st = NULL;
	struct pg_args a = { 0 };
	int rc, n = nparams, sent;

	if (!pc->pipeline)
		return pg_exec(c, sql, params, nparams, out, affected);
	rc = stmt_get_queued(c, pc, sql, &st);
	if (rc != DB_OK)
		goto out;
	if (st != NULL) {
		if (nparams < st->nparams) {
			rc = db_set_err(c, DB_ERR, "statement needs %d parameters, %d given",
					st->nparams, nparams);
			goto out;
		}
		n = st->nparams;
	}
	if (args_build(&a, params, n) != 0) {
		rc = db_set_err(c, DB_ERR, "out of memory or parameter too large");
		goto out;
	}
	rc = pend_push(c, pc, -1, out, affected);
	if (rc != DB_OK)
		goto out;
	if (st != NULL)
		sent = PQsendQueryPrepared(pc->pg, st->name, n, a.values, a.lengths, a.formats, 0);
	else
		sent = PQsendQueryParams(pc->pg, sql, n, NULL, a.values, a.lengths, a.formats, 0);
	if (sent != 1) {
		pc->npend--;
		rc = pg_err(c, pc->pg, NULL);
	}
out:
	args_free(&a);
	return rc;
}

/* The result of one pending item (res may be NULL: nothing came). */
static int pend_result(struct db_conn *c, struct pg_conn *pc, const struct pg_pending *p,
		       PGresult *res, int rc)
{
	ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	bool ok = res != NULL && res_ok(res);

	if (p->stmt >= 0 && !ok)
		pc->cache[p->stmt].dead = true; /* not prepared: never use it */
	if (!ok) {
		/* PIPELINE_ABORTED: skipped after the error already kept. */
		if (rc == DB_OK && st != PGRES_PIPELINE_ABORTED)
			rc = pg_err(c, pc->pg, res);
		else if (rc == DB_OK)
			rc = db_set_err(c, DB_ERR, "pipeline aborted");
		return rc;
	}
	if (p->stmt < 0) {
		set_affected(res, p->affected);
		if (p->out != NULL && rc == DB_OK)
			rc = copy_result(c, res, p->out);
	}
	return rc;
}

static int pg_pipeline_sync(struct db_conn *c)
{
	struct pg_conn *pc = c->impl;
	int rc = DB_OK;
	PGresult *res;

	if (!pc->pipeline || pc->npend == 0)
		return DB_OK;
	if (PQpipelineSync(pc->pg) != 1) {
		rc = pg_err(c, pc->pg, NULL);
		goto broken;
	}
	for (size_t i = 0; i < pc->npend; i++) {
		res = PQgetResult(pc->pg);
		if (res == NULL) {
			rc = rc != DB_OK ? rc : pg_err(c, pc->pg, NULL);
			goto broken;
		}
		rc = pend_result(c, pc, &pc->pend[i], res, rc);
		PQclear(res);
		/* each statement's results end with a NULL */
		while ((res = PQgetResult(pc->pg)) != NULL)
			PQclear(res);
	}
	pc->npend = 0;
	res = PQgetResult(pc->pg);
	if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
		PQclear(res);
		rc = rc != DB_OK ? rc : db_set_err(c, DB_ERR, "pipeline out of step");
		goto broken;
	}
	PQclear(res);
	return rc;
broken:
	/* The protocol state is unknown: drop the connection. */
	for (size_t i = 0; i < pc->npend; i++)
		if (pc->pend[i].stmt >= 0)
			pc->cache[pc->pend[i].stmt].dead = true;
	pc->npend = 0;
	c->broken = true;
	return rc != DB_OK ? rc : DB_ERR_UNAVAILABLE;
}

static int pg_pipeline_end(struct db_conn *c)
{
	struct pg_conn *pc = c->impl;
	int rc;

	if (!pc->pipeline)
		return DB_OK;
	rc = pg_pipeline_sync(c);
	if (c->broken)
		return rc;
	if (PQexitPipelineMode(pc->pg) != 1) {
		c->broken = true;
		return rc != DB_OK ? rc : pg_err(c, pc->pg, NULL);
	}
	pc->pipeline = false;
	return rc;
}

const struct db_ops db_ops_pg = {
	.engine = DB_ENGINE_PG,
	.name = "postgresql",
	.connect = pg_connect,
	.disconnect = pg_disconnect,
	.exec = pg_exec,
	.exec_script = pg_exec_script,
	.begin = pg_begin,
	.lock_xact = pg_lock_xact,
	.in_tx = pg_in_tx,
	.pipeline_begin = pg_pipeline_begin,
	.exec_queued = pg_exec_queued,
	.pipeline_sync = pg_pipeline_sync,
	.pipeline_end = pg_pipeline_end,
};
