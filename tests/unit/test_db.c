/* Unit tests for db: the same cases run against SQLite (a temp file) and,
 * when PYTAKE_TEST_PG_URL names a superuser URL of a running server, against
 * PostgreSQL in a fresh database created and dropped here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "db/db.h"
#include "db/db_impl.h"
#include "db/migrate.h"

/* ---- a throwaway database per engine ---- */

struct tdb {
	enum db_engine engine;
	struct db *db;
	char url[512];
	char dir[64];       /* SQLite: temp directory */
	char pgname[64];    /* PostgreSQL: database name */
	const char *admin;  /* PostgreSQL: superuser URL */
};

static int admin_exec(const char *admin, const char *sql)
{
	struct db_options o = { .pool_size = 1 };
	char err[256];
	struct db *a = NULL;
	struct db_conn *c;
	int rc = -1;

	if (db_open(admin, &o, &a, err, sizeof err) != 0) {
		fprintf(stderr, "admin connect: %s\n", err);
		return -1;
	}
	c = db_acquire(a);
	if (c != NULL) {
		rc = db_exec_script(c, sql);
		if (rc != DB_OK)
			fprintf(stderr, "admin: %s\n", db_errmsg(c));
	}
	db_release(a, c);
	db_close(a);
	return rc;
}

/* admin URL with its database replaced by name. */
static int pg_url_for(const char *admin, const char *name, char *out, size_t len)
{
	const char *auth = strstr(admin, "://");
	const char *slash = auth != NULL ? strchr(auth + 3, '/') : NULL;
	const char *query = strchr(admin, '?');
	size_t host_len = slash != NULL ? (size_t)(slash - admin)
			  : query != NULL ? (size_t)(query - admin) : strlen(admin);
	int n = snprintf(out, len, "%.*s/%s%s", (int)host_len, admin, name,
			 query != NULL ? query : "");

	return n > 0 && (size_t)n < len ? 0 : -1;
}

static int tdb_create(struct tdb *t, enum db_engine engine, int pool)
{
	static int seq;
	struct db_options o = { .pool_size = pool, .acquire_timeout_ms = 5000 };
	char err[512], sql[160];

	memset(t, 0, sizeof *t);
	t->engine = engine;
	if (engine == DB_ENGINE_SQLITE) {
		snprintf(t->dir, sizeof t->dir, "/tmp/pytake-test-db-XXXXXX");
		if (mkdtemp(t->dir) == NULL)
			return -1;
		snprintf(t->url, sizeof t->url, "sqlite:%s/t.db", t->dir);
	} else {
		t->admin = getenv("PYTAKE_TEST_PG_URL");
		snprintf(t->pgname, sizeof t->pgname, "t_%d_%d_%lld", (int)getpid(), ++seq,
			 (long long)(time_mono_us() % 1000000));
		snprintf(sql, sizeof sql, "CREATE DATABASE %s", t->pgname);
		if (admin_exec(t->admin, sql) != 0 ||
		    pg_url_for(t->admin, t->pgname, t->url, sizeof t->url) != 0)
			return -1;
	}
	if (db_open(t->url, &o, &t->db, err, sizeof err) != 0) {
		fprintf(stderr, "db_open %s: %s\n", t->url, err);
		return -1;
	}
	return 0;
}

static void tdb_destroy(struct tdb *t)
{
	char path[128], sql[160];
	static const char *const suffix[] = { "", "-wal", "-shm" };

	db_close(t->db);
	t->db = NULL;
	if (t->engine == DB_ENGINE_SQLITE && t->dir[0] != '\0') {
		for (size_t i = 0; i < 3; i++) {
			snprintf(path, sizeof path, "%s/t.db%s", t->dir, suffix[i]);
			unlink(path);
		}
		rmdir(t->dir);
	} else if (t->engine == DB_ENGINE_PG && t->pgname[0] != '\0') {
		snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->pgname);
		(void)admin_exec(t->admin, sql);
	}
}

/* ---- fixtures ---- */

static const char schema[] =
	"DROP TABLE IF EXISTS child;\n"
	"DROP TABLE IF EXISTS parent;\n"
	"DROP TABLE IF EXISTS vals;\n"
	"CREATE TABLE parent (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE,\n"
	"  qty BIGINT NOT NULL DEFAULT 0 CHECK (qty >= 0)) STRICT;\n"
	"CREATE TABLE child (id BIGINT PRIMARY KEY,\n"
	"  parent_id BIGINT NOT NULL REFERENCES parent (id)) STRICT;\n"
	"CREATE TABLE vals (id BIGINT PRIMARY KEY, t TEXT, i BIGINT, b BOOLEAN,\n"
	"  m NUMERIC(18,6), bl BYTEA, u UUID) STRICT;\n";

static int group_setup_sqlite(void **state)
{
	struct tdb *t = calloc(1, sizeof *t);

	if (t == NULL || tdb_create(t, DB_ENGINE_SQLITE, 4) != 0)
		return -1;
	*state = t;
	return 0;
}

static int group_setup_pg(void **state)
{
	struct tdb *t = calloc(1, sizeof *t);

	if (t == NULL || tdb_create(t, DB_ENGINE_PG, 4) != 0)
		return -1;
	*state = t;
	return 0;
}

static int group_teardown(void **state)
{
	struct tdb *t = *state;

	tdb_destroy(t);
	free(t);
	return 0;
}

/* Fresh tables before each case. */
static int reset_tables(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c = db_acquire(t->db);
	char *sql = migrate_sql_for(schema, t->engine);
	int rc = c != NULL && sql != NULL ? db_exec_script(c, sql) : -1;

	if (rc != 0)
		fprintf(stderr, "reset: %s\n", db_errmsg(c));
	free(sql);
	db_release(t->db, c);
	return rc == 0 ? 0 : -1;
}

static int64_t count_rows(struct db *db, const char *table)
{
	char sql[96];
	struct db_res *r = NULL;
	struct db_conn *c = db_acquire(db);
	int64_t n = -1;

	snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
	if (c != NULL && db_exec(c, sql, NULL, 0, &r, NULL) == DB_OK)
		n = db_get_int(r, 0, 0);
	db_res_free(r);
	db_release(db, c);
	return n;
}

static void insert_parent(struct db_conn *c, int64_t id, const char *name, int want)
{
	struct db_param p[] = { DBP_INT(id), DBP_TEXT(name) };

	assert_int_equal(db_exec(c, "INSERT INTO parent (id, name) VALUES ($1, $2)", p, 2,
				 NULL, NULL), want);
}

/* ---- cases ---- */

struct val_case {
	int64_t id;
	struct db_param t, i, b, m, bl, u;
	const char *want_t;
	size_t want_bl_len;
};


static void check_val_row(const struct db_res *r, const struct val_case *vc)
{
	if (vc->want_t == NULL)
		assert_true(db_isnull(r, 0, 0));
	else
		assert_string_equal(db_get_text(r, 0, 0), vc->want_t);
	assert_int_equal(db_isnull(r, 0, 1), vc->i.type == DB_NULL);
	assert_true(db_get_int(r, 0, 1) == (vc->i.type == DB_NULL ? 0 : vc->i.i));
	assert_int_equal(db_isnull(r, 0, 2), vc->b.type == DB_NULL);
	assert_int_equal(db_get_bool(r, 0, 2), vc->b.type != DB_NULL && vc->b.i != 0);
	assert_int_equal(db_isnull(r, 0, 3), vc->m.type == DB_NULL);
	assert_true(db_get_money(r, 0, 3) == (vc->m.type == DB_NULL ? 0 : vc->m.i));
	assert_int_equal(db_isnull(r, 0, 4), vc->bl.type == DB_NULL);
	if (vc->bl.type != DB_NULL) {
		assert_int_equal(db_get_len(r, 0, 4), vc->want_bl_len);
		assert_memory_equal(db_get_text(r, 0, 4), vc->bl.s, vc->want_bl_len);
	}
	if (vc->u.type != DB_NULL)
		assert_string_equal(db_get_text(r, 0, 5), vc->u.s);
}

