/* Unit tests for the audit store (secret guard, change helpers, listing
 * with filters and keyset paging on SQLite), the time-zone rule of orgs and
 * the cursor helpers of api/paging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/paging.h"
#include "core/crypto.h"
#include "db/migrate.h"
#include "domain/audit.h"
#include "domain/orgs.h"

struct fx {
	char path[64];
	struct db *db;
	struct db_conn *c;
	struct org org;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char url[96], err[256];
	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/pytake-test-audit-%d.db", (int)getpid());
	unlink(f->path);
	snprintf(url, sizeof url, "sqlite:%s", f->path);
	assert_int_equal(db_open(url, NULL, &f->db, err, sizeof err), 0);
	assert_int_equal(migrate_upgrade(f->db, migrations_embedded,
					 migrations_embedded_count, 0, err, sizeof err), 0);
	f->c = db_acquire(f->db);
	assert_non_null(f->c);
	assert_int_equal(orgs_create(f->c, "Org", "org", NULL, &f->org), DB_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	db_release(f->db, f->c);
	db_close(f->db);
	unlink(f->path);
	free(f);
	return 0;
}

static void list_all(struct fx *f, const struct audit_filter *flt, struct audit_row **rows,
		     int *n)
{
	struct page p;
	page_first(&p, 200);
	assert_int_equal(audit_list(f->c, f->org.id, flt, p.limit, p.after_at, p.after_id,
				    rows, n),
			 DB_OK);
}

static void test_secret_guard(void **state)
{
	struct fx *f = *state;
	static const char *const secret_keys[] = { "password", "Password_Hash", "access_token",
						   "app_secret", "API_KEY", "refresh_TOKEN",
						   "hash" };
	json_t *ch = json_object();
	for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0]; i++)
		audit_change_str(ch, secret_keys[i], "old-secret", "new-secret");
	audit_change_str(ch, "full_name", "A", "B");
	struct audit_entry e = { .org_id = f->org.id, .action = "update",
				 .table_name = "users", .changes = ch };
	assert_int_equal(audit_record(f->c, &e), DB_OK);
	json_decref(ch);
	struct audit_row *rows = NULL;
	int n = 0;
	struct audit_filter flt = { .action = "update" };
	list_all(f, &flt, &rows, &n);
	assert_int_equal(n, 1);
	assert_int_equal(json_object_size(rows[0].changes), 1);
	json_t *pair = json_object_get(rows[0].changes, "full_name");
	assert_string_equal(json_string_value(json_array_get(pair, 0)), "A");
	assert_string_equal(json_string_value(json_array_get(pair, 1)), "B");
	assert_string_equal(rows[0].user_id, "");
	assert_null(rows[0].record_id);
	audit_rows_free(rows, n);
}

static void test_change_helpers(void **state)
{
	(void)state;
	json_t *ch = json_object();
	audit_change_str(ch, "same", "x", "x");
	audit_change_str(ch, "nulls", NULL, NULL);
	audit_change_str(ch, "from_null", NULL, "v");
	audit_change_str(ch, "to_null", "v", NULL);
	audit_change_int(ch, "n_same", 3, 3);
	audit_change_int(ch, "n", 3, 4);
	audit_change_bool(ch, "b_same", true, true);
	audit_change_bool(ch, "b", true, false);
	char *s = json_dumps(ch, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"b\":[true,false],\"from_null\":[null,\"v\"],"
			       "\"n\":[3,4],\"to_null\":[\"v\",null]}");
	free(s);
	json_decref(ch);
	audit_change_str(NULL, "x", "a", "b"); /* no crash */
}

