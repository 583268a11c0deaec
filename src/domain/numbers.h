/* numbers: the WhatsApp Business phone numbers an organization sends from.
 *
 * Design note
 * - Credentials (access_token, app_secret, verify_token) are write-only.
 *   They are stored sealed with AES-256-GCM (crypto_aead_seal_text: fresh
 *   nonce per value, the row id as associated data, key =
 *   app->cfg->encryption_key), so a value copied to another row does not
 *   open. Nothing here returns them except the explicit *_access_token /
 *   *_app_secret / *_verify_token calls, which decrypt on demand; callers
 *   free the result with crypto_secret_free and never log it.
 * - Delete is SOFT: deleted_at is set and the sealed credentials are
 *   scrubbed (access_token_enc = '', the others NULL), so a deleted
 *   number keeps its history (templates, conversations) but no usable
 *   secret. Deleted rows are invisible to every function below.
 *   phone_number_id is unique among live (not deleted) numbers across the
 *   whole installation (partial unique index), so a number deleted by one
 *   org can be connected again later.
 * - webhook_path is a random 256-bit base64url token (43 chars) made at
 *   creation; it never changes.
 * - Org-scoped functions take org_id and treat another org's row, a
 *   deleted row, or an id that is not a UUID as "not found" (1).
 *   The *_by_phone_number_id / *_by_webhook_path / *_list_by_waba lookups
 *   are INSTALLATION-WIDE (no org filter): they exist for webhook routing,
 *   where the caller learns the org from the row it finds. Never call them
 *   with input from an authenticated API caller.
 *
 * Return convention: 0 ok/found, 1 not found (2: secret not set, where
 * documented), < 0 a db_status, or NUMBERS_ERR_SECRET when a stored
 * credential cannot be decrypted (tampered row, wrong ENCRYPTION_KEY). */
#ifndef PYTAKE_NUMBERS_H
#define PYTAKE_NUMBERS_H
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

/* A sealed credential failed to open (tampered, wrong key) or could not be
 * sealed. Distinct from every db_status. */
#define NUMBERS_ERR_SECRET (-100)

#define NUMBERS_DEFAULT_MPS 80
#define NUMBERS_MIN_MPS 1
#define NUMBERS_MAX_MPS 1000
#define NUMBERS_ID_MAX_DIGITS 32      /* phone_number_id, waba_id */
#define NUMBERS_DISPLAY_MAX 32        /* display_phone_number bytes */
#define NUMBERS_TOKEN_MAX 4096        /* access_token bytes */
#define NUMBERS_SECRET_MAX 512        /* app_secret, verify_token bytes */

struct wa_number {
	char id[37];
	char organization_id[37];
	char phone_number_id[64];
	char waba_id[64];
	char display_phone_number[40];
	int throughput_mps;
	char quality_rating[24];       /* "" = unknown */
	char messaging_limit_tier[40]; /* "" = unknown */
	char webhook_path[64];
	bool has_app_secret, has_verify_token;
	int64_t created_at, updated_at;
};

/* ---- validation: NULL when fine, else a message for the API's details -- */

/* Digits only, 1..NUMBERS_ID_MAX_DIGITS (phone_number_id, waba_id). */
const char *numbers_check_meta_id(const char *s);
/* Optional leading '+', then digits, spaces, '-', '(', ')' only; 4..32
 * bytes with at least 4 digits. */
const char *numbers_check_display(const char *s);
/* 1..NUMBERS_TOKEN_MAX printable ASCII bytes, no whitespace. */
const char *numbers_check_access_token(const char *s);
/* 1..NUMBERS_SECRET_MAX printable ASCII bytes, no whitespace
 * (app_secret, verify_token). */
const char *numbers_check_secret(const char *s);
/* NUMBERS_MIN_MPS..NUMBERS_MAX_MPS. */
const char *numbers_check_mps(int64_t mps);

/* ---- org-scoped CRUD (the API) ----------------------------------------- */

/* What numbers_create inserts. Strings are borrowed; app_secret and
 * verify_token may be NULL (not set); throughput_mps 0 = default (80).
 * Inputs must already pass the numbers_check_* functions. */
struct number_new {
	const char *phone_number_id;
	const char *waba_id;
	const char *display_phone_number;
	const char *access_token;
	const char *app_secret;
	const char *verify_token;
	int throughput_mps;
};

