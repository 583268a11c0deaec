/* db_impl: what db.c shares with the engine backends (db_sqlite.c,
 * db_pg.c). Not for domain code: include "db/db.h" instead.
 *
 * Design: struct db owns a fixed array of struct db_conn slots guarded by
 * one mutex + condvar (the pool). A slot connects lazily on first acquire;
 * a slot whose connection broke (DB_ERR_UNAVAILABLE) is reconnected on its
 * next acquire, so the server recovers after a database restart. Every
 * engine operation goes through struct db_ops; results of both engines are
 * materialised into the same struct db_res (copies), so the accessors in
 * db.c do not depend on the engine except for money parsing. */
#ifndef PYTAKE_DB_IMPL_H
#define PYTAKE_DB_IMPL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define DB_ERRMSG_LEN 512
#define DB_STMT_CACHE_MAX 256 /* prepared statements kept per connection */

struct db_ops {
	enum db_engine engine;
	const char *name;
	/* Connect c (c->impl is NULL). DB_OK or DB_ERR_UNAVAILABLE/DB_ERR with
	 * c->errmsg set. */
	int (*connect)(struct db_conn *c, const char *target, int busy_timeout_ms);
	/* Free everything c->impl holds; sets c->impl = NULL. */
	void (*disconnect)(struct db_conn *c);
	int (*exec)(struct db_conn *c, const char *sql,
		    const struct db_param *params, int nparams,
		    struct db_res **out, int64_t *affected);
	int (*exec_script)(struct db_conn *c, const char *sql);
	/* BEGIN (write: SQLite BEGIN IMMEDIATE). */
	int (*begin)(struct db_conn *c, bool write);
	int (*lock_xact)(struct db_conn *c, int64_t key);
	/* True when a transaction is open (release rolls it back). */
	bool (*in_tx)(struct db_conn *c);
	/* Pipelining (db.h); NULL on engines without it (SQLite): then
	 * exec_queued is exec and the other three do nothing. in_tx must be
	 * true while a pipeline is open, and exec/exec_script must work
	 * inside one (exec: queue + sync; exec_script: end it first). */
	int (*pipeline_begin)(struct db_conn *c);
	int (*exec_queued)(struct db_conn *c, const char *sql,
			   const struct db_param *params, int nparams,
			   struct db_res **out, int64_t *affected);
	int (*pipeline_sync)(struct db_conn *c);
	int (*pipeline_end)(struct db_conn *c);
};

extern const struct db_ops db_ops_sqlite;

/* SQLite checkpointer (db_sqlite.c header), process-wide: wake it past
 * soft_frames WAL frames, RESTART under the write gate past hard_bytes
 * (<= 0: the defaults, 1000 frames and 64 MiB); tests shrink them. Counts:
 * passes run, and bounded (gated) checkpoints among them. */
void db_sqlite_checkpoint_limits(long soft_frames, long long hard_bytes);
void db_sqlite_checkpoint_counts(uint64_t *passive, uint64_t *bounded);
extern const struct db_ops db_ops_pg;

struct db_conn {
	struct db *db;
	void *impl;     /* engine connection state, NULL until connected */
	bool broken;    /* reconnect on next acquire */
	bool in_use;
	char errmsg[DB_ERRMSG_LEN];
};

/* One value of a result: offset into db_res.buf (NUL-terminated there). */
struct db_cell {
	size_t off;
	size_t len;
	bool null;
};

struct db_res {
	enum db_engine engine;
	int nrows, ncols;
	size_t *colname_off;    /* ncols offsets into buf */
	struct db_cell *cells;  /* nrows * ncols, row-major */
	size_t ncells, cells_cap; /* cells filled / allocated */
	char *buf;              /* all text, each value NUL-terminated */
	size_t buf_len, buf_cap;
};

/* Builders used by the backends. All return DB_OK or DB_ERR (no memory). */
struct db_res *db_res_new(enum db_engine engine, int ncols);
int db_res_set_colname(struct db_res *r, int col, const char *name);
/* Append one cell to the row being built (row-major order, ncols per row);
 * v may be NULL for SQL NULL. Rows are counted by db_res_end_row. */
int db_res_add_cell(struct db_res *r, const char *v, size_t len);
void db_res_end_row(struct db_res *r);

/* printf into c->errmsg; returns code (so: return db_set_err(c, DB_ERR, ...)). */
int db_set_err(struct db_conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Money as PostgreSQL NUMERIC text, through core/money.c. db_money_format
 * writes exact decimal text with 6 fraction digits ("12.500000",
 * "-0.000100") into buf (needs DB_MONEY_TEXT_LEN bytes; money_format).
 * db_money_parse reads "[-+]digits[.digits]" into micro-units, rounding
 * half-even beyond 6 fraction digits (money_parse_numeric); returns 0, or
 * -1 on malformed text or int64 overflow. */
#define DB_MONEY_TEXT_LEN 32
void db_money_format(int64_t micros, char *buf, size_t len);
int db_money_parse(const char *s, int64_t *out) __attribute__((warn_unused_result));

/* Strict decimal int64 ("-12"; no spaces, no trailing junk). 0 or -1. */
int db_parse_int64(const char *s, int64_t *out) __attribute__((warn_unused_result));

#endif
