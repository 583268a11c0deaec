/* Unit tests for the templates store: status / category tables, Meta's
 * status mapping, and on SQLite: create, unique key, tenancy, optimistic
 * concurrency (a stale updated_at changes nothing), list filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/str.h"
#include "db/migrate.h"
#include "domain/numbers.h"
#include "domain/orgs.h"
#include "domain/templates.h"

static const uint8_t KEY[32] = { 1, 2, 3 };

struct fx {
	char path[64];
	struct db *db;
	struct db_conn *c;
	struct org org, other;
	struct wa_number number;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char url[96], err[256];
	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/pytake-test-templates-%d.db", (int)getpid());
	unlink(f->path);
	snprintf(url, sizeof url, "sqlite:%s", f->path);
	assert_int_equal(db_open(url, NULL, &f->db, err, sizeof err), 0);
	assert_int_equal(migrate_upgrade(f->db, migrations_embedded,
					 migrations_embedded_count, 0, err, sizeof err), 0);
	f->c = db_acquire(f->db);
	assert_non_null(f->c);
	assert_int_equal(orgs_create(f->c, "Org", "org", NULL, &f->org), DB_OK);
	assert_int_equal(orgs_create(f->c, "Other", "other", NULL, &f->other), DB_OK);
	struct number_new n = { .phone_number_id = "1001", .waba_id = "2002",
				.display_phone_number = "+1 555 0100", .access_token = "tok" };
	assert_int_equal(numbers_create(f->c, KEY, f->org.id, &n, &f->number), 0);
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

static void test_status_tables(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "APPROVED", "APPROVED" }, { "approved", "APPROVED" },
		{ "PENDING", "PENDING" },   { "REJECTED", "REJECTED" },
		{ "PAUSED", "PAUSED" },     { "DISABLED", "DISABLED" },
		{ "ARCHIVED", "ARCHIVED" }, { "DELETED", "DELETED" },
		{ "IN_APPEAL", "PENDING" }, { "PENDING_DELETION", "DELETED" },
		{ "LIMIT_EXCEEDED", "DISABLED" }, { "BOGUS", NULL },
		{ "", NULL },               { NULL, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *got = templates_status_from_meta(cases[i].in);
		if (cases[i].want)
			assert_string_equal(got, cases[i].want);
		else
			assert_null(got);
	}
	assert_true(templates_status_valid("DRAFT"));
	assert_false(templates_status_valid("draft"));
	assert_false(templates_status_valid("IN_APPEAL"));
	assert_true(templates_category_valid("AUTHENTICATION"));
	assert_false(templates_category_valid("marketing"));
	assert_false(templates_category_valid(NULL));
	assert_true(templates_editable("DRAFT"));
	assert_true(templates_editable("REJECTED"));
	assert_false(templates_editable("PENDING"));
	assert_false(templates_editable("APPROVED"));
	assert_false(templates_editable(NULL));
}

static void fill(struct template_row *t, const struct fx *f, const char *name,
		 const char *category)
{
	memset(t, 0, sizeof *t);
	str_copy(t->whatsapp_number_id, sizeof t->whatsapp_number_id, f->number.id);
	str_copy(t->name, sizeof t->name, name);
	str_copy(t->language, sizeof t->language, "en_US");
	str_copy(t->category, sizeof t->category, category);
	t->components = json_pack("[{s:s, s:s}]", "type", "BODY", "text", "Hello there");
}

static void test_create_find_unique_and_tenancy(void **state)
{
	struct fx *f = *state;
	struct template_row t, got, dup;
	fill(&t, f, "welcome", "UTILITY");
	assert_int_equal(templates_create(f->c, f->org.id, &t), DB_OK);
	assert_string_equal(t.status, "DRAFT");
	assert_int_equal(templates_find(f->c, f->org.id, t.id, &got), 0);
	assert_string_equal(got.name, "welcome");
	assert_string_equal(got.parameter_format, "");
	assert_string_equal(got.meta_template_id, "");
	assert_true(json_equal(got.components, t.components));
	template_row_release(&got);
	/* another org, an unknown id, a non-UUID: not found */
	assert_int_equal(templates_find(f->c, f->other.id, t.id, &got), 1);
	assert_int_equal(templates_find(f->c, f->org.id, "00000000-0000-7000-8000-000000000000",
					&got), 1);
	assert_int_equal(templates_find(f->c, f->org.id, "nope", &got), 1);
	assert_int_equal(templates_find_by_key(f->c, f->org.id, f->number.id, "welcome", "en_US",
					       &got), 0);
	assert_string_equal(got.id, t.id);
	template_row_release(&got);
	assert_int_equal(templates_find_by_key(f->c, f->other.id, f->number.id, "welcome",
					       "en_US", &got), 1);
	fill(&dup, f, "welcome", "MARKETING");
	assert_int_equal(templates_create(f->c, f->org.id, &dup), DB_ERR_CONFLICT);
	template_row_release(&dup);
	assert_int_equal(templates_delete(f->c, f->other.id, t.id, t.updated_at), 1);
	template_row_release(&t);
}

