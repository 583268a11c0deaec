/* api: the route table and the handlers, one file per resource. Handlers
 * are thin: parse the request, call the domain module, render the answer. */
#ifndef PYTAKE_API_H
#define PYTAKE_API_H
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

/* Every route the server knows, in one table (src/api/routes.c). */
extern const struct route api_routes[];
extern const size_t api_routes_count;

/* ops.c */
void api_health(struct http_request *req, struct http_response *res);
void api_ready(struct http_request *req, struct http_response *res);

/* metrics.c: GET /metrics (Prometheus text 0.0.4 of app->metrics; 404 when
 * app->metrics is NULL) and the HTTP/DB/rate-limit/process metrics. */
struct metrics;
struct api_metrics;
/* Register this layer's families and a scrape-time collector in m, reading
 * app (both must outlive the result). NULL on out of memory or when a name
 * is already registered. Free with api_metrics_free() after the server
 * stopped. */
struct api_metrics *api_metrics_new(struct metrics *m, struct app *app);
void api_metrics_free(struct api_metrics *am);
/* http_server_options.on_complete; ctx is the struct api_metrics. */
void api_metrics_on_complete(void *ctx, const char *route, const char *method, int status,
			     int64_t duration_us);
void api_metrics(struct http_request *req, struct http_response *res);

/* docs.c: GET /openapi.json (the embedded OpenAPI document), GET /docs (a
 * Swagger UI page) and GET /docs/assets/{name} (its CSS/JS, 404 for an
 * unknown name). Public; the bytes are static. */
void api_docs_openapi(struct http_request *req, struct http_response *res);
void api_docs_page(struct http_request *req, struct http_response *res);
void api_docs_asset(struct http_request *req, struct http_response *res);

/* Answer helpers shared by handlers (defined in answer.c; more in answer.h). */
struct json_check;
struct user;
/* 503 + Retry-After for DB_ERR_UNAVAILABLE / DB_ERR_RETRY, else 500. */
void api_answer_db_error(struct http_response *res, int rc);
/* 400 invalid_request when chk has type errors, else 422 validation_error
 * with the rule errors as details. Releases chk. */
void api_answer_check(struct http_response *res, struct json_check *chk);
/* 404 not_found with message what. */
void api_answer_not_found(struct http_response *res, const char *what);
/* RFC 3339 string of µs since the epoch; JSON null when us <= 0. New ref. */
json_t *api_time_json(int64_t us);
/* A user as the API shows it (never the password hash). New ref. */
json_t *api_user_json(const struct user *u);
/* argon2id hash of plain into out; -1 after answering 503 (no free
 * hashing slot) or 500. */
int api_hash_password(struct http_response *res, const char *plain, char *out,
		      size_t outsz);

/* orgs.c: organizations (API.md "Organizations and users"). */
void api_orgs_me_get(struct http_request *req, struct http_response *res);
void api_orgs_me_patch(struct http_request *req, struct http_response *res);
void api_orgs_list(struct http_request *req, struct http_response *res);
void api_orgs_create(struct http_request *req, struct http_response *res);
void api_orgs_get(struct http_request *req, struct http_response *res);

/* users.c: users of the caller's organization. */
void api_users_list(struct http_request *req, struct http_response *res);
void api_users_create(struct http_request *req, struct http_response *res);
void api_users_get(struct http_request *req, struct http_response *res);
void api_users_patch(struct http_request *req, struct http_response *res);
void api_users_delete(struct http_request *req, struct http_response *res);

/* numbers.c: WhatsApp numbers of the caller's organization (reads viewer+,
 * writes org_admin; credentials are write-only). */
void api_numbers_list(struct http_request *req, struct http_response *res);
void api_numbers_create(struct http_request *req, struct http_response *res);
void api_numbers_get(struct http_request *req, struct http_response *res);
void api_numbers_patch(struct http_request *req, struct http_response *res);
void api_numbers_delete(struct http_request *req, struct http_response *res);

/* templates.c: Meta message templates (API.md "Templates"). */
void api_templates_list(struct http_request *req, struct http_response *res);
void api_templates_create(struct http_request *req, struct http_response *res);
void api_templates_get(struct http_request *req, struct http_response *res);
void api_templates_patch(struct http_request *req, struct http_response *res);
void api_templates_delete(struct http_request *req, struct http_response *res);
void api_templates_submit(struct http_request *req, struct http_response *res);
void api_templates_preview(struct http_request *req, struct http_response *res);
void api_templates_sync(struct http_request *req, struct http_response *res);