static void test_list_filters_and_paging(void **state)
{
	struct fx *f = *state;
	const char *actions[] = { "create", "update", "update", "delete", "update" };
	for (int i = 0; i < 5; i++) {
		struct audit_entry e = { .org_id = f->org.id, .action = actions[i],
					 .table_name = i % 2 ? "users" : "organizations",
					 .record_id = "r1", .ip = "10.0.0.1",
					 .request_id = "rid" };
		assert_int_equal(audit_record(f->c, &e), DB_OK);
	}
	struct audit_filter none = { 0 };
	struct audit_row *all = NULL;
	int n = 0;
	list_all(f, &none, &all, &n);
	assert_int_equal(n, 5);
	assert_string_equal(all[0].action, "update"); /* newest first */
	assert_string_equal(all[4].action, "create");
	/* keyset pages of 2 visit every row once, in order */
	struct page p;
	page_first(&p, 2);
	int seen = 0;
	for (;;) {
		struct audit_row *rows = NULL;
		int m = 0;
		assert_int_equal(audit_list(f->c, f->org.id, &none, p.limit, p.after_at,
					    p.after_id, &rows, &m),
				 DB_OK);
		for (int i = 0; i < m; i++)
			assert_string_equal(rows[i].id, all[seen + i].id);
		seen += m;
		if (m < p.limit) {
			audit_rows_free(rows, m);
			break;
		}
		p.after_at = rows[m - 1].created_at;
		memcpy(p.after_id, rows[m - 1].id, sizeof p.after_id);
		audit_rows_free(rows, m);
	}
	assert_int_equal(seen, 5);
	struct audit_filter upd_users = { .action = "update", .table_name = "users" };
	struct audit_row *rows = NULL;
	int m = 0;
	list_all(f, &upd_users, &rows, &m);
	assert_int_equal(m, 1);
	audit_rows_free(rows, m);
	struct audit_filter window = { .has_from = true, .from_us = all[3].created_at,
				       .has_to = true, .to_us = all[1].created_at };
	list_all(f, &window, &rows, &m);
	assert_int_equal(m, 3);
	audit_rows_free(rows, m);
	/* every filter at once: the most parameters the query takes */
	struct audit_filter every = { .action = "update", .table_name = "users",
				      .user_id = "00000000-0000-0000-0000-000000000000",
				      .record_id = "r1", .has_from = true, .from_us = 0,
				      .has_to = true, .to_us = INT64_MAX };
	list_all(f, &every, &rows, &m);
	assert_int_equal(m, 0); /* no row has that user */
	audit_rows_free(rows, m);
	every.user_id = NULL;
	list_all(f, &every, &rows, &m);
	assert_int_equal(m, 1);
	audit_rows_free(rows, m);
	/* no org id: the tenant condition still binds, and matches nothing */
	struct page p0;
	page_first(&p0, 200);
	rows = NULL;
	m = -1;
	assert_int_equal(audit_list(f->c, NULL, &none, p0.limit, p0.after_at, p0.after_id,
				    &rows, &m),
			 DB_OK);
	assert_int_equal(m, 0);
	assert_null(rows);
	audit_rows_free(all, n);
}

static void test_timezones(void **state)
{
	(void)state;
	static const struct { const char *tz; int ok; } cases[] = {
		{ "UTC", 1 }, { "America/Sao_Paulo", 1 }, { "Europe/Paris", 1 },
		{ "America/Argentina/Buenos_Aires", 1 }, { "Etc/GMT+3", 1 },
		{ "utc", 0 }, { "EST", 0 }, { "", 0 }, { "Mars/Base", 0 },
		{ "America/", 0 }, { "/Paris", 0 }, { "Europe//Paris", 0 },
		{ "Europe/../x", 0 }, { "Europe/Par is", 0 }, { "Europe/_x", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = orgs_check_timezone(cases[i].tz);
		if (cases[i].ok != (why == NULL))
			fail_msg("timezone \"%s\": expected %s", cases[i].tz,
				 cases[i].ok ? "ok" : "rejected");
	}
}

static void test_cursor_and_answer(void **state)
{
	(void)state;
	struct arena a = ARENA_INIT;
	const char *id = "01a22597-2b88-758d-af09-aa25618c4eaa";
	const char *c = page_cursor(&a, 1795926993800061LL, id);
	assert_non_null(c);
	uint8_t raw[128];
	long n = crypto_b64url_decode(c, strlen(c), raw, sizeof raw - 1);
	assert_true(n > 0);
	raw[n] = '\0';
	assert_string_equal((char *)raw, "1795926993800061:01a22597-2b88-758d-af09-aa25618c4eaa");

	struct page p;
	page_first(&p, 2);
	assert_false(p.has_cursor);
	assert_true(p.after_at == INT64_MAX);
	json_t *items = json_pack("[iii]", 1, 2, 3);
	json_t *ans = page_answer(&a, items, 3, &p, 5, id);
	assert_int_equal(json_array_size(json_object_get(ans, "items")), 2);
	assert_string_equal(json_string_value(json_object_get(ans, "next_cursor")),
			    page_cursor(&a, 5, id));
	json_decref(ans);
	ans = page_answer(&a, json_pack("[i]", 1), 1, &p, 5, id);
	assert_true(json_is_null(json_object_get(ans, "next_cursor")));
	json_decref(ans);
	arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_secret_guard, setup, teardown),
		cmocka_unit_test(test_change_helpers),
		cmocka_unit_test_setup_teardown(test_list_filters_and_paging, setup, teardown),
		cmocka_unit_test(test_timezones),
		cmocka_unit_test(test_cursor_and_answer),
	};
	return cmocka_run_group_tests_name("audit", tests, NULL, NULL);
}
