/* webhooks: Meta's webhook endpoints and the operators' events list.
 *
 *   GET  /webhooks/meta                  handshake with WEBHOOK_VERIFY_TOKEN
 *   POST /webhooks/meta                  signed with META_APP_SECRET
 *   GET  /webhooks/meta/{webhook_path}   handshake with the number's token
 *   POST /webhooks/meta/{webhook_path}   signed with the number's app secret
 *   GET  /api/v1/webhooks/events         org_admin: this org's events;
 *                                        super_admin: ?unrouted=true too
 *
 * A POST is verified over the raw bytes (webhook_verify.h) before anything
 * else; a bad signature is answered 401 invalid_signature, counted, logged
 * in one line (never the body) and nothing is stored. A good one goes
 * through the group-commit writer (webhook_ingest.h): 200 only after its
 * row committed, 503 + Retry-After otherwise. The handler does not wait:
 * it defers its answer (http_defer) and the writer completes it after the
 * commit, so a few HTTP threads serve any number of waiting connections.
 *
 * Per-number credentials are decrypted once and cached in memory (a
 * direct-mapped table keyed by webhook_path, SECRET_TTL_US; unknown paths
 * cached NEGATIVE_TTL_US), so the hot path does no AES and no SQL. A
 * changed secret takes effect within the TTL. */
#include "api/api.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"
#include "domain/numbers.h"
#include "meta/webhook_ingest.h"
#include "meta/webhook_store.h"
#include "meta/webhook_verify.h"

#define CACHE_SLOTS 256
#define SECRET_TTL_US (30 * 1000000LL)
#define NEGATIVE_TTL_US (5 * 1000000LL)
#define CHALLENGE_MAX 512
#define CURSOR_MAX 96

static const char ok_body[] = "{\"status\":\"ok\"}";

struct secret_slot {
	bool used, found;
	int64_t expires_us;
	char path[64];
	char number_id[37];
	char app_secret[NUMBERS_SECRET_MAX + 1];  /* "" = not set */
	char verify_token[NUMBERS_SECRET_MAX + 1]; /* "" = not set */
};

struct webhooks {
	struct app *app;
	struct webhook_ingest *ingest;
	pthread_mutex_t mu;
	struct secret_slot slots[CACHE_SLOTS];
	struct metric_family *received, *rejected, *batches, *queued, *failed;
	/* received{source="app"} / {source="number"}, looked up once */
	struct metric_series *received_app, *received_number;
};

/* ---- metrics ------------------------------------------------------------ */

static void collect(struct metrics *m, void *ctx)
{
	struct webhooks *wh = ctx;
	struct webhook_ingest_stats st;
	(void)m;
	webhook_ingest_get_stats(wh->ingest, &st);
	metrics_put(wh->batches, NULL, (int64_t)st.batches);
	metrics_put(wh->queued, NULL, (int64_t)st.queued);
	metrics_put(wh->failed, NULL, (int64_t)(st.failed + st.busy));
}

static int register_metrics(struct webhooks *wh, struct metrics *m)
{
	static const char *const src_label[] = { "source" };
	static const char *const reason_label[] = { "reason" };
	if (m == NULL)
		return 0;
	wh->received = metrics_counter_new(m, "pytake_webhook_events_received_total",
					   "Webhook POSTs stored and acknowledged", 1, src_label);
	wh->rejected = metrics_counter_new(m, "pytake_webhook_events_rejected_total",
					   "Webhook POSTs refused (bad signature, unknown path, "
					   "overload)", 1, reason_label);
	wh->batches = metrics_counter_new(m, "pytake_webhook_ingest_batches_total",
					  "Group-commit transactions committed", 0, NULL);
	wh->queued = metrics_gauge_new(m, "pytake_webhook_ingest_queued",
				       "Webhooks waiting for the writer", 0, NULL);
	wh->failed = metrics_counter_new(m, "pytake_webhook_ingest_unavailable_total",
					 "Webhooks answered 503 (queue full or DB error)", 0, NULL);
	if (wh->received == NULL || wh->rejected == NULL || wh->batches == NULL ||
	    wh->queued == NULL || wh->failed == NULL)
		return -1;
	wh->received_app = metrics_series(wh->received, (const char *const[]){ "app" });
	wh->received_number = metrics_series(wh->received, (const char *const[]){ "number" });
	return metrics_add_collector(m, collect, wh);
}

static void count_rejected(struct webhooks *wh, const char *reason)
{
	const char *const v[] = { reason };
	if (wh->rejected != NULL)
		metrics_inc(wh->rejected, v, 1);
}

