/* numbers: see numbers.h for the design note (sealed credentials, soft
 * delete, installation-wide webhook lookups). */
#include "domain/numbers.h"

#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/rows.h"

/* Upper bound of rows numbers_list_by_waba returns (a WABA holds a handful
 * of numbers; Meta's own limit is far below this). */
#define NUMBERS_WABA_MAX 1000

/* ---- validation ---------------------------------------------------------- */

const char *numbers_check_meta_id(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > NUMBERS_ID_MAX_DIGITS)
		return "must be 1 to 32 digits";
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return "must be 1 to 32 digits";
	return NULL;
}

const char *numbers_check_display(const char *s)
{
	static const char why[] =
		"must be a phone number: an optional '+', then digits, spaces, "
		"'-', '(' or ')', 4 to 32 characters";
	size_t n = strlen(s);
	size_t digits = 0;
	if (n < 4 || n > NUMBERS_DISPLAY_MAX)
		return why;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch >= '0' && ch <= '9')
			digits++;
		else if (ch == '+' && i == 0)
			continue;
		else if (ch != ' ' && ch != '-' && ch != '(' && ch != ')')
			return why;
	}
	return digits >= 4 ? NULL : why;
}

/* 1..max printable ASCII bytes without whitespace. */
static bool is_token_text(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n < 1 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= ' ' || ch >= 0x7f)
			return false;
	}
	return true;
}

const char *numbers_check_access_token(const char *s)
{
	if (!is_token_text(s, NUMBERS_TOKEN_MAX))
		return "must be 1 to 4096 printable ASCII characters without spaces";
	return NULL;
}

const char *numbers_check_secret(const char *s)
{
	if (!is_token_text(s, NUMBERS_SECRET_MAX))
		return "must be 1 to 512 printable ASCII characters without spaces";
	return NULL;
}

const char *numbers_check_mps(int64_t mps)
{
	if (mps < NUMBERS_MIN_MPS || mps > NUMBERS_MAX_MPS)
		return "must be between 1 and 1000";
	return NULL;
}

/* ---- sealing ------------------------------------------------------------- */

/* Seal plain (may be NULL: *out = NULL) for row id. 0 or
 * NUMBERS_ERR_SECRET. *out is free()d by the caller. */
static int seal(const uint8_t key[32], const char *id, const char *plain, char **out)
{
	*out = NULL;
	if (!plain)
		return 0;
	if (crypto_aead_seal_text(key, id, plain, strlen(plain), out) != 0)
		return NUMBERS_ERR_SECRET;
	return 0;
}

/* The sealed credential columns, chosen by a fixed enum so no column name
 * is ever built from input. */
enum secret_col { SECRET_ACCESS_TOKEN, SECRET_APP_SECRET, SECRET_VERIFY_TOKEN };

static const char *const secret_select_sql[] = {
	[SECRET_ACCESS_TOKEN] = "SELECT id, access_token_enc FROM whatsapp_numbers "
				"WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL",
	[SECRET_APP_SECRET] = "SELECT id, app_secret_enc FROM whatsapp_numbers "
			      "WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL",
	[SECRET_VERIFY_TOKEN] = "SELECT id, verify_token_enc FROM whatsapp_numbers "
				"WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL",
};

static const char *const secret_update_sql[] = {
	[SECRET_ACCESS_TOKEN] = "UPDATE whatsapp_numbers SET access_token_enc = $3 "
				"WHERE organization_id = $1 AND id = $2",
	[SECRET_APP_SECRET] = "UPDATE whatsapp_numbers SET app_secret_enc = $3 "
			      "WHERE organization_id = $1 AND id = $2",
	[SECRET_VERIFY_TOKEN] = "UPDATE whatsapp_numbers SET verify_token_enc = $3 "
				"WHERE organization_id = $1 AND id = $2",
};

/* Read and open one credential. 0 (*out set), 1 not found, 2 not set,
 * NUMBERS_ERR_SECRET, < 0 db_status. */