/* webhooks.c: Meta webhooks (API.md "Webhooks from Meta"). */
struct webhook_event;
/* Start the group-commit writer over app->db and register the webhook
 * metrics in m (may be NULL). NULL on failure. Free with
 * api_webhooks_free() after the HTTP server stopped (it writes what is
 * still queued, then joins the writer). */
struct webhooks *api_webhooks_new(struct app *app, struct metrics *m);
void api_webhooks_free(struct webhooks *wh);
void api_webhooks_verify(struct http_request *req, struct http_response *res);
void api_webhooks_receive(struct http_request *req, struct http_response *res);
void api_webhooks_number_verify(struct http_request *req, struct http_response *res);
void api_webhooks_number_receive(struct http_request *req, struct http_response *res);
void api_webhooks_events(struct http_request *req, struct http_response *res);
/* An event as the API and `pytake webhooks tail` show it: {id (string),
 * received_at, source, organization_id, whatsapp_number_id, field,
 * processed_at, attempts, error, payload (parsed body, null when not
 * JSON)}. New reference; NULL on out of memory. */
json_t *api_webhook_event_json(const struct webhook_event *ev);

/* conversations.c: the inbox (reads viewer+, assign/close agent+). */
void api_conversations_list(struct http_request *req, struct http_response *res);
void api_conversations_get(struct http_request *req, struct http_response *res);
void api_conversations_messages(struct http_request *req, struct http_response *res);
void api_conversations_assign(struct http_request *req, struct http_response *res);
void api_conversations_close(struct http_request *req, struct http_response *res);

/* messages.c: POST /api/v1/messages (agent+), GET /api/v1/messages/{id}. */
void api_messages_send(struct http_request *req, struct http_response *res);
void api_messages_get(struct http_request *req, struct http_response *res);

/* contacts.c: contacts of the caller's organization (API.md "Contacts";
 * reads viewer+, writes agent+). */
struct contact;
/* A contact as the API shows it (also embedded by conversations). New ref. */
json_t *api_contact_json(const struct contact *c);
void api_contacts_list(struct http_request *req, struct http_response *res);
void api_contacts_create(struct http_request *req, struct http_response *res);
void api_contacts_get(struct http_request *req, struct http_response *res);
void api_contacts_patch(struct http_request *req, struct http_response *res);
void api_contacts_delete(struct http_request *req, struct http_response *res);
void api_contacts_opt_out(struct http_request *req, struct http_response *res);
void api_contacts_opt_in(struct http_request *req, struct http_response *res);
/* POST /api/v1/contacts/import (text/csv; route flag ROUTE_RAW_BODY). */
void api_contacts_import(struct http_request *req, struct http_response *res);

/* pricing.c: rate cards (API.md "Costs"): GET viewer+, PUT super_admin. */
void api_pricing_rates_get(struct http_request *req, struct http_response *res);
void api_pricing_rates_put(struct http_request *req, struct http_response *res);

/* costs.c: cost summaries, the monthly budget and its alerts (API.md
 * "Costs"): reads viewer+, PUT budget org_admin. */
void api_costs_summary(struct http_request *req, struct http_response *res);
void api_costs_budget_get(struct http_request *req, struct http_response *res);
void api_costs_budget_put(struct http_request *req, struct http_response *res);
void api_costs_alerts(struct http_request *req, struct http_response *res);

/* audit.c: GET /api/v1/audit-logs. */
void api_audit_list(struct http_request *req, struct http_response *res);

/* auth.c: POST /api/v1/auth/login, /refresh, /logout; GET /api/v1/auth/me. */
void api_auth_login(struct http_request *req, struct http_response *res);
void api_auth_refresh(struct http_request *req, struct http_response *res);
void api_auth_logout(struct http_request *req, struct http_response *res);
void api_auth_me(struct http_request *req, struct http_response *res);

/* campaigns.c: bulk template sends (API.md "Campaigns"; reads viewer+,
 * writes org_admin). */
void api_campaigns_list(struct http_request *req, struct http_response *res);
void api_campaigns_create(struct http_request *req, struct http_response *res);
void api_campaigns_get(struct http_request *req, struct http_response *res);
void api_campaigns_estimate(struct http_request *req, struct http_response *res);
void api_campaigns_start(struct http_request *req, struct http_response *res);
void api_campaigns_pause(struct http_request *req, struct http_response *res);
void api_campaigns_resume(struct http_request *req, struct http_response *res);
void api_campaigns_cancel(struct http_request *req, struct http_response *res);
void api_campaigns_recipients(struct http_request *req, struct http_response *res);

#endif
