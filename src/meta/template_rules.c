/* template_rules: Meta's template validation rules (see template_rules.h).
 *
 * template_validate reads the template top-down and adds one details entry
 * per broken rule. A component that is broken in a way that would make the
 * later rules meaningless (a variable of the other parameter_format, a
 * malformed variable) skips those later rules, so one mistake gives one
 * entry, not a cascade. */
#include <stdio.h>
#include <string.h>

#include "meta/template_internal.h"
#include "meta/template_rules.h"

/* ---- languages ---- */

/* Meta's template languages (developers.facebook.com, "Supported
 * languages"), plus the newer regional variants. Sorted. */
static const char *const meta_languages[] = {
	"af", "ar", "ar_AE", "ar_EG", "ar_LB", "ar_MA", "ar_QA", "az", "be_BY",
	"bg", "bn", "bn_IN", "ca", "cs", "da", "de", "el", "en", "en_AE", "en_AU",
	"en_CA", "en_GB", "en_GH", "en_IE", "en_IN", "en_JM", "en_MY", "en_NZ",
	"en_QA", "en_SG", "en_UG", "en_US", "en_ZA", "es", "es_AR", "es_CL",
	"es_CO", "es_CR", "es_DO", "es_EC", "es_ES", "es_HN", "es_MX", "es_PA",
	"es_PE", "es_UY", "et", "fa", "fi", "fil", "fr", "fr_BE", "fr_CA",
	"fr_CH", "fr_CI", "fr_MA", "ga", "gu", "ha", "he", "hi", "hr", "hu", "id",
	"it", "ja", "ka", "kk", "kn", "ko", "ky_KG", "lo", "lt", "lv", "mk", "ml",
	"mr", "ms", "nb", "nl", "nl_BE", "pa", "pl", "prs_AF", "ps_AF", "pt_BR",
	"pt_PT", "ro", "ru", "rw_RW", "sk", "sl", "sq", "sr", "sv", "sw", "ta",
	"te", "th", "tr", "uk", "ur", "uz", "vi", "zh_CN", "zh_HK", "zh_TW", "zu",
};

static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* ^[a-z]{2,3}(_[A-Z]{2})?$ */
static bool language_shape_ok(const char *s)
{
	size_t n = 0;

	while (is_lower(s[n]))
		n++;
	if (n < 2 || n > 3)
		return false;
	if (s[n] == '\0')
		return true;
	return s[n] == '_' && is_upper(s[n + 1]) && is_upper(s[n + 2]) &&
	       s[n + 3] == '\0';
}

bool template_language_supported(const char *code)
{
	if (code == NULL || !language_shape_ok(code))
		return false;
	for (size_t i = 0; i < sizeof meta_languages / sizeof meta_languages[0]; i++)
		if (strcmp(code, meta_languages[i]) == 0)
			return true;
	return false;
}

/* ---- validation context ---- */

enum tfmt { FMT_POSITIONAL, FMT_NAMED, FMT_UNKNOWN };

struct vctx {
	struct tdetails *d;
	enum tfmt fmt;
};

#define RULE(c, field, ...) tdetails_add((c)->d, false, (field), __VA_ARGS__)
#define TYPE(c, field, ...) tdetails_add((c)->d, true, (field), __VA_ARGS__)

/* Read obj[key] as a string: true with *out when it is one. Wrong type is a
 * type error; absent or null is "is required" when required. */
static bool get_str(struct vctx *c, const json_t *obj, const char *key,
	const char *field, bool required, const char **out)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v)) {
		if (required)
			RULE(c, field, "is required");
		return false;
	}
	if (!json_is_string(v)) {
		TYPE(c, field, "must be a string");
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* obj[key] as an array or object (want_array): NULL when absent (reported
 * when required) or of the wrong type (reported). */
static const json_t *get_container(struct vctx *c, const json_t *obj,
	const char *key, const char *field, bool required, bool want_array)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v)) {
		if (required)
			RULE(c, field, "is required");
		return NULL;
	}
	if (want_array ? !json_is_array(v) : !json_is_object(v)) {
		TYPE(c, field, "must be %s", want_array ? "an array" : "an object");
		return NULL;
	}
	return v;
}