static void count_received(struct webhooks *wh, const char *source)
{
	const char *const v[] = { source };
	struct metric_series *s = strcmp(source, "app") == 0	  ? wh->received_app
				  : strcmp(source, "number") == 0 ? wh->received_number
								  : NULL;
	if (s != NULL)
		metrics_add(s, 1);
	else if (wh->received != NULL)
		metrics_inc(wh->received, v, 1);
}

/* ---- lifecycle ---------------------------------------------------------- */

struct webhooks *api_webhooks_new(struct app *app, struct metrics *m)
{
	struct webhooks *wh = calloc(1, sizeof *wh);
	if (wh == NULL)
		return NULL;
	wh->app = app;
	if (pthread_mutex_init(&wh->mu, NULL) != 0) {
		free(wh);
		return NULL;
	}
	if (webhook_ingest_start(app->db, NULL, &wh->ingest) != 0)
		goto fail;
	if (register_metrics(wh, m) != 0)
		goto fail;
	return wh;
fail:
	webhook_ingest_stop(wh->ingest);
	pthread_mutex_destroy(&wh->mu);
	free(wh);
	return NULL;
}

void api_webhooks_free(struct webhooks *wh)
{
	if (wh == NULL)
		return;
	webhook_ingest_stop(wh->ingest);
	crypto_wipe(wh->slots, sizeof wh->slots);
	pthread_mutex_destroy(&wh->mu);
	free(wh);
}

/* ---- per-number credentials cache --------------------------------------- */

static size_t path_slot(const char *path)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h % CACHE_SLOTS);
}

/* Copy a decrypted secret into dst (too long -> treated as unset). */
static void keep_secret(char *dst, size_t dstsz, char *secret)
{
	dst[0] = '\0';
	if (secret != NULL && strlen(secret) < dstsz)
		memcpy(dst, secret, strlen(secret) + 1);
	crypto_secret_free(secret);
}

/* Look the number up in the database and decrypt its credentials into
 * slot. 0 (slot->found tells), or < 0 a db_status / NUMBERS_ERR_SECRET. */
static int load_number(struct app *app, const char *path, struct secret_slot *slot)
{
	struct db_conn *c = db_acquire(app->db);
	struct wa_number n;
	char *secret = NULL, *token = NULL;
	int rc;

	if (c == NULL)
		return DB_ERR_UNAVAILABLE;
	memset(slot, 0, sizeof *slot);
	snprintf(slot->path, sizeof slot->path, "%s", path);
	rc = numbers_find_by_webhook_path(c, path, &n);
	if (rc == 1) {
		rc = 0;
		goto out;
	}
	if (rc != 0)
		goto out;
	rc = numbers_app_secret(c, app->cfg->encryption_key, n.organization_id, n.id, &secret);
	if (rc < 0)
		goto out;
	rc = numbers_verify_token(c, app->cfg->encryption_key, n.organization_id, n.id, &token);
	if (rc < 0)
		goto out;
	rc = 0;
	slot->found = true;
	snprintf(slot->number_id, sizeof slot->number_id, "%s", n.id);
	keep_secret(slot->app_secret, sizeof slot->app_secret, secret);
	keep_secret(slot->verify_token, sizeof slot->verify_token, token);
	secret = token = NULL;
out:
	crypto_secret_free(secret);
	crypto_secret_free(token);
	db_release(app->db, c);
	return rc;
}

/* The credentials for path into *out (a copy; the caller wipes it).
 * 0 (out->found tells), or < 0 on a database/decryption error. */
static int number_credentials(struct webhooks *wh, const char *path, struct secret_slot *out)
{
	size_t i = path_slot(path);
	int64_t now = time_mono_us();
	int rc;

	if (strlen(path) >= sizeof out->path) {
		memset(out, 0, sizeof *out);
		return 0; /* longer than any webhook_path: unknown */
	}
	pthread_mutex_lock(&wh->mu);
	struct secret_slot *s = &wh->slots[i];
	bool hit = s->used && s->expires_us > now && strcmp(s->path, path) == 0;
	if (hit)
		*out = *s;
	pthread_mutex_unlock(&wh->mu);
	if (hit)
		return 0;
	rc = load_number(wh->app, path, out);
	if (rc != 0)
		return rc;
	out->used = true;
	out->expires_us = now + (out->found ? SECRET_TTL_US : NEGATIVE_TTL_US);
	pthread_mutex_lock(&wh->mu);
	wh->slots[i] = *out;
	pthread_mutex_unlock(&wh->mu);
	return 0;
}

/* ---- handshake ---------------------------------------------------------- */