/* Insert a number for org_id: makes the id and webhook_path, seals the
 * credentials with key (the id as associated data). 0 and *out filled,
 * DB_ERR_CONFLICT when a live number already has this phone_number_id (in
 * any org), NUMBERS_ERR_SECRET when sealing/randomness failed, or another
 * db_status. */
int numbers_create(struct db_conn *c, const uint8_t key[32], const char *org_id,
		   const struct number_new *in, struct wa_number *out)
	__attribute__((warn_unused_result));

/* 0 found, 1 not found (incl. other org / deleted / not a UUID),
 * < 0 db_status. */
int numbers_find(struct db_conn *c, const char *org_id, const char *id,
		 struct wa_number *out) __attribute__((warn_unused_result));

/* The live numbers of org_id, newest first: up to `limit` rows strictly
 * after (after_at, after_id) in (created_at DESC, id DESC) order (after_id
 * NULL = from the start). *out is a malloc'd array of *n rows (caller
 * frees with free(); NULL when none). 0 or a db_status. */
int numbers_list(struct db_conn *c, const char *org_id, int limit, int64_t after_at,
		 const char *after_id, struct wa_number **out, int *n)
	__attribute__((warn_unused_result));

/* What numbers_update changes: each field only when its has_* flag is set.
 * access_token must be a valid token; app_secret / verify_token NULL means
 * "remove it". Strings are borrowed and must pass numbers_check_*. */
struct number_patch {
	bool has_display, has_mps, has_access_token, has_app_secret, has_verify_token;
	const char *display_phone_number;
	int throughput_mps;
	const char *access_token;
	const char *app_secret;
	const char *verify_token;
};

/* Apply patch to number id of org_id (new secrets are sealed afresh).
 * before (may be NULL) gets the row as it was, out (may be NULL) as it now
 * is. 0 updated, 1 not found, NUMBERS_ERR_SECRET, or < 0 db_status. */
int numbers_update(struct db_conn *c, const uint8_t key[32], const char *org_id,
		   const char *id, const struct number_patch *patch,
		   struct wa_number *before, struct wa_number *out)
	__attribute__((warn_unused_result));

/* Soft-delete number id of org_id and scrub its credentials. before (may
 * be NULL) gets the row as it was. 0 deleted, 1 not found, < 0 db_status. */
int numbers_delete(struct db_conn *c, const char *org_id, const char *id,
		   struct wa_number *before) __attribute__((warn_unused_result));

/* ---- credentials (decrypted on demand) --------------------------------- */

/* Decrypt the access token of number id of org_id into *token_out
 * (malloc'd; free with crypto_secret_free; set only on 0). 0 ok,
 * 1 not found, NUMBERS_ERR_SECRET when the stored value does not open,
 * < 0 db_status. */
int numbers_access_token(struct db_conn *c, const uint8_t key[32], const char *org_id,
			 const char *id, char **token_out)
	__attribute__((warn_unused_result));
/* Same for the app secret (webhook signature checks). 2 when the number
 * has no app secret. */
int numbers_app_secret(struct db_conn *c, const uint8_t key[32], const char *org_id,
		       const char *id, char **secret_out)
	__attribute__((warn_unused_result));
/* Same for the webhook verify token. 2 when the number has none. */
int numbers_verify_token(struct db_conn *c, const uint8_t key[32], const char *org_id,
			 const char *id, char **token_out)
	__attribute__((warn_unused_result));

/* ---- installation-wide lookups (webhook routing only) ------------------ */

/* The live number with this Meta phone_number_id, in any org.
 * 0 found, 1 not found, < 0 db_status. */
int numbers_find_by_phone_number_id(struct db_conn *c, const char *phone_number_id,
				    struct wa_number *out)
	__attribute__((warn_unused_result));
/* The live number whose webhook_path equals path, in any org.
 * 0 found, 1 not found, < 0 db_status. */
int numbers_find_by_webhook_path(struct db_conn *c, const char *path,
				 struct wa_number *out)
	__attribute__((warn_unused_result));
/* The live numbers of WABA waba_id (at most 1000), in any org, oldest
 * first. *out is a
 * malloc'd array of *n rows (free with free(); NULL when none). 0 or a
 * db_status. */
int numbers_list_by_waba(struct db_conn *c, const char *waba_id,
			 struct wa_number **out, int *n)
	__attribute__((warn_unused_result));

#endif
