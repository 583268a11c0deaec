/* Unit tests for migrate: status/upgrade/history on SQLite (a temp file per
 * case) and, when PYTAKE_TEST_PG_URL names a superuser URL, on PostgreSQL
 * (a fresh database per case, dropped afterwards); plus the SQLite/PG
 * rewrite table, and the whole schema (STRICT, organization_id). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "db/db.h"
#include "db/migrate.h"

/* ---- a throwaway database per case ---- */

struct tdb {
	enum db_engine engine;
	struct db *db;
	char url[512];
	char dir[64];
	char pgname[64];
	const char *admin;
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

static int tdb_create(struct tdb *t, enum db_engine engine)
{
	static int seq;
	struct db_options o = { .pool_size = 2 };
	char err[512], sql[160];

	memset(t, 0, sizeof *t);
	t->engine = engine;
	if (engine == DB_ENGINE_SQLITE) {
		snprintf(t->dir, sizeof t->dir, "/tmp/pytake-test-mig-XXXXXX");
		if (mkdtemp(t->dir) == NULL)
			return -1;
		snprintf(t->url, sizeof t->url, "sqlite:%s/t.db", t->dir);
	} else {
		t->admin = getenv("PYTAKE_TEST_PG_URL");
		snprintf(t->pgname, sizeof t->pgname, "t_mig_%d_%d_%lld", (int)getpid(),
			 ++seq, (long long)(time_mono_us() % 1000000));
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
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char path[128], sql[160];

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

/* Group state: the engine; per-case state: a fresh struct tdb. */
static enum db_engine g_engine;

static int case_setup(void **state)
{
	struct tdb *t = calloc(1, sizeof *t);

	if (t == NULL || tdb_create(t, g_engine) != 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int case_teardown(void **state)
{
	struct tdb *t = *state;

	tdb_destroy(t);
	free(t);
	return 0;
}

static bool table_exists(struct db *db, const char *name)
{
	struct db_param p = DBP_TEXT(name);
	const char *sql = db_engine(db) == DB_ENGINE_PG
				  ? "SELECT COUNT(*) FROM information_schema.tables "
				    "WHERE table_schema = 'public' AND table_name = $1"
				  : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
				    "AND name = $1";
	struct db_conn *c = db_acquire(db);
	struct db_res *r = NULL;
	bool yes = false;

	if (c != NULL && db_exec(c, sql, &p, 1, &r, NULL) == DB_OK)
		yes = db_get_int(r, 0, 0) == 1;
	db_res_free(r);
	db_release(db, c);
	return yes;
}

static int64_t query_int(struct db *db, const char *sql)
{
	struct db_conn *c = db_acquire(db);
	struct db_res *r = NULL;
	int64_t v = -1;

	if (c != NULL && db_exec(c, sql, NULL, 0, &r, NULL) == DB_OK && db_rows(r) == 1)
		v = db_get_int(r, 0, 0);
	db_res_free(r);
	db_release(db, c);
	return v;
}

static const struct migration set3[] = {
	{ 1, "a", "CREATE TABLE a (x BIGINT) STRICT;\n" },
	{ 2, "b", "CREATE TABLE b (y BOOLEAN) STRICT;\n" },
	{ 3, "c", "CREATE TABLE c (z BIGINT) STRICT;\n" },
};

/* ---- cases ---- */

static void test_status_empty(void **state)
{
	struct tdb *t = *state;
	struct migrate_status st;
	char err[256];

	assert_int_equal(migrate_status(t->db, migrations_embedded,
					migrations_embedded_count, &st, err, sizeof err), 0);
	assert_int_equal(st.state, MIGRATE_BEHIND);
	assert_int_equal(st.current, 0);
	assert_int_equal(st.head, (int)migrations_embedded_count);
	assert_false(table_exists(t->db, "schema_migrations")); /* created nothing */
}

static void test_upgrade_embedded(void **state)
{
	struct tdb *t = *state;
	struct migrate_status st;
	char err[256];

	assert_true(migrations_embedded_count >= 1);
	assert_int_equal(migrations_embedded[0].version, 1);
	assert_string_equal(migrations_embedded[0].name, "organizations_users");
	assert_int_equal(migrate_upgrade(t->db, migrations_embedded,
					 migrations_embedded_count, 0, err, sizeof err), 0);
	assert_int_equal(migrate_status(t->db, migrations_embedded,
					migrations_embedded_count, &st, err, sizeof err), 0);
	assert_int_equal(st.state, MIGRATE_AT_HEAD);
	assert_int_equal(st.current, st.head);
	assert_true(table_exists(t->db, "organizations"));
	assert_true(table_exists(t->db, "users"));
	/* Again: nothing to do. */
	assert_int_equal(migrate_upgrade(t->db, migrations_embedded,
					 migrations_embedded_count, 0, err, sizeof err), 0);
	assert_int_equal(query_int(t->db, "SELECT COUNT(*) FROM schema_migrations"),
			 (int64_t)migrations_embedded_count);
}

/* The whole embedded schema: on SQLite every table is STRICT; on both
 * engines every table carries organization_id except these, each for its
 * reason. A new table without organization_id fails here until it is
 * either scoped or listed with its reason. */
static const char *const not_tenant_tables[] = {
	"login_failures",    /* per email, counted before any organization is known */
	"organizations",     /* the tenants themselves */
	"rate_cards",        /* Meta's prices, one card for the installation */
	"schema_migrations", /* the migration runner's own table */
};

static void test_whole_schema(void **state)
{
	struct tdb *t = *state;
	struct db_conn *c;
	struct db_res *r = NULL;
	char err[256];
	const size_t n_exempt = sizeof not_tenant_tables / sizeof not_tenant_tables[0];

	assert_int_equal(migrate_upgrade(t->db, migrations_embedded,
					 migrations_embedded_count, 0, err, sizeof err), 0);
	c = db_acquire(t->db);
	assert_non_null(c);
	if (t->engine == DB_ENGINE_SQLITE) {
		assert_int_equal(db_exec(c, "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
					 "AND name NOT LIKE 'sqlite_%' ORDER BY name",
					 NULL, 0, &r, NULL),
				 DB_OK);
		assert_true(db_rows(r) > 10);
		for (int i = 0; i < db_rows(r); i++) {
			const char *sql = db_get_text(r, i, 1);
			size_t len = strlen(sql);
			while (len > 0 && (sql[len - 1] == ' ' || sql[len - 1] == '\n'))
				len--;
			if (len < 6 || strncmp(sql + len - 6, "STRICT", 6) != 0)
				fail_msg("table %s is not STRICT", db_get_text(r, i, 0));
		}
		db_res_free(r);
		r = NULL;
	}
	const char *unscoped =
		t->engine == DB_ENGINE_SQLITE
			? "SELECT m.name FROM sqlite_master m WHERE m.type = 'table' "
			  "AND m.name NOT LIKE 'sqlite_%' AND NOT EXISTS (SELECT 1 FROM "
			  "pragma_table_info(m.name) p WHERE p.name = 'organization_id') "
			  "ORDER BY m.name"
			: "SELECT t.table_name FROM information_schema.tables t "
			  "WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
			  "AND NOT EXISTS (SELECT 1 FROM information_schema.columns k "
			  "WHERE k.table_schema = 'public' AND k.table_name = t.table_name "
			  "AND k.column_name = 'organization_id') ORDER BY t.table_name";
	assert_int_equal(db_exec(c, unscoped, NULL, 0, &r, NULL), DB_OK);
	for (int i = 0; i < db_rows(r); i++) {
		const char *name = db_get_text(r, i, 0);
		bool listed = false;
		for (size_t j = 0; j < n_exempt; j++)
			listed = listed || strcmp(name, not_tenant_tables[j]) == 0;
		if (!listed)
			fail_msg("table %s has no organization_id", name);
	}
	assert_int_equal(db_rows(r), (int)n_exempt); /* no stale entry in the list */
	db_res_free(r);
	db_release(t->db, c);
}

/* The 0001 schema enforces what the domain relies on. */
static void test_schema_0001(void **state)
{
	struct tdb *t = *state;
	static const char org[] = "0190f5b2-7c1e-7abc-8def-0123456789ab";
	static const char other[] = "0190f5b2-7c1e-7abc-8def-0123456789ac";
	char err[256];
	struct db_res *r = NULL;
	static const char ins_user[] =
		"INSERT INTO users (id, organization_id, email, password_hash, full_name, "
		"role, is_active, created_at, updated_at) VALUES ($1, $2, $3, 'h', 'N', $4, "
		"$5, 1, 1)";
	static const struct { const char *id, *org, *email, *role; int want; } users[] = {
		{ "0190f5b2-7c1e-7abc-8def-000000000001", org, "a@x.io", "org_admin", DB_OK },
		{ "0190f5b2-7c1e-7abc-8def-000000000002", org, "a@x.io", "agent", DB_ERR_CONFLICT },
		{ "0190f5b2-7c1e-7abc-8def-000000000003", org, "b@x.io", "boss", DB_ERR_CHECK },
		{ "0190f5b2-7c1e-7abc-8def-000000000004", other, "c@x.io", "viewer", DB_ERR_FK },
		{ "0190f5b2-7c1e-7abc-8def-000000000005", org, "d@x.io", "super_admin", DB_OK },
	};

	assert_int_equal(migrate_upgrade(t->db, migrations_embedded,
					 migrations_embedded_count, 0, err, sizeof err), 0);
	struct db_conn *c = db_acquire(t->db);
	struct db_param o[] = { DBP_TEXT(org), DBP_TEXT("Acme"), DBP_TEXT("acme"),
				DBP_INT(1), DBP_INT(2) };
	assert_int_equal(db_exec(c, "INSERT INTO organizations (id, name, slug, created_at, "
				 "updated_at) VALUES ($1, $2, $3, $4, $5)", o, 5, NULL, NULL),
			 DB_OK);
	o[0] = DBP_TEXT(other);
	assert_int_equal(db_exec(c, "INSERT INTO organizations (id, name, slug, created_at, "
				 "updated_at) VALUES ($1, $2, $3, $4, $5)", o, 5, NULL, NULL),
			 DB_ERR_CONFLICT); /* slug unique */
	for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
		struct db_param p[] = { DBP_TEXT(users[i].id), DBP_TEXT(users[i].org),
					DBP_TEXT(users[i].email), DBP_TEXT(users[i].role),
					DBP_BOOL(true) };
		int rc = db_exec(c, ins_user, p, 5, NULL, NULL);
		if (rc != users[i].want)
			fail_msg("user %zu: %d (%s)", i, rc, db_errmsg(c));
	}
	assert_int_equal(db_exec(c, "SELECT timezone, (SELECT is_active FROM users LIMIT 1), "
				 "(SELECT last_login_at FROM users LIMIT 1) FROM organizations",
				 NULL, 0, &r, NULL), DB_OK);
	assert_string_equal(db_get_text(r, 0, 0), "UTC");
	assert_true(db_get_bool(r, 0, 1));
	assert_true(db_isnull(r, 0, 2));
	db_res_free(r);
	db_release(t->db, c);
}

static void test_ahead(void **state)
{
	struct tdb *t = *state;
	struct migrate_status st;
	char err[256];

	assert_int_equal(migrate_upgrade(t->db, set3, 2, 0, err, sizeof err), 0);
	assert_int_equal(migrate_status(t->db, set3, 1, &st, err, sizeof err), 0);
	assert_int_equal(st.state, MIGRATE_AHEAD);
	assert_int_equal(st.current, 2);
	assert_int_equal(st.head, 1);
	assert_string_equal(st.message, "database is at 2, this binary knows up to 1");
	assert_int_equal(migrate_upgrade(t->db, set3, 1, 0, err, sizeof err), -1);
	assert_string_equal(err, "database is at 2, this binary knows up to 1");
}

static void test_changed(void **state)
{
	struct tdb *t = *state;
	const struct migration edited[] = {
		{ 1, "a", "CREATE TABLE a (x BIGINT, extra TEXT) STRICT;\n" },
		set3[1],
	};
	struct migrate_status st;
	char err[256];

	assert_int_equal(migrate_upgrade(t->db, set3, 2, 0, err, sizeof err), 0);
	assert_int_equal(migrate_status(t->db, edited, 2, &st, err, sizeof err), 0);
	assert_int_equal(st.state, MIGRATE_CHANGED);
	assert_int_equal(st.changed_version, 1);
	assert_non_null(strstr(st.message, "migration 1 (a) was changed"));
	assert_int_equal(migrate_upgrade(t->db, edited, 2, 0, err, sizeof err), -1);
	assert_non_null(strstr(err, "changed"));
	/* The unchanged set is still at head. */
	assert_int_equal(migrate_status(t->db, set3, 2, &st, err, sizeof err), 0);
	assert_int_equal(st.state, MIGRATE_AT_HEAD);
}

static void test_target(void **state)
{
	struct tdb *t = *state;
	struct migrate_status st;
	char err[256];

	assert_int_equal(migrate_upgrade(t->db, set3, 3, 9, err, sizeof err), -1);
	assert_non_null(strstr(err, "unknown target version 9"));
	assert_int_equal(migrate_upgrade(t->db, set3, 3, 2, err, sizeof err), 0);
	assert_int_equal(migrate_status(t->db, set3, 3, &st, err, sizeof err), 0);
	assert_int_equal(st.state, MIGRATE_BEHIND);
	assert_int_equal(st.current, 2);
	assert_true(table_exists(t->db, "b"));
	assert_false(table_exists(t->db, "c"));
	assert_int_equal(migrate_upgrade(t->db, set3, 3, 0, err, sizeof err), 0);
	assert_int_equal(migrate_status(t->db, set3, 3, &st, err, sizeof err), 0);
	assert_int_equal(st.state, MIGRATE_AT_HEAD);
	assert_int_equal(st.current, 3);
	assert_int_equal(migrate_upgrade(t->db, set3, 3, 1, err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot go down"));
}

static void test_failed_migration_rolls_back(void **state)
{
	struct tdb *t = *state;
	const struct migration bad[] = {
		set3[0],
		{ 2, "broken", "CREATE TABLE d (y BIGINT) STRICT;\nSELEKT nonsense;\n" },
	};
	struct migrate_status st;
	char err[256];

	assert_int_equal(migrate_upgrade(t->db, bad, 2, 0, err, sizeof err), -1);
	assert_non_null(strstr(err, "migration 2 (broken) failed"));
	assert_int_equal(migrate_status(t->db, bad, 2, &st, err, sizeof err), 0);
	assert_int_equal(st.current, 1);
	assert_false(table_exists(t->db, "d")); /* its DDL rolled back too */
}

static void test_history(void **state)
{
	struct tdb *t = *state;
	char err[256], *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(migrate_upgrade(t->db, set3, 3, 2, err, sizeof err), 0);
	assert_int_equal(migrate_history(t->db, set3, 3, f, err, sizeof err), 0);
	fclose(f);
	assert_non_null(strstr(text, "\n3 c a1e60c9332d18f99f0d0c06dfcac75162a0729608c15ba0c3304c8754664c7b4 pending\n"));
	assert_true(strncmp(text, "1 a ", 4) == 0);
	assert_non_null(strstr(text, "\n2 b "));
	assert_null(strstr(text, "1 a pending"));
	assert_non_null(strstr(text, "Z\n2 b ")); /* applied_at in RFC 3339 */
	free(text);
}

/* Two "processes" (separate handles) upgrading at once: every migration
 * runs exactly once (each inserts its version into a log table). */
static const struct migration logged[] = {
	{ 1, "log", "CREATE TABLE log (v BIGINT NOT NULL) STRICT;\nINSERT INTO log VALUES (1);\n" },
	{ 2, "two", "INSERT INTO log VALUES (2);\n" },
	{ 3, "three", "INSERT INTO log VALUES (3);\n" },
	{ 4, "four", "CREATE TABLE e (v BIGINT) STRICT;\nINSERT INTO log VALUES (4);\n" },
};

struct racer {
	const char *url;
	int rc;
	char err[256];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct db_options o = { .pool_size = 1 };
	struct db *db = NULL;

	r->rc = db_open(r->url, &o, &db, r->err, sizeof r->err);
	if (r->rc == 0)
		r->rc = migrate_upgrade(db, logged, 4, 0, r->err, sizeof r->err);
	db_close(db);
	return NULL;
}

static void test_concurrent_upgrade(void **state)
{
	struct tdb *t = *state;
	struct racer rs[3];
	pthread_t th[3];

	for (int i = 0; i < 3; i++) {
		rs[i] = (struct racer){ .url = t->url };
		assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		if (rs[i].rc != 0)
			fail_msg("racer %d: %s", i, rs[i].err);
	}
	assert_int_equal(query_int(t->db, "SELECT COUNT(*) FROM log"), 4);
	assert_int_equal(query_int(t->db, "SELECT COUNT(DISTINCT v) FROM log"), 4);
	assert_int_equal(query_int(t->db, "SELECT COUNT(*) FROM schema_migrations"), 4);
}

/* ---- the rewrite ---- */

static void test_sql_rewrite(void **state)
{
	static const struct { const char *in, *sqlite, *pg; } cases[] = {
		{ "id UUID PRIMARY KEY", "id TEXT PRIMARY KEY", "id UUID PRIMARY KEY" },
		{ "a BIGINT, b BOOLEAN, c NUMERIC(18,6), d NUMERIC ( 18, 6 ), e JSONB, "
		  "f TIMESTAMPTZ, g BYTEA",
		  "a INTEGER, b INTEGER, c INTEGER, d INTEGER, e TEXT, f TEXT, g BLOB",
		  "a BIGINT, b BOOLEAN, c NUMERIC(18,6), d NUMERIC ( 18, 6 ), e JSONB, "
		  "f TIMESTAMPTZ, g BYTEA" },
		{ "x bigint, y Boolean", "x INTEGER, y INTEGER", "x bigint, y Boolean" },
		{ "uuid_col BIGINTS my_uuid uuid2", "uuid_col BIGINTS my_uuid uuid2",
		  "uuid_col BIGINTS my_uuid uuid2" },
		{ "NUMERIC(10,2) NUMERIC", "NUMERIC(10,2) NUMERIC", "NUMERIC(10,2) NUMERIC" },
		{ "DEFAULT 'UUID BIGINT' , \"BOOLEAN\" BIGINT",
		  "DEFAULT 'UUID BIGINT' , \"BOOLEAN\" INTEGER",
		  "DEFAULT 'UUID BIGINT' , \"BOOLEAN\" BIGINT" },
		{ "SELECT 'it''s BIGINT' , BIGINT", "SELECT 'it''s BIGINT' , INTEGER",
		  "SELECT 'it''s BIGINT' , BIGINT" },
		{ "-- a BIGINT comment\nx BIGINT /* UUID */ UUID",
		  "-- a BIGINT comment\nx INTEGER /* UUID */ TEXT",
		  "-- a BIGINT comment\nx BIGINT /* UUID */ UUID" },
		{ "CREATE TABLE t (x BIGINT) STRICT;", "CREATE TABLE t (x INTEGER) STRICT;",
		  "CREATE TABLE t (x BIGINT);" },
		{ "CREATE TABLE t (\n  x BIGINT\n) STRICT;\nSELECT strict;",
		  "CREATE TABLE t (\n  x INTEGER\n) STRICT;\nSELECT strict;",
		  "CREATE TABLE t (\n  x BIGINT\n);\nSELECT strict;" },
		{ "a;\n-- pg-only\nCREATE EXTENSION x;\n-- end\n-- sqlite-only\nPRAGMA y;\n"
		  "-- end\nb;\n",
		  "a;\nPRAGMA y;\nb;\n", "a;\nCREATE EXTENSION x;\nb;\n" },
		{ "  -- pg-only  \r\nZ UUID\n  -- end\nUUID", "TEXT", "Z UUID\nUUID" },
		{ "", "", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *s = migrate_sql_for(cases[i].in, DB_ENGINE_SQLITE);
		char *p = migrate_sql_for(cases[i].in, DB_ENGINE_PG);
		assert_non_null(s);
		assert_non_null(p);
		if (strcmp(s, cases[i].sqlite) != 0)
			fail_msg("case %zu sqlite: got \"%s\"", i, s);
		if (strcmp(p, cases[i].pg) != 0)
			fail_msg("case %zu pg: got \"%s\"", i, p);
		free(s);
		free(p);
	}
}

/* The embedded 0001 runs on both engines' dialects: check the rewrite keeps
 * STRICT for SQLite only and rewrites every type. */
static void test_embedded_rewrite(void **state)
{
	char *s = migrate_sql_for(migrations_embedded[0].sql, DB_ENGINE_SQLITE);
	char *p = migrate_sql_for(migrations_embedded[0].sql, DB_ENGINE_PG);

	(void)state;
	assert_non_null(strstr(s, ") STRICT;"));
	assert_non_null(strstr(s, "id TEXT PRIMARY KEY"));
	assert_non_null(strstr(s, "organization_id TEXT NOT NULL"));
	assert_non_null(strstr(s, "is_active INTEGER NOT NULL"));
	assert_null(strstr(s, "BIGINT"));
	assert_null(strstr(s, "BOOLEAN"));
	assert_null(strstr(p, "STRICT"));
	assert_non_null(strstr(p, "id UUID PRIMARY KEY"));
	free(s);
	free(p);
}

#define ENGINE_CASES(prefix)                                                          \
	cmocka_unit_test_setup_teardown(test_status_empty, case_setup, case_teardown),     \
	cmocka_unit_test_setup_teardown(test_upgrade_embedded, case_setup, case_teardown), \
	cmocka_unit_test_setup_teardown(test_schema_0001, case_setup, case_teardown),      \
	cmocka_unit_test_setup_teardown(test_whole_schema, case_setup, case_teardown),     \
	cmocka_unit_test_setup_teardown(test_ahead, case_setup, case_teardown),            \
	cmocka_unit_test_setup_teardown(test_changed, case_setup, case_teardown),          \
	cmocka_unit_test_setup_teardown(test_target, case_setup, case_teardown),           \
	cmocka_unit_test_setup_teardown(test_failed_migration_rolls_back, case_setup,      \
					case_teardown),                                    \
	cmocka_unit_test_setup_teardown(test_history, case_setup, case_teardown),          \
	cmocka_unit_test_setup_teardown(test_concurrent_upgrade, case_setup, case_teardown)

static int use_sqlite(void **state)
{
	(void)state;
	g_engine = DB_ENGINE_SQLITE;
	return 0;
}

static int use_pg(void **state)
{
	(void)state;
	g_engine = DB_ENGINE_PG;
	return 0;
}

int main(void)
{
	const struct CMUnitTest plain[] = {
		cmocka_unit_test(test_sql_rewrite),
		cmocka_unit_test(test_embedded_rewrite),
	};
	const struct CMUnitTest sqlite_cases[] = { ENGINE_CASES(sqlite) };
	const struct CMUnitTest pg_cases[] = { ENGINE_CASES(pg) };
	int failed = 0;

	failed += cmocka_run_group_tests_name("migrate", plain, NULL, NULL);
	failed += cmocka_run_group_tests_name("migrate_sqlite", sqlite_cases, use_sqlite, NULL);
	if (getenv("PYTAKE_TEST_PG_URL") != NULL)
		failed += cmocka_run_group_tests_name("migrate_postgresql", pg_cases, use_pg, NULL);
	else
		printf("[  SKIPPED ] migrate_postgresql: set PYTAKE_TEST_PG_URL to run\n");
	return failed != 0;
}
