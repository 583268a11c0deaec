/* template_rules: Meta's WhatsApp message-template rules, the {{variable}}
 * parser, the preview renderer and the send-time components builder.
 *
 * Pure module: jansson in, jansson out. No database, no HTTP, no logging,
 * no global mutable state (thread-safe).
 *
 * Design note.
 *  - Templates are Meta's own JSON ({name, language, category,
 *    parameter_format?, components: [{type: HEADER|BODY|FOOTER|BUTTONS,...}]}),
 *    stored and forwarded as-is; this module only reads them.
 *  - Variables are "{{1}}", "{{2}}"... (POSITIONAL, the default) or
 *    "{{first_name}}" (NAMED, ^[a-z][a-z0-9_]*$). Anything else that opens
 *    with "{{" is malformed: "{{ 1 }}", "{{1}", "{{}}", "{{x-y}}", "{{Name}}",
 *    "{{01}}", "{{0}}". A lone "{" or "}}" is plain text. URL buttons always
 *    use "{{1}}", whatever the template's parameter_format (as Meta does).
 *  - Problems are reported as "details": a JSON array of
 *    {"field": "components[1].text", "message": "..."}, one entry per broken
 *    rule, in the order the template is read. Field paths use the request's
 *    own indexes. Messages are ASCII (user text is never echoed, except the
 *    ASCII part of a malformed variable), so they are always valid JSON.
 *  - Text lengths count UTF-8 code points, as Meta does.
 *
 * Parameters (preview, messages, campaigns) come in two forms (API.md):
 *  short: an array, the BODY's variables in order (POSITIONAL), or an
 *         object {name: value} (NAMED);
 *  full:  {"header": [..] | {..} | media, "body": [..] | {..},
 *          "buttons": [{"index": 0, "text": ".."}]}.
 *  An object is the full form when it has a "header", "body" or "buttons"
 *  key whose value is not a string (a NAMED variable called "body" holds a
 *  string, so it stays unambiguous). Values are non-empty strings, without
 *  newline or tab and without more than 4 consecutive spaces (Meta refuses
 *  those); the BODY's at most TEMPLATE_PARAM_TEXT_MAX code points, the
 *  HEADER's TEXT_PARAM at most TEMPLATE_HEADER_TEXT_MAX, a COPY_CODE value
 *  at most TEMPLATE_COUPON_CODE_MAX. "buttons[].index" is the button's
 *  position in the BUTTONS component (0-based), as in Meta's send API; the
 *  URL buttons with a variable and the COPY_CODE buttons take one value.
 *  A media HEADER (IMAGE/VIDEO/DOCUMENT) takes {"link": "https://..."} or
 *  {"id": "<media id>"} (DOCUMENT also "filename"); LOCATION takes
 *  {"latitude": n, "longitude": n, "name"?, "address"?}. Media values are
 *  optional for preview and required when building send components. */
#ifndef PYTAKE_TEMPLATE_RULES_H
#define PYTAKE_TEMPLATE_RULES_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define TEMPLATE_NAME_MAX         512
#define TEMPLATE_HEADER_TEXT_MAX  60
#define TEMPLATE_BODY_TEXT_MAX    1024
#define TEMPLATE_FOOTER_TEXT_MAX  60
#define TEMPLATE_BUTTONS_MAX      10
#define TEMPLATE_URL_BUTTONS_MAX  2
#define TEMPLATE_BUTTON_TEXT_MAX  25
#define TEMPLATE_URL_MAX          2000
#define TEMPLATE_PHONE_MAX        20
#define TEMPLATE_COUPON_CODE_MAX  15
#define TEMPLATE_PARAM_TEXT_MAX   1024
#define TEMPLATE_VAR_NAME_MAX     64   /* our bound on a NAMED variable */
#define TEMPLATE_VAR_NUMBER_MAX   999  /* {{1000}} and above are malformed */
#define TEMPLATE_VARS_MAX         128  /* per text; more is an error */

enum template_result {
	TEMPLATE_OK = 0,
	TEMPLATE_INVALID = 1,  /* *details_out lists broken rules -> 422 */
	TEMPLATE_BAD_TYPE = 2, /* as INVALID, and at least one field has the
				  wrong JSON type -> 400 per API.md */
	TEMPLATE_ERROR = -1,   /* out of memory or NULL arguments; nothing set */
};

/* ---- the variable parser ---- */

enum template_var_kind {
	TEMPLATE_VAR_NUMBER, /* {{7}} */
	TEMPLATE_VAR_NAME,   /* {{first_name}} */
};

