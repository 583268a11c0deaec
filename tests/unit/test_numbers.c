/* Unit tests for domain/numbers on SQLite: the validation rules (table
 * driven), create/find/list/update/delete, sealing of the credentials (round
 * trip, fresh nonce, tamper / wrong key / copied-to-another-row detection),
 * soft delete, and the installation-wide webhook lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/crypto.h"
#include "db/migrate.h"
#include "domain/numbers.h"
#include "domain/orgs.h"

static const uint8_t KEY[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

struct fx {
	char path[64];
	struct db *db;
	struct db_conn *c;
	struct org org, other;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char url[96], err[256];
	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/pytake-test-numbers-%d.db", (int)getpid());
	unlink(f->path);
	snprintf(url, sizeof url, "sqlite:%s", f->path);
	assert_int_equal(db_open(url, NULL, &f->db, err, sizeof err), 0);
	assert_int_equal(migrate_upgrade(f->db, migrations_embedded,
					 migrations_embedded_count, 0, err, sizeof err), 0);
	f->c = db_acquire(f->db);
	assert_non_null(f->c);
	assert_int_equal(orgs_create(f->c, "Org", "org", NULL, &f->org), DB_OK);
	assert_int_equal(orgs_create(f->c, "Other", "other", NULL, &f->other), DB_OK);
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

static struct wa_number make(struct fx *f, const char *org_id, const char *pnid,
			     const char *token, const char *app_secret)
{
	struct number_new in = { .phone_number_id = pnid, .waba_id = "5550001",
				 .display_phone_number = "+1 555 0100",
				 .access_token = token, .app_secret = app_secret };
	struct wa_number n;
	assert_int_equal(numbers_create(f->c, KEY, org_id, &in, &n), DB_OK);
	return n;
}

/* The sealed access token column of row id (malloc'd). */
static char *sealed_token(struct fx *f, const char *id)
{
	struct db_param p[] = { DBP_TEXT(id) };
	struct db_res *r = NULL;
	assert_int_equal(db_exec(f->c, "SELECT access_token_enc FROM whatsapp_numbers "
				       "WHERE id = $1", p, 1, &r, NULL), DB_OK);
	assert_int_equal(db_rows(r), 1);
	char *s = strdup(db_get_text(r, 0, 0));
	db_res_free(r);
	assert_non_null(s);
	return s;
}

static void set_sealed_token(struct fx *f, const char *id, const char *sealed)
{
	struct db_param p[] = { DBP_TEXT(id), DBP_TEXT(sealed) };
	assert_int_equal(db_exec(f->c, "UPDATE whatsapp_numbers SET access_token_enc = $2 "
				       "WHERE id = $1", p, 2, NULL, NULL), DB_OK);
}

/* ---- validation (table driven) ----------------------------------------- */

struct check_case {
	const char *(*fn)(const char *);
	const char *input;
	bool ok;
};

