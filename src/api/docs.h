/* docs: files compiled into the binary for GET /openapi.json and the /docs
 * page. Generated at build time (src/api/meson.build):
 *   docs/openapi.json                        -> docs_openapi_json (minified,
 *                                               checked by scripts/embed_openapi.py)
 *   docs/vendor/swagger-ui/swagger-ui.css     -> docs_swagger_ui_css
 *   docs/vendor/swagger-ui/swagger-ui-bundle.js -> docs_swagger_ui_bundle_js
 *   docs/vendor/swagger-ui/LICENSE            -> docs_swagger_ui_license
 * Each is NUL-terminated; _len excludes the NUL. Static storage: never freed. */
#ifndef PYTAKE_API_DOCS_H
#define PYTAKE_API_DOCS_H
#include <stddef.h>

extern const char docs_openapi_json[];
extern const size_t docs_openapi_json_len;
extern const char docs_swagger_ui_css[];
extern const size_t docs_swagger_ui_css_len;
extern const char docs_swagger_ui_bundle_js[];
extern const size_t docs_swagger_ui_bundle_js_len;
extern const char docs_swagger_ui_license[];
extern const size_t docs_swagger_ui_license_len;

#endif