struct template_var {
	enum template_var_kind kind;
	unsigned number;                      /* NUMBER: 1..TEMPLATE_VAR_NUMBER_MAX */
	char name[TEMPLATE_VAR_NAME_MAX + 1]; /* NAME, or the number in decimal */
	size_t start, end;                    /* bytes: "{{" .. one past "}}" */
};

struct template_scan {
	struct template_var vars[TEMPLATE_VARS_MAX];
	size_t count;        /* variables found, at most TEMPLATE_VARS_MAX */
	bool too_many;       /* more than TEMPLATE_VARS_MAX were present */
	size_t malformed;    /* how many "{{" did not open a valid variable */
	size_t bad_start;    /* byte offset of the first malformed one */
	char bad_text[24];   /* its first bytes up to "}}", ASCII only */
};

/* Find every variable of text (NUL-terminated; NULL is ""), left to right,
 * into *out (fully overwritten). Never fails. */
void template_scan_text(const char *text, struct template_scan *out);

/* ---- validation ---- */

/* Check a template (the POST /templates body: {name, language, category,
 * parameter_format?, components}; other keys are ignored) against Meta's
 * rules. Returns TEMPLATE_OK with *details_out = NULL when it is valid;
 * TEMPLATE_INVALID / TEMPLATE_BAD_TYPE with *details_out a new array (caller
 * json_decref()s it) with one entry per broken rule; TEMPLATE_ERROR on
 * allocation failure or NULL arguments (*details_out = NULL). A tmpl that is
 * not an object is TEMPLATE_BAD_TYPE with field "". */
int template_validate(const json_t *tmpl, json_t **details_out)
	__attribute__((warn_unused_result));

/* True when code is one of the language codes Meta accepts for templates
 * ("en", "en_US", "pt_BR", "fil", ...; case-sensitive). */
bool template_language_supported(const char *code);

/* ---- variables, preview, send ---- */

/* List the variables a template's components take, per component:
 *   {"header": ["1"] | ["name"] | [],  "header_format": "TEXT"|"IMAGE"|...|null,
 *    "body": ["1", "2"] | ["first_name", ...],
 *    "buttons": [{"index": 2, "type": "URL", "variables": ["1"]},
 *                {"index": 3, "type": "COPY_CODE", "variables": ["coupon_code"]}]}
 * POSITIONAL names are the distinct numbers ascending ("1", "2"), NAMED the
 * distinct names in order of first use. parameter_format NULL means
 * POSITIONAL. Returns TEMPLATE_OK with *vars_out (caller decrefs), or
 * TEMPLATE_INVALID with *details_out when the components cannot be read
 * (no BODY, malformed variable, variable of the other format, ...),
 * or TEMPLATE_ERROR. Unused out pointers are set to NULL. */
int template_variables(const json_t *components, const char *parameter_format,
	json_t **vars_out, json_t **details_out) __attribute__((warn_unused_result));

/* Preview: substitute parameters (either form above) into the components.
 * *rendered_out = {"header": string|null, "header_format": ...|null,
 *   "body": string, "footer": string|null,
 *   "buttons": [{"type": "QUICK_REPLY"|"URL"|"PHONE_NUMBER"|"COPY_CODE",
 *                "text": label, "url"?: rendered, "phone_number"?, "code"?}]}
 * (a COPY_CODE button without a label gets WhatsApp's "Copy offer code").
 * Missing, extra or unusable values -> TEMPLATE_INVALID (or BAD_TYPE) with
 * *details_out (fields "parameters[1]", "parameters.body.first_name",
 * "parameters.buttons[0].text", ...). Ownership and codes as above. */
int template_render(const json_t *components, const char *parameter_format,
	const json_t *parameters, json_t **rendered_out, json_t **details_out)
	__attribute__((warn_unused_result));

/* Build Meta's send-time "components" array for a template message:
 *   [{"type": "header", "parameters": [{"type": "text", "text": v}]},
 *    {"type": "body", "parameters": [{"type": "text", "text": v}, ...]},
 *    {"type": "button", "sub_type": "url", "index": "0",
 *     "parameters": [{"type": "text", "text": v}]},
 *    {"type": "button", "sub_type": "copy_code", "index": "1",
 *     "parameters": [{"type": "coupon_code", "coupon_code": v}]}]
 * NAMED templates add "parameter_name" to each header/body parameter; a
 * media header becomes {"type": "image", "image": {"link"|"id": ..}} (and
 * video, document, location alike). Components without parameters are left
 * out, so a template without variables gives []. Same checks, ownership and
 * codes as template_render, plus a media header value is required. */
int template_send_components(const json_t *components, const char *parameter_format,
	const json_t *parameters, json_t **send_out, json_t **details_out)
	__attribute__((warn_unused_result));

#endif