static void test_checks(void **state)
{
	(void)state;
	char long_token[NUMBERS_TOKEN_MAX + 2];
	memset(long_token, 'a', sizeof long_token - 1);
	long_token[sizeof long_token - 1] = '\0';
	char max_token[NUMBERS_TOKEN_MAX + 1];
	memset(max_token, 'a', sizeof max_token - 1);
	max_token[sizeof max_token - 1] = '\0';
	const struct check_case cases[] = {
		{ numbers_check_meta_id, "1", true },
		{ numbers_check_meta_id, "12345678901234567890123456789012", true },
		{ numbers_check_meta_id, "123456789012345678901234567890123", false },
		{ numbers_check_meta_id, "", false },
		{ numbers_check_meta_id, "12a", false },
		{ numbers_check_meta_id, "-12", false },
		{ numbers_check_meta_id, " 12", false },
		{ numbers_check_display, "+1 555-010-0000", true },
		{ numbers_check_display, "15550100000", true },
		{ numbers_check_display, "+44 (20) 7946 0000", true },
		{ numbers_check_display, "1234", true },
		{ numbers_check_display, "123", false },
		{ numbers_check_display, "+-()", false },
		{ numbers_check_display, "1+234", false },
		{ numbers_check_display, "call 5550100", false },
		{ numbers_check_display, "123456789012345678901234567890123", false },
		{ numbers_check_access_token, "EAAGm0PX4ZCpsBA", true },
		{ numbers_check_access_token, max_token, true },
		{ numbers_check_access_token, long_token, false },
		{ numbers_check_access_token, "", false },
		{ numbers_check_access_token, "two words", false },
		{ numbers_check_access_token, "tab\tin", false },
		{ numbers_check_access_token, "line\n", false },
		{ numbers_check_access_token, "caf\xc3\xa9", false },
		{ numbers_check_secret, "0123456789abcdef", true },
		{ numbers_check_secret, "", false },
		{ numbers_check_secret, "a b", false },
		{ numbers_check_secret, max_token, false }, /* > 512 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = cases[i].fn(cases[i].input);
		if (cases[i].ok != (why == NULL))
			fail_msg("case %zu (%.40s): expected %s, got %s", i, cases[i].input,
				 cases[i].ok ? "ok" : "error", why ? why : "ok");
	}
	const struct { int64_t v; bool ok; } mps[] = {
		{ 0, false }, { 1, true }, { 80, true }, { 1000, true }, { 1001, false },
		{ -5, false }, { INT64_MAX, false },
	};
	for (size_t i = 0; i < sizeof mps / sizeof mps[0]; i++)
		assert_int_equal(numbers_check_mps(mps[i].v) == NULL, mps[i].ok);
}

/* ---- CRUD ------------------------------------------------------------- */

static void test_create_find_list(void **state)
{
	struct fx *f = *state;
	struct wa_number a = make(f, f->org.id, "1001", "tok-a", NULL);
	struct wa_number b = make(f, f->org.id, "1002", "tok-b", "app-b");
	assert_int_equal(a.throughput_mps, NUMBERS_DEFAULT_MPS);
	assert_false(a.has_app_secret);
	assert_true(b.has_app_secret);
	assert_false(b.has_verify_token);
	assert_true(strlen(a.webhook_path) >= 22);
	assert_string_not_equal(a.webhook_path, b.webhook_path);

	struct wa_number got;
	assert_int_equal(numbers_find(f->c, f->org.id, a.id, &got), 0);
	assert_string_equal(got.phone_number_id, "1001");
	assert_string_equal(got.webhook_path, a.webhook_path);
	assert_string_equal(got.quality_rating, "");
	assert_true(got.created_at > 0);
	assert_int_equal(numbers_find(f->c, f->other.id, a.id, &got), 1);
	assert_int_equal(numbers_find(f->c, f->org.id, "not-a-uuid", &got), 1);

	/* duplicate phone_number_id, even in another org */
	struct number_new dup = { .phone_number_id = "1001", .waba_id = "1",
				  .display_phone_number = "1234", .access_token = "x" };
	assert_int_equal(numbers_create(f->c, KEY, f->other.id, &dup, &got),
			 DB_ERR_CONFLICT);

	struct wa_number *rows = NULL;
	int n = 0;
	assert_int_equal(numbers_list(f->c, f->org.id, 10, 0, NULL, &rows, &n), DB_OK);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, b.id); /* newest first */
	assert_string_equal(rows[1].id, a.id);
	free(rows);
	rows = NULL;
	assert_int_equal(numbers_list(f->c, f->org.id, 10, b.created_at, b.id, &rows, &n),
			 DB_OK);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].id, a.id);
	free(rows);
	rows = NULL;
	assert_int_equal(numbers_list(f->c, f->other.id, 10, 0, NULL, &rows, &n), DB_OK);
	assert_int_equal(n, 0);
	assert_null(rows);
}