/* ---- top-level fields ---- */

static void check_name(struct vctx *c, const json_t *t)
{
	const char *s = NULL;
	size_t n = 0;

	if (!get_str(c, t, "name", "name", true, &s))
		return;
	while (is_lower(s[n]) || is_digit(s[n]) || s[n] == '_')
		n++;
	if (n == 0 || s[n] != '\0' || n > TEMPLATE_NAME_MAX)
		RULE(c, "name", "must be 1 to %d characters of a-z, 0-9 and _",
		     TEMPLATE_NAME_MAX);
}

static void check_category(struct vctx *c, const json_t *t)
{
	const char *s = NULL;

	if (!get_str(c, t, "category", "category", true, &s))
		return;
	if (strcmp(s, "MARKETING") != 0 && strcmp(s, "UTILITY") != 0 &&
	    strcmp(s, "AUTHENTICATION") != 0)
		RULE(c, "category", "must be MARKETING, UTILITY or AUTHENTICATION");
}

static void check_language(struct vctx *c, const json_t *t)
{
	const char *s = NULL;

	if (!get_str(c, t, "language", "language", true, &s))
		return;
	if (!language_shape_ok(s))
		RULE(c, "language", "must be a language code like en, en_US or pt_BR");
	else if (!template_language_supported(s))
		RULE(c, "language", "%s is not a language Meta supports for templates", s);
}

static void check_parameter_format(struct vctx *c, const json_t *t)
{
	const char *s = NULL;

	c->fmt = FMT_POSITIONAL;
	if (!get_str(c, t, "parameter_format", "parameter_format", false, &s)) {
		if (json_object_get(t, "parameter_format") != NULL &&
		    !json_is_null(json_object_get(t, "parameter_format")))
			c->fmt = FMT_UNKNOWN;
		return;
	}
	if (strcmp(s, "POSITIONAL") == 0)
		return;
	if (strcmp(s, "NAMED") == 0) {
		c->fmt = FMT_NAMED;
		return;
	}
	c->fmt = FMT_UNKNOWN;
	RULE(c, "parameter_format", "must be POSITIONAL or NAMED");
}

/* ---- variables in a text ---- */

/* Report a malformed or too-many scan; true when the text is usable. */
static bool scan_usable(struct vctx *c, const char *field, const char *label,
	const struct template_scan *sc)
{
	if (sc->malformed > 0) {
		RULE(c, field, "%s has a malformed variable \"%s\": write {{1}} or "
		     "{{lower_snake_name}}", label, sc->bad_text);
		return false;
	}
	if (sc->too_many) {
		RULE(c, field, "%s has more than %d variables", label, TEMPLATE_VARS_MAX);
		return false;
	}
	return true;
}

/* Every variable matches the template's parameter_format. */
static bool kinds_match(struct vctx *c, const char *field, const char *label,
	const struct template_scan *sc)
{
	enum template_var_kind want =
		c->fmt == FMT_NAMED ? TEMPLATE_VAR_NAME : TEMPLATE_VAR_NUMBER;

	if (c->fmt == FMT_UNKNOWN)
		return false;
	for (size_t i = 0; i < sc->count; i++) {
		if (sc->vars[i].kind == want)
			continue;
		RULE(c, field, "%s uses {{%s}} but parameter_format is %s: "
		     "variables must all be %s", label, sc->vars[i].name,
		     c->fmt == FMT_NAMED ? "NAMED" : "POSITIONAL",
		     c->fmt == FMT_NAMED ? "{{lower_snake_name}}" : "{{1}}, {{2}}, ...");
		return false;
	}
	return true;
}

static bool number_used(const struct template_scan *sc, unsigned n)
{
	for (size_t i = 0; i < sc->count; i++)
		if (sc->vars[i].number == n)
			return true;
	return false;
}

/* POSITIONAL: the numbers used are exactly 1..max. Returns max (the number
 * of values needed), or 0 after reporting a gap. */