static void test_save_and_delete_are_conditional(void **state)
{
	struct fx *f = *state;
	struct template_row t, got;
	fill(&t, f, "promo", "MARKETING");
	assert_int_equal(templates_create(f->c, f->org.id, &t), DB_OK);
	int64_t first = t.updated_at;
	str_copy(t.status, sizeof t.status, "PENDING");
	str_copy(t.meta_template_id, sizeof t.meta_template_id, "12345");
	assert_int_equal(templates_save(f->c, f->org.id, &t, first), 0);
	assert_true(t.updated_at > first);
	/* a writer that read the old row changes nothing */
	str_copy(t.status, sizeof t.status, "APPROVED");
	assert_int_equal(templates_save(f->c, f->org.id, &t, first), TEMPLATES_STALE);
	assert_int_equal(templates_find(f->c, f->org.id, t.id, &got), 0);
	assert_string_equal(got.status, "PENDING");
	assert_string_equal(got.meta_template_id, "12345");
	template_row_release(&got);
	assert_int_equal(templates_delete(f->c, f->org.id, t.id, first), TEMPLATES_STALE);
	/* other org: not found, not stale */
	assert_int_equal(templates_save(f->c, f->other.id, &t, t.updated_at), 1);
	assert_int_equal(templates_delete(f->c, f->org.id, t.id, t.updated_at), 0);
	assert_int_equal(templates_delete(f->c, f->org.id, t.id, t.updated_at), 1);
	template_row_release(&t);
}

static void test_list_filters(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = { "a_one", "b_two", "c_three" };
	static const char *const cats[] = { "UTILITY", "MARKETING", "UTILITY" };
	for (int i = 0; i < 3; i++) {
		struct template_row t;
		fill(&t, f, names[i], cats[i]);
		assert_int_equal(templates_create(f->c, f->org.id, &t), DB_OK);
		template_row_release(&t);
	}
	static const struct {
		struct template_filter flt;
		int want;
		const char *first;
	} cases[] = {
		{ { 0 }, 3, "c_three" },
		{ { .category = "UTILITY" }, 2, "c_three" },
		{ { .name = "b_two" }, 1, "b_two" },
		{ { .status = "APPROVED" }, 0, NULL },
		{ { .language = "pt_BR" }, 0, NULL },
		{ { .number_id = "not-a-uuid" }, 0, NULL },
		{ { .number_id = "00000000-0000-7000-8000-000000000000" }, 0, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct template_row *rows = NULL;
		int n = -1;
		assert_int_equal(templates_list(f->c, f->org.id, &cases[i].flt, 50, INT64_MAX,
						"ffffffff-ffff-ffff-ffff-ffffffffffff", &rows, &n),
				 DB_OK);
		assert_int_equal(n, cases[i].want);
		if (cases[i].first)
			assert_string_equal(rows[0].name, cases[i].first);
		template_rows_free(rows, n);
	}
	struct template_row *rows = NULL;
	int n = -1;
	struct template_filter none = { 0 };
	assert_int_equal(templates_list(f->c, f->other.id, &none, 50, INT64_MAX,
					"ffffffff-ffff-ffff-ffff-ffffffffffff", &rows, &n),
			 DB_OK);
	assert_int_equal(n, 0);
	template_rows_free(rows, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_tables),
		cmocka_unit_test_setup_teardown(test_create_find_unique_and_tenancy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_save_and_delete_are_conditional, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