static void test_param_roundtrip(void **state)
{
	struct tdb *t = *state;
	const struct val_case val_cases[] = {
		{ 1, DBP_TEXT("h\xc3\xa9llo 'sq' \"dq\" $1"), DBP_INT(INT64_MAX), DBP_BOOL(true),
		  DBP_MONEY(12500000), DBP_BLOB("\0\1\2\xff", 4),
		  DBP_TEXT("0190f5b2-7c1e-7abc-8def-0123456789ab"), "h\xc3\xa9llo 'sq' \"dq\" $1", 4 },
		{ 2, DBP_TEXTN("abcdef", 3), DBP_INT(INT64_MIN), DBP_BOOL(false), DBP_MONEY(-100),
		  DBP_BLOB("", 0), DBP_NULL, "abc", 0 },
		{ 3, DBP_TEXT(""), DBP_INT(0), DBP_BOOL(true), DBP_MONEY(999999999999999999LL),
		  DBP_NULL, DBP_NULL, "", 0 },
		{ 4, DBP_NULL, DBP_NULL, DBP_NULL, DBP_MONEY(-999999999999999999LL), DBP_NULL,
		  DBP_NULL, NULL, 0 },
		{ 5, DBP_TEXT(NULL), DBP_INT(-1), DBP_BOOL(false), DBP_MONEY(1), DBP_NULL,
		  DBP_NULL, NULL, 0 },
		{ 6, DBP_NULL, DBP_NULL, DBP_NULL, DBP_NULL, DBP_NULL, DBP_NULL, NULL, 0 },
	};
	struct db_conn *c = db_acquire(t->db);

	assert_non_null(c);
	for (size_t k = 0; k < sizeof val_cases / sizeof val_cases[0]; k++) {
		const struct val_case *vc = &val_cases[k];
		struct db_param p[] = { DBP_INT(vc->id), vc->t, vc->i, vc->b, vc->m, vc->bl, vc->u };
		struct db_param q = DBP_INT(vc->id);
		struct db_res *r = NULL;
		int64_t aff = -1;
		assert_int_equal(db_exec(c, "INSERT INTO vals (id, t, i, b, m, bl, u) VALUES "
					 "($1, $2, $3, $4, $5, $6, $7)", p, 7, NULL, &aff), DB_OK);
		assert_int_equal(aff, 1);
		assert_int_equal(db_exec(c, "SELECT t, i, b, m, bl, u FROM vals WHERE id = $1",
					 &q, 1, &r, NULL), DB_OK);
		assert_int_equal(db_rows(r), 1);
		assert_int_equal(db_cols(r), 6);
		check_val_row(r, vc);
		db_res_free(r);
	}
	db_release(t->db, c);
}

/* Statements with many parameters, in any order or repeated, bind each $k
 * to the k-th value; and more distinct statements than the cache holds
 * still run right (SQLite maps slots to $k once per prepared statement,
 * see the note on top of src/db/db_sqlite.c). */
#define MANY_ROWS 1500
static void test_many_parameters(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c = db_acquire(t->db);
	static struct db_param p[2 * MANY_ROWS];
	static char sql[2 * MANY_ROWS * 16 + 128];
	struct db_res *r = NULL;
	size_t n = 0;

	assert_non_null(c);
	/* Row k: id $k, i $(MANY_ROWS + k), written in reverse order. */
	n += (size_t)snprintf(sql + n, sizeof sql - n, "INSERT INTO vals (i, id) VALUES ");
	for (int k = MANY_ROWS; k >= 1; k--)
		n += (size_t)snprintf(sql + n, sizeof sql - n, "%s($%d, $%d)",
				      k == MANY_ROWS ? "" : ", ", MANY_ROWS + k, k);
	for (int k = 0; k < MANY_ROWS; k++)
		p[k] = (struct db_param)DBP_INT(k + 1);
	for (int round = 0; round < 2; round++) { /* prepared, then cached */
		struct db_param m = DBP_INT(7 + round);
		int64_t aff = 0;
		for (int k = 0; k < MANY_ROWS; k++) /* other values, same text */
			p[MANY_ROWS + k] = (struct db_param)DBP_INT((7 + round) * (k + 1) + 3);
		assert_int_equal(db_exec(c, sql, p, 2 * MANY_ROWS, NULL, &aff), DB_OK);
		assert_int_equal(aff, MANY_ROWS);
		assert_int_equal(db_exec(c, "SELECT COUNT(*) FROM vals WHERE i = $1 * id + 3", &m,
					 1, &r, NULL), DB_OK);
		assert_int_equal(db_get_int(r, 0, 0), MANY_ROWS);
		db_res_free(r);
		assert_int_equal(db_exec(c, "DELETE FROM vals", NULL, 0, NULL, NULL), DB_OK);
	}
	/* $3 twice, $2 next, $1 last. */
	{
		struct db_param q[] = { DBP_INT(100), DBP_TEXT("two"), DBP_INT(3) };
		assert_int_equal(db_exec(c, "SELECT CAST($3 AS BIGINT) + CAST($3 AS BIGINT), CAST($2 AS TEXT) "
					 "WHERE CAST($1 AS BIGINT) = 100", q, 3, &r, NULL), DB_OK);
		assert_int_equal(db_get_int(r, 0, 0), 6);
		assert_string_equal(db_get_text(r, 0, 1), "two");
		db_res_free(r);
		/* too few supplied: an error, nothing run */
		assert_int_equal(db_exec(c, "SELECT CAST($3 AS BIGINT) + CAST($3 AS BIGINT), CAST($2 AS TEXT) "
					 "WHERE CAST($1 AS BIGINT) = 100", q, 2, &r, NULL), DB_ERR);
		assert_true(strlen(db_errmsg(c)) > 0);
	}
	/* More distinct statements than the cache keeps (eviction), twice. */
	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < DB_STMT_CACHE_MAX + 40; k++) {
			struct db_param q[] = { DBP_INT(k), DBP_INT(round) };
			char text[96];
			snprintf(text, sizeof text, "SELECT CAST($2 AS BIGINT) * 1000000 + CAST($1 AS BIGINT) + %d", k);
			assert_int_equal(db_exec(c, text, q, 2, &r, NULL), DB_OK);
			assert_true(db_get_int(r, 0, 0) == round * 1000000 + 2 * k);
			db_res_free(r);
		}
	}
	db_release(t->db, c);
}

static void test_money_compare_in_sql(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c = db_acquire(t->db);
	struct db_param p[] = { DBP_INT(1), DBP_MONEY(12500000) };
	struct db_param q[] = { DBP_MONEY(12500000), DBP_MONEY(2500000) };
	struct db_res *r = NULL;

	assert_int_equal(db_exec(c, "INSERT INTO vals (id, m) VALUES ($1, $2)", p, 2, NULL,
				 NULL), DB_OK);
	/* A money parameter compares and adds exactly on both engines. */
	assert_int_equal(db_exec(c, "SELECT m + $2, m = $1 FROM vals WHERE m = $1", q, 2, &r,
				 NULL), DB_OK);
	assert_int_equal(db_rows(r), 1);
	assert_true(db_get_money(r, 0, 0) == 15000000);
	assert_true(db_get_bool(r, 0, 1));
	db_res_free(r);
	db_release(t->db, c);
}

