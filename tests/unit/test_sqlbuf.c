/* Unit tests for sqlbuf: the text and parameters a build gives (table of
 * builds), the overflow rules, and the built statements run on SQLite
 * (sqlite::memory:) and, when PYTAKE_TEST_PG_URL is set, on PostgreSQL —
 * the same "$k" text on both engines. No table is created: the rows come
 * from a VALUES list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db/db.h"
#include "db/sqlbuf.h"
#include "db/sqlrepeat.h"

/* ---- text and parameters ---- */

static void test_build_table(void **state)
{
	struct sqlbuf b = SQLBUF_INIT;
	(void)state;
	sqlbuf_add(&b, "SELECT id FROM t WHERE TRUE");
	sqlbuf_eq(&b, "org", "o1");
	sqlbuf_eq(&b, "status", NULL); /* absent filter: nothing */
	sqlbuf_cond(&b, " AND (name LIKE ", DBP_TEXT("%a%"), " ESCAPE '\\'");
	sqlbuf_cond(&b, " OR wa_id LIKE ", DBP_TEXT("%1%"), "");
	sqlbuf_add(&b, ")");
	int k = sqlbuf_param(&b, DBP_BOOL(true));
	assert_int_equal(k, 4);
	sqlbuf_page_desc(&b, "created_at", "id", 77, "id-x", 20);
	assert_false(b.overflow);
	assert_string_equal(b.sql,
			    "SELECT id FROM t WHERE TRUE AND org = $1 AND (name LIKE $2 "
			    "ESCAPE '\\' OR wa_id LIKE $3) AND created_at <= $5 AND "
			    "(created_at, id) < ($5, $6) "
			    "ORDER BY created_at DESC, id DESC LIMIT $7");
	assert_int_equal(b.len, strlen(b.sql));
	static const struct {
		enum db_type type;
		const char *s;
		int64_t i;
	} want[] = {
		{ DB_TEXT, "o1", 0 },   { DB_TEXT, "%a%", 0 }, { DB_TEXT, "%1%", 0 },
		{ DB_BOOL, NULL, 1 },   { DB_INT, NULL, 77 },  { DB_TEXT, "id-x", 0 },
		{ DB_INT, NULL, 20 },
	};
	assert_int_equal(b.n, (int)(sizeof want / sizeof want[0]));
	for (int i = 0; i < b.n; i++) {
		assert_int_equal(b.params[i].type, want[i].type);
		if (want[i].s != NULL)
			assert_string_equal(b.params[i].s, want[i].s);
		else
			assert_int_equal(b.params[i].i, want[i].i);
	}
}

static void test_param_overflow(void **state)
{
	struct sqlbuf b = SQLBUF_INIT;
	(void)state;
	sqlbuf_add(&b, "SELECT 1 WHERE TRUE");
	for (int i = 0; i < SQLBUF_MAX_PARAMS - 2; i++)
		sqlbuf_eq(&b, "c", "v");
	assert_false(b.overflow);
	size_t len = b.len;
	/* three more do not fit: the tail is dropped whole */
	sqlbuf_page_desc(&b, "created_at", "id", 1, "x", 1);
	assert_true(b.overflow);
	assert_int_equal(b.n, SQLBUF_MAX_PARAMS);
	assert_int_equal(b.len, len);
	assert_int_equal(sqlbuf_param(&b, DBP_INT(1)), 0);
	/* nothing is run: a NULL connection is never touched */
	assert_int_equal(sqlbuf_exec(NULL, &b, NULL, NULL), DB_ERR);
}

