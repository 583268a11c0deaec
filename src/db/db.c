/* db: the pool, dispatch to the engine through struct db_ops, the
 * transaction helper and the result accessors shared by both engines.
 *
 * Pool: a fixed array of slots, a free stack, one mutex and a condvar
 * (CLOCK_MONOTONIC timed waits). Slots connect lazily; the first connects
 * in db_open so a bad URL fails early. A slot marked broken is disconnected
 * and connected again on its next acquire.
 *
 * `sqlite::memory:` gives every connection its own private database, so the
 * pool is clamped to one connection for it (tests only). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "core/money.h"
#include "db/db.h"
#include "db/db_impl.h"

#define DB_TX_MAX_ATTEMPTS 8
#define DB_TX_BASE_BACKOFF_US 5000
#define DB_DEFAULT_ACQUIRE_MS 5000
#define DB_DEFAULT_BUSY_MS 5000
#define DB_MAX_POOL 1024

struct db {
	const struct db_ops *ops;
	char *target;          /* path (SQLite) or libpq URL (PostgreSQL) */
	int busy_timeout_ms;
	int acquire_timeout_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct db_conn *slots; /* size */
	struct db_conn **free_stack;
	int size, nfree, waiting;
	uint64_t acquired, timeouts;
	atomic_uint_fast64_t tx_retries;
};

