/* API documentation served by the binary (issue 9):
 *   GET /openapi.json        the OpenAPI 3.1 document (docs/openapi.json,
 *                            compiled in; see docs.h)
 *   GET /docs                a Swagger UI page rendering /openapi.json
 *   GET /docs/assets/{name}  the page's CSS/JS, compiled in (no CDN)
 *
 * Choices: the page's own start-up script is an asset too (docs.js), so the
 * page can carry a Content-Security-Policy without 'unsafe-inline' scripts;
 * the policy allows only this origin ('self'), which also keeps "try it
 * out" on this server. Assets are cacheable for an hour; the document and
 * the page are not cached (they change with the binary). */
#include <string.h>

#include "api/api.h"
#include "api/docs.h"

static const char JSON_TYPE[] = "application/json; charset=utf-8";
static const char HTML_TYPE[] = "text/html; charset=utf-8";
static const char CSP[] = "default-src 'self'; script-src 'self'; "
			  "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
			  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

static const char DOCS_HTML[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>PyTake API</title>\n"
	"<link rel=\"stylesheet\" href=\"/docs/assets/swagger-ui.css\">\n"
	"</head>\n"
	"<body>\n"
	"<div id=\"swagger-ui\"></div>\n"
	"<noscript>This page needs JavaScript. The document itself is at "
	"<a href=\"/openapi.json\">/openapi.json</a>.</noscript>\n"
	"<script src=\"/docs/assets/swagger-ui-bundle.js\"></script>\n"
	"<script src=\"/docs/assets/docs.js\"></script>\n"
	"</body>\n"
	"</html>\n";

static const char DOCS_JS[] =
	"window.addEventListener('load', function () {\n"
	"  window.ui = SwaggerUIBundle({\n"
	"    url: '/openapi.json',\n"
	"    dom_id: '#swagger-ui',\n"
	"    deepLinking: true,\n"
	"    displayOperationId: true,\n"
	"    displayRequestDuration: true,\n"
	"    persistAuthorization: false,\n"
	"    validatorUrl: null\n"
	"  });\n"
	"});\n";

struct docs_asset {
	const char *name;
	const char *content_type;
	const char *data;
	const size_t *len;  /* generated lengths are not constant expressions */
	size_t static_len;  /* used when len is NULL */
};

static const struct docs_asset ASSETS[] = {
	{ "swagger-ui.css", "text/css; charset=utf-8", docs_swagger_ui_css,
	  &docs_swagger_ui_css_len, 0 },
	{ "swagger-ui-bundle.js", "text/javascript; charset=utf-8", docs_swagger_ui_bundle_js,
	  &docs_swagger_ui_bundle_js_len, 0 },
	{ "docs.js", "text/javascript; charset=utf-8", DOCS_JS, NULL, sizeof DOCS_JS - 1 },
	{ "LICENSE", "text/plain; charset=utf-8", docs_swagger_ui_license,
	  &docs_swagger_ui_license_len, 0 },
};

static const struct docs_asset *find_asset(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof ASSETS / sizeof ASSETS[0]; i++)
		if (strcmp(ASSETS[i].name, name) == 0)
			return &ASSETS[i];
	return NULL;
}

void api_docs_openapi(struct http_request *req, struct http_response *res)
{
	(void)req;
	http_add_header(res, "Cache-Control", "no-cache");
	http_body(res, 200, JSON_TYPE, docs_openapi_json, docs_openapi_json_len);
}

void api_docs_page(struct http_request *req, struct http_response *res)
{
	(void)req;
	http_add_header(res, "Content-Security-Policy", CSP);
	http_add_header(res, "X-Content-Type-Options", "nosniff");
	http_add_header(res, "Cache-Control", "no-cache");
	http_body(res, 200, HTML_TYPE, DOCS_HTML, sizeof DOCS_HTML - 1);
}

void api_docs_asset(struct http_request *req, struct http_response *res)
{
	const struct docs_asset *a = find_asset(http_param(req, "name"));
	if (a == NULL) {
		api_answer_not_found(res, "no such documentation asset");
		return;
	}
	http_add_header(res, "X-Content-Type-Options", "nosniff");
	http_add_header(res, "Cache-Control", "public, max-age=3600");
	http_body(res, 200, a->content_type, a->data, a->len ? *a->len : a->static_len);
}