static bool token_equal(const char *want, const char *got)
{
	size_t n = strlen(want);
	if (n == 0 || got == NULL || strlen(got) != n)
		return false;
	return crypto_equal(want, got, n);
}

static void handshake(struct http_request *req, struct http_response *res,
		      const char *verify_token)
{
	const char *mode = http_query(req, "hub.mode");
	const char *token = http_query(req, "hub.verify_token");
	const char *challenge = http_query(req, "hub.challenge");

	if (mode == NULL || strcmp(mode, "subscribe") != 0 || verify_token == NULL ||
	    !token_equal(verify_token, token)) {
		http_error(res, 403, "forbidden", "webhook verification failed", NULL);
		return;
	}
	if (challenge == NULL || challenge[0] == '\0' || strlen(challenge) > CHALLENGE_MAX) {
		http_error(res, 400, "invalid_request", "hub.challenge is missing or too long",
			   NULL);
		return;
	}
	http_body(res, 200, "text/plain; charset=utf-8", challenge, strlen(challenge));
}

void api_webhooks_verify(struct http_request *req, struct http_response *res)
{
	const char *tok = req->app->cfg->webhook_verify_token;
	handshake(req, res, tok != NULL && tok[0] != '\0' ? tok : NULL);
}

/* ---- POST --------------------------------------------------------------- */

static void reject_signature(struct webhooks *wh, struct http_request *req,
			     struct http_response *res, enum webhook_sig why)
{
	count_rejected(wh, webhook_sig_name(why));
	log_event(LOG_WARN, "webhook signature rejected", LF_S("route", req->route),
		  LF_S("reason", webhook_sig_name(why)), LF_S("client_ip", req->client_ip),
		  LF_I("bytes", req->body_len));
	http_error(res, 401, "invalid_signature",
		   "X-Hub-Signature-256 is missing or does not match the body", NULL);
}

static void answer_unavailable(struct http_response *res, const char *why)
{
	http_add_header(res, "Retry-After", "1");
	http_error(res, 503, "service_unavailable", why, NULL);
}

/* A deferred webhook answer, in the request arena; read by the writer. */
struct pending_ack {
	struct webhooks *wh;
	struct http_deferred *d;
	const char *label;
};

static void answer_stored(struct webhooks *wh, struct http_response *res, int rc,
			  const char *label)
{
	if (rc != WEBHOOK_INGEST_OK) {
		count_rejected(wh, rc == WEBHOOK_INGEST_BUSY ? "queue_full" : "unavailable");
		answer_unavailable(res, rc == WEBHOOK_INGEST_BUSY
						? "too many webhooks waiting; retry shortly"
						: "the event could not be stored; retry shortly");
		return;
	}
	count_received(wh, label);
	http_body(res, 200, "application/json; charset=utf-8", ok_body, sizeof ok_body - 1);
}

/* webhook_ingest_done_fn: the batch committed (or failed); answer. */
static void on_stored(void *ctx, int rc, int64_t id)
{
	struct pending_ack *p = ctx;
	struct http_deferred *d = p->d;

	(void)id;
	answer_stored(p->wh, http_deferred_response(d), rc, p->label);
	http_complete(d); /* p (arena) may be gone after this */
}

/* Verify, store, answer. secret may be NULL (not configured). */
static void accept_post(struct webhooks *wh, struct http_request *req,
			struct http_response *res, const char *secret, const char *source,
			const char *label)
{
	enum webhook_sig sig;
	struct pending_ack *p;
	int rc;

	sig = webhook_sig_verify(secret, secret != NULL ? strlen(secret) : 0, req->body,
				 req->body_len, http_header(req, "X-Hub-Signature-256"));
	if (sig != WEBHOOK_SIG_OK) {
		reject_signature(wh, req, res, sig);
		return;
	}
	/* PostgreSQL TEXT holds neither NUL nor invalid UTF-8; Meta sends
	 * ASCII-escaped JSON, so this only refuses forged-but-signed junk. */
	if (strlen(req->body) != req->body_len) {
		count_rejected(wh, "bad_body");
		http_error(res, 400, "invalid_request", "the body holds a NUL byte", NULL);
		return;
	}
	p = arena_alloc(req->arena, sizeof *p);
	if (p == NULL) {
		answer_stored(wh, res, WEBHOOK_INGEST_FAILED, label);
		return;
	}
	*p = (struct pending_ack){ .wh = wh, .d = http_defer(req), .label = label };
	if (p->d == NULL) { /* cannot defer: wait here */
		rc = webhook_ingest_submit(wh->ingest, req->body, req->body_len, source,
					   time_now_us(), NULL);
		answer_stored(wh, res, rc, label);
		return;
	}
	/* Last use of req/res on this thread: from here the writer owns the
	 * answer (on_stored may even run before this returns). */
	rc = webhook_ingest_submit_async(wh->ingest, req->body, req->body_len, source,
					 time_now_us(), on_stored, p);
	if (rc != WEBHOOK_INGEST_OK) {
		answer_stored(wh, http_deferred_response(p->d), rc, label);
		http_complete(p->d);
	}
}