static void test_text_overflow(void **state)
{
	struct sqlbuf b = SQLBUF_INIT;
	char big[SQLBUF_TEXT_MAX];
	(void)state;
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0'; /* one byte too long with the NUL */
	sqlbuf_add(&b, "SELECT 1");
	sqlbuf_add(&b, big);
	assert_true(b.overflow);
	assert_string_equal(b.sql, "SELECT 1");
	/* a formatted piece that does not fit is dropped, not cut */
	struct sqlbuf c = SQLBUF_INIT;
	memset(big, 'y', sizeof big - 20);
	big[sizeof big - 20] = '\0';
	sqlbuf_add(&c, big);
	assert_false(c.overflow);
	sqlbuf_cond(&c, " AND a_rather_long_column_name = ", DBP_INT(1), "");
	assert_true(c.overflow);
	assert_int_equal(strlen(c.sql), sizeof big - 20);
	assert_int_equal(sqlbuf_exec(NULL, &c, NULL, NULL), DB_ERR);
}

/* ---- run on an engine ---- */

/* rows (id, created_at, org); the list shape of the domain queries. */
#define ROWS_SQL                                                              \
	"WITH t(id, created_at, org) AS (VALUES ('a', 1, 'o1'), ('b', 2, 'o1'), " \
	"('c', 2, 'o1'), ('d', 3, 'o2'), ('e', 4, 'o1')) "                        \
	"SELECT id FROM t WHERE TRUE"

static void run_list(struct db_conn *c)
{
	static const struct {
		const char *org, *name; /* name NULL: no filter */
		int64_t after_at;
		const char *after_id;
		int limit;
		const char *want; /* ids in order */
	} cases[] = {
		{ "o1", NULL, 100, "zz", 10, "e,c,b,a" },
		{ "o1", NULL, 100, "zz", 2, "e,c" },
		{ "o1", NULL, 2, "c", 10, "b,a" },  /* keyset: strictly after (2, c) */
		{ "o1", NULL, 2, "b", 10, "a" },
		{ "o2", NULL, 100, "zz", 10, "d" },
		{ "o1", "b", 100, "zz", 10, "b" },
		{ "o9", NULL, 100, "zz", 10, "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sqlbuf b = SQLBUF_INIT;
		struct db_res *r = NULL;
		char got[64] = "";
		sqlbuf_add(&b, ROWS_SQL);
		sqlbuf_eq(&b, "org", cases[i].org);
		sqlbuf_eq(&b, "id", cases[i].name);
		sqlbuf_page_desc(&b, "created_at", "id", cases[i].after_at, cases[i].after_id,
				 cases[i].limit);
		int rc = sqlbuf_exec(c, &b, &r, NULL);
		if (rc != DB_OK)
			fail_msg("case %zu: %s (%s)", i, db_errmsg(c), b.sql);
		size_t used = 0;
		for (int row = 0; row < db_rows(r) && used < sizeof got; row++)
			used += (size_t)snprintf(got + used, sizeof got - used, "%s%s",
						 row > 0 ? "," : "", db_get_text(r, row, 0));
		db_res_free(r);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, cases[i].want);
	}
}

static void run_on(const char *url)
{
	struct db_options o = { .pool_size = 1 };
	struct db *db = NULL;
	char err[256];
	if (db_open(url, &o, &db, err, sizeof err) != 0)
		fail_msg("open %s: %s", url, err);
	struct db_conn *c = db_acquire(db);
	assert_non_null(c);
	run_list(c);
	db_release(db, c);
	db_close(db);
}

static void test_run_sqlite(void **state)
{
	(void)state;
	run_on("sqlite::memory:");
}

/* A later page starts at the cursor: SQLite's plan seeks the index on
 * the sort expression (its detail names "<expr><?" / "created_at<?")
 * rather than walking it from the first entry. */
