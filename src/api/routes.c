/* The route table: every endpoint of API.md the server knows. The least
 * role a route needs is named here, in one place. */
#include "api/api.h"

const struct route api_routes[] = {
	{ "GET", "/health", api_health, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "GET", "/ready", api_ready, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
};
const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];