static void test_colnames(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c = db_acquire(t->db);
	struct db_res *r = NULL;

	insert_parent(c, 1, "one", DB_OK);
	insert_parent(c, 2, "two", DB_OK);
	assert_int_equal(db_exec(c, "SELECT id, name AS label FROM parent ORDER BY id", NULL,
				 0, &r, NULL), DB_OK);
	assert_int_equal(db_rows(r), 2);
	assert_string_equal(db_colname(r, 0), "id");
	assert_string_equal(db_colname(r, 1), "label");
	assert_null(db_colname(r, 2));
	assert_string_equal(db_get_text(r, 1, 1), "two");
	assert_null(db_get_text(r, 2, 0)); /* out of range */
	db_res_free(r);
	db_release(t->db, c);
}

static void test_conflict_fk_check(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c = db_acquire(t->db);
	struct db_param child_bad[] = { DBP_INT(1), DBP_INT(999) };
	struct db_param neg[] = { DBP_INT(5), DBP_TEXT("neg"), DBP_INT(-1) };
	struct db_param null_name[] = { DBP_INT(6), DBP_NULL };

	insert_parent(c, 1, "a", DB_OK);
	insert_parent(c, 2, "a", DB_ERR_CONFLICT); /* unique */
	assert_true(strlen(db_errmsg(c)) > 0);
	insert_parent(c, 1, "b", DB_ERR_CONFLICT); /* primary key */
	assert_int_equal(db_exec(c, "INSERT INTO child (id, parent_id) VALUES ($1, $2)",
				 child_bad, 2, NULL, NULL), DB_ERR_FK);
	assert_int_equal(db_exec(c, "INSERT INTO parent (id, name, qty) VALUES ($1, $2, $3)",
				 neg, 3, NULL, NULL), DB_ERR_CHECK);
	assert_int_equal(db_exec(c, "INSERT INTO parent (id, name) VALUES ($1, $2)",
				 null_name, 2, NULL, NULL), DB_ERR_CHECK);
	/* The connection is still fine afterwards. */
	insert_parent(c, 3, "c", DB_OK);
	db_release(t->db, c);
	assert_int_equal(count_rows(t->db, "parent"), 2);
}

static void test_errors(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c = db_acquire(t->db);
	struct db_param one = DBP_INT(1);
	struct db_res *r = NULL;

	assert_int_equal(db_exec(c, "SELEKT 1", NULL, 0, NULL, NULL), DB_ERR);
	assert_true(strlen(db_errmsg(c)) > 0);
	assert_int_equal(db_exec(c, "SELECT * FROM no_such_table", NULL, 0, &r, NULL), DB_ERR);
	assert_null(r);
	assert_int_equal(db_exec(c, "SELECT id FROM parent WHERE id = $1 OR id = $2", &one,
				 1, NULL, NULL), DB_ERR);
	assert_int_equal(db_exec(c, "SELECT 1", NULL, 0, NULL, NULL), DB_OK);
	db_release(t->db, c);
}

static void test_affected(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c = db_acquire(t->db);
	struct db_param big = DBP_INT(100);
	int64_t aff = -1;

	insert_parent(c, 1, "a", DB_OK);
	insert_parent(c, 2, "b", DB_OK);
	insert_parent(c, 3, "c", DB_OK);
	assert_int_equal(db_exec(c, "UPDATE parent SET qty = qty + 1", NULL, 0, NULL, &aff),
			 DB_OK);
	assert_int_equal(aff, 3);
	assert_int_equal(db_exec(c, "DELETE FROM parent WHERE id > $1", &big, 1, NULL, &aff),
			 DB_OK);
	assert_int_equal(aff, 0);
	assert_int_equal(db_exec(c, "SELECT id FROM parent", NULL, 0, NULL, &aff), DB_OK);
	assert_int_equal(aff, 0);
	assert_int_equal(db_exec(c, "DELETE FROM parent WHERE id < 3", NULL, 0, NULL, &aff),
			 DB_OK);
	assert_int_equal(aff, 2);
	db_release(t->db, c);
}

struct tx_ctx {
	int calls;
	int fail_times;   /* return DB_ERR_RETRY this many times */
	int ret;          /* then return this */
	int64_t next_id;
};

static int tx_insert(struct db_conn *c, void *arg)
{
	struct tx_ctx *x = arg;
	char name[32];
	int64_t id = x->next_id++;
	int rc;

	x->calls++;
	snprintf(name, sizeof name, "row%lld", (long long)id);
	struct db_param p[] = { DBP_INT(id), DBP_TEXT(name) };
	rc = db_exec(c, "INSERT INTO parent (id, name) VALUES ($1, $2)", p, 2, NULL, NULL);
	if (rc != DB_OK)
		return rc;
	if (x->calls <= x->fail_times)
		return DB_ERR_RETRY;
	return x->ret;
}

static void test_tx_commit_rollback(void **state)
{
	struct tdb *t = *state;
	struct tx_ctx commit = { .next_id = 1 }, mine = { .ret = 7, .next_id = 10 };
	struct tx_ctx dup = { .ret = 0, .next_id = 1 };

	assert_int_equal(db_tx(t->db, true, tx_insert, &commit), DB_OK);
	assert_int_equal(count_rows(t->db, "parent"), 1);
	/* fn's own positive code rolls back and comes back as-is. */
	assert_int_equal(db_tx(t->db, true, tx_insert, &mine), 7);
	assert_int_equal(mine.calls, 1);
	assert_int_equal(count_rows(t->db, "parent"), 1);
	/* A constraint error is not retried. */
	assert_int_equal(db_tx(t->db, false, tx_insert, &dup), DB_ERR_CONFLICT);
	assert_int_equal(dup.calls, 1);
	assert_int_equal(count_rows(t->db, "parent"), 1);
}

static void test_tx_retry(void **state)
{
	struct tdb *t = *state;
	struct tx_ctx x = { .fail_times = 2, .next_id = 1 };
	struct tx_ctx always = { .fail_times = 1000, .next_id = 100 };
	uint64_t before = db_tx_retries(t->db);

	assert_int_equal(db_tx(t->db, true, tx_insert, &x), DB_OK);
	assert_int_equal(x.calls, 3);
	assert_true(db_tx_retries(t->db) - before == 2);
	/* The rolled-back attempts left nothing behind. */
	assert_int_equal(count_rows(t->db, "parent"), 1);

	int64_t t0 = time_mono_us();
	assert_int_equal(db_tx(t->db, true, tx_insert, &always), DB_ERR_RETRY);
	assert_int_equal(always.calls, 8);
	assert_true(db_tx_retries(t->db) - before == 2 + 7);
	assert_true(time_mono_us() - t0 < 3000000);
	assert_int_equal(count_rows(t->db, "parent"), 1);
}

static void test_release_rolls_back(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c = db_acquire(t->db);

	assert_int_equal(db_exec_script(c, "BEGIN"), DB_OK);
	insert_parent(c, 1, "a", DB_OK);
	db_release(t->db, c); /* forgot to commit */
	assert_int_equal(count_rows(t->db, "parent"), 0);
}