static void test_page_seeks_the_index(void **state)
{
	struct db_options o = { .pool_size = 1 };
	struct db *db = NULL;
	char err[256];
	(void)state;
	if (db_open("sqlite::memory:", &o, &db, err, sizeof err) != 0)
		fail_msg("open: %s", err);
	struct db_conn *c = db_acquire(db);
	assert_non_null(c);
	assert_int_equal(db_exec(c, "CREATE TABLE t (id TEXT PRIMARY KEY, org TEXT, "
				    "a INTEGER, b INTEGER)", NULL, 0, NULL, NULL), DB_OK);
	assert_int_equal(db_exec(c, "CREATE INDEX t_idx ON t (org, (COALESCE(a, b)) DESC, "
				    "id DESC)", NULL, 0, NULL, NULL), DB_OK);
	static const char *const sorts[] = { "COALESCE(a, b)", "b" };
	for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++) {
		struct sqlbuf b = SQLBUF_INIT;
		struct db_res *r = NULL;
		if (i == 1)
			assert_int_equal(db_exec(c, "CREATE INDEX t_b ON t (org, b DESC, id DESC)",
						 NULL, 0, NULL, NULL), DB_OK);
		sqlbuf_add(&b, "EXPLAIN QUERY PLAN SELECT id FROM t WHERE TRUE");
		sqlbuf_cond(&b, " AND org = ", DBP_TEXT("o1"), "");
		sqlbuf_page_desc(&b, sorts[i], "id", 5, "m", 10);
		assert_int_equal(sqlbuf_exec(c, &b, &r, NULL), DB_OK);
		bool seeks = false;
		for (int row = 0; row < db_rows(r); row++) {
			const char *d = db_get_text(r, row, 3);
			print_message("%s: %s\n", sorts[i], d);
			if (strstr(d, "SEARCH t USING") != NULL &&
			    (strstr(d, "<expr><?") != NULL || strstr(d, "b<?") != NULL))
				seeks = true;
		}
		db_res_free(r);
		if (!seeks)
			fail_msg("%s: the page does not seek the index", sorts[i]);
	}
	db_release(db, c);
	db_close(db);
}

static void test_run_pg(void **state)
{
	const char *url = getenv("PYTAKE_TEST_PG_URL");
	(void)state;
	if (url == NULL) {
		skip();
		return;
	}
	run_on(url);
}

/* sql_repeat: the batched-statement texts, table-driven. */
static void test_repeat_table(void **state)
{
	static struct sql_repeat in_list = SQL_REPEAT_INIT("U WHERE id IN (", ")", 1, 6);
	static struct sql_repeat rows = SQL_REPEAT_INIT("INSERT VALUES ", " ON CONFLICT", 3, 1);
	static const struct {
		struct sql_repeat *r;
		size_t n;
		const char *want; /* NULL: refused */
	} cases[] = {
		{ &in_list, 1, "U WHERE id IN ($6)" },
		{ &in_list, 4, "U WHERE id IN ($6,$7,$8,$9)" },
		{ &rows, 1, "INSERT VALUES ($1,$2,$3) ON CONFLICT" },
		{ &rows, 2, "INSERT VALUES ($1,$2,$3),($4,$5,$6) ON CONFLICT" },
		{ &in_list, 0, NULL },
		{ &in_list, 3, NULL },   /* not a power of two */
		{ &in_list, 256, NULL }, /* past 2^SQL_REPEAT_MAX_LOG2 */
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *got = sql_repeat_text(cases[i].r, cases[i].n);
		if (cases[i].want == NULL) {
			assert_null(got);
		} else {
			assert_non_null(got);
			assert_string_equal(got, cases[i].want);
			/* built once: the same text again */
			assert_ptr_equal(got, sql_repeat_text(cases[i].r, cases[i].n));
		}
	}
}

static void test_repeat_largest(void **state)
{
	static struct sql_repeat r = SQL_REPEAT_INIT("X IN (", ")", 1, 1);
	const char *got = sql_repeat_text(&r, 128);
	(void)state;
	assert_non_null(got);
	assert_non_null(strstr(got, "$1,$2,"));
	assert_non_null(strstr(got, ",$127,$128)"));
	assert_null(strstr(got, "$129"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_table),
		cmocka_unit_test(test_repeat_table),
		cmocka_unit_test(test_repeat_largest),
		cmocka_unit_test(test_param_overflow),
		cmocka_unit_test(test_text_overflow),
		cmocka_unit_test(test_run_sqlite),
		cmocka_unit_test(test_run_pg),
		cmocka_unit_test(test_page_seeks_the_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
