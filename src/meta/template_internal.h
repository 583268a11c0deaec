/* template_internal: helpers shared by template_rules.c and template_vars.c.
 * Not for other modules: use template_rules.h. */
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

/* "BODY" etc. for a component type string, "component" when unknown. */
const char *tcomp_label(const char *type);

/* Length of s in UTF-8 code points (s valid UTF-8, as jansson ensures). */
size_t tutf8_len(const char *s);

#endif
