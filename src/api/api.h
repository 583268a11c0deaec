/* api: the route table and the handlers, one file per resource. Handlers
 * are thin: parse the request, call the domain module, render the answer. */
#ifndef PYTAKE_API_H
#define PYTAKE_API_H
#include <stddef.h>

#include "http/http.h"

/* Every route the server knows, in one table (src/api/routes.c). */
extern const struct route api_routes[];
extern const size_t api_routes_count;

/* ops.c */
void api_health(struct http_request *req, struct http_response *res);
void api_ready(struct http_request *req, struct http_response *res);

#endif