static void test_update_and_delete(void **state)
{
	struct fx *f = *state;
	struct wa_number a = make(f, f->org.id, "2001", "tok-old", "app-old");
	struct number_patch p = { .has_display = true, .display_phone_number = "+49 30 1234",
				  .has_mps = true, .throughput_mps = 1000,
				  .has_access_token = true, .access_token = "tok-new",
				  .has_app_secret = true, .app_secret = NULL,
				  .has_verify_token = true, .verify_token = "verify-new" };
	struct wa_number before, after;
	assert_int_equal(numbers_update(f->c, KEY, f->org.id, a.id, &p, &before, &after), 0);
	assert_string_equal(before.display_phone_number, "+1 555 0100");
	assert_string_equal(after.display_phone_number, "+49 30 1234");
	assert_int_equal(after.throughput_mps, 1000);
	assert_false(after.has_app_secret);
	assert_true(after.has_verify_token);
	char *s = NULL;
	assert_int_equal(numbers_access_token(f->c, KEY, f->org.id, a.id, &s), 0);
	assert_string_equal(s, "tok-new");
	crypto_secret_free(s);
	s = NULL;
	assert_int_equal(numbers_app_secret(f->c, KEY, f->org.id, a.id, &s), 2);
	assert_null(s);
	assert_int_equal(numbers_verify_token(f->c, KEY, f->org.id, a.id, &s), 0);
	assert_string_equal(s, "verify-new");
	crypto_secret_free(s);
	s = NULL;
	/* another org cannot update */
	assert_int_equal(numbers_update(f->c, KEY, f->other.id, a.id, &p, NULL, NULL), 1);

	assert_int_equal(numbers_delete(f->c, f->other.id, a.id, NULL), 1);
	assert_int_equal(numbers_delete(f->c, f->org.id, a.id, &before), 0);
	assert_string_equal(before.phone_number_id, "2001");
	assert_int_equal(numbers_delete(f->c, f->org.id, a.id, NULL), 1);
	struct wa_number got;
	assert_int_equal(numbers_find(f->c, f->org.id, a.id, &got), 1);
	assert_int_equal(numbers_access_token(f->c, KEY, f->org.id, a.id, &s), 1);
	assert_int_equal(numbers_find_by_phone_number_id(f->c, "2001", &got), 1);
	assert_int_equal(numbers_find_by_webhook_path(f->c, a.webhook_path, &got), 1);
	assert_int_equal(numbers_update(f->c, KEY, f->org.id, a.id, &p, NULL, NULL), 1);
	/* credentials scrubbed from the row */
	char *sealed = sealed_token(f, a.id);
	assert_string_equal(sealed, "");
	free(sealed);
	/* the phone_number_id may be connected again */
	struct wa_number again = make(f, f->other.id, "2001", "tok-again", NULL);
	assert_string_not_equal(again.id, a.id);
}

/* ---- sealing ------------------------------------------------------------ */

static void test_seal_round_trip_and_fresh_nonce(void **state)
{
	struct fx *f = *state;
	struct wa_number a = make(f, f->org.id, "3001", "same-token", "app-3001");
	struct wa_number b = make(f, f->org.id, "3002", "same-token", NULL);
	char *sa = sealed_token(f, a.id), *sb = sealed_token(f, b.id);
	assert_string_not_equal(sa, sb);
	assert_null(strstr(sa, "same-token"));
	char *s = NULL;
	assert_int_equal(numbers_access_token(f->c, KEY, f->org.id, a.id, &s), 0);
	assert_string_equal(s, "same-token");
	crypto_secret_free(s);
	s = NULL;
	assert_int_equal(numbers_app_secret(f->c, KEY, f->org.id, a.id, &s), 0);
	assert_string_equal(s, "app-3001");
	crypto_secret_free(s);
	s = NULL;
	assert_int_equal(numbers_verify_token(f->c, KEY, f->org.id, a.id, &s), 2);
	/* org-scoped */
	assert_int_equal(numbers_access_token(f->c, KEY, f->other.id, a.id, &s), 1);
	assert_int_equal(numbers_access_token(f->c, KEY, f->org.id, "nope", &s), 1);
	assert_null(s);
	/* wrong key */
	uint8_t other_key[32];
	memcpy(other_key, KEY, sizeof other_key);
	other_key[31] ^= 1;
	assert_int_equal(numbers_access_token(f->c, other_key, f->org.id, a.id, &s),
			 NUMBERS_ERR_SECRET);
	assert_null(s);
	/* a sealed value copied to another row does not open (row id is AD) */
	set_sealed_token(f, b.id, sa);
	assert_int_equal(numbers_access_token(f->c, KEY, f->org.id, b.id, &s),
			 NUMBERS_ERR_SECRET);
	assert_null(s);
	free(sa);
	free(sb);
}

