/* db: storage behind one opaque handle, with a PostgreSQL backend (libpq)
 * and an embedded SQLite backend, chosen by DATABASE_URL:
 *   sqlite:data/pytake.db   sqlite:/abs/path.db   sqlite::memory: (tests)
 *   postgresql://user:pw@host:port/db   postgres://...
 *
 * SQL is written once for both engines with PostgreSQL-style numbered
 * parameters $1..$n (the SQLite backend binds them by name). Statements are
 * prepared once per connection and cached by their text.
 *
 * Representation rules shared by both engines (so domain code never asks
 * which engine it runs on):
 *   - ids: UUID (PostgreSQL uuid, SQLite TEXT), always passed/read as text;
 *   - timestamps: BIGINT microseconds since the epoch, UTC ("*_at");
 *   - booleans: passed with DB_BOOL, read with db_get_bool();
 *   - JSON documents: TEXT/JSONB, passed and read as text;
 *   - money: NUMERIC(18,6) in PostgreSQL, INTEGER micro-units in SQLite;
 *     passed with DB_MONEY (micro-units) and read with db_get_money().
 *
 * Connections come from a bounded pool: db_acquire() waits up to the pool
 * timeout and returns NULL when none frees up (the caller answers 503).
 * A connection is used by one thread at a time.
 *
 * Errors: functions return DB_OK (0) or a negative enum db_status; the
 * connection keeps the last error message (db_errmsg) — this layer never
 * logs. */
#ifndef PYTAKE_DB_H
#define PYTAKE_DB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct db_conn;
struct db_res;

enum db_engine { DB_ENGINE_SQLITE = 1, DB_ENGINE_PG = 2 };

enum db_status {
	DB_OK = 0,
	DB_ERR = -1,          /* anything else: bad SQL, type error... */
	DB_ERR_CONFLICT = -2, /* unique/primary key violation (23505) */
	DB_ERR_FK = -3,       /* foreign key violation (23503) */
	DB_ERR_RETRY = -4,    /* serialization failure/deadlock (40001/40P01),
	                         SQLITE_BUSY/LOCKED: the transaction may be retried */
	DB_ERR_UNAVAILABLE = -5, /* cannot connect / connection lost / pool
	                            exhausted: answer 503 */
	DB_ERR_CHECK = -6,    /* CHECK or NOT NULL constraint */
};

struct db_options {
	int pool_size;         /* connections, >= 1 */
	int acquire_timeout_ms; /* wait for a free connection (default 5000) */
	int busy_timeout_ms;   /* SQLite busy_timeout (default 5000) */
};

/* Open the pool (connections are made lazily, the first one eagerly so a
 * bad URL fails here). On failure returns NULL-out and a message in err. */
