/* template_render: builds the answers of template_variables,
 * template_render and template_send_components from a loaded view and its
 * bound values (template_vars.c). Every builder returns NULL only when out
 * of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/template_internal.h"
#include "meta/template_rules.h"

/* text with each variable replaced by its value; malloc'd, NULL on OOM. */
static char *substitute(const char *text, const struct template_scan *sc,
	const struct tkeys *k, const char *const *vals)
{
	size_t len = strlen(text), out_len = len, at = 0, o = 0;
	char *out;

	for (size_t i = 0; i < sc->count; i++) {
		const char *val = vals[tkey_pos(sc, k, i)];

		out_len = out_len - (sc->vars[i].end - sc->vars[i].start) +
			  (val != NULL ? strlen(val) : 0);
	}
	out = malloc(out_len + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < sc->count; i++) {
		const char *val = vals[tkey_pos(sc, k, i)];
		size_t vl = val != NULL ? strlen(val) : 0;

		memcpy(out + o, text + at, sc->vars[i].start - at);
		o += sc->vars[i].start - at;
		if (vl > 0)
			memcpy(out + o, val, vl);
		o += vl;
		at = sc->vars[i].end;
	}
	memcpy(out + o, text + at, len - at);
	out[out_len] = '\0';
	return out;
}

/* Steals s (may be NULL: then fails). */
static json_t *take_string(char *s)
{
	json_t *j = s != NULL ? json_string(s) : NULL;

	free(s);
	return j;
}

static json_t *string_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/* URL with its trailing {{1}} replaced by value. */
static char *button_url(const struct tbutton *bt, const char *value)
{
	size_t vl = value != NULL ? strlen(value) : 0;
	char *out = malloc(bt->var_start + vl + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, bt->url, bt->var_start);
	if (vl > 0)
		memcpy(out + bt->var_start, value, vl);
	out[bt->var_start + vl] = '\0';
	return out;
}