/* Pipelining: queued results arrive at the sync, in order; db_exec in the
 * middle works; an error stops what follows it and the transaction rolls
 * back; release ends a pipeline left open. Same behaviour on both engines
 * (SQLite runs each statement at once). */
static void test_pipeline(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c = db_acquire(t->db);
	struct db_res *r1 = NULL, *r2 = NULL, *mid = NULL;
	int64_t aff = -1;
	const struct db_param p1[] = { DBP_INT(1), DBP_TEXT("a") };
	const struct db_param p2[] = { DBP_INT(2), DBP_TEXT("b") };
	const struct db_param p3[] = { DBP_INT(3), DBP_TEXT("a") }; /* duplicate name */
	const struct db_param up[] = { DBP_INT(5) };

	assert_int_equal(db_pipeline_begin(c), DB_OK);
	assert_int_equal(db_exec_queued(c, "BEGIN", NULL, 0, NULL, NULL), DB_OK);
	assert_int_equal(db_exec_queued(c, "INSERT INTO parent (id, name) VALUES ($1, $2)"
					   " RETURNING id", p1, 2, &r1, NULL), DB_OK);
	assert_int_equal(db_exec_queued(c, "INSERT INTO parent (id, name) VALUES ($1, $2)"
					   " RETURNING id", p2, 2, &r2, NULL), DB_OK);
	assert_int_equal(db_exec_queued(c, "UPDATE parent SET qty = $1", up, 1, NULL, &aff),
			 DB_OK);
	/* a result needed now: flushes the queue first, sees its effects */
	assert_int_equal(db_exec(c, "SELECT SUM(qty) FROM parent", NULL, 0, &mid, NULL), DB_OK);
	assert_int_equal(db_get_int(mid, 0, 0), 10);
	assert_int_equal(db_get_int(r1, 0, 0), 1);
	assert_int_equal(db_get_int(r2, 0, 0), 2);
	assert_int_equal(aff, 2);
	assert_int_equal(db_exec_queued(c, "COMMIT", NULL, 0, NULL, NULL), DB_OK);
	assert_int_equal(db_pipeline_end(c), DB_OK);
	db_res_free(r1);
	db_res_free(r2);
	db_res_free(mid);
	r1 = r2 = NULL;
	assert_int_equal(count_rows(t->db, "parent"), 2);

	/* an error in the middle: reported (by the call on SQLite, by the
	 * sync on PostgreSQL); nothing of the transaction stays */
	assert_int_equal(db_pipeline_begin(c), DB_OK);
	assert_int_equal(db_exec_script(c, "BEGIN"), DB_OK); /* ends the pipeline */
	assert_int_equal(db_pipeline_begin(c), DB_OK);
	const struct db_param p4[] = { DBP_INT(4), DBP_TEXT("d") };
	int rc = db_exec_queued(c, "INSERT INTO parent (id, name) VALUES ($1, $2) RETURNING id",
				p4, 2, &r1, NULL);
	assert_int_equal(rc, DB_OK);
	rc = db_exec_queued(c, "INSERT INTO parent (id, name) VALUES ($1, $2) RETURNING id", p3,
			    2, &r2, NULL);
	if (rc == DB_OK)
		rc = db_pipeline_sync(c);
	assert_int_equal(rc, DB_ERR_CONFLICT);
	assert_non_null(r1); /* before the error: filled */
	assert_null(r2);
	db_res_free(r1);
	db_release(t->db, c); /* ends the pipeline, rolls back */
	assert_int_equal(count_rows(t->db, "parent"), 2);

	/* the connection is fine afterwards, and a failed prepare in a
	 * pipeline does not poison the statement cache */
	c = db_acquire(t->db);
	assert_int_equal(db_pipeline_begin(c), DB_OK);
	assert_int_equal(db_exec_queued(c, "SELECT nosuchcol FROM parent", NULL, 0, NULL, NULL) ==
				 DB_OK
			 ? db_pipeline_sync(c) : DB_ERR,
			 DB_ERR);
	assert_int_equal(db_pipeline_end(c), DB_OK);
	assert_int_equal(db_exec(c, "SELECT COUNT(*) FROM parent", NULL, 0, &mid, NULL), DB_OK);
	assert_int_equal(db_get_int(mid, 0, 0), 2);
	db_res_free(mid);
	db_release(t->db, c);
}

static void test_pool_timeout(void **state)
{
	struct tdb *t = *state;
	struct db_options o = { .pool_size = 1, .acquire_timeout_ms = 100 };
	struct db_pool_stats st;
	struct db *db = NULL;
	char err[256];

	assert_int_equal(db_open(t->url, &o, &db, err, sizeof err), 0);
	struct db_conn *c1 = db_acquire(db);
	assert_non_null(c1);
	int64_t t0 = time_mono_us();
	assert_null(db_acquire(db));
	assert_true(time_mono_us() - t0 >= 90000);
	assert_int_equal(db_tx(db, false, tx_insert, &(struct tx_ctx){ .next_id = 1 }),
			 DB_ERR_UNAVAILABLE);
	db_pool_stats(db, &st);
	assert_int_equal(st.size, 1);
	assert_int_equal(st.in_use, 1);
	assert_int_equal(st.waiting, 0);
	assert_true(st.timeouts == 2);
	assert_true(st.acquired == 1);
	db_release(db, c1);
	struct db_conn *c2 = db_acquire(db);
	assert_ptr_equal(c2, c1);
	db_release(db, c2);
	db_pool_stats(db, &st);
	assert_int_equal(st.in_use, 0);
	assert_true(st.acquired == 2);
	db_close(db);
}

static void test_ping_and_names(void **state)
{
	struct tdb *t = *state;

	assert_int_equal(db_ping(t->db), DB_OK);
	assert_int_equal(db_engine(t->db), t->engine);
	assert_string_equal(db_engine_name(t->db),
			    t->engine == DB_ENGINE_PG ? "postgresql" : "sqlite");
}

/* Two writers: the second one's BEGIN IMMEDIATE is busy -> DB_ERR_RETRY, and
 * db_tx gives up after its bounded retries. */
static void test_sqlite_busy(void **state)
{
	struct tdb *t = *state;
	struct db_options o = { .pool_size = 1, .busy_timeout_ms = 1 };
	struct tx_ctx x = { .next_id = 1 };
	struct db *other = NULL;
	char err[256];

	if (t->engine != DB_ENGINE_SQLITE)
		skip();
	struct db_conn *c = db_acquire(t->db);
	assert_int_equal(db_exec_script(c, "BEGIN IMMEDIATE"), DB_OK);
	assert_int_equal(db_open(t->url, &o, &other, err, sizeof err), 0);
	struct db_conn *c2 = db_acquire(other);
	assert_int_equal(db_exec_script(c2, "BEGIN IMMEDIATE"), DB_ERR_RETRY);
	db_release(other, c2);
	assert_int_equal(db_tx(other, true, tx_insert, &x), DB_ERR_RETRY);
	assert_int_equal(x.calls, 0); /* never got past BEGIN */
	assert_true(db_tx_retries(other) == 7);
	assert_int_equal(db_exec_script(c, "COMMIT"), DB_OK);
	db_release(t->db, c);
	assert_int_equal(db_tx(other, true, tx_insert, &x), DB_OK);
	db_close(other);
}

/* The in-process write gate (db_sqlite.c): a writer waiting for another
 * connection's write transaction gets in as soon as it commits, instead of
 * after the busy handler's next sleep (1, 2, 5, 10, 15, 20 ms...: a 40 ms
 * transaction was seen ~13 ms late). Best of 5 handoffs, for a busy
 * machine. */
