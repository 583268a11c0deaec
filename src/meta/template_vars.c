/* template_vars: what uses a template's variables: the variables list,
 * the preview renderer and the send-time components builder (see
 * template_rules.h). This file reads the template and binds parameters;
 * template_render.c builds the answers.
 *
 * Render and send share one pipeline:
 *   view_load     read the components (first HEADER/BODY/FOOTER/BUTTONS),
 *                 scan their texts, refuse what cannot be filled;
 *   bind_all      split the parameters (short or full form) and match the
 *                 values to the variables, reporting missing/extra/unusable
 *                 ones as details;
 *   tview_*       produce the variables list, the preview object or Meta's
 *                 components array (template_render.c).
 * The view (two scans, ~23 KiB) lives on the heap. Components are assumed to
 * have passed template_validate, but nothing here trusts that: a broken
 * template gives details, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "meta/template_internal.h"
#include "meta/template_rules.h"

/* ---- the view of a template ---- */

static void keys_of(const struct template_scan *sc, bool named, struct tkeys *k)
{
	k->n = 0;
	for (size_t i = 0; i < sc->count; i++) {
		size_t j;

		for (j = 0; j < k->n; j++)
			if (strcmp(sc->vars[k->idx[j]].name, sc->vars[i].name) == 0)
				break;
		if (j == k->n)
			k->idx[k->n++] = i;
	}
	if (named)
		return;
	for (size_t i = 1; i < k->n; i++) { /* insertion sort by number */
		size_t v = k->idx[i], j = i;

		for (; j > 0 && sc->vars[k->idx[j - 1]].number > sc->vars[v].number; j--)
			k->idx[j] = k->idx[j - 1];
		k->idx[j] = v;
	}
}

/* Position of variable occurrence vi of sc among keys k. */
size_t tkey_pos(const struct template_scan *sc, const struct tkeys *k, size_t vi)
{
	for (size_t j = 0; j < k->n; j++)
		if (strcmp(sc->vars[k->idx[j]].name, sc->vars[vi].name) == 0)
			return j;
	return 0; /* unreachable: every variable has a key */
}