int db_open(const char *url, const struct db_options *opt, struct db **out,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Close every connection; waits for none (call after workers stopped).
 * db_close(NULL) is a no-op. */
void db_close(struct db *db);
enum db_engine db_engine(const struct db *db);
const char *db_engine_name(const struct db *db); /* "sqlite" | "postgresql" */

/* Pool statistics for /metrics. */
struct db_pool_stats { int size, in_use, waiting; uint64_t acquired, timeouts; };
void db_pool_stats(struct db *db, struct db_pool_stats *out);

struct db_conn *db_acquire(struct db *db);
void db_release(struct db *db, struct db_conn *c);
struct db *db_conn_db(struct db_conn *c);
const char *db_errmsg(struct db_conn *c);

/* Parameters. */
enum db_type { DB_NULL = 0, DB_TEXT, DB_INT, DB_BOOL, DB_MONEY, DB_BLOB };
struct db_param {
	enum db_type type;
	const char *s;  /* DB_TEXT (NUL-terminated unless len > 0), DB_BLOB */
	size_t len;     /* DB_BLOB length; DB_TEXT optional length */
	int64_t i;      /* DB_INT, DB_BOOL (0/1), DB_MONEY (micro-units) */
};
#define DBP_NULL ((struct db_param){ .type = DB_NULL })
/* A function, not `(v) ? ...`, so DBP_TEXT(char_array) does not trip -Waddress. */
static inline enum db_type db_text_or_null_(const char *s)
{
	return s != NULL ? DB_TEXT : DB_NULL;
}
#define DBP_TEXT(v) ((struct db_param){ .type = db_text_or_null_(v), .s = (v) })
#define DBP_TEXTN(v, n) ((struct db_param){ .type = DB_TEXT, .s = (v), .len = (n) })
#define DBP_INT(v) ((struct db_param){ .type = DB_INT, .i = (int64_t)(v) })
#define DBP_BOOL(v) ((struct db_param){ .type = DB_BOOL, .i = (v) ? 1 : 0 })
#define DBP_MONEY(v) ((struct db_param){ .type = DB_MONEY, .i = (int64_t)(v) })
#define DBP_BLOB(p, n) ((struct db_param){ .type = DB_BLOB, .s = (const char *)(p), .len = (n) })

/* Run one statement. When out is not NULL the rows are returned (caller
 * frees with db_res_free); *affected (may be NULL) gets the changed-row
 * count of INSERT/UPDATE/DELETE. */
int db_exec(struct db_conn *c, const char *sql, const struct db_param *params,
	    int nparams, struct db_res **out, int64_t *affected)
	__attribute__((warn_unused_result));
/* Run SQL text that may hold several statements and no parameters
 * (migrations). */
int db_exec_script(struct db_conn *c, const char *sql)
	__attribute__((warn_unused_result));

/* Pipelining: fewer round trips for runs of statements (PostgreSQL
 * pipeline mode; on SQLite, whose calls are in-process, every statement
 * simply runs at once and these are no-ops).
 *   db_pipeline_begin(c)  enter pipeline mode;
 *   db_exec_queued(...)   like db_exec, but on PostgreSQL the statement is
 *                         only sent: *out / *affected are filled, and its
 *                         error is reported, by the next db_pipeline_sync
 *                         (SQLite: at once). The parameters may be freed
 *                         when it returns;
 *   db_pipeline_sync(c)   wait for every queued statement, in order; the
 *                         first error is returned and the statements queued
 *                         after the failed one are not run (a transaction
 *                         open on c is then failed: roll it back);
 *   db_pipeline_end(c)    sync what is queued and leave pipeline mode.
 * Inside a pipeline db_exec (and db_lock_xact) = queue + sync, so code that
 * needs a result in the middle still works (one round trip, which also
 * flushes what was queued before it); db_exec_script and db_release end
 * the pipeline first. Queued statements must have small results (they wait
 * in the server's socket buffer until the sync). */
int db_pipeline_begin(struct db_conn *c) __attribute__((warn_unused_result));
int db_exec_queued(struct db_conn *c, const char *sql, const struct db_param *params,
		   int nparams, struct db_res **out, int64_t *affected)
	__attribute__((warn_unused_result));
int db_pipeline_sync(struct db_conn *c) __attribute__((warn_unused_result));
int db_pipeline_end(struct db_conn *c) __attribute__((warn_unused_result));

/* Results: rows x columns, read by index. Text is valid until db_res_free. */
int db_rows(const struct db_res *r);
int db_cols(const struct db_res *r);
const char *db_colname(const struct db_res *r, int col);
bool db_isnull(const struct db_res *r, int row, int col);
const char *db_get_text(const struct db_res *r, int row, int col); /* NULL if null */
size_t db_get_len(const struct db_res *r, int row, int col);
int64_t db_get_int(const struct db_res *r, int row, int col);      /* 0 if null */
bool db_get_bool(const struct db_res *r, int row, int col);
int64_t db_get_money(const struct db_res *r, int row, int col);    /* micro-units */
void db_res_free(struct db_res *r);

/* Transactions.
 * db_tx runs fn inside BEGIN..COMMIT on a pooled connection (SQLite: BEGIN
 * IMMEDIATE when write is true, so writers queue on the lock instead of
 * deadlocking). When fn, or COMMIT, returns DB_ERR_RETRY the transaction is
 * rolled back and run again after an exponential backoff with jitter
 * (5 ms doubling, at most 8 attempts, ~2 s in all), then DB_ERR_RETRY is
 * returned. Any other non-zero return of fn rolls back and is returned
 * as-is (so fn may return its own positive codes). fn must be safe to run
 * more than once: no side effects outside the database. */
typedef int (*db_tx_fn)(struct db_conn *c, void *ctx);
int db_tx(struct db *db, bool write, db_tx_fn fn, void *ctx)
	__attribute__((warn_unused_result));
/* Count of retried transactions, for /metrics. */
uint64_t db_tx_retries(struct db *db);

/* A process-wide advisory lock held for the life of the connection's
 * transaction (PostgreSQL pg_advisory_xact_lock; SQLite: BEGIN IMMEDIATE
 * already excludes other writers, so this is a no-op there). */
int db_lock_xact(struct db_conn *c, int64_t key) __attribute__((warn_unused_result));

/* SQLite write gate (db_sqlite.c): from this call on, the calling
 * thread's write transactions wait until no other thread of the process
 * is waiting at the gate (background work, e.g. the webhook processor,
 * stands aside for the webhook ack path). false restores the default
 * (first come). No effect on PostgreSQL. */
void db_thread_write_background(bool on);

/* Cheap liveness probe for /ready ("SELECT 1"). */
int db_ping(struct db *db) __attribute__((warn_unused_result));

#endif