struct handoff {
	struct db *db;
	atomic_int stage;      /* 1: holder began; 2: waiter about to begin */
	int64_t committed_us;  /* when the holder's COMMIT returned */
	int64_t began_us;      /* when the waiter's BEGIN IMMEDIATE returned */
};

static void *handoff_waiter(void *arg)
{
	struct handoff *h = arg;
	struct db_conn *c = db_acquire(h->db);
	while (atomic_load(&h->stage) < 1)
		usleep(100);
	atomic_store(&h->stage, 2);
	int rc = db_exec_script(c, "BEGIN IMMEDIATE");
	h->began_us = time_mono_us();
	if (rc == DB_OK)
		rc = db_exec_script(c, "COMMIT");
	db_release(h->db, c);
	return rc == DB_OK ? NULL : (void *)1;
}

static void test_sqlite_write_handoff(void **state)
{
	struct tdb *t = *state;
	int64_t best = INT64_MAX;

	if (t->engine != DB_ENGINE_SQLITE)
		skip();
	for (int i = 0; i < 5; i++) {
		struct handoff h = { .db = t->db };
		pthread_t th;
		void *ret = NULL;
		struct db_conn *c = db_acquire(t->db);
		assert_int_equal(pthread_create(&th, NULL, handoff_waiter, &h), 0);
		assert_int_equal(db_exec_script(c, "BEGIN IMMEDIATE"), DB_OK);
		atomic_store(&h.stage, 1);
		while (atomic_load(&h.stage) < 2)
			usleep(100);
		usleep(40000); /* the waiter is blocked in BEGIN IMMEDIATE by now */
		assert_int_equal(db_exec_script(c, "COMMIT"), DB_OK);
		h.committed_us = time_mono_us();
		db_release(t->db, c);
		assert_int_equal(pthread_join(th, &ret), 0);
		assert_null(ret);
		if (h.began_us - h.committed_us < best)
			best = h.began_us - h.committed_us;
	}
	print_message("write lock handoff: best %lld us after the commit\n", (long long)best);
	assert_true(best < 8000);
}

/* Write gate priority (db_thread_write_background): a background writer
 * (the webhook processor) that was waiting first still goes after a
 * foreground one (the group-commit writer) that queued behind it; with
 * nobody else waiting it gets in. Before, the first waiter woken won. */
struct prio_waiter {
	struct db *db;
	bool background;
	atomic_int *ready;     /* incremented just before BEGIN IMMEDIATE */
	atomic_int *order;     /* shared counter: who began first */
	int began;             /* this waiter's place, 1-based */
};

static void *prio_waiter_main(void *arg)
{
	struct prio_waiter *w = arg;
	struct db_conn *c = db_acquire(w->db);
	db_thread_write_background(w->background);
	atomic_fetch_add(w->ready, 1);
	int rc = db_exec_script(c, "BEGIN IMMEDIATE");
	w->began = atomic_fetch_add(w->order, 1) + 1;
	usleep(2000); /* hold it a little: the other one must wait */
	if (rc == DB_OK)
		rc = db_exec_script(c, "COMMIT");
	db_release(w->db, c);
	db_thread_write_background(false);
	return rc == DB_OK ? NULL : (void *)1;
}

static void test_sqlite_write_background(void **state)
{
	struct tdb *t = *state;

	if (t->engine != DB_ENGINE_SQLITE)
		skip();
	for (int round = 0; round < 2; round++) {
		atomic_int ready = 0, order = 0;
		struct prio_waiter bg = { .db = t->db, .background = true, .ready = &ready,
					  .order = &order };
		struct prio_waiter fg = { .db = t->db, .background = false, .ready = &ready,
					  .order = &order };
		pthread_t tb, tf;
		void *rb = NULL, *rf = NULL;
		struct db_conn *c = db_acquire(t->db);

		assert_int_equal(db_exec_script(c, "BEGIN IMMEDIATE"), DB_OK);
		assert_int_equal(pthread_create(&tb, NULL, prio_waiter_main, &bg), 0);
		while (atomic_load(&ready) < 1)
			usleep(100);
		usleep(100000); /* bg is waiting at the gate */
		assert_int_equal(pthread_create(&tf, NULL, prio_waiter_main, &fg), 0);
		while (atomic_load(&ready) < 2)
			usleep(100);
		usleep(100000); /* fg waits behind it */
		assert_int_equal(db_exec_script(c, "COMMIT"), DB_OK);
		db_release(t->db, c);
		assert_int_equal(pthread_join(tb, &rb), 0);
		assert_int_equal(pthread_join(tf, &rf), 0);
		assert_null(rb);
		assert_null(rf);
		assert_int_equal(fg.began, 1);
		assert_int_equal(bg.began, 2);
	}
	/* Alone, a background writer is not held back. */
	db_thread_write_background(true);
	struct db_conn *c = db_acquire(t->db);
	int64_t t0 = time_mono_us();
	assert_int_equal(db_exec_script(c, "BEGIN IMMEDIATE"), DB_OK);
	assert_true(time_mono_us() - t0 < 1000000);
	assert_int_equal(db_exec_script(c, "COMMIT"), DB_OK);
	db_release(t->db, c);
	db_thread_write_background(false);
}

/* A real serialization failure: the first attempt reads a row, another
 * connection updates it and commits, the first then updates it (40001). */
struct ser_ctx {
	struct db_conn *other;
	int calls;
};