static void test_tampered_ciphertext_is_an_error(void **state)
{
	struct fx *f = *state;
	struct wa_number a = make(f, f->org.id, "4001", "tamper-me", NULL);
	char *orig = sealed_token(f, a.id);
	size_t len = strlen(orig);
	/* flip one base64 character at several positions: version, nonce,
	 * ciphertext, tag; then truncations and garbage */
	const size_t positions[] = { 0, 3, 20, len / 2, len - 4 };
	for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
		char *t = strdup(orig);
		assert_non_null(t);
		t[positions[i]] = t[positions[i]] == 'A' ? 'B' : 'A';
		set_sealed_token(f, a.id, t);
		char *s = NULL;
		int rc = numbers_access_token(f->c, KEY, f->org.id, a.id, &s);
		if (rc != NUMBERS_ERR_SECRET)
			fail_msg("position %zu: rc %d", positions[i], rc);
		assert_null(s);
		free(t);
	}
	const char *bad[] = { "", "AAAA", "not base64 at all!", "AQ==" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		set_sealed_token(f, a.id, bad[i]);
		char *s = NULL;
		assert_int_equal(numbers_access_token(f->c, KEY, f->org.id, a.id, &s),
				 NUMBERS_ERR_SECRET);
		assert_null(s);
	}
	/* restoring the original makes it readable again */
	set_sealed_token(f, a.id, orig);
	char *s = NULL;
	assert_int_equal(numbers_access_token(f->c, KEY, f->org.id, a.id, &s), 0);
	assert_string_equal(s, "tamper-me");
	crypto_secret_free(s);
	free(orig);
}

/* ---- installation-wide lookups ----------------------------------------- */

static void test_webhook_lookups(void **state)
{
	struct fx *f = *state;
	struct wa_number a = make(f, f->org.id, "5001", "t1", "s1");
	struct wa_number b = make(f, f->other.id, "5002", "t2", NULL);
	struct wa_number got;
	assert_int_equal(numbers_find_by_phone_number_id(f->c, "5002", &got), 0);
	assert_string_equal(got.id, b.id);
	assert_string_equal(got.organization_id, f->other.id);
	assert_int_equal(numbers_find_by_phone_number_id(f->c, "9999", &got), 1);
	assert_int_equal(numbers_find_by_phone_number_id(f->c, "x' OR '1'='1", &got), 1);
	assert_int_equal(numbers_find_by_phone_number_id(f->c, NULL, &got), 1);
	assert_int_equal(numbers_find_by_webhook_path(f->c, a.webhook_path, &got), 0);
	assert_string_equal(got.id, a.id);
	assert_int_equal(numbers_find_by_webhook_path(f->c, "", &got), 1);
	assert_int_equal(numbers_find_by_webhook_path(f->c, "nope", &got), 1);
	struct wa_number *rows = NULL;
	int n = 0;
	assert_int_equal(numbers_list_by_waba(f->c, "5550001", &rows, &n), DB_OK);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, a.id); /* oldest first */
	assert_string_equal(rows[1].id, b.id);
	free(rows);
	rows = NULL;
	assert_int_equal(numbers_list_by_waba(f->c, "123", &rows, &n), DB_OK);
	assert_int_equal(n, 0);
	assert_null(rows);
	/* the org of the row found gives access to its secret */
	char *s = NULL;
	assert_int_equal(numbers_app_secret(f->c, KEY, got.organization_id, got.id, &s), 0);
	assert_string_equal(s, "s1");
	crypto_secret_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checks),
		cmocka_unit_test_setup_teardown(test_create_find_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal_round_trip_and_fresh_nonce, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tampered_ciphertext_is_an_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_webhook_lookups, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
