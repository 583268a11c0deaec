/* libFuzzer driver for meta/template_rules: templates and parameters are
 * untrusted request bodies (and Meta's sync answers).
 *
 * The bytes are parsed as JSON. An object goes through template_validate;
 * its "components", "parameter_format" and "parameters" go through
 * template_variables, template_render and template_send_components whatever
 * the validation said. Invariants checked (trap on violation):
 *   - results are one of the documented codes; OK <=> no details; details
 *     entries are {"field": string, "message": non-empty string};
 *   - a template that validates can always be read (template_variables OK),
 *     and filling every listed variable with a harmless value makes both
 *     template_render and template_send_components succeed, and the body
 *     renders to a string without any "{{" left;
 *   - nothing leaks (ASan) and nothing is read out of bounds.
 * Build (from the repo root):
 *   clang -std=c17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Isrc -include src/core/banned.h fuzz/fuzz_template_rules.c \
 *     src/meta/template_rules.c src/meta/template_scan.c \
 *     src/meta/template_vars.c src/meta/template_render.c -ljansson \
 *     -o fuzz_template_rules
 *   mkdir -p /tmp/tr && ./fuzz_template_rules -max_total_time=60 \
 *     -max_len=8192 /tmp/tr fuzz/corpus/template_rules
 * (new inputs go to the first directory; keep the seeds clean). */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "meta/template_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_details(int rc, const json_t *details)
{
	size_t i;
	const json_t *e;

	/* TEMPLATE_ERROR means out of memory, which libFuzzer's malloc limit
	 * turns into a crash first: here it would be a lost details entry
	 * (e.g. a message that is not valid UTF-8). */
	if (rc != TEMPLATE_OK && rc != TEMPLATE_INVALID && rc != TEMPLATE_BAD_TYPE)
		__builtin_trap();
	if ((rc == TEMPLATE_INVALID || rc == TEMPLATE_BAD_TYPE) !=
	    (json_array_size(details) > 0))
		__builtin_trap();
	json_array_foreach(details, i, e) {
		const char *f = json_string_value(json_object_get(e, "field"));
		const char *m = json_string_value(json_object_get(e, "message"));

		if (f == NULL || m == NULL || *m == '\0')
			__builtin_trap();
	}
}

/* POSITIONAL: ["v", ...]; NAMED: {"name": "v", ...}. */
static json_t *fill(const json_t *names, bool named)
{
	json_t *out = named ? json_object() : json_array();
	size_t i;
	const json_t *n;

	json_array_foreach(names, i, n) {
		if (named)
			json_object_set_new(out, json_string_value(n), json_string("v"));
		else
			json_array_append_new(out, json_string("v"));
	}
	return out;
}

/* Full-form parameters for every variable that vars lists. */
static json_t *params_for(const json_t *vars, bool named)
{
	const char *hf = json_string_value(json_object_get(vars, "header_format"));
	json_t *p = json_object(), *buttons = json_array();
	size_t i;
	const json_t *b;

	if (hf != NULL && strcmp(hf, "LOCATION") == 0)
		json_object_set_new(p, "header", json_pack("{s:i, s:i}", "latitude", 1,
							   "longitude", 2));
	else if (hf != NULL && strcmp(hf, "TEXT") != 0)
		json_object_set_new(p, "header", json_pack("{s:s}", "link",
							   "https://m.example/x"));
	else
		json_object_set_new(p, "header", fill(json_object_get(vars, "header"), named));
	json_object_set_new(p, "body", fill(json_object_get(vars, "body"), named));
	json_array_foreach(json_object_get(vars, "buttons"), i, b)
		json_array_append_new(buttons, json_pack("{s:O, s:s}", "index",
			json_object_get(b, "index"), "text", "c"));
	json_object_set_new(p, "buttons", buttons);
	return p;
}

/* A valid template must be usable end to end. */
static void check_valid_template(const json_t *root)
{
	const json_t *comps = json_object_get(root, "components");
	const char *fmt = json_string_value(json_object_get(root, "parameter_format"));
	bool named = fmt != NULL && strcmp(fmt, "NAMED") == 0;
	json_t *vars = NULL, *details = NULL, *params, *out = NULL;
	int rc;

	rc = template_variables(comps, fmt, &vars, &details);
	if (rc != TEMPLATE_OK)
		__builtin_trap();
	params = params_for(vars, named);
	rc = template_render(comps, fmt, params, &out, &details);
	if (rc != TEMPLATE_OK)
		__builtin_trap();
	if ((!json_is_string(json_object_get(out, "body")) ||
		strstr(json_string_value(json_object_get(out, "body")), "{{") != NULL))
		__builtin_trap();
	json_decref(out);
	out = NULL;
	rc = template_send_components(comps, fmt, params, &out, &details);
	if (rc != TEMPLATE_OK)
		__builtin_trap();
	json_decref(out);
	json_decref(params);
	json_decref(vars);
}

static void exercise(const json_t *root)
{
	const json_t *comps = json_object_get(root, "components");
	const json_t *params = json_object_get(root, "parameters");
	const char *fmt = json_string_value(json_object_get(root, "parameter_format"));
	json_t *out = NULL, *details = NULL;
	int rc;

	rc = template_variables(comps, fmt, &out, &details);
	check_details(rc, details);
	json_decref(out);
	json_decref(details);
	rc = template_render(comps, fmt, params, &out, &details);
	check_details(rc, details);
	if ((rc == TEMPLATE_OK) != (out != NULL))
		__builtin_trap();
	json_decref(out);
	json_decref(details);
	rc = template_send_components(comps, fmt, params, &out, &details);
	check_details(rc, details);
	if ((rc == TEMPLATE_OK) != json_is_array(out))
		__builtin_trap();
	json_decref(out);
	json_decref(details);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root, *details = NULL;
	struct template_scan sc;
	json_error_t err;
	int rc;

	root = json_loadb((const char *)data, size,
			  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (root == NULL) {
		/* the scanner also sees raw text */
		char text[512];
		size_t n = size < sizeof text - 1 ? size : sizeof text - 1;

		memcpy(text, data, n);
		text[n] = '\0';
		template_scan_text(text, &sc);
		if (sc.count > TEMPLATE_VARS_MAX || strlen(sc.bad_text) >= sizeof sc.bad_text)
			__builtin_trap();
		return 0;
	}
	rc = template_validate(root, &details);
	check_details(rc, details);
	json_decref(details);
	if (rc == TEMPLATE_OK)
		check_valid_template(root);
	if (json_is_object(root))
		exercise(root);
	json_decref(root);
	return 0;
}