static int tx_serializable(struct db_conn *c, void *arg)
{
	struct ser_ctx *x = arg;
	struct db_res *r = NULL;
	int rc;

	x->calls++;
	rc = db_exec_script(c, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
	if (rc == DB_OK)
		rc = db_exec(c, "SELECT qty FROM parent WHERE id = 1", NULL, 0, &r, NULL);
	db_res_free(r);
	if (rc == DB_OK && x->calls == 1)
		rc = db_exec(x->other, "UPDATE parent SET qty = qty + 1 WHERE id = 1", NULL, 0,
			     NULL, NULL);
	if (rc == DB_OK)
		rc = db_exec(c, "UPDATE parent SET qty = qty + 10 WHERE id = 1", NULL, 0,
			     NULL, NULL);
	return rc;
}

static void test_pg_serialization_retry(void **state)
{
	struct tdb *t = *state;
	struct db_res *r = NULL;

	if (t->engine != DB_ENGINE_PG)
		skip();
	struct ser_ctx x = { .other = db_acquire(t->db) };
	insert_parent(x.other, 1, "a", DB_OK);
	uint64_t before = db_tx_retries(t->db);
	assert_int_equal(db_tx(t->db, true, tx_serializable, &x), DB_OK);
	assert_int_equal(x.calls, 2);
	assert_true(db_tx_retries(t->db) - before == 1);
	assert_int_equal(db_exec(x.other, "SELECT qty FROM parent WHERE id = 1", NULL, 0, &r,
				 NULL), DB_OK);
	assert_int_equal(db_get_int(r, 0, 0), 11);
	db_res_free(r);
	db_release(t->db, x.other);
}

/* A real deadlock: two transactions update rows 1 and 2 in opposite
 * orders; PostgreSQL aborts one (40P01), db_tx runs it again, and both
 * commit their changes exactly once. */
struct dl_ctx {
	struct db *db;
	pthread_barrier_t *both_hold_one;
	int64_t first, second;
	int calls, rc;
};

static int tx_lock_two(struct db_conn *c, void *arg)
{
	struct dl_ctx *x = arg;
	struct db_param a = DBP_INT(x->first), b = DBP_INT(x->second);
	int rc;

	x->calls++;
	rc = db_exec(c, "UPDATE parent SET qty = qty + 1 WHERE id = $1", &a, 1, NULL, NULL);
	if (rc == DB_OK && x->calls == 1)
		pthread_barrier_wait(x->both_hold_one);
	if (rc == DB_OK)
		rc = db_exec(c, "UPDATE parent SET qty = qty + 1 WHERE id = $1", &b, 1, NULL,
			     NULL);
	return rc;
}

static void *deadlock_main(void *arg)
{
	struct dl_ctx *x = arg;
	x->rc = db_tx(x->db, true, tx_lock_two, x);
	return NULL;
}

static void test_pg_deadlock_retry(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c;
	struct db_res *r = NULL;
	pthread_barrier_t bar;
	pthread_t th[2];

	if (t->engine != DB_ENGINE_PG)
		skip();
	c = db_acquire(t->db);
	insert_parent(c, 1, "a", DB_OK);
	insert_parent(c, 2, "b", DB_OK);
	db_release(t->db, c);
	assert_int_equal(pthread_barrier_init(&bar, NULL, 2), 0);
	struct dl_ctx x[2] = {
		{ .db = t->db, .both_hold_one = &bar, .first = 1, .second = 2 },
		{ .db = t->db, .both_hold_one = &bar, .first = 2, .second = 1 },
	};
	uint64_t before = db_tx_retries(t->db);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, deadlock_main, &x[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(x[0].rc, DB_OK);
	assert_int_equal(x[1].rc, DB_OK);
	assert_int_equal(x[0].calls + x[1].calls, 3); /* one victim, run twice */
	assert_true(db_tx_retries(t->db) - before == 1);
	c = db_acquire(t->db);
	assert_int_equal(db_exec(c, "SELECT SUM(qty) FROM parent WHERE id IN (1, 2)", NULL, 0, &r,
				 NULL),
			 DB_OK);
	assert_int_equal(db_get_int(r, 0, 0), 4);
	db_res_free(r);
	db_release(t->db, c);
}

/* A backend killed under a pooled connection: the next statement says
 * UNAVAILABLE and the slot reconnects on its next acquire. */
static void test_pg_reconnect(void **state)
{
	struct tdb *t = *state;
	struct db_res *r = NULL;

	if (t->engine != DB_ENGINE_PG)
		skip();
	struct db_conn *c1 = db_acquire(t->db), *c2 = db_acquire(t->db);
	assert_int_equal(db_exec(c1, "SELECT pg_backend_pid()", NULL, 0, &r, NULL), DB_OK);
	struct db_param pid = DBP_INT(db_get_int(r, 0, 0));
	db_res_free(r);
	assert_int_equal(db_exec(c2, "SELECT pg_terminate_backend($1::int)", &pid, 1, NULL,
				 NULL), DB_OK);
	for (int i = 0; i < 200; i++) { /* wait until it is gone */
		r = NULL;
		assert_int_equal(db_exec(c2, "SELECT COUNT(*) FROM pg_stat_activity "
					 "WHERE pid = $1::int", &pid, 1, &r, NULL), DB_OK);
		int64_t n = db_get_int(r, 0, 0);
		db_res_free(r);
		if (n == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(db_exec(c1, "SELECT 1", NULL, 0, NULL, NULL), DB_ERR_UNAVAILABLE);
	db_release(t->db, c1);
	db_release(t->db, c2);
	struct db_conn *a = db_acquire(t->db), *b = db_acquire(t->db);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(db_exec(a, "SELECT 1", NULL, 0, NULL, NULL), DB_OK);
	assert_int_equal(db_exec(b, "SELECT 1", NULL, 0, NULL, NULL), DB_OK);
	db_release(t->db, a);
	db_release(t->db, b);
}

/* ---- engine-independent ---- */

static void test_money_text(void **state)
{
	static const struct { const char *s; int ok; int64_t v; } cases[] = {
		{ "12.500000", 0, 12500000 }, { "-0.000100", 0, -100 }, { "0", 0, 0 },
		{ "12", 0, 12000000 }, { "1.5", 0, 1500000 }, { "+3.000001", 0, 3000001 },
		{ ".5", 0, 500000 }, { "-0", 0, 0 },
		{ "999999999999.999999", 0, 999999999999999999LL },
		{ "9223372036854.775807", 0, INT64_MAX },
		{ "-9223372036854.775808", 0, INT64_MIN },
		{ "9223372036854.775808", -1, 0 }, { "99999999999999999999", -1, 0 },
		/* half-even past 6 digits */
		{ "0.0000005", 0, 0 }, { "0.0000015", 0, 2 }, { "0.00000051", 0, 1 },
		{ "-0.0000025", 0, -2 }, { "1.23456749", 0, 1234567 },
		{ "", -1, 0 }, { "-", -1, 0 }, { ".", -1, 0 }, { "1.2.3", -1, 0 },
		{ "abc", -1, 0 }, { "1e5", -1, 0 }, { " 1", -1, 0 }, { "1 ", -1, 0 },
	};
	char buf[DB_MONEY_TEXT_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t v = 42;
		int rc = db_money_parse(cases[i].s, &v);
		if (rc != cases[i].ok || (rc == 0 && v != cases[i].v))
			fail_msg("db_money_parse(\"%s\") = %d, %lld", cases[i].s, rc, (long long)v);
	}
	db_money_format(12500000, buf, sizeof buf);
	assert_string_equal(buf, "12.500000");
	db_money_format(-100, buf, sizeof buf);
	assert_string_equal(buf, "-0.000100");
	db_money_format(INT64_MIN, buf, sizeof buf);
	assert_string_equal(buf, "-9223372036854.775808");
	db_money_format(0, buf, sizeof buf);
	assert_string_equal(buf, "0.000000");
}

static void test_open_errors(void **state)
{
	struct db *db = (struct db *)1;
	char err[256];

	(void)state;
	assert_int_equal(db_open("mysql://x", NULL, &db, err, sizeof err), -1);
	assert_null(db);
	assert_non_null(strstr(err, "DATABASE_URL"));
	assert_int_equal(db_open("sqlite:", NULL, &db, err, sizeof err), -1);
	assert_int_equal(db_open("sqlite:/nonexistent-dir/a/b.db", NULL, &db, err, sizeof err),
			 -1);
	assert_non_null(strstr(err, "sqlite"));
	assert_int_equal(db_open("postgresql://nobody@127.0.0.1:1/x?connect_timeout=2", NULL,
				 &db, err, sizeof err), -1);
	assert_non_null(strstr(err, "postgresql"));
	db_close(NULL);
}

static void test_sqlite_memory(void **state)
{
	struct db_options o = { .pool_size = 8 };
	struct db_pool_stats st;
	struct db *db = NULL;
	char err[256];

	(void)state;
	assert_int_equal(db_open("sqlite::memory:", &o, &db, err, sizeof err), 0);
	db_pool_stats(db, &st);
	assert_int_equal(st.size, 1); /* one private database per connection */
	struct db_conn *c = db_acquire(db);
	assert_int_equal(db_exec_script(c, "CREATE TABLE m (x INTEGER) STRICT;"
					   "INSERT INTO m VALUES (1)"), DB_OK);
	db_release(db, c);
	assert_int_equal(count_rows(db, "m"), 1);
	db_close(db);
}

/* ---- SQLite checkpoints off the commit path (db_sqlite.c header) ---- */

/* "slowsync": the default VFS, but every xSync sleeps SLOW_SYNC_US and is
 * counted, and a sync run by the thread marked as the committer counts
 * apart. Opened through a URI (file:...?vfs=slowsync). */
#define SLOW_SYNC_US 300000
static sqlite3_vfs slow_vfs;
static sqlite3_vfs *real_vfs;
static atomic_int slow_syncs, committer_syncs;
static pthread_t committer;
static atomic_bool committer_set;

struct slow_file {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same block */
};

#define REAL(f) (((struct slow_file *)(f))->real)
static int sf_close(sqlite3_file *f)
{
	int rc = REAL(f)->pMethods != NULL ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
	return rc;
}
static int sf_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int sf_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int sf_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int sf_sync(sqlite3_file *f, int flags)
{
	atomic_fetch_add(&slow_syncs, 1);
	if (atomic_load(&committer_set) && pthread_equal(pthread_self(), committer))
		atomic_fetch_add(&committer_syncs, 1);
	usleep(SLOW_SYNC_US);
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int sf_size(sqlite3_file *f, sqlite3_int64 *n)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), n);
}
static int sf_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int sf_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int sf_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int sf_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int sf_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int sf_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int sf_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int sf_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void sf_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int sf_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int sf_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int sf_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods slow_io = {
	3, sf_close, sf_read, sf_write, sf_truncate, sf_sync, sf_size, sf_lock,
	sf_unlock, sf_reserved, sf_fcntl, sf_sector, sf_devchar, sf_shm_map,
	sf_shm_lock, sf_shm_barrier, sf_shm_unmap, sf_fetch, sf_unfetch,
};

static int slow_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
		     int *out_flags)
{
	struct slow_file *sf = (struct slow_file *)f;
	int rc;

	(void)vfs;
	sf->real = (sqlite3_file *)(sf + 1);
	rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out_flags);
	sf->base.pMethods = sf->real->pMethods != NULL ? &slow_io : NULL;
	return rc;
}

