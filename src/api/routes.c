/* The route table: every endpoint of API.md the server knows. The least
 * role a route needs is named here, in one place. */
#include "api/api.h"

const struct route api_routes[] = {
	{ "GET", "/health", api_health, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/ready", api_ready, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/metrics", api_metrics, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/openapi.json", api_docs_openapi, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/docs", api_docs_page, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/docs/assets/{name}", api_docs_asset, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	/* auth */
	{ "POST", "/api/v1/auth/login", api_auth_login, ROLE_NONE, 0 },
	{ "POST", "/api/v1/auth/refresh", api_auth_refresh, ROLE_NONE, 0 },
	{ "POST", "/api/v1/auth/logout", api_auth_logout, ROLE_VIEWER, 0 },
	{ "GET", "/api/v1/auth/me", api_auth_me, ROLE_VIEWER, 0 },
	/* organizations and users */
	{ "GET", "/api/v1/organizations/me", api_orgs_me_get, ROLE_VIEWER, 0 },
	{ "PATCH", "/api/v1/organizations/me", api_orgs_me_patch, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/organizations", api_orgs_list, ROLE_SUPER_ADMIN, 0 },
	{ "POST", "/api/v1/organizations", api_orgs_create, ROLE_SUPER_ADMIN, 0 },
	{ "GET", "/api/v1/organizations/{id}", api_orgs_get, ROLE_SUPER_ADMIN, 0 },
	{ "GET", "/api/v1/users", api_users_list, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/users", api_users_create, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/users/{id}", api_users_get, ROLE_ORG_ADMIN, 0 },
	{ "PATCH", "/api/v1/users/{id}", api_users_patch, ROLE_ORG_ADMIN, 0 },
	{ "DELETE", "/api/v1/users/{id}", api_users_delete, ROLE_ORG_ADMIN, 0 },
	/* WhatsApp numbers: reads for every role (senders for the inbox) */
	{ "GET", "/api/v1/whatsapp-numbers", api_numbers_list, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/whatsapp-numbers", api_numbers_create, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/whatsapp-numbers/{id}", api_numbers_get, ROLE_VIEWER, 0 },
	{ "PATCH", "/api/v1/whatsapp-numbers/{id}", api_numbers_patch, ROLE_ORG_ADMIN, 0 },
	{ "DELETE", "/api/v1/whatsapp-numbers/{id}", api_numbers_delete, ROLE_ORG_ADMIN, 0 },
	/* templates: reads for every role, writes org_admin */
	{ "GET", "/api/v1/templates", api_templates_list, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/templates", api_templates_create, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/templates/sync", api_templates_sync, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/templates/{id}", api_templates_get, ROLE_VIEWER, 0 },
	{ "PATCH", "/api/v1/templates/{id}", api_templates_patch, ROLE_ORG_ADMIN, 0 },
	{ "DELETE", "/api/v1/templates/{id}", api_templates_delete, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/templates/{id}/submit", api_templates_submit, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/templates/{id}/preview", api_templates_preview, ROLE_VIEWER, 0 },
	/* Meta webhooks: raw signed bodies, never rate limited per IP */
	{ "GET", "/webhooks/meta", api_webhooks_verify, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "POST", "/webhooks/meta", api_webhooks_receive, ROLE_NONE,
	  ROUTE_RAW_BODY | ROUTE_NO_RATE_LIMIT },
	{ "GET", "/webhooks/meta/{webhook_path}", api_webhooks_number_verify, ROLE_NONE,
	  ROUTE_NO_RATE_LIMIT },
	{ "POST", "/webhooks/meta/{webhook_path}", api_webhooks_number_receive, ROLE_NONE,
	  ROUTE_RAW_BODY | ROUTE_NO_RATE_LIMIT },
	{ "GET", "/api/v1/webhooks/events", api_webhooks_events, ROLE_ORG_ADMIN, 0 },
	/* contacts: reads for every role, writes agent+ */
	{ "GET", "/api/v1/contacts", api_contacts_list, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/contacts", api_contacts_create, ROLE_AGENT, 0 },
	{ "POST", "/api/v1/contacts/import", api_contacts_import, ROLE_AGENT, ROUTE_RAW_BODY },
	{ "GET", "/api/v1/contacts/{id}", api_contacts_get, ROLE_VIEWER, 0 },
	{ "PATCH", "/api/v1/contacts/{id}", api_contacts_patch, ROLE_AGENT, 0 },
	{ "DELETE", "/api/v1/contacts/{id}", api_contacts_delete, ROLE_AGENT, 0 },
	{ "POST", "/api/v1/contacts/{id}/opt-out", api_contacts_opt_out, ROLE_AGENT, 0 },
	{ "POST", "/api/v1/contacts/{id}/opt-in", api_contacts_opt_in, ROLE_AGENT, 0 },
	/* conversations and messages: reads for every role, writes agent+ */
	{ "GET", "/api/v1/conversations", api_conversations_list, ROLE_VIEWER, 0 },
	{ "GET", "/api/v1/conversations/{id}", api_conversations_get, ROLE_VIEWER, 0 },
	{ "GET", "/api/v1/conversations/{id}/messages", api_conversations_messages, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/conversations/{id}/assign", api_conversations_assign, ROLE_AGENT, 0 },
	{ "POST", "/api/v1/conversations/{id}/close", api_conversations_close, ROLE_AGENT, 0 },
	{ "POST", "/api/v1/messages", api_messages_send, ROLE_AGENT, 0 },
	{ "GET", "/api/v1/messages/{id}", api_messages_get, ROLE_VIEWER, 0 },
	/* rate cards: installation-wide, read by every role, loaded by super_admin */
	{ "GET", "/api/v1/pricing/rates", api_pricing_rates_get, ROLE_VIEWER, 0 },
	{ "PUT", "/api/v1/pricing/rates", api_pricing_rates_put, ROLE_SUPER_ADMIN, ROUTE_RAW_BODY },
	/* costs: reads for every role, the budget set by org_admin */
	{ "GET", "/api/v1/costs/summary", api_costs_summary, ROLE_VIEWER, 0 },
	{ "GET", "/api/v1/costs/budget", api_costs_budget_get, ROLE_VIEWER, 0 },
	{ "PUT", "/api/v1/costs/budget", api_costs_budget_put, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/costs/alerts", api_costs_alerts, ROLE_VIEWER, 0 },
	/* audit log */
	{ "GET", "/api/v1/audit-logs", api_audit_list, ROLE_ORG_ADMIN, 0 },
	/* campaigns: reads for every role, writes org_admin */
	{ "GET", "/api/v1/campaigns", api_campaigns_list, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/campaigns", api_campaigns_create, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/campaigns/{id}", api_campaigns_get, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/campaigns/{id}/estimate", api_campaigns_estimate, ROLE_VIEWER, 0 },
	{ "POST", "/api/v1/campaigns/{id}/start", api_campaigns_start, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/campaigns/{id}/pause", api_campaigns_pause, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/campaigns/{id}/resume", api_campaigns_resume, ROLE_ORG_ADMIN, 0 },
	{ "POST", "/api/v1/campaigns/{id}/cancel", api_campaigns_cancel, ROLE_ORG_ADMIN, 0 },
	{ "GET", "/api/v1/campaigns/{id}/recipients", api_campaigns_recipients, ROLE_VIEWER, 0 },
};
const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];