static json_t *render_button(const struct tbutton *bt, const char *value)
{
	const char *label = bt->text;
	json_t *o = json_object();
	bool ok = o != NULL;

	ok = ok && json_object_set_new(o, "type", json_string(bt->type)) == 0;
	if (bt->text == NULL && strcmp(bt->type, "COPY_CODE") == 0)
		label = "Copy offer code"; /* what WhatsApp shows */
	ok = ok && json_object_set_new(o, "text", string_or_null(label)) == 0;
	if (ok && strcmp(bt->type, "URL") == 0)
		ok = json_object_set_new(o, "url", !bt->takes_value ?
			string_or_null(bt->url) : take_string(button_url(bt, value))) == 0;
	if (ok && strcmp(bt->type, "PHONE_NUMBER") == 0)
		ok = json_object_set_new(o, "phone_number", string_or_null(bt->phone)) == 0;
	if (ok && strcmp(bt->type, "COPY_CODE") == 0)
		ok = json_object_set_new(o, "code", string_or_null(value)) == 0;
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *tview_render(const struct tview *v, const struct tbind *b)
{
	const char *hvals[1] = { b->header_value };
	json_t *o = json_object(), *buttons = json_array(), *header;
	bool ok = o != NULL && buttons != NULL;

	if (v->header_format != NULL && !theader_is_media(v))
		header = take_string(substitute(v->header_text, &v->header_sc,
						&v->header_keys, hvals));
	else
		header = json_null();
	ok = ok && json_object_set_new(o, "header", header) == 0;
	ok = ok && json_object_set_new(o, "header_format",
				       string_or_null(v->header_format)) == 0;
	ok = ok && json_object_set_new(o, "body", take_string(substitute(v->body_text,
			&v->body_sc, &v->body_keys, b->body))) == 0;
	ok = ok && json_object_set_new(o, "footer", string_or_null(v->footer_text)) == 0;
	for (size_t i = 0; ok && i < v->nbuttons; i++)
		ok = json_array_append_new(buttons, render_button(&v->buttons[i],
							  b->button[i])) == 0;
	ok = ok && json_object_set(o, "buttons", buttons) == 0;
	json_decref(buttons);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* {"type": "text", ["parameter_name": name,] "text": value} */
static json_t *text_param(bool named, const char *name, const char *value)
{
	if (named)
		return json_pack("{s:s, s:s, s:s}", "type", "text",
				 "parameter_name", name, "text", value != NULL ? value : "");
	return json_pack("{s:s, s:s}", "type", "text", "text", value != NULL ? value : "");
}

/* Append {"type": type, "parameters": [params...]}; steals params. */
static bool append_component(json_t *arr, const char *type, json_t *params)
{
	json_t *c = params != NULL ? json_pack("{s:s, s:o}", "type", type,
					       "parameters", params) : NULL;

	return json_array_append_new(arr, c) == 0;
}

static json_t *text_params(bool named, const struct template_scan *sc,
	const struct tkeys *k, const char *const *vals)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < k->n; i++) {
		if (json_array_append_new(arr, text_param(named,
				sc->vars[k->idx[i]].name, vals[i])) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

/* Copy of the known keys of a media / location value. */
static json_t *media_copy(const json_t *m)
{
	static const char *const keys[] = { "link", "id", "filename", "latitude",
					    "longitude", "name", "address" };
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < sizeof keys / sizeof keys[0]; i++) {
		json_t *v = json_object_get(m, keys[i]);

		if (v != NULL && (json_is_string(v) || json_is_number(v)) &&
		    json_object_set(o, keys[i], v) != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

static bool send_header(json_t *arr, const struct tview *v, const struct tbind *b)
{
	static const char *const formats[][2] = { { "IMAGE", "image" },
		{ "VIDEO", "video" }, { "DOCUMENT", "document" }, { "LOCATION", "location" } };
	const char *hvals[1] = { b->header_value };

	if (v->header_format == NULL)
		return true;
	if (!theader_is_media(v))
		return v->header_keys.n == 0 || append_component(arr, "header",
			text_params(v->named, &v->header_sc, &v->header_keys, hvals));
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(v->header_format, formats[i][0]) != 0)
			continue;
		return append_component(arr, "header", json_pack("[{s:s, s:o}]",
			"type", formats[i][1], formats[i][1], media_copy(b->header_media)));
	}
	return true; /* unknown format: nothing Meta could take */
}

static bool send_button(json_t *arr, const struct tbutton *bt, const char *value)
{
	bool copy = strcmp(bt->type, "COPY_CODE") == 0;
	char index[24];
	json_t *c;

	if (snprintf(index, sizeof index, "%zu", bt->index) < 0)
		return false;
	c = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}]}", "type", "button",
		      "sub_type", copy ? "copy_code" : "url", "index", index,
		      "parameters", "type", copy ? "coupon_code" : "text",
		      copy ? "coupon_code" : "text", value != NULL ? value : "");
	return json_array_append_new(arr, c) == 0;
}

json_t *tview_send(const struct tview *v, const struct tbind *b)
{
	json_t *arr = json_array();
	bool ok = arr != NULL && send_header(arr, v, b);

	if (ok && v->body_keys.n > 0)
		ok = append_component(arr, "body", text_params(v->named, &v->body_sc,
					&v->body_keys, b->body));
	for (size_t i = 0; ok && i < v->nbuttons; i++)
		if (v->buttons[i].takes_value)
			ok = send_button(arr, &v->buttons[i], b->button[i]);
	if (!ok) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

static json_t *keys_json(const struct template_scan *sc, const struct tkeys *k)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < k->n; i++) {
		if (json_array_append_new(arr, json_string(sc->vars[k->idx[i]].name)) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

json_t *tview_variables(const struct tview *v)
{
	json_t *buttons = json_array();
	json_t *o = json_pack("{s:o, s:o, s:o}", "header", keys_json(&v->header_sc,
		&v->header_keys), "header_format", string_or_null(v->header_format),
		"body", keys_json(&v->body_sc, &v->body_keys));
	bool ok = o != NULL && buttons != NULL;

	for (size_t i = 0; ok && i < v->nbuttons; i++) {
		const struct tbutton *bt = &v->buttons[i];

		if (!bt->takes_value)
			continue;
		ok = json_array_append_new(buttons, json_pack("{s:i, s:s, s:[s]}",
			"index", (json_int_t)bt->index, "type", bt->type, "variables",
			strcmp(bt->type, "COPY_CODE") == 0 ? "coupon_code" : "1")) == 0;
	}
	ok = ok && json_object_set(o, "buttons", buttons) == 0;
	json_decref(buttons);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}