static void slow_vfs_register(void)
{
	if (real_vfs != NULL)
		return;
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	slow_vfs = *real_vfs;
	slow_vfs.zName = "slowsync";
	slow_vfs.szOsFile = (int)sizeof(struct slow_file) + real_vfs->szOsFile;
	slow_vfs.xOpen = slow_open;
	slow_vfs.pNext = NULL;
	assert_int_equal(sqlite3_vfs_register(&slow_vfs, 0), SQLITE_OK);
}

/* A scratch SQLite database (dir/t.db) with a blob table; url out. */
static struct db *ckpt_db_open(char *dir, size_t dirlen, const char *vfs, char *url,
			       size_t urllen)
{
	struct db_options o = { .pool_size = 4, .acquire_timeout_ms = 5000 };
	struct db *db = NULL;
	char err[256];

	snprintf(dir, dirlen, "/tmp/pytake-test-ckpt-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (vfs != NULL)
		snprintf(url, urllen, "sqlite:file:%s/t.db?vfs=%s", dir, vfs);
	else
		snprintf(url, urllen, "sqlite:%s/t.db", dir);
	assert_int_equal(db_open(url, &o, &db, err, sizeof err), 0);
	struct db_conn *c = db_acquire(db);
	assert_int_equal(db_exec_script(c, "CREATE TABLE b (id INTEGER PRIMARY KEY, v BLOB)"),
			 DB_OK);
	db_release(db, c);
	return db;
}

static void ckpt_db_remove(const char *dir)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char path[160];

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/t.db%s", dir, suffix[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* One write transaction adding a ~6 KiB row and dropping an old one (the
 * database stays small; the WAL gets ~3 frames a commit). Its duration
 * in microseconds, or -1. */
static int64_t ckpt_commit(struct db *db, int64_t id)
{
	static const char blob[6000];
	struct db_param p[2] = { DBP_INT(id), DBP_BLOB(blob, sizeof blob) };
	struct db_param old = DBP_INT(id - 200);
	int64_t t0 = time_mono_us();
	struct db_conn *c = db_acquire(db);
	int rc = c != NULL ? db_exec_script(c, "BEGIN IMMEDIATE") : DB_ERR;

	if (rc == DB_OK)
		rc = db_exec(c, "INSERT INTO b (id, v) VALUES ($1, $2)", p, 2, NULL, NULL);
	if (rc == DB_OK)
		rc = db_exec(c, "DELETE FROM b WHERE id = $1", &old, 1, NULL, NULL);
	if (rc == DB_OK)
		rc = db_exec_script(c, "COMMIT");
	db_release(db, c);
	return rc == DB_OK ? time_mono_us() - t0 : -1;
}

/* Reads all the time, as the webhook processor does: a reader holding an
 * old snapshot is what keeps a passive checkpoint from catching up. */
struct ckpt_reader {
	struct db *db;
	atomic_bool stop;
	int reads;
};

static void *ckpt_reader_main(void *arg)
{
	struct ckpt_reader *r = arg;

	while (!atomic_load(&r->stop)) {
		struct db_conn *c = db_acquire(r->db);
		struct db_res *res = NULL;
		if (c == NULL)
			return (void *)1;
		if (db_exec_script(c, "BEGIN") != DB_OK ||
		    db_exec(c, "SELECT count(*) FROM b", NULL, 0, &res, NULL) != DB_OK ||
		    db_exec_script(c, "COMMIT") != DB_OK) {
			db_res_free(res);
			db_release(r->db, c);
			return (void *)1;
		}
		db_res_free(res);
		db_release(r->db, c);
		r->reads++;
		usleep(200);
	}
	return NULL;
}

/* Checkpoints fsync (here: 200 ms a sync) on the checkpointer thread,
 * without the write gate: no commit runs a sync nor waits for one. Under
 * SQLite's automatic checkpoint the commit passing 1000 WAL frames ran 2-3
 * syncs (>= 400 ms here). */
static void test_sqlite_checkpoint_off_commit_path(void **state)
{
	char dir[64], url[160];
	int64_t worst = 0, id = 1000, t_end;
	uint64_t passive0, passive1, bounded0, bounded1;
	int own;

	(void)state;
	slow_vfs_register();
	db_sqlite_checkpoint_limits(64, 1LL << 40); /* wake at 64 frames; no bound */
	db_sqlite_checkpoint_counts(&passive0, &bounded0);
	struct db *db = ckpt_db_open(dir, sizeof dir, "slowsync", url, sizeof url);
	committer = pthread_self();
	atomic_store(&committer_set, true);
	atomic_store(&slow_syncs, 0);
	atomic_store(&committer_syncs, 0);
	t_end = time_mono_us() + 2500000;
	while (time_mono_us() < t_end &&
	       atomic_load(&slow_syncs) - atomic_load(&committer_syncs) < 6) {
		int before = atomic_load(&committer_syncs);
		int64_t us = ckpt_commit(db, ++id);
		assert_true(us >= 0);
		/* SQLite syncs the WAL header in the first commit after a WAL
		 * restart, whoever checkpoints: not counted here */
		if (atomic_load(&committer_syncs) == before && us > worst)
			worst = us;
		usleep(300); /* ~2,000 commits/s: the WAL stays tens of MB */
	}
	own = atomic_load(&committer_syncs);
	atomic_store(&committer_set, false);
	db_sqlite_checkpoint_counts(&passive1, &bounded1);
	print_message("%lld commits, worst %lld us; %d syncs (%d by a commit: WAL "
		      "header after a restart); %llu passive checkpoints\n",
		      (long long)(id - 1000), (long long)worst, atomic_load(&slow_syncs), own,
		      (unsigned long long)(passive1 - passive0));
	assert_true(atomic_load(&slow_syncs) - own >= 2); /* checkpoints synced */
	assert_true(own <= (int)(passive1 - passive0));
	assert_true(passive1 - passive0 >= 1);
	assert_true(bounded1 == bounded0);
	assert_true(worst < SLOW_SYNC_US / 2); /* never waited for a sync */
	db_close(db);
	db_sqlite_checkpoint_limits(0, 0);
	ckpt_db_remove(dir);
}