static int open_secret(struct db_conn *c, const uint8_t key[32], const char *org_id,
		       const char *id, enum secret_col col, char **out)
{
	if (!uuid_is_valid(id) || !uuid_is_valid(org_id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	struct db_res *r = NULL;
	int rc = db_exec(c, secret_select_sql[col], p, 2, &r, NULL);
	if (rc != DB_OK)
		goto out;
	rc = 1;
	if (db_rows(r) == 0)
		goto out;
	rc = 2;
	const char *sealed = db_get_text(r, 0, 1);
	if (!sealed)
		goto out;
	/* The row's own id (canonical text from the store) is the AD. */
	char *plain = NULL;
	if (sealed[0] == '\0' ||
	    crypto_aead_open_text(key, db_get_text(r, 0, 0), sealed, &plain, NULL) != 0) {
		rc = NUMBERS_ERR_SECRET;
		goto out;
	}
	*out = plain;
	rc = 0;
out:
	db_res_free(r);
	return rc;
}

/* Seal plain (NULL = remove) into column col of the row. 0,
 * NUMBERS_ERR_SECRET or a db_status. */
static int store_secret(struct db_conn *c, const uint8_t key[32], const char *org_id,
			const char *id, enum secret_col col, const char *plain)
{
	char *sealed = NULL;
	int rc = seal(key, id, plain, &sealed);
	if (rc != 0)
		return rc;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id), DBP_TEXT(sealed) };
	rc = db_exec(c, secret_update_sql[col], p, 3, NULL, NULL);
	free(sealed);
	return rc;
}

/* ---- rows ---------------------------------------------------------------- */

#define NUMBER_COLS                                                            \
	"id, organization_id, phone_number_id, waba_id, display_phone_number, " \
	"throughput_mps, COALESCE(quality_rating, ''), "                        \
	"COALESCE(messaging_limit_tier, ''), webhook_path, "                    \
	"CASE WHEN app_secret_enc IS NULL THEN 0 ELSE 1 END, "                  \
	"CASE WHEN verify_token_enc IS NULL THEN 0 ELSE 1 END, "                \
	"created_at, updated_at"

static void number_from_row(const struct db_res *r, int row, void *elem)
{
	struct wa_number *n = elem;
	memset(n, 0, sizeof *n);
	str_copy(n->id, sizeof n->id, db_get_text(r, row, 0));
	str_copy(n->organization_id, sizeof n->organization_id, db_get_text(r, row, 1));
	str_copy(n->phone_number_id, sizeof n->phone_number_id, db_get_text(r, row, 2));
	str_copy(n->waba_id, sizeof n->waba_id, db_get_text(r, row, 3));
	str_copy(n->display_phone_number, sizeof n->display_phone_number,
		 db_get_text(r, row, 4));
	n->throughput_mps = (int)db_get_int(r, row, 5);
	str_copy(n->quality_rating, sizeof n->quality_rating, db_get_text(r, row, 6));
	str_copy(n->messaging_limit_tier, sizeof n->messaging_limit_tier,
		 db_get_text(r, row, 7));
	str_copy(n->webhook_path, sizeof n->webhook_path, db_get_text(r, row, 8));
	n->has_app_secret = db_get_int(r, row, 9) != 0;
	n->has_verify_token = db_get_int(r, row, 10) != 0;
	n->created_at = db_get_int(r, row, 11);
	n->updated_at = db_get_int(r, row, 12);
}

/* Run a query selecting NUMBER_COLS and expecting at most one row.
 * 0 found, 1 not found, < 0 db_status. */
static int find_one(struct db_conn *c, const char *sql, const struct db_param *p,
		    int np, struct wa_number *out)
{
	return rows_first(c, sql, p, np, sizeof *out, number_from_row, out);
}

/* Run a query selecting NUMBER_COLS into a malloc'd array. */
static int find_many(struct db_conn *c, const char *sql, const struct db_param *p,
		     int np, struct wa_number **out, int *n)
{
	void *rows = NULL;
	int rc = rows_select(c, sql, p, np, sizeof **out, number_from_row, &rows, n);
	if (rc == DB_OK)
		*out = rows;
	return rc;
}

/* ---- org-scoped CRUD ----------------------------------------------------- */

/* Seal the three credentials of in for row id. */
struct sealed_set {
	char *access_token, *app_secret, *verify_token;
};

static void sealed_set_release(struct sealed_set *s)
{
	free(s->access_token);
	free(s->app_secret);
	free(s->verify_token);
}

static int seal_all(const uint8_t key[32], const char *id, const struct number_new *in,
		    struct sealed_set *s)
{
	if (seal(key, id, in->access_token, &s->access_token) != 0 || !s->access_token ||
	    seal(key, id, in->app_secret, &s->app_secret) != 0 ||
	    seal(key, id, in->verify_token, &s->verify_token) != 0)
		return NUMBERS_ERR_SECRET;
	return 0;
}