void api_webhooks_receive(struct http_request *req, struct http_response *res)
{
	struct webhooks *wh = req->app->webhooks;
	const char *secret = req->app->cfg->meta_app_secret;

	if (wh == NULL) {
		answer_unavailable(res, "webhook ingestion is not running");
		return;
	}
	if (secret == NULL || secret[0] == '\0') {
		count_rejected(wh, "not_configured");
		log_msg(LOG_ERROR, "webhook refused: META_APP_SECRET is not set");
		answer_unavailable(res, "webhooks are not configured on this server");
		return;
	}
	accept_post(wh, req, res, secret, WEBHOOK_SOURCE_APP, "app");
}

/* The credentials for the request's {webhook_path}; false after answering
 * (404 unknown path, 503 database or ingestion not running). The caller
 * wipes *out either way. */
static bool path_credentials(struct http_request *req, struct http_response *res,
			     struct secret_slot *out)
{
	struct webhooks *wh = req->app->webhooks;
	const char *path = http_param(req, "webhook_path");

	if (wh == NULL) {
		answer_unavailable(res, "webhook ingestion is not running");
		return false;
	}
	int rc = path != NULL ? number_credentials(wh, path, out) : 0;
	if (rc != 0) {
		if (rc == NUMBERS_ERR_SECRET)
			log_msg(LOG_ERROR, "webhook: a number's stored secret does not open");
		api_answer_db_error(res, rc == NUMBERS_ERR_SECRET ? DB_ERR : rc);
		return false;
	}
	if (path == NULL || !out->found) {
		count_rejected(wh, "unknown_path");
		api_answer_not_found(res, "webhook not found");
		return false;
	}
	return true;
}

void api_webhooks_number_verify(struct http_request *req, struct http_response *res)
{
	struct secret_slot cred = { .used = false };

	if (path_credentials(req, res, &cred))
		handshake(req, res, cred.verify_token[0] != '\0' ? cred.verify_token : NULL);
	crypto_wipe(&cred, sizeof cred);
}

void api_webhooks_number_receive(struct http_request *req, struct http_response *res)
{
	struct secret_slot cred = { .used = false };

	/* A number without its own app secret cannot be verified here: its
	 * webhooks belong on /webhooks/meta. */
	if (path_credentials(req, res, &cred))
		accept_post(req->app->webhooks, req, res,
			    cred.app_secret[0] != '\0' ? cred.app_secret : NULL, cred.number_id,
			    "number");
	crypto_wipe(&cred, sizeof cred);
}

/* ---- GET /api/v1/webhooks/events ---------------------------------------- */

json_t *api_webhook_event_json(const struct webhook_event *ev)
{
	char id[24];
	json_t *o = json_object();
	json_t *payload = json_loadb(ev->body, ev->body_len, JSON_DECODE_ANY, NULL);

	if (o == NULL) {
		json_decref(payload);
		return NULL;
	}
	snprintf(id, sizeof id, "%lld", (long long)ev->id);
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "received_at", api_time_json(ev->received_at));
	json_object_set_new(o, "source", json_string(ev->source));
	json_object_set_new(o, "organization_id", ev->organization_id[0] != '\0'
						    ? json_string(ev->organization_id)
						    : json_null());
	json_object_set_new(o, "whatsapp_number_id", ev->whatsapp_number_id[0] != '\0'
						       ? json_string(ev->whatsapp_number_id)
						       : json_null());
	json_object_set_new(o, "field", ev->field[0] != '\0' ? json_string(ev->field)
							     : json_null());
	json_object_set_new(o, "processed_at", api_time_json(ev->processed_at));
	json_object_set_new(o, "attempts", json_integer(ev->attempts));
	json_object_set_new(o, "error", ev->error != NULL ? json_string(ev->error) : json_null());
	json_object_set_new(o, "payload", payload != NULL ? payload : json_null());
	return o;
}

/* Cursor: base64url of "<received_at>:<id>". */
static const char *cursor_make(struct arena *a, int64_t at, int64_t id)
{
	char raw[48];
	int n = snprintf(raw, sizeof raw, "%lld:%lld", (long long)at, (long long)id);
	char *out = arena_alloc(a, CURSOR_MAX);
	if (out == NULL || n < 0 || crypto_b64url_encode(raw, (size_t)n, out, CURSOR_MAX) < 0)
		return NULL;
	return out;
}