/* Continuous writes with a reader always in a transaction: passive
 * checkpoints alone never let the WAL restart (it grew to 37 MB in an
 * earlier attempt); the gated RESTART past the bound keeps it there. */
static void test_sqlite_checkpoint_bounds_wal(void **state)
{
	const long long bound = 4LL << 20; /* 4 MiB here; 64 MiB in service */
	char dir[64], url[160], wal[96];
	struct ckpt_reader r = { 0 };
	int64_t id = 1000, t_end;
	long long max_wal = 0, written = 0;
	uint64_t passive0, passive1, bounded0, bounded1;
	pthread_t th;
	void *ret = NULL;
	struct stat st;

	(void)state;
	db_sqlite_checkpoint_limits(64, bound);
	db_sqlite_checkpoint_counts(&passive0, &bounded0);
	struct db *db = ckpt_db_open(dir, sizeof dir, NULL, url, sizeof url);
	snprintf(wal, sizeof wal, "%s/t.db-wal", dir);
	r.db = db;
	assert_int_equal(pthread_create(&th, NULL, ckpt_reader_main, &r), 0);
	t_end = time_mono_us() + 2500000;
	while (time_mono_us() < t_end || written < 10 * bound) {
		assert_true(ckpt_commit(db, ++id) >= 0);
		written += 6000;
		if (stat(wal, &st) == 0 && st.st_size > max_wal)
			max_wal = st.st_size;
		assert_true(id < 10000000);
	}
	atomic_store(&r.stop, true);
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_null(ret);
	db_sqlite_checkpoint_counts(&passive1, &bounded1);
	print_message("%lld commits (%lld MiB of rows), %d reads; WAL max %lld bytes; "
		      "%llu passes, %llu bounded\n",
		      (long long)(id - 1000), written >> 20, r.reads, max_wal,
		      (unsigned long long)(passive1 - passive0),
		      (unsigned long long)(bounded1 - bounded0));
	assert_true(r.reads > 0);
	assert_true(passive1 > passive0);
	/* the bound plus what commits add while the checkpointer gets there */
	assert_true(max_wal <= 2 * bound);
	db_close(db);
	db_sqlite_checkpoint_limits(0, 0);
	ckpt_db_remove(dir);
}

/* A reader outside the pool (another process: a backup) stays in the WAL:
 * the gated RESTART gives up after CKPT_WAIT_MS (100 ms) and retries when
 * the WAL grew by half the bound, instead of holding the writers for busy_timeout (5 s) at every
 * commit past the bound. */
static void test_sqlite_checkpoint_long_reader(void **state)
{
	const long long bound = 1LL << 20;
	char dir[64], url[160], path[96];
	int64_t id = 1000, worst = 0, t_end;
	uint64_t p0, p1, b0, b1;
	sqlite3 *rd = NULL;
	sqlite3_stmt *st = NULL;

	(void)state;
	db_sqlite_checkpoint_limits(64, bound);
	struct db *db = ckpt_db_open(dir, sizeof dir, NULL, url, sizeof url);
	snprintf(path, sizeof path, "%s/t.db", dir);
	assert_int_equal(sqlite3_open(path, &rd), SQLITE_OK);
	assert_int_equal(sqlite3_exec(rd, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(rd, "SELECT count(*) FROM b", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW); /* snapshot held */
	db_sqlite_checkpoint_counts(&p0, &b0);
	t_end = time_mono_us() + 1500000;
	while (time_mono_us() < t_end) {
		int64_t us = ckpt_commit(db, ++id);
		assert_true(us >= 0);
		if (us > worst)
			worst = us;
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(rd);
	db_sqlite_checkpoint_counts(&p1, &b1);
	print_message("long reader: %lld commits, worst %lld us, %llu gated attempts\n",
		      (long long)(id - 1000), (long long)worst, (unsigned long long)(b1 - b0));
	assert_true(b1 > b0);        /* the bound was reached and tried */
	assert_true(worst < 1500000); /* never a busy_timeout (5 s) stall */
	for (int i = 0; i < 2000; i++) /* reader gone: the RESTART gets through */
		assert_true(ckpt_commit(db, ++id) >= 0);
	db_close(db);
	db_sqlite_checkpoint_limits(0, 0);
	ckpt_db_remove(dir);
}

#define ENGINE_CASES                                                          \
	cmocka_unit_test_setup(test_param_roundtrip, reset_tables),           \
	cmocka_unit_test_setup(test_many_parameters, reset_tables),           \
	cmocka_unit_test_setup(test_money_compare_in_sql, reset_tables),      \
	cmocka_unit_test_setup(test_colnames, reset_tables),                  \
	cmocka_unit_test_setup(test_conflict_fk_check, reset_tables),         \
	cmocka_unit_test_setup(test_errors, reset_tables),                    \
	cmocka_unit_test_setup(test_affected, reset_tables),                  \
	cmocka_unit_test_setup(test_tx_commit_rollback, reset_tables),        \
	cmocka_unit_test_setup(test_tx_retry, reset_tables),                  \
	cmocka_unit_test_setup(test_release_rolls_back, reset_tables),        \
	cmocka_unit_test_setup(test_pipeline, reset_tables),                  \
	cmocka_unit_test_setup(test_pool_timeout, reset_tables),              \
	cmocka_unit_test_setup(test_ping_and_names, reset_tables),            \
	cmocka_unit_test_setup(test_sqlite_busy, reset_tables),               \
	cmocka_unit_test_setup(test_sqlite_write_handoff, reset_tables),      \
	cmocka_unit_test_setup(test_sqlite_write_background, reset_tables),   \
	cmocka_unit_test_setup(test_pg_serialization_retry, reset_tables),    \
	cmocka_unit_test_setup(test_pg_deadlock_retry, reset_tables),         \
	cmocka_unit_test_setup(test_pg_reconnect, reset_tables)

int main(void)
{
	const struct CMUnitTest plain[] = {
		cmocka_unit_test(test_money_text),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_sqlite_memory),
		cmocka_unit_test(test_sqlite_checkpoint_off_commit_path),
		cmocka_unit_test(test_sqlite_checkpoint_bounds_wal),
		cmocka_unit_test(test_sqlite_checkpoint_long_reader),
	};
	const struct CMUnitTest sqlite_cases[] = { ENGINE_CASES };
	const struct CMUnitTest pg_cases[] = { ENGINE_CASES };
	int failed = 0;

	failed += cmocka_run_group_tests_name("db", plain, NULL, NULL);
	failed += cmocka_run_group_tests_name("db_sqlite", sqlite_cases, group_setup_sqlite,
					      group_teardown);
	if (getenv("PYTAKE_TEST_PG_URL") != NULL)
		failed += cmocka_run_group_tests_name("db_postgresql", pg_cases, group_setup_pg,
						      group_teardown);
	else
		printf("[  SKIPPED ] db_postgresql: set PYTAKE_TEST_PG_URL to run\n");
	return failed != 0;
}