int numbers_create(struct db_conn *c, const uint8_t key[32], const char *org_id,
		   const struct number_new *in, struct wa_number *out)
{
	struct wa_number n = { 0 };
	struct sealed_set s = { 0 };
	int rc = DB_ERR;
	if (uuid_v7_str(n.id) != 0)
		goto out;
	rc = NUMBERS_ERR_SECRET;
	if (crypto_token(n.webhook_path, sizeof n.webhook_path, 32) != 0)
		goto out;
	if ((rc = seal_all(key, n.id, in, &s)) != 0)
		goto out;
	str_copy(n.organization_id, sizeof n.organization_id, org_id);
	str_copy(n.phone_number_id, sizeof n.phone_number_id, in->phone_number_id);
	str_copy(n.waba_id, sizeof n.waba_id, in->waba_id);
	str_copy(n.display_phone_number, sizeof n.display_phone_number,
		 in->display_phone_number);
	n.throughput_mps = in->throughput_mps > 0 ? in->throughput_mps : NUMBERS_DEFAULT_MPS;
	n.has_app_secret = in->app_secret != NULL;
	n.has_verify_token = in->verify_token != NULL;
	n.created_at = n.updated_at = time_now_us();
	struct db_param p[] = {
		DBP_TEXT(n.id), DBP_TEXT(n.organization_id), DBP_TEXT(n.phone_number_id),
		DBP_TEXT(n.waba_id), DBP_TEXT(n.display_phone_number),
		DBP_TEXT(s.access_token), DBP_TEXT(s.app_secret), DBP_TEXT(s.verify_token),
		DBP_INT(n.throughput_mps), DBP_TEXT(n.webhook_path), DBP_INT(n.created_at),
		DBP_INT(n.updated_at),
	};
	rc = db_exec(c,
		     "INSERT INTO whatsapp_numbers (id, organization_id, phone_number_id, "
		     "waba_id, display_phone_number, access_token_enc, app_secret_enc, "
		     "verify_token_enc, throughput_mps, webhook_path, created_at, "
		     "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
		     p, 12, NULL, NULL);
	if (rc == DB_OK)
		*out = n;
out:
	sealed_set_release(&s);
	return rc;
}

int numbers_find(struct db_conn *c, const char *org_id, const char *id,
		 struct wa_number *out)
{
	if (!uuid_is_valid(id) || !uuid_is_valid(org_id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id) };
	return find_one(c,
			"SELECT " NUMBER_COLS " FROM whatsapp_numbers "
			"WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL",
			p, 2, out);
}

int numbers_list(struct db_conn *c, const char *org_id, int limit, int64_t after_at,
		 const char *after_id, struct wa_number **out, int *n)
{
	*out = NULL;
	*n = 0;
	if (!uuid_is_valid(org_id))
		return DB_OK;
	if (!after_id) {
		after_at = INT64_MAX;
		after_id = "ffffffff-ffff-ffff-ffff-ffffffffffff";
	}
	struct db_param p[] = { DBP_TEXT(org_id), DBP_INT(after_at), DBP_TEXT(after_id),
				DBP_INT(limit) };
	return find_many(c,
			 "SELECT " NUMBER_COLS " FROM whatsapp_numbers "
			 "WHERE organization_id = $1 AND deleted_at IS NULL "
			 "AND (created_at, id) < ($2, $3) "
			 "ORDER BY created_at DESC, id DESC LIMIT $4",
			 p, 4, out, n);
}

/* Bump updated_at of the live row to now, which takes its lock
 * (PostgreSQL) so what is read next is exactly what the caller's update
 * replaces, and read it into *n. 0, 1 not found (or a malformed id), < 0. */
static int touch_and_find(struct db_conn *c, const char *org_id, const char *id,
			  int64_t now, struct wa_number *n)
{
	if (!uuid_is_valid(id) || !uuid_is_valid(org_id))
		return 1;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(id), DBP_INT(now) };
	int64_t affected = 0;
	int rc = db_exec(c,
			 "UPDATE whatsapp_numbers SET updated_at = $3 "
			 "WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL",
			 p, 3, NULL, &affected);
	if (rc != DB_OK)
		return rc;
	if (affected == 0)
		return 1;
	return numbers_find(c, org_id, id, n);
}

/* Write the patch's sealed credentials (each only when asked). */
static int update_secrets(struct db_conn *c, const uint8_t key[32], const char *org_id,
			  const char *id, const struct number_patch *patch)
{
	int rc = DB_OK;
	if (patch->has_access_token) {
		if (!patch->access_token)
			return DB_ERR_CHECK; /* the access token cannot be removed */
		rc = store_secret(c, key, org_id, id, SECRET_ACCESS_TOKEN,
				  patch->access_token);
	}
	if (rc == DB_OK && patch->has_app_secret)
		rc = store_secret(c, key, org_id, id, SECRET_APP_SECRET, patch->app_secret);
	if (rc == DB_OK && patch->has_verify_token)
		rc = store_secret(c, key, org_id, id, SECRET_VERIFY_TOKEN,
				  patch->verify_token);
	return rc;
}