static const char *str_member(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* Scan text of component ci into sc; false (reported) when malformed, too
 * many, of the wrong kind, or more than max_vars occurrences. */
static bool scan_component(struct tdetails *d, const char *text, size_t ci,
	const char *label, bool named, size_t max_vars, struct template_scan *sc)
{
	char field[TEMPLATE_FIELD_MAX];

	tfield(field, "components[%zu].text", ci);
	template_scan_text(text, sc);
	if (sc->malformed > 0) {
		tdetails_add(d, false, field, "%s has a malformed variable \"%s\"",
			     label, sc->bad_text);
		return false;
	}
	if (sc->too_many) {
		tdetails_add(d, false, field, "%s has more than %d variables", label,
			     TEMPLATE_VARS_MAX);
		return false;
	}
	if (sc->count > max_vars) {
		tdetails_add(d, false, field, "%s has too many variables", label);
		return false;
	}
	for (size_t i = 0; i < sc->count; i++) {
		if ((sc->vars[i].kind == TEMPLATE_VAR_NAME) != named) {
			tdetails_add(d, false, field, "%s uses {{%s}}, which does not "
				     "match parameter_format %s", label, sc->vars[i].name,
				     named ? "NAMED" : "POSITIONAL");
			return false;
		}
	}
	return true;
}

static bool load_button(struct tdetails *d, const json_t *b, size_t ci, size_t bi,
	struct tbutton *out)
{
	char field[TEMPLATE_FIELD_MAX];
	struct template_scan *sc;
	bool ok = true;

	memset(out, 0, sizeof *out);
	out->index = bi;
	out->type = str_member(b, "type");
	out->text = str_member(b, "text");
	out->url = str_member(b, "url");
	out->phone = str_member(b, "phone_number");
	if (out->type == NULL)
		out->type = "";
	if (strcmp(out->type, "COPY_CODE") == 0)
		out->takes_value = true;
	if (strcmp(out->type, "URL") != 0 || out->url == NULL)
		return true;
	sc = malloc(sizeof *sc);
	if (sc == NULL) {
		d->oom = true;
		return false;
	}
	template_scan_text(out->url, sc);
	if (sc->count > 0 || sc->malformed > 0) {
		if (sc->count != 1 || sc->malformed > 0 || sc->vars[0].number != 1 ||
		    sc->vars[0].end != strlen(out->url)) {
			tfield(field, "components[%zu].buttons[%zu].url", ci, bi);
			tdetails_add(d, false, field, "URL button url may only end with {{1}}");
			ok = false;
		} else {
			out->takes_value = true;
			out->var_start = sc->vars[0].start;
		}
	}
	free(sc);
	return ok;
}

static bool load_buttons(struct tdetails *d, const json_t *comp, size_t ci,
	struct tview *v)
{
	char field[TEMPLATE_FIELD_MAX];
	const json_t *arr = json_object_get(comp, "buttons"), *b;
	bool ok = true;
	size_t i;

	if (json_array_size(arr) > TEMPLATE_BUTTONS_MAX) {
		tfield(field, "components[%zu].buttons", ci);
		tdetails_add(d, false, field, "BUTTONS has more than %d buttons",
			     TEMPLATE_BUTTONS_MAX);
		return false;
	}
	json_array_foreach(arr, i, b) {
		if (!json_is_object(b))
			continue;
		ok = load_button(d, b, ci, i, &v->buttons[v->nbuttons++]) && ok;
	}
	return ok;
}

static bool load_header(struct tdetails *d, const json_t *comp, size_t ci,
	struct tview *v)
{
	v->header_format = str_member(comp, "format");
	v->header_text = str_member(comp, "text");
	if (v->header_format == NULL)
		v->header_format = "TEXT";
	if (strcmp(v->header_format, "TEXT") != 0)
		return true;
	if (v->header_text == NULL)
		v->header_text = "";
	if (!scan_component(d, v->header_text, ci, "HEADER", v->named, 1, &v->header_sc))
		return false;
	keys_of(&v->header_sc, v->named, &v->header_keys);
	return true;
}

/* Index of type among HEADER, BODY, FOOTER, BUTTONS, or -1. */
static int component_kind(const json_t *comp)
{
	static const char *const kinds[] = { "HEADER", "BODY", "FOOTER", "BUTTONS" };
	const char *type = str_member(comp, "type");

	for (int k = 0; type != NULL && k < 4; k++)
		if (strcmp(type, kinds[k]) == 0)
			return k;
	return -1;
}

static bool view_load(struct tdetails *d, const json_t *components,
	const char *parameter_format, struct tview *v)
{
	bool seen[4] = { false, false, false, false }, ok = true;
	const json_t *comp;
	size_t i;

	v->named = parameter_format != NULL && strcmp(parameter_format, "NAMED") == 0;
	if (!json_is_array(components)) {
		tdetails_add(d, true, "components", "must be an array");
		return false;
	}
	json_array_foreach(components, i, comp) {
		int k = component_kind(comp);

		if (k < 0 || seen[k])
			continue;
		seen[k] = true;
		if (k == 0)
			ok = load_header(d, comp, i, v) && ok;
		else if (k == 2)
			v->footer_text = str_member(comp, "text");
		else if (k == 3)
			ok = load_buttons(d, comp, i, v) && ok;
		else if ((v->body_text = str_member(comp, "text")) != NULL)
			ok = scan_component(d, v->body_text, i, "BODY", v->named,
					    TEMPLATE_VARS_MAX, &v->body_sc) && ok;
	}
	if (v->body_text == NULL) {
		tdetails_add(d, false, "components", "the template has no BODY text");
		return false;
	}
	keys_of(&v->body_sc, v->named, &v->body_keys);
	return ok;
}

static struct tview *view_new(void)
{
	return calloc(1, sizeof(struct tview));
}

/* ---- parameters ---- */

struct tforms {
	const json_t *header, *body, *buttons;
	const char *body_path;
};

static bool is_full_form_key(const json_t *params, const char *key)
{
	const json_t *v = json_object_get(params, key);

	return v != NULL && !json_is_string(v);
}

static bool split_forms(struct tdetails *d, const json_t *params, struct tforms *f)
{
	memset(f, 0, sizeof *f);
	f->body_path = "parameters";
	if (params == NULL || json_is_null(params))
		return true;
	if (json_is_array(params)) {
		f->body = params;
		return true;
	}
	if (!json_is_object(params)) {
		tdetails_add(d, true, "parameters", "must be an array or an object");
		return false;
	}
	if (is_full_form_key(params, "header") || is_full_form_key(params, "body") ||
	    is_full_form_key(params, "buttons")) {
		f->header = json_object_get(params, "header");
		f->body = json_object_get(params, "body");
		f->buttons = json_object_get(params, "buttons");
		f->body_path = "parameters.body";
	} else {
		f->body = params;
	}
	return true;
}

/* base + "." + key, the key cut at a UTF-8 boundary to fit. */
static void field_key(char *buf, const char *base, const char *key)
{
	size_t n = strlen(base), k = strlen(key);

	if (n > TEMPLATE_FIELD_MAX - 2)
		n = TEMPLATE_FIELD_MAX - 2;
	memcpy(buf, base, n);
	buf[n++] = '.';
	if (k > TEMPLATE_FIELD_MAX - 1 - n)
		k = TEMPLATE_FIELD_MAX - 1 - n;
	while (k > 0 && ((unsigned char)key[k] & 0xC0) == 0x80)
		k--; /* key[k] would start the cut-off part mid-character */
	memcpy(buf + n, key, k);
	buf[n + k] = '\0';
}

/* A usable parameter value: a non-empty string of at most max code points,
 * without newline or tab or 5 spaces in a row. NULL when unusable. */
static const char *check_value(struct tdetails *d, const char *field,
	const json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	size_t n;

	if (s == NULL) {
		tdetails_add(d, true, field, "must be a string");
		return NULL;
	}
	n = tutf8_len(s);
	if (n == 0)
		tdetails_add(d, false, field, "must not be empty");
	else if (strpbrk(s, "\n\t\r") != NULL)
		tdetails_add(d, false, field, "must not contain newlines or tabs");
	else if (strstr(s, "     ") != NULL)
		tdetails_add(d, false, field, "must not contain more than 4 spaces in a row");
	else if (n > max)
		tdetails_add(d, false, field, "must be at most %zu characters", max);
	else
		return s;
	return NULL;
}

struct bind_spec {
	const char *label;               /* "BODY" */
	const char *path;                /* "parameters.body" */
	const struct template_scan *sc;
	const struct tkeys *keys;
	size_t max_len;
};

static void bind_positional(struct tdetails *d, const struct bind_spec *s,
	const json_t *vals, const char **out)
{
	char field[TEMPLATE_FIELD_MAX];
	size_t n = json_array_size(vals);

	if (vals != NULL && !json_is_array(vals)) {
		tdetails_add(d, true, s->path, "must be an array: the template's "
			     "variables are POSITIONAL");
		return;
	}
	for (size_t i = 0; i < s->keys->n || i < n; i++) {
		tfield(field, "%s[%zu]", s->path, i);
		if (i >= s->keys->n)
			tdetails_add(d, false, field, "extra value: %s has %zu variable%s",
				     s->label, s->keys->n, s->keys->n == 1 ? "" : "s");
		else if (i >= n)
			tdetails_add(d, false, field, "missing value for {{%s}} in %s",
				     s->sc->vars[s->keys->idx[i]].name, s->label);
		else
			out[i] = check_value(d, field, json_array_get(vals, i), s->max_len);
	}
}

static bool keys_have(const struct bind_spec *s, const char *name)
{
	for (size_t j = 0; j < s->keys->n; j++)
		if (strcmp(s->sc->vars[s->keys->idx[j]].name, name) == 0)
			return true;
	return false;
}

static void bind_named(struct tdetails *d, const struct bind_spec *s,
	const json_t *vals, const char **out)
{
	char field[TEMPLATE_FIELD_MAX];
	const char *key;
	const json_t *v;

	if (vals != NULL && !json_is_object(vals)) {
		tdetails_add(d, true, s->path, "must be an object {name: value}: the "
			     "template's variables are NAMED");
		return;
	}
	for (size_t i = 0; i < s->keys->n; i++) {
		const char *name = s->sc->vars[s->keys->idx[i]].name;

		field_key(field, s->path, name);
		v = json_object_get(vals, name);
		if (v == NULL)
			tdetails_add(d, false, field, "missing value for {{%s}} in %s",
				     name, s->label);
		else
			out[i] = check_value(d, field, v, s->max_len);
	}
	json_object_foreach((json_t *)vals, key, v) {
		if (keys_have(s, key))
			continue;
		field_key(field, s->path, key);
		tdetails_add(d, false, field, "extra value: %s has no variable by "
			     "this name", s->label);
	}
}

static void bind_text(struct tdetails *d, bool named, const struct bind_spec *s,
	const json_t *vals, const char **out)
{
	if (json_is_null(vals))
		vals = NULL;
	if (named)
		bind_named(d, s, vals, out);
	else
		bind_positional(d, s, vals, out);
}

/* Media header value: {link} or {id} (+ filename for DOCUMENT), or
 * LOCATION's {latitude, longitude, name?, address?}. */
static void check_media(struct tdetails *d, const char *format, const json_t *m)
{
	const char *path = "parameters.header";
	const char *link = str_member(m, "link"), *id = str_member(m, "id");

	if (!json_is_object(m)) {
		tdetails_add(d, true, path, "must be an object describing the %s", format);
		return;
	}
	if (strcmp(format, "LOCATION") == 0) {
		if (!json_is_number(json_object_get(m, "latitude")) ||
		    !json_is_number(json_object_get(m, "longitude")))
			tdetails_add(d, false, path, "a LOCATION header needs numeric "
				     "latitude and longitude");
		return;
	}
	if ((link == NULL) == (id == NULL) || (id != NULL && *id == '\0') ||
	    (link != NULL && strncmp(link, "https://", 8) != 0 &&
	     strncmp(link, "http://", 7) != 0))
		tdetails_add(d, false, path, "a %s header needs either \"link\" "
			     "(an http(s) URL) or \"id\" (a media id)", format);
}

/* A header value the template has no use for: non-empty array/object or
 * anything else that is not null. */
static bool has_content(const json_t *v)
{
	if (json_is_array(v))
		return json_array_size(v) > 0;
	if (json_is_object(v))
		return json_object_size(v) > 0;
	return v != NULL && !json_is_null(v);
}

bool theader_is_media(const struct tview *v)
{
	return v->header_format != NULL && strcmp(v->header_format, "TEXT") != 0;
}

static void bind_header(struct tdetails *d, const struct tview *v,
	const struct tforms *f, bool media_required, struct tbind *b)
{
	struct bind_spec s = { "HEADER", "parameters.header", &v->header_sc,
			       &v->header_keys, TEMPLATE_HEADER_TEXT_MAX };
	const json_t *h = json_is_null(f->header) ? NULL : f->header;

	if (v->header_format == NULL) {
		if (has_content(h))
			tdetails_add(d, false, "parameters.header", "extra value: the "
				     "template has no HEADER");
		return;
	}
	if (!theader_is_media(v)) {
		bind_text(d, v->named, &s, h, &b->header_value);
		return;
	}
	if (h == NULL) {
		if (media_required)
			tdetails_add(d, false, "parameters.header", "missing value for "
				     "the %s HEADER", v->header_format);
		return;
	}
	check_media(d, v->header_format, h);
	b->header_media = h;
}

/* Position in v->buttons of the button at index that takes a value. */
static bool find_button(const struct tview *v, const json_t *index, size_t *pos)
{
	json_int_t want = json_integer_value(index);

	for (size_t i = 0; i < v->nbuttons; i++) {
		if ((json_int_t)v->buttons[i].index == want && v->buttons[i].takes_value) {
			*pos = i;
			return true;
		}
	}
	return false;
}

static void bind_button_entry(struct tdetails *d, const struct tview *v,
	const json_t *e, size_t k, bool given[], struct tbind *b)
{
	char base[TEMPLATE_FIELD_MAX], field[TEMPLATE_FIELD_MAX];
	const json_t *index = json_object_get(e, "index");
	const json_t *text = json_object_get(e, "text");
	size_t pos = 0;

	tfield(base, "parameters.buttons[%zu]", k);
	if (!json_is_object(e)) {
		tdetails_add(d, true, base, "must be {\"index\": n, \"text\": value}");
		return;
	}
	tfield(field, "%s.index", base);
	if (!json_is_integer(index)) {
		tdetails_add(d, true, field, "must be an integer");
		return;
	}
	if (!find_button(v, index, &pos)) {
		tdetails_add(d, false, field, "extra value: button %lld takes no parameter",
			     (long long)json_integer_value(index));
		return;
	}
	if (given[pos]) {
		tdetails_add(d, false, field, "duplicate value for button %lld",
			     (long long)json_integer_value(index));
		return;
	}
	given[pos] = true;
	tfield(field, "%s.text", base);
	if (text == NULL || json_is_null(text))
		tdetails_add(d, false, field, "is required");
	else
		b->button[pos] = check_value(d, field, text,
			strcmp(v->buttons[pos].type, "COPY_CODE") == 0 ?
			TEMPLATE_COUPON_CODE_MAX : TEMPLATE_URL_MAX);
}

static void bind_buttons(struct tdetails *d, const struct tview *v,
	const struct tforms *f, struct tbind *b)
{
	bool given[TEMPLATE_BUTTONS_MAX] = { false };
	const json_t *arr = json_is_null(f->buttons) ? NULL : f->buttons, *e;
	size_t k;

	if (arr != NULL && !json_is_array(arr)) {
		tdetails_add(d, true, "parameters.buttons",
			     "must be an array of {\"index\": n, \"text\": value}");
		return;
	}
	json_array_foreach(arr, k, e)
		bind_button_entry(d, v, e, k, given, b);
	for (size_t i = 0; i < v->nbuttons; i++) {
		if (v->buttons[i].takes_value && !given[i])
			tdetails_add(d, false, "parameters.buttons", "missing value for "
				     "the %s button at index %zu", v->buttons[i].type,
				     v->buttons[i].index);
	}
}

static void bind_all(struct tdetails *d, const struct tview *v,
	const json_t *params, bool media_required, struct tbind *b)
{
	struct tforms f;
	struct bind_spec body;

	if (!split_forms(d, params, &f))
		return;
	body = (struct bind_spec){ "BODY", f.body_path, &v->body_sc, &v->body_keys,
				   TEMPLATE_PARAM_TEXT_MAX };
	bind_header(d, v, &f, media_required, b);
	bind_text(d, v->named, &body, f.body, b->body);
	bind_buttons(d, v, &f, b);
}

/* ---- public entry points ---- */

enum run_mode { RUN_VARIABLES, RUN_RENDER, RUN_SEND };

static int run(enum run_mode mode, const json_t *components, const char *fmt,
	const json_t *params, json_t **result_out, json_t **details_out)
{
	struct tdetails d = TDETAILS_INIT;
	struct tview *v = NULL;
	struct tbind *b = NULL;
	json_t *result = NULL;
	int rc = TEMPLATE_ERROR;

	if (result_out == NULL || details_out == NULL)
		return TEMPLATE_ERROR;
	*result_out = NULL;
	*details_out = NULL;
	v = view_new();
	b = calloc(1, sizeof *b);
	if (v == NULL || b == NULL)
		goto out;
	if (view_load(&d, components, fmt, v) && mode != RUN_VARIABLES)
		bind_all(&d, v, params, mode == RUN_SEND, b);
	rc = tdetails_finish(&d, details_out);
	if (rc != TEMPLATE_OK)
		goto out;
	if (mode == RUN_VARIABLES)
		result = tview_variables(v);
	else if (mode == RUN_RENDER)
		result = tview_render(v, b);
	else
		result = tview_send(v, b);
	if (result == NULL) {
		rc = TEMPLATE_ERROR;
		goto out;
	}
	*result_out = result;
out:
	tdetails_release(&d);
	free(v);
	free(b);
	return rc;
}

int template_variables(const json_t *components, const char *parameter_format,
	json_t **vars_out, json_t **details_out)
{
	return run(RUN_VARIABLES, components, parameter_format, NULL, vars_out,
		   details_out);
}

int template_render(const json_t *components, const char *parameter_format,
	const json_t *parameters, json_t **rendered_out, json_t **details_out)
{
	return run(RUN_RENDER, components, parameter_format, parameters,
		   rendered_out, details_out);
}

int template_send_components(const json_t *components, const char *parameter_format,
	const json_t *parameters, json_t **send_out, json_t **details_out)
{
	return run(RUN_SEND, components, parameter_format, parameters, send_out,
		   details_out);
}