static bool parse_i64(const char *s, const char *end, int64_t *out)
{
	char *e = NULL;
	long long v;
	if (s == end)
		return false;
	v = strtoll(s, &e, 10);
	if (e != end || v <= 0)
		return false;
	*out = v;
	return true;
}

static bool cursor_parse(const char *s, int64_t *at, int64_t *id)
{
	uint8_t raw[64];
	long n = crypto_b64url_decode(s, strlen(s), raw, sizeof raw - 1);
	if (n <= 0)
		return false;
	raw[n] = '\0';
	char *colon = strchr((char *)raw, ':');
	return colon != NULL && parse_i64((char *)raw, colon, at) &&
	       parse_i64(colon + 1, (char *)raw + n, id);
}

static void answer_validation(struct http_response *res, const char *field, const char *msg)
{
	json_t *d = json_pack("[{s:s, s:s}]", "field", field, "message", msg);
	http_error(res, 422, "validation_error", "invalid query parameter", d);
}

/* Read the filter from the query; false after answering. */
static bool events_filter(struct http_request *req, struct http_response *res,
			  struct webhook_filter *f)
{
	const char *processed = http_query(req, "processed");
	const char *unrouted = http_query(req, "unrouted");

	*f = (struct webhook_filter){ .org_id = req->auth.org_id, .processed = -1,
				      .field = http_query(req, "field") };
	if (processed != NULL) {
		if (strcmp(processed, "true") != 0 && strcmp(processed, "false") != 0) {
			answer_validation(res, "processed", "must be true or false");
			return false;
		}
		f->processed = strcmp(processed, "true") == 0;
	}
	if (unrouted != NULL) {
		if (strcmp(unrouted, "true") != 0 && strcmp(unrouted, "false") != 0) {
			answer_validation(res, "unrouted", "must be true or false");
			return false;
		}
		f->unrouted = strcmp(unrouted, "true") == 0;
		if (f->unrouted && req->auth.role < ROLE_SUPER_ADMIN) {
			http_error(res, 403, "forbidden",
				   "unrouted events are visible to super_admin only", NULL);
			return false;
		}
	}
	if (f->field != NULL && (f->field[0] == '\0' || strlen(f->field) > WEBHOOK_FIELD_MAX)) {
		answer_validation(res, "field", "must be 1 to 64 characters");
		return false;
	}
	return true;
}

static json_t *events_page(struct http_request *req, struct webhook_event *evs, size_t n,
			   int limit)
{
	json_t *items = json_array();
	json_t *body = json_object();
	size_t keep = n > (size_t)limit ? (size_t)limit : n;
	const char *next = NULL;

	if (items == NULL || body == NULL)
		goto fail;
	for (size_t i = 0; i < keep; i++)
		if (json_array_append_new(items, api_webhook_event_json(&evs[i])) != 0)
			goto fail;
	if (n > keep && keep > 0)
		next = cursor_make(req->arena, evs[keep - 1].received_at, evs[keep - 1].id);
	json_object_set_new(body, "items", items);
	json_object_set_new(body, "next_cursor", next != NULL ? json_string(next) : json_null());
	return body;
fail:
	json_decref(items);
	json_decref(body);
	return NULL;
}

void api_webhooks_events(struct http_request *req, struct http_response *res)
{
	struct webhook_filter f;
	struct webhook_event *evs = NULL;
	size_t n = 0;
	int limit;
	int64_t before_at = 0, before_id = 0;
	const char *cursor = http_query(req, "cursor");
	struct db_conn *c = NULL;
	json_t *body;
	int rc;

	if (!http_query_limit(req, res, &limit) || !events_filter(req, res, &f))
		return;
	if (cursor != NULL && !cursor_parse(cursor, &before_at, &before_id)) {
		answer_validation(res, "cursor", "not a cursor from this list");
		return;
	}
	c = db_acquire(req->app->db);
	if (c == NULL) {
		api_answer_db_error(res, DB_ERR_UNAVAILABLE);
		return;
	}
	rc = webhook_store_list(c, &f, limit + 1, before_at, before_id, &evs, &n);
	db_release(req->app->db, c);
	if (rc != DB_OK) {
		api_answer_db_error(res, rc);
		return;
	}
	body = events_page(req, evs, n, limit);
	webhook_event_array_free(evs, n);
	if (body == NULL) {
		http_error(res, 500, "internal_error", "out of memory", NULL);
		return;
	}
	http_json(res, 200, body);
}