int numbers_update(struct db_conn *c, const uint8_t key[32], const char *org_id,
		   const char *id, const struct number_patch *patch,
		   struct wa_number *before, struct wa_number *out)
{
	int64_t now = time_now_us();
	struct wa_number n;
	int rc = touch_and_find(c, org_id, id, now, &n);
	if (rc != 0)
		return rc;
	if (before)
		*before = n;
	/* Use the stored (canonical) id from here on: it is the sealing AD. */
	if (patch->has_display)
		str_copy(n.display_phone_number, sizeof n.display_phone_number,
			 patch->display_phone_number);
	if (patch->has_mps)
		n.throughput_mps = patch->throughput_mps;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(n.id),
				DBP_TEXT(n.display_phone_number), DBP_INT(n.throughput_mps) };
	rc = db_exec(c,
		     "UPDATE whatsapp_numbers SET display_phone_number = $3, "
		     "throughput_mps = $4 WHERE organization_id = $1 AND id = $2",
		     p, 4, NULL, NULL);
	if (rc == DB_OK)
		rc = update_secrets(c, key, org_id, n.id, patch);
	if (rc != DB_OK)
		return rc;
	if (patch->has_app_secret)
		n.has_app_secret = patch->app_secret != NULL;
	if (patch->has_verify_token)
		n.has_verify_token = patch->verify_token != NULL;
	if (out)
		*out = n;
	return DB_OK;
}

int numbers_delete(struct db_conn *c, const char *org_id, const char *id,
		   struct wa_number *before)
{
	int64_t now = time_now_us();
	struct wa_number n;
	int rc = touch_and_find(c, org_id, id, now, &n);
	if (rc != 0)
		return rc;
	struct db_param p[] = { DBP_TEXT(org_id), DBP_TEXT(n.id), DBP_INT(now) };
	rc = db_exec(c,
		     "UPDATE whatsapp_numbers SET deleted_at = $3, access_token_enc = '', "
		     "app_secret_enc = NULL, verify_token_enc = NULL "
		     "WHERE organization_id = $1 AND id = $2",
		     p, 3, NULL, NULL);
	if (rc == DB_OK && before)
		*before = n;
	return rc;
}

/* ---- credentials --------------------------------------------------------- */

int numbers_access_token(struct db_conn *c, const uint8_t key[32], const char *org_id,
			 const char *id, char **token_out)
{
	int rc = open_secret(c, key, org_id, id, SECRET_ACCESS_TOKEN, token_out);
	/* access_token_enc is NOT NULL: "not set" can only mean a broken row. */
	return rc == 2 ? NUMBERS_ERR_SECRET : rc;
}

int numbers_app_secret(struct db_conn *c, const uint8_t key[32], const char *org_id,
		       const char *id, char **secret_out)
{
	return open_secret(c, key, org_id, id, SECRET_APP_SECRET, secret_out);
}

int numbers_verify_token(struct db_conn *c, const uint8_t key[32], const char *org_id,
			 const char *id, char **token_out)
{
	return open_secret(c, key, org_id, id, SECRET_VERIFY_TOKEN, token_out);
}

/* ---- installation-wide lookups (webhook routing) -------------------------- */

int numbers_find_by_phone_number_id(struct db_conn *c, const char *phone_number_id,
				    struct wa_number *out)
{
	if (!phone_number_id || numbers_check_meta_id(phone_number_id))
		return 1;
	struct db_param p[] = { DBP_TEXT(phone_number_id) };
	return find_one(c,
			"SELECT " NUMBER_COLS " FROM whatsapp_numbers "
			"WHERE phone_number_id = $1 AND deleted_at IS NULL",
			p, 1, out);
}

int numbers_find_by_webhook_path(struct db_conn *c, const char *path,
				 struct wa_number *out)
{
	if (!path || path[0] == '\0' || strlen(path) >= sizeof out->webhook_path)
		return 1;
	struct db_param p[] = { DBP_TEXT(path) };
	return find_one(c,
			"SELECT " NUMBER_COLS " FROM whatsapp_numbers "
			"WHERE webhook_path = $1 AND deleted_at IS NULL",
			p, 1, out);
}

int numbers_list_by_waba(struct db_conn *c, const char *waba_id,
			 struct wa_number **out, int *n)
{
	*out = NULL;
	*n = 0;
	if (!waba_id || numbers_check_meta_id(waba_id))
		return DB_OK;
	struct db_param p[] = { DBP_TEXT(waba_id), DBP_INT(NUMBERS_WABA_MAX) };
	return find_many(c,
			 "SELECT " NUMBER_COLS " FROM whatsapp_numbers "
			 "WHERE waba_id = $1 AND deleted_at IS NULL "
			 "ORDER BY created_at, id LIMIT $2",
			 p, 2, out, n);
}
