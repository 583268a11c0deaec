/* template_internal: what the template_*.c files share (the details
 * collector in template_scan.c, the loaded view and bound values of
 * template_vars.c, the builders of template_render.c). Not for other
 * modules: use template_rules.h. */
#ifndef PYTAKE_TEMPLATE_INTERNAL_H
#define PYTAKE_TEMPLATE_INTERNAL_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "meta/template_rules.h"

#define TEMPLATE_FIELD_MAX 160 /* longest field path we build */
#define TEMPLATE_MSG_MAX   320 /* longest details message */

/* Collects details entries; remembers wrong-type problems and allocation
 * failures so a lost entry can never make a bad template look valid. */
struct tdetails {
	json_t *list;  /* array, created on first use */
	bool bad_type; /* some entry is a wrong JSON type */
	bool oom;      /* an entry could not be stored */
};
#define TDETAILS_INIT { NULL, false, false }

/* Append {"field", "message"}; type_error marks a wrong JSON type. */
void tdetails_add(struct tdetails *d, bool type_error, const char *field,
	const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Hand the result over: TEMPLATE_OK (nothing collected, *out = NULL),
 * TEMPLATE_INVALID / TEMPLATE_BAD_TYPE (*out = the list), or TEMPLATE_ERROR
 * (an entry was lost; *out = NULL). d is empty afterwards. */
int tdetails_finish(struct tdetails *d, json_t **out);

/* Release without handing over. */
void tdetails_release(struct tdetails *d);

/* snprintf into a field path buffer of TEMPLATE_FIELD_MAX bytes
 * (truncates, always terminated). */
void tfield(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Length of s in UTF-8 code points (s valid UTF-8, as jansson ensures). */
size_t tutf8_len(const char *s);

/* ---- the view of a template and its bound values (template_vars.c) ---- */

struct tbutton {
	size_t index;     /* position in the BUTTONS component */
	const char *type; /* "URL", ... */
	const char *text; /* label, may be NULL (COPY_CODE) */
	const char *url;  /* URL */
	const char *phone;
	bool takes_value; /* URL with {{1}}, or COPY_CODE */
	size_t var_start; /* URL with {{1}}: byte offset of "{{" */
};

/* Distinct variables of one text, as indexes into its scan: ascending
 * numbers (POSITIONAL) or names in order of first use (NAMED). */
struct tkeys {
	size_t idx[TEMPLATE_VARS_MAX];
	size_t n;
};

/* A template's components as render/send read them: the first component of
 * each type, texts scanned. Strings point into the caller's JSON. */
struct tview {
	bool named;
	const char *header_format;   /* NULL: no header */
	const char *header_text;     /* TEXT header */
	const char *body_text, *footer_text;
	struct template_scan header_sc, body_sc;
	struct tkeys header_keys, body_keys;
	struct tbutton buttons[TEMPLATE_BUTTONS_MAX];
	size_t nbuttons;
};

/* The parameter values matched to a view's variables (body[i] and the
 * header value by tkeys position). Strings point into the parameters. */
struct tbind {
	const char *header_value;    /* TEXT header's variable */
	const json_t *header_media;  /* media header's object */
	const char *body[TEMPLATE_VARS_MAX];
	const char *button[TEMPLATE_BUTTONS_MAX]; /* by position in view */
};

/* Position of variable occurrence vi of sc among keys k. */
size_t tkey_pos(const struct template_scan *sc, const struct tkeys *k, size_t vi);

/* True when the view has a HEADER that is not TEXT. */
bool theader_is_media(const struct tview *v);

/* Answers built from a view and its values (template_render.c); new
 * references, NULL only when out of memory. */
json_t *tview_variables(const struct tview *v);
json_t *tview_render(const struct tview *v, const struct tbind *b);
json_t *tview_send(const struct tview *v, const struct tbind *b);

#endif