static unsigned check_sequence(struct vctx *c, const char *field,
	const char *label, const struct template_scan *sc)
{
	unsigned max = 0;

	for (size_t i = 0; i < sc->count; i++)
		if (sc->vars[i].number > max)
			max = sc->vars[i].number;
	for (unsigned n = 1; n < max; n++) {
		if (!number_used(sc, n)) {
			RULE(c, field, "%s has variable {{%u}} but no {{%u}}: number "
			     "variables from {{1}} without gaps", label, max, n);
			return 0;
		}
	}
	return max;
}

static bool only_space(const char *s, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

static void check_adjacent(struct vctx *c, const char *field, const char *label,
	const char *text, const struct template_scan *sc)
{
	for (size_t i = 1; i < sc->count; i++) {
		if (!only_space(text, sc->vars[i - 1].end, sc->vars[i].start))
			continue;
		RULE(c, field, "%s has adjacent variables {{%s}} and {{%s}}: put "
		     "text between them", label, sc->vars[i - 1].name, sc->vars[i].name);
		return;
	}
}

/* The body may not start or end with a variable (whitespace ignored). */
static void check_edges(struct vctx *c, const char *field, const char *label,
	const char *text, const struct template_scan *sc)
{
	size_t len = strlen(text);

	if (sc->count == 0)
		return;
	if (only_space(text, 0, sc->vars[0].start))
		RULE(c, field, "%s must not start with a variable ({{%s}})", label,
		     sc->vars[0].name);
	if (only_space(text, sc->vars[sc->count - 1].end, len))
		RULE(c, field, "%s must not end with a variable ({{%s}})", label,
		     sc->vars[sc->count - 1].name);
}

/* ---- examples ---- */

/* arr must be an array of exactly want non-empty strings. */
static void check_example_values(struct vctx *c, const char *field,
	const char *label, const json_t *arr, size_t want)
{
	size_t n = json_array_size(arr);

	if (n != want) {
		RULE(c, field, "%s has %zu variable%s but the example has %zu value%s",
		     label, want, want == 1 ? "" : "s", n, n == 1 ? "" : "s");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(arr, i);

		if (!json_is_string(v)) {
			TYPE(c, field, "example values must be strings");
			return;
		}
		if (json_string_length(v) == 0) {
			RULE(c, field, "example values must not be empty");
			return;
		}
	}
}

/* POSITIONAL example: BODY example.body_text = [[v1..vn]],
 * HEADER example.header_text = [v1]. */
static void check_positional_example(struct vctx *c, const json_t *comp,
	size_t ci, const char *label, bool is_body, size_t want)
{
	const char *key = is_body ? "body_text" : "header_text";
	char field[TEMPLATE_FIELD_MAX];
	const json_t *ex, *arr;

	tfield(field, "components[%zu].example.%s", ci, key);
	ex = json_object_get(comp, "example");
	if (ex != NULL && !json_is_null(ex) && !json_is_object(ex)) {
		tfield(field, "components[%zu].example", ci);
		TYPE(c, field, "must be an object");
		return;
	}
	arr = json_object_get(ex, key);
	if (arr == NULL || json_is_null(arr)) {
		RULE(c, field, "%s has %zu variable%s: give an example value for "
		     "each in example.%s", label, want, want == 1 ? "" : "s", key);
		return;
	}
	if (!json_is_array(arr)) {
		TYPE(c, field, "must be an array");
		return;
	}
	if (is_body) {
		arr = json_array_get(arr, 0);
		if (!json_is_array(arr)) {
			TYPE(c, field, "must be an array holding one array of values");
			return;
		}
	}
	check_example_values(c, field, label, arr, want);
}

static bool scan_has_name(const struct template_scan *sc, const char *name)
{
	for (size_t i = 0; i < sc->count; i++)
		if (strcmp(sc->vars[i].name, name) == 0)
			return true;
	return false;
}

/* Whether vars[i]'s name already appeared before it. */
static bool scan_has_name_before(const struct template_scan *sc, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (strcmp(sc->vars[k].name, sc->vars[i].name) == 0)
			return true;
	return false;
}

/* The example entry {param_name, example} for name, or NULL. */
static const json_t *named_example(const json_t *arr, const char *name)
{
	size_t i;
	const json_t *e;

	json_array_foreach(arr, i, e) {
		const json_t *pn = json_object_get(e, "param_name");

		if (json_is_string(pn) && strcmp(json_string_value(pn), name) == 0)
			return e;
	}
	return NULL;
}

/* Each entry well-formed and naming a variable of the text. */
static void check_named_entries(struct vctx *c, const char *field,
	const char *label, const json_t *arr, const struct template_scan *sc)
{
	size_t i;
	const json_t *e;

	json_array_foreach(arr, i, e) {
		const json_t *pn = json_object_get(e, "param_name");
		const json_t *ex = json_object_get(e, "example");
		char f[TEMPLATE_FIELD_MAX];

		tfield(f, "%s[%zu]", field, i);
		if (!json_is_object(e) || !json_is_string(pn) || !json_is_string(ex)) {
			TYPE(c, f, "must be {\"param_name\": string, \"example\": string}");
			continue;
		}
		if (json_string_length(ex) == 0)
			RULE(c, f, "example must not be empty");
		if (!scan_has_name(sc, json_string_value(pn)))
			RULE(c, f, "%s has no variable named by this param_name", label);
	}
}

/* NAMED example: example.{body,header}_text_named_params =
 * [{param_name, example}], one per distinct variable name. */
static void check_named_example(struct vctx *c, const json_t *comp, size_t ci,
	const char *label, bool is_body, const struct template_scan *sc)
{
	const char *key = is_body ? "body_text_named_params" : "header_text_named_params";
	char field[TEMPLATE_FIELD_MAX];
	const json_t *ex, *arr;

	tfield(field, "components[%zu].example.%s", ci, key);
	ex = json_object_get(comp, "example");
	if (ex != NULL && !json_is_null(ex) && !json_is_object(ex)) {
		tfield(field, "components[%zu].example", ci);
		TYPE(c, field, "must be an object");
		return;
	}
	arr = json_object_get(ex, key);
	if (arr != NULL && !json_is_null(arr) && !json_is_array(arr)) {
		TYPE(c, field, "must be an array");
		return;
	}
	for (size_t i = 0; i < sc->count; i++) {
		if (scan_has_name_before(sc, i))
			continue;
		if (named_example(arr, sc->vars[i].name) == NULL)
			RULE(c, field, "%s has variable {{%s}} but no example for it",
			     label, sc->vars[i].name);
	}
	check_named_entries(c, field, label, arr, sc);
}

/* Examples for the variables of a HEADER or BODY text whose variables are
 * well-formed and of the template's format. */
static void check_examples(struct vctx *c, const json_t *comp, size_t ci,
	const char *label, bool is_body, const char *field,
	const struct template_scan *sc)
{
	unsigned n;

	if (sc->count == 0)
		return;
	if (c->fmt == FMT_NAMED) {
		check_named_example(c, comp, ci, label, is_body, sc);
		return;
	}
	n = check_sequence(c, field, label, sc);
	if (n > 0)
		check_positional_example(c, comp, ci, label, is_body, n);
}

/* Text of a component: required, non-empty, at most max code points.
 * Returns it, or NULL when missing or empty (reported). */
static const char *component_text(struct vctx *c, const json_t *comp,
	const char *field, const char *label, size_t max)
{
	const char *text = NULL;
	size_t n;

	if (!get_str(c, comp, "text", field, true, &text))
		return NULL;
	n = tutf8_len(text);
	if (n == 0) {
		RULE(c, field, "%s text must not be empty", label);
		return NULL;
	}
	if (n > max)
		RULE(c, field, "%s text is %zu characters; at most %zu allowed", label,
		     n, max);
	return text;
}

/* ---- components ---- */

static void check_body(struct vctx *c, const json_t *comp, size_t ci)
{
	char field[TEMPLATE_FIELD_MAX];
	struct template_scan sc;
	const char *text;

	tfield(field, "components[%zu].text", ci);
	text = component_text(c, comp, field, "BODY", TEMPLATE_BODY_TEXT_MAX);
	if (text == NULL)
		return;
	template_scan_text(text, &sc);
	if (!scan_usable(c, field, "BODY", &sc))
		return;
	check_adjacent(c, field, "BODY", text, &sc);
	check_edges(c, field, "BODY", text, &sc);
	if (kinds_match(c, field, "BODY", &sc))
		check_examples(c, comp, ci, "BODY", true, field, &sc);
}

static void check_text_header(struct vctx *c, const json_t *comp, size_t ci)
{
	char field[TEMPLATE_FIELD_MAX];
	struct template_scan sc;
	const char *text;

	tfield(field, "components[%zu].text", ci);
	text = component_text(c, comp, field, "HEADER", TEMPLATE_HEADER_TEXT_MAX);
	if (text == NULL)
		return;
	template_scan_text(text, &sc);
	if (!scan_usable(c, field, "HEADER", &sc))
		return;
	if (sc.count > 1) {
		RULE(c, field, "HEADER may have at most 1 variable, found %zu", sc.count);
		return;
	}
	if (kinds_match(c, field, "HEADER", &sc))
		check_examples(c, comp, ci, "HEADER", false, field, &sc);
}

/* IMAGE / VIDEO / DOCUMENT need example.header_handle: [handle, ...]. */
static void check_media_header(struct vctx *c, const json_t *comp, size_t ci,
	const char *format)
{
	char field[TEMPLATE_FIELD_MAX];
	const json_t *ex = json_object_get(comp, "example");
	const json_t *h = json_object_get(ex, "header_handle");

	tfield(field, "components[%zu].example.header_handle", ci);
	if (h == NULL || json_is_null(h)) {
		RULE(c, field, "a %s HEADER needs an example media handle in "
		     "example.header_handle", format);
		return;
	}
	if (!json_is_array(h) || !json_is_string(json_array_get(h, 0))) {
		TYPE(c, field, "must be an array of media handle strings");
		return;
	}
	if (json_string_length(json_array_get(h, 0)) == 0)
		RULE(c, field, "must not be empty");
}

static void check_header(struct vctx *c, const json_t *comp, size_t ci)
{
	char field[TEMPLATE_FIELD_MAX];
	const char *format = NULL;

	tfield(field, "components[%zu].format", ci);
	if (!get_str(c, comp, "format", field, true, &format))
		return;
	if (strcmp(format, "TEXT") == 0)
		check_text_header(c, comp, ci);
	else if (strcmp(format, "IMAGE") == 0 || strcmp(format, "VIDEO") == 0 ||
		 strcmp(format, "DOCUMENT") == 0)
		check_media_header(c, comp, ci, format);
	else if (strcmp(format, "LOCATION") != 0)
		RULE(c, field, "must be TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION");
}

static void check_footer(struct vctx *c, const json_t *comp, size_t ci)
{
	char field[TEMPLATE_FIELD_MAX];
	struct template_scan sc;
	const char *text;

	tfield(field, "components[%zu].text", ci);
	text = component_text(c, comp, field, "FOOTER", TEMPLATE_FOOTER_TEXT_MAX);
	if (text == NULL)
		return;
	template_scan_text(text, &sc);
	if (sc.count > 0 || sc.malformed > 0)
		RULE(c, field, "FOOTER must not contain variables");
}

/* ---- buttons ---- */

struct button_counts {
	size_t url, phone, copy_code;
};

static bool has_http_scheme(const char *url)
{
	return strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0;
}

/* url: http(s), at most one variable, {{1}}, at the very end; with a
 * variable, example: ["https://full.example/url"]. */
static void check_url_button(struct vctx *c, const json_t *b, const char *bpath)
{
	char field[TEMPLATE_FIELD_MAX], exfield[TEMPLATE_FIELD_MAX];
	struct template_scan sc;
	const char *url = NULL;
	const json_t *ex;

	tfield(field, "%s.url", bpath);
	if (!get_str(c, b, "url", field, true, &url))
		return;
	if (!has_http_scheme(url) || tutf8_len(url) > TEMPLATE_URL_MAX) {
		RULE(c, field, "URL button url must start with https:// or http:// "
		     "and be at most %d characters", TEMPLATE_URL_MAX);
		return;
	}
	template_scan_text(url, &sc);
	if (!scan_usable(c, field, "URL button url", &sc))
		return;
	if (sc.count == 0)
		return;
	if (sc.count > 1) {
		RULE(c, field, "URL button url may have at most 1 variable, found %zu",
		     sc.count);
		return;
	}
	if (sc.vars[0].kind != TEMPLATE_VAR_NUMBER || sc.vars[0].number != 1) {
		RULE(c, field, "URL button url variable must be {{1}}, not {{%s}}",
		     sc.vars[0].name);
		return;
	}
	if (sc.vars[0].end != strlen(url)) {
		RULE(c, field, "URL button url may have its variable {{1}} only at the end");
		return;
	}
	tfield(exfield, "%s.example", bpath);
	ex = json_object_get(b, "example");
	if (ex == NULL || json_is_null(ex))
		RULE(c, exfield, "URL button with {{1}} needs an example full URL");
	else if (!json_is_array(ex))
		TYPE(c, exfield, "must be an array holding one example URL");
	else
		check_example_values(c, exfield, "URL button url", ex, 1);
}

/* ^\+?[0-9]{5,20}$ */
static void check_phone_button(struct vctx *c, const json_t *b, const char *bpath)
{
	char field[TEMPLATE_FIELD_MAX];
	const char *p = NULL;
	size_t n = 0;

	tfield(field, "%s.phone_number", bpath);
	if (!get_str(c, b, "phone_number", field, true, &p))
		return;
	if (*p == '+')
		p++;
	while (is_digit(p[n]))
		n++;
	if (p[n] != '\0' || n < 5 || n > TEMPLATE_PHONE_MAX)
		RULE(c, field, "must be a phone number: optional + and 5 to %d digits",
		     TEMPLATE_PHONE_MAX);
}

static void check_copy_code_button(struct vctx *c, const json_t *b, const char *bpath)
{
	char field[TEMPLATE_FIELD_MAX];
	const char *ex = NULL;
	size_t n;

	tfield(field, "%s.example", bpath);
	if (!get_str(c, b, "example", field, true, &ex))
		return;
	n = tutf8_len(ex);
	if (n == 0 || n > TEMPLATE_COUPON_CODE_MAX)
		RULE(c, field, "COPY_CODE example code must be 1 to %d characters",
		     TEMPLATE_COUPON_CODE_MAX);
}

/* Label: 1..25 characters, no variables; optional on COPY_CODE (Meta sets
 * that one itself). */
static void check_button_label(struct vctx *c, const json_t *b, const char *bpath,
	bool required)
{
	char field[TEMPLATE_FIELD_MAX];
	const char *text = NULL;
	size_t n;

	tfield(field, "%s.text", bpath);
	if (!get_str(c, b, "text", field, required, &text))
		return;
	n = tutf8_len(text);
	if (n == 0 || n > TEMPLATE_BUTTON_TEXT_MAX)
		RULE(c, field, "button label must be 1 to %d characters, is %zu",
		     TEMPLATE_BUTTON_TEXT_MAX, n);
	else if (strstr(text, "{{") != NULL)
		RULE(c, field, "button label must not contain variables");
}

static void check_button(struct vctx *c, const json_t *b, size_t ci, size_t bi,
	struct button_counts *counts)
{
	char bpath[TEMPLATE_FIELD_MAX], field[TEMPLATE_FIELD_MAX];
	const char *type = NULL;

	tfield(bpath, "components[%zu].buttons[%zu]", ci, bi);
	if (!json_is_object(b)) {
		TYPE(c, bpath, "must be an object");
		return;
	}
	tfield(field, "%s.type", bpath);
	if (!get_str(c, b, "type", field, true, &type))
		return;
	check_button_label(c, b, bpath, strcmp(type, "COPY_CODE") != 0);
	if (strcmp(type, "QUICK_REPLY") == 0)
		return;
	if (strcmp(type, "URL") == 0) {
		counts->url++;
		check_url_button(c, b, bpath);
	} else if (strcmp(type, "PHONE_NUMBER") == 0) {
		counts->phone++;
		check_phone_button(c, b, bpath);
	} else if (strcmp(type, "COPY_CODE") == 0) {
		counts->copy_code++;
		check_copy_code_button(c, b, bpath);
	} else {
		RULE(c, field, "must be QUICK_REPLY, URL, PHONE_NUMBER or COPY_CODE");
	}
}

static void check_buttons(struct vctx *c, const json_t *comp, size_t ci)
{
	char field[TEMPLATE_FIELD_MAX];
	struct button_counts counts = { 0, 0, 0 };
	const json_t *arr, *b;
	size_t i, n;

	tfield(field, "components[%zu].buttons", ci);
	arr = get_container(c, comp, "buttons", field, true, true);
	if (arr == NULL)
		return;
	n = json_array_size(arr);
	if (n == 0 || n > TEMPLATE_BUTTONS_MAX)
		RULE(c, field, "BUTTONS must have 1 to %d buttons, has %zu",
		     TEMPLATE_BUTTONS_MAX, n);
	json_array_foreach(arr, i, b)
		check_button(c, b, ci, i, &counts);
	if (counts.url > TEMPLATE_URL_BUTTONS_MAX)
		RULE(c, field, "at most %d URL buttons, found %zu",
		     TEMPLATE_URL_BUTTONS_MAX, counts.url);
	if (counts.phone > 1)
		RULE(c, field, "at most 1 PHONE_NUMBER button, found %zu", counts.phone);
	if (counts.copy_code > 1)
		RULE(c, field, "at most 1 COPY_CODE button, found %zu", counts.copy_code);
}

enum comp_kind { COMP_HEADER, COMP_BODY, COMP_FOOTER, COMP_BUTTONS, COMP_KINDS };

static const char *const comp_names[COMP_KINDS] = { "HEADER", "BODY", "FOOTER", "BUTTONS" };

static void check_component(struct vctx *c, const json_t *comp, size_t ci,
	long seen[COMP_KINDS])
{
	char field[TEMPLATE_FIELD_MAX];
	const char *type = NULL;
	int k;

	tfield(field, "components[%zu]", ci);
	if (!json_is_object(comp)) {
		TYPE(c, field, "must be an object");
		return;
	}
	tfield(field, "components[%zu].type", ci);
	if (!get_str(c, comp, "type", field, true, &type))
		return;
	for (k = 0; k < COMP_KINDS; k++)
		if (strcmp(type, comp_names[k]) == 0)
			break;
	if (k == COMP_KINDS) {
		RULE(c, field, "must be HEADER, BODY, FOOTER or BUTTONS");
		return;
	}
	if (seen[k] >= 0) {
		RULE(c, field, "duplicate %s component (first at components[%ld])",
		     comp_names[k], seen[k]);
		return;
	}
	seen[k] = (long)ci;
	if (k == COMP_HEADER)
		check_header(c, comp, ci);
	else if (k == COMP_BODY)
		check_body(c, comp, ci);
	else if (k == COMP_FOOTER)
		check_footer(c, comp, ci);
	else
		check_buttons(c, comp, ci);
}

static void check_components(struct vctx *c, const json_t *t)
{
	long seen[COMP_KINDS] = { -1, -1, -1, -1 };
	const json_t *arr, *comp;
	size_t i;

	arr = get_container(c, t, "components", "components", true, true);
	if (arr == NULL)
		return;
	json_array_foreach(arr, i, comp)
		check_component(c, comp, i, seen);
	if (seen[COMP_BODY] < 0)
		RULE(c, "components", "a BODY component is required");
}

int template_validate(const json_t *tmpl, json_t **details_out)
{
	struct tdetails d = TDETAILS_INIT;
	struct vctx c = { &d, FMT_POSITIONAL };

	if (details_out == NULL)
		return TEMPLATE_ERROR;
	*details_out = NULL;
	if (tmpl == NULL)
		return TEMPLATE_ERROR;
	if (!json_is_object(tmpl)) {
		TYPE(&c, "", "template must be a JSON object");
		return tdetails_finish(&d, details_out);
	}
	check_name(&c, tmpl);
	check_language(&c, tmpl);
	check_category(&c, tmpl);
	check_parameter_format(&c, tmpl);
	check_components(&c, tmpl);
	return tdetails_finish(&d, details_out);
}