int db_set_err(struct db_conn *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- URL ---- */

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* Engine and target (path or libpq URL) of url; target is malloc'd. */
static int parse_url(const char *url, const struct db_ops **ops, char **target,
		     char *err, size_t errlen)
{
	const char *t = NULL;

	if (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://")) {
		*ops = &db_ops_pg;
		t = url;
	} else if (has_prefix(url, "sqlite://")) {
		*ops = &db_ops_sqlite;
		t = url + strlen("sqlite://");
	} else if (has_prefix(url, "sqlite:")) {
		*ops = &db_ops_sqlite;
		t = url + strlen("sqlite:");
	}
	if (t == NULL || *t == '\0') {
		snprintf(err, errlen,
			 "DATABASE_URL: expected sqlite:PATH, sqlite::memory: or "
			 "postgresql://..., got a value starting \"%.12s\"", url);
		return -1;
	}
	*target = strdup(t);
	if (*target == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- pool ---- */

static int pool_init(struct db *db, int size)
{
	pthread_condattr_t ca;

	db->slots = calloc((size_t)size, sizeof *db->slots);
	db->free_stack = calloc((size_t)size, sizeof *db->free_stack);
	if (db->slots == NULL || db->free_stack == NULL)
		return -1;
	db->size = size;
	/* Slot 0 on top: it is the one connected eagerly. */
	for (int i = 0; i < size; i++) {
		db->slots[i].db = db;
		db->free_stack[i] = &db->slots[size - 1 - i];
	}
	db->nfree = size;
	if (pthread_mutex_init(&db->mu, NULL) != 0)
		return -1;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&db->cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc == 0 ? 0 : -1;
}

static int conn_connect(struct db *db, struct db_conn *c)
{
	c->errmsg[0] = '\0';
	return db->ops->connect(c, db->target, db->busy_timeout_ms);
}

int db_open(const char *url, const struct db_options *opt, struct db **out,
	    char *err, size_t errlen)
{
	struct db *db = NULL;
	int rc = -1;
	int size;

	*out = NULL;
	if (url == NULL) {
		snprintf(err, errlen, "DATABASE_URL is empty");
		return -1;
	}
	db = calloc(1, sizeof *db);
	if (db == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (parse_url(url, &db->ops, &db->target, err, errlen) != 0)
		goto out;
	size = opt != NULL && opt->pool_size > 0 ? opt->pool_size : 1;
	if (size > DB_MAX_POOL)
		size = DB_MAX_POOL;
	if (db->ops == &db_ops_sqlite && strcmp(db->target, ":memory:") == 0)
		size = 1; /* each connection would be its own database */
	db->acquire_timeout_ms = opt != NULL && opt->acquire_timeout_ms > 0
					 ? opt->acquire_timeout_ms : DB_DEFAULT_ACQUIRE_MS;
	db->busy_timeout_ms = opt != NULL && opt->busy_timeout_ms > 0
				      ? opt->busy_timeout_ms : DB_DEFAULT_BUSY_MS;
	atomic_init(&db->tx_retries, 0);
	if (pool_init(db, size) != 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (conn_connect(db, &db->slots[0]) != DB_OK) {
		snprintf(err, errlen, "%s: %s", db->ops->name, db->slots[0].errmsg);
		goto out;
	}
	*out = db;
	db = NULL;
	rc = 0;
out:
	db_close(db);
	return rc;
}

void db_close(struct db *db)
{
	if (db == NULL)
		return;
	if (db->slots != NULL) {
		for (int i = 0; i < db->size; i++)
			if (db->slots[i].impl != NULL)
				db->ops->disconnect(&db->slots[i]);
		pthread_mutex_destroy(&db->mu);
		pthread_cond_destroy(&db->cv);
	}
	free(db->slots);
	free(db->free_stack);
	free(db->target);
	free(db);
}

enum db_engine db_engine(const struct db *db)
{
	return db->ops->engine;
}

const char *db_engine_name(const struct db *db)
{
	return db->ops->name;
}

void db_pool_stats(struct db *db, struct db_pool_stats *out)
{
	pthread_mutex_lock(&db->mu);
	out->size = db->size;
	out->in_use = db->size - db->nfree;
	out->waiting = db->waiting;
	out->acquired = db->acquired;
	out->timeouts = db->timeouts;
	pthread_mutex_unlock(&db->mu);
}

static struct timespec deadline_after_ms(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Take a free slot, waiting up to the acquire timeout; NULL on timeout. */
static struct db_conn *pool_take(struct db *db)
{
	struct timespec until = deadline_after_ms(db->acquire_timeout_ms);
	struct db_conn *c = NULL;

	pthread_mutex_lock(&db->mu);
	db->waiting++;
	while (db->nfree == 0) {
		int rc = pthread_cond_timedwait(&db->cv, &db->mu, &until);
		if (rc == ETIMEDOUT && db->nfree == 0) {
			db->timeouts++;
			goto out;
		}
	}
	c = db->free_stack[--db->nfree];
	c->in_use = true;
	db->acquired++;
out:
	db->waiting--;
	pthread_mutex_unlock(&db->mu);
	return c;
}

static void pool_put(struct db *db, struct db_conn *c)
{
	pthread_mutex_lock(&db->mu);
	c->in_use = false;
	db->free_stack[db->nfree++] = c;
	pthread_cond_signal(&db->cv);
	pthread_mutex_unlock(&db->mu);
}

struct db_conn *db_acquire(struct db *db)
{
	struct db_conn *c = pool_take(db);

	if (c == NULL)
		return NULL;
	if (c->broken && c->impl != NULL) {
		db->ops->disconnect(c);
		c->broken = false;
	}
	if (c->impl == NULL && conn_connect(db, c) != DB_OK) {
		pool_put(db, c);
		return NULL;
	}
	c->errmsg[0] = '\0';
	return c;
}

void db_release(struct db *db, struct db_conn *c)
{
	if (c == NULL)
		return;
	/* A transaction left open by mistake must not leak into the next user. */
	if (!c->broken && c->impl != NULL && db->ops->in_tx(c) &&
	    db->ops->exec_script(c, "ROLLBACK") != DB_OK)
		c->broken = true;
	pool_put(db, c);
}

struct db *db_conn_db(struct db_conn *c)
{
	return c->db;
}

const char *db_errmsg(struct db_conn *c)
{
	return c != NULL ? c->errmsg : "no connection";
}

/* ---- statements ---- */

static int note_unavailable(struct db_conn *c, int rc)
{
	if (rc == DB_ERR_UNAVAILABLE)
		c->broken = true;
	return rc;
}

/* What db_exec and db_exec_queued check before the engine runs anything:
 * outputs cleared, connection usable, parameter list sane. DB_OK or the
 * error (also in c->errmsg). */
static int exec_precheck(struct db_conn *c, const struct db_param *params, int nparams,
			 struct db_res **out, int64_t *affected)
{
	if (out != NULL)
		*out = NULL;
	if (affected != NULL)
		*affected = 0;
	if (c->broken)
		return db_set_err(c, DB_ERR_UNAVAILABLE, "connection is broken");
	if (nparams < 0 || (nparams > 0 && params == NULL))
		return db_set_err(c, DB_ERR, "bad parameter list");
	return DB_OK;
}

int db_exec(struct db_conn *c, const char *sql, const struct db_param *params,
	    int nparams, struct db_res **out, int64_t *affected)
{
	int rc = exec_precheck(c, params, nparams, out, affected);

	if (rc != DB_OK)
		return rc;
	c->errmsg[0] = '\0';
	return note_unavailable(c, c->db->ops->exec(c, sql, params, nparams, out,
						     affected));
}

int db_exec_script(struct db_conn *c, const char *sql)
{
	if (c->broken)
		return db_set_err(c, DB_ERR_UNAVAILABLE, "connection is broken");
	c->errmsg[0] = '\0';
	return note_unavailable(c, c->db->ops->exec_script(c, sql));
}

int db_pipeline_begin(struct db_conn *c)
{
	if (c->broken)
		return db_set_err(c, DB_ERR_UNAVAILABLE, "connection is broken");
	if (c->db->ops->pipeline_begin == NULL)
		return DB_OK;
	return note_unavailable(c, c->db->ops->pipeline_begin(c));
}

int db_exec_queued(struct db_conn *c, const char *sql, const struct db_param *params,
		   int nparams, struct db_res **out, int64_t *affected)
{
	int rc;

	if (c->db->ops->exec_queued == NULL)
		return db_exec(c, sql, params, nparams, out, affected);
	rc = exec_precheck(c, params, nparams, out, affected);
	if (rc != DB_OK)
		return rc;
	return note_unavailable(c, c->db->ops->exec_queued(c, sql, params, nparams, out,
							   affected));
}

int db_pipeline_sync(struct db_conn *c)
{
	if (c->broken)
		return db_set_err(c, DB_ERR_UNAVAILABLE, "connection is broken");
	if (c->db->ops->pipeline_sync == NULL)
		return DB_OK;
	return note_unavailable(c, c->db->ops->pipeline_sync(c));
}

int db_pipeline_end(struct db_conn *c)
{
	if (c->broken)
		return db_set_err(c, DB_ERR_UNAVAILABLE, "connection is broken");
	if (c->db->ops->pipeline_end == NULL)
		return DB_OK;
	return note_unavailable(c, c->db->ops->pipeline_end(c));
}

int db_lock_xact(struct db_conn *c, int64_t key)
{
	if (c->broken)
		return db_set_err(c, DB_ERR_UNAVAILABLE, "connection is broken");
	return note_unavailable(c, c->db->ops->lock_xact(c, key));
}

/* ---- transactions ---- */

/* xorshift64* per thread: jitter needs spread, not secrecy. */
static uint64_t jitter_rand(void)
{
	static _Thread_local uint64_t s;

	if (s == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    (uint64_t)(uintptr_t)&s;
		if (s == 0)
			s = 0x9e3779b97f4a7c15ULL;
	}
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 0x2545f4914f6cdd1dULL;
}

/* Full jitter: uniform in [0, base * 2^(attempt-1)]. */
static void backoff_sleep(int attempt)
{
	uint64_t cap = (uint64_t)DB_TX_BASE_BACKOFF_US << (attempt - 1);
	uint64_t us = jitter_rand() % (cap + 1);
	struct timespec ts = { .tv_sec = (time_t)(us / 1000000),
			       .tv_nsec = (long)(us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* One attempt: BEGIN, fn, COMMIT; rolls back on any failure. *began
 * tells whether BEGIN went through (if not, nothing at all ran). */
static int tx_attempt(struct db_conn *c, bool write, db_tx_fn fn, void *ctx, bool *began)
{
	const struct db_ops *ops = c->db->ops;
	int rc = note_unavailable(c, ops->begin(c, write));

	*began = rc == DB_OK;
	if (rc != DB_OK)
		goto out;
	rc = fn(c, ctx);
	if (rc == DB_OK)
		rc = db_exec_script(c, "COMMIT");
out:
	if (rc != DB_OK && !c->broken && ops->in_tx(c) &&
	    ops->exec_script(c, "ROLLBACK") != DB_OK)
		c->broken = true;
	return rc;
}

int db_tx(struct db *db, bool write, db_tx_fn fn, void *ctx)
{
	struct db_conn *c = db_acquire(db);
	int rc = DB_ERR_UNAVAILABLE;

	if (c == NULL)
		return DB_ERR_UNAVAILABLE;
	bool reconnected = false;
	for (int attempt = 1; attempt <= DB_TX_MAX_ATTEMPTS; attempt++) {
		bool began = false;
		rc = tx_attempt(c, write, fn, ctx, &began);
		if (rc == DB_ERR_UNAVAILABLE && !began && !reconnected) {
			/* A pooled connection that went stale while idle (the
			 * server restarted): nothing ran, so take a fresh one and
			 * try once more instead of failing this caller. */
			db_release(db, c);
			c = db_acquire(db);
			if (c == NULL)
				return DB_ERR_UNAVAILABLE;
			reconnected = true;
			attempt--;
			continue;
		}
		if (rc != DB_ERR_RETRY || c->broken || attempt == DB_TX_MAX_ATTEMPTS)
			break;
		atomic_fetch_add(&db->tx_retries, 1);
		backoff_sleep(attempt);
	}
	db_release(db, c);
	return rc;
}

uint64_t db_tx_retries(struct db *db)
{
	return (uint64_t)atomic_load(&db->tx_retries);
}

int db_ping(struct db *db)
{
	struct db_conn *c = db_acquire(db);
	int rc;

	if (c == NULL)
		return DB_ERR_UNAVAILABLE;
	rc = db_exec(c, "SELECT 1", NULL, 0, NULL, NULL);
	db_release(db, c);
	if (rc == DB_ERR_UNAVAILABLE) {
		/* maybe a connection gone stale while idle: one fresh try */
		if ((c = db_acquire(db)) == NULL)
			return DB_ERR_UNAVAILABLE;
		rc = db_exec(c, "SELECT 1", NULL, 0, NULL, NULL);
		db_release(db, c);
	}
	return rc;
}

/* ---- results ---- */

struct db_res *db_res_new(enum db_engine engine, int ncols)
{
	struct db_res *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->engine = engine;
	r->ncols = ncols;
	if (ncols > 0) {
		r->colname_off = calloc((size_t)ncols, sizeof *r->colname_off);
		if (r->colname_off == NULL) {
			free(r);
			return NULL;
		}
	}
	return r;
}

/* Copy len bytes plus a NUL into buf; offset in *off. */
static int res_append(struct db_res *r, const char *v, size_t len, size_t *off)
{
	if (len > SIZE_MAX / 2 - r->buf_len - 1)
		return DB_ERR;
	if (r->buf_len + len + 1 > r->buf_cap) {
		size_t cap = r->buf_cap != 0 ? r->buf_cap : 256;
		while (cap < r->buf_len + len + 1)
			cap *= 2;
		char *nb = realloc(r->buf, cap);
		if (nb == NULL)
			return DB_ERR;
		r->buf = nb;
		r->buf_cap = cap;
	}
	if (len > 0)
		memcpy(r->buf + r->buf_len, v, len);
	r->buf[r->buf_len + len] = '\0';
	*off = r->buf_len;
	r->buf_len += len + 1;
	return DB_OK;
}

int db_res_set_colname(struct db_res *r, int col, const char *name)
{
	if (col < 0 || col >= r->ncols)
		return DB_ERR;
	if (name == NULL)
		name = "";
	return res_append(r, name, strlen(name), &r->colname_off[col]);
}

int db_res_add_cell(struct db_res *r, const char *v, size_t len)
{
	if (r->ncells == r->cells_cap) {
		size_t cap = r->cells_cap != 0 ? r->cells_cap * 2 : 16;
		if (cap > SIZE_MAX / sizeof *r->cells)
			return DB_ERR;
		struct db_cell *nc = realloc(r->cells, cap * sizeof *nc);
		if (nc == NULL)
			return DB_ERR;
		r->cells = nc;
		r->cells_cap = cap;
	}
	struct db_cell *cell = &r->cells[r->ncells];
	cell->null = v == NULL;
	cell->len = v != NULL ? len : 0;
	if (res_append(r, v != NULL ? v : "", cell->len, &cell->off) != DB_OK)
		return DB_ERR;
	r->ncells++;
	return DB_OK;
}

void db_res_end_row(struct db_res *r)
{
	r->nrows++;
}

void db_res_free(struct db_res *r)
{
	if (r == NULL)
		return;
	free(r->colname_off);
	free(r->cells);
	free(r->buf);
	free(r);
}

int db_rows(const struct db_res *r)
{
	return r != NULL ? r->nrows : 0;
}

int db_cols(const struct db_res *r)
{
	return r != NULL ? r->ncols : 0;
}

const char *db_colname(const struct db_res *r, int col)
{
	if (r == NULL || col < 0 || col >= r->ncols)
		return NULL;
	return r->buf + r->colname_off[col];
}

static const struct db_cell *cell_at(const struct db_res *r, int row, int col)
{
	if (r == NULL || row < 0 || row >= r->nrows || col < 0 || col >= r->ncols)
		return NULL;
	return &r->cells[(size_t)row * (size_t)r->ncols + (size_t)col];
}

bool db_isnull(const struct db_res *r, int row, int col)
{
	const struct db_cell *cell = cell_at(r, row, col);

	return cell == NULL || cell->null;
}

const char *db_get_text(const struct db_res *r, int row, int col)
{
	const struct db_cell *cell = cell_at(r, row, col);

	return cell == NULL || cell->null ? NULL : r->buf + cell->off;
}

size_t db_get_len(const struct db_res *r, int row, int col)
{
	const struct db_cell *cell = cell_at(r, row, col);

	return cell == NULL ? 0 : cell->len;
}

int db_parse_int64(const char *s, int64_t *out)
{
	char *end = NULL;
	long long v;

	if (s == NULL || *s == '\0' || !(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = (int64_t)v;
	return 0;
}

int64_t db_get_int(const struct db_res *r, int row, int col)
{
	const char *s = db_get_text(r, row, col);
	int64_t v = 0;

	if (s == NULL || db_parse_int64(s, &v) != 0)
		return 0;
	return v;
}

bool db_get_bool(const struct db_res *r, int row, int col)
{
	const char *s = db_get_text(r, row, col);

	if (s == NULL)
		return false;
	return strcmp(s, "t") == 0 || strcmp(s, "true") == 0 || strcmp(s, "1") == 0;
}

int64_t db_get_money(const struct db_res *r, int row, int col)
{
	const char *s = db_get_text(r, row, col);
	int64_t v = 0;

	if (s == NULL)
		return 0;
	if (r->engine == DB_ENGINE_SQLITE)
		return db_parse_int64(s, &v) == 0 ? v : 0;
	return db_money_parse(s, &v) == 0 ? v : 0;
}

/* ---- money text ---- */

/* The engines' names for the core/money.c functions (db_pg.c formats
 * DB_MONEY parameters with db_money_format). */
void db_money_format(int64_t micros, char *buf, size_t len)
{
	money_format(micros, buf, len);
}

int db_money_parse(const char *s, int64_t *out)
{
	return money_parse_numeric(s, out) == MONEY_OK ? 0 : -1;
}
